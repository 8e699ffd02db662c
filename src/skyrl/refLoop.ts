/**
 * `$ref` loops that no value can end in a JSON Schema: a chain of references, and of the applicators that apply
 * to the same value (allOf, anyOf, oneOf, not, if, then, else), from a subschema back to itself without entering a
 * property or an item: `{"$ref": "#"}`, or `$defs` A → B → A. Validating a value that reaches one never ends (Ajv
 * overflowed the stack: `convert` said "cannot write OUT: Maximum call stack size exceeded", `validate` "internal
 * error"). A loop through `properties` or `items` ends with the value's depth (a tree of nodes) and is fine.
 * Only local references ("#" and "#/..." JSON pointers) are followed; `$defs` nobody refers to are not read. Pure.
 */
import { isObject } from "../domain/json.js"

/** Keywords whose subschemas apply to the value itself, not to a part of it. */
const IN_PLACE_ONE = ["not", "if", "then", "else"] as const
const IN_PLACE_MANY = ["allOf", "anyOf", "oneOf"] as const
/** Keywords whose subschemas apply to a part of the value (a property, an item). */
const PART_ONE = ["items", "additionalItems", "additionalProperties", "contains", "propertyNames"] as const
const PART_MANY = ["items", "prefixItems"] as const
const PART_MAP = ["properties", "patternProperties", "dependencies", "dependentSchemas"] as const

interface Node {
  readonly schema: object
  readonly at: string
}

/** The subschema a local `$ref` points at, or undefined (not local, or nothing there). */
const resolve = (root: object, ref: string): Node | undefined => {
  if (ref !== "#" && !ref.startsWith("#/")) return undefined
  let node: unknown = root
  const tokens = ref === "#" ? [] : ref.slice(2).split("/")
  for (const token of tokens) {
    let key: string
    try {
      key = decodeURIComponent(token).replaceAll("~1", "/").replaceAll("~0", "~")
    } catch {
      return undefined
    }
    node = Array.isArray(node) ? node[Number(key)] : isObject(node) && Object.hasOwn(node, key) ? node[key] : undefined
  }
  return typeof node === "object" && node !== null ? { schema: node, at: ref } : undefined
}

const sub = (value: unknown, at: string): Array<Node> =>
  typeof value === "object" && value !== null && !Array.isArray(value)
    ? [{ schema: value, at }]
    : []

/** The subschemas that apply to the same value as `node` (its `$ref` target and in-place applicators). */
const inPlace = (root: object, { at, schema }: Node): Array<Node> => {
  if (!isObject(schema)) return []
  const out: Array<Node> = []
  const target = typeof schema.$ref === "string" ? resolve(root, schema.$ref) : undefined
  if (target !== undefined) out.push(target)
  for (const key of IN_PLACE_ONE) out.push(...sub(schema[key], `${at}/${key}`))
  for (const key of IN_PLACE_MANY) {
    const list = schema[key]
    if (Array.isArray(list)) list.forEach((s, i) => out.push(...sub(s, `${at}/${key}/${i}`)))
  }
  return out
}

/** The subschemas that apply to parts of the value `node` applies to. */
const parts = ({ at, schema }: Node): Array<Node> => {
  if (!isObject(schema)) return []
  const out: Array<Node> = []
  for (const key of PART_ONE) out.push(...sub(schema[key], `${at}/${key}`))
  for (const key of PART_MANY) {
    const list = schema[key]
    if (Array.isArray(list)) list.forEach((s, i) => out.push(...sub(s, `${at}/${key}/${i}`)))
  }
  for (const key of PART_MAP) {
    const map = schema[key]
    if (isObject(map)) { for (const [k, s] of Object.entries(map)) out.push(...sub(s, `${at}/${key}/${k}`)) }
  }
  return out
}

/**
 * The first `$ref` loop no value can end in `root` (see above), as the pointers it goes through
 * (`# → #/$defs/A → #/$defs/B → #/$defs/A`), or undefined when there is none.
 */
export const refLoopOf = (root: unknown): string | undefined => {
  if (typeof root !== "object" || root === null) return undefined
  const done = new Set<object>()
  const onPath = new Map<object, number>()
  const path: Array<string> = []
  const pending: Array<Node> = [{ schema: root, at: "#" }]
  // Depth-first over the in-place edges (white, on the path, done): a loop among them is the finding. The parts
  // of each node are values of their own, searched from a path of their own.
  const visit = (node: Node): string | undefined => {
    const open = onPath.get(node.schema)
    if (open !== undefined) return [...path.slice(open), node.at].join(" → ")
    if (done.has(node.schema)) return undefined
    onPath.set(node.schema, path.length)
    path.push(node.at)
    for (const next of inPlace(root, node)) {
      const loop = visit(next)
      if (loop !== undefined) return loop
    }
    path.pop()
    onPath.delete(node.schema)
    done.add(node.schema)
    pending.push(...parts(node))
    return undefined
  }
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    const loop = visit(node)
    if (loop !== undefined) return loop
  }
  return undefined
}

/** The root's own `$id` without its fragment (a `$ref` to it with a fragment points into this document), if any. */
const ownUri = (root: Readonly<Record<string, unknown>>): URL | undefined => {
  if (typeof root.$id !== "string" || root.$id.startsWith("#")) return undefined
  try {
    const uri = new URL(root.$id)
    uri.hash = ""
    return uri
  } catch {
    return undefined
  }
}

/**
 * The fragment of `ref` (still percent-encoded) when it points into this document ("#...", or the root's own `$id`
 * with one), else undefined.
 */
const fragmentOf = (ref: string, own: URL | undefined): string | undefined => {
  if (ref.startsWith("#")) return ref.slice(1)
  if (own === undefined) return undefined
  try {
    const uri = new URL(ref, own)
    const fragment = uri.hash
    uri.hash = ""
    return uri.href === own.href ? fragment.slice(1) : undefined
  } catch {
    return undefined
  }
}

/** What a JSON pointer (`/a/b`, percent-decoded) finds in `root`, as `{ found }`, or undefined when nothing. */
const pointerTarget = (root: unknown, pointer: string): { readonly found: unknown } | undefined => {
  let node: unknown = root
  let text: string
  try {
    text = decodeURIComponent(pointer)
  } catch {
    return undefined
  }
  if (text === "") return { found: root }
  for (const token of text.slice(1).split("/")) {
    const key = token.replaceAll("~1", "/").replaceAll("~0", "~")
    if (Array.isArray(node) && /^(0|[1-9][0-9]*)$/.test(key) && Number(key) < node.length) node = node[Number(key)]
    else if (isObject(node) && Object.hasOwn(node, key)) node = node[key]
    else return undefined
  }
  return { found: node }
}

/** The subschema of `root` naming `name` as its anchor (`$anchor`, or draft-07's `$id: "#name"`), if any. */
const anchorTarget = (root: unknown, name: string): { readonly found: unknown } | undefined => {
  const stack: Array<unknown> = [root]
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    if (Array.isArray(node)) stack.push(...node)
    else if (isObject(node)) {
      if (node.$anchor === name || node.$id === `#${name}`) return { found: node }
      stack.push(...Object.values(node))
    }
  }
  return undefined
}

/**
 * The first `$ref` into `root`'s own document that points at nothing (`#/definitions/Missing`, `#/$defs/x` where
 * `$defs` lacks x, `#nope` without such an anchor), as `$ref "REF" (at POINTER) resolves to nothing in the schema:
 * ...`, or undefined. The subschemas walked are those validation applies, from the root and through each `$ref`
 * followed (a definition nobody refers to is not read: Ajv compiles none). A `$ref` outside the document (a URL,
 * another file) is not judged, nor one under a subschema with an `$id` of its own (another base). Ajv refuses
 * such a schema when an inventory loads ("can't resolve reference ..."); this reads a row's `tool_schemas`, whose
 * schema MCPToolEnv refuses likewise (python/skyrl_mcp_env/refs.py `schema_fault`, which this follows). Pure.
 */
export const danglingRefOf = (root: unknown): string | undefined => {
  if (!isObject(root)) return undefined
  const own = ownUri(root)
  const seen = new Set<object>()
  const pending: Array<Node> = [{ schema: root, at: "#" }]
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    const { at, schema } = node
    if (seen.has(schema) || !isObject(schema)) continue
    seen.add(schema)
    if (schema !== root && typeof schema.$id === "string" && !schema.$id.startsWith("#")) continue
    if (typeof schema.$ref === "string") {
      const fragment = fragmentOf(schema.$ref, own)
      if (fragment !== undefined) {
        const target = fragment === "" || fragment.startsWith("/")
          ? pointerTarget(root, fragment)
          : anchorTarget(root, fragment)
        if (target === undefined) {
          return `$ref "${schema.$ref}" (at ${at}) resolves to nothing in the schema: no value there can be checked`
        }
        if (isObject(target.found)) pending.push({ schema: target.found, at: schema.$ref })
      }
    }
    for (const key of IN_PLACE_ONE) pending.push(...sub(schema[key], `${at}/${key}`))
    for (const key of IN_PLACE_MANY) {
      const list = schema[key]
      if (Array.isArray(list)) list.forEach((s, i) => pending.push(...sub(s, `${at}/${key}/${i}`)))
    }
    pending.push(...parts(node))
    // (parts that refLoopOf need not follow: Ajv's draft-07 class reads neither; jsonschema reads them in 2019-09+)
    for (const key of ["unevaluatedItems", "unevaluatedProperties"]) pending.push(...sub(schema[key], `${at}/${key}`))
  }
  return undefined
}
