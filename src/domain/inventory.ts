/**
 * The tool inventory: MCP servers → tools → name, description, inputSchema (JSON Schema).
 * File format: `{ "servers": [{ "name": "fmp", "tools": [{ "name", "description", "inputSchema" }] }] }`
 * (the shape of data/inventory/finance-mcp.json).
 */
import { Schema } from "effect"

export const JsonSchemaObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })
export type JsonSchemaObject = typeof JsonSchemaObject.Type

export class InventoryTool extends Schema.Class<InventoryTool>("InventoryTool")({
  name: Schema.NonEmptyTrimmedString,
  description: Schema.optionalWith(Schema.String, { default: () => "" }),
  inputSchema: Schema.optionalWith(JsonSchemaObject, { default: () => ({ type: "object", properties: {} }) })
}) {}

export class InventoryServer extends Schema.Class<InventoryServer>("InventoryServer")({
  name: Schema.NonEmptyTrimmedString,
  tools: Schema.Array(InventoryTool)
}) {}

export class Inventory extends Schema.Class<Inventory>("Inventory")({
  servers: Schema.Array(InventoryServer)
}) {}

/** Finds a tool by name (and server when given). Pure helper used by prompts and validation. */
export const findTool = (
  inventory: Inventory,
  tool: string,
  server?: string
): { readonly server: InventoryServer; readonly tool: InventoryTool } | undefined => {
  for (const s of inventory.servers) {
    if (server !== undefined && s.name !== server) continue
    const t = s.tools.find((x) => x.name === tool)
    if (t !== undefined) return { server: s, tool: t }
  }
  return undefined
}
