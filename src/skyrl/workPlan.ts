/**
 * The work plan: which (domain, complexity) each sample index gets. Derived from the seed alone, so a
 * run is reproducible and `--resume` sees the same plan.
 */
import type { Complexity } from "../domain/task.js"
import { COMPLEXITIES } from "../domain/task.js"

/** Sensible domains for the bundled finance catalogue (fmp, polygon, python_execution, slack, tavily). */
export const DEFAULT_DOMAINS: ReadonlyArray<string> = [
  "equity research",
  "market monitoring",
  "news and sentiment",
  "quantitative analysis with python",
  "team reporting on slack",
  "web research on companies"
]

export interface WeightedComplexity {
  readonly complexity: Complexity
  readonly weight: number
}

/** Parses `simple:2,moderate:1,complex:1` or `simple,complex` (weight 1). */
export const parseComplexities = (text: string): ReadonlyArray<WeightedComplexity> | string => {
  const out: Array<WeightedComplexity> = []
  for (const part of text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const [name, weightText] = part.split(":").map((s) => s.trim())
    if (!(COMPLEXITIES as ReadonlyArray<string>).includes(name)) {
      return `unknown complexity "${name}" (expected ${COMPLEXITIES.join(", ")})`
    }
    const weight = weightText === undefined ? 1 : Number(weightText)
    if (!Number.isFinite(weight) || weight < 0) return `weight of "${name}" must be a non-negative number`
    out.push({ complexity: name as Complexity, weight })
  }
  if (out.length === 0 || out.every((c) => c.weight === 0)) return "at least one complexity with a positive weight"
  return out
}

export const parseDomains = (
  text: string
): ReadonlyArray<string> => [...new Set(text.split(",").map((d) => d.trim()).filter((d) => d !== ""))]

/** mulberry32: a small, fast, seedable PRNG (also what the tests use for reproducible "random" choices). */
export const mulberry32 = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface PlannedSample {
  readonly index: number
  readonly domain: string
  readonly complexity: Complexity
}

/**
 * Sample i depends only on (seed, i, domains, complexities): domains rotate round-robin from a seeded
 * offset (even coverage), complexities are drawn by weight from a per-index stream.
 */
export const planSample = (
  seed: number,
  index: number,
  domains: ReadonlyArray<string>,
  complexities: ReadonlyArray<WeightedComplexity>
): PlannedSample => {
  const offset = Math.floor(mulberry32(seed)() * domains.length)
  const rand = mulberry32((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0)
  rand()
  const total = complexities.reduce((n, c) => n + c.weight, 0)
  let pick = rand() * total
  let complexity = complexities[complexities.length - 1].complexity
  for (const c of complexities) {
    if (pick < c.weight) {
      complexity = c.complexity
      break
    }
    pick -= c.weight
  }
  return { index, domain: domains[(offset + index) % domains.length], complexity }
}

export const workPlan = (
  seed: number,
  n: number,
  domains: ReadonlyArray<string>,
  complexities: ReadonlyArray<WeightedComplexity>
): ReadonlyArray<PlannedSample> => Array.from({ length: n }, (_, i) => planSample(seed, i, domains, complexities))
