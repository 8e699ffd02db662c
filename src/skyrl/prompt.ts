/**
 * The compact system message: short instructions, the date, the exact tool-call syntax MCPToolEnv parses,
 * and one signature line per offered tool, grouped by server. SkyRL drops prompts over
 * `max_prompt_length` tokens silently, so the message stays small (which tools are offered within the
 * budget is decided in promptTools.ts).
 *
 * A signature is what a policy needs to act: `name(a: string, b?: "x"|"y", c?: {k: integer}[])` —
 * required params plain and optional ones with `?`, enum values (all of them while short, else the
 * first few and a count), one level of object/array shape, and the description cut at a sentence or word
 * boundary.
 */
import type { InventoryTool } from "../domain/inventory.js"

export const TOOL_CALL_SYNTAX = "<tool_call>{\"name\": \"TOOL\", \"arguments\": {...}}</tool_call>"

/** Longest description kept (characters); longer ones are cut at a sentence, else a word boundary. */
export const MAX_DESCRIPTION = 100
/** Enums with at most this many values (and `MAX_ENUM_CHARS` characters) are shown whole. */
const MAX_ENUM_VALUES = 6
const MAX_ENUM_CHARS = 60
/** Values shown of a longer enum, before the count of the rest. */
const ENUM_HEAD = 4

type Json = Record<string, unknown>
const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

const enumLabel = (values: ReadonlyArray<unknown>): string => {
  const shown = values.map((v) => JSON.stringify(v))
  if (shown.length <= MAX_ENUM_VALUES && shown.join("|").length <= MAX_ENUM_CHARS) return shown.join("|")
  return `${shown.slice(0, ENUM_HEAD).join("|")}|…(${values.length - ENUM_HEAD} more)`
}

/** Follows a local `#/$defs/x` or `#/definitions/x` reference (one hop is enough for labels). */
const resolve = (schema: unknown, root: Json): unknown => {
  if (!isObject(schema) || typeof schema.$ref !== "string") return schema
  const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(schema.$ref)
  const defs = match === null ? undefined : root[match[1]!]
  return isObject(defs) ? defs[match![2]!] ?? schema : schema
}

/** `{a: string, b?: integer}`: one level of an object's shape (inner objects show as `object`). */
const objectShape = (schema: Json, root: Json): string => {
  const properties = isObject(schema.properties) ? schema.properties : {}
  const required = new Set(Array.isArray(schema.required) ? schema.required : [])
  const fields = Object.entries(properties).map(([name, s]) =>
    `${name}${required.has(name) ? "" : "?"}: ${typeLabel(s, root, false)}`
  )
  return `{${fields.join(", ")}}`
}

/** The type of a param as shown in a signature; `expand` allows one level of object shape. */
export const typeLabel = (schema: unknown, root: Json = {}, expand = true): string => {
  const s = resolve(schema, root)
  if (!isObject(s)) return "any"
  if (Array.isArray(s.enum) && s.enum.length > 0) return enumLabel(s.enum)
  if (s.const !== undefined) return JSON.stringify(s.const)
  const union = Array.isArray(s.anyOf) ? s.anyOf : Array.isArray(s.oneOf) ? s.oneOf : undefined
  if (union !== undefined) return [...new Set(union.map((b) => typeLabel(b, root, expand)))].join("|")
  const types = Array.isArray(s.type) ? s.type.filter((t) => t !== "null") : [s.type]
  if (types.length !== 1) return types.length === 0 ? "any" : types.join("|")
  const type = types[0]
  if (type === "array") return s.items === undefined ? "array" : `${typeLabel(s.items, root, expand)}[]`
  if (type === "object") {
    return expand && isObject(s.properties) && Object.keys(s.properties).length > 0 ? objectShape(s, root) : "object"
  }
  return typeof type === "string" ? type : "any"
}

const SENTENCE_END = /(?<=[.!?])\s+(?=[A-Z0-9"'(])/

/**
 * One line of at most `max` characters: the first sentence when it fits (without its final period), else
 * the text cut at the last word boundary before `max`, marked with `…`.
 */
export const shortenDescription = (text: string, max = MAX_DESCRIPTION): string => {
  const oneLine = text.replace(/\s+/g, " ").trim()
  const first = oneLine.split(SENTENCE_END)[0] ?? oneLine
  if (first.length <= max) return first.replace(/\.$/, "")
  const cut = oneLine.slice(0, max - 1)
  const space = cut.lastIndexOf(" ")
  return `${(space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,;:.-]+$/, "")}…`
}

/** `name(a: string, b?: integer) - description`, under the name the policy calls it by. */
export const toolSignature = (tool: InventoryTool, callName: string = tool.name): string => {
  const schema = tool.inputSchema as Json
  const properties = isObject(schema.properties) ? schema.properties : {}
  const required = new Set(Array.isArray(schema.required) ? schema.required : [])
  const params = Object.entries(properties).map(([name, s]) =>
    `${name}${required.has(name) ? "" : "?"}: ${typeLabel(s, schema)}`
  )
  const description = shortenDescription(tool.description)
  return `${callName}(${params.join(", ")})${description === "" ? "" : ` - ${description}`}`
}

export interface PromptTool {
  readonly server: string
  readonly tool: string
  /** The name the policy writes in `<tool_call>` (see promptTools.ts `callNames`). */
  readonly callName: string
  /** The inventory entry; undefined for a plan tool the inventory does not know. */
  readonly definition: InventoryTool | undefined
  /** Param names seen in the plan, shown when the inventory does not know the tool. */
  readonly paramNames: ReadonlyArray<string>
}

/** Signature lines by tool entry and call name: every row of a run lists the same tools. */
const cachedLines = new WeakMap<InventoryTool, Map<string, string>>()

/** The line listing one tool. */
export const toolLine = (t: PromptTool): string => {
  if (t.definition === undefined) return `- ${t.callName}(${t.paramNames.join(", ")})`
  let byName = cachedLines.get(t.definition)
  if (byName === undefined) {
    byName = new Map()
    cachedLines.set(t.definition, byName)
  }
  let line = byName.get(t.callName)
  if (line === undefined) {
    line = `- ${toolSignature(t.definition, t.callName)}`
    byName.set(t.callName, line)
  }
  return line
}

/** The line heading a server's tools. */
export const serverLine = (server: string): string => `${server}:`

export interface SystemPromptOptions {
  /** `Today is YYYY-MM-DD.` (omitted when undefined). */
  readonly asOf?: string | undefined
  /**
   * A prompt's own system message (enrich), kept as the message's first paragraph in place of skyrl's
   * opening line; the protocol and tool lines follow it after a blank line.
   */
  readonly preamble?: string | undefined
}

/** The opening line of skyrl's own system message. */
export const AGENT_LINE =
  "You are an agent that solves the user's task with tools. Plan, then call tools one at a time."

/** The protocol line: how a policy calls a tool (MCPToolEnv parses exactly this). */
export const TOOL_CALL_LINE = `To call a tool, reply with exactly: ${TOOL_CALL_SYNTAX}`

/**
 * The system message for tools already in their canonical order (servers grouped as they come); with a
 * `preamble`, that text and then the same protocol and tool lines.
 */
export const renderSystemPrompt = (tools: ReadonlyArray<PromptTool>, options: SystemPromptOptions = {}): string => {
  const lines: Array<string> = []
  let server: string | undefined
  for (const t of tools) {
    if (t.server !== server) {
      server = t.server
      lines.push(serverLine(server))
    }
    lines.push(toolLine(t))
  }
  return [
    ...(options.preamble === undefined
      ? [AGENT_LINE]
      : [options.preamble, ""]),
    ...(options.asOf === undefined ? [] : [`Today is ${options.asOf}.`]),
    TOOL_CALL_LINE,
    "Each result comes back in <tool_response></tool_response>. Use real values from earlier results.",
    "When the task is done, reply with the final answer and no tool call.",
    "Tools by server (\"?\" marks an optional param):",
    ...lines
  ].join("\n")
}

/**
 * A token estimate without a tokenizer: words, numbers and single punctuation marks each count as one
 * token, which tracks BPE counts of English prose and JSON closely. Used for request sizes and cost
 * estimates; prompt budgets use the real BPE count (promptTokens.ts).
 */
const countTokens = (text: string): number => (text.match(/[A-Za-z]+|\d{1,3}|[^\sA-Za-z\d]/g) ?? []).length

/** Request texts repeat across calls (the shared instructions): their estimates are remembered (bounded). */
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
