/**
 * Prices in USD per 1M tokens. Reasoning tokens bill as output; cached input at the cached rate.
 * Batch runs are half price. Extend the table for other models.
 */
import type { Usage } from "./llm.js"

export interface Price {
  readonly input: number
  readonly cachedInput: number
  readonly output: number
}

export const PRICES: Readonly<Record<string, Price>> = {
  "gpt-5-mini": { input: 0.25, cachedInput: 0.025, output: 2.0 },
  "gpt-5": { input: 1.25, cachedInput: 0.125, output: 10.0 },
  "gpt-5-nano": { input: 0.05, cachedInput: 0.005, output: 0.4 },
  "gpt-4o-mini": { input: 0.15, cachedInput: 0.075, output: 0.6 },
  "gpt-4.1-mini": { input: 0.4, cachedInput: 0.1, output: 1.6 }
}

/** Finds the price of a model, also for dated snapshots such as `gpt-5-mini-2025-08-07`. */
export const priceOf = (model: string): Price | undefined => {
  if (PRICES[model] !== undefined) return PRICES[model]
  const base = Object.keys(PRICES).filter((k) => model.startsWith(`${k}-`)).sort((a, b) => b.length - a.length)[0]
  return base === undefined ? undefined : PRICES[base]
}

/** Expected output tokens per call by reasoning effort (one gpt-5-mini task at high took 8,106). */
const EXPECTED_OUTPUT: Readonly<Record<string, number>> = { minimal: 1500, low: 3000, medium: 5000, high: 8000 }

/** Output tokens expected per call at `effort`: the `--dry-run` estimate, and `--max-cost`'s at batch submission. */
export const expectedOutputOf = (effort: string): number => EXPECTED_OUTPUT[effort] ?? 8000

/** Cost in USD; `input` includes the cached tokens (as OpenAI reports it). Undefined when the model is unpriced. */
export const costOf = (model: string, usage: Usage, options: { batch?: boolean } = {}): number | undefined => {
  const price = priceOf(model)
  if (price === undefined) return undefined
  const uncached = Math.max(0, usage.input - usage.cached)
  const usd = (uncached * price.input + usage.cached * price.cachedInput + usage.output * price.output) / 1_000_000
  return options.batch === true ? usd / 2 : usd
}
