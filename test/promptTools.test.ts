/**
 * The prompt policy (src/skyrl/promptTools.ts, prompt.ts, convert.ts): the tools a prompt offers do not
 * depend on the plan, colliding names are unambiguous, signatures carry what a policy needs.
 */
import { Either, Schema } from "effect"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Inventory, InventoryTool } from "../src/domain/inventory.js"
import { convertTask } from "../src/skyrl/convert.js"
import { shortenDescription, toolSignature, typeLabel } from "../src/skyrl/prompt.js"
import { chatPromptTokens } from "../src/skyrl/promptTokens.js"
import { callNames, MIN_DISTRACTORS } from "../src/skyrl/promptTools.js"
import { runCli } from "./support/cli.js"

const tool = (name: string, description = `Does ${name}.`) => ({
  name,
  description,
  inputSchema: { type: "object", properties: { q: { type: "string" } }, required: ["q"] }
})

/** Inventory [a, b, c, d] on one server, plus more servers when asked. */
const inventoryOf = (servers: Record<string, ReadonlyArray<string>>) =>
  Schema.decodeUnknownSync(Inventory)({
    servers: Object.entries(servers).map(([name, tools]) => ({ name, tools: tools.map((t) => tool(t)) }))
  })

const rubric = { name: "r", criteria: [{ name: "c", description: "d", scoring: "0-1" }] }
const task = (plan: ReadonlyArray<readonly [string, string]>, id = "t1", user = "Do the thing for q.") => ({
  task_id: id,
  user_prompt: user,
  tool_sequence: plan.map(([server, t]) => ({ server, tool: t, params: { q: "x" } })),
  evaluation_rubric: rubric
})

/** The call names listed in the system message, in order. */
const listed = (system: string) =>
  system.split("\n").filter((l) => l.startsWith("- ")).map((l) => l.slice(2).split("(")[0])

describe("prompt tools do not depend on the plan", () => {
  const abcd = inventoryOf({ s: ["a", "b", "c", "d"] })

  it("a plan [b, a] over an inventory [a, b, c, d] offers [a, b, c, d]", () => {
    const row = Either.getOrThrow(convertTask(task([["s", "b"], ["s", "a"]]), { inventory: abcd }))
    expect(listed(row.prompt[0].content)).toEqual(["a", "b", "c", "d"])
    expect(row.reward_spec.ground_truth.available_tools.map((t) => t.call_name)).toEqual(["a", "b", "c", "d"])
    // The plan keeps its own order.
    expect(row.reward_spec.ground_truth.tool_sequence.map((s) => s.call_name)).toEqual(["b", "a"])
  })

  it("under a tight budget: still canonical order, never [b, a], plan tools plus min(3, available) distractors", () => {
    const many = inventoryOf({
      s: ["a", "b", "c", "d"],
      t: Array.from({ length: 12 }, (_, i) => `t${String(i).padStart(2, "0")}`)
    })
    const full = Either.getOrThrow(convertTask(task([["s", "b"], ["s", "a"]]), { inventory: many }))
    const fullTokens = chatPromptTokens(full.prompt)
    expect(listed(full.prompt[0].content)).toHaveLength(16)
    const budget = fullTokens - 60 // room for several tools fewer
    const rows = ["t1", "t2", "t3", "t4", "t5", "t6"].map((id) =>
      Either.getOrThrow(convertTask(task([["s", "b"], ["s", "a"]], id), { inventory: many, maxPromptTokens: budget }))
    )
    const order = many.servers.flatMap((s) => s.tools.map((t) => t.name))
    for (const row of rows) {
      const names = listed(row.prompt[0].content)
      expect(chatPromptTokens(row.prompt)).toBeLessThanOrEqual(budget)
      expect(names.length).toBeLessThan(16)
      expect(names).not.toEqual(["b", "a"])
      expect(names.slice(0, 4)).toEqual(["a", "b", "c", "d"]) // the plan's server first, whole
      expect([...names].sort((x, y) => order.indexOf(x) - order.indexOf(y))).toEqual(names)
      expect(names.length - 2).toBeGreaterThanOrEqual(MIN_DISTRACTORS)
    }
    // The other distractors are chosen per task id: deterministic, and not the same for every task.
    const again = Either.getOrThrow(
      convertTask(task([["s", "b"], ["s", "a"]], "t1"), { inventory: many, maxPromptTokens: budget })
    )
    expect(again.prompt[0].content).toBe(rows[0].prompt[0].content)
    expect(new Set(rows.map((r) => listed(r.prompt[0].content).join(","))).size).toBeGreaterThan(1)
  })

  it("a task's tools_available come first among the distractors when the budget is tight", () => {
    const many = inventoryOf({ s: ["a", "b"], t: Array.from({ length: 12 }, (_, i) => `t${i}`) })
    const plan = task([["s", "a"]])
    const full = chatPromptTokens(Either.getOrThrow(convertTask(plan, { inventory: many })).prompt)
    const row = Either.getOrThrow(
      convertTask({ ...plan, tools_available: ["t7", "t9"] }, { inventory: many, maxPromptTokens: full - 40 })
    )
    expect(listed(row.prompt[0].content)).toEqual(expect.arrayContaining(["a", "b", "t7", "t9"]))
  })

  it("refuses a prompt with fewer than min(3, available) distractors, with the reason", () => {
    const plan = task([["s", "b"], ["s", "a"]])
    const full = chatPromptTokens(Either.getOrThrow(convertTask(plan, { inventory: abcd })).prompt)
    // Room for the plan's tools and one more line: 1 distractor of the 2 available.
    const r = convertTask(plan, { inventory: abcd, maxPromptTokens: full - 8 })
    expect(Either.isLeft(r) && r.left.field).toBe("prompt")
    expect(Either.isLeft(r) && r.left.reason).toMatch(/only 1 tool besides the plan's 2 .*at least 2 distractors/)
    // Too small even for the plan's tools.
    const tiny = convertTask(plan, { inventory: abcd, maxPromptTokens: 50 })
    expect(Either.isLeft(tiny) && tiny.left.reason).toMatch(/only the plan's 2 tools takes \d+ tokens/)
    // An inventory with nothing besides the plan's tools needs no distractor.
    const only = Either.getOrThrow(convertTask(plan, { inventory: inventoryOf({ s: ["a", "b"] }) }))
    expect(listed(only.prompt[0].content)).toEqual(["a", "b"])
  })
})

describe("colliding tool names", () => {
  const inventory = inventoryOf({ fs: ["read", "list"], web: ["search", "read"] })

  it("are shown and expected as server.tool, in the prompt, the plan, must_call_tool and available_tools", () => {
    const row = Either.getOrThrow(convertTask(task([["web", "read"], ["fs", "list"]]), { inventory }))
    const gt = row.reward_spec.ground_truth
    expect(listed(row.prompt[0].content)).toEqual(["fs.read", "list", "search", "web.read"])
    expect(gt.tool_sequence.map((s) => [s.server, s.tool, s.call_name])).toEqual([
      ["web", "read", "web.read"],
      ["fs", "list", "list"]
    ])
    expect(gt.success.must_call_tool).toBe("web.read")
    expect(gt.available_tools.map((t) => [t.call_name, t.server, t.tool])).toEqual([
      ["fs.read", "fs", "read"],
      ["list", "fs", "list"],
      ["search", "web", "search"],
      ["web.read", "web", "read"]
    ])
    expect(Object.keys(gt.tool_schemas)).toEqual(["list", "web.read"])
    // A must_call_tool given by its plain tool name maps to the step's call name.
    const named = convertTask({ ...task([["web", "read"]]), success: { must_call_tool: "read" } }, { inventory })
    expect(Either.getOrThrow(named).reward_spec.ground_truth.success.must_call_tool).toBe("web.read")
  })

  it("callNames qualifies only the names two servers share", () => {
    const names = callNames([{ server: "a", tool: "x" }, { server: "b", tool: "x" }, { server: "b", tool: "y" }])
    expect([...names.values()]).toEqual(["a.x", "b.x", "y"])
  })
})

describe("signatures a policy can act on", () => {
  const schemaTool = new InventoryTool({
    name: "find",
    description: "Find records in the archive. Results are paged; use cursor for more. Internal note.",
    inputSchema: {
      type: "object",
      properties: {
        query: { type: "string" },
        sort: { type: "string", enum: ["asc", "desc"] },
        region: {
          type: "string",
          enum: ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "sa-east-1"]
        },
        filter: {
          type: "object",
          properties: {
            field: { type: "string" },
            range: { type: "object", properties: { from: { type: "number" } } }
          },
          required: ["field"]
        },
        tags: { type: "array", items: { type: "object", properties: { key: { type: "string" } }, required: ["key"] } },
        limit: { type: ["integer", "null"] }
      },
      required: ["query"]
    }
  })

  it("required vs optional, enums whole or cut with a count, one level of object and array shape", () => {
    expect(toolSignature(schemaTool)).toBe(
      "find(query: string, sort?: \"asc\"|\"desc\", " +
        "region?: \"us-east-1\"|\"us-west-2\"|\"eu-west-1\"|\"eu-central-1\"|…(2 more), " +
        "filter?: {field: string, range?: object}, tags?: {key: string}[], limit?: integer) - " +
        "Find records in the archive"
    )
    expect(typeLabel({ anyOf: [{ type: "string" }, { type: "integer" }] })).toBe("string|integer")
    expect(typeLabel({ const: "x" })).toBe("\"x\"")
  })

  it("descriptions are cut at a sentence, else at a word boundary", () => {
    expect(shortenDescription("Get quotes. Then more text follows here.")).toBe("Get quotes")
    const long = "word ".repeat(40).trim()
    const cut = shortenDescription(long, 50)
    expect(cut.endsWith("word…")).toBe(true)
    expect(cut.length).toBeLessThanOrEqual(50)
    expect(shortenDescription("e.g. this stays whole because it is short")).toBe(
      "e.g. this stays whole because it is short"
    )
  })

  it("the system message names each server, gives the date and the call syntax", () => {
    const inventory = Schema.decodeUnknownSync(Inventory)(
      JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", "inventory", "finance-mcp.json"), "utf8"))
    )
    const row = Either.getOrThrow(
      convertTask(task([["fmp", "fmp_get_quote"]]), { inventory, asOf: "2026-11-30" })
    )
    const lines = row.prompt[0].content.split("\n")
    expect(lines).toContain("Today is 2026-11-30.")
    expect(lines).toContain(
      "To call a tool, reply with exactly: <tool_call>{\"name\": \"TOOL\", \"arguments\": {...}}</tool_call>"
    )
    expect(lines.filter((l) => /^[a-z_]+:$/.test(l))).toEqual([
      "fmp:",
      "polygon:",
      "python_execution:",
      "slack:",
      "tavily:"
    ])
    expect(row.extra_info.task_metadata.as_of).toBe("2026-11-30")
  })
})

describe("--as-of and --max-prompt-tokens (convert; generate and enrich share the options)", () => {
  const INVENTORY_FILE = join(import.meta.dirname, "fixtures", "inventory", "finance-mcp.json")
  const write = () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-asof-"))
    const input = join(dir, "tasks.json")
    const quote = {
      ...task([], "q1", "Quote AAPL as of today."),
      tool_sequence: [
        { server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }
      ]
    }
    writeFileSync(input, JSON.stringify([quote]))
    return { input, out: join(dir, "rows.jsonl") }
  }
  const rowsOf = (file: string) => readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l))

  it("dates every row with --as-of and keeps the prompt within --max-prompt-tokens (or MAX_PROMPT_TOKENS)", async () => {
    const { input, out } = write()
    const r = await runCli(["convert", input, "--out", out, "--inventory", INVENTORY_FILE, "--as-of", "2025-06-30"])
    expect(r.status, r.stderr).toBe(0)
    const [row] = rowsOf(out)
    expect(row.prompt[0].content).toContain("Today is 2025-06-30.")
    expect(JSON.parse(row.extra_info.task_metadata).as_of).toBe("2025-06-30")
    // A budget the whole inventory does not fit: fewer tools, still within it.
    const small = await runCli(["convert", input, "--out", out, "--inventory", INVENTORY_FILE], {
      env: { MAX_PROMPT_TOKENS: "400" }
    })
    expect(small.status, small.stderr).toBe(0)
    const [tight] = rowsOf(out)
    expect(tight.reward_spec.ground_truth.available_tools.length).toBeLessThan(25)
    expect(JSON.parse(tight.extra_info.task_metadata).prompt_tokens_est).toBeLessThanOrEqual(400)
  })

  it("a date that is not YYYY-MM-DD, or a budget that is not positive, is a usage error naming the setting", async () => {
    const { input, out } = write()
    const bad = await runCli(["convert", input, "--out", out, "--as-of", "2025-02-30"])
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain("--as-of (AS_OF): must be a date YYYY-MM-DD, got \"2025-02-30\"")
    // A month or day out of range is no date at all (it was "internal error: Invalid time value", exit 1).
    const month13 = await runCli(["convert", input, "--out", out, "--as-of", "2025-13-45"])
    expect(month13.stderr).toContain("--as-of (AS_OF): must be a date YYYY-MM-DD, got \"2025-13-45\"")
    expect(month13.status).toBe(2)
    const zero = await runCli(["convert", input, "--out", out, "--max-prompt-tokens", "0"])
    expect(zero.status).toBe(2)
    expect(zero.stderr).toContain("--max-prompt-tokens (MAX_PROMPT_TOKENS): must be a positive integer")
    const gen = await runCli(["generate", "-n", "1", "--out", out, "--llm", "replay", "--as-of", "soon"])
    expect(gen.status).toBe(2)
    expect(gen.stderr).toContain("--as-of (AS_OF)")
  })
})
