/**
 * Builds an inventory from live MCP servers: each server is asked for its `initialize` info and its
 * tools (McpClient), its catalogue normalized and checked like an inventory file, and how it was
 * reached recorded as its launch spec (environment variable names only). One server failing does not
 * stop the others: the result lists every server's outcome, and the inventory holds the ones that
 * worked. Tools whose input schema no validator can compile, or whose name an inventory refuses (a line
 * feed or other control character in it: `nameFault`), are left out (and reported), since a file containing
 * them could not be loaded; the server's other tools are kept. A tool name listed more than once keeps its
 * first listing (each repeat is left out and reported). A server left with no tool is not imported
 * (`noTools`): an inventory without tools loads nowhere.
 *
 * `checkInventory` lists the servers of an existing inventory again and reports added, removed and
 * changed tools (`tools import --check`); a server listed that the inventory lacks has every tool added.
 */
import { Effect, Either, ParseResult, Schema } from "effect"
import { InputError } from "../domain/errors.js"
import type { InventoryTool } from "../domain/inventory.js"
import { decodeInventory, Inventory, InventoryServer, nameFault, ToolName } from "../domain/inventory.js"
import type { ListedTool, ListToolsOptions, McpServerSpec } from "../services/McpClient.js"
import { describeTarget, McpClient } from "../services/McpClient.js"
import { Storage } from "../services/Storage.js"
import { canonicalJson } from "../skyrl/canonical.js"
import type { ToolChange } from "../skyrl/drift.js"
import { diffInventories } from "../skyrl/drift.js"
import { schemaProblems } from "../skyrl/planValidation.js"
import { launchOfSpec, parseServersConfig, unrecordedEnv, unrecordedHeaders } from "../skyrl/serverSpecs.js"

export type ImportOutcome =
  | {
    readonly _tag: "imported"
    readonly server: string
    readonly target: string
    readonly tools: number
    /** Tools left out, with the reason. */
    readonly skipped: ReadonlyArray<{ readonly tool: string; readonly reason: string }>
    /** HTTP headers whose value the inventory cannot record (only `${VAR}` references are kept). */
    readonly unrecordedHeaders: ReadonlyArray<string>
    /** `env` variables whose value the inventory does not record (only `KEY: "${KEY}"` is kept whole). */
    readonly unrecordedEnv: ReadonlyArray<string>
  }
  | {
    /**
     * The server answered, but no tool of its tools/list can go into an inventory: it listed none, or every
     * one was left out (`skipped`). Not imported (an inventory without tools loads nowhere), so a failure for
     * `tools import`; `--check` still compares it (the inventory's tools are then removed ones).
     */
    readonly _tag: "noTools"
    readonly server: string
    readonly target: string
    readonly message: string
    readonly skipped: ReadonlyArray<{ readonly tool: string; readonly reason: string }>
  }
  | { readonly _tag: "failed"; readonly server: string; readonly target: string; readonly message: string }

export interface ImportResult {
  /** The servers that worked, in the order given (undefined when none did). */
  readonly inventory: Inventory | undefined
  readonly outcomes: ReadonlyArray<ImportOutcome>
}

const decodeToolName = Schema.decodeUnknownEither(ToolName)

/** Whether two listings of one tool name say the same (title, description, schemas, annotations). */
const sameListing = (a: ListedTool, b: ListedTool): boolean => {
  try {
    return canonicalJson(a) === canonicalJson(b)
  } catch {
    return false
  }
}

/**
 * The tools whose names an inventory takes, and the others with the reason (`ToolName`, then `nameFault`).
 * A name listed again (on one page of tools/list or on a later one) keeps its first listing: each repeat is
 * left out, so the inventory holds one definition per name and the server's other tools are kept.
 */
const byName = (tools: ReadonlyArray<ListedTool>) => {
  const kept: Array<ListedTool> = []
  const refused: Array<{ readonly tool: string; readonly reason: string }> = []
  const first = new Map<string, ListedTool>()
  for (const tool of tools) {
    const decoded = decodeToolName(tool.name)
    // The comma is refused by `decodeInventory`, not by `ToolName`: asked here, so the tool alone is left out.
    const reason = Either.isLeft(decoded)
      ? ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]?.message ?? "not a tool name"
      : nameFault(decoded.right, "tool")
    if (reason !== undefined) {
      refused.push({ tool: String(tool.name), reason: `name: ${reason}` })
      continue
    }
    const earlier = first.get(tool.name)
    if (earlier !== undefined) {
      refused.push({
        tool: tool.name,
        reason: "listed again by tools/list (a name an earlier tool has): the first listing is kept" +
          (sameListing(earlier, tool) ? ", and this repeat is the same" : ", and this repeat differs from it")
      })
      continue
    }
    first.set(tool.name, tool)
    kept.push(tool)
  }
  return { kept, refused }
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
    const listed = yield* Effect.either(client.listServer(spec, options))
    if (Either.isLeft(listed)) return failed(listed.left.message)
    const { serverInfo } = listed.right
    const { kept: listedTools, refused } = byName(listed.right.tools)
    const decoded = decodeInventory(
      {
        servers: [{
          name: spec.name,
          launch: launchOfSpec(spec),
          ...(serverInfo === undefined ? {} : { server_info: serverInfo }),
          tools: listedTools
        }]
      },
      `MCP server "${spec.name}"`
    )
    if (Either.isLeft(decoded)) {
      const e = decoded.left
      const entry = e.entry.replace(/^servers\[0\]\.?/, "")
      const tool = /^tools\[(\d+)\]/.exec(entry)
      const toolName = tool === null ? undefined : listedTools[Number(tool[1])]?.name
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
    const leftOut = [...refused, ...skipped.map(({ reason, tool }) => ({ tool, reason }))]
    const kept = new InventoryServer({ ...server, tools })
    const message = noToolsMessage(spec.name, target, listed.right.tools.length)
    return {
      server: kept,
      outcome: tools.length === 0
        ? { _tag: "noTools" as const, server: spec.name, target, message, skipped: leftOut }
        : {
          _tag: "imported" as const,
          server: spec.name,
          target,
          tools: tools.length,
          skipped: leftOut,
          unrecordedHeaders: unrecordedHeaders(spec),
          unrecordedEnv: unrecordedEnv(spec)
        }
    }
  })

/** Why a server that answered gives no tool (`noTools`): it listed none, or every one listed was left out. */
const noToolsMessage = (name: string, target: string, listed: number): string =>
  `MCP server "${name}" (${target}): ` + (listed === 0
    ? "lists no tool (its tools/list answer is empty)"
    : "lists no tool an inventory can hold: " + (listed === 1
      ? "its one tool is left out (named in a warning)"
      : `all ${listed} are left out (each named in a warning)`))

/** Lists every server (a few at a time): its outcome, and the server as listed (0 tools for `noTools`). */
const listEach = (
  specs: ReadonlyArray<McpServerSpec>,
  options?: ListToolsOptions & { readonly concurrency?: number }
) => Effect.forEach(specs, (spec) => importOne(spec, options), { concurrency: options?.concurrency ?? 4 })

/**
 * Imports every server (a few at a time); never fails: failures are outcomes. A server with no tool an
 * inventory can hold (`noTools`) is left out of the inventory like a failed one.
 */
export const importInventory = (
  specs: ReadonlyArray<McpServerSpec>,
  options?: ListToolsOptions & { readonly concurrency?: number }
): Effect.Effect<ImportResult, never, McpClient> =>
  Effect.gen(function*() {
    const results = yield* listEach(specs, options)
    const servers = results.flatMap((r) => r.server === undefined || r.outcome._tag !== "imported" ? [] : [r.server])
    return {
      inventory: servers.length === 0 ? undefined : new Inventory({ servers }),
      outcomes: results.map((r) => r.outcome)
    }
  })

export interface CheckResult {
  readonly changes: ReadonlyArray<ToolChange>
  /** Servers that could not be listed (their tools are not compared). */
  readonly failures: ReadonlyArray<string>
  /** Servers listed that gave no tool an inventory can hold (compared: their inventory tools are removed ones). */
  readonly noTools: ReadonlyArray<string>
  /** Tools a server listed that an inventory could not hold (not compared), by server, with the reason. */
  readonly skipped: ReadonlyArray<{ readonly server: string; readonly tool: string; readonly reason: string }>
  /** Servers of the inventory that have no launch spec and were not given one. */
  readonly unlaunchable: ReadonlyArray<string>
}

/**
 * Lists the servers of `inventory` again (`specs`: one per server that can be started, and any server the
 * inventory lacks, whose tools are then all added) and compares their tools with the inventory's.
 */
export const checkInventory = (
  inventory: Inventory,
  specs: ReadonlyArray<McpServerSpec>,
  options?: ListToolsOptions
): Effect.Effect<CheckResult, never, McpClient> =>
  Effect.gen(function*() {
    const results = yield* listEach(specs, options)
    // A server that now lists no usable tool is compared too: each tool the inventory has for it is removed.
    const listed = new Inventory({ servers: results.flatMap((r) => r.server === undefined ? [] : [r.server]) })
    const outcomes = results.map((r) => r.outcome)
    return {
      changes: diffInventories(inventory, listed),
      failures: outcomes.flatMap((o) => o._tag === "failed" ? [o.message] : []),
      noTools: outcomes.flatMap((o) => o._tag === "noTools" ? [o.message] : []),
      skipped: outcomes.flatMap((o) => o._tag === "failed" ? [] : o.skipped.map((s) => ({ server: o.server, ...s }))),
      unlaunchable: inventory.servers.map((s) => s.name).filter((n) => !specs.some((s) => s.name === n))
    }
  })

/** The server specs of an `mcpServers` config file (errors name the file and the entry). */
export const readServersConfig = (file: string): Effect.Effect<ReadonlyArray<McpServerSpec>, InputError, Storage> =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const text = yield* storage.readText(file).pipe(
      Effect.mapError((e) => new InputError({ file, reason: `cannot read the servers config: ${e.reason}` }))
    )
    return yield* Either.mapLeft(parseServersConfig(text), (reason) => new InputError({ file, reason }))
  })
