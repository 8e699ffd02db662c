import { Effect, Either, Exit, Schema } from "effect"
import { mkdtempSync, readdirSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Inventory } from "../src/domain/inventory.js"
import { ENV_CLASS } from "../src/domain/row.js"
import { complexityMismatch, complexityOf } from "../src/domain/task.js"
import {
  convertTask,
  decodeTask,
  normalizePrompt,
  normalizeTaskInput,
  toSkyRLSampleEffect
} from "../src/skyrl/convert.js"
import { decodeRow, encodedRowJson, encodeRow, encodeRowWithSchema, writeEncodedRowJson } from "../src/skyrl/layout.js"
import { TOOL_CALL_SYNTAX } from "../src/skyrl/prompt.js"
import { chatPromptTokens, textTokens } from "../src/skyrl/promptTokens.js"
import { runCli } from "./support/cli.js"

const FIXTURES = join(import.meta.dirname, "fixtures")
const inventory = Schema.decodeUnknownSync(Inventory)(
  JSON.parse(readFileSync(join(FIXTURES, "inventory", "finance-mcp.json"), "utf8"))
)

const rubric = { name: "r", criteria: [{ name: "c", description: "d", scoring: "0-1" }] }
const base = () => ({
  task_id: "t1",
  user_prompt: "  Get the AAPL quote, then news.  ",
  tool_sequence: [
    { step: 7, server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } },
    { step: 3, server: "polygon", tool: "polygon_get_news", params: { ticker: "AAPL", limit: 3 } },
    { step: 9, server: "fmp", tool: "fmp_get_quote", params: { symbol: "MSFT" } }
  ],
  evaluation_rubric: rubric
})

const fieldOf = (raw: unknown) => {
  const r = convertTask(raw)
  if (Either.isRight(r)) throw new Error("expected a conversion error")
  return r.left
}

describe("toSkyRLSample: required fields name the field", () => {
  it("rejects a missing user_prompt", () => {
    const { user_prompt: _, ...task } = base()
    expect(fieldOf(task).field).toBe("user_prompt")
  })
  it("rejects an empty user_prompt", () => {
    const e = fieldOf({ ...base(), user_prompt: "   " })
    expect([e.field, e.reason]).toEqual(["user_prompt", "is empty"])
  })
  it("rejects a missing tool_sequence", () => {
    const { tool_sequence: _, ...task } = base()
    expect(fieldOf(task).field).toBe("tool_sequence")
  })
  it("rejects an empty tool_sequence", () => {
    expect(fieldOf({ ...base(), tool_sequence: [] }).field).toBe("tool_sequence")
  })
  it("rejects a step without server", () => {
    const t = base()
    const { server: _, ...step } = t.tool_sequence[1]
    expect(fieldOf({ ...t, tool_sequence: [t.tool_sequence[0], step] }).field).toBe("tool_sequence[1].server")
  })
  it("rejects a step without tool", () => {
    const t = base()
    const { tool: _, ...step } = t.tool_sequence[0]
    expect(fieldOf({ ...t, tool_sequence: [step] }).field).toBe("tool_sequence[0].tool")
  })
  it("rejects params that are not an object", () => {
    for (const params of ["symbol=AAPL", ["AAPL"], 5]) {
      const t = base()
      const e = fieldOf({ ...t, tool_sequence: [{ ...t.tool_sequence[0], params }] })
      expect(e.field).toBe("tool_sequence[0].params")
      expect(e.reason).toMatch(/must be an object/)
    }
  })
  it("converts a task without a rubric: a rubric derived from the plan, rubric_source derived", () => {
    const { evaluation_rubric: _, ...task } = base()
    const withDeps = {
      ...task,
      tool_sequence: [task.tool_sequence[0], { ...task.tool_sequence[1], depends_on: [1], derived_params: ["ticker"] }]
    }
    const row = Either.getOrThrow(convertTask(withDeps, { inventory }))
    const rubric = row.reward_spec.ground_truth.rubric
    expect(row.extra_info.task_metadata.rubric_source).toBe("derived")
    expect(rubric.name).toBe("t1 (derived from the plan)")
    // One criterion per planned call (its literal params; where its derived params come from), then the answer.
    expect(rubric.criteria.map((c) => [c.name, c.description])).toEqual([
      ["step 1: fmp_get_quote", "Calls fmp_get_quote with {\"symbol\":\"AAPL\"}."],
      ["step 2: polygon_get_news", "Calls polygon_get_news with {\"limit\":3}; ticker from the result of step 1."],
      [
        "grounded answer",
        "The final answer covers every part of the request and uses only values the tool calls returned."
      ]
    ])
    // Deterministic: the same task gives the same rubric.
    expect(Either.getOrThrow(convertTask(withDeps, { inventory })).reward_spec.ground_truth.rubric).toEqual(rubric)
    expect(Either.getOrThrow(convertTask(base())).extra_info.task_metadata.rubric_source).toBe("model")
  })
  it("rejects a non-object task", () => {
    expect(fieldOf([1, 2]).field).toBe("(task)")
  })
})

describe("toSkyRLSample: prompt normalization", () => {
  it("normalizes roles, trims content, and keeps the text otherwise unchanged", () => {
    const r = normalizePrompt([
      { role: " System ", content: "\n sys text \n" },
      { role: "human", content: "  What is   AAPL?\n" }
    ])
    expect(Either.getOrThrow(r).map((m) => [m.role, m.content])).toEqual([
      ["system", "sys text"],
      ["user", "What is   AAPL?"]
    ])
  })
  it("maps developer to system", () => {
    const r = normalizePrompt([{ role: "developer", content: "d" }, { role: "user", content: "u" }])
    expect(Either.getOrThrow(r)[0].role).toBe("system")
  })
  for (const role of ["assistant", "tool", "gpt", "function"]) {
    it(`rejects a ${role} message instead of dropping it`, () => {
      const r = normalizePrompt([{ role: "user", content: "u" }, { role, content: "x" }])
      expect(Either.isLeft(r) && r.left.field).toBe("messages[1].role")
    })
  }
  it("rejects empty content after trimming", () => {
    const r = normalizePrompt([{ role: "system", content: " \n\t" }, { role: "user", content: "u" }])
    expect(Either.isLeft(r) && r.left.field).toBe("messages[0].content")
  })
  it("rejects non-string content", () => {
    const r = normalizePrompt([{ role: "user", content: [{ type: "text", text: "u" }] }])
    expect(Either.isLeft(r) && r.left.field).toBe("messages[0].content")
  })
  it("requires exactly one user message", () => {
    const two = normalizePrompt([{ role: "user", content: "a" }, { role: "user", content: "b" }])
    const none = normalizePrompt([{ role: "system", content: "a" }])
    expect(Either.isLeft(two) && two.left.reason).toMatch(/exactly one user message, found 2/)
    expect(Either.isLeft(none) && none.left.reason).toMatch(/found 0/)
  })
  it("requires the user message to be last", () => {
    const r = normalizePrompt([{ role: "user", content: "a" }, { role: "system", content: "b" }])
    expect(Either.isLeft(r) && r.left.reason).toMatch(/last/)
  })
  it("keeps a given system message and generates one when absent", () => {
    const withSystem = Either.getOrThrow(
      convertTask({ ...base(), messages: [{ role: "system", content: "S" }, { role: "user", content: "U" }] })
    )
    expect(withSystem.prompt.map((m) => m.content)).toEqual(["S", "U"])
    const without = Either.getOrThrow(convertTask({ ...base(), messages: [{ role: "user", content: " U " }] }))
    expect(without.prompt.map((m) => m.role)).toEqual(["system", "user"])
    expect(without.prompt[1].content).toBe("U")
  })
  it("givenSystem add-tools: a system message that lists no tool gets the offered tools after its text", () => {
    const task = (system: string) => ({
      ...base(),
      messages: [{ role: "system", content: system }, { role: "user", content: "U" }]
    })
    const added = Either.getOrThrow(
      convertTask(task(" You are a research agent. "), { inventory, givenSystem: "add-tools" })
    )
    const system = added.prompt[0].content
    expect(system.startsWith(`You are a research agent.\n\nTo call a tool, reply with exactly: ${TOOL_CALL_SYNTAX}\n`))
      .toBe(true)
    expect(system).not.toContain("Today is")
    for (const t of added.reward_spec.ground_truth.available_tools) expect(system).toContain(`\n- ${t.call_name}(`)
    expect(added.reward_spec.ground_truth.available_tools).toHaveLength(25)
    expect(added.extra_info.task_metadata.system_prompt_origin).toBe("source_with_tools")
    // Kept as given: by default, and when the message lists tools (a <tools> block, or skyrl's own listing).
    const kept = Either.getOrThrow(convertTask(task("S"), { inventory }))
    expect(kept.prompt[0].content).toBe("S")
    expect(kept.extra_info.task_metadata.system_prompt_origin).toBe("source")
    const block = "Tools: <tools>[{\"name\": \"fmp_get_quote\", \"parameters\": {}}]</tools>"
    expect(Either.getOrThrow(convertTask(task(block), { inventory, givenSystem: "add-tools" })).prompt[0].content)
      .toBe(block)
    expect(Either.getOrThrow(convertTask(task(system), { inventory, givenSystem: "add-tools" })).prompt[0].content)
      .toBe(system)
  })
  it("a system message with its own <tools> block offers the inventory tools it lists, as enrich does, not all", () => {
    // The bundled ShareGPT log's row 1 lists 7 tools, 4 of them the inventory's (slack's 3, tavily_search). Its row
    // offered all 25 inventory tools in available_tools (and prompt_tools 25), 21 of which the policy never sees.
    const chat = JSON.parse(readFileSync(join(FIXTURES, "sharegpt", "sample_data.json"), "utf8"))[1]
    const system: string = chat[0].value
    const task = (plan: ReadonlyArray<Record<string, unknown>>, content = system) => ({
      task_id: "chat-1",
      messages: [{ role: "system", content }, { role: "user", content: chat[1].value }],
      tool_sequence: plan,
      evaluation_rubric: rubric
    })
    const search = { server: "tavily", tool: "tavily_search", params: { query: "MSFT news" } }
    const post = {
      server: "slack",
      tool: "send_slack_message",
      params: { channel: "general", message: "summary" },
      depends_on: [1],
      derived_params: ["message"]
    }
    const offered = (row: ReturnType<typeof convertTask>) =>
      Either.getOrThrow(row).reward_spec.ground_truth.available_tools.map((t) => `${t.server}/${t.tool}`)
    const row = Either.getOrThrow(convertTask(task([search, post]), { inventory }))
    expect(offered(Either.right(row))).toEqual([
      "slack/list_slack_channels",
      "slack/send_slack_message",
      "slack/get_slack_channel_history",
      "tavily/tavily_search"
    ])
    expect(row.extra_info.task_metadata.prompt_tools).toBe(4)
    expect(row.prompt[0].content).toBe(system.trim()) // kept as it is
    expect(Object.keys(row.reward_spec.ground_truth.tool_schemas)).toEqual(["send_slack_message", "tavily_search"])
    // A plan tool the block does not list is offered all the same (in the inventory's order): its call name must
    // be among available_tools, and `validate` warns that the prompt never shows it (prompt/tools-not-shown).
    expect(offered(convertTask(task([{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "NVDA" } }, post]), {
      inventory
    }))).toEqual([
      "fmp/fmp_get_quote",
      "slack/list_slack_channels",
      "slack/send_slack_message",
      "slack/get_slack_channel_history",
      "tavily/tavily_search"
    ])
    // Without a <tools> block, the whole inventory as before; enrich's rows (narrowed inventory) are unchanged.
    expect(offered(convertTask(task([search, post], "You are a research agent."), { inventory }))).toHaveLength(25)
  })
  it("givenSystem add-tools: the budget counts the source's text; a prompt that cannot fit is refused", () => {
    const messages = [{ role: "system", content: "You are a research agent." }, { role: "user", content: "U" }]
    const tight = Either.getOrThrow(
      convertTask({ ...base(), messages }, { inventory, givenSystem: "add-tools", maxPromptTokens: 300 })
    )
    expect(chatPromptTokens(tight.prompt)).toBeLessThanOrEqual(300)
    expect(tight.reward_spec.ground_truth.available_tools.length).toBeLessThan(25)
    const refused = convertTask({ ...base(), messages }, { inventory, givenSystem: "add-tools", maxPromptTokens: 60 })
    expect(Either.isLeft(refused) && refused.left.message).toMatch(/over the budget of 60 prompt tokens/)
  })
})

describe("toSkyRLSample: plan, defaults and layout", () => {
  it("renumbers steps 1..n in plan order and offers every inventory tool in the inventory's order", () => {
    const row = Either.getOrThrow(convertTask(base(), { inventory }))
    const gt = row.reward_spec.ground_truth
    expect(gt.tool_sequence.map((s) => [s.step, s.tool, s.call_name, s.params])).toEqual([
      [1, "fmp_get_quote", "fmp_get_quote", { symbol: "AAPL" }],
      [2, "polygon_get_news", "polygon_get_news", { ticker: "AAPL", limit: 3 }],
      [3, "fmp_get_quote", "fmp_get_quote", { symbol: "MSFT" }]
    ])
    const system = row.prompt[0].content
    const listed = system.split("\n").filter((l) => l.startsWith("- ")).map((l) => l.slice(2).split("(")[0])
    const inventoryOrder = inventory.servers.flatMap((s) => s.tools.map((t) => t.name))
    expect(listed).toEqual(inventoryOrder)
    expect(gt.available_tools.map((t) => t.tool)).toEqual(inventoryOrder)
    expect(row.extra_info.task_metadata.prompt_tools).toBe(25)
    expect(system).toContain(TOOL_CALL_SYNTAX)
    // Signatures come from the inventory schema: required params plain, optional with "?".
    expect(system).toContain("polygon_get_news(ticker: string, limit?: integer)")
    // The plan tools' schemas (by call name) and schema hashes travel with the row.
    expect(Object.keys(gt.tool_schemas)).toEqual(["fmp_get_quote", "polygon_get_news"])
    expect(gt.tool_sequence[0].schema_hash).toMatch(/^[0-9a-f]{64}$/)
    expect(Either.getOrThrow(convertTask(base())).reward_spec.ground_truth.tool_sequence[0].schema_hash).toBe("")
  })
  it("refuses a depends_on that renumbering would point at another step (it was silently moved to the next step)", () => {
    const search = { server: "fmp", tool: "fmp_search_ticker", params: { query: "Palantir", limit: 3 } }
    const derived = (tool: string, step: number, on: number) => ({
      step,
      server: "fmp",
      tool,
      params: { symbol: "PLTR" },
      depends_on: [on],
      derived_params: ["symbol"]
    })
    const task = {
      ...base(),
      tool_sequence: [
        { step: 1, ...search },
        derived("fmp_get_quote", 3, 1),
        derived("fmp_get_company_profile", 4, 1),
        // The step numbered 3 (the quote); renumbered, step 3 is the company profile.
        derived("fmp_get_income_statement", 5, 3)
      ]
    }
    const e = fieldOf(task)
    expect(e.field).toBe("tool_sequence[3].depends_on")
    expect(e.reason).toContain("names step 3, which is the plan's step 2 by the steps' own numbers (1, 3, 4, 5)")
    // Numbered 1..n, or a depends_on naming no given number (plan positions), converts as before.
    const numbered = { ...task, tool_sequence: task.tool_sequence.map((s, i) => ({ ...s, step: i + 1 })) }
    expect(Either.isRight(convertTask(numbered, { inventory }))).toBe(true)
    const byPosition = { ...task, tool_sequence: task.tool_sequence.map((s, i) => ({ ...s, step: 10 + i })) }
    expect(Either.isRight(convertTask(byPosition, { inventory }))).toBe(true)
  })
  it("refuses steps numbered 1..n in another order than the list's (before: run in the list's order, silently)", () => {
    const steps = base().tool_sequence
    const permuted = { ...base(), tool_sequence: steps.map((s, i) => ({ ...s, step: [2, 1, 3][i] })) }
    const e = fieldOf(permuted)
    expect(e.field).toBe("tool_sequence[0].step")
    expect(e.reason).toContain("is 2, but the list holds it as step 1: the steps' numbers (2, 1, 3) give another order")
    // Without numbers, numbered in the list's order, with gaps or some left out: the list's order, as before.
    for (const numbers of [undefined, [1, 2, 3], [1, 5, 9], [3, 4, 5], [1, undefined, 3]]) {
      const task = {
        ...base(),
        tool_sequence: steps.map(({ step: _step, ...s }, i) => (numbers === undefined ? s : { ...s, step: numbers[i] }))
      }
      const row = Either.getOrThrow(convertTask(task, { inventory }))
      expect(row.reward_spec.ground_truth.tool_sequence.map((s) => s.params)).toEqual(steps.map((s) => s.params))
    }
  })
  it("refuses a step number that is not a positive integer, naming the step (before: passed over)", () => {
    for (
      const [value, shown] of [
        ["abc", "\"abc\""],
        [{}, "an object"],
        [true, "true"],
        [-1, "-1"],
        [1.5, "1.5"],
        [
          0,
          "0"
        ],
        [null, "null"],
        [Infinity, "Infinity"]
      ] as const
    ) {
      const t = base()
      const e = fieldOf({ ...t, tool_sequence: [t.tool_sequence[0], { ...t.tool_sequence[1], step: value }] })
      expect([e.field, e.reason]).toEqual([
        "tool_sequence[1].step",
        `must be a positive integer (the step's number: 1..n in plan order; or leave it out), got ${shown}`
      ])
    }
  })
  it("refuses two steps of one number, naming both (before: renumbered without a word)", () => {
    const t = base()
    const e = fieldOf({ ...t, tool_sequence: t.tool_sequence.map((s, i) => ({ ...s, step: [1, 2, 1][i] })) })
    expect([e.field, e.reason]).toEqual([
      "tool_sequence[2].step",
      "is 1, as is tool_sequence[0].step: each step has a number of its own (1..n in plan order), which depends_on names"
    ])
  })
  it("applies defaults: complexity from the calls, max_turns, limits, must_call_tool", () => {
    const gt = Either.getOrThrow(convertTask(base())).reward_spec.ground_truth
    expect(gt.complexity).toBe("moderate") // 3 calls
    expect(gt.max_turns).toBe(5) // 3 steps + 2
    expect(gt.limits).toEqual({ max_tools: 2, max_servers: 2 })
    expect(gt.success.must_call_tool).toBe("fmp_get_quote")
    const one = { ...base(), tool_sequence: [base().tool_sequence[0]] }
    expect(Either.getOrThrow(convertTask(one)).reward_spec.ground_truth.max_turns).toBe(4) // max(1 + 2, 4)
    expect(Either.getOrThrow(convertTask(one)).reward_spec.ground_truth.complexity).toBe("simple")
  })
  it("complexity follows the number of calls: simple 1-2, moderate 3-4, complex 5+", () => {
    expect([1, 2, 3, 4, 5, 9].map(complexityOf)).toEqual([
      "simple",
      "simple",
      "moderate",
      "moderate",
      "complex",
      "complex"
    ])
    expect(complexityMismatch("moderate", 4)).toBeUndefined()
    expect(complexityMismatch("complex", 1)).toBe("labelled complex (5 or more calls) but the plan has 1 call (simple)")
  })
  it("keeps given values and rejects ones that contradict the plan", () => {
    const given = { ...base(), complexity: "complex", max_turns: 9, limits: { max_tools: 4, max_servers: 3 } }
    const gt = Either.getOrThrow(convertTask(given)).reward_spec.ground_truth
    expect([gt.complexity, gt.max_turns, gt.limits.max_tools]).toEqual(["complex", 9, 4])
    expect(fieldOf({ ...base(), limits: { max_tools: 1, max_servers: 5 } }).field).toBe("limits.max_tools")
    expect(fieldOf({ ...base(), success: { must_call_tool: "tavily_search" } }).field).toBe("success.must_call_tool")
    expect(fieldOf({ ...base(), complexity: "hard" }).field).toBe("complexity")
  })
  it("raises a given max_turns below steps + 1 to steps + 1 (one call per turn, then the answer), keeping the given", () => {
    // base() has 3 steps: the plan needs 4 turns.
    for (const given of [1, 2, 3]) {
      const row = Either.getOrThrow(convertTask({ ...base(), max_turns: given }))
      expect(row.reward_spec.ground_truth.max_turns).toBe(4)
      expect(row.extra_info.task_metadata.max_turns_given).toBe(given)
    }
    for (const given of [4, 7]) {
      const row = Either.getOrThrow(convertTask({ ...base(), max_turns: given }))
      expect(row.reward_spec.ground_truth.max_turns).toBe(given)
      expect(row.extra_info.task_metadata).not.toHaveProperty("max_turns_given")
    }
    expect(Either.getOrThrow(convertTask(base())).extra_info.task_metadata).not.toHaveProperty("max_turns_given")
  })
  it("`skyrl convert` of tsla_daily_headline_update_001 (max_turns 3 for 3 calls) writes 4 turns and warns", async () => {
    const file = join(FIXTURES, "openai", "chat", "20251006T010959218268Z_task_0006.json")
    const task = JSON.parse(JSON.parse(readFileSync(file, "utf8")).choices[0].message.content)
    expect([task.task_id, task.max_turns, task.tool_sequence.length]).toEqual(["tsla_daily_headline_update_001", 3, 3])
    const out = join(mkdtempSync(join(tmpdir(), "skyrl-convert-")), "rows.jsonl")
    const r = await runCli(["convert", file, "--out", out])
    expect(r.status, r.stderr).toBe(0)
    const [row] = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    expect(row.reward_spec.ground_truth.max_turns).toBe(4)
    expect(JSON.parse(row.extra_info.task_metadata).max_turns_given).toBe(3)
    expect(r.stderr).toMatch(
      /WARN .*task 0 \(tsla_daily_headline_update_001\): max_turns 3 raised to 4: its 3 steps, one call per turn, and the final answer need 4/
    )
  })
  it("carries the rubric and the metadata, fixes env_class, and sets data_source", () => {
    const row = Either.getOrThrow(
      convertTask(
        { ...base(), domain: "equities", assumptions: "market open" },
        { dataSource: "mine/v1", metadata: { model: "gpt-5-mini", run_id: "r1", seed: 7, reasoning_tokens: 12 } }
      )
    )
    expect(row.env_class).toBe(ENV_CLASS)
    expect(row.data_source).toBe("mine/v1")
    expect(row.reward_spec.ground_truth.rubric.criteria[0].name).toBe("c")
    const md = row.extra_info.task_metadata
    expect([md.model, md.run_id, md.seed, md.reasoning_tokens, md.domain]).toEqual([
      "gpt-5-mini",
      "r1",
      7,
      12,
      "equities"
    ])
    expect(md.assumptions).toEqual(["market open"])
    expect(md.system_prompt_chars).toBe(row.prompt[0].content.length)
    expect(md.system_prompt_tokens_est).toBe(textTokens(row.prompt[0].content))
    expect(md.prompt_tokens_est).toBe(chatPromptTokens(row.prompt))
  })
  it("derives a stable task_id from the prompt when none is given", () => {
    const { task_id: _, ...t } = base()
    const a = Either.getOrThrow(convertTask(t)).reward_spec.ground_truth.task_id
    const b = Either.getOrThrow(convertTask(t)).reward_spec.ground_truth.task_id
    const c = Either.getOrThrow(convertTask({ ...t, user_prompt: "other" })).reward_spec.ground_truth.task_id
    expect(a).toBe(b)
    expect(a).not.toBe(c)
  })
  it("takes as_of from the context, else the task's as_of, else its generated_at date, else today", () => {
    const asOf = (task: object, context: object) => {
      const row = Either.getOrThrow(convertTask({ ...base(), ...task }, context))
      const line = row.prompt[0].content.split("\n").find((l) => l.startsWith("Today is"))
      expect(line).toBe(`Today is ${row.extra_info.task_metadata.as_of}.`)
      return row.extra_info.task_metadata.as_of
    }
    expect(asOf({ as_of: "2025-01-02" }, { asOf: "2026-11-30", today: "2027-01-01" })).toBe("2026-11-30")
    expect(asOf({ as_of: "2025-01-02", generated_at: "2025-03-04T05:06:07Z" }, { today: "2027-01-01" })).toBe(
      "2025-01-02"
    )
    expect(asOf({ generated_at: "2025-03-04T05:06:07Z" }, { today: "2027-01-01" })).toBe("2025-03-04")
    expect(asOf({}, { today: "2027-01-01" })).toBe("2027-01-01")
    expect(fieldOf({ ...base(), as_of: "next week" }).field).toBe("as_of")
    // No such day: rejected (it was written as "Today is 2025-13-45." in the prompt).
    expect(fieldOf({ ...base(), as_of: "2025-13-45" }).field).toBe("as_of")
    expect(fieldOf({ ...base(), as_of: "2025-02-30" }).field).toBe("as_of")
    // A generated_at whose date is no day is refused when its date is read (before: passed over for today).
    for (
      const [generated_at, shown] of [["2025-99-01T00:00:00Z", "\"2025-99-01T00:00:00Z\""], ["garbage", "\"garbage\""]]
    ) {
      const e = fieldOf({ ...base(), generated_at })
      expect([e.field, e.reason]).toEqual([
        "generated_at",
        `must be an ISO date or timestamp starting with a real day YYYY-MM-DD (its date is the prompt's as_of), got ${shown}`
      ])
      expect(asOf({ generated_at, as_of: "2025-01-02" }, { today: "2027-01-01" })).toBe("2025-01-02")
      expect(asOf({ generated_at }, { asOf: "2026-11-30", today: "2027-01-01" })).toBe("2026-11-30")
    }
  })
  it("encodes params and task_metadata as JSON strings and decodes them back", () => {
    const row = Either.getOrThrow(convertTask(base(), { metadata: { generated_at: "2025-09-06" } }))
    const encoded = encodeRow(row)
    const step = encoded.reward_spec.ground_truth.tool_sequence[1]
    expect(typeof step.params).toBe("string")
    expect(JSON.parse(step.params)).toEqual({ ticker: "AAPL", limit: 3 })
    expect(typeof encoded.extra_info.task_metadata).toBe("string")
    const back = Either.getOrThrow(decodeRow(JSON.parse(JSON.stringify(encoded))))
    expect(back.reward_spec.ground_truth.tool_sequence[1].params).toEqual({ ticker: "AAPL", limit: 3 })
    expect(back.extra_info.task_metadata.generated_at).toBe("2025-09-06")
  })
  it("has an Effect form that fails with a typed ConversionError", () => {
    const task = Either.getOrThrow(decodeTask(base()))
    const ok = Effect.runSyncExit(toSkyRLSampleEffect(task))
    expect(Exit.isSuccess(ok)).toBe(true)
    const failing = Either.getOrThrow(decodeTask({ ...base(), limits: { max_tools: 1, max_servers: 5 } }))
    const exit = Effect.runSyncExit(Effect.flip(toSkyRLSampleEffect(failing)))
    expect(Exit.isSuccess(exit) && exit.value._tag).toBe("ConversionError")
  })
})

describe("the 7 recorded answers", () => {
  const dir = join(FIXTURES, "openai", "chat")
  const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort()
  it("has all 7 recordings", () => expect(files).toHaveLength(7))
  for (const f of files) {
    it(`${f} converts or is rejected with the field named`, () => {
      const body = JSON.parse(readFileSync(join(dir, f), "utf8"))
      const task = JSON.parse(body.choices[0].message.content)
      const result = convertTask(task, { inventory })
      if (Either.isRight(result)) {
        const gt = result.right.reward_spec.ground_truth
        expect(gt.tool_sequence.map((s) => s.tool)).toEqual(task.tool_sequence.map((s: any) => s.tool))
        expect(gt.tool_sequence.map((s) => s.params)).toEqual(task.tool_sequence.map((s: any) => s.params))
        expect(result.right.prompt[1].content).toBe(task.user_prompt.trim())
        expect(gt.task_id).toBe(task.task_id)
      } else {
        // The reason names a real field of the task.
        const top = result.left.field.split(/[.[]/)[0]
        expect(Object.keys(task)).toContain(top)
      }
    })
  }
  it("rejects the one whose limits contradict its plan (max_servers 1, two servers)", () => {
    const body = JSON.parse(readFileSync(join(dir, "20250930T002439632892Z_task_0001.json"), "utf8"))
    const task = JSON.parse(body.choices[0].message.content)
    const servers = new Set(task.tool_sequence.map((s: any) => s.server)).size
    expect(task.limits.max_servers).toBeLessThan(servers)
    expect(fieldOf(task).field).toBe("limits.max_servers")
  })
})

describe("encodeRow", () => {
  it("writes exactly what the Schema encoder writes (keys and order), for every recorded answer", () => {
    const dir = join(FIXTURES, "openai", "chat")
    const rows = readdirSync(dir).sort().flatMap((f) => {
      const task = JSON.parse(JSON.parse(readFileSync(join(dir, f), "utf8")).choices[0].message.content)
      const r = convertTask(task, {
        inventory,
        metadata: { model: "m", run_id: "r", seed: 1, extra_key: { nested: [1, 2] }, generated_at: "2025-01-01" }
      })
      return Either.isRight(r) ? [r.right] : []
    })
    expect(rows.length).toBeGreaterThan(3)
    for (const row of rows) expect(JSON.stringify(encodeRow(row))).toBe(JSON.stringify(encodeRowWithSchema(row)))
  })

  it("is written as JSON.stringify writes it (writeEncodedRowJson, what .jsonl files hold), shared pieces included", () => {
    const dir = join(FIXTURES, "openai", "chat")
    const tasks = [
      ...readdirSync(dir).sort().map((f) =>
        JSON.parse(JSON.parse(readFileSync(join(dir, f), "utf8")).choices[0].message.content)
      ),
      { ...base(), user_prompt: "Quote \"NVDA\" — naïve café 😀\\ \u0001 tab\t", max_turns: 300 },
      ...[3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 99, 255, 256].map((max_turns) => ({ ...base(), max_turns }))
    ]
    let compared = 0
    for (const task of tasks) {
      for (const context of [{ inventory }, { inventory, maxPromptTokens: 200 }, {}]) {
        const r = convertTask(task, { ...context, metadata: { model: "m", extra: { n: [1, 2.5] } } })
        if (Either.isLeft(r)) continue
        const encoded = encodeRow(r.right)
        // A row whose available_tools is not the shared (frozen) list takes the per-row path.
        const unshared = {
          ...encoded,
          reward_spec: {
            ...encoded.reward_spec,
            ground_truth: { ...encoded.reward_spec.ground_truth, available_tools: [] as const }
          }
        }
        for (const row of [encoded, unshared]) {
          const pieces: Array<string> = []
          writeEncodedRowJson(row, { text: (t) => pieces.push(t), shared: (t) => pieces.push(t) }, "\n")
          expect(pieces.join("")).toBe(JSON.stringify(row) + "\n")
          expect(encodedRowJson(row)).toBe(JSON.stringify(row))
          compared++
        }
      }
    }
    expect(compared).toBeGreaterThan(10)
  })
})

describe("decodeTask of a SkyRL row", () => {
  it("says the object is a row, not a task, and which commands take rows (was: 'user_prompt: is missing')", () => {
    const row = encodeRow(Either.getOrThrow(convertTask(base(), { inventory })))
    const failed = decodeTask(row)
    expect(Either.isLeft(failed)).toBe(true)
    const error = Either.flip(failed).pipe(Either.getOrThrow)
    expect(error.field).toBe("user_prompt")
    expect(error.reason).toBe(
      "is missing: this is a SkyRL row (it has prompt and reward_spec), not a task; `skyrl validate` checks rows, " +
        "`skyrl enrich --overwrite` plans them again"
    )
  })
})

describe("objects made without the Schema constructors (decodeTask by hand, trusted rows)", () => {
  const dir = join(FIXTURES, "openai", "chat")
  const tasks = [
    base(),
    { ...base(), limits: { max_tools: 3, max_servers: 2 }, success: { must_call_tool: "fmp_get_quote" } },
    {
      ...base(),
      assumptions: ["a"],
      tool_sequence: [
        { server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } },
        {
          server: "polygon",
          tool: "polygon_get_news",
          params: { ticker: "AAPL", limit: 3 },
          depends_on: [1],
          derived_params: ["ticker"]
        }
      ]
    },
    ...readdirSync(dir).sort().map((f) =>
      JSON.parse(JSON.parse(readFileSync(join(dir, f), "utf8")).choices[0].message.content)
    )
  ]

  it("decodeTask gives the instances the Task Schema decodes (steps numbered in plan order)", async () => {
    const { Task } = await import("../src/domain/task.js")
    let compared = 0
    for (const raw of tasks) {
      const input = normalizeTaskInput(raw) as { tool_sequence: Array<object> }
      const renumbered = { ...input, tool_sequence: input.tool_sequence.map((s, i) => ({ ...s, step: i + 1 })) }
      const bySchema = Schema.decodeUnknownEither(Task)(renumbered)
      const decoded = decodeTask(raw)
      expect(Either.isRight(decoded)).toBe(Either.isRight(bySchema))
      if (Either.isRight(decoded) && Either.isRight(bySchema)) {
        expect(decoded.right).toStrictEqual(bySchema.right)
        compared++
      }
    }
    expect(compared).toBeGreaterThan(5)
  })

  it("a converted row equals the same row made again by the row Schema (same classes, same fields)", async () => {
    const { SkyRLRow } = await import("../src/domain/row.js")
    let compared = 0
    for (const raw of tasks) {
      const row = convertTask(raw, { inventory, metadata: { model: "m", run_id: "r" } })
      if (Either.isLeft(row)) continue
      const again = Schema.decodeUnknownSync(SkyRLRow)(Schema.encodeSync(SkyRLRow)(row.right))
      expect(row.right).toStrictEqual(again)
      compared++
    }
    expect(compared).toBeGreaterThan(5)
  })
})

describe("convertTask: the task's fields skyrl does not read", () => {
  const base = {
    task_id: "own",
    user_prompt: "Quote AAPL for me",
    tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }],
    rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
  }
  const metadataOf = (task: unknown) =>
    JSON.parse(encodeRow(Either.getOrThrow(convertTask(task, { inventory }))).extra_info.task_metadata)

  it("are kept in task_metadata.task_fields, last, as given; a task without any gets no such key", () => {
    expect(Object.keys(metadataOf(base))).not.toContain("task_fields")
    const text = JSON.stringify({ ...base, category: "quotes", difficulty: 3 }).slice(0, -1) +
      `,"__proto__":{"polluted":true},"nested":{"a":[1,{"b":null}]}}`
    const metadata = metadataOf(JSON.parse(text))
    expect(Object.keys(metadata).at(-1)).toBe("task_fields")
    expect(Object.keys(metadata.task_fields)).toEqual(["category", "difficulty", "__proto__", "nested"])
    expect(metadata.task_fields.category).toBe("quotes")
    expect(metadata.task_fields.difficulty).toBe(3)
    expect(metadata.task_fields.nested).toEqual({ a: [1, { b: null }] })
    expect(Object.getOwnPropertyDescriptor(metadata.task_fields, "__proto__")?.value).toEqual({ polluted: true })
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })
})
