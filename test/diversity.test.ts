import { describe, expect, it } from "vitest"
import type { DiversityReport, RowRef } from "../src/skyrl/diversity.js"
import {
  DiversityAccumulator,
  explainClusters,
  planSubjects,
  refsToExplain,
  renderDiversityText,
  stepSubjects
} from "../src/skyrl/diversity.js"
import { loadInventory } from "./support/inventories.js"

const finance = loadInventory("finance-mcp")

interface Step {
  readonly server: string
  readonly tool: string
  readonly params: Record<string, unknown>
  readonly derived?: ReadonlyArray<string>
}

/** A row in the on-disk layout (/work/spec/formats.md): params and task_metadata as JSON strings. */
const row = (prompt: string, steps: ReadonlyArray<Step>, requested?: string) => ({
  data_source: "synthetic/llm",
  prompt: [{ role: "system", content: "You are an agent." }, { role: "user", content: prompt }],
  env_class: "MCPToolEnv",
  reward_spec: {
    method: "rule",
    ground_truth: {
      task_id: "t",
      complexity: "simple",
      max_turns: 8,
      success: { must_call_tool: steps[0].tool },
      tool_sequence: steps.map((s, i) => ({
        step: i + 1,
        server: s.server,
        tool: s.tool,
        params: JSON.stringify(s.params),
        ...(s.derived === undefined ? {} : { derived_params: s.derived })
      }))
    }
  },
  extra_info: {
    task_metadata: JSON.stringify(requested === undefined ? { source: "llm" } : { requested_complexity: requested })
  }
})

const quote = (symbol: string): Step => ({ server: "fmp", tool: "fmp_get_quote", params: { symbol } })
const research: ReadonlyArray<Step> = [
  { server: "tavily", tool: "tavily_search", params: { query: "solar panel recycling", search_depth: "advanced" } },
  { server: "tavily", tool: "tavily_qna_search", params: { query: "who recycles solar panels" } },
  { server: "python_execution", tool: "execute_python", params: { code: "print(1)" } }
]
const words = (letter: string, n: number) => Array.from({ length: n }, (_, i) => `${letter}${i + 1}`)

// P0: 20 words (19 bigrams, 18 shingles); its near-duplicate changes the last word (J = 17/19).
const P0 = words("a", 20).join(" ")
const P0_NEAR = [...words("a", 19), "z1"].join(" ")
const P0_COPY = `${P0.toUpperCase()}!`

/**
 * a.jsonl rows 0-7 and b.jsonl row 0. Known by construction:
 * - prompt near-duplicates: a:0, a:2 (near), a:6 (copy) → 1 cluster of 3;
 * - identical plans: a:0 = a:2 (quote AAPL), a:3 = a:5 (research) → 2 clusters of 2;
 * - a:7 has no user message (unreadable);
 * - complexity requested → produced: a:1 moderate → simple and a:5 simple → moderate are mismatches;
 *   a:6 has no requested complexity.
 */
const FILE_A = [
  row(P0, [quote("AAPL")], "simple"),
  row(words("b", 8).join(" "), [quote("MSFT"), {
    server: "polygon",
    tool: "polygon_get_news",
    params: { ticker: "MSFT", limit: 3 }
  }], "moderate"),
  row(P0_NEAR, [quote("AAPL")], "simple"),
  row(words("c", 8).join(" "), research, "moderate"),
  row(words("d", 8).join(" "), [
    { server: "slack", tool: "list_slack_channels", params: {} },
    {
      server: "slack",
      tool: "get_slack_channel_history",
      params: { channel_id: "C123", limit: 5 },
      derived: ["channel_id"]
    },
    { server: "fmp", tool: "fmp_get_market_gainers", params: { limit: 5 } },
    { server: "fmp", tool: "fmp_get_company_profile", params: { symbol: "NVDA" } },
    { server: "slack", tool: "send_slack_message", params: { channel: "general", message: "Top gainers posted" } }
  ], "complex"),
  row(words("e", 8).join(" "), research, "simple"),
  row(P0_COPY, [quote("TSLA")]),
  { ...row("x", [quote("X")]), prompt: [{ role: "system", content: "no user message" }] }
]
const FILE_B = [
  row(words("f", 8).join(" "), [{ server: "fs", tool: "read_file", params: { path: "/etc/hosts" } }], "simple")
]

const build = (): DiversityReport => {
  const acc = new DiversityAccumulator({ inventory: finance })
  FILE_A.forEach((r, i) => acc.add(r, { file: "a.jsonl", row: i }))
  FILE_B.forEach((r, i) => acc.add(r, { file: "b.jsonl", row: i }))
  return acc.report()
}

describe("diversity report on a dataset with known duplicates, holes and mismatches", () => {
  const report = build()
  const a = (row: number): RowRef => ({ file: "a.jsonl", row })

  it("counts rows and unreadable rows", () => {
    expect(report.rows).toBe(9)
    expect(report.unreadable).toBe(1)
  })

  it("counts rows per tool, the 15 inventory tools never used and the tool the inventory lacks", () => {
    expect(report.tools.inventory).toBe(25)
    expect(report.tools.used).toBe(11)
    const rows = Object.fromEntries(report.tools.perTool.map((t) => [t.tool, t.rows]))
    expect(rows.fmp_get_quote).toBe(4)
    expect(rows.tavily_search).toBe(2)
    expect(rows.execute_python).toBe(2)
    expect(rows.send_slack_message).toBe(1)
    expect(rows.fmp_get_income_statement).toBe(0)
    expect(report.tools.perTool.length).toBe(26)
    expect(report.tools.neverUsed).toEqual([
      "fmp/fmp_get_income_statement",
      "fmp/fmp_get_market_losers",
      "fmp/fmp_search_ticker",
      "fmp/fmp_get_stock_news",
      "fmp/fmp_get_change_percent",
      "fmp/fmp_get_previous_close",
      "polygon/polygon_get_aggs",
      "polygon/polygon_get_ticker_details",
      "polygon/polygon_get_market_status",
      "polygon/polygon_get_previous_close",
      "python_execution/process_mcp_data",
      "python_execution/analyze_financial_data",
      "python_execution/create_data_pipeline",
      "python_execution/get_execution_context",
      "python_execution/store_execution_result"
    ])
    expect(report.tools.notInInventory).toEqual(["fs/read_file"])
  })

  it("counts distinct tool sequences", () => {
    expect(report.toolSequences.distinct).toBe(5)
    expect(report.toolSequences.top.slice(0, 2)).toEqual([
      { tools: ["fmp/fmp_get_quote"], rows: 3 },
      {
        tools: ["tavily/tavily_search", "tavily/tavily_qna_search", "python_execution/execute_python"],
        rows: 2
      }
    ])
  })

  it("counts distinct subjects: literal values, not derived params, enums, numbers, code or message text", () => {
    // AAPL, MSFT, solar panel recycling, who recycles solar panels, NVDA, general, TSLA, /etc/hosts
    expect(report.subjects.distinct).toBe(8)
    expect(report.subjects.top.slice(0, 3)).toEqual([
      { value: "AAPL", rows: 2 },
      { value: "solar panel recycling", rows: 2 },
      { value: "who recycles solar panels", rows: 2 }
    ])
  })

  it("computes distinct-2 of the user prompts", () => {
    // bigrams: 19 × 3 (P0, near, copy) + 7 × 5 = 92; distinct: 19 + 1 (a19 z1) + 7 × 5 = 55
    expect(report.prompts).toEqual({ bigrams: 92, distinctBigrams: 55, distinct2: 55 / 92 })
  })

  it("reports the near-duplicate prompt cluster and the identical-plan clusters with their pairs", () => {
    const nd = report.nearDuplicates
    expect(nd.threshold).toBe(0.8)
    expect(nd.prompt).toEqual({ clusters: 1, rows: 3, redundant: 2 })
    expect(nd.plan).toEqual({ clusters: 2, rows: 4, redundant: 2 })
    expect(nd.clusters.map((c) => [c.kind, c.size, c.members])).toEqual([
      ["near-prompt", 3, [a(0), a(2), a(6)]],
      ["plan", 2, [a(0), a(2)]],
      ["plan", 2, [a(3), a(5)]]
    ])
    expect(nd.clusters[0].pairs.map((p) => [p.a.row, p.b.row])).toEqual([[0, 2], [0, 6], [2, 6]])
    expect(nd.clusters[0].pairs[1].similarity).toBe(1)
  })

  it("compares requested and produced complexity", () => {
    expect(report.complexity.requested).toEqual({ simple: 4, moderate: 2, complex: 1, unknown: 1 })
    expect(report.complexity.produced).toEqual({ simple: 5, moderate: 2, complex: 1 })
    expect(report.complexity.matrix).toEqual({
      simple: { simple: 3, moderate: 1 },
      moderate: { simple: 1, moderate: 1 },
      complex: { complex: 1 },
      unknown: { simple: 1 }
    })
    expect(report.complexity.mismatches).toBe(2)
    expect(report.complexity.examples).toEqual([
      { ...a(1), requested: "moderate", produced: "simple" },
      { ...a(5), requested: "simple", produced: "moderate" }
    ])
  })

  it("is plain JSON (the --json form is the report itself)", () => {
    expect(JSON.parse(JSON.stringify(report))).toEqual(report)
  })

  it("explains near-duplicate pairs from the texts the caller reads again", () => {
    expect(refsToExplain(report)).toEqual([a(0), a(2), a(6)])
    const texts = new Map([[0, P0], [2, P0_NEAR], [6, P0_COPY]])
    const explained = explainClusters(report, (r) => (r.file === "a.jsonl" ? texts.get(r.row) : undefined))
    const first = explained.nearDuplicates.clusters[0].pairs[0]
    expect(first.jaccard).toBeCloseTo(17 / 19, 10)
    expect(first.sharedShingles?.slice(0, 2)).toEqual(["a1 a2 a3", "a2 a3 a4"])
    expect(explained.nearDuplicates.clusters[0].pairs[1].jaccard).toBe(1)
    expect(explained.nearDuplicates.clusters[1]).toEqual(report.nearDuplicates.clusters[1])
  })

  it("renders the figures as text", () => {
    const text = renderDiversityText(report)
    expect(text).toContain("Diversity (9 rows, 1 unreadable)")
    expect(text).toContain("tools: 11 used of 25 in the inventory; never used: fmp/fmp_get_income_statement,")
    expect(text).toContain("not in the inventory: fs/read_file")
    expect(text).toContain("tool sequences: 5 distinct; most common: fmp_get_quote (3)")
    expect(text).toContain("subjects: 8 distinct")
    expect(text).toContain("distinct-2 of user prompts: 0.598")
    expect(text).toContain("1 prompt clusters, 2 redundant rows; 2 identical-plan clusters, 2 redundant rows")
    expect(text).toContain("near-prompt cluster of 3: a.jsonl:0, a.jsonl:2, a.jsonl:6")
    expect(text).toContain(
      "complexity requested: simple 4, moderate 2, complex 1, unknown 1; produced: simple 5, moderate 2, complex 1"
    )
    expect(text).toContain(
      "complexity mismatches: 2 (22.2%); e.g. a.jsonl:1 moderate→simple, a.jsonl:5 simple→moderate"
    )
  })
})

describe("diversity pieces", () => {
  it("takes subjects from literal string params only", () => {
    const schema = { properties: { kind: { enum: ["a", "b"] }, sql: {}, q: { description: "a SQL query" } } }
    expect(
      stepSubjects(
        { path: "/tmp/x", id: "r1", kind: "a", n: "12", d: "2024-05-01", sql: "select 1", q: "select 2", ok: true },
        ["id"],
        schema
      )
    ).toEqual(["/tmp/x"])
    expect(stepSubjects("{\"path\":\"/tmp/x\"}", [])).toEqual([])
  })

  it("lists a plan's subjects once each, from object or JSON-text params", () => {
    const steps = [
      { server: "fmp", tool: "fmp_get_quote", params: "{\"symbol\":\"AAPL\"}" },
      { server: "polygon", tool: "polygon_get_news", params: { ticker: "aapl", limit: 3 } },
      { server: "fs", tool: "read_file", params: { path: "/a", id: "x" }, derived_params: ["id"] }
    ]
    expect(planSubjects(steps)).toEqual(["AAPL", "/a"])
  })

  it("works without an inventory (no never-used list)", () => {
    const acc = new DiversityAccumulator()
    acc.add(row("hello there friend", [quote("AAPL")]), { file: "f", row: 0 })
    const r = acc.report()
    expect(r.tools).toEqual({
      inventory: null,
      used: 1,
      perTool: [{ server: "fmp", tool: "fmp_get_quote", rows: 1 }],
      neverUsed: [],
      notInInventory: []
    })
  })
})

describe("diversity report of no rows", () => {
  it("says (none) where a list is empty (it printed 'rows per tool: ' and 'complexity requested: ; produced: ')", () => {
    const text = renderDiversityText(new DiversityAccumulator({}).report())
    expect(text.split("\n")).toEqual([
      "Diversity (0 rows)",
      "  tools: 0 used",
      "  rows per tool: (none)",
      "  tool sequences: 0 distinct; most common: (none)",
      "  subjects: 0 distinct; most common: (none)",
      "  distinct-2 of user prompts: 0.000",
      "  near-duplicates (threshold 0.8): 0 prompt clusters, 0 redundant rows; 0 identical-plan clusters, 0 redundant rows",
      "  complexity requested: (none); produced: (none)",
      "  complexity mismatches: 0"
    ])
  })
})
