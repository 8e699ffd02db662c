import { describe, expect, it } from "vitest"
import {
  describeUnshown,
  PromptFacts,
  statedTextOf,
  statesNumber,
  unshownLiterals
} from "../src/skyrl/literalsShown.js"
import type { PlanStep } from "../src/skyrl/planValidation.js"
import { TOOL_CALL_LINE } from "../src/skyrl/prompt.js"

const step = (n: number, tool: string, params: Record<string, unknown>, derived: Array<string> = []): PlanStep => ({
  step: n,
  server: "s",
  tool,
  params,
  depends_on: derived.length > 0 ? [n - 1] : [],
  derived_params: derived
})
const unshown = (prompt: string, steps: ReadonlyArray<PlanStep>, schema?: unknown) =>
  unshownLiterals(new PromptFacts(["You call tools.", prompt]), steps, () => schema).map((u) => [u.path, u.value])

describe("prompt/literal-not-shown: literal values the prompt never states", () => {
  it("strings: found as they are, or lowercased with spaces, _ and - read alike; otherwise reported", () => {
    expect(unshown("Quote AAPL for me.", [step(1, "quote", { symbol: "AAPL" })])).toEqual([])
    expect(unshown("Weather in New York, please.", [step(1, "weather", { city: "new_york" })])).toEqual([])
    expect(unshown("Read the Q3-2024 report.", [step(1, "read", { name: "q3 2024 report" })])).toEqual([])
    // Typographic quotes and apostrophes read as straight ones, either way (reported until 2026-12-02).
    expect(unshown("Find McDonald\u2019s and \u201cbig mac\u201d news.", [
      step(1, "search", { query: "McDonald's", phrase: "\"big mac\"" })
    ])).toEqual([])
    expect(unshown("Find McDonald's news.", [step(1, "search", { query: "McDonald\u2019s" })])).toEqual([])
    expect(unshown("Find news on Apple.", [step(1, "search", { query: "apple iphone sales" })]))
      .toEqual([["query", "apple iphone sales"]])
  })

  it("codes an entity's name implies (tickers, currencies, lists of them) pass: the policy brings that knowledge", () => {
    expect(unshown("Compare Apple, Berkshire and AMD in euros.", [
      step(1, "quote", { symbol: "AAPL", other: "BRK.B", currency: "EUR", tickers: "AMD,INTC", index: "^GSPC" })
    ])).toEqual([])
    // Not a code: lower case, longer than 10 characters, or without a capital (a date, a number as text).
    expect(unshown("Prices for last week.", [step(1, "aggs", { from: "2025-07-01", year: "2024" })]))
      .toEqual([["from", "2025-07-01"], ["year", "2024"]])
    expect(unshown("Quote Apple.", [step(1, "quote", { symbol: "aapl", id: "ABCDEFGHIJKL" })]))
      .toEqual([["symbol", "aapl"], ["id", "ABCDEFGHIJKL"]])
  })

  it("a day (YYYY-MM-DD) written with its month's name or in digits states it; another day does not", () => {
    const day = (prompt: string) => unshown(prompt, [step(1, "aggs", { from: "2025-03-01" })])
    for (
      const prompt of [
        "Prices since March 1, 2025.",
        "Prices since 1st of March 2025.",
        "Prices since Mar. 1 2025.",
        "prices since march 01, 2025",
        "Prices since 2025/03/01.",
        "Prices since 03/01/2025.",
        "Prices since 01.03.2025."
      ]
    ) expect(day(prompt), prompt).toEqual([])
    for (const prompt of ["Prices since March 11, 2025.", "Prices since May 1, 2025.", "Prices since 13/01/2025."]) {
      expect(day(prompt), prompt).toEqual([["from", "2025-03-01"]])
    }
    // A range or a sentence that writes its year once, apart from the day, states the day too (these were
    // reported until 2026-12-02), and September may be Sept.; a day without its year is still no day.
    for (
      const prompt of [
        "Prices from March 1 to May 31, 2025.",
        "Prices between 1 March and 31 May 2025.",
        "In 2025, prices since March 1."
      ]
    ) expect(day(prompt), prompt).toEqual([])
    expect(unshown("Prices until Sept. 30, 2025.", [step(1, "aggs", { to: "2025-09-30" })])).toEqual([])
    for (const prompt of ["Prices since March 1.", "Prices since March 1, 2024.", "Prices since March 10, 2025."]) {
      expect(day(prompt), prompt).toEqual([["from", "2025-03-01"]])
    }
    // The reading of runs made before 2026-12-02 (rebuild judges them as they were): only the ISO text.
    const old = new PromptFacts(["You call tools.", "Prices since March 1, 2025."], undefined, "until-2026-12-01")
    expect(old.states("2025-03-01")).toBe(false)
  })

  it("numbers: digits, thousands separators, percentages and the words one to twelve; 0 and 1 always pass", () => {
    const prompt = "Show 1,000 rows at a 5% rate for the last three days."
    expect(unshown(prompt, [step(1, "q", { rows: 1000, rate: 0.05, days: 3, offset: 0, page: 1, on: true, x: null })]))
      .toEqual([])
    expect(unshown(prompt, [step(1, "q", { limit: 7 })])).toEqual([["limit", 7]])
    const states = (text: string, n: number) => statesNumber(text, n)
    expect([states("1,000 rows", 1000), states("a 5% rate", 0.05), states("Twelve", 12), states("2.5x", 2.5)])
      .toEqual([true, true, true, true])
    expect([states("3-bullet", 3), states("the 3rd", 3), states("(3)", 3)]).toEqual([true, true, true])
    // A percentage in words and a large number with its scale, as finance prose writes them (reported until
    // 2026-12-02): "5 percent" states 0.05, "1.5 million" and "$1.5M" state 1500000, "$2 billion" 2e9.
    expect([
      states("a 5 percent move", 0.05),
      states("50 %", 0.5),
      states("over 1.5 million shares", 1_500_000),
      states("a $1.5M budget", 1_500_000),
      states("above $2 billion", 2e9),
      states("caps over $10B", 1e10),
      states("250K rows", 250_000)
    ]).toEqual([true, true, true, true, true, true, true])
    expect([states("over 1.5 million shares", 1_500), states("a 5 percent move", 0.5), states("15 million", 5e6)])
      .toEqual([false, false, false])
    expect(statesNumber("over 1.5 million shares", 1_500_000, "until-2026-12-01")).toBe(false)
    // Zeros after a decimal point write the same number: 3 as "3.0", 2.5 as "2.50", 1000 as "1,000.00".
    expect([states("top 3.0 losers", 3), states("a 2.50 ratio", 2.5), states("$1,000.00 cap", 1000)])
      .toEqual([true, true, true])
    expect([states("3.05 stars", 3), states("2.501 ratio", 2.5)]).toEqual([false, false])
    // The reading of runs made before 2026-12-02 (rebuild judges them as they were): "3.0" did not state 3.
    expect(statesNumber("top 3.0 losers", 3, "until-2026-12-01")).toBe(false)
    // Not a whole number: inside another number, a code or a version.
    expect([
      states("Q3 results", 3),
      states("in 2023", 2),
      states("3.5 stars", 3),
      states("3,000", 3),
      states("v1.5", 5)
    ])
      .toEqual([false, false, false, false, false])
  })

  it("number words past twelve (fifteen, twenty-five, a dozen, a hundred) state their number", () => {
    // Each was reported until this rule (the words stopped at twelve): a false warning, and a paid repair at
    // generate acceptance for a prompt that does state its count.
    const states = (text: string, n: number) => statesNumber(text, n)
    expect([
      states("the fifteen latest headlines", 15),
      states("Twenty headlines", 20),
      states("twenty-five gainers", 25),
      states("ninety nine rows", 99),
      states("a dozen headlines", 12),
      states("one hundred rows", 100)
    ]).toEqual([true, true, true, true, true, true])
    // A compound states its whole number, not its tens; another word states nothing.
    expect([states("twenty-five gainers", 20), states("fifteen headlines", 5), states("a dozen eggs", 13)])
      .toEqual([false, false, false])
    // Runs judged before this rule keep its reading.
    expect([statesNumber("twenty headlines", 20, "until-2026-12-03"), statesNumber("a dozen", 12, "until-2026-12-03")])
      .toEqual([false, false])
  })

  it("a month written with its year states its first and last day (a range over the month)", () => {
    const range = (prompt: string, reading?: "until-2026-12-03") =>
      unshownLiterals(
        new PromptFacts(["You call tools.", prompt], undefined, reading),
        [step(1, "aggs", { from: "2025-03-01", to: "2025-03-31" })]
      ).map((u) => [u.path, u.value])
    for (
      const prompt of ["Daily bars for March 2025.", "Daily bars for Mar. 2025.", "In 2025, daily bars for March."]
    ) {
      expect(range(prompt), prompt).toEqual([])
    }
    // A day of the month named, another year, or no year: not the month's first and last day.
    expect(range("Daily bars since March 5, 2025.")).toEqual([["from", "2025-03-01"], ["to", "2025-03-31"]])
    expect(range("Daily bars for March 2024.")).toEqual([["from", "2025-03-01"], ["to", "2025-03-31"]])
    expect(range("Daily bars for March.")).toEqual([["from", "2025-03-01"], ["to", "2025-03-31"]])
    expect(unshownLiterals(new PromptFacts(["Daily bars for March 2025."]), [step(1, "aggs", { day: "2025-03-15" })]))
      .toHaveLength(1)
    expect(range("Daily bars for March 2025.", "until-2026-12-03")).toHaveLength(2)
  })

  it("the month and day of an ISO date are no count: skyrl's 'Today is 2026-11-30.' line states no 11 nor 30", () => {
    // Every row of a run carries the date line, so until 2026-12-02 a limit of 30 (or 11, or 12 in December)
    // passed in every row of the run without the task ever asking for it.
    const today = (steps: ReadonlyArray<PlanStep>) =>
      unshownLiterals(new PromptFacts(["Today is 2026-11-30.", "Show the latest news on Apple."]), steps)
        .map((u) => [u.path, u.value])
    expect(today([step(1, "news", { limit: 30, days: 11 })])).toEqual([["limit", 30], ["days", 11]])
    expect([statesNumber("from 2025-07-01 to 2025-09-30", 30), statesNumber("as of 2026-12-02", 12)])
      .toEqual([false, false])
    // A year is a number the date line does give (this year's figures), and a range or a count still states one.
    expect([statesNumber("Today is 2026-11-30.", 2026), statesNumber("3-5 articles", 5)]).toEqual([true, true])
    expect(statesNumber("the last 30 days (since 2026-10-31)", 30)).toBe(true)
    // The readings of runs made before 2026-12-02 04:00 UTC (rebuild judges them as they were) counted them.
    expect(statesNumber("Today is 2026-11-30.", 30, "until-2026-12-01")).toBe(true)
    expect(statesNumber("Today is 2026-11-30.", 30, "until-2026-12-02")).toBe(true)
  })

  it("a run made on 2026-12-02 before 04:00 UTC keeps that reading: what it stated and what it did not", () => {
    const reading = "until-2026-12-02" as const
    // Stated since 2026-12-02 04:00 UTC, not in that reading: scales, `percent`, days whose year stands apart,
    // Sept., typographic quotes.
    expect([
      statesNumber("revenue above $1.5M", 1_500_000, reading),
      statesNumber("a 5 percent move", 0.05, reading)
    ]).toEqual([false, false])
    const facts = (text: string) => new PromptFacts(["You call tools.", text], undefined, reading)
    expect([
      facts("Prices from March 1 to May 31, 2025.").states("2025-03-01"),
      facts("Prices until Sept. 30, 2025.").states("2025-09-30"),
      facts("News on McDonald’s.").states("McDonald's")
    ]).toEqual([false, false, false])
    // What that reading already stated: the tool list states nothing, 3.0 states 3, a day with its year after it.
    expect([
      statesNumber("top 3.0 losers", 3, reading),
      facts("Prices since March 1, 2025.").states("2025-03-01"),
      facts("Prices until Sept 30, 2025.").states("2025-09-30")
    ]).toEqual([true, true, false])
    expect(statedTextOf(`Today.\n${TOOL_CALL_LINE}\n- quote(period?: "annual"|"quarterly")`, reading)).toBe("Today.\n")
  })

  it("derived params are not literals; a declared default passes, another enum value only when stated", () => {
    const steps = [
      step(1, "quote", { name: "apple" }),
      step(2, "news", { company: "microsoft", limit: 9 }, ["company"])
    ]
    expect(unshown("Quote Apple and its news.", steps)).toEqual([["limit", 9]])
    const schema = {
      type: "object",
      properties: { limit: { type: "integer", default: 9 }, sort: { type: "string", enum: ["asc", "desc"] } }
    }
    expect(unshown("Quote AAPL and its news.", [step(1, "news", { limit: 9, sort: "desc" })], schema)).toEqual([
      ["sort", "desc"]
    ])
    expect(unshown("Quote AAPL and its news, in desc order.", [step(1, "news", { limit: 9, sort: "desc" })], schema))
      .toEqual([])
  })

  it("arrays and objects are judged leaf by leaf, each with its path and step", () => {
    const found = unshownLiterals(
      new PromptFacts(["Compare Apple with Microsoft in Europe."]),
      [step(1, "a", { names: ["apple", "nvidia"] }), step(2, "b", { filters: { region: "europe", year: 1999 } })]
    )
    expect(found).toEqual([
      { step: 1, tool: "a", path: "names[1]", value: "nvidia" },
      { step: 2, tool: "b", path: "filters.year", value: 1999 }
    ])
    expect(describeUnshown(found)).toBe(
      "the prompt never states step 1 a names[1] = \"nvidia\"; step 2 b filters.year = 1999: the reward matches " +
        "literal params exactly, so the policy could only guess them (state them in the user message; a value " +
        "an earlier result gives belongs in derived_params)"
    )
    const many = Array.from({ length: 5 }, (_, i) => ({ step: 1, tool: "a", path: `p${i}`, value: i + 2 }))
    expect(describeUnshown(many)).toMatch(
      /^the prompt never states step 1 a p0 = 2; step 1 a p1 = 3; step 1 a p2 = 4 and 2 more: /
    )
  })

  it("any message counts, the system message too (a chat log's system text may carry the task's values)", () => {
    const facts = new PromptFacts(["The user's account is acc-42-east.", "Show my balance."])
    expect(unshownLiterals(facts, [step(1, "balance", { account: "acc-42-east" })])).toEqual([])
    expect(unshownLiterals(new PromptFacts(["Show my balance."]), [step(1, "balance", { account: "acc-42-east" })]))
      .toHaveLength(1)
  })
})
