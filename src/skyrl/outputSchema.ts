/**
 * The output JSON Schema sent to the model (OpenAI strict structured output), constrained to the
 * inventory, and the decoding of the model's steps back into plain plan steps. Pure.
 *
 * `tool_sequence.items` is an `anyOf` with one branch per inventory tool: `server` and `tool` are
 * `const`s (so a schema-obeying model cannot name a tool that does not exist) and `params` is the
 * tool's input schema made strict-compatible (every property required, optional ones nullable,
 * `additionalProperties: false`, unsupported keywords removed or the tool rejected). A tool whose
 * schema cannot be made strict (open objects, `allOf`, `not`, untyped values...) gets `params` as a
 * JSON string instead, validated after decoding. Constraints removed by the strict copy (minLength,
 * unsupported formats, ...) are checked afterwards too: every decoded plan is validated against the
 * tools' original schemas (planValidation.ts).
 */
import { Either, JSONSchema } from "effect"
import type { Inventory, InventoryTool, StepIssue } from "../domain/inventory.js"
import { isObject } from "../domain/json.js"
import type { ModelStep } from "../domain/task.js"
import { ModelTask } from "../domain/task.js"
import type { PlanStep } from "./planValidation.js"
import { STRICT_FORMATS, STRICT_LIMITS } from "./strictSchema.js"

type Json = Record<string, unknown>

/** OpenAI's strict-mode rules live with the generic strict derivation; the output schema applies them too. */
export { STRICT_FORMATS, STRICT_LIMITS } from "./strictSchema.js"

/** Levels taken by the output schema above a tool's params: root → tool_sequence → step. */
const LEVELS_ABOVE_PARAMS = 3

export type ParamsMode = "strict" | "json-string"

export interface ToolChoice {
  readonly server: string
  readonly tool: string
  readonly mode: ParamsMode
  /** Why the tool's params are a JSON string (mode "json-string"). */
  readonly reason?: string
}

export interface OutputSchemaOptions {
  /** Upper bound on the plan length (`maxItems` of tool_sequence). */
  readonly maxSteps?: number
}

export interface OutputSchema {
  readonly schema: Json
  readonly choices: ReadonlyArray<ToolChoice>
  /** Limits the whole schema still exceeds with every tool as a JSON string (empty when it fits). */
  readonly violations: ReadonlyArray<string>
}

// ---------------------------------------------------------------------------------------------
// Making one tool's input schema strict

class NotStrict extends Error {}

const fail = (path: string, reason: string): never => {
  throw new NotStrict(`${path === "" ? "params" : `params${path}`}: ${reason}`)
}

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

interface DefContext {
  readonly localDefs: Json
  readonly prefix: string
  readonly out: Json
  readonly mapped: Map<string, string>
}

const safeName = (text: string): string => text.replace(/[^A-Za-z0-9_-]/g, "_")

const inferType = (values: ReadonlyArray<unknown>): unknown => {
  const types = new Set(values.map((v) =>
    v === null
      ? "null"
      : typeof v === "number"
      ? (Number.isInteger(v) ? "integer" : "number")
      : typeof v === "string"
      ? "string"
      : typeof v === "boolean"
      ? "boolean"
      : "other"
  ))
  if (types.has("other")) return undefined
  if (types.has("number")) types.delete("integer")
  const list = [...types]
  return list.length === 1 ? list[0] : list
}

const makeNullable = (schema: Json): Json => {
  if (schema.$ref !== undefined) return { anyOf: [schema, { type: "null" }] }
  if (Array.isArray(schema.anyOf)) {
    const hasNull = schema.anyOf.some((b) => isObject(b) && (b.type === "null"))
    return hasNull ? schema : { ...schema, anyOf: [...schema.anyOf, { type: "null" }] }
  }
  const out: Json = { ...schema }
  if (typeof out.type === "string") out.type = out.type === "null" ? "null" : [out.type, "null"]
  else if (Array.isArray(out.type) && !out.type.includes("null")) out.type = [...out.type, "null"]
  if (out.const !== undefined) {
    out.enum = [out.const, null]
    delete out.const
  } else if (Array.isArray(out.enum) && !out.enum.includes(null)) {
    out.enum = [...out.enum, null]
  }
  return out
}

const strictify = (node: unknown, path: string, defs: DefContext): Json => {
  if (!isObject(node)) return fail(path, "is not a schema object (accepts any value)")
  let schema = node
  if (Array.isArray(schema.allOf)) {
    if (schema.allOf.length !== 1 || !isObject(schema.allOf[0])) return fail(path, "uses allOf")
    const { allOf: _allOf, ...rest } = schema
    schema = { ...(schema.allOf[0] as Json), ...rest }
  }
  for (const key of UNSUPPORTED) {
    if (schema[key] !== undefined) fail(path, `uses ${key}`)
  }
  if (schema.unevaluatedProperties !== undefined && schema.unevaluatedProperties !== false) {
    fail(path, "allows unevaluated properties")
  }
  const description = typeof schema.description === "string" ? { description: schema.description } : {}

  if (typeof schema.$ref === "string") {
    const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(schema.$ref)
    if (match === null) return fail(path, `has a $ref that is not a local definition (${schema.$ref})`)
    const name = match[2]!.replace(/~1/g, "/").replace(/~0/g, "~")
    if (!(name in defs.localDefs)) return fail(path, `refers to a missing definition ${schema.$ref}`)
    let hoisted = defs.mapped.get(name)
    if (hoisted === undefined) {
      hoisted = `${defs.prefix}${safeName(name)}`
      while (hoisted in defs.out) hoisted += "_"
      defs.mapped.set(name, hoisted)
      defs.out[hoisted] = {} // reserve the name before recursing (recursive definitions)
      defs.out[hoisted] = strictify(defs.localDefs[name], `/$defs/${name}`, defs)
    }
    return { $ref: `#/$defs/${hoisted}`, ...description }
  }

  const combinator = Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : undefined
  if (combinator !== undefined) {
    if (
      ["type", "properties", "items", "enum", "const"].some((k) => schema[k] !== undefined) ||
      (schema.anyOf !== undefined && schema.oneOf !== undefined)
    ) {
      fail(path, "combines anyOf/oneOf with other constraints")
    }
    if (combinator.length === 0) fail(path, "has an empty anyOf/oneOf")
    return { anyOf: combinator.map((b, i) => strictify(b, `${path}/anyOf/${i}`, defs)), ...description }
  }

  let type = schema.type
  if (type === undefined && Array.isArray(schema.enum)) type = inferType(schema.enum)
  if (type === undefined && schema.const !== undefined) type = inferType([schema.const])
  if (type === undefined) return fail(path, "has no type (accepts any value)")
  if (schema.nullable === true) {
    type = typeof type === "string" ? [type, "null"] : Array.isArray(type) ? [...type, "null"] : type
  }
  const types: ReadonlyArray<unknown> = Array.isArray(type) ? type : [type]
  const out: Json = { type, ...description }
  if (Array.isArray(schema.enum)) {
    if (schema.enum.some((v) => typeof v === "object" && v !== null)) fail(path, "has an enum of objects or arrays")
    out.enum = schema.enum
  }
  if (schema.const !== undefined) {
    if (typeof schema.const === "object" && schema.const !== null) fail(path, "has a const object or array")
    out.const = schema.const
  }

  if (types.includes("object")) {
    if (schema.additionalProperties !== undefined && schema.additionalProperties !== false) {
      fail(path, "allows additional properties (an open object)")
    }
    if (!isObject(schema.properties) && schema.additionalProperties !== false) {
      fail(path, "is an object without declared properties (an open object)")
    }
    const properties = isObject(schema.properties) ? schema.properties : {}
    const required = new Set(Array.isArray(schema.required) ? schema.required : [])
    const undeclared = [...required].filter((name) => !(String(name) in properties))
    if (undeclared.length > 0) fail(path, `requires undeclared properties (${undeclared.join(", ")})`)
    const strictProps: Json = {}
    for (const [name, sub] of Object.entries(properties)) {
      const converted = strictify(sub, `${path}/${name}`, defs)
      strictProps[name] = required.has(name) ? converted : makeNullable(converted)
    }
    out.properties = strictProps
    out.required = Object.keys(strictProps)
    out.additionalProperties = false
  }
  if (types.includes("array")) {
    if (Array.isArray(schema.items)) fail(path, "uses tuple items")
    if (schema.items === undefined || schema.items === true) fail(path, "is an array whose items are not described")
    out.items = strictify(schema.items, `${path}/items`, defs)
    for (const k of ["minItems", "maxItems"]) if (typeof schema[k] === "number") out[k] = schema[k]
  }
  if (types.includes("string")) {
    if (typeof schema.pattern === "string") out.pattern = schema.pattern
    if (typeof schema.format === "string" && STRICT_FORMATS.has(schema.format)) out.format = schema.format
  }
  if (types.includes("number") || types.includes("integer")) {
    for (const k of ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"]) {
      if (typeof schema[k] === "number") out[k] = schema[k]
    }
  }
  return out
}

/**
 * The strict copy of a tool's input schema, with its definitions hoisted under `$defs` names that
 * start with `defPrefix`; or the reason it cannot be made strict.
 */
export const toStrictParams = (
  inputSchema: Json,
  defPrefix = ""
): { readonly ok: true; readonly schema: Json; readonly defs: Json } | {
  readonly ok: false
  readonly reason: string
} => {
  const localDefs = {
    ...(isObject(inputSchema.definitions) ? inputSchema.definitions : {}),
    ...(isObject(inputSchema.$defs) ? inputSchema.$defs : {})
  }
  const defs: DefContext = { localDefs, prefix: defPrefix, out: {}, mapped: new Map() }
  try {
    const schema = strictify(inputSchema, "", defs)
    const types = Array.isArray(schema.type) ? schema.type : [schema.type]
    if (!types.includes("object") || types.length !== 1) return { ok: false, reason: "params: root is not an object" }
    const depth = LEVELS_ABOVE_PARAMS + nestingDepth(schema, defs.out)
    if (depth > STRICT_LIMITS.maxNesting) {
      return { ok: false, reason: `nesting depth ${depth} exceeds ${STRICT_LIMITS.maxNesting}` }
    }
    for (const e of enumsOf({ schema, defs: defs.out })) {
      if (e.length > STRICT_LIMITS.largeEnumThreshold && enumChars(e) > STRICT_LIMITS.largeEnumChars) {
        return { ok: false, reason: `an enum of ${e.length} values exceeds ${STRICT_LIMITS.largeEnumChars} characters` }
      }
    }
    return { ok: true, schema, defs: defs.out }
  } catch (e) {
    if (e instanceof NotStrict) return { ok: false, reason: e.message }
    throw e
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring a schema against OpenAI's limits

/** Object/array levels on the deepest path (the root counts as 1); refs are followed once per path. */
export const nestingDepth = (schema: unknown, defs: Json, seen: ReadonlySet<string> = new Set()): number => {
  if (Array.isArray(schema)) return Math.max(0, ...schema.map((s) => nestingDepth(s, defs, seen)))
  if (!isObject(schema)) return 0
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.replace(/^#\/\$defs\//, "")
    if (seen.has(name)) return 0
    return nestingDepth(defs[name], defs, new Set([...seen, name]))
  }
  const children: Array<unknown> = []
  if (isObject(schema.properties)) children.push(...Object.values(schema.properties))
  if (schema.items !== undefined) children.push(schema.items)
  const inner = Math.max(0, ...children.map((c) => nestingDepth(c, defs, seen)))
  const combined = Math.max(
    0,
    ...["anyOf", "oneOf", "allOf"].map((k) => Array.isArray(schema[k]) ? nestingDepth(schema[k], defs, seen) : 0)
  )
  const types = Array.isArray(schema.type) ? schema.type : [schema.type]
  const level = types.includes("object") || types.includes("array") ? 1 : 0
  return Math.max(level + inner, combined)
}

const walk = (schema: unknown, visit: (node: Json) => void): void => {
  if (Array.isArray(schema)) {
    schema.forEach((s) => walk(s, visit))
    return
  }
  if (!isObject(schema)) return
  visit(schema)
  for (const [key, value] of Object.entries(schema)) {
    if (key === "enum" || key === "const" || key === "default" || key === "examples") continue
    if ((key === "properties" || key === "$defs" || key === "definitions") && isObject(value)) {
      Object.values(value).forEach((v) => walk(v, visit))
    } else if (typeof value === "object") {
      walk(value, visit)
    }
  }
}

const enumsOf = (schema: unknown): ReadonlyArray<ReadonlyArray<unknown>> => {
  const found: Array<ReadonlyArray<unknown>> = []
  walk(schema, (node) => {
    if (Array.isArray(node.enum)) found.push(node.enum)
  })
  return found
}

const enumChars = (values: ReadonlyArray<unknown>): number =>
  values.reduce<number>((n, v) => n + (typeof v === "string" ? v.length : String(v).length), 0)

export interface SchemaSize {
  readonly properties: number
  readonly enumValues: number
  /** Characters of property names, definition names, enum values and const values. */
  readonly nameChars: number
  readonly depth: number
}

/** What OpenAI counts against its limits, for a whole schema (definitions in root `$defs`). */
export const measureSchema = (schema: Json): SchemaSize => {
  let properties = 0
  let enumValues = 0
  let nameChars = 0
  walk(schema, (node) => {
    if (isObject(node.properties)) {
      const names = Object.keys(node.properties)
      properties += names.length
      nameChars += names.reduce((n, k) => n + k.length, 0)
    }
    if (isObject(node.$defs)) nameChars += Object.keys(node.$defs).reduce((n, k) => n + k.length, 0)
    if (Array.isArray(node.enum)) {
      enumValues += node.enum.length
      nameChars += enumChars(node.enum)
    }
    if (node.const !== undefined) nameChars += enumChars([node.const])
  })
  return { properties, enumValues, nameChars, depth: nestingDepth(schema, isObject(schema.$defs) ? schema.$defs : {}) }
}

const limitViolations = (size: SchemaSize): ReadonlyArray<string> => [
  ...(size.properties > STRICT_LIMITS.maxProperties
    ? [`${size.properties} properties (limit ${STRICT_LIMITS.maxProperties})`]
    : []),
  ...(size.enumValues > STRICT_LIMITS.maxEnumValues
    ? [`${size.enumValues} enum values (limit ${STRICT_LIMITS.maxEnumValues})`]
    : []),
  ...(size.nameChars > STRICT_LIMITS.maxNameChars
    ? [`${size.nameChars} characters of names and values (limit ${STRICT_LIMITS.maxNameChars})`]
    : []),
  ...(size.depth > STRICT_LIMITS.maxNesting ? [`nesting depth ${size.depth} (limit ${STRICT_LIMITS.maxNesting})`] : [])
]

// ---------------------------------------------------------------------------------------------
// The whole output schema

/** Removes Effect's automatic annotations (`title`, `$id`, and the description paired with a title). */
const cleanAnnotations = (schema: unknown): unknown => {
  if (Array.isArray(schema)) return schema.map(cleanAnnotations)
  if (!isObject(schema)) return schema
  const out: Json = {}
  for (const [key, value] of Object.entries(schema)) {
    if (key === "title" || key === "$id" || key === "$schema") continue
    if (key === "description" && schema.title !== undefined) continue
    out[key] = key === "enum" || key === "const" ? value : cleanAnnotations(value)
  }
  return out
}

/** The ModelTask contract as a strict JSON Schema, before tool_sequence is constrained. */
export const modelTaskJsonSchema = (): Json => {
  const definitions = {}
  return cleanAnnotations(
    JSONSchema.fromAST(ModelTask.ast, { definitions, topLevelReferenceStrategy: "skip" })
  ) as Json
}

const jsonStringParams = (tool: InventoryTool): Json => ({
  type: "string",
  description: `The params of ${tool.name} as a JSON object encoded in a string; it must validate against the ` +
    "tool's input schema in the catalogue."
})

const branch = (server: string, tool: string, params: Json): Json => ({
  type: "object",
  properties: {
    server: { type: "string", const: server },
    tool: { type: "string", const: tool },
    params
  },
  required: ["server", "tool", "params"],
  additionalProperties: false
})

interface Candidate {
  readonly server: string
  readonly tool: InventoryTool
  strict: { readonly schema: Json; readonly defs: Json; readonly size: SchemaSize } | undefined
  reason: string | undefined
}

const assemble = (base: Json, candidates: ReadonlyArray<Candidate>, options?: OutputSchemaOptions): Json => {
  const defs: Json = {}
  const branches = candidates.map((c) => {
    if (c.strict === undefined) return branch(c.server, c.tool.name, jsonStringParams(c.tool))
    Object.assign(defs, c.strict.defs)
    return branch(c.server, c.tool.name, c.strict.schema)
  })
  const properties = isObject(base.properties) ? base.properties : {}
  const sequence = isObject(properties.tool_sequence) ? properties.tool_sequence : {}
  const toolSequence: Json = {
    ...(typeof sequence.description === "string" ? { description: sequence.description } : {}),
    type: "array",
    items: { anyOf: branches },
    minItems: 1,
    ...(options?.maxSteps === undefined ? {} : { maxItems: options.maxSteps })
  }
  return {
    ...base,
    properties: { ...properties, tool_sequence: toolSequence },
    ...(Object.keys(defs).length === 0 ? {} : { $defs: defs })
  }
}

/**
 * The strict output schema for a ModelTask whose tool_sequence is constrained to the inventory, and
 * the params mode chosen per tool. When the whole schema exceeds OpenAI's limits, the tools with the
 * largest strict params fall back to JSON strings until it fits.
 */
export const buildOutputSchema = (inventory: Inventory, options?: OutputSchemaOptions): OutputSchema => {
  const base = modelTaskJsonSchema()
  const candidates: Array<Candidate> = inventory.servers.flatMap((server) =>
    server.tools.map((tool) => {
      const result = toStrictParams(tool.inputSchema, `${safeName(server.name)}.${safeName(tool.name)}.`)
      return result.ok
        ? {
          server: server.name,
          tool,
          strict: {
            schema: result.schema,
            defs: result.defs,
            size: measureSchema({ properties: { p: result.schema }, $defs: result.defs })
          },
          reason: undefined
        }
        : { server: server.name, tool, strict: undefined, reason: result.reason }
    })
  )
  let schema = assemble(base, candidates, options)
  let size = measureSchema(schema)
  if (limitViolations(size).length > 0) {
    const cost = (c: Candidate) =>
      c.strict === undefined ? 0 : c.strict.size.properties + c.strict.size.enumValues + c.strict.size.nameChars / 100
    const byCost = candidates.filter((c) => c.strict !== undefined).sort((a, b) => cost(b) - cost(a))
    // Demote the costliest tools, tracking the totals incrementally (a JSON-string params schema
    // counts as the one "p" property its strict size was measured under), then rebuild once.
    let estimate = size
    for (const c of byCost) {
      const s = c.strict!.size
      estimate = {
        properties: estimate.properties - (s.properties - 1),
        enumValues: estimate.enumValues - s.enumValues,
        nameChars: estimate.nameChars - (s.nameChars - 1),
        depth: 0
      }
      c.strict = undefined
      c.reason = "the whole output schema would exceed OpenAI's strict limits"
      if (limitViolations(estimate).length === 0) break
    }
    schema = assemble(base, candidates, options)
    size = measureSchema(schema)
  }
  const violations = limitViolations(size)
  return {
    schema,
    violations,
    choices: candidates.map((c) =>
      c.strict === undefined
        ? { server: c.server, tool: c.tool.name, mode: "json-string" as const, reason: c.reason ?? "" }
        : { server: c.server, tool: c.tool.name, mode: "strict" as const }
    )
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding the model's steps

const resolveRef = (schema: unknown, root: Json): unknown => {
  let current = schema
  for (let i = 0; i < 32 && isObject(current) && typeof current.$ref === "string"; i++) {
    const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(current.$ref)
    if (match === null) return current
    const defs = root[match[1]!]
    current = isObject(defs) ? defs[match[2]!] : undefined
  }
  return current
}

/**
 * Removes the `null`s that the strict form made the model write for optional params (recursively,
 * following the tool's original schema): a null under a key that the schema declares but does not
 * require is dropped. Keys the schema does not declare are left for validation to report.
 */
export const dropOptionalNulls = (value: unknown, schema: unknown, root: Json): unknown => {
  const s = resolveRef(schema, root)
  if (!isObject(s)) return value
  if (Array.isArray(value)) {
    return isObject(s.items) ? value.map((v) => dropOptionalNulls(v, s.items, root)) : value
  }
  if (!isObject(value)) return value
  const parts = [s, ...["anyOf", "oneOf", "allOf"].flatMap((k) => Array.isArray(s[k]) ? s[k] as Array<unknown> : [])]
    .map((p) => resolveRef(p, root))
    .filter(isObject)
  const properties: Json = {}
  for (const p of parts) if (isObject(p.properties)) Object.assign(properties, p.properties)
  const required = new Set<unknown>([
    ...(Array.isArray(s.required) ? s.required : []),
    ...(Array.isArray(s.allOf) ?
      s.allOf.map((p) => resolveRef(p, root)).flatMap((p) => isObject(p) && Array.isArray(p.required) ? p.required : [])
      : [])
  ])
  const out: Json = {}
  for (const [key, v] of Object.entries(value)) {
    if (!(key in properties)) out[key] = v
    else if (v === null && !required.has(key)) continue
    else out[key] = dropOptionalNulls(v, properties[key], root)
  }
  return out
}

/**
 * Turns the model's steps into plain plan steps numbered 1..n: params given as a JSON string are
 * parsed (a string that is not a JSON object is an issue at `params`), params given as an object lose
 * the nulls of optional params. Unknown tools are kept as they are (validation reports them).
 */
export const decodeSteps = (
  inventory: Inventory,
  modelSteps: ReadonlyArray<ModelStep>
): Either.Either<ReadonlyArray<PlanStep>, ReadonlyArray<StepIssue>> => {
  const issues: Array<StepIssue> = []
  const steps = modelSteps.map((m, i): PlanStep => {
    const base = { step: i + 1, server: m.server, tool: m.tool }
    const tool = inventory.servers.find((s) => s.name === m.server)?.tools.find((t) => t.name === m.tool)
    if (typeof m.params === "string") {
      let parsed: unknown
      try {
        parsed = JSON.parse(m.params)
      } catch (e) {
        issues.push({ ...base, path: "params", message: `is not valid JSON: ${(e as Error).message}` })
        return { ...base, params: m.params }
      }
      if (!isObject(parsed)) {
        issues.push({ ...base, path: "params", message: "must be a JSON object encoded in a string" })
      }
      return { ...base, params: parsed }
    }
    const params = tool === undefined ? m.params : dropOptionalNulls(m.params, tool.inputSchema, tool.inputSchema)
    return { ...base, params }
  })
  return issues.length > 0 ? Either.left(issues) : Either.right(steps)
}
