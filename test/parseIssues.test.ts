import { Either, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { parseIssues } from "../src/skyrl/parseIssues.js"

const issuesOf = <A, I>(schema: Schema.Schema<A, I>, value: unknown) => {
  const r = Schema.decodeUnknownEither(schema)(value, { errors: "all" })
  if (Either.isRight(r)) throw new Error("expected a parse error")
  return parseIssues(r.left)
}

describe("parseIssues", () => {
  it("a union of literals names every member it expected, once (it named the first only)", () => {
    const Task = Schema.Struct({ complexity: Schema.Literal("simple", "moderate", "complex"), n: Schema.Number })
    expect(issuesOf(Task, { complexity: "super", n: "x" })).toEqual([
      { path: "complexity", message: "must be one of \"simple\", \"moderate\", \"complex\", got \"super\"" },
      { path: "n", message: "must be a number, got \"x\"" }
    ])
  })
  it("where an object was expected it says so, not the object's type written out (a journal line \"str\")", () => {
    const Entry = Schema.Struct({ index: Schema.Number, status: Schema.Literal("row", "failed") })
    expect(issuesOf(Entry, "str")).toEqual([{ path: "", message: "must be an object, got \"str\"" }])
    class Manifest extends Schema.Class<Manifest>("Manifest")({ id: Schema.String }) {}
    expect(issuesOf(Manifest, [])).toEqual([{ path: "", message: "must be an object, got []" }])
    expect(issuesOf(Schema.Struct({ params: Schema.Record({ key: Schema.String, value: Schema.Unknown }) }), {
      params: 5
    })).toEqual([{ path: "params", message: "must be an object, got 5" }])
  })
  it("says what was expected in words: an optional field's absence left out, arrays, literals, integers a double cannot hold", () => {
    // Before: "Expected an integer | undefined, actual Infinity", "Expected Limits (Encoded side) | undefined, actual
    // null", "Expected ReadonlyArray<(InventoryTool (Encoded side) <-> InventoryTool)>, actual null".
    const Task = Schema.Struct({
      max_turns: Schema.optional(Schema.Int),
      complexity: Schema.optional(Schema.Literal("simple", "complex")),
      limits: Schema.optional(Schema.Struct({ a: Schema.Number })),
      tools: Schema.Array(Schema.Struct({ name: Schema.String })),
      flag: Schema.Boolean
    })
    expect(issuesOf(Task, { max_turns: Infinity, complexity: null, limits: null, tools: null, flag: "yes" })).toEqual([
      { path: "max_turns", message: "must be an integer, got Infinity" },
      { path: "complexity", message: "must be one of \"simple\", \"complex\", got null" },
      { path: "limits", message: "must be an object, got null" },
      { path: "tools", message: "must be an array, got null" },
      { path: "flag", message: "must be true or false, got \"yes\"" }
    ])
    expect(issuesOf(Task, { max_turns: 1e20, tools: [], flag: true })).toEqual([
      {
        path: "max_turns",
        message:
          "must be an integer within ±9007199254740991 (a larger one is not held exactly), got 100000000000000000000"
      }
    ])
    expect(issuesOf(Schema.Struct({ v: Schema.Union(Schema.String, Schema.Number) }), { v: null })).toEqual([
      { path: "v", message: "must be a string or a number, got null" }
    ])
  })
  it("issues of different paths or other kinds stay apart", () => {
    const Pair = Schema.Struct({ a: Schema.Literal("x", "y"), b: Schema.Literal("x", "y") })
    expect(issuesOf(Pair, { a: "z" })).toEqual([
      { path: "a", message: "must be one of \"x\", \"y\", got \"z\"" },
      { path: "b", message: "is missing" }
    ])
  })
})
