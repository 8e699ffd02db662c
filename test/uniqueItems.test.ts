/**
 * `duplicatePair` stands in for Ajv's pairwise `uniqueItems` loop in the generated draft-07 meta-schema validator
 * (scripts/gen-draft7-meta.ts): it must report the pair that loop reports, with Ajv's deep equality, for any items.
 */
import * as equalModule from "ajv/dist/runtime/equal.js"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { duplicatePair } from "../src/skyrl/uniqueItems.js"

const m = equalModule as unknown as { default: unknown }
const equal = (typeof m.default === "function" ? m.default : (m.default as { default: unknown }).default) as (
  a: unknown,
  b: unknown
) => boolean

/** Ajv's loop as it generates it: from the last item down, each against the ones before it, latest first. */
const ajvPair = (items: ReadonlyArray<unknown>): readonly [number, number] | undefined => {
  for (let i = items.length - 1; i > 0; i--) {
    for (let j = i - 1; j >= 0; j--) if (equal(items[i], items[j])) return [i, j]
  }
  return undefined
}

describe("duplicatePair", () => {
  it("finds no pair among unique items, of any type", () => {
    expect(duplicatePair(["1", 1, true, "true", null, "null", [1, 2], [2, 1], { a: 1 }, { a: "1" }], equal))
      .toBeUndefined()
    expect(duplicatePair(Array.from({ length: 1000 }, (_, i) => `v${i}`), equal)).toBeUndefined()
  })

  it("reports the last item equal to an earlier one and the latest such earlier one, as Ajv does", () => {
    expect(duplicatePair(["a", "b", "a", "c", "b", "a"], equal)).toEqual([5, 2])
    expect(duplicatePair(["x", "y", "x", "z"], equal)).toEqual([2, 0])
  })

  it("takes objects equal whatever their keys' order, and arrays only in the same order", () => {
    expect(duplicatePair([{ a: 1, b: [2, { c: 3 }] }, "s", { b: [2, { c: 3 }], a: 1 }], equal)).toEqual([2, 0])
    expect(duplicatePair([[1, 2], [2, 1]], equal)).toBeUndefined()
  })

  it("does not take items of one canonical JSON for equal unless Ajv does", () => {
    // canonicalJson drops a key whose value is undefined: the two share a group, and Ajv's equality tells them apart.
    expect(duplicatePair([{ a: 1 }, { a: 1, b: undefined }], equal)).toBeUndefined()
  })

  it("agrees with Ajv's loop on any JSON items", () => {
    const item = fc.oneof(
      fc.constantFrom("a", "b", "\u0000\"a\"", 0, 1, -0, true, null),
      fc.array(fc.constantFrom(0, 1, "a"), { maxLength: 2 }),
      fc.dictionary(fc.constantFrom("k", "l"), fc.constantFrom(0, "a"), { maxKeys: 2 })
    )
    fc.assert(fc.property(fc.array(item, { maxLength: 12 }), (items) => {
      expect(duplicatePair(items, equal)).toEqual(ajvPair(items))
    }))
  })
})
