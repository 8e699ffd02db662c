/**
 * What a cassette reader says of a line (`entryFault`): the shared cases of test/fixtures/cassettes/lines.json,
 * which python/tests/test_cassettes.py reads too (a line one side refuses, the other refuses with the same words),
 * and a line's key checked against its server, tool and params by the stats' reader and by verify's store.
 */
import { Effect, Layer, Logger } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { Cassettes } from "../src/services/Cassettes.js"
import { StorageLive } from "../src/services/Storage.js"
import { callKey } from "../src/skyrl/canonical.js"
import type { CassetteEntry } from "../src/skyrl/cassettes.js"
import { cassetteReader, cassetteStatsCollector, entryFault, makeEntry } from "../src/skyrl/cassettes.js"

const LINES = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", "cassettes", "lines.json"), "utf8")) as {
  readonly cases: ReadonlyArray<
    {
      readonly name: string
      readonly line: string
      readonly fault: string | null
      readonly trusted_fault: string | null
    }
  >
}

const temps: Array<string> = []
afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })))

const entry = (params: Record<string, unknown>, text: string): CassetteEntry =>
  makeEntry({
    server: "srv",
    tool: "t",
    params,
    result: { content: [{ type: "text", text }], structuredContent: null, isError: false },
    duration_ms: 3,
    server_version: "srv@1",
    recorded_at: "2026-12-05T12:00:00.000Z",
    illustrative: false
  })

describe("a cassette line's key is the key of its server, tool and params", () => {
  it("reads every case of test/fixtures/cassettes/lines.json as the Python reader does", () => {
    expect(LINES.cases.length).toBeGreaterThan(10)
    for (const c of LINES.cases) {
      const value = JSON.parse(c.line)
      expect(entryFault(value) ?? null, c.name).toBe(c.fault)
      expect(entryFault(value, "trusted") ?? null, c.name).toBe(c.trusted_fault)
      // An entry's key is the key of its call: replay finds it under the key the call is sent with.
      if (c.fault === null) expect(value.key, c.name).toBe(callKey(value.server, value.tool, value.params))
    }
  })

  it("a line whose key is another call's, whose params are missing or edited since, is a bad line of the stats", () => {
    // Before: each was an entry (exit 0), and MCPToolEnv answered the call its key names with its result.
    const good = entry({ q: "AAPL" }, "AAPL 230.10 USD")
    const other = entry({ q: "MSFT" }, "MSFT 410.00 USD")
    const { params: _params, ...noParams } = entry({ q: "NVDA" }, "NVDA")
    const lines = [
      JSON.stringify(good),
      JSON.stringify({ ...other, key: good.key }), // copied, its params and result changed, its key kept
      JSON.stringify({ ...good, params: { q: "AAPL " } }), // params edited after recording
      JSON.stringify(noParams),
      JSON.stringify({ ...good, params: "{\"q\":\"AAPL\"}" }),
      JSON.stringify(other)
    ]
    const collector = cassetteStatsCollector()
    const kept: Array<string> = []
    const reader = cassetteReader((e, replaces) => {
      kept.push(e.key)
      collector.add(e, replaces)
    })
    for (const line of lines) reader.line(line)
    const counts = reader.done(false)
    expect(kept).toEqual([good.key, other.key])
    expect(counts).toMatchObject({ lines: 6, duplicates: 0, invalid: [2, 3, 4, 5], torn: false })
    expect(counts.reasons).toEqual([
      `line 2: key: "${good.key}" is not the key of its server, tool and params ("${other.key}")`,
      `line 3: key: "${good.key}" is not the key of its server, tool and params ("${
        callKey("srv", "t", { q: "AAPL " })
      }")`,
      "line 4: params: is missing",
      "line 5: params: expected an object, got \"{\\\"q\\\":\\\"AAPL\\\"}\""
    ])
    expect(collector.stats("f", 0, counts).entries).toBe(2)
    // Keys taken as written (`cassettes stats --trust-keys`): the rule before, lines 2, 3 and 5 duplicates of line 1.
    const trusting = cassetteReader(() => undefined, undefined, undefined, "trusted")
    for (const line of lines) trusting.line(line)
    expect(trusting.done(false)).toMatchObject({ invalid: [], duplicates: 3 })
  })

  it("verify's store does not take a line keyed otherwise for its key: it warns, naming it, and records the call", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-cassette-keys-"))
    temps.push(dir)
    const file = join(dir, "cassettes.jsonl")
    const asked = entry({ q: "AAPL" }, "AAPL 230.10 USD")
    // A line under the key of `asked` that holds another call's params and result.
    const forged = { ...entry({ q: "MSFT" }, "MSFT 410.00 USD"), key: asked.key }
    writeFileSync(file, JSON.stringify(forged) + "\n")
    const logs: Array<string> = []
    const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push(String(message))))
    const result = await Effect.runPromise(
      Effect.gen(function*() {
        const store = yield* Cassettes
        const had = store.has(asked.key)
        const recorded = yield* store.record(asked, { wait: true })
        return { had, recorded, counts: yield* store.counts }
      }).pipe(Effect.provide(Cassettes.layer(dir).pipe(Layer.provide(StorageLive))), Effect.provide(capture))
    )
    // Was: the key counted as stored (`had` true), the call not recorded, and replay gave MSFT's result for AAPL.
    expect(result).toEqual({ had: false, recorded: true, counts: { existing: 0, added: 1, replaced: 0, differed: 0 } })
    expect(logs).toEqual([
      `${file}: 1 line(s) are not cassette entries (line 1; the first: line 1: key: "${asked.key}" is not the key of ` +
      `its server, tool and params ("${callKey("srv", "t", { q: "MSFT" })}")): MCPToolEnv refuses this store and ` +
      "`skyrl cassettes stats` exits 1 on it; this run appends to it all the same (mend or remove those lines)"
    ])
    const texts = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l).result.content[0].text)
    expect(texts).toEqual(["MSFT 410.00 USD", "AAPL 230.10 USD"])
  })
})
