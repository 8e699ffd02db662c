/**
 * `toolSchemaFault`: a tool's input schema that is not valid against its draft's meta-schema, as skyrl validate
 * reads a row's `tool_schemas` and MCPToolEnv refuses it (test/fixtures/schema-meta/vectors.json, shared with
 * python/tests/test_schema_meta.py), beside skyrl's inventory loading (the reference).
 */
import { Either } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parseInventoryText } from "../src/domain/inventory.js"
import { draftNamed, schemaProblems, toolSchemaFault } from "../src/skyrl/planValidation.js"

interface MetaCase {
  readonly name: string
  readonly schema: Record<string, unknown>
  readonly invalid: boolean
  readonly inventory: boolean
  readonly why?: string
  readonly validate?: "not judged"
}
const fixture = (...path: Array<string>) => readFileSync(join(import.meta.dirname, "fixtures", ...path), "utf8")
const VECTORS: {
  readonly drafts: ReadonlyArray<readonly [string, string]>
  readonly cases: ReadonlyArray<MetaCase>
} = JSON.parse(fixture("schema-meta", "vectors.json"))

/** skyrl loads an inventory whose one tool has this input schema (decoded, normalized, every schema compiled). */
const loads = (inputSchema: unknown): boolean => {
  const inventory = parseInventoryText(
    JSON.stringify({ servers: [{ name: "s", tools: [{ name: "t", inputSchema }] }] }),
    "inv.json"
  )
  return Either.isRight(inventory) && schemaProblems(inventory.right).length === 0
}

describe("toolSchemaFault", () => {
  it("names the draft, where and what (Ajv's words)", () => {
    expect(toolSchemaFault({ type: "object", properties: { n: { type: 5 } } })).toBe(
      "not a valid JSON Schema (draft-07 meta-schema): #/properties/n/type must be equal to one of the allowed " +
        "values, #/properties/n/type must be array, #/properties/n/type must match a schema in anyOf"
    )
    expect(toolSchemaFault({ type: "object", required: "a" })).toBe(
      "not a valid JSON Schema (draft-07 meta-schema): #/required must be array"
    )
    expect(toolSchemaFault({ type: "object", properties: { n: { type: "integer", minimum: "x" } } })).toBe(
      "not a valid JSON Schema (draft-07 meta-schema): #/properties/n/minimum must be number"
    )
    expect(toolSchemaFault({ type: "object", $schema: 5 })).toBe(
      "not a valid JSON Schema: $schema must be a string (got 5)"
    )
    // At most three of Ajv's errors, and how many more.
    const many = toolSchemaFault({ type: "strng", required: "a", minimum: "x", maximum: "y", description: 5 })
    expect(many).toMatch(
      /^not a valid JSON Schema \(draft-07 meta-schema\): #\/[^,]+, #\/[^,]+, #\/[^,]+ \(and 4 more\)$/
    )
    expect(toolSchemaFault({ type: "object", properties: { n: { type: "integer" } } })).toBeUndefined()
  })

  it("reads the draft $schema names as MCPToolEnv does (jsonschema's validator_for), draft-07 otherwise", () => {
    expect(VECTORS.drafts.length).toBeGreaterThan(10)
    for (const [uri, draft] of VECTORS.drafts) expect([uri, draftNamed(uri)]).toEqual([uri, draft])
  })

  it("reads every case of test/fixtures/schema-meta/vectors.json as MCPToolEnv does; skyrl's inventory agrees", () => {
    for (const c of VECTORS.cases) {
      const fault = toolSchemaFault(c.schema)
      const expected = c.validate === "not judged" ? false : c.invalid
      expect([c.name, fault !== undefined]).toEqual([c.name, expected])
      expect([c.name, loads(c.schema)]).toEqual([c.name, c.inventory])
      // The loader is the reference: where the case says nothing of why, it refuses exactly what both readers do.
      if (c.why === undefined) expect([c.name, c.inventory]).toEqual([c.name, !c.invalid])
    }
  })

  it("finds no fault in a tool schema of the real inventories, as written there and as skyrl loads them", () => {
    for (const file of [["..", "..", "data", "inventory", "finance-mcp.json"], ["inventory", "everything.json"]]) {
      const text = fixture(...file)
      const raw = JSON.parse(text) as { servers: ReadonlyArray<{ tools: ReadonlyArray<{ inputSchema: object }> }> }
      const loaded = Either.getOrThrow(parseInventoryText(text, file.join("/")))
      const schemas = [
        ...raw.servers.flatMap((s) => s.tools.map((t) => t.inputSchema)),
        ...loaded.servers.flatMap((s) => s.tools.map((t) => t.inputSchema))
      ]
      expect(schemas.length).toBeGreaterThan(10)
      expect(schemas.map((s) => toolSchemaFault(s as Record<string, unknown>)).filter((f) => f !== undefined))
        .toEqual([])
    }
  })
})
