/**
 * Scripted Llm layer for tests: answers come from a script instead of the network, and still go
 * through the real engine (body building, timeout, decoding, fallbacks, retry schedule, attempt
 * records). Also exports builders of realistic raw API bodies, used by the fake HTTP server too.
 *
 * Retry delays default to a few milliseconds here (tests stay fast); pass `settings` for realistic ones
 * (with TestClock).
 */
import { Effect, Layer } from "effect"
import type { Backend, LlmError, LlmSettings, Usage } from "../../domain/llm.js"
import { makeLlmSettings } from "../../domain/llm.js"
import type { LlmApi } from "../Llm.js"
import { Llm } from "../Llm.js"
import type { RateLimiterApi } from "../RateLimiter.js"
import type { Transport, TransportCall, TransportFailure } from "./engine.js"
import { makeEngine } from "./engine.js"

export const defaultFakeUsage: Usage = { input: 1200, cached: 1024, output: 900, reasoning: 640 }

let bodyCounter = 0
const nextId = (prefix: string): string => `${prefix}_${(++bodyCounter).toString(16).padStart(8, "0")}`

export interface FakeBodyOptions {
  readonly usage?: Partial<Usage> | undefined
  readonly model?: string | undefined
  /** Chat: `length`/`content_filter`; Responses: sets `status: incomplete` with this reason. */
  readonly truncated?: string | undefined
  readonly refusal?: string | undefined
}

const fullUsage = (u: Partial<Usage> | undefined): Usage => ({ ...defaultFakeUsage, ...u })

/** A Chat Completions body as OpenAI answers it. */
export const chatCompletionBody = (text: string, options: FakeBodyOptions = {}): Record<string, unknown> => {
  const usage = fullUsage(options.usage)
  return {
    id: nextId("chatcmpl"),
    object: "chat.completion",
    created: 1_760_000_000,
    model: options.model ?? "gpt-5-mini-2025-08-07",
    choices: [{
      index: 0,
      message: {
        role: "assistant",
        content: options.refusal === undefined ? text : null,
        refusal: options.refusal ?? null,
        annotations: []
      },
      logprobs: null,
      finish_reason: options.truncated === undefined ? "stop" : options.truncated === "content_filter"
        ? "content_filter"
        : "length"
    }],
    usage: {
      prompt_tokens: usage.input,
      completion_tokens: usage.output,
      total_tokens: usage.input + usage.output,
      prompt_tokens_details: { cached_tokens: usage.cached, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: usage.reasoning,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0
      }
    },
    service_tier: "default",
    system_fingerprint: null
  }
}

/** A Responses API body as OpenAI answers it: a reasoning item, then the message item. */
export const responsesBody = (text: string, options: FakeBodyOptions = {}): Record<string, unknown> => {
  const usage = fullUsage(options.usage)
  const content = options.refusal === undefined
    ? [{ type: "output_text", text, annotations: [], logprobs: [] }]
    : [{ type: "refusal", refusal: options.refusal }]
  return {
    id: nextId("resp"),
    object: "response",
    created_at: 1_760_000_000,
    status: options.truncated === undefined ? "completed" : "incomplete",
    incomplete_details: options.truncated === undefined
      ? null
      : { reason: options.truncated === "length" ? "max_output_tokens" : options.truncated },
    model: options.model ?? "gpt-5-mini-2025-08-07",
    output: [
      { id: nextId("rs"), type: "reasoning", summary: [] },
      { id: nextId("msg"), type: "message", status: "completed", role: "assistant", content }
    ],
    usage: {
      input_tokens: usage.input,
      input_tokens_details: { cached_tokens: usage.cached },
      output_tokens: usage.output,
      output_tokens_details: { reasoning_tokens: usage.reasoning },
      total_tokens: usage.input + usage.output
    },
    store: false
  }
}

export const answerBody = (backend: Backend, text: string, options: FakeBodyOptions = {}): Record<string, unknown> =>
  backend === "responses" ? responsesBody(text, options) : chatCompletionBody(text, options)

/** One scripted answer. */
export type ScriptedReply =
  | { readonly text: string; readonly usage?: Partial<Usage> | undefined }
  | { readonly json: unknown; readonly usage?: Partial<Usage> | undefined }
  /** A raw API body, used as is. */
  | { readonly body: unknown }
  /** A cut-off answer (`max_output_tokens` / `length`). */
  | { readonly truncated: string }
  | { readonly refusal: string }
  /** Never answers (the per-attempt timeout fires). */
  | { readonly hang: true }
  /** An HTTP-level failure. */
  | LlmError

export interface ScriptedCall extends TransportCall {
  /** 0-based index of this HTTP call in the layer's life. */
  readonly index: number
}

export type ScriptedHandler = (call: ScriptedCall) => ScriptedReply | Effect.Effect<ScriptedReply>

const isLlmError = (r: ScriptedReply): r is LlmError => "_tag" in r && typeof r._tag === "string"

/** A transport answering from a script; `calls` records every body sent. */
export const scriptedTransport = (
  script: ScriptedHandler | ReadonlyArray<ScriptedReply>
): { readonly transport: Transport; readonly calls: Array<ScriptedCall> } => {
  const calls: Array<ScriptedCall> = []
  const handler: ScriptedHandler = typeof script === "function" ? script : ({ index }) => {
    const reply = script[index]
    if (reply === undefined) throw new Error(`scripted Llm: no reply scripted for call ${index + 1}`)
    return reply
  }
  const transport: Transport = (call) =>
    Effect.gen(function*() {
      const scripted: ScriptedCall = { ...call, index: calls.length }
      calls.push(scripted)
      const out = handler(scripted)
      // A scripted error is itself an Effect (a yieldable error): it is a reply, not something to run.
      const reply: ScriptedReply = Effect.isEffect(out) && !isLlmError(out as unknown as ScriptedReply)
        ? yield* (out as Effect.Effect<ScriptedReply>)
        : out as ScriptedReply
      if (isLlmError(reply)) return yield* Effect.fail<TransportFailure>({ error: reply })
      if ("hang" in reply) return yield* Effect.never
      const body = "body" in reply
        ? reply.body
        : "truncated" in reply
        ? answerBody(call.backend, reply.truncated, { truncated: "length" })
        : "refusal" in reply
        ? answerBody(call.backend, "", { refusal: reply.refusal })
        : answerBody(call.backend, "text" in reply ? reply.text : JSON.stringify(reply.json), { usage: reply.usage })
      return { body, httpStatus: 200, requestId: `req_scripted_${scripted.index + 1}` }
    })
  return { transport, calls }
}

export const scriptedSettings = (overrides: Partial<LlmSettings> = {}): LlmSettings =>
  makeLlmSettings({ baseDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 5, ...overrides })

/** An Llm answering from a script, plus the log of calls made (`limiter`: paces every HTTP attempt). */
export const makeScriptedLlm = (
  script: ScriptedHandler | ReadonlyArray<ScriptedReply>,
  settings: Partial<LlmSettings> = {},
  limiter?: RateLimiterApi
): { readonly llm: LlmApi; readonly calls: Array<ScriptedCall> } => {
  const { calls, transport } = scriptedTransport(script)
  const resolved = scriptedSettings(settings)
  return {
    llm: makeEngine(transport, resolved, { describe: (backend) => `scripted ${backend} ${resolved.model}`, limiter }),
    calls
  }
}

/** Layer form of `makeScriptedLlm` (the calls log is lost; use makeScriptedLlm to inspect it). */
export const LlmScripted = (
  script: ScriptedHandler | ReadonlyArray<ScriptedReply>,
  settings: Partial<LlmSettings> = {}
): Layer.Layer<Llm> => Layer.succeed(Llm, makeScriptedLlm(script, settings).llm)
