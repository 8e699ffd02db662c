/**
 * The on-disk row layout (decided in issue 2, documented in README "Row layout"): every row has the same
 * typed skeleton; each step's `params`, `depends_on` and `derived_params` and `extra_info.task_metadata`
 * are JSON strings, because Arrow (HuggingFace `datasets`) pads, retypes or refuses values whose shape
 * varies between rows or files (an all-empty list is `list<null>`, which does not concatenate with a typed
 * one).
 */
import { Either, Schema } from "effect"
import { SkyRLRow, TaskMetadata } from "../domain/row.js"
import type { EncodedRow } from "../domain/row.js"
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
          depends_on: JSON.stringify(s.depends_on),
          derived_params: JSON.stringify(s.derived_params),
          schema_hash: s.schema_hash
        })),
        limits: { max_tools: gt.limits.max_tools, max_servers: gt.limits.max_servers },
        rubric: {
          name: gt.rubric.name,
          criteria: gt.rubric.criteria.map((c) => ({ name: c.name, description: c.description, scoring: c.scoring }))
        },
        available_tools: gt.available_tools.map((t) => ({ call_name: t.call_name, server: t.server, tool: t.tool })),
        tool_schemas: JSON.stringify(gt.tool_schemas)
      }
    },
    extra_info: { task_metadata: JSON.stringify(orderMetadata(row.extra_info.task_metadata)) }
  }
}

const DECLARED_METADATA = Object.keys(TaskMetadata.fields)

/** The Schema's key order: declared metadata keys first (in declaration order), then the others. */
const orderMetadata = (metadata: Readonly<Record<string, unknown>>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const k of DECLARED_METADATA) if (k in metadata) out[k] = metadata[k]
  for (const k of Object.keys(metadata)) if (!(k in out)) out[k] = metadata[k]
  return out
}

type Json = Record<string, unknown>
const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * A step's `depends_on` or `derived_params` as found on disk: the JSON text skyrl writes (`"[1,2]"`), or the
 * typed list rows written before had. Undefined when it is neither (missing, not JSON, not a list).
 */
export const stepListOnDisk = (u: unknown): ReadonlyArray<unknown> | undefined => {
  if (Array.isArray(u)) return u
  if (typeof u !== "string") return undefined
  try {
    const parsed: unknown = JSON.parse(u)
    return Array.isArray(parsed) ? parsed : undefined
  } catch {
    return undefined
  }
}

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

/**
 * Decodes one on-disk row; the error names the first offending field. Rows written before param
 * provenance decode with the documented defaults (`upgradeLegacyRow`); `skyrl validate` reports them.
 */
export const decodeRow = (u: unknown): Either.Either<SkyRLRow, { readonly path: string; readonly message: string }> =>
  Either.mapLeft(
    Schema.decodeUnknownEither(SkyRLRow)(upgradeLegacyRow(u).value, { errors: "first" }),
    (e) => parseIssues(e)[0] ?? { path: "", message: "invalid row" }
  )

export interface JsonTextOptions {
  /** Spaces of indentation for .json output (0 = compact). */
  readonly indent?: number
  /** Escape every non-ASCII character as \uXXXX. */
  readonly ascii?: boolean
}

const NON_ASCII = /[\u0080-\uffff]/g

export const toJsonText = (value: unknown, options: JsonTextOptions = {}): string => {
  const text = JSON.stringify(value, null, options.indent ?? 0)
  return options.ascii === true
    ? text.replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    : text
}

/** One JSONL line (no trailing newline) for a row. */
export const rowToJsonLine = (row: SkyRLRow, options: JsonTextOptions = {}): string =>
  toJsonText(encodeRow(row), { ...options, indent: 0 })
