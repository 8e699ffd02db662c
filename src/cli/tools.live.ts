/** Live wiring of `skyrl tools import` / `skyrl tools list` (loaded lazily by src/cli/tools.ts). */
import { Console, Duration, Effect, Either, Layer, Option, Schema } from "effect"
import { existsSync } from "node:fs"
import type { InventoryTool } from "../domain/inventory.js"
import { Inventory as InventoryData } from "../domain/inventory.js"
import { isObject } from "../domain/json.js"
import { plural } from "../domain/words.js"
import type { ImportOutcome } from "../programs/toolsImport.js"
import { checkInventory, importInventory, readServersConfig } from "../programs/toolsImport.js"
import { Inventory, loadInventoryFile } from "../services/Inventory.js"
import type { McpServerSpec } from "../services/McpClient.js"
import { McpClientLive } from "../services/McpClient.js"
import { Storage, StorageLive } from "../services/Storage.js"
import { formatChange } from "../skyrl/drift.js"
import { anchorSpec, pairServerArgs, specsForInventory } from "../skyrl/serverSpecs.js"
import { fileDirectory, outputDirectoriesMakeable } from "./outputDirectories.js"
import { outputsApart } from "./outputsApart.js"
import { serverListOf } from "./serverList.js"
import { timeoutProblem } from "./shared.js"

/** Bad arguments found after parsing (exit code 2, like other usage errors). */
export class ToolsUsageError extends Schema.TaggedError<ToolsUsageError>()("ToolsUsageError", {
  reason: Schema.String
}) {
  get exitCode(): number {
    return 2
  }
  override get message(): string {
    return `tools import: ${this.reason}`
  }
}

/** Some servers could not be imported (the others were written, if any). */
export class ToolsImportError extends Schema.TaggedError<ToolsImportError>()("ToolsImportError", {
  out: Schema.String,
  imported: Schema.Number,
  total: Schema.Number,
  failures: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const head = this.imported === 0
      ? `no MCP server could be imported; ${this.out} was not written`
      : `imported ${this.imported} of ${this.total} MCP servers into ${this.out}; failed:`
    return [head, ...this.failures].join("\n")
  }
}

/** Tools changed since the inventory was made (`tools import --check`), or servers that could not be listed. */
export class ToolsCheckError extends Schema.TaggedError<ToolsCheckError>()("ToolsCheckError", {
  inventory: Schema.String,
  changes: Schema.Number,
  problems: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const head = this.changes > 0
      ? `${this.inventory}: ${plural(this.changes, "tool")} changed (listed on stdout)`
      : `${this.inventory}: could not check every server`
    return [head, ...this.problems].join("\n")
  }
}

interface ImportOptions {
  readonly stdio: ReadonlyArray<string>
  readonly http: ReadonlyArray<string>
  readonly name: ReadonlyArray<string>
  readonly serversConfig: Option.Option<string>
  readonly out: Option.Option<string>
  readonly check: Option.Option<string>
  readonly timeout: number
}

/** The servers given on the command line: --stdio/--http pairs, then the --servers-config entries. */
const givenSpecs = (options: ImportOptions) =>
  Effect.gen(function*() {
    const fromArgs = options.stdio.length + options.http.length + options.name.length === 0
      ? []
      : yield* Either.mapLeft(
        pairServerArgs(options.stdio, options.http, options.name),
        (reason) => new ToolsUsageError({ reason })
      )
    const fromConfig = Option.isSome(options.serversConfig) ? yield* readServersConfig(options.serversConfig.value) : []
    const twice = fromConfig.find((c) => fromArgs.some((a) => a.name === c.name))
    if (twice !== undefined) {
      return yield* new ToolsUsageError({ reason: `server name "${twice.name}" is given twice` })
    }
    return [...fromArgs, ...fromConfig]
  })

export const runToolsImport = (options: ImportOptions) =>
  Effect.gen(function*() {
    const badTimeout = timeoutProblem(options.timeout)
    if (badTimeout !== undefined) return yield* new ToolsUsageError({ reason: badTimeout })
    const given = yield* givenSpecs(options)
    const timeout = Duration.seconds(options.timeout)
    if (Option.isSome(options.check)) {
      if (Option.isSome(options.out)) {
        return yield* new ToolsUsageError({
          reason: "--check writes nothing, so --out is not used: check, then import again with --out to refresh " +
            "the inventory"
        })
      }
      return yield* runCheck(options.check.value, given, timeout)
    }
    if (Option.isNone(options.out)) {
      return yield* new ToolsUsageError({ reason: "--out FILE is required (or --check INV)" })
    }
    if (!/\.json$/i.test(options.out.value)) {
      const reason = `--out ${JSON.stringify(options.out.value)} must end in .json (an inventory is JSON)`
      return yield* new ToolsUsageError({ reason })
    }
    if (given.length === 0) {
      return yield* new ToolsUsageError({
        reason: Option.isSome(options.serversConfig)
          ? `${options.serversConfig.value} lists no server to import (its mcpServers is empty, or every entry is ` +
            "\"disabled\": true)"
          : "give at least one server with --stdio, --http or --servers-config"
      })
    }
    yield* outputsApart("tools import", [{ setting: "--out", file: options.out.value }], [
      Option.isSome(options.serversConfig)
        ? { what: "--servers-config file", file: options.serversConfig.value }
        : undefined
    ])
    yield* outputDirectoriesMakeable([fileDirectory("--out", options.out.value)])
    const dir = process.cwd()
    yield* writeImport(given.map((spec) => anchorSpec(spec, dir, existsSync)), options.out.value, timeout)
  }).pipe(Effect.provide(Layer.merge(McpClientLive, StorageLive)))

/** A tool of a server's tools/list that an inventory cannot hold (its schema, its name), and why. */
const logLeftOut = (server: string, left: { readonly tool: string; readonly reason: string }) =>
  Effect.logWarning(`MCP server "${server}": tool ${JSON.stringify(left.tool)} left out: ${left.reason}`)

/** What an imported server gave, and what its launch spec leaves out. */
const logImported = (o: Extract<ImportOutcome, { _tag: "imported" }>) =>
  Effect.gen(function*() {
    yield* Effect.logInfo(`MCP server "${o.server}": ${o.tools} tools`)
    for (const s of o.skipped) yield* logLeftOut(o.server, s)
    for (const h of o.unrecordedHeaders) {
      yield* Effect.logWarning(
        `MCP server "${o.server}": header ${h} is not recorded in the inventory (only "\${VAR}" values are); ` +
          "give it with --servers-config when the server is used"
      )
    }
    for (const v of o.unrecordedEnv) {
      yield* Effect.logWarning(
        `MCP server "${o.server}": the value of env ${v} is not recorded in the inventory (only its name is); ` +
          `set $${v} in the environment of later runs (verify, tools import --check) or give --servers-config`
      )
    }
  })

const writeImport = (specs: ReadonlyArray<McpServerSpec>, out: string, timeout: Duration.Duration) =>
  Effect.gen(function*() {
    yield* Effect.logInfo(`importing ${plural(specs.length, "MCP server")}`)
    const result = yield* importInventory(specs, { timeout })
    for (const o of result.outcomes) {
      if (o._tag === "imported") yield* logImported(o)
      // Its tools left out, each with a warning; the server is a failure below.
      else if (o._tag === "noTools") yield* Effect.forEach(o.skipped, (s) => logLeftOut(o.server, s))
    }
    if (result.inventory !== undefined) {
      const storage = yield* Storage
      const encoded = Schema.encodeSync(InventoryData)(result.inventory)
      yield* storage.writeFileAtomic(out, JSON.stringify(encoded, null, 2) + "\n")
      yield* Effect.logInfo(`wrote ${out}`)
    }
    const failures = result.outcomes.flatMap((o) => o._tag === "imported" ? [] : [o.message])
    if (failures.length > 0) {
      return yield* new ToolsImportError({
        out,
        imported: result.outcomes.length - failures.length,
        total: result.outcomes.length,
        failures
      })
    }
  })

/**
 * The servers `--check` lists: the inventory's (`specsForInventory`; `missing`: those it cannot start), then
 * the servers given that the inventory lacks (`added`: every tool of theirs is an added one).
 */
const serversToCheck = (inventory: InventoryData, given: ReadonlyArray<McpServerSpec>) => {
  const { missing, specs } = specsForInventory(inventory.servers, given)
  const added = given.filter((g) => !inventory.servers.some((s) => s.name === g.name))
  return { missing, added, specs: [...specs, ...added] }
}

const runCheck = (file: string, given: ReadonlyArray<McpServerSpec>, timeout: Duration.Duration) =>
  Effect.gen(function*() {
    const inventory = yield* loadInventoryFile(file)
    const { added, missing, specs } = serversToCheck(inventory, given)
    yield* Effect.logInfo(
      `checking ${plural(specs.length - added.length, "MCP server")} of ${file}` +
        (added.length === 0
          ? ""
          : ` and ${plural(added.length, "MCP server")} not in it (${added.map((s) => s.name).join(", ")})`)
    )
    const result = yield* checkInventory(inventory, specs, { timeout })
    for (const s of result.skipped) yield* logLeftOut(s.server, s)
    for (const message of result.noTools) yield* Effect.logWarning(message)
    for (const change of result.changes) yield* Console.log(formatChange(change))
    const problems = [
      ...missing.map((n) => `MCP server "${n}": no launch spec in ${file} and none given (--servers-config)`),
      ...result.failures
    ]
    if (result.changes.length === 0 && problems.length === 0) {
      yield* Effect.logInfo(`${file}: no tool changed on ${plural(specs.length, "MCP server")}`)
      return
    }
    return yield* new ToolsCheckError({ inventory: file, changes: result.changes.length, problems })
  })

// ---------------------------------------------------------------------------------------------
// tools list

type Json = Record<string, unknown>

const typeLabel = (schema: unknown, depth = 0): string => {
  if (!isObject(schema)) return "any"
  if (Array.isArray(schema.enum) && schema.enum.length > 0) {
    return schema.enum.length <= 5 ? schema.enum.map((v) => JSON.stringify(v)).join("|") : "enum"
  }
  if (schema.const !== undefined) return JSON.stringify(schema.const)
  const alternatives = Array.isArray(schema.anyOf)
    ? schema.anyOf
    : Array.isArray(schema.oneOf)
    ? schema.oneOf
    : undefined
  if (alternatives !== undefined) return alternatives.map((a) => typeLabel(a, depth)).join("|")
  if (typeof schema.$ref === "string") return schema.$ref.split("/").pop() ?? "ref"
  const type = Array.isArray(schema.type)
    ? schema.type.join("|")
    : typeof schema.type === "string"
    ? schema.type
    : "any"
  if (type === "array") return `${typeLabel(schema.items, depth)}[]`
  if (type === "object" && isObject(schema.properties) && depth < 1) {
    return `{${paramList(schema, depth + 1)}}`
  }
  return type
}

const paramList = (schema: Json, depth: number): string => {
  const required = new Set(Array.isArray(schema.required) ? schema.required : [])
  const properties = isObject(schema.properties) ? schema.properties : {}
  return Object.entries(properties)
    .map(([name, s]) => `${name}${required.has(name) ? "" : "?"}: ${typeLabel(s, depth)}`)
    .join(", ")
}

/** `name(a: string, b?: "x"|"y", c?: integer)`; optional params carry `?`. */
export const compactSignature = (tool: InventoryTool): string => `${tool.name}(${paramList(tool.inputSchema, 0)})`

const shortDescription = (text: string, max = 80): string => {
  const line = text.replace(/\s+/g, " ").trim()
  const sentence = line.split(/(?<=\.)\s/)[0] ?? line
  return sentence.length <= max ? sentence.replace(/\.$/, "") : `${sentence.slice(0, max - 1).trimEnd()}…`
}

/** One line per tool: `server  tool(signature)  description`. */
export const inventoryLines = (inventory: InventoryData): ReadonlyArray<string> => {
  const width = Math.max(0, ...inventory.servers.map((s) => s.name.length))
  return inventory.servers.flatMap((server) =>
    server.tools.map((tool) => {
      const description = shortDescription(tool.description)
      return `${server.name.padEnd(width)}  ${compactSignature(tool)}${description === "" ? "" : `  ${description}`}`
    })
  )
}

export const runToolsList = (options: {
  readonly inventory: Option.Option<string>
  readonly servers: Option.Option<string>
}) =>
  Effect.gen(function*() {
    const service = yield* Inventory
    for (const line of inventoryLines(service.inventory)) yield* Console.log(line)
    const tools = service.toolModes.length
    yield* Effect.logInfo(
      `${service.source}: ${plural(service.inventory.servers.length, "server")}, ${plural(tools, "tool")}`
    )
  }).pipe(
    (list) =>
      Effect.flatMap(serverListOf(options.servers), (servers) =>
        Effect.provide(
          list,
          Inventory.fromFile(Option.getOrUndefined(options.inventory), { servers: Option.getOrUndefined(servers) })
            .pipe(Layer.provide(StorageLive))
        ))
  )
