/**
 * `skyrl validate` on a row that lacks a field says the field is missing (`prompt: is missing (must be a list of
 * messages)`), as it already did for data_source, reward_spec or extra_info; before, a missing prompt read as one of
 * the wrong type and a missing env_class, method, max_turns or step printed "(got undefined)".
 */
import { Either, Schema } from "effect"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Inventory } from "../src/domain/inventory.js"
import type { Finding } from "../src/skyrl/checks.js"
import { checkRows } from "../src/skyrl/checks.js"
import { convertTask } from "../src/skyrl/convert.js"
import { encodeRow } from "../src/skyrl/layout.js"
import { runCli } from "./support/cli.js"

const FIXTURES = join(import.meta.dirname, "fixtures")
const inventory = Schema.decodeUnknownSync(Inventory)(
  JSON.parse(readFileSync(join(FIXTURES, "inventory", "finance-mcp.json"), "utf8"))
)

const row = (): any =>
  JSON.parse(JSON.stringify(encodeRow(Either.getOrThrow(convertTask(
    {
      task_id: "t0",
      user_prompt: "Get Apple's quote for ticker AAPL, then the 3 latest news.",
      domain: "equities",
      tool_sequence: [
        { server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } },
        {
          server: "polygon",
          tool: "polygon_get_news",
          params: { ticker: "AAPL", limit: 3 },
          depends_on: [1],
          derived_params: ["ticker"]
        }
      ],
      evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "0-1" }] }
    },
    { inventory }
  )))))

/** Every finding of one row (a rule's examples hold them all: one row has fewer than the default 5 each). */
const findingsOf = (value: unknown): Array<Finding> =>
  checkRows([value], { inventory }).rules.flatMap((r) => r.examples)

/** The row with the field at `path` deleted. */
const without = (path: ReadonlyArray<string | number>): unknown => {
  const r = row()
  let at = r
  for (const key of path.slice(0, -1)) at = at[key]
  const last = path[path.length - 1]!
  if (Array.isArray(at)) at.splice(last as number, 1)
  else delete at[last]
  return r
}

const GT = ["reward_spec", "ground_truth"] as const

describe("a missing field is named missing", () => {
  it("the row checked here is clean", () => {
    expect(findingsOf(row()).filter((f) => f.rule.startsWith("contract/"))).toEqual([])
  })

  const cases: Array<[ReadonlyArray<string | number>, string, string]> = [
    [["prompt"], "prompt", "is missing (must be a list of messages)"],
    [["prompt", 0, "role"], "prompt[0].role", "is missing (must be \"system\" or \"user\")"],
    [["prompt", 0, "content"], "prompt[0].content", "is missing (must be a string)"],
    [["env_class"], "env_class", "is missing (must be \"MCPToolEnv\")"],
    [["reward_spec", "method"], "reward_spec.method", "is missing (must be \"rule\")"],
    [[...GT, "max_turns"], "reward_spec.ground_truth.max_turns", "is missing (must be an integer >= 1)"],
    [[...GT, "tool_sequence"], "reward_spec.ground_truth.tool_sequence", "is missing (must be a list of steps)"],
    [
      [...GT, "tool_sequence", 0, "step"],
      "reward_spec.ground_truth.tool_sequence[0].step",
      "is missing (must be 1: steps are numbered 1..n)"
    ],
    [
      [...GT, "tool_sequence", 0, "server"],
      "reward_spec.ground_truth.tool_sequence[0].server",
      "is missing (must be a non-empty string)"
    ],
    [
      [...GT, "tool_sequence", 0, "params"],
      "reward_spec.ground_truth.tool_sequence[0].params",
      "is missing (must be an object, or the JSON text of one)"
    ],
    [
      [...GT, "success", "must_call_tool"],
      "reward_spec.ground_truth.success.must_call_tool",
      "is missing (must be a tool name)"
    ],
    // These said so already.
    [["data_source"], "data_source", "is missing"],
    [["reward_spec"], "reward_spec", "is missing"],
    [["extra_info"], "extra_info", "is missing"],
    [[...GT, "task_id"], "reward_spec.ground_truth.task_id", "is missing"]
  ]
  for (const [path, field, message] of cases) {
    it(`${path.join(".")}: ${message}`, () => {
      expect(findingsOf(without(path)).filter((f) => f.field === field).map((f) => f.message)).toContain(message)
    })
  }

  it("a present field of the wrong value still says what it got", () => {
    const r = row()
    r.env_class = "BaseTextEnv"
    r.reward_spec.method = null
    r.reward_spec.ground_truth.tool_sequence[0].step = 7
    const messages = findingsOf(r).map((f) => `${f.field}: ${f.message}`)
    expect(messages).toContain("env_class: must be \"MCPToolEnv\" (got \"BaseTextEnv\")")
    expect(messages).toContain("reward_spec.method: must be \"rule\" (got null)")
    expect(messages).toContain(
      "reward_spec.ground_truth.tool_sequence[0].step: must be 1 (steps are numbered 1..n), got 7"
    )
  })

  it("a number beyond a double's range (1e999 reads as Infinity) is quoted as Infinity, not as JSON's null", () => {
    const r = row()
    r.reward_spec.ground_truth.max_turns = JSON.parse("1e999")
    r.reward_spec.ground_truth.tool_sequence[0].step = JSON.parse("-1e999")
    const messages = findingsOf(r).map((f) => `${f.field}: ${f.message}`)
    // was: "(got null)", beside a report line on the same row saying "float Infinity"
    expect(messages).toContain("reward_spec.ground_truth.max_turns: must be an integer >= 1 (got Infinity)")
    expect(messages).toContain(
      "reward_spec.ground_truth.tool_sequence[0].step: must be 1 (steps are numbered 1..n), got -Infinity"
    )
  })

  it("no field of the row, taken away, gives a message with \"undefined\" in it", () => {
    const paths: Array<Array<string | number>> = []
    const walk = (v: unknown, path: Array<string | number>) => {
      if (Array.isArray(v) && v.length > 0 && path[path.length - 1] !== "available_tools") {
        paths.push([...path, 0])
        walk(v[0], [...path, 0])
      } else if (typeof v === "object" && v !== null && !Array.isArray(v)) {
        for (const [k, x] of Object.entries(v)) {
          paths.push([...path, k])
          walk(x, [...path, k])
        }
      }
    }
    walk(row(), [])
    expect(paths.length).toBeGreaterThan(20)
    const undefinedSaid = paths.flatMap((p) =>
      findingsOf(without(p)).filter((f) => f.message.includes("undefined")).map((f) =>
        `${p.join(".")} -> ${f.field}: ${f.message}`
      )
    )
    expect(undefinedSaid).toEqual([])
  })

  it("the CLI prints it so", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "skyrl-missing-")), "rows.jsonl")
    const r = row()
    delete r.prompt
    delete r.env_class
    writeFileSync(file, JSON.stringify(r) + "\n")
    const result = await runCli(["validate", file])
    expect(result.status).toBe(1)
    expect(result.stdout).toContain(`${file} row 0 prompt: is missing (must be a list of messages)`)
    expect(result.stdout).toContain(`${file} row 0 env_class: is missing (must be "MCPToolEnv")`)
    expect(result.stdout).not.toContain("undefined")
  })
})
