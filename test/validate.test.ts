/**
 * `skyrl validate`: each rule on crafted rows, the prototype row against the finance inventory, skyrl's
 * own output (clean), exit codes and the JSON report, the checks `convert` runs on what it writes, and
 * `skyrl schema`.
 */
import { Ajv } from "ajv"
import { Effect, Either, Exit, Logger, Schema } from "effect"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { describe, expect, it } from "vitest"
import { Inventory } from "../src/domain/inventory.js"
import type { EncodedRow } from "../src/domain/row.js"
import { promptReadingOf } from "../src/programs/generate.js"
import { checkWrittenDataset, DatasetViolationsError, validateFiles } from "../src/programs/validate.js"
import { Storage, StorageLive } from "../src/services/Storage.js"
import { callRequestLine, DIRECT_IDS, MCP_MESSAGE_LIMIT } from "../src/skyrl/callSize.js"
import type { Report, RuleId } from "../src/skyrl/checks.js"
import { checkRows, DatasetChecker, normalizeForDuplicates } from "../src/skyrl/checks.js"
import { convertTask } from "../src/skyrl/convert.js"
import { decodeRow, encodeRow } from "../src/skyrl/layout.js"
import { statesNumber } from "../src/skyrl/literalsShown.js"
import { validatePlan } from "../src/skyrl/planValidation.js"
import { systemLeak } from "../src/skyrl/promptLeak.js"
import { chatPromptTokens } from "../src/skyrl/promptTokens.js"
import { parseRecords } from "../src/skyrl/records.js"
import { runCli, runCliShared } from "./support/cli.js"
import { settingsFor } from "./support/engine.js"

const FIXTURES = join(import.meta.dirname, "fixtures")
const INVENTORY_FILE = join(FIXTURES, "inventory", "finance-mcp.json")
const PROTOTYPE = join(FIXTURES, "prototype", "train_llm.json")
const inventory = Schema.decodeUnknownSync(Inventory)(JSON.parse(readFileSync(INVENTORY_FILE, "utf8")))
const tmp = () => mkdtempSync(join(tmpdir(), "skyrl-validate-"))
const run = <A, E>(effect: Effect.Effect<A, E, Storage>) =>
  Effect.runPromiseExit(effect.pipe(Effect.provide(StorageLive), Effect.provide(Logger.remove(Logger.defaultLogger))))

const rowFor = (i: number, overrides: Record<string, unknown> = {}, maxPromptTokens?: number): EncodedRow =>
  encodeRow(Either.getOrThrow(convertTask(
    {
      task_id: `t${i}`,
      user_prompt: `Get Apple's quote for ticker number ${i}, then the 3 latest news.`,
      domain: i % 2 === 0 ? "equities" : "macro",
      tool_sequence: [
        { server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } },
        // The news of the ticker the quote returned: typed lists in every file these rows make.
        {
          server: "polygon",
          tool: "polygon_get_news",
          params: { ticker: "AAPL", limit: 3 },
          depends_on: [1],
          derived_params: ["ticker"]
        }
      ],
      evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "0-1" }] },
      ...overrides
    },
    { inventory, maxPromptTokens }
  )))

/** A deep copy of a row with `edit` applied (rows are plain JSON). */
const edited = (row: EncodedRow, edit: (r: any) => void): unknown => {
  const copy = JSON.parse(JSON.stringify(row))
  edit(copy)
  return copy
}

const ruleOf = (report: Report, id: RuleId) => report.rules.find((r) => r.id === id)!
/** The rules with findings that count as violations (warnings aside). */
const failing = (report: Report) => report.rules.filter((r) => r.count > 0 && r.severity === "error").map((r) => r.id)

describe("the SkyRL contract", () => {
  const base = rowFor(0)
  const cases: Array<[string, (r: any) => void, RuleId, string]> = [
    [
      "an assistant message",
      (r) => r.prompt.splice(1, 0, { role: "assistant", content: "hi" }),
      "contract/prompt",
      "prompt[1].role"
    ],
    [
      "content with surrounding whitespace",
      (r) => (r.prompt[1].content += "\n"),
      "contract/prompt",
      "prompt[1].content"
    ],
    ["empty content", (r) => (r.prompt[0].content = "  "), "contract/prompt", "prompt[0].content"],
    ["the user message not last", (r) => r.prompt.reverse(), "contract/prompt", "prompt"],
    ["two user messages", (r) => r.prompt.push({ role: "user", content: "again" }), "contract/prompt", "prompt"],
    ["another env_class", (r) => (r.env_class = "SQLEnv"), "contract/env_class", "env_class"],
    [
      "another reward method",
      (r) => (r.reward_spec.method = "llm_judge"),
      "contract/reward_method",
      "reward_spec.method"
    ],
    [
      "steps not numbered 1..n",
      (r) => (r.reward_spec.ground_truth.tool_sequence[1].step = 3),
      "contract/tool_sequence",
      "reward_spec.ground_truth.tool_sequence[1].step"
    ],
    [
      "a step without a server",
      (r) => delete r.reward_spec.ground_truth.tool_sequence[0].server,
      "contract/tool_sequence",
      "reward_spec.ground_truth.tool_sequence[0].server"
    ],
    [
      "params that are not a JSON object",
      (r) => (r.reward_spec.ground_truth.tool_sequence[0].params = "[1,2]"),
      "contract/tool_sequence",
      "reward_spec.ground_truth.tool_sequence[0].params"
    ],
    [
      "an empty plan",
      (r) => (r.reward_spec.ground_truth.tool_sequence = []),
      "contract/tool_sequence",
      "reward_spec.ground_truth.tool_sequence"
    ],
    [
      "must_call_tool not in the plan",
      (r) => (r.reward_spec.ground_truth.success.must_call_tool = "tavily_search"),
      "contract/must_call_tool",
      "reward_spec.ground_truth.success.must_call_tool"
    ],
    [
      "a fractional max_turns",
      (r) => (r.reward_spec.ground_truth.max_turns = 4.5),
      "contract/schema",
      "reward_spec.ground_truth.max_turns"
    ],
    [
      "a max_turns of 0",
      (r) => (r.reward_spec.ground_truth.max_turns = 0),
      "contract/schema",
      "reward_spec.ground_truth.max_turns"
    ],
    [
      "depends_on that is not the JSON text of a list of step numbers",
      (r) => (r.reward_spec.ground_truth.tool_sequence[1].depends_on = "[\"1\"]"),
      "contract/provenance",
      "reward_spec.ground_truth.tool_sequence[1].depends_on"
    ],
    [
      "derived_params that is not JSON",
      (r) => (r.reward_spec.ground_truth.tool_sequence[1].derived_params = "ticker"),
      "contract/provenance",
      "reward_spec.ground_truth.tool_sequence[1].derived_params"
    ],
    [
      "a step's call_name null (passed: the env would call it by its tool name, not the name the prompt shows)",
      (r) => (r.reward_spec.ground_truth.tool_sequence[0].call_name = null),
      "contract/provenance",
      "reward_spec.ground_truth.tool_sequence[0].call_name"
    ],
    [
      "a step's call_name \"\" (passed)",
      (r) => (r.reward_spec.ground_truth.tool_sequence[1].call_name = ""),
      "contract/provenance",
      "reward_spec.ground_truth.tool_sequence[1].call_name"
    ],
    [
      "an empty available_tools",
      (r) => (r.reward_spec.ground_truth.available_tools = []),
      "contract/provenance",
      "reward_spec.ground_truth.available_tools"
    ],
    [
      "tool_schemas without the schema of a step with derived params (the env would score any value of them)",
      (r) => (r.reward_spec.ground_truth.tool_schemas = JSON.stringify({ fmp_get_quote: { type: "object" } })),
      "contract/provenance",
      "reward_spec.ground_truth.tool_schemas"
    ],
    [
      "tool_schemas {} on a row with derived params",
      (r) => (r.reward_spec.ground_truth.tool_schemas = "{}"),
      "contract/provenance",
      "reward_spec.ground_truth.tool_schemas"
    ],
    [
      "a tool schema whose $ref points into it at nothing (passed, and MCPToolEnv took any value reaching it)",
      (r) => {
        const schemas = JSON.parse(r.reward_spec.ground_truth.tool_schemas)
        schemas.polygon_get_news.properties.ticker = { $ref: "#/definitions/Missing" }
        r.reward_spec.ground_truth.tool_schemas = JSON.stringify(schemas)
      },
      "contract/provenance",
      "reward_spec.ground_truth.tool_schemas"
    ],
    [
      "a tool schema with a $ref loop no value can end (passed)",
      (r) => {
        const schemas = JSON.parse(r.reward_spec.ground_truth.tool_schemas)
        schemas.polygon_get_news.properties.ticker = { $ref: "#/properties/ticker" }
        r.reward_spec.ground_truth.tool_schemas = JSON.stringify(schemas)
      },
      "contract/provenance",
      "reward_spec.ground_truth.tool_schemas"
    ],
    [
      "a tool schema that is no JSON Schema (a property's type 5: passed, and MCPToolEnv took any arguments of the call)",
      (r) => {
        const schemas = JSON.parse(r.reward_spec.ground_truth.tool_schemas)
        schemas.polygon_get_news.properties.limit = { type: 5 }
        r.reward_spec.ground_truth.tool_schemas = JSON.stringify(schemas)
      },
      "contract/provenance",
      "reward_spec.ground_truth.tool_schemas"
    ],
    [
      "a tool schema whose required is a string (passed)",
      (r) => {
        const schemas = JSON.parse(r.reward_spec.ground_truth.tool_schemas)
        schemas.fmp_get_quote.required = "symbol"
        r.reward_spec.ground_truth.tool_schemas = JSON.stringify(schemas)
      },
      "contract/provenance",
      "reward_spec.ground_truth.tool_schemas"
    ],
    [
      "a tool schema that is no object (true: passed, and MCPToolEnv refuses the row)",
      (r) => {
        const schemas = JSON.parse(r.reward_spec.ground_truth.tool_schemas)
        schemas.fmp_get_quote = true
        r.reward_spec.ground_truth.tool_schemas = JSON.stringify(schemas)
      },
      "contract/provenance",
      "reward_spec.ground_truth.tool_schemas"
    ],
    [
      "two offered tools under one call name (a call by it is ambiguous)",
      (r) => {
        const offer = JSON.parse(JSON.stringify(r.reward_spec.ground_truth.available_tools))
        r.reward_spec.ground_truth.available_tools = [...offer, { ...offer[0], server: "polygon" }]
      },
      "contract/provenance",
      "reward_spec.ground_truth.available_tools[25].call_name"
    ],
    [
      "two offered tools under one call name whose server.tool reads the same (server a.b's c, server a's b.c: passed)",
      (r) => {
        const offer = JSON.parse(JSON.stringify(r.reward_spec.ground_truth.available_tools))
        r.reward_spec.ground_truth.available_tools = [
          ...offer,
          { call_name: "a.b.c", server: "a", tool: "b.c" },
          { call_name: "a.b.c", server: "a.b", tool: "c" }
        ]
      },
      "contract/provenance",
      "reward_spec.ground_truth.available_tools[26].call_name"
    ],
    [
      "two offered tools under one call name in an offer of more than 64 tools (looked up in a map there)",
      (r) => {
        const offer = JSON.parse(JSON.stringify(r.reward_spec.ground_truth.available_tools))
        const more = Array.from({ length: 50 }, (_, i) => ({ call_name: `extra_${i}`, server: "extra", tool: `t${i}` }))
        r.reward_spec.ground_truth.available_tools = [...offer, ...more, { ...offer[3], server: "polygon" }]
      },
      "contract/provenance",
      "reward_spec.ground_truth.available_tools[75].call_name"
    ],
    [
      "a missing rubric",
      (r) => delete r.reward_spec.ground_truth.rubric,
      "contract/schema",
      "reward_spec.ground_truth.rubric"
    ],
    [
      "a rubric without criteria (a judge would have nothing to score; convert refuses it)",
      (r) => (r.reward_spec.ground_truth.rubric.criteria = []),
      "contract/schema",
      "reward_spec.ground_truth.rubric.criteria"
    ],
    [
      "task_metadata as an object (`skyrl schema row`: JSON text)",
      (r) => (r.extra_info.task_metadata = JSON.parse(r.extra_info.task_metadata)),
      "contract/schema",
      "extra_info.task_metadata"
    ]
  ]
  it("a row skyrl wrote passes every rule", () => {
    const report = checkRows([base], { inventory })
    expect(failing(report)).toEqual([])
    expect(report.ok).toBe(true)
  })
  for (const [name, edit, rule, field] of cases) {
    it(`reports ${name} under ${rule} at ${field}`, () => {
      const report = checkRows([edited(base, edit)], { inventory }, "f.jsonl")
      expect(failing(report)).toContain(rule)
      expect(ruleOf(report, rule).examples[0]).toMatchObject({ file: "f.jsonl", row: 0, field })
      // The schema check does not repeat what a specific rule already said.
      if (rule !== "contract/schema") expect(failing(report)).not.toContain("contract/schema")
    })
  }
  it("a tool schema of tool_schemas MCPToolEnv refuses is named with its $ref, also on a row made before provenance", () => {
    const dangling = (r: any) => {
      const schemas = JSON.parse(r.reward_spec.ground_truth.tool_schemas)
      schemas.fmp_get_quote.properties.symbol = { $ref: "#/$defs/x" }
      r.reward_spec.ground_truth.tool_schemas = JSON.stringify(schemas)
    }
    const message = "\"fmp_get_quote\": $ref \"#/$defs/x\" (at #/properties/symbol) resolves to nothing in the " +
      "schema: no value there can be checked; MCPToolEnv refuses the row, as skyrl refuses such a schema in an inventory"
    const legacy = (r: any) => {
      dangling(r)
      for (const s of r.reward_spec.ground_truth.tool_sequence) delete s.call_name
    }
    for (const edit of [dangling, legacy]) {
      const report = checkRows([edited(base, edit)], { inventory }, "f.jsonl")
      expect(ruleOf(report, "contract/provenance").examples).toContainEqual(
        expect.objectContaining({ field: "reward_spec.ground_truth.tool_schemas", message })
      )
    }
    // A schema whose definitions nobody uses holds a $ref to nothing: never read, by Ajv nor MCPToolEnv.
    const unused = edited(base, (r) => {
      const schemas = JSON.parse(r.reward_spec.ground_truth.tool_schemas)
      schemas.fmp_get_quote.definitions = { unused: { $ref: "#/definitions/Missing" } }
      r.reward_spec.ground_truth.tool_schemas = JSON.stringify(schemas)
    })
    expect(failing(checkRows([unused], { inventory }))).toEqual([])
  })

  it("a tool schema of tool_schemas no meta-schema takes is named with the fault, also on a row made before provenance", () => {
    const withSchema = (schema: unknown) => (r: any) => {
      const schemas = JSON.parse(r.reward_spec.ground_truth.tool_schemas)
      schemas.fmp_get_quote = schema
      r.reward_spec.ground_truth.tool_schemas = JSON.stringify(schemas)
    }
    const invalid = withSchema({ type: "object", properties: { symbol: { type: "string", minimum: "x" } } })
    const message = "\"fmp_get_quote\": not a valid JSON Schema (draft-07 meta-schema): #/properties/symbol/minimum " +
      "must be number; MCPToolEnv refuses the row, as skyrl refuses such a schema in an inventory"
    const legacy = (r: any) => {
      invalid(r)
      for (const s of r.reward_spec.ground_truth.tool_sequence) delete s.call_name
    }
    for (const edit of [invalid, legacy]) {
      const report = checkRows([edited(base, edit)], { inventory }, "f.jsonl")
      expect(ruleOf(report, "contract/provenance").examples).toContainEqual(
        expect.objectContaining({ field: "reward_spec.ground_truth.tool_schemas", message })
      )
    }
    const notObject = checkRows([edited(base, withSchema(true))], { inventory })
    expect(ruleOf(notObject, "contract/provenance").examples).toContainEqual(expect.objectContaining({
      message: "\"fmp_get_quote\": is not a JSON Schema object (got true); MCPToolEnv refuses the row, as skyrl " +
        "refuses such a schema in an inventory"
    }))
    // Valid schemas both readers take: a draft named, unknown keywords, a pattern only JavaScript reads.
    for (
      const schema of [
        { $schema: "https://json-schema.org/draft/2020-12/schema", type: "object", properties: { symbol: {} } },
        { type: "object", properties: { symbol: { type: ["string", "null"], nullable: true, "x-foo": 1 } } },
        { type: "object", properties: { symbol: { type: "string", pattern: "^\\p{Lu}+$", format: "unknown" } } }
      ]
    ) {
      expect(failing(checkRows([edited(base, withSchema(schema))], { inventory }))).toEqual([])
    }
  })

  it("fewer turns than steps + 1 is a warning under contract/max_turns (the plan cannot finish one call per turn)", () => {
    for (const turns of [1, 2]) {
      const report = checkRows([edited(base, (r) => (r.reward_spec.ground_truth.max_turns = turns))], { inventory })
      expect(failing(report)).toEqual([])
      expect(ruleOf(report, "contract/max_turns")).toMatchObject({
        severity: "warning",
        count: 1,
        examples: [{
          field: "reward_spec.ground_truth.max_turns",
          message: `${turns} turns for 2 steps: one call per turn (as the prompt asks) and the final answer need 3, ` +
            "so the plan itself cannot finish"
        }]
      })
    }
    const three = checkRows([edited(base, (r) => (r.reward_spec.ground_truth.max_turns = 3))], { inventory })
    expect(ruleOf(three, "contract/max_turns").count).toBe(0)
  })
  it("limits below what the plan uses are a contract/limits violation (the env ends the episode at the call past one)", () => {
    // base: 2 tools (fmp_get_quote, polygon_get_news) on 2 servers.
    const limited = (max_tools: number, max_servers: number) =>
      checkRows([edited(base, (r) => (r.reward_spec.ground_truth.limits = { max_tools, max_servers }))], { inventory })
    expect(limited(1, 2).ok).toBe(false)
    expect(ruleOf(limited(1, 2), "contract/limits")).toMatchObject({
      severity: "error",
      count: 1,
      examples: [{
        field: "reward_spec.ground_truth.limits.max_tools",
        message: "1 is less than the 2 distinct tools the plan uses: the episode ends at the call past the limit, " +
          "so the plan itself cannot finish"
      }]
    })
    expect(ruleOf(limited(0, 0), "contract/limits").count).toBe(2)
    expect(failing(limited(2, 2))).toEqual([])
  })
  it("a step whose tools/call request is over 10 MiB is a contract/call-size violation naming step and param", () => {
    // verify refuses such a row at its contract stage (the server would refuse the line and exit): params as JSON
    // text (skyrl's layout) and as an object (an older one) alike; the field names the param that makes it long.
    const symbol = "A".repeat(MCP_MESSAGE_LIMIT)
    const text = edited(base, (r) => (r.reward_spec.ground_truth.tool_sequence[0].params = JSON.stringify({ symbol })))
    const typed = edited(base, (r) => (r.reward_spec.ground_truth.tool_sequence[0].params = { symbol }))
    const report = checkRows([base, text, typed], { inventory }, "f.jsonl")
    const rule = ruleOf(report, "contract/call-size")
    expect(rule).toMatchObject({ severity: "error", count: 2 })
    expect(report.ok).toBe(false)
    expect(rule.examples.map((e) => [e.file, e.row, e.field])).toEqual([1, 2].map((row) => [
      "f.jsonl",
      row,
      "reward_spec.ground_truth.tool_sequence[0].params.symbol"
    ]))
    const bytes = Buffer.byteLength(callRequestLine(DIRECT_IDS, "fmp_get_quote", { symbol }))
    expect(rule.examples[0]!.message).toBe(
      `step 1: its tools/call request is ${bytes} bytes long, over the 10485760 bytes (10 MiB) an MCP message may ` +
        `take over stdio: too long to send (the server would refuse it and exit); params.symbol alone is ` +
        `${MCP_MESSAGE_LIMIT + 11} bytes (verify refuses the row, and no model writes a call that long)`
    )
    // A finding quoting the value (prompt/literal-not-shown: the prompt never states it) is cut, its cut said:
    // it wrote 10 MB to the report and the log.
    const literal = ruleOf(report, "prompt/literal-not-shown").examples.find((e) => e.row === 1)!.message
    expect(literal).toMatch(/^the prompt never states step 1 fmp_get_quote symbol = "AAAA.*… \(\d+ more characters\)$/)
    expect(literal.length).toBeLessThan(1100)
    expect(Math.max(...report.rules.flatMap((r) => r.examples.map((e) => e.message.length)))).toBeLessThan(1100)
    // A key that long is the part named (it was the tool name: only values were measured), the field cut too.
    const key = "k".repeat(MCP_MESSAGE_LIMIT)
    const keyed = edited(
      base,
      (r) => (r.reward_spec.ground_truth.tool_sequence[0].params = JSON.stringify({ [key]: 1 }))
    )
    const [found] = ruleOf(checkRows([keyed], { inventory }, "f.jsonl"), "contract/call-size").examples
    expect(found!.field).toMatch(
      /^reward_spec\.ground_truth\.tool_sequence\[0\]\.params\.kkkk+… \(\d+ more characters\)$/
    )
    expect(found!.field.length).toBeLessThan(1100)
  })
  it("depends_on and derived_params as typed lists (rows written before they were JSON text) still read", () => {
    const lists = edited(base, (r) => {
      for (const s of r.reward_spec.ground_truth.tool_sequence) {
        s.depends_on = JSON.parse(s.depends_on)
        s.derived_params = JSON.parse(s.derived_params)
      }
    })
    expect(failing(checkRows([lists], { inventory }))).toEqual([])
    const forward = edited(lists as EncodedRow, (r) => (r.reward_spec.ground_truth.tool_sequence[0].depends_on = [2]))
    expect(ruleOf(checkRows([forward], { inventory }), "contract/provenance").examples[0]!.field).toBe(
      "reward_spec.ground_truth.tool_sequence[0].depends_on"
    )
  })
  it("a row that is not an object is a contract violation, not a crash", () => {
    expect(failing(checkRows([[1, 2]]))).toEqual(["contract/schema"])
  })
})

describe("plans against the inventory", () => {
  it("an unknown tool and invalid params are reported per step with the param paths", () => {
    const row = edited(rowFor(0), (r) => {
      const steps = r.reward_spec.ground_truth.tool_sequence
      steps[0].tool = "fmp_get_quotes"
      steps[1].params = JSON.stringify({ ticker: "AAPL", limit: "three" })
      r.reward_spec.ground_truth.success.must_call_tool = "fmp_get_quotes"
    })
    const report = checkRows([row], { inventory })
    expect(ruleOf(report, "plan/tool").examples[0].field).toBe("reward_spec.ground_truth.tool_sequence[0].tool")
    expect(ruleOf(report, "plan/tool").examples[0].message).toContain("fmp_get_quote")
    expect(ruleOf(report, "plan/params").examples[0]).toMatchObject({
      field: "reward_spec.ground_truth.tool_sequence[1].params",
      message: expect.stringContaining("params.limit: must be integer")
    })
  })
  it("without an inventory the plan rules are skipped and the report says so", () => {
    const report = checkRows([edited(rowFor(0), (r) => (r.reward_spec.ground_truth.tool_sequence[0].tool = "nope"))])
    expect(report.inventory).toBe(false)
    expect(ruleOf(report, "plan/tool").count).toBe(0)
  })
})

describe("Arrow hazards, across rows and files", () => {
  it("params as objects with different keys, a date-like typed field, an empty object, ints and floats mixed", () => {
    const a = edited(rowFor(0), (r) => {
      r.reward_spec.ground_truth.tool_sequence[0].params = { symbol: "AAPL" }
      r.reward_spec.ground_truth.tool_sequence[1].params = { ticker: "AAPL", limit: 3 }
    })
    const b = edited(rowFor(1), (r) => {
      r.reward_spec.ground_truth.task_id = "2025-09-06"
      r.reward_spec.ground_truth.tool_sequence[0].params = {}
      r.reward_spec.ground_truth.tool_sequence[1].params = { ticker: "MSFT", limit: 2.5 }
    })
    const report = checkRows([a, b], {}, "f.json")
    const fields = (id: RuleId) => ruleOf(report, id).examples.map((e) => `${e.row} ${e.field}`)
    // One abstract path (tool_sequence[].params): both {ticker, limit} objects differ from row 0's {symbol}.
    expect(fields("arrow/key-sets")).toEqual([
      "0 reward_spec.ground_truth.tool_sequence[1].params",
      "1 reward_spec.ground_truth.tool_sequence[1].params"
    ])
    expect(fields("arrow/date-string")).toEqual(["1 reward_spec.ground_truth.task_id"])
    expect(fields("arrow/empty-object")).toEqual(["1 reward_spec.ground_truth.tool_sequence[0].params"])
    expect(fields("arrow/int-float")).toEqual(["1 reward_spec.ground_truth.tool_sequence[1].params.limit"])
    // The two params strings/objects are one path: the first row's object keys are {symbol}.
    expect(ruleOf(report, "arrow/key-sets").examples[0].message).toContain("{symbol} at f.json row 0")
  })
  it("a type change between two files at one path (JSON-encoded params in one, objects in the other)", async () => {
    const dir = tmp()
    const encoded = join(dir, "a.jsonl")
    const objects = join(dir, "b.jsonl")
    writeFileSync(encoded, JSON.stringify(rowFor(0)) + "\n")
    writeFileSync(
      objects,
      JSON.stringify(edited(rowFor(1), (r) => {
        for (const s of r.reward_spec.ground_truth.tool_sequence) s.params = JSON.parse(s.params)
      })) + "\n"
    )
    const exit = await run(validateFiles({ files: [encoded, objects], inventory }))
    const report = Exit.isSuccess(exit) ? exit.value : undefined
    expect(ruleOf(report!, "arrow/type-change").examples[0]).toMatchObject({
      file: objects,
      row: 0,
      field: "reward_spec.ground_truth.tool_sequence[0].params",
      message: expect.stringContaining(`string at ${encoded} row 0`)
    })
    // Alone, each file is consistent.
    for (const f of [encoded, objects]) {
      const alone = await run(validateFiles({ files: [f], inventory }))
      expect(Exit.isSuccess(alone) && ruleOf(alone.value, "arrow/type-change").count).toBe(0)
    }
  })
  it("a whole number written as a float (4.0) or beyond int64 is a float: datasets can't concatenate its file", async () => {
    const dir = tmp()
    const [ints, floats, huge] = ["ints.jsonl", "floats.jsonl", "huge.jsonl"].map((f) => join(dir, f))
    writeFileSync(ints, JSON.stringify(rowFor(0)) + "\n")
    const text = JSON.stringify(rowFor(1))
    writeFileSync(floats, text.replace(/"max_turns":(\d+)/, `"max_turns":$1.0`) + "\n")
    writeFileSync(huge, text.replace(/"max_turns":(\d+)/, `"max_turns":10000000000000000000`) + "\n")
    const intFloat = async (files: Array<string>) => {
      const exit = await run(validateFiles({ files, inventory }))
      return Exit.isSuccess(exit) ? ruleOf(exit.value, "arrow/int-float").examples : undefined
    }
    // before: no finding (JSON.parse gives 4 for 4.0), and concatenate_datasets failed on float64 against int64
    expect(await intFloat([ints, floats])).toEqual([expect.objectContaining({
      file: floats,
      field: "reward_spec.ground_truth.max_turns",
      message: expect.stringMatching(/^float \d+ \(written as a float\) here, int at .*ints\.jsonl row 0/)
    })])
    expect((await intFloat([ints, huge]))![0]!.message).toMatch(/^float 10000000000000000000 \(beyond int64\) here/)
    for (const f of [ints, floats, huge]) expect(await intFloat([f])).toEqual([]) // each file alone is one type
    expect(await intFloat([floats, huge])).toEqual([])
  })
  it("JSON-encoded params and metadata are opaque: dates and differing keys inside them are no hazard", () => {
    const rows = [
      rowFor(0, {
        tool_sequence: [{
          server: "polygon",
          tool: "polygon_get_aggs",
          params: { ticker: "A", start_date: "2025-01-02", end_date: "2025-02-03" }
        }]
      }),
      rowFor(1, { tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "B" } }] })
    ]
    expect(failing(checkRows(rows, { inventory }))).toEqual([])
  })
})

describe("prompt size", () => {
  it("counts the chat-templated prompt with o200k_base and reports rows over the budget", () => {
    const messages = [{ role: "system", content: "You are helpful." }, { role: "user", content: "Hello world" }]
    // "You are helpful." = 4 tokens, "Hello world" = 2, role lines 2 each, 3 markers per message, 3 for the generation prompt
    expect(chatPromptTokens(messages)).toBe(4 + 2 + 2 * (2 + 3) + 3)
    const long = rowFor(0, { user_prompt: "Get the quote. ".repeat(200).trim() }, 5000)
    const report = checkRows([rowFor(1), long], { inventory, maxPromptTokens: 1024 })
    expect(ruleOf(report, "prompt/too-long").examples.map((e) => e.row)).toEqual([1])
    expect(report.promptTokens.max).toBeGreaterThan(1024)
    expect(failing(checkRows([rowFor(1), long], { inventory, maxPromptTokens: 5000 }))).toEqual([])
  })
})

describe("duplicates", () => {
  it("identical prompts, near-duplicates after normalization, and duplicate task ids", () => {
    const a = rowFor(0)
    const sameText = rowFor(1, { user_prompt: "get apple's QUOTE for ticker number 0 -- then the 3 latest news!!" })
    const exact = edited(rowFor(2), (r) => (r.prompt = a.prompt))
    const sameId = rowFor(3, { task_id: "t0" })
    const report = checkRows([a, sameText, exact, sameId], { inventory }, "f.jsonl")
    expect(ruleOf(report, "duplicate/near-prompt").examples.map((e) => [e.row, e.message])).toEqual([
      [1, "same text as f.jsonl row 0 after normalization"]
    ])
    expect(ruleOf(report, "duplicate/prompt").examples.map((e) => [e.row, e.message])).toEqual([
      [2, "identical to f.jsonl row 0"]
    ])
    expect(ruleOf(report, "duplicate/task-id").examples.map((e) => e.row)).toEqual([3])
    expect(normalizeForDuplicates("  Hello,   WORLD! 42 ")).toBe("hello world 42")
  })
})

describe("coverage", () => {
  it("counts rows per domain, complexity, server, tool and plan length", () => {
    const rows = [
      rowFor(0),
      rowFor(1, { complexity: "complex" }),
      rowFor(2, { tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "X" } }] })
    ]
    const { coverage } = checkRows(rows, { inventory })
    expect(coverage.domain).toEqual({ equities: 2, macro: 1 })
    // Without a label the complexity follows the calls (2 calls and 1 call: simple).
    expect(coverage.complexity).toEqual({ simple: 2, complex: 1 })
    expect(coverage.server).toEqual({ fmp: 3, polygon: 2 })
    expect(coverage.tool).toEqual({ fmp_get_quote: 3, polygon_get_news: 2 })
    expect(coverage.steps).toEqual({ "1": 1, "2": 2 })
  })
})

describe("the prototype row (test/fixtures/prototype/train_llm.json) against the finance inventory", () => {
  // Read from the fixture and the inventory by hand: step 3 polygon_get_aggs passes symbol/multiplier/
  // timespan/from/to/adjusted where the tool wants ticker/start_date/end_date(/frequency); step 5
  // polygon_get_news passes published_after, which the tool does not declare (ticker, limit). Step 4
  // fmp_get_income_statement passes period "quarter" where the enum is annual|quarterly.
  it("reports its two invalid polygon steps (and the fmp enum), a missing rubric, task_metadata as an object, and its Arrow hazards", async () => {
    const exit = await run(validateFiles({ files: [PROTOTYPE], inventory }))
    if (Exit.isFailure(exit)) throw new Error("expected a report")
    const report = exit.value
    const params = ruleOf(report, "plan/params").examples
    const at = (i: number) => params.find((e) => e.field === `reward_spec.ground_truth.tool_sequence[${i}].params`)!
    expect(at(2).message).toMatch(/^step 3 polygon\/polygon_get_aggs: /)
    for (const p of ["ticker", "start_date", "end_date"]) expect(at(2).message).toContain(`params.${p}`)
    expect(at(2).message).toMatch(/missing required param/)
    for (const p of ["symbol", "from", "to"]) expect(at(2).message).toContain(`params.${p}`)
    expect(at(4).message).toMatch(/^step 5 polygon\/polygon_get_news: params\.published_after: unknown param/)
    expect(at(3).message).toContain("params.period: must be one of \"annual\", \"quarterly\" (got \"quarter\")")
    expect(params.map((e) => e.field)).toHaveLength(3)
    expect(ruleOf(report, "contract/schema").examples.map((e) => [e.field, e.message])).toEqual([
      ["reward_spec.ground_truth.rubric", "is missing"],
      ["extra_info.task_metadata", "must be JSON text (a string), got an object: write it with JSON.stringify"]
    ])
    // Arrow: params objects whose keys differ per tool, ISO dates inside them.
    const keySets = ruleOf(report, "arrow/key-sets").examples.map((e) => e.field)
    expect(keySets).toContain("reward_spec.ground_truth.tool_sequence[2].params")
    expect(keySets).toContain("reward_spec.ground_truth.tool_sequence[4].params")
    const dates = ruleOf(report, "arrow/date-string").examples.map((e) => e.field)
    expect(dates).toContain("reward_spec.ground_truth.tool_sequence[2].params.from")
    expect(dates).toContain("reward_spec.ground_truth.tool_sequence[4].params.published_after")
    expect(report.ok).toBe(false)
  })

  it("`skyrl validate` prints the readable report on stdout and exits 1", async () => {
    const r = await runCli(["validate", PROTOTYPE, "--inventory", INVENTORY_FILE])
    expect(r.status).toBe(1)
    expect(r.stdout).toContain("plan/params  3")
    expect(r.stdout).toContain("tool_sequence[2].params: step 3 polygon/polygon_get_aggs")
    expect(r.stdout).toContain("arrow/key-sets")
    expect(r.stdout).toContain("coverage (rows):")
    expect(r.stderr).toMatch(/violations/)
    expect(r.stderr).not.toContain("coverage")
  })
})

describe("rows made the old way (test/fixtures/old-way: skyrl before param provenance, generate --llm replay)", () => {
  const OLD = join(FIXTURES, "old-way", "generate-replay.jsonl")
  const oldRows = readFileSync(OLD, "utf8").trim().split("\n").map((l) => JSON.parse(l))

  it("`skyrl validate` flags prompt/plan-leak (only the plan's tools, in plan order) and what the rows lack", async () => {
    const r = await runCli(["validate", OLD, "--inventory", INVENTORY_FILE, "--json"])
    expect(r.status).toBe(1)
    const report = JSON.parse(r.stdout) as Report
    expect(failing(report)).toEqual(["contract/provenance", "prompt/plan-leak"])
    const leak = ruleOf(report, "prompt/plan-leak")
    expect(leak.count).toBe(oldRows.length)
    expect(leak.examples[0]).toMatchObject({
      row: 0,
      field: "prompt[0].content",
      message: "only the plan's 2 tools are offered (the inventory has 23 more) " +
        "(tools read from the system message: the row has no available_tools)"
    })
    // Row 4 plans polygon_get_news, fmp_get_change_percent, tavily_search and listed them in that order.
    expect(leak.examples[4]!.message).toMatch(
      /^the tools are not in the inventory's order \(the plan's tools come in plan order\)/
    )
    expect(ruleOf(report, "contract/provenance").examples[0]!.message).toMatch(
      /^lacks call_name \(steps 1, 2\), depends_on \(steps 1, 2\), derived_params \(steps 1, 2\), schema_hash \(steps 1, 2\), available_tools, tool_schemas: a row made before param provenance/
    )
    // Nothing else: the missing fields are not repeated as schema errors.
    expect(ruleOf(report, "contract/schema").count).toBe(0)
  })

  it("the old rows still decode, with the documented defaults, and are written back with the new fields", () => {
    for (const raw of oldRows) {
      const row = Either.getOrThrow(decodeRow(raw))
      const gt = row.reward_spec.ground_truth
      expect(gt.tool_sequence.map((s) => [s.call_name, s.depends_on, s.derived_params, s.schema_hash])).toEqual(
        raw.reward_spec.ground_truth.tool_sequence.map((s: { tool: string }) => [s.tool, [], [], ""])
      )
      // The offer is unknown: the plan's tools (by server and tool, not in plan order), marked as such.
      const planTools = [
        ...new Map(
          raw.reward_spec.ground_truth.tool_sequence.map((s: { server: string; tool: string }) => [
            `${s.server} ${s.tool}`,
            { call_name: s.tool, server: s.server, tool: s.tool }
          ])
        ).entries()
      ].sort(([a], [b]) => String(a) < String(b) ? -1 : 1).map(([, t]) => t)
      expect([gt.available_tools, gt.tool_schemas]).toEqual([planTools, {}])
      expect(row.extra_info.task_metadata.available_tools_source).toBe("plan")
      const again = checkRows([encodeRow(row)], { inventory })
      expect(ruleOf(again, "contract/provenance").count).toBe(0)
      // Rewritten, the row still reads as one whose offer is unknown: the leak check reads the system message.
      expect(ruleOf(again, "prompt/plan-leak").examples[0]!.field).toBe("prompt[0].content")
    }
  })

  it("a row whose available_tools is empty gets the plan's tools, and the leak check reads its system message", () => {
    const row = rowFor(0)
    const empty = edited(row, (r) => (r.reward_spec.ground_truth.available_tools = []))
    const decoded = Either.getOrThrow(decodeRow(empty))
    expect(decoded.reward_spec.ground_truth.available_tools).toEqual([
      { call_name: "fmp_get_quote", server: "fmp", tool: "fmp_get_quote" },
      { call_name: "polygon_get_news", server: "polygon", tool: "polygon_get_news" }
    ])
    expect(decoded.extra_info.task_metadata.available_tools_source).toBe("plan")
    // The prompt offers every tool: no leak, although available_tools now lists only the plan's two.
    const rewritten = checkRows([encodeRow(decoded)], { inventory })
    expect(failing(rewritten)).toEqual([])
    // The same list without the marker is a leak (the row says its prompt offered only the plan's tools).
    const unmarked = edited(encodeRow(decoded), (r) => (r.extra_info.task_metadata = "{}"))
    expect(failing(checkRows([unmarked], { inventory }))).toEqual(["prompt/plan-leak"])
  })

  it("a current row whose offered tools were cut to the plan's or put in plan order is a plan leak", () => {
    const row = rowFor(0, {
      tool_sequence: [
        { server: "polygon", tool: "polygon_get_news", params: { ticker: "AAPL" } },
        { server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }
      ]
    })
    expect(failing(checkRows([row], { inventory }))).toEqual([])
    const plan = row.reward_spec.ground_truth.tool_sequence.map((s) => ({
      call_name: s.call_name,
      server: s.server,
      tool: s.tool
    }))
    const cut = edited(row, (r) => (r.reward_spec.ground_truth.available_tools = plan))
    expect(ruleOf(checkRows([cut], { inventory }), "prompt/plan-leak").examples[0]!.message).toBe(
      "the tools are not in the inventory's order (the plan's tools come in plan order); " +
        "only the plan's 2 tools are offered (the inventory has 23 more)"
    )
    const few = edited(
      row,
      (r) => (r.reward_spec.ground_truth.available_tools = r.reward_spec.ground_truth.available_tools
        .filter((t: { tool: string }) =>
          ["fmp_get_quote", "fmp_get_company_profile", "polygon_get_news"].includes(t.tool)
        ))
    )
    expect(ruleOf(checkRows([few], { inventory }), "prompt/plan-leak").examples[0]!.message).toBe(
      "1 distractor offered, at least 3 needed"
    )
    // A chat log's <tools> block (enrich) shows tools beyond those offered: the policy sees them as
    // distractors, though they cannot be planned with (not in the inventory, or shown otherwise).
    const shown = (names: ReadonlyArray<string>) =>
      edited(few as EncodedRow, (r) => {
        const tools = names.map((name) => ({ name, parameters: { type: "dict", properties: {} } }))
        r.prompt[0].content = `Use the tools.\n<tools>${JSON.stringify(tools)}</tools>`
      })
    const listed = ["fmp_get_quote", "polygon_get_news", "fmp_get_company_profile", "send_email", "web_search"]
    expect(ruleOf(checkRows([shown(listed)], { inventory }), "prompt/plan-leak").count).toBe(0)
    expect(ruleOf(checkRows([shown(listed.slice(0, 4))], { inventory }), "prompt/plan-leak").examples[0]!.message)
      .toBe("2 distractors offered, at least 3 needed")
  })
})

describe("warnings", () => {
  it("a literal param value the prompt never states is a warning (the reward matches it exactly; derived params aside)", () => {
    const row = rowFor(0, { user_prompt: "Get the AAPL quote for ticker number 0, then the latest news." })
    const report = checkRows([row], { inventory })
    expect(ruleOf(report, "prompt/literal-not-shown")).toMatchObject({
      severity: "warning",
      count: 1,
      examples: [{
        row: 0,
        field: "reward_spec.ground_truth.tool_sequence",
        message: expect.stringMatching(/^the prompt never states step 2 polygon_get_news limit = 3: /)
      }]
    })
    expect([report.ok, report.violations]).toEqual([true, 0])
    // rowFor's own prompt states the 3; step 2's ticker is derived (from the quote), so never compared.
    expect(ruleOf(checkRows([rowFor(0)], { inventory }), "prompt/literal-not-shown").count).toBe(0)
    // A user who wants such rows refused makes the rule an error.
    expect(checkRows([row], { inventory, severity: { "prompt/literal-not-shown": "error" } }).violations).toBe(1)
  })

  it("the tool list of a system message states no literal: an enum member or a description's word is not the task's", () => {
    // skyrl's system message lists `period?: "annual"|"quarterly"` and `search_depth?: "basic"|"advanced"`:
    // every enum member, and every word of the descriptions, is in the prompt's text whatever the task asks.
    const enumRow = (user: string) =>
      rowFor(0, {
        user_prompt: user,
        tool_sequence: [
          { server: "fmp", tool: "fmp_get_income_statement", params: { symbol: "IBM", period: "quarterly" } },
          { server: "tavily", tool: "tavily_search", params: { query: "IBM earnings", search_depth: "advanced" } }
        ]
      })
    const unstated = ruleOf(
      checkRows([enumRow("IBM's income statement and a web search on IBM earnings.")], { inventory }),
      "prompt/literal-not-shown"
    )
    expect(unstated.examples[0]?.message).toMatch(
      /^the prompt never states step 1 fmp_get_income_statement period = "quarterly"; step 2 tavily_search search_depth = "advanced": /
    )
    const stated = "IBM's quarterly income statement and an advanced web search on IBM earnings."
    expect(ruleOf(checkRows([enumRow(stated)], { inventory }), "prompt/literal-not-shown").count).toBe(0)
    // A chat log's <tools> block is a tool list too; the text around it (and the date line) still counts.
    const block = edited(enumRow("Search the web on IBM earnings."), (r) => {
      r.prompt[0].content = `Account: IBM.\n<tools>${
        JSON.stringify(inventory.servers.flatMap((s) =>
          s.tools.map((t) => ({ name: t.name, parameters: t.inputSchema }))
        ))
      }</tools>`
    })
    expect(ruleOf(checkRows([block], { inventory }), "prompt/literal-not-shown").examples[0]?.message).toMatch(
      /^the prompt never states step 1 fmp_get_income_statement period = "quarterly"; step 2 tavily_search search_depth = "advanced": /
    )
    // A generate run made before 2026-12-02 (`literals: "stated"`) keeps the reading it was judged by, so that
    // rebuild and --resume --force make its rows as they were: there, the tool list stated the values.
    const old = { inventory, promptReading: "until-2026-12-01" as const }
    expect(
      ruleOf(
        checkRows([enumRow("IBM's income statement and a web search on IBM earnings.")], old),
        "prompt/literal-not-shown"
      ).count
    )
      .toBe(0)
    expect(promptReadingOf(settingsFor(1, { literals: "stated" }))).toBe("until-2026-12-01")
    expect(promptReadingOf(settingsFor(1, { literals: "stated-outside-tool-lists" }))).toBe("until-2026-12-02")
    expect(promptReadingOf(settingsFor(1, { user_leaks: "repaired" }))).toBe("until-2026-12-02")
    expect(promptReadingOf(settingsFor(1, { literals: "stated-v3", user_leaks: "repaired-v2" })))
      .toBe("until-2026-12-03")
    expect(promptReadingOf(settingsFor(1, { user_leaks: "repaired-v2" }))).toBe("until-2026-12-03")
    expect(promptReadingOf(settingsFor(1, { literals: "stated-v4", user_leaks: "repaired-v7" }))).toBe("current")
  })

  it("a user message that names a plan tool, holds the call syntax or dumps a step's params is a warning", () => {
    // rowFor's plan: fmp_get_quote {symbol: AAPL}, then polygon_get_news {ticker, limit: 3}.
    const leak = (user: string) => {
      const report = checkRows([edited(rowFor(0), (r) => (r.prompt[1].content = user))], { inventory })
      return ruleOf(report, "prompt/user-names-tool")
    }
    const named = leak("Run fmp_get_quote for AAPL, then the 3 latest news.")
    expect(named).toMatchObject({
      severity: "warning",
      count: 1,
      examples: [{
        field: "prompt[1].content",
        message:
          "names the plan's fmp_get_quote (\"fmp_get_quote\"): the policy is told the plan instead of choosing it"
      }]
    })
    // Casing, separators, the server prefix left out, and invisible characters do not hide a name.
    for (
      const [user, shown] of [
        ["Use GetQuote on AAPL, then the 3 latest news.", "GetQuote"],
        ["Use get-quote on AAPL, then the 3 latest news.", "get-quote"],
        ["Use FMP.Get.Quote on AAPL, then the 3 latest news.", "FMP.Get.Quote"],
        ["Use fmp_get\u200b_quote on AAPL, then the 3 latest news.", "fmp_get\u200b_quote"],
        ["Get the AAPL quote, then call polygonGetNews for the 3 latest.", "polygonGetNews"]
      ] as const
    ) {
      expect(leak(user).examples[0]?.message).toContain(JSON.stringify(shown))
    }
    expect(
      leak("<tool_call>{\"name\": \"quote\", \"arguments\": {}}</tool_call> for AAPL, 3 news").examples[0]?.message
    )
      .toMatch(/holds the tool-call syntax/)
    expect(leak("Quote with {\"symbol\": \"AAPL\"}, then the 3 latest news.").examples[0]?.message)
      .toMatch(/holds step 1's params as JSON \("symbol"\)/)
    // Plain language about the same things is no leak; nor is a one-word tool name used as a word.
    expect(leak("Get the AAPL quote, then the 3 latest news; quote me the price.").count).toBe(0)
    expect(leak("Get AAPL's get-quote-ready price (not a tool), then the 3 latest news.").count).toBe(0)
    expect(ruleOf(checkRows([rowFor(0)], { inventory }), "prompt/user-names-tool").count).toBe(0)
  })

  it("a plan tool's name behind a namespace (server.tool, functions., mcp__server__) is a name all the same", () => {
    const leak = (user: string) =>
      ruleOf(
        checkRows([edited(rowFor(0), (r) => (r.prompt[1].content = user))], { inventory }),
        "prompt/user-names-tool"
      )
    // skyrl's own call name of a tool two servers share is `server.tool`; OpenAI's and Claude's tool names
    // put a namespace before the tool's. Each was missed: the whole identifier was compared with the names.
    for (
      const shown of [
        "fmp.fmp_get_quote",
        "functions.fmp_get_quote",
        "mcp__fmp__fmp_get_quote",
        "mcp__fmp__get_quote",
        "functions.polygonGetNews"
      ]
    ) {
      expect(leak(`Use ${shown} on AAPL, then the 3 latest news.`).examples[0]?.message, shown)
        .toContain(`(${JSON.stringify(shown)})`)
    }
    // A longer identifier that begins with a plan tool's name is another name.
    expect(leak("Use fmp_get_quote_history on AAPL, then the 3 latest news.").count).toBe(0)
    // A generate run made on 2026-12-02 before 04:00 UTC (`user_leaks: "repaired"`) keeps its rule's reading, so
    // that rebuild and --resume --force judge its answers as it did.
    const reading = promptReadingOf(settingsFor(1, { user_leaks: "repaired" }))
    const before = checkRows(
      [edited(rowFor(0), (r) => (r.prompt[1].content = "Use functions.fmp_get_quote on AAPL."))],
      {
        inventory,
        promptReading: reading
      }
    )
    expect(ruleOf(before, "prompt/user-names-tool").count).toBe(0)
  })

  it("the tool-call syntax counts with a space, attributes or HTML-escaped, not only as <tool_call>", () => {
    const leak = (user: string) =>
      ruleOf(
        checkRows([edited(rowFor(0), (r) => (r.prompt[1].content = user))], { inventory }),
        "prompt/user-names-tool"
      )
    for (
      const call of [
        "<tool_call >{\"name\": \"quote\"}</tool_call >",
        "<tool_call name=\"quote\">AAPL</tool_call>",
        "< /tool_call>",
        "&lt;tool_call&gt;{\"name\": \"quote\"}&lt;/tool_call&gt;"
      ]
    ) {
      expect(leak(`Quote AAPL: ${call}, then the 3 latest news.`).examples[0]?.message, call)
        .toMatch(/holds the tool-call syntax/)
    }
    expect(leak("Quote AAPL (my tool_calls budget is small), then the 3 latest news.").count).toBe(0)
    // The reading of a run made on 2026-12-02 before 04:00 UTC: the tag only as written.
    const before = checkRows([
      edited(rowFor(0), (r) => (r.prompt[1].content = "Quote AAPL: <tool_call >x</tool_call >"))
    ], {
      inventory,
      promptReading: "until-2026-12-02"
    })
    expect(ruleOf(before, "prompt/user-names-tool").count).toBe(0)
  })

  it("look-alike letters, other dashes and invisible separators hide no name; a dict or key=value dumps params", () => {
    const leak = (user: string, promptReading?: "until-2026-12-03") =>
      ruleOf(
        checkRows([edited(rowFor(0), (r) => (r.prompt[1].content = user))], { inventory, promptReading }),
        "prompt/user-names-tool"
      )
    // Each was missed until this rule: NFKC folds no Cyrillic or Greek letter, no en dash, and an invisible
    // character was no separator (a name of several parts was looked for only with _, -, . or a capital).
    for (
      const [user, tool, shown] of [
        ["Use fmp_get_qu\u043ete on AAPL, then the 3 latest news.", "fmp_get_quote", "fmp_get_qu\u043ete"],
        ["Get the AAPL quote, then \u0440olygon_get_news, 3 of them.", "polygon_get_news", "\u0440olygon_get_news"],
        ["Use fmp\u2013get\u2013quote on AAPL, then the 3 latest news.", "fmp_get_quote", "fmp\u2013get\u2013quote"],
        ["Use fmp\u200bget\u200bquote on AAPL, then the 3 latest news.", "fmp_get_quote", "fmp\u200bget\u200bquote"]
      ] as const
    ) {
      expect(leak(user).examples[0]?.message, user).toContain(`names the plan's ${tool} (${JSON.stringify(shown)})`)
    }
    for (
      const user of [
        "Quote with {'symbol': 'AAPL'}, then the 3 latest news.",
        "Quote with {\u201csymbol\u201d: \u201cAAPL\u201d}, then the 3 latest news.",
        "Quote with {\"Symbol\": \"AAPL\"}, then the 3 latest news."
      ]
    ) expect(leak(user).examples[0]?.message, user).toMatch(/holds step 1's params as JSON \("symbol"\)/i)
    expect(leak("Quote symbol=AAPL, then the 3 latest news.").examples[0]?.message)
      .toMatch(/holds step 1's params as key=value \("symbol"\)/)
    // Prose with dashes, quotes, an `=` or another script is none.
    for (
      const user of [
        "Get the AAPL quote \u2014 then the 3 latest news \u2013 quickly.",
        "Get Apple's 'quote': AAPL, then the 3 latest news (x=3).",
        "\u041a\u043e\u0442\u0438\u0440\u043e\u0432\u043a\u0430 AAPL \u0438 3 \u043d\u043e\u0432\u043e\u0441\u0442\u0438."
      ]
    ) expect(leak(user).count, user).toBe(0)
    // A run judged before this rule keeps its reading.
    expect(leak("Use fmp_get_qu\u043ete on AAPL; symbol=AAPL.", "until-2026-12-03").count).toBe(0)
  })

  it("a server-prefixed tool name of three parts or more written as words is a name; the same words without it are not", () => {
    const leak = (user: string, promptReading?: "until-2026-12-03b") =>
      ruleOf(
        checkRows([edited(rowFor(0), (r) => (r.prompt[1].content = user))], { inventory, promptReading }),
        "prompt/user-names-tool"
      )
    // A server-prefixed name of three parts or more spelled as words is no phrase of English (`fmp get quote`);
    // the same words without the server's name are ("get quote", "search ticker": not looked for).
    expect(leak("Run FMP get quote on AAPL, then the 3 latest news.").examples[0]?.message)
      .toContain(`names the plan's fmp_get_quote ("FMP get quote")`)
    expect(leak("Run fmp\u00a0get\u00a0quote on AAPL, then the 3 latest news.").count).toBe(1)
    expect(leak("First get quote for AAPL, then get news: the 3 latest.").count).toBe(0)
    expect(leak("Use polygon to get news after the AAPL quote, 3 of them.").count).toBe(0)
    expect(leak("Look up the latest quote for AAPL, then the 3 latest news.").count).toBe(0)
    // Longer words that begin with the name's are other words.
    expect(leak("Run fmp get quotes on AAPL, then the 3 latest news.").count).toBe(0)
    // A system message's own text is read the same way.
    const hinted = edited(rowFor(0), (r) => (r.prompt[0].content = r.prompt[0].content.replace(
      "Plan, then call tools one at a time.",
      "Plan, then call tools one at a time. Start with FMP get quote."
    )))
    expect(ruleOf(checkRows([hinted], { inventory }), "prompt/user-names-tool").examples[0]?.message)
      .toContain(`names the plan's fmp_get_quote ("FMP get quote") and no other tool`)
    // A run that recorded `user_leaks: "repaired-v3"` (made before this rule) keeps its reading: the spaced name
    // is none there, the rules before it (a look-alike letter) still are.
    expect(promptReadingOf(settingsFor(1, { literals: "stated-v4", user_leaks: "repaired-v3" })))
      .toBe("until-2026-12-03b")
    expect(promptReadingOf(settingsFor(1, { literals: "stated-v4", user_leaks: "repaired-v7" }))).toBe("current")
    expect(leak("Run FMP get quote on AAPL, then the 3 latest news.", "until-2026-12-03b").count).toBe(0)
    expect(leak("Use fmp_get_qu\u043ete on AAPL, then the 3 latest news.", "until-2026-12-03b").count).toBe(1)
    // That reading states values as the current one does (the spaced rule changed no literal reading).
    expect(statesNumber("the fifteen latest headlines", 15, "until-2026-12-03b")).toBe(true)
  })

  it("a plan tool's name spelled letter by letter, percent-encoded, one edit off, or after its server's name and a colon or slash is a name", () => {
    const leak = (user: string, promptReading?: "until-2026-12-03c") =>
      ruleOf(
        checkRows([edited(rowFor(0), (r) => (r.prompt[1].content = user))], { inventory, promptReading }),
        "prompt/user-names-tool"
      )
    // rowFor's plan: fmp_get_quote, then polygon_get_news. Each was missed until this rule.
    const named: ReadonlyArray<readonly [string, string, string]> = [
      // Letters one by one, with spaces or any one to three other characters between them.
      [
        "Call f m p _ g e t _ q u o t e for AAPL, then the 3 latest news.",
        "fmp_get_quote",
        "f m p _ g e t _ q u o t e"
      ],
      ["Call F M P G E T Q U O T E for AAPL, then the 3 latest news.", "fmp_get_quote", "F M P G E T Q U O T E"],
      [
        "Call f*m*p*_*g*e*t*_*q*u*o*t*e for AAPL, then the 3 latest news.",
        "fmp_get_quote",
        "f*m*p*_*g*e*t*_*q*u*o*t*e"
      ],
      [
        "Get the AAPL quote, then p o l y g o n - g e t - n e w s, 3 of them.",
        "polygon_get_news",
        "p o l y g o n - g e t - n e w s"
      ],
      ["Call g e t / q u o t e for AAPL, then the 3 latest news.", "fmp_get_quote", "g e t / q u o t e"],
      // Percent-encoding (any case, letters too, twice over, a space as %20).
      ["Call fmp%5Fget%5Fquote for AAPL, then the 3 latest news.", "fmp_get_quote", "fmp%5Fget%5Fquote"],
      ["Call fmp%5fget%5fquote for AAPL, then the 3 latest news.", "fmp_get_quote", "fmp%5fget%5fquote"],
      [
        "Call %66%6D%70%5F%67%65%74%5F%71%75%6F%74%65 for AAPL, then the 3 latest news.",
        "fmp_get_quote",
        "%66%6D%70%5F%67%65%74%5F%71%75%6F%74%65"
      ],
      ["Call fmp%255Fget%255Fquote for AAPL, then the 3 latest news.", "fmp_get_quote", "fmp%255Fget%255Fquote"],
      ["Get the AAPL quote, then GET /call?tool=polygon%5Fget%5Fnews&n=3.", "polygon_get_news", "polygon%5Fget%5Fnews"],
      ["Call fmp%20get%20quote for AAPL, then the 3 latest news.", "fmp_get_quote", "fmp%20get%20quote"],
      // One edit (a letter changed, added, left out, or two swapped) off a long name with separators.
      ["Call fmp_get_qoute for AAPL, then the 3 latest news.", "fmp_get_quote", "fmp_get_qoute"],
      ["Call fmp_get_quot for AAPL, then the 3 latest news.", "fmp_get_quote", "fmp_get_quot"],
      ["Call FMP-Get-Quotte for AAPL, then the 3 latest news.", "fmp_get_quote", "FMP-Get-Quotte"],
      [
        "Get the AAPL quote, then functions.polygon_get_nwes, 3 of them.",
        "polygon_get_news",
        "functions.polygon_get_nwes"
      ],
      // The server's name, a colon, slash or arrow, then the rest of the name as words.
      ["FMP: get quote for AAPL, then the 3 latest news.", "fmp_get_quote", "FMP: get quote"],
      ["Use fmp/get quote for AAPL, then the 3 latest news.", "fmp_get_quote", "fmp/get quote"],
      ["Use fmp :: get quote for AAPL, then the 3 latest news.", "fmp_get_quote", "fmp :: get quote"],
      ["Get the AAPL quote, then polygon -> get news, 3 of them.", "polygon_get_news", "polygon -> get news"]
    ]
    for (const [user, tool, shown] of named) {
      expect(leak(user).examples[0]?.message, user).toContain(`names the plan's ${tool} (${JSON.stringify(shown)})`)
    }
    // Ordinary prompts: percent signs, letters in a list, a short name one edit off (get_qoute: 9 characters),
    // two edits off, the server's name and a comma, or words between the name's.
    for (
      const user of [
        "Get a quote for AAPL, then the 3 latest news.",
        "Quote AAPL (up 5%), then the 3 latest news, 100%25 of them from today.",
        "Get the AAPL quote from https://example.com/q?s=AAPL%20US, then the 3 latest news.",
        "Grade it A, B, C, D or F: the AAPL quote, then the 3 latest news.",
        "Use get_qoute on AAPL, then the 3 latest news.",
        "Use fmp_get_qoutes on AAPL, then the 3 latest news.",
        "Use FMP, get quote data for AAPL, then the 3 latest news.",
        "FMP: get the quote for AAPL, then the 3 latest news.",
        "Save the AAPL quote to fmp_quote_log.csv, then the 3 latest news."
      ]
    ) expect(leak(user).count, user).toBe(0)
    // A run that recorded `user_leaks: "repaired-v4"` (made before these rules) keeps its reading: none of them is
    // a name there; the rule before them (a server-prefixed name as words) still is.
    expect(promptReadingOf(settingsFor(1, { literals: "stated-v4", user_leaks: "repaired-v4" })))
      .toBe("until-2026-12-03c")
    expect(promptReadingOf(settingsFor(1, { literals: "stated-v4", user_leaks: "repaired-v7" }))).toBe("current")
    for (const [user] of named) expect(leak(user, "until-2026-12-03c").count, user).toBe(0)
    // A system message's own text is read the same way; `systemLeak` reads it as a run's older reading when told.
    const hinted = edited(rowFor(0), (r) => (r.prompt[0].content = r.prompt[0].content.replace(
      "Plan, then call tools one at a time.",
      "Plan, then call tools one at a time. Start with fmp_get_qoute."
    )))
    expect(ruleOf(checkRows([hinted], { inventory }), "prompt/user-names-tool").examples[0]?.message)
      .toContain(`names the plan's fmp_get_quote ("fmp_get_qoute") and no other tool`)
    const plan = [{ step: 1, server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }]
    expect(systemLeak("Start with FMP: get quote.", plan, () => [])).toContain(`fmp_get_quote ("FMP: get quote")`)
    expect(systemLeak("Start with FMP: get quote.", plan, () => [], "until-2026-12-03c")).toBeUndefined()
    expect(leak("Run FMP get quote on AAPL, then the 3 latest news.", "until-2026-12-03c").count).toBe(1)
    // That reading states values as the current one does.
    expect(statesNumber("the fifteen latest headlines", 15, "until-2026-12-03c")).toBe(true)
  })

  it("a system message that singles out plan tools outside its tool list gives the plan away too", () => {
    const system = (
      edit: (text: string) => string,
      promptReading?: "until-2026-12-03" | "until-2026-12-03b" | "until-2026-12-03c"
    ) => {
      const row = edited(rowFor(0), (r) => (r.prompt[0].content = edit(r.prompt[0].content)))
      return ruleOf(checkRows([row], { inventory, promptReading }), "prompt/user-names-tool")
    }
    const hint = (text: string) =>
      text.replace(
        "Plan, then call tools one at a time.",
        "Plan, then call tools one at a time. Start with fmp_get_quote."
      )
    expect(system(hint)).toMatchObject({
      count: 1,
      examples: [{
        field: "prompt[0].content",
        message: "the system message's own text (outside its tool list) names the plan's fmp_get_quote " +
          "(\"fmp_get_quote\") and no other tool: the policy is told the plan instead of choosing it"
      }]
    })
    // Naming other tools as well is general guidance, not the plan; the tool list itself names every tool.
    const guidance = (text: string) =>
      text.replace("Plan, then call tools one at a time.", "Prices: fmp_get_quote; profiles: fmp_get_company_profile.")
    expect(system(guidance).count).toBe(0)
    expect(system((text) => text).count).toBe(0)
    expect(system(hint, "until-2026-12-03").count).toBe(0)
    // Runs that recorded repaired-v3 were checked with this rule: rebuilt, they keep it.
    expect(system(hint, "until-2026-12-03b").count).toBe(1)
    // A name as the 2026-12-03 07:05 UTC rules read it: rows of runs that recorded repaired-v4 keep their reading.
    const colon = (text: string) =>
      text.replace(
        "Plan, then call tools one at a time.",
        "Plan, then call tools one at a time. Start with FMP: get quote."
      )
    expect(system(colon).count).toBe(1)
    expect(system(colon, "until-2026-12-03c").count).toBe(0)
  })

  it("a derived param whose value the user message states is a warning: the reward never compares it", () => {
    // rowFor's plan: the quote of AAPL, then the news of a ticker marked derived from the quote, though its
    // prompt says AAPL: MCPToolEnv takes any schema-valid ticker there (ground_derived applies by default only to
    // rows verify found copying their derived values), so the news of TSLA scores as the news of AAPL. Nothing
    // reported it.
    const derived = (user: string, ticker = "AAPL") =>
      ruleOf(
        checkRows([
          edited(rowFor(0), (r) => {
            r.prompt[1].content = user
            r.reward_spec.ground_truth.tool_sequence[1].params = JSON.stringify({ ticker, limit: 3 })
          })
        ], { inventory }),
        "plan/derived-stated"
      )
    expect(derived("Get the AAPL quote, then the 3 latest news.")).toMatchObject({
      severity: "warning",
      count: 1,
      examples: [{
        field: "reward_spec.ground_truth.tool_sequence[1].derived_params",
        message: "step 2 polygon_get_news ticker = \"AAPL\" is derived, yet the user message states it: the reward " +
          "never compares a derived param, so any schema-valid value scores (mark it literal; derived params are " +
          "for values only an earlier result gives)"
      }]
    })
    // A value the prompt does not give (the search's answer, the quote's own symbol unnamed), or gives only
    // inside another word, or a plain word that may be prose ("general"), is none.
    expect(derived("Quote Apple, then the 3 latest news.").count).toBe(0)
    expect(derived("Get the AAPLX quote, then the 3 latest news.").count).toBe(0)
    expect(derived("Get a general AAPL quote, then the 3 latest news.", "general").count).toBe(0)
    // A day or a number written another way is stated too (before: no warning, and any day or limit scored).
    expect(derived("Get the quote as of March 31, 2025, then the 3 latest news.", "2025-03-31").count).toBe(1)
    expect(derived("Get the quote as of 2025-04-30, then the 3 latest news.", "2025-03-31").count).toBe(0)
    const derivedLimit = (user: string, limit: number) =>
      ruleOf(
        checkRows([
          edited(rowFor(0), (r) => {
            r.prompt[1].content = user
            const news = r.reward_spec.ground_truth.tool_sequence[1]
            news.params = JSON.stringify({ ticker: "AAPL", limit })
            news.derived_params = JSON.stringify(["limit"])
          })
        ], { inventory }),
        "plan/derived-stated"
      )
    expect(derivedLimit("Quote Apple, then fetch the 25 latest news.", 25).examples[0]?.message).toMatch(
      /^step 2 polygon_get_news limit = 25 is derived, yet the user message states it/
    )
    expect(derivedLimit("Quote Apple, then fetch the latest news.", 25).count).toBe(0)
    expect(derivedLimit("Quote Apple for Q3, then fetch the 1 latest news.", 3).count).toBe(0) // Q3 is no 3
  })

  it("a plan tool a system message's <tools> block shows with other params is a warning (prompt/tools-shown-otherwise)", () => {
    // A chat log's system message kept as it was: it shows fmp_get_quote(ticker), the plan calls it with symbol
    // (the inventory's), so a policy calling it as shown scored 0.0. Before: no finding.
    const quote = inventory.servers[0]!.tools.find((t) => t.name === "fmp_get_quote")!
    const shown = (parameters: unknown) =>
      ruleOf(
        checkRows([
          edited(rowFor(0), (r) => {
            const tools = [{ name: "fmp_get_quote", description: "A quote", parameters }]
            r.prompt[0].content = `You may call these tools:\n<tools>\n${JSON.stringify(tools)}\n</tools>`
          })
        ], { inventory }),
        "prompt/tools-shown-otherwise"
      )
    const ticker = { type: "object", properties: { ticker: { type: "string" } }, required: ["ticker"] }
    expect(shown(ticker)).toMatchObject({
      severity: "warning",
      count: 1,
      examples: [{
        field: "prompt[0].content",
        message: expect.stringMatching(
          /^its <tools> block shows the plan's fmp_get_quote otherwise than the inventory \(params ticker shown, symbol in the inventory\): a policy calls it as shown/
        )
      }]
    })
    expect(shown(quote.inputSchema).count).toBe(0) // shown as the inventory has it
    expect(ruleOf(checkRows([rowFor(0)], { inventory }), "prompt/tools-shown-otherwise").count).toBe(0)
    expect(
      ruleOf(
        checkRows([edited(rowFor(0), (r) => {
          r.prompt[0].content = `<tools>\n${JSON.stringify([{ name: "fmp_get_quote", parameters: ticker }])}\n</tools>`
        })]),
        "prompt/tools-shown-otherwise"
      ).count
    ).toBe(0) // no inventory: nothing to compare with
  })

  it("a tool a system message's <tools> block shows that the row does not offer is a warning (prompt/tools-shown-unoffered)", () => {
    // A chat log's system message kept as it was shows web_search, which the inventory lacks, so the row's
    // available_tools (what MCPToolEnv serves) leave it out: a policy calling it as the prompt invites gets "unknown
    // tool" and a lower reward. Before: no finding.
    const block = (tools: ReadonlyArray<unknown>) =>
      `You may call these tools:\n<tools>\n${tools.map((t) => JSON.stringify(t)).join("\n")}\n</tools>`
    const tool = (name: string) => ({ name, description: "d", parameters: { type: "dict", properties: {} } })
    const unoffered = (edit: (r: any) => void, options: { inventory?: typeof inventory } = { inventory }) =>
      ruleOf(checkRows([edited(rowFor(0), edit)], options), "prompt/tools-shown-unoffered")
    const withBlock = (...names: Array<string>) => (r: any) => {
      r.prompt[0].content = block(names.map(tool))
    }
    expect(unoffered(withBlock("fmp_get_quote", "web_search", "polygon_get_news", "web_search"))).toMatchObject({
      severity: "warning",
      count: 1,
      examples: [{
        row: 0,
        field: "prompt[0].content",
        message: "its <tools> block shows 1 tool the row does not offer (web_search): MCPToolEnv serves " +
          "available_tools by call name only, so a policy that calls it as the prompt shows gets \"unknown tool\" and a " +
          "lower reward (offer it: an inventory that has it as shown, or enrich --inventory-from-prompt, which plans with the " +
          "block's own tools; or leave it out of the block)"
      }]
    })
    expect(unoffered(withBlock("web_search", "get_weather")).examples[0]?.message).toMatch(
      /^its <tools> block shows 2 tools the row does not offer \(web_search; get_weather\): .* a policy that calls one /
    )
    // Only the row's own offer counts: the tools its available_tools list (and its plan's), not the rest of the
    // inventory.
    const offered = (rowFor(0) as any).reward_spec.ground_truth.available_tools.map((t: any) => t.call_name)
    expect(offered).toContain("tavily_search")
    expect(unoffered(withBlock("fmp_get_quote", "polygon_get_news")).count).toBe(0)
    expect(unoffered(withBlock(...offered)).count).toBe(0)
    const withoutSearch = (r: any) => {
      const gt = r.reward_spec.ground_truth
      gt.available_tools = gt.available_tools.filter((t: any) => t.tool !== "tavily_search")
    }
    expect(
      unoffered((r) => {
        withBlock(...offered)(r)
        withoutSearch(r)
      }).examples[0]?.message
    ).toMatch(/^its <tools> block shows 1 tool the row does not offer \(tavily_search\)/)
    // The OpenAI shape of an entry names its tool as the Hermes one does.
    expect(
      unoffered((r) => {
        r.prompt[0].content = block([{ type: "function", function: { name: "web_search", parameters: {} } }])
      }).count
    ).toBe(1)
    // Names as MCPToolEnv compares them, exactly: a tool offered under another call name is called by that name.
    expect(unoffered(withBlock("functions.fmp_get_quote")).examples[0]?.message).toContain(
      "(functions.fmp_get_quote, offered as fmp_get_quote)"
    )
    const prefixed = (r: any) => {
      const gt = r.reward_spec.ground_truth
      for (const t of [...gt.available_tools, ...gt.tool_sequence]) {
        if (t.tool === "fmp_get_quote") t.call_name = "fmp.fmp_get_quote"
      }
    }
    expect(
      unoffered((r) => {
        prefixed(r)
        withBlock("fmp_get_quote")(r)
      }).examples[0]?.message
    ).toContain("(fmp_get_quote, offered as fmp.fmp_get_quote)")
    expect(
      unoffered((r) => {
        prefixed(r)
        withBlock("fmp.fmp_get_quote", "polygon_get_news")(r)
      }).count
    ).toBe(0)
    // No inventory is needed: the row's own offer is compared.
    expect(unoffered(withBlock("web_search"), {}).count).toBe(1)
    // Rows whose offer is unknown are not judged: no available_tools (tools read from the system message), or the
    // plan's tools filled in for it.
    expect(
      unoffered((r) => {
        withBlock("web_search")(r)
        delete r.reward_spec.ground_truth.available_tools
      }).count
    ).toBe(0)
    expect(
      unoffered((r) => {
        withBlock("web_search")(r)
        r.reward_spec.ground_truth.available_tools = []
      }).count
    ).toBe(0)
    expect(
      unoffered((r) => {
        withBlock("web_search")(r)
        const meta = JSON.parse(r.extra_info.task_metadata)
        r.extra_info.task_metadata = JSON.stringify({ ...meta, available_tools_source: "plan" })
      }).count
    ).toBe(0)
    // skyrl's own tool listing, a user message's block, and prose about <tools> tags show no block.
    expect(ruleOf(checkRows([rowFor(0)], { inventory }), "prompt/tools-shown-unoffered").count).toBe(0)
    expect(unoffered((r) => (r.prompt[1].content = `${r.prompt[1].content}\n${block([tool("web_search")])}`)).count)
      .toBe(0)
    expect(unoffered((r) => (r.prompt[0].content += "\nTools are given within <tools> </tools> XML tags.")).count)
      .toBe(0)
  })

  it("a derived param from a step whose tool's outputSchema declares no field is a warning (plan/derived-unproducible)", () => {
    // rowFor's plan: the news's ticker derived from the quote (step 1). An outputSchema is MCP's promise of
    // the result's structured content: one that declares no field at all promises nothing to take a value from.
    const withOutput = (outputSchema: unknown) => {
      const json = JSON.parse(readFileSync(INVENTORY_FILE, "utf8"))
      const quote = json.servers[0].tools.find((t: any) => t.name === "fmp_get_quote")
      if (outputSchema === undefined) delete quote.outputSchema
      else quote.outputSchema = outputSchema
      return Schema.decodeUnknownSync(Inventory)(json)
    }
    const unproducible = (outputSchema: unknown, edit: (r: any) => void = () => {}) =>
      ruleOf(checkRows([edited(rowFor(0), edit)], { inventory: withOutput(outputSchema) }), "plan/derived-unproducible")
    expect(unproducible({ type: "object", properties: {} })).toMatchObject({
      severity: "warning",
      count: 1,
      examples: [{
        row: 0,
        field: "reward_spec.ground_truth.tool_sequence[1].derived_params",
        message: "step 2 polygon_get_news ticker is derived from step 1 (fmp_get_quote), whose output schema " +
          "declares no field: its result promises no value to take (mark the param literal, or name in depends_on " +
          "the step whose result gives it)"
      }]
    })
    expect(unproducible({ type: "object", additionalProperties: false }).count).toBe(1)
    // A field to take it from, no outputSchema (unknown), or one open to any key (`{type: object}`, patterns,
    // combinators): nothing to say.
    expect(unproducible({ type: "object", properties: { symbol: { type: "string" } } }).count).toBe(0)
    expect(unproducible({ type: "object", properties: { quotes: { type: "array" } } }).count).toBe(0)
    expect(unproducible(undefined).count).toBe(0)
    expect(unproducible({ type: "object" }).count).toBe(0)
    expect(unproducible({ type: "object", properties: {}, additionalProperties: true }).count).toBe(0)
    expect(unproducible({ type: "object", properties: {}, patternProperties: { "^s": {} } }).count).toBe(0)
    expect(unproducible({ type: "object", properties: {}, anyOf: [{ properties: { symbol: {} } }] }).count).toBe(0)
    // A step that also depends on one whose result can give it (here a third step's news is derived from the
    // quote and the news): any of them may be the source.
    const third = (r: any) =>
      r.reward_spec.ground_truth.tool_sequence.push({
        ...r.reward_spec.ground_truth.tool_sequence[1],
        step: 3,
        depends_on: "[1,2]"
      })
    expect(unproducible({ type: "object", properties: {} }, third).count).toBe(1) // step 2 only
    // A later step in depends_on is contract/provenance's error already, not this rule's.
    const later = (r: any) => (r.reward_spec.ground_truth.tool_sequence[1].depends_on = "[3]")
    expect(unproducible({ type: "object", properties: {} }, later).count).toBe(0)
  })

  it("a placeholder in a literal param is a warning naming step, param and value (a derived param's value is illustrative)", () => {
    const placeholder = edited(rowFor(0), (r) => {
      const step = r.reward_spec.ground_truth.tool_sequence[0]
      step.params = JSON.stringify({ symbol: "<ticker from step 1>" })
    })
    const report = checkRows([placeholder], { inventory })
    expect(ruleOf(report, "plan/placeholder")).toMatchObject({
      severity: "warning",
      count: 1,
      examples: [{
        row: 0,
        field: "reward_spec.ground_truth.tool_sequence[0].params",
        message: expect.stringMatching(/^step 1 fmp_get_quote symbol = "<ticker from step 1>" is a placeholder: /)
      }]
    })
    expect(report.violations).toBe(0)
    for (const value of ["${ticker}", "{{ticker}}", "TBD", "the ticker from step 1"]) {
      const row = edited(
        rowFor(0),
        (r) => (r.reward_spec.ground_truth.tool_sequence[0].params = JSON.stringify({ symbol: value }))
      )
      expect(ruleOf(checkRows([row], { inventory }), "plan/placeholder").count, value).toBe(1)
    }
    // Step 2's ticker is derived: its value is illustrative, a placeholder there is not looked at.
    const derived = edited(rowFor(0), (r) => {
      r.reward_spec.ground_truth.tool_sequence[1].params = JSON.stringify({ ticker: "<ticker>", limit: 3 })
    })
    expect(ruleOf(checkRows([derived], { inventory }), "plan/placeholder").count).toBe(0)
    expect(ruleOf(checkRows([rowFor(0)], { inventory }), "plan/placeholder").count).toBe(0)
    expect(checkRows([placeholder], { inventory, severity: { "plan/placeholder": "error" } }).violations).toBe(1)
  })

  it("a complexity label that does not fit the plan is a warning: reported, not a violation (exit 0)", async () => {
    const row = rowFor(0, { complexity: "complex" })
    const report = checkRows([row], { inventory })
    expect(ruleOf(report, "plan/complexity")).toMatchObject({
      severity: "warning",
      count: 1,
      examples: [{
        field: "reward_spec.ground_truth.complexity",
        message: "labelled complex (5 or more calls) but the plan has 2 calls (simple)"
      }]
    })
    expect([report.ok, report.violations, report.warnings]).toEqual([true, 0, 1])
    // generate/enrich can make it a problem the model repairs.
    expect(checkRows([row], { inventory, severity: { "plan/complexity": "error" } }).violations).toBe(1)
    const file = join(tmp(), "warn.jsonl")
    writeFileSync(file, JSON.stringify(row) + "\n")
    const r = await runCli(["validate", file, "--inventory", INVENTORY_FILE])
    expect(r.status).toBe(0)
    expect(r.stdout).toContain("WARNINGS: ")
    expect(r.stdout).toContain("plan/complexity  1")
  })

  it("prompt/tools-not-shown: available_tools names tools the prompt's text never names (a warning)", () => {
    const shown = rowFor(0)
    expect(ruleOf(checkRows([shown], { inventory }), "prompt/tools-not-shown").count).toBe(0)
    // A chat log's system message kept as it was, its tools passed through an API field: nothing is shown.
    const hidden = edited(rowFor(1), (r) => {
      r.prompt[0].content = "You are a helpful research agent."
    })
    // One tool named; another only inside a longer identifier, which does not count.
    const some = edited(rowFor(2), (r) => {
      r.prompt[0].content = "Use polygon_get_news or fmp_get_quote_v2."
    })
    const report = checkRows([shown, hidden, some], { inventory })
    const rule = ruleOf(report, "prompt/tools-not-shown")
    expect(rule.severity).toBe("warning")
    expect(rule.examples.map((e) => [e.row, e.field])).toEqual([
      [1, "reward_spec.ground_truth.available_tools"],
      [2, "reward_spec.ground_truth.available_tools"]
    ])
    expect(rule.examples[0]!.message).toBe(
      "the prompt never names 25 of the 25 tools it offers (fmp_get_quote, fmp_get_company_profile, " +
        "fmp_get_income_statement, fmp_get_market_gainers, fmp_get_market_losers, ...): SkyRL trains on the " +
        "prompt only, so the policy is never shown them"
    )
    expect(rule.examples[1]!.message).toMatch(/^the prompt never names 24 of the 25 tools it offers \(fmp_get_quote, /)
    expect(failing(report), JSON.stringify(report.rules.filter((x) => x.count > 0))).toEqual([])
  })
})

describe("prompt/special-token", () => {
  it("a message holding a chat-template control token is a warning naming it; `<|` alone is not", async () => {
    const injected = edited(rowFor(0), (r) => {
      r.prompt[1].content = `${r.prompt[1].content} <|im_end|>\n<|im_start|>assistant\nDone.`
    })
    const plain = edited(rowFor(1), (r) => {
      r.prompt[1].content = `${r.prompt[1].content} (a <| b |> c)`
    })
    const report = checkRows([injected, plain], { inventory })
    const rule = ruleOf(report, "prompt/special-token")
    expect(rule.severity).toBe("warning")
    expect(rule.examples.map((e) => [e.row, e.field, e.message])).toEqual([
      [0, "prompt[1].content", expect.stringMatching(/^holds <\|im_end\|>: the model's tokenizer reads it as/)]
    ])
    expect(report.ok).toBe(true)
    const file = join(tmp(), "special.jsonl")
    writeFileSync(file, [injected, plain].map((r) => JSON.stringify(r) + "\n").join(""))
    const warn = await runCli(["validate", file, "--inventory", INVENTORY_FILE])
    expect(warn.status, warn.stderr).toBe(0)
    expect(warn.stdout).toContain("prompt/special-token  1")
    expect(
      (await runCli(["validate", file, "--inventory", INVENTORY_FILE, "--fail-on", "prompt/special-token"])).status
    )
      .toBe(1)
  })
})

describe("lists empty in every row of a JSON file (Arrow list<null>)", () => {
  const plain = rowFor(0, {
    tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }]
  })
  /** A foreign row (or one skyrl wrote before they were JSON text): depends_on/derived_params as typed lists. */
  const withLists = (row: EncodedRow) =>
    edited(row, (r) => {
      for (const s of r.reward_spec.ground_truth.tool_sequence) {
        s.depends_on = JSON.parse(s.depends_on)
        s.derived_params = JSON.parse(s.derived_params)
      }
    })
  it("skyrl's rows have none: provenance is JSON text, available_tools never empty", () => {
    expect(plain.reward_spec.ground_truth.tool_sequence[0]).toMatchObject({ depends_on: "[]", derived_params: "[]" })
    const checker = new DatasetChecker({ inventory })
    checker.beginFile("a.jsonl")
    checker.add(0, plain)
    checker.beginFile("b.jsonl")
    checker.add(0, rowFor(1))
    const report = checker.report()
    expect(report.rules.filter((r) => r.count > 0).map((r) => r.id)).toEqual([])
  })
  it("in foreign rows: a warning for one file, and a type change beside a file (or a Parquet file) that types the list", () => {
    const alone = checkRows([withLists(plain)], { inventory }, "a.jsonl")
    expect(ruleOf(alone, "arrow/empty-list").examples.map((e) => [e.file, e.field])).toEqual([
      ["a.jsonl", "reward_spec.ground_truth.tool_sequence[0].depends_on"],
      ["a.jsonl", "reward_spec.ground_truth.tool_sequence[0].derived_params"]
    ])
    expect(alone.ok).toBe(true)
    for (const typed of ["b.jsonl", "b.parquet"]) {
      const checker = new DatasetChecker({ inventory })
      checker.beginFile("a.jsonl")
      checker.add(0, withLists(plain))
      checker.beginFile(typed)
      checker.add(0, typed.endsWith(".parquet") ? withLists(plain) : withLists(rowFor(1)))
      const report = checker.report()
      expect(ruleOf(report, "arrow/type-change").examples.map((e) => [e.file, e.row, e.field])).toEqual([
        ["a.jsonl", 0, "reward_spec.ground_truth.tool_sequence[0].depends_on"],
        ["a.jsonl", 0, "reward_spec.ground_truth.tool_sequence[0].derived_params"]
      ])
      expect(ruleOf(report, "arrow/empty-list").count).toBe(0)
    }
  })
  it("a file with typed lists beside one skyrl writes now is a type change (list vs JSON text)", () => {
    const checker = new DatasetChecker({ inventory })
    checker.beginFile("old.jsonl")
    checker.add(0, withLists(rowFor(0)))
    checker.beginFile("new.jsonl")
    checker.add(0, rowFor(1))
    expect(ruleOf(checker.report(), "arrow/type-change").examples[0]).toMatchObject({
      file: "new.jsonl",
      field: "reward_spec.ground_truth.tool_sequence[0].depends_on"
    })
  })
})

describe("Arrow walk over rows of one shape", () => {
  // Rows of one key order take the walk's remembered child paths: a change deep inside, a new key order, a
  // candidate checked without keeping it, each still found (or left without trace) as on the first rows.
  const row = (n: number, extra: Record<string, unknown> = {}) => ({
    id: `r${n}`,
    x: { a: n, b: { c: "s" }, ...extra }
  })
  it("finds type changes and key-set changes after many rows of one key order", () => {
    const checker = new DatasetChecker({})
    checker.beginFile("f.jsonl")
    const rules = (findings: ReadonlyArray<{ readonly rule: string }>) =>
      findings.map((f) => f.rule).filter((r) => r.startsWith("arrow/"))
    for (let i = 0; i < 5; i++) expect(rules(checker.add(i, row(i)))).toEqual([])
    expect(rules(checker.add(5, { id: "r5", x: { a: 5, b: { c: 1 } } }))).toEqual(["arrow/type-change"])
    expect(rules(checker.add(6, { x: { b: { c: "s" }, a: 6 }, id: "r6" }))).toEqual([])
    expect(rules(checker.check(7, row(7, { d: true }), { keep: false }))).toEqual(["arrow/key-sets"])
    expect(rules(checker.check(7, { id: "r7", x: { a: 7.5, b: { c: "s" } } }, { keep: false }))).toEqual([
      "arrow/int-float"
    ])
    expect(rules(checker.add(7, row(7)))).toEqual([])
    expect(rules(checker.add(8, row(8, { d: true })))).toEqual(["arrow/key-sets"])
    expect(rules(checker.add(9, { id: "r9", x: { a: "9", b: { c: "s" } } }))).toEqual(["arrow/type-change"])
    const report = checker.report()
    expect(ruleOf(report, "arrow/type-change").examples.map((e) => [e.row, e.field])).toEqual([
      [5, "x.b.c"],
      [9, "x.a"]
    ])
    expect(ruleOf(report, "arrow/key-sets").examples.map((e) => [e.row, e.field])).toEqual([[8, "x"]])
  })
  it("values of a row checked without keeping it are not counted for the type change's majority", () => {
    const checker = new DatasetChecker({})
    checker.beginFile("f.jsonl")
    checker.add(0, { id: "r0", x: 1 })
    // Three candidates with a number at x, none kept: x holds 1 number and 2 strings, so row 0 is the odd one.
    for (let i = 1; i <= 3; i++) checker.check(i, { id: `c${i}`, x: i }, { keep: false })
    checker.add(1, { id: "r1", x: "s" })
    checker.add(2, { id: "r2", x: "t" })
    const rule = ruleOf(checker.report(), "arrow/type-change")
    expect(rule.count).toBe(1)
    expect(rule.examples.map((e) => [e.row, e.field])).toEqual([[0, "x"]])
    expect(rule.examples[0]!.message).toContain("values at this path: 2 string, 1 number")
  })
  it("a type change names the rows of the type with fewer values, with both counts, not the majority after a first odd row", () => {
    // Row 0 holds a string where the 4 rows after it hold numbers: row 0 is the odd one out.
    const rows = [{ id: "r0", x: "one" }, ...[1, 2, 3, 4].map((n) => ({ id: `r${n}`, x: n }))]
    const report = checkRows(rows, {}, "f.jsonl")
    const rule = ruleOf(report, "arrow/type-change")
    // Was count 4, rows 1-4 ("number here, string at f.jsonl row 0 x").
    expect(rule.count).toBe(1)
    expect(rule.examples.map((e) => [e.row, e.field, e.message])).toEqual([[
      0,
      "x",
      "string here, number at f.jsonl row 1 x: the load fails (values at this path: 4 number, 1 string; " +
      "the rows of the types with fewer values are named)"
    ]])
    // A tie keeps the first type: the later rows are named.
    const tie = ruleOf(checkRows([{ x: "a" }, { x: 1 }], {}, "t.jsonl"), "arrow/type-change")
    expect(tie.examples.map((e) => [e.row, e.message])).toEqual([[
      1,
      "number here, string at t.jsonl row 0 x: the load fails (values at this path: 1 string, 1 number; " +
      "the rows of the types with fewer values are named)"
    ]])
  })
})

describe("skyrl's own output", () => {
  it("convert of the recorded tasks, filtered to valid plans, validates clean in .jsonl and .parquet (exit 0)", async () => {
    const text = readFileSync(join(import.meta.dirname, "..", "data", "examples", "recorded-tasks.jsonl"), "utf8")
    const records = Either.getOrThrow(parseRecords(text, "recorded-tasks.jsonl"))
    const valid = records.flatMap((r) => {
      if (r._tag === "Unparsable") return []
      const row = convertTask(r.value, { inventory })
      if (Either.isLeft(row)) return []
      return validatePlan(inventory, row.right.reward_spec.ground_truth.tool_sequence).length === 0 ? [r.value] : []
    })
    expect(valid.length).toBeGreaterThanOrEqual(3)
    const dir = tmp()
    const input = join(dir, "valid.jsonl")
    writeFileSync(input, valid.map((t) => JSON.stringify(t)).join("\n"))
    const outs = [join(dir, "rows.jsonl"), join(dir, "rows.parquet")]
    for (const out of outs) {
      const c = await runCli(["convert", input, "--out", out, "--inventory", INVENTORY_FILE])
      expect(c.stderr).not.toContain("ERROR")
      expect(c.status).toBe(0)
    }
    for (const out of outs) {
      const r = await runCli(["validate", out, "--inventory", INVENTORY_FILE, "--json"])
      expect(r.status).toBe(0)
      const report = JSON.parse(r.stdout) as Report
      expect(report.violations).toBe(0)
      expect(report.rows).toBe(valid.length)
      expect(report.rules.length).toBeGreaterThan(10) // every rule listed
      // These recorded answers predate param provenance (every step's lists are empty, JSON text "[]" on
      // disk) and one label says simple for 3 calls: a warning. The model chose `limit: 5` for the news
      // and wrote a whole Python program as a literal `code` param, neither stated by the prompt: warnings
      // too (the reward would match them exactly). Nothing else is found.
      const warned = report.rules.filter((x) => x.count > 0).map((x) => [x.id, x.severity, x.count])
      // The program's `${price}` templates are placeholders (plan/placeholder): the policy would have to write them.
      expect(warned).toEqual([
        ["plan/complexity", "warning", 1],
        ["plan/placeholder", "warning", 1],
        ["prompt/literal-not-shown", "warning", valid.length]
      ])
      expect(ruleOf(report, "plan/placeholder").examples[0]!.message).toMatch(
        /^step 3 execute_python code = "price = \$\{price\}/
      )
      const literals = ruleOf(report, "prompt/literal-not-shown").examples.map((e) => e.message)
      expect(literals.every((m) => m.startsWith("the prompt never states step 2 polygon_get_news limit = 5"))).toBe(
        true
      )
      expect(literals.some((m) => m.includes("execute_python code = "))).toBe(true)
    }
    // Together (as SkyRL concatenates them) only the duplicates (the same rows twice) are reported: the empty
    // lists are JSON text in both files, so no list<null> meets a typed list (test/datasets.test.ts).
    const both = await runCli(["validate", ...outs, "--inventory", INVENTORY_FILE, "--json"])
    expect(both.status).toBe(1)
    const report = JSON.parse(both.stdout) as Report
    expect(failing(report)).toEqual(["duplicate/prompt", "duplicate/task-id"])
    expect(ruleOf(report, "arrow/type-change").count).toBe(0)
  })

  it("convert refuses to finish silently when what it wrote has violations: errors logged, exit 1, file kept", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.json")
    const task = {
      task_id: "same",
      user_prompt: "Get the AAPL quote",
      tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }],
      evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
    }
    writeFileSync(input, JSON.stringify([task, task])) // each task is valid; together they are duplicates
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["convert", input, "--out", out, "--inventory", INVENTORY_FILE])
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/ERROR.*duplicate\/prompt: 1/)
    expect(r.stderr).toMatch(/ERROR.*duplicate\/task-id: 1/)
    expect(r.stderr).toContain(`${out} row 1 prompt: identical to ${out} row 0`)
    expect(r.stderr).toContain(`${out} was written but has 2 violations`)
    expect(readFileSync(out, "utf8").trim().split("\n")).toHaveLength(2)
  })
})

describe("checkWrittenDataset", () => {
  it("returns the report when clean and fails with DatasetViolationsError (exit code 1) otherwise", async () => {
    const dir = tmp()
    const good = join(dir, "good.jsonl")
    const bad = join(dir, "bad.jsonl")
    writeFileSync(good, JSON.stringify(rowFor(0)) + "\n")
    writeFileSync(bad, JSON.stringify(rowFor(0)) + "\n" + JSON.stringify(rowFor(0)) + "\n")
    const ok = await run(checkWrittenDataset(good, inventory))
    expect(Exit.isSuccess(ok) && ok.value.rows).toBe(1)
    const failed = await run(checkWrittenDataset(bad, inventory))
    if (Exit.isSuccess(failed) || failed.cause._tag !== "Fail") throw new Error("expected a failure")
    const e = failed.cause.error
    expect(e).toBeInstanceOf(DatasetViolationsError)
    expect((e as DatasetViolationsError).exitCode).toBe(1)
    expect((e as DatasetViolationsError).rules).toEqual(["duplicate/prompt", "duplicate/task-id"])
  })
  it("a line that is not JSON is a contract/json violation (exit code 1); a file that cannot be read, exit code 2", async () => {
    const dir = tmp()
    const file = join(dir, "bad.jsonl")
    writeFileSync(file, "{not json\n")
    const exit = await run(checkWrittenDataset(file, inventory))
    if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error("expected a failure")
    expect(exit.cause.error).toBeInstanceOf(DatasetViolationsError)
    expect((exit.cause.error as DatasetViolationsError).rules).toEqual(["contract/json"])
    const array = join(dir, "bad.json")
    writeFileSync(array, "[{\"a\": 1},\n")
    const unreadable = await run(checkWrittenDataset(array, inventory))
    if (Exit.isSuccess(unreadable) || unreadable.cause._tag !== "Fail") throw new Error("expected a failure")
    expect((unreadable.cause.error as { exitCode: number }).exitCode).toBe(2)
    expect(unreadable.cause.error.message).toMatch(/bad\.json: not valid JSON/)
  })
})

describe("CLI exit codes", () => {
  it("1 for rows made with another inventory, saying that none of their servers is in it and to give --inventory", async () => {
    const dir = tmp()
    const tasks = join(dir, "tasks.jsonl")
    const task = {
      task_id: "echo-hello",
      user_prompt: "Echo the word hello.",
      tool_sequence: [{ server: "everything", tool: "echo", params: { message: "hello" } }]
    }
    writeFileSync(tasks, JSON.stringify(task) + "\n")
    const rows = join(dir, "rows.jsonl")
    const everything = "test/fixtures/inventory/everything.json"
    expect((await runCli(["convert", tasks, "--inventory", everything, "--out", rows])).status).toBe(0)
    const r = await runCli(["validate", rows])
    expect(r.status, r.stderr).toBe(1)
    // Was only: "rows.jsonl: 2 violations (plan/tool, prompt/plan-leak)".
    expect(r.stderr).toContain(
      "no server of the plans (everything) is in the bundled inventory (no --inventory given: fmp, polygon, " +
        "python_execution, slack, tavily): give --inventory the inventory the rows were made with"
    )
    const given = await runCli(["validate", rows, "--inventory", "data/inventory/finance-mcp.json"])
    expect(given.stderr).toContain("no server of the plans (everything) is in data/inventory/finance-mcp.json")
    expect((await runCli(["validate", rows, "--inventory", everything])).status).toBe(0)
  })
  it("1 for lines that are not JSON (contract/json, each named), with every other row checked", async () => {
    const file = join(tmp(), "broken.jsonl")
    const lines = [rowFor(0), "{oops", rowFor(1), "", "[1, 2", rowFor(1)]
    writeFileSync(file, lines.map((l) => typeof l === "string" ? l : JSON.stringify(l)).join("\n") + "\n")
    const r = await runCli(["validate", file, "--json"])
    expect(r.status, r.stderr).toBe(1)
    const report = JSON.parse(r.stdout) as Report
    expect(report.rows).toBe(5)
    const json = report.rules.find((x) => x.id === "contract/json")!
    expect(json.severity).toBe("error")
    expect(json.examples.map((e) => [e.row, e.message.replace(/:.*/, "")])).toEqual([
      [1, "line 2 is not valid JSON"],
      [3, "line 5 is not valid JSON"]
    ])
    // The rows after a bad line are checked: the last row repeats the third.
    expect(report.rules.find((x) => x.id === "duplicate/prompt")!.examples.map((e) => e.row)).toEqual([4])
    expect(report.violations).toBe(2 + 2) // contract/json twice, duplicate/prompt and duplicate/task-id
    const text = await runCli(["validate", file])
    expect(text.status).toBe(1)
    expect(text.stdout).toContain(`${file} row 3 (row): line 5 is not valid JSON`)
  })
  it("1 for a JSON Lines row naming a key twice (arrow/repeated-key: pyarrow refuses the file), the rest checked", async () => {
    const dir = tmp()
    const file = join(dir, "twice.jsonl")
    const twice = JSON.stringify(rowFor(1)).replace(`"max_turns":`, `"max_turns":2,"max_turns":`)
    writeFileSync(file, [JSON.stringify(rowFor(0)), twice, JSON.stringify(rowFor(2))].join("\n") + "\n")
    const r = await runCli(["validate", file, "--inventory", INVENTORY_FILE])
    expect(r.status, r.stderr).toBe(1)
    expect(r.stdout).toContain(
      `${file} row 1 reward_spec.ground_truth.max_turns: this key is given twice in one object`
    )
    expect(r.stdout).toMatch(/VIOLATIONS: 1 in 1 rule/)
    // The checks read the last max_turns (the row's own), not 2 (below steps + 1: a contract/max_turns warning).
    expect(r.stdout).not.toContain("contract/max_turns")
    // A JSON array file is read whole by Python's json (the last value wins; datasets loads it): not reported.
    const array = join(dir, "twice.json")
    writeFileSync(array, `[${twice}]`)
    expect((await runCli(["validate", array, "--inventory", INVENTORY_FILE])).status).toBe(0)
  })
  it("1 for a line that is not UTF-8 (contract/json naming line and byte offset); a U+FFFD written as UTF-8 passes", async () => {
    const file = join(tmp(), "latin1.jsonl")
    const kept = edited(rowFor(0), (r) => (r.prompt[1].content += " \uFFFD"))
    const line = JSON.stringify(edited(rowFor(1), (r) => (r.prompt[1].content += " At the café."))) + "\n"
    const good = Buffer.from(JSON.stringify(kept) + "\n")
    writeFileSync(
      file,
      Buffer.concat([good, Buffer.from(line, "latin1"), Buffer.from(JSON.stringify(rowFor(2)) + "\n")])
    )
    const r = await runCli(["validate", file, "--json"])
    expect(r.status, r.stderr).toBe(1)
    const report = JSON.parse(r.stdout) as Report
    expect(report.rows).toBe(3)
    expect(report.violations).toBe(1)
    const at = good.length + Buffer.from(line, "latin1").indexOf(0xe9)
    expect(report.rules.find((x) => x.id === "contract/json")!.examples.map((e) => [e.row, e.message])).toEqual([
      [1, `line 2 is not valid UTF-8: byte 0xE9 at byte offset ${at} of the file (re-encode it as UTF-8)`]
    ])
  })
  it("1 for a string holding a lone surrogate (\\ud800: datasets cannot load it), in .jsonl and .json; a pair passes", async () => {
    const dir = tmp()
    // JSON text can escape half a surrogate pair: JSON.parse accepts it, but it is no Unicode text.
    // datasets.load_dataset of such a .jsonl fails ("The surrogate pair in string is invalid"); of a .json
    // array it drops the character. A pair written escaped (Python's ensure_ascii) is text like any other.
    const lone = (i: number) => JSON.stringify(rowFor(i)).replace("then the 3", "then \\ud800 the 3")
    const pair = JSON.stringify(rowFor(2)).replace("then the 3", "then \\ud83d\\ude00 the 3")
    writeFileSync(join(dir, "lone.jsonl"), [lone(0), pair, lone(1)].join("\n") + "\n")
    writeFileSync(join(dir, "lone.json"), `[${lone(0)}]`)
    for (const [name, rows] of [["lone.jsonl", [0, 2]], ["lone.json", [0]]] as const) {
      const r = await runCli(["validate", join(dir, name), "--json"])
      expect(r.status, r.stderr).toBe(1)
      const report = JSON.parse(r.stdout) as Report
      const json = report.rules.find((x) => x.id === "contract/json")!
      expect(json.examples.map((e) => [e.row, e.field])).toEqual(rows.map((row) => [row, "prompt[1].content"]))
      expect(json.examples[0]!.message).toContain("a lone surrogate (U+D800")
    }
  })
  it("0 for a .json array starting with a BOM, as for a .jsonl file with one", async () => {
    const dir = tmp()
    writeFileSync(join(dir, "bom.json"), "\uFEFF" + JSON.stringify([rowFor(0), rowFor(1)]))
    writeFileSync(join(dir, "bom.jsonl"), "\uFEFF" + JSON.stringify(rowFor(0)) + "\n")
    for (const name of ["bom.json", "bom.jsonl"]) {
      const r = await runCli(["validate", join(dir, name)])
      expect(r.status, r.stderr).toBe(0)
    }
  })
  it("2 for a file that cannot be read as rows: a broken JSON array, a gzip-compressed file", async () => {
    const dir = tmp()
    const array = join(dir, "broken.json")
    writeFileSync(array, "[{\"a\": 1},\n")
    const r = await runCli(["validate", array])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain("broken.json: not valid JSON")
    expect(r.stdout).toBe("")
    // A pretty-printed array broken on its 3rd line: the error is one line and names that line.
    writeFileSync(array, "[\n {\"a\": 1},\n {\"b\": 2 \"c\": 3}\n]\n")
    const pretty = await runCli(["validate", array])
    expect(pretty.status).toBe(2)
    expect(pretty.stderr.trimEnd().split("\n")).toEqual([
      `skyrl: ${array}: not valid JSON: Expected ',' or '}' after property value in JSON at line 3, column 10`
    ])
    const gzip = join(dir, "rows.jsonl")
    writeFileSync(gzip, gzipSync(JSON.stringify(rowFor(0)) + "\n"))
    const g = await runCli(["validate", gzip])
    expect(g.status).toBe(2)
    expect(g.stderr).toContain("it is gzip-compressed; decompress it first")
  })
  it("2 for a missing file (usage error)", async () => {
    expect((await runCli(["validate", "/nonexistent/rows.jsonl"])).status).toBe(2)
  })
  it("1 for a file without rows (SkyRL's loader, datasets.load_dataset, fails on it): contract/empty-file", async () => {
    const dir = tmp()
    const empty = join(dir, "empty.jsonl")
    const bare = join(dir, "bare.json")
    writeFileSync(empty, "")
    writeFileSync(bare, "[]\n")
    const r = await runCli(["validate", empty, bare, "--json"])
    expect(r.status, r.stderr).toBe(1)
    const report = JSON.parse(r.stdout) as Report
    const rule = report.rules.find((x) => x.id === "contract/empty-file")!
    expect(rule.severity).toBe("error")
    expect(rule.examples.map((e) => e.file)).toEqual([empty, bare])
    expect(rule.examples[0].message).toMatch(/holds no row/)
    expect(report.ok).toBe(false)
    expect(r.stderr).toMatch(/contract\/empty-file/)
    const text = await runCli(["validate", empty])
    expect(text.status).toBe(1)
    expect(text.stdout).toMatch(/VIOLATIONS: 1 in 1 rule\(s\)[\s\S]*contract\/empty-file/)
  })
  it("--fail-on makes named warning rules fail the run (exit 1), `warnings` all of them; an unknown or error rule is a usage error", async () => {
    const dir = tmp()
    const file = join(dir, "rows.jsonl")
    // Row 0 does not state its limit (prompt/literal-not-shown); rows 1 and 2 are near-duplicate prompts.
    const rows = [
      rowFor(0, { user_prompt: "Get Apple's quote for ticker number 0, then the latest news." }),
      rowFor(1, {
        user_prompt: "Get Apple's quote and then the 3 latest news items for our weekly ticker report one."
      }),
      rowFor(2, {
        user_prompt: "Get Apple's quote and then the 3 latest news items for our weekly ticker report two."
      })
    ]
    writeFileSync(file, rows.map((r) => JSON.stringify(r)).join("\n") + "\n")
    const plain = await runCli(["validate", file, "--inventory", INVENTORY_FILE, "--json"])
    expect(plain.status, plain.stderr).toBe(0)
    const warned = (JSON.parse(plain.stdout) as Report).rules.filter((r) => r.count > 0).map((r) => [r.id, r.severity])
    // (rowFor's plans are all the same: duplicate/same-plan too.)
    expect(warned).toEqual([
      ["prompt/literal-not-shown", "warning"],
      ["duplicate/similar-prompt", "warning"],
      ["duplicate/same-plan", "warning"]
    ])
    const warnings = (JSON.parse(plain.stdout) as Report).warnings

    const failingOn = (rules: string) =>
      runCli(["validate", file, "--inventory", INVENTORY_FILE, "--json", "--fail-on", rules])
    const literal = await failingOn("prompt/literal-not-shown")
    expect(literal.status).toBe(1)
    const report = JSON.parse(literal.stdout) as Report
    expect([report.ok, report.violations, report.warnings]).toEqual([false, 1, warnings - 1])
    expect(literal.stderr).toMatch(/prompt\/literal-not-shown/)
    // The diversity pass's rules too: their counts go to violations when they fail the run.
    const similar = await failingOn("duplicate/similar-prompt")
    expect(similar.status).toBe(1)
    expect((JSON.parse(similar.stdout) as Report).violations).toBe(1)
    const all = await failingOn("warnings")
    expect(all.status).toBe(1)
    expect(JSON.parse(all.stdout) as Report).toMatchObject({ violations: warnings, warnings: 0 })
    // `warnings` beside a rule it already holds: all of them (it was "not a warning rule: warnings").
    const mixed = await failingOn("warnings,plan/complexity")
    expect([mixed.status, mixed.stderr]).toEqual([1, expect.not.stringContaining("--fail-on")])
    expect(JSON.parse(mixed.stdout) as Report).toMatchObject({ violations: warnings, warnings: 0 })

    for (const bad of ["contract/prompt", "prompt/nope", "", "warnings,prompt/nope"]) {
      const r = await runCli(["validate", file, "--fail-on", bad])
      expect(r.status, bad).toBe(2)
      expect(r.stderr).toMatch(/--fail-on: .*the warning rules are contract\/max_turns, plan\/complexity, /)
    }
  })
  it("--near-dup off is refused with the lenient way: the findings are warnings, --near-dup 1 keeps only the closest", async () => {
    const r = await runCli(["validate", PROTOTYPE, "--near-dup", "off"])
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/--near-dup: .*"off".*warnings.*--near-dup 1/)
  })
})

describe("skyrl schema", () => {
  it("row: the printed JSON Schema accepts rows skyrl writes and rejects the prototype's object params", async () => {
    const r = await runCliShared(["schema", "row"])
    expect(r.status).toBe(0)
    const schema = JSON.parse(r.stdout)
    const validate = new Ajv({ strict: false }).compile(schema)
    expect(validate(rowFor(0))).toBe(true)
    const prototype = JSON.parse(readFileSync(PROTOTYPE, "utf8"))[0]
    expect(validate(prototype)).toBe(false)
    expect(validate(edited(rowFor(0), (r) => (r.reward_spec.ground_truth.max_turns = 2.5)))).toBe(false)
    // Param provenance is part of the contract: JSON-text lists on every step (Arrow: an all-empty typed list
    // is list<null>), the prompt's tools (at least one) on every row.
    expect(schema.$defs.RowStep.required).toEqual(
      ["step", "server", "tool", "call_name", "params", "depends_on", "derived_params", "schema_hash"]
    )
    expect(schema.$defs.RowStep.properties.depends_on).toEqual({ type: "string", contentMediaType: "application/json" })
    expect(schema.$defs.RowStep.properties.derived_params).toEqual({
      type: "string",
      contentMediaType: "application/json"
    })
    expect(schema.$defs.GroundTruth.required).toEqual(expect.arrayContaining(["available_tools", "tool_schemas"]))
    expect(schema.$defs.GroundTruth.properties.available_tools.minItems).toBe(1)
    expect(validate(edited(rowFor(0), (r) => (r.reward_spec.ground_truth.tool_sequence[1].depends_on = [1]))))
      .toBe(false)
    expect(validate(edited(rowFor(0), (r) => (r.reward_spec.ground_truth.available_tools = [])))).toBe(false)
    expect(validate(edited(rowFor(0), (r) => delete r.reward_spec.ground_truth.tool_sequence[0].derived_params)))
      .toBe(false)
  })
  it("task and inventory: the schemas accept the bundled examples", async () => {
    const inv = JSON.parse((await runCli(["schema", "inventory"])).stdout)
    expect(new Ajv({ strict: false }).validate(inv, JSON.parse(readFileSync(INVENTORY_FILE, "utf8")))).toBe(true)
    const task = JSON.parse((await runCli(["schema", "task"])).stdout)
    expect(task.title).toBe("skyrl task")
    expect(Object.keys(task.$defs.Task.properties)).toContain("tool_sequence")
    // Every contract compiles (ajv refused `task`: "reference /schemas/unknown resolves to more than one schema").
    const validateTask = new Ajv({ strict: false }).compile(task)
    const step = { step: 1, server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }
    expect(validateTask({ user_prompt: "AAPL's quote", tool_sequence: [step] }), JSON.stringify(validateTask.errors))
      .toBe(true)
    expect(validateTask({ messages: [{ role: "user", content: 7 }], tool_sequence: [] })).toBe(true)
    expect(validateTask({ user_prompt: "AAPL's quote", tool_sequence: [{ ...step, params: [] }] })).toBe(false)
    for (const contract of ["row", "model-task"]) {
      const schema = JSON.parse((await runCliShared(["schema", contract])).stdout)
      expect(() => new Ajv({ strict: false }).compile(schema), contract).not.toThrow()
    }
    expect((await runCli(["schema", "nope"])).status).toBe(2)
  })
})

describe("streaming", () => {
  it("the checker keeps no rows: only paths, hashes and the first examples per rule", () => {
    const checker = new DatasetChecker({ inventory, maxExamples: 2 })
    checker.beginFile("many.jsonl")
    const row = rowFor(0)
    for (let i = 0; i < 50; i++) checker.add(i, row)
    const report = checker.report()
    expect(ruleOf(report, "duplicate/prompt").count).toBe(49)
    expect(ruleOf(report, "duplicate/prompt").examples).toHaveLength(2)
  })
})
