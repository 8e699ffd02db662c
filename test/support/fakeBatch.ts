/**
 * A fake of OpenAI's Files + Batches API for tests (node:http on 127.0.0.1, port 0), in front of the
 * single-request fake (./fakeOpenAI.ts), to which it forwards /v1/responses and /v1/chat/completions
 * (online repairs during a collect).
 *
 * - `POST /v1/files` (multipart, purpose `batch`), `GET /v1/files/:id`, `GET /v1/files/:id/content`,
 *   `GET /v1/files?purpose=&order=desc&limit=&after=` (newest first, cursor pages).
 * - `POST /v1/batches` checks the input file as OpenAI does (JSONL, unique custom_id, method POST,
 *   url = the batch's endpoint, one model, at most `maxRequests` lines) and starts `validating`;
 *   each `GET /v1/batches/:id` moves it one step: validating → in_progress → finalizing → its final
 *   status (`completed`, or what `finalStatus(batchNo)` says: `expired`, `failed`, `cancelled`).
 *   An input file that breaks the rules makes the batch `failed` with `errors.data`; with `queueLimit`,
 *   a batch whose tokens do not fit beside the batches in progress fails with `token_limit_exceeded`
 *   as OpenAI's does. `GET /v1/batches?limit=&after=` lists batches newest first, with their metadata.
 * - `accepted(event)`: called once an upload or a create is stored, before the answer: a test can kill
 *   the client there (a crash after the remote step, before the client recorded it), or answer `hang`
 *   (never answer: the client times out after the API accepted the call) or `drop` (reset the connection).
 * - Counts: `batchesPerPart()` (by the run id and part in the metadata), `uploadsPerContent()`.
 * - When a batch finishes, every line is answered by `lines(ctx)`: an answer built from text, any
 *   response (status + body, e.g. a 500: goes to the error file), a line error (response null), or
 *   `skip` (never run: `batch_expired` in an expired batch). Output and error files are written in a
 *   shuffled order (seeded), as the real API does not keep the input order.
 *
 *     const fake = await startBatchFake({ lines: (ctx) => lineAnswer(validTaskFor(ctx)) })
 *     // OPENAI_BASE_URL=fake.baseUrl ...
 *     await fake.close()
 */
import { createHash, randomBytes } from "node:crypto"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Usage } from "../../src/domain/llm.js"
import { answerBody } from "./apiBodies.js"
import type { Endpoint, FakeContext, FakeHandler, FakeServer } from "./fakeOpenAI.js"
import { answer, httpError, start } from "./fakeOpenAI.js"
import { isStageRequest, stageAnswerText } from "./fakeTasks.js"

export interface LineContext extends FakeContext {
  readonly customId: string
  /** The custom_ids of every line of the batch, in input order. */
  readonly batchCustomIds: ReadonlyArray<string>
  readonly batchId: string
  /** 1-based number of the batch in creation order. */
  readonly batchNo: number
}

export type LineOutcome =
  | { readonly kind: "answer"; readonly text: string; readonly usage?: Partial<Usage> | undefined }
  | { readonly kind: "response"; readonly status: number; readonly body: unknown }
  | { readonly kind: "error"; readonly code: string; readonly message: string }
  | { readonly kind: "skip" }

export const lineAnswer = (text: string, usage?: Partial<Usage>): LineOutcome => ({ kind: "answer", text, usage })
export const lineResponse = (status: number, body: unknown): LineOutcome => ({ kind: "response", status, body })
export const lineServerError = (): LineOutcome =>
  lineResponse(500, {
    error: {
      message: "The server had an error processing your request.",
      type: "server_error",
      param: null,
      code: null
    }
  })
export const lineSkip = (): LineOutcome => ({ kind: "skip" })
export const lineRateLimited = (): LineOutcome =>
  lineResponse(429, {
    error: { message: "Rate limit reached for requests", type: "requests", param: null, code: "rate_limit_exceeded" }
  })
export const lineUnavailable = (): LineOutcome =>
  lineResponse(503, {
    error: { message: "The engine is currently overloaded", type: "server_error", param: null, code: null }
  })
/** A 400 for this request (permanent: the same body fails again). */
export const lineRefused = (): LineOutcome =>
  lineResponse(400, {
    error: {
      message: "Invalid 'input[1].content': the fake refuses this request",
      type: "invalid_request_error",
      param: "input",
      code: null
    }
  })

/** A deterministic fraction in [0, 1) of a text (sha256). */
export const fractionOf = (text: string): number => createHash("sha256").update(text).digest().readUInt32BE(0) / 2 ** 32

/** `<run_id>:sample-000007-a2` → `sample-000007-a2` (the same in every run). */
const keyOf = (customId: string): string => customId.slice(customId.lastIndexOf(":") + 1)

/**
 * What `failingLines` does to a line of a batch: of its n lines, ordered by a hash of their request key
 * and the batch number (so the same lines in every run), the first round(transient × n) fail
 * transiently, the next round(permanent × n) are refused for their request; the rest are answered.
 */
export const lineFate = (
  customId: string,
  batchCustomIds: ReadonlyArray<string>,
  batchNo: number,
  rates: { readonly transient?: number; readonly permanent?: number }
): "transient" | "permanent" | "answer" => {
  const order = (id: string) => fractionOf(`${keyOf(id)}:${batchNo}`)
  const rank = [...batchCustomIds].sort((a, b) => order(a) - order(b)).indexOf(customId)
  const transient = Math.round((rates.transient ?? 0) * batchCustomIds.length)
  const permanent = Math.round((rates.permanent ?? 0) * batchCustomIds.length)
  return rank < transient ? "transient" : rank < transient + permanent ? "permanent" : "answer"
}

/**
 * Lines that fail at a rate (see `lineFate`): transient ones answer a 500, 429 or 503 (by request key),
 * permanent ones a 400 for the request. A transient line sent again in another batch is most often
 * answered; a refused request is only ever made again under a new key (a new attempt).
 */
export const failingLines = (options: {
  readonly transient?: number
  readonly permanent?: number
  readonly answer: (ctx: LineContext) => LineOutcome
}) =>
(ctx: LineContext): LineOutcome => {
  const fate = lineFate(ctx.customId, ctx.batchCustomIds, ctx.batchNo, options)
  if (fate === "transient") {
    const kinds = [lineServerError, lineRateLimited, lineUnavailable]
    return kinds[Math.floor(fractionOf(`kind:${keyOf(ctx.customId)}`) * kinds.length)]()
  }
  return fate === "permanent" ? lineRefused() : options.answer(ctx)
}

export type FinalStatus = "completed" | "expired" | "failed" | "cancelled"

export interface BatchFakeOptions {
  readonly lines: (ctx: LineContext) => LineOutcome
  /** Online requests (forwarded to a fakeOpenAI server); default: 500 "not scripted". */
  readonly online?: FakeHandler
  readonly finalStatus?: (batchNo: number) => FinalStatus
  /** Retrieves spent in in_progress before finalizing (default 1). */
  readonly inProgressPolls?: number
  readonly maxRequests?: number
  /** Seed of the output shuffle. */
  readonly seed?: number
  /**
   * Faults on the Files/Batches routes: return an HTTP error to send instead of handling the request
   * (`index` counts Files/Batches requests from 0).
   */
  readonly fault?: (request: { readonly method: string; readonly path: string; readonly index: number }) =>
    | { readonly status: number; readonly body: unknown; readonly headers?: Readonly<Record<string, string>> }
    | undefined
  /** Called when an upload or a create was stored, before the answer (see the module comment). */
  readonly accepted?: (event: AcceptedEvent) => "hang" | "drop" | void
  /** The enqueued-token limit: a batch that does not fit beside those in progress fails at validation. */
  readonly queueLimit?: {
    readonly limit: number
    /** Tokens a request line counts (default: its body's JSON length / 4 + max_output_tokens). */
    readonly tokens?: (line: any) => number
  }
}

export type AcceptedEvent =
  | { readonly kind: "upload"; readonly file: FakeFile; readonly uploads: number }
  | { readonly kind: "create"; readonly batch: FakeBatch }

export interface FakeFile {
  readonly id: string
  readonly filename: string
  readonly purpose: string
  readonly content: string
  /** Unix seconds. */
  readonly createdAt: number
}

export interface FakeBatch {
  readonly id: string
  readonly no: number
  readonly endpoint: string
  readonly inputFileId: string
  readonly completionWindow: string
  readonly metadata: Record<string, string>
  readonly lines: Array<any>
  /** Unix seconds. */
  readonly createdAt: number
  status: string
  polls: number
  outputFileId: string | null
  errorFileId: string | null
  counts: { total: number; completed: number; failed: number }
  errors: Array<{ code: string; message: string; line: number | null; param: string | null }>
}

export interface BatchFake {
  readonly baseUrl: string
  /** Files / batches requests, in order (method, path). */
  readonly requests: Array<{ readonly method: string; readonly path: string; readonly time: number }>
  readonly files: Map<string, FakeFile>
  readonly batches: Array<FakeBatch>
  /** The single-request fake that online calls reach. */
  readonly online: FakeServer
  /** Batches created per `<skyrl_run_id>:<skyrl_part>` of their metadata. */
  batchesPerPart(): Map<string, number>
  /** Uploads per file content (sha256). */
  uploadsPerContent(): Map<string, number>
  /** The fake that answers the stages before the tasks (domains, subjects), always online. */
  readonly stages: FakeServer
  close(): Promise<void>
}

/** Deterministic shuffle (mulberry32). */
const shuffle = <T>(items: Array<T>, seed: number): Array<T> => {
  let a = seed >>> 0
  const rand = () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

/** The parts of a multipart/form-data body: name → { filename, data }. */
const parseMultipart = (body: Buffer, contentType: string): Map<string, { filename?: string; data: Buffer }> => {
  const out = new Map<string, { filename?: string; data: Buffer }>()
  const match = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType)
  if (match === null) return out
  const boundary = Buffer.from(`--${match[1] ?? match[2]}`)
  let pos = body.indexOf(boundary)
  while (pos !== -1) {
    const startOfPart = pos + boundary.length
    if (body.subarray(startOfPart, startOfPart + 2).toString() === "--") break
    const next = body.indexOf(boundary, startOfPart)
    if (next === -1) break
    const part = body.subarray(startOfPart + 2, next - 2) // skip CRLF after the boundary and before the next
    const split = part.indexOf("\r\n\r\n")
    const headers = part.subarray(0, split).toString("utf8")
    const data = part.subarray(split + 4)
    const name = /name="([^"]*)"/i.exec(headers)?.[1]
    const filename = /filename="([^"]*)"/i.exec(headers)?.[1]
    if (name !== undefined) out.set(name, filename === undefined ? { data } : { filename, data })
    pos = next
  }
  return out
}

/** Usage of each stage answer (online, full price). */
export const STAGE_USAGE = { input: 1200, cached: 0, output: 300, reasoning: 100 }

const endpointOfUrl = (url: string): Endpoint => (url === "/v1/chat/completions" ? "chat" : "responses")

export const startBatchFake = async (options: BatchFakeOptions): Promise<BatchFake> => {
  const online = await start(
    options.online ?? (() => httpError(500, "fake batch server: no online answer scripted", { type: "fake_exhausted" }))
  )
  // The stages before the tasks (domains, subjects) go online too; they reach their own fake, so `online`
  // logs only the task requests.
  const stages = await start((ctx) => answer(stageAnswerText(ctx.body), STAGE_USAGE))
  const files = new Map<string, FakeFile>()
  const batches: Array<FakeBatch> = []
  const requests: Array<{ method: string; path: string; time: number }> = []
  let lineCounter = 0
  const id = (prefix: string) => `${prefix}-${randomBytes(6).toString("hex")}`

  const nowSeconds = () => Math.floor(Date.now() / 1000)
  const fileObject = (f: FakeFile) => ({
    id: f.id,
    object: "file",
    bytes: Buffer.byteLength(f.content, "utf8"),
    created_at: f.createdAt,
    filename: f.filename,
    purpose: f.purpose,
    status: "processed"
  })

  const batchObject = (b: FakeBatch) => ({
    id: b.id,
    object: "batch",
    endpoint: b.endpoint,
    errors: b.errors.length === 0 ? null : { object: "list", data: b.errors },
    input_file_id: b.inputFileId,
    completion_window: b.completionWindow,
    status: b.status,
    output_file_id: b.outputFileId,
    error_file_id: b.errorFileId,
    created_at: b.createdAt,
    in_progress_at: null,
    expires_at: 1_760_086_400,
    completed_at: b.status === "completed" ? 1_760_000_600 : null,
    expired_at: b.status === "expired" ? 1_760_086_400 : null,
    failed_at: b.status === "failed" ? 1_760_000_010 : null,
    request_counts: b.counts,
    metadata: b.metadata
  })

  /** Runs every line of a finished batch and writes the output / error files. */
  const finish = (b: FakeBatch, final: FinalStatus) => {
    const output: Array<string> = []
    const errors: Array<string> = []
    for (const line of b.lines) {
      const endpoint = endpointOfUrl(line.url)
      const outcome = options.lines({
        endpoint,
        body: line.body,
        index: lineCounter++,
        headers: {},
        authorization: undefined,
        customId: line.custom_id,
        batchCustomIds: b.lines.map((l) => l.custom_id),
        batchId: b.id,
        batchNo: b.no
      })
      const reqId = `req_batch_${lineCounter}`
      const base = { id: `batch_req_${lineCounter}`, custom_id: line.custom_id }
      if (outcome.kind === "skip" || final === "cancelled" && outcome.kind !== "answer") {
        const code = final === "cancelled" ? "batch_cancelled" : "batch_expired"
        errors.push(JSON.stringify({
          ...base,
          response: null,
          error: {
            code,
            message: code === "batch_expired"
              ? "This request could not be executed before the completion window expired."
              : "This request was not executed because the batch was cancelled."
          }
        }))
      } else if (outcome.kind === "error") {
        errors.push(
          JSON.stringify({ ...base, response: null, error: { code: outcome.code, message: outcome.message } })
        )
      } else if (outcome.kind === "response") {
        const entry = JSON.stringify({
          ...base,
          response: { status_code: outcome.status, request_id: reqId, body: outcome.body },
          error: null
        })
        if (outcome.status >= 200 && outcome.status < 300) output.push(entry)
        else errors.push(entry)
      } else {
        output.push(JSON.stringify({
          ...base,
          response: {
            status_code: 200,
            request_id: reqId,
            body: answerBody(endpoint, outcome.text, { usage: outcome.usage, model: line.body?.model })
          },
          error: null
        }))
      }
    }
    const write = (lines: Array<string>, purpose: string) => {
      if (lines.length === 0) return null
      const f: FakeFile = {
        id: id("file"),
        filename: `${b.id}_${purpose}.jsonl`,
        purpose: "batch_output",
        content: shuffle(lines, (options.seed ?? 7) + b.no).join("\n") + "\n",
        createdAt: nowSeconds()
      }
      files.set(f.id, f)
      return f.id
    }
    b.outputFileId = write(output, "output")
    b.errorFileId = write(errors, "error")
    b.counts = { total: b.lines.length, completed: output.length, failed: errors.length }
    b.status = final
  }

  const tokensOf = (b: FakeBatch) =>
    b.lines.reduce(
      (n, line) =>
        n + (options.queueLimit?.tokens?.(line) ??
          Math.ceil(JSON.stringify(line.body ?? {}).length / 4) + Number(line.body?.max_output_tokens ?? 0)),
      0
    )
  /** The queue-limit refusal of a batch that does not fit beside those in progress (OpenAI's wording). */
  const queueRefusal = (b: FakeBatch) => {
    const queue = options.queueLimit
    if (queue === undefined) return undefined
    const active = batches.filter((x) => x !== b && (x.status === "in_progress" || x.status === "finalizing"))
    if (active.reduce((n, x) => n + tokensOf(x), 0) + tokensOf(b) <= queue.limit) return undefined
    return {
      code: "token_limit_exceeded",
      message: `Enqueued token limit reached for ${b.lines[0]?.body?.model ?? "the model"} in organization org-fake. ` +
        `Limit: ${
          queue.limit.toLocaleString("en-US")
        } enqueued tokens. Please try again once some in_progress batches have been completed.`,
      line: null,
      param: null
    }
  }

  const advance = (b: FakeBatch) => {
    b.polls++
    if (b.status === "validating") {
      const refused = b.errors.length > 0 ? undefined : queueRefusal(b)
      if (refused !== undefined) b.errors.push(refused)
      b.status = b.errors.length > 0 ? "failed" : "in_progress"
      b.counts = { total: b.lines.length, completed: 0, failed: 0 }
      return
    }
    if (b.status === "in_progress") {
      if (b.polls <= 1 + (options.inProgressPolls ?? 1)) {
        b.counts = { ...b.counts, completed: Math.floor(b.lines.length / 2) }
        return
      }
      b.status = "finalizing"
      return
    }
    if (b.status === "finalizing") {
      const final = options.finalStatus?.(b.no) ?? "completed"
      if (final === "failed") {
        b.status = "failed"
        b.errors.push({
          code: "fake_failure",
          message: "the fake was told to fail this batch",
          line: null,
          param: null
        })
        return
      }
      finish(b, final)
    }
  }

  const server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const body = Buffer.concat(chunks)
      const url = (req.url ?? "").split("?")[0]
      const query = new URLSearchParams((req.url ?? "").split("?")[1] ?? "")
      const method = req.method ?? ""
      const send = (status: number, payload: unknown, type = "application/json") => {
        res.writeHead(status, { "content-type": type, "x-request-id": id("req") })
        res.end(typeof payload === "string" ? payload : JSON.stringify(payload))
      }
      /** Answers an upload or a create once stored, as `accepted` says. */
      const sendAccepted = (event: AcceptedEvent, payload: unknown) => {
        const how = options.accepted?.(event)
        if (how === "hang") return
        if (how === "drop") return void req.socket.destroy()
        send(200, payload)
      }
      /** A cursor page, newest first (`after`: the id the previous page ended with). */
      const page = <T extends { id: string }>(items: Array<T>, render: (t: T) => unknown) => {
        const newestFirst = [...items].reverse()
        const after = query.get("after")
        const from = after === null ? 0 : newestFirst.findIndex((x) => x.id === after) + 1
        const limit = Number(query.get("limit") ?? 20)
        const data = newestFirst.slice(from, from + limit)
        return send(200, {
          object: "list",
          data: data.map(render),
          first_id: data[0]?.id ?? null,
          last_id: data.at(-1)?.id ?? null,
          has_more: from + limit < newestFirst.length
        })
      }
      const notFound = (what: string) =>
        send(404, { error: { message: `No such ${what}`, type: "invalid_request_error", param: null, code: null } })
      if (url.endsWith("/responses") || url.endsWith("/chat/completions")) {
        // Forward to the single-request fake (the stages' to theirs).
        const stage = (() => {
          try {
            return isStageRequest(JSON.parse(body.toString("utf8")))
          } catch {
            return false
          }
        })()
        const target = new URL(stage ? stages.baseUrl : online.baseUrl)
        const headers = { ...req.headers, host: target.host }
        const forward = http.request({
          host: target.hostname,
          port: target.port,
          method,
          path: target.pathname + url.slice(url.indexOf("/v1") + 3),
          headers
        }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
        })
        forward.on("error", () => res.destroy())
        res.on("close", () => forward.destroy())
        forward.end(body)
        return
      }
      requests.push({ method, path: url, time: Date.now() })
      const fault = options.fault?.({ method, path: url, index: requests.length - 1 })
      if (fault !== undefined) {
        res.writeHead(fault.status, { "content-type": "application/json", "x-request-id": id("req"), ...fault.headers })
        res.end(JSON.stringify(fault.body))
        return
      }
      if (!/^Bearer \S+/.test(req.headers.authorization ?? "")) {
        return send(401, {
          error: { message: "Missing bearer", type: "invalid_request_error", param: null, code: null }
        })
      }
      let m: RegExpExecArray | null
      if (method === "POST" && /\/v1\/files$/.test(url)) {
        const parts = parseMultipart(body, req.headers["content-type"] ?? "")
        const file = parts.get("file")
        const purpose = parts.get("purpose")?.data.toString("utf8")
        if (file === undefined || purpose === undefined) {
          return send(400, {
            error: { message: "file and purpose are required", type: "invalid_request_error", param: null, code: null }
          })
        }
        const f: FakeFile = {
          id: id("file"),
          filename: file.filename ?? "upload",
          purpose,
          content: file.data.toString("utf8"),
          createdAt: nowSeconds()
        }
        files.set(f.id, f)
        const uploads = [...files.values()].filter((x) => x.content === f.content && x.purpose === "batch").length
        return sendAccepted({ kind: "upload", file: f, uploads }, fileObject(f))
      }
      if (method === "GET" && /\/v1\/files$/.test(url)) {
        const purpose = query.get("purpose")
        return page([...files.values()].filter((f) => purpose === null || f.purpose === purpose), fileObject)
      }
      if (method === "GET" && /\/v1\/batches$/.test(url)) return page(batches, batchObject)
      if (method === "GET" && (m = /\/v1\/files\/([^/]+)\/content$/.exec(url)) !== null) {
        const f = files.get(m[1])
        return f === undefined ? notFound("file") : send(200, f.content, "application/octet-stream")
      }
      if (method === "GET" && (m = /\/v1\/files\/([^/]+)$/.exec(url)) !== null) {
        const f = files.get(m[1])
        return f === undefined ? notFound("file") : send(200, fileObject(f))
      }
      if (method === "POST" && /\/v1\/batches$/.test(url)) {
        let params: any
        try {
          params = JSON.parse(body.toString("utf8"))
        } catch {
          return send(400, {
            error: { message: "body is not JSON", type: "invalid_request_error", param: null, code: null }
          })
        }
        const input = files.get(params.input_file_id)
        if (input === undefined) return notFound("file")
        if (params.completion_window !== "24h") {
          return send(400, {
            error: {
              message: "completion_window must be 24h",
              type: "invalid_request_error",
              param: "completion_window",
              code: null
            }
          })
        }
        const errors: FakeBatch["errors"] = []
        const lines: Array<any> = []
        const seen = new Set<string>()
        const models = new Set<string>()
        if (input.purpose !== "batch") {
          errors.push({
            code: "invalid_purpose",
            message: "the input file's purpose is not batch",
            line: null,
            param: null
          })
        }
        input.content.split("\n").forEach((text, i) => {
          if (text.trim() === "") return
          let line: any
          try {
            line = JSON.parse(text)
          } catch {
            errors.push({ code: "invalid_json_line", message: "not JSON", line: i + 1, param: null })
            return
          }
          if (typeof line.custom_id !== "string" || seen.has(line.custom_id)) {
            errors.push({
              code: "duplicate_custom_id",
              message: "custom_id missing or repeated",
              line: i + 1,
              param: "custom_id"
            })
          }
          seen.add(line.custom_id)
          if (line.method !== "POST") {
            errors.push({ code: "invalid_method", message: "method must be POST", line: i + 1, param: "method" })
          }
          if (line.url !== params.endpoint) {
            errors.push({
              code: "mismatched_url",
              message: `url ${line.url} is not the batch endpoint`,
              line: i + 1,
              param: "url"
            })
          }
          models.add(String(line.body?.model))
          lines.push(line)
        })
        if (models.size > 1) {
          errors.push({ code: "mixed_models", message: "one model per file", line: null, param: null })
        }
        if (lines.length > (options.maxRequests ?? 50_000)) {
          errors.push({ code: "too_many_requests", message: `${lines.length} requests`, line: null, param: null })
        }
        const b: FakeBatch = {
          id: id("batch"),
          no: batches.length + 1,
          endpoint: params.endpoint,
          inputFileId: input.id,
          completionWindow: params.completion_window,
          metadata: params.metadata ?? {},
          lines,
          createdAt: nowSeconds(),
          status: "validating",
          polls: 0,
          outputFileId: null,
          errorFileId: null,
          counts: { total: 0, completed: 0, failed: 0 },
          errors
        }
        batches.push(b)
        return sendAccepted({ kind: "create", batch: b }, batchObject(b))
      }
      if (method === "GET" && (m = /\/v1\/batches\/([^/]+)$/.exec(url)) !== null) {
        const b = batches.find((x) => x.id === m![1])
        if (b === undefined) return notFound("batch")
        advance(b)
        return send(200, batchObject(b))
      }
      return notFound(`route ${method} ${url}`)
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    files,
    batches,
    online,
    batchesPerPart: () => {
      const counts = new Map<string, number>()
      for (const b of batches) {
        const key = `${b.metadata.skyrl_run_id}:${b.metadata.skyrl_part}`
        counts.set(key, (counts.get(key) ?? 0) + 1)
      }
      return counts
    },
    uploadsPerContent: () => {
      const counts = new Map<string, number>()
      for (const f of files.values()) {
        if (f.purpose !== "batch") continue
        const key = createHash("sha256").update(f.content).digest("hex")
        counts.set(key, (counts.get(key) ?? 0) + 1)
      }
      return counts
    },
    stages,
    close: async () => {
      await new Promise<void>((done) => {
        server.closeAllConnections()
        server.close(() => done())
      })
      await online.close()
      await stages.close()
    }
  }
}
