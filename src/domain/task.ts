/**
 * The task contract: what a model returns for one sample, after normalization.
 *
 * `Task` is the decoded, in-memory form used by the conversion program. Model answers come in
 * several historical shapes (see test/fixtures/openai/chat); `TaskInput` accepts them leniently and
 * `normalizeTaskInput` maps the known aliases onto `Task` fields, so every later stage sees one shape.
 */
import { Either, JSONSchema, ParseResult, Schema } from "effect"

/** A real calendar day written YYYY-MM-DD (not 2026-13-45 or 2026-02-30): `--as-of`, a task's `as_of`. */
export const isIsoDay = (text: string): boolean => {
  const day = new Date(`${text}T00:00:00Z`) // an Invalid Date for month 13 (toISOString throws on it)
  return /^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(day.getTime()) && day.toISOString().startsWith(text)
}

export const Complexity = Schema.Literal("simple", "moderate", "complex")
export type Complexity = typeof Complexity.Type
export const COMPLEXITIES: ReadonlyArray<Complexity> = Complexity.literals

/** The complexity a plan of `calls` tool calls has: simple 1-2 calls, moderate 3-4, complex 5 or more. */
export const complexityOf = (calls: number): Complexity => calls <= 2 ? "simple" : calls <= 4 ? "moderate" : "complex"

/** The range of calls a complexity label stands for, as text ("3-4 calls"). */
export const COMPLEXITY_CALLS: Readonly<Record<Complexity, string>> = {
  simple: "1-2 calls",
  moderate: "3-4 calls",
  complex: "5 or more calls"
}

/**
 * Why a complexity label does not fit a plan of `calls` calls, or undefined when it fits. Labels from
 * elsewhere (convert, validate) only warn; generate and enrich repair it like any other problem.
 */
export const complexityMismatch = (label: Complexity, calls: number): string | undefined => {
  const actual = complexityOf(calls)
  return actual === label
    ? undefined
    : `labelled ${label} (${COMPLEXITY_CALLS[label]}) but the plan has ${calls} call${
      calls === 1 ? "" : "s"
    } (${actual})`
}

/** What `JsonObject` accepts, as a Record: its messages, JSON Schema and arbitrary values are this one's. */
const ObjectShape = Schema.Record({ key: Schema.String, value: Schema.Unknown })
type JsonRecord = typeof ObjectShape.Type
const { $schema: _, ...objectJsonSchema } = JSONSchema.make(ObjectShape)

/**
 * A JSON object (params of a tool call, a row's `tool_schemas`), decoded as it is: the object given, not a
 * copy. `Schema.Record` copies key by key (`out[key] = value`), and `JSON.parse('{"__proto__":{"a":1}}')`
 * has an own key `__proto__` (it is data in JSON) that such a copy makes the new object's prototype: the
 * params then read `a` through it, `Object.keys` gives none of them and `JSON.stringify` drops them, so a
 * plan validated one call and sent another. Accepts and refuses what the Record does, with its message
 * and JSON Schema (the output schema sent to the model is unchanged).
 */
export const JsonObject: Schema.Schema<{ readonly [x: string]: unknown }> = Schema.declare(
  [ObjectShape],
  {
    // The Record checks the value (its issues are the Record's own); the value itself is what was given.
    decode: (shape) => (u, options) => Either.map(ParseResult.validateEither(shape)(u, options), () => u as JsonRecord),
    encode: (shape) => (u, options) => Either.map(ParseResult.validateEither(shape)(u, options), () => u as JsonRecord)
  },
  { jsonSchema: objectJsonSchema, arbitrary: (shape) => shape }
)
export type JsonObject = typeof JsonObject.Type

/**
 * Param provenance of a step (README "Param provenance"): `depends_on` lists the earlier steps whose results
 * this step uses; `derived_params` names the params whose values come from those results (their values in
 * the plan are illustrative). Every other param is literal: it comes from the user prompt or the task.
 */
export const DependsOn = Schema.Array(Schema.Int)
export const DerivedParams = Schema.Array(Schema.String)

export class ToolStep extends Schema.Class<ToolStep>("ToolStep")({
  step: Schema.Int.pipe(Schema.positive()),
  server: Schema.NonEmptyTrimmedString,
  tool: Schema.NonEmptyTrimmedString,
  params: JsonObject,
  depends_on: Schema.optional(DependsOn),
  derived_params: Schema.optional(DerivedParams)
}) {}

export class RubricCriterion extends Schema.Class<RubricCriterion>("RubricCriterion")({
  name: Schema.NonEmptyTrimmedString,
  description: Schema.String,
  scoring: Schema.String
}) {}

export class Rubric extends Schema.Class<Rubric>("Rubric")({
  name: Schema.NonEmptyTrimmedString,
  criteria: Schema.NonEmptyArray(RubricCriterion)
}) {}

export class Limits extends Schema.Class<Limits>("Limits")({
  max_tools: Schema.Int.pipe(Schema.positive()),
  max_servers: Schema.Int.pipe(Schema.positive())
}) {}

export class Success extends Schema.Class<Success>("Success")({
  must_call_tool: Schema.NonEmptyTrimmedString
}) {}

/** A chat message as found in prompts (before role normalization). */
export const PromptMessage = Schema.Struct({ role: Schema.String, content: Schema.Unknown })
export type PromptMessage = typeof PromptMessage.Type

/**
 * A task as the conversion program receives it. Optional fields get the documented defaults in
 * `toSkyRLSample`. Either `user_prompt` or `messages` carries the prompt text.
 */
export class Task extends Schema.Class<Task>("Task")({
  task_id: Schema.optional(Schema.String),
  user_prompt: Schema.optional(Schema.String),
  /** An existing prompt (enrich): system/user messages kept byte-for-byte apart from trimming. */
  messages: Schema.optional(Schema.Array(PromptMessage)),
  complexity: Schema.optional(Complexity),
  max_turns: Schema.optional(Schema.Int.pipe(Schema.positive())),
  limits: Schema.optional(Limits),
  domain: Schema.optional(Schema.String),
  assumptions: Schema.optional(Schema.Array(Schema.String)),
  tool_sequence: Schema.Array(ToolStep),
  success: Schema.optional(Success),
  evaluation_rubric: Schema.optional(Rubric),
  /**
   * Tool names the task asks its prompt to offer besides the plan's: listed first among the distractors when
   * the prompt budget cannot hold the whole inventory (the offer itself is always the inventory's).
   */
  tools_available: Schema.optional(Schema.Array(Schema.String)),
  /** The date relative dates in the task resolve against (`Today is ...` in the prompt), YYYY-MM-DD. */
  as_of: Schema.optional(Schema.String),
  /**
   * When the task was made (ISO timestamp); `convert` takes its date as the default `as_of`, and refuses one that
   * does not start with a real day.
   */
  generated_at: Schema.optional(
    Schema.String.annotations({
      description: "when the task was made: an ISO date or timestamp (YYYY-MM-DD...); its date is the default as_of"
    })
  )
}) {}

/**
 * What the model is asked to return for one task. Every field is required (OpenAI strict output).
 * The JSON Schema actually sent is built by the Inventory service: it replaces `tool_sequence.items`
 * with one `anyOf` branch per inventory tool (params as that tool's strict schema, or as a JSON string
 * for tools whose schema cannot be made strict) — hence `params` decodes from an object or a string.
 * Step numbers are not asked for: they follow the array order; `depends_on` refers to them (1-based).
 */
export const ModelStep = Schema.Struct({
  server: Schema.String,
  tool: Schema.String,
  params: Schema.Union(JsonObject, Schema.String),
  // Required in the strict output schema (one branch per tool, outputSchema.ts); answers recorded before
  // provenance existed decode with none.
  depends_on: Schema.optionalWith(DependsOn, { default: () => [] }),
  derived_params: Schema.optionalWith(DerivedParams, { default: () => [] })
})
export type ModelStep = typeof ModelStep.Type

export const ModelRubric = Schema.Struct({
  name: Schema.String,
  criteria: Schema.Array(Schema.Struct({ name: Schema.String, description: Schema.String, scoring: Schema.String }))
})

export const ModelTask = Schema.Struct({
  task_id: Schema.String,
  user_prompt: Schema.String,
  complexity: Complexity,
  domain: Schema.String,
  assumptions: Schema.Array(Schema.String),
  max_turns: Schema.Int,
  tool_sequence: Schema.Array(ModelStep),
  evaluation_rubric: ModelRubric
})
export type ModelTask = typeof ModelTask.Type
