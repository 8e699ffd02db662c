/**
 * The batch-replay Llm: answers the sampling engine from collected Batch API output, by request key.
 *
 * For each `complete` it builds the body exactly as the online backend would (answer.ts `buildBody`),
 * looks up the output line whose `custom_id` is `<run_id>:<key>` and whose submitted body is this same
 * body (a hash from the run's requests.jsonl: an inventory or setting changed since submit never
 * matches a stale answer), and decodes it with the same code as the live and replay layers
 * (`interpret`). The attempt record it reports (and the engine archives) is the batch line: request
 * body, raw answer, usage, request id, plus `batch_id` / `custom_id` / `batch_part`.
 *
 * A line that failed is classified as the same HTTP answer would be online (`lineError`, then the
 * engine's `isRetryable` / `failureScope`):
 * - transient (5xx, 429, a timeout, `batch_expired` for a line of a batch that answered others): the
 *   request is retried like any other retry, following `repairs` (below); in a follow-up batch at most
 *   `maxRetries` times, then the attempt fails with the line's error;
 * - permanent (a 400 for this request, ...): the call fails with the API's message; the engine rejects
 *   that attempt and makes the sample again (a new attempt, a new key) up to its `--max-attempts`;
 * - lost (`batch_cancelled`, or every line of an expired batch): like a request the batches never
 *   answered: only `resubmit` sends it again.
 *
 * A request the batches did not answer (a repair, a retry, a new attempt, a transient failure) goes:
 * - online (`repairs: "online"`): to the fallback Llm (the live layer), at most `onlineConcurrency` at
 *   once; priced at the normal rate in the run's cost ledger (its records have no batch_id);
 * - or into `deferred` (`repairs: "batch"`, and first attempts being resubmitted): the call then waits
 *   forever; the collect program notices when every unfinished sample is waiting, interrupts the run
 *   and submits the deferred bodies as a follow-up batch. Collecting again replays the same answers,
 *   so each deferred request is asked again with the same body and finds its follow-up answer.
 */
import { Effect, Either } from "effect"
import { createHash } from "node:crypto"
import { isObject } from "../../domain/json.js"
import type { AttemptRecord, Backend, LlmError, Usage } from "../../domain/llm.js"
import {
  Authentication,
  BadRequest,
  isRetryable,
  MissingApiKey,
  NoRecordedAnswer,
  NotFound,
  RateLimited,
  Transient
} from "../../domain/llm.js"
import type { LlmApi, LlmRequest, LlmResult } from "../Llm.js"
import type { BodySettings } from "./answer.js"
import { buildBody, canonicalJson, interpret, resolveJsonSchema } from "./answer.js"
import { errorDetailOf, paceTokens } from "./engine.js"

/** One line of a batch output or error file. */
export interface BatchLine {
  readonly customId: string
  readonly part: number
  readonly batchId: string
  /** The response's HTTP status; undefined when the line has no response (expired, cancelled...). */
  readonly statusCode: number | undefined
  /** The response body (the answer, or an `{ error }` body). */
  readonly body: unknown
  /** The line-level error (`batch_expired`, `batch_cancelled`, `request_timeout`, ...). */
  readonly error: { readonly code: string | null; readonly message: string } | undefined
  readonly requestId: string | null
  /** When the answer was made (the body's creation time), ISO. */
  readonly answeredAt: string
}

export const isAnswer = (line: BatchLine): boolean =>
  line.error === undefined && line.statusCode !== undefined && line.statusCode >= 200 && line.statusCode < 300

/** Unix seconds as ISO text; undefined when they are no date (not a number, or past Date's range). */
const isoOfSeconds = (seconds: unknown): string | undefined => {
  const date = new Date(typeof seconds === "number" ? seconds * 1000 : Number.NaN)
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString()
}

/** At most this many unreadable lines of a file are named (the rest are counted). */
const NAMED_PROBLEMS = 5

/**
 * Parses a downloaded output or error file; lines that are not JSON or have no custom_id are counted, and
 * the first few named (`line 3: not JSON (...)`, 1-based).
 */
export const parseBatchLines = (
  text: string,
  part: number,
  batchId: string,
  fallbackTime: string
): {
  readonly lines: ReadonlyArray<BatchLine>
  readonly unreadable: number
  readonly problems: ReadonlyArray<string>
  /** The custom_ids still legible in unreadable lines (a line cut short keeps its start). */
  readonly unreadableIds: ReadonlyArray<string>
} => {
  const lines: Array<BatchLine> = []
  const problems: Array<string> = []
  const unreadableIds: Array<string> = []
  let unreadable = 0
  const skip = (lineNo: number, reason: string, raw: string) => {
    if (unreadable++ < NAMED_PROBLEMS) problems.push(`line ${lineNo}: ${reason}`)
    const id = /"custom_id"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(raw)?.[1]
    if (id !== undefined) unreadableIds.push(id)
  }
  for (const [i, raw] of text.split("\n").entries()) {
    if (raw.trim() === "") continue
    let value: unknown
    try {
      value = JSON.parse(raw)
    } catch (e) {
      skip(i + 1, `not JSON (${e instanceof Error ? e.message : String(e)})`, raw)
      continue
    }
    if (!isObject<any>(value) || typeof value.custom_id !== "string") {
      skip(i + 1, "no custom_id", raw)
      continue
    }
    const response = isObject<any>(value.response) ? value.response : undefined
    const body = response?.body
    const created = isObject<any>(body) ? (body.created_at ?? body.created) : undefined
    const error = isObject<any>(value.error)
      ? {
        code: typeof value.error.code === "string" ? value.error.code : null,
        message: String(value.error.message ?? value.error.code ?? "error")
      }
      : undefined
    lines.push({
      customId: value.custom_id,
      part,
      batchId,
      statusCode: typeof response?.status_code === "number" ? response.status_code : undefined,
      body,
      error,
      requestId: typeof response?.request_id === "string" ? response.request_id : null,
      answeredAt: isoOfSeconds(created) ?? fallbackTime
    })
  }
  return { lines, unreadable, problems, unreadableIds }
}

/** The typed error of a line that is not an answer (what the same HTTP answer would be online). */
export const lineError = (line: BatchLine): LlmError => {
  if (line.error !== undefined) {
    return new Transient({ reason: `${line.error.code ?? "batch error"}: ${line.error.message}` })
  }
  const status = line.statusCode ?? 0
  const e = isObject<any>(line.body) && isObject<any>(line.body.error) ? line.body.error : {}
  const reason = typeof e.message === "string" && e.message !== "" ? e.message : `HTTP ${status}`
  const code = typeof e.code === "string" ? e.code : null
  const param = typeof e.param === "string" ? e.param : null
  if (status === 429) return new RateLimited({ reason, httpStatus: status, requestId: line.requestId })
  if (status === 401 || status === 403) return new Authentication({ reason, httpStatus: status })
  if (status === 404) return new NotFound({ reason, code })
  if (status === 408 || status === 409 || status >= 500) {
    return new Transient({ reason, httpStatus: status, requestId: line.requestId })
  }
  return new BadRequest({ reason, param, code, httpStatus: status })
}

/** The body a batch line carries for a request: exactly what the online backend sends (answer.ts). */
export { buildBody as requestBody } from "./answer.js"
export type { BodySettings } from "./answer.js"

/** The hash that ties an answer to the exact body submitted (sorted keys, sha256). */
export const bodyHash = (body: unknown): string => createHash("sha256").update(canonicalJson(body)).digest("hex")

/** `<run_id>:sample-000007-repair` → `<run_id>:sample-000007` (the first attempt's custom_id). */
export const sampleCustomId = (customId: string): string => /^(.*:sample-\d+)/.exec(customId)?.[1] ?? customId

/** Keys of first attempts (`sample-000007`), as opposed to repairs and retries (`-repair`, `-a2`). */
export const isFirstAttemptKey = (key: string): boolean => !/-a\d+(-repair)?$|-repair$/.test(key)

/**
 * What a failed line means for its request: `retry` (transient), `fail` (permanent for this request),
 * `lost` (the batch was cancelled, or expired without answering any line: only a resubmit sends it).
 */
export type LineFailure = "retry" | "fail" | "lost"

export type Lookup =
  | { readonly kind: "answer"; readonly line: BatchLine }
  | { readonly kind: "error"; readonly line: BatchLine }
  | { readonly kind: "mismatch" }
  | { readonly kind: "none" }

/** Collected lines by custom_id, with the hash of the body each part submitted for it. */
export class BatchAnswers {
  private readonly lines = new Map<string, Array<BatchLine>>()
  private readonly submitted = new Map<string, Map<number, string>>()
  /** Parts with at least one answered line. */
  private readonly answeredParts = new Set<number>()
  /** custom_ids of lines that could not be read (see `parseBatchLines`). */
  private readonly unreadableIds = new Set<string>()

  addUnreadable(customId: string): void {
    this.unreadableIds.add(customId)
  }

  /** Whether a line for this custom_id was in an output file but could not be read. */
  isUnreadable(customId: string): boolean {
    return this.unreadableIds.has(customId)
  }

  /** Whether this custom_id was submitted in some part (requests.jsonl, or a part's input file). */
  wasSubmitted(customId: string): boolean {
    return this.submitted.has(customId)
  }

  addSubmitted(customId: string, part: number, hash: string): void {
    let m = this.submitted.get(customId)
    if (m === undefined) this.submitted.set(customId, m = new Map())
    m.set(part, hash)
  }

  addLine(line: BatchLine): void {
    if (isAnswer(line)) this.answeredParts.add(line.part)
    const list = this.lines.get(line.customId)
    if (list === undefined) this.lines.set(line.customId, [line])
    else list.push(line)
  }

  /** Whether any line of the run was answered. */
  get anyAnswered(): boolean {
    return this.answeredParts.size > 0
  }

  submittedHashes(customId: string): ReadonlyMap<number, string> {
    return this.submitted.get(customId) ?? new Map()
  }

  /** custom_ids submitted in any of these parts. */
  customIdsInParts(parts: ReadonlySet<number>): Array<string> {
    const out: Array<string> = []
    for (const [id, m] of this.submitted) if ([...m.keys()].some((p) => parts.has(p))) out.push(id)
    return out
  }

  linesOf(customId: string): ReadonlyArray<BatchLine> {
    return this.lines.get(customId) ?? []
  }

  /** How a line that is not an answer is handled (see the module comment). */
  failureOf(line: BatchLine): LineFailure {
    const code = line.error?.code
    if (code === "batch_cancelled" || (code === "batch_expired" && !this.answeredParts.has(line.part))) return "lost"
    return isRetryable(lineError(line)) ? "retry" : "fail"
  }

  /** Lines that failed for this exact body (the batch tries of a request). */
  failures(customId: string, hash: string): number {
    const hashes = this.submitted.get(customId)
    return (this.lines.get(customId) ?? []).filter((l) => !isAnswer(l) && hashes?.get(l.part) === hash).length
  }

  /** The newest answer to this exact body; else its newest error line; else whether a stale body was answered. */
  lookup(customId: string, hash: string): Lookup {
    const hashes = this.submitted.get(customId)
    const lines = [...(this.lines.get(customId) ?? [])].sort((a, b) => b.part - a.part)
    const same = lines.filter((l) => hashes?.get(l.part) === hash)
    const answer = same.find(isAnswer)
    if (answer !== undefined) return { kind: "answer", line: answer }
    if (same.length > 0) return { kind: "error", line: same[0] }
    if (hashes !== undefined && [...hashes.values()].some((h) => h !== hash)) return { kind: "mismatch" }
    return { kind: "none" }
  }
}

/**
 * A FIFO gate of `n` permits: O(1) per take and release however many fibers wait. (Effect's semaphore
 * rescans every waiter on each release; with thousands of waiting fibers that cost minutes and GBs.)
 */
export const makeGate = (n: number) => {
  let free = n
  const queue: Array<() => void> = []
  const take = Effect.async<void>((resume) => {
    if (free > 0) {
      free--
      resume(Effect.void)
      return
    }
    const entry = () => resume(Effect.void)
    queue.push(entry)
    return Effect.sync(() => {
      const i = queue.indexOf(entry)
      if (i >= 0) queue.splice(i, 1)
    })
  })
  const release = Effect.sync(() => {
    const next = queue.shift()
    if (next === undefined) free++
    else next()
  })
  return <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.uninterruptibleMask((restore) => Effect.zipRight(restore(take), Effect.ensuring(restore(self), release)))
}

/** Batch answers decoded and archived at once. */
const LOCAL_CONCURRENCY = 64

export interface DeferredRequest {
  readonly customId: string
  readonly key: string
  readonly body: Record<string, unknown>
  /** Estimated input tokens (instructions, messages, schema), as the online pacer counts them. */
  readonly inputTokens: number
}

export interface BatchLlmOptions {
  readonly runId: string
  readonly endpoint: Backend
  readonly body: BodySettings
  readonly answers: BatchAnswers
  readonly repairs: "online" | "batch"
  /** The live layer for requests going online (undefined: they fail with MissingApiKey). */
  readonly online: LlmApi | undefined
  readonly onlineConcurrency: number
  /** Follow-up batch tries of a request whose lines failed transiently (`repairs: "batch"`). */
  readonly maxRetries: number
  /** Requests held for a follow-up batch (mutated). */
  readonly deferred: Map<string, DeferredRequest>
  readonly describe: string
  /**
   * `--max-cost`: why no request may go online or into a follow-up batch now (undefined: it may). Checked
   * before each one (online: once it holds its permit); batch answers, paid for as their batch ran, are
   * never held back by it. A request refused by it fails unanswered (NoRecordedAnswer with this reason):
   * its sample stops, kept for a later collect.
   */
  readonly budget?: Effect.Effect<string | undefined> | undefined
  /**
   * First attempts refused by `budget` (mutated): their samples spent nothing in this collect, so the
   * engine journals nothing for them; the collect counts them as ended.
   */
  readonly overBudget?: Set<string> | undefined
}

export const makeBatchLlm = (options: BatchLlmOptions): Effect.Effect<LlmApi> =>
  Effect.gen(function*() {
    const online = makeGate(Math.max(1, options.onlineConcurrency))
    // Answers read from the batch at once (each holds its request body until archived): bounds memory.
    const local = makeGate(LOCAL_CONCURRENCY)
    const warned = new Set<string>()

    /** The batch's answer to this request, or the body to send elsewhere. */
    const fromBatch = <A, I>(request: LlmRequest<A, I>) =>
      Effect.gen(function*() {
        const jsonSchema = yield* resolveJsonSchema(request)
        const body = buildBody(options.endpoint, options.body, request, jsonSchema)
        const key = request.key ?? "request"
        const customId = `${options.runId}:${key}`
        const found = options.answers.lookup(customId, bodyHash(body))

        const record = (
          line: BatchLine,
          status: AttemptRecord["status"],
          usage: Usage | undefined,
          error?: LlmError
        ) => {
          const model = isObject<any>(line.body) && typeof line.body.model === "string"
            ? line.body.model
            : options.body.model
          const r = {
            attempt: 1,
            backend: options.endpoint,
            model,
            request: body,
            status,
            httpStatus: line.statusCode,
            response: line.body ?? (line.error === undefined ? undefined : { error: line.error }),
            // The error's own fields: a replay from the archive (a later round, rebuild) fails the same way.
            ...(error === undefined ? {} : { error: error.message, errorDetail: errorDetailOf(error) }),
            usage,
            requestId: line.requestId,
            durationMs: 0,
            startedAt: line.answeredAt,
            batch_id: line.batchId,
            batch_part: line.part,
            custom_id: line.customId
          }
          return r as AttemptRecord
        }

        if (found.kind === "answer") {
          const line = found.line
          const result = interpret(options.endpoint, request.schema, line.body)
          const rec = result._tag === "Right"
            ? record(line, "ok", result.right.usage)
            : record(line, result.left._tag, "usage" in result.left ? result.left.usage : undefined, result.left)
          if (request.onAttempt !== undefined) yield* request.onAttempt(rec)
          return {
            _tag: "answered" as const,
            result: Either.map(result, (ok): LlmResult<A> => ({
              value: ok.value,
              text: ok.text,
              raw: line.body,
              usage: ok.usage,
              requestId: line.requestId,
              backend: options.endpoint,
              model: rec.model,
              durationMs: 0,
              attempts: 1,
              request: body
            }))
          }
        }
        const inputTokens = paceTokens(request, jsonSchema, 0)
        if (found.kind === "error") {
          const error = lineError(found.line)
          const failure = options.answers.failureOf(found.line)
          // A lost line (its batch cancelled, or expired answering nothing) was no attempt: nothing was asked
          // or paid, so it is not archived (its Transient would read "temporary failure"); as never answered.
          if (failure !== "lost") {
            if (request.onAttempt !== undefined) {
              yield* request.onAttempt(record(found.line, error._tag, undefined, error))
            }
            const tries = options.answers.failures(customId, bodyHash(body))
            return { _tag: "failed" as const, key, customId, body, inputTokens, error, failure, tries }
          }
        }
        if (found.kind === "mismatch" && !warned.has(customId)) {
          warned.add(customId)
          yield* Effect.logWarning(
            `${key}: the batch answered a different request body than the one asked now (inventory or settings changed since submit?); not using that answer`
          )
        }
        return { _tag: "unanswered" as const, key, customId, body, inputTokens }
      })

    /** A request the batches do not answer: online, or held for a follow-up batch. */
    const elsewhere = <A, I>(
      request: LlmRequest<A, I>,
      held: DeferredRequest,
      mode: "online" | "batch"
    ): Effect.Effect<LlmResult<A>, LlmError> => {
      const budget = options.budget
      const withinBudget: Effect.Effect<void, LlmError> = budget === undefined
        ? Effect.void
        : Effect.flatMap(budget, (reached) => {
          if (reached === undefined) return Effect.void
          if (isFirstAttemptKey(held.key)) options.overBudget?.add(held.customId)
          return Effect.fail(new NoRecordedAnswer({ key: held.key, reason: reached }))
        })
      if (mode === "batch") {
        return Effect.zipRight(
          withinBudget,
          Effect.suspend(() => {
            options.deferred.set(held.customId, held)
            return Effect.never
          })
        )
      }
      const live = options.online
      // Priced at the normal rate in the run's cost ledger (its records have no batch_id).
      return live === undefined
        ? Effect.fail(new MissingApiKey({}))
        : online(Effect.zipRight(withinBudget, live.complete(request)))
    }

    const complete = <A, I>(request: LlmRequest<A, I>): Effect.Effect<LlmResult<A>, LlmError> =>
      Effect.gen(function*() {
        const step = yield* local(fromBatch(request))
        if (step._tag === "answered") return yield* step.result
        const held: DeferredRequest = {
          customId: step.customId,
          key: step.key,
          body: step.body,
          inputTokens: step.inputTokens
        }
        if (step._tag === "failed") {
          if (step.failure === "fail") return yield* Effect.fail(step.error)
          // A transient failure: retried like any other retry (a follow-up batch at most maxRetries times).
          if (options.repairs === "batch" && step.tries > options.maxRetries) return yield* Effect.fail(step.error)
          return yield* elsewhere(request, held, options.repairs)
        }
        // Never answered: a first attempt is being resubmitted (as a batch); the rest follow `repairs`.
        return yield* elsewhere(request, held, isFirstAttemptKey(step.key) ? "batch" : options.repairs)
      })

    return { complete, describe: options.describe } satisfies LlmApi
  })
