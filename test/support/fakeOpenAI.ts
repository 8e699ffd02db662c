/**
 * An OpenAI-compatible fake HTTP server for tests (node:http on 127.0.0.1, port 0).
 *
 * Serves POST /v1/responses and /v1/chat/completions. Each request is answered by a handler
 * `(ctx) => FakeReply` (or a list of replies, one per request in order): a realistic answer built from
 * text (`answer`, or `chatAnswer` / `responsesAnswer` for one endpoint), an HTTP error (`httpError`,
 * `rateLimited`, `serverError`), a connection reset, a hang, a truncated answer, a refusal, a body that
 * is not JSON, each with an optional latency. Every request is logged (endpoint, parsed body, headers
 * without `authorization`, time) for assertions.
 *
 *     const fake = await start(() => answer(JSON.stringify({ ok: true })))
 *     // new OpenAI({ baseURL: fake.baseUrl, apiKey: "sk-test" }) ...
 *     await fake.close()
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Usage } from "../../src/domain/llm.js"
import { answerBody, chatCompletionBody, responsesBody } from "./apiBodies.js"

export type Endpoint = "responses" | "chat"

export interface FakeContext {
  readonly endpoint: Endpoint
  readonly body: any
  /** 0-based index of this request among all requests the server received. */
  readonly index: number
  readonly headers: Readonly<Record<string, string>>
  /** The raw authorization header (for handlers that check or echo it; never in the request log). */
  readonly authorization: string | undefined
}

interface Timing {
  /** Wait this long before answering. */
  readonly latencyMs?: number | undefined
}

export type FakeReply =
  /** An answer with this text, shaped for the endpoint that was called. */
  | Timing & { readonly kind: "answer"; readonly text: string; readonly usage?: Partial<Usage> | undefined }
  /** A JSON body as is. */
  | Timing & {
    readonly kind: "json"
    readonly body: unknown
    readonly status?: number | undefined
    readonly headers?: Readonly<Record<string, string>> | undefined
  }
  | Timing & { readonly kind: "truncated"; readonly text: string; readonly reason?: string | undefined }
  | Timing & { readonly kind: "refusal"; readonly text: string }
  /** A body that is not JSON, served as application/json. */
  | Timing & { readonly kind: "malformed"; readonly text: string; readonly status?: number | undefined }
  /** Destroys the socket without answering. */
  | Timing & { readonly kind: "reset" }
  /** Never answers. */
  | { readonly kind: "hang" }

export type FakeHandler = (ctx: FakeContext) => FakeReply | Promise<FakeReply>

export const answer = (text: string, usage?: Partial<Usage>): FakeReply => ({ kind: "answer", text, usage })

export const chatAnswer = (text: string, usage?: Partial<Usage>): FakeReply => ({
  kind: "json",
  body: chatCompletionBody(text, { usage })
})

export const responsesAnswer = (text: string, usage?: Partial<Usage>): FakeReply => ({
  kind: "json",
  body: responsesBody(text, { usage })
})

export interface ErrorOptions {
  readonly type?: string
  readonly param?: string | null
  readonly code?: string | null
  readonly headers?: Readonly<Record<string, string>>
}

/** An error answer shaped like OpenAI's: `{ error: { message, type, param, code } }`. */
export const httpError = (status: number, message: string, options: ErrorOptions = {}): FakeReply => ({
  kind: "json",
  status,
  headers: options.headers,
  body: {
    error: {
      message,
      type: options.type ?? (status === 429 ? "requests" : status >= 500 ? "server_error" : "invalid_request_error"),
      param: options.param ?? null,
      code: options.code ?? null
    }
  }
})

export const rateLimited = (wait: { readonly ms?: number; readonly seconds?: number } = {}): FakeReply =>
  httpError(429, "Rate limit reached for gpt-5-mini on requests per min (RPM): Limit 3, Used 3, Requested 1.", {
    code: "rate_limit_exceeded",
    headers: {
      ...(wait.ms === undefined ? {} : { "retry-after-ms": String(wait.ms) }),
      ...(wait.seconds === undefined ? {} : { "retry-after": String(wait.seconds) })
    }
  })

export const serverError = (status = 500): FakeReply =>
  httpError(status, "The server had an error while processing your request. Sorry about that!")

export const connectionReset = (): FakeReply => ({ kind: "reset" })
export const hang = (): FakeReply => ({ kind: "hang" })
export const truncated = (text: string, reason?: string): FakeReply => ({ kind: "truncated", text, reason })
export const refusal = (text: string): FakeReply => ({ kind: "refusal", text })
export const malformedBody = (text: string): FakeReply => ({ kind: "malformed", text })
export const withLatency = (reply: FakeReply, latencyMs: number): FakeReply =>
  reply.kind === "hang" ? reply : { ...reply, latencyMs }

export interface FakeRequest {
  readonly endpoint: Endpoint | "other"
  readonly method: string
  readonly path: string
  readonly body: any
  /** Request headers, `authorization` removed. */
  readonly headers: Readonly<Record<string, string>>
  /** Whether a `Bearer` authorization header was sent. */
  readonly authorized: boolean
  readonly time: number
  /** Set when the client closed the connection before the answer was sent (e.g. an aborted request). */
  abortedByClient: boolean
}

export interface FakeServer {
  /** e.g. http://127.0.0.1:41234/v1 */
  readonly baseUrl: string
  readonly requests: Array<FakeRequest>
  close(): Promise<void>
}

export interface FakeOptions {
  /** Latency added to every reply that does not set its own. */
  readonly latencyMs?: number
}

const endpointOf = (url: string): Endpoint | "other" => {
  const p = url.split("?")[0]
  return p.endsWith("/responses") ? "responses" : p.endsWith("/chat/completions") ? "chat" : "other"
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const start = (
  handler: FakeHandler | ReadonlyArray<FakeReply>,
  options: FakeOptions = {}
): Promise<FakeServer> => {
  const requests: Array<FakeRequest> = []
  let requestId = 0
  const handle: FakeHandler = typeof handler === "function"
    ? handler
    : ({ index }) =>
      handler[index] ??
        httpError(500, `fake OpenAI: no reply scripted for request ${index + 1}`, { type: "fake_exhausted" })

  const server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", async () => {
      const text = Buffer.concat(chunks).toString("utf8")
      let body: any = text
      try {
        body = text === "" ? undefined : JSON.parse(text)
      } catch {
        // logged as text
      }
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(req.headers)) {
        if (k !== "authorization" && v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v
      }
      const endpoint = endpointOf(req.url ?? "")
      const index = requests.length
      const logged: FakeRequest = {
        endpoint,
        method: req.method ?? "",
        path: req.url ?? "",
        body,
        headers,
        authorized: /^Bearer \S+/.test(req.headers.authorization ?? ""),
        time: Date.now(),
        abortedByClient: false
      }
      requests.push(logged)
      res.on("close", () => {
        if (!res.writableEnded) logged.abortedByClient = true
      })
      const send = (status: number, payload: string, extra: Readonly<Record<string, string>> = {}) => {
        res.writeHead(status, {
          "content-type": "application/json",
          "x-request-id": `req_fake_${++requestId}`,
          ...extra
        })
        res.end(payload)
      }
      if (req.method !== "POST" || endpoint === "other") {
        send(
          404,
          JSON.stringify({
            error: {
              message: `Unknown request URL: ${req.method} ${req.url}`,
              type: "invalid_request_error",
              param: null,
              code: "unknown_url"
            }
          })
        )
        return
      }
      let reply: FakeReply
      try {
        reply = await handle({ endpoint, body, index, headers, authorization: req.headers.authorization })
      } catch (e) {
        send(
          500,
          JSON.stringify({
            error: { message: `fake OpenAI handler threw: ${String(e)}`, type: "fake_error", param: null, code: null }
          })
        )
        return
      }
      if (reply.kind === "hang") return
      const latency = reply.latencyMs ?? options.latencyMs ?? 0
      if (latency > 0) await sleep(latency)
      switch (reply.kind) {
        case "reset":
          req.socket.destroy()
          return
        case "answer":
          send(200, JSON.stringify(answerBody(endpoint, reply.text, { usage: reply.usage })))
          return
        case "json":
          send(reply.status ?? 200, JSON.stringify(reply.body), reply.headers)
          return
        case "truncated":
          send(200, JSON.stringify(answerBody(endpoint, reply.text, { truncated: reply.reason ?? "length" })))
          return
        case "refusal":
          send(200, JSON.stringify(answerBody(endpoint, "", { refusal: reply.text })))
          return
        case "malformed":
          send(reply.status ?? 200, reply.text)
          return
      }
    })
  })

  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        baseUrl: `http://127.0.0.1:${port}/v1`,
        requests,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          })
      })
    })
  })
}
