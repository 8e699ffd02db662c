/**
 * The pure parts behind `skyrl verify` and inventories that know their servers: inventory fields and
 * schema hashes, servers configs and environment references, launch specs, cassette files (and the
 * Cassettes store's repair of a torn line and its lock), drift, side-effect policy and the repair text.
 */
import { Effect, Either, Layer, Logger } from "effect"
import { createHash } from "node:crypto"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { decodeInventory, parseInventoryText } from "../src/domain/inventory.js"
import { stripJsonc } from "../src/domain/json.js"
import { checkRecord, formatServerLines } from "../src/programs/verify.js"
import type { CassetteStoreCounts } from "../src/services/Cassettes.js"
import { Cassettes, formatStoreCounts } from "../src/services/Cassettes.js"
import { StorageLive } from "../src/services/Storage.js"
import type { CassetteEntry, ToolStats } from "../src/skyrl/cassettes.js"
import { cassetteReader, cassetteStatsCollector, formatCassetteStats, makeEntry } from "../src/skyrl/cassettes.js"
import { schemaDrift } from "../src/skyrl/drift.js"
import {
  anchorSpec,
  launchOfSpec,
  parseServersConfig,
  resolveReferences,
  specOfLaunch,
  specsForInventory,
  unrecordedEnv,
  unrecordedHeaders
} from "../src/skyrl/serverSpecs.js"
import {
  allowed,
  blockedSteps,
  formatSummary,
  parseAllowList,
  sideEffectFailure,
  VerificationFailed,
  verificationRepairMessage
} from "../src/skyrl/verification.js"
import { runChild } from "./support/child.js"
import { streamingOnly } from "./support/memoryStorage.js"
import { rowFor } from "./support/verifyRows.js"

const FINANCE = join(__dirname, "..", "data", "inventory", "finance-mcp.json")
const temps: Array<string> = []
afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })))
const sha = (text: string) => createHash("sha256").update(text, "utf8").digest("hex")

describe("inventories that know their servers", () => {
  const server = {
    name: "fs",
    launch: { transport: "stdio", command: "npx", args: ["-y", "srv", "/tmp"], env: ["API_KEY"], cwd: null },
    server_info: { name: "secure-filesystem-server", version: "0.2.0" },
    tools: [{
      name: "read_file",
      title: "Read File",
      description: "Reads a file",
      inputSchema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] },
      outputSchema: { type: "object", properties: { content: { type: "string" } } },
      annotations: { readOnlyHint: true, openWorldHint: false, vendorHint: "x" }
    }]
  }

  it("keeps launch, server_info, title, outputSchema, annotations; computes schema_hash of the stored schema", () => {
    const inv = Either.getOrThrow(decodeInventory({ servers: [server] }))
    const s = inv.servers[0]!
    expect(s.launch).toEqual(server.launch)
    expect(s.server_info).toEqual(server.server_info)
    const t = s.tools[0]!
    expect(t).toMatchObject({
      title: "Read File",
      outputSchema: server.tools[0]!.outputSchema,
      annotations: server.tools[0]!.annotations
    })
    // canonical JSON of {type, properties:{path:{type}}, required} with keys sorted, no whitespace
    expect(t.schema_hash).toBe(
      sha("{\"properties\":{\"path\":{\"type\":\"string\"}},\"required\":[\"path\"],\"type\":\"object\"}")
    )
  })

  it("a stored schema_hash is kept when right and an error naming the entry when the schema was edited", () => {
    const right = sha("{\"properties\":{\"path\":{\"type\":\"string\"}},\"required\":[\"path\"],\"type\":\"object\"}")
    const ok = decodeInventory({ servers: [{ ...server, tools: [{ ...server.tools[0], schema_hash: right }] }] })
    expect(Either.isRight(ok)).toBe(true)
    const stale = decodeInventory({
      servers: [{ ...server, tools: [{ ...server.tools[0], schema_hash: "ab".repeat(32) }] }]
    }, "inv.json")
    expect(Either.isLeft(stale) && stale.left.message).toMatch(
      /^inv\.json: servers\[0\]\.tools\[0\]\.schema_hash: is abab.* but the input schema hashes to [0-9a-f]{64}/
    )
  })

  it("hand-written inventories (no launch, no annotations) still load; a bad launch spec names its entry", () => {
    const finance = Either.getOrThrow(parseInventoryText(readFileSync(FINANCE, "utf8"), FINANCE))
    expect(finance.servers.every((s) => s.launch === undefined && s.tools.every((t) => t.schema_hash?.length === 64)))
      .toBe(true)
    const bad = decodeInventory({ servers: [{ ...server, launch: { transport: "ftp", url: "x" } }] }, "inv.json")
    expect(Either.isLeft(bad) && bad.left.message).toMatch(/^inv\.json: servers\[0\]\.launch/)
  })
})

describe("servers configs, environment references, launch specs", () => {
  it("reads the mcpServers JSON of MCP clients (and VS Code's servers key); disabled entries are left out", () => {
    const text = JSON.stringify({
      mcpServers: {
        fs: { command: "npx", args: ["-y", "srv", "/tmp"], env: { KEY: "${KEY}", MODE: "ro" }, cwd: "/srv" },
        docs: {
          type: "http",
          url: "https://docs.example/mcp",
          headers: { Authorization: "${DOCS_TOKEN}", "X-Team": "a" }
        },
        old: { command: "gone", disabled: true }
      }
    })
    expect(Either.getOrThrow(parseServersConfig(text))).toEqual([
      {
        _tag: "stdio",
        name: "fs",
        command: "npx",
        args: ["-y", "srv", "/tmp"],
        cwd: "/srv",
        env: { KEY: "${KEY}", MODE: "ro" }
      },
      {
        _tag: "http",
        name: "docs",
        url: "https://docs.example/mcp",
        headers: { Authorization: "${DOCS_TOKEN}", "X-Team": "a" }
      }
    ])
    expect(Either.getOrThrow(parseServersConfig(JSON.stringify({ servers: { a: { command: "x" } } })))).toHaveLength(1)
  })

  it("a bad config names the entry and the field", () => {
    const reason = (config: unknown) => Either.flip(parseServersConfig(JSON.stringify(config))).pipe(Either.getOrThrow)
    expect(reason({ mcpServers: { a: { args: [] } } })).toBe(
      "mcpServers.a: needs \"command\" (a stdio server) or \"url\" (a streamable-HTTP server)"
    )
    expect(reason({ mcpServers: { a: { command: "x", args: "y" } } })).toBe(
      "mcpServers.a: args: must be a list of strings"
    )
    expect(reason({ mcpServers: { a: { type: "sse", url: "http://h/sse" } } })).toMatch(
      /^mcpServers\.a: the SSE transport is not supported/
    )
    expect(reason({ mcpServers: { a: { command: "x", env: { K: 1 } } } })).toBe(
      "mcpServers.a: env: must map names to strings"
    )
    expect(reason({ other: {} })).toMatch(/must be a JSON object with an "mcpServers" object/)
    expect(Either.flip(parseServersConfig("{nope")).pipe(Either.getOrThrow)).toMatch(/^not valid JSON/)
  })

  it("${VAR} and ${env:VAR} come from the environment; unset variables are named, values never shown", () => {
    const env = { TOKEN: "s3cret", EMPTY: "" }
    expect(Either.getOrThrow(resolveReferences({ a: "Bearer ${TOKEN}", b: "${env:TOKEN}", c: "plain" }, env))).toEqual({
      a: "Bearer s3cret",
      b: "s3cret",
      c: "plain"
    })
    const missing = Either.flip(resolveReferences({ a: "${NOPE}", b: "${EMPTY}", c: "${TOKEN}" }, env)).pipe(
      Either.getOrThrow
    )
    expect(missing).toBe("environment variables $NOPE, $EMPTY not set (needed by the server)")
    expect(missing).not.toContain("s3cret")
  })

  it("an inventory records variable names only; its launch spec starts the same server", () => {
    const stdio = { _tag: "stdio" as const, name: "fs", command: "npx", args: ["srv"], env: { KEY: "literal-value" } }
    expect(launchOfSpec(stdio)).toEqual({ transport: "stdio", command: "npx", args: ["srv"], env: ["KEY"], cwd: null })
    expect(specOfLaunch("fs", launchOfSpec(stdio))).toEqual({ ...stdio, env: { KEY: "${KEY}" } })
    const http = { _tag: "http" as const, name: "d", url: "http://h/mcp", headers: { A: "${TOKEN}", B: "Bearer ${T}" } }
    expect(launchOfSpec(http)).toEqual({ transport: "http", url: "http://h/mcp", headers_env: { A: "TOKEN" } })
    expect(unrecordedHeaders(http)).toEqual(["B"])
    expect(specOfLaunch("d", launchOfSpec(http))).toEqual({
      _tag: "http",
      name: "d",
      url: "http://h/mcp",
      headers: { A: "${TOKEN}" }
    })
  })

  it("stripJsonc blanks comments outside strings and trailing commas; strings with // or /* survive", () => {
    const text = [
      "// head",
      "{\"url\": \"http://x/a//b\", /* note */ \"s\": \"/* kept */ // kept\", \"q\": \"a\\\"//b\",",
      "  \"list\": [1, 2, /* last */ ], // tail",
      "}"
    ].join("\n")
    const stripped = stripJsonc(text)
    expect(stripped).toHaveLength(text.length)
    expect(JSON.parse(stripped)).toEqual({ url: "http://x/a//b", s: "/* kept */ // kept", q: "a\"//b", list: [1, 2] })
    expect(stripJsonc("{\"a\": \"x,\"}")).toBe("{\"a\": \"x,\"}")
    // Only a comma after a value trails; an unterminated /* is left for the parser to refuse.
    for (const bad of ["[,]", "{,}", "[1,,]", "{\"a\": 1} /* open"]) {
      expect(() => JSON.parse(stripJsonc(bad)), bad).toThrow()
    }
    expect(JSON.parse(stripJsonc("[\"a\" /* c */ ,]"))).toEqual(["a"])
    expect(Either.getOrThrow(parseServersConfig("{\"servers\": {\"a\": {\"command\": \"x\",},}, // c\n}")))
      .toHaveLength(1)
  })

  it("env values other than KEY: \"${KEY}\" are not recorded (the import warns)", () => {
    const spec = {
      _tag: "stdio" as const,
      name: "m",
      command: "node",
      args: [],
      env: { A: "${A}", B: "${env:B}", C: "/abs/file", D: "${OTHER}", E: "x ${E}" }
    }
    expect(unrecordedEnv(spec)).toEqual(["C", "D", "E"])
    expect(unrecordedEnv({ _tag: "http", name: "h", url: "http://h/mcp" })).toEqual([])
  })

  it("anchorSpec records the import directory as cwd when the command line holds a relative path", () => {
    const dir = "/home/u/proj"
    const exists = (path: string) => path === "/home/u/proj/server.js" || path === "/home/u/proj/data"
    const cwdOf = (command: string, ...args: Array<string>) =>
      (anchorSpec({ _tag: "stdio", name: "s", command, args }, dir, exists) as { cwd?: string }).cwd
    expect(cwdOf("npx", "-y", "@modelcontextprotocol/server-filesystem", "./data")).toBe(dir)
    expect(cwdOf("npx", "srv", "../shared")).toBe(dir)
    expect(cwdOf("npx", "srv", ".")).toBe(dir)
    expect(cwdOf("./bin/server")).toBe(dir)
    expect(cwdOf("node", "server.js")).toBe(dir) // names a file in dir
    expect(cwdOf("srv", "--root=./data")).toBe(dir)
    expect(cwdOf("srv", "--root=data")).toBe(dir)
    expect(cwdOf("npx", "-y", "srv", "/tmp", "stdio")).toBeUndefined() // absolute, or names nothing in dir
    expect(cwdOf("node", "/opt/server.js")).toBeUndefined()
    const relativeCwd = anchorSpec({ _tag: "stdio", name: "s", command: "srv", args: ["."], cwd: "sub" }, dir, exists)
    expect(relativeCwd).toMatchObject({ cwd: "/home/u/proj/sub" })
    const http = { _tag: "http" as const, name: "h", url: "http://h/mcp" }
    expect(anchorSpec(http, dir, exists)).toBe(http)
    // verify and --check start the server from the launch spec, in its cwd
    const launch = launchOfSpec(anchorSpec({ _tag: "stdio", name: "s", command: "srv", args: ["./data"] }, dir, exists))
    expect(launch).toMatchObject({ cwd: dir })
    expect(specOfLaunch("s", launch)).toMatchObject({ cwd: dir })
  })

  it("a servers config wins over the inventory's launch spec; servers with neither are named", () => {
    const launch = { transport: "stdio" as const, command: "old", args: [], env: [], cwd: null }
    const given = { _tag: "stdio" as const, name: "a", command: "new", args: [] }
    const plan = specsForInventory([{ name: "a", launch }, { name: "b", launch }, { name: "c" }], [given])
    expect(plan.specs.map((s) => [s.name, (s as { command: string }).command])).toEqual([["a", "new"], ["b", "old"]])
    expect(plan.missing).toEqual(["c"])
  })
})

describe("cassette files", () => {
  const entry = (tool: string, text: string) =>
    makeEntry({
      server: "srv",
      tool,
      params: { q: tool },
      result: { content: [{ type: "text", text }], structuredContent: null, isError: false },
      duration_ms: 3,
      server_version: "srv@1",
      recorded_at: "2026-11-30T00:00:00.000Z",
      illustrative: false
    })

  it("a reader keeps the first line per key, counts a bad line, ignores a torn last line", () => {
    const a = entry("a", "first")
    const text = [
      JSON.stringify(a),
      JSON.stringify({ ...a, result: { ...a.result, content: [] } }),
      "garbage",
      JSON.stringify(entry("b", "x")),
      "{\"key\":\"tor"
    ].join("\n")
    const entries: Array<CassetteEntry> = []
    const reader = cassetteReader((e) => entries.push(e))
    for (const line of text.split("\n")) reader.line(line)
    expect(entries.map((e) => e.tool)).toEqual(["a", "b"])
    expect(entries[0]!.result.content).toEqual([{ type: "text", text: "first" }])
    expect(reader.done(true)).toEqual({
      lines: 5,
      duplicates: 1,
      replaced: 0,
      invalid: [3],
      reasons: ["line 3: not JSON"],
      torn: true
    })
    expect(a.key).toBe(sha("srv\na\n{\"q\":\"a\"}"))
  })

  it("a line whose duration_ms is not a number of milliseconds ≥ 0 is not an entry: counted as bad with its reason", () => {
    // Before: each was an entry, its duration counted as 0 ms (or as -5) in the stats, with exit 0.
    const good = entry("a", "first")
    const { duration_ms: _ms, ...noDuration } = good
    const bad = [
      JSON.stringify({ ...entry("b", "x"), duration_ms: "12" }),
      JSON.stringify({ ...entry("c", "x"), duration_ms: null }),
      JSON.stringify({ ...entry("d", "x"), duration_ms: -5 }),
      JSON.stringify({ ...noDuration, tool: "e", key: "ke" }),
      JSON.stringify({ ...entry("f", "x"), duration_ms: 3 }).replace("\"duration_ms\":3", "\"duration_ms\":1e400"),
      JSON.stringify({ ...entry("g", "x"), duration_ms: 3 }).replace("\"duration_ms\":3", "\"duration_ms\":NaN"),
      JSON.stringify({ ...entry("h", "x"), server: 5 })
    ]
    const collector = cassetteStatsCollector()
    const reader = cassetteReader(collector.add)
    for (const line of [JSON.stringify(good), ...bad, JSON.stringify({ ...entry("z", "x"), duration_ms: 0.5 })]) {
      reader.line(line)
    }
    const counts = reader.done(false)
    expect(counts).toMatchObject({ lines: 9, invalid: [2, 3, 4, 5, 6, 7, 8], torn: false })
    expect(counts.reasons).toEqual([
      "line 2: duration_ms: expected a number of milliseconds ≥ 0, got \"12\"",
      "line 3: duration_ms: expected a number of milliseconds ≥ 0, got null",
      "line 4: duration_ms: expected a number of milliseconds ≥ 0, got -5",
      "line 5: duration_ms: is missing",
      "line 6: duration_ms: expected a number of milliseconds ≥ 0, got Infinity",
      "line 7: not JSON",
      "line 8: server: expected a string, got 5"
    ])
    const stats = collector.stats("f", 0, counts)
    expect(stats.tools.map((t) => [t.tool, t.entries, t.meanMs, t.maxMs])).toEqual([["a", 1, 3, 3], ["z", 1, 1, 0.5]])
    // A torn last line (no newline) that is JSON but not an entry is still the crash's trace, not a bad line.
    const torn = cassetteReader(() => undefined)
    torn.line(JSON.stringify(good))
    torn.line(bad[0]!)
    expect(torn.done(true)).toMatchObject({ invalid: [], reasons: [], torn: true })
  })

  it("the stats count every line read: entries, bad lines, blank ones (was '6 entries ... in 6 lines' for 8 lines)", () => {
    const entries = ["a", "b", "c", "d", "e", "f"].map((tool) => JSON.stringify(entry(tool, "x")))
    const text = [...entries.slice(0, 2), "garbage", ...entries.slice(2, 4), "{\"note\": 1}", ...entries.slice(4)]
    const collector = cassetteStatsCollector()
    const reader = cassetteReader(collector.add)
    for (const line of text) reader.line(line)
    const stats = collector.stats("tapes.jsonl", 2048, reader.done(false))
    expect(formatCassetteStats(stats).split("\n")[0]).toBe(
      "tapes.jsonl: 6 entries (distinct calls) in 8 lines, 2.0 KiB"
    )
    const blank = cassetteReader(() => undefined)
    for (const line of [entries[0]!, "", entries[1]!]) blank.line(line)
    expect(blank.done(false)).toMatchObject({ lines: 3, invalid: [] })
  })

  it("the stats say '1 entry (distinct call) in 1 line' (was '1 entries (distinct calls) in 1 lines')", () => {
    const collector = cassetteStatsCollector()
    const reader = cassetteReader(collector.add)
    reader.line(JSON.stringify(entry("a", "x")))
    const stats = collector.stats("tapes.jsonl", 512, reader.done(false))
    expect(formatCassetteStats(stats).split("\n")[0]).toBe("tapes.jsonl: 1 entry (distinct call) in 1 line, 0.5 KiB")
  })

  const failed = (tool: string, text: string): CassetteEntry => {
    const e = entry(tool, text)
    return { ...e, result: { ...e.result, isError: true }, duration_ms: 100 }
  }

  it("a later answer of a call replaces its kept tool error (readers and stats); a later error does not", () => {
    const lines = [failed("a", "ENOENT"), entry("a", "answer"), failed("a", "again"), entry("a", "second answer")]
    const kept = new Map<string, CassetteEntry>()
    const collector = cassetteStatsCollector()
    const reader = cassetteReader((e, replaces) => {
      kept.set(e.key, e)
      collector.add(e, replaces)
    })
    for (const e of lines) reader.line(JSON.stringify(e))
    expect([...kept.values()].map((e) => e.result.content)).toEqual([[{ type: "text", text: "answer" }]])
    const counts = reader.done(false)
    expect(counts).toEqual({ lines: 4, duplicates: 2, replaced: 1, invalid: [], reasons: [], torn: false })
    const stats = collector.stats("f", 0, counts)
    // Was 1 entry, 1 error, mean 100 ms: the error line, which MCPToolEnv no longer replays.
    expect([stats.entries, stats.errors, stats.tools[0]!.meanMs]).toEqual([1, 0, 3])
  })

  it("stats are of the entries read back: a replaced tool error is in no figure (max ms, versions, time range)", () => {
    const early = { server_version: "srv@0", recorded_at: "2026-11-29T00:00:00.000Z", illustrative: true }
    const lines = [{ ...failed("a", "ENOENT"), ...early }, entry("a", "answer"), failed("b", "kept error")]
    const collector = cassetteStatsCollector()
    const reader = cassetteReader(collector.add)
    for (const e of lines) reader.line(JSON.stringify(e))
    const stats = collector.stats("f", 0, reader.done(false))
    const figures = (t: ToolStats) => [t.tool, t.entries, t.errors, t.illustrative, t.meanMs, t.maxMs]
    // Was a's max 100 ms, versions srv@0 and srv@1, recorded from 2026-11-29: the replaced error's.
    expect(stats.tools.map(figures)).toEqual([["a", 1, 0, 0, 3, 3], ["b", 1, 1, 0, 100, 100]])
    expect(stats.serverVersions).toEqual({ srv: ["srv@1"] })
    expect([stats.firstRecorded, stats.lastRecorded]).toEqual(["2026-11-30T00:00:00.000Z", "2026-11-30T00:00:00.000Z"])
    expect([stats.entries, stats.errors, stats.illustrative]).toEqual([2, 1, 0])
  })

  it("an entry whose result nests deeper than skyrl reads (512 levels) is a bad line, as MCPToolEnv's reader says", () => {
    // `depth` levels in all: the result and the objects nested in its structuredContent.
    const nested = (depth: number) => {
      const inner = "{\"a\":".repeat(depth - 1) + "1" + "}".repeat(depth - 1)
      return JSON.stringify(entry("a", "answer")).replace(/"structuredContent":null/, `"structuredContent":${inner}`)
    }
    const collector = cassetteStatsCollector()
    const reader = cassetteReader(collector.add)
    for (const depth of [512, 513, 20_000]) reader.line(nested(depth))
    const counts = reader.done(false)
    expect([counts.invalid, counts.reasons]).toEqual([[2, 3], [
      "line 2: result: the result nests objects and arrays more than 512 levels deep: too deep to read (skyrl's checks " +
      "and MCPToolEnv walk values recursively)",
      "line 3: result: the result nests objects and arrays more than 512 levels deep: too deep to read (skyrl's checks " +
      "and MCPToolEnv walk values recursively)"
    ]])
  })

  it("the time range is of the entries' ISO times: another recorded_at is left out of it (it was shown as the last)", () => {
    const collector = cassetteStatsCollector()
    const reader = cassetteReader(collector.add)
    for (const [tool, at] of [["a", "garbage"], ["b", "2026-11-29T10:00:00Z"], ["c", "2026-13-45T99:00:00Z"]]) {
      reader.line(JSON.stringify({ ...entry(tool!, "answer"), recorded_at: at }))
    }
    const stats = collector.stats("f", 0, reader.done(false))
    expect([stats.entries, stats.firstRecorded, stats.lastRecorded]).toEqual([
      3,
      "2026-11-29T10:00:00Z",
      "2026-11-29T10:00:00Z"
    ])
  })

  it("the time range is ordered by instant, offsets read (as text, 04:00-05:00 came before 10:00+09:00)", () => {
    const collector = cassetteStatsCollector()
    const reader = cassetteReader(collector.add)
    const times = ["2026-11-30T04:00:00.000-05:00", "2026-11-30T10:00:00+09:00", "2026-11-30T05:00:00Z"]
    times.forEach((at, i) => reader.line(JSON.stringify({ ...entry(`t${i}`, "answer"), recorded_at: at })))
    const stats = collector.stats("f", 0, reader.done(false))
    // 09:00Z, 01:00Z and 05:00Z: the second is the first recorded, the first the last.
    expect([stats.firstRecorded, stats.lastRecorded]).toEqual([times[1], times[0]])
  })

  it("the store appends a call's answer once over its stored tool error, never a second error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-cassettes-"))
    temps.push(dir)
    const file = join(dir, "cassettes.jsonl")
    writeFileSync(file, JSON.stringify(failed("a", "ENOENT")) + "\n")
    const results = await Effect.runPromise(
      Effect.gen(function*() {
        const store = yield* Cassettes
        return [
          yield* store.record(failed("a", "again")),
          yield* store.record(entry("a", "answer")),
          yield* store.record(entry("a", "answer twice"), { wait: true }),
          yield* store.counts
        ]
      }).pipe(Effect.provide(Cassettes.layer(dir).pipe(Layer.provide(StorageLive))))
    )
    expect(results.slice(0, 3)).toEqual([false, true, false]) // was [false, false, false]: the answer was never stored
    // One line appended, no new entry: was { existing: 1, added: 0 }, the summary's "0 new" for the line.
    // ("answer twice" after "answer": the key answered otherwise, not written.)
    expect(results[3]).toEqual({ existing: 1, added: 0, replaced: 1, differed: 1 })
    expect(formatStoreCounts(file, results[3] as CassetteStoreCounts)).toMatch(
      new RegExp(`^cassettes: ${file}: 0 new, 1 tool error replaced by an answer, 1 in all; 1 call answered otherwise`)
    )
    expect(formatStoreCounts(file, { existing: 5, added: 2, replaced: 0, differed: 0 })).toBe(
      `cassettes: ${file}: 2 new, 7 in all`
    )
    expect(formatStoreCounts(file, { existing: 5, added: 2, replaced: 0, differed: 2 })).toBe(
      `cassettes: ${file}: 2 new, 7 in all; 2 calls answered otherwise than the entry stored under their key (a ` +
        "stateful tool, or a server that changed): replay gives the stored answer (their rows' steps say " +
        "stored_answer_differs)"
    )
    // A store that holds nothing has no file: the line named one (was `cassettes: FILE: 0 new, 0 in all`).
    expect(formatStoreCounts(file, { existing: 0, added: 0, replaced: 0, differed: 0 })).toBe(
      `cassettes: none recorded (${file} not written)`
    )
    const texts = readFileSync(file, "utf8").split("\n").filter((l) => l !== "")
      .map((l) => JSON.parse(l).result.content[0].text)
    expect(texts).toEqual(["ENOENT", "answer"])
  })

  /** Live storage that refuses to read a cassette file whole: the store streams it (it may outgrow one string). */
  const streamedOnly = streamingOnly((file) => file.endsWith("cassettes.jsonl"))

  it("the store cuts a torn last line off, keeps earlier keys, and appends one line per new key", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-cassettes-"))
    temps.push(dir)
    const file = join(dir, "cassettes.jsonl")
    writeFileSync(file, JSON.stringify(entry("a", "kept")) + "\ngarbage\n\n{\"key\":\"torn")
    const added = await Effect.runPromise(
      Effect.gen(function*() {
        const store = yield* Cassettes
        const results = [
          yield* store.record(entry("a", "again")),
          yield* store.record(entry("b", "new")),
          yield* store.record(entry("b", "twice"), { wait: true })
        ]
        return { results, counts: yield* store.counts }
      }).pipe(Effect.provide(Cassettes.layer(dir).pipe(Layer.provide(streamedOnly))))
    )
    expect(added).toEqual({
      results: [false, true, false],
      counts: { existing: 1, added: 1, replaced: 0, differed: 2 } // "again" after "kept", "twice" after "new"
    })
    const lines = readFileSync(file, "utf8").split("\n")
    expect(lines.slice(1, 3)).toEqual(["garbage", ""]) // a bad line before the last is left, as the reader counts it
    expect(lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l).result.content[0].text)).toEqual([
      "kept",
      "new"
    ])
    expect(lines.at(-1)).toBe("")
  })

  it("a writer opening a store with a line that is not an entry (readers refuse the store) warns, naming the line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-cassettes-"))
    temps.push(dir)
    const file = join(dir, "cassettes.jsonl")
    writeFileSync(file, JSON.stringify(entry("a", "kept")) + "\n{\"key\": 1}\n" + JSON.stringify(entry("b", "kept")))
    const logs: Array<string> = []
    const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push(String(message))))
    await Effect.runPromise(
      Effect.gen(function*() {
        yield* (yield* Cassettes).record(entry("c", "new"), { wait: true })
      }).pipe(Effect.provide(Cassettes.layer(dir).pipe(Layer.provide(StorageLive))), Effect.provide(capture))
    )
    // Was no warning: the run appended to a store that `cassettes stats` and MCPToolEnv then refuse.
    expect(logs).toEqual([
      `${file}: 1 line(s) are not cassette entries (line 2; the first: line 2: key: expected a string, got 1): ` +
      "MCPToolEnv refuses this store and `skyrl cassettes stats` exits 1 on it; this run appends to it all the " +
      "same (mend or remove those lines)"
    ])
  })

  it("recordNow queues a new key's line when called (one line per key, as record) and the store's flush writes it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-cassettes-"))
    temps.push(dir)
    const file = join(dir, "cassettes.jsonl")
    const counts = await Effect.runPromise(
      Effect.gen(function*() {
        const store = yield* Cassettes
        const kick = store.recordNow(entry("a", "first"))
        // Known at once, before what recordNow returned has run.
        expect(store.has(entry("a", "").key)).toBe(true)
        expect(kick.differs).toBe(false)
        yield* kick.start
        // The same answer again is kept; another one (a stateful tool) is not written, and said to differ.
        expect(store.recordNow(entry("a", "first")).differs).toBe(false)
        expect(store.recordNow(entry("a", "again")).differs).toBe(true)
        yield* store.record(entry("b", "new"))
        yield* store.flush
        return yield* store.counts
      }).pipe(Effect.provide(Cassettes.layer(dir).pipe(Layer.provide(StorageLive))))
    )
    expect(counts).toEqual({ existing: 0, added: 2, replaced: 0, differed: 1 })
    const lines = readFileSync(file, "utf8").split("\n").filter((l) => l !== "")
    expect(lines.map((l) => JSON.parse(l).result.content[0].text)).toEqual(["first", "new"])
    expect(lines[0]).toBe(JSON.stringify(entry("a", "first")))
  })

  it("the store keeps a whole last entry that lacks its line end, and starts the next line after it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-cassettes-"))
    temps.push(dir)
    const file = join(dir, "cassettes.jsonl")
    writeFileSync(file, JSON.stringify(entry("a", "kept")))
    await Effect.runPromise(
      Effect.gen(function*() {
        const store = yield* Cassettes
        yield* store.record(entry("b", "new"), { wait: true })
      }).pipe(Effect.provide(Cassettes.layer(dir).pipe(Layer.provide(streamedOnly))))
    )
    const text = readFileSync(file, "utf8")
    expect(text.split("\n").map((l) => (l === "" ? "" : JSON.parse(l).result.content[0].text))).toEqual([
      "kept",
      "new",
      ""
    ])
  })

  it("one process writes a store at a time: a second open fails naming the store and the holder's pid; the end releases the lock", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-cassettes-"))
    temps.push(dir)
    const file = join(dir, "cassettes.jsonl")
    const lock = join(dir, "cassettes.jsonl.lock")
    const store = Cassettes.layer(dir).pipe(Layer.provide(StorageLive))
    const second = await Effect.runPromise(
      Effect.gen(function*() {
        yield* (yield* Cassettes).record(entry("a", "first"), { wait: true })
        expect(JSON.parse(readFileSync(lock, "utf8"))).toMatchObject({ pid: process.pid, host: hostname() })
        // A second writer (here in the same process) would read the keys before the first one's next lines.
        return yield* Effect.flip(Effect.scoped(Layer.build(Cassettes.layer(dir).pipe(Layer.provide(StorageLive)))))
      }).pipe(Effect.provide(store))
    )
    expect(second._tag).toBe("CassettesLocked")
    expect(second.message).toContain(`the cassette store ${dir} is in use by another skyrl process (`)
    expect(second.message).toContain(`"pid":${process.pid}`)
    expect(existsSync(lock)).toBe(false) // released when the store's scope closed
    expect(readFileSync(file, "utf8").split("\n").filter((l) => l !== "")).toHaveLength(1)
    // A failed run releases it too.
    const failed = await Effect.runPromiseExit(
      Effect.gen(function*() {
        yield* (yield* Cassettes).record(entry("b", "second"), { wait: true })
        return yield* Effect.fail("boom")
      }).pipe(Effect.provide(store))
    )
    expect(failed._tag).toBe("Failure")
    expect(existsSync(lock)).toBe(false)
  })

  it("a stale lock on the store (its process is gone) is taken over", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-cassettes-"))
    temps.push(dir)
    const lock = join(dir, "cassettes.jsonl.lock")
    const gone = (await runChild(process.execPath, ["-e", ""])).pid // exited: no process has this pid now
    writeFileSync(lock, JSON.stringify({ pid: gone, host: hostname(), since: "2026-11-30T00:00:00.000Z" }) + "\n")
    const counts = await Effect.runPromise(
      Effect.gen(function*() {
        const store = yield* Cassettes
        expect(JSON.parse(readFileSync(lock, "utf8")).pid).toBe(process.pid)
        yield* store.record(entry("a", "first"), { wait: true })
        return yield* store.counts
      }).pipe(Effect.provide(Cassettes.layer(dir).pipe(Layer.provide(StorageLive))))
    )
    expect(counts).toEqual({ existing: 0, added: 1, replaced: 0, differed: 0 })
    expect(existsSync(lock)).toBe(false)
  })
})

describe("drift, side effects, repair text", () => {
  it("a plan skipped for side effects names each blocked step once (the first was named twice)", () => {
    const step = (n: number, tool: string) => ({ step: n, server: "fs", tool, params: {}, derivedParams: [] })
    expect(sideEffectFailure([step(2, "write_file")]).message).toBe(
      "skipped-side-effect: step 2 fs/write_file: not annotated readOnlyHint: true, so it may change something; " +
        "nothing of this plan ran (allow it with --allow-side-effects write_file)"
    )
    expect(sideEffectFailure([step(1, "write_file"), step(3, "move_file")]).message).toBe(
      "skipped-side-effect: step 1 fs/write_file: (and step 3 fs/move_file) not annotated readOnlyHint: true, so " +
        "they may change something; nothing of this plan ran (allow them with --allow-side-effects write_file,move_file)"
    )
  })

  it("a tool whose name holds a dot is allowed as SERVER.TOOL only (a plain name would name two tools)", () => {
    // before: mem.create_entities also allowed server proxy's tool named "mem.create_entities", which then ran
    const allow = parseAllowList("mem.create_entities,write_file,fs.a.b")
    expect(allowed(allow, "mem", "create_entities") && allowed(allow, "fs", "write_file")).toBe(true)
    expect(allowed(allow, "proxy", "mem.create_entities")).toBe(false)
    expect([allowed(allow, "fs", "a.b"), allowed(allow, "other", "a.b")]).toEqual([true, false])
    const step = { step: 1, server: "proxy", tool: "mem.create_entities", params: {}, derivedParams: [] }
    expect(sideEffectFailure([step]).message).toContain("--allow-side-effects proxy.mem.create_entities)")
  })

  const inventory = Either.getOrThrow(parseInventoryText(readFileSync(FINANCE, "utf8"), FINANCE))
  const quote = inventory.servers[0]!.tools[0]!

  it("schemaDrift flags only steps whose recorded hash differs; no hash or an unknown tool is skipped", () => {
    const seq = [
      { step: 1, server: "fmp", tool: quote.name, params: "{}", schema_hash: quote.schema_hash },
      { step: 2, server: "fmp", tool: quote.name, params: "{}", schema_hash: "f".repeat(64) },
      { step: 3, server: "fmp", tool: quote.name, params: "{}" },
      { step: 4, server: "fmp", tool: quote.name, params: "{}", schema_hash: "" },
      { step: 5, server: "fmp", tool: "no_such_tool", params: "{}", schema_hash: "f".repeat(64) }
    ]
    expect(schemaDrift(inventory, seq)).toEqual([{
      field: "reward_spec.ground_truth.tool_sequence[1].schema_hash",
      message: `step 2 fmp/${quote.name}: the tool's input schema changed since the row was made (row ffffffffffff, ` +
        `inventory ${quote.schema_hash!.slice(0, 12)})`
    }])
  })

  it("only readOnlyHint: true runs by default; TOOL, SERVER.TOOL and all allow the others", () => {
    const inv = Either.getOrThrow(decodeInventory({
      servers: [{
        name: "fs",
        tools: [
          { name: "read", annotations: { readOnlyHint: true } },
          { name: "write", annotations: { readOnlyHint: false } },
          { name: "unannotated" }
        ]
      }]
    }))
    const steps = ["read", "write", "unannotated", "missing"].map((tool, i) => ({
      step: i + 1,
      server: "fs",
      tool,
      params: {},
      derivedParams: []
    }))
    const blocked = (allow?: string) => blockedSteps(inv, steps, parseAllowList(allow)).map((s) => s.tool)
    expect(blocked()).toEqual(["write", "unannotated", "missing"])
    expect(blocked("write,fs.unannotated")).toEqual(["missing"])
    expect(blocked("other.write")).toEqual(["write", "unannotated", "missing"])
    expect(blocked("all")).toEqual([])
  })

  it("the repair message carries the tool's own error text", () => {
    const text = verificationRepairMessage(
      new VerificationFailed({
        status: "tool-error",
        step: 2,
        server: "fs",
        tool: "read_file",
        reason: "ENOENT: no such file '/x'"
      })
    )
    expect(text).toContain("step 2 (fs/read_file)")
    expect(text).toContain("ENOENT: no such file '/x'")
  })
})

describe("verify's servers: lines (formatServerLines)", () => {
  const state = (server: string, version: string, starts = 1) => ({
    server,
    serverInfo: { name: server, version },
    starts,
    unavailable: undefined
  })

  it("lists the journal's servers with the versions its records hold; one this session also saw is listed once", () => {
    const earlier = new Map<string, Set<string | null>>([
      ["a", new Set(["a@1"])],
      ["b", new Set([])],
      ["c", new Set([null, "c@2"])]
    ])
    expect(formatServerLines([state("a", "1", 2)], earlier)).toEqual([
      "  a: a@1, started 2 times",
      "  b: version not recorded (an earlier session's rows; not started in this session)",
      "  c: no server info, c@2 (an earlier session's rows; not started in this session)"
    ])
    expect(formatServerLines([state("a", "2")], earlier).slice(0, 1)).toEqual([
      "  a: a@2 (this session); a@1 (an earlier session's rows)"
    ])
    expect(formatServerLines([state("z", "1"), state("a", "1")], new Map())).toEqual(["  a: a@1", "  z: z@1"])
  })
})

describe("the verify summary", () => {
  const summary = (resumed: number, copies: number) => ({
    stages: { rows: 6, read: 6, contract: 6, schema: 6, execution: 6 },
    statuses: {
      verified: 6,
      "tool-error": 0,
      timeout: 0,
      "server-unavailable": 0,
      "skipped-side-effect": 0,
      interrupted: 0
    },
    toolErrors: {},
    resumed,
    copies,
    derivedNotFound: 0
  })
  const statuses = (resumed: number, copies: number) =>
    formatSummary(summary(resumed, copies)).split("\n").find((l) => l.startsWith("statuses: ")) ?? ""

  it("says which rows took their outcome from elsewhere apart from the last status's count", () => {
    // Before: "interrupted 0 (4 from the journal of an earlier run)", read as 4 interrupted rows.
    const counts = "statuses: verified 6, tool-error 0, timeout 0, server-unavailable 0, skipped-side-effect 0, " +
      "interrupted 0"
    expect(statuses(0, 0)).toBe(counts)
    expect(statuses(4, 0)).toBe(`${counts}; of these rows, 4 from the journal of an earlier run`)
    expect(statuses(0, 2)).toBe(`${counts}; of these rows, 2 the same as an earlier row of the run, not run again`)
    expect(statuses(4, 2)).toBe(
      `${counts}; of these rows, 4 from the journal of an earlier run, 2 the same as an earlier row of the run, ` +
        "not run again"
    )
  })
})

describe("checkRecord's schema stage names the step's place in the list", () => {
  // Before: the field was built from the step's number, so a single step numbered 7 was named
  // tool_sequence[6] and a second step numbered 1 again tool_sequence[0]; validate names [0] and [1].
  const inventory = Either.getOrThrow(decodeInventory({
    servers: [{
      name: "fs",
      tools: [{ name: "read", inputSchema: { type: "object", properties: { path: { type: "string" } } } }]
    }]
  }))
  const checked = (
    numbers: ReadonlyArray<number>,
    params: ReadonlyArray<Record<string, unknown>> = numbers.map(() => ({}))
  ) => {
    const row = rowFor("r", numbers.map((_, i) => ({ server: "fs", tool: "read", params: params[i]! })))
    row.reward_spec.ground_truth.tool_sequence.forEach((s: any, i: number) => (s.step = numbers[i]))
    const result = checkRecord(
      { file: "f.jsonl", order: 0, record: { _tag: "Record", index: 0, value: row } },
      inventory
    )
    return result._tag === "reject" ? [result.reject.field, result.reject.step] : result._tag
  }

  it.each(
    [
      [[7], undefined, ["reward_spec.ground_truth.tool_sequence[0].step", 7]],
      [[1, 1], undefined, ["reward_spec.ground_truth.tool_sequence[1].step", 1]],
      [[2, 2], undefined, ["reward_spec.ground_truth.tool_sequence[0].step", 2]],
      [[1, 2], [{}, { path: 3 }], ["reward_spec.ground_truth.tool_sequence[1].params.path", 2]]
    ] as const
  )("steps numbered %j", (numbers, params, expected) => {
    expect(checked(numbers, params)).toEqual(expected)
  })
})
