/**
 * The live client's fetch (src/services/llm/httpFetch.ts) answers as Node's fetch does: status, headers
 * and body of plain, compressed and redirected answers; a reset connection and an abort reject.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as zlib from "node:zlib"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeHttpFetch } from "../src/services/llm/httpFetch.js"

let server: http.Server
let base: string
const received: Array<{ url: string; method: string; headers: http.IncomingHttpHeaders; body: string }> = []

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      received.push({ url: req.url ?? "", method: req.method ?? "", headers: req.headers, body })
      const json = JSON.stringify({ echo: body, path: req.url })
      if (req.url === "/gzip") {
        res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" })
        return res.end(zlib.gzipSync(json))
      }
      if (req.url === "/br") {
        res.writeHead(200, { "content-type": "application/json", "content-encoding": "br" })
        return res.end(zlib.brotliCompressSync(json))
      }
      if (req.url === "/redirect") {
        res.writeHead(307, { location: "/plain" })
        return res.end()
      }
      if (req.url === "/reset") return req.socket.destroy()
      if (req.url === "/cut") {
        res.writeHead(200, { "content-type": "application/json", "content-length": "1000" })
        res.write("{\"partial\":")
        return setTimeout(() => req.socket.destroy(), 20)
      }
      if (req.url === "/hang") return
      if (req.url === "/empty") {
        res.writeHead(204, { "x-request-id": "req_empty" })
        return res.end()
      }
      res.writeHead(req.url === "/error" ? 429 : 200, {
        "content-type": "application/json",
        "x-request-id": "req_1",
        "retry-after": "2"
      })
      res.end(json)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

const both = async (path: string, init: RequestInit = {}) => {
  const ours = await makeHttpFetch()(`${base}${path}`, init)
  const theirs = await fetch(`${base}${path}`, init)
  return { ours, theirs }
}

const post = (body: string | Uint8Array): RequestInit => ({
  method: "POST",
  headers: new Headers({ "content-type": "application/json", authorization: "Bearer sk-x" }),
  body
})

describe("makeHttpFetch", () => {
  it("answers with the status, headers and body Node's fetch gives (plain, error status, no body)", async () => {
    for (const path of ["/plain", "/error", "/empty"]) {
      const { ours, theirs } = await both(path, post("{\"a\":\"é\"}"))
      expect(ours.status).toBe(theirs.status)
      expect(ours.ok).toBe(theirs.ok)
      expect(ours.headers.get("x-request-id")).toBe(theirs.headers.get("x-request-id"))
      expect(ours.headers.get("retry-after")).toBe(theirs.headers.get("retry-after"))
      expect(ours.headers.get("content-type")).toBe(theirs.headers.get("content-type"))
      expect(await ours.text()).toBe(await theirs.text())
    }
  })

  it("sends the method, headers and body as given (string or bytes)", async () => {
    received.length = 0
    await makeHttpFetch()(`${base}/plain`, post("{\"a\":\"é\"}"))
    await makeHttpFetch()(`${base}/plain`, post(new TextEncoder().encode("bytes")))
    expect(received.map((r) => [r.method, r.body, r.headers.authorization, r.headers["content-type"]])).toEqual([
      ["POST", "{\"a\":\"é\"}", "Bearer sk-x", "application/json"],
      ["POST", "bytes", "Bearer sk-x", "application/json"]
    ])
    expect(received[0].headers["content-length"]).toBe(String(Buffer.byteLength("{\"a\":\"é\"}")))
  })

  it("decompresses gzip and brotli answers and follows a redirect, as fetch does", async () => {
    for (const path of ["/gzip", "/br", "/redirect"]) {
      const { ours, theirs } = await both(path, post("x"))
      expect(ours.status).toBe(theirs.status)
      expect(await ours.json()).toEqual(await theirs.json())
    }
  })

  it("rejects with the connection's error when it is reset, before or during the answer", async () => {
    await expect(makeHttpFetch()(`${base}/reset`, post("x"))).rejects.toMatchObject({ code: "ECONNRESET" })
    await expect(makeHttpFetch()(`${base}/cut`, post("x"))).rejects.toMatchObject({ code: "ECONNRESET" })
  })

  it("rejects with an AbortError when its signal aborts (before or while it waits)", async () => {
    const early = new AbortController()
    early.abort()
    await expect(makeHttpFetch()(`${base}/plain`, { ...post("x"), signal: early.signal })).rejects.toMatchObject({
      name: "AbortError"
    })
    const later = new AbortController()
    const pending = makeHttpFetch()(`${base}/hang`, { ...post("x"), signal: later.signal })
    setTimeout(() => later.abort(), 50)
    await expect(pending).rejects.toMatchObject({ name: "AbortError" })
  })
})
