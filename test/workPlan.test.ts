import { describe, expect, it } from "vitest"
import { focusTools } from "../src/skyrl/focusTools.js"
import { DEFAULT_PERSONAS, parseLineList, TASK_STYLES } from "../src/skyrl/personas.js"
import { decodeUtf8 } from "../src/skyrl/utf8.js"
import type { PlanAxes } from "../src/skyrl/workPlan.js"
import {
  balancedPick,
  DEFAULT_DOMAINS,
  diverseWorkPlan,
  parseComplexities,
  planSample,
  seededShuffle,
  workPlan
} from "../src/skyrl/workPlan.js"
import { loadInventory } from "./support/inventories.js"

const finance = loadInventory("finance-mcp")
const complexities = parseComplexities("simple,moderate,complex") as Exclude<
  ReturnType<typeof parseComplexities>,
  string
>
const axes: PlanAxes = { tools: focusTools(finance), styles: TASK_STYLES, personas: DEFAULT_PERSONAS }

const counts = <A>(items: ReadonlyArray<A>): Map<A, number> => {
  const m = new Map<A, number>()
  for (const x of items) m.set(x, (m.get(x) ?? 0) + 1)
  return m
}

describe("diverse work plan", () => {
  it("makes all 25 finance tools the focus of exactly 4 of 100 samples", () => {
    const plan = diverseWorkPlan(7, 100, DEFAULT_DOMAINS, complexities, axes)
    const byTool = counts(plan.map((s) => `${s.focus.server}/${s.focus.tool}`))
    expect(byTool.size).toBe(25)
    expect([...byTool.values()].every((n) => n === 4)).toBe(true)
  })

  it("keeps every axis within one of even for any run length", () => {
    for (const n of [1, 7, 24, 25, 26, 99, 103, 250]) {
      const plan = diverseWorkPlan(11, n, DEFAULT_DOMAINS, complexities, axes)
      for (
        const [values, k] of [
          [plan.map((s) => s.focus.tool), 25],
          [plan.map((s) => s.style.name), 8],
          [plan.map((s) => s.persona), DEFAULT_PERSONAS.length]
        ] as const
      ) {
        const c = [...counts(values).values()]
        expect(c.length).toBe(Math.min(n, k))
        expect(Math.max(...c) - Math.min(...c)).toBeLessThanOrEqual(1)
        expect(c.reduce((a, b) => a + b, 0)).toBe(n)
      }
    }
  })

  it("gives 103 samples: 3 tools as focus 5 times, 22 tools 4 times", () => {
    const c = [
      ...counts(diverseWorkPlan(3, 103, DEFAULT_DOMAINS, complexities, axes).map((s) => s.focus.tool)).values()
    ]
    expect(c.filter((n) => n === 5).length).toBe(3)
    expect(c.filter((n) => n === 4).length).toBe(22)
  })

  it("is the same for the same seed and different for another", () => {
    const a = diverseWorkPlan(7, 60, DEFAULT_DOMAINS, complexities, axes)
    expect(diverseWorkPlan(7, 60, DEFAULT_DOMAINS, complexities, axes)).toEqual(a)
    const b = diverseWorkPlan(8, 60, DEFAULT_DOMAINS, complexities, axes)
    const differ = (f: (s: typeof a[number]) => string) => a.filter((s, i) => f(s) !== f(b[i])).length
    expect(differ((s) => s.focus.tool)).toBeGreaterThan(30)
    expect(differ((s) => s.style.name)).toBeGreaterThan(30)
    expect(differ((s) => s.persona)).toBeGreaterThan(30)
  })

  it("keeps domain and complexity exactly as planSample (runs planned before keep their plan)", () => {
    const plan = diverseWorkPlan(42, 50, DEFAULT_DOMAINS, complexities, axes)
    const old = workPlan(42, 50, DEFAULT_DOMAINS, complexities)
    expect(plan.map(({ complexity, domain, index }) => ({ index, domain, complexity }))).toEqual(old)
    expect(planSample(42, 9, DEFAULT_DOMAINS, complexities)).toEqual(old[9])
  })

  it("does not lock two axes of equal size together (6 domains, 6 styles)", () => {
    const sixStyles = { ...axes, styles: TASK_STYLES.slice(0, 6) }
    const plan = diverseWorkPlan(5, 360, DEFAULT_DOMAINS, complexities, sixStyles)
    const pairs = new Set(plan.map((s) => `${s.domain}|${s.style.name}`))
    // Round-robin on both would give 6 pairs; independent balanced draws give (nearly) all 36.
    expect(pairs.size).toBeGreaterThanOrEqual(30)
  })

  it("refuses an empty axis", () => {
    expect(() => diverseWorkPlan(1, 3, DEFAULT_DOMAINS, complexities, { ...axes, personas: [] })).toThrow(
      /no personas/
    )
  })
})

describe("balanced draws and shuffles", () => {
  it("balancedPick draws every value once per round of k", () => {
    for (let round = 0; round < 5; round++) {
      const drawn = Array.from({ length: 7 }, (_, i) => balancedPick(9, 1, round * 7 + i, 7))
      expect([...drawn].sort()).toEqual([0, 1, 2, 3, 4, 5, 6])
    }
  })
  it("seededShuffle is a permutation that depends on the seed", () => {
    const items = Array.from({ length: 20 }, (_, i) => i)
    const a = seededShuffle(items, 1)
    expect([...a].sort((x, y) => x - y)).toEqual(items)
    expect(seededShuffle(items, 1)).toEqual(a)
    expect(seededShuffle(items, 2)).not.toEqual(a)
  })
})

describe("personas file", () => {
  it("reads one entry a line, skipping blanks, comments and repeats", () => {
    expect(parseLineList("\uFEFF# who asks\na nurse on night shift\n\n  A nurse on night shift \r\na chef\n", "p.txt"))
      .toEqual(["a nurse on night shift", "a chef"])
  })
  it("names the file and line of a bad entry", () => {
    expect(parseLineList("ok\n" + "x".repeat(301), "p.txt")).toBe("p.txt:2: longer than 300 characters")
    expect(parseLineList("ok\nbad\u0007bell", "p.txt")).toBe("p.txt:2: contains a control character")
    expect(parseLineList("# only a comment\n\n", "p.txt")).toMatch(/^p\.txt: no entries/)
    // Before: a line that is not UTF-8 was an entry: its fault line ("\udc00 byte 0xFF ...") became a persona.
    const bytes = Buffer.from("a day trader\n\xff\xfe bad bytes\nan analyst\n", "latin1")
    expect(parseLineList(decodeUtf8(bytes), "p.txt")).toBe(
      "p.txt: line 2 is not valid UTF-8: byte 0xFF at byte offset 13 of the file (re-encode it as UTF-8)"
    )
    // UTF-16 (was: "p.txt:2: contains a control character")
    expect(parseLineList(decodeUtf8(Buffer.from("\ufeffa chef\nan analyst\n", "utf16le")), "p.txt")).toMatch(
      /^p\.txt: line 1 is not valid UTF-8: UTF-16 text/
    )
  })
})
