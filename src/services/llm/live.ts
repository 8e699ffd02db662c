/**
 * The live Llm layer on the official `openai` SDK. Loaded lazily (src/cli/llmOptions.ts), so that
 * `skyrl --help` never loads the SDK.
 *
 * Calls are posted on node:http by `directTransport` with the URL and headers the SDK builds for them
 * (made once per endpoint), and their answers judged as the SDK's would be (its error classes, then
 * `classifyError`): the SDK's own per-call work (request options, `Headers`, `Response`, abort signals)
 * cost ~0.1-0.2 ms of CPU a call. `openAITransport`, the same call through the SDK (built with
 * `maxRetries: 0`: the Effect schedule owns retries; sending through `makeHttpFetch`), takes redirects and
 * is what test/liveTransport.test.ts holds the direct transport equal to. Bodies are read whole: an answer
 * whose HTTP body is not JSON is archived as the text it was instead of a bare SyntaxError.
 *
 * The API key is read with `Config.redacted("OPENAI_API_KEY")`, handed only to the SDK, and scrubbed
 * from every body, error and record that comes back (some servers echo it).
 */
import { Config, Effect, Layer, Option, Redacted } from "effect"
import OpenAI from "openai"
import type { Backend, LlmSettings } from "../../domain/llm.js"
import { shownUrl } from "../../domain/llm.js"
import {
  Authentication,
  BadRequest,
  MissingApiKey,
  NotFound,
  QuotaExceeded,
  RateLimited,
  Timeout,
  Transient
} from "../../domain/llm.js"
import type { LlmApi } from "../Llm.js"
import { Llm } from "../Llm.js"
import type { RateLimiterApi } from "../RateLimiter.js"
import { RateLimiter } from "../RateLimiter.js"
import { requestJson } from "./answer.js"
import type { Transport, TransportFailure, TransportReply } from "./engine.js"
import { makeEngine } from "./engine.js"
import type { HttpAnswer } from "./httpFetch.js"
import { answerText, httpRequest, isRedirect, keepAliveAgents, makeHttpFetch } from "./httpFetch.js"
import { parseRateLimitReset, parseRetryAfter } from "./retry.js"

/**
 * Replaces every occurrence of `secret` in the strings (and keys) of a value: a JSON body, or a typed error (a copy
 * of the same class, its fields and stack scrubbed: a JSON round trip made it a plain object the run could
 * no longer tell apart). Parts without the secret are kept as they are.
 */
export const scrub = <T>(value: T, secret: string): T =>
  secret === "" ? value : scrubValue(value, secret, new WeakSet()) as T

const scrubValue = (value: unknown, secret: string, seen: WeakSet<object>): unknown => {
  if (typeof value === "string") return value.includes(secret) ? value.split(secret).join("[redacted]") : value
  if (typeof value !== "object" || value === null || seen.has(value)) return value
  seen.add(value)
  if (Array.isArray(value)) {
    const items = value.map((v) => scrubValue(v, secret, seen))
    return items.some((v, i) => v !== value[i]) ? items : value
  }
  const copy = Object.create(Object.getPrototypeOf(value)) as object
  let changed = false
  for (const key of Reflect.ownKeys(value)) {
    const field = Object.getOwnPropertyDescriptor(value, key)!
    if ("value" in field) {
      const scrubbed = scrubValue(field.value, secret, seen)
      changed ||= scrubbed !== field.value
      field.value = scrubbed
    }
    const name = typeof key === "string" ? scrubValue(key, secret, seen) as string : key
    changed ||= name !== key
    Object.defineProperty(copy, name, field)
  }
  return changed ? copy : value
}

class NotJsonBody {
  constructor(readonly text: string, readonly httpStatus: number, readonly requestId: string | null) {}
}

const causeMessage = (e: unknown): string => {
  const cause = (e as { cause?: unknown }).cause as { code?: string; message?: string } | undefined
  return cause === undefined ? "" : `: ${cause.code ?? cause.message ?? String(cause)}`
}

/** SDK error → typed error (with the HTTP details the attempt record keeps). */
export const classifyError = (e: unknown, settings: LlmSettings): TransportFailure => {
  if (e instanceof NotJsonBody) {
    return {
      error: new Transient({
        reason: `HTTP ${e.httpStatus} answer is not JSON (${e.text.length} characters)`,
        httpStatus: e.httpStatus,
        requestId: e.requestId
      }),
      httpStatus: e.httpStatus,
      response: e.text,
      requestId: e.requestId
    }
  }
  if (e instanceof OpenAI.APIConnectionTimeoutError) return { error: new Timeout({ timeoutMs: settings.timeoutMs }) }
  if (e instanceof OpenAI.APIUserAbortError) return { error: new Transient({ reason: "the request was aborted" }) }
  if (e instanceof OpenAI.APIConnectionError) {
    return { error: new Transient({ reason: `connection error${causeMessage(e)}` }) }
  }
  if (e instanceof OpenAI.APIError && typeof e.status === "number") {
    const status = e.status
    const body = (e.error ?? undefined) as { message?: unknown; param?: unknown; code?: unknown } | undefined
    const reason = typeof body?.message === "string" && body.message !== "" ? body.message : e.message
    const code = typeof e.code === "string" ? e.code : typeof body?.code === "string" ? body.code : null
    const param = typeof e.param === "string" ? e.param : typeof body?.param === "string" ? body.param : null
    const requestId = e.requestID ?? null
    const details = { httpStatus: status, response: body === undefined ? e.message : { error: body }, requestId }
    const header = (name: string) => e.headers?.get(name)
    // A server-named wait on any status that is retried; on a 429 also the rate-limit reset headers.
    const asked = parseRetryAfter(header) ?? (status === 429 ? parseRateLimitReset(header) : undefined)
    const wait = asked === undefined ? {} : { retryAfterMs: asked }
    if (status === 429) {
      if (code === "insufficient_quota") return { ...details, error: new QuotaExceeded({ reason, httpStatus: status }) }
      return { ...details, error: new RateLimited({ reason, httpStatus: status, requestId, ...wait }) }
    }
    if (status === 401 || status === 403) {
      return { ...details, error: new Authentication({ reason, httpStatus: status }) }
    }
    if (status === 404) return { ...details, error: new NotFound({ reason, code }) }
    if (status === 408 || status === 409 || status >= 500) {
      return { ...details, error: new Transient({ reason, httpStatus: status, requestId, ...wait }) }
    }
    return { ...details, error: new BadRequest({ reason, param, code, httpStatus: status }) }
  }
  return { error: new Transient({ reason: e instanceof Error ? e.message : String(e) }) }
}

/** The call ran out of `settings.timeoutMs` (the transport's own timer aborted it). */
class TimedOut {}

/**
 * One HTTP call through the SDK; interruption aborts it, and so does its own timer after
 * `settings.timeoutMs` (a `Timeout` failure, what the engine's race would give: `transportTimesOut`).
 */
export const openAITransport = (client: OpenAI, settings: LlmSettings, secret: string): Transport => (call) =>
  Effect.tryPromise({
    try: async (interrupted) => {
      const controller = new AbortController()
      const abort = () => controller.abort()
      interrupted.addEventListener("abort", abort, { once: true })
      let timedOut = false
      const timer = setTimeout(() => ((timedOut = true), controller.abort()), settings.timeoutMs)
      try {
        // What `responses.create` / `chat.completions.create` send, with the body's JSON made from the
        // pieces every request shares (answer.ts `requestJson`; the archive record reuses it).
        const response = await client.post(call.backend === "responses" ? "/responses" : "/chat/completions", {
          body: requestJson(call.body),
          headers: { "content-type": "application/json" },
          signal: controller.signal,
          timeout: settings.timeoutMs + 1_000,
          stream: false
        }).asResponse()
        const requestId = response.headers.get("x-request-id")
        const text = await response.text()
        let body: unknown
        try {
          body = JSON.parse(text)
        } catch {
          throw new NotJsonBody(scrub(text, secret), response.status, requestId)
        }
        return { body: scrub(body, secret), httpStatus: response.status, requestId }
      } catch (e) {
        // The timer's abort, whatever the SDK made of it; an answer that came whole but is not JSON stays so.
        throw timedOut && !(e instanceof NotJsonBody) ? new TimedOut() : e
      } finally {
        clearTimeout(timer)
        interrupted.removeEventListener("abort", abort)
      }
    },
    catch: (e): TransportFailure =>
      e instanceof TimedOut
        ? { error: new Timeout({ timeoutMs: settings.timeoutMs }) }
        : scrub(classifyError(e, settings), secret)
  })

/** What the SDK sends with every request of a client to one endpoint: its URL and headers. */
interface Prepared {
  readonly url: URL
  readonly headers: Readonly<Record<string, string>>
  readonly agent: ReturnType<typeof keepAliveAgents>["http:"] | undefined
}

const pathOf = (backend: Backend) => backend === "responses" ? "/responses" : "/chat/completions"

/**
 * The URL and headers the SDK's `post` sends for `backend` (Authorization, Accept, User-Agent, the
 * X-Stainless-* headers, content-type), as the SDK builds them: the same for every call of a client, as it
 * never retries (`maxRetries: 0`, so X-Stainless-Retry-Count stays 0) and sends no idempotency key.
 */
const prepare = async (
  client: OpenAI,
  settings: LlmSettings,
  backend: Backend,
  agents: ReturnType<typeof keepAliveAgents>
) => {
  const { req, url } = await client.buildRequest({
    method: "post",
    path: pathOf(backend),
    body: "{}",
    headers: { "content-type": "application/json" },
    timeout: settings.timeoutMs + 1_000,
    stream: false
  })
  const target = new URL(url)
  return {
    url: target,
    headers: Object.fromEntries(req.headers as Headers),
    agent: agents[target.protocol as keyof typeof agents]
  } satisfies Prepared
}

/** The SDK's error for a connection that failed (`makeRequest`: a timeout by its text, else a connection error). */
const connectionError = (e: unknown) => {
  const error = e instanceof Error ? e : new Error(String(e))
  const cause = "cause" in error ? String(error.cause) : ""
  return /timed? ?out/i.test(String(error) + cause)
    ? new OpenAI.APIConnectionTimeoutError()
    : new OpenAI.APIConnectionError({ message: "Connection error.", cause: error })
}

/** The SDK's error for an answer that is not 2xx (`makeRequest` → `APIError.generate`). */
const statusError = (answer: HttpAnswer, text: string) => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  const headers = new Headers()
  for (let i = 0; i + 1 < answer.rawHeaders.length; i += 2) {
    headers.append(answer.rawHeaders[i]!, answer.rawHeaders[i + 1]!)
  }
  return OpenAI.APIError.generate(answer.status, json as object, json ? undefined : text, headers)
}

/**
 * Whether `scrub(JSON.parse(text), secret)` could change anything. Known not to when the text neither
 * holds the secret nor has a `\u` escape, for a secret of word characters and dashes that is not all
 * number characters: such a secret can only sit inside one string (or key) of the JSON, which the text
 * spells as it is (no escape can make one of its characters but `\u`), not across tokens or in a number
 * that JSON.stringify writes differently. Any other secret is scrubbed the long way.
 */
const mayHoldSecret = (text: string, secret: string) =>
  secret !== "" &&
  (!/^[\w-]+$/.test(secret) || !/[^0-9eE+.-]/.test(secret) || text.includes(secret) || text.includes("\\u"))

/**
 * The live transport: each call posted on node:http with the URL and headers the SDK would send
 * (`prepare`), its answer read and judged as `openAITransport` judges the SDK's (the same failures, built
 * by the SDK's own error classes and `classifyError`), without the SDK's per-call work (its request
 * options, `Headers`, `Response` and abort signals, its log details). A redirect goes through the SDK
 * transport (sent again, as `fetch` follows it). Interruption and the call's own timer (`Timeout` after
 * `settings.timeoutMs`) destroy the request.
 */
export const directTransport = (client: OpenAI, settings: LlmSettings, secret: string): Transport => {
  const viaSdk = openAITransport(client, settings, secret)
  const agents = keepAliveAgents()
  // Both endpoints' URL and headers are made at once (the SDK builds them asynchronously), so that a call,
  // the first included, finds them ready and goes out in the step that sends it.
  const prepared: Partial<Record<Backend, Prepared>> = {}
  const preparing = (["responses", "chat"] as const).map((backend) => {
    const made = prepare(client, settings, backend, agents)
    made.then((p) => (prepared[backend] = p), () => undefined)
    return [backend, made] as const
  })
  const ready = Object.fromEntries(preparing) as Record<Backend, Promise<Prepared>>
  const failure = (e: unknown): TransportFailure => scrub(classifyError(e, settings), secret)
  const judge = (answer: HttpAnswer): Effect.Effect<TransportReply, TransportFailure> | undefined => {
    let text: string
    try {
      text = answerText(answer)
    } catch (e) {
      // A body that cannot be decompressed: `fetch` (and so the SDK) fails the connection.
      return Effect.fail(failure(connectionError(e)))
    }
    if (answer.status < 200 || answer.status > 299) return Effect.fail(failure(statusError(answer, text)))
    const id = answer.headers["x-request-id"]
    const requestId = typeof id === "string" ? id : null
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      return Effect.fail(failure(new NotJsonBody(scrub(text, secret), answer.status, requestId)))
    }
    return Effect.succeed({
      body: mayHoldSecret(text, secret) ? scrub(body, secret) : body,
      httpStatus: answer.status,
      requestId
    })
  }
  const post = (call: Parameters<Transport>[0], target: Prepared) =>
    Effect.async<TransportReply, TransportFailure>((resume) => {
      const bytes = Buffer.from(requestJson(call.body), "utf8")
      const headers = { ...target.headers, "content-length": String(bytes.byteLength) }
      const timer = setTimeout(() => {
        request.destroy()
        resume(Effect.fail({ error: new Timeout({ timeoutMs: settings.timeoutMs }) }))
      }, settings.timeoutMs)
      const request = httpRequest(target.url, { method: "POST", headers, agent: target.agent! }, bytes, (e, answer) => {
        clearTimeout(timer)
        if (answer === undefined) return resume(Effect.fail(failure(connectionError(e))))
        resume(isRedirect(answer) ? viaSdk(call) : judge(answer)!)
      })
      return Effect.sync(() => {
        clearTimeout(timer)
        request.destroy()
      })
    })
  return (call) => {
    const target = prepared[call.backend]
    if (target !== undefined) return target.agent === undefined ? viaSdk(call) : post(call, target)
    return Effect.tryPromise({ try: () => ready[call.backend], catch: failure }).pipe(
      Effect.flatMap((p) => p.agent === undefined ? viaSdk(call) : post(call, p))
    )
  }
}

export const makeLiveLlm = (
  settings: LlmSettings,
  apiKey: Redacted.Redacted<string>,
  limiter?: RateLimiterApi
): LlmApi => {
  const client = new OpenAI({
    apiKey: Redacted.value(apiKey),
    ...(settings.baseUrl === undefined ? {} : { baseURL: settings.baseUrl }),
    maxRetries: 0,
    timeout: settings.timeoutMs + 1_000,
    fetch: makeHttpFetch()
  })
  return makeEngine(directTransport(client, settings, Redacted.value(apiKey)), settings, {
    limiter,
    transportTimesOut: true,
    describe: (backend) =>
      `openai ${backend} ${settings.model}${settings.baseUrl === undefined ? "" : ` at ${shownUrl(settings.baseUrl)}`}`
  })
}

/** A character an HTTP header value cannot hold (Node's check: tab, printable ASCII and 0x80-0xff only). */
const HEADER_UNSAFE = /[^\t\x20-\x7e\x80-\xff]/

/** What makes `key` unsendable (its position, never the key), undefined when it can be sent. */
const unsendable = (key: string): string | undefined => {
  const at = key.search(HEADER_UNSAFE)
  if (at === -1) return undefined
  const code = key.codePointAt(at)!
  const what = code === 13 || code === 10
    ? "a line end"
    : code < 32 || code === 127
    ? "a control character"
    : "a character outside Latin-1"
  return `holds ${what} (U+${code.toString(16).toUpperCase().padStart(4, "0")}) at character ${
    at + 1
  } of ${key.length}` +
    (code === 13 ? " (a .env file saved with Windows line ends?)" : "")
}

/** Spaces and tabs around a header's value: HTTP drops them, so the server gets the key without them. */
const HEADER_PADDING = /^[ \t]+|[ \t]+$/g

/**
 * OPENAI_API_KEY (redacted) without the spaces and tabs around it (a key pasted with a trailing space is sent, and
 * echoed by a server that quotes it, without the space: the key scrubbed is the key sent), or MissingApiKey when
 * absent or empty, or holding what a header cannot carry.
 */
export const apiKeyConfig: Effect.Effect<Redacted.Redacted<string>, MissingApiKey> = Config.option(
  Config.redacted("OPENAI_API_KEY")
).pipe(
  Effect.orElseSucceed(() => Option.none()),
  Effect.flatMap((key) => {
    if (Option.isNone(key) || Redacted.value(key.value).trim() === "") return Effect.fail(new MissingApiKey({}))
    const value = Redacted.value(key.value)
    const sent = value.replace(HEADER_PADDING, "")
    const unusable = unsendable(sent)
    if (unusable !== undefined) return Effect.fail(new MissingApiKey({ unusable }))
    return Effect.succeed(sent === value ? key.value : Redacted.make(sent))
  })
)

/** Settings' base URL, else OPENAI_BASE_URL, else the SDK default. */
export const resolveBaseUrl = (settings: LlmSettings): Effect.Effect<LlmSettings> =>
  settings.baseUrl !== undefined
    ? Effect.succeed(settings)
    : Config.option(Config.nonEmptyString("OPENAI_BASE_URL")).pipe(
      Effect.orElseSucceed(() => Option.none()),
      Effect.map((url) => (Option.isSome(url) ? { ...settings, baseUrl: url.value } : settings))
    )

/** The live layer; every HTTP attempt waits for the `RateLimiter` (provide `rateLimiterLayer({})` for none). */
export const LlmLive = (settings: LlmSettings): Layer.Layer<Llm, MissingApiKey, RateLimiter> =>
  Layer.effect(
    Llm,
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const key = yield* apiKeyConfig
      const resolved = yield* resolveBaseUrl(settings)
      return makeLiveLlm(resolved, key, limiter)
    })
  )
