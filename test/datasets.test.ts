/**
 * Rows written by skyrl load with the real HuggingFace `datasets` (as SkyRL loads them) and come back
 * value-for-value equal after decoding the JSON-encoded parts. Needs .venv from scripts/setup-python.sh
 * (`.ci/run` creates it); without it the test says so and is skipped.
 */
import { Either, Schema } from "effect"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Inventory } from "../src/domain/inventory.js"
import { convertTask } from "../src/skyrl/convert.js"
import { decodeRow } from "../src/skyrl/layout.js"
import { runCli } from "./support/cli.js"
import { datasetsPython, loadWithDatasets } from "./support/python.js"

const python = datasetsPython()
if (python === undefined) console.warn("datasets round-trip skipped: run scripts/setup-python.sh to create .venv")

const FIXTURES = join(import.meta.dirname, "fixtures")
const inventory = Schema.decodeUnknownSync(Inventory)(
  JSON.parse(readFileSync(join(FIXTURES, "inventory", "finance-mcp.json"), "utf8"))
)

/** Tasks whose params differ in keys and types per tool, with dates, ints, floats and empty params. */
const tasks = [
  ...readdirSync(join(FIXTURES, "openai", "chat")).sort().map((f) =>
    JSON.parse(JSON.parse(readFileSync(join(FIXTURES, "openai", "chat", f), "utf8")).choices[0].message.content)
  ),
  {
    task_id: "2025-09-06",
    user_prompt: "Compare AAPL's move since 2025-09-06 with market status",
    domain: "equities",
    assumptions: ["2025-09-06"],
    tool_sequence: [
      { server: "polygon", tool: "polygon_get_market_status", params: {} },
      {
        server: "polygon",
        tool: "polygon_get_aggs",
        params: { ticker: "AAPL", start_date: "2025-09-06", end_date: "2025-10-06" }
      },
      { server: "fmp", tool: "fmp_get_market_gainers", params: { limit: 5 } },
      { server: "python_execution", tool: "execute_python", params: { code: "print(1.5 * 2)", ratio: 0.1 } }
    ],
    evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "0.5" }] }
  }
]

describe.skipIf(python === undefined)("rows load losslessly with HuggingFace datasets", () => {
  it("json and jsonl written by `skyrl convert`, alone and concatenated, decode to the written rows", () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-ds-"))
    const input = join(dir, "tasks.json")
    writeFileSync(input, JSON.stringify(tasks))
    const files = ["rows.json", "rows.jsonl"].map((f) => join(dir, f))
    for (const out of files) expect(runCli(["convert", input, "--out", out]).status).toBe(0)

    const written = readFileSync(files[1], "utf8").trim().split("\n").map((l) => JSON.parse(l))
    const converted = tasks.map((t) => convertTask(t, { inventory })).filter(Either.isRight).length
    expect(written).toHaveLength(converted)
    // What the env sees after json.loads of the encoded parts must equal what skyrl meant to write.
    const decodedWritten = written.map((r) => Either.getOrThrow(decodeRow(r)))

    for (const set of [[files[0]], [files[1]], files]) {
      const loaded = loadWithDatasets(python!, set)
      const expected = set.length === 2 ? [...written, ...written] : written
      expect(loaded).toEqual(expected) // the on-disk rows, exactly (no nulls padded, no dates converted)
      const decoded = loaded.map((r) => Either.getOrThrow(decodeRow(r)))
      expect(decoded.map((r) => r.reward_spec.ground_truth.tool_sequence.map((s) => s.params))).toEqual(
        (set.length === 2 ? [...decodedWritten, ...decodedWritten] : decodedWritten).map((r) =>
          r.reward_spec.ground_truth.tool_sequence.map((s) => s.params)
        )
      )
    }
    // The values that Arrow would otherwise change survive: the date-like id, empty params, the float.
    const last = decodedWritten[decodedWritten.length - 1]
    expect(last.reward_spec.ground_truth.task_id).toBe("2025-09-06")
    expect(last.reward_spec.ground_truth.tool_sequence[0].params).toEqual({})
    expect(last.reward_spec.ground_truth.tool_sequence[3].params).toEqual({ code: "print(1.5 * 2)", ratio: 0.1 })
  }, 120_000)
})
