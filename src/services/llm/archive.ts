/**
 * The archive answer source: answers a run's requests from the run's own archive (task_0007_c02.json
 * files, written by earlier sessions or batch rounds), by request key and request content.
 *
 * For a request with key `sample-000007-a2` (sample 7, attempt 2, task) it looks at that sample's
 * archived calls with the same key and the same canonical request (instructions, messages, schema: see
 * `canonicalRequest`), and replays how that call ended: its answer (decoded and judged again like a
 * fresh one), or its error when the call had ended with one (not retryable, or the sample had moved on).
 * Every archived attempt of that call is reported with `archived` set, so nothing is archived or paid
 * twice. When the archive has nothing, the request goes to the fallback (resume: the live layer) or, with
 * none (`rebuild`), fails with `NoRecordedAnswer`.
 */
import { Effect, Either, Layer, Option, Schema } from "effect"
import { gunzipSync } from "node:zlib"
import type { StorageError } from "../../domain/errors.js"
import type { AttemptRecord, Backend, LlmError } from "../../domain/llm.js"
import { NoRecordedAnswer, Usage } from "../../domain/llm.js"
import { parseSampleKey, sampleKey } from "../../domain/run.js"
import type { LlmApi, LlmRequest, LlmResult } from "../Llm.js"
import { Llm } from "../Llm.js"
import { archiveListing, RunJournal } from "../RunJournal.js"
import type { ArchivedCall } from "../RunJournal.js"
import type { StorageApi } from "../Storage.js"
import { Storage } from "../Storage.js"
import { backendOfBody, buildBody, interpret, resolveJsonSchema } from "./answer.js"
import { errorFromDetail } from "./engine.js"
import { requestHash } from "./replay.js"

/** The fields of an archive record this source reads (records of older versions lack `key` and `errorDetail`). */
const ArchivedAttempt = Schema.Struct({
  status: Schema.String,
  backend: Schema.String,
  model: Schema.String,
  startedAt: Schema.String,
  attempt: Schema.optionalWith(Schema.Number, { default: () => 1 }),
  request: Schema.optional(Schema.Unknown),
  response: Schema.optional(Schema.Unknown),
  httpStatus: Schema.optional(Schema.Number),
  error: Schema.optional(Schema.String),
  errorDetail: Schema.optional(Schema.Unknown),
  usage: Schema.optional(Usage),
  requestId: Schema.optional(Schema.NullOr(Schema.String)),
  durationMs: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  sample: Schema.Number,
  sample_attempt: Schema.Number,
  purpose: Schema.Literal("task", "repair")
})
type ArchivedAttempt = typeof ArchivedAttempt.Type

interface Archived {
  readonly file: string
  readonly call: number
  readonly key: string
  readonly hash: string | undefined
  readonly record: ArchivedAttempt
}

const keyOf = (r: ArchivedAttempt): string => sampleKey(r.sample, r.sample_attempt, r.purpose)

const RETRYABLE = new Set(["RateLimited", "Transient", "Timeout"])

/** The archived calls of one sample, parsed (an unreadable file is not an answer). */
const readArchived = (calls: ReadonlyArray<ArchivedCall>) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const out: Array<Archived> = []
    for (const { call, file } of calls) {
      const bytes = yield* storage.readBytes(file).pipe(Effect.option)
      if (Option.isNone(bytes)) continue
      const text = Either.try(() =>
        file.endsWith(".gz") ? gunzipSync(bytes.value).toString("utf8") : Buffer.from(bytes.value).toString("utf8")
      )
      if (Either.isLeft(text)) continue
      const record = Schema.decodeUnknownEither(Schema.parseJson(ArchivedAttempt))(text.right)
      if (Either.isLeft(record)) continue
      out.push({ file, call, key: keyOf(record.right), hash: requestHash(record.right.request), record: record.right })
    }
    return out
  })

/**
 * The attempts of the archived call that answered this key and request, when that call had ended: its
 * last attempt is an answer or a final error, or the sample went on to another call afterwards.
 */
export const endedCall = (
  all: ReadonlyArray<Archived>,
  key: string,
  hash: string | undefined
): ReadonlyArray<Archived> | undefined => {
  const same = all.filter((a) => a.key === key && a.hash !== undefined && a.hash === hash)
  const last = same.at(-1)
  if (last === undefined) return undefined
  const ended = !RETRYABLE.has(last.record.status) || all.some((a) => a.call > last.call && a.key !== key)
  return ended ? same : undefined
}

const recordOf = (a: Archived): AttemptRecord => ({
  attempt: a.record.attempt,
  backend: a.record.backend as AttemptRecord["backend"],
  model: a.record.model,
  request: a.record.request,
  status: a.record.status as AttemptRecord["status"],
  httpStatus: a.record.httpStatus,
  response: a.record.response,
  error: a.record.error,
  errorDetail: a.record.errorDetail,
  usage: a.record.usage,
  requestId: a.record.requestId ?? null,
  durationMs: a.record.durationMs,
  startedAt: a.record.startedAt,
  archived: a.file
})

const ANSWERS = new Set(["ok", "InvalidOutput", "Truncated", "Refusal"])

/** How the archived call ended, as the Llm would have returned it. */
const outcomeOf = <A, I>(request: LlmRequest<A, I>, last: Archived): Either.Either<LlmResult<A>, LlmError> => {
  const r = last.record
  const detail = errorFromDetail(r.errorDetail)
  if (detail !== undefined && !ANSWERS.has(r.status)) return Either.left(detail)
  if (r.response === undefined) {
    return Either.left(
      new NoRecordedAnswer({ key: last.key, reason: `${last.file} holds a ${r.status} without its details` })
    )
  }
  const backend: Backend = backendOfBody(r.response) ?? (r.backend === "chat" ? "chat" : "responses")
  return Either.map(interpret(backend, request.schema, r.response), (ok) => ({
    value: ok.value,
    text: ok.text,
    raw: r.response,
    usage: ok.usage,
    requestId: r.requestId ?? null,
    backend: r.backend as LlmResult<A>["backend"],
    model: r.model,
    durationMs: r.durationMs,
    attempts: r.attempt,
    request: r.request
  }))
}

/** Answers from the run's archive; what it does not hold goes to `fallback` (none: NoRecordedAnswer). */
export const makeArchiveLlm = (
  archived: (index: number) => Effect.Effect<ReadonlyArray<ArchivedCall>>,
  storage: StorageApi,
  fallback: LlmApi | undefined
): LlmApi => {
  const complete = <A, I>(request: LlmRequest<A, I>): Effect.Effect<LlmResult<A>, LlmError> =>
    Effect.gen(function*() {
      const key = request.key === undefined ? undefined : parseSampleKey(request.key)
      const calls = key === undefined ? [] : yield* archived(key.index)
      if (calls.length > 0) {
        const jsonSchema = yield* resolveJsonSchema(request)
        const body = buildBody(
          "responses",
          { model: "", reasoningEffort: undefined, maxOutputTokens: 0 },
          request,
          jsonSchema
        )
        const all = yield* Effect.provideService(readArchived(calls), Storage, storage)
        const call = endedCall(all, request.key!, requestHash(body))
        if (call !== undefined) {
          for (const a of call) if (request.onAttempt !== undefined) yield* request.onAttempt(recordOf(a))
          return yield* outcomeOf(request, call.at(-1)!)
        }
      }
      if (fallback !== undefined) return yield* fallback.complete(request)
      return yield* new NoRecordedAnswer({
        key: request.key ?? "(no key)",
        reason: "the run's archive has no answer for it"
      })
    })
  return {
    complete,
    describe: fallback === undefined
      ? "the run's archive (no model calls)"
      : `${fallback.describe} (archived answers first)`
  }
}

/** Resume: the run's archive first, then the Llm this layer is built over. */
export const archiveFirst: Layer.Layer<Llm, never, Llm | RunJournal | Storage> = Layer.effect(
  Llm,
  Effect.gen(function*() {
    const live = yield* Llm
    const journal = yield* RunJournal
    return makeArchiveLlm(journal.archived, yield* Storage, live)
  })
)

/** The archive files of a run directory, by sample (listed once). */
export const listArchive = (runDir: string) =>
  Effect.map(
    Effect.flatMap(Storage, (storage) => storage.readDirectory(runDir)),
    (names) => archiveListing(runDir, names)
  )

/** Rebuild: the archive of `runDir` only; a request it does not hold fails with NoRecordedAnswer. */
export const archiveOnly = (runDir: string): Layer.Layer<Llm, StorageError, Storage> =>
  Layer.effect(
    Llm,
    Effect.gen(function*() {
      const bySample = yield* listArchive(runDir)
      return makeArchiveLlm((index) => Effect.succeed(bySample.get(index) ?? []), yield* Storage, undefined)
    })
  )
