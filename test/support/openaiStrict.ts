/**
 * An independent checker of OpenAI's documented rules for strict structured-output schemas
 * (shared/docs/openai-notes.md): root object, every property required, additionalProperties false on
 * every object, only supported keywords, $defs at the root, nesting ≤ 10, ≤ 5000 properties,
 * ≤ 1000 enum values, ≤ 120,000 characters of names/enum/const values, large enums ≤ 15,000 chars.
 * Written apart from src/skyrl/outputSchema.ts on purpose: the test must not trust the generator.
 */
type Json = Record<string, unknown>
const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

const ALLOWED = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "enum",
  "const",
  "anyOf",
  "$ref",
  "$defs",
  "description",
  "pattern",
  "format",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "minItems",
  "maxItems"
])
const FORMATS = new Set(["date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"])
const TYPES = new Set(["string", "number", "integer", "boolean", "object", "array", "null"])

export interface StrictReport {
  readonly violations: ReadonlyArray<string>
  readonly properties: number
  readonly enumValues: number
  readonly chars: number
  readonly maxDepth: number
}

export const checkStrict = (root: Json): StrictReport => {
  const violations: Array<string> = []
  let properties = 0
  let enumValues = 0
  let chars = 0
  let maxDepth = 0
  const defs = isObject(root.$defs) ? root.$defs : {}
  chars += Object.keys(defs).join("").length
  if (root.type !== "object") violations.push("root: type must be \"object\"")
  if (root.anyOf !== undefined) violations.push("root: must not be anyOf")

  const visit = (node: unknown, path: string, depth: number, refStack: ReadonlyArray<string>): void => {
    if (!isObject(node)) {
      violations.push(`${path}: not a schema object`)
      return
    }
    for (const key of Object.keys(node)) {
      if (!ALLOWED.has(key)) violations.push(`${path}: unsupported keyword ${key}`)
    }
    if (node.$defs !== undefined && path !== "#") violations.push(`${path}: $defs below the root`)
    if (typeof node.$ref === "string") {
      const ref = node.$ref
      if (ref === "#") return
      if (!ref.startsWith("#/$defs/")) {
        violations.push(`${path}: $ref ${ref} is not #/$defs/...`)
        return
      }
      const name = ref.slice("#/$defs/".length)
      if (!(name in defs)) violations.push(`${path}: $ref ${ref} does not resolve`)
      else if (!refStack.includes(name)) visit(defs[name], `#/$defs/${name}`, depth, [...refStack, name])
      return
    }
    if (Array.isArray(node.anyOf)) {
      if (node.anyOf.length === 0) violations.push(`${path}: empty anyOf`)
      node.anyOf.forEach((b, i) => visit(b, `${path}/anyOf/${i}`, depth, refStack))
      return
    }
    const types: ReadonlyArray<unknown> = Array.isArray(node.type) ? node.type : [node.type]
    if (node.type === undefined) violations.push(`${path}: no type`)
    for (const t of types) {
      if (node.type !== undefined && !TYPES.has(String(t))) violations.push(`${path}: bad type ${String(t)}`)
    }
    if (typeof node.format === "string" && !FORMATS.has(node.format)) {
      violations.push(`${path}: unsupported format ${node.format}`)
    }
    if (Array.isArray(node.enum)) {
      enumValues += node.enum.length
      const length = node.enum.reduce<number>((n, v) => n + String(v).length, 0)
      chars += length
      if (node.enum.length > 250 && length > 15_000) violations.push(`${path}: large enum over 15,000 chars`)
    }
    if (node.const !== undefined) chars += String(node.const).length
    const level = types.includes("object") || types.includes("array") ? depth + 1 : depth
    maxDepth = Math.max(maxDepth, level)
    if (types.includes("object")) {
      if (!isObject(node.properties)) violations.push(`${path}: object without properties`)
      if (node.additionalProperties !== false) violations.push(`${path}: additionalProperties is not false`)
      const props = isObject(node.properties) ? node.properties : {}
      const keys = Object.keys(props)
      properties += keys.length
      chars += keys.join("").length
      const required = Array.isArray(node.required) ? node.required : []
      const missing = keys.filter((k) => !required.includes(k))
      if (missing.length > 0) violations.push(`${path}: not required: ${missing.join(", ")}`)
      const extra = required.filter((k) => !keys.includes(String(k)))
      if (extra.length > 0) violations.push(`${path}: required names undeclared ${extra.join(", ")}`)
      for (const [k, v] of Object.entries(props)) visit(v, `${path}/properties/${k}`, level, refStack)
    }
    if (types.includes("array")) {
      if (!isObject(node.items)) violations.push(`${path}: array without an items schema`)
      else visit(node.items, `${path}/items`, level, refStack)
    }
  }
  visit(root, "#", 0, [])
  if (maxDepth > 10) violations.push(`nesting depth ${maxDepth} > 10`)
  if (properties > 5000) violations.push(`${properties} properties > 5000`)
  if (enumValues > 1000) violations.push(`${enumValues} enum values > 1000`)
  if (chars > 120_000) violations.push(`${chars} characters > 120,000`)
  return { violations, properties, enumValues, chars, maxDepth }
}
