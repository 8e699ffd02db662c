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

const responseOf = (answer: HttpAnswer): Response => {
  const headers = new Headers()
  const raw = answer.rawHeaders
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!)
  return new Response(NULL_BODY_STATUS.has(answer.status) ? null : bodyOf(answer), {
    status: answer.status,
    statusText: answer.statusText,
    headers
  })
}

/** A whole answer to `httpRequest`: its body read (as it came: `bodyOf` decompresses it). */
export interface HttpAnswer {
  readonly status: number
  readonly statusText: string
  /** Header names and values, alternating, as they came. */
  readonly rawHeaders: ReadonlyArray<string>
  readonly headers: http.IncomingHttpHeaders
  readonly body: Buffer
}

/** An answer's body, decompressed as `fetch` does (throws when it cannot be). */
export const bodyOf = (answer: HttpAnswer): Buffer => decoded(answer.body, answer.headers["content-encoding"])

/** The text `Response.text()` gives for the answer (UTF-8, a leading byte order mark dropped). */
export const answerText = (answer: HttpAnswer): string => {
  if (NULL_BODY_STATUS.has(answer.status)) return ""
  const text = bodyOf(answer).toString("utf8")
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

/** A redirect `fetch` would follow. */
export const isRedirect = (answer: HttpAnswer): boolean =>
  REDIRECT_STATUS.has(answer.status) && answer.headers.location !== undefined

/** Keep-alive agents for `httpRequest`, one per protocol. */
export const keepAliveAgents = () => ({
  "http:": new http.Agent({ keepAlive: true }),
  "https:": new https.Agent({ keepAlive: true })
})

/**
 * One request on node:http(s), the answer read whole (a redirect is handed back as it is). `done` is called once: with the answer, or with the connection's error (Node's, whose
 * `code` names the cause; ECONNRESET when the connection closed before the whole answer came). The caller
 * ends the request early with `destroy()` on what this returns (`done` is then not called).
 */
export const httpRequest = (
  url: URL,
  options: { readonly method: string; readonly headers: Record<string, string>; readonly agent: http.Agent },
  bytes: Uint8Array | undefined,
  done: (error: unknown, answer?: HttpAnswer) => void
): { readonly destroy: () => void } => {
  let settled = false
  const settle = (error: unknown, answer?: HttpAnswer) => {
    if (settled) return
    settled = true
    done(error, answer)
  }
  const send = url.protocol === "https:" ? https.request : http.request
  const req = send(url, options, (res) => {
    const chunks: Array<Buffer> = []
    res.on("data", (chunk: Buffer) => chunks.push(chunk))
    res.on("error", settle)
    // The connection closed before the whole answer came.
    res.on("close", () => {
      if (!res.complete) settle(Object.assign(new Error("aborted"), { code: "ECONNRESET" }))
    })
    res.on("end", () => {
      settle(undefined, {
        status: res.statusCode ?? 0,
        statusText: res.statusMessage ?? "",
        rawHeaders: res.rawHeaders,
        headers: res.headers,
        body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
      })
    })
  })
  req.on("error", settle)
  req.end(bytes)
  return {
    destroy: () => {
      settled = true
      req.destroy()
    }
  }
}

/** A fetch on node:http(s) with its own keep-alive agents (one per client). */
export const makeHttpFetch = (): typeof fetch => {
  const agents = keepAliveAgents()
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
      if (signal?.aborted === true) return reject(abortError())
      const headers = headersOf(init.headers)
      // A text body is sent as its UTF-8 bytes, made once: written as a string, Node's http would copy it
      // into a new string with the request head before writing it (and counting its bytes flattens it too).
      const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body ?? undefined
      if (bytes !== undefined) headers["content-length"] = String(bytes.byteLength)
      const request = httpRequest(url, { method: init.method ?? "GET", headers, agent }, bytes, (error, answer) => {
        signal?.removeEventListener("abort", onAbort)
        if (answer === undefined) return reject(error)
        if (isRedirect(answer)) return resolve(fetch(input, init))
        try {
          resolve(responseOf(answer))
        } catch (e) {
          reject(e)
        }
      })
      const onAbort = () => {
        request.destroy()
        reject(abortError())
      }
      signal?.addEventListener("abort", onAbort, { once: true })
    })
  }
}
