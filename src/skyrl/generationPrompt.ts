/**
 * The request text for `generate`. What every request of a run shares (instructions and the tool
 * catalogue) comes first and is byte-identical across the run, so OpenAI's prompt cache applies; what
 * varies per sample (index, domain, complexity, and the sample's brief: focus tool, style, persona,
 * subject, what to avoid) is the short user message at the end. No domain is assumed: examples of
 * realistic values come from the inventory's own schemas (valueHints.ts).
 */
import type { Inventory } from "../domain/inventory.js"
import type { Complexity } from "../domain/task.js"
import type { SampleBrief } from "./sampleBrief.js"
import { renderSampleBrief } from "./sampleBrief.js"
import { renderValueRule } from "./valueHints.js"

export interface GenerationSettings {
  readonly maxTools: number
  readonly maxTurns: number
  /** The run's `as_of` date: relative dates in tasks resolve against it (the rows' `Today is` line). */
  readonly asOf?: string | undefined
}

const COMPLEXITY_GUIDE: Record<Complexity, string> = {
  simple: "1-2 tool calls, usually one server",
  moderate: "3-4 tool calls across at least two servers, some using what earlier calls return",
  complex: "5 or more tool calls across several servers with real planning (gather, compute, then act)"
}

/** What every instruction text says about param provenance (generate and enrich). */
export const PROVENANCE_RULES: ReadonlyArray<string> = [
  "- Param provenance. A step that uses what earlier calls return lists those steps' numbers (1 = the first",
  "  call) in depends_on, and the names of the params whose values come from those results in derived_params.",
  "  Give a derived param an illustrative, schema-valid value: what the earlier result would plausibly contain",
  "  (e.g. the id a search returns, a summary of what earlier calls fetched). Agents are not scored on it.",
  "- Every other param is literal: its value comes from the user prompt or is fixed by the task, and a correct",
  "  agent sends exactly that value. A step that uses no earlier result has empty depends_on and derived_params.",
  "- No placeholders in any param (\"<id>\", \"TBD\", \"${...}\", \"from step 1\"): a derived param gets a",
  "  plausible value and is marked derived instead."
]

/** `Today is YYYY-MM-DD ...`: the date tasks are written for (when the run has one). */
export const dateRule = (asOf: string | undefined): ReadonlyArray<string> =>
  asOf === undefined
    ? []
    : [`- Today is ${asOf}: relative dates ("today", "last week") resolve against it; agents see the same date.`]

const describeParam = (name: string, schema: unknown, required: boolean): string => {
  const s = (typeof schema === "object" && schema !== null ? schema : {}) as Record<string, unknown>
  const type = Array.isArray(s.enum)
    ? s.enum.map((v) => JSON.stringify(v)).join("|")
    : typeof s.type === "string"
    ? s.type
    : "any"
  const parts = [type, required ? "required" : "optional"]
  if (s.default !== undefined) parts.push(`default ${JSON.stringify(s.default)}`)
  const description = typeof s.description === "string" ? `: ${s.description.replace(/\s+/g, " ").trim()}` : ""
  return `    ${name} (${parts.join(", ")})${description}`
}

/** The catalogue as text: servers, tools, descriptions and params (the strict schema constrains the rest). */
export const renderCatalogue = (inventory: Inventory): string => {
  const lines: Array<string> = []
  for (const server of inventory.servers) {
    lines.push(`Server "${server.name}":`)
    for (const tool of server.tools) {
      lines.push(`  ${tool.name}: ${tool.description.replace(/\s+/g, " ").trim()}`)
      const schema = tool.inputSchema as { properties?: Record<string, unknown>; required?: ReadonlyArray<string> }
      const required = new Set(schema.required ?? [])
      for (const [name, p] of Object.entries(schema.properties ?? {})) {
        lines.push(describeParam(name, p, required.has(name)))
      }
    }
  }
  return lines.join("\n")
}

/** The shared prefix (instructions + catalogue). Identical for every request of a run. */
export const renderInstructions = (inventory: Inventory, settings: GenerationSettings): string =>
  [
    "You write training tasks for an AI agent that solves requests by calling tools on MCP servers.",
    "Each task is a realistic request a user would send, plus the ground-truth plan: the exact, ordered",
    "tool calls that solve it. The plan is used to score agents, so it must be correct and executable.",
    "",
    "Rules:",
    "- Use only tools from the catalogue below, each on the server that lists it.",
    renderValueRule(inventory),
    "- Give optional params only when the task needs them; send null for the others.",
    ...PROVENANCE_RULES,
    ...dateRule(settings.asOf),
    `- At most ${settings.maxTools} tool calls; the agent has at most ${settings.maxTurns} turns.`,
    "- The user prompt states the goal, the expected output and any constraints in plain language, including",
    "  every literal value the plan uses (names, dates, identifiers, counts). It never names a tool in any form,",
    "  as written or as words (not \"weather get forecast\" for weather_get_forecast): it says what is wanted",
    "  (\"tomorrow's forecast for Oslo\"). Nor does it spell out the plan. 1-4 sentences.",
    `- Complexity follows the number of calls: simple = ${COMPLEXITY_GUIDE.simple};`,
    `  moderate = ${COMPLEXITY_GUIDE.moderate};`,
    `  complex = ${COMPLEXITY_GUIDE.complex}.`,
    "- max_turns: the turns a competent agent needs (tool calls + 1 for the answer), within the limit.",
    "- assumptions: facts the task takes for granted (e.g. that a record it reads exists); may be empty.",
    "- evaluation_rubric: 2-4 criteria, each with a name, what it checks, and how it is scored.",
    "- task_id: a short lowercase slug describing the task.",
    "",
    "Tool catalogue:",
    renderCatalogue(inventory)
  ].join("\n")

export interface SampleSpec {
  readonly index: number
  readonly total: number
  readonly domain: string
  readonly complexity: Complexity
  /** Attempt number for this sample (a replacement after a rejected attempt asks for a different task). */
  readonly attempt: number
  /** What makes this sample differ from the others (focus tool, style, persona, subject, what to avoid). */
  readonly brief?: SampleBrief | undefined
}

/** The varying suffix: one short user message per sample. */
export const renderSampleRequest = (spec: SampleSpec): string =>
  [
    `Write task ${spec.index + 1} of ${spec.total}.`,
    `Domain: ${spec.domain}.`,
    `Complexity: ${spec.complexity} (${COMPLEXITY_GUIDE[spec.complexity]}).`,
    ...renderSampleBrief(spec.brief ?? {}),
    ...(spec.attempt > 1
      ? [`This is attempt ${spec.attempt}: an earlier task for this slot was rejected, so write a different one.`]
      : spec.brief?.subject === undefined
      ? ["Pick a subject other tasks in this domain would not pick first."]
      : []),
    "Answer with the JSON object only."
  ].join("\n")
