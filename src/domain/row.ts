/**
 * The SkyRL row contract.
 *
 * `SkyRLRow.Type` is the in-memory row (params and task metadata as objects);
 * `SkyRLRow.Encoded` is the on-disk layout SkyRL/Arrow reads losslessly: every row has the same typed
 * skeleton, and the parts whose shape varies per row (each step's `params`, `extra_info.task_metadata`)
 * are JSON strings. See README "Row layout" and ../shared/docs/skyrl-format.md.
 *
 * Param provenance (README "Param provenance"): each step's `depends_on` (earlier step numbers) and
 * `derived_params` (params whose plan values are illustrative) are lists in memory and JSON strings on disk
 * (`"[1,2]"`, `"[]"`): a typed list that is empty in every row of a JSON file becomes Arrow's `list<null>`,
 * and HF `datasets` cannot concatenate that with a file where the list has values (a list nested in the
 * list of steps; measured with datasets 5.0.1). `call_name` is the name the prompt shows; `available_tools`
 * every tool the prompt offers in its canonical order (never empty); `tool_schemas` the plan tools' input
 * schemas as a JSON string.
 */
import { Either, JSONSchema, ParseResult, Schema } from "effect"
import { isObject, setOwn } from "./json.js"
import { Complexity, DependsOn, DerivedParams, JsonObject } from "./task.js"

export const ENV_CLASS = "MCPToolEnv" as const
export const DEFAULT_DATA_SOURCE = "synthetic/llm"
export const REWARD_METHOD = "rule" as const

/**
 * The prompt budget in BPE tokens shared by generate, enrich, convert and validate (`--max-prompt-tokens`,
 * env MAX_PROMPT_TOKENS). SkyRL's `trainer.max_prompt_length` (default 512) must be at least this, or
 * SkyRL drops the longer rows silently.
 */
export const DEFAULT_MAX_PROMPT_TOKENS = 1024

export const Role = Schema.Literal("system", "user")
export type Role = typeof Role.Type

export class RowMessage extends Schema.Class<RowMessage>("RowMessage")({
  role: Role,
  content: Schema.String
}) {}

export class RowStep extends Schema.Class<RowStep>("RowStep")({
  step: Schema.Int,
  server: Schema.String,
  tool: Schema.String,
  /** The name the policy writes in `<tool_call>`: `tool`, or `server.tool` when two offered servers share the name. */
  call_name: Schema.String,
  params: Schema.parseJson(JsonObject),
  /** A JSON string on disk (`"[1,2]"`); `upgradeLegacyRow` reads the typed list older rows have. */
  depends_on: Schema.parseJson(DependsOn),
  /** A JSON string on disk (`"[\"symbol\"]"`); `upgradeLegacyRow` reads the typed list older rows have. */
  derived_params: Schema.parseJson(DerivedParams),
  /** `schemaHash` of the tool's inputSchema in the inventory the row was made with ("" when unknown). */
  schema_hash: Schema.String
}) {}

/** One tool the prompt offers (a plain struct: a row offers many, and rows share them). */
export const AvailableTool = Schema.Struct({
  call_name: Schema.String,
  server: Schema.String,
  tool: Schema.String
}).annotations({ identifier: "AvailableTool" })
export type AvailableTool = typeof AvailableTool.Type

export class RowCriterion extends Schema.Class<RowCriterion>("RowCriterion")({
  name: Schema.String,
  description: Schema.String,
  scoring: Schema.String
}) {}

export class RowRubric extends Schema.Class<RowRubric>("RowRubric")({
  name: Schema.String,
  criteria: Schema.Array(RowCriterion)
}) {}

export class GroundTruth extends Schema.Class<GroundTruth>("GroundTruth")({
  task_id: Schema.String,
  complexity: Complexity,
  max_turns: Schema.Int,
  success: Schema.Struct({ must_call_tool: Schema.String }),
  tool_sequence: Schema.Array(RowStep),
  limits: Schema.Struct({ max_tools: Schema.Int, max_servers: Schema.Int }),
  rubric: RowRubric,
  /**
   * Every tool the prompt offers, in the prompt's canonical (plan-independent) order. Never empty: a row
   * whose offer is unknown lists the plan's tools and says so in `task_metadata.available_tools_source`.
   */
  available_tools: Schema.Array(AvailableTool).pipe(Schema.minItems(1)),
  /** Input schemas of the plan's tools by call name (a JSON string on disk). */
  tool_schemas: Schema.parseJson(JsonObject)
}) {}

/** The fields of `TaskMetadata`, as a Struct (it decodes an own `__proto__` key as its prototype). */
export const TaskMetadataFields = Schema.Struct(
  {
    source: Schema.optional(Schema.String),
    model: Schema.optional(Schema.NullOr(Schema.String)),
    backend: Schema.optional(Schema.NullOr(Schema.String)),
    run_id: Schema.optional(Schema.NullOr(Schema.String)),
    generated_at: Schema.optional(Schema.NullOr(Schema.String)),
    seed: Schema.optional(Schema.NullOr(Schema.Number)),
    reasoning_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
    raw_output_path: Schema.optional(Schema.NullOr(Schema.String)),
    domain: Schema.optional(Schema.NullOr(Schema.String)),
    assumptions: Schema.optional(Schema.Array(Schema.String)),
    /** The date the prompt's `Today is` line gives (YYYY-MM-DD). */
    as_of: Schema.optional(Schema.String),
    /** "model": the rubric came with the task; "derived": made from the plan by `convert`. */
    rubric_source: Schema.optional(Schema.Literal("model", "derived")),
    /** Tools the prompt offers (plan tools plus distractors). */
    prompt_tools: Schema.optional(Schema.Number),
    /**
     * "plan": the tools the prompt offered were unknown (a row written before `available_tools`), so
     * `available_tools` lists the plan's tools only; readers treat the offer as unknown. Absent: the prompt's.
     */
    available_tools_source: Schema.optional(Schema.Literal("plan")),
    /**
     * A row made from an existing prompt (enrich, convert `messages`): its system message is the
     * source's as given ("source"), the source's text with skyrl's tool listing added because it listed no
     * tool ("source_with_tools"), or skyrl's own because the source had none ("generated").
     */
    system_prompt_origin: Schema.optional(Schema.Literal("source", "source_with_tools", "generated")),
    /** The task's own max_turns when convert raised it to the plan's steps + 1 (one call per turn, then the answer). */
    max_turns_given: Schema.optional(Schema.Number),
    system_prompt_chars: Schema.optional(Schema.Number),
    /** BPE tokens (o200k_base) of the system message, and of the whole chat-templated prompt. */
    system_prompt_tokens_est: Schema.optional(Schema.Number),
    prompt_tokens_est: Schema.optional(Schema.Number)
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

const DECLARED_METADATA = new Set(Object.keys(TaskMetadataFields.fields))

/**
 * What the Struct made of `input`, with `input`'s own `__proto__` key as an own key again, in the Struct's key
 * order (declared keys first, then the others in input order): the Struct copies undeclared keys with
 * `out[key] = value`, which makes that key the copy's prototype (its value gone from the JSON written, and its
 * fields read through it as if they were the metadata's own).
 */
const withProtoKey = (input: unknown, out: TaskMetadataFields): TaskMetadataFields => {
  if (!isObject(input) || !Object.hasOwn(input, "__proto__")) return out
  const made = out as Record<string, unknown>
  const fixed: Record<string, unknown> = {}
  for (const k of DECLARED_METADATA) if (Object.hasOwn(made, k)) fixed[k] = made[k]
  for (const k of Object.keys(input)) {
    if (k === "__proto__") setOwn(fixed, k, input[k])
    else if (!DECLARED_METADATA.has(k) && Object.hasOwn(made, k)) fixed[k] = made[k]
  }
  return fixed as TaskMetadataFields
}
type TaskMetadataFields = typeof TaskMetadataFields.Type

const { $schema: _, ...metadataJsonSchema } = JSONSchema.make(TaskMetadataFields)

/**
 * Free-form provenance. Known keys are typed; anything else is allowed (it is JSON-encoded on disk), a
 * `__proto__` key too, as an own key (`TaskMetadataFields` checks the values).
 */
export const TaskMetadata: Schema.Schema<TaskMetadataFields, typeof TaskMetadataFields.Encoded> = Schema.declare(
  [TaskMetadataFields],
  {
    decode: (fields) => (u, options) =>
      Either.map(ParseResult.decodeUnknownEither(fields)(u, options), (out) => withProtoKey(u, out)),
    encode: (fields) => (u, options) =>
      Either.map(ParseResult.encodeUnknownEither(fields)(u, options), (out) => withProtoKey(u, out))
  },
  { jsonSchema: metadataJsonSchema, arbitrary: (fields) => fields }
)
export type TaskMetadata = TaskMetadataFields
export type SystemPromptOrigin = NonNullable<TaskMetadata["system_prompt_origin"]>

export class SkyRLRow extends Schema.Class<SkyRLRow>("SkyRLRow")({
  data_source: Schema.String,
  prompt: Schema.Array(RowMessage),
  env_class: Schema.Literal(ENV_CLASS),
  reward_spec: Schema.Struct({
    method: Schema.Literal(REWARD_METHOD),
    ground_truth: GroundTruth
  }),
  extra_info: Schema.Struct({
    task_metadata: Schema.parseJson(TaskMetadata)
  })
}) {}

/** The on-disk (JSON) form of a row. */
export type EncodedRow = typeof SkyRLRow.Encoded

/**
 * A column of a Parquet file's row layout typed otherwise than skyrl writes it, and what datasets then does with the
 * file (found by src/services/parquetTypes.ts, reported by checks.ts as `arrow/parquet-type`).
 */
export interface ColumnTypeIssue {
  /** The column's path in LeftOut's form: `reward_spec.ground_truth.tool_sequence[].params`. */
  readonly path: string
  /** pyarrow's name of the column's type (`large_string`, `int32`, `map<string, int64>`). */
  readonly found: string
  readonly needed: "string" | "int64" | "struct" | "list"
  /**
   * `concat`: the file loads, but cannot be concatenated with JSON Lines files or skyrl-written Parquet ("The
   * features can't be aligned"); `bytes`: besides, the values load as Python bytes; `load`: the file does not
   * load at all (a map: "does not have a datasets dtype equivalent").
   */
  readonly effect: "concat" | "bytes" | "load"
}
