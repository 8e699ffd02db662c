/**
 * Plan validation checks each tool's input schema against draft-07's meta-schema with a validator Ajv generated
 * ahead (src/skyrl/draft7Meta.generated.js), not the one Ajv compiles at each start. Held here: the file is what
 * the installed Ajv generates, and an inventory's schemas get the verdict and message Ajv's own check gives them.
 */
import { Ajv } from "ajv"
import * as AjvFormats from "ajv-formats"
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { draft7MetaSource, TARGET } from "../scripts/gen-draft7-meta.js"
import { Inventory, InventoryServer, InventoryTool } from "../src/domain/inventory.js"
import { AJV_OPTIONS } from "../src/skyrl/ajvOptions.js"
import { closeObjects, schemaProblems, validatePlan } from "../src/skyrl/planValidation.js"

const addFormats = ((AjvFormats as unknown as { default?: unknown }).default ?? AjvFormats) as (ajv: Ajv) => Ajv

/** Ajv's own verdict, meta-schema check included (its default `validateSchema: true`): the reference. */
const ajvError = (schema: object): string | undefined => {
  const ajv = new Ajv({ ...AJV_OPTIONS })
  addFormats(ajv)
  try {
    ajv.compile(schema)
    return undefined
  } catch (e) {
    return (e as Error).message
  }
}

const SCHEMAS: ReadonlyArray<Record<string, unknown>> = [
  {
    type: "object",
    properties: { day: { type: "string", format: "date" }, n: { type: "integer" } },
    required: ["day"]
  },
  { type: "object", properties: { a: { type: "strin" } } },
  { type: "object", properties: { a: { type: "string" } }, required: "a" },
  { type: "object", properties: { a: { type: "string", minLength: "3" }, b: { maximum: "x" } } },
  { type: "object", properties: { a: { type: ["string", 5] } } },
  { type: "object", definitions: { x: { type: "nope" } }, properties: { a: { $ref: "#/definitions/x" } } },
  { type: "object", properties: { a: { $ref: "#/definitions/missing" } } },
  { type: "object", properties: { a: { type: "string", pattern: "(" } } },
  { type: "object", properties: { a: { enum: "x" }, b: { items: [1] } } },
  { $schema: "http://json-schema.org/draft-07/schema#", type: "object", properties: { a: { type: 3 } } },
  { $schema: "http://json-schema.org/draft-07/schema", type: "object", properties: { a: { type: "string" } } },
  { $schema: "", type: "object", properties: { a: { minimum: "0" } } },
  { $schema: 5, type: "object", properties: {} },
  { $schema: "https://json-schema.org/draft/2020-12/schema", type: "object", properties: {} },
  { $schema: "http://json-schema.org/draft-07/schema#/", type: "object", properties: { a: { type: 3 } } },
  { $id: "http://x/a", type: "object", properties: { b: { $id: "http://x/a", type: "string" } } },
  { type: "object", properties: { a: { type: "string", "x-extra": { nested: true } } }, examples: 5 },
  // Enums and type lists with a repeated item (the generated validator finds the pair without Ajv's pairwise loop).
  { type: "object", properties: { a: { enum: ["a", "b", "a", "c", "b", "x"] } } },
  { type: "object", properties: { a: { enum: [{ k: 1, l: [2] }, 1, "1", { l: [2], k: 1 }] } } },
  { type: "object", properties: { a: { enum: [[1, 2], [2, 1], "1", 1, null, "null"] } } },
  { type: "object", properties: { a: { type: ["string", "null", "string"] } } },
  { type: "object", properties: { a: { enum: Array.from({ length: 3000 }, (_, i) => `v${i % 2999}`) } } }
]

describe("draft-07's meta-schema validator generated ahead", () => {
  it("is what the installed Ajv generates (else: npx tsx scripts/gen-draft7-meta.ts)", () => {
    expect(readFileSync(TARGET, "utf8")).toBe(draft7MetaSource())
  })

  it("gives each schema Ajv's own verdict and message, in both unknown-param modes", () => {
    // Made by the classes, not `decodeInventory`, which drops `$schema` keys: the check's other branches run too.
    const tools = SCHEMAS.map((inputSchema, i) => new InventoryTool({ name: `t${i}`, description: "", inputSchema }))
    const inventory = new Inventory({ servers: [new InventoryServer({ name: "s", tools })] })
    const problems = new Map(schemaProblems(inventory).map((p) => [p.entry, p.reason]))
    let invalid = 0
    SCHEMAS.forEach((schema, i) => {
      const closed = ajvError(closeObjects(schema) as object)
      if (closed !== undefined) invalid++
      const reason = problems.get(`servers[0].tools[${i}].inputSchema`)
      expect(reason, JSON.stringify(schema)).toBe(closed === undefined ? undefined : `invalid JSON Schema: ${closed}`)
      const open = ajvError(schema)
      const issues = validatePlan(inventory, [{ step: 1, server: "s", tool: `t${i}`, params: {} }], {
        unknownParams: "allow"
      }).filter((issue) => issue.message.startsWith("the tool's input schema is invalid"))
      expect(issues.map((issue) => issue.message), JSON.stringify(schema)).toEqual(
        open === undefined ? [] : [`the tool's input schema is invalid: ${open}`]
      )
    })
    // The corpus has both kinds, the meta-schema's own findings among the invalid ones.
    expect(invalid).toBe(18)
    expect([...problems.values()].filter((r) => r.includes("schema is invalid: data")).length).toBe(14)
  })
})
