/**
 * Raw OpenAI API bodies as the API answers them (Chat Completions and Responses), for the scripted Llm layer
 * (scripted.ts) and the fake HTTP server (fakeOpenAI.ts). Imports no engine: a test file that only runs the
 * built CLI against the fake does not load the run engine for them.
 */
import type { Backend, Usage } from "../../src/domain/llm.js"

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
