/**
 * The task contract: what a model returns for one sample, after normalization.
 *
 * `Task` is the decoded, in-memory form used by the conversion program. Model answers come in
 * several historical shapes (see test/fixtures/openai/chat); `TaskInput` accepts them leniently and
 * `normalizeTaskInput` maps the known aliases onto `Task` fields, so every later stage sees one shape.
 */
import { Schema } from "effect"

export const Complexity = Schema.Literal("simple", "moderate", "complex")
export type Complexity = typeof Complexity.Type
export const COMPLEXITIES: ReadonlyArray<Complexity> = Complexity.literals

/** A JSON object (params of a tool call). */
export const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })
export type JsonObject = typeof JsonObject.Type

export class ToolStep extends Schema.Class<ToolStep>("ToolStep")({
  step: Schema.Int.pipe(Schema.positive()),
  server: Schema.NonEmptyTrimmedString,
  tool: Schema.NonEmptyTrimmedString,
  params: JsonObject
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
  /** Extra tools to list in the prompt after the plan's tools (e.g. distractors). */
  tools_available: Schema.optional(Schema.Array(Schema.String))
}) {}

/**
 * What the model is asked to return for one task. Every field is required (OpenAI strict output).
 * The JSON Schema actually sent is built by the Inventory service: it replaces `tool_sequence.items`
 * with one `anyOf` branch per inventory tool (params as that tool's strict schema, or as a JSON string
 * for tools whose schema cannot be made strict) — hence `params` decodes from an object or a string.
 * Step numbers are not asked for: they follow the array order.
 */
export const ModelStep = Schema.Struct({
  server: Schema.String,
  tool: Schema.String,
  params: Schema.Union(JsonObject, Schema.String)
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
