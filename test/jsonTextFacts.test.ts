/** `jsonTextFacts`: what a row's JSON text says to Arrow that its parse does not, as `validate` reports it. */
import { describe, expect, it } from "vitest"
import { jsonTextFacts } from "../src/skyrl/jsonTextFacts.js"

/** The facts of a text JSON.parse reads (the scan's precondition). */
const factsOf = (text: string) => {
  JSON.parse(text)
  return jsonTextFacts(text)
}
const repeatedKeyOf = (text: string) => factsOf(text)?.repeatedKey
const wholeFloatsOf = (text: string) => factsOf(text)?.wholeFloats

describe("a key given twice", () => {
  it("names the field of a key given twice, at any depth, inside arrays", () => {
    expect(repeatedKeyOf(`{"a": 1, "a": 2}`)).toBe("a")
    expect(repeatedKeyOf(`{"x": {"b": [], "c": 1, "b": {}}}`)).toBe("x.b")
    expect(repeatedKeyOf(`{"p": [{"r": 1}, {"r": 2, "s": 1, "s": 3}]}`)).toBe("p[1].s")
    expect(repeatedKeyOf(`[[1, 2], {"k": [3, {"q": 1, "q": 1}]}]`)).toBe("[1].k[1].q")
  })
  it("reads escapes: \\u0061 is a", () => {
    expect(repeatedKeyOf(`{"a": 1, "\\u0061": 2}`)).toBe("a")
    expect(repeatedKeyOf(`{"\\"q": 1, "\\u0022q": 2}`)).toBe("\"q")
  })
  it("a key again in another object, a value equal to a key, or quotes inside strings are no repeat", () => {
    expect(factsOf(`{"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}`)).toBeUndefined()
    expect(factsOf(`{"a": "a", "b": ["a", "b"], "c": {"d": "c"}}`)).toBeUndefined()
    expect(factsOf(`{"a": "x\\", \\"a\\": 1", "b": "\\\\", "c": "\\\\\\"a\\": 2"}`)).toBeUndefined()
    expect(factsOf(`{"a": 1, "A": 2, "a ": 3, "é": 4, "e\\u0301": 5}`)).toBeUndefined()
    expect(factsOf(`"just a string"`)).toBeUndefined()
  })
  it("a key after a string that ends in a backslash, and after nested closings", () => {
    expect(repeatedKeyOf(`{"a": "\\\\", "a": 1}`)).toBe("a")
    expect(repeatedKeyOf(`{"a": {"b": [1, {"c": 2}]}, "d": 3, "a": 4}`)).toBe("a")
  })
})

describe("whole numbers written as floats", () => {
  it("names the field of each, in text order: 3.0, 1e2, -2.50e1, 0.0", () => {
    expect(wholeFloatsOf(`{"a": 3.0, "b": [1, 1e2, 2.5, {"c": -2.50e1}], "d": {"e": 0.0}}`)).toEqual([
      "a",
      "b[1]",
      "b[3].c",
      "d.e"
    ])
    expect(wholeFloatsOf(`[1.0, 2]`)).toEqual(["[0]"])
  })
  it("integers, fractions, and numbers inside strings are none", () => {
    expect(factsOf(`{"a": 3, "b": -0, "c": 2.5, "d": 1e-3, "e": "3.0", "f": "x\\": 4.0", "g": 12345678901234567}`))
      .toBeUndefined()
  })
  it("a key given twice after one is named with it", () => {
    expect(factsOf(`{"a": 1.0, "b": 2, "b": 3}`)).toEqual({ repeatedKey: "b", wholeFloats: ["a"] })
  })
})
