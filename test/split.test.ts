/**
 * `skyrl split` in process: the grouping keys, the assignment (scores worked out with `sha256sum` and Python, not
 * with the code under test), the warnings, and the program over an in-memory storage (order kept, groups whole, a
 * bad row fails before anything is written), and the usage errors of the live wiring.
 */
import { Effect, Either, Exit, Layer, Logger, Option, Stream } from "effect"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { runSplit } from "../src/cli/split.live.js"
import { StorageError } from "../src/domain/errors.js"
import { splitProgram } from "../src/programs/split.js"
import { Storage, StorageLive } from "../src/services/Storage.js"
import { decodeRow } from "../src/skyrl/layout.js"
import type { ValRule } from "../src/skyrl/split.js"
import { assignSplit, emptySideProblem, groupKeyOf, groupScore, splitWarnings } from "../src/skyrl/split.js"
import { makeMemoryStorage } from "./support/memoryStorage.js"
import { rowFor } from "./support/verifyRows.js"

const fraction = (f: number): ValRule => ({ _tag: "fraction", fraction: f })
const quote = (symbol: string) => ({ server: "fmp", tool: "fmp_get_quote", params: { symbol } })
/** With `limit`, a second step whose `limit` an earlier result gives (derived): its value is illustrative. */
const news = (limit: number) => ({
  server: "fmp",
  tool: "fmp_get_news",
  params: { limit },
  depends_on: [1],
  derived_params: ["limit"]
})
const rowWith = (id: string, symbol: string, prompt?: string, limit?: number) => {
  const row = rowFor(id, limit === undefined ? [quote(symbol)] : [quote(symbol), news(limit)])
  if (prompt !== undefined) row.prompt[row.prompt.length - 1].content = prompt
  return row
}
const decoded = (row: unknown) => Either.getOrThrow(decodeRow(row))

describe("split: groups and assignment", () => {
  // printf '0\na' | sha256sum → 0d3b8411bde7f...; 0x0d3b8411bde7f / 2^52 (Python)
  it("scores a group by sha256 of seed and key", () => {
    expect(groupScore(0, "a")).toBe(0.0516893904986373)
    expect(groupScore(7, "a")).toBe(0.5982931806435308)
  })

  it("keys rows by plan (derived values aside), by normalized prompt, or alone", () => {
    const [a1, a2, b, derived5, derived9] = [
      rowWith("1", "AAPL", "Quote AAPL, please!"),
      rowWith("2", "AAPL", "quote   aapl please"),
      rowWith("3", "MSFT", "Quote AAPL, please!"),
      rowWith("4", "AAPL", undefined, 5),
      rowWith("5", "AAPL", undefined, 9)
    ].map(decoded)
    expect(groupKeyOf(a1, "plan", 0)).toBe(groupKeyOf(a2, "plan", 1))
    expect(groupKeyOf(a1, "plan", 0)).not.toBe(groupKeyOf(b, "plan", 2))
    expect(groupKeyOf(derived5, "plan", 3)).toBe(groupKeyOf(derived9, "plan", 4))
    expect(groupKeyOf(a1, "prompt", 0)).toBe(groupKeyOf(a2, "prompt", 1))
    expect(groupKeyOf(a1, "prompt", 0)).toBe(groupKeyOf(b, "prompt", 2))
    expect(groupKeyOf(a1, "prompt", 0)).not.toBe(groupKeyOf(derived5, "prompt", 3))
    expect(groupKeyOf(a1, "none", 0)).not.toBe(groupKeyOf(a2, "none", 1))
  })

  // Seed 0 scores: d 0.0495, a 0.0517, b 0.2428, e 0.7548, c 0.9366. Seed 7: b 0.4367, a 0.5983.
  it("sends the groups scoring under the fraction to val, whole", () => {
    const split = assignSplit(["a", "b", "a", "c", "d"], fraction(0.1), 0)
    expect([...split.inVal]).toEqual([1, 0, 1, 0, 1])
    expect(split.train).toEqual({ rows: 2, groups: 2 })
    expect(split.val).toEqual({ rows: 3, groups: 2 })
    expect(split.largest).toEqual({ rows: 2, first: 0 })
    expect([...assignSplit(["a", "b", "a", "c", "d"], fraction(0.25), 0).inVal]).toEqual([1, 1, 1, 0, 1])
    expect([...assignSplit(["a", "b"], fraction(0.5), 7).inVal]).toEqual([0, 1])
  })

  it("keeps the old rows' sides when rows are added", () => {
    expect([...assignSplit(["a", "b", "c"], fraction(0.1), 0).inVal]).toEqual([1, 0, 0])
    expect([...assignSplit(["a", "b", "c", "d", "e", "a"], fraction(0.1), 0).inVal]).toEqual([1, 0, 0, 1, 0, 1])
  })

  it("--val-rows takes the lowest-scoring groups until that many rows, never cutting one", () => {
    const keys = ["a", "b", "a", "c", "d"]
    expect([...assignSplit(keys, { _tag: "rows", rows: 1 }, 0).inVal]).toEqual([0, 0, 0, 0, 1])
    expect([...assignSplit(keys, { _tag: "rows", rows: 2 }, 0).inVal]).toEqual([1, 0, 1, 0, 1])
  })

  it("warns of a group of more than half the rows; an empty side is no warning but a problem", () => {
    const where = (position: number) => `f.jsonl row ${position}`
    expect(splitWarnings(assignSplit(["b", "a", "a", "a"], fraction(0.1), 0), where)).toEqual([
      "one group holds 3 of the 4 rows (the group of f.jsonl row 1): it goes whole to one split, so the split cannot " +
      "have the sizes asked"
    ])
    expect(splitWarnings(assignSplit(["a", "b", "a", "c", "d"], fraction(0.1), 0), where)).toEqual([])
    expect(splitWarnings(assignSplit(["b", "c"], fraction(0.01), 0), where)).toEqual([])
    expect(emptySideProblem(assignSplit(["a", "b", "a", "c", "d"], fraction(0.1), 0), fraction(0.1))).toBeUndefined()
    const loader = "(SkyRL's loader, datasets.load_dataset, fails on an empty file)"
    expect(emptySideProblem(assignSplit(["b", "c"], fraction(0.01), 0), fraction(0.01))).toBe(
      `the val split would hold no row ${loader}: the inputs hold 2 rows in 2 groups; give --val-rows N (1 to 1) ` +
        "or a larger --val-fraction, or another --seed; nothing written"
    )
    expect(emptySideProblem(assignSplit(["a", "b"], { _tag: "rows", rows: 5 }, 0), { _tag: "rows", rows: 5 })).toBe(
      `the train split would hold no row ${loader}: the inputs hold 2 rows in 2 groups; give a smaller --val-rows ` +
        "or --val-fraction; nothing written"
    )
    expect(emptySideProblem(assignSplit(["a", "a"], { _tag: "rows", rows: 1 }, 0), { _tag: "rows", rows: 1 })).toBe(
      `the train split would hold no row ${loader}: the inputs hold 2 rows in 1 group; the group goes whole to one ` +
        "side; give another --group-by (none: each row alone) or more rows; nothing written"
    )
    expect(emptySideProblem(assignSplit([], fraction(0.1), 0), fraction(0.1))).toBe(
      `the val split would hold no row ${loader}: the inputs hold no row; give datasets with rows; nothing written`
    )
  })
})

const jsonl = (rows: ReadonlyArray<unknown>) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n"
const idsOf = (text: string) => text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l).prompt.at(-1).content)

const run = (
  storage: ReturnType<typeof makeMemoryStorage> | { readonly layer: Layer.Layer<Storage> },
  rule: ValRule,
  messages: Array<string> = [],
  files: { readonly train: string; readonly val: string; readonly inputs?: ReadonlyArray<string> } = {
    train: "t.jsonl",
    val: "v.jsonl"
  }
) =>
  Effect.runPromiseExit(
    splitProgram({
      files: files.inputs ?? ["f1.jsonl", "f2.jsonl"],
      train: files.train,
      val: files.val,
      rule,
      seed: 0,
      groupBy: "plan"
    })
      .pipe(
        Effect.provide(storage.layer),
        Effect.provide(Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ message }) => {
            messages.push(String(Array.isArray(message) ? message[0] : message))
          })
        ))
      )
  )

describe("split: the program", () => {
  it("writes each group whole to one side, rows in input order", async () => {
    const f1 = [rowWith("1", "AAPL", "p1"), rowWith("2", "MSFT", "p2"), rowWith("3", "AAPL", "p3")]
    const f2 = [rowWith("4", "AAPL", "p4"), rowWith("5", "IBM", "p5"), rowWith("6", "MSFT", "p6")]
    const storage = makeMemoryStorage({ "f1.jsonl": jsonl(f1), "f2.jsonl": jsonl(f2) })
    const messages: Array<string> = []
    const exit = await run(storage, { _tag: "rows", rows: 1 }, messages)
    expect(Exit.isSuccess(exit)).toBe(true)
    const [train, val] = [idsOf(storage.text("t.jsonl")), idsOf(storage.text("v.jsonl"))]
    const groups = [["p1", "p3", "p4"], ["p2", "p6"], ["p5"]]
    const inVal = groups.filter((g) => g.every((p) => val.includes(p)))
    // One group went to val (the first by score reaches 1 row); every group is whole on one side.
    expect(inVal).toHaveLength(1)
    expect(groups.every((g) => g.every((p) => train.includes(p)) || inVal.includes(g))).toBe(true)
    const order = ["p1", "p2", "p3", "p4", "p5", "p6"]
    expect(val).toEqual(order.filter((p) => inVal[0].includes(p)))
    expect(train).toEqual(order.filter((p) => !inVal[0].includes(p)))
    expect(messages[0]).toMatch(/^split 6 rows by plan: t\.jsonl \d rows? in 2 groups, v\.jsonl \d rows? in 1 group/)
  })

  it("writes each row as its input has it: columns skyrl does not know and key order kept", async () => {
    // Written from the decoded rows, the columns were dropped (a user's `source` column lost without a word).
    const rows = [rowWith("1", "AAPL", "p1"), rowWith("2", "MSFT", "p2")].map((r, i) => ({ source: `s${i}`, ...r }))
    const storage = makeMemoryStorage({ "f1.jsonl": jsonl(rows), "f2.jsonl": "" })
    const exit = await run(storage, { _tag: "rows", rows: 1 })
    expect(Exit.isSuccess(exit)).toBe(true)
    const written = [storage.text("t.jsonl"), storage.text("v.jsonl")].join("").split("\n").filter((l) => l !== "")
    expect(written.sort()).toEqual(rows.map((r) => JSON.stringify(r)).sort())
  })

  it("fails on a bad row naming file, row and field, writing nothing", async () => {
    const bad = { ...rowWith("2", "MSFT"), env_class: "OtherEnv" }
    const storage = makeMemoryStorage({
      "f1.jsonl": jsonl([rowWith("1", "AAPL")]),
      "f2.jsonl": jsonl([rowWith("3", "IBM"), bad])
    })
    const exit = await run(storage, fraction(0.5))
    expect(storage.writes).toEqual([])
    expect(Exit.isFailure(exit) && String(exit.cause)).toContain("f2.jsonl, row 1, env_class:")
  })
})

describe("split: nothing written unless both sides can be, from the inputs as first read", () => {
  const rows = [rowWith("1", "AAPL", "p1"), rowWith("2", "MSFT", "p2"), rowWith("3", "IBM", "p3")]
  const inputs = () => ({ "f1.jsonl": jsonl(rows.slice(0, 2)), "f2.jsonl": jsonl(rows.slice(2)) })
  const failure = (exit: Exit.Exit<unknown, unknown>) => Exit.isFailure(exit) ? String(exit.cause) : "succeeded"

  it("an empty side: exit 1 saying how many rows and groups there are, nothing written (was: a warning)", async () => {
    const storage = makeMemoryStorage(inputs())
    const messages: Array<string> = []
    const exit = await run(storage, { _tag: "rows", rows: 5 }, messages)
    expect(failure(exit)).toContain(
      "SplitError: the train split would hold no row (SkyRL's loader, datasets.load_dataset, fails on an empty " +
        "file): the inputs hold 3 rows in 3 groups; give a smaller --val-rows or --val-fraction; nothing written"
    )
    expect(storage.writes).toEqual([])
  })

  it("the val file cannot be written: the train file is left as it was too", async () => {
    const storage = makeMemoryStorage({ ...inputs(), "t.jsonl": "old train\n", "v.jsonl": "old val\n" })
    storage.onWrite = (file) =>
      file.endsWith("v.jsonl")
        ? Effect.fail(new StorageError({ path: file, operation: "write", reason: "no space left on device" }))
        : Effect.void
    const exit = await run(storage, { _tag: "rows", rows: 1 })
    expect(failure(exit)).toContain("no space left on device")
    expect([storage.text("t.jsonl"), storage.text("v.jsonl")]).toEqual(["old train\n", "old val\n"])
  })

  it("on disk: the val file cannot be written, the old train file stays and no temp file is left", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-split-"))
    for (const [name, text] of Object.entries(inputs())) writeFileSync(join(dir, name), text)
    writeFileSync(join(dir, "t.jsonl"), "old train\n")
    writeFileSync(join(dir, "notadir"), "")
    const exit = await run({ layer: StorageLive }, { _tag: "rows", rows: 1 }, [], {
      inputs: ["f1.jsonl", "f2.jsonl"].map((f) => join(dir, f)),
      train: join(dir, "t.jsonl"),
      val: join(dir, "notadir", "v.jsonl")
    })
    expect(failure(exit)).toContain("notadir")
    expect(readFileSync(join(dir, "t.jsonl"), "utf8")).toBe("old train\n")
    expect(readdirSync(dir).sort()).toEqual(["f1.jsonl", "f2.jsonl", "notadir", "t.jsonl"])
  })

  it("an input replaced between the first pass and the commit: exit 1 naming it, nothing written", async () => {
    const storage = makeMemoryStorage(inputs())
    let reads = 0
    // Once the first pass has read f2.jsonl, another process renames a new version over it.
    const replacing = Layer.succeed(Storage, {
      ...storage.api,
      readRows: (file, options) =>
        Stream.ensuring(
          storage.api.readRows(file, options),
          Effect.sync(() => {
            if (file === "f2.jsonl" && reads++ === 0) {
              storage.files.set(resolve("f2.jsonl"), jsonl([rowWith("4", "TSLA", "p4"), rowWith("5", "NVDA", "p5")]))
            }
          })
        )
    })
    const exit = await run({ layer: replacing }, { _tag: "rows", rows: 1 })
    expect(failure(exit)).toContain("f2.jsonl: changed while it was split")
    expect(storage.writes).toEqual([])
  })

  it("an input a live skyrl process is writing: exit 1 at the start naming the holder; a dead one's lock is no bar", async () => {
    const holder = JSON.stringify({ pid: process.pid, host: hostname(), command: "generate" })
    const storage = makeMemoryStorage({ ...inputs(), "f2.jsonl.lock": `${holder}\n` })
    const exit = await run(storage, { _tag: "rows", rows: 1 })
    expect(failure(exit)).toContain(`f2.jsonl: is being written by a skyrl run (${holder})`)
    expect(storage.writes).toEqual([])
    const dead = JSON.stringify({ pid: 2 ** 30, host: hostname(), command: "generate" })
    const stale = makeMemoryStorage({ ...inputs(), "f2.jsonl.lock": `${dead}\n` })
    expect(Exit.isSuccess(await run(stale, { _tag: "rows", rows: 1 }))).toBe(true)
  })
})

describe("split: usage errors (exit 2) before anything is read", () => {
  const usage = async (args: Partial<Parameters<typeof runSplit>[0]>) => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-split-"))
    const input = join(dir, "in.jsonl")
    writeFileSync(input, "")
    const exit = await Effect.runPromiseExit(runSplit({
      files: [input],
      train: join(dir, "t.jsonl"),
      val: join(dir, "v.jsonl"),
      valFraction: Option.none(),
      valRows: Option.none(),
      seed: 0,
      groupBy: "plan",
      ...args
    }))
    if (Exit.isSuccess(exit)) return "succeeded"
    const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
    return `${(failure as { exitCode?: number } | undefined)?.exitCode} ${String(failure)}`
  }
  it("--val beside a live writer of that file: exit 1 naming the holder, nothing written", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-split-"))
    const [input, train, val] = ["in.jsonl", "t.jsonl", "v.jsonl"].map((f) => join(dir, f))
    writeFileSync(input, jsonl([rowWith("1", "AAPL")]))
    const holder = JSON.stringify({ pid: process.pid, host: hostname(), command: "verify" })
    writeFileSync(`${val}.lock`, `${holder}\n`)
    const exit = await Effect.runPromiseExit(runSplit({
      files: [input],
      train,
      val,
      valFraction: Option.none(),
      valRows: Option.none(),
      seed: 0,
      groupBy: "plan"
    }))
    expect(Exit.isFailure(exit) && String(exit.cause)).toContain(
      `${val} is being written by another skyrl run (${holder})`
    )
    expect(readdirSync(dir).sort()).toEqual(["in.jsonl", "v.jsonl.lock"]) // the --train lock released too
  })

  it("names the flag", async () => {
    expect(await usage({ val: "same.jsonl", train: "same.jsonl" })).toMatch(/^2 .*--val: is the --train file/)
    expect(await usage({ valFraction: Option.some(0.1), valRows: Option.some(3) })).toMatch(/^2 .*--val-rows: give/)
    expect(await usage({ valFraction: Option.some(1) })).toMatch(/^2 .*--val-fraction: must be above 0 and below 1/)
    expect(await usage({ train: "t.csv" })).toMatch(/^2 .*--train: "t\.csv" must end in \.json, \.jsonl or \.parquet/)
  })
})
