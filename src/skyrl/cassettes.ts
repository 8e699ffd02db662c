/**
 * Tool-result cassettes (pure): what `skyrl verify` records and MCPToolEnv replays
 * (/work/spec/formats.md "Tool-result cassettes"). A directory holds one `cassettes.jsonl`; each line is
 * one tool call's result under `callKey(server, tool, params)` (src/skyrl/canonical.ts). A reader keeps
 * the first line of each key, unless that line is a tool error and a later line of the key is not (the call
 * failed once, then answered: the answer is kept), and ignores a torn last line (a write cut short by a crash).
 * A line's key must be the key of its own server, tool and params (`entryFault`): replay answers a call with the
 * result stored under the call's key, so a line keyed otherwise would answer another call.
 */
import { isObject } from "../domain/json.js"
import { noun, plural } from "../domain/words.js"
import { callKey } from "./canonical.js"
import { MAX_JSON_DEPTH, nestsDeeperThan, tooDeepReason } from "./depth.js"
import { fnv1a32 } from "./hash32.js"

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

/**
 * A value as a fault names it: JSON (a number as JavaScript writes it: 1e400 is Infinity), cut at `max` characters
 * (60; a key is shown whole up to 66, a sha256 hex key in its quotes).
 */
const shown = (value: unknown, max = 60): string => {
  const text = typeof value === "number" ? String(value) : JSON.stringify(value)
  return text.length > max ? `${text.slice(0, max - 3)}...` : text
}

/**
 * How a reader takes a line's key: `checked` (the default), the key of its server, tool and params, which the line
 * must hold (an object); `trusted`, as written, params not read (the rule before 2026-12-05: `cassettes stats
 * --trust-keys`, MCPToolEnv's `cassette_keys: trusted`), for a store another program wrote without params.
 */
export type KeyCheck = "checked" | "trusted"

const fieldFault = (field: string, value: unknown, expected: string): string =>
  value === undefined ? `${field}: is missing` : `${field}: expected ${expected}, got ${shown(value)}`

/**
 * Why a parsed line is not a cassette entry, or undefined when it is one: an object with `key`, `server` and
 * `tool` strings, a `params` object, a `result` object and `duration_ms` a finite number ≥ 0 (what `verify`
 * writes: a monotonic clock's milliseconds), whose `key` is `callKey(server, tool, params)`: a line keyed
 * otherwise (hand-edited, or copied and its params changed) answered, on replay, a call it is not the result of.
 * With `keys: "trusted"`, `params` and the key's match are not checked (the rule before 2026-12-05).
 * The rule of every reader (stats, the writer's keys) and of MCPToolEnv's
 * (python/skyrl_mcp_env/tools.py `_entry_fault`): a line one refuses, the other refuses too.
 */
export const entryFault = (u: unknown, keys: KeyCheck = "checked"): string | undefined => {
  if (!isObject(u)) {
    return `expected a JSON object, got ${u === null ? "null" : Array.isArray(u) ? "array" : typeof u}`
  }
  for (const field of ["key", "server", "tool"] as const) {
    if (typeof u[field] !== "string") return fieldFault(field, u[field], "a string")
  }
  const checked = keys === "checked"
  if (checked && !isObject(u.params)) return fieldFault("params", u.params, "an object")
  if (!isObject(u.result)) return fieldFault("result", u.result, "an object")
  const ms = u.duration_ms
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
    return fieldFault("duration_ms", ms, "a number of milliseconds ≥ 0")
  }
  // verify never records one (McpClient refuses such a result); MCPToolEnv's reader raised RecursionError on it.
  if (nestsDeeperThan(u.result, MAX_JSON_DEPTH)) return `result: ${tooDeepReason("the result")}`
  if (!checked) return undefined
  // Before the key is computed: canonical JSON is recursive (verify sends params of at most 100 levels).
  if (nestsDeeperThan(u.params, MAX_JSON_DEPTH)) return `params: ${tooDeepReason("the params object")}`
  const key = callKey(u.server as string, u.tool as string, u.params)
  if (u.key !== key) return `key: ${shown(u.key, 66)} is not the key of its server, tool and params ("${key}")`
  return undefined
}

/** A line's entry, or why it is none. */
const entryOf = (line: string, keys: KeyCheck): CassetteEntry | string => {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return "not JSON"
  }
  return entryFault(value, keys) ?? value as CassetteEntry
}

/** Whether an entry's result is a tool error (`isError: true`): a later answer of the key replaces it. */
export const isErrorEntry = (e: CassetteEntry): boolean => e.result.isError === true

/**
 * A 32-bit digest of an entry's result (its JSON text), to tell a call answered otherwise than the entry already
 * stored under its key: a stateful tool (server-memory's `open_nodes` after a row's `create_entities`), or a
 * server that changed. Replay gives the stored answer whatever the row's own was.
 */
export const resultDigest = (e: CassetteEntry): number => fnv1a32(JSON.stringify(e.result))

/**
 * What a store does with an entry, given the keys it holds (`seen`) and those held as a tool error
 * (`errors`), both updated: keeps it (`new` key), keeps it in place of its key's tool error (`replaces`: the
 * call answered later), or ignores it (`duplicate`). The one rule of readers and of the writer.
 */
export const admit = (
  entry: CassetteEntry,
  seen: Set<string>,
  errors: Set<string>
): "new" | "replaces" | "duplicate" => {
  if (!seen.has(entry.key)) {
    seen.add(entry.key)
    if (isErrorEntry(entry)) errors.add(entry.key)
    return "new"
  }
  if (!errors.has(entry.key) || isErrorEntry(entry)) return "duplicate"
  errors.delete(entry.key)
  return "replaces"
}

/** How many bad lines' reasons a reader keeps (the stats show as many). */
export const MAX_REASONS = 10

/** The counts of a store's lines (`cassetteReader`). */
export interface CassetteCounts {
  /** Every line read: entries, duplicates, bad lines, blank lines and a torn last line. */
  readonly lines: number
  /** Lines whose key an earlier line already had (and that replace nothing). */
  readonly duplicates: number
  /** Lines that replace their key's earlier tool error (the call answered later). */
  readonly replaced: number
  /** 1-based numbers of lines that are not entries (a torn last line is not counted here). */
  readonly invalid: ReadonlyArray<number>
  /** Why, for the first `MAX_REASONS` of them: `line 3: duration_ms: expected ..., got "12"`. */
  readonly reasons: ReadonlyArray<string>
  /** The last line was cut short (no newline, not JSON). */
  readonly torn: boolean
}

/**
 * Reads a store one line at a time (`line`, without its line end), for a caller that streams the file:
 * `onEntry` gets the first entry of each key, in file order, and its key is added to `seen` (and to
 * `errors` while the entry kept is a tool error); a later entry that is not a tool error for a key kept
 * as one replaces it: `onEntry(entry, true)`. `done(endsOpen)` gives the counts (`endsOpen`: the text ends
 * without a newline, so a last line that is not an entry was cut short: `torn`, not `invalid`). `keys`: how a
 * line's key is taken (`entryFault`).
 */
export const cassetteReader = (
  onEntry: (entry: CassetteEntry, replaces: boolean) => void,
  seen: Set<string> = new Set(),
  errors: Set<string> = new Set(),
  keys: KeyCheck = "checked"
) => {
  const invalid: Array<number> = []
  const reasons: Array<string> = []
  let duplicates = 0
  let replaced = 0
  let lineNo = 0
  let lastInvalid = false
  return {
    line: (raw: string): void => {
      lineNo++
      lastInvalid = false
      if (raw.trim() === "") return
      const entry = entryOf(raw, keys)
      if (typeof entry === "string") {
        invalid.push(lineNo)
        // One more than shown: the last may be a torn line, dropped at the end.
        if (reasons.length <= MAX_REASONS) reasons.push(`line ${lineNo}: ${entry}`)
        lastInvalid = true
        return
      }
      const kept = admit(entry, seen, errors)
      if (kept === "duplicate") duplicates++
      else {
        if (kept === "replaces") replaced++
        onEntry(entry, kept === "replaces")
      }
    },
    done: (endsOpen: boolean): CassetteCounts => {
      const torn = endsOpen && lastInvalid
      const kept = torn ? invalid.slice(0, -1) : invalid
      return {
        lines: lineNo,
        duplicates,
        replaced,
        invalid: kept,
        reasons: reasons.slice(0, Math.min(kept.length, MAX_REASONS)),
        torn
      }
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
  readonly replaced: number
  readonly invalid: ReadonlyArray<number>
  readonly reasons: ReadonlyArray<string>
  readonly torn: boolean
  readonly errors: number
  readonly illustrative: number
  readonly serverVersions: Readonly<Record<string, ReadonlyArray<string>>>
  readonly firstRecorded: string | null
  readonly lastRecorded: string | null
  readonly tools: ReadonlyArray<ToolStats>
}

/** What the stats take of an entry (a kept tool error is held so: a later answer may replace it). */
type Counted = Pick<
  CassetteEntry,
  "server" | "tool" | "duration_ms" | "server_version" | "recorded_at" | "illustrative"
>

const countedOf = (e: CassetteEntry): Counted => ({
  server: e.server,
  tool: e.tool,
  duration_ms: e.duration_ms,
  server_version: e.server_version,
  recorded_at: e.recorded_at,
  illustrative: e.illustrative
})

/** `2026-11-30T00:00:00.000Z` (UTC, as skyrl writes it) or with an offset: a time the range can compare. */
const isIsoTime = (text: string): boolean =>
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) && Number.isFinite(Date.parse(text))

/**
 * The stats of a store as its entries come (`add`, as `cassetteReader` gives them: the first entry of each
 * key, or one replacing its key's tool error): counts per tool, error and illustrative results, server
 * versions, time range, of the entries a reader keeps. A tool error is counted when the stats are made,
 * if no later answer replaced it by then: a replaced one is in no figure.
 */
export const cassetteStatsCollector = () => {
  const tools = new Map<
    string,
    { server: string; tool: string; n: number; errors: number; ill: number; sum: number; max: number }
  >()
  const versions = new Map<string, Set<string>>()
  let first: { readonly text: string; readonly at: number } | null = null
  let last: { readonly text: string; readonly at: number } | null = null
  let entries = 0
  const keptErrors = new Map<string, Counted>()
  const countTool = (e: Counted, error: boolean): void => {
    const id = `${e.server}\u0000${e.tool}`
    const t = tools.get(id) ?? { server: e.server, tool: e.tool, n: 0, errors: 0, ill: 0, sum: 0, max: 0 }
    const ms = e.duration_ms // a number ≥ 0: a line without one is no entry (`entryFault`)
    t.n++
    if (error) t.errors++
    if (e.illustrative === true) t.ill++
    t.sum += ms
    t.max = Math.max(t.max, ms)
    tools.set(id, t)
  }
  const count = (e: Counted, error: boolean): void => {
    entries++
    countTool(e, error)
    const v = versions.get(e.server) ?? new Set<string>()
    if (typeof e.server_version === "string") v.add(e.server_version)
    versions.set(e.server, v)
    // An ISO time only (`"garbage"` was shown as the last recorded), compared as the instant it names: as text,
    // `04:00:00-05:00` (09:00 UTC) came before `10:00:00+09:00` (01:00 UTC).
    const at = typeof e.recorded_at === "string" && isIsoTime(e.recorded_at) ? Date.parse(e.recorded_at) : undefined
    if (at !== undefined) {
      if (first === null || at < first.at) first = { text: e.recorded_at!, at }
      if (last === null || at > last.at) last = { text: e.recorded_at!, at }
    }
  }
  const add = (e: CassetteEntry, replaces = false): void => {
    if (replaces) keptErrors.delete(e.key)
    if (isErrorEntry(e)) keptErrors.set(e.key, countedOf(e))
    else count(e, false)
  }
  const stats = (file: string, bytes: number, counts: CassetteCounts): CassetteStats => {
    for (const e of keptErrors.values()) count(e, true)
    keptErrors.clear()
    const list = [...tools.values()].sort((a, b) => a.server.localeCompare(b.server) || a.tool.localeCompare(b.tool))
    return {
      file,
      bytes,
      entries,
      lines: counts.lines,
      duplicates: counts.duplicates,
      replaced: counts.replaced,
      invalid: counts.invalid,
      reasons: counts.reasons,
      torn: counts.torn,
      errors: list.reduce((n, t) => n + t.errors, 0),
      illustrative: list.reduce((n, t) => n + t.ill, 0),
      serverVersions: Object.fromEntries([...versions].map(([s, v]) => [s, [...v].sort()])),
      firstRecorded: first?.text ?? null,
      lastRecorded: last?.text ?? null,
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
    `${s.file}: ${plural(s.entries, "entry", "entries")} (distinct ${noun(s.entries, "call")}) in ${
      plural(s.lines, "line")
    }, ${(s.bytes / 1024).toFixed(1)} KiB`,
    `  tool errors (isError): ${s.errors}; illustrative (derived params): ${s.illustrative}`,
    `  recorded: ${s.firstRecorded ?? "-"} .. ${s.lastRecorded ?? "-"}`
  ]
  if (s.duplicates > 0) lines.push(`  duplicate keys ignored (first line kept): ${s.duplicates}`)
  if (s.replaced > 0) lines.push(`  tool errors replaced by a later answer of the same call: ${s.replaced}`)
  if (s.torn) lines.push("  torn last line ignored (a write cut short)")
  if (s.invalid.length > 0) {
    lines.push(`  lines that are not entries: ${s.invalid.length} (line ${s.invalid.slice(0, 10).join(", ")})`)
    for (const reason of s.reasons) lines.push(`    ${reason}`)
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
