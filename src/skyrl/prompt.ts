/**
 * The compact system message: short instructions, the exact tool-call syntax MCPToolEnv parses, and a
 * one-line signature per available tool. SkyRL drops prompts over `max_prompt_length` tokens (512 by
 * default) silently, so the message stays small and its size is reported.
 */
import type { Inventory, InventoryTool } from "../domain/inventory.js"
import { findTool } from "../domain/inventory.js"

export const TOOL_CALL_SYNTAX = "<tool_call>{\"name\": \"TOOL\", \"arguments\": {...}}</tool_call>"

const MAX_DESCRIPTION = 60

const typeLabel = (schema: unknown): string => {
  if (typeof schema !== "object" || schema === null) return "any"
  const s = schema as Record<string, unknown>
  if (Array.isArray(s.enum) && s.enum.length > 0 && s.enum.length <= 4) {
    return s.enum.map((v) => JSON.stringify(v)).join("|")
  }
  if (typeof s.type === "string") return s.type === "array" ? `${typeLabel(s.items)}[]` : s.type
  if (Array.isArray(s.type)) return s.type.join("|")
  return "any"
}

const shorten = (text: string): string => {
  const oneLine = text.replace(/\s+/g, " ").trim()
  const firstSentence = oneLine.split(/(?<=\.)\s/)[0] ?? oneLine
  const base = firstSentence.length <= MAX_DESCRIPTION ? firstSentence : oneLine
  return base.length <= MAX_DESCRIPTION ? base.replace(/\.$/, "") : `${base.slice(0, MAX_DESCRIPTION - 1).trimEnd()}…`
}

/** `name(a: string, b?: integer) - description`; optional params carry `?`. */
export const toolSignature = (tool: InventoryTool): string => {
  const schema = tool.inputSchema as { properties?: Record<string, unknown>; required?: ReadonlyArray<string> }
  const required = new Set(schema.required ?? [])
  const params = Object.entries(schema.properties ?? {}).map(([name, s]) =>
    `${name}${required.has(name) ? "" : "?"}: ${typeLabel(s)}`
  )
  const description = shorten(tool.description)
  return `${tool.name}(${params.join(", ")})${description === "" ? "" : ` - ${description}`}`
}

/** A tool missing from the inventory is listed by the param names the plan uses. */
const fallbackSignature = (name: string, paramNames: ReadonlyArray<string>): string =>
  `${name}(${paramNames.join(", ")})`

export interface PromptTool {
  readonly name: string
  /** Param names seen in the plan, used when the inventory does not know the tool. */
  readonly paramNames: ReadonlyArray<string>
}

export const renderSystemPrompt = (tools: ReadonlyArray<PromptTool>, inventory?: Inventory): string => {
  const lines = tools.map((t) => {
    const found = inventory === undefined ? undefined : findTool(inventory, t.name)
    return `- ${found === undefined ? fallbackSignature(t.name, t.paramNames) : toolSignature(found.tool)}`
  })
  return [
    "You are an agent that solves the user's task with tools. Plan, then call tools one at a time.",
    `To call a tool, reply with exactly: ${TOOL_CALL_SYNTAX}`,
    "Each result comes back in <tool_response></tool_response>. Use real values from earlier results.",
    "When the task is done, reply with the final answer and no tool call.",
    "Tools:",
    ...lines
  ].join("\n")
}

/**
 * A token estimate without a tokenizer: words, numbers and single punctuation marks each count as one
 * token, which tracks BPE counts of English prose and JSON closely (validate uses a real BPE tokenizer).
 */
const countTokens = (text: string): number => (text.match(/[A-Za-z]+|\d{1,3}|[^\sA-Za-z\d]/g) ?? []).length

/** System messages repeat across rows (same tool sets): their estimates are remembered (bounded). */
const estimates = new Map<string, number>()

export const estimateTokens = (text: string): number => {
  if (text.length < 256) return countTokens(text)
  let n = estimates.get(text)
  if (n === undefined) {
    if (estimates.size >= 4096) estimates.clear()
    n = countTokens(text)
    estimates.set(text, n)
  }
  return n
}

/** Chat-template overhead per message (role markers), as in common templates. */
export const MESSAGE_OVERHEAD_TOKENS = 4
