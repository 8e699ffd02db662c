/**
 * Whether the schema a prompt shows for a tool (a `<tools>` block of a chat log's system message) is the
 * inventory's, as far as a plan depends on it: the params, which are required, and each param's type,
 * default and allowed values. A plan made on the inventory's schema of a tool the prompt shows otherwise
 * (`symbol` shown, `tickers` planned; a default of 20 shown, 10 assumed by the reward) teaches params the
 * policy never sees. Descriptions may differ.
 */
import { isObject } from "../domain/json.js"
import { canonicalJson } from "./canonical.js"

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
