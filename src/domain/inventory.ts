/**
 * The tool inventory: MCP servers → tools → name, description, inputSchema (JSON Schema).
 * File format: `{ "servers": [{ "name": "fmp", "tools": [{ "name", "description", "inputSchema" }] }] }`
 * (the shape of data/inventory/finance-mcp.json). What `tools import` records besides (all optional,
 * /work/spec/formats.md "Inventory file"): per server how to start it (`launch`: a stdio command with the
 * NAMES of the environment variables it needs, or an HTTP URL) and its `initialize` `server_info`; per
 * tool `title`, `outputSchema`, `annotations` (`readOnlyHint`...) and `schema_hash`, the hash of its
 * normalized input schema (computed on load; a stored value that disagrees is an error).
 *
 * Real catalogues are messier than that: `decodeInventory` normalizes them first (see
 * `normalizeJsonSchema` and `normalizeToolInput`) and then reports a malformed entry by its path,
 * e.g. `servers[2].tools[4].inputSchema: must be an object`. Pure: no I/O, no JSON Schema validator.
 */
import { Either, Schema } from "effect"
import { schemaHash } from "../skyrl/canonical.js"
import { MAX_JSON_DEPTH, nestsDeeperThan, tooDeepReason } from "../skyrl/depth.js"
import { parseIssues } from "../skyrl/parseIssues.js"
import { wholeJsonFault } from "../skyrl/utf8.js"
import { describeType, isObject, setOwn } from "./json.js"

/** Any JSON value; one named definition in the JSON Schema (inline copies would repeat one `$id`). */
const AnyValue = Schema.Unknown.annotations({ identifier: "JsonValue" })

export const JsonSchemaObject = Schema.Record({ key: Schema.String, value: AnyValue }).annotations({
  // Not Effect's "Expected { readonly [x: string]: JsonValue }, actual true".
  message: (issue) => `must be a JSON Schema object, got ${describeType(issue.actual)}`
})
export type JsonSchemaObject = typeof JsonSchemaObject.Type

/** MCP tool annotations (hints from the server; `readOnlyHint: true` is what lets `verify` run a tool). */
export const ToolAnnotations = Schema.Struct(
  {
    title: Schema.optional(Schema.String),
    readOnlyHint: Schema.optional(Schema.Boolean),
    destructiveHint: Schema.optional(Schema.Boolean),
    idempotentHint: Schema.optional(Schema.Boolean),
    openWorldHint: Schema.optional(Schema.Boolean)
  },
  Schema.Record({ key: Schema.String, value: AnyValue })
)
export type ToolAnnotations = typeof ToolAnnotations.Type

/** Control characters (C0, DEL, C1) and the line and paragraph separators, by name where they have a common one. */
const CONTROL_NAMES: Readonly<Record<number, string>> = {
  0x00: "a NUL",
  0x09: "a tab",
  0x0a: "a line feed",
  0x0d: "a carriage return",
  0x85: "a next-line character",
  0x2028: "a line separator",
  0x2029: "a paragraph separator"
}

const isLineBreaking = (c: number): boolean => c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029

const codePoint = (c: number): string => `U+${c.toString(16).toUpperCase().padStart(4, "0")}`

/** What a name in an inventory names: a server, or one of its tools. */
export type NameKind = "server" | "tool"

/**
 * Why a server's or a tool's name cannot be used, or undefined. Such a name is one line of text wherever it is
 * written (the prompt's tool listing, `server:` and `- tool(...)`; `tools list`; `cassettes stats`; logs) and a
 * field of the cassette key, sha256 of `server \n tool \n params` (a name holding a line feed makes two calls
 * one key), which is hashed as UTF-8 (a lone surrogate has no UTF-8: Node hashes it as U+FFFD, MCPToolEnv
 * cannot hash it at all). So control characters (C0, DEL, C1), the line and paragraph separators (U+2028,
 * U+2029) and lone surrogates are refused. So is `,`: `--servers` and `--allow-side-effects` (and MCPToolEnv's
 * `allow_side_effects` as a string) are comma-separated lists, which could not name such a server or tool (MCP
 * allows it in a server's name, its tool-name guidance asks for none in a tool's). Anything else (spaces, `.`,
 * `/`, non-ASCII letters) is kept. Empty and untrimmed names are refused by the schema before this.
 * The one home of the rule: `ServerName` and `ToolName` apply it on load (but the comma, which `decodeInventory`
 * refuses after them unless it reads an inventory a run kept: `commas`), `tools import` to each tool a server
 * lists, and MCPToolEnv's live mode (`name_fault` in python/skyrl_mcp_env/tools.py, the same rule in Python) to
 * the server names it reads and the tools each server lists.
 */
export const nameFault = (
  name: string,
  kind: NameKind,
  commas: "refused" | "accepted" = "refused"
): string | undefined => {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (isLineBreaking(c)) {
      return `holds ${CONTROL_NAMES[c] ?? "a control character"} (${codePoint(c)} at character ${i}): a ${kind} ` +
        "name is written as one line (the prompt's tool listing, tools list, cassettes stats) and is a field of " +
        "the cassette key (server \\n tool \\n params)"
    }
    if (c === 0x2c && commas === "refused") {
      return `holds a comma (at character ${i}): ` + (kind === "server"
        ? "--servers and --allow-side-effects take comma-separated names, so no list could name this server; " +
          "name it otherwise in the inventory"
        : "--allow-side-effects takes comma-separated names, so no list could name this tool (MCP asks tool names " +
          "to hold none)")
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      if (c <= 0xdbff && (name.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++
      else {
        return `holds a lone surrogate (${codePoint(c)} at character ${i}): no Unicode text, so no UTF-8 for ` +
          "the cassette key"
      }
    }
  }
  return undefined
}

/** What `nameFault` refuses that a JSON Schema pattern can say (a lone surrogate it cannot). */
const NAME_PATTERN = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u2028\\u2029,]*$"

/**
 * A name of `kind`: non-empty, trimmed, usable as one line, in a cassette key and in a comma-separated list. The
 * comma is left to `decodeInventory` (`commaNamed`): an inventory a run kept from before the rule loads with it,
 * and the run's hash of it (`inventoryFingerprint`, which encodes it with this schema) must be computable. The JSON
 * Schema refuses it, as every inventory given to a command does.
 */
const nameSchema = (kind: NameKind, identifier: string) =>
  Schema.NonEmptyTrimmedString.pipe(
    Schema.filter((name) => nameFault(name, kind, "accepted"), {
      identifier,
      description: `A ${kind} name: no control character, line or paragraph separator, comma, or lone surrogate`,
      jsonSchema: { pattern: NAME_PATTERN }
    })
  )

/** A server's name (`nameFault`). */
export const ServerName = nameSchema("server", "ServerName")

/** A tool's name (`nameFault`). */
export const ToolName = nameSchema("tool", "ToolName")

export class InventoryTool extends Schema.Class<InventoryTool>("InventoryTool")({
  name: ToolName,
  title: Schema.optional(Schema.String),
  description: Schema.optionalWith(Schema.String, { default: () => "" }),
  inputSchema: Schema.optionalWith(JsonSchemaObject, { default: () => ({ type: "object", properties: {} }) }),
  outputSchema: Schema.optional(JsonSchemaObject),
  annotations: Schema.optional(ToolAnnotations),
  /** schemaHash(inputSchema) (src/skyrl/canonical.ts); always set after `decodeInventory`. */
  schema_hash: Schema.optional(Schema.String)
}) {}

/** How to start a stdio server: the command, its args, the NAMES of the environment variables it needs. */
export const StdioLaunch = Schema.Struct({
  transport: Schema.Literal("stdio"),
  command: Schema.NonEmptyTrimmedString,
  args: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  env: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  cwd: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
})
export type StdioLaunch = typeof StdioLaunch.Type

/** How to reach a streamable-HTTP server; `headers_env` maps a header name to the NAME of the variable holding its value. */
export const HttpLaunch = Schema.Struct({
  transport: Schema.Literal("http"),
  url: Schema.NonEmptyTrimmedString,
  headers_env: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), {
    default: () => ({})
  })
})
export type HttpLaunch = typeof HttpLaunch.Type

export const LaunchSpec = Schema.Union(StdioLaunch, HttpLaunch)
export type LaunchSpec = typeof LaunchSpec.Type

/** The server's `initialize` answer (serverInfo). */
export const ServerInfo = Schema.Struct(
  { name: Schema.String, version: Schema.String },
  Schema.Record({ key: Schema.String, value: AnyValue })
)
export type ServerInfo = typeof ServerInfo.Type

export class InventoryServer extends Schema.Class<InventoryServer>("InventoryServer")({
  name: ServerName,
  launch: Schema.optional(LaunchSpec),
  server_info: Schema.optional(ServerInfo),
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

/**
 * A tool runs without `--allow-side-effects` only when its server annotates it `readOnlyHint: true`: an
 * inventory's tool, or a live `tools/list` entry (whose annotations are not decoded).
 */
export const isReadOnly = (tool: { readonly annotations?: unknown }): boolean => {
  const annotations = tool.annotations
  return typeof annotations === "object" && annotations !== null &&
    (annotations as { readonly readOnlyHint?: unknown }).readOnlyHint === true
}

/** `name@version` of a server's `initialize` info, as cassettes record it. */
export const serverVersionLabel = (info: ServerInfo | undefined): string | undefined =>
  info === undefined ? undefined : `${info.name}@${info.version}`

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * An inventory that cannot be used. `source` is the file path (or "inventory" for inline values),
 * `entry` the offending entry such as `servers[2].tools[4].inputSchema` (empty for the whole file).
 */
export class InventoryError extends Schema.TaggedError<InventoryError>()("InventoryError", {
  source: Schema.String,
  entry: Schema.String,
  reason: Schema.String,
  /** A flag's value the inventory refuses (an unknown `--servers` name): a usage error, exit 2. */
  usage: Schema.optional(Schema.Boolean)
}) {
  get exitCode(): number {
    return this.usage === true ? 2 : 1
  }
  override get message(): string {
    return [this.source, this.entry, this.reason].filter((x) => x !== "").join(": ")
  }
}

/** The server of the tools a prompt's own `<tools>` block lists (`enrich --inventory-from-prompt`). */
export const PROMPT_SERVER = "prompt"

/** One problem with one plan step. `path` is e.g. `params/limit`, `params`, `tool` or `server`. */
export interface StepIssue {
  readonly step: number
  readonly server: string
  readonly tool: string
  readonly path: string
  readonly message: string
}

/** `step 3 polygon/polygon_get_aggs params/ticker: missing required param`. */
export const formatIssue = (issue: StepIssue): string => {
  const where = issue.step > 0 ? `step ${issue.step}` : "plan"
  const tool = issue.server === "" && issue.tool === "" ? "" : ` ${issue.server}/${issue.tool}`
  return `${where}${tool} ${issue.path}: ${issue.message}`
}

// ---------------------------------------------------------------------------------------------
// Normalization of real catalogues

type Json = Record<string, unknown>

/** Type names used by Hermes/Glaive/BFCL-style catalogues, mapped to JSON Schema types. */
const TYPE_ALIASES: Record<string, string> = {
  dict: "object",
  list: "array",
  tuple: "array",
  str: "string",
  int: "integer",
  float: "number",
  double: "number",
  bool: "boolean"
}

const SCHEMA_MAP_KEYWORDS = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]
const SCHEMA_KEYWORDS = [
  "additionalProperties",
  "items",
  "additionalItems",
  "contains",
  "propertyNames",
  "not",
  "if",
  "then",
  "else",
  "unevaluatedProperties",
  "unevaluatedItems"
]
const SCHEMA_ARRAY_KEYWORDS = ["anyOf", "oneOf", "allOf", "prefixItems"]

const normalizeType = (type: unknown): unknown => {
  if (typeof type === "string") return TYPE_ALIASES[type.toLowerCase()] ?? type
  if (Array.isArray(type)) {
    const mapped = type.map(normalizeType)
    return mapped.filter((t, i) => mapped.indexOf(t) === i)
  }
  return type
}

/**
 * Makes a JSON Schema from a real catalogue usable by a standard validator, recursively:
 * - Hermes-style type names (`dict`, `list`, `str`, `int`, `float`, `bool`) → JSON Schema names;
 *   `"type": "any"` is dropped (any value);
 * - a missing `type` becomes `object` when `properties` exist (`array` when `items` exist);
 * - `$schema` keys are removed (they name drafts the validator may not load);
 * - draft-3 style `"required": true` inside a property moves into the parent's `required` list.
 * Values of `enum`, `const`, `default` and `examples` are data and are left alone.
 */
export const normalizeJsonSchema = (schema: unknown): unknown => {
  if (Array.isArray(schema)) return schema.map(normalizeJsonSchema)
  if (!isObject(schema)) return schema
  const out: Json = {}
  for (const [key, value] of Object.entries(schema)) {
    if (key === "$schema") continue
    if (key === "type") {
      if (value === "any") continue
      out.type = normalizeType(value)
    } else if (SCHEMA_MAP_KEYWORDS.includes(key) && isObject(value)) {
      const map: Json = {}
      for (const [name, sub] of Object.entries(value)) setOwn(map, name, normalizeJsonSchema(sub))
      out[key] = map
    } else if ((SCHEMA_KEYWORDS.includes(key) || SCHEMA_ARRAY_KEYWORDS.includes(key)) && typeof value === "object") {
      out[key] = normalizeJsonSchema(value)
    } else {
      setOwn(out, key, value)
    }
  }
  if (isObject(out.properties)) {
    const lifted: Array<string> = []
    for (const [name, sub] of Object.entries(out.properties)) {
      if (isObject(sub) && typeof sub.required === "boolean") {
        if (sub.required) lifted.push(name)
        const { required: _ignored, ...rest } = sub
        setOwn(out.properties as Json, name, rest)
      }
    }
    if (lifted.length > 0) {
      const existing = Array.isArray(out.required) ? out.required : []
      out.required = [...existing, ...lifted.filter((n) => !existing.includes(n))]
    }
  }
  if (out.type === undefined && out.anyOf === undefined && out.oneOf === undefined && out.$ref === undefined) {
    if (isObject(out.properties)) out.type = "object"
    else if (out.items !== undefined) out.type = "array"
  }
  return out
}

/**
 * One tool entry as catalogues write it: MCP (`inputSchema`), Hermes/OpenAI function (`parameters`),
 * Anthropic (`input_schema`), or an OpenAI tool wrapper `{ "type": "function", "function": {...} }`.
 * Returns the MCP shape with a normalized schema, keeping what `tools/list` gives besides (title,
 * outputSchema, annotations) and a stored schema_hash; other keys are dropped.
 * A value that is not a tool object is returned unchanged so that decoding reports it.
 */
export const normalizeToolInput = (tool: unknown): unknown => {
  if (!isObject(tool)) return tool
  const t = tool.type === "function" && isObject(tool.function) ? tool.function : tool
  const schema = t.inputSchema ?? t.parameters ?? t.input_schema
  const out: Json = { name: t.name }
  if (t.title !== undefined && t.title !== null) out.title = t.title
  if (t.description !== undefined && t.description !== null) out.description = t.description
  if (schema !== undefined && schema !== null) {
    const normalized = normalizeJsonSchema(schema)
    // MCP input schemas are objects: a root without `type` (e.g. `{}`) means an object.
    out.inputSchema = isObject(normalized) && normalized.type === undefined && normalized.$ref === undefined
      ? { type: "object", ...normalized }
      : normalized
  }
  for (const key of ["outputSchema", "annotations", "schema_hash"] as const) {
    if (t[key] !== undefined && t[key] !== null) out[key] = t[key]
  }
  return out
}

const normalizeInventoryInput = (raw: unknown): unknown => {
  if (!isObject(raw) || !Array.isArray(raw.servers)) return raw
  return {
    servers: raw.servers.map((server) =>
      isObject(server) && Array.isArray(server.tools)
        ? {
          name: server.name,
          ...(server.launch === undefined || server.launch === null ? {} : { launch: server.launch }),
          ...(server.server_info === undefined || server.server_info === null
            ? {}
            : { server_info: server.server_info }),
          tools: server.tools.map(normalizeToolInput)
        }
        : server
    )
  }
}

/** The tool with its schema_hash set, or the reason a stored one is wrong. */
const withSchemaHash = (tool: InventoryTool): Either.Either<InventoryTool, string> => {
  const hash = schemaHash(tool.inputSchema)
  if (tool.schema_hash === hash) return Either.right(tool)
  if (tool.schema_hash !== undefined) {
    return Either.left(
      `is ${tool.schema_hash} but the input schema hashes to ${hash}: the schema was edited after import; ` +
        "re-import the server, or remove schema_hash to have it computed"
    )
  }
  return Either.right(new InventoryTool({ ...tool, schema_hash: hash }, { disableValidation: true }))
}

const decodeRaw = Schema.decodeUnknownEither(Inventory, { errors: "all", onExcessProperty: "ignore" })

/**
 * How an inventory is read. `commas: "accepted"` is for an inventory a run kept (its `inventory.json`, or the file
 * its records name): one made before 2026-12-02 may name a server or tool with a comma (`commaNamed`), and
 * refusing it would strand the run (renamed, it is not the inventory the run hashed). Default: refused.
 */
export interface DecodeOptions {
  readonly commas?: "refused" | "accepted"
}

/**
 * Normalizes then decodes an inventory value (parsed JSON), and checks what the schema cannot:
 * unique server names, unique tool names per server, object input schemas, no comma in a name (`DecodeOptions`).
 * `source` names the file in errors.
 */
export const decodeInventory = (
  raw: unknown,
  source = "inventory",
  options?: DecodeOptions
): Either.Either<Inventory, InventoryError> => {
  if (!isObject(raw)) {
    return Either.left(
      new InventoryError({ source, entry: "", reason: "must be a JSON object with a \"servers\" array" })
    )
  }
  if (!Array.isArray(raw.servers)) {
    return Either.left(new InventoryError({ source, entry: "servers", reason: "must be an array of servers" }))
  }
  const decoded = decodeRaw(normalizeInventoryInput(raw))
  if (Either.isLeft(decoded)) {
    const first = parseIssues(decoded.left)[0]
    return Either.left(
      new InventoryError({ source, entry: first?.path ?? "", reason: first?.message ?? "invalid inventory" })
    )
  }
  const comma = options?.commas === "accepted" ? undefined : commaNamed(decoded.right)[0]
  if (comma !== undefined) {
    const reason = nameFault(comma.name, comma.kind) ?? "holds a comma"
    return Either.left(new InventoryError({ source, entry: comma.entry, reason }))
  }
  return checkInventory(decoded.right, source)
}

/** A server's or tool's name holding a comma, by its entry (`servers[1].name`, `servers[0].tools[2].name`). */
export interface CommaName {
  readonly entry: string
  readonly kind: NameKind
  readonly name: string
}

/** The names holding a comma (`nameFault`), in the file's order: each server's, then its tools'. */
export const commaNamed = (inventory: Inventory): ReadonlyArray<CommaName> =>
  inventory.servers.flatMap((server, i) => [
    ...(server.name.includes(",") ? [{ entry: `servers[${i}].name`, kind: "server" as const, name: server.name }] : []),
    ...server.tools.flatMap((tool, j) =>
      tool.name.includes(",")
        ? [{ entry: `servers[${i}].tools[${j}].name`, kind: "tool" as const, name: tool.name }]
        : []
    )
  ])

/** Unique names, object input schemas, schema hashes (set where absent, checked where stored). */
const checkInventory = (inventory: Inventory, source: string): Either.Either<Inventory, InventoryError> => {
  const serverNames = new Set<string>()
  const servers: Array<InventoryServer> = []
  for (const [i, server] of inventory.servers.entries()) {
    if (serverNames.has(server.name)) {
      return Either.left(
        new InventoryError({ source, entry: `servers[${i}].name`, reason: `duplicate server name "${server.name}"` })
      )
    }
    serverNames.add(server.name)
    const toolNames = new Set<string>()
    for (const [j, tool] of server.tools.entries()) {
      const entry = `servers[${i}].tools[${j}]`
      if (toolNames.has(tool.name)) {
        return Either.left(
          new InventoryError({
            source,
            entry: `${entry}.name`,
            reason: `duplicate tool name "${tool.name}" on server "${server.name}"`
          })
        )
      }
      toolNames.add(tool.name)
      const type = tool.inputSchema.type
      if (type !== undefined && type !== "object" && !(Array.isArray(type) && type.includes("object"))) {
        return Either.left(
          new InventoryError({
            source,
            entry: `${entry}.inputSchema.type`,
            reason: `a tool's input schema must describe an object, got type ${JSON.stringify(type)}`
          })
        )
      }
    }
    const tools: Array<InventoryTool> = []
    for (const [j, tool] of server.tools.entries()) {
      const hashed = withSchemaHash(tool)
      if (Either.isLeft(hashed)) {
        return Either.left(
          new InventoryError({ source, entry: `servers[${i}].tools[${j}].schema_hash`, reason: hashed.left })
        )
      }
      tools.push(hashed.right)
    }
    servers.push(new InventoryServer({ ...server, tools }, { disableValidation: true }))
  }
  const clash = qualifiedNameClash(inventory)
  if (clash !== undefined) return Either.left(new InventoryError({ source, ...clash }))
  return Either.right(new Inventory({ servers }, { disableValidation: true }))
}

/**
 * Two tools whose `server.tool` names are the same text (server `a.b`'s tool `c` and server `a`'s tool `b.c`):
 * that is a tool's call name when the prompt shows two servers' tools of its name (src/skyrl/promptTools.ts),
 * and how `--allow-side-effects` and MCPToolEnv's `allow_side_effects` name it, so one such name would stand
 * for both tools. Only a server name holding a `.` can make it; other dotted names are kept.
 */
const qualifiedNameClash = (inventory: Inventory): { entry: string; reason: string } | undefined => {
  if (!inventory.servers.some((s) => s.name.includes("."))) return undefined
  const seen = new Map<string, { server: string; tool: string; entry: string }>()
  for (const [i, server] of inventory.servers.entries()) {
    for (const [j, tool] of server.tools.entries()) {
      const name = `${server.name}.${tool.name}`
      const entry = `servers[${i}].tools[${j}]`
      const other = seen.get(name)
      if (other === undefined) {
        seen.set(name, { server: server.name, tool: tool.name, entry })
        continue
      }
      return {
        entry: `servers[${i}].name`,
        reason: `server "${server.name}" and its tool "${tool.name}" (${entry}) make the name "${name}", as ` +
          `server "${other.server}" and its tool "${other.tool}" (${other.entry}) do: as a call name (a tool ` +
          "name two servers share is shown as server.tool) or an --allow-side-effects entry it would stand for " +
          "both tools; rename one of these servers"
      }
    }
  }
  return undefined
}

/** Parses inventory file text (JSON) and decodes it; errors name `source`. */
export const parseInventoryText = (
  text: string,
  source: string,
  options?: DecodeOptions
): Either.Either<Inventory, InventoryError> => {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    // Said to be the inventory's fault: a dataset given as --inventory read as the dataset being broken.
    const reason = `not a readable inventory: ${wholeJsonFault(text, e)}`
    return Either.left(new InventoryError({ source, entry: "", reason }))
  }
  if (nestsDeeperThan(raw, MAX_JSON_DEPTH)) {
    return Either.left(new InventoryError({ source, entry: "", reason: tooDeepReason("the inventory") }))
  }
  return decodeInventory(raw, source, options)
}

/** Splits `a,b , c` into names (empty parts dropped). */
export const parseServerList = (text: string): ReadonlyArray<string> =>
  text.split(",").map((s) => s.trim()).filter((s) => s !== "")

/** Keeps only the named servers (in the inventory's order); an unknown name is an error listing the known ones. */
export const selectServers = (
  inventory: Inventory,
  names: ReadonlyArray<string> | undefined,
  source = "inventory"
): Either.Either<Inventory, InventoryError> => {
  if (names === undefined || names.length === 0) return Either.right(inventory)
  const known = inventory.servers.map((s) => s.name)
  const unknown = names.filter((n) => !known.includes(n))
  if (unknown.length > 0) {
    return Either.left(
      new InventoryError({
        source,
        entry: "",
        usage: true,
        reason: `unknown server${unknown.length > 1 ? "s" : ""} ${
          unknown.map((n) => `"${n}"`).join(", ")
        } in --servers (known: ${known.join(", ")})`
      })
    )
  }
  return Either.right(new Inventory({ servers: inventory.servers.filter((s) => names.includes(s.name)) }))
}

/** Number of tools over all servers. */
export const toolCount = (inventory: Inventory): number => inventory.servers.reduce((n, s) => n + s.tools.length, 0)
