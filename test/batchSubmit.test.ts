/**
 * Submission without the CLI (src/programs/batchSubmit.ts), in this process: the live BatchClient (openai
 * SDK) against the fake Files/Batches API, the live Storage on a temporary directory. A crash is an
 * interrupted fiber at a chosen write of `batch.json`, followed by a `status` (refreshRun) over what is
 * on disk; the queue rules and the refusal of a part larger than the limit, as pure functions.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Redacted, Schema } from "effect"
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach } from "vitest"
import type { BatchInfo, BatchPart, BatchRun } from "../src/domain/batch.js"
import { emptyUsage, makeLlmSettings } from "../src/domain/llm.js"
import { refreshRun } from "../src/programs/batch.js"
import {
  defaultLimits,
  newPart,
  onQueueRefusal,
  prepareLine,
  QUEUE_RETRY_MS,
  queueWait,
  readRun,
  submitParts,
  writeRun
} from "../src/programs/batchSubmit.js"
import { BatchClient } from "../src/services/Batch.js"
import { makeBatchClient } from "../src/services/llm/batch.js"
import { Storage, StorageLive } from "../src/services/Storage.js"
import type { BatchFake, BatchFakeOptions } from "./support/fakeBatch.js"
import { lineAnswer, startBatchFake } from "./support/fakeBatch.js"

let fake: BatchFake | undefined
afterEach(async () => {
  await fake?.close()
  fake = undefined
})
const startFake = async (
  options: Partial<BatchFakeOptions> = {}
) => (fake = await startBatchFake({ lines: () => lineAnswer("{\"ok\":true}"), ...options }))

const RUN_ID = "20260101T000000Z-abc123"

const runOf = (parts: ReadonlyArray<BatchPart> = [], maxTokens: number | null = null): BatchRun => ({
  format: "skyrl-batch/1",
  run_id: RUN_ID,
  command: "generate",
  created_at: "2026-01-01T00:00:00.000Z",
  endpoint: "responses",
  llm: { model: "gpt-5-mini", reasoningEffort: "high", maxOutputTokens: 1000, timeoutMs: 5000, maxRetries: 2 },
  inventory: { path: null, servers: null },
  options: {},
  parts,
  max_tokens: maxTokens,
  online_usage: emptyUsage,
  repairs: "online"
})

/** Request lines of `n` samples (a small schema; the body as the online backend builds it). */
const linesOf = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    prepareLine(
      "responses",
      { model: "gpt-5-mini", reasoningEffort: "high", maxOutputTokens: 1000 },
      `${RUN_ID}:sample-${String(i).padStart(6, "0")}`,
      {
        name: "answer",
        instructions: "Answer with ok.",
        input: [{ role: "user", content: `go ${i}` }],
        schema: Schema.Unknown
      },
      { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"], additionalProperties: false }
    ))

const clientLayer = (baseUrl: string) =>
  Layer.succeed(
    BatchClient,
    makeBatchClient(
      makeLlmSettings({ baseUrl, baseDelayMs: 1, maxDelayMs: 5, maxRetries: 2, timeoutMs: 5000 }),
      Redacted.make("sk-unit")
    )
  )

/**
 * The live Storage, except that the first write of batch.json that `crashes` picks never lands: the
 * fiber is interrupted there (a kill), after leaving half of the new state in a temporary file when
 * `partial` (a kill during the atomic write: before the rename).
 */
const crashingStorage = (crashes: (state: string) => boolean, partial: boolean) => {
  let crashed = false
  return Layer.effect(
    Storage,
    Effect.map(Storage, (live) => ({
      ...live,
      writeFileAtomic: (file: string, data: string | Uint8Array) => {
        if (crashed || !file.endsWith("batch.json") || !crashes(String(data))) return live.writeFileAtomic(file, data)
        crashed = true
        return Effect.sync(() => {
          if (partial) writeFileSync(`${file}.tmp-crash`, String(data).slice(0, String(data).length / 2))
        }).pipe(Effect.zipRight(Effect.interrupt))
      }
    }))
  ).pipe(Layer.provide(StorageLive))
}

const crashPoints = [
  { name: "after the upload, before its state write", crashes: (s: string) => /"input_file_id": "file-/.test(s) },
  { name: "after the create, before its state write", crashes: (s: string) => /"batch_id": "batch-/.test(s) },
  {
    name: "during the state write of the create",
    crashes: (s: string) => /"batch_id": "batch-/.test(s),
    partial: true
  }
]

describe("a crash at each remote step of a submission", () => {
  for (const point of crashPoints) {
    it(
      `${point.name}: the next status adopts what the API made; one batch per part, no body uploaded twice`,
      async () => {
        const f = await startFake()
        const runDir = mkdtempSync(join(tmpdir(), "skyrl-submit-"))
        const limits = { ...defaultLimits, maxRequests: 2 }
        const first = await Effect.runPromiseExit(
          Effect.gen(function*() {
            const storage = yield* Storage
            yield* storage.writeFileAtomic(join(runDir, "batch.json"), "{}")
            return yield* submitParts(runDir, runOf(), linesOf(4), "initial", limits)
          }).pipe(
            Effect.provide(Layer.merge(crashingStorage(point.crashes, point.partial === true), clientLayer(f.baseUrl)))
          )
        )
        expect(Exit.isInterrupted(first)).toBe(true)
        expect(existsSync(join(runDir, "batch.json.tmp-crash"))).toBe(point.partial === true)
        const madeBefore = { files: f.uploadsPerContent().size, batches: f.batches.length }
        expect(madeBefore).toEqual({ files: 1, batches: point.name.startsWith("after the upload") ? 0 : 1 })

        const after = await Effect.runPromise(
          Effect.gen(function*() {
            const run = yield* readRun(runDir)
            return yield* refreshRun(runDir, run)
          }).pipe(Effect.provide(Layer.merge(StorageLive, clientLayer(f.baseUrl))))
        )
        expect(Object.fromEntries(f.batchesPerPart())).toEqual({ [`${RUN_ID}:1`]: 1, [`${RUN_ID}:2`]: 1 })
        expect([...f.uploadsPerContent().values()]).toEqual([1, 1])
        expect(after.parts.map((p) => p.batch_id)).toEqual(f.batches.map((b) => b.id))
        expect(after.parts.map((p) => p.input_file_id)).toEqual(f.batches.map((b) => b.inputFileId))
        // What the next status read back is what it wrote: batch.json on disk names the same batches.
        const onDisk = await Effect.runPromise(readRun(runDir).pipe(Effect.provide(StorageLive)))
        expect(onDisk.parts.map((p) => p.batch_id)).toEqual(f.batches.map((b) => b.id))
        expect(readdirSync(runDir).filter((n) => n.startsWith("batch_") && n.endsWith("_input.jsonl"))).toHaveLength(2)
      },
      30_000
    )
  }

  it("a create refused with a 500 that made nothing is looked up, then created once", async () => {
    let creates = 0
    const f = await startFake({
      fault: ({ method, path }) =>
        method === "POST" && path.endsWith("/batches") && creates++ === 0
          ? { status: 500, body: { error: { message: "try later" } } }
          : undefined
    })
    const runDir = mkdtempSync(join(tmpdir(), "skyrl-submit-"))
    const run = await Effect.runPromise(
      submitParts(runDir, runOf(), linesOf(2), "initial", defaultLimits).pipe(
        Effect.provide(Layer.merge(StorageLive, clientLayer(f.baseUrl)))
      )
    )
    expect(f.batches).toHaveLength(1)
    expect(run.parts[0].batch_id).toBe(f.batches[0].id)
    const methods = f.requests.map((q) => `${q.method} ${q.path.replace(/.*\/v1/, "")}`)
    expect(methods).toEqual(["POST /files", "POST /batches", "GET /batches", "POST /batches"])
  }, 30_000)

  it("a create whose lookup fails too is not tried again: the submission stops, to be finished later", async () => {
    const f = await startFake({
      fault: ({ method, path }) =>
        (method === "POST" && path.endsWith("/batches")) || (method === "GET" && path.endsWith("/batches"))
          ? { status: 400, body: { error: { message: "nope", param: null, code: null } } }
          : undefined
    })
    const runDir = mkdtempSync(join(tmpdir(), "skyrl-submit-"))
    const exit = await Effect.runPromiseExit(
      submitParts(runDir, runOf(), linesOf(2), "initial", defaultLimits).pipe(
        Effect.provide(Layer.merge(StorageLive, clientLayer(f.baseUrl)))
      )
    )
    expect(Exit.isFailure(exit)).toBe(true)
    expect(f.requests.filter((q) => q.method === "POST" && q.path.endsWith("/batches"))).toHaveLength(1)
    const state = await Effect.runPromise(readRun(runDir).pipe(Effect.provide(StorageLive)))
    expect(state.parts[0].create_started_at).not.toBeNull()
    expect(state.parts[0].batch_id).toBeNull()
  }, 30_000)
})

describe("the queue", () => {
  const part = (n: number, patch: Partial<BatchPart>): BatchPart => ({
    ...newPart(
      { part: n, purpose: "initial", input: `batch_00${n}_input.jsonl`, requests: 10, bytes: 100, tokens: 50 },
      "2026-01-01T00:00:00.000Z"
    ),
    input_file_id: `file-${n}`,
    ...patch
  })
  const t0 = Date.parse("2026-01-01T01:00:00.000Z")

  it("a part waits while the run's running batches leave no room under --batch-max-tokens", () => {
    const running = part(1, { batch_id: "b1", status: "in_progress", tokens: 60 })
    const next = part(2, {})
    expect(queueWait(runOf([running, next], 100), next, t0)?.reason).toMatch(
      /this run's running batches hold ~60 of the 100 enqueued tokens --batch-max-tokens allows/
    )
    expect(queueWait(runOf([running, next], 110), next, t0)).toBeNull()
    expect(queueWait(runOf([running, next], null), next, t0)).toBeNull()
    const ended = { ...running, status: "completed" as const }
    expect(queueWait(runOf([ended, next], 100), next, t0)).toBeNull()
  })

  it("a refused part waits until one of the run's batches ends, or QUEUE_RETRY_MS", () => {
    const since = new Date(t0).toISOString()
    const refused = part(2, { refused: ["b2"], waiting: { since, reason: "Enqueued token limit reached" } })
    const running = part(1, { batch_id: "b1", status: "in_progress", updated_at: since })
    expect(queueWait(runOf([running, refused]), refused, t0 + 1000)?.reason).toBe("Enqueued token limit reached")
    expect(queueWait(runOf([running, refused]), refused, t0 + QUEUE_RETRY_MS)).toBeNull()
    const ended = { ...running, status: "completed" as const, updated_at: new Date(t0 + 500).toISOString() }
    expect(queueWait(runOf([ended, refused]), refused, t0 + 1000)).toBeNull()
    // A batch that had ended before the refusal does not count.
    const endedBefore = { ...ended, updated_at: new Date(t0 - 500).toISOString() }
    expect(queueWait(runOf([endedBefore, refused]), refused, t0 + 1000)).not.toBeNull()
  })

  it("a queue refusal: the part waits to be created again; larger than the limit it names, it stays failed", () => {
    const info = (errors: Array<string>): BatchInfo => ({
      id: "b9",
      status: "failed",
      inputFileId: "file-2",
      outputFileId: null,
      errorFileId: null,
      requestCounts: null,
      errors,
      createdAt: null,
      completedAt: null,
      metadata: {}
    })
    const limit = "Enqueued token limit reached for gpt-5-mini in organization org-x. Limit: 1,000 enqueued tokens. " +
      "Please try again once some in_progress batches have been completed."
    const p = part(2, { batch_id: "b9", status: "validating", tokens: 500, create_started_at: "t" })
    const waiting = onQueueRefusal(p, info([limit]), "2026-01-01T02:00:00.000Z")!
    expect(waiting).toMatchObject({ batch_id: null, status: null, create_started_at: null, refused: ["b9"] })
    expect(waiting.waiting).toEqual({ since: "2026-01-01T02:00:00.000Z", reason: limit })
    const tooLarge = onQueueRefusal({ ...p, tokens: 5000 }, info([limit]), "t")!
    expect(tooLarge.status).toBe("failed")
    expect(tooLarge.batch_id).toBe("b9")
    expect(tooLarge.errors.at(-1)).toMatch(
      /alone counts ~5000 tokens, more than the limit of 1000: .*--resubmit --batch-max-tokens 1000/
    )
    // One request larger than the limit: no smaller batch holds it, so --resubmit would only be refused again.
    const oneRequest = onQueueRefusal({ ...p, tokens: 5000, requests: 1 }, info([limit]), "t")!
    expect(oneRequest.status).toBe("failed")
    expect(oneRequest.errors.at(-1)).toMatch(
      /^part 2 is one request of ~5000 tokens, more than the limit of 1000: no batch can hold it/
    )
    expect(oneRequest.errors.at(-1)).not.toMatch(/--resubmit/)
    expect(onQueueRefusal(p, info(["line 3: invalid json"]), "t")).toBeUndefined()
  })
})

describe("a batch.json that does not decode", () => {
  /** readRun's failure on the run's batch.json after `damage` (its text, parsed when it is JSON). */
  const failureOf = async (damage: (text: string) => string) => {
    const runDir = mkdtempSync(join(tmpdir(), "skyrl-batchjson-"))
    const part = newPart(
      { part: 1, purpose: "initial", input: "batch_001_input.jsonl", requests: 2, bytes: 10, tokens: 5 },
      "2026-01-01T00:00:00.000Z"
    )
    await Effect.runPromise(writeRun(runDir, runOf([part])).pipe(Effect.provide(StorageLive)))
    const file = join(runDir, "batch.json")
    writeFileSync(file, damage(readFileSync(file, "utf8")))
    const exit = await Effect.runPromiseExit(readRun(runDir).pipe(Effect.provide(StorageLive)))
    if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail" || exit.cause.error._tag !== "SettingsError") {
      throw new Error(`expected a SettingsError, got ${JSON.stringify(exit)}`)
    }
    return { file, error: exit.cause.error }
  }
  const edit = (patch: (run: { parts: Array<Record<string, unknown>> }) => void) => (text: string) => {
    const run = JSON.parse(text)
    patch(run)
    return JSON.stringify(run)
  }
  const WHY = ": not a readable batch run (batch status and collect read the run's parts and options from it); " +
    "mend the file"

  it("names the file and the field in one line, as a bad manifest.json is named, exit 2 (was a 14-line Schema tree, exit 1)", async () => {
    const bad = await failureOf(edit((run) => void (run.parts[0]!.part = "one")))
    expect(bad.error.message).toBe(`RUN_DIR: ${bad.file}, parts[0].part: must be a number, got "one"${WHY}`)
    expect(bad.error.exitCode).toBe(2)
    const missing = await failureOf(edit((run) => void delete run.parts[0]!.batch_id))
    expect(missing.error.message).toBe(`RUN_DIR: ${missing.file}, parts[0].batch_id: is missing${WHY}`)
  })
  it("a file emptied or cut short says so in one line", async () => {
    const empty = await failureOf(() => "")
    expect(empty.error.message).toBe(`RUN_DIR: ${empty.file}: is empty${WHY}`)
    const cut = await failureOf((text) => text.slice(0, 40))
    // Where the parser stopped, as a line and column (not `at position 40`).
    expect(cut.error.message).toMatch(/^RUN_DIR: \S+batch\.json: not valid JSON: [^\n]* at line 3, column 10: not a /)
    expect(cut.error.exitCode).toBe(2)
  })
})
