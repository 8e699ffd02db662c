/**
 * The `Llm` port: the single door to the model. One operation, `complete`: instructions + messages +
 * an output Schema → the decoded value with the raw answer, usage, request id, backend and timing,
 * or a typed `LlmError` (src/domain/llm.ts).
 *
 * Layers (src/services/llm/): live OpenAI (Responses or Chat, retries, timeouts, fallbacks), replay of
 * recorded answers (offline), and a scripted layer for tests. All of them decode and validate answers
 * with the same code (src/services/llm/answer.ts).
 */
import type { Effect, Schema } from "effect"
import { Context } from "effect"
import type { AttemptRecord, Backend, LlmError, Usage } from "../domain/llm.js"

export interface LlmMessage {
  readonly role: "user" | "assistant"
  readonly content: string
}

export interface LlmRequest<A, I> {
  /** Name of the output schema (sent to the API; letters, digits, `_` and `-`). */
  readonly name: string
  /** System/developer text: put what every request shares here (prompt caching works on prefixes). */
  readonly instructions: string
  readonly input: ReadonlyArray<LlmMessage>
  /** Decodes the parsed JSON answer. */
  readonly schema: Schema.Schema<A, I>
  /** The strict JSON Schema to send; derived from `schema` (src/skyrl/strictSchema.ts) when absent. */
  readonly jsonSchema?: object | undefined
  /** A stable sample key ("sample-0007"): used by replay and in logs. */
  readonly key?: string | undefined
  /** Called after every HTTP attempt (and every replayed answer), success or failure. */
  readonly onAttempt?: ((record: AttemptRecord) => Effect.Effect<void>) | undefined
  /**
   * Run just before each HTTP attempt is sent (after its wait for a rate-limit slot; retries and fallback
   * re-sends included), then `onAttempt` when it ends: what tells a caller which of its calls have a request
   * under way. It may interrupt the call, which then sends nothing (a run stopping on a signal: sample.ts).
   */
  readonly beforeSend?: Effect.Effect<void> | undefined
}

export interface LlmResult<A> {
  readonly value: A
  /** The answer text (JSON). */
  readonly text: string
  /** The raw response body. */
  readonly raw: unknown
  readonly usage: Usage
  readonly requestId: string | null
  readonly backend: Backend | "replay"
  readonly model: string
  readonly durationMs: number
  /** HTTP calls made (1 when the first one succeeded). */
  readonly attempts: number
  /** The body sent (never the key). */
  readonly request: unknown
}

export interface LlmApi {
  readonly complete: <A, I>(request: LlmRequest<A, I>) => Effect.Effect<LlmResult<A>, LlmError>
  /** What answers: "openai responses gpt-5-mini", "replay data/replay (12 answers)", ... */
  readonly describe: string
  /**
   * A replay of recorded answers (`--llm replay`): how many it holds. Its answer for a sample is chosen by the
   * request's key modulo this count (src/services/llm/replay.ts), so samples 1..count each have one of their
   * own, and any later sample could only get one of theirs again (a duplicate at best): the run asks only
   * the first `recordedAnswers` samples (sampling.ts). Undefined: no such limit (a model, a run's archive).
   */
  readonly recordedAnswers?: number | undefined
}

export class Llm extends Context.Tag("skyrl/Llm")<Llm, LlmApi>() {}
