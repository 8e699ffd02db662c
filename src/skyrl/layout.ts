/**
 * The on-disk row layout (decided in issue 2, documented in README "Row layout"): every row has the same
 * typed skeleton; each step's `params` and `extra_info.task_metadata` are JSON strings, because Arrow
 * (HuggingFace `datasets`) pads, retypes or refuses objects whose shape varies between rows.
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
          depends_on: [...s.depends_on],
          derived_params: [...s.derived_params],
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

/** Step fields added with param provenance, and the value a row written before them is read with. */
const LEGACY_STEP_DEFAULTS: ReadonlyArray<readonly [string, (step: Json) => unknown]> = [
  ["call_name", (step) => step.tool],
  ["depends_on", () => []],
  ["derived_params", () => []],
  ["schema_hash", () => ""]
]
const LEGACY_GROUND_TRUTH_DEFAULTS: ReadonlyArray<readonly [string, () => unknown]> = [
  ["available_tools", () => []],
  ["tool_schemas", () => "{}"]
]

/**
 * A row written before param provenance, read as /work/spec/formats.md says: a missing call_name is the
 * tool name, missing lists are empty (`available_tools` empty = unknown), a missing schema hash is "",
 * missing tool schemas are none. Returns the row with those fields filled and the paths that were missing
 * (empty for a current row; the input is not modified).
 */
export const upgradeLegacyRow = (u: unknown): { readonly value: unknown; readonly missing: ReadonlyArray<string> } => {
  const gtPath = "reward_spec.ground_truth"
  const rs = isObject(u) ? u.reward_spec : undefined
  const gt = isObject(rs) ? rs.ground_truth : undefined
  if (!isObject(u) || !isObject(rs) || !isObject(gt)) return { value: u, missing: [] }
  const missing: Array<string> = []
  const upgraded: Json = { ...gt }
  for (const [key, make] of LEGACY_GROUND_TRUTH_DEFAULTS) {
    if (gt[key] === undefined) {
      missing.push(`${gtPath}.${key}`)
      upgraded[key] = make()
    }
  }
  if (Array.isArray(gt.tool_sequence)) {
    upgraded.tool_sequence = gt.tool_sequence.map((step, i) => {
      if (!isObject(step)) return step
      const out: Json = { ...step }
      for (const [key, make] of LEGACY_STEP_DEFAULTS) {
        if (step[key] === undefined) {
          missing.push(`${gtPath}.tool_sequence[${i}].${key}`)
          out[key] = make(step)
        }
      }
      return out
    })
  }
  return missing.length === 0 ? { value: u, missing } : {
    value: { ...u, reward_spec: { ...rs, ground_truth: upgraded } },
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
