/**
 * Does a row's prompt give its plan away? (`prompt/plan-leak` in checks.ts.) Pure.
 *
 * The tools a prompt offers are read from the row's `available_tools`, or, for rows written before that
 * field existed, from the system message (the inventory tools it names, in the order it first names
 * them). A prompt leaks its plan when it lacks a plan tool, lists tools out of the inventory's order (the
 * old rows listed them in plan order), or offers fewer than min(3, available) distractors (the tools a
 * `<tools>` block shows beyond those offered count too: the policy sees them).
 */
import type { Inventory } from "../domain/inventory.js"
import { isObject } from "../domain/json.js"
import { plural } from "../domain/words.js"
import { remember } from "./memo.js"
import { MIN_DISTRACTORS } from "./promptTools.js"
import { findToolsBlock, toolNamesOf } from "./sources.js"

interface ToolRef {
  readonly server: string
  readonly tool: string
}

const IDENTIFIER = /[A-Za-z0-9_]/

/** Index of the first whole-word occurrence of `name` in `text`, or -1. */
export const wordIndex = (text: string, name: string): number => {
  for (let i = text.indexOf(name); i >= 0; i = text.indexOf(name, i + 1)) {
    const before = text[i - 1]
    const after = text[i + name.length]
    if ((before === undefined || !IDENTIFIER.test(before)) && (after === undefined || !IDENTIFIER.test(after))) {
      return i
    }
  }
  return -1
}

/** The inventory tools a system message names, in the order it first names them. */
export const toolsNamedIn = (system: string, inventory: Inventory): ReadonlyArray<ToolRef> =>
  inventory.servers
    .flatMap((s) => s.tools.map((t) => ({ server: s.name, tool: t.name, at: wordIndex(system, t.name) })))
    .filter((t) => t.at >= 0)
    .sort((a, b) => a.at - b.at)
    .map(({ server, tool }) => ({ server, tool }))

export interface LeakInput {
  /** The row's system message (undefined when it has none). */
  readonly system: string | undefined
  /** The row's `available_tools` (undefined or empty when unknown). */
  readonly availableTools: ReadonlyArray<ToolRef> | undefined
  /** The plan's steps, in plan order. */
  readonly plan: ReadonlyArray<ToolRef>
}

/** Each inventory tool's place in the inventory's order, by server and tool (made once per inventory). */
const ranks = new WeakMap<Inventory, { readonly of: Map<string, Map<string, number>>; readonly size: number }>()
const ranksOf = (inventory: Inventory) => {
  let r = ranks.get(inventory)
  if (r === undefined) {
    const of = new Map<string, Map<string, number>>()
    let size = 0
    for (const s of inventory.servers) {
      const tools = of.get(s.name) ?? new Map<string, number>()
      for (const t of s.tools) if (!tools.has(t.name)) tools.set(t.name, size++)
      of.set(s.name, tools)
    }
    r = { of, size }
    ranks.set(inventory, r)
  }
  return r
}

const same = (a: ToolRef, b: ToolRef) => a.server === b.server && a.tool === b.tool

/**
 * Tools a system message's `<tools>` block shows that are neither offered nor in the plan (a chat log's
 * tools the inventory lacks, or shows otherwise): distractors the policy sees, though not plannable.
 */
const shownOnly = (
  system: string | undefined,
  offered: ReadonlyArray<ToolRef>,
  plan: ReadonlyArray<ToolRef>
): number => {
  const block = system?.includes("<tools>") === true ? findToolsBlock(system) : undefined
  if (block === undefined) return 0
  const known = new Set([...offered, ...plan].map((t) => t.tool))
  return new Set(toolNamesOf(block).filter((name) => !known.has(name))).size
}

/** What gives the plan away, or undefined when nothing does. */
export const planLeak = (inventory: Inventory, input: LeakInput): string | undefined => {
  const known = input.availableTools !== undefined && input.availableTools.length > 0
  if (!known && input.system === undefined) return undefined
  const offered = known ? input.availableTools! : toolsNamedIn(input.system!, inventory)
  const rank = ranksOf(inventory)
  const rankOf = (t: ToolRef) => rank.of.get(t.server)?.get(t.tool)
  // The plan's tools, each once, in plan order.
  const planTools: Array<ToolRef> = []
  for (const t of input.plan) if (!planTools.some((p) => same(p, t))) planTools.push(t)
  const inPlan = (t: ToolRef) => planTools.some((p) => same(p, t))
  const problems: Array<string> = []
  const missing = planTools.filter((p) => !offered.some((o) => same(o, p)))
  if (missing.length > 0) {
    problems.push(
      `the plan's ${missing.map((t) => t.tool).join(", ")} ${missing.length === 1 ? "is" : "are"} not offered`
    )
  }
  let previous = -1
  let ordered = true
  for (const t of offered) {
    const r = rankOf(t)
    if (r === undefined) continue
    if (r < previous) ordered = false
    previous = r
  }
  if (!ordered) {
    const offeredPlan = offered.filter(inPlan)
    const inPlanOrder = offeredPlan.length === planTools.length && offeredPlan.every((t, i) => same(t, planTools[i]!))
    problems.push(
      `the tools are not in the inventory's order${inPlanOrder ? " (the plan's tools come in plan order)" : ""}`
    )
  }
  const inInventory = planTools.filter((t) => rankOf(t) !== undefined).length
  const available = rank.size - inInventory
  const needed = Math.min(MIN_DISTRACTORS, available)
  let distractors = offered.filter((t) => rankOf(t) !== undefined && !inPlan(t)).length
  if (distractors < needed) distractors += shownOnly(input.system, offered, planTools)
  if (distractors < needed) {
    problems.push(
      distractors === 0
        ? `only the plan's ${plural(planTools.length, "tool")} ${planTools.length === 1 ? "is" : "are"} offered ` +
          `(the inventory has ${available} more)`
        : `${plural(distractors, "distractor")} offered, at least ${needed} needed`
    )
  }
  return problems.length === 0
    ? undefined
    : `${problems.join("; ")}${known ? "" : " (tools read from the system message: the row has no available_tools)"}`
}

/** Format characters (zero-width spaces and joiners, bidi marks): invisible, so they can hide a name. */
const INVISIBLE = /\p{Cf}/gu
/** Identifier-like runs of a text: letters, digits, the separators of tool names (and invisible characters). */
const IDENTIFIER_RUN = /[\p{L}\p{N}_.\p{Cf}-]+/gu
/** A name of several parts: a separator, or a lower-case letter followed by a capital (`GetQuote`). */
const MULTI_PART = /[_.-]|\p{Ll}\p{Lu}/u
/** Text without invisible characters, NFKC (an ASCII text is its own NFKC: most prompts skip the call). */
const visibleText = (text: string): string =>
  NON_ASCII.test(text) ? text.normalize("NFKC").replace(INVISIBLE, "") : text
const NON_ASCII = /[^\x00-\x7f]/
/** A name as compared: NFKC, lower-cased, without separators and invisible characters. */
const squash = (name: string): string => visibleText(name).toLowerCase().replace(/[_.-]+/g, "")
/** `squash` of the tool names of plans (few, the same on every row of a run). */
const squashedNames = new Map<string, string>()

/** Where a namespace before a tool name ends: `functions.`, `fmp.` (skyrl's `server.tool`), `mcp__fmp__`. */
const NAMESPACE_END = /\.|__/

/**
 * The tool (its shown name, from `names`: squashed name -> shown) a run of a message names: the whole run,
 * or what follows a namespace in it (`functions.fmp_get_quote`, `mcp__fmp__get_quote`); only names of several
 * parts count.
 */
const nameIn = (run: string, names: ReadonlyMap<string, string>, namespaces: boolean): string | undefined => {
  for (let rest = run;;) {
    const tool = MULTI_PART.test(rest.replace(INVISIBLE, "")) ? names.get(squash(rest)) : undefined
    if (tool !== undefined) return tool
    const end = namespaces ? NAMESPACE_END.exec(rest) : null
    if (end === null) return undefined
    rest = rest.slice(end.index + end[0].length)
  }
}

/** A `<tool_call>` tag, opening or closing: with spaces or attributes in it, or HTML-escaped (`&lt;tool_call&gt;`). */
const TOOL_CALL_TAG = /(?:<|&lt;)\s*\/?\s*tool_call\b/i
/** The tag as it was looked for until 2026-12-02 04:00 UTC: `<tool_call>` or `</tool_call>` only. */
const TOOL_CALL_TAG_BEFORE = /<\/?tool_call>/i

/** A JSON object key followed by its colon (`"symbol":`), as a params dump holds. */
const JSON_KEY = /"([^"\\]{1,64})"\s*:/g

interface UserLeakStep extends ToolRef {
  readonly step: number
  readonly call_name?: string | undefined
  readonly params: unknown
}

/**
 * Whether a user message gives the plan away (`prompt/user-names-tool` in checks.ts, a warning): it names a
 * plan tool (its call name or tool name, or the tool name without its server's prefix, in any casing, with any
 * of `_`, `-`, `.` or none between its parts, invisible characters ignored, alone or behind a namespace such as
 * `functions.` or `mcp__fmp__`; only names of several parts, so `echo` or `search` used as a word is none), holds
 * the `<tool_call>` syntax (a tag: also with spaces or attributes in it, or HTML-escaped), or holds a step's
 * params as JSON (a quoted key of a step's params followed by a colon). A name spelled out as words ("list slack
 * channels") is not looked for: descriptive tool names are ordinary phrases. Undefined when none. With `current`
 * false, as the rule read until 2026-12-02 04:00 UTC (the generate runs it judged keep it: `promptReadingOf`):
 * no namespace before a name, and the tag only as `<tool_call>` or `</tool_call>`.
 */
export const userLeak = (user: string, plan: ReadonlyArray<UserLeakStep>, current = true): string | undefined => {
  const problems: Array<string> = []
  const names = new Map<string, string>()
  for (const s of plan) {
    const display = s.call_name ?? s.tool
    const prefix = `${s.server}_`
    const bare = s.tool.toLowerCase().startsWith(prefix.toLowerCase()) ? s.tool.slice(prefix.length) : undefined
    for (const name of [display, s.tool, bare]) {
      if (name === undefined || !MULTI_PART.test(name)) continue
      const key = remember(squashedNames, name, () => squash(name))
      if (!names.has(key)) names.set(key, display)
    }
  }
  const visible = visibleText(user)
  const named = new Map<string, string>()
  // A name a run of the message squashes to is in the whole message squashed (the separators and invisible
  // characters between its parts are all that squashing drops): look at the runs only when one is.
  const squashed = visible.toLowerCase().replace(/[_.-]+/g, "")
  if (names.size > 0 && [...names.keys()].some((name) => squashed.includes(name))) {
    // Runs are read on the text without invisible characters, and shown as the user message writes them.
    for (const run of user.normalize("NFKC").matchAll(IDENTIFIER_RUN)) {
      const text = run[0].replace(/^[.-]+|[.-]+$/g, "")
      const tool = nameIn(text, names, current)
      if (tool !== undefined && !named.has(tool)) named.set(tool, text)
    }
  }
  for (const [tool, text] of named) problems.push(`names the plan's ${tool} (${JSON.stringify(text)})`)
  if ((current ? TOOL_CALL_TAG : TOOL_CALL_TAG_BEFORE).test(visible)) {
    problems.push("holds the tool-call syntax (<tool_call>)")
  }
  for (const key of visible.includes("\"") ? visible.matchAll(JSON_KEY) : []) {
    const step = plan.find((s) => isObject(s.params) && Object.hasOwn(s.params, key[1]!))
    if (step !== undefined) {
      problems.push(`holds step ${step.step}'s params as JSON (${JSON.stringify(key[1])})`)
      break
    }
  }
  return problems.length === 0
    ? undefined
    : `${problems.join("; ")}: the policy is told the plan instead of choosing it`
}
