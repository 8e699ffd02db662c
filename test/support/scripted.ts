/**
 * Scripted Llm layer for tests: answers come from a script instead of the network, and still go
 * through the real engine (body building, timeout, decoding, fallbacks, retry schedule, attempt
 * records). Its raw API bodies come from apiBodies.ts, which the fake HTTP server uses too.
 *
 * Retry delays default to a few milliseconds here (tests stay fast); pass `settings` for realistic ones
 * (with TestClock).
 */
import { Effect, Layer } from "effect"
import type { LlmError, LlmSettings, Usage } from "../../src/domain/llm.js"
import { makeLlmSettings } from "../../src/domain/llm.js"
import type { LlmApi } from "../../src/services/Llm.js"
import { Llm } from "../../src/services/Llm.js"
import type { Transport, TransportCall, TransportFailure } from "../../src/services/llm/engine.js"
import { makeEngine } from "../../src/services/llm/engine.js"
import type { RateLimiterApi } from "../../src/services/RateLimiter.js"
import { answerBody } from "./apiBodies.js"

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
