/**
 * Input formats of `skyrl enrich`: detection and extraction of the prompt (pure, no I/O).
 *
 * Formats (detected per row, or forced with `--input-format`):
 * - `skyrl`: a SkyRL row, `{ prompt: [{ role, content }...], reward_spec?: { ground_truth?: { tool_sequence } } }`.
 *   A row whose `tool_sequence` is a non-empty array already has a plan.
 * - `sharegpt`: a conversation, either a bare array of `{ from, value }` messages (the shape of
 *   test/fixtures/sharegpt/sample_data.json) or `{ id?, conversations: [...] }`. Roles: system, human/user,
 *   gpt/assistant, tool/function_call/observation/function_response/tool_response.
 * - `openai`: an OpenAI message list, a bare array of `{ role, content }` or `{ id?, messages: [...] }`. Roles:
 *   system/developer, user, assistant, tool/function.
 *
 * The prompt is the optional leading system message and the first user message, returned exactly as
 * written in the file (conversion trims them later; nothing else changes). Before the first user message
 * only one system message may come; an assistant or tool message there, a missing user message, empty or
 * non-string content are errors naming the field (a path inside the row such as `[1].from`,
 * `messages[0].content`, `prompt[1].role`).
 *
 * The tool calls the logged agent made after the prompt are extracted in order: `<tool_call>{"name", "arguments"}
 * </tool_call>` blocks in assistant text (Hermes; a string, or text parts read as a prompt message's are), OpenAI `tool_calls` / `function_call` fields, and
 * ShareGPT `function_call` messages. A Hermes `<tools>[...]</tools>` block in the system message is the
 * prompt's own tool catalogue.
 */
import { Either } from "effect"
import { describeType, fieldsOtherThan, isObject } from "../domain/json.js"
import type { OwnColumns } from "./layout.js"
import { ownColumnsOf } from "./layout.js"
import { AGENT_LINE, TOOL_CALL_LINE } from "./prompt.js"
import { loneSurrogateOf } from "./utf8.js"

export const INPUT_FORMATS = ["skyrl", "sharegpt", "openai"] as const
export type InputFormat = (typeof INPUT_FORMATS)[number]

const FORMAT_ARTICLE: Record<InputFormat, string> = { skyrl: "a", sharegpt: "a", openai: "an" }

export const FORMAT_LABEL: Record<InputFormat, string> = {
  skyrl: "SkyRL row",
  sharegpt: "ShareGPT conversation",
  openai: "OpenAI message list"
}

/** One tool call the logged agent made. `message` is the index of the message it was found in. */
export interface ObservedToolCall {
  readonly message: number
  readonly name: string
  readonly arguments: unknown
}

/** A `<tool_call>` block (or call field) that could not be read; kept so nothing is lost silently. */
export interface UnreadableToolCall {
  readonly message: number
  readonly raw: string
  readonly error: string
}

/** A row problem: `field` is a path inside the row (empty for the row as a whole). */
export interface SourceProblem {
  readonly field: string
  readonly reason: string
}

/** A row that needs a plan. */
export interface SourcePrompt {
  readonly _tag: "Prompt"
  readonly format: InputFormat
  /** The row's own id, when it has one (`id`, or a SkyRL row's `task_id`). */
  readonly id: string | undefined
  /** The system message's content exactly as in the file (undefined: the row has none). */
  readonly system: string | undefined
  /** Path of the system message's content in the row, e.g. `[0].value` (for errors about it). */
  readonly systemField: string | undefined
  /** The first user message's content exactly as in the file. */
  readonly user: string
  readonly observedToolCalls: ReadonlyArray<ObservedToolCall>
  readonly unreadableToolCalls: ReadonlyArray<UnreadableToolCall>
  /** True for a SkyRL row that already has a plan (planned again only with --overwrite). */
  readonly hasPlan: boolean
  /** A SkyRL row's columns of the user's own (`ownColumnsOf`), which the row made from it keeps. */
  readonly ownColumns: OwnColumns | undefined
  /** A ShareGPT or OpenAI record's fields skyrl does not read (`otherRecordFields`), kept in the row's metadata. */
  readonly otherFields: Readonly<Record<string, unknown>> | undefined
}

export type SourceRow = SourcePrompt | { readonly _tag: "Invalid"; readonly id: string | undefined } & SourceProblem

type Json = Record<string, unknown>

// ---------------------------------------------------------------------------------------------
// Detection

const everyHas = (list: ReadonlyArray<unknown>, key: string) =>
  list.length > 0 && list.every((m) => isObject(m) && key in m)

/** The format of one row, or undefined when it is none of them. */
export const detectFormat = (value: unknown): InputFormat | undefined => {
  if (Array.isArray(value)) {
    if (everyHas(value, "from")) return "sharegpt"
    if (everyHas(value, "role")) return "openai"
    return undefined
  }
  if (!isObject(value)) return undefined
  if (Array.isArray(value.prompt)) return "skyrl"
  if (Array.isArray(value.conversations)) return "sharegpt"
  if (Array.isArray(value.messages)) return "openai"
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Messages

type Role = "system" | "user" | "assistant" | "tool"

const ROLES: Record<InputFormat, Record<string, Role>> = {
  sharegpt: {
    system: "system",
    human: "user",
    user: "user",
    gpt: "assistant",
    assistant: "assistant",
    function_call: "assistant",
    tool: "tool",
    observation: "tool",
    function_response: "tool",
    tool_response: "tool",
    function: "tool",
    ipython: "tool"
  },
  openai: {
    system: "system",
    developer: "system",
    user: "user",
    human: "user",
    assistant: "assistant",
    tool: "tool",
    function: "tool",
    ipython: "tool"
  },
  skyrl: {
    system: "system",
    developer: "system",
    user: "user",
    human: "user",
    assistant: "assistant",
    tool: "tool",
    function: "tool"
  }
}

interface Message {
  readonly role: Role
  readonly roleName: string
  readonly content: unknown
  readonly raw: Json
  /** Paths of this message's role and content fields (for errors). */
  readonly roleField: string
  readonly contentField: string
}

const messageList = (
  format: InputFormat,
  list: ReadonlyArray<unknown>,
  base: string
): Either.Either<ReadonlyArray<Message>, SourceProblem> => {
  const [roleKey, contentKey] = format === "sharegpt" ? ["from", "value"] : ["role", "content"]
  const out: Array<Message> = []
  for (const [i, m] of list.entries()) {
    const at = `${base}[${i}]`
    if (!isObject(m)) return Either.left({ field: at, reason: `must be a message object, got ${describeType(m)}` })
    const name = m[roleKey]
    if (typeof name !== "string") {
      return Either.left({ field: `${at}.${roleKey}`, reason: name === undefined ? "is missing" : "must be a string" })
    }
    const roles = ROLES[format]
    const key = name.trim().toLowerCase()
    // Own keys only: "constructor" or "__proto__" is no role (an object's prototype would answer for them).
    const role = Object.hasOwn(roles, key) ? roles[key] : undefined
    if (role === undefined) {
      return Either.left({ field: `${at}.${roleKey}`, reason: `unknown role "${name}"` })
    }
    out.push({
      role,
      roleName: name,
      content: m[contentKey],
      raw: m,
      roleField: `${at}.${roleKey}`,
      contentField: `${at}.${contentKey}`
    })
  }
  return Either.right(out)
}

/**
 * The part types whose `text` is the message's text: Chat Completions' "text", the Responses API's "input_text"
 * and, for an assistant's own turns, its "output_text".
 */
const TEXT_PARTS = new Set(["text", "input_text", "output_text"])

/** How a list of parts is read: why a part must be text (the end of the problem's reason), part types passed over. */
interface PartsReading {
  readonly why: string
  readonly skipped: ReadonlySet<string>
}

/** A prompt message's parts: all text, or the prompt would lose what a part holds. */
const PROMPT_PARTS: PartsReading = { why: "only text goes into a prompt", skipped: new Set() }

/**
 * An assistant turn's parts, read for its tool calls: a "refusal" part (OpenAI's other assistant part type) holds
 * none and is passed over; any other part might (a tool use in another format), so it is a problem, named.
 */
const ASSISTANT_PARTS: PartsReading = {
  why: "the tool calls of an assistant turn are read from its text",
  skipped: new Set(["refusal"])
}

/**
 * A content given as a list of parts (`[{"type": "text", "text": "..."}]`, as OpenAI chat logs often hold it):
 * its text parts joined by a line break; the first part that is not text is a problem (an image or audio part
 * has no place in a text prompt, and no tool call can be read from it), unless `reading` passes its type over.
 */
const partsText = (
  parts: ReadonlyArray<unknown>,
  field: string,
  reading: PartsReading
): Either.Either<string, SourceProblem> => {
  const texts: Array<string> = []
  for (const [i, part] of parts.entries()) {
    const type = isObject(part) ? part.type : undefined
    if (typeof type === "string" && reading.skipped.has(type)) continue
    if (!isObject(part) || typeof type !== "string" || !TEXT_PARTS.has(type) || typeof part.text !== "string") {
      return Either.left({
        field: `${field}[${i}]`,
        reason: `must be a text part ({"type": "text", "text": "..."}), got ${
          typeof type === "string" ? `a part of type "${type}"` : describeType(part)
        } (${reading.why})`
      })
    }
    texts.push(part.text)
  }
  return Either.right(texts.join("\n"))
}

/**
 * The text of a message's content, the one reading of it for every role: a string as it is, a list of parts
 * through `partsText`; undefined for any other content (missing, null as beside `tool_calls`, an object).
 */
const contentText = (m: Message, reading: PartsReading): Either.Either<string | undefined, SourceProblem> =>
  typeof m.content === "string"
    ? Either.right(m.content)
    : Array.isArray(m.content)
    ? partsText(m.content, m.contentField, reading)
    : Either.right(undefined)

const textContent = (m: Message): Either.Either<string, SourceProblem> => {
  if (m.content === undefined || m.content === null) return Either.left({ field: m.contentField, reason: "is missing" })
  if (typeof m.content !== "string" && !Array.isArray(m.content)) {
    return Either.left({
      field: m.contentField,
      reason: `must be a string or a list of text parts, got ${describeType(m.content)}`
    })
  }
  const read = contentText(m, PROMPT_PARTS)
  if (Either.isLeft(read)) return Either.left(read.left)
  const text = read.right ?? ""
  if (text.trim() === "") return Either.left({ field: m.contentField, reason: "is empty" })
  // Half a surrogate pair (JSON text can escape one, "\ud83d", e.g. an emoji cut in two): the row would be
  // refused whatever plan came back, as no dataset reader takes it (src/skyrl/utf8.ts).
  const surrogate = loneSurrogateOf(text)
  if (surrogate !== undefined) return Either.left({ field: m.contentField, reason: surrogate })
  return Either.right(text)
}

interface Prompt {
  readonly system: string | undefined
  readonly systemField: string | undefined
  readonly user: string
  /** Index of the first message after the prompt. */
  readonly next: number
}

/** The leading system message (optional) and the first user message, as written. */
const extractPrompt = (messages: ReadonlyArray<Message>, base: string): Either.Either<Prompt, SourceProblem> => {
  let system: string | undefined = undefined
  let systemField: string | undefined = undefined
  for (const [i, m] of messages.entries()) {
    if (m.role === "system") {
      if (system !== undefined) {
        return Either.left({
          field: m.roleField,
          reason: "a second system message before the user message: a prompt has at most one"
        })
      }
      const text = textContent(m)
      if (Either.isLeft(text)) return Either.left(text.left)
      system = text.right
      systemField = m.contentField
      continue
    }
    if (m.role === "user") {
      const text = textContent(m)
      if (Either.isLeft(text)) return Either.left(text.left)
      return Either.right({ system, systemField, user: text.right, next: i + 1 })
    }
    return Either.left({
      field: m.roleField,
      reason: `${m.role} message ("${m.roleName}") where the prompt should be: ` +
        "a prompt is an optional system message followed by the first user message"
    })
  }
  return Either.left({
    field: base,
    reason: messages.length === 0 ? "has no messages" : "has no user message"
  })
}

/**
 * The prompt of a ShareGPT or OpenAI record whose system message or tools are fields of the record (LLaMA-Factory's
 * `system` and `tools`; the OpenAI fine-tuning format's `tools`): `system` stands in for a system message the
 * conversation lacks, and `tools` (a list, or its JSON text; each entry an OpenAI or Hermes function) is shown in
 * the system message as a `<tools>` block, one tool a line, with skyrl's tool-call line after it, as a Hermes prompt
 * shows them (skyrl's opening line where there is no system message). Given twice (a system message in the
 * conversation and `system`; a `<tools>` block in the system message and `tools`), the record is refused.
 */
const withRecordFields = (value: unknown, prompt: Prompt): Either.Either<Prompt, SourceProblem> => {
  if (!isObject(value)) return Either.right(prompt)
  if (value.system !== undefined && value.system !== null && typeof value.system !== "string") {
    return Either.left({ field: "system", reason: `must be text, got ${describeType(value.system)}` })
  }
  const given = typeof value.system === "string" && value.system.trim() !== "" ? value.system : undefined
  if (given !== undefined && prompt.system !== undefined) {
    return Either.left({
      field: "system",
      reason: `the record gives its system message twice (in the conversation, ${prompt.systemField}, and as ` +
        "`system`): a prompt has one"
    })
  }
  const base = given === undefined ? prompt : { ...prompt, system: given, systemField: "system" }
  const tools = recordTools(value.tools)
  if (Either.isLeft(tools)) return Either.left(tools.left)
  if (tools.right.length === 0) return Either.right(base)
  if (base.system !== undefined && findToolsBlock(base.system) !== undefined) {
    return Either.left({
      field: "tools",
      reason: `the record lists its tools twice (a <tools> block in the system message, ${base.systemField}, and ` +
        "`tools`): give them once"
    })
  }
  const block = ["<tools>", ...tools.right.map((t) => JSON.stringify(t)), "</tools>", TOOL_CALL_LINE].join("\n")
  return Either.right({ ...base, system: `${base.system ?? AGENT_LINE}\n\n${block}`, systemField: "tools" })
}

/** A record's `tools`: a list, or the JSON text of one (as LLaMA-Factory writes it); none when absent or empty. */
const recordTools = (tools: unknown): Either.Either<ReadonlyArray<unknown>, SourceProblem> => {
  if (tools === undefined || tools === null || tools === "") return Either.right([])
  const list = typeof tools === "string" ? parseMaybeJson(tools) : tools
  if (!Array.isArray(list)) {
    return Either.left({
      field: "tools",
      reason: `must be a list of tools (OpenAI or Hermes functions) or its JSON text, got ${
        typeof tools === "string" && list === tools ? "text that is not JSON" : describeType(list)
      }`
    })
  }
  const bad = list.findIndex((t) => toolNameOf(t) === undefined)
  return bad === -1 ? Either.right(list) : Either.left({
    field: `tools[${bad}]`,
    reason:
      "must be a function with a name ({\"name\": ...} or {\"type\": \"function\", \"function\": {\"name\": ...}})"
  })
}

// ---------------------------------------------------------------------------------------------
// Tool calls

const TOOL_CALL_BLOCK = /<tool_call>([\s\S]*?)(?:<\/tool_call>|$)/g

const decodeArguments = (args: unknown): unknown => {
  if (typeof args !== "string") return args ?? {}
  try {
    return JSON.parse(args) as unknown
  } catch {
    return args
  }
}

/** A call object `{ name, arguments }` (or `parameters`), as found in Hermes blocks and ShareGPT function calls. */
const readCall = (value: unknown): Either.Either<{ name: string; arguments: unknown }, string> => {
  if (!isObject(value)) return Either.left(`expected an object with "name" and "arguments", got ${describeType(value)}`)
  const fn = isObject(value.function) ? value.function : value
  if (typeof fn.name !== "string" || fn.name.trim() === "") return Either.left("has no \"name\"")
  return Either.right({ name: fn.name, arguments: decodeArguments(fn.arguments ?? fn.parameters ?? fn.args) })
}

/** The `<tool_call>` blocks of one text, in order (an unclosed last block is read to the end). */
export const parseToolCallBlocks = (
  text: string
): ReadonlyArray<Either.Either<{ name: string; arguments: unknown }, { raw: string; error: string }>> => {
  const out: Array<Either.Either<{ name: string; arguments: unknown }, { raw: string; error: string }>> = []
  for (const match of text.matchAll(TOOL_CALL_BLOCK)) {
    const raw = match[1].trim()
    if (raw === "") continue
    let parsed: unknown
    try {
      parsed = JSON.parse(raw)
    } catch (e) {
      out.push(Either.left({ raw, error: `not valid JSON: ${(e as Error).message}` }))
      continue
    }
    const calls = Array.isArray(parsed) ? parsed : [parsed]
    for (const c of calls) {
      out.push(Either.mapLeft(readCall(c), (error) => ({ raw, error })))
    }
  }
  return out
}

/**
 * Every tool call the agent made after the prompt, in order. An assistant turn's text is read as a prompt
 * message's is (`contentText`): a part that is not text is the row's problem, named.
 */
const observedCalls = (
  messages: ReadonlyArray<Message>,
  from: number
): Either.Either<
  { calls: ReadonlyArray<ObservedToolCall>; unreadable: ReadonlyArray<UnreadableToolCall> },
  SourceProblem
> => {
  const calls: Array<ObservedToolCall> = []
  const unreadable: Array<UnreadableToolCall> = []
  const add = (
    message: number,
    r: Either.Either<{ name: string; arguments: unknown }, { raw: string; error: string }>
  ) =>
    Either.match(r, {
      onLeft: (u) => unreadable.push({ message, ...u }),
      onRight: (c) => calls.push({ message, ...c })
    })
  for (let i = from; i < messages.length; i++) {
    const m = messages[i]
    if (m.role !== "assistant") continue
    const read = contentText(m, ASSISTANT_PARTS)
    if (Either.isLeft(read)) return Either.left(read.left)
    const text = read.right
    const isFunctionCallMessage = m.roleName.trim().toLowerCase() === "function_call"
    if (isFunctionCallMessage) {
      if (text !== undefined && !text.includes("<tool_call>")) {
        let parsed: unknown
        try {
          parsed = JSON.parse(text)
        } catch (e) {
          unreadable.push({ message: i, raw: text, error: `not valid JSON: ${(e as Error).message}` })
          continue
        }
        add(i, Either.mapLeft(readCall(parsed), (error) => ({ raw: text, error })))
        continue
      }
      if (isObject(m.content)) {
        add(i, Either.mapLeft(readCall(m.content), (error) => ({ raw: JSON.stringify(m.content), error })))
        continue
      }
    }
    if (text !== undefined) { for (const r of parseToolCallBlocks(text)) add(i, r) }
    if (Array.isArray(m.raw.tool_calls)) {
      for (const c of m.raw.tool_calls) {
        add(i, Either.mapLeft(readCall(c), (error) => ({ raw: JSON.stringify(c), error })))
      }
    }
    if (isObject(m.raw.function_call)) {
      const c = m.raw.function_call
      add(i, Either.mapLeft(readCall(c), (error) => ({ raw: JSON.stringify(c), error })))
    }
  }
  return Either.right({ calls, unreadable })
}

// ---------------------------------------------------------------------------------------------
// The <tools> block

const TOOLS_BLOCK = /<tools>([\s\S]*?)<\/tools>/g

/** Reads a block's text as a JSON array, one object, or one JSON object per line. */
const readToolList = (text: string): ReadonlyArray<unknown> | undefined => {
  const trimmed = text.trim()
  if (trimmed === "") return undefined
  try {
    const value = JSON.parse(trimmed) as unknown
    if (Array.isArray(value)) return value
    if (isObject(value)) return Array.isArray(value.tools) ? value.tools : [value]
    return undefined
  } catch {
    // One tool per line (some Hermes templates write them so).
  }
  const lines = trimmed.split("\n").map((l) => l.trim()).filter((l) => l !== "")
  const out: Array<unknown> = []
  for (const line of lines) {
    try {
      out.push(JSON.parse(line))
    } catch {
      return undefined
    }
  }
  return out
}

export interface ToolsBlock {
  /** The tool entries as written (Hermes/OpenAI function shapes; normalized by the inventory decoder). */
  readonly tools: ReadonlyArray<unknown>
  /** Character range of the block in the text, `<tools>` to `</tools>` inclusive. */
  readonly start: number
  readonly end: number
}

/**
 * The tool catalogue of a system message: the first `<tools>...</tools>` block whose content is a JSON list
 * of tools (prose such as "within <tools> </tools> XML tags" is passed over). Undefined when there is none.
 */
export const findToolsBlock = (system: string): ToolsBlock | undefined => {
  for (const match of system.matchAll(TOOLS_BLOCK)) {
    const tools = readToolList(match[1])
    if (tools !== undefined && tools.length > 0) {
      return { tools, start: match.index, end: match.index + match[0].length }
    }
  }
  return undefined
}

/**
 * Why a `<tools>` block meant as JSON (its text starts with `[` or `{`) does not read as a list of tools, for
 * a system message without a readable block (`findToolsBlock` found none; undefined: no such block). Such a
 * prompt shows the policy a broken list: it is neither a prompt that lists no tools nor one whose tools can
 * be read.
 */
export const brokenToolsBlock = (system: string): string | undefined => {
  for (const match of system.matchAll(TOOLS_BLOCK)) {
    const text = match[1]!.trim()
    if (!text.startsWith("[") && !text.startsWith("{")) continue
    try {
      JSON.parse(text)
      return undefined // an empty list (`[]`, `{"tools": []}`): it lists no tools
    } catch (e) {
      return `it is not valid JSON (${(e as Error).message})`
    }
  }
  return undefined
}

/**
 * Whether a system message shows the policy its tools: a `<tools>` block, or skyrl's own listing (its
 * tool-call protocol line, e.g. a row `generate` wrote). A message without either lists no tool.
 */
export const listsTools = (system: string): boolean =>
  system.includes(TOOL_CALL_LINE) || findToolsBlock(system) !== undefined

/** A tool entry's name (a Hermes `{name}` or an OpenAI `{type: "function", function: {name}}`); none: undefined. */
const toolNameOf = (t: unknown): string | undefined => {
  if (!isObject(t)) return undefined
  const fn = t.type === "function" && isObject(t.function) ? t.function : t
  return typeof fn.name === "string" && fn.name.trim() !== "" ? fn.name.trim() : undefined
}

/** Tool names listed in a `<tools>` block (entries without a name are ignored). */
export const toolNamesOf = (block: ToolsBlock): ReadonlyArray<string> => block.tools.flatMap((t) => toolNameOf(t) ?? [])

// ---------------------------------------------------------------------------------------------
// Rows

/** A row's id and the field it was read from. */
interface RowId {
  readonly id: string
  readonly field: string
}

const idOf = (value: unknown, base = ""): RowId | undefined => {
  if (!isObject(value)) return undefined
  for (const key of ["id", "conversation_id", "task_id"]) {
    const v = value[key]
    if (typeof v === "string" && v.trim() !== "") return { id: v.trim(), field: `${base}${key}` }
    if (typeof v === "number") return { id: String(v), field: `${base}${key}` }
  }
  return undefined
}

const parseMaybeJson = (u: unknown): unknown => {
  if (typeof u !== "string") return u
  try {
    return JSON.parse(u) as unknown
  } catch {
    return u
  }
}

const skyrlId = (row: Json): RowId | undefined => {
  const gt = isObject(row.reward_spec) && isObject(row.reward_spec.ground_truth) ? row.reward_spec.ground_truth : {}
  if (typeof gt.task_id === "string" && gt.task_id.trim() !== "") {
    return { id: gt.task_id.trim(), field: "reward_spec.ground_truth.task_id" }
  }
  const meta = isObject(row.extra_info) ? parseMaybeJson(row.extra_info.task_metadata) : undefined
  return idOf(meta, "extra_info.task_metadata.") ?? idOf(row)
}

/** True when a SkyRL row carries a non-empty `reward_spec.ground_truth.tool_sequence`. */
export const hasPlan = (row: unknown): boolean => {
  if (!isObject(row) || !isObject(row.reward_spec)) return false
  const gt = row.reward_spec.ground_truth
  return isObject(gt) && Array.isArray(gt.tool_sequence) && gt.tool_sequence.length > 0
}

const invalid = (id: string | undefined, problem: SourceProblem): SourceRow => ({ _tag: "Invalid", id, ...problem })

/**
 * Extracts the prompt (and the observed tool calls) of one row. `format` forces a format; by default it
 * is detected from the row. Never throws: a bad row comes back as `Invalid` with the field and reason.
 */
export const extractSource = (value: unknown, format?: InputFormat): SourceRow => {
  const detected = detectFormat(value)
  const rowId = isObject(value) ? (detected === "skyrl" ? skyrlId(value) : idOf(value)) : undefined
  const id = rowId?.id
  // The id becomes the row's task_id: one that no dataset reader takes (half a surrogate pair) rejects the row.
  const idSurrogate = rowId === undefined ? undefined : loneSurrogateOf(rowId.id)
  if (rowId !== undefined && idSurrogate !== undefined) {
    return invalid(undefined, { field: rowId.field, reason: idSurrogate })
  }
  const chosen = format ?? detected
  // A row that has a format's list field, but not as a list: that field is what is wrong.
  const listField = chosen === undefined && isObject(value)
    ? ["prompt", "conversations", "messages"].find((k) => k in value)
    : undefined
  if (listField !== undefined) {
    return invalid(id, {
      field: listField,
      reason: `must be a list of messages, got ${describeType((value as Json)[listField])}`
    })
  }
  if (chosen === undefined) {
    return invalid(id, {
      field: "",
      reason: `not a SkyRL row, ShareGPT conversation or OpenAI message list (got ${describeType(value)}${
        !isObject(value)
          ? ""
          : Object.keys(value).length === 0
          ? " with no key"
          : ` with keys ${Object.keys(value).slice(0, 6).join(", ")}`
      })`
    })
  }
  if (format !== undefined && detected !== format) {
    return invalid(id, {
      field: "",
      reason: `not ${FORMAT_ARTICLE[format]} ${FORMAT_LABEL[format]} (--input-format ${format})${
        detected === undefined ? "" : `; it looks like ${FORMAT_ARTICLE[detected]} ${FORMAT_LABEL[detected]}`
      }`
    })
  }
  let list: ReadonlyArray<unknown>
  let base: string
  if (Array.isArray(value)) {
    list = value
    base = ""
  } else {
    const v = value as Json
    base = chosen === "skyrl" ? "prompt" : chosen === "sharegpt" ? "conversations" : "messages"
    list = v[base] as ReadonlyArray<unknown>
  }
  const messages = messageList(chosen, list, base)
  if (Either.isLeft(messages)) return invalid(id, messages.left)
  const extracted = extractPrompt(messages.right, base === "" ? "(conversation)" : base)
  const prompt = chosen === "skyrl" ? extracted : Either.flatMap(extracted, (p) => withRecordFields(value, p))
  if (Either.isLeft(prompt)) return invalid(id, prompt.left)
  if (chosen === "skyrl" && prompt.right.next < messages.right.length) {
    const extra = messages.right[prompt.right.next]
    return invalid(id, {
      field: extra.roleField,
      reason: `a SkyRL prompt ends with its user message; found a "${extra.roleName}" message after it`
    })
  }
  const observed = observedCalls(messages.right, prompt.right.next)
  if (Either.isLeft(observed)) return invalid(id, observed.left)
  const { calls, unreadable } = observed.right
  return {
    _tag: "Prompt",
    format: chosen,
    id,
    system: prompt.right.system,
    systemField: prompt.right.systemField,
    user: prompt.right.user,
    observedToolCalls: calls,
    unreadableToolCalls: unreadable,
    hasPlan: chosen === "skyrl" && hasPlan(value),
    ownColumns: chosen === "skyrl" ? ownColumnsOf(value) : undefined,
    otherFields: chosen === "skyrl" ? undefined : otherRecordFields(value)
  }
}

/** The keys of a ShareGPT or OpenAI record that skyrl reads: its messages, its id, `system` and `tools`. */
const RECORD_KEYS: ReadonlySet<string> = new Set([
  "conversations",
  "messages",
  "id",
  "conversation_id",
  "task_id",
  "system",
  "tools"
])

/** A ShareGPT or OpenAI record's other fields (a `category`, a `source` of its own), in order; none: undefined. */
const otherRecordFields = (value: unknown): Record<string, unknown> | undefined => fieldsOtherThan(value, RECORD_KEYS)
