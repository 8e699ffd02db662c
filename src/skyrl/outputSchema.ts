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
import { isObject, setOwn } from "../domain/json.js"
import type { ModelStep } from "../domain/task.js"
import { ModelTask } from "../domain/task.js"
import type { PlanStep } from "./planValidation.js"
import { makeStrict, STRICT_LIMITS } from "./strictSchema.js"

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
// Making one tool's input schema strict (the converter is strictSchema.ts's `makeStrict`)

const safeName = (text: string): string => text.replace(/[^A-Za-z0-9_-]/g, "_")

/** `params/a/b[]`: where in a tool's params a problem is (the converter's dotted path). */
const paramsPath = (path: string): string => (path === "" ? "params" : `params/${path.split(".").join("/")}`)

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
  const defs: Json = {}
  const strict = makeStrict(inputSchema, { hoist: { prefix: defPrefix, into: defs }, levelsAbove: LEVELS_ABOVE_PARAMS })
  if (Either.isLeft(strict)) {
    return {
      ok: false,
      reason: strict.left.path === "" && /root/.test(strict.left.reason)
        ? "params: root is not an object"
        : `${paramsPath(strict.left.path)}: ${strict.left.reason}`
    }
  }
  const schema = strict.right as Json
  const depth = LEVELS_ABOVE_PARAMS + nestingDepth(schema, defs)
  if (depth > STRICT_LIMITS.maxNesting) {
    return { ok: false, reason: `nesting depth ${depth} exceeds ${STRICT_LIMITS.maxNesting}` }
  }
  for (const e of enumsOf({ schema, defs })) {
    if (e.length > STRICT_LIMITS.largeEnumThreshold && enumChars(e) > STRICT_LIMITS.largeEnumChars) {
      return { ok: false, reason: `an enum of ${e.length} values exceeds ${STRICT_LIMITS.largeEnumChars} characters` }
    }
  }
  return { ok: true, schema, defs }
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
    setOwn(out, key, key === "enum" || key === "const" ? value : cleanAnnotations(value))
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

/**
 * `derived_params` of one tool's branch: a list of that tool's param names (none for a tool without params;
 * any string for a tool whose schema declares none but takes any key). Without `names` (a catalogue whose
 * schema would exceed OpenAI's limits with them) the items are plain strings, checked after decoding.
 */
const derivedParamsSchema = (tool: InventoryTool, names: boolean): Json => {
  const schema = tool.inputSchema
  const declared = isObject(schema.properties) ? Object.keys(schema.properties) : []
  if (declared.length > 0) {
    return { type: "array", items: names ? { type: "string", enum: declared } : { type: "string" } }
  }
  const open = schema.additionalProperties !== undefined && schema.additionalProperties !== false
  return open ? { type: "array", items: { type: "string" } } : { type: "array", items: { type: "string" }, maxItems: 0 }
}

const branch = (server: string, tool: InventoryTool, params: Json, derivedNames: boolean): Json => ({
  type: "object",
  properties: {
    server: { type: "string", const: server },
    tool: { type: "string", const: tool.name },
    params,
    depends_on: { type: "array", items: { type: "integer" } },
    derived_params: derivedParamsSchema(tool, derivedNames)
  },
  required: ["server", "tool", "params", "depends_on", "derived_params"],
  additionalProperties: false
})

interface Candidate {
  readonly server: string
  readonly tool: InventoryTool
  strict: { readonly schema: Json; readonly defs: Json; readonly size: SchemaSize } | undefined
  reason: string | undefined
}

const assemble = (
  base: Json,
  candidates: ReadonlyArray<Candidate>,
  options: OutputSchemaOptions | undefined,
  derivedNames: boolean
): Json => {
  const defs: Json = {}
  const branches = candidates.map((c) => {
    if (c.strict === undefined) return branch(c.server, c.tool, jsonStringParams(c.tool), derivedNames)
    Object.assign(defs, c.strict.defs)
    return branch(c.server, c.tool, c.strict.schema, derivedNames)
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
  // Over the limits: first the derived_params enums go (plain strings, checked after decoding), then the
  // costliest tools' params become JSON strings.
  let derivedNames = true
  let schema = assemble(base, candidates, options, derivedNames)
  let size = measureSchema(schema)
  if (limitViolations(size).length > 0) {
    derivedNames = false
    schema = assemble(base, candidates, options, derivedNames)
    size = measureSchema(schema)
  }
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
    schema = assemble(base, candidates, options, derivedNames)
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
  for (const p of parts) {
    if (!isObject(p.properties)) continue
    for (const [k, v] of Object.entries(p.properties)) setOwn(properties, k, v)
  }
  const required = new Set<unknown>([
    ...(Array.isArray(s.required) ? s.required : []),
    ...(Array.isArray(s.allOf) ?
      s.allOf.map((p) => resolveRef(p, root)).flatMap((p) => isObject(p) && Array.isArray(p.required) ? p.required : [])
      : [])
  ])
  const out: Json = {}
  for (const [key, v] of Object.entries(value)) {
    // Own keys only: `"constructor" in {}` is true, and `out.__proto__ = v` would set out's prototype.
    if (!Object.hasOwn(properties, key)) setOwn(out, key, v)
    else if (v === null && !required.has(key)) continue
    else setOwn(out, key, dropOptionalNulls(v, properties[key], root))
  }
  return out
}

/** A model step; provenance may be absent (answers recorded before it existed). */
export type ModelStepInput =
  & Omit<ModelStep, "depends_on" | "derived_params">
  & Partial<
    Pick<ModelStep, "depends_on" | "derived_params">
  >

/**
 * Turns the model's steps into plain plan steps numbered 1..n (with their provenance): params given as a JSON string are
 * parsed (a string that is not a JSON object is an issue at `params`), params given as an object lose
 * the nulls of optional params. Unknown tools are kept as they are (validation reports them).
 */
export const decodeSteps = (
  inventory: Inventory,
  modelSteps: ReadonlyArray<ModelStepInput>
): Either.Either<ReadonlyArray<PlanStep>, ReadonlyArray<StepIssue>> => {
  const issues: Array<StepIssue> = []
  const steps = modelSteps.map((m, i): PlanStep => {
    const at = { step: i + 1, server: m.server, tool: m.tool }
    const base = {
      ...at,
      ...(m.depends_on === undefined ? {} : { depends_on: m.depends_on }),
      ...(m.derived_params === undefined ? {} : { derived_params: m.derived_params })
    }
    const tool = inventory.servers.find((s) => s.name === m.server)?.tools.find((t) => t.name === m.tool)
    if (typeof m.params === "string") {
      let parsed: unknown
      try {
        parsed = JSON.parse(m.params)
      } catch (e) {
        issues.push({ ...at, path: "params", message: `is not valid JSON: ${(e as Error).message}` })
        return { ...base, params: m.params }
      }
      if (!isObject(parsed)) {
        issues.push({ ...at, path: "params", message: "must be a JSON object encoded in a string" })
      }
      return { ...base, params: parsed }
    }
    const params = tool === undefined ? m.params : dropOptionalNulls(m.params, tool.inputSchema, tool.inputSchema)
    return { ...base, params }
  })
  return issues.length > 0 ? Either.left(issues) : Either.right(steps)
}

/** Whether `value` holds a `null` anywhere (no allocation: convert asks it of every step's params). */
const holdsNull = (value: unknown): boolean => {
  if (value === null) return true
  if (typeof value !== "object") return false
  if (Array.isArray(value)) return value.some(holdsNull)
  for (const key in value) if (Object.hasOwn(value, key) && holdsNull((value as Json)[key])) return true
  return false
}

/**
 * A task object (`convert`'s input: the model's output shape) with each step's params read as generate reads the
 * model's (`decodeSteps`): a JSON string parsed, the nulls of optional params dropped. Before, convert refused
 * what generate had accepted from the same answer (`params/limit: must be integer (got null)`, `params: must be an
 * object, got string`). The task itself when no step has either (no copy); a string that is no JSON object is
 * the step's `params` field and reason.
 */
export const withModelParams = (
  inventory: Inventory,
  task: unknown
): Either.Either<unknown, { readonly field: string; readonly reason: string }> => {
  if (!isObject(task) || !Array.isArray(task.tool_sequence)) return Either.right(task)
  const steps: ReadonlyArray<unknown> = task.tool_sequence
  const modelShaped = (s: unknown): s is Json & { server: string; tool: string } =>
    isObject(s) && typeof s.server === "string" && typeof s.tool === "string" &&
    (typeof s.params === "string" || (isObject(s.params) && holdsNull(s.params)))
  if (!steps.some(modelShaped)) return Either.right(task)
  const out: Array<unknown> = []
  for (const [i, s] of steps.entries()) {
    if (!modelShaped(s)) {
      out.push(s)
      continue
    }
    const decoded = decodeSteps(inventory, [{
      server: s.server,
      tool: s.tool,
      params: s.params as ModelStep["params"]
    }])
    if (Either.isLeft(decoded)) {
      return Either.left({ field: `tool_sequence[${i}].params`, reason: decoded.left[0]!.message })
    }
    out.push({ ...s, params: decoded.right[0]!.params })
  }
  return Either.right({ ...task, tool_sequence: out })
}
