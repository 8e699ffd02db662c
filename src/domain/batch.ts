/**
 * Batch runs (`--backend batch`): the state a run keeps in `raw_llm/<run_id>/batch.json`, the Batch
 * API's objects as skyrl reads them, and the errors of the batch commands. Pure: no openai import.
 *
 * A run is one or more *parts*: one uploaded JSONL file and one batch each (a run larger than one
 * batch's limits is split; repairs and resubmissions go out as follow-up parts). Every request line's
 * `custom_id` is `<run_id>:<sample key>` (the key the sampling engine passes to `Llm.complete`,
 * e.g. `sample-000007` or `sample-000007-repair`), so answers join back on it whatever their order.
 */
import { Schema } from "effect"
import { Backend, ReasoningEffort, Usage } from "./llm.js"
import { shellWord } from "./words.js"

/** OpenAI's limits for one batch input file. */
export const BATCH_MAX_REQUESTS = 50_000
export const BATCH_MAX_BYTES = 200 * 1024 * 1024

export const endpointUrl = (backend: Backend): "/v1/responses" | "/v1/chat/completions" =>
  backend === "responses" ? "/v1/responses" : "/v1/chat/completions"

export const BatchStatus = Schema.Literal(
  "validating",
  "failed",
  "in_progress",
  "finalizing",
  "completed",
  "expired",
  "cancelling",
  "cancelled"
)
export type BatchStatus = typeof BatchStatus.Type

/** States after which a batch changes no more (its output and error files are final). */
export const isTerminal = (status: BatchStatus | null): boolean =>
  status === "completed" || status === "expired" || status === "failed" || status === "cancelled"

export const RequestCounts = Schema.Struct({ total: Schema.Number, completed: Schema.Number, failed: Schema.Number })
export type RequestCounts = typeof RequestCounts.Type

/** A batch as the API reports it (the fields skyrl uses). */
export interface BatchInfo {
  readonly id: string
  readonly status: BatchStatus
  readonly inputFileId: string
  readonly outputFileId: string | null
  readonly errorFileId: string | null
  readonly requestCounts: RequestCounts | null
  /** Validation errors of the input file (status `failed`), readable. */
  readonly errors: ReadonlyArray<string>
  /** Unix seconds. */
  readonly createdAt: number | null
  readonly completedAt: number | null
  /** The metadata skyrl gave the batch (`skyrl_run_id`, `skyrl_part`): how a lost batch is found again. */
  readonly metadata: Readonly<Record<string, string>>
}

/** An uploaded file as the Files API lists it. */
export interface FileInfo {
  readonly id: string
  readonly filename: string
  readonly bytes: number
  /** Unix seconds. */
  readonly createdAt: number | null
}

/** One page of a listing, newest first; `after` fetches the next page (undefined: no more). */
export interface Page<A> {
  readonly items: ReadonlyArray<A>
  readonly after: string | undefined
}

/** The metadata every batch of a run carries (and what adopting a lost batch matches on). */
export const batchMetadata = (runId: string, part: number, purpose: string): Record<string, string> => ({
  skyrl_run_id: runId,
  skyrl_part: String(part),
  skyrl_purpose: purpose
})

/** The name a part's input file is uploaded under (a file's only metadata: how a lost upload is found again). */
export const uploadName = (runId: string, input: string): string => `${runId}_${input}`

/**
 * A refusal for the per-model enqueued-token limit: the batch fails with `token_limit_exceeded`
 * ("Enqueued token limit reached for gpt-5-mini in organization ... Limit: 2,000,000 enqueued tokens.
 * Please try again once some in_progress batches have been completed."), or a create is refused so.
 */
export const isQueueRefusal = (text: string): boolean => /token_limit_exceeded|enqueued token limit/i.test(text)

/** The limit a queue refusal names (`Limit: 2,000,000 enqueued tokens`), when it names one. */
export const queueLimitOf = (text: string): number | undefined => {
  const m = /limit:\s*([\d,]+)\s*enqueued tokens/i.exec(text)
  return m === null ? undefined : Number(m[1].replace(/,/g, ""))
}

/** One uploaded file + its batch. */
export const BatchPart = Schema.Struct({
  /** 1-based, in submission order. */
  part: Schema.Number,
  /** `initial`: first attempts; `follow-up`: repairs, retries and resubmitted samples. */
  purpose: Schema.Literal("initial", "follow-up"),
  /** The input JSONL as uploaded, relative to the run directory. */
  input: Schema.String,
  requests: Schema.Number,
  bytes: Schema.Number,
  submitted_at: Schema.String,
  input_file_id: Schema.NullOr(Schema.String),
  batch_id: Schema.NullOr(Schema.String),
  status: Schema.NullOr(BatchStatus),
  request_counts: Schema.NullOr(RequestCounts),
  output_file_id: Schema.NullOr(Schema.String),
  error_file_id: Schema.NullOr(Schema.String),
  errors: Schema.Array(Schema.String),
  /** Downloaded output / error files, relative to the run directory (null until downloaded). */
  output: Schema.NullOr(Schema.String),
  error_output: Schema.NullOr(Schema.String),
  updated_at: Schema.String,
  /** Estimated tokens of its requests as the enqueued-token limit counts them (input, schema, max output). */
  tokens: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  /**
   * When an upload / a create of this part was started (written before the call): a part with a start
   * and no id looks the file / batch up (by name / metadata) before it uploads or creates again.
   */
  upload_started_at: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  create_started_at: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  /** Batches of this part the API refused for the enqueued-token limit (never adopted again). */
  refused: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** Waiting for room in the enqueued-token queue: since when, and why. */
  waiting: Schema.optionalWith(Schema.NullOr(Schema.Struct({ since: Schema.String, reason: Schema.String })), {
    default: () => null
  })
})
export type BatchPart = typeof BatchPart.Type

/** What builds the request bodies again at collect time (never the key). */
export const BatchLlmSettings = Schema.Struct({
  model: Schema.String,
  reasoningEffort: ReasoningEffort,
  maxOutputTokens: Schema.Number,
  timeoutMs: Schema.Number,
  maxRetries: Schema.Number
})

/** `raw_llm/<run_id>/batch.json`. */
export const BatchRun = Schema.Struct({
  format: Schema.Literal("skyrl-batch/1"),
  run_id: Schema.String,
  command: Schema.Literal("generate", "enrich"),
  created_at: Schema.String,
  /** Which API the request bodies are for. */
  endpoint: Backend,
  llm: BatchLlmSettings,
  inventory: Schema.Struct({ path: Schema.NullOr(Schema.String), servers: Schema.NullOr(Schema.Array(Schema.String)) }),
  /** The command's program options (JSON), as given at submit time. */
  options: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  parts: Schema.Array(BatchPart),
  /** `--batch-max-tokens`: the enqueued-token limit parts are split by and kept under (null: none). */
  max_tokens: Schema.optionalWith(Schema.NullOr(Schema.Number), { default: () => null }),
  /** Tokens of calls made online by collects (repairs), billed at the normal price. */
  online_usage: Usage,
  /** `--repairs` at submission: where a collect sends repairs unless it is given its own (older runs: online). */
  repairs: Schema.optionalWith(Schema.Literal("online", "batch"), { default: () => "online" as const })
})
export type BatchRun = typeof BatchRun.Type

/** batch.json is missing, unreadable or not a skyrl batch run. */
export class BatchStateError extends Schema.TaggedError<BatchStateError>()("BatchStateError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

/** Batches are still running (or a follow-up batch was just submitted): collect again later. Exit 75. */
export class BatchPending extends Schema.TaggedError<BatchPending>()("BatchPending", {
  runDir: Schema.String,
  reason: Schema.String
}) {
  get exitCode(): number {
    return 75
  }
  override get message(): string {
    return `${this.reason}; run \`skyrl batch collect ${shellWord(this.runDir)}\` again when it is done (or add --wait)`
  }
}
