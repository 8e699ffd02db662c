/**
 * The finance words of skyrl's shared generation instructions (src/skyrl/generationPrompt.ts as of
 * issue 18: "real tickers and company names", "channel names", "market hours", "company, ticker, topic,
 * channel") and of the default domains (src/skyrl/workPlan.ts DEFAULT_DOMAINS: "equity research",
 * "market monitoring", "news and sentiment", "quantitative analysis with python", "team reporting on
 * slack", "web research on companies"), plus the obvious finance vocabulary next to them.
 *
 * `financeWordsIn(request, inventory)` lists those that appear in a request although the inventory's own
 * text (server and tool names, descriptions, schemas) never uses them: for a non-finance inventory, the
 * request must come out empty.
 */
import { expect } from "vitest"
import type { Inventory } from "../../src/domain/inventory.js"

export const FINANCE_WORDS: ReadonlyArray<string> = [
  "ticker",
  "tickers",
  "company",
  "companies",
  "channel",
  "channels",
  "market",
  "markets",
  "equity",
  "equities",
  "stock",
  "stocks",
  "sentiment",
  "news",
  "quantitative",
  "python",
  "slack",
  "finance",
  "financial",
  "earnings",
  "portfolio",
  "trading"
]

const wordsOf = (text: string): Set<string> => new Set(text.toLowerCase().split(/[^\p{L}\p{N}]+/u))

/** Finance words in `request` that the inventory's own text does not contain (whole words, any case). */
export const financeWordsIn = (request: string, inventory: Inventory): ReadonlyArray<string> => {
  const own = wordsOf(JSON.stringify(inventory))
  const used = wordsOf(request)
  return FINANCE_WORDS.filter((w) => used.has(w) && !own.has(w))
}

/** Fails the test naming each finance word left in the request. */
export const expectNoFinanceWords = (request: string, inventory: Inventory): void => {
  expect(financeWordsIn(request, inventory), "finance words in a request for a non-finance inventory").toEqual([])
}
