/**
 * The formats skyrl's plan validation checks (ajv with ajv-formats' full formats), read against the vectors that
 * python/tests/test_formats.py reads MCPToolEnv's scorer against: the two read a derived param's format alike.
 * Before, the scorer (jsonschema without its optional libraries) checked no "date-time", "uri", "hostname" or
 * "time", so any string passed where skyrl's own validation refused it.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Inventory, InventoryServer, InventoryTool } from "../src/domain/inventory.js"
import { validatePlan } from "../src/skyrl/planValidation.js"

interface Case {
  readonly format: string
  readonly value: unknown
  readonly valid: boolean
  readonly why: string
}

const vectors = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", "formats", "vectors.json"), "utf8"))
const cases: ReadonlyArray<Case> = vectors.cases

const inventoryFor = (format: string) =>
  new Inventory({
    servers: [
      new InventoryServer({
        name: "s",
        tools: [
          new InventoryTool({
            name: "t",
            description: "",
            inputSchema: { type: "object", properties: { v: { format } }, required: ["v"] }
          })
        ]
      })
    ]
  })

describe("formats as skyrl's plan validation reads them", () => {
  it("gives each case of test/fixtures/formats/vectors.json its verdict", () => {
    const verdicts = cases.map((c) => {
      const issues = validatePlan(inventoryFor(c.format), [{ step: 1, server: "s", tool: "t", params: { v: c.value } }])
      return `${c.format} ${JSON.stringify(c.value)} (${c.why}): ${issues.length === 0}`
    })
    expect(verdicts).toEqual(cases.map((c) => `${c.format} ${JSON.stringify(c.value)} (${c.why}): ${c.valid}`))
    // Each format has a case of each kind where it checks anything (a vector file of one verdict could not fail).
    expect(cases.filter((c) => c.valid).length).toBeGreaterThan(20)
    expect(cases.filter((c) => !c.valid).length).toBeGreaterThan(20)
  })
})
