/**
 * Strict JSON Schema derivation (src/skyrl/strictSchema.ts): OpenAI's strict rules on ModelTask-like
 * schemas, plus the decoding side (nulls for optional properties).
 */
import { Ajv } from "ajv"
import { Either, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { ModelTask, Task } from "../src/domain/task.js"
import { decodeText } from "../src/services/llm/answer.js"
import { dropOptionalNulls, makeStrict, strictJsonSchema } from "../src/skyrl/strictSchema.js"
import { checkStrict } from "./support/openaiStrict.js"

const strict = (schema: Schema.Schema<any, any>) => {
  const r = strictJsonSchema(schema)
  if (Either.isLeft(r)) throw new Error(`not strict: ${r.left.path}: ${r.left.reason}`)
  return r.right as any
}

/** ModelTask with `params` as a declared object (the Inventory replaces the union per tool). */
const PlanTask = Schema.Struct({
  task_id: Schema.String,
  user_prompt: Schema.NonEmptyTrimmedString,
  complexity: Schema.Literal("simple", "moderate", "complex"),
  domain: Schema.String,
  assumptions: Schema.Array(Schema.String),
  max_turns: Schema.Int.pipe(Schema.positive()),
  notes: Schema.optional(Schema.String),
  reviewer: Schema.NullOr(Schema.String),
  tool_sequence: Schema.Array(Schema.Struct({
    server: Schema.Literal("fmp"),
    tool: Schema.Literal("fmp_get_quote"),
    params: Schema.Struct({ symbol: Schema.String, limit: Schema.optional(Schema.Int) })
  })),
  evaluation_rubric: Schema.Struct({
    name: Schema.String,
    criteria: Schema.Array(Schema.Struct({ name: Schema.String, description: Schema.String, scoring: Schema.String }))
  })
})

describe("strictJsonSchema", () => {
  it("ModelTask-like schema: root object, all required, optional → nullable, additionalProperties false", () => {
    const s = strict(PlanTask)
    expect(checkStrict(s).violations).toEqual([])
    expect(s.required).toEqual([
      "task_id",
      "user_prompt",
      "complexity",
      "domain",
      "assumptions",
      "max_turns",
      "notes",
      "reviewer",
      "tool_sequence",
      "evaluation_rubric"
    ])
    expect(s.properties.notes).toEqual({ type: ["string", "null"] })
    expect(s.properties.reviewer).toEqual({ anyOf: [{ type: "string" }, { type: "null" }] })
    expect(s.properties.complexity).toEqual({ type: "string", enum: ["simple", "moderate", "complex"] })
    // annotations and unsupported validation keywords are stripped; supported ones stay
    expect(s.properties.user_prompt.minLength).toBeUndefined()
    expect(s.properties.user_prompt.title).toBeUndefined()
    expect(typeof s.properties.user_prompt.pattern).toBe("string")
    expect(s.properties.max_turns).toMatchObject({ type: "integer", exclusiveMinimum: 0 })
    expect(s.properties.max_turns.title).toBeUndefined()
    const step = s.properties.tool_sequence.items
    expect(step.required).toEqual(["server", "tool", "params"])
    expect(step.properties.server).toEqual({ type: "string", enum: ["fmp"] })
    expect(step.properties.params).toEqual({
      type: "object",
      required: ["symbol", "limit"],
      properties: { symbol: { type: "string" }, limit: { type: ["integer", "null"], description: "an integer" } },
      additionalProperties: false
    })
    expect(s.properties.evaluation_rubric.properties.criteria.items.additionalProperties).toBe(false)
  })

  it("the derived schema accepts a well-formed answer and rejects extra or missing keys (ajv)", () => {
    const validate = new Ajv({ strict: false }).compile(strict(PlanTask))
    const good = {
      task_id: "t",
      user_prompt: "Quote AAPL",
      complexity: "simple",
      domain: "equities",
      assumptions: [],
      max_turns: 3,
      notes: null,
      reviewer: null,
      tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL", limit: null } }],
      evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "0-1" }] }
    }
    expect(validate(good)).toBe(true)
    expect(validate({ ...good, extra: 1 })).toBe(false)
    const { notes: _notes, ...missing } = good
    expect(validate(missing)).toBe(false)
    expect(validate({ ...good, tool_sequence: [{ ...good.tool_sequence[0], params: { symbol: "A", x: 1 } }] })).toBe(
      false
    )
  })

  it("ModelTask as declared: the open-object branch of params is dropped, leaving the JSON-string form", () => {
    const s = strict(ModelTask)
    expect(checkStrict(s).violations).toEqual([])
    expect(s.properties.tool_sequence.items.properties.params).toEqual({ anyOf: [{ type: "string" }] })
  })

  it("named sub-schemas (identifier, Class) are inlined and made strict", () => {
    const Criterion = Schema.Struct({ name: Schema.String, weight: Schema.optional(Schema.Number) }).annotations({
      identifier: "Criterion"
    })
    class Limits extends Schema.Class<Limits>("Limits")({ max_tools: Schema.Int }) {}
    const s = strict(
      Schema.Struct({
        first: Criterion,
        rest: Schema.Array(Criterion),
        maybe: Schema.optional(Criterion),
        limits: Limits
      })
    )
    expect(checkStrict(s).violations).toEqual([])
    const criterion = {
      type: "object",
      required: ["name", "weight"],
      properties: { name: { type: "string" }, weight: { type: ["number", "null"] } },
      additionalProperties: false
    }
    expect(s.properties.first).toEqual(criterion)
    expect(s.properties.rest.items).toEqual(criterion)
    expect(s.properties.maybe).toEqual({ anyOf: [criterion, { type: "null" }] })
    expect(s.properties.limits.required).toEqual(["max_tools"])
    expect(s.$defs).toBeUndefined()
  })

  it("$defs / $ref in a JSON Schema are kept and made strict", () => {
    const r = makeStrict({
      type: "object",
      properties: { a: { $ref: "#/$defs/A" }, b: { $ref: "#/$defs/A" } },
      required: ["a"],
      $defs: { A: { type: "object", properties: { x: { type: "string" } } } }
    })
    expect(r).toEqual(Either.right({
      type: "object",
      properties: { a: { $ref: "#/$defs/A" }, b: { anyOf: [{ $ref: "#/$defs/A" }, { type: "null" }] } },
      required: ["a", "b"],
      additionalProperties: false,
      $defs: {
        A: {
          type: "object",
          properties: { x: { type: ["string", "null"] } },
          required: ["x"],
          additionalProperties: false
        }
      }
    }))
  })

  it("says where and why a schema cannot be strict", () => {
    const left = (schema: Schema.Schema<any, any>) =>
      Either.getLeft(strictJsonSchema(schema))._tag === "Some"
        ? Either.getLeft(strictJsonSchema(schema)).pipe((o) => (o._tag === "Some" ? o.value : undefined))
        : undefined
    expect(left(Task)).toMatchObject({ path: "messages[].content", reason: expect.stringMatching(/any value/) })
    expect(left(Schema.Union(Schema.Struct({ a: Schema.String }), Schema.Struct({ b: Schema.String })))).toMatchObject({
      path: "",
      reason: expect.stringMatching(/root .* must be an object/)
    })
    expect(left(Schema.Struct({ meta: Schema.Record({ key: Schema.String, value: Schema.String }) }))).toMatchObject({
      path: "meta"
    })
    expect(left(Schema.Array(Schema.String) as any)).toMatchObject({ path: "" })
  })
})

describe("makeStrict on plain JSON Schema (e.g. an MCP tool's input schema)", () => {
  it("closes objects, makes optional properties nullable, strips defaults and examples", () => {
    const r = makeStrict({
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "object",
      title: "QuoteArgs",
      properties: {
        symbol: { type: "string", default: "AAPL", examples: ["MSFT"], minLength: 1 },
        limit: { type: "integer", minimum: 1, maximum: 100 },
        period: { type: "string", enum: ["annual", "quarter"] },
        since: { type: "string", format: "date" },
        url: { type: "string", format: "uri" }
      },
      required: ["symbol"]
    })
    expect(r).toEqual(Either.right({
      type: "object",
      properties: {
        symbol: { type: "string" },
        limit: { type: ["integer", "null"], minimum: 1, maximum: 100 },
        period: { type: ["string", "null"], enum: ["annual", "quarter", null] },
        since: { type: ["string", "null"], format: "date" },
        url: { type: ["string", "null"] }
      },
      required: ["symbol", "limit", "period", "since", "url"],
      additionalProperties: false
    }))
  })

  it("merges a single-branch allOf; rejects several, open objects and nesting deeper than 10 levels", () => {
    expect(makeStrict({ type: "object", properties: { a: { allOf: [{ type: "string" }], description: "A" } } }))
      .toEqual(Either.right({
        type: "object",
        properties: { a: { type: ["string", "null"], description: "A" } },
        required: ["a"],
        additionalProperties: false
      }))
    expect(Either.getLeft(makeStrict({
      type: "object",
      properties: { a: { allOf: [{ type: "string" }, { minLength: 1 }] } }
    }))).toMatchObject({ _tag: "Some", value: { path: "a", reason: "uses allOf" } })
    const open = makeStrict({ type: "object", properties: { filter: { type: "object" } } })
    expect(Either.getLeft(open)).toMatchObject({ _tag: "Some", value: { path: "filter" } })
    let deep: any = { type: "string" }
    for (let i = 0; i < 11; i++) deep = { type: "object", properties: { x: deep }, required: ["x"] }
    expect(Either.getLeft(makeStrict(deep))).toMatchObject({
      _tag: "Some",
      value: { reason: expect.stringMatching(/deeper than 10/) }
    })
  })
})

describe("decoding answers to strict schemas", () => {
  it("null for an optional property is dropped before decoding; null for NullOr is kept", () => {
    const value = dropOptionalNulls(PlanTask, {
      notes: null,
      reviewer: null,
      tool_sequence: [{ params: { symbol: "AAPL", limit: null } }]
    })
    expect(value).toEqual({ reviewer: null, tool_sequence: [{ params: { symbol: "AAPL" } }] })
  })

  it("decodeText reports JSON and schema problems with paths", () => {
    const usage = { input: 0, cached: 0, output: 0, reasoning: 0 }
    const bad = decodeText(PlanTask, JSON.stringify({ task_id: 1 }), null, usage)
    expect(Either.isLeft(bad)).toBe(true)
    if (Either.isLeft(bad)) {
      expect(bad.left.issues).toContainEqual({ path: "task_id", message: "Expected string, actual 1" })
      expect(bad.left.issues).toContainEqual({ path: "user_prompt", message: "is missing" })
    }
    const fenced = decodeText(Schema.Struct({ a: Schema.Number }), "```json\n{\"a\": 1}\n```", null, usage)
    expect(fenced).toEqual(Either.right({ a: 1 }))
  })
})
