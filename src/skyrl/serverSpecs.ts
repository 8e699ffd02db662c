/**
 * MCP server specs (pure): `skyrl tools import` arguments, inventory launch specs and `mcpServers`
 * config files → specs, and specs → the launch spec an inventory records.
 *
 * Two ways to name a server:
 * - the pairing form, one option per server: `--stdio NAME=COMMAND ARGS...`, `--http NAME=URL`;
 * - `--stdio "COMMAND ARGS..." --name NAME` / `--http URL --name NAME`. The CLI parser returns each
 *   repeated option as its own list and does not keep the order across different options, so the
 *   `--name` values are matched, in order, to the servers given without `NAME=`; that is unambiguous
 *   only while those servers are all --stdio or all --http. Mixing unnamed --stdio and --http servers
 *   is rejected with a hint to use the pairing form.
 * The command line is split like a shell would split words (quotes and backslashes), without running
 * a shell: no variables, globs or pipes.
 */
import { Either } from "effect"
import { isAbsolute, resolve } from "node:path"
import type { LaunchSpec } from "../domain/inventory.js"
import { isObject, stripJsonc } from "../domain/json.js"
import type { McpServerSpec } from "../services/McpClient.js"
import { firstUtf8Fault } from "./utf8.js"

/** Splits a command line into words: whitespace separates, '...' is literal, "..." and \ escape. */
export const splitCommandLine = (text: string): Either.Either<ReadonlyArray<string>, string> => {
  const words: Array<string> = []
  let current = ""
  let inWord = false
  let quote: "'" | "\"" | undefined
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote === "'") {
      if (c === "'") quote = undefined
      else current += c
    } else if (quote === "\"") {
      if (c === "\"") quote = undefined
      else if (c === "\\" && i + 1 < text.length && "\"\\$`".includes(text[i + 1]!)) current += text[++i]
      else current += c
    } else if (c === "'" || c === "\"") {
      quote = c
      inWord = true
    } else if (c === "\\" && i + 1 < text.length) {
      current += text[++i]
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(current)
      current = ""
      inWord = false
    } else {
      current += c
      inWord = true
    }
  }
  if (quote !== undefined) return Either.left(`unterminated ${quote} quote in ${JSON.stringify(text)}`)
  if (inWord) words.push(current)
  return Either.right(words)
}

const NAME = /^[A-Za-z0-9_.-]+$/
const PAIRED_STDIO = /^([A-Za-z0-9_.-]+)=([\s\S]*)$/
// Any NAME=VALUE: an unnamed URL cannot match (its scheme ends in ":"), and a VALUE that is no
// http(s) URL is reported as such, not as a bad name.
const PAIRED_HTTP = /^([A-Za-z0-9_.-]+)=([\s\S]*)$/

/** The one check of a streamable-HTTP server's URL: absolute, http: or https:. */
const isHttpUrl = (text: string): boolean => {
  try {
    const { protocol } = new URL(text)
    return protocol === "http:" || protocol === "https:"
  } catch {
    return false
  }
}

interface Pending {
  readonly kind: "stdio" | "http"
  readonly name: string | undefined
  readonly value: string
}

/** Pairs the repeated --stdio, --http and --name values into server specs (stdio servers first). */
export const pairServerArgs = (
  stdio: ReadonlyArray<string>,
  http: ReadonlyArray<string>,
  names: ReadonlyArray<string>
): Either.Either<ReadonlyArray<McpServerSpec>, string> => {
  const pending: Array<Pending> = [
    ...stdio.map((value): Pending => {
      const m = PAIRED_STDIO.exec(value.trim())
      return m === null ? { kind: "stdio", name: undefined, value } : { kind: "stdio", name: m[1], value: m[2]! }
    }),
    ...http.map((value): Pending => {
      const m = PAIRED_HTTP.exec(value.trim())
      return m === null ? { kind: "http", name: undefined, value } : { kind: "http", name: m[1], value: m[2]! }
    })
  ]
  if (pending.length === 0) return Either.left("give at least one server with --stdio or --http")
  const unnamed = pending.filter((p) => p.name === undefined)
  if (unnamed.some((p) => p.kind === "stdio") && unnamed.some((p) => p.kind === "http")) {
    return Either.left(
      "both --stdio and --http servers were given without a name, and the order of options of different kinds " +
        "is not kept: name them with the pairing form --stdio NAME=\"COMMAND ARGS\" / --http NAME=URL"
    )
  }
  if (names.length !== unnamed.length) {
    // `--stdio "bad name=cmd"`: a pairing form whose name is not valid reads as a server without a name.
    const misnamed = unnamed.find((p) => /^[^=/\\]{1,64}=/.test(p.value.trim()))
    if (misnamed !== undefined && names.length === 0) {
      const name = misnamed.value.trim().split("=", 1)[0]!
      return Either.left(
        `invalid server name ${JSON.stringify(name)} in --${misnamed.kind} ${JSON.stringify(misnamed.value)} ` +
          "(a NAME= may hold letters, digits, _ . - only)"
      )
    }
    return Either.left(
      `${unnamed.length} server${unnamed.length === 1 ? "" : "s"} given without NAME= but ${names.length} --name ` +
        "value" + (names.length === 1 ? "" : "s") + ": give one --name after each such server, or use NAME=..."
    )
  }
  let next = 0
  const specs: Array<McpServerSpec> = []
  const seen = new Set<string>()
  for (const p of pending) {
    const name = (p.name ?? names[next++]!).trim()
    if (!NAME.test(name)) return Either.left(`invalid server name ${JSON.stringify(name)} (use letters, digits, _ . -)`)
    if (seen.has(name)) return Either.left(`server name "${name}" is given twice`)
    seen.add(name)
    if (p.kind === "http") {
      if (!isHttpUrl(p.value.trim())) {
        return Either.left(
          `--http for "${name}": not an http(s) URL: ${JSON.stringify(p.value)} (e.g. http://127.0.0.1:3000/mcp)`
        )
      }
      specs.push({ _tag: "http", name, url: new URL(p.value.trim()).toString() })
    } else {
      const words = splitCommandLine(p.value)
      if (Either.isLeft(words)) return Either.left(`--stdio for "${name}": ${words.left}`)
      const [command, ...args] = words.right
      if (command === undefined) return Either.left(`--stdio for "${name}": empty command`)
      specs.push({ _tag: "stdio", name, command, args })
    }
  }
  return Either.right(specs)
}

// ---------------------------------------------------------------------------------------------
// Environment references, launch specs, `mcpServers` config files

const REFERENCE = /\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}/g

/** The variable a value names when it is exactly `${VAR}` or `${env:VAR}` (a value that can be recorded). */
const referenceOf = (value: string): string | undefined => /^\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(value)?.[1]

/**
 * Replaces `${VAR}` and `${env:VAR}` in each value with the variable's value from `env`. Fails naming
 * every variable that is not set (the values themselves never appear in a message).
 */
export const resolveReferences = (
  values: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string | undefined>>
): Either.Either<Record<string, string>, string> => {
  const missing = new Set<string>()
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(values)) {
    out[key] = value.replace(REFERENCE, (_, name: string) => {
      const v = env[name]
      if (v === undefined || v === "") missing.add(name)
      return v ?? ""
    })
  }
  if (missing.size === 0) return Either.right(out)
  const names = [...missing].map((n) => `$${n}`).join(", ")
  return Either.left(`environment variable${missing.size === 1 ? "" : "s"} ${names} not set (needed by the server)`)
}

/** The launch spec an inventory records for a server spec: env variable NAMES only, never values. */
export const launchOfSpec = (spec: McpServerSpec): LaunchSpec => {
  if (spec._tag === "http") {
    const headersEnv: Record<string, string> = {}
    for (const [header, value] of Object.entries(spec.headers ?? {})) {
      const variable = referenceOf(value)
      if (variable !== undefined) headersEnv[header] = variable
    }
    return { transport: "http", url: spec.url, headers_env: headersEnv }
  }
  return {
    transport: "stdio",
    command: spec.command,
    args: [...spec.args],
    env: Object.keys(spec.env ?? {}),
    cwd: spec.cwd ?? null
  }
}

/** Headers of an HTTP spec whose values the inventory cannot record (not a plain `${VAR}`). */
export const unrecordedHeaders = (spec: McpServerSpec): ReadonlyArray<string> =>
  spec._tag === "http"
    ? Object.entries(spec.headers ?? {}).filter(([, v]) => referenceOf(v) === undefined).map(([h]) => h)
    : []

/**
 * Variables of a stdio spec's `env` whose values the inventory does not record: it keeps the name
 * only, and a later start reads that variable from the environment, so only `KEY: "${KEY}"` is kept whole.
 */
export const unrecordedEnv = (spec: McpServerSpec): ReadonlyArray<string> =>
  spec._tag === "stdio"
    ? Object.entries(spec.env ?? {}).filter(([k, v]) => referenceOf(v) !== k).map(([k]) => k)
    : []

/**
 * A word of a stdio command line that is a relative path (the value of a `--flag=VALUE` word too): it
 * is `.` or `..` or starts with `./` or `../`, or it does not start with `-`, is not absolute and names
 * an existing file or directory in `dir`.
 */
const isRelativePath = (word: string, dir: string, exists: (path: string) => boolean): boolean => {
  const path = word.replace(/^-[^=]*=/, "")
  if (/^\.\.?(\/|$)/.test(path)) return true
  return path !== "" && !path.startsWith("-") && !isAbsolute(path) && exists(resolve(dir, path))
}

/**
 * A spec as imported from the working directory `dir` (absolute), so that its launch spec starts the
 * server there again: a stdio spec whose command or args hold a relative path gets `cwd: dir`, and a
 * relative `cwd` is resolved against `dir`.
 */
export const anchorSpec = (spec: McpServerSpec, dir: string, exists: (path: string) => boolean): McpServerSpec => {
  if (spec._tag === "http") return spec
  if (spec.cwd !== undefined) return { ...spec, cwd: resolve(dir, spec.cwd) }
  return [spec.command, ...spec.args].some((w) => isRelativePath(w, dir, exists)) ? { ...spec, cwd: dir } : spec
}

/** The server spec of an inventory's launch spec: the named variables are read from the environment at start. */
export const specOfLaunch = (name: string, launch: LaunchSpec): McpServerSpec =>
  launch.transport === "http"
    ? {
      _tag: "http",
      name,
      url: launch.url,
      headers: Object.fromEntries(Object.entries(launch.headers_env).map(([h, v]) => [h, `\${${v}}`]))
    }
    : {
      _tag: "stdio",
      name,
      command: launch.command,
      args: launch.args,
      ...(launch.cwd === null ? {} : { cwd: launch.cwd }),
      ...(launch.env.length === 0 ? {} : { env: Object.fromEntries(launch.env.map((v) => [v, `\${${v}}`])) })
    }

const isStringRecord = (u: unknown): u is Record<string, string> =>
  isObject(u) && Object.values(u).every((v) => typeof v === "string")

const configEntry = (name: string, entry: unknown): Either.Either<McpServerSpec | undefined, string> => {
  if (!isObject(entry)) return Either.left("must be an object with \"command\" or \"url\"")
  // `"disabled": "true"` read as enabled would start a server the file means to leave out.
  if (entry.disabled !== undefined && typeof entry.disabled !== "boolean") {
    return Either.left(`disabled: must be true or false (a JSON boolean), not ${JSON.stringify(entry.disabled)}`)
  }
  if (entry.disabled === true) return Either.right(undefined)
  if (!NAME.test(name)) return Either.left("invalid server name (use letters, digits, _ . -)")
  const type = entry.type ?? entry.transport
  if (type === "sse") {
    return Either.left("the SSE transport is not supported (deprecated in MCP): use the server's streamable HTTP URL")
  }
  if (entry.env !== undefined && !isStringRecord(entry.env)) return Either.left("env: must map names to strings")
  if (entry.headers !== undefined && !isStringRecord(entry.headers)) {
    return Either.left("headers: must map names to strings")
  }
  if (entry.command !== undefined && entry.url !== undefined) {
    return Either.left(
      "has both \"command\" (a stdio server) and \"url\" (a streamable-HTTP server), so which to start is " +
        "ambiguous: keep one"
    )
  }
  if (typeof entry.url === "string") {
    if (!isHttpUrl(entry.url)) return Either.left(`url: not an http(s) URL: ${JSON.stringify(entry.url)}`)
    return Either.right({ _tag: "http", name, url: entry.url, ...(entry.headers ? { headers: entry.headers } : {}) })
  }
  if (typeof entry.command !== "string" || entry.command.trim() === "") {
    return Either.left("needs \"command\" (a stdio server) or \"url\" (a streamable-HTTP server)")
  }
  if (entry.args !== undefined && !(Array.isArray(entry.args) && entry.args.every((a) => typeof a === "string"))) {
    return Either.left("args: must be a list of strings")
  }
  if (entry.cwd !== undefined && typeof entry.cwd !== "string") return Either.left("cwd: must be a string")
  return Either.right({
    _tag: "stdio",
    name,
    command: entry.command,
    args: (entry.args ?? []) as ReadonlyArray<string>,
    ...(entry.cwd === undefined ? {} : { cwd: entry.cwd }),
    ...(entry.env === undefined ? {} : { env: entry.env })
  })
}

/**
 * Server specs from the `mcpServers` JSON that MCP clients use (Claude Desktop, Cursor; VS Code's
 * `servers` key too): `{"mcpServers": {"fs": {"command", "args", "env", "cwd"}, "docs": {"url",
 * "headers"}}}`. Comments and trailing commas are allowed (JSONC, as VS Code writes `mcp.json`).
 * Entries with `"disabled": true` are left out (a `disabled` that is not a boolean is an error). An entry
 * with both `command` and `url` is an error (ambiguous). Errors name the entry.
 */
export const parseServersConfig = (text: string): Either.Either<ReadonlyArray<McpServerSpec>, string> => {
  let raw: unknown
  try {
    raw = JSON.parse(stripJsonc(text))
  } catch (e) {
    return Either.left(
      firstUtf8Fault(text) ?? `not valid JSON (comments and trailing commas allowed): ${(e as Error).message}`
    )
  }
  const servers = isObject(raw) ? raw.mcpServers ?? raw.servers : undefined
  if (!isObject(servers)) {
    return Either.left(`must be a JSON object with an "mcpServers" object (server name -> launch)`)
  }
  const specs: Array<McpServerSpec> = []
  for (const [name, entry] of Object.entries(servers)) {
    const spec = configEntry(name, entry)
    if (Either.isLeft(spec)) return Either.left(`mcpServers.${name}: ${spec.left}`)
    if (spec.right !== undefined) specs.push(spec.right)
  }
  return Either.right(specs)
}

/**
 * How to start each server of an inventory: a spec from the servers config (given on the command line,
 * so it wins), else the inventory's own launch spec. `missing` names the servers with neither.
 */
export const specsForInventory = (
  servers: ReadonlyArray<{ readonly name: string; readonly launch?: LaunchSpec | undefined }>,
  configured: ReadonlyArray<McpServerSpec>
): { readonly specs: ReadonlyArray<McpServerSpec>; readonly missing: ReadonlyArray<string> } => {
  const specs: Array<McpServerSpec> = []
  const missing: Array<string> = []
  for (const server of servers) {
    const spec = configured.find((s) => s.name === server.name) ??
      (server.launch === undefined ? undefined : specOfLaunch(server.name, server.launch))
    if (spec === undefined) missing.push(server.name)
    else specs.push(spec)
  }
  return { specs, missing }
}
