/**
 * `convert` reads a step's params as generate reads the model's (the same answer gives the same row): the nulls the
 * strict output schema makes the model write for optional params are dropped, and params given as a JSON string
 * (the form the output schema offers for a tool whose schema cannot be made strict) are parsed. Before, convert of
 * generate's own archive rejected a task generate had written (`params/limit: must be integer (got null null)`) and
 * refused string params (`tool_sequence[0].params: must be an object, got string`).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"

const rubric = { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
const task = (id: string, params: unknown, tool = "fmp_get_income_statement") => ({
  task_id: id,
  user_prompt: `Income statement of Apple, please (${id})`,
  tool_sequence: [{ server: "fmp", tool, params }],
  evaluation_rubric: rubric
})

const lines = (file: string) => readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))

describe("convert reads params as generate reads the model's", () => {
  it(
    "drops an optional param's null, parses params given as a JSON string, and rejects what generate rejects",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "skyrl-modelparams-"))
      const tasks = join(dir, "tasks.jsonl")
      const given = [
        task("nulls", { symbol: "AAPL", period: null, limit: null }),
        task("string", JSON.stringify({ symbol: "AAPL", period: "quarterly" })),
        task("string-nulls", JSON.stringify({ symbol: "AAPL", limit: null })),
        task("required-null", { symbol: null }),
        task("not-json", "{symbol: AAPL}"),
        task("json-array", "[1, 2]")
      ]
      writeFileSync(tasks, given.map((t) => JSON.stringify(t)).join("\n") + "\n")
      const out = join(dir, "rows.jsonl")
      const r = await runCli(["convert", tasks, "--out", out])
      expect(r.status, r.stderr).toBe(0)
      const plans = lines(out).map((row) => [
        row.reward_spec.ground_truth.task_id,
        JSON.parse(row.reward_spec.ground_truth.tool_sequence[0].params)
      ])
      expect(plans).toEqual([
        ["nulls", { symbol: "AAPL" }],
        ["string", { symbol: "AAPL", period: "quarterly" }]
      ])
      const rejects = lines(`${out}.rejects.jsonl`).map((j) => [j.index, j.field, j.reason])
      expect(rejects).toEqual([
        // A string's params are read against the tool's own schema, not the strict form: a null there is the
        // model's own, which generate asks to repair too.
        [2, "tool_sequence[0].params.limit", expect.stringMatching(/params\/limit: must be integer \(got null\)$/)],
        [3, "tool_sequence[0].params.symbol", expect.stringMatching(/params\/symbol: must be string \(got null\)$/)],
        [4, "tool_sequence[0].params", expect.stringMatching(/^is not valid JSON: /)],
        [5, "tool_sequence[0].params", "must be a JSON object encoded in a string"]
      ])
      // The input is read, not rewritten.
      expect(readFileSync(tasks, "utf8")).toBe(given.map((t) => JSON.stringify(t)).join("\n") + "\n")
    },
    60_000
  )
})
