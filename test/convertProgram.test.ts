/**
 * `convertProgram`'s one pass (lines read, parsed and converted batch by batch, then written): the rows and
 * rejects do not depend on how the input is cut into batches or on its form (JSON Lines or a JSON array),
 * and a file of one task names its line when it is JSON Lines (.jsonl), none when it is one JSON object.
 */
import { Cause, Effect, Exit, Layer, Logger } from "effect"
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { DEFAULT_INVENTORY } from "../src/cli/paths.js"
import { convertProgram } from "../src/programs/convert.js"
import { loadInventoryFile } from "../src/services/Inventory.js"
import { ScratchLive } from "../src/services/Scratch.js"
import { StorageLive } from "../src/services/Storage.js"
import { MCP_MESSAGE_LIMIT } from "../src/skyrl/callSize.js"
import { validTaskText } from "./support/fakeTasks.js"

const tmp = () => mkdtempSync(join(tmpdir(), "skyrl-convert-program-"))

/** Runs convert on `tasks` (written as `name`): the rows' task ids, the rejects and the warnings logged. */
const convert = async (name: string, text: string | Buffer, dir = tmp()) => {
  const { exit, ...rest } = await convertExit(name, text, dir)
  if (Exit.isFailure(exit)) throw Cause.squash(exit.cause)
  return { summary: exit.value, ...rest }
}

/** `convert`, however the run ends: its exit, the rows written, and the warnings and errors logged. */
const convertExit = async (name: string, text: string | Buffer, dir = tmp()) => {
  const tasksFile = join(dir, name)
  writeFileSync(tasksFile, text)
  const out = join(dir, "rows.jsonl")
  const warnings: Array<string> = []
  const errors: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    const text = String(Array.isArray(message) ? message[0] : message)
    if (logLevel._tag === "Warning") warnings.push(text)
    if (logLevel._tag === "Error") errors.push(text)
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
  const exit = await Effect.runPromiseExit(
    program.pipe(
      Effect.provide(Layer.mergeAll(StorageLive, ScratchLive)),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
  )
  return { exit, rows: existsSync(out) ? readFileSync(out, "utf8") : "", warnings, errors, tasksFile }
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

  it("a file of one task: its line in a .jsonl file (a line of JSON Lines); none in a .json file (one JSON object)", async () => {
    const task = JSON.parse(validTaskText(1, 0).replace("\"limit\":null", "\"limit\":3"))
    const good = await convert("one.jsonl", JSON.stringify(task) + "\n")
    expect(good.summary.written).toBe(1)
    const rejectOf = async (name: string) => {
      const dir = tmp()
      const bad = await convert(name, "\n" + JSON.stringify({ ...task, tool_sequence: [] }) + "\n", dir)
        .then(() => "converted", (e: unknown) => String(e))
      expect(bad).toContain("all 1 tasks were rejected")
      const reject = JSON.parse(readFileSync(join(dir, "rejects.jsonl"), "utf8"))
      return [reject.index, reject.field, reject.line]
    }
    expect(await rejectOf("one-bad.jsonl")).toEqual([0, "tool_sequence", 2])
    expect(await rejectOf("one-bad.json")).toEqual([0, "tool_sequence", undefined])
  })

  it("a line that is not UTF-8 is rejected naming its line and byte offset; a U+FFFD written as UTF-8 converts", async () => {
    const tasks = [1, 2, 3].map((k) => JSON.parse(validTaskText(k, 0).replace("\"limit\":null", "\"limit\":3")))
    const first = Buffer.from(JSON.stringify(tasks[0]) + "\n")
    const latin1 = Buffer.from(
      JSON.stringify({ ...tasks[1], user_prompt: `${tasks[1].user_prompt} At the café.` }),
      "latin1"
    )
    const kept = `${tasks[2].user_prompt} \uFFFD`
    const text = Buffer.concat([
      first,
      latin1,
      Buffer.from("\n" + JSON.stringify({ ...tasks[2], user_prompt: kept }) + "\n")
    ])
    const { rows, summary, warnings } = await convert("latin1.jsonl", text)
    expect(summary.written).toBe(2)
    const at = first.length + latin1.indexOf(0xe9)
    expect(summary.rejected).toEqual([{
      index: 1,
      line: 2,
      field: "(record)",
      reason: `line 2 is not valid UTF-8: byte 0xE9 at byte offset ${at} of the file (re-encode it as UTF-8)`
    }])
    expect(warnings.join("\n")).toContain("task 1 rejected: (record): line 2 is not valid UTF-8")
    expect(rows).not.toContain("café")
    expect(JSON.parse(rows.split("\n")[1]!).prompt[1].content).toContain(kept)
  })

  it("a task with a lone surrogate (an escape such as \\ud800) is rejected naming its field; an escaped pair converts", async () => {
    // JSON.parse accepts half a surrogate pair, but it is no Unicode text: datasets cannot load a .jsonl row
    // holding one ("The surrogate pair in string is invalid"), and a .parquet output had U+FFFD in its place.
    const task = (k: number) => validTaskText(k, 0).replace("\"limit\":null", "\"limit\":3")
    const tasks = [
      task(1).replace("headlines.", "headlines \\ud800."),
      task(2).replace("\"symbol\":\"", "\"symbol\":\"\\udc00"),
      task(3).replace("headlines.", "headlines \\ud83d\\ude00."),
      task(4)
    ]
    for (const name of ["lone.jsonl", "lone.json"]) {
      const text = name.endsWith(".jsonl") ? tasks.join("\n") + "\n" : `[${tasks.join(",")}]`
      const { rows, summary } = await convert(name, text)
      expect(summary.written).toBe(2)
      expect(summary.rejected.map((r) => [r.index, r.field, r.reason.slice(0, 31)])).toEqual([
        [0, "user_prompt", "holds a lone surrogate (U+D800 "],
        [1, "tool_sequence[0].params.symbol", "holds a lone surrogate (U+DC00 "]
      ])
      expect(JSON.parse(rows.split("\n")[0]!).prompt[1].content).toContain("headlines \ud83d\ude00.")
    }
  })

  it("a null or array task is rejected saying so (not `got object`)", async () => {
    const { summary } = await convert(
      "odd.jsonl",
      `${validTaskText(1, 0).replace("\"limit\":null", "\"limit\":3")}\nnull\n[1]\n`
    )
    expect(summary.rejected.map((r) => [r.index, r.field, r.reason])).toEqual([
      [1, "(record)", "expected an object, got null"],
      [2, "(record)", "expected an object, got an array"]
    ])
  })

  it("a JSON Lines file whose first line is null: that line is one rejected task, with its line; the rest convert", async () => {
    const tasks = [1, 2].map((k) => validTaskText(k, 0).replace("\"limit\":null", "\"limit\":3"))
    for (const name of ["null-first.jsonl", "null-first.json"]) {
      // Was: the whole file refused, "not JSON or JSON Lines: the first character must be '[' or '{'".
      const { summary } = await convert(name, ["null", ...tasks].join("\n") + "\n")
      expect(summary.written, name).toBe(2)
      expect(summary.rejected).toEqual([{
        index: 0,
        line: 1,
        field: "(record)",
        reason: "expected an object, got null"
      }])
    }
  })

  it("a prompt holding a special token's text converts, with a warning (counting its tokens stopped the run)", async () => {
    const task = JSON.parse(validTaskText(1, 0).replace("\"limit\":null", "\"limit\":3"))
    const special = { ...task, user_prompt: `${task.user_prompt} <|endoftext|>` }
    const { rows, summary, warnings } = await convert("special.jsonl", JSON.stringify(special) + "\n")
    expect(summary.written).toBe(1)
    expect(JSON.parse(rows).prompt[1].content).toContain("<|endoftext|>")
    expect(warnings.join("\n")).toMatch(/prompt\/special-token/)
  })
  it("a step whose tools/call request is over 10 MiB: written with the others, a contract/call-size violation, exit 1", async () => {
    // As every rule of the checks on what convert wrote: the row is kept (no task dropped), the run fails naming it.
    const tasks = [1, 2].map((k) => JSON.parse(validTaskText(k, 0).replace("\"limit\":null", "\"limit\":3")))
    tasks[1].tool_sequence[0].params.symbol = "A".repeat(MCP_MESSAGE_LIMIT)
    const { exit, rows, errors } = await convertExit("long.jsonl", tasks.map((t) => JSON.stringify(t)).join("\n"))
    expect(rows.split("\n").filter((l) => l !== "")).toHaveLength(2)
    expect(Exit.isFailure(exit) && Cause.squash(exit.cause)).toMatchObject({
      _tag: "DatasetViolationsError",
      rules: ["contract/call-size"],
      violations: 1
    })
    expect(errors.join("\n")).toMatch(
      /row 1 reward_spec\.ground_truth\.tool_sequence\[0\]\.params\.symbol: step 1: its tools\/call request is \d+ bytes long, over the 10485760 bytes \(10 MiB\)/
    )
  })
})
