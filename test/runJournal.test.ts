/**
 * RunJournal's group commit, on memory storage: what it counts as done and what is on disk. A batch
 * collect round ends early only when `unwritten` is 0 (src/programs/batch.ts), so a journal line counted
 * in `counts` must stay in `unwritten` until the flush that writes it has finished.
 */
import { Deferred, Effect, Fiber, Layer, Schema } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import type { JournalEntry as JournalEntryType } from "../src/domain/run.js"
import { JournalEntry } from "../src/domain/run.js"
import { journalLine, RunJournal } from "../src/services/RunJournal.js"
import { Storage, StorageLive } from "../src/services/Storage.js"
import { settingsFor } from "./support/engine.js"
import { makeMemoryStorage, streamingOnly } from "./support/memoryStorage.js"

const spec = {
  runDir: "/runs/raw_llm/run-1",
  runId: "run-1",
  command: "generate" as const,
  output: "/runs/out.jsonl",
  settings: settingsFor(2),
  details: {},
  model: "gpt-5-mini",
  backend: "responses",
  planned: new Set([0, 1]),
  passthrough: 0,
  gzip: false
}
const entry = (index: number) => ({
  index,
  status: "failed" as const,
  attempts: 1,
  calls: 1,
  usage: { input: 0, cached: 0, output: 0, reasoning: 0 },
  rejects: []
})

describe("RunJournal group commit", () => {
  it("a run opened again reads its journal a few lines at a time, never whole (every row made is in it)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-journal-"))
    const onDisk = { ...spec, runDir: join(dir, "run-1") }
    const opened = (storage: Layer.Layer<Storage>) => RunJournal.layer(onDisk).pipe(Layer.provide(storage))
    await Effect.runPromise(
      Effect.gen(function*() {
        const journal = yield* RunJournal
        yield* journal.append(entry(0))
        yield* journal.append(entry(1))
      }).pipe(Effect.provide(opened(StorageLive)), Effect.scoped)
    )
    const streamedOnly = streamingOnly((file) => file.endsWith(".jsonl"))
    const latest = await Effect.runPromise(
      Effect.flatMap(RunJournal, (j) => j.latest).pipe(Effect.provide(opened(streamedOnly)), Effect.scoped)
    )
    expect([...latest.keys()].sort()).toEqual([0, 1])
  })

  it("a queued line counts as done at once, and as unwritten until its write has finished", async () => {
    const storage = makeMemoryStorage()
    const released = Effect.runSync(Deferred.make<void>())
    const reached = Effect.runSync(Deferred.make<void>())
    storage.onWrite = (file, kind) =>
      file.endsWith("journal.jsonl") && kind === "append"
        ? Effect.zipRight(Deferred.succeed(reached, undefined), Deferred.await(released))
        : Effect.void
    const program = Effect.gen(function*() {
      const journal = yield* RunJournal
      expect(yield* journal.unwritten).toBe(0)
      const wait = yield* journal.enqueue(entry(0))
      expect((yield* journal.counts).done).toBe(1)
      expect(yield* journal.unwritten).toBe(1)
      const writing = yield* Effect.fork(wait)
      yield* Deferred.await(reached) // the flush holds the line, the write has not finished
      expect(yield* journal.unwritten).toBe(1)
      yield* Deferred.succeed(released, undefined)
      yield* Fiber.join(writing)
      expect(yield* journal.unwritten).toBe(0)
      expect(storage.text(`${spec.runDir}/journal.jsonl`).trim().split("\n")).toHaveLength(1)
    })
    await Effect.runPromise(
      program.pipe(Effect.provide(RunJournal.layer(spec).pipe(Layer.provide(storage.layer))), Effect.scoped)
    )
  })
})

describe("journal lines", () => {
  it("are the JSON of the Schema's encoding, written by hand or not", () => {
    const usage = { input: 3000, cached: 2816, output: 700, reasoning: 400 }
    const reject = { index: 4, attempt: 1, reasons: ["duplicate/prompt"], raw_output_path: null }
    const entries: ReadonlyArray<JournalEntryType> = [
      {
        index: 4,
        status: "row",
        row: { prompt: [{ role: "user", content: "é \u2028" }], n: null },
        attempts: 1,
        calls: 1,
        usage,
        rejects: []
      },
      { index: 0, status: "failed", attempts: 3, calls: 4, usage, rejects: [] },
      { index: 0, status: "stopped", row: undefined, attempts: 0, calls: 0, usage, rejects: [] },
      { index: 7, status: "row", row: "text", attempts: 2, calls: 2, usage, rejects: [reject] },
      {
        index: 7,
        status: "failed",
        attempts: 2,
        calls: 2,
        usage,
        rejects: [{ ...reject, avoid: { prompt: "p", tools: ["a/b"], kind: "plan" } }]
      },
      // Excess keys (on the entry and its usage) are not written, as the Schema's encoding drops them.
      {
        index: 1,
        status: "row",
        row: 1,
        attempts: 1,
        calls: 1,
        usage: { ...usage, extra: 1 },
        rejects: [],
        more: 2
      } as never
    ]
    for (const entry of entries) {
      expect(journalLine(entry)).toBe(JSON.stringify(Schema.encodeSync(JournalEntry)(entry)) + "\n")
    }
  })
})
