/**
 * LLM contracts: settings, token usage, the per-attempt record and the typed errors of the `Llm`
 * service (src/services/Llm.ts). Pure: no openai import here, so the CLI can load it cheaply.
 *
 * Every error has a readable `message` that never contains the API key. Errors about an answer the
 * model did produce (`InvalidOutput`, `Truncated`, `Refusal`) carry the raw answer and its usage so a
 * program can archive it, count its cost and ask for a repair.
 */
import { Schema } from "effect"

export const Backend = Schema.Literal("responses", "chat")
export type Backend = typeof Backend.Type

export const ReasoningEffort = Schema.Literal("minimal", "low", "medium", "high")
export type ReasoningEffort = typeof ReasoningEffort.Type

export const LlmChoice = Schema.Literal("auto", "openai", "replay")
export type LlmChoice = typeof LlmChoice.Type

/** Token usage of one call. `cached` is part of `input`; `reasoning` is part of `output`. */
export const Usage = Schema.Struct({
  input: Schema.Number,
  cached: Schema.Number,
  output: Schema.Number,
  reasoning: Schema.Number
})
export type Usage = typeof Usage.Type

export const emptyUsage: Usage = { input: 0, cached: 0, output: 0, reasoning: 0 }

export const addUsage = (a: Usage, b: Usage): Usage => ({
  input: a.input + b.input,
  cached: a.cached + b.cached,
  output: a.output + b.output,
  reasoning: a.reasoning + b.reasoning
})

/** Settings of the live layer. Retry delays are settings too, so tests can make them small. */
export interface LlmSettings {
  readonly model: string
  readonly backend: Backend
  readonly reasoningEffort: ReasoningEffort
  readonly maxOutputTokens: number
  /** Per HTTP attempt; the request is aborted when it passes. */
  readonly timeoutMs: number
  /** Retries after the first attempt, for rate limits, 5xx, connection errors and timeouts. */
  readonly maxRetries: number
  /** First backoff delay; doubles on each retry (jittered ±20%), capped at `maxDelayMs`. */
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  /** Upper bound on a server-requested wait (retry-after). */
  readonly maxRetryAfterMs: number
  /** OpenAI-compatible base URL (OPENAI_BASE_URL); the SDK default when absent. */
  readonly baseUrl?: string | undefined
}

/**
 * What makes an OPENAI_BASE_URL unusable, undefined when it can be used: not an http(s) URL (`localhost:8000/v1`
 * parses with the scheme `localhost:`), or a user name or password in it, which Node's fetch refuses. Either made
 * every request fail with "Invalid URL" as a temporary failure, retried for every sample.
 */
export const baseUrlProblem = (url: string): string | undefined => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return `must be an http(s) URL, got "${url}"`
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:" || /\s/.test(url)) {
    return `must be an http(s) URL, got "${url}"`
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return `holds a user name or password (${shownUrl(url)}), which Node's fetch refuses; give the key as ` +
      "OPENAI_API_KEY"
  }
  return undefined
}

/** A URL as it may be printed: its password as `***`. */
export const shownUrl = (url: string): string =>
  url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:?#\s]*:)[^/@?#\s]*@/i, "$1***@")

export const defaultLlmSettings: LlmSettings = {
  model: "gpt-5-mini",
  backend: "responses",
  reasoningEffort: "high",
  maxOutputTokens: 32_000,
  timeoutMs: 600_000,
  maxRetries: 4,
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  maxRetryAfterMs: 300_000
}

export const makeLlmSettings = (overrides: Partial<LlmSettings> = {}): LlmSettings => {
  const out: Record<string, unknown> = { ...defaultLlmSettings }
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) out[k] = v
  return out as unknown as LlmSettings
}

/** A readable problem in the model's answer (`path` like `tool_sequence[1].server`, "" for the root). */
export const OutputIssue = Schema.Struct({ path: Schema.String, message: Schema.String })
export type OutputIssue = typeof OutputIssue.Type

/** One HTTP attempt (or one replayed answer), success or failure: what a program archives. */
export interface AttemptRecord {
  /** 1-based count of HTTP calls made for this request (fallback re-sends count too). */
  readonly attempt: number
  readonly backend: Backend | "replay"
  readonly model: string
  /** The JSON body sent (never the key). */
  readonly request: unknown
  /** "ok" or the error tag. */
  readonly status: "ok" | LlmError["_tag"]
  readonly httpStatus?: number | undefined
  /** Raw JSON body answered (or the raw text when it was not JSON). */
  readonly response?: unknown
  readonly error?: string | undefined
  readonly usage?: Usage | undefined
  readonly requestId?: string | null | undefined
  readonly durationMs: number
  readonly startedAt: string
  /**
   * Set when the answer was not asked now but replayed from an existing archive file of the run (resume,
   * `rebuild`): the path of that file. Nothing new was spent; nothing new is archived.
   */
  readonly archived?: string | undefined
  /** The failure's own fields (`Schema.encode` of the error), so a replay reproduces it exactly. */
  readonly errorDetail?: unknown
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`

/** HTTP 429 (rate limit): retried after `retryAfterMs` when the server names one. */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  reason: Schema.String,
  retryAfterMs: Schema.optional(Schema.Number),
  httpStatus: Schema.optional(Schema.Number),
  requestId: Schema.optional(Schema.NullOr(Schema.String))
}) {
  override get message(): string {
    const wait = this.retryAfterMs === undefined ? "" : ` (retry after ${secs(this.retryAfterMs)})`
    return `rate limited by the model API${wait}: ${this.reason}`
  }
}

/** HTTP 429 with `insufficient_quota`: billing, not load; retrying does not help. */
export class QuotaExceeded extends Schema.TaggedError<QuotaExceeded>()("QuotaExceeded", {
  reason: Schema.String,
  httpStatus: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return `the API account has no quota left (check plan and billing): ${this.reason}`
  }
}

/**
 * 5xx, 408/409, connection reset, an unreadable HTTP body or a Responses answer with `status: "failed"`:
 * may succeed on retry. `retryAfterMs` when the server named a wait; `usage` when a failed answer billed tokens.
 */
export class Transient extends Schema.TaggedError<Transient>()("Transient", {
  reason: Schema.String,
  httpStatus: Schema.optional(Schema.Number),
  requestId: Schema.optional(Schema.NullOr(Schema.String)),
  retryAfterMs: Schema.optional(Schema.Number),
  usage: Schema.optional(Usage)
}) {
  override get message(): string {
    return `temporary failure of the model API${
      this.httpStatus === undefined ? "" : ` (HTTP ${this.httpStatus})`
    }: ${this.reason}`
  }
}

/** An attempt ran past the per-attempt timeout and was aborted. */
export class Timeout extends Schema.TaggedError<Timeout>()("Timeout", {
  timeoutMs: Schema.Number
}) {
  override get message(): string {
    return `the model API did not answer within ${secs(this.timeoutMs)} (raise --timeout)`
  }
}

/** HTTP 401/403. */
export class Authentication extends Schema.TaggedError<Authentication>()("Authentication", {
  reason: Schema.String,
  httpStatus: Schema.Number
}) {
  override get message(): string {
    return `the model API refused the credentials (HTTP ${this.httpStatus}): ${this.reason} — check OPENAI_API_KEY`
  }
}

/** HTTP 400/422 (or a schema that cannot be sent): the request itself is wrong. */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", {
  reason: Schema.String,
  param: Schema.NullOr(Schema.String),
  code: Schema.NullOr(Schema.String),
  httpStatus: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    const where = this.param === null ? "" : ` (param ${this.param})`
    return `the model API rejected the request${where}: ${this.reason}`
  }
}

/** HTTP 404: unknown model or endpoint. */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  reason: Schema.String,
  code: Schema.NullOr(Schema.String)
}) {
  override get message(): string {
    return `not found at the model API (check --model and OPENAI_BASE_URL): ${this.reason}`
  }
}

/** The model refused to answer. */
export class Refusal extends Schema.TaggedError<Refusal>()("Refusal", {
  refusal: Schema.String,
  raw: Schema.Unknown,
  usage: Schema.optional(Usage)
}) {
  override get message(): string {
    return `the model refused: ${this.refusal}`
  }
}

/** The answer stopped early (output token limit or content filter). `text` is the partial answer. */
export class Truncated extends Schema.TaggedError<Truncated>()("Truncated", {
  reason: Schema.String,
  text: Schema.String,
  raw: Schema.Unknown,
  usage: Schema.optional(Usage)
}) {
  override get message(): string {
    const hint = /max_output_tokens|length/.test(this.reason) ? " (raise --max-output-tokens)" : ""
    return `the answer was cut off: ${this.reason}${hint}`
  }
}

/** The answer is not valid JSON or does not match the output Schema. */
export class InvalidOutput extends Schema.TaggedError<InvalidOutput>()("InvalidOutput", {
  text: Schema.String,
  issues: Schema.Array(OutputIssue),
  raw: Schema.Unknown,
  usage: Schema.optional(Usage)
}) {
  override get message(): string {
    const shown = this.issues.slice(0, 5).map((i) => (i.path === "" ? i.message : `${i.path}: ${i.message}`))
    const more = this.issues.length > 5 ? ` (+${this.issues.length - 5} more)` : ""
    return `invalid model output: ${shown.join("; ")}${more}`
  }
}

/** `--llm openai` (or a live call) without OPENAI_API_KEY. */
export class MissingApiKey extends Schema.TaggedError<MissingApiKey>()("MissingApiKey", {
  /** `batch`: `batch status` / `batch collect`, which have no offline way. */
  use: Schema.optional(Schema.Literal("batch")),
  /** Set when the key is there but cannot be sent: what is wrong with it (never the key itself). */
  unusable: Schema.optional(Schema.String)
}) {
  override get message(): string {
    if (this.unusable !== undefined) {
      return `OPENAI_API_KEY cannot be sent in an HTTP header: it ${this.unusable}; set it again without it`
    }
    return this.use === "batch"
      ? "OPENAI_API_KEY is not set: a batch run's batches are on OpenAI's Batch API, which only the key that " +
        "submitted them can read; export OPENAI_API_KEY=..."
      : "OPENAI_API_KEY is not set: export OPENAI_API_KEY=... to call OpenAI, or use --llm replay to answer offline from recorded answers"
  }
}

/**
 * An answer source that replays recorded answers (a run's own archive, for `rebuild`) has nothing for
 * this request: the sample ends here, unfinished, with nothing spent.
 */
export class NoRecordedAnswer extends Schema.TaggedError<NoRecordedAnswer>()("NoRecordedAnswer", {
  key: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `no recorded answer for ${this.key}: ${this.reason}`
  }
}

/** The replay layer found nothing usable to answer from. */
export class ReplayUnavailable extends Schema.TaggedError<ReplayUnavailable>()("ReplayUnavailable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot replay recorded answers from ${this.path}: ${this.reason}`
  }
}

export type LlmError =
  | RateLimited
  | QuotaExceeded
  | Transient
  | Timeout
  | Authentication
  | BadRequest
  | NotFound
  | Refusal
  | Truncated
  | InvalidOutput
  | MissingApiKey
  | NoRecordedAnswer

/** Errors that can succeed on a later attempt (the retry schedule retries only these). */
export const isRetryable = (e: LlmError): e is RateLimited | Transient | Timeout =>
  e._tag === "RateLimited" || e._tag === "Transient" || e._tag === "Timeout"

/** Errors that are an answer the model produced (archived with its body; a run may repair or reject it). */
export const isAnswerError = (e: LlmError): e is Refusal | Truncated | InvalidOutput =>
  e._tag === "Refusal" || e._tag === "Truncated" || e._tag === "InvalidOutput"

/** The usage an error carries (answers that were billed although they failed). */
export const usageOfError = (e: LlmError): Usage | undefined => ("usage" in e ? e.usage : undefined)

/**
 * What a failed call means once the Llm layer has given up on it (retries done, fallbacks tried):
 * - `sample`: about this request only (context length, a flagged prompt, a refusal, a cut-off answer,
 *   retries exhausted): that attempt of the sample is rejected with the API's message and made again;
 * - `run`: about every request (credentials, quota, an unknown model, an output schema or parameter the
 *   API refuses): the run stops starting calls and says why;
 * - `unanswered`: nothing answered and nothing was spent (a replay source without this request): the
 *   sample ends unfinished.
 * A 400 that names neither kind counts for the sample (see `isRequestSpecific`).
 */
export type FailureScope = "sample" | "run" | "unanswered"

const RUN_CODES = new Set([
  "invalid_api_key",
  "model_not_found",
  "invalid_json_schema",
  "schema_not_strict",
  "unsupported_parameter",
  "unknown_parameter",
  "unsupported_value",
  "insufficient_quota"
])
const RUN_PARAMS =
  /^(model|text|text\.format.*|response_format.*|reasoning.*|max_output_tokens|max_completion_tokens|store)$/
const RUN_TEXT =
  /schema|does not exist|do not have access|unsupported (parameter|value)|unknown parameter|unrecognized request argument/i

/** A 400 the API gives for this request's content (context length, content policy, a flagged prompt). */
const SAMPLE_CODES = new Set([
  "context_length_exceeded",
  "string_above_max_length",
  "content_policy_violation",
  "content_filter",
  "invalid_prompt",
  "flagged"
])
const SAMPLE_TEXT =
  /context (length|window)|maximum context|too many tokens|content (management )?polic|flagged|usage polic|safety/i

/** True when a 400 is about this request's content, not about the request every sample sends. */
export const isRequestSpecific = (e: BadRequest): boolean =>
  (e.code !== null && SAMPLE_CODES.has(e.code)) || SAMPLE_TEXT.test(e.reason)

export const failureScope = (e: LlmError): FailureScope => {
  switch (e._tag) {
    case "Authentication":
    case "QuotaExceeded":
    case "NotFound":
    case "MissingApiKey":
      return "run"
    case "NoRecordedAnswer":
      return "unanswered"
    case "BadRequest":
      if (isRequestSpecific(e)) return "sample"
      return (e.code !== null && RUN_CODES.has(e.code)) || (e.param !== null && RUN_PARAMS.test(e.param)) ||
          RUN_TEXT.test(e.reason)
        ? "run"
        : "sample"
    default:
      return "sample"
  }
}
