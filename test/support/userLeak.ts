/**
 * The plan the prompt/user-names-tool reading tests use (fmp_get_quote, then polygon_get_news), and `named`: the part
 * of `userLeak`'s answer for it that names tools.
 */
import { userLeak } from "../../src/skyrl/promptLeak.js"
import type { PromptReading } from "../../src/skyrl/promptReading.js"

export const plan = [
  { step: 1, server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } },
  { step: 2, server: "polygon", tool: "polygon_get_news", params: { ticker: "AAPL", limit: 3 } }
]

/** The part of `userLeak`'s answer that names tools, or undefined. */
export const named = (user: string, reading?: PromptReading): string | undefined =>
  userLeak(user, plan, reading)?.replace(/: the policy is told the plan instead of choosing it$/, "").split("; ")
    .filter((p) => p.startsWith("names the plan's")).join("; ") || undefined
