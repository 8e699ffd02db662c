/**
 * Storage.writeRows with a companion (convert's dataset and its rejects file): an interruption that comes while the
 * dataset's temp file is being renamed over it must not leave a mismatched pair (the new dataset beside the old
 * rejects file, the companion's temp removed by the scope while the dataset's rename was in flight). The dataset's
 * rename is held here by a gate on `fs.rename` (done on disk, its promise not yet settled), so the interruption lands
 * exactly there.
 */
import { Effect, Either, Fiber, Stream } from "effect"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it, vi } from "vitest"
import { Storage, StorageLive } from "../src/services/Storage.js"
import { convertTask } from "../src/skyrl/convert.js"
import { RowJson } from "../src/skyrl/layout.js"

const gate = vi.hoisted(() => {
  const g = {
    /** The basename whose rename is held, until `open()`. */
    target: "",
    started: Promise.resolve(),
    released: Promise.resolve(),
    markStarted: () => {},
    open: () => {},
    /** Holds the next rename onto `target`. */
    arm: (target: string) => {
      g.target = target
      g.started = new Promise<void>((r) => (g.markStarted = r))
      g.released = new Promise<void>((r) => (g.open = r))
    }
  }
  return g
})

vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs/promises")>()
  // The rename is done on disk, and its promise held: a rename in flight whose result the caller has not seen.
  const rename = async (from: string, to: string) => {
    await real.rename(from, to)
    if (gate.target !== "" && to.endsWith(gate.target)) {
      gate.markStarted()
      await gate.released
    }
  }
  return { ...real, default: { ...real, rename }, rename }
})

const rows = [0, 1].map((i) =>
  Either.getOrThrow(convertTask({
    task_id: `t${i}`,
    user_prompt: `Quote ${i} for Zürich`,
    tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }],
    evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
  }))
)

/**
 * Interrupts `fiber` while the armed rename is held (the rename then goes on), then gives a rename abandoned by
 * the interruption (the old behaviour) time to land.
 */
const interruptDuringRename = async (fiber: Fiber.RuntimeFiber<unknown, unknown>) => {
  await gate.started
  const interrupted = Effect.runPromise(Fiber.interrupt(fiber))
  await new Promise((r) => setTimeout(r, 50))
  gate.open()
  await interrupted
  await new Promise((r) => setTimeout(r, 100))
}

describe("writeRows: an interruption during the commit", () => {
  it("leaves the dataset and its companion both new or both as they were, and no temp file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-commit-"))
    const out = join(dir, "out.jsonl")
    const rejects = join(dir, "out.rejects.jsonl")
    writeFileSync(out, "old dataset\n")
    writeFileSync(rejects, "old rejects\n")
    gate.arm("out.jsonl")
    const write = Effect.flatMap(
      Storage,
      (s) => s.writeRows(out, rows, { companion: { file: rejects, text: () => "new rejects\n" } })
    )
    await interruptDuringRename(Effect.runFork(Effect.provide(write, StorageLive)))
    const dataset = readFileSync(out, "utf8")
    const companion = readFileSync(rejects, "utf8")
    const pair = [dataset === "old dataset\n" ? "old" : "new", companion === "old rejects\n" ? "old" : "new"]
    expect(pair[0]).toBe(pair[1])
    if (pair[0] === "new") {
      expect(companion).toBe("new rejects\n")
      expect(dataset.split("\n").filter((l) => l !== "")).toHaveLength(2)
    }
    expect(readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([])
  })

  it("writeRowStreams (split's train and val): both new or both as they were, and no temp file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-commit-"))
    const [train, val] = [join(dir, "t.jsonl"), join(dir, "v.jsonl")]
    writeFileSync(train, "old train\n")
    writeFileSync(val, "old val\n")
    gate.arm("t.jsonl")
    const rowsOf = (text: string) => Stream.make(new RowJson(JSON.stringify({ text })))
    const write = Effect.flatMap(
      Storage,
      (s) => s.writeRowStreams([{ file: train, rows: rowsOf("new train") }, { file: val, rows: rowsOf("new val") }])
    )
    await interruptDuringRename(Effect.runFork(Effect.provide(write, StorageLive)))
    expect([readFileSync(train, "utf8"), readFileSync(val, "utf8")]).toEqual([
      JSON.stringify({ text: "new train" }) + "\n",
      JSON.stringify({ text: "new val" }) + "\n"
    ])
    expect(readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([])
  })
})
