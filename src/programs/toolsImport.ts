/**
 * Builds an inventory from live MCP servers: each server is asked for its tools (McpClient), its
 * catalogue normalized and checked like an inventory file. One server failing does not stop the
 * others: the result lists every server's outcome, and the inventory holds the ones that worked.
 * Tools whose input schema no validator can compile are left out (and reported), since a file
 * containing them could not be loaded.
 */
import { Effect, Either } from "effect"
import type { InventoryTool } from "../domain/inventory.js"
import { decodeInventory, Inventory, InventoryServer } from "../domain/inventory.js"
import type { ListToolsOptions, McpServerSpec } from "../services/McpClient.js"
import { describeTarget, McpClient } from "../services/McpClient.js"
import { schemaProblems } from "../skyrl/planValidation.js"

export type ImportOutcome =
  | {
    readonly _tag: "imported"
    readonly server: string
    readonly target: string
    readonly tools: number
    /** Tools left out, with the reason. */
    readonly skipped: ReadonlyArray<{ readonly tool: string; readonly reason: string }>
  }
  | { readonly _tag: "failed"; readonly server: string; readonly target: string; readonly message: string }

export interface ImportResult {
  /** The servers that worked, in the order given (undefined when none did). */
  readonly inventory: Inventory | undefined
  readonly outcomes: ReadonlyArray<ImportOutcome>
}

const importOne = (
  spec: McpServerSpec,
  options?: ListToolsOptions
): Effect.Effect<{ server: InventoryServer | undefined; outcome: ImportOutcome }, never, McpClient> =>
  Effect.gen(function*() {
    const client = yield* McpClient
    const target = describeTarget(spec)
    const failed = (message: string) => ({
      server: undefined,
      outcome: { _tag: "failed" as const, server: spec.name, target, message }
    })
    const listed = yield* Effect.either(client.listTools(spec, options))
    if (Either.isLeft(listed)) return failed(listed.left.message)
    const decoded = decodeInventory(
      { servers: [{ name: spec.name, tools: listed.right }] },
      `MCP server "${spec.name}"`
    )
    if (Either.isLeft(decoded)) {
      const e = decoded.left
      const entry = e.entry.replace(/^servers\[0\]\.?/, "")
      const tool = /^tools\[(\d+)\]/.exec(entry)
      const toolName = tool === null ? undefined : listed.right[Number(tool[1])]?.name
      return failed(
        `${e.source}: ${entry}${toolName === undefined ? "" : ` (tool "${toolName}")`}: ${e.reason}`
      )
    }
    const server = decoded.right.servers[0]!
    const problems = schemaProblems(decoded.right)
    const skipped = problems.map((p) => {
      const index = Number(/tools\[(\d+)\]/.exec(p.entry)?.[1])
      return { index, tool: server.tools[index]?.name ?? p.entry, reason: p.reason }
    })
    const tools: ReadonlyArray<InventoryTool> = server.tools.filter((_, i) => !skipped.some((s) => s.index === i))
    return {
      server: new InventoryServer({ name: server.name, tools }),
      outcome: {
        _tag: "imported" as const,
        server: spec.name,
        target,
        tools: tools.length,
        skipped: skipped.map(({ reason, tool }) => ({ tool, reason }))
      }
    }
  })

/** Imports every server (a few at a time); never fails: failures are outcomes. */
export const importInventory = (
  specs: ReadonlyArray<McpServerSpec>,
  options?: ListToolsOptions & { readonly concurrency?: number }
): Effect.Effect<ImportResult, never, McpClient> =>
  Effect.gen(function*() {
    const results = yield* Effect.forEach(specs, (spec) => importOne(spec, options), {
      concurrency: options?.concurrency ?? 4
    })
    const servers = results.flatMap((r) => r.server === undefined ? [] : [r.server])
    return {
      inventory: servers.length === 0 ? undefined : new Inventory({ servers }),
      outcomes: results.map((r) => r.outcome)
    }
  })
