/**
 * The Llm engine: everything between "a request" and "a decoded answer" that does not depend on how
 * the HTTP call is made. A `Transport` (the openai SDK in live.ts, a script in scripted.ts) sends one
 * body; the engine builds bodies, applies the per-attempt timeout, reads and decodes answers
 * (answer.ts), reports every attempt, falls back (reasoning parameter rejected → resend without it;
 * 404 on /responses → Chat, both remembered per base URL and model) and retries with the schedule.
 *
 * Pacing: every HTTP attempt (first try, fallback re-send, retry) waits for the rate limiter, counted as
 * OpenAI counts it up front: the input (instructions, messages and the output schema) plus
 * `max_output_tokens`.
 */
import { Duration, Effect, Either, Schema } from "effect"
import type { AttemptRecord, Backend, LlmError, LlmSettings } from "../../domain/llm.js"
import {
  Authentication,
  BadRequest,
  isAnswerError,
  MissingApiKey,
  NotFound,
  QuotaExceeded,
  RateLimited,
  Timeout,
  Transient,
  usageOfError
} from "../../domain/llm.js"
import { estimateTokens } from "../../skyrl/prompt.js"
import type { LlmApi, LlmRequest, LlmResult } from "../Llm.js"
import type { RateLimiterApi } from "../RateLimiter.js"
import { buildBody, interpret, resolveJsonSchema } from "./answer.js"
import { logRetry, withRetry } from "./retry.js"

export interface TransportCall {
  readonly backend: Backend
  readonly body: Record<string, unknown>
}

export interface TransportReply {
  /** The parsed JSON body of a 2xx answer. */
  readonly body: unknown
  readonly httpStatus: number
  readonly requestId: string | null
}

export interface TransportFailure {
  readonly error: LlmError
  readonly httpStatus?: number | undefined
  /** The error body (JSON) or raw text, when there was one. */
  readonly response?: unknown
  readonly requestId?: string | null | undefined
}

/**
 * Sends one body; never retries. Interruption must abort the HTTP request. The engine times each call out
 * after `settings.timeoutMs` (unless the transport does: `EngineOptions.transportTimesOut`).
 */
export type Transport = (call: TransportCall) => Effect.Effect<TransportReply, TransportFailure>

/** A 400 that rejects the reasoning parameter (Chat gives `param: null`, so the text is read too). */
export const rejectsReasoning = (error: LlmError): boolean =>
  error._tag === "BadRequest" &&
  ((error.param !== null && /^reasoning/.test(error.param)) ||
    /reasoning[._]effort|unsupported parameter:?\s*'?reasoning|unrecognized request argument supplied:?\s*reasoning|does not support (thinking|reasoning)|(thinking|reasoning) is not supported/i
      .test(error.reason))

/** A 404 meaning "no /responses endpoint here" (not "no such model"). */
export const missingResponsesEndpoint = (error: LlmError): boolean =>
  error._tag === "NotFound" && error.code !== "model_not_found" && !/model/i.test(error.code ?? "")

/** The HTTP failures whose fields an attempt record keeps (`errorDetail`), so a replay can rebuild them. */
const HttpFailure = Schema.Union(
  RateLimited,
  QuotaExceeded,
  Transient,
  Timeout,
  Authentication,
  BadRequest,
  NotFound,
  MissingApiKey
)

/** The error's own fields, for the attempt record (answer errors are rebuilt from their body instead). */
export const errorDetailOf = (error: LlmError): unknown =>
  isAnswerError(error) || error._tag === "NoRecordedAnswer"
    ? undefined
    : Either.getOrUndefined(Schema.encodeEither(HttpFailure)(error))

/** The error an attempt record describes (undefined when the record has no usable detail). */
export const errorFromDetail = (detail: unknown): LlmError | undefined =>
  Either.getOrUndefined(Schema.decodeUnknownEither(HttpFailure)(detail))

const schemaTokens = new WeakMap<object, number>()

/** Tokens a request counts against a TPM limit: its input, the output schema and `max_output_tokens`. */
export const paceTokens = <A, I>(request: LlmRequest<A, I>, jsonSchema: object, maxOutputTokens: number): number => {
  let schema = schemaTokens.get(jsonSchema)
  if (schema === undefined) {
    schema = estimateTokens(JSON.stringify(jsonSchema))
    schemaTokens.set(jsonSchema, schema)
  }
  const input = request.input.reduce((n, m) => n + estimateTokens(m.content), estimateTokens(request.instructions))
  return input + schema + maxOutputTokens
}

const report = <A, I>(request: LlmRequest<A, I>, record: AttemptRecord): Effect.Effect<void> =>
  request.onAttempt === undefined ? Effect.void : request.onAttempt(record)

interface Remembered {
  chat: boolean
  noReasoning: boolean
}

export interface EngineOptions {
  /** Shown by `describe`, given the backend that answers (Chat once /responses was found missing). */
  readonly describe?: ((backend: Backend) => string) | undefined
  /** Paces every HTTP attempt, retries and fallback re-sends included (none: no pacing). */
  readonly limiter?: RateLimiterApi | undefined
  /**
   * The transport ends each call after `settings.timeoutMs` itself, failing with `Timeout` (live.ts: a
   * timer that aborts the request), so the engine does not race it against a timer of its own (a race
   * forks two fibers per attempt).
   */
  readonly transportTimesOut?: boolean | undefined
}

/**
 * The fallbacks learnt (Chat instead of /responses, no reasoning parameter), per base URL and model, for
 * the process: a run's stages and its tasks use engines of their own, and each asked again (a 404 probe
 * and a warning more).
 */
const memory = new Map<string, Remembered>()

export const makeEngine = (transport: Transport, settings: LlmSettings, options: EngineOptions = {}): LlmApi => {
  // Each call ends after `settings.timeoutMs`: the transport's own timer, or else the engine's.
  const send: Transport = options.transportTimesOut === true ? transport : (call) =>
    transport(call).pipe(
      Effect.timeoutFail({
        duration: Duration.millis(settings.timeoutMs),
        onTimeout: (): TransportFailure => ({ error: new Timeout({ timeoutMs: settings.timeoutMs }) })
      })
    )
  const memoryKey = `${settings.baseUrl ?? "https://api.openai.com/v1"}|${settings.model}`
  const remembered = (): Remembered => {
    let entry = memory.get(memoryKey)
    if (entry === undefined) {
      entry = { chat: false, noReasoning: false }
      memory.set(memoryKey, entry)
    }
    return entry
  }

  const complete = <A, I>(request: LlmRequest<A, I>): Effect.Effect<LlmResult<A>, LlmError> =>
    Effect.gen(function*() {
      const jsonSchema = yield* resolveJsonSchema(request)
      const tokens = options.limiter === undefined ? 0 : paceTokens(request, jsonSchema, settings.maxOutputTokens)
      // The clock in context, read directly at each step of this call (one lookup instead of one per read).
      const clock = yield* Effect.clock
      const t0 = clock.unsafeCurrentTimeMillis()
      let calls = 0

      const call = (backend: Backend, reasoning: boolean) =>
        Effect.gen(function*() {
          calls++
          const attempt = calls
          const body = buildBody(
            backend,
            {
              model: settings.model,
              reasoningEffort: reasoning ? settings.reasoningEffort : undefined,
              maxOutputTokens: settings.maxOutputTokens
            },
            request,
            jsonSchema
          )
          if (options.limiter !== undefined) yield* options.limiter.acquire(tokens)
          if (request.beforeSend !== undefined) yield* request.beforeSend
          const start = clock.unsafeCurrentTimeMillis()
          const sent = yield* Effect.either(send({ backend, body }))
          const end = clock.unsafeCurrentTimeMillis()
          const common = {
            attempt,
            backend,
            model: settings.model,
            request: body,
            durationMs: end - start,
            startedAt: new Date(start).toISOString()
          }
          if (Either.isLeft(sent)) {
            yield* report(request, {
              ...common,
              status: sent.left.error._tag,
              httpStatus: sent.left.httpStatus,
              response: sent.left.response,
              error: sent.left.error.message,
              errorDetail: errorDetailOf(sent.left.error),
              usage: usageOfError(sent.left.error),
              requestId: sent.left.requestId ?? null
            })
            return yield* Effect.fail(sent.left.error)
          }
          const reply = sent.right
          const answer = interpret(backend, request.schema, reply.body)
          const fromReply = {
            ...common,
            httpStatus: reply.httpStatus,
            response: reply.body,
            requestId: reply.requestId
          }
          if (Either.isLeft(answer)) {
            yield* report(request, {
              ...fromReply,
              status: answer.left._tag,
              error: answer.left.message,
              errorDetail: errorDetailOf(answer.left),
              usage: usageOfError(answer.left)
            })
            return yield* Effect.fail(answer.left)
          }
          yield* report(request, { ...fromReply, status: "ok", usage: answer.right.usage })
          return { ...answer.right, reply, body, backend }
        })

      // One try, with the fallbacks (each at most once): 404 on /responses → Chat; reasoning rejected → without.
      const once = Effect.gen(function*() {
        const memo = remembered()
        let backend: Backend = memo.chat ? "chat" : settings.backend
        let reasoning = !memo.noReasoning
        for (;;) {
          const result = yield* Effect.either(call(backend, reasoning))
          if (Either.isRight(result)) return result.right
          const error = result.left
          if (backend === "responses" && missingResponsesEndpoint(error)) {
            if (!memo.chat) {
              memo.chat = true
              yield* Effect.logWarning(
                `${
                  settings.baseUrl ?? "the API"
                } has no /responses endpoint (404): using Chat Completions for ${settings.model}`
              )
            }
            backend = "chat"
            continue
          }
          if (reasoning && rejectsReasoning(error)) {
            if (!memo.noReasoning) {
              memo.noReasoning = true
              yield* Effect.logWarning(
                `${settings.model} rejects the reasoning effort parameter: sending requests without it (${error.message})`
              )
            }
            reasoning = false
            continue
          }
          return yield* Effect.fail(error)
        }
      })

      const done = yield* withRetry(once, settings, logRetry(request.key, settings.maxRetries))
      const t1 = clock.unsafeCurrentTimeMillis()
      return {
        value: done.value,
        text: done.text,
        raw: done.reply.body,
        usage: done.usage,
        requestId: done.reply.requestId,
        backend: done.backend,
        model: settings.model,
        durationMs: t1 - t0,
        attempts: calls,
        request: done.body
      } satisfies LlmResult<A>
    })

  const describe = options.describe ?? ((backend: Backend) => `${backend} ${settings.model}`)
  return {
    complete,
    // Read when shown (a run's summary and manifest): after the Chat fallback it names Chat.
    get describe() {
      return describe(remembered().chat ? "chat" : settings.backend)
    }
  }
}
