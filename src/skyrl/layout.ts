/**
 * The on-disk row layout (decided in issue 2, documented in README "Row layout"): every row has the same
 * typed skeleton; each step's `params`, `depends_on` and `derived_params` and `extra_info.task_metadata`
 * are JSON strings, because Arrow (HuggingFace `datasets`) pads, retypes or refuses values whose shape
 * varies between rows or files (an all-empty list is `list<null>`, which does not concatenate with a typed
 * one).
 */
import { Either, Schema } from "effect"
import { describeType, entriesOtherThan, isObject, setOwn } from "../domain/json.js"
import {
  ENV_CLASS,
  GroundTruth,
  REWARD_METHOD,
  RowCriterion,
  RowMessage,
  RowRubric,
  RowStep,
  SkyRLRow,
  TaskMetadataFields
} from "../domain/row.js"
import type { AvailableTool, EncodedRow } from "../domain/row.js"
import { jsonTextNestsDeeperThan, MAX_JSON_DEPTH, tooDeepReason } from "./depth.js"
import { parseIssues } from "./parseIssues.js"

/** The Schema-derived encoder (the reference `encodeRow` is tested against). */
export const encodeRowWithSchema: (row: SkyRLRow) => EncodedRow = Schema.encodeSync(SkyRLRow)

/**
 * Encodes a row for disk: the same output as `encodeRowWithSchema` (a test holds them equal, key order
 * included), written out by hand because it runs once per row on the hot path of every writer. Values
 * are not re-checked here: rows come from `toSkyRLSample` or `decodeRow`, and every command re-validates
 * the file it wrote.
 */
export const encodeRow = (row: SkyRLRow): EncodedRow => {
  const gt = row.reward_spec.ground_truth
  return {
    data_source: row.data_source,
    prompt: row.prompt.map((m) => ({ role: m.role, content: m.content })),
    env_class: row.env_class,
    reward_spec: {
      method: row.reward_spec.method,
      ground_truth: {
        task_id: gt.task_id,
        complexity: gt.complexity,
        max_turns: gt.max_turns,
        success: { must_call_tool: gt.success.must_call_tool },
        tool_sequence: gt.tool_sequence.map((s) => ({
          step: s.step,
          server: s.server,
          tool: s.tool,
          call_name: s.call_name,
          params: JSON.stringify(s.params),
          depends_on: listJson(s.depends_on),
          derived_params: listJson(s.derived_params),
          schema_hash: s.schema_hash
        })),
        limits: { max_tools: gt.limits.max_tools, max_servers: gt.limits.max_servers },
        rubric: {
          name: gt.rubric.name,
          criteria: gt.rubric.criteria.map((c) => ({ name: c.name, description: c.description, scoring: c.scoring }))
        },
        available_tools: encodeAvailableTools(gt.available_tools),
        tool_schemas: sharedJson(gt.tool_schemas)
      }
    },
    extra_info: { task_metadata: JSON.stringify(orderMetadata(row.extra_info.task_metadata)) }
  }
}

const listJson = (list: ReadonlyArray<unknown>): string => (list.length === 0 ? "[]" : JSON.stringify(list))

/** JSON text of values rows share (frozen: `tool_schemas` of one offer and plan), made once. */
const jsonOfShared = new WeakMap<object, string>()
const sharedJson = (value: object): string => {
  if (!Object.isFrozen(value)) return JSON.stringify(value)
  let json = jsonOfShared.get(value)
  if (json === undefined) {
    json = JSON.stringify(value)
    jsonOfShared.set(value, json)
  }
  return json
}

/**
 * `available_tools` as written: rows that offer the same tools share one list (convert and generate make
 * them so), and so do their encoded rows: one frozen list, which the checks walk once per file.
 */
const encodedLists = new WeakMap<ReadonlyArray<AvailableTool>, ReadonlyArray<AvailableTool>>()
const encodeAvailableTools = (tools: ReadonlyArray<AvailableTool>): ReadonlyArray<AvailableTool> => {
  let encoded = encodedLists.get(tools)
  if (encoded === undefined) {
    encoded = Object.freeze(
      tools.map((t) => Object.freeze({ call_name: t.call_name, server: t.server, tool: t.tool }))
    )
    encodedLists.set(tools, encoded)
  }
  return encoded
}

const DECLARED_METADATA = Object.keys(TaskMetadataFields.fields)

const DECLARED_RANK = new Map(DECLARED_METADATA.map((k, i) => [k, i]))

/** Whether the metadata's own keys are in the Schema's order already (what convert and generate make). */
const inSchemaOrder = (metadata: Readonly<Record<string, unknown>>): boolean => {
  let last = -1
  let undeclared = false
  for (const k in metadata) {
    if (!Object.prototype.hasOwnProperty.call(metadata, k)) return false
    const rank = DECLARED_RANK.get(k)
    if (rank === undefined) undeclared = true
    else if (undeclared || rank < last) return false
    else last = rank
  }
  return true
}

/** The Schema's key order: declared metadata keys first (in declaration order), then the others. */
const orderMetadata = (metadata: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> => {
  if (inSchemaOrder(metadata)) return metadata
  const out: Record<string, unknown> = {}
  for (const k of DECLARED_METADATA) if (Object.hasOwn(metadata, k)) out[k] = metadata[k]
  for (const k of Object.keys(metadata)) if (!Object.hasOwn(out, k)) setOwn(out, k, metadata[k])
  return out
}

type Json = Record<string, unknown>

/**
 * A step's `depends_on` or `derived_params` as found on disk: the JSON text skyrl writes (`"[1,2]"`), or the
 * typed list rows written before had. Undefined when it is neither (missing, not JSON, not a list).
 */
export const stepListOnDisk = (u: unknown): ReadonlyArray<unknown> | undefined => {
  if (Array.isArray(u)) return u
  if (u === "[]") return NO_ITEMS
  if (typeof u !== "string") return undefined
  try {
    const parsed: unknown = JSON.parse(u)
    return Array.isArray(parsed) ? parsed : undefined
  } catch {
    return undefined
  }
}

const NO_ITEMS: ReadonlyArray<never> = Object.freeze([])
const NOTHING_MISSING: ReadonlyArray<string> = Object.freeze([])

/** A step with every field of the current layout, its lists as JSON text (nothing to upgrade). */
const isCurrentStep = (s: unknown): boolean =>
  isObject(s) && s.call_name !== undefined && s.schema_hash !== undefined && typeof s.depends_on === "string" &&
  typeof s.derived_params === "string"

/** Step fields added with param provenance, and the value a row written before them is read with. */
const LEGACY_STEP_DEFAULTS: ReadonlyArray<readonly [string, (step: Json) => unknown]> = [
  ["call_name", (step) => step.tool],
  ["depends_on", () => "[]"],
  ["derived_params", () => "[]"],
  ["schema_hash", () => ""]
]
/** Step fields that rows written before they became JSON strings have as typed lists. */
const LIST_STEP_FIELDS = ["depends_on", "derived_params"] as const

/**
 * The plan's tools as `available_tools` (distinct, sorted by server and tool: no plan order), for a row
 * whose prompt's offer is unknown.
 */
const planTools = (steps: ReadonlyArray<unknown>): ReadonlyArray<Json> => {
  const tools = new Map<string, Json>()
  for (const s of steps) {
    if (!isObject(s) || typeof s.server !== "string" || typeof s.tool !== "string") continue
    const callName = typeof s.call_name === "string" && s.call_name !== "" ? s.call_name : s.tool
    tools.set(`${s.server}\u0000${s.tool}`, { call_name: callName, server: s.server, tool: s.tool })
  }
  return [...tools.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([, t]) => t)
}

/** `task_metadata` (JSON text, or an object in an older layout) with `available_tools_source: "plan"`. */
const markOfferUnknown = (metadata: unknown): unknown => {
  if (isObject(metadata)) return { ...metadata, available_tools_source: "plan" }
  if (typeof metadata !== "string") return metadata
  try {
    const parsed: unknown = JSON.parse(metadata)
    return isObject(parsed) ? JSON.stringify({ ...parsed, available_tools_source: "plan" }) : metadata
  } catch {
    return metadata // the schema check says what is wrong with it
  }
}

const upgradeStep = (step: unknown, i: number, missing: Array<string>): unknown => {
  if (!isObject(step)) return step
  let out: Json | undefined
  for (const [key, make] of LEGACY_STEP_DEFAULTS) {
    if (step[key] === undefined) {
      missing.push(`reward_spec.ground_truth.tool_sequence[${i}].${key}`)
      out = { ...(out ?? step), [key]: make(step) }
    }
  }
  for (const key of LIST_STEP_FIELDS) {
    const list = step[key]
    if (Array.isArray(list)) out = { ...(out ?? step), [key]: JSON.stringify(list) }
  }
  return out ?? step
}

/**
 * A row written before the current layout, read as /work/spec/formats.md says: a missing call_name is the
 * tool name, missing `depends_on`/`derived_params` are empty and typed lists become their JSON text, a
 * missing schema hash is "", missing tool schemas are none. Missing or empty `available_tools` (the offer is
 * unknown) become the plan's tools, and `task_metadata.available_tools_source` says "plan". Returns the row
 * with those fields filled and the paths that were missing (empty for a current row; typed lists are not
 * "missing"); the input is not modified.
 */
export const upgradeLegacyRow = (u: unknown): { readonly value: unknown; readonly missing: ReadonlyArray<string> } => {
  const rs = isObject(u) ? u.reward_spec : undefined
  const gt = isObject(rs) ? rs.ground_truth : undefined
  if (!isObject(u) || !isObject(rs) || !isObject(gt)) return { value: u, missing: [] }
  if (
    Array.isArray(gt.tool_sequence) && gt.tool_sequence.every(isCurrentStep) && Array.isArray(gt.available_tools) &&
    gt.available_tools.length > 0 && gt.tool_schemas !== undefined
  ) return { value: u, missing: NOTHING_MISSING }
  const missing: Array<string> = []
  const changed: Json = {}
  const seq = gt.tool_sequence
  if (Array.isArray(seq)) {
    const steps = seq.map((s, i) => upgradeStep(s, i, missing))
    if (steps.some((s, i) => s !== seq[i])) changed.tool_sequence = steps
  }
  let extra = u.extra_info
  const offered = gt.available_tools
  if (offered === undefined || (Array.isArray(offered) && offered.length === 0)) {
    missing.push("reward_spec.ground_truth.available_tools")
    const tools = Array.isArray(seq) ? planTools(seq) : []
    if (tools.length > 0) {
      changed.available_tools = tools
      if (isObject(extra)) extra = { ...extra, task_metadata: markOfferUnknown(extra.task_metadata) }
    } else if (offered === undefined) changed.available_tools = []
  }
  if (gt.tool_schemas === undefined) {
    missing.push("reward_spec.ground_truth.tool_schemas")
    changed.tool_schemas = "{}"
  }
  if (Object.keys(changed).length === 0) return { value: u, missing }
  return {
    value: {
      ...u,
      reward_spec: { ...rs, ground_truth: { ...gt, ...changed } },
      ...(extra === u.extra_info ? {} : { extra_info: extra })
    },
    missing
  }
}

const isString = (u: unknown): u is string => typeof u === "string"
const isInt = (u: unknown): boolean => typeof u === "number" && Number.isSafeInteger(u)
const allStrings = (u: unknown): boolean => Array.isArray(u) && u.every(isString)
const allInts = (u: unknown): boolean => Array.isArray(u) && u.every(isInt)
const stringFields = (u: unknown, keys: ReadonlyArray<string>): boolean =>
  isObject(u) && keys.every((k) => typeof u[k] === "string")
const NOT_JSON = Symbol("not JSON")
const parsed = (text: unknown): unknown => {
  if (typeof text !== "string") return NOT_JSON
  if (text === "[]") return []
  try {
    return JSON.parse(text)
  } catch {
    return NOT_JSON
  }
}

/**
 * Long texts known to be the JSON of an object (rows share their `tool_schemas`), with that object (frozen:
 * rows decoded from the same text share it, as the rows `convert` makes share theirs): the last few hundred.
 */
const objectTexts = new Map<string, Readonly<Json>>()
const isObjectText = (text: unknown): boolean => objectOfText(text) !== undefined
/** The object a JSON text holds (shared and frozen when the text is long), or undefined when it holds none. */
export const objectOfText = (text: unknown): Readonly<Json> | undefined => {
  const long = typeof text === "string" && text.length >= 256
  if (long) {
    const known = objectTexts.get(text)
    if (known !== undefined) return known
  }
  const value = parsed(text)
  if (!isObject(value)) return undefined
  if (long) {
    if (objectTexts.size >= 512) objectTexts.clear()
    objectTexts.set(text, Object.freeze(value))
  }
  return value
}
const COMPLEXITY_LABELS: ReadonlyArray<unknown> = ["simple", "moderate", "complex"]

const METADATA_FIELDS: ReadonlyArray<readonly [string, (u: unknown) => boolean]> = [
  ["source", isString],
  ...["model", "backend", "run_id", "generated_at", "raw_output_path", "domain"].map((k) =>
    [k, (u: unknown) => u === null || isString(u)] as const
  ),
  ...["seed", "reasoning_tokens"].map((k) => [k, (u: unknown) => u === null || typeof u === "number"] as const),
  ["assumptions", allStrings],
  ["as_of", isString],
  ["rubric_source", (u) => u === "model" || u === "derived"],
  ["available_tools_source", (u) => u === "plan"],
  ...["prompt_tools", "max_turns_given", "system_prompt_chars", "system_prompt_tokens_est", "prompt_tokens_est"].map(
    (k) => [k, (u: unknown) => typeof u === "number"] as const
  )
]

const isMetadata = (m: unknown): boolean =>
  isObject(m) && METADATA_FIELDS.every(([k, ok]) => m[k] === undefined || ok(m[k]))

const STEP_STRINGS = ["server", "tool", "call_name", "schema_hash"]
const SUCCESS_STRINGS = ["must_call_tool"]
const CRITERION_STRINGS = ["name", "description", "scoring"]
const TOOL_STRINGS = ["call_name", "server", "tool"]

/**
 * The steps of a row as a caller read them, by step index: their `params` text parsed, and their
 * `depends_on` and `derived_params` texts where the caller parsed those too.
 */
interface ParsedStep {
  readonly params: unknown
  readonly depends_on?: unknown
  readonly derived_params?: unknown
}
type KnownSteps = ReadonlyArray<ParsedStep> | undefined

/** `parsed(s[key])`, taken from `known` when the caller parsed that text already. */
const fieldOf = (s: Json, i: number, known: KnownSteps, key: keyof ParsedStep): unknown => {
  const k = known?.[i]
  return k !== undefined && typeof s[key] === "string" && key in k ? k[key] : parsed(s[key])
}

const isStepOnDisk = (s: unknown, i: number, known: KnownSteps): boolean =>
  isObject(s) && isInt(s.step) && stringFields(s, STEP_STRINGS) &&
  isObject(fieldOf(s, i, known, "params")) && allInts(fieldOf(s, i, known, "depends_on")) &&
  allStrings(fieldOf(s, i, known, "derived_params"))

/** Each step's JSON texts parsed once, for the check and the decoding both (`[]` when there is no step list). */
const parseSteps = (u: Json): ReadonlyArray<ParsedStep> => {
  const gt = isObject(u.reward_spec) ? u.reward_spec.ground_truth : undefined
  const steps = isObject(gt) && Array.isArray(gt.tool_sequence) ? gt.tool_sequence as ReadonlyArray<unknown> : []
  return steps.map((s) =>
    isObject(s)
      ? { params: parsed(s.params), depends_on: parsed(s.depends_on), derived_params: parsed(s.derived_params) }
      : { params: NOT_JSON }
  )
}

/**
 * Why a row read from a dataset cannot be checked: a JSON text it holds (a step's `params`, `depends_on`,
 * `derived_params`, `tool_schemas`, `task_metadata`) nests deeper than skyrl reads (`MAX_JSON_DEPTH`). The record
 * itself was checked as it was read (src/skyrl/records.ts); these texts are parsed and walked by several checks.
 */
export const deepJsonTextFault = (u: unknown): string | undefined => {
  if (!isObject(u)) return undefined
  const deep = (text: unknown) => typeof text === "string" && jsonTextNestsDeeperThan(text, MAX_JSON_DEPTH)
  const gt = isObject(u.reward_spec) ? u.reward_spec.ground_truth : undefined
  const steps = isObject(gt) && Array.isArray(gt.tool_sequence) ? gt.tool_sequence as ReadonlyArray<unknown> : []
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i]
    if (!isObject(s)) continue
    for (const key of ["params", "depends_on", "derived_params"] as const) {
      if (deep(s[key])) return tooDeepReason(`reward_spec.ground_truth.tool_sequence[${i}].${key}`)
    }
  }
  if (isObject(gt) && deep(gt.tool_schemas)) return tooDeepReason("reward_spec.ground_truth.tool_schemas")
  if (isObject(u.extra_info) && deep(u.extra_info.task_metadata)) return tooDeepReason("extra_info.task_metadata")
  return undefined
}

/** Frozen `available_tools` lists (of frozen entries) found well-formed: rows share them. */
const wellFormedTools = new WeakSet<object>()
const isToolList = (u: unknown): boolean => {
  if (!Array.isArray(u) || u.length === 0) return false
  if (wellFormedTools.has(u)) return true
  if (!u.every((t) => stringFields(t, TOOL_STRINGS))) return false
  if (Object.isFrozen(u) && u.every((t) => Object.isFrozen(t))) wellFormedTools.add(u)
  return true
}

const isGroundTruthOnDisk = (gt: unknown, known: KnownSteps): boolean =>
  isObject(gt) && isString(gt.task_id) && COMPLEXITY_LABELS.includes(gt.complexity) && isInt(gt.max_turns) &&
  stringFields(gt.success, SUCCESS_STRINGS) &&
  Array.isArray(gt.tool_sequence) && gt.tool_sequence.every((s, i) => isStepOnDisk(s, i, known)) &&
  isObject(gt.limits) && isInt(gt.limits.max_tools) && isInt(gt.limits.max_servers) &&
  isObject(gt.rubric) && isString(gt.rubric.name) && Array.isArray(gt.rubric.criteria) &&
  gt.rubric.criteria.every((c) => stringFields(c, CRITERION_STRINGS)) &&
  isToolList(gt.available_tools) && isObjectText(gt.tool_schemas)

/**
 * Whether an on-disk row decodes with the row Schema (`SkyRLRow`), answered by hand: the checks run it on
 * every row and decode with the Schema only when it says no (to get the Schema's messages). It never says
 * yes to a row the Schema rejects (test/layout.test.ts holds it to the Schema); it may say no to rows the
 * Schema accepts in a form skyrl does not write (those take the Schema's path).
 */
export const matchesRowSchema = (
  u: unknown,
  /** `JSON.parse` of the row's `extra_info.task_metadata` when the caller has it. */
  metadata?: unknown,
  /** The row's steps with `params` as `JSON.parse` of their text, when the caller has them (by step index). */
  steps?: KnownSteps
): boolean =>
  isObject(u) && isString(u.data_source) && u.env_class === ENV_CLASS &&
  Array.isArray(u.prompt) &&
  u.prompt.every((m) => isObject(m) && (m.role === "system" || m.role === "user") && isString(m.content)) &&
  isObject(u.reward_spec) && u.reward_spec.method === REWARD_METHOD &&
  isGroundTruthOnDisk(u.reward_spec.ground_truth, steps) &&
  isObject(u.extra_info) && isString(u.extra_info.task_metadata) &&
  isMetadata(metadata !== undefined ? metadata : parsed(u.extra_info.task_metadata))

/** The row Schema's own decoding (the reference `decodeRow` is tested against). */
export const decodeRowWithSchema = (
  u: unknown
): Either.Either<SkyRLRow, { readonly path: string; readonly message: string }> =>
  !isObject(u) ? Either.left({ path: "(row)", message: `must be an object, got ${describeType(u)}` }) : Either.mapLeft(
    Schema.decodeUnknownEither(SkyRLRow)(upgradeLegacyRow(u).value, { errors: "first" }),
    (e) => parseIssues(e)[0] ?? { path: "", message: "invalid row" }
  )

/**
 * Decodes one on-disk row; the error names the first offending field. Rows written before param
 * provenance decode with the documented defaults (`upgradeLegacyRow`); `skyrl validate` reports them.
 * A row `matchesRowSchema` accepts is decoded by hand (`decodeByHand`: several times cheaper, it runs
 * per row in `verify`); anything else, and what the hand decoder declines, takes the Schema's path.
 */
export const decodeRow = (u: unknown): Either.Either<SkyRLRow, { readonly path: string; readonly message: string }> => {
  if (isObject(u) && isObject(u.extra_info)) {
    const metadata = parsed(u.extra_info.task_metadata)
    if (isObject(metadata)) {
      const steps = parseSteps(u)
      const row = matchesRowSchema(u, metadata, steps) ? decodeByHand(u, metadata, steps) : undefined
      if (row !== undefined) return Either.right(row)
    }
  }
  return decodeRowWithSchema(u)
}

/**
 * The instance the Schema's decoding makes of a Schema.Class: its prototype with the props as own fields
 * (what `new C(props, { disableValidation: true })` makes, without the constructor's copy of the props and
 * pass over the fields for defaults; none of the row and task classes declares one). For values already
 * validated: ~0.1 µs instead of ~0.5 µs an object (test/convert.test.ts and test/layout.test.ts hold the
 * results equal to the Schema's own).
 */
export const instance = <C extends new(props: never, options?: never) => object>(
  Class: C,
  props: ConstructorParameters<C>[0]
): InstanceType<C> => Object.assign(Object.create(Class.prototype as object) as object, props) as InstanceType<C>

/**
 * What `decodeRowWithSchema` makes of a row `matchesRowSchema` accepted (test/layout.test.ts holds them
 * equal), built directly. Long `tool_schemas` texts decode to one shared frozen object per text.
 */
const decodeByHand = (u: Json, metadata: Json, parsedSteps: ReadonlyArray<ParsedStep>): SkyRLRow | undefined => {
  const rs = u.reward_spec as Json
  const gt = rs.ground_truth as Json
  const toolSchemas = objectOfText(gt.tool_schemas)
  if (toolSchemas === undefined) return undefined
  const steps: Array<RowStep> = []
  for (const [i, s] of (gt.tool_sequence as ReadonlyArray<Json>).entries()) {
    const known = parsedSteps[i]!
    steps.push(instance(RowStep, {
      step: s.step as number,
      server: s.server as string,
      tool: s.tool as string,
      call_name: s.call_name as string,
      params: known.params as Json,
      depends_on: known.depends_on as Array<number>,
      derived_params: known.derived_params as Array<string>,
      schema_hash: s.schema_hash as string
    }))
  }
  const success = gt.success as Json
  const limits = gt.limits as Json
  const rubric = gt.rubric as Json
  return instance(SkyRLRow, {
    data_source: u.data_source as string,
    prompt: (u.prompt as ReadonlyArray<Json>).map((m) =>
      instance(RowMessage, { role: m.role as RowMessage["role"], content: m.content as string })
    ),
    env_class: ENV_CLASS,
    reward_spec: {
      method: REWARD_METHOD,
      ground_truth: instance(GroundTruth, {
        task_id: gt.task_id as string,
        complexity: gt.complexity as GroundTruth["complexity"],
        max_turns: gt.max_turns as number,
        success: { must_call_tool: success.must_call_tool as string },
        tool_sequence: steps,
        limits: { max_tools: limits.max_tools as number, max_servers: limits.max_servers as number },
        rubric: instance(RowRubric, {
          name: rubric.name as string,
          criteria: (rubric.criteria as ReadonlyArray<Json>).map((c) =>
            instance(RowCriterion, {
              name: c.name as string,
              description: c.description as string,
              scoring: c.scoring as string
            })
          )
        }),
        available_tools: (gt.available_tools as ReadonlyArray<Json>).map((t) => ({
          call_name: t.call_name as string,
          server: t.server as string,
          tool: t.tool as string
        })) as unknown as GroundTruth["available_tools"],
        tool_schemas: toolSchemas
      })
    },
    // `metadata` was parsed for this row alone: its values are the row's own, as the Schema's copies are.
    extra_info: { task_metadata: orderMetadata(metadata) }
  })
}

/** Keys of each object of a row on disk, in the order `encodeRow` writes them. */
const ROW_KEYS = ["data_source", "prompt", "env_class", "reward_spec", "extra_info"]
const MESSAGE_KEYS = ["role", "content"]
const REWARD_SPEC_KEYS = ["method", "ground_truth"]
const GROUND_TRUTH_KEYS = [
  "task_id",
  "complexity",
  "max_turns",
  "success",
  "tool_sequence",
  "limits",
  "rubric",
  "available_tools",
  "tool_schemas"
]
const STEP_KEYS = ["step", "server", "tool", "call_name", "params", "depends_on", "derived_params", "schema_hash"]
const CRITERION_KEYS = ["name", "description", "scoring"]
const AVAILABLE_TOOL_KEYS = ["call_name", "server", "tool"]

/** Whether `o` has exactly these keys, in this order. */
const hasKeys = (o: unknown, keys: ReadonlyArray<string>): boolean => {
  if (!isObject(o)) return false
  let i = 0
  for (const k in o) if (k !== keys[i++]) return false
  return i === keys.length
}

/**
 * Whether `JSON.stringify(u)` is what `encodedRowJson(encodeRow(row))` writes for `row = decodeRow(u)`:
 * every object of `u` has exactly the keys `encodeRow` writes, in its order, and each JSON-string field
 * holds the text `encodeRow` makes of its decoded value.
 */
const isWrittenForm = (u: Json, row: SkyRLRow): boolean => {
  const rs = u.reward_spec as Json
  const gt = rs.ground_truth as Json
  const rgt = row.reward_spec.ground_truth
  const steps = gt.tool_sequence as ReadonlyArray<Json>
  const rubric = gt.rubric as Json
  return hasKeys(u, ROW_KEYS) && (u.prompt as ReadonlyArray<unknown>).every((m) => hasKeys(m, MESSAGE_KEYS)) &&
    hasKeys(rs, REWARD_SPEC_KEYS) && hasKeys(gt, GROUND_TRUTH_KEYS) && hasKeys(gt.success, ["must_call_tool"]) &&
    hasKeys(gt.limits, ["max_tools", "max_servers"]) && hasKeys(rubric, ["name", "criteria"]) &&
    (rubric.criteria as ReadonlyArray<unknown>).every((c) => hasKeys(c, CRITERION_KEYS)) &&
    (gt.available_tools as ReadonlyArray<unknown>).every((t) => hasKeys(t, AVAILABLE_TOOL_KEYS)) &&
    steps.every((s, i) => {
      const r = rgt.tool_sequence[i]!
      return hasKeys(s, STEP_KEYS) && s.params === JSON.stringify(r.params) &&
        s.depends_on === listJson(r.depends_on) && s.derived_params === listJson(r.derived_params)
    }) &&
    gt.tool_schemas === sharedJson(rgt.tool_schemas) && hasKeys(u.extra_info, ["task_metadata"]) &&
    (u.extra_info as Json).task_metadata === JSON.stringify(row.extra_info.task_metadata)
}

/**
 * The compact JSON text of the row `u` (as read from disk; `text` is `JSON.stringify(u)`, `row` is
 * `decodeRow(u)`) with `task_metadata[key] = value` added: what `encodedRowJson(encodeRow(...))` writes
 * for that row (test/layout.test.ts holds them equal), made by splicing the field into `text` when `u` is
 * in the form skyrl writes, so that nothing is encoded again. Undefined when it is not (then encode the
 * row), or when the metadata has `key` already or declares it.
 */
export const rowJsonWithMetadata = (
  u: unknown,
  text: string,
  row: SkyRLRow,
  key: string,
  value: object,
  /** `JSON.stringify(value)`, when the caller has it. */
  valueJson: string = JSON.stringify(value)
): string | undefined => {
  const metadata = row.extra_info.task_metadata
  if (!isObject(u) || Object.hasOwn(metadata, key) || DECLARED_METADATA.includes(key) || !isWrittenForm(u, row)) {
    return undefined
  }
  const old = (u.extra_info as Json).task_metadata as string
  const tail = `${JSON.stringify(old)}}}`
  if (!text.endsWith(tail)) return undefined
  const field = `${JSON.stringify(key)}:${valueJson}`
  const next = old === "{}" ? `{${field}}` : `${old.slice(0, -1)},${field}}`
  return `${text.slice(0, text.length - tail.length)}${JSON.stringify(next)}}}`
}

const ROW_KEY_SET: ReadonlySet<string> = new Set(ROW_KEYS)
const INFO_KEYS: ReadonlySet<string> = new Set(["task_metadata"])

/** The columns of the user's own a row holds (`ownColumnsOf`): top-level keys and `extra_info` keys, in order. */
export interface OwnColumns {
  readonly top: ReadonlyArray<readonly [string, unknown]>
  readonly info: ReadonlyArray<readonly [string, unknown]>
}

/**
 * The columns of the user's own that `asRead` (a row as read from disk) holds: its top-level keys and `extra_info`
 * keys that skyrl's row has no place for (`ability`, `index`, `extra_info.split`, as verl-style datasets carry), in
 * the order read; undefined when there are none. Unknown keys inside `prompt` or `reward_spec` are parts of skyrl's
 * own fields, not columns.
 */
export const ownColumnsOf = (asRead: unknown): OwnColumns | undefined => {
  if (!isObject(asRead)) return undefined
  const top = entriesOtherThan(asRead, ROW_KEY_SET)
  const info = isObject(asRead.extra_info) ? entriesOtherThan(asRead.extra_info, INFO_KEYS) : []
  return top.length === 0 && info.length === 0 ? undefined : { top, info }
}

/** `row` to write with `columns` (`ownColumnsOf`) after skyrl's own keys; `row` itself when there are none. */
export const withColumns = (row: SkyRLRow, columns: OwnColumns | undefined): WritableRow => {
  if (columns === undefined) return row
  const encoded = encodeRow(row)
  const extraInfo = Object.fromEntries([...Object.entries(encoded.extra_info), ...columns.info])
  return new RowJson(
    JSON.stringify(Object.fromEntries([...Object.entries(encoded), ...columns.top, ["extra_info", extraInfo]]))
  )
}

/** `row` to write with the columns of the user's own that `asRead`, the row as read, holds. */
export const withOwnColumns = (row: SkyRLRow, asRead: unknown): WritableRow => withColumns(row, ownColumnsOf(asRead))

/**
 * A row as its on-disk JSON text (compact, what `encodedRowJson` writes): writers write the text as it
 * is (JSON Lines) or read it back for the other forms.
 */
export class RowJson {
  constructor(readonly text: string) {}
}

/** What dataset writers take: a row, or one already in its JSON text. */
export type WritableRow = SkyRLRow | RowJson

/** The on-disk form of a row to write. */
export const encodedOf = (row: WritableRow): EncodedRow =>
  row instanceof RowJson ? JSON.parse(row.text) as EncodedRow : encodeRow(row)

export interface JsonTextOptions {
  /** Spaces of indentation for .json output (0 = compact). */
  readonly indent?: number
  /** Escape every non-ASCII character as \uXXXX. */
  readonly ascii?: boolean
}

const NON_ASCII = /[\u0080-\uffff]/g

const asciiEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`

export const toJsonText = (value: unknown, options: JsonTextOptions = {}): string => {
  const text = JSON.stringify(value, null, options.indent ?? 0)
  return options.ascii === true ? text.replace(NON_ASCII, asciiEscape) : text
}

const str = (text: string): string => JSON.stringify(text)
/** Numbers as JSON writes them (small integers, the usual case, from a table). */
const SMALL_INTS = Array.from({ length: 256 }, (_, i) => String(i))
const num = (n: number): string => (Number.isInteger(n) && n >= 0 && n < 256 ? SMALL_INTS[n]! : JSON.stringify(n))

/** JSON.stringify of strings, remembered for the last `limit` distinct ones (the memo is emptied when full). */
const jsonMemo = (limit: number) => {
  const memo = new Map<string, string>()
  return (text: string): string => {
    let json = memo.get(text)
    if (json === undefined) {
      json = JSON.stringify(text)
      if (memo.size >= limit) memo.clear()
      memo.set(text, json)
    }
    return json
  }
}

/** JSON text of the short strings many rows repeat (names, labels, hashes). */
const name = jsonMemo(4096)

/**
 * JSON text of the long strings rows share (a run's system message, one offer's `tool_schemas`), made once:
 * the last few hundred. Only for fields that repeat across rows (per-row texts would just churn it).
 */
const strShared = jsonMemo(256)

/**
 * Where a row's JSON text goes, in pieces: `text` for what is made per row, `shared` for pieces that repeat
 * across rows (the same string each time: a writer may keep their encoded bytes).
 */
export interface JsonPieces {
  readonly text: (json: string) => void
  readonly shared: (json: string) => void
}

/** The pieces of the text being made (one array reused: the row's text is joined once, not concatenated). */
const parts: Array<string> = []

/** Hands the pieces so far to `out.text` as one string. */
const flushParts = (out: JsonPieces): void => {
  if (parts.length === 0) return
  out.text(parts.length === 1 ? parts[0]! : parts.join(""))
  parts.length = 0
}

/**
 * `toJsonText(row, { indent: 0 })` of an encoded row (what `encodeRow` makes) in pieces, written out by hand
 * in `encodeRow`'s key order so that what rows share (the system message, `available_tools`, `tool_schemas`)
 * is serialized once (a test holds the result equal to `JSON.stringify`); `end` (a line end) is added after.
 */
export const writeEncodedRowJson = (row: EncodedRow, out: JsonPieces, end = ""): void => {
  const gt = row.reward_spec.ground_truth
  parts.length = 0
  parts.push("{\"data_source\":", name(row.data_source), ",\"prompt\":[")
  for (let i = 0; i < row.prompt.length; i++) {
    const m = row.prompt[i]!
    parts.push(i === 0 ? "{\"role\":" : ",{\"role\":", name(m.role), ",\"content\":")
    if (m.role === "system" && m.content.length >= 256) {
      flushParts(out)
      out.shared(strShared(m.content))
      parts.push("}")
    } else parts.push(str(m.content), "}")
  }
  parts.push(
    "],\"env_class\":",
    name(row.env_class),
    ",\"reward_spec\":{\"method\":",
    name(row.reward_spec.method),
    ",\"ground_truth\":{\"task_id\":",
    str(gt.task_id),
    ",\"complexity\":",
    name(gt.complexity),
    ",\"max_turns\":",
    num(gt.max_turns),
    ",\"success\":{\"must_call_tool\":",
    name(gt.success.must_call_tool),
    "},\"tool_sequence\":["
  )
  for (let i = 0; i < gt.tool_sequence.length; i++) {
    const s = gt.tool_sequence[i]!
    parts.push(
      i === 0 ? "{\"step\":" : ",{\"step\":",
      num(s.step),
      ",\"server\":",
      name(s.server),
      ",\"tool\":",
      name(s.tool),
      ",\"call_name\":",
      name(s.call_name),
      ",\"params\":",
      str(s.params),
      ",\"depends_on\":",
      name(s.depends_on),
      ",\"derived_params\":",
      name(s.derived_params),
      ",\"schema_hash\":",
      name(s.schema_hash),
      "}"
    )
  }
  parts.push(
    "],\"limits\":{\"max_tools\":",
    num(gt.limits.max_tools),
    ",\"max_servers\":",
    num(gt.limits.max_servers),
    "},\"rubric\":",
    JSON.stringify(gt.rubric),
    ",\"available_tools\":"
  )
  if (Object.isFrozen(gt.available_tools)) {
    flushParts(out)
    out.shared(sharedJson(gt.available_tools))
  } else parts.push(JSON.stringify(gt.available_tools))
  parts.push(",\"tool_schemas\":")
  if (gt.tool_schemas.length >= 256) {
    flushParts(out)
    out.shared(strShared(gt.tool_schemas))
  } else parts.push(str(gt.tool_schemas))
  parts.push("}},\"extra_info\":{\"task_metadata\":", str(row.extra_info.task_metadata), "}}", end)
  flushParts(out)
}

/** The row's JSON text in one string (`writeEncodedRowJson`), `--ascii` applied. */
export const encodedRowJson = (row: EncodedRow, options: JsonTextOptions = {}): string => {
  let text = ""
  const add = (json: string) => void (text += json)
  writeEncodedRowJson(row, { text: add, shared: add })
  return options.ascii === true ? text.replace(NON_ASCII, asciiEscape) : text
}
