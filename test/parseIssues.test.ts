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
      { path: "complexity", message: "Expected \"simple\" | \"moderate\" | \"complex\", actual \"super\"" },
      { path: "n", message: "Expected number, actual \"x\"" }
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
  it("issues of different paths or other kinds stay apart", () => {
    const Pair = Schema.Struct({ a: Schema.Literal("x", "y"), b: Schema.Literal("x", "y") })
    expect(issuesOf(Pair, { a: "z" })).toEqual([
      { path: "a", message: "Expected \"x\" | \"y\", actual \"z\"" },
      { path: "b", message: "is missing" }
    ])
  })
})
