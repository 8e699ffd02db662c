/**
 * Replay Llm layer: answers from recorded raw answers, with no key and no network.
 *
 * Reads files (or directories, recursively, in sorted path order) of:
 * - Chat Completions bodies (`{ choices: [...] }`, e.g. test/fixtures/openai/chat/*.json),
 * - Responses bodies (`{ object: "response", output: [...] }`),
 * - skyrl's own archive records (`{ request, response, ... }`: the answer is `response`; a run's
 *   `archive_01.jsonl` logs, or the per-call files of earlier versions),
 * - Batch output lines (`{ custom_id, response: { status_code, body } }`),
 * as `.json` (one value or an array) or `.jsonl`, each also gzipped (`.json.gz`, `.jsonl.gz`: a run
 * archived with `--raw-gzip`, whose log is a gzip member per line). Entries without a readable answer (a
 * manifest, a failed call) are skipped.
 *
 * Choice: the recording whose request asks exactly the same thing (same instructions, messages,
 * schema name and schema — whatever the backend, model or reasoning settings) when there is one;
 * otherwise by `key`: its trailing number (or a hash of it) modulo the number of recordings, unless
 * `exactOnly` (for `enrich`, whose answer must be a plan for the request's own prompt): then a request
 * recorded by no recording fails with `NoRecordedAnswer` and the reason given.
 * The chosen body goes through the same extraction, decoding and validation as a live answer.
 */
import { Clock, Effect, Layer } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { gunzipSync } from "node:zlib"
import { isObject } from "../../domain/json.js"
import type { AttemptRecord, Backend, LlmError, LlmSettings } from "../../domain/llm.js"
import { NoRecordedAnswer, ReplayUnavailable } from "../../domain/llm.js"
import type { LlmApi, LlmRequest, LlmResult } from "../Llm.js"
import { Llm } from "../Llm.js"
import { backendOfBody, buildBody, canonicalJson, canonicalRequest, interpret, resolveJsonSchema } from "./answer.js"

export interface Recording {
  /** File (and line for JSONL / index for arrays) it came from. */
  readonly source: string
  readonly backend: Backend
  readonly body: unknown
  /** Hash of the canonical recorded request, when the recording has one. */
  readonly requestHash: string | undefined
  readonly requestId: string | null
}

export const requestHash = (body: unknown): string | undefined => {
  const canonical = canonicalRequest(body)
  return canonical === undefined ? undefined : createHash("sha256").update(canonicalJson(canonical)).digest("hex")
}

/** A recording from one JSON value, or undefined when it holds no answer. */
export const recordingOf = (value: unknown, source: string): Recording | undefined => {
  const direct = backendOfBody(value)
  if (direct !== undefined) {
    return { source, backend: direct, body: value, requestHash: undefined, requestId: null }
  }
  if (!isObject<any>(value) || !isObject<any>(value.response)) return undefined
  const response = value.response
  const body = isObject<any>(response.body) && typeof response.status_code === "number" ? response.body : response
  const backend = backendOfBody(body)
  if (backend === undefined) return undefined
  const requestId = typeof value.requestId === "string"
    ? value.requestId
    : typeof response.request_id === "string"
    ? response.request_id
    : null
  return { source, backend, body, requestHash: requestHash(value.request), requestId }
}

const listFiles = async (target: string): Promise<Array<string>> => {
  const stat = await fs.stat(target)
  if (!stat.isDirectory()) return [target]
  const out: Array<string> = []
  for (
    const entry of (await fs.readdir(target, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))
  ) {
    const full = path.join(target, entry.name)
    if (entry.isDirectory()) out.push(...(await listFiles(full)))
    else if (/\.jsonl?(\.gz)?$/i.test(entry.name)) out.push(full)
  }
  return out
}

/** Why a text is not JSON, without echoing binary bytes (JSON.parse's message quotes the text). */
const notJson = (text: string, e: unknown): string =>
  /[\u0000-\u0008\u000e-\u001f\ufffd]/.test(text.slice(0, 4096))
    ? "not JSON: binary, or not UTF-8 text"
    : `not JSON (${(e as Error).message})`

/**
 * The recordings of one file, and what of it is not JSON (`unreadable`: a warning names it). JSON that is no
 * recorded answer (another file of a run directory) is passed over without a word.
 */
const recordingsOfFile = async (
  file: string
): Promise<{ readonly recordings: Array<Recording>; readonly unreadable: string | undefined }> => {
  const gzipped = /\.gz$/i.test(file)
  const bytes = await fs.readFile(file)
  // Every gzip member of the file, in order (Node's gunzip reads concatenated members).
  const text = (gzipped ? gunzipSync(bytes) : bytes).toString("utf8")
  const recordings: Array<Recording> = []
  const add = (value: unknown, source: string) => {
    const r = recordingOf(value, source)
    if (r !== undefined) recordings.push(r)
  }
  if (/\.jsonl(\.gz)?$/i.test(file)) {
    const bad: Array<string> = []
    text.split("\n").forEach((line, i) => {
      if (line.trim() === "") return
      try {
        add(JSON.parse(line), `${file}:${i + 1}`)
      } catch (e) {
        bad.push(`line ${i + 1}: ${notJson(line, e)}`)
      }
    })
    const unreadable = bad.length === 0
      ? undefined
      : `${bad.length} line(s) that are not JSON, the first: ${bad[0]}`
    return { recordings, unreadable }
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return { recordings, unreadable: text.trim() === "" ? "empty" : notJson(text, e) }
  }
  if (Array.isArray(value)) value.forEach((v, i) => add(v, `${file}[${i}]`))
  else add(value, file)
  return { recordings, unreadable: undefined }
}

/** Every recording under the given files/directories, in sorted path order. */
export const readRecordings = (
  paths: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<Recording>, ReplayUnavailable> =>
  Effect.gen(function*() {
    const out: Array<Recording> = []
    for (const p of paths) {
      const files = yield* Effect.tryPromise({
        try: () => listFiles(p),
        catch: (e) =>
          new ReplayUnavailable({
            path: p,
            reason: (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : String(e)
          })
      })
      for (const file of files) {
        const { recordings, unreadable } = yield* Effect.tryPromise({
          try: () => recordingsOfFile(file),
          catch: (e) => new ReplayUnavailable({ path: file, reason: (e as Error).message })
        })
        // A cut or emptied file's answers are missing, and the others answer other samples (index modulo count).
        if (unreadable !== undefined) {
          yield* Effect.logWarning(`replay: ${file}: ${unreadable}; its answers are not read`)
        }
        out.push(...recordings)
      }
    }
    if (out.length === 0) {
      return yield* Effect.fail(
        new ReplayUnavailable({
          path: paths.join(", "),
          reason: "no recorded answers found (expected Chat/Responses bodies or skyrl archive files)"
        })
      )
    }
    return out
  })

/** Index chosen for a key: its trailing number, else a hash, modulo `n`. */
export const indexForKey = (key: string, n: number): number => {
  const trailing = /(\d+)\D*$/.exec(key)
  if (trailing !== null) return Number(BigInt(trailing[1]) % BigInt(n))
  const digest = createHash("sha256").update(key).digest()
  return digest.readUInt32BE(0) % n
}

/** Replay answers only requests recorded exactly; `reason` says why the others have none. */
export interface ExactOnly {
  readonly reason: string
}

export const makeReplayLlm = (
  recordings: ReadonlyArray<Recording>,
  settings: LlmSettings,
  describe = `replay (${recordings.length} recorded answers)`,
  exactOnly?: ExactOnly
): LlmApi => {
  const byHash = new Map<string, Recording>()
  for (const r of recordings) {
    if (r.requestHash !== undefined && !byHash.has(r.requestHash)) byHash.set(r.requestHash, r)
  }
  let counter = 0

  const complete = <A, I>(request: LlmRequest<A, I>): Effect.Effect<LlmResult<A>, LlmError> =>
    Effect.gen(function*() {
      const jsonSchema = yield* resolveJsonSchema(request)
      const body = buildBody(
        settings.backend,
        {
          model: settings.model,
          reasoningEffort: settings.reasoningEffort,
          maxOutputTokens: settings.maxOutputTokens
        },
        request,
        jsonSchema
      )
      const hash = requestHash(body)
      const exact = hash === undefined ? undefined : byHash.get(hash)
      if (exact === undefined && exactOnly !== undefined) {
        return yield* new NoRecordedAnswer({ key: request.key ?? "this request", reason: exactOnly.reason })
      }
      const chosen = exact ??
        recordings[
          request.key === undefined
            ? counter++ % recordings.length
            : indexForKey(request.key, recordings.length)
        ]
      yield* Effect.logDebug(`replaying ${chosen.source}${exact === undefined ? "" : " (same request)"}`)
      const start = yield* Clock.currentTimeMillis
      const result = interpret(chosen.backend, request.schema, chosen.body)
      const model = isObject<any>(chosen.body) && typeof chosen.body.model === "string"
        ? chosen.body.model
        : settings.model
      const base = {
        attempt: 1,
        backend: "replay" as const,
        model,
        request: body,
        response: chosen.body,
        requestId: chosen.requestId,
        durationMs: 0,
        startedAt: new Date(start).toISOString()
      }
      const record: AttemptRecord = result._tag === "Right"
        ? { ...base, status: "ok", usage: result.right.usage }
        : {
          ...base,
          status: result.left._tag,
          error: result.left.message,
          usage: "usage" in result.left ? result.left.usage : undefined
        }
      if (request.onAttempt !== undefined) yield* request.onAttempt(record)
      if (result._tag === "Left") return yield* Effect.fail(result.left)
      return {
        value: result.right.value,
        text: result.right.text,
        raw: chosen.body,
        usage: result.right.usage,
        requestId: chosen.requestId,
        backend: "replay",
        model,
        durationMs: 0,
        attempts: 1,
        request: body
      } satisfies LlmResult<A>
    })

  // A replay that answers only requests it holds (enrich) has no count of samples it can answer.
  return { complete, describe, ...(exactOnly === undefined ? { recordedAnswers: recordings.length } : {}) }
}

/** The replay layer over files/directories of recordings. */
export const LlmReplay = (
  paths: ReadonlyArray<string>,
  settings: LlmSettings,
  exactOnly?: ExactOnly
): Layer.Layer<Llm, ReplayUnavailable> =>
  Layer.effect(
    Llm,
    Effect.map(
      readRecordings(paths),
      (recordings) =>
        makeReplayLlm(
          recordings,
          settings,
          `replay of ${recordings.length} recorded answers from ${paths.join(", ")}`,
          exactOnly
        )
    )
  )
