/**
 * A fake model for generate/enrich tests: it answers each request with a task that obeys the output
 * schema and the inventory (the finance one unless told), derived from the request text (so answers
 * differ per sample), the way a strict-mode model would (optional params sent as null). A request that
 * names a focus tool gets a plan that calls it (after a call that provides its inputs, when it needs
 * one), with the requested number of calls; the domains and subjects stages get lists.
 */
import { open } from "node:fs/promises"
import type { Inventory } from "../../src/domain/inventory.js"
import { focusTools } from "../../src/skyrl/focusTools.js"
import type { FakeContext } from "./fakeOpenAI.js"
import { loadInventory } from "./inventories.js"

const TICKERS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM", "V", "XOM", "KO", "AMD", "INTC"]

/** The user message of a Responses or Chat request body (the last one). */
export const lastUserText = (body: any): string => {
  const messages: Array<any> = body?.input ?? body?.messages ?? []
  const users = messages.filter((m) => m.role === "user")
  const content = users[users.length - 1]?.content
  return typeof content === "string" ? content : JSON.stringify(content ?? "")
}

/** The first user message of a request body (the request; later ones are repairs). */
export const firstUserText = (body: any): string => {
  const messages: Array<any> = body?.input ?? body?.messages ?? []
  const content = messages.find((m) => m.role === "user")?.content
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

const finance = loadInventory("finance-mcp")

/** The output schema's name of a request body (`skyrl_task`, `skyrl_domains`, `skyrl_subjects`). */
export const schemaNameOf = (body: any): string | undefined =>
  body?.text?.format?.name ?? body?.response_format?.json_schema?.name

/** Whether a request is one of the stages before the tasks (domains, subjects). */
export const isStageRequest = (body: any): boolean =>
  schemaNameOf(body) === "skyrl_domains" || schemaNameOf(body) === "skyrl_subjects"

/** Domain-free domains (no word of the finance list in test/support/financeWords.ts). */
export const FAKE_DOMAINS = [
  "testing tool integrations",
  "demo sessions for new users",
  "quality checks of sample data",
  "support troubleshooting",
  "research assistance",
  "workflow automation"
]

/** The domains stage's answer, or the subjects stage's: `K` subjects per `- DOMAIN: K subjects` line. */
export const stageAnswerText = (body: any): string => {
  if (schemaNameOf(body) === "skyrl_domains") return JSON.stringify({ domains: FAKE_DOMAINS })
  const wanted = [...lastUserText(body).matchAll(/^- (.+): (\d+) subjects$/gm)]
  return JSON.stringify({
    domains: wanted.map(([, domain, n], d) => ({
      domain,
      subjects: Array.from({ length: Number(n) }, (_, i) => `topic ${d + 1}-${i + 1}`)
    }))
  })
}

/** The focus tool a request names (and the params it needs from an earlier call), when it names one. */
export const focusOf = (
  text: string
): { readonly server: string; readonly tool: string; readonly needs: ReadonlyArray<string> } | undefined => {
  const m =
    /Focus tool: the plan must call (\S+) \(server "([^"]+)"\)(?: as a later step, after a call whose result provides its (.+)\.)?/
      .exec(text)
  return m === null ? undefined : { server: m[2], tool: m[1], needs: m[3] === undefined ? [] : m[3].split(", ") }
}

/** The subject a request names ("Subject: build the task around \"...\"."). */
export const subjectOf = (text: string): string | undefined => {
  const m = /Subject: build the task around (".*")\.$/m.exec(text)
  return m === null ? undefined : JSON.parse(m[1])
}

type Schema = Record<string, any>

/** A schema-valid literal value that differs with `seed` wherever the schema leaves room. */
const valueFor = (schema: Schema | undefined, seed: number, label: string): unknown => {
  const s = schema ?? {}
  if (Array.isArray(s.enum)) return s.enum[seed % s.enum.length]
  const type = Array.isArray(s.type) ? s.type[0] : s.type
  if (type === "integer" || type === "number") {
    const min = typeof s.minimum === "number" ? s.minimum : 1
    const max = typeof s.maximum === "number" ? s.maximum : min + 10_000
    return min + (seed % (max - min + 1))
  }
  if (type === "boolean") return seed % 2 === 0
  if (type === "array") return [valueFor(s.items, seed, label)]
  if (type === "object") {
    const props = s.properties ?? {}
    return Object.fromEntries((s.required ?? []).map((k: string) => [k, valueFor(props[k], seed, `${label} ${k}`)]))
  }
  if (s.format === "date" || /YYYY-MM-DD/.test(s.description ?? "")) {
    return `2026-${String((seed % 12) + 1).padStart(2, "0")}-${String((seed % 28) + 1).padStart(2, "0")}`
  }
  if (s.format === "uri") return `https://example.org/${label.replace(/\W+/g, "-")}-${seed}`
  return `${label} ${seed}`
}

interface FakeStep {
  readonly server: string
  readonly tool: string
  readonly params: Record<string, unknown>
  readonly depends_on?: ReadonlyArray<number>
  readonly derived_params?: ReadonlyArray<string>
}

/** Params of a tool: required ones with values, optional ones null (strict mode), `derived` illustrative. */
const paramsOf = (inputSchema: Schema, seed: number, label: string, derived: ReadonlyArray<string> = []) => {
  const props: Record<string, Schema> = inputSchema.properties ?? {}
  const required = new Set<string>(inputSchema.required ?? [])
  return Object.fromEntries(
    Object.entries(props).map(([name, p]) => [
      name,
      derived.includes(name)
        ? valueFor(p, seed + 7, `${name} found`)
        : required.has(name)
        ? valueFor(p, seed, label)
        : null
    ])
  )
}

/** Whether a tool has a required param whose value can vary freely (so plans with it differ per sample). */
const varies = (inputSchema: Schema): boolean =>
  (inputSchema.required ?? []).some((name: string) => {
    const p = inputSchema.properties?.[name] ?? {}
    return !Array.isArray(p.enum) && (p.type === "string" || (p.type === "number" && p.maximum === undefined) ||
      (p.type === "integer" && p.maximum === undefined))
  })

/**
 * A valid task (the model's JSON text) around a focus tool: a starting call first when the focus tool
 * needs an earlier result, then calls of other tools (those whose params vary first, so two samples'
 * plans never coincide) up to the requested complexity.
 */
/** The literal (not derived) param values of the steps, as a sentence the prompt ends with ("" when none). */
const statedValues = (steps: ReadonlyArray<FakeStep>): string => {
  const leaves: Array<string> = []
  const walk = (v: unknown): void => {
    if (v === null || v === undefined) return
    if (Array.isArray(v)) v.forEach(walk)
    else if (typeof v === "object") Object.values(v).forEach(walk)
    else leaves.push(String(v))
  }
  for (const s of steps) {
    for (const [name, value] of Object.entries(s.params)) if (!(s.derived_params ?? []).includes(name)) walk(value)
  }
  return leaves.length === 0 ? "" : ` Use these values: ${[...new Set(leaves)].join("; ")}.`
}

/** Words that end a description's opening phrase ("get real-time stock quote| including price, ..."). */
const PHRASE_END = new Set(["including", "for", "by", "using", "in", "from", "with", "along", "about", "and", "that"])
/** Another verb for a phrase that would spell its tool's name ("get previous close" for fmp_get_previous_close). */
const OTHER_VERB: Readonly<Record<string, string>> = {
  get: "look up",
  execute: "run",
  store: "save",
  analyze: "examine"
}

/**
 * What a call of `tool` is for, in words that never spell its name: its description's opening phrase (up to
 * six words, "get real-time stock quote" for fmp_get_quote), with another verb where that phrase would spell
 * the name as words ("look up previous close price", not "get previous close price"), as a model asked not to
 * name tools writes it. Throws for a tool whose phrase still spells its name (a new inventory needs a verb).
 */
export const actionOf = (inventory: Inventory, server: string, tool: string): string => {
  const description = inventory.servers.find((s) => s.name === server)?.tools.find((t) => t.name === tool)
    ?.description ?? ""
  const words: Array<string> = []
  for (const w of description.split(/[.,;:(]/)[0].trim().split(/\s+/)) {
    const end = PHRASE_END.has(w.toLowerCase()) ? 2 : w === "to" ? 3 : 7
    if (w === "" || words.length === 6 || words.length >= end) break
    words.push(words.length === 0 && /^\p{Lu}\p{Ll}/u.test(w) ? w.toLowerCase() : w)
  }
  if (words.length === 0) return "do what the task needs"
  // The name's words, and those after its server's prefix (`get previous close` of fmp_get_previous_close).
  const parts = tool.toLowerCase().split(/[-_.]+/)
  // A one-word name (`search` of tavily_search, `echo`) is an ordinary word: only the server's with it spells it.
  const bare = parts[0] === server.toLowerCase() && parts.length > 2 ? parts.slice(1) : parts
  const spells = (phrase: string) => ` ${phrase.toLowerCase()} `.includes(` ${bare.join(" ")} `)
  let phrase = words.join(" ")
  if (spells(phrase)) phrase = [OTHER_VERB[words[0]] ?? words[0], ...words.slice(1)].join(" ")
  if (spells(phrase)) throw new Error(`fakeTasks: "${phrase}" spells ${tool}; give its verb another in OTHER_VERB`)
  return phrase
}

export const focusTaskText = (
  inventory: Inventory,
  k: number,
  variant: number,
  complexity: Complexity,
  focus: { readonly server: string; readonly tool: string; readonly needs: ReadonlyArray<string> },
  subject?: string
): string => {
  const tools = focusTools(inventory)
  const schemaOf = (server: string, tool: string): Schema =>
    inventory.servers.find((s) => s.name === server)!.tools.find((t) => t.name === tool)!.inputSchema as Schema
  const seed = k * 31 + variant
  const about = subject ?? `item ${k}`
  const starters = tools.filter((t) => t.needs.length === 0 && t.tool !== focus.tool)
    .sort((a, b) => Number(varies(schemaOf(b.server, b.tool))) - Number(varies(schemaOf(a.server, a.tool))))
  const steps: Array<FakeStep> = []
  if (focus.needs.length > 0) {
    const first = starters[0]
    steps.push({
      server: first.server,
      tool: first.tool,
      params: paramsOf(schemaOf(first.server, first.tool), seed, about)
    })
    steps.push({
      ...focus,
      params: paramsOf(schemaOf(focus.server, focus.tool), seed, about, focus.needs),
      depends_on: [1],
      derived_params: focus.needs
    })
  } else {
    steps.push({
      server: focus.server,
      tool: focus.tool,
      params: paramsOf(schemaOf(focus.server, focus.tool), seed, about)
    })
  }
  for (const t of starters) {
    if (steps.length >= CALLS[complexity]) break
    if (steps.some((s) => s.tool === t.tool)) continue
    steps.push({
      server: t.server,
      tool: t.tool,
      params: paramsOf(schemaOf(t.server, t.tool), seed + steps.length, about)
    })
  }
  return JSON.stringify({
    task_id: `fake-${k}-${variant}`,
    // A model is told to state every literal value its plan uses and never to name a tool, not even as words
    // (generate repairs both): it says what each call is for, as the tool's description does.
    user_prompt: `Sample ${k} variant ${variant}: about ${about}, ${
      steps.map((s) => actionOf(inventory, s.server, s.tool)).join(" then ")
    } and ` +
      `report what comes back.${statedValues(steps)}`,
    complexity,
    domain: "testing",
    assumptions: [],
    max_turns: steps.length + 2,
    tool_sequence: steps,
    evaluation_rubric: {
      name: "focus task",
      criteria: [{ name: "grounded", description: "figures come from tool results", scoring: "0-1" }]
    }
  })
}

/**
 * Answers every request: a stage's list, a task around the requested focus tool on `inventory` (the
 * finance one by default), or, for a request without one, the quote-and-news task of its sample.
 */
export const validTaskFor = (ctx: FakeContext, inventory: Inventory = finance): string => {
  if (isStageRequest(ctx.body)) return stageAnswerText(ctx.body)
  const k = sampleNumberOf(ctx.body) ?? ctx.index + 1
  // The request itself (a repair's last message is the list of problems).
  const text = firstUserText(ctx.body)
  const attempt = /attempt (\d+)/.exec(text)
  const variant = attempt === null ? 0 : Number(attempt[1])
  const focus = focusOf(text)
  const complexity = requestedComplexityOf(ctx.body) ?? "simple"
  return focus === undefined
    ? validTaskText(k, variant, requestedComplexityOf(ctx.body))
    : focusTaskText(inventory, k, variant, complexity, focus, subjectOf(text))
}

/** A handler that answers the stages (domains, subjects) itself and hands every task request to `handler`. */
export const withStages =
  <R>(handler: (ctx: FakeContext) => R, stageReply: (text: string) => R) => (ctx: FakeContext): R =>
    isStageRequest(ctx.body) ? stageReply(stageAnswerText(ctx.body)) : handler(ctx)

/** A task request (not a stage's). */
export const isTaskRequest = (body: any): boolean => schemaNameOf(body) === "skyrl_task"

/**
 * Writes `n` tasks as a model writes them, 10,000 lines a write (unique prompts; no null params: convert takes
 * tasks): bench section 2's input, and the large inputs of tests.
 */
export const writeTasks = async (file: string, n: number) => {
  const handle = await open(file, "w")
  let lines: Array<string> = []
  for (let k = 1; k <= n; k++) {
    lines.push(validTaskText(k, k % 7).replace("\"limit\":null", "\"limit\":3"))
    if (lines.length === 10_000 || k === n) {
      await handle.write(lines.join("\n") + "\n")
      lines = []
    }
  }
  await handle.close()
}
