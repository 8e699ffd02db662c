/**
 * OpenAI strict JSON Schema, derived from an Effect Schema (never written twice).
 *
 * OpenAI's strict structured output accepts a subset of JSON Schema: the root is an object (not
 * anyOf), every property is listed in `required` (an optional property becomes required-but-nullable),
 * every object has `additionalProperties: false`, and only some keywords are allowed. `makeStrict`
 * rewrites any JSON Schema into that subset or says, with a path, why it cannot:
 * - optional properties → required, their schema made nullable (`type: [t, "null"]` or an anyOf branch);
 * - annotations (`title`, `default`, `examples`, `$id`, `$schema`) and validation-only keywords OpenAI
 *   does not support (`minLength`, `maxLength`, `uniqueItems`, unknown `format`s, ...) are dropped —
 *   the answer is decoded with the Effect Schema afterwards, which still checks them;
 * - open-ended parts (an object without declared properties, `{}`/unknown, `patternProperties`,
 *   `allOf`, `not`, `if`, tuples) cannot be strict: inside an `anyOf` such a branch is dropped when
 *   another branch remains (e.g. `Union(Record, String)` → the string form), elsewhere it is an error.
 *
 * Pure: no I/O.
 */
import type { SchemaAST } from "effect"
import { Either, JSONSchema, Schema } from "effect"
import { isObject } from "../domain/json.js"

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

const ANNOTATIONS = new Set(["$schema", "$id", "$comment", "title", "default", "examples", "readOnly", "writeOnly"])
const UNSUPPORTED_VALIDATION = new Set([
  "minLength",
  "maxLength",
  "uniqueItems",
  "minProperties",
  "maxProperties",
  "contentEncoding",
  "contentMediaType",
  "deprecated",
  "nullable"
])
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
const KEPT = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "anyOf",
  "oneOf",
  "enum",
  "const",
  "$ref",
  "$defs",
  "definitions",
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

interface Walk {
  properties: number
}

const strictNode = (node: unknown, path: string, depth: number, walk: Walk): Record<string, unknown> => {
  if (node === true) throw new NotStrict({ path, reason: "accepts any value (open schema)" })
  if (!isObject(node)) throw new NotStrict({ path, reason: "not a JSON Schema object" })
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(node)) {
    if (ANNOTATIONS.has(key) || UNSUPPORTED_VALIDATION.has(key)) continue
    if (!KEPT.has(key)) {
      throw new NotStrict({ path, reason: `keyword "${key}" is not supported by OpenAI strict mode` })
    }
    if (key === "format" && !STRICT_FORMATS.has(String(value))) continue
    out[key] = value
  }
  if (node.nullable === true && out.type !== undefined) out.type = [...typesOf(out), "null"]
  if (out.oneOf !== undefined) {
    out.anyOf = [...((out.anyOf as Array<unknown> | undefined) ?? []), ...(out.oneOf as Array<unknown>)]
    delete out.oneOf
  }
  if (Array.isArray(out.enum) && out.enum.length > STRICT_LIMITS.maxEnumValues) {
    throw new NotStrict({ path, reason: `more than ${STRICT_LIMITS.maxEnumValues} enum values` })
  }
  for (const defsKey of ["$defs", "definitions"]) {
    if (isObject(out[defsKey])) {
      const defs: Record<string, unknown> = {}
      for (const [name, def] of Object.entries(out[defsKey] as object)) {
        defs[name] = strictNode(def, `${defsKey}.${name}`, 0, walk)
      }
      out[defsKey] = defs
    }
  }
  if (out.anyOf !== undefined) {
    if (!Array.isArray(out.anyOf)) throw new NotStrict({ path, reason: "anyOf is not an array" })
    const branches: Array<unknown> = []
    let firstProblem: StrictSchemaProblem | undefined
    for (const branch of out.anyOf) {
      try {
        branches.push(strictNode(branch, path, depth, walk))
      } catch (e) {
        if (!(e instanceof NotStrict)) throw e
        firstProblem ??= e.problem
      }
    }
    if (branches.length === 0) throw new NotStrict(firstProblem ?? { path, reason: "empty anyOf" })
    out.anyOf = branches
  }
  const types = typesOf(out)
  const isObjectType = types.includes("object") || out.properties !== undefined
  const isArrayType = types.includes("array") || out.items !== undefined
  if (isObjectType) {
    if (depth + 1 > STRICT_LIMITS.maxNesting) {
      throw new NotStrict({ path, reason: `nested deeper than ${STRICT_LIMITS.maxNesting} object levels` })
    }
    const props = isObject(out.properties) ? out.properties : {}
    const keys = Object.keys(props)
    const extra = out.additionalProperties
    if (
      extra !== undefined && extra !== false && !(isObject(extra) && Object.keys(extra).length === 0 && keys.length > 0)
    ) {
      throw new NotStrict({ path, reason: "an object with free-form keys (additionalProperties) cannot be strict" })
    }
    if (keys.length === 0 && extra !== false) {
      throw new NotStrict({ path, reason: "an object without declared properties cannot be strict" })
    }
    walk.properties += keys.length
    if (walk.properties > STRICT_LIMITS.maxProperties) {
      throw new NotStrict({ path, reason: `more than ${STRICT_LIMITS.maxProperties} properties in the schema` })
    }
    const required = new Set(Array.isArray(out.required) ? (out.required as Array<string>) : [])
    const properties: Record<string, unknown> = {}
    for (const key of keys) {
      const strict = strictNode(props[key], join(path, key), depth + 1, walk)
      properties[key] = required.has(key) ? strict : makeNullable(strict)
    }
    out.properties = properties
    out.required = keys
    out.additionalProperties = false
  }
  if (isArrayType) {
    if (out.items === undefined) throw new NotStrict({ path, reason: "an array without `items` cannot be strict" })
    if (Array.isArray(out.items)) throw new NotStrict({ path, reason: "tuples (array `items`) cannot be strict" })
    out.items = strictNode(out.items, `${path}[]`, depth, walk)
  }
  const constrained = types.length > 0 || out.anyOf !== undefined || out.$ref !== undefined ||
    out.enum !== undefined || "const" in out
  if (!constrained) throw new NotStrict({ path, reason: "accepts any value (no type)" })
  return out
}

/** Rewrites a JSON Schema into OpenAI's strict subset, or says (with a path) why it cannot. */
export const makeStrict = (schema: unknown): Either.Either<JsonSchemaObject, StrictSchemaProblem> => {
  try {
    const out = strictNode(schema, "", 0, { properties: 0 })
    if (out.anyOf !== undefined || !typesOf(out).includes("object") || typesOf(out).length !== 1) {
      return Either.left({ path: "", reason: "the root of a strict schema must be an object (not a union)" })
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

/** Removes `null`s the strict schema forced on optional properties (mutates and returns `value`). */
export const dropOptionalNulls = <A, I, R>(schema: Schema.Schema<A, I, R>, value: unknown): unknown => {
  dropNulls(Schema.encodedSchema(schema).ast, value)
  return value
}
