/**
 * Schema drift (pure): a row records, per step, the hash of its tool's input schema in the inventory it
 * was made with (`schema_hash`, /work/spec/formats.md); a tool whose schema has changed since then may
 * reject the plan's params or mean something else by them. Two views:
 * - `schemaDrift`: the steps of one on-disk row whose recorded hash differs from the inventory's
 *   (`skyrl validate --inventory INV`, rule `plan/schema-drift`). Steps without a hash (rows made before
 *   the field existed, or "" = unknown) and tools the inventory lacks (rule `plan/tool`) are skipped.
 * - `diffInventories`: tools added, removed or changed between an inventory and a fresh listing of
 *   the same servers (`skyrl tools import --check INV`).
 */
import type { Inventory, InventoryTool } from "../domain/inventory.js"
import { findTool } from "../domain/inventory.js"
import { isObject } from "../domain/json.js"
import { canonicalJson } from "./canonical.js"

export interface DriftFinding {
  /** Path in the row, e.g. `reward_spec.ground_truth.tool_sequence[1].schema_hash`. */
  readonly field: string
  readonly message: string
}

const short = (hash: string) => hash.slice(0, 12)

/** Steps of a row's `tool_sequence` (on-disk value) whose `schema_hash` differs from the inventory's. */
export const schemaDrift = (inventory: Inventory, toolSequence: unknown): ReadonlyArray<DriftFinding> => {
  if (!Array.isArray(toolSequence)) return []
  const findings: Array<DriftFinding> = []
  toolSequence.forEach((step, i) => {
    if (!isObject(step) || typeof step.schema_hash !== "string" || step.schema_hash === "") return
    if (typeof step.server !== "string" || typeof step.tool !== "string") return
    const current = findTool(inventory, step.tool, step.server)?.tool.schema_hash
    if (current === undefined || current === step.schema_hash) return
    findings.push({
      field: `reward_spec.ground_truth.tool_sequence[${i}].schema_hash`,
      message: `step ${i + 1} ${step.server}/${step.tool}: the tool's input schema changed since the row was made ` +
        `(row ${short(step.schema_hash)}, inventory ${short(current)})`
    })
  })
  return findings
}

export interface ToolChange {
  readonly server: string
  readonly tool: string
  readonly kind: "added" | "removed" | "changed"
  /** For `changed`: which parts differ (input schema, output schema, annotations, title, description). */
  readonly parts: ReadonlyArray<string>
}

const same = (a: unknown, b: unknown) => canonicalJson(a ?? null) === canonicalJson(b ?? null)

const changedParts = (before: InventoryTool, after: InventoryTool): ReadonlyArray<string> => [
  ...(before.schema_hash === after.schema_hash ? [] : ["input schema"]),
  ...(same(before.outputSchema, after.outputSchema) ? [] : ["output schema"]),
  ...(same(before.annotations, after.annotations) ? [] : ["annotations"]),
  ...(same(before.title, after.title) ? [] : ["title"]),
  ...(before.description === after.description ? [] : ["description"])
]

/** Tool changes of the servers in `after` (servers only in `before` are not compared: they were not listed). */
export const diffInventories = (before: Inventory, after: Inventory): ReadonlyArray<ToolChange> => {
  const changes: Array<ToolChange> = []
  for (const server of after.servers) {
    const old = before.servers.find((s) => s.name === server.name)
    const oldTools = new Map((old?.tools ?? []).map((t) => [t.name, t]))
    for (const tool of server.tools) {
      const previous = oldTools.get(tool.name)
      if (previous === undefined) {
        changes.push({ server: server.name, tool: tool.name, kind: "added", parts: [] })
        continue
      }
      const parts = changedParts(previous, tool)
      if (parts.length > 0) changes.push({ server: server.name, tool: tool.name, kind: "changed", parts })
    }
    const names = new Set(server.tools.map((t) => t.name))
    for (const tool of old?.tools ?? []) {
      if (!names.has(tool.name)) changes.push({ server: server.name, tool: tool.name, kind: "removed", parts: [] })
    }
  }
  return changes
}

/** `+ fs/write_file`, `- fs/old_tool`, `~ fs/read_file: input schema, annotations`. */
export const formatChange = (c: ToolChange): string =>
  `${c.kind === "added" ? "+" : c.kind === "removed" ? "-" : "~"} ${c.server}/${c.tool}` +
  (c.kind === "changed" ? `: ${c.parts.join(", ")} changed` : ` ${c.kind}`)
