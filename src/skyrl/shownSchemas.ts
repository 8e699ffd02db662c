/**
 * Whether the schema a prompt shows for a tool (a `<tools>` block of a chat log's system message) is the
 * inventory's, as far as a plan depends on it: the params, which are required, and each param's type,
 * default and allowed values. A plan made on the inventory's schema of a tool the prompt shows otherwise
 * (`symbol` shown, `tickers` planned; a default of 20 shown, 10 assumed by the reward) teaches params the
 * policy never sees. Descriptions may differ. `enrich` plans only with tools shown as the inventory has them;
 * `validate` warns of a plan tool shown otherwise (`prompt/tools-shown-otherwise`), and of a tool shown that the
 * row does not offer (`shownUnoffered`: `prompt/tools-shown-unoffered`). Pure but for a small cache.
 */
import { Either } from "effect"
import type { Inventory, InventoryTool } from "../domain/inventory.js"
import { decodeInventory, PROMPT_SERVER } from "../domain/inventory.js"
import { isObject } from "../domain/json.js"
import { canonicalJson } from "./canonical.js"
import type { ToolsBlock } from "./sources.js"
import { toolNamesOf } from "./sources.js"

type Json = Record<string, unknown>

const propertiesOf = (schema: Json): Json => isObject(schema.properties) ? schema.properties : {}

const requiredOf = (schema: Json): ReadonlyArray<string> =>
  Array.isArray(schema.required) ? schema.required.filter((r): r is string => typeof r === "string").sort() : []

/** A declared type as one comparable text (`"dict"` is Hermes' `"object"`), undefined when none is given. */
const typeOf = (p: Json): string | undefined => {
  const types = (Array.isArray(p.type) ? p.type : p.type === undefined ? [] : [p.type])
    .map((t) => t === "dict" ? "object" : String(t)).sort()
  return types.length === 0 ? undefined : types.join("|")
}

/** The same allowed values, in any order. */
const sameValues = (a: ReadonlyArray<unknown>, b: unknown): boolean =>
  Array.isArray(b) && a.length === b.length &&
  JSON.stringify(a.map(canonicalJson).sort()) === JSON.stringify(b.map(canonicalJson).sort())

const names = (list: ReadonlyArray<string>) => list.length === 0 ? "none" : list.join(", ")

/** How one param differs (undefined: it does not, as far as a plan is concerned). */
const paramDifference = (name: string, shown: Json, inventory: Json): string | undefined => {
  const [a, b] = [typeOf(shown), typeOf(inventory)]
  if (a !== undefined && b !== undefined && a !== b) return `${name} is ${a} shown, ${b} in the inventory`
  // A default shown that the inventory does not have: a policy leaves the param out for it, and the reward
  // reads the inventory's. (None shown says nothing wrong: the tool's own default applies.)
  if ("default" in shown && canonicalJson(shown.default) !== canonicalJson(inventory.default ?? null)) {
    const text = "default" in inventory ? canonicalJson(inventory.default) : "none"
    return `${name} default ${canonicalJson(shown.default)} shown, ${text} in the inventory`
  }
  // A list of values the prompt allows that the inventory does not have (or another list): a plan may use
  // a value the prompt never offers. An inventory stricter than the prompt is fine.
  if (Array.isArray(shown.enum) && !sameValues(shown.enum, inventory.enum)) {
    return `${name} allows ${canonicalJson(shown.enum)} shown, ${
      Array.isArray(inventory.enum) ? canonicalJson(inventory.enum) : "any value"
    } in the inventory`
  }
  return undefined
}

/** What a plan would teach wrong if made on `inventory` for a prompt that shows `shown` (empty: nothing). */
export const schemaDifferences = (shown: Json, inventory: Json): ReadonlyArray<string> => {
  const [ps, pi] = [propertiesOf(shown), propertiesOf(inventory)]
  const [ks, ki] = [Object.keys(ps).sort(), Object.keys(pi).sort()]
  if (ks.join(",") !== ki.join(",")) return [`params ${names(ks)} shown, ${names(ki)} in the inventory`]
  const [rs, ri] = [requiredOf(shown), requiredOf(inventory)]
  const out: Array<string> = []
  if (rs.join(",") !== ri.join(",")) out.push(`required ${names(rs)} shown, ${names(ri)} in the inventory`)
  for (const k of ks) {
    const diff = isObject(ps[k]) && isObject(pi[k]) ? paramDifference(k, ps[k], pi[k]) : undefined
    if (diff !== undefined) out.push(diff)
  }
  return out
}

/** A `<tools>` entry as an inventory reads it (Hermes `dict` schemas normalized), or why it does not read. */
type ShownTool =
  & { readonly name: string }
  & (
    | { readonly schema: InventoryTool["inputSchema"] }
    | { readonly problem: string }
  )

/** The entries of `<tools>` blocks, each read on its own (one that does not read spoils no other), by text. */
const shownToolsCache = new Map<string, ReadonlyArray<ShownTool>>()

const shownToolsOf = (block: ToolsBlock): ReadonlyArray<ShownTool> => {
  const key = JSON.stringify(block.tools)
  let shown = shownToolsCache.get(key)
  if (shown === undefined) {
    shown = block.tools.flatMap((entry): Array<ShownTool> => {
      const name = toolNamesOf({ ...block, tools: [entry] })[0]
      if (name === undefined) return []
      const decoded = decodeInventory({ servers: [{ name: PROMPT_SERVER, tools: [entry] }] }, "<tools> block")
      const tool = Either.isRight(decoded) ? decoded.right.servers[0]?.tools[0] : undefined
      return [
        tool !== undefined
          ? { name, schema: tool.inputSchema }
          : { name, problem: Either.isLeft(decoded) ? decoded.left.reason : "no tool" }
      ]
    })
    if (shownToolsCache.size >= 256) shownToolsCache.clear()
    shownToolsCache.set(key, shown)
  }
  return shown
}

/**
 * The inventory tools a `<tools>` block lists with another schema than the inventory's, by `server/tool`,
 * with the tool's name and how they differ (src/skyrl/shownSchemas.ts). A listed entry whose schema does not
 * read conflicts with every inventory tool of its name: what the prompt shows of it is unknown.
 */
export const shownConflicts = (
  block: ToolsBlock,
  inventory: Inventory
): Map<string, { readonly tool: string; readonly diffs: ReadonlyArray<string> }> => {
  const out = new Map<string, { readonly tool: string; readonly diffs: ReadonlyArray<string> }>()
  for (const shown of shownToolsOf(block)) {
    for (const server of inventory.servers) {
      const own = server.tools.find((x) => x.name === shown.name)
      if (own === undefined) continue
      const diffs = "problem" in shown
        ? [`its shown schema does not read (${shown.problem})`]
        : schemaDifferences(shown.schema, own.inputSchema)
      if (diffs.length > 0) out.set(`${server.name}/${shown.name}`, { tool: shown.name, diffs })
    }
  }
  return out
}

/** A tool a row offers (an `available_tools` entry, or a plan step): MCPToolEnv serves it by its call name. */
export interface OfferedName {
  readonly tool: string
  /** The name a policy calls it by; the tool's name when none is given (as MCPToolEnv reads a row). */
  readonly call_name?: string | undefined
}

/** A name a `<tools>` block shows that no offered tool is called by, with the call name of the tool it may mean. */
export interface UnofferedName {
  readonly name: string
  /** The call name of an offered tool of that tool name (`fmp.get_quote` for `get_quote`), or of that name's last
   * `.` part (`get_quote` for `fmp.get_quote`, `functions.get_quote`): the block spells it otherwise. */
  readonly offeredAs?: string | undefined
}

const callNameOf = (t: OfferedName): string =>
  typeof t.call_name === "string" && t.call_name !== "" ? t.call_name : t.tool

/** Whether one of `lists`' tools is called `name`. */
const isCalled = (lists: ReadonlyArray<ReadonlyArray<OfferedName>>, name: string): boolean => {
  for (const list of lists) {
    for (let i = 0; i < list.length; i++) if (callNameOf(list[i]!) === name) return true
  }
  return false
}

/** The first of `lists`' tools that `test` holds for (loops, not closures: a row's check asks it of every name). */
const findOffered = (
  lists: ReadonlyArray<ReadonlyArray<OfferedName>>,
  test: (t: OfferedName) => boolean
): OfferedName | undefined => {
  for (const list of lists) {
    for (let i = 0; i < list.length; i++) if (test(list[i]!)) return list[i]
  }
  return undefined
}

/**
 * The names a `<tools>` block shows (`names`: `toolNamesOf`, as enrich and convert read a block) that no offered tool
 * is called by (`offered`: a row's available_tools, its plan's steps), each once, in the block's order. MCPToolEnv
 * serves them by call name, compared exactly: a policy that calls a tool as the block shows it, under any other
 * name, gets "unknown tool". A name whose tool is offered under another call name (a server prefix, a `functions.`
 * namespace) is among them, with that call name (`offeredAs`).
 */
export const shownUnoffered = (
  names: ReadonlyArray<string>,
  ...offered: ReadonlyArray<ReadonlyArray<OfferedName>>
): ReadonlyArray<UnofferedName> => {
  let out: Array<UnofferedName> | undefined
  for (const name of names) {
    if (isCalled(offered, name) || out?.some((u) => u.name === name) === true) continue
    const tail = name.slice(name.lastIndexOf(".") + 1)
    const meant = findOffered(offered, (t) => t.tool === name) ??
      (tail === name ? undefined : findOffered(offered, (t) => callNameOf(t) === tail || t.tool === tail))
    ;(out ??= []).push(meant === undefined ? { name } : { name, offeredAs: callNameOf(meant) })
  }
  return out ?? []
}
