/**
 * The request text for `enrich`: the model plans tool calls for a prompt that already exists.
 *
 * The shared prefix (instructions, plus the catalogue when one inventory file serves every row) is
 * byte-identical across a run so the prompt cache applies. The varying user message carries the row's
 * system message and user request between fixed markers, and which tools this prompt offers: tool names
 * when they come from the inventory file, the whole catalogue when it comes from the prompt's own `<tools>`
 * block (`--inventory-from-prompt`). The `<tools>` JSON itself is left out of the quoted system message
 * (the catalogue says the same in fewer tokens). The model copies the user request into `user_prompt`,
 * but that field is never used: the row's prompt is the source text.
 */
import type { Inventory } from "../domain/inventory.js"
import type { GenerationSettings } from "./generationPrompt.js"
import { dateRule, PROVENANCE_RULES, renderCatalogue } from "./generationPrompt.js"
import { findToolsBlock } from "./sources.js"

export const USER_BEGIN = "<<<USER_REQUEST"
export const USER_END = "USER_REQUEST>>>"
export const SYSTEM_BEGIN = "<<<SYSTEM_MESSAGE"
export const SYSTEM_END = "SYSTEM_MESSAGE>>>"
export const TOOLS_OMITTED = "[tool list omitted here: the tools this request offers are listed above]"

/** The shared prefix. `catalogue` is the inventory file's catalogue (undefined when tools come per prompt). */
export const renderEnrichInstructions = (catalogue: Inventory | undefined, settings: GenerationSettings): string =>
  [
    "You write the ground-truth tool plan for a request a user already sent to an AI agent that solves",
    "requests by calling tools on MCP servers. The request and the agent's system message are given and",
    "stay exactly as they are; you add the plan: the exact, ordered tool calls a competent agent makes to",
    "fulfil the request. The plan is used to score agents, so it must be correct and executable.",
    "",
    "Rules:",
    "- user_prompt: copy the user request verbatim (it is kept from the source; do not rewrite it).",
    "- Use only the tools this request offers (listed with the request), each on the server that lists it.",
    "- Take literal param values from the request. Where it leaves a value open, choose a concrete, realistic",
    "  one and say so in assumptions.",
    "- Give optional params only when the request needs them; send null for the others.",
    ...PROVENANCE_RULES,
    ...dateRule(settings.asOf),
    `- At most ${settings.maxTools} tool calls; the agent has at most ${settings.maxTurns} turns.`,
    "- If the request cannot be fully served by the offered tools, plan the calls that serve the part they can",
    "  and name what is left out in assumptions.",
    "- complexity follows the number of calls: simple = 1-2 calls, moderate = 3-4 calls, complex = 5 or more.",
    "- max_turns: the turns a competent agent needs (tool calls + 1 for the answer), within the limit.",
    "- domain: a short label of the request's subject area.",
    "- evaluation_rubric: 2-4 criteria, each with a name, what it checks, and how it is scored.",
    "- task_id: a short lowercase slug describing the request.",
    ...(catalogue === undefined ? [] : ["", "Tool catalogue:", renderCatalogue(catalogue)])
  ].join("\n")

export interface EnrichRequestSpec {
  /** 0-based row index in the source file. */
  readonly row: number
  readonly id: string | undefined
  readonly system: string | undefined
  readonly user: string
  /** The tools offered to this request: `names` (server/tool, details in the shared catalogue) or a whole catalogue. */
  readonly offered:
    | { readonly _tag: "names"; readonly tools: ReadonlyArray<{ readonly server: string; readonly tool: string }> }
    | { readonly _tag: "catalogue"; readonly inventory: Inventory }
    | { readonly _tag: "all" }
  readonly attempt: number
}

/** The system message as quoted to the model: its `<tools>` JSON block replaced by a short note. */
export const quoteSystem = (system: string): string => {
  const block = findToolsBlock(system)
  return block === undefined
    ? system
    : `${system.slice(0, block.start)}<tools>${TOOLS_OMITTED}</tools>${system.slice(block.end)}`
}

/** The varying user message for one row. */
export const renderEnrichRequest = (spec: EnrichRequestSpec): string => {
  const lines: Array<string> = [
    `Plan the request of source row ${spec.row}${spec.id === undefined ? "" : ` (id ${spec.id})`}.`
  ]
  switch (spec.offered._tag) {
    case "all":
      lines.push("Tools offered: every tool of the catalogue.")
      break
    case "names":
      lines.push(
        `Tools offered (only these): ${spec.offered.tools.map((t) => `${t.server}/${t.tool}`).join(", ")}.`
      )
      break
    case "catalogue":
      lines.push("Tools offered (only these):", renderCatalogue(spec.offered.inventory))
      break
  }
  lines.push(
    "",
    spec.system === undefined ? "The request has no system message." : "The agent's system message:",
    ...(spec.system === undefined ? [] : [SYSTEM_BEGIN, quoteSystem(spec.system).trim(), SYSTEM_END]),
    "",
    "The user request:",
    USER_BEGIN,
    spec.user.trim(),
    USER_END,
    "",
    spec.attempt > 1
      ? `This is attempt ${spec.attempt}: an earlier plan for this request was rejected; plan it again carefully.`
      : "Answer with the JSON object only."
  )
  return lines.join("\n")
}
