/**
 * The work plan: which (domain, complexity) each sample index gets, and with `diverseWorkPlan` also a
 * focus tool, a task style and a persona. Derived from the seed alone, so a run is reproducible and
 * `--resume` sees the same plan.
 */
import type { Complexity } from "../domain/task.js"
import { COMPLEXITIES } from "../domain/task.js"
import type { FocusTool } from "./focusTools.js"
import { fmix32 } from "./hash32.js"
import type { TaskStyle } from "./personas.js"

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

/** Fisher-Yates with a seeded stream: the same seed gives the same order. */
export const seededShuffle = <A>(items: ReadonlyArray<A>, seed: number): Array<A> => {
  const rand = mulberry32(seed)
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

/** The seed of one shuffled round of one axis (independent streams per axis and round). */
const roundSeed = (seed: number, axis: number, round: number): number =>
  fmix32(fmix32(fmix32(seed >>> 0) ^ Math.imul(axis + 1, 0x85ebca77)) ^ Math.imul(round + 1, 0x27d4eb2f))

/**
 * Balanced draw of one of `k` values for sample `index`: samples come in rounds of `k`, each round a
 * fresh seeded permutation of 0..k-1. So over any first n samples every value is drawn ⌊n/k⌋ or ⌈n/k⌉
 * times, and two axes never lock together (each round reshuffles), whatever their sizes.
 */
export const balancedPick = (seed: number, axis: number, index: number, k: number): number => {
  const round = Math.floor(index / k)
  return seededShuffle(Array.from({ length: k }, (_, i) => i), roundSeed(seed, axis, round))[index % k]
}

/** The axes a diverse work plan draws from besides domain and complexity (each non-empty). */
export interface PlanAxes {
  /** Usually `focusTools(inventory)`. */
  readonly tools: ReadonlyArray<FocusTool>
  /** Usually `TASK_STYLES`. */
  readonly styles: ReadonlyArray<TaskStyle>
  /** `DEFAULT_PERSONAS` or the lines of `--personas FILE`. */
  readonly personas: ReadonlyArray<string>
}

export interface DiversePlannedSample extends PlannedSample {
  readonly focus: FocusTool
  readonly style: TaskStyle
  readonly persona: string
}

const AXIS_TOOL = 1
const AXIS_STYLE = 2
const AXIS_PERSONA = 3

/**
 * Sample i: domain and complexity exactly as `planSample` (so runs made before keep their plan), plus a
 * focus tool, a style and a persona, each a balanced draw (`balancedPick`): every tool is the focus of
 * ⌊N/T⌋ or ⌈N/T⌉ of the first N samples. Depends only on (seed, i, the lists).
 */
export const planDiverseSample = (
  seed: number,
  index: number,
  domains: ReadonlyArray<string>,
  complexities: ReadonlyArray<WeightedComplexity>,
  axes: PlanAxes
): DiversePlannedSample => ({
  ...planSample(seed, index, domains, complexities),
  focus: axes.tools[balancedPick(seed, AXIS_TOOL, index, axes.tools.length)],
  style: axes.styles[balancedPick(seed, AXIS_STYLE, index, axes.styles.length)],
  persona: axes.personas[balancedPick(seed, AXIS_PERSONA, index, axes.personas.length)]
})

/** The whole diverse plan (throws on an empty axis: the caller checks its inputs first). */
export const diverseWorkPlan = (
  seed: number,
  n: number,
  domains: ReadonlyArray<string>,
  complexities: ReadonlyArray<WeightedComplexity>,
  axes: PlanAxes
): ReadonlyArray<DiversePlannedSample> => {
  for (const [name, list] of [["tools", axes.tools], ["styles", axes.styles], ["personas", axes.personas]] as const) {
    if (list.length === 0) throw new Error(`diverseWorkPlan: no ${name} to draw from`)
  }
  return Array.from({ length: n }, (_, i) => planDiverseSample(seed, i, domains, complexities, axes))
}
