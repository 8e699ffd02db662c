/**
 * `convertProgram`'s one pass (lines read, parsed and converted batch by batch, then written): the rows and
 * rejects do not depend on how the input is cut into batches or on its form (JSON Lines or a JSON array),
 * and a file of one task is read as one record without a line.
 */
import { Effect, Layer, Logger } from "effect"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { loadInventoryFile } from "../src/cli/convert.live.js"
import { DEFAULT_INVENTORY } from "../src/cli/paths.js"
import { convertProgram } from "../src/programs/convert.js"
import { ScratchLive } from "../src/services/Scratch.js"
import { StorageLive } from "../src/services/Storage.js"
import { validTaskText } from "./support/fakeTasks.js"

const tmp = () => mkdtempSync(join(tmpdir(), "skyrl-convert-program-"))

/** Runs convert on `tasks` (written as `name`): the rows' task ids, the rejects and the warnings logged. */
const convert = async (name: string, text: string, dir = tmp()) => {
  const tasksFile = join(dir, name)
  writeFileSync(tasksFile, text)
  const out = join(dir, "rows.jsonl")
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === "Warning") warnings.push(String(Array.isArray(message) ? message[0] : message))
  })
  const program = Effect.gen(function*() {
    const inventory = yield* loadInventoryFile(DEFAULT_INVENTORY)
    return yield* convertProgram({
      tasksFile,
      out,
      rejectsFile: join(dir, "rejects.jsonl"),
      dataSource: "test",
      inventory,
      asOf: "2026-01-02",
      today: "2026-01-02"
    })
  })
  const summary = await Effect.runPromise(
    program.pipe(
      Effect.provide(Layer.mergeAll(StorageLive, ScratchLive)),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
  )
  return { summary, rows: readFileSync(out, "utf8"), warnings, tasksFile }
}

/** 40 tasks (more than one batch of lines), a bad one and an unparsable line among them, one max_turns raised. */
const lines = (): Array<string> => {
  const out: Array<string> = []
  for (let k = 1; k <= 40; k++) {
    const task = JSON.parse(validTaskText(k, 0).replace("\"limit\":null", "\"limit\":3"))
    if (k === 17) task.tool_sequence = []
    if (k === 30) task.max_turns = 1
    out.push(JSON.stringify(task))
  }
  out.splice(16, 0, "not json")
  return out
}

describe("convertProgram", () => {
  it("JSON Lines across batches: rows in input order, rejects with index and line, warnings logged", async () => {
    const { rows, summary, warnings } = await convert("tasks.jsonl", lines().join("\n") + "\n")
    const ids = rows.trim().split("\n").map((l) => JSON.parse(l).reward_spec.ground_truth.task_id)
    expect(ids).toEqual(Array.from({ length: 40 }, (_, i) => `fake-${i + 1}-0`).filter((id) => id !== "fake-17-0"))
    expect(summary.written).toBe(39)
    expect(summary.rejected.map((r) => [r.index, r.line, r.field])).toEqual([
      [16, 17, "(record)"],
      [17, 18, "tool_sequence"]
    ])
    expect(warnings.filter((w) => w.includes("rejected"))).toHaveLength(2)
    expect(warnings.filter((w) => w.includes("max_turns 1 raised to"))).toHaveLength(1)
  })

  it("the same tasks as a JSON array: the same bytes, the same rejects but without lines", async () => {
    // The same file name: each row's task_metadata.source names it.
    const dir = tmp()
    const jsonl = await convert("tasks", lines().join("\n") + "\n", dir)
    const valid = lines().filter((l) => l !== "not json")
    const array = await convert("tasks", `[\n${valid.join(",\n")}\n]\n`, dir)
    expect(array.rows.split("\n")).toHaveLength(40)
    expect(array.rows === jsonl.rows).toBe(true)
    expect(array.summary.rejected.map((r) => [r.index, r.line, r.field])).toEqual([[16, undefined, "tool_sequence"]])
  })

  it("a file of one task: one record without a line", async () => {
    const task = JSON.parse(validTaskText(1, 0).replace("\"limit\":null", "\"limit\":3"))
    const good = await convert("one.jsonl", JSON.stringify(task) + "\n")
    expect(good.summary.written).toBe(1)
    const dir = tmp()
    const bad = await convert("one-bad.jsonl", JSON.stringify({ ...task, tool_sequence: [] }) + "\n", dir)
      .then(() => "converted", (e: unknown) => String(e))
    expect(bad).toContain("all 1 tasks were rejected")
    const reject = JSON.parse(readFileSync(join(dir, "rejects.jsonl"), "utf8"))
    expect([reject.index, reject.field, Object.hasOwn(reject, "line")]).toEqual([0, "tool_sequence", false])
  })

  it("a prompt holding a special token's text converts, with a warning (counting its tokens stopped the run)", async () => {
    const task = JSON.parse(validTaskText(1, 0).replace("\"limit\":null", "\"limit\":3"))
    const special = { ...task, user_prompt: `${task.user_prompt} <|endoftext|>` }
    const { rows, summary, warnings } = await convert("special.jsonl", JSON.stringify(special) + "\n")
    expect(summary.written).toBe(1)
    expect(JSON.parse(rows).prompt[1].content).toContain("<|endoftext|>")
    expect(warnings.join("\n")).toMatch(/prompt\/special-token/)
  })
})
