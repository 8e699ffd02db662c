import { describe, expect, it } from "vitest"
import { InventoryServer, InventoryTool } from "../src/domain/inventory.js"
import { Inventory } from "../src/domain/inventory.js"
import { focusToolMissing, focusTools, needsEarlierResult } from "../src/skyrl/focusTools.js"
import { DEFAULT_PERSONAS, TASK_STYLES } from "../src/skyrl/personas.js"
import { renderSampleBrief } from "../src/skyrl/sampleBrief.js"
import { paramHint, pickValueHints, renderValueRule, valueHints } from "../src/skyrl/valueHints.js"
import { diverseWorkPlan, parseComplexities } from "../src/skyrl/workPlan.js"
import { expectNoFinanceWords, financeWordsIn } from "./support/financeWords.js"
import { loadInventory } from "./support/inventories.js"

const finance = loadInventory("finance-mcp")
const everything = loadInventory("everything")

const inventoryOf = (tools: ReadonlyArray<{ name: string; inputSchema: Record<string, unknown> }>) =>
  new Inventory({
    servers: [
      new InventoryServer({
        name: "srv",
        tools: tools.map((t) => new InventoryTool({ name: t.name, description: "", inputSchema: t.inputSchema }))
      })
    ]
  })

describe("focus tools: which tools can start a plan", () => {
  it("finds the two finance tools whose required params come from another tool", () => {
    const blocked = focusTools(finance).filter((t) => t.needs.length > 0)
    expect(blocked).toEqual([
      { server: "python_execution", tool: "process_mcp_data", needs: ["data"] },
      { server: "slack", tool: "get_slack_channel_history", needs: ["channel_id"] }
    ])
    expect(focusTools(finance).length).toBe(25)
  })

  it("lets every server-everything tool start a plan", () => {
    expect(focusTools(everything).map((t) => t.needs.length)).toEqual(Array(13).fill(0))
  })

  it("applies the rule: annotation, then offered values, then identifier names and 'from elsewhere' wording", () => {
    expect(needsEarlierResult("query", { type: "string", "x-skyrl-derived": true })).toBe(true)
    expect(needsEarlierResult("channel_id", { type: "string", "x-skyrl-derived": false })).toBe(false)
    expect(needsEarlierResult("user_id", { type: "string", default: "me" })).toBe(false)
    expect(needsEarlierResult("orderId", { type: "string", description: "Order id, e.g. 'A-1'" })).toBe(false)
    expect(needsEarlierResult("orderId", { type: "string" })).toBe(true)
    expect(needsEarlierResult("ids", { type: "array" })).toBe(true)
    expect(needsEarlierResult("video", { type: "string" })).toBe(false)
    expect(needsEarlierResult("rows", { type: "string", description: "Rows returned by the query tool" })).toBe(true)
    expect(needsEarlierResult("path", { type: "string", description: "File path" })).toBe(false)
  })

  it("ignores optional params", () => {
    const inv = inventoryOf([{
      name: "history",
      inputSchema: { type: "object", properties: { thread_id: { type: "string" }, q: { type: "string" } } }
    }])
    expect(focusTools(inv)).toEqual([{ server: "srv", tool: "history", needs: [] }])
  })

  it("says when a plan misses its focus tool", () => {
    const steps = [{ server: "fmp", tool: "fmp_get_quote" }, { server: "slack", tool: "send_slack_message" }]
    expect(focusToolMissing(steps, { server: "slack", tool: "send_slack_message" })).toBeUndefined()
    expect(focusToolMissing(steps, { server: "tavily", tool: "tavily_search" })).toBe(
      "the plan must call the focus tool tavily_search (server tavily); it calls fmp_get_quote, send_slack_message"
    )
    expect(focusToolMissing(steps, { server: "other", tool: "fmp_get_quote" })).toMatch(/must call the focus tool/)
  })
})

describe("value hints from the tools' own schemas", () => {
  it("reads examples, enums, quoted choices, formats, defaults and ranges", () => {
    expect(paramHint({ type: "string", examples: ["/tmp/a.txt", "/etc/hosts", "x"] })).toEqual({
      source: "example",
      text: "\"/tmp/a.txt\" or \"/etc/hosts\""
    })
    expect(paramHint({ type: "string", description: "Stock ticker symbol (e.g., 'AAPL')" })).toEqual({
      source: "example",
      text: "\"AAPL\""
    })
    expect(paramHint({ type: "string", description: "City, for example Lisbon." })).toEqual({
      source: "example",
      text: "\"Lisbon\""
    })
    expect(paramHint({ enum: ["a", "b", "c", "d"] })).toEqual({
      source: "enum",
      text: "one of \"a\", \"b\", \"c\", ..."
    })
    expect(paramHint({ type: "string", description: "Kind: 'summary' or 'trend'" })).toEqual({
      source: "enum",
      text: "one of \"summary\", \"trend\""
    })
    expect(paramHint({ type: "string", description: "the user's name and the team's id" })).toBeUndefined()
    expect(paramHint({ type: "string", format: "date" })).toEqual({ source: "format", text: "a date as YYYY-MM-DD" })
    expect(paramHint({ type: "string", description: "Start date in YYYY-MM-DD format" })).toEqual({
      source: "format",
      text: "formatted YYYY-MM-DD"
    })
    expect(paramHint({ type: "integer", default: 10 })).toEqual({ source: "default", text: "like 10" })
    expect(paramHint({ type: "number", minimum: 1, maximum: 10 })).toEqual({
      source: "range",
      text: "between 1 and 10"
    })
    expect(paramHint({ type: "string", description: "Message to echo" })).toBeUndefined()
  })

  it("lists one hint per param that has one, in catalogue order", () => {
    const hints = valueHints(everything)
    expect(hints.length).toBe(12)
    expect(hints[0]).toEqual({
      server: "everything",
      tool: "get-annotated-message",
      param: "messageType",
      source: "enum",
      text: "one of \"error\", \"success\", \"debug\""
    })
  })

  it("picks telling hints first, without repeating a param or a value", () => {
    const picked = pickValueHints(valueHints(finance), 4)
    expect(picked.map((h) => `${h.param} ${h.text}`)).toEqual([
      "symbol \"AAPL\"",
      "start_date formatted YYYY-MM-DD",
      "analysis_type one of \"summary\", \"trend\", \"correlation\", ...",
      "search_depth one of \"basic\", \"advanced\""
    ])
  })

  it("writes the value rule from the inventory: no ticker or channel for server-everything", () => {
    const rule = renderValueRule(everything)
    expect(rule).toContain("location one of \"New York\", \"Chicago\", \"Los Angeles\"")
    expect(rule).toContain("No placeholders")
    expectNoFinanceWords(rule, everything)
    expect(renderValueRule(inventoryOf([{ name: "t", inputSchema: { type: "object" } }]))).not.toContain("e.g.")
  })
})

describe("finance words (test helper)", () => {
  // Frozen copy of the finance-flavoured lines of today's shared instructions and sample request
  // (src/skyrl/generationPrompt.ts) and of DEFAULT_DOMAINS (src/skyrl/workPlan.ts).
  const today = [
    "- Every param value is concrete and realistic: real tickers and company names, dates as YYYY-MM-DD,",
    "  real-looking channel names and queries.",
    "- assumptions: facts the task takes for granted (e.g. market hours, a channel that exists); may be empty.",
    "Pick a subject (company, ticker, topic, channel) other tasks in this domain would not pick first.",
    "Domain: equity research. Domain: market monitoring. Domain: news and sentiment.",
    "Domain: quantitative analysis with python. Domain: team reporting on slack. Domain: web research on companies."
  ].join("\n")

  it("finds every finance word of today's instructions in a request for server-everything", () => {
    expect(financeWordsIn(today, everything)).toEqual([
      "ticker",
      "tickers",
      "company",
      "companies",
      "channel",
      "market",
      "equity",
      "sentiment",
      "news",
      "quantitative",
      "python",
      "slack"
    ])
  })

  it("does not count words the inventory itself uses", () => {
    expect(financeWordsIn("Get the stock ticker and post it to the channel", finance)).toEqual([])
    expect(financeWordsIn("Get the stock ticker", everything)).toEqual(["ticker", "stock"])
  })
})

describe("per-sample brief", () => {
  const complexities = parseComplexities("simple,moderate,complex") as Exclude<
    ReturnType<typeof parseComplexities>,
    string
  >

  it("renders focus, style, persona, subject and what to avoid, in that order", () => {
    const lines = renderSampleBrief({
      focus: { server: "slack", tool: "get_slack_channel_history", needs: ["channel_id"] },
      style: { name: "monitoring", description: "check the current state of something against a condition" },
      persona: "a chef",
      subject: "Lisbon",
      avoid: [{
        prompt: "Find the weather\n in Lisbon  today.",
        tools: ["get_weather", "send_message"],
        subjects: ["Lisbon"],
        kind: "near-prompt"
      }]
    })
    expect(lines).toEqual([
      "Focus tool: the plan must call get_slack_channel_history (server \"slack\") as a later step, after a call whose result provides its channel_id.",
      "Task style: monitoring: check the current state of something against a condition.",
      "The user is a chef; write the request in their voice, with their goal and constraints.",
      "Subject: build the task around \"Lisbon\".",
      "Your previous answer duplicated a task already in the dataset. Write one that differs in subject and request from:",
      "- \"Find the weather in Lisbon today.\" (a very similar request; about \"Lisbon\"; tools get_weather > send_message)"
    ])
  })

  it("gives no line for an absent field and keeps the last three notes to avoid", () => {
    expect(renderSampleBrief({})).toEqual([])
    const note = (n: number) => ({ prompt: `p${n}`, tools: ["t"], kind: "plan" as const })
    const lines = renderSampleBrief({ focus: { server: "s", tool: "t", needs: [] }, avoid: [1, 2, 3, 4].map(note) })
    expect(lines[0]).toBe("Focus tool: the plan must call t (server \"s\").")
    expect(lines.slice(2)).toEqual([
      "- \"p2\" (same calls with the same values; tools t)",
      "- \"p3\" (same calls with the same values; tools t)",
      "- \"p4\" (same calls with the same values; tools t)"
    ])
    expect(renderSampleBrief({ avoid: [{ ...note(1), prompt: "x".repeat(400) }] })[1]).toHaveLength(
      "- \"".length + 160 + "\" (same calls with the same values; tools t)".length
    )
  })

  it("has no finance word for any sample of a server-everything plan", () => {
    const plan = diverseWorkPlan(7, 60, ["testing an MCP client"], complexities, {
      tools: focusTools(everything),
      styles: TASK_STYLES,
      personas: DEFAULT_PERSONAS
    })
    for (const s of plan) {
      const text = renderSampleBrief({
        focus: s.focus,
        style: s.style,
        persona: s.persona,
        subject: "a README file",
        avoid: [{ prompt: "Echo hello back to me.", tools: ["echo"], kind: "near-prompt" }]
      }).join("\n")
      expectNoFinanceWords(text, everything)
    }
  })
})
