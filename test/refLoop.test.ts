/** `refLoopOf`: $ref loops that no value can end (src/skyrl/refLoop.ts), and the inventory that holds one. */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { parseInventoryText } from "../src/domain/inventory.js"
import { schemaProblems } from "../src/skyrl/planValidation.js"
import { refLoopOf } from "../src/skyrl/refLoop.js"

const LOOP_AB = { $defs: { A: { $ref: "#/$defs/B" }, B: { $ref: "#/$defs/A" } } }

describe("refLoopOf", () => {
  it("finds a loop of references, and of allOf / anyOf / not ..., that enters no property or item", () => {
    expect(refLoopOf({ $ref: "#" })).toBe("# → #")
    expect(refLoopOf({ type: "object", properties: { x: { $ref: "#/$defs/A" } }, ...LOOP_AB })).toBe(
      "#/$defs/A → #/$defs/B → #/$defs/A"
    )
    expect(refLoopOf({ allOf: [{ type: "object" }, { $ref: "#" }] })).toBe("# → #/allOf/1 → #")
    expect(refLoopOf({ anyOf: [{ not: { $ref: "#/anyOf/0" } }] })).toBe("#/anyOf/0 → #/anyOf/0/not → #/anyOf/0")
    // A pointer's escapes: "a/b" is a~1b, "%25" is "%".
    expect(refLoopOf({ properties: { "a/b": { $ref: "#/properties/a~1b" } } })).toBe(
      "#/properties/a/b → #/properties/a~1b"
    )
  })

  it("no loop: a tree through properties or items, $defs nobody uses, refs it cannot follow, no refs", () => {
    const tree = { type: "object", properties: { child: { $ref: "#" }, kids: { type: "array", items: { $ref: "#" } } } }
    expect(refLoopOf(tree)).toBeUndefined()
    expect(refLoopOf({ type: "object", ...LOOP_AB })).toBeUndefined()
    expect(refLoopOf({ $ref: "https://example.com/s.json" })).toBeUndefined()
    expect(refLoopOf({ $ref: "#/$defs/missing" })).toBeUndefined()
    expect(refLoopOf({ allOf: [{ $ref: "#/$defs/A" }, { $ref: "#/$defs/A" }], $defs: { A: { type: "string" } } }))
      .toBeUndefined()
    expect(refLoopOf({ type: "object", properties: { a: { type: "string" } } })).toBeUndefined()
  })

  it("an inventory tool whose inputSchema holds one is refused when the inventory loads, naming the entry", () => {
    // Before: {"$ref": "#"} loaded (`tools list` exit 0); `convert` then said "cannot write OUT: Maximum call stack
    // size exceeded" and `validate` "internal error: Maximum call stack size exceeded".
    const inventory = Either.getOrThrow(parseInventoryText(
      JSON.stringify({ servers: [{ name: "s", tools: [{ name: "t", inputSchema: { $ref: "#" } }] }] }),
      "inv.json"
    ))
    expect(schemaProblems(inventory)).toEqual([{
      entry: "servers[0].tools[0].inputSchema",
      reason:
        "invalid JSON Schema: a $ref loop that enters no property or item (# → #): no value's validation would end"
    }])
  })
})
