/**
 * A fake model for generate/enrich tests: it answers each request with a task that obeys the output
 * schema and the finance inventory, derived from the request text (so answers differ per sample), the
 * way a strict-mode model would (optional params sent as null).
 */
import type { FakeContext } from "./fakeOpenAI.js"

const TICKERS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM", "V", "XOM", "KO", "AMD", "INTC"]

/** The user message of a Responses or Chat request body (the last one). */
export const lastUserText = (body: any): string => {
  const messages: Array<any> = body?.input ?? body?.messages ?? []
  const users = messages.filter((m) => m.role === "user")
  const content = users[users.length - 1]?.content
  return typeof content === "string" ? content : JSON.stringify(content ?? "")
}

/** "Write task 7 of 20." → 7 (the 1-based sample number); undefined when absent. */
export const sampleNumberOf = (body: any): number | undefined => {
  const messages: Array<any> = body?.input ?? body?.messages ?? []
  for (const m of messages) {
    const match = typeof m.content === "string" ? /Write task (\d+) of (\d+)/.exec(m.content) : null
    if (match !== null) return Number(match[1])
  }
  return undefined
}

export const isRepairRequest = (body: any): boolean =>
  (body?.input ?? body?.messages ?? []).some((m: any) => m.role === "assistant")

type Complexity = "simple" | "moderate" | "complex"

/** Independent calls that follow the quote and the news, for longer plans (none uses an earlier result). */
const extraSteps = (ticker: string) => [
  { server: "fmp", tool: "fmp_get_company_profile", params: { symbol: ticker } },
  { server: "polygon", tool: "polygon_get_previous_close", params: { ticker } },
  { server: "fmp", tool: "fmp_get_change_percent", params: { symbol: ticker } }
]

/** Calls a plan of each complexity has (simple 1-2, moderate 3-4, complex 5+). */
const CALLS: Record<Complexity, number> = { simple: 2, moderate: 3, complex: 5 }

/** A valid task (as the model's JSON text) for sample number k, with as many calls as `complexity` asks. */
export const validTaskText = (k: number, variant = 0, complexity: Complexity = "simple"): string => {
  const ticker = TICKERS[(k + variant) % TICKERS.length]
  const steps = [
    { server: "fmp", tool: "fmp_get_quote", params: { symbol: ticker } },
    { server: "polygon", tool: "polygon_get_news", params: { ticker, limit: k % 3 === 0 ? null : (k % 5) + 1 } },
    ...extraSteps(ticker)
  ].slice(0, CALLS[complexity])
  return JSON.stringify({
    task_id: `fake-${k}-${variant}`,
    user_prompt: `Sample ${k} variant ${variant}: get ${ticker}'s quote and its latest ${(k % 5) + 1} headlines.`,
    complexity,
    domain: "equity research",
    assumptions: [],
    max_turns: steps.length + 2,
    tool_sequence: steps,
    evaluation_rubric: {
      name: "quote and news",
      criteria: [{ name: "grounded", description: "figures come from tool results", scoring: "0-1" }]
    }
  })
}

/** The complexity a generate request asks for ("Complexity: moderate (...)"), when it names one. */
export const requestedComplexityOf = (body: any): Complexity | undefined => {
  const messages: Array<any> = body?.input ?? body?.messages ?? []
  for (const m of messages) {
    const match = typeof m.content === "string" ? /Complexity: (simple|moderate|complex)\b/.exec(m.content) : null
    if (match !== null) return match[1] as Complexity
  }
  return undefined
}

/** The same task with a param the tool does not take (for repair tests). */
export const invalidTaskText = (k: number): string => {
  const task = JSON.parse(validTaskText(k))
  task.tool_sequence[0] = { server: "fmp", tool: "fmp_get_quote", params: JSON.stringify({ ticker: "AAPL" }) }
  return JSON.stringify(task)
}

/** Answers every request with a valid task for its sample. */
export const validTaskFor = (ctx: FakeContext): string => {
  const k = sampleNumberOf(ctx.body) ?? ctx.index + 1
  const attempt = /attempt (\d+)/.exec(lastUserText(ctx.body))
  return validTaskText(k, attempt === null ? 0 : Number(attempt[1]), requestedComplexityOf(ctx.body))
}
