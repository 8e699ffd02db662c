/**
 * The archive answer source: answers a run's requests from the run's own archive (../runArchive.ts: the
 * records of earlier sessions or batch rounds, in the logs or in per-call files of older versions), by
 * request key and request content.
 *
 * For a request with key `sample-000007-a2` (sample 7, attempt 2, task) it looks at that sample's
 * archived calls with the same key and the same canonical request (instructions, messages, schema: see
 * `canonicalRequest`), and replays how that call ended: its answer (decoded and judged again like a
 * fresh one), or its error when the call had ended with one (not retryable, or the sample had moved on).
 * Every archived attempt of that call is reported with `archived` set, so nothing is archived or paid
 * twice. When the archive has nothing, the request goes to the fallback (resume: the live layer) or, with
 * none (`rebuild`), fails with `NoRecordedAnswer`.
 *
 * Each archived call is read once for what the choice needs (its key, request hash, status), kept in an
 * index by call; only the attempts of the call that answers are read again, for their records. A sample
 * none of whose calls has the request's key (known without reading for calls of the logs) is not read.
 */
import { Effect, Either, Layer, Schema } from "effect"
import type { StorageError } from "../../domain/errors.js"
import type { AttemptRecord, Backend, LlmError } from "../../domain/llm.js"
import { failureScope, NoRecordedAnswer, Usage } from "../../domain/llm.js"
import { parseSampleKey, sampleKey } from "../../domain/run.js"
import type { LlmApi, LlmRequest, LlmResult } from "../Llm.js"
import { Llm } from "../Llm.js"
import type { ArchivedCall } from "../runArchive.js"
import { readArchivedRecord, readArchiveIndex } from "../runArchive.js"
import { RunJournal } from "../RunJournal.js"
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
  purpose: Schema.Literal("task", "repair"),
  /** Answered by the Batch API (half price): kept, so a rebuild prices it as the run did. */
  batch_id: Schema.optional(Schema.String)
})
type ArchivedAttempt = typeof ArchivedAttempt.Type

/** What the choice of an archived call needs to know of it (its record is read again when chosen). */
interface Archived {
  readonly file: string
  readonly call: number
  readonly key: string
  readonly hash: string | undefined
  readonly status: string
  /** It failed with an error about every request (credentials, quota, model: `failureScope` "run"). */
  readonly runError: boolean
  /** A Batch API line's outcome: `batch_id|status` (undefined: an online call). */
  readonly batchLine: string | undefined
  readonly source: ArchivedCall
}

const keyOf = (r: ArchivedAttempt): string => sampleKey(r.sample, r.sample_attempt, r.purpose)

const RETRYABLE = new Set(["RateLimited", "Transient", "Timeout"])

/** An archived call's record, decoded (undefined when it cannot be read or is not one: not an answer). */
const readAttempt = (call: ArchivedCall) =>
  Effect.map(
    readArchivedRecord(call),
    (value) =>
      value === undefined ? undefined : Either.getOrUndefined(Schema.decodeUnknownEither(ArchivedAttempt)(value))
  )

/** What the choice needs of an archived call, read from its record. */
const indexEntryOf = (call: ArchivedCall) =>
  Effect.map(readAttempt(call), (record): Archived | undefined =>
    record === undefined ? undefined : {
      file: call.file,
      call: call.call,
      key: keyOf(record),
      hash: requestHash(record.request),
      status: record.status,
      runError: isRunError(record),
      batchLine: record.batch_id === undefined ? undefined : `${record.batch_id}|${record.status}`,
      source: call
    })

/** A record of an error about the run, not the request: a resumed run asks again (it cost nothing). */
const isRunError = (r: ArchivedAttempt): boolean => {
  if (ANSWERS.has(r.status)) return false
  const error = errorFromDetail(r.errorDetail)
  return error !== undefined && failureScope(error) === "run"
}

/**
 * The attempts of the archived call that answered this key and request, when that call had ended: its
 * last attempt is an answer or a final error, or the sample went on to another call afterwards. An error
 * about the run (credentials, quota, an unknown model) never ends it: the key or the billing may have
 * been fixed since, and the run that stopped on it is resumed to ask again.
 */
export const endedCall = (
  all: ReadonlyArray<Archived>,
  key: string,
  hash: string | undefined
): ReadonlyArray<Archived> | undefined => {
  const same = all.filter((a) => a.key === key && a.hash !== undefined && a.hash === hash)
  const last = same.at(-1)
  if (last === undefined) return undefined
  if (last.runError) return undefined
  const ended = !RETRYABLE.has(last.status) || all.some((a) => a.call > last.call && a.key !== key)
  return ended ? same : undefined
}

const recordOf = (file: string, r: ArchivedAttempt): AttemptRecord => ({
  attempt: r.attempt,
  backend: r.backend as AttemptRecord["backend"],
  model: r.model,
  request: r.request,
  status: r.status as AttemptRecord["status"],
  httpStatus: r.httpStatus,
  response: r.response,
  error: r.error,
  errorDetail: r.errorDetail,
  usage: r.usage,
  requestId: r.requestId ?? null,
  durationMs: r.durationMs,
  startedAt: r.startedAt,
  archived: file,
  ...(r.batch_id === undefined ? {} : { batch_id: r.batch_id })
} as AttemptRecord)

const ANSWERS = new Set(["ok", "InvalidOutput", "Truncated", "Refusal"])

/** How the archived call ended, as the Llm would have returned it. */
const outcomeOf = <A, I>(
  request: LlmRequest<A, I>,
  last: Archived,
  r: ArchivedAttempt
): Either.Either<LlmResult<A>, LlmError> => {
  const detail = errorFromDetail(r.errorDetail)
  if (detail !== undefined && !ANSWERS.has(r.status)) return Either.left(detail)
  if (r.response === undefined) {
    return Either.left(
      new NoRecordedAnswer({ key: last.key, reason: `${last.file} holds an "${r.status}" record without its response` })
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

/** Why a request the archive holds nothing for is unanswered (rebuild's error says that in its own words). */
export const NO_ARCHIVED_ANSWER = "the run's archive has no answer for it"

/** Answers from the run's archive; what it does not hold goes to `fallback` (none: NoRecordedAnswer). */
export const makeArchiveLlm = (
  archived: (index: number) => Effect.Effect<ReadonlyArray<ArchivedCall>>,
  storage: StorageApi,
  fallback: LlmApi | undefined
): LlmApi => {
  // Archived calls already read, by reference (null: unreadable, not an answer).
  const index = new Map<string, Archived | null>()
  const entriesOf = (calls: ReadonlyArray<ArchivedCall>) =>
    Effect.gen(function*() {
      const out: Array<Archived> = []
      for (const call of calls) {
        let entry = index.get(call.file)
        if (entry === undefined) {
          entry = (yield* indexEntryOf(call)) ?? null
          index.set(call.file, entry)
        }
        if (entry !== null) out.push(entry)
      }
      return out
    })
  const replay = <A, I>(request: LlmRequest<A, I>, calls: ReadonlyArray<ArchivedCall>) =>
    Effect.gen(function*() {
      // Calls whose key is known (the logs') and none of them the request's: nothing to read.
      if (calls.every((c) => c.key !== undefined && c.key !== request.key)) return undefined
      const jsonSchema = yield* resolveJsonSchema(request)
      const body = buildBody(
        "responses",
        { model: "", reasoningEffort: undefined, maxOutputTokens: 0 },
        request,
        jsonSchema
      )
      const call = endedCall(yield* entriesOf(calls), request.key!, requestHash(body))
      if (call === undefined) return undefined
      let last: ArchivedAttempt | undefined
      for (const a of call) {
        last = yield* readAttempt(a.source)
        if (last === undefined) return undefined // gone since it was indexed: ask again
        if (request.onAttempt !== undefined) yield* request.onAttempt(recordOf(a.file, last))
      }
      return yield* outcomeOf(request, call.at(-1)!, last!)
    }).pipe(Effect.provideService(Storage, storage))
  /**
   * The request as the fallback gets it: a batch line this key's archive already holds (a failed line, then
   * a kill before its retry ended) is not reported again when the batch layer reads it once more, so it is
   * neither archived nor counted a second time.
   */
  const withoutArchivedLines = <A, I>(request: LlmRequest<A, I>, calls: ReadonlyArray<ArchivedCall>) =>
    Effect.gen(function*() {
      const report = request.onAttempt
      if (report === undefined || calls.length === 0) return request
      const lines = new Set<string>()
      for (const e of yield* entriesOf(calls)) {
        if (e.key === request.key && e.batchLine !== undefined) lines.add(e.batchLine)
      }
      if (lines.size === 0) return request
      const onAttempt = (r: AttemptRecord) => {
        const batchId = (r as { readonly batch_id?: unknown }).batch_id
        return batchId !== undefined && lines.has(`${batchId}|${r.status}`) ? Effect.void : report(r)
      }
      return { ...request, onAttempt }
    }).pipe(Effect.provideService(Storage, storage))
  const complete = <A, I>(request: LlmRequest<A, I>): Effect.Effect<LlmResult<A>, LlmError> =>
    Effect.gen(function*() {
      const key = request.key === undefined ? undefined : parseSampleKey(request.key)
      const calls = key === undefined ? [] : yield* archived(key.index)
      if (calls.length > 0) {
        const replayed = yield* replay(request, calls)
        if (replayed !== undefined) return replayed
      }
      if (fallback !== undefined) return yield* fallback.complete(yield* withoutArchivedLines(request, calls))
      return yield* new NoRecordedAnswer({
        key: request.key ?? "(no key)",
        reason: NO_ARCHIVED_ANSWER
      })
    })
  return {
    complete,
    // The replay's limit holds on --resume too: the archive answers only what earlier sessions asked.
    ...(fallback?.recordedAnswers === undefined ? {} : { recordedAnswers: fallback.recordedAnswers }),
    get describe() {
      return fallback === undefined
        ? "the run's archive (no model calls)"
        : `${fallback.describe} (archived answers first)`
    }
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

/** Rebuild: the archive of `runDir` only; a request it does not hold fails with NoRecordedAnswer. */
export const archiveOnly = (runDir: string): Layer.Layer<Llm, StorageError, Storage> =>
  Layer.effect(
    Llm,
    Effect.gen(function*() {
      const { bySample } = yield* readArchiveIndex(runDir)
      return makeArchiveLlm((index) => Effect.succeed(bySample.get(index) ?? []), yield* Storage, undefined)
    })
  )
