/**
 * The live transport posts on node:http itself (`directTransport`) instead of through the openai SDK
 * (`openAITransport`): both against the same server, for every kind of answer, must give the same reply
 * or failure, and the server must receive the same request (method, path, headers, body).
 */
import { Effect, Either, Fiber } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as zlib from "node:zlib"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeLlmSettings } from "../src/domain/llm.js"
import type { Transport } from "../src/services/llm/engine.js"
import { makeHttpFetch } from "../src/services/llm/httpFetch.js"
import { directTransport, openAITransport } from "../src/services/llm/live.js"

const KEY = "sk-test-transport-9b1c7e"

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: Record<string, unknown>
  readonly body: string
}

const seen: Array<Seen> = []
const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body))

/** Answers by the path's last segment before the endpoint, e.g. `/gzip/v1/responses`. */
const routes: Record<string, (res: http.ServerResponse, req: http.IncomingMessage) => void> = {
  ok: (res) => json(res, 200, { id: "r1", output: [], usage: { input_tokens: 3 } }, { "x-request-id": "req_1" }),
  echo: (res) => json(res, 200, { text: `your key is ${KEY}`, [KEY]: 1 }),
  escaped: (res) =>
    res.writeHead(200, { "content-type": "application/json" }).end(
      `{"text":"${KEY.replace("s", "\\u0073")}"}`
    ),
  bom: (res) => res.writeHead(200).end(`\ufeff{"a":1}`),
  notJson: (res) => res.writeHead(200, { "x-request-id": "req_2" }).end(`<html>${KEY}</html>`),
  empty204: (res) => res.writeHead(204).end(),
  gzip: (res) =>
    res.writeHead(200, { "content-encoding": "gzip", "content-type": "application/json" }).end(
      zlib.gzipSync(JSON.stringify({ zipped: true }))
    ),
  badGzip: (res) => res.writeHead(200, { "content-encoding": "gzip" }).end("not gzip"),
  redirect: (res, req) => res.writeHead(307, { location: req.url!.replace("/redirect/", "/ok/") }).end(),
  e400: (res) =>
    json(res, 400, {
      error: { message: `bad ${KEY}`, type: "invalid_request_error", param: "reasoning.effort", code: null }
    }),
  e429: (res) =>
    json(res, 429, { error: { message: "slow down", code: "rate_limit_exceeded" } }, {
      "retry-after-ms": "250",
      "x-request-id": "req_3"
    }),
  quota: (res) => json(res, 429, { error: { message: "no money", code: "insufficient_quota" } }),
  e401: (res) => json(res, 401, { error: { message: "who are you" } }),
  e401key: (res) =>
    json(res, 401, { error: { message: `Incorrect API key provided: ${KEY}`, code: "invalid_api_key" } }),
  e404: (res) => json(res, 404, { error: { message: "no such model", code: "model_not_found" } }),
  e500text: (res) => res.writeHead(500).end("upstream fell over"),
  e503null: (res) => res.writeHead(503, { "content-type": "application/json" }).end("null"),
  reset: (_res, req) => req.socket.destroy(),
  cut: (res) => {
    res.writeHead(200, { "content-length": "100" })
    res.write("{\"partial\":")
    setTimeout(() => res.socket?.destroy(), 10)
  },
  hang: (_res, req) => void req.socket.once("close", () => hangsClosed++)
}
let hangsClosed = 0

let server: http.Server
let base: string
beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() })
      routes[req.url!.split("/")[1]!]!(res, req)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

const transports = (route: string, timeoutMs = 5_000): [Transport, Transport] => {
  const settings = makeLlmSettings({ baseUrl: `${base}/${route}/v1`, timeoutMs })
  const client = () =>
    new OpenAI({
      apiKey: KEY,
      baseURL: settings.baseUrl,
      maxRetries: 0,
      timeout: settings.timeoutMs + 1_000,
      fetch: makeHttpFetch()
    })
  return [openAITransport(client(), settings, KEY), directTransport(client(), settings, KEY)]
}

const body = { model: "gpt-5-mini", input: [{ role: "user", content: "héllo" }], text: { format: { type: "json" } } }

/** What each transport gives for one call, and what the server received from each. */
const both = async (route: string, backend: "responses" | "chat" = "responses", timeoutMs?: number) => {
  const [sdk, direct] = transports(route, timeoutMs)
  const outcomes = []
  const requests = []
  for (const t of [sdk, direct]) {
    const before = seen.length
    outcomes.push(await Effect.runPromise(Effect.either(t({ backend, body }))))
    requests.push(seen.slice(before))
  }
  return { sdk: outcomes[0]!, direct: outcomes[1]!, sdkRequests: requests[0]!, directRequests: requests[1]! }
}

/** Headers that differ from request to request whoever sends them. */
const comparable = (r: Seen) => {
  const { connection: _c, ...headers } = r.headers
  return { ...r, headers }
}

describe("directTransport gives what the SDK transport gives", () => {
  for (const route of Object.keys(routes).filter((r) => r !== "hang")) {
    it(`${route}`, async () => {
      const { direct, directRequests, sdk, sdkRequests } = await both(route)
      expect(direct).toEqual(sdk)
      // A redirect is sent again through the SDK (which follows it, as fetch does) after the first post.
      const sent = route === "redirect" ? directRequests.slice(1) : directRequests
      expect(sent.map(comparable)).toEqual(sdkRequests.map(comparable))
    })
  }

  it("chat: the same path, headers and body", async () => {
    const { direct, directRequests, sdk, sdkRequests } = await both("ok", "chat")
    expect(direct).toEqual(sdk)
    expect(directRequests[0]!.url).toBe("/ok/v1/chat/completions")
    expect(directRequests.map(comparable)).toEqual(sdkRequests.map(comparable))
  })

  it("the key sent as a bearer token, the body as its JSON", async () => {
    const { directRequests } = await both("ok")
    expect(directRequests[0]!.headers.authorization).toBe(`Bearer ${KEY}`)
    expect(JSON.parse(directRequests[0]!.body)).toEqual(body)
  })

  it("scrubs the key from answers, errors and non-JSON text (escaped in the JSON too)", async () => {
    for (const route of ["echo", "escaped", "notJson", "e400"]) {
      const { direct } = await both(route)
      expect(JSON.stringify(Either.isLeft(direct) ? { ...direct.left, m: direct.left.error.message } : direct.right))
        .not.toContain(KEY)
    }
    // An error whose message held the key stays the typed error it was, with its message (it became a plain
    // object without one: the run reported an internal error instead of the API's refusal).
    for (const [route, tag] of [["e400", "BadRequest"], ["e401key", "Authentication"]] as const) {
      const { direct } = await both(route)
      if (Either.isRight(direct)) throw new Error("expected a failure")
      expect(direct.left.error._tag).toBe(tag)
      expect(direct.left.error).toBeInstanceOf(Error)
      expect(direct.left.error.message).toContain("[redacted]")
      expect(direct.left.error.message).not.toContain(KEY)
      expect(String(direct.left.error.stack)).not.toContain(KEY)
    }
  })

  it("a call that outlives the timeout fails with Timeout, as the SDK transport's does", async () => {
    const { direct, sdk } = await both("hang", "responses", 100)
    expect(Either.isLeft(direct) && direct.left.error._tag).toBe("Timeout")
    expect(direct).toEqual(sdk)
  })

  it("interruption destroys the request", async () => {
    const [, direct] = transports("hang")
    const [before, closed] = [seen.length, hangsClosed]
    const fiber = Effect.runFork(direct({ backend: "responses", body }))
    while (seen.length === before) await new Promise((r) => setTimeout(r, 5))
    await Effect.runPromise(Fiber.interrupt(fiber))
    while (hangsClosed === closed) await new Promise((r) => setTimeout(r, 5))
    expect(hangsClosed).toBe(closed + 1)
  })
})
