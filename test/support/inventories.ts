/** Inventories for tests: the bundled finance one and the catalogue imported from server-everything. */
import { Either } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { Inventory } from "../../src/domain/inventory.js"
import { parseInventoryText } from "../../src/domain/inventory.js"

const DIR = join(import.meta.dirname, "..", "fixtures", "inventory")

/**
 * `finance-mcp.json` (5 servers, 25 tools) or `everything.json`: `skyrl tools import --stdio
 * everything="node node_modules/@modelcontextprotocol/server-everything/dist/index.js stdio"` (13 tools).
 */
export const loadInventory = (name: "finance-mcp" | "everything"): Inventory => {
  const file = join(DIR, `${name}.json`)
  return Either.getOrThrow(parseInventoryText(readFileSync(file, "utf8"), file))
}
