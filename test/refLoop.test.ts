/**
 * `refLoopOf`: $ref loops that no value can end (src/skyrl/refLoop.ts), and the inventory that holds one;
 * `danglingRefOf`: a $ref into the schema that points at nothing. Both as MCPToolEnv reads them
 * (test/fixtures/schema-refs/vectors.json, shared with python/tests/test_schema_refs.py).
 */
import { Either } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parseInventoryText } from "../src/domain/inventory.js"
import { schemaProblems } from "../src/skyrl/planValidation.js"
import { danglingRefOf, refLoopOf } from "../src/skyrl/refLoop.js"

interface RefCase {
  readonly name: string
  readonly schema: Record<string, unknown>
  readonly fault: "dangling" | "loop" | null
  readonly inventory: boolean
}
const VECTORS: { readonly cases: ReadonlyArray<RefCase> } = JSON.parse(
  readFileSync(join(import.meta.dirname, "fixtures", "schema-refs", "vectors.json"), "utf8")
)
const inventoryOf = (inputSchema: unknown) =>
  Either.getOrThrow(parseInventoryText(
    JSON.stringify({ servers: [{ name: "s", tools: [{ name: "t", inputSchema }] }] }),
    "inv.json"
  ))

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

describe("danglingRefOf", () => {
  it("names the $ref, where it is, and why", () => {
    expect(danglingRefOf({ type: "object", properties: { a: { $ref: "#/definitions/Missing" } } })).toBe(
      "$ref \"#/definitions/Missing\" (at #/properties/a) resolves to nothing in the schema: no value there can be " +
        "checked"
    )
    expect(danglingRefOf({ definitions: { A: { properties: { b: { $ref: "#/$defs/x" } } } }, $ref: "#/definitions/A" }))
      .toBe(
        "$ref \"#/$defs/x\" (at #/definitions/A/properties/b) resolves to nothing in the schema: no value there " +
          "can be checked"
      )
  })

  it("judges no $ref under a subschema with an $id of its own (another base: MCPToolEnv resolves it there)", () => {
    const scoped = {
      $id: "https://example.com/a.json",
      definitions: { d: { type: "integer" } },
      properties: { b: { $ref: "#/definitions/d" } }
    }
    expect(danglingRefOf({ type: "object", properties: { a: scoped } })).toBeUndefined()
  })

  it("reads every case of test/fixtures/schema-refs/vectors.json as MCPToolEnv does; skyrl's inventory agrees", () => {
    for (const c of VECTORS.cases) {
      const dangling = danglingRefOf(c.schema)
      const loop = refLoopOf(c.schema)
      const found = dangling !== undefined ? "dangling" : loop !== undefined ? "loop" : null
      expect([c.name, found]).toEqual([c.name, c.fault])
      // Before: an inventory already refused each faulty schema (Ajv, refLoopOf), while a row's tool_schemas
      // holding one passed skyrl validate and MCPToolEnv read it as valid for any value reaching the $ref.
      expect([c.name, schemaProblems(inventoryOf(c.schema)).length === 0]).toEqual([c.name, c.inventory])
    }
  })
})
