/**
 * Plan validation against the inventory (pure; ajv compiled per tool entry and cached).
 *
 * Every step's server must exist, the tool must belong to that server, and the params must validate
 * against the tool's inputSchema (required, types, enums, formats...). Unknown params: by default a
 * param that the tool's schema does not declare is an error whenever the schema lists `properties`
 * and says nothing about other keys (`additionalProperties` absent) — a ground-truth plan must not
 * carry params the tool never asked for. A schema that allows extra keys explicitly
 * (`additionalProperties: true`/a schema, `patternProperties`) keeps allowing them. Pass
 * `{ unknownParams: "allow" }` for plain JSON Schema semantics.
 *
 * Param provenance (`provenanceIssues`, part of `validatePlan`): `depends_on` names earlier steps only, a
 * step with derived params depends on something, and each derived param is a param of the tool with an
 * illustrative value in the step's params. Derived values are never compared with anything: any
 * schema-valid value is right.
 */
import { Ajv, type ErrorObject, MissingRefError, type ValidateFunction } from "ajv"
import * as AjvFormats from "ajv-formats"
import { Ajv2019 } from "ajv/dist/2019.js"
import { Ajv2020 } from "ajv/dist/2020.js"
import type { Inventory, InventoryTool, StepIssue } from "../domain/inventory.js"
import { formatIssue } from "../domain/inventory.js"
import { isObject } from "../domain/json.js"
import { AJV_OPTIONS, DRAFT7 } from "./ajvOptions.js"
import { validate as validateDraft7 } from "./draft7Meta.generated.js"
import { refLoopOf } from "./refLoop.js"

export type { StepIssue } from "../domain/inventory.js"

/** A plan step as validated: what ends up in the dataset's tool plan. */
export interface PlanStep {
  readonly step: number
  readonly server: string
  readonly tool: string
  readonly params: unknown
  /** Earlier steps whose results this step uses (empty when absent). */
  readonly depends_on?: ReadonlyArray<number> | undefined
  /** Params whose values come from those results; their plan values are illustrative. */
  readonly derived_params?: ReadonlyArray<string> | undefined
}

export interface ValidateOptions {
  /** "reject" (default): undeclared params are errors unless the schema allows extra keys. */
  readonly unknownParams?: "reject" | "allow"
}

type Json = Record<string, unknown>

const addFormats: (ajv: Ajv) => Ajv = ((AjvFormats as unknown as { default?: unknown }).default ??
  AjvFormats) as unknown as (ajv: Ajv) => Ajv

const makeAjv = (): Ajv => {
  // Ajv checks each schema against its meta-schema before compiling it; `checkSchema` does that instead, with
  // the meta-schema's validator compiled ahead (Ajv compiling it cost ~35-40 ms at every start).
  const ajv = new Ajv({ ...AJV_OPTIONS, validateSchema: false })
  addFormats(ajv)
  return ajv
}

const ajv = makeAjv()

/**
 * Ajv's own check of a schema before it compiles it (`Ajv.validateSchema`, the same errors and message): against
 * draft-07's meta-schema with the validator generated ahead when `$schema` names none or draft-07, by Ajv
 * otherwise (another `$schema` is Ajv's "no schema with key or ref" error, or its message for one not a string).
 */
const checkSchema = (schema: Json): void => {
  const $schema = schema.$schema
  if ($schema === undefined || $schema === "" || $schema === DRAFT7 || $schema === `${DRAFT7}#`) {
    const errors = metaErrors(validateDraft7, schema)
    if (errors !== undefined) throw new Error(`schema is invalid: ${ajv.errorsText(errors)}`)
  } else {
    ajv.validateSchema(schema, true)
  }
}

type MetaValidate = ((schema: unknown) => boolean) & { errors?: Array<ErrorObject> | null }

/** Ajv's errors of a schema against a meta-schema (`checkSchema`, `toolSchemaFault`), or undefined: none. */
const metaErrors = (meta: MetaValidate, schema: Json): Array<ErrorObject> | undefined =>
  meta(schema) ? undefined : meta.errors ?? []

/**
 * Ajv's validators of the meta-schemas of the drafts besides draft-07 a row's tool schema may name, made when first
 * asked for (~0.2-0.3 s each: Ajv2019/Ajv2020 compile their meta-schemas). Draft-06's (Ajv ships it) would compare
 * every pair of an `enum`'s values (its `uniqueItems` over untyped items: the loop draft7Meta.generated.js has
 * replaced, ~90 s for 200,000 values), and draft-04's and draft-03's Ajv does not ship: those drafts have none.
 */
const otherMetas = new Map<string, MetaValidate | undefined>()
const metaOfDraft = (draft: string): MetaValidate | undefined => {
  if (draft === "draft-07") return validateDraft7
  if (otherMetas.has(draft)) return otherMetas.get(draft)
  const validate = draft === "2020-12"
    ? new Ajv2020({ ...AJV_OPTIONS }).getSchema(DRAFT2020)
    : draft === "2019-09"
    ? new Ajv2019({ ...AJV_OPTIONS }).getSchema(DRAFT2019)
    : undefined
  otherMetas.set(draft, validate)
  return validate
}

const DRAFT2019 = "https://json-schema.org/draft/2019-09/schema"
const DRAFT2020 = "https://json-schema.org/draft/2020-12/schema"

/** The drafts jsonschema knows (MCPToolEnv's reader: `validator_for`), by the `$schema` that names each. */
const DRAFTS: Readonly<Record<string, string>> = {
  "http://json-schema.org/draft-03/schema": "draft-03",
  "http://json-schema.org/draft-04/schema": "draft-04",
  "http://json-schema.org/draft-06/schema": "draft-06",
  [DRAFT7]: "draft-07",
  [DRAFT2019]: "2019-09",
  [DRAFT2020]: "2020-12"
}

/**
 * The draft a `$schema` names as MCPToolEnv reads it (jsonschema's `validator_for`, whose URIs are looked up as
 * `urlsplit(uri).geturl()` gives them: leading controls and spaces and every tab and newline dropped, the scheme in
 * lower case, an empty fragment dropped); draft-07, Ajv's default, for a URI that names none of them.
 */
export const draftNamed = ($schema: string): string => {
  const uri = $schema.replace(/^[\u0000-\u0020]+/, "").replace(/[\t\r\n]/g, "")
    .replace(/^[A-Za-z][A-Za-z0-9+.-]*:/, (scheme) => scheme.toLowerCase()).replace(/#$/, "")
  return DRAFTS[uri] ?? "draft-07"
}

const MAX_META_ERRORS = 3

/**
 * Why a tool's input schema is not a valid JSON Schema, or undefined: the schema against the meta-schema of the
 * draft it is read as, with Ajv's errors (at most 3) — the check skyrl's inventory loading makes before it compiles
 * a tool's schema (`checkSchema`: draft-07's meta-schema, the validator generated ahead), for a row's `tool_schemas`
 * (`skyrl validate`), which MCPToolEnv reads (python/skyrl_mcp_env/metaschema.py `fault`: the same verdicts,
 * test/fixtures/schema-meta/vectors.json). A schema without `$schema`, or naming draft-07 or no draft jsonschema
 * knows, is read as draft-07; one naming 2019-09 or 2020-12 as that draft (Ajv's meta-schema of it), as MCPToolEnv
 * reads it (an inventory's loading drops `$schema`: `normalizeJsonSchema`); one naming draft-06, draft-04 or draft-03
 * is not judged (`metaOfDraft`; MCPToolEnv judges it with jsonschema's meta-schema). No format is asserted (Ajv's
 * meta-schema validation checks none: a `pattern` is compiled afterwards, see `compileTool`).
 */
export const toolSchemaFault = (schema: Json): string | undefined => {
  const $schema = schema.$schema
  if ($schema !== undefined && typeof $schema !== "string") {
    return `not a valid JSON Schema: $schema must be a string (got ${show($schema)})`
  }
  const draft = $schema === undefined ? "draft-07" : draftNamed($schema)
  const meta = metaOfDraft(draft)
  const errors = meta === undefined ? undefined : metaErrors(meta, schema)
  if (errors === undefined) return undefined
  const shown = ajv.errorsText(errors.slice(0, MAX_META_ERRORS), { dataVar: "#" })
  const more = errors.length > MAX_META_ERRORS ? ` (and ${errors.length - MAX_META_ERRORS} more)` : ""
  return `not a valid JSON Schema (${draft} meta-schema): ${shown}${more}`
}

/**
 * A copy of the schema where every object schema that lists `properties` and says nothing about
 * other keys gets `additionalProperties: false`. Objects combined with allOf/$ref are left open (closing
 * them would reject keys that the other part declares); allOf/not/if subtrees are not entered.
 */
export const closeObjects = (schema: unknown): unknown => {
  if (Array.isArray(schema)) return schema.map(closeObjects)
  if (!isObject(schema)) return schema
  const out: Json = { ...schema }
  for (const key of ["properties", "$defs", "definitions"]) {
    const map = schema[key]
    if (isObject(map)) out[key] = Object.fromEntries(Object.entries(map).map(([k, v]) => [k, closeObjects(v)]))
  }
  for (const key of ["items", "anyOf", "oneOf", "prefixItems"]) {
    if (schema[key] !== undefined) out[key] = closeObjects(schema[key])
  }
  if (isObject(schema.additionalProperties)) out.additionalProperties = closeObjects(schema.additionalProperties)
  if (
    isObject(schema.properties) &&
    schema.additionalProperties === undefined &&
    schema.patternProperties === undefined &&
    schema.unevaluatedProperties === undefined &&
    schema.allOf === undefined &&
    schema.$ref === undefined
  ) {
    out.additionalProperties = false
  }
  return out
}

type Compiled = { readonly validate: ValidateFunction } | { readonly error: string }

/** Compiled validators by tool entry and mode (a tool's validator depends on its schema and the mode only). */
const cache = new WeakMap<InventoryTool, { reject?: Compiled; allow?: Compiled }>()

/**
 * The base id a tool schema without one is compiled under: with `addUsedSchema: false` Ajv cannot resolve a `$ref`
 * to the root (`"#"`, a recursive schema: a tree of nodes) without one ("can't resolve reference # from id #"),
 * which failed the whole inventory. Nothing is registered under it, so every tool may use it.
 */
const ROOT_ID = "urn:skyrl:tool-input-schema"

/** `ajv.compile`, again under ROOT_ID when only a `$ref` to the root failed (other errors stay Ajv's own). */
const compileWithRoot = (schema: Json): ValidateFunction => {
  try {
    return ajv.compile(schema)
  } catch (e) {
    // Ajv's MissingRefError for "#" itself (missingRef "": the root, no fragment): "can't resolve reference # from id #"
    if (schema.$id !== undefined || !(e instanceof MissingRefError && e.missingRef === "")) throw e
    return ajv.compile({ ...schema, $id: ROOT_ID })
  }
}

const compileTool = (tool: InventoryTool, mode: "reject" | "allow"): Compiled => {
  try {
    const schema = mode === "reject" ? closeObjects(tool.inputSchema) as Json : tool.inputSchema
    checkSchema(schema)
    const loop = refLoopOf(schema)
    if (loop !== undefined) {
      throw new Error(`a $ref loop that enters no property or item (${loop}): no value's validation would end`)
    }
    return { validate: compileWithRoot(schema) }
  } catch (e) {
    return { error: (e as Error).message }
  }
}

const compiledFor = (tool: InventoryTool, mode: "reject" | "allow"): Compiled => {
  let byMode = cache.get(tool)
  if (byMode === undefined) cache.set(tool, byMode = {})
  return byMode[mode] ??= compileTool(tool, mode)
}

/**
 * Entries whose inputSchema a JSON Schema validator cannot compile, as `servers[i].tools[j].inputSchema`
 * with the reason. Used when an inventory is loaded, so a broken schema fails early with its path.
 */
export const schemaProblems = (
  inventory: Inventory
): ReadonlyArray<{ readonly entry: string; readonly reason: string }> => {
  const problems: Array<{ entry: string; reason: string }> = []
  inventory.servers.forEach((server, i) =>
    server.tools.forEach((tool, j) => {
      const compiled = compiledFor(tool, "reject")
      if ("error" in compiled) {
        problems.push({
          entry: `servers[${i}].tools[${j}].inputSchema`,
          reason: `invalid JSON Schema: ${compiled.error}`
        })
      }
    })
  )
  return problems
}

// ---------------------------------------------------------------------------------------------
// Readable messages

const show = (value: unknown): string => {
  const text = JSON.stringify(value)
  if (text === undefined) return String(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

const typeOf = (value: unknown): string =>
  value === null
    ? "null"
    : Array.isArray(value)
    ? "array"
    : typeof value === "number" && Number.isInteger(value)
    ? "integer"
    : typeof value

const decodePointer = (pointer: string): ReadonlyArray<string> =>
  pointer === "" ? [] : pointer.slice(1).split("/").map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))

const valueAt = (root: unknown, segments: ReadonlyArray<string>): unknown => {
  let current = root
  for (const s of segments) {
    if (Array.isArray(current)) current = current[Number(s)]
    else if (isObject(current)) current = current[s]
    else return undefined
  }
  return current
}

const declaredNames = (schema: unknown): ReadonlyArray<string> =>
  isObject(schema) && isObject(schema.properties) ? Object.keys(schema.properties) : []

const describeError = (
  error: ErrorObject,
  params: unknown
): { readonly segments: ReadonlyArray<string>; readonly message: string } => {
  const segments = decodePointer(error.instancePath)
  const value = valueAt(params, segments)
  const what = segments.length === 0 ? "param" : "field"
  switch (error.keyword) {
    case "required": {
      const missing = String((error.params as { missingProperty: string }).missingProperty)
      return { segments: [...segments, missing], message: `missing required ${what}` }
    }
    case "additionalProperties": {
      const extra = String((error.params as { additionalProperty: string }).additionalProperty)
      const declared = declaredNames(error.parentSchema)
      return {
        segments: [...segments, extra],
        message: `unknown ${what} (${declared.length === 0 ? "none are declared" : `declared: ${declared.join(", ")}`})`
      }
    }
    case "enum": {
      const allowed = (error.params as { allowedValues: ReadonlyArray<unknown> }).allowedValues
      return { segments, message: `must be one of ${allowed.map(show).join(", ")} (got ${show(value)})` }
    }
    case "const":
      return {
        segments,
        message: `must be ${show((error.params as { allowedValue: unknown }).allowedValue)} (got ${show(value)})`
      }
    case "type":
      return {
        segments,
        // A null is its own type: `(got null)`, not `(got null null)`.
        message: `must be ${String((error.params as { type: unknown }).type)} (got ${
          value === null ? "null" : `${typeOf(value)} ${show(value)}`
        })`
      }
    case "format":
      return {
        segments,
        message: `must be a valid ${String((error.params as { format: unknown }).format)} (got ${show(value)})`
      }
    default:
      return { segments, message: `${error.message ?? error.keyword} (got ${show(value)})` }
  }
}

const MAX_ISSUES_PER_STEP = 12
const NONE: ReadonlyArray<never> = Object.freeze([])

const paramIssues = (
  step: PlanStep,
  validate: ValidateFunction
): ReadonlyArray<StepIssue> => {
  if (validate(step.params)) return NONE
  const seen = new Set<string>()
  const issues: Array<StepIssue> = []
  const errors = validate.errors ?? []
  // With anyOf/oneOf, ajv reports each branch's errors and then the combinator's own error: keep the
  // combinator's error only when nothing more precise was said about that place.
  for (const error of errors) {
    const { message, segments } = describeError(error, step.params)
    const path = ["params", ...segments].join("/")
    const key = `${path}\u0000${message}`
    if (seen.has(key)) continue
    seen.add(key)
    issues.push({ step: step.step, server: step.server, tool: step.tool, path, message })
    if (issues.length >= MAX_ISSUES_PER_STEP) break
  }
  return issues
}

/** Close names for "did you mean" hints (edit distance ≤ a third of the length, at most 3). */
const similar = (name: string, candidates: ReadonlyArray<string>): ReadonlyArray<string> => {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i)
    for (let i = 1; i <= a.length; i++) {
      let prev = row[0]!
      row[0] = i
      for (let j = 1; j <= b.length; j++) {
        const current = row[j]!
        row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
        prev = current
      }
    }
    return row[b.length]!
  }
  return candidates
    .map((c) => ({ c, d: distance(name.toLowerCase(), c.toLowerCase()) }))
    .filter(({ c, d }) => d <= Math.max(2, Math.floor(Math.max(name.length, c.length) / 3)))
    .sort((a, b) => a.d - b.d)
    .slice(0, 3)
    .map(({ c }) => c)
}

const hint = (names: ReadonlyArray<string>): string =>
  names.length === 0 ? "" : `; did you mean ${names.map((n) => `"${n}"`).join(" or ")}?`

/** Whether a param of a step is literal (an environment may match it exactly): not marked derived. */
export const isLiteralParam = (step: PlanStep, param: string): boolean => !(step.derived_params ?? []).includes(param)

/** The params of a step an environment may match exactly: every param not marked derived. */
export const literalParams = (step: PlanStep): Record<string, unknown> =>
  isObject(step.params)
    ? Object.fromEntries(Object.entries(step.params).filter(([k]) => isLiteralParam(step, k)))
    : {}

/** Text standing for a value the plan does not give: "<ticker>", "${price}", "{{x}}", "TBD", "from step 1". */
const PLACEHOLDER = /<[a-z_ -]+>|\$\{[^}]*\}|\{\{[^}]*\}\}|\bTBD\b|\bfrom (the )?(previous )?step \d+\b/i

/** A placeholder in a step's params: where (`params/symbol`, `params/filters/0`) and the text. */
export interface Placeholder {
  readonly path: string
  readonly value: string
}

const placeholders = (value: unknown, at: string, found: Array<Placeholder>): Array<Placeholder> => {
  if (typeof value === "string") {
    if (PLACEHOLDER.test(value)) found.push({ path: at, value })
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => placeholders(v, `${at}/${i}`, found))
  } else if (isObject(value)) {
    for (const k in value) placeholders(value[k], `${at}/${k}`, found)
  }
  return found
}

/**
 * The placeholders a step's literal params hold, each with its path and text: an environment
 * matches literal params exactly, so the policy would have to write the placeholder itself. A derived
 * param's value is illustrative and not looked at.
 */
export const placeholdersOf = (step: PlanStep): ReadonlyArray<Placeholder> => {
  const params = step.params
  if (!isObject(params)) return NONE
  let found: Array<Placeholder> | undefined
  for (const name in params) {
    // Paths are made only for a param that holds one (every row's every step is looked at).
    if (hasPlaceholder(params[name]) && isLiteralParam(step, name)) {
      placeholders(params[name], `params/${name}`, found ??= [])
    }
  }
  return found ?? NONE
}

const hasPlaceholder = (value: unknown): boolean => {
  if (typeof value === "string") return PLACEHOLDER.test(value)
  if (Array.isArray(value)) return value.some(hasPlaceholder)
  if (isObject(value)) {
    for (const k in value) if (hasPlaceholder(value[k])) return true
  }
  return false
}

/** Whether `d` names a step before `step`. */
const isEarlierStep = (d: number, step: number): boolean => Number.isInteger(d) && d >= 1 && d < step

/**
 * Provenance problems of a plan (empty = none). Without an inventory only the plan's own consistency is
 * checked; with one, derived params must also be params the tool declares (unless its schema takes any key).
 */
export const provenanceIssues = (steps: ReadonlyArray<PlanStep>, inventory?: Inventory): ReadonlyArray<StepIssue> => {
  const issues: Array<StepIssue> = []
  for (const step of steps) {
    const dependsOn = step.depends_on ?? NONE
    const derived = step.derived_params ?? NONE
    if (derived.length === 0 && dependsOn.every((d) => isEarlierStep(d, step.step))) continue
    const base = { step: step.step, server: step.server, tool: step.tool }
    for (const d of dependsOn) {
      if (!isEarlierStep(d, step.step)) {
        issues.push({
          ...base,
          path: "depends_on",
          message: d === step.step
            ? "a step cannot depend on itself"
            : step.step === 1
            ? `${JSON.stringify(d)} is not an earlier step: step 1 has none, so its depends_on is empty`
            : `${JSON.stringify(d)} is not an earlier step: depends_on names earlier steps (${
              step.step === 2 ? "1" : `1..${step.step - 1}`
            }) only`
        })
      }
    }
    if (derived.length > 0 && dependsOn.length === 0) {
      issues.push({
        ...base,
        path: "depends_on",
        message: `is empty, but ${derived.join(", ")} ${derived.length === 1 ? "is" : "are"} marked derived: ` +
          "name the earlier steps whose results they come from"
      })
    }
    const tool = inventory?.servers.find((s) => s.name === step.server)?.tools.find((t) => t.name === step.tool)
    const declared = tool === undefined ? undefined : declaredNames(tool.inputSchema)
    const open = tool !== undefined && isObject(tool.inputSchema) &&
      tool.inputSchema.additionalProperties !== undefined &&
      tool.inputSchema.additionalProperties !== false
    for (const name of derived) {
      const isParam = declared === undefined || open || declared.includes(name)
      if (!isParam) {
        issues.push({
          ...base,
          path: `derived_params/${name}`,
          message: `is not a param of ${step.tool} (params: ${declared!.length === 0 ? "none" : declared!.join(", ")})`
        })
      } else if (!isObject(step.params) || !(name in step.params)) {
        issues.push({
          ...base,
          path: `derived_params/${name}`,
          message: "is marked derived but params has no illustrative value for it"
        })
      }
    }
  }
  return issues
}

/**
 * Whether a tool's `outputSchema` promises a result without any field: an object schema whose `properties`
 * are absent or empty and that takes no other key (`additionalProperties` absent with `properties: {}`,
 * closed as `closeObjects` reads input schemas, or `false`), with no `patternProperties`,
 * `unevaluatedProperties`, combinator or `$ref` that could add one. `{type: "object"}` alone takes any key:
 * not empty. Anything else (no schema, another type) is not known to be empty.
 */
export const declaresNoField = (schema: unknown): boolean => {
  if (!isObject(schema)) return false
  if (schema.type !== undefined && schema.type !== "object") return false
  for (const key of ["patternProperties", "unevaluatedProperties", "allOf", "anyOf", "oneOf", "if", "$ref"]) {
    if (schema[key] !== undefined) return false
  }
  const properties = schema.properties
  if (properties !== undefined && !(isObject(properties) && Object.keys(properties).length === 0)) return false
  return schema.additionalProperties === false ||
    (properties !== undefined && schema.additionalProperties === undefined)
}

/** The tools of an inventory whose outputSchema declares no field (`server \0 tool`), found once per inventory. */
const noFieldCache = new WeakMap<Inventory, ReadonlySet<string>>()
const noFieldTools = (inventory: Inventory): ReadonlySet<string> => {
  let keys = noFieldCache.get(inventory)
  if (keys === undefined) {
    const found = new Set<string>()
    for (const server of inventory.servers) {
      for (const tool of server.tools) {
        if (declaresNoField(tool.outputSchema)) found.add(`${server.name}\u0000${tool.name}`)
      }
    }
    noFieldCache.set(inventory, keys = found)
  }
  return keys
}

/** A derived param no step it depends on can give (`unproducibleDerived`). */
export interface UnproducibleDerived {
  readonly step: number
  readonly server: string
  readonly tool: string
  readonly param: string
  /** The earlier steps of its depends_on, each with its tool: every one's outputSchema declares no field. */
  readonly sources: ReadonlyArray<{ readonly step: number; readonly tool: string }>
}

/**
 * Derived params whose sources cannot give them. A derived param names no field of a result, only its step's
 * `depends_on` (any of them may give it), so the only such plan that can be told from the inventory is one
 * where every earlier step of depends_on calls a tool whose `outputSchema` declares no field at all
 * (`declaresNoField`). A source whose tool has no outputSchema, or is not in the inventory, may give anything.
 * depends_on entries that are not earlier steps are `provenanceIssues`' (an error); a step with none left is
 * not reported here.
 */
export const unproducibleDerived = (
  inventory: Inventory,
  steps: ReadonlyArray<PlanStep>
): ReadonlyArray<UnproducibleDerived> => {
  const empty = noFieldTools(inventory)
  if (empty.size === 0) return NONE // nearly every inventory: no row pays more than this lookup
  let found: Array<UnproducibleDerived> | undefined
  for (const step of steps) {
    const derived = step.derived_params ?? NONE
    if (derived.length === 0) continue
    const sources: Array<{ step: number; tool: string }> = []
    let producible = false
    for (const d of step.depends_on ?? NONE) {
      if (!isEarlierStep(d, step.step)) continue
      const source = steps[d - 1]?.step === d ? steps[d - 1] : steps.find((s) => s.step === d)
      if (source === undefined || !empty.has(`${source.server}\u0000${source.tool}`)) {
        producible = true
        break
      }
      sources.push({ step: d, tool: source.tool })
    }
    if (producible || sources.length === 0) continue
    for (const param of derived) {
      ;(found ??= []).push({ step: step.step, server: step.server, tool: step.tool, param, sources })
    }
  }
  return found ?? NONE
}

/**
 * Validates a plan. Returns one issue per problem (empty = valid). Steps must be numbered 1..n in
 * order; a plan without steps is one issue. Provenance is checked too (`provenanceIssues`).
 */
/** The path below `at` of the first number in `value` that is not finite (JSON text such as 1e400), or undefined. */
export const nonFiniteAt = (value: unknown, at: Array<PropertyKey> = []): Array<PropertyKey> | undefined => {
  if (typeof value === "number") return Number.isFinite(value) ? undefined : at
  if (typeof value !== "object" || value === null) return undefined
  const array = Array.isArray(value)
  for (const key in value) {
    at.push(array ? Number(key) : key)
    if (nonFiniteAt((value as Record<string, unknown>)[key], at) !== undefined) return at
    at.pop()
  }
  return undefined
}

/** Why such a number is refused (JSON has no Infinity: a row would keep it as null, a call would send null). */
export const NON_FINITE_REASON = "a number beyond a double's range (JSON text such as 1e400 reads as Infinity, " +
  "which a call sends as null): write it within ±1.7976931348623157e308, or as a string"

export const validatePlan = (
  inventory: Inventory,
  steps: ReadonlyArray<PlanStep>,
  options?: ValidateOptions
): ReadonlyArray<StepIssue> => {
  const mode = options?.unknownParams ?? "reject"
  if (steps.length === 0) {
    return [{ step: 0, server: "", tool: "", path: "tool_sequence", message: "the plan has no steps" }]
  }
  const issues: Array<StepIssue> = []
  steps.forEach((step, index) => {
    const base = { step: step.step, server: step.server, tool: step.tool }
    if (step.step !== index + 1) {
      issues.push({ ...base, path: "step", message: `steps must be numbered 1..n in order: expected ${index + 1}` })
    }
    const server = inventory.servers.find((s) => s.name === step.server)
    if (server === undefined) {
      const owner = inventory.servers.find((s) => s.tools.some((t) => t.name === step.tool))
      issues.push({
        ...base,
        path: "server",
        message: `unknown server "${step.server}" (known: ${inventory.servers.map((s) => s.name).join(", ")})${
          owner === undefined ? "" : `; tool "${step.tool}" belongs to server "${owner.name}"`
        }`
      })
      return
    }
    const tool = server.tools.find((t) => t.name === step.tool)
    if (tool === undefined) {
      const owner = inventory.servers.find((s) => s.tools.some((t) => t.name === step.tool))
      issues.push({
        ...base,
        path: "tool",
        message: owner === undefined
          ? `server "${server.name}" has no tool "${step.tool}"${
            hint(similar(step.tool, inventory.servers.flatMap((s) => s.tools.map((t) => t.name))))
          }`
          : `tool "${step.tool}" belongs to server "${owner.name}", not "${server.name}"`
      })
      return
    }
    if (!isObject(step.params)) {
      issues.push({ ...base, path: "params", message: `must be an object (got ${typeOf(step.params)})` })
      return
    }
    // The schema reads Infinity as a number (an integer too), but no file, request or cassette can hold it.
    const infinite = nonFiniteAt(step.params)
    if (infinite !== undefined) {
      issues.push({ ...base, path: ["params", ...infinite].join("/"), message: NON_FINITE_REASON })
      return
    }
    const compiled = compiledFor(tool, mode)
    if ("error" in compiled) {
      issues.push({ ...base, path: "params", message: `the tool's input schema is invalid: ${compiled.error}` })
      return
    }
    const stepIssues = paramIssues(step, compiled.validate)
    if (stepIssues.length > 0) issues.push(...stepIssues)
  })
  const provenance = provenanceIssues(steps, inventory)
  if (provenance.length > 0) issues.push(...provenance)
  return issues
}

/**
 * The message sent back to the model when its plan failed validation: every problem with its step,
 * tool and param path, and what to do.
 */
export const repairMessage = (issues: ReadonlyArray<StepIssue>): string =>
  [
    "Your previous answer had an invalid tool plan (tool_sequence). Problems:",
    ...issues.map((issue) => `- ${formatIssue(issue)}`),
    "Return the whole task again in the same JSON format with these problems fixed. Use only servers and tools " +
    "from the catalogue, pass only the params each tool declares, include every required param, and give each " +
    "param a value of the declared type (one of the listed values where the tool lists them). depends_on lists " +
    "earlier step numbers only; each derived param is a param of its tool, has an illustrative value, and its " +
    "step depends on the step it comes from."
  ].join("\n")
