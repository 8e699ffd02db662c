/**
 * OpenAI strict JSON Schema: the one converter, for schemas derived from an Effect Schema (never written
 * twice) and for MCP tools' input schemas (src/skyrl/outputSchema.ts puts them in the output schema).
 *
 * OpenAI's strict structured output accepts a subset of JSON Schema: the root is an object (not
 * anyOf), every property is listed in `required` (an optional property becomes required-but-nullable),
 * every object has `additionalProperties: false`, and only some keywords are allowed. `makeStrict`
 * rewrites any JSON Schema into that subset or says, with a path, why it cannot:
 * - optional properties → required, their schema made nullable (`type: [t, "null"]` or an anyOf branch);
 * - annotations (`title`, `default`, `examples`, ...) and validation keywords OpenAI does not support
 *   (`minLength`, `uniqueItems`, unknown `format`s, ...) are dropped — the answer is decoded or validated
 *   against the original afterwards, which still checks them; a type missing beside `enum`/`const` is
 *   inferred; a single-branch `allOf` is merged into its node;
 * - open-ended parts (an object without declared properties, `{}`/unknown, `patternProperties`, several
 *   `allOf` branches, `not`, `if`, tuples) cannot be strict: inside an `anyOf` such a branch is dropped
 *   when another branch remains (e.g. `Union(Record, String)` → the string form), elsewhere it is an error.
 * Local definitions stay in place (made strict), or with `hoist` move under prefixed names into a
 * shared `$defs` (several tools' schemas in one document).
 *
 * Pure: no I/O.
 */
import type { SchemaAST } from "effect"
import { Either, JSONSchema, Schema } from "effect"
import { isObject, setOwn } from "../domain/json.js"

export type JsonSchemaObject = { readonly [key: string]: unknown }

/** Why a schema cannot be made strict; `path` is a readable location such as `tool_sequence[].params`. */
export interface StrictSchemaProblem {
  readonly path: string
  readonly reason: string
}

export const formatStrictProblem = (p: StrictSchemaProblem): string =>
  p.path === "" ? p.reason : `${p.path}: ${p.reason}`

/** OpenAI's documented limits for strict schemas. */
export const STRICT_LIMITS = {
  maxNesting: 10,
  maxProperties: 5000,
  maxEnumValues: 1000,
  maxNameChars: 120_000,
  /** An enum with more than 250 values may use at most 15,000 characters of values. */
  largeEnumThreshold: 250,
  largeEnumChars: 15_000
} as const

/** String formats OpenAI accepts in strict mode; others are dropped from the strict copy. */
export const STRICT_FORMATS: ReadonlySet<string> = new Set([
  "date-time",
  "time",
  "date",
  "duration",
  "email",
  "hostname",
  "ipv4",
  "ipv6",
  "uuid"
])

/** Keywords that change which values a schema accepts and that strict mode cannot express. */
const UNSUPPORTED = [
  "not",
  "if",
  "then",
  "else",
  "dependentRequired",
  "dependentSchemas",
  "dependencies",
  "patternProperties",
  "propertyNames",
  "contains",
  "prefixItems",
  "unevaluatedItems"
]
const NUMERIC_LIMITS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"]

class NotStrict {
  constructor(readonly problem: StrictSchemaProblem) {}
}

const typesOf = (s: Record<string, unknown>): ReadonlyArray<string> =>
  typeof s.type === "string" ? [s.type] : Array.isArray(s.type) ? (s.type as Array<string>) : []

const isNullable = (s: Record<string, unknown>): boolean =>
  typesOf(s).includes("null") ||
  (Array.isArray(s.enum) && s.enum.includes(null)) ||
  s.const === null ||
  (Array.isArray(s.anyOf) && s.anyOf.some((b) => isObject(b) && isNullable(b)))

const PRIMITIVE_TYPES = new Set(["string", "number", "integer", "boolean"])

/** `s` or null. Primitive schemas get `type: [t, "null"]`; objects, arrays and refs an anyOf with a null branch. */
export const makeNullable = (s: JsonSchemaObject): JsonSchemaObject => {
  const schema = s as Record<string, unknown>
  if (isNullable(schema)) return s
  if (Array.isArray(schema.anyOf)) return { ...schema, anyOf: [...schema.anyOf, { type: "null" }] }
  const types = typesOf(schema)
  const primitive = types.length > 0 && types.every((t) => PRIMITIVE_TYPES.has(t))
  if (primitive && schema.$ref === undefined) {
    const out: Record<string, unknown> = { ...schema, type: [...types, "null"] }
    if (Array.isArray(schema.enum)) out.enum = [...schema.enum, null]
    if ("const" in schema) {
      out.enum = [schema.const, null]
      delete out.const
    }
    return out
  }
  const { description, ...rest } = schema
  return description === undefined
    ? { anyOf: [rest, { type: "null" }] }
    : { description, anyOf: [rest, { type: "null" }] }
}

const join = (path: string, key: string): string => (path === "" ? key : `${path}.${key}`)

/** The JSON type of enum/const values, when the schema does not say it. */
const inferType = (values: ReadonlyArray<unknown>): unknown => {
  const types = new Set(values.map((v) =>
    v === null
      ? "null"
      : typeof v === "number"
      ? (Number.isInteger(v) ? "integer" : "number")
      : typeof v === "string" || typeof v === "boolean"
      ? typeof v
      : "other"
  ))
  if (types.has("other")) return undefined
  if (types.has("number")) types.delete("integer")
  const list = [...types]
  return list.length === 1 ? list[0] : list
}

export interface StrictOptions {
  /**
   * Where local definitions (`$defs`, `definitions`) go: by default they stay in the schema, made strict;
   * with `hoist` each one used is made strict into `into` under `prefix` + its name and its `$ref`s point
   * there (an MCP tool's params, merged with other tools' into one output schema).
   */
  readonly hoist?: { readonly prefix: string; readonly into: Record<string, unknown> } | undefined
  /** Object levels above this schema's root in the document it goes into (for the nesting limit). */
  readonly levelsAbove?: number | undefined
}

interface Walk {
  properties: number
  readonly options: StrictOptions
  /** Local definitions of the schema being converted (hoist mode). */
  readonly localDefs: Record<string, unknown>
  /** Hoisted names by local name. */
  readonly hoisted: Map<string, string>
}

const notStrict = (path: string, reason: string): never => {
  throw new NotStrict({ path, reason })
}

/** A single-branch `allOf` is its branch (merged with the node's other keywords); more is not strict. */
const mergeAllOf = (node: Record<string, unknown>, path: string): Record<string, unknown> => {
  if (node.allOf === undefined) return node
  if (!Array.isArray(node.allOf) || node.allOf.length !== 1 || !isObject(node.allOf[0])) {
    return notStrict(path, "uses allOf")
  }
  const { allOf: _allOf, ...rest } = node
  return { ...node.allOf[0], ...rest }
}

/** A local `$ref`, hoisted (its definition converted once) when the walk hoists. */
const strictRef = (ref: string, path: string, walk: Walk): string => {
  const hoist = walk.options.hoist
  if (hoist === undefined) return ref
  const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref)
  if (match === null) return notStrict(path, `has a $ref that is not a local definition (${ref})`)
  const name = match[2]!.replace(/~1/g, "/").replace(/~0/g, "~")
  if (!(name in walk.localDefs)) return notStrict(path, `refers to a missing definition ${ref}`)
  let target = walk.hoisted.get(name)
  if (target === undefined) {
    target = `${hoist.prefix}${name.replace(/[^A-Za-z0-9_-]/g, "_")}`
    while (target in hoist.into) target += "_"
    walk.hoisted.set(name, target)
    hoist.into[target] = {} // reserved before converting: definitions may refer to themselves
    hoist.into[target] = strictNode(walk.localDefs[name], `$defs.${name}`, 0, walk)
  }
  return `#/$defs/${target}`
}

const strictBranches = (branches: ReadonlyArray<unknown>, path: string, depth: number, walk: Walk) => {
  // A branch that cannot be strict is dropped while another remains (`Union(Record, String)` → the string).
  const out: Array<unknown> = []
  let firstProblem: StrictSchemaProblem | undefined
  for (const branch of branches) {
    try {
      out.push(strictNode(branch, path, depth, walk))
    } catch (e) {
      if (!(e instanceof NotStrict)) throw e
      firstProblem ??= e.problem
    }
  }
  if (out.length === 0) throw new NotStrict(firstProblem ?? { path, reason: "has an empty anyOf/oneOf" })
  return out
}

const strictObject = (
  node: Record<string, unknown>,
  out: Record<string, unknown>,
  path: string,
  depth: number,
  walk: Walk
) => {
  if (depth + 1 + (walk.options.levelsAbove ?? 0) > STRICT_LIMITS.maxNesting) {
    notStrict(path, `nested deeper than ${STRICT_LIMITS.maxNesting} object levels`)
  }
  const props = isObject(node.properties) ? node.properties : {}
  const keys = Object.keys(props)
  const extra = node.additionalProperties
  if (
    extra !== undefined && extra !== false && !(isObject(extra) && Object.keys(extra).length === 0 && keys.length > 0)
  ) {
    notStrict(path, "allows additional properties (an open object)")
  }
  // Declared properties, even none (a tool without params), make a closed object; no declaration is an open one.
  if (!isObject(node.properties) && extra !== false) {
    notStrict(path, "is an object without declared properties (an open object)")
  }
  walk.properties += keys.length
  if (walk.properties > STRICT_LIMITS.maxProperties) {
    notStrict(path, `more than ${STRICT_LIMITS.maxProperties} properties in the schema`)
  }
  const required = new Set(Array.isArray(node.required) ? (node.required as Array<string>) : [])
  const undeclared = [...required].filter((name) => !keys.includes(String(name)))
  if (undeclared.length > 0) notStrict(path, `requires undeclared properties (${undeclared.join(", ")})`)
  const properties: Record<string, unknown> = {}
  for (const key of keys) {
    const strict = strictNode(props[key], join(path, key), depth + 1, walk)
    setOwn(properties, key, required.has(key) ? strict : makeNullable(strict))
  }
  out.properties = properties
  out.required = keys
  out.additionalProperties = false
}

/** The typed part of a node: type, enum/const, and the validation keywords strict mode supports for it. */
const strictTyped = (node: Record<string, unknown>, path: string, depth: number, walk: Walk) => {
  let type = node.type
  if (type === undefined && Array.isArray(node.enum)) type = inferType(node.enum)
  if (type === undefined && "const" in node) type = inferType([node.const])
  if (type === undefined) return notStrict(path, "has no type (accepts any value)")
  if (node.nullable === true) type = [...typesOf({ type }), "null"]
  const types = typesOf({ type })
  const out: Record<string, unknown> = {
    type,
    ...(typeof node.description === "string" ? { description: node.description } : {})
  }
  if (Array.isArray(node.enum)) {
    if (node.enum.some((v) => typeof v === "object" && v !== null)) notStrict(path, "has an enum of objects or arrays")
    out.enum = node.enum
  }
  if ("const" in node) {
    if (typeof node.const === "object" && node.const !== null) notStrict(path, "has a const object or array")
    out.const = node.const
  }
  if (types.includes("object") || node.properties !== undefined) strictObject(node, out, path, depth, walk)
  if (types.includes("array") || node.items !== undefined) {
    if (Array.isArray(node.items)) notStrict(path, "uses tuple items")
    if (node.items === undefined || node.items === true) notStrict(path, "is an array whose items are not described")
    out.items = strictNode(node.items, `${path}[]`, depth, walk)
    for (const k of ["minItems", "maxItems"]) if (typeof node[k] === "number") out[k] = node[k]
  }
  if (types.includes("string")) {
    if (typeof node.pattern === "string") out.pattern = node.pattern
    if (typeof node.format === "string" && STRICT_FORMATS.has(node.format)) out.format = node.format
  }
  if (types.includes("number") || types.includes("integer")) {
    for (const k of NUMERIC_LIMITS) if (typeof node[k] === "number") out[k] = node[k]
  }
  return out
}

/**
 * One node in OpenAI's strict subset. Keywords strict mode cannot express that change what is accepted
 * (`not`, `if`, `patternProperties`, several `allOf` branches, ...) make the node fail; annotations and
 * validation keywords it does not support (`default`, `minLength`, unknown formats, ...) are dropped —
 * the answer is checked against the original schema (or Effect Schema) after decoding anyway.
 */
const strictNode = (raw: unknown, path: string, depth: number, walk: Walk): Record<string, unknown> => {
  if (raw === true) return notStrict(path, "accepts any value (open schema)")
  if (!isObject(raw)) return notStrict(path, "is not a schema object (accepts any value)")
  const node = mergeAllOf(raw, path)
  for (const key of UNSUPPORTED) if (node[key] !== undefined) notStrict(path, `uses ${key}`)
  if (node.unevaluatedProperties !== undefined && node.unevaluatedProperties !== false) {
    notStrict(path, "allows unevaluated properties")
  }
  const description = typeof node.description === "string" ? { description: node.description } : {}
  const defs: Record<string, unknown> = {}
  if (walk.options.hoist === undefined) {
    for (const defsKey of ["$defs", "definitions"]) {
      if (!isObject(node[defsKey])) continue
      const converted: Record<string, unknown> = {}
      for (const [name, def] of Object.entries(node[defsKey] as object)) {
        converted[name] = strictNode(def, `${defsKey}.${name}`, 0, walk)
      }
      defs[defsKey] = converted
    }
  }
  if (typeof node.$ref === "string") return { $ref: strictRef(node.$ref, path, walk), ...description, ...defs }
  const branches = Array.isArray(node.anyOf) || Array.isArray(node.oneOf)
    ? [...(Array.isArray(node.anyOf) ? node.anyOf : []), ...(Array.isArray(node.oneOf) ? node.oneOf : [])]
    : undefined
  if (branches !== undefined) {
    if (["type", "properties", "items", "enum", "const"].some((k) => node[k] !== undefined)) {
      notStrict(path, "combines anyOf/oneOf with other constraints")
    }
    return { anyOf: strictBranches(branches, path, depth, walk), ...description, ...defs }
  }
  return { ...strictTyped(node, path, depth, walk), ...defs }
}

const enumValues = (node: unknown): number =>
  Array.isArray(node)
    ? node.reduce<number>((n, v) => n + enumValues(v), 0)
    : isObject(node)
    ? Object.entries(node).reduce<number>(
      (n, [k, v]) => n + (k === "enum" && Array.isArray(v) ? v.length : k === "const" ? 0 : enumValues(v)),
      0
    )
    : 0

/**
 * Rewrites a JSON Schema into OpenAI's strict subset, or says (with a path) why it cannot. The one
 * converter: Effect-derived schemas (`strictJsonSchema`) and MCP tools' input schemas (outputSchema.ts,
 * with `hoist`) go through it alike.
 */
export const makeStrict = (
  schema: unknown,
  options: StrictOptions = {}
): Either.Either<JsonSchemaObject, StrictSchemaProblem> => {
  const localDefs = isObject(schema)
    ? { ...(isObject(schema.definitions) ? schema.definitions : {}), ...(isObject(schema.$defs) ? schema.$defs : {}) }
    : {}
  try {
    const out = strictNode(schema, "", 0, { properties: 0, options, localDefs, hoisted: new Map() })
    if (out.anyOf !== undefined || !typesOf(out).includes("object") || typesOf(out).length !== 1) {
      return Either.left({ path: "", reason: "the root of a strict schema must be an object (not a union)" })
    }
    // A whole document's enum budget (a hoisted part leaves it to the document it goes into).
    if (options.hoist === undefined && enumValues(out) > STRICT_LIMITS.maxEnumValues) {
      return Either.left({ path: "", reason: `more than ${STRICT_LIMITS.maxEnumValues} enum values in the schema` })
    }
    return Either.right(out)
  } catch (e) {
    if (e instanceof NotStrict) return Either.left(e.problem)
    throw e
  }
}

/**
 * The strict JSON Schema for an Effect Schema (of its encoded side, i.e. the JSON the model writes).
 * Named sub-schemas become `$defs` entries referenced with `#/$defs/Name`.
 */
export const strictJsonSchema = <A, I, R>(
  schema: Schema.Schema<A, I, R>
): Either.Either<JsonSchemaObject, StrictSchemaProblem> => {
  const definitions: Record<string, JSONSchema.JsonSchema7> = {}
  const root = JSONSchema.fromAST(schema.ast, {
    definitions,
    definitionPath: "#/$defs/",
    topLevelReferenceStrategy: "skip"
  }) as unknown as Record<string, unknown>
  const withDefs = Object.keys(definitions).length === 0 ? root : { ...root, $defs: definitions }
  return makeStrict(withDefs)
}

// ---------------------------------------------------------------------------------------------
// Decoding side: strict schemas make optional properties required-but-nullable, so the model sends
// `"x": null` where the Effect Schema expects the key to be absent. `dropOptionalNulls` removes those
// nulls (only for optional properties whose schema does not itself accept null) before decoding.

const unwrap = (ast: SchemaAST.AST): SchemaAST.AST => {
  let current = ast
  for (let i = 0; i < 100; i++) {
    if (current._tag === "Transformation") current = current.from
    else if (current._tag === "Refinement") current = current.from
    else if (current._tag === "Suspend") current = current.f()
    else return current
  }
  return current
}

const acceptsNull = (ast: SchemaAST.AST): boolean => {
  const node = unwrap(ast)
  switch (node._tag) {
    case "Literal":
      return node.literal === null
    case "UnknownKeyword":
    case "AnyKeyword":
      return true
    case "Union":
      return node.types.some(acceptsNull)
    default:
      return false
  }
}

const kindOf = (ast: SchemaAST.AST): "object" | "array" | "other" => {
  const node = unwrap(ast)
  return node._tag === "TypeLiteral" ? "object" : node._tag === "TupleType" ? "array" : "other"
}

const dropNulls = (ast: SchemaAST.AST, value: unknown): void => {
  const node = unwrap(ast)
  if (node._tag === "TypeLiteral" && isObject(value)) {
    for (const ps of node.propertySignatures) {
      if (typeof ps.name !== "string" || !(ps.name in value)) continue
      const v = value[ps.name]
      if (v === null && ps.isOptional && !acceptsNull(ps.type)) delete value[ps.name]
      else dropNulls(ps.type, v)
    }
  } else if (node._tag === "TupleType" && Array.isArray(value)) {
    value.forEach((item, i) => {
      const element = node.elements[i]?.type ?? node.rest[0]?.type
      if (element !== undefined) dropNulls(element, item)
    })
  } else if (node._tag === "Union" && value !== null && typeof value === "object") {
    const kind = Array.isArray(value) ? "array" : "object"
    const candidates = node.types.filter((t) => kindOf(t) === kind)
    if (candidates.length === 1) dropNulls(candidates[0], value)
  }
}

/** The encoded side of each schema seen (made once: `Schema.encodedSchema` builds a new AST per call). */
const encodedAsts = new WeakMap<SchemaAST.AST, SchemaAST.AST>()

/** Removes `null`s the strict schema forced on optional properties (mutates and returns `value`). */
export const dropOptionalNulls = <A, I, R>(schema: Schema.Schema<A, I, R>, value: unknown): unknown => {
  let encoded = encodedAsts.get(schema.ast)
  if (encoded === undefined) {
    encoded = Schema.encodedSchema(schema).ast
    encodedAsts.set(schema.ast, encoded)
  }
  dropNulls(encoded, value)
  return value
}
