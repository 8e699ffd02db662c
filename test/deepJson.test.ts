/**
 * JSON nested deeper than skyrl reads (src/skyrl/depth.ts, MAX_JSON_DEPTH = 512 levels of objects and arrays).
 * JSON.parse reads any depth, but the checks walk values recursively: before, one task or row nested ~3,000 levels
 * deep ended a whole `convert`, `validate` or `verify` run with "Maximum call stack size exceeded" (convert: "cannot
 * write OUT", no rejects; validate and verify: "internal error", no report), and an inventory so deep did too. Now
 * that record is refused with its line and field, and the others are read.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { jsonTextNestsDeeperThan, MAX_JSON_DEPTH, nestsDeeperThan } from "../src/skyrl/depth.js"
import { runCli } from "./support/cli.js"
import { readJsonl, tempDir } from "./support/fakeRun.js"
import { validTaskText } from "./support/fakeTasks.js"

const tmp = () => tempDir("skyrl-deep-json-")

/** `levels` arrays, one inside the other, around 1. */
const nest = (levels: number): unknown => {
  let v: unknown = 1
  for (let i = 0; i < levels; i++) v = [v]
  return v
}

/** The JSON text of `nest(levels)`, made without a recursive JSON.stringify (whose stack a deep value overflows). */
const nestText = (levels: number): string => "[".repeat(levels) + "1" + "]".repeat(levels)

/** The JSON text of `value` with `key` added, its value the text `text`. */
const withField = (value: object, key: string, text: string): string =>
  `${JSON.stringify(value).slice(0, -1)},${JSON.stringify(key)}:${text}}`

const task = (k: number) => validTaskText(k, 0).replace("\"limit\":null", "\"limit\":3")

/** A task whose first step's params hold `x` nested `levels` deep (the record: 4 levels more). */
const deepTask = (k: number, levels: number) => {
  const t = JSON.parse(task(k))
  t.tool_sequence[0].params.x = nest(levels)
  return JSON.stringify(t)
}

const tooDeep = (what: string) => `${what} nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`

describe("JSON nested too deep", () => {
  it("convert: the deep task is rejected with its line, the others converted (a 512-level one is read)", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.jsonl")
    writeFileSync(input, [task(1), deepTask(2, 3000), task(3), deepTask(4, 508)].join("\n") + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["convert", input, "--out", out])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).not.toContain("call stack")
    expect(readJsonl(out).map((x) => x.reward_spec.ground_truth.task_id)).toEqual(["fake-1-0", "fake-3-0"])
    const rejects = readJsonl(`${out}.rejects.jsonl`)
    expect(rejects[0]).toMatchObject({ index: 1, line: 2, field: "(record)" })
    expect(rejects[0].reason).toContain(tooDeep("line 2"))
    // 4 + 508 = 512 levels: read, then refused by the tool's schema like any unknown param
    expect(rejects[1]).toMatchObject({ index: 3, line: 4, field: "tool_sequence[0].params.x" })
    expect(rejects[1].reason).toContain("unknown param")
  }, 60_000)

  it("convert: a model answer whose task is nested too deep is rejected as the answer's fault", async () => {
    const dir = tmp()
    const input = join(dir, "answers.jsonl")
    const answer = (text: string) => JSON.stringify({ choices: [{ message: { content: text } }] })
    writeFileSync(input, [answer(task(1)), answer(deepTask(2, 3000))].join("\n") + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["convert", input, "--out", out])
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out)).toHaveLength(1)
    const [reject] = readJsonl(`${out}.rejects.jsonl`)
    expect(reject).toMatchObject({ index: 1, line: 2, field: "(answer)" })
    expect(reject.reason).toContain(tooDeep("the model answer's JSON"))
  }, 60_000)

  it(
    "validate and verify: a row whose params text or another field is too deep is reported, the others checked",
    async () => {
      const dir = tmp()
      const tasks = join(dir, "tasks.jsonl")
      writeFileSync(tasks, [task(1), task(2)].join("\n") + "\n")
      const rows = join(dir, "rows.jsonl")
      expect((await runCli(["convert", tasks, "--out", rows])).status).toBe(0)
      const [a, b] = readJsonl(rows)
      const deepParams = structuredClone(a)
      deepParams.reward_spec.ground_truth.tool_sequence[0].params = JSON.stringify({ symbol: "AMD", x: nest(3000) })
      const deepField = withField(b, "extra", nestText(10_000))
      const input = join(dir, "deep.jsonl")
      writeFileSync(input, [JSON.stringify(b), JSON.stringify(deepParams), deepField].join("\n") + "\n")
      const paramsReason = tooDeep("reward_spec.ground_truth.tool_sequence[0].params")

      const checked = await runCli(["validate", input, "--json"])
      expect(checked.status, checked.stderr).toBe(1)
      expect(checked.stderr).not.toContain("call stack")
      const json = JSON.parse(checked.stdout).rules.find((x: any) => x.id === "contract/json")
      expect(
        json.examples.map((f: any) => [f.row, f.message.startsWith(f.row === 1 ? paramsReason : tooDeep("line 3"))])
      )
        .toEqual([[1, true], [2, true]])

      const v = await runCli(["verify", input, "--out", join(dir, "v.jsonl"), "--dry-run"])
      expect(v.stderr).not.toContain("call stack")
      expect(v.stdout).toContain(`${input} row 1: reject: read: ${paramsReason}`)
      expect(v.stdout).toContain(`${input} row 2: reject: read: ${tooDeep("line 3")}`)
      expect(v.stdout).toContain("rows: 3 → read 1 →")
    },
    60_000
  )

  it("an inventory nested too deep is an error naming the file", async () => {
    const dir = tmp()
    const inventory = join(dir, "inventory.json")
    const schema = withField({ type: "object", properties: { q: { type: "string" } } }, "examples", nestText(5000))
    writeFileSync(inventory, `{"servers":[{"name":"s","tools":[{"name":"t","inputSchema":${schema}}]}]}`)
    const r = await runCli(["tools", "list", "--inventory", inventory])
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain(`${inventory}: ${tooDeep("the inventory")}`)
  }, 60_000)
})

describe("jsonTextNestsDeeperThan", () => {
  /** A random JSON value whose strings hold brackets, quotes and backslashes (what the scan must skip). */
  const randomValue = (next: () => number, depth: number): unknown => {
    const pick = next()
    if (depth === 0 || pick < 0.3) {
      const strings = ["[", "]{", "\\\"[", "\"}", "a\\", "{{[[", "x"]
      return pick < 0.15 ? strings[Math.floor(next() * strings.length)] : Math.floor(next() * 10)
    }
    const children = Array.from({ length: 1 + Math.floor(next() * 3) }, () => randomValue(next, depth - 1))
    return pick < 0.65 ? children : Object.fromEntries(children.map((c, i) => [`k${i}[`, c]))
  }

  it("agrees with nestsDeeperThan of the parsed text (strings with brackets and escapes not counted)", () => {
    let seed = 7
    const next = () => (seed = (seed * 16807) % 2147483647) / 2147483647
    for (let i = 0; i < 2000; i++) {
      const value = randomValue(next, 8)
      const text = JSON.stringify(value)
      // the scan skips texts of at most 2 × max characters, so the max compared here stays below half the length
      for (const max of [1, 2, 3, 5]) {
        if (text.length <= 2 * max) continue
        expect(jsonTextNestsDeeperThan(text, max), `${text} max ${max}`).toBe(nestsDeeperThan(value, max))
      }
    }
  })

  it("at the bound: 512 levels are read, 513 are too deep", () => {
    expect(nestsDeeperThan(nest(512), MAX_JSON_DEPTH)).toBe(false)
    expect(nestsDeeperThan(nest(513), MAX_JSON_DEPTH)).toBe(true)
    expect(jsonTextNestsDeeperThan(JSON.stringify(nest(512)), MAX_JSON_DEPTH)).toBe(false)
    expect(jsonTextNestsDeeperThan(JSON.stringify(nest(513)), MAX_JSON_DEPTH)).toBe(true)
    expect(nestsDeeperThan(nest(100_000), MAX_JSON_DEPTH)).toBe(true) // no stack overflow at any depth
  })
})
