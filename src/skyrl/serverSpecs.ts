/**
 * `skyrl tools import` arguments → MCP server specs (pure).
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
import type { McpServerSpec } from "../services/McpClient.js"

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
const PAIRED_HTTP = /^([A-Za-z0-9_.-]+)=(https?:\/\/\S+)$/i

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
      let url: URL
      try {
        url = new URL(p.value.trim())
      } catch {
        return Either.left(`--http for "${name}": not a URL: ${JSON.stringify(p.value)}`)
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        return Either.left(`--http for "${name}": not an http(s) URL: ${JSON.stringify(p.value)}`)
      }
      specs.push({ _tag: "http", name, url: url.toString() })
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
