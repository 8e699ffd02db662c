/**
 * Param provenance (depends_on, derived_params): what plan validation, conversion, the run checks and
 * `validate` accept and reject, and that a derived param's value is never compared anywhere.
 */
import { Either, Schema } from "effect"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Inventory } from "../src/domain/inventory.js"
import { ModelTask } from "../src/domain/task.js"
import { planIssues } from "../src/programs/runFiles.js"
import { checkRows } from "../src/skyrl/checks.js"
import { convertTask } from "../src/skyrl/convert.js"
import { encodeRow } from "../src/skyrl/layout.js"
import { decodeSteps } from "../src/skyrl/outputSchema.js"
import type { PlanStep } from "../src/skyrl/planValidation.js"
import { literalParams, validatePlan } from "../src/skyrl/planValidation.js"
import { runCli } from "./support/cli.js"

const INVENTORY_FILE = join(import.meta.dirname, "fixtures", "inventory", "finance-mcp.json")
const inventory = Schema.decodeUnknownSync(Inventory)(JSON.parse(readFileSync(INVENTORY_FILE, "utf8")))

/** Search a ticker, then quote what the search returned, then post the quote. */
const plan = (quoteSymbol = "PLTR", message = "PLTR trades at 182.40 USD."): ReadonlyArray<PlanStep> => [
  { step: 1, server: "fmp", tool: "fmp_search_ticker", params: { query: "Palantir" } },
  {
    step: 2,
    server: "fmp",
    tool: "fmp_get_quote",
    params: { symbol: quoteSymbol },
    depends_on: [1],
    derived_params: ["symbol"]
  },
  {
    step: 3,
    server: "slack",
    tool: "send_slack_message",
    params: { channel: "markets", message },
    depends_on: [2],
    derived_params: ["message"]
  }
]

const issuesOf = (steps: ReadonlyArray<PlanStep>) =>
  validatePlan(inventory, steps).map((i) => `${i.step} ${i.path}: ${i.message}`)

const withStep = (index: number, patch: Partial<PlanStep>) =>
  plan().map((s, i) => (i === index ? { ...s, ...patch } : s))

describe("plan validation", () => {
  it("accepts a plan with provenance", () => expect(issuesOf(plan())).toEqual([]))

  it("rejects depends_on pointing forward, at itself, or at no step", () => {
    expect(issuesOf(withStep(1, { depends_on: [3] }))).toEqual([
      "2 depends_on: 3 is not an earlier step: depends_on names earlier steps (1) only"
    ])
    expect(issuesOf(withStep(1, { depends_on: [2] }))).toEqual(["2 depends_on: a step cannot depend on itself"])
    expect(issuesOf(withStep(2, { depends_on: [0] }))[0]).toMatch(/^3 depends_on: 0 is not an earlier step/)
  })

  it("rejects a derived param that is not a param of the tool, or has no value, or depends on nothing", () => {
    expect(issuesOf(withStep(1, { derived_params: ["ticker"] }))).toEqual([
      "2 derived_params/ticker: is not a param of fmp_get_quote (params: symbol)"
    ])
    expect(
      issuesOf(withStep(0, { derived_params: ["limit"], depends_on: [] }))
    ).toEqual([
      "1 depends_on: is empty, but limit is marked derived: name the earlier steps whose results they come from",
      "1 derived_params/limit: is marked derived but params has no illustrative value for it"
    ])
  })

  it("a derived param whose value differs from the illustrative one is never an error", () => {
    // Any schema-valid value: another ticker, another message, one that reads like a reference.
    for (const steps of [plan("MSFT", "anything at all"), plan("ZZZZ", "the quote from step 2")]) {
      expect(issuesOf(steps)).toEqual([])
      // The run's own checks (placeholders are looked for in literal params only).
      expect(planIssues(steps, { maxTools: 5 }, (s) => validatePlan(inventory, s))).toEqual([])
      // And `validate` on rows made from them.
      const rows = steps === undefined ? [] : [
        encodeRow(Either.getOrThrow(convertTask({
          task_id: "derived",
          user_prompt: "Find Palantir's ticker, quote it and post the price to #markets.",
          tool_sequence: steps,
          evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "1" }] }
        }, { inventory })))
      ]
      const report = checkRows(rows, { inventory })
      expect(report.violations).toBe(0)
    }
    // The same placeholder in a literal param is a problem.
    const literal = withStep(2, { derived_params: [], params: { channel: "from step 1", message: "m" } })
    expect(planIssues(literal, { maxTools: 5 }, (s) => validatePlan(inventory, s)).map((p) => p.text))
      .toEqual(["step 3 (send_slack_message) params/channel: is a placeholder; use a concrete, realistic value"])
    expect(literalParams(plan()[2])).toEqual({ channel: "markets" })
  })
})

describe("conversion and the model's answer", () => {
  const rubric = { name: "r", criteria: [{ name: "c", description: "d", scoring: "1" }] }

  it("convert rejects a forward depends_on and a derived param without a value, naming the field", () => {
    const forward = convertTask({
      user_prompt: "u",
      tool_sequence: withStep(0, { depends_on: [2] }),
      evaluation_rubric: rubric
    })
    expect(Either.isLeft(forward) && [forward.left.field, forward.left.reason]).toEqual([
      "tool_sequence[0].depends_on",
      "2 is not an earlier step: step 1 has none, so its depends_on is empty"
    ])
    const missing = convertTask({
      user_prompt: "u",
      tool_sequence: withStep(1, { params: {}, derived_params: ["symbol"] }),
      evaluation_rubric: rubric
    })
    expect(Either.isLeft(missing) && missing.left.field).toBe("tool_sequence[1].derived_params.symbol")
  })

  it("the row carries depends_on and derived_params (sorted, without repeats)", () => {
    const row = Either.getOrThrow(convertTask({
      user_prompt: "u",
      tool_sequence: withStep(2, { depends_on: [2, 1, 2], derived_params: ["message", "message"] }),
      evaluation_rubric: rubric
    }, { inventory }))
    expect(row.reward_spec.ground_truth.tool_sequence.map((s) => [s.depends_on, s.derived_params])).toEqual([
      [[], []],
      [[1], ["symbol"]],
      [[1, 2], ["message"]]
    ])
    // On disk: canonical compact JSON text (an all-empty typed list would be Arrow's list<null>).
    const steps = encodeRow(row).reward_spec.ground_truth.tool_sequence
    expect(steps.map((s) => [s.depends_on, s.derived_params])).toEqual([
      ["[]", "[]"],
      ["[1]", "[\"symbol\"]"],
      ["[1,2]", "[\"message\"]"]
    ])
  })

  it("a model answer carries provenance per step; one recorded before it existed decodes with none", () => {
    const answer = {
      task_id: "t",
      user_prompt: "u",
      complexity: "simple",
      domain: "d",
      assumptions: [],
      max_turns: 3,
      tool_sequence: [
        { server: "fmp", tool: "fmp_search_ticker", params: { query: "Palantir", limit: null } },
        {
          server: "fmp",
          tool: "fmp_get_quote",
          params: { symbol: "PLTR" },
          depends_on: [1],
          derived_params: ["symbol"]
        }
      ],
      evaluation_rubric: rubric
    }
    const task = Schema.decodeUnknownSync(ModelTask)(answer)
    expect(task.tool_sequence.map((s) => [s.depends_on, s.derived_params])).toEqual([[[], []], [[1], ["symbol"]]])
    const steps = Either.getOrThrow(decodeSteps(inventory, task.tool_sequence))
    expect(steps[1]).toEqual({
      step: 2,
      server: "fmp",
      tool: "fmp_get_quote",
      params: { symbol: "PLTR" },
      depends_on: [1],
      derived_params: ["symbol"]
    })
  })

  it("`skyrl convert` writes the rejects of a derived param that is not a param of the tool", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-prov-"))
    const input = join(dir, "tasks.json")
    writeFileSync(
      input,
      JSON.stringify([
        {
          task_id: "ok",
          user_prompt: "Find Palantir's ticker, quote it and post it to #markets.",
          tool_sequence: plan()
        },
        { task_id: "bad", user_prompt: "Quote Palantir.", tool_sequence: withStep(1, { derived_params: ["ticker"] }) }
      ])
    )
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["convert", input, "--out", out, "--inventory", INVENTORY_FILE])
    expect(r.status).toBe(0)
    expect(readFileSync(out, "utf8").trim().split("\n")).toHaveLength(1)
    const rejects = readFileSync(`${out}.rejects.jsonl`, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    expect(rejects).toEqual([
      expect.objectContaining({
        index: 1,
        field: "tool_sequence[1].derived_params.ticker",
        reason: "is not a param of fmp_get_quote (params: symbol)"
      })
    ])
  })
})

describe("the bundled replay answers (data/replay, scripts/make-replay-examples.py)", () => {
  const dir = join(import.meta.dirname, "..", "data", "replay")
  const answers = readdirSync(dir).filter((f) => f.endsWith(".json")).sort().map((f) =>
    JSON.parse(JSON.parse(readFileSync(join(dir, f), "utf8")).choices[0].message.content)
  )

  it("every answer converts with a valid plan, a fitting complexity, and its dependent params marked", () => {
    expect(answers).toHaveLength(12)
    const unshown: Array<string> = []
    for (const answer of answers) {
      const row = Either.getOrThrow(convertTask(answer, { inventory }))
      const report = checkRows([encodeRow(row)], { inventory })
      const found = report.rules.filter((r) => r.count > 0 && r.id !== "arrow/empty-list")
      expect(found.filter((r) => r.id !== "prompt/literal-not-shown").map((r) => r.id)).toEqual([])
      for (const r of found) unshown.push(`${answer.task_id}: ${r.examples[0]!.message.split(": the reward")[0]}`)
    }
    // Every literal value is stated in its prompt (MCPToolEnv matches them exactly; generate repairs an
    // answer that does not state one). Five answers did not until 2026-12-01: free-text queries, a
    // description and result counts the plans fixed without their prompts saying so.
    expect(unshown).toEqual([])
    const derived = answers.flatMap((a) =>
      a.tool_sequence.filter((s: any) => s.derived_params.length > 0).map((s: any) => `${a.task_id}:${s.tool}`)
    )
    expect(derived).toEqual(expect.arrayContaining([
      "find-ticker-palantir:fmp_get_quote",
      "market-movers-slack-digest:send_slack_message",
      "jpm-hourly-volatility:store_execution_result"
    ]))
  })

  it(
    "`generate -n 5 --llm replay` makes 5 valid rows offline, dated the run's start, the whole inventory offered",
    async () => {
      const out = join(mkdtempSync(join(tmpdir(), "skyrl-replay-")), "x.jsonl")
      const r = await runCli(["generate", "-n", "5", "--out", out, "--llm", "replay"])
      expect(r.status, r.stderr).toBe(0)
      const rows = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l))
      expect(rows).toHaveLength(5)
      const v = await runCli(["validate", out, "--json"])
      expect(v.status, v.stdout).toBe(0)
      expect(JSON.parse(v.stdout).violations).toBe(0)
      for (const row of rows) {
        // The run's start date (its id starts with it: 20261130T054052Z-...).
        const md = JSON.parse(row.extra_info.task_metadata)
        const started = `${md.run_id.slice(0, 4)}-${md.run_id.slice(4, 6)}-${md.run_id.slice(6, 8)}`
        expect(md.as_of).toBe(started)
        expect(row.prompt[0].content).toContain(`Today is ${started}.`)
        expect(row.reward_spec.ground_truth.available_tools).toHaveLength(25)
      }
      expect(
        rows.some((row) => row.reward_spec.ground_truth.tool_sequence.some((s: any) => s.derived_params.length > 0))
      )
        .toBe(true)
    },
    120_000
  )
})
