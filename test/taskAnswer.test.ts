/**
 * The hand decoder of task answers (src/services/llm/taskAnswer.ts) makes what the output Schema makes
 * (decodeText's Schema path: nulls of optional fields dropped, then `ModelTask` decoded ignoring excess
 * properties), key order included, and declines every answer the Schema refuses.
 */
import { Arbitrary, Either, FastCheck, ParseResult, Schema } from "effect"
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { Inventory } from "../src/domain/inventory.js"
import { ModelTask } from "../src/domain/task.js"
import { decodeText } from "../src/services/llm/answer.js"
import { decodeModelTaskByHand } from "../src/services/llm/taskAnswer.js"
import { buildOutputSchema } from "../src/skyrl/outputSchema.js"
import { dropOptionalNulls } from "../src/skyrl/strictSchema.js"
import { invalidTaskText, validTaskText } from "./support/fakeTasks.js"
import { sampleSchema, seededRandom } from "./support/schemaSample.js"

const usage = { input: 0, cached: 0, output: 0, reasoning: 0 }

/** decodeText's Schema path, on a copy of the answer. */
const bySchema = (answer: unknown) =>
  ParseResult.decodeUnknownEither(ModelTask)(dropOptionalNulls(ModelTask, structuredClone(answer)), {
    errors: "all",
    onExcessProperty: "ignore"
  })

/** The hand decoder agrees with the Schema on `answer`; returns whether it accepted it. */
const agrees = (answer: unknown): boolean => {
  const hand = decodeModelTaskByHand(structuredClone(answer))
  const schema = bySchema(answer)
  if (hand === undefined) return false
  expect(Either.isRight(schema)).toBe(true)
  if (Either.isRight(schema)) {
    expect(hand).toEqual(schema.right)
    expect(JSON.stringify(hand)).toBe(JSON.stringify(schema.right))
  }
  return true
}

const inventory = Schema.decodeUnknownSync(Inventory)(
  JSON.parse(readFileSync(new URL("../data/inventory/finance-mcp.json", import.meta.url), "utf8"))
)

describe("decodeModelTaskByHand", () => {
  it("makes what the Schema makes of the fake model's answers (every variant and complexity, string params)", () => {
    for (let k = 1; k <= 40; k++) {
      for (const complexity of ["simple", "moderate", "complex"] as const) {
        expect(agrees(JSON.parse(validTaskText(k, k % 7, complexity)))).toBe(true)
      }
      expect(agrees(JSON.parse(invalidTaskText(k)))).toBe(true)
    }
  })

  it("makes what the Schema makes of answers sampled from the output schema sent (nulls, JSON-string params)", () => {
    const { schema } = buildOutputSchema(inventory)
    const random = seededRandom(7)
    let accepted = 0
    for (let i = 0; i < 300; i++) if (agrees(sampleSchema(schema, random))) accepted++
    expect(accepted).toBe(300)
  })

  it("makes what the Schema makes of arbitrary ModelTask values, with extra keys and no provenance lists", () => {
    const tasks = FastCheck.sample(Arbitrary.make(ModelTask), { numRuns: 300, seed: 42 })
    for (const task of tasks) {
      const answer = JSON.parse(JSON.stringify(task)) as Record<string, any>
      answer.extra = { ignored: true }
      for (const s of answer.tool_sequence) {
        s.note = "extra"
        delete s.depends_on
      }
      expect(agrees(answer)).toBe(true)
    }
  })

  it("declines what the Schema refuses, and unusual values the Schema takes (nulls, __proto__)", () => {
    const valid = JSON.parse(validTaskText(3, 0, "moderate"))
    const broken: Array<unknown> = [
      null,
      [],
      { ...valid, complexity: "hard" },
      { ...valid, max_turns: 2.5 },
      { ...valid, max_turns: "3" },
      { ...valid, assumptions: [1] },
      { ...valid, task_id: undefined },
      { ...valid, tool_sequence: [{ ...valid.tool_sequence[0], params: [] }] },
      { ...valid, tool_sequence: [{ ...valid.tool_sequence[0], depends_on: [1.5] }] },
      { ...valid, tool_sequence: [{ ...valid.tool_sequence[0], derived_params: [null] }] },
      { ...valid, evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d" }] } }
    ]
    for (const answer of broken) {
      expect(decodeModelTaskByHand(structuredClone(answer))).toBeUndefined()
      expect(Either.isLeft(bySchema(answer))).toBe(true)
    }
    const unusual = [
      { ...valid, tool_sequence: [{ ...valid.tool_sequence[0], depends_on: null }] },
      { ...valid, tool_sequence: [{ ...valid.tool_sequence[0], params: JSON.parse("{\"__proto__\":{\"x\":1}}") }] }
    ]
    for (const answer of unusual) expect(decodeModelTaskByHand(structuredClone(answer))).toBeUndefined()
  })

  it("decodeText gives the Schema's value and its issues either way", () => {
    const text = validTaskText(5, 2, "complex")
    const fast = decodeText(ModelTask, text, undefined, usage)
    expect(Either.isRight(fast) && Either.isRight(bySchema(JSON.parse(text)))).toBe(true)
    if (Either.isRight(fast)) expect(fast.right).toEqual(Either.getOrThrow(bySchema(JSON.parse(text))))
    const bad = decodeText(ModelTask, JSON.stringify({ ...JSON.parse(text), max_turns: "x" }), undefined, usage)
    expect(Either.isLeft(bad) && bad.left.issues.some((i) => i.path === "max_turns")).toBe(true)
  })
})
