/**
 * The JSON of a request body (src/services/llm/answer.ts `requestJson`: what is sent and archived) is
 * `JSON.stringify` of the body, though made from the cached JSON of the pieces every request shares.
 */
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { buildBody, requestJson } from "../src/services/llm/answer.js"

const schema = {
  type: "object",
  properties: {
    task_id: { type: "string", description: "id \"quoted\" — ü ✓ \u2028" },
    n: { type: ["number", "null"] }
  },
  required: ["task_id", "n"],
  additionalProperties: false
}
const request = (content: string) => ({
  name: "skyrl_task",
  instructions: `You write tasks.\n${"Rules — \"quoted\", tabs\t, ✓ and \u2028. ".repeat(60)}`,
  input: [{ role: "user" as const, content }],
  schema: Schema.Unknown,
  jsonSchema: schema
})

describe("requestJson", () => {
  for (const backend of ["responses", "chat"] as const) {
    for (const reasoningEffort of [undefined, "high"] as const) {
      it(`is JSON.stringify of the body (${backend}, reasoning ${reasoningEffort ?? "none"}), request after request`, () => {
        for (const content of ["Sample 1: quote AAPL", "Sample 2: \"news\" for 7203.T — ✓", ""]) {
          const body = buildBody(
            backend,
            { model: "m", reasoningEffort, maxOutputTokens: 100 },
            request(content),
            schema
          )
          expect(requestJson(body)).toBe(JSON.stringify(body))
          expect(requestJson(body)).toBe(requestJson(body))
        }
      })
    }
  }
  it("is JSON.stringify of any other value", () => {
    for (const v of [null, 1, "x", [1, undefined, { a: undefined, b: [null] }], { toJSON: () => "t" }]) {
      expect(requestJson(v)).toBe(JSON.stringify(v))
    }
  })
})
