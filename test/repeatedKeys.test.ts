/** `repeatedKeyOf`: the first key a JSON text's object names twice, as the field `validate` reports. */
import { describe, expect, it } from "vitest"
import { repeatedKeyOf as scan } from "../src/skyrl/repeatedKeys.js"

/** The scan of a text JSON.parse reads (the scan's precondition). */
const repeatedKeyOf = (text: string) => {
  JSON.parse(text)
  return scan(text)
}

describe("repeatedKeyOf", () => {
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
    expect(repeatedKeyOf(`{"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}`)).toBeUndefined()
    expect(repeatedKeyOf(`{"a": "a", "b": ["a", "b"], "c": {"d": "c"}}`)).toBeUndefined()
    expect(repeatedKeyOf(`{"a": "x\\", \\"a\\": 1", "b": "\\\\", "c": "\\\\\\"a\\": 2"}`)).toBeUndefined()
    expect(repeatedKeyOf(`{"a": 1, "A": 2, "a ": 3, "é": 4, "e\\u0301": 5}`)).toBeUndefined()
    expect(repeatedKeyOf(`"just a string"`)).toBeUndefined()
  })
  it("a key after a string that ends in a backslash, and after nested closings", () => {
    expect(repeatedKeyOf(`{"a": "\\\\", "a": 1}`)).toBe("a")
    expect(repeatedKeyOf(`{"a": {"b": [1, {"c": 2}]}, "d": 3, "a": 4}`)).toBe("a")
  })
})
