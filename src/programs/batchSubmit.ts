/**
 * Submitting a batch run (`generate|enrich --backend batch`, and the follow-up batches of a collect):
 * request lines split into parts, each part uploaded as one file and turned into one batch, so that
 * nothing is ever paid twice.
 *
 * - Parts: at most `maxRequests` requests, `maxBytes` bytes and `maxTokens` tokens each (tokens as the
 *   per-model enqueued-token limit counts them, estimated like the online pacer: input with the output
 *   schema, plus `max_output_tokens`).
 * - Idempotent: every batch carries the run id and part in its metadata, every file the run id and part
 *   in its name. `batch.json` is written (atomically) before and after each remote step: the part with
 *   its input file before the upload, `upload_started_at` before the upload, the file id after it,
 *   `create_started_at` before the create, the batch after it. A part whose step was started and not
 *   recorded (a crash, a timeout after the API accepted it) looks the file / batch up on the account
 *   first and adopts it; an upload or a create is never retried before that lookup found nothing. A part
 *   `batch.json` no longer records (an older copy restored) is found again by its metadata the same way
 *   before its samples would be sent again as never sent (`adoptUnrecorded`, called by a collect).
 * - The queue: a part that would take this run's running batches over `maxTokens` waits for room, and
 *   one the API refuses for the enqueued-token limit (`token_limit_exceeded`) waits too, to be tried
 *   again once one of the run's batches ends (or after `QUEUE_RETRY_MS`); both say so on the progress
 *   line. A part larger than the limit the API names fails with how to resubmit it in smaller parts.
 * - `--max-cost`: a request is submitted only while its estimate at batch prices (`withinBudget`) fits
 *   beside what the run's ledger spent (the stages) and the requests taken before it; the rest are held
 *   back, never-sent samples that a collect sends as far as the budget then allows.
 */
import { Clock, Effect, Either, Option, Schedule, Schema } from "effect"
import { hostname } from "node:os"
import * as path from "node:path"
import type { BatchInfo, BatchPart, BatchRun, FileInfo } from "../domain/batch.js"
import {
  BATCH_MAX_BYTES,
  BATCH_MAX_REQUESTS,
  batchMetadata,
  BatchRun as BatchRunSchema,
  BatchStateError,
  endpointUrl,
  isQueueRefusal,
  isTerminal,
  queueLimitOf,
  uploadName
} from "../domain/batch.js"
import type { Inventory as Catalogue } from "../domain/inventory.js"
import type { LlmError } from "../domain/llm.js"
import { isRetryable } from "../domain/llm.js"
import { costOf, expectedOutputOf } from "../domain/pricing.js"
import { IncompleteRun, LedgerEntry, RunLocked, SettingsError } from "../domain/run.js"
import { ModelTask } from "../domain/task.js"
import { shellWord } from "../domain/words.js"
import { BatchClient } from "../services/Batch.js"
import type { BatchClientApi } from "../services/Batch.js"
import { makeCostLedger } from "../services/CostLedger.js"
import { readLogEntries } from "../services/durableLog.js"
import { Inventory } from "../services/Inventory.js"
import type { InventoryApi } from "../services/Inventory.js"
import { readJsonFileOrIssue } from "../services/jsonFile.js"
import type { LlmRequest } from "../services/Llm.js"
import type { BodySettings } from "../services/llm/batchReplay.js"
import { bodyHash, requestBody } from "../services/llm/batchReplay.js"
import { paceTokens } from "../services/llm/engine.js"
import { logRetry, retrySchedule } from "../services/llm/retry.js"
import { runPaths } from "../services/RunJournal.js"
import { Storage } from "../services/Storage.js"
import { toJsonText } from "../skyrl/layout.js"
import type { Issue } from "../skyrl/parseIssues.js"
import { fileIssueText } from "../skyrl/parseIssues.js"
import type { Job, SamplingOptions } from "./sampling.js"
import { sampleKey, TASK_SCHEMA_NAME } from "./sampling.js"

export const BATCH_FILE = "batch.json"
export const REQUESTS_FILE = "requests.jsonl"

/** A part refused for the queue limit is tried again when one of the run's batches ends, or after this. */
export const QUEUE_RETRY_MS = 10 * 60_000

/** Pages of the account's recent batches / files (100 each) looked through for a lost one. */
const LOOKUP_PAGES = 20

export interface BatchLimits {
  readonly maxRequests: number
  readonly maxBytes: number
  /** Estimated enqueued tokens per part (`--batch-max-tokens`; Infinity: no limit). */
  readonly maxTokens: number
}

export const defaultLimits: BatchLimits = {
  maxRequests: BATCH_MAX_REQUESTS,
  maxBytes: BATCH_MAX_BYTES,
  maxTokens: Number.POSITIVE_INFINITY
}

/** One request line of a batch input file. */
export interface RequestLine {
  readonly custom_id: string
  readonly method: "POST"
  readonly url: "/v1/responses" | "/v1/chat/completions"
  readonly body: Record<string, unknown>
}

/** A request line with its token estimate: input (instructions, messages, schema) and the whole count. */
export interface PreparedLine {
  readonly line: RequestLine
  readonly inputTokens: number
  /** What the enqueued-token limit counts: the input plus `max_output_tokens`. */
  readonly tokens: number
}

export interface LineSize {
  readonly bytes: number
  readonly tokens: number
}

/**
 * Groups items into chunks within the limits, lazily: only the chunk being filled is held (a
 * 50,000-request run never has all its request texts in memory at once). An item over `maxTokens` on its
 * own (an estimate, against the user's notion of the account's queue) is a chunk of its own: its batch
 * waits until none of the run's others runs, and the API says whether it fits. An item over `maxBytes`
 * cannot be uploaded at all: that throws.
 */
export function* chunkLines<T>(
  items: Iterable<T>,
  size: (item: T) => LineSize,
  limits: BatchLimits
): Generator<Array<T>, void, undefined> {
  let current: Array<T> = []
  let bytes = 0
  let tokens = 0
  for (const item of items) {
    const n = size(item)
    if (n.bytes > limits.maxBytes) {
      throw new Error(
        `one request line is ${n.bytes} bytes, more than the ${limits.maxBytes}-byte limit of a batch file`
      )
    }
    if (n.tokens > limits.maxTokens) {
      if (current.length > 0) yield current
      yield [item]
      current = []
      bytes = 0
      tokens = 0
      continue
    }
    const full = current.length >= limits.maxRequests || bytes + n.bytes > limits.maxBytes ||
      tokens + n.tokens > limits.maxTokens
    if (current.length > 0 && full) {
      yield current
      current = []
      bytes = 0
      tokens = 0
    }
    current.push(item)
    bytes += n.bytes
    tokens += n.tokens
  }
  if (current.length > 0) yield current
}

/** Splits JSON lines into chunks within the request and byte limits (a line's size counts its newline). */
export const splitLines = (
  lines: ReadonlyArray<string>,
  limits: Pick<BatchLimits, "maxRequests" | "maxBytes">
): Array<Array<string>> => [
  ...chunkLines(lines, (l) => ({ bytes: Buffer.byteLength(l, "utf8") + 1, tokens: 0 }), {
    ...limits,
    maxTokens: Number.POSITIVE_INFINITY
  })
]

const lineText = (p: PreparedLine): string => JSON.stringify(p.line)

/** The size of a prepared line in a part. */
const sizeOf = (text: string, p: PreparedLine): LineSize => ({
  bytes: Buffer.byteLength(text, "utf8") + 1,
  tokens: p.tokens
})

/** What a part would hold (the dry run): requests, bytes, estimated tokens. */
export interface PartPlan {
  readonly requests: number
  readonly bytes: number
  readonly inputTokens: number
  readonly tokens: number
}

/** The parts a set of request lines makes, without writing or sending anything (`--dry-run`). */
export const planParts = (lines: Iterable<PreparedLine>, limits: BatchLimits): Array<PartPlan> => {
  const sized = (function*() {
    for (const p of lines) yield { p, size: sizeOf(lineText(p), p) }
  })()
  return [...chunkLines(sized, (s) => s.size, limits)].map((chunk) => ({
    requests: chunk.length,
    bytes: chunk.reduce((n, s) => n + s.size.bytes, 0),
    inputTokens: chunk.reduce((n, s) => n + s.p.inputTokens, 0),
    tokens: chunk.reduce((n, s) => n + s.p.tokens, 0)
  }))
}

/** One request as a batch line: the body the online backend would send, and its token estimate. */
export const prepareLine = <A, I>(
  endpoint: BatchRun["endpoint"],
  settings: BodySettings,
  customId: string,
  request: LlmRequest<A, I>,
  jsonSchema: object
): PreparedLine => {
  const inputTokens = paceTokens(request, jsonSchema, 0)
  return {
    line: {
      custom_id: customId,
      method: "POST",
      url: endpointUrl(endpoint),
      body: requestBody(endpoint, settings, request, jsonSchema)
    },
    inputTokens,
    tokens: inputTokens + settings.maxOutputTokens
  }
}

/**
 * `--max-cost` of a submission (the first one, or a collect's follow-up batch): what the run has committed
 * already, and how a request is estimated. A request is submitted only when its estimate fits beside what
 * is committed and the requests taken before it; from the first that does not, the rest are held back.
 */
export interface SubmitBudget {
  readonly maxCostUsd: number
  /** The run's ledger total, plus the estimate of its batches still running. */
  readonly committedUsd: number
  /** What `committedUsd` is, for the messages: `$0.0009 spent`. */
  readonly committedText: string
  readonly model: string
  /** Output tokens expected per request (`expectedOutputOf` the run's reasoning effort, as `--dry-run`). */
  readonly outputTokens: number
}

/** A request's estimated cost at batch prices: its input estimate and the expected output (undefined: no price). */
export const requestEstimateUsd = (model: string, inputTokens: number, outputTokens: number): number | undefined =>
  costOf(model, { input: inputTokens, cached: 0, output: outputTokens, reasoning: 0 }, { batch: true })

/** What `withinBudget` took and held back (filled as its lines are read). */
export interface BudgetTally {
  taken: number
  held: number
  estimateUsd: number
  /** The estimate of the first request held back. */
  firstHeldUsd: number
}

/**
 * The lines a budget lets through, in order: each while its estimate fits (`SubmitBudget`); every line
 * without a budget or a price (as online, an unpriced model has no --max-cost check).
 */
export const withinBudget = (
  lines: Iterable<PreparedLine>,
  budget: SubmitBudget | undefined
): { readonly lines: Iterable<PreparedLine>; readonly tally: BudgetTally } => {
  const tally: BudgetTally = { taken: 0, held: 0, estimateUsd: 0, firstHeldUsd: 0 }
  const gen = function*() {
    for (const p of lines) {
      const e = budget === undefined ? undefined : requestEstimateUsd(budget.model, p.inputTokens, budget.outputTokens)
      if (budget !== undefined && e !== undefined) {
        if (tally.held > 0 || budget.committedUsd + tally.estimateUsd + e > budget.maxCostUsd) {
          if (tally.held === 0) tally.firstHeldUsd = e
          tally.held++
          continue
        }
        tally.estimateUsd += e
      }
      tally.taken++
      yield p
    }
  }
  return { lines: gen(), tally }
}

/**
 * Why requests were held back: `--max-cost $0.0074: 4 of the 6 samples held back ($0.0009 spent, ~$0.0053
 * estimated ...)`, or, none submitted, that the budget is reached or leaves less than one request's estimate.
 */
export const heldBackText = (budget: SubmitBudget, tally: BudgetTally, what: string): string => {
  const each = `${budget.outputTokens} output tokens each, as --dry-run estimates them`
  if (tally.taken > 0) {
    return `--max-cost $${budget.maxCostUsd}: ${tally.held} of the ${tally.held + tally.taken} ${what} held back ` +
      `(${budget.committedText}, ~$${tally.estimateUsd.toFixed(4)} estimated at batch prices for the ${tally.taken} ` +
      `submitted, ${each})`
  }
  return budget.committedUsd >= budget.maxCostUsd
    ? `--max-cost $${budget.maxCostUsd} reached (${budget.committedText})`
    : `--max-cost $${budget.maxCostUsd} leaves less than one more request's estimate at batch prices ` +
      `(${budget.committedText}; ~$${tally.firstHeldUsd.toFixed(4)} for the next, ${each})`
}

/** The cost the run's ledger holds (`ledger.jsonl`, counted as the collect counts it; undefined: a call unpriced). */
export const ledgerSpentUsd = (ledgerFile: string, model: string) =>
  Effect.gen(function*() {
    const entries: Array<LedgerEntry> = []
    yield* readLogEntries(ledgerFile, LedgerEntry, (e) => void entries.push(e))
    const ledger = yield* makeCostLedger(model, entries, () => Effect.succeed(Effect.void))
    return (yield* ledger.totals).costUsd
  })

/**
 * The estimate of the run's parts not ended: batches still running, and parts recorded but not created yet (waiting
 * for room in the queue: they will be sent); their input and the expected output.
 */
export const runningEstimateUsd = (run: BatchRun, outputTokens: number): number =>
  run.parts.filter((p) => !isTerminal(p.status)).reduce((n, p) => {
    const input = Math.max(0, p.tokens - p.requests * run.llm.maxOutputTokens)
    return n + (requestEstimateUsd(run.llm.model, input, p.requests * outputTokens) ?? 0)
  }, 0)

const stateError = (file: string) => (reason: string) => new BatchStateError({ path: file, reason })

export const nowIso = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

/**
 * A batch run's batch.json, or a part of it a command reads (its `options`), that does not decode: bad input
 * (exit 2), named in one line as a bad manifest.json is (`FILE, FIELD: REASON`), never Effect's decode tree.
 */
export const unreadableBatchRun = (file: string, issue: Issue, what = "not a readable batch run") =>
  new SettingsError({
    setting: "RUN_DIR",
    reason: `${fileIssueText({ file, issue })}: ${what} (batch status and collect read the run's parts and ` +
      "options from it); mend the file"
  })

/** Reads and checks `batch.json` of a run directory. */
export const readRun = (runDir: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const file = path.join(runDir, BATCH_FILE)
    if (!(yield* storage.exists(file))) {
      return yield* new SettingsError({
        setting: "RUN_DIR",
        reason: `${file}: no such file: not the run directory of a \`--backend batch\` run (expected raw_llm/<run_id>/)`
      })
    }
    const run = yield* readJsonFileOrIssue(file, BatchRunSchema)
    return Either.isRight(run) ? run.right : yield* unreadableBatchRun(file, run.left)
  })

/** Writes `batch.json` atomically (temp file, fsync, rename, directory fsync): the old state or the new. */
export const writeRun = (runDir: string, run: BatchRun) =>
  Effect.flatMap(Storage, (storage) =>
    storage.writeFileAtomic(
      path.join(runDir, BATCH_FILE),
      toJsonText(Schema.encodeSync(BatchRunSchema)(run), { indent: 2 }) + "\n"
    ))

/**
 * Runs `work` holding the run directory's lock, the one a collect holds through its journal: one process
 * at a time submits a run's parts or records its batches (two, each from its own copy of batch.json,
 * could each create a batch for the same part). Fails with `LockHeld` when a live process holds it.
 */
export const withRunLock = <A, E, R>(runDir: string, command: string, work: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Storage, (storage) => {
    const lock = runPaths(path.dirname(runDir), path.basename(runDir)).lock
    return Effect.acquireUseRelease(
      Effect.flatMap(
        nowIso,
        (since) => storage.acquireLock(lock, { pid: process.pid, host: hostname(), command, since })
      ),
      () => work,
      () => storage.releaseLock(lock)
    )
  })

export const bodySettingsOf = (run: BatchRun): BodySettings => ({
  model: run.llm.model,
  reasoningEffort: run.llm.reasoningEffort,
  maxOutputTokens: run.llm.maxOutputTokens
})

/**
 * The first attempt of a sample as a batch line, exactly as the sampling engine asks it: the schema of
 * the job's own inventory when the command gives jobs one (enrich), else the run's.
 */
export const firstRequest = <J extends Job>(
  run: BatchRun,
  sampling: SamplingOptions<J>,
  inventory: InventoryApi,
  job: J
): PreparedLine => {
  const own = sampling.jobInventory?.(job)
  const jsonSchema = (own ?? inventory).outputJsonSchema({ maxSteps: sampling.maxTools })
  return prepareLine(run.endpoint, bodySettingsOf(run), `${sampling.runId}:${sampleKey(job.index, 1, "task")}`, {
    name: TASK_SCHEMA_NAME,
    instructions: sampling.instructions,
    input: [{ role: "user", content: sampling.requestText(job, 1) }],
    schema: ModelTask,
    jsonSchema
  }, jsonSchema)
}

export const partName = (part: number, kind: "input" | "output" | "errors") =>
  `batch_${String(part).padStart(3, "0")}_${kind}.jsonl`

/** `2.15M`, `340k`, `60`. */
const tokenCount = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}k` : String(Math.round(n))

/** Tokens of the run's batches that are in the queue now (created, not ended), other than `except`. */
const enqueuedTokens = (run: BatchRun, except: number): number =>
  run.parts.filter((p) => p.part !== except && p.batch_id !== null && !isTerminal(p.status))
    .reduce((n, p) => n + p.tokens, 0)

/**
 * Why a part must wait before its batch is created (undefined: it may go now): no room under
 * `--batch-max-tokens` beside the run's running batches, or a refusal by the API that no ended batch
 * and no `QUEUE_RETRY_MS` have answered yet.
 */
export const queueWait = (run: BatchRun, part: BatchPart, nowMs: number): BatchPart["waiting"] => {
  const own = enqueuedTokens(run, part.part)
  if (run.max_tokens !== null && own > 0 && own + part.tokens > run.max_tokens) {
    return {
      since: part.waiting?.since ?? new Date(nowMs).toISOString(),
      reason: `this run's running batches hold ~${tokenCount(own)} of the ${
        tokenCount(run.max_tokens)
      } enqueued tokens --batch-max-tokens allows`
    }
  }
  const refused = part.waiting !== null && part.refused.length > 0 ? part.waiting : null
  if (refused === null) return null
  const since = refused.since
  const ended = run.parts.some((p) => p.part !== part.part && isTerminal(p.status) && p.updated_at > since)
  return ended || nowMs - Date.parse(since) >= QUEUE_RETRY_MS ? null : refused
}

/** A remote step that makes something: one attempt; when it fails, a lookup; only then (retryable) again. */
const remoteStep = <A>(
  client: BatchClientApi,
  what: string,
  attempt: Effect.Effect<A, LlmError>,
  lookup: Effect.Effect<Option.Option<A>, LlmError>
): Effect.Effect<A, LlmError> => {
  type Failed = { readonly error: LlmError; readonly retry: boolean }
  const once: Effect.Effect<A, Failed> = attempt.pipe(
    Effect.catchAll((error) =>
      lookup.pipe(
        // The lookup failed too: whether the first attempt was done is unknown, so nothing is retried.
        Effect.mapError((e): Failed => ({ error: e, retry: false })),
        Effect.flatMap(Option.match({
          onNone: () => Effect.fail<Failed>({ error, retry: isRetryable(error) && !isQueueRefusal(error.message) }),
          onSome: Effect.succeed
        }))
      )
    )
  )
  const schedule = retrySchedule(client.retryPolicy, logRetry(what, client.retryPolicy.maxRetries)).pipe(
    Schedule.mapInput((f: Failed) => f.error)
  )
  return once.pipe(
    Effect.retry({ schedule, while: (f: Failed) => f.retry }),
    Effect.mapError((f) => f.error)
  )
}

/** Unix seconds from which a listing is looked through: an hour before the step started (clock skew). */
const cutoffOf = (startedAt: string | null): number => startedAt === null ? 0 : Date.parse(startedAt) / 1000 - 3600

/**
 * Looks through the account's recent items, newest first, at most `LOOKUP_PAGES` pages and none older than
 * `cutoff`; `visit` is told each item and returns true to stop there.
 */
const scanRecent = <A extends { readonly createdAt: number | null }>(
  list: (after: string | undefined) => Effect.Effect<{ items: ReadonlyArray<A>; after: string | undefined }, LlmError>,
  visit: (a: A) => boolean,
  cutoff: number
): Effect.Effect<void, LlmError> =>
  Effect.gen(function*() {
    let after: string | undefined
    for (let page = 0; page < LOOKUP_PAGES; page++) {
      const { after: next, items } = yield* list(after)
      if (items.some(visit)) return
      const oldest = items.at(-1)?.createdAt ?? null
      if (next === undefined || (oldest !== null && oldest < cutoff)) return
      after = next
    }
  })

/** Looks through the account's recent items, newest first, for one that matches. */
const findRecent = <A extends { readonly createdAt: number | null }>(
  list: (after: string | undefined) => Effect.Effect<{ items: ReadonlyArray<A>; after: string | undefined }, LlmError>,
  matches: (a: A) => boolean,
  cutoff: number
): Effect.Effect<Option.Option<A>, LlmError> =>
  Effect.suspend(() => {
    let found: Option.Option<A> = Option.none()
    const visit = (a: A) => {
      if (matches(a)) found = Option.some(a)
      return Option.isSome(found)
    }
    return Effect.map(scanRecent(list, visit, cutoff), () => found)
  })

const findFile = (client: BatchClientApi, run: BatchRun, part: BatchPart, cutoff: number) =>
  findRecent<FileInfo>(
    client.listFiles,
    (f) => f.filename === uploadName(run.run_id, part.input) && f.bytes === part.bytes,
    cutoff
  )

/**
 * Whether a batch on the account is this part's: its metadata names the run and the part, the API did not
 * refuse it for the queue (`refused`), and it holds the part's requests (once the API counts them: 0 while
 * it validates).
 */
const isBatchOf = (run: BatchRun, part: Pick<BatchPart, "part" | "requests" | "refused">) => (b: BatchInfo) =>
  b.metadata.skyrl_run_id === run.run_id && b.metadata.skyrl_part === String(part.part) &&
  !part.refused.includes(b.id) && !(b.requestCounts !== null && b.requestCounts.total > 0 &&
    b.requestCounts.total !== part.requests)

const findBatch = (client: BatchClientApi, run: BatchRun, part: BatchPart, cutoff: number) =>
  findRecent<BatchInfo>(client.listBatches, isBatchOf(run, part), cutoff)

/** The state of a run being submitted: the latest `batch.json`, written on every change of a part. */
const partWriter = (runDir: string, start: BatchRun) => {
  let run = start
  return {
    run: () => run,
    part: (n: number): BatchPart => run.parts.find((p) => p.part === n)!,
    update: (n: number, patch: Partial<BatchPart>) =>
      Effect.gen(function*() {
        const updated_at = yield* nowIso
        run = { ...run, parts: run.parts.map((p) => (p.part === n ? { ...p, ...patch, updated_at } : p)) }
        yield* writeRun(runDir, run)
      })
  }
}

type PartWriter = ReturnType<typeof partWriter>

/** The part's input file on the account: recorded, found again, or uploaded now. */
const ensureUploaded = (runDir: string, w: PartWriter, n: number) =>
  Effect.gen(function*() {
    const client = yield* BatchClient
    const storage = yield* Storage
    const part = w.part(n)
    if (part.input_file_id !== null) return part.input_file_id
    const lookup = Effect.suspend(() => findFile(client, w.run(), w.part(n), cutoffOf(w.part(n).upload_started_at)))
    if (part.upload_started_at !== null) {
      const found = yield* lookup
      if (Option.isSome(found)) {
        yield* Effect.logInfo(`part ${n}: its input file ${found.value.id} was uploaded before; not uploading again`)
        yield* w.update(n, { input_file_id: found.value.id })
        return found.value.id
      }
    }
    const content = yield* storage.readText(path.join(runDir, part.input))
    yield* w.update(n, { upload_started_at: yield* nowIso })
    const file = yield* remoteStep(
      client,
      `upload of part ${n}`,
      client.uploadFile(uploadName(w.run().run_id, part.input), content).pipe(Effect.map((f) => f.id)),
      Effect.map(lookup, Option.map((f) => f.id))
    )
    yield* w.update(n, { input_file_id: file })
    return file
  })

/**
 * A part's record of its batch (created now, or found again). Its output / error file ids too: a batch found
 * again may have ended already, and `refreshRun` asks the API only about the batches not ended.
 */
const batchPatch = (info: BatchInfo): Partial<BatchPart> => ({
  batch_id: info.id,
  status: info.status,
  request_counts: info.requestCounts,
  output_file_id: info.outputFileId,
  error_file_id: info.errorFileId,
  errors: info.errors,
  waiting: null
})

/** The progress line of a part waiting for the queue. */
export const waitingLine = (run: BatchRun, part: BatchPart): string =>
  `part ${part.part} (~${
    tokenCount(part.tokens)
  } tokens) waits for room in the enqueued-token queue of ${run.llm.model}: ${
    part.waiting?.reason ?? "no room"
  }; it is submitted when one of this run's batches ends${
    part.refused.length > 0 ? ` or in ${QUEUE_RETRY_MS / 60_000} minutes` : ""
  }`

/** Records that the part waits for the queue (logged when the wait starts or its reason changes). */
const markWaiting = (w: PartWriter, n: number, waiting: NonNullable<BatchPart["waiting"]>) =>
  Effect.gen(function*() {
    if (w.part(n).waiting?.reason === waiting.reason) return
    yield* w.update(n, { waiting })
    yield* Effect.logWarning(waitingLine(w.run(), w.part(n)))
  })

/** The part's batch: recorded, found again, or created now. False when the part waits for the queue. */
const ensureCreated = (w: PartWriter, n: number, fileId: string) =>
  Effect.gen(function*() {
    const client = yield* BatchClient
    const run = w.run()
    const part = w.part(n)
    if (part.batch_id !== null) return true
    const waiting = queueWait(run, part, yield* Clock.currentTimeMillis)
    if (waiting !== null) {
      yield* markWaiting(w, n, waiting)
      return false
    }
    const lookup = Effect.suspend(() => findBatch(client, w.run(), w.part(n), cutoffOf(w.part(n).create_started_at)))
    if (part.create_started_at !== null) {
      const found = yield* lookup
      if (Option.isSome(found)) {
        yield* Effect.logInfo(
          `part ${n}: batch ${found.value.id} was created before (its metadata names this run and part); adopting it, not creating another`
        )
        yield* w.update(n, batchPatch(found.value))
        return true
      }
    }
    yield* w.update(n, { create_started_at: yield* nowIso })
    const created = yield* remoteStep(
      client,
      `creation of the batch of part ${n}`,
      client.createBatch({
        inputFileId: fileId,
        endpoint: endpointUrl(run.endpoint),
        metadata: batchMetadata(run.run_id, n, part.purpose)
      }),
      lookup
    ).pipe(Effect.either)
    if (created._tag === "Left") {
      if (!isQueueRefusal(created.left.message)) return yield* Effect.fail(created.left)
      yield* w.update(n, { create_started_at: null })
      yield* markWaiting(w, n, { since: yield* nowIso, reason: created.left.message })
      return false
    }
    yield* w.update(n, batchPatch(created.right))
    yield* Effect.logInfo(
      `submitted part ${n}: batch ${created.right.id} with ${part.requests} requests (${
        (part.bytes / 1e6).toFixed(1)
      } MB, ~${tokenCount(part.tokens)} tokens)`
    )
    return true
  })

/**
 * Uploads and creates the batch of every part that does not have one yet (after a crash too), in part
 * order; a part waiting for the queue holds back the parts after it.
 */
export const finishSubmission = (runDir: string, start: BatchRun) =>
  Effect.gen(function*() {
    const w = partWriter(runDir, start)
    for (const { part: n } of start.parts) {
      const part = w.part(n)
      if (part.batch_id !== null || isTerminal(part.status)) continue
      const fileId = yield* ensureUploaded(runDir, w, n)
      if (!(yield* ensureCreated(w, n, fileId))) break
    }
    return w.run()
  })

/** What the run directory says of a part `batch.json` does not record: the requests its input held. */
export interface UnrecordedPart {
  readonly part: number
  readonly requests: number
  /** Of its input file (0: the file is gone, its requests known from requests.jsonl only). */
  readonly bytes: number
}

/**
 * Finds again on the account the batches of parts `batch.json` does not record (an older copy restored, a
 * hand edit) and records them, so that their samples are collected from them rather than sent and paid for
 * again: one look through the account's batches since the run was made (as the lookup after a failed
 * create: metadata naming the run and the part, `isBatchOf`), adopting for each such part its newest batch
 * that holds as many requests as `known` says the part held. A batch of the run whose part neither
 * `known` names nor matches stops the collect before anything is sent, naming it.
 */
export const adoptUnrecorded = (runDir: string, start: BatchRun, known: ReadonlyArray<UnrecordedPart>) =>
  Effect.gen(function*() {
    const client = yield* BatchClient
    const recorded = new Set(start.parts.map((p) => p.part))
    const found = new Map<number, BatchInfo>()
    const strangers: Array<string> = []
    const partOf = (b: BatchInfo) => Number(b.metadata.skyrl_part)
    yield* scanRecent(client.listBatches, (b) => {
      const n = partOf(b)
      if (b.metadata.skyrl_run_id !== start.run_id || recorded.has(n) || found.has(n)) return false
      // A batch refused for the queue ran nothing: the part's later batch (if any) is the one that counts.
      if (b.status === "failed" && b.errors.some(isQueueRefusal)) return false
      const part = known.find((k) => k.part === n)
      if (part !== undefined && isBatchOf(start, { ...part, refused: [] })(b)) found.set(n, b)
      else strangers.push(`${b.id} (part ${b.metadata.skyrl_part}, ${b.requestCounts?.total ?? 0} requests)`)
      return false
    }, cutoffOf(start.created_at))
    let run = start
    if (found.size > 0) {
      const now = yield* nowIso
      const adopted = [...found.entries()].map(([n, info]): BatchPart => {
        const { bytes, requests } = known.find((k) => k.part === n)!
        return {
          ...newPart({
            part: n,
            purpose: info.metadata.skyrl_purpose === "initial" ? "initial" : "follow-up",
            input: partName(n, "input"),
            requests,
            bytes,
            // An estimate for the queue rule only (the batch is created): the input by its size, and the output.
            tokens: Math.ceil(bytes / 4) + requests * start.llm.maxOutputTokens
          }, now),
          ...batchPatch(info),
          input_file_id: info.inputFileId
        }
      })
      run = { ...start, parts: [...start.parts, ...adopted].sort((a, b) => a.part - b.part) }
      yield* writeRun(runDir, run)
      for (const p of adopted) {
        yield* Effect.logWarning(
          `part ${p.part}: batch ${p.batch_id} (${p.status}, ${p.requests} requests) was created before (its ` +
            "metadata names this run and part) but batch.json did not record it; adopting it, not sending its " +
            "requests again"
        )
      }
    }
    if (strangers.length > 0) {
      return yield* stateError(path.join(runDir, BATCH_FILE))(
        `does not record batch${strangers.length === 1 ? "" : "es"} ${strangers.join(", ")} of this run, which ` +
          `the account holds, and whose requests neither ${REQUESTS_FILE} nor the part's input file accounts ` +
          "for: sending the samples no recorded part holds could pay for them twice, so none is sent; " +
          "restore batch.json (or the part's input file), then collect again"
      )
    }
    return run
  })

/**
 * A batch the API refused for the enqueued-token limit: the part waits to be created again, or, larger
 * than the limit the API names, stays failed with how to resubmit it in smaller parts.
 */
export const onQueueRefusal = (part: BatchPart, info: BatchInfo, now: string): BatchPart | undefined => {
  const reason = info.errors.find(isQueueRefusal)
  if (info.status !== "failed" || reason === undefined) return undefined
  const limit = queueLimitOf(reason)
  if (limit !== undefined && part.tokens > limit) {
    return {
      ...part,
      status: "failed",
      errors: [
        ...info.errors,
        part.requests === 1
          // (Sent again in a batch of its own, it would be refused again.)
          ? `part ${part.part} is one request of ~${part.tokens} tokens, more than the limit of ${limit}: no ` +
            "batch can hold it, so its sample stays without an answer (a smaller --max-output-tokens makes a " +
            "smaller request, in a new run)"
          : `part ${part.part} alone counts ~${part.tokens} tokens, more than the limit of ${limit}: ` +
            `collect with --resubmit --batch-max-tokens ${limit} to send its samples again in smaller batches`
      ],
      updated_at: now
    }
  }
  return {
    ...part,
    batch_id: null,
    status: null,
    request_counts: null,
    errors: [],
    create_started_at: null,
    refused: [...part.refused, info.id],
    waiting: { since: now, reason },
    updated_at: now
  }
}

/** The warning about a part that is one request over `--batch-max-tokens` on its own. */
export const oversizeLine = (part: Pick<BatchPart, "part" | "tokens">, maxTokens: number): string =>
  `part ${part.part} is one request of ~${
    tokenCount(part.tokens)
  } tokens, more than --batch-max-tokens ${maxTokens}: sent alone, once none of this run's other batches runs`

/** A part whose input file is written and nothing is done remotely yet. */
export const newPart = (
  fields: Pick<BatchPart, "part" | "purpose" | "input" | "requests" | "bytes" | "tokens">,
  now: string
): BatchPart => ({
  ...fields,
  submitted_at: now,
  input_file_id: null,
  batch_id: null,
  status: null,
  request_counts: null,
  output_file_id: null,
  error_file_id: null,
  errors: [],
  output: null,
  error_output: null,
  upload_started_at: null,
  create_started_at: null,
  refused: [],
  waiting: null,
  updated_at: now
})

/** Writes the input files of new parts (one chunk in memory at a time), records them, and submits them. */
export const submitParts = (
  runDir: string,
  start: BatchRun,
  lines: Iterable<PreparedLine>,
  purpose: BatchPart["purpose"],
  limits: BatchLimits
) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const entries = (function*() {
      for (const p of lines) {
        const text = lineText(p)
        yield { id: p.line.custom_id, text, hash: bodyHash(p.line.body), size: sizeOf(text, p) }
      }
    })()
    const chunks = chunkLines(entries, (e) => e.size, limits)
    let run = start
    for (;;) {
      const next = yield* Effect.try({
        try: () => chunks.next(),
        catch: (e) => stateError(path.join(runDir, BATCH_FILE))((e as Error).message)
      })
      if (next.done === true) break
      const chunk = next.value
      const part = run.parts.reduce((n, p) => Math.max(n, p.part), 0) + 1
      const input = partName(part, "input")
      const content = chunk.map((e) => e.text).join("\n") + "\n"
      yield* storage.writeFileAtomic(path.join(runDir, input), content)
      yield* storage.appendDurable(
        path.join(runDir, REQUESTS_FILE),
        chunk.map((e) => JSON.stringify({ custom_id: e.id, part, sha256: e.hash }) + "\n").join("")
      )
      const recorded = newPart({
        part,
        purpose,
        input,
        requests: chunk.length,
        bytes: Buffer.byteLength(content, "utf8"),
        tokens: chunk.reduce((n, e) => n + e.size.tokens, 0)
      }, yield* nowIso)
      run = { ...run, parts: [...run.parts, recorded] }
      yield* writeRun(runDir, run)
      if (recorded.tokens > limits.maxTokens) yield* Effect.logWarning(oversizeLine(recorded, limits.maxTokens))
    }
    return yield* finishSubmission(runDir, run)
  })

/** `--backend batch`: builds one request line per sample and submits them. Returns the run state. */
export const submitRun = <J extends Job>(
  initial: BatchRun,
  makeSampling: (catalogue: Catalogue) => SamplingOptions<J>,
  limits: BatchLimits = defaultLimits,
  /** Told the run directory once its batch.json is written, before anything is sent (the CLI prints it). */
  onRecorded: (runDir: string) => Effect.Effect<void> = () => Effect.void
) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const inventory = yield* Inventory
    const sampling = makeSampling(yield* inventory.get)
    const { runDir } = runPaths(sampling.rawDir, sampling.runId)
    yield* storage.makeDirectory(runDir)
    return yield* withRunLock(
      runDir,
      `${sampling.command} --backend batch`,
      submitNew(initial, sampling, inventory, limits, onRecorded)
    )
      .pipe(Effect.catchTag("LockHeld", (e) => new RunLocked({ runDir, holder: e.holder })))
  })

const submitNew = <J extends Job>(
  initial: BatchRun,
  sampling: SamplingOptions<J>,
  inventory: InventoryApi,
  limits: BatchLimits,
  onRecorded: (runDir: string) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const { ledger, runDir } = runPaths(sampling.rawDir, sampling.runId)
    if (yield* (yield* Storage).exists(path.join(runDir, BATCH_FILE))) {
      return yield* stateError(path.join(runDir, BATCH_FILE))("this run was already submitted")
    }
    // Built lazily, part by part: a request body holds the whole shared prefix (instructions, schema).
    const all = (function*(): Generator<PreparedLine> {
      for (const job of sampling.jobs) yield firstRequest(initial, sampling, inventory, job)
    })()
    // --max-cost: what the stages spent (the run's ledger), and each request's estimate at batch prices.
    const spent = sampling.maxCostUsd === undefined ? undefined : yield* ledgerSpentUsd(ledger, initial.llm.model)
    const budget: SubmitBudget | undefined = sampling.maxCostUsd === undefined || spent === undefined
      ? undefined
      : {
        maxCostUsd: sampling.maxCostUsd,
        committedUsd: spent,
        committedText: `$${spent.toFixed(4)} spent`,
        model: initial.llm.model,
        outputTokens: expectedOutputOf(initial.llm.reasoningEffort)
      }
    const { lines, tally } = withinBudget(all, budget)
    const start: BatchRun = {
      ...initial,
      max_tokens: Number.isFinite(limits.maxTokens) ? limits.maxTokens : null
    }
    yield* writeRun(runDir, start)
    // From here on the run goes on with `batch status` / `batch collect` of this directory, whatever stops it.
    yield* onRecorded(runDir)
    const run = yield* submitParts(runDir, start, lines, "initial", limits).pipe(
      Effect.tapError(() =>
        Effect.logWarning(
          `the submission of ${runDir} stopped; what was prepared is kept: \`skyrl batch status ${
            shellWord(runDir)
          }\` finishes it`
        )
      )
    )
    if (budget !== undefined && tally.held > 0) {
      const reached = heldBackText(budget, tally, "samples")
      const raise = `\`skyrl batch collect ${shellWord(runDir)} --max-cost N\` with a larger N sends them`
      if (tally.taken === 0) {
        const storage = yield* Storage
        return yield* new IncompleteRun({
          made: 0,
          requested: sampling.jobs.length,
          output: sampling.out,
          reason: `${reached}: 0 of the ${sampling.jobs.length} samples submitted; ${raise}`,
          earlierOut: yield* storage.exists(sampling.out)
        })
      }
      yield* Effect.logWarning(
        `${reached}; \`skyrl batch collect ${shellWord(runDir)}\` sends them as a follow-up batch as far as ` +
          `the budget then allows, counting what the run spent and the estimate of its batches not ended (${raise})`
      )
    }
    const waiting = run.parts.filter((p) => p.batch_id === null).length
    yield* Effect.logInfo(
      `run ${run.run_id}: ${tally.taken} requests in ${run.parts.length} batch${run.parts.length === 1 ? "" : "es"} (${
        endpointUrl(run.endpoint)
      }, ${run.llm.model})${
        waiting > 0 ? `, ${waiting} waiting for room in the queue` : ""
      }; check with \`skyrl batch status ${shellWord(runDir)}\`, collect with \`skyrl batch collect ${
        shellWord(runDir)
      }\``
    )
    return { run, runDir }
  })
