/**
 * Tool-result cassettes (pure): what `skyrl verify` records and MCPToolEnv replays
 * (/work/spec/formats.md "Tool-result cassettes"). A directory holds one `cassettes.jsonl`; each line is
 * one tool call's result under `callKey(server, tool, params)` (src/skyrl/canonical.ts). A reader keeps
 * the first line of each key and ignores a torn last line (a write cut short by a crash).
 */
import { isObject } from "../domain/json.js"
import { callKey } from "./canonical.js"

export const CASSETTE_FILE = "cassettes.jsonl"

export interface CassetteResult {
  readonly content: ReadonlyArray<unknown>
  readonly structuredContent: Readonly<Record<string, unknown>> | null
  readonly isError: boolean
}

export interface CassetteEntry {
  readonly key: string
  readonly server: string
  readonly tool: string
  readonly params: Readonly<Record<string, unknown>>
  readonly result: CassetteResult
  readonly duration_ms: number
  /** `name@version` from the server's `initialize` answer; null when it gave none. */
  readonly server_version: string | null
  /** ISO 8601 time of the call. */
  readonly recorded_at: string
  /** True when the call ran with derived params' illustrative values. */
  readonly illustrative: boolean
}

export const makeEntry = (call: Omit<CassetteEntry, "key">): CassetteEntry => ({
  key: callKey(call.server, call.tool, call.params),
  ...call
})

/** One JSON line (with its newline), keys in the documented order. */
export const cassetteLine = (e: CassetteEntry): string =>
  JSON.stringify({
    key: e.key,
    server: e.server,
    tool: e.tool,
    params: e.params,
    result: { content: e.result.content, structuredContent: e.result.structuredContent, isError: e.result.isError },
    duration_ms: e.duration_ms,
    server_version: e.server_version,
    recorded_at: e.recorded_at,
    illustrative: e.illustrative
  }) + "\n"

const asEntry = (u: unknown): CassetteEntry | undefined =>
  isObject(u) && typeof u.key === "string" && typeof u.server === "string" && typeof u.tool === "string" &&
    isObject(u.result)
    ? u as unknown as CassetteEntry
    : undefined

const entryOf = (line: string): CassetteEntry | undefined => {
  try {
    return asEntry(JSON.parse(line))
  } catch {
    return undefined
  }
}

/** The counts of a store's lines (`cassetteReader`). */
export interface CassetteCounts {
  readonly lines: number
  /** Lines whose key an earlier line already had. */
  readonly duplicates: number
  /** 1-based numbers of lines that are not entries (a torn last line is not counted here). */
  readonly invalid: ReadonlyArray<number>
  /** The last line was cut short (no newline, not JSON). */
  readonly torn: boolean
}

/**
 * Reads a store one line at a time (`line`, without its line end), for a caller that streams the file:
 * `onEntry` gets the first entry of each key, in file order, and its key is added to `seen`; `done(endsOpen)`
 * gives the counts (`endsOpen`: the text ends without a newline, so a last line that is not an entry was
 * cut short: `torn`, not `invalid`).
 */
export const cassetteReader = (onEntry: (entry: CassetteEntry) => void, seen: Set<string> = new Set()) => {
  const invalid: Array<number> = []
  let duplicates = 0
  let lines = 0
  let lineNo = 0
  let lastInvalid = false
  return {
    line: (raw: string): void => {
      lineNo++
      lastInvalid = false
      if (raw.trim() === "") return
      const entry = entryOf(raw)
      if (entry === undefined) {
        invalid.push(lineNo)
        lastInvalid = true
        return
      }
      lines++
      if (seen.has(entry.key)) duplicates++
      else {
        seen.add(entry.key)
        onEntry(entry)
      }
    },
    done: (endsOpen: boolean): CassetteCounts => {
      const torn = endsOpen && lastInvalid
      return { lines, duplicates, invalid: torn ? invalid.slice(0, -1) : invalid, torn }
    }
  }
}

export interface ToolStats {
  readonly server: string
  readonly tool: string
  readonly entries: number
  readonly errors: number
  readonly illustrative: number
  readonly meanMs: number
  readonly maxMs: number
}

export interface CassetteStats {
  readonly file: string
  readonly bytes: number
  readonly entries: number
  readonly lines: number
  readonly duplicates: number
  readonly invalid: ReadonlyArray<number>
  readonly torn: boolean
  readonly errors: number
  readonly illustrative: number
  readonly serverVersions: Readonly<Record<string, ReadonlyArray<string>>>
  readonly firstRecorded: string | null
  readonly lastRecorded: string | null
  readonly tools: ReadonlyArray<ToolStats>
}

/**
 * The stats of a store as its entries come (`add`, the first entry of each key, as `cassetteReader` gives
 * them): counts per tool, error and illustrative results, server versions, time range.
 */
export const cassetteStatsCollector = () => {
  const tools = new Map<
    string,
    { server: string; tool: string; n: number; errors: number; ill: number; sum: number; max: number }
  >()
  const versions = new Map<string, Set<string>>()
  let first: string | null = null
  let last: string | null = null
  let entries = 0
  const add = (e: CassetteEntry): void => {
    entries++
    const id = `${e.server}\u0000${e.tool}`
    const t = tools.get(id) ?? { server: e.server, tool: e.tool, n: 0, errors: 0, ill: 0, sum: 0, max: 0 }
    t.n++
    if (e.result.isError === true) t.errors++
    if (e.illustrative === true) t.ill++
    const ms = typeof e.duration_ms === "number" ? e.duration_ms : 0
    t.sum += ms
    t.max = Math.max(t.max, ms)
    tools.set(id, t)
    const v = versions.get(e.server) ?? new Set<string>()
    if (typeof e.server_version === "string") v.add(e.server_version)
    versions.set(e.server, v)
    if (typeof e.recorded_at === "string") {
      if (first === null || e.recorded_at < first) first = e.recorded_at
      if (last === null || e.recorded_at > last) last = e.recorded_at
    }
  }
  const stats = (file: string, bytes: number, counts: CassetteCounts): CassetteStats => {
    const list = [...tools.values()].sort((a, b) => a.server.localeCompare(b.server) || a.tool.localeCompare(b.tool))
    return {
      file,
      bytes,
      entries,
      lines: counts.lines,
      duplicates: counts.duplicates,
      invalid: counts.invalid,
      torn: counts.torn,
      errors: list.reduce((n, t) => n + t.errors, 0),
      illustrative: list.reduce((n, t) => n + t.ill, 0),
      serverVersions: Object.fromEntries([...versions].map(([s, v]) => [s, [...v].sort()])),
      firstRecorded: first,
      lastRecorded: last,
      tools: list.map((t) => ({
        server: t.server,
        tool: t.tool,
        entries: t.n,
        errors: t.errors,
        illustrative: t.ill,
        meanMs: t.n === 0 ? 0 : Math.round(t.sum / t.n),
        maxMs: t.max
      }))
    }
  }
  return { add, stats }
}

/** The stats as text (`skyrl cassettes stats DIR`). */
export const formatCassetteStats = (s: CassetteStats): string => {
  const lines = [
    `${s.file}: ${s.entries} entries (distinct calls) in ${s.lines} lines, ${(s.bytes / 1024).toFixed(1)} KiB`,
    `  tool errors (isError): ${s.errors}; illustrative (derived params): ${s.illustrative}`,
    `  recorded: ${s.firstRecorded ?? "-"} .. ${s.lastRecorded ?? "-"}`
  ]
  if (s.duplicates > 0) lines.push(`  duplicate keys ignored (first line kept): ${s.duplicates}`)
  if (s.torn) lines.push("  torn last line ignored (a write cut short)")
  if (s.invalid.length > 0) {
    lines.push(`  lines that are not entries: ${s.invalid.length} (line ${s.invalid.slice(0, 10).join(", ")})`)
  }
  lines.push("  servers:")
  for (const [server, versions] of Object.entries(s.serverVersions)) {
    lines.push(`    ${server}  ${versions.length === 0 ? "(no version)" : versions.join(", ")}`)
  }
  const width = Math.max(8, ...s.tools.map((t) => t.server.length + t.tool.length + 1))
  lines.push(`  ${"tool".padEnd(width)}  entries  errors  illustrative  mean ms  max ms`)
  for (const t of s.tools) {
    lines.push(
      `  ${`${t.server}/${t.tool}`.padEnd(width)}  ${String(t.entries).padStart(7)}  ${
        String(t.errors).padStart(6)
      }  ` +
        `${String(t.illustrative).padStart(12)}  ${String(t.meanMs).padStart(7)}  ${String(t.maxMs).padStart(6)}`
    )
  }
  return lines.join("\n")
}
