/**
 * The `fetch` the live Llm client gives the openai SDK: one request on node:http(s) with a keep-alive
 * agent, the answer read whole and handed back as a `Response`. Node's own fetch (undici) costs ~0.5 ms of
 * CPU more per call (WHATWG streams for the body sent and for the answer, a request clone per call),
 * measured on 27 KB requests; the model's answers are small and read whole anyway (`live.ts`).
 *
 * What this does not handle goes to the global `fetch` as it is: a body that is not a string or bytes
 * (uploads), and a redirect (sent again through `fetch`, which follows it). Compressed answers are
 * decompressed as `fetch` does. Interruption (the SDK's timeout, or the caller's signal) destroys the
 * request; the promise then rejects with an `AbortError`, as `fetch`'s does, so the SDK tells timeouts and
 * aborts apart the same way. A connection that fails, before or during the answer, rejects with Node's
 * error (its `code`, e.g. ECONNRESET, names the cause).
 */
import * as http from "node:http"
import * as https from "node:https"
import * as zlib from "node:zlib"

type FetchInput = string | URL | Request

const NULL_BODY_STATUS = new Set([101, 204, 205, 304])
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308])

const abortError = (): Error => Object.assign(new Error("This operation was aborted"), { name: "AbortError" })

/** Request headers as a plain object (a `Headers`, pairs or a record). */
const headersOf = (init: RequestInit["headers"]): Record<string, string> => {
  if (init === undefined || init === null) return {}
  if (init instanceof Headers) return Object.fromEntries(init)
  if (Array.isArray(init)) return Object.fromEntries(init)
  return { ...(init as Record<string, string>) }
}

const decoded = (body: Buffer, encoding: string | undefined): Buffer => {
  switch (encoding?.trim().toLowerCase()) {
    case "gzip":
    case "x-gzip":
      return zlib.gunzipSync(body, { finishFlush: zlib.constants.Z_SYNC_FLUSH })
    case "deflate":
      return body[0] !== undefined && (body[0] & 0x0f) === 0x08 ? zlib.inflateSync(body) : zlib.inflateRawSync(body)
    case "br":
      return zlib.brotliDecompressSync(body)
    default:
      return body
  }
}

const responseOf = (res: http.IncomingMessage, body: Buffer): Response => {
  const headers = new Headers()
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!)
  const status = res.statusCode ?? 0
  return new Response(NULL_BODY_STATUS.has(status) ? null : decoded(body, res.headers["content-encoding"]), {
    status,
    statusText: res.statusMessage ?? "",
    headers
  })
}

/** A fetch on node:http(s) with its own keep-alive agents (one per client). */
export const makeHttpFetch = (): typeof fetch => {
  const agents = {
    "http:": new http.Agent({ keepAlive: true }),
    "https:": new https.Agent({ keepAlive: true })
  }
  return (input: FetchInput, init: RequestInit = {}): Promise<Response> => {
    const body = init.body
    const url = input instanceof Request ? undefined : new URL(input)
    const agent = url === undefined ? undefined : agents[url.protocol as keyof typeof agents]
    if (
      url === undefined || agent === undefined ||
      !(body === undefined || body === null || typeof body === "string" || body instanceof Uint8Array)
    ) return fetch(input, init)
    const signal = init.signal ?? undefined
    return new Promise<Response>((resolve, reject) => {
      let settled = false
      /** Ends the promise once: the first of an answer, a failure or an abort wins. */
      const settle = (end: () => void) => {
        if (settled) return
        settled = true
        signal?.removeEventListener("abort", onAbort)
        end()
      }
      const fail = (e: unknown) => settle(() => reject(e))
      const onAbort = () => {
        fail(abortError())
        req.destroy()
      }
      const headers = headersOf(init.headers)
      // A text body is sent as its UTF-8 bytes, made once: written as a string, Node's http would copy it
      // into a new string with the request head before writing it (and counting its bytes flattens it too).
      const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body ?? undefined
      if (bytes !== undefined) headers["content-length"] = String(bytes.byteLength)
      const send = url.protocol === "https:" ? https.request : http.request
      const req = send(url, { method: init.method ?? "GET", headers, agent }, (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("error", fail)
        // The connection closed before the whole answer came.
        res.on("close", () => {
          if (!res.complete) fail(Object.assign(new Error("aborted"), { code: "ECONNRESET" }))
        })
        res.on("end", () => {
          if (settled) return
          if (REDIRECT_STATUS.has(res.statusCode ?? 0) && res.headers.location !== undefined) {
            return settle(() => resolve(fetch(input, init)))
          }
          let response: Response
          try {
            response = responseOf(res, Buffer.concat(chunks))
          } catch (e) {
            return fail(e)
          }
          settle(() => resolve(response))
        })
      })
      req.on("error", fail)
      if (signal?.aborted === true) return onAbort()
      signal?.addEventListener("abort", onAbort, { once: true })
      req.end(bytes)
    })
  }
}
