/**
 * Bench section 6 (`npm run bench -- 6`): `skyrl verify` throughput against server-everything over
 * stdio, in-process (the verify program with its live layers: McpServers, Cassettes, Storage), at
 * concurrency 1 and 8, next to the server's own call rate measured in the same run by a bare SDK client
 * issuing the same calls at the same concurrency. Each row has two steps (echo, get-sum) with params
 * distinct per row, so every call is a new cassette line; the journal and the output are written too.
 * Servers are started before timing (a one-row warm-up run on the same connections).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { Effect, Layer, Logger, LogLevel } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { importInventory } from "../src/programs/toolsImport.js"
import { verifyDatasets } from "../src/programs/verify.js"
import { McpClientLive } from "../src/services/McpClient.js"
import { StorageLive } from "../src/services/Storage.js"
import { Verifier } from "../src/services/Verifier.js"
import { parseAllowList } from "../src/skyrl/verification.js"
import { nodeServer, rowFor, serverBin, writeJsonl } from "../test/support/verifyRows.js"

const GOAL = 0.8
const everything = nodeServer("everything", [serverBin("server-everything"), "stdio"])
const calls = (k: number) => [
  { tool: "echo", params: { message: `row ${k}` } },
  { tool: "get-sum", params: { a: k, b: 1 } }
]

/** Calls per second of a bare SDK client: `rows` × the two calls, `concurrency` rows at once. */
const rawRate = async (rows: number, concurrency: number): Promise<number> => {
  const transport = new StdioClientTransport({
    command: everything._tag === "stdio" ? everything.command : "",
    args: everything._tag === "stdio" ? [...everything.args] : [],
    stderr: "pipe"
  })
  const client = new Client({ name: "bench", version: "0" })
  await client.connect(transport)
  let next = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < rows) {
      const k = next++
      for (const c of calls(k)) await client.callTool({ name: c.tool, arguments: c.params })
    }
  }))
  const rate = (rows * 2 * 1000) / (performance.now() - t0)
  await client.close()
  return rate
}

const live = Layer.merge(McpClientLive, StorageLive)

/** Rows verified per second by `verifyDatasets` (servers warm). */
const verifyRate = async (rows: number, concurrency: number): Promise<number> => {
  const dir = mkdtempSync(join(tmpdir(), "skyrl-bench-verify-"))
  try {
    const imported = await Effect.runPromise(importInventory([everything]).pipe(Effect.provide(live)))
    const inventory = imported.inventory!
    const dataset = (name: string, n: number, offset: number) =>
      writeJsonl(
        join(dir, name),
        Array.from({ length: n }, (_, i) =>
          rowFor(`r${offset + i}`, calls(offset + i).map((c) => ({ server: "everything", ...c }))))
      )
    const warm = dataset("warm.jsonl", 1, 1_000_000)
    const input = dataset("rows.jsonl", rows, 0)
    const run = (file: string, out: string) =>
      verifyDatasets({ files: [file], out: join(dir, out), inventory, concurrency, resume: false })
    const elapsed = await Effect.runPromise(
      Effect.gen(function*() {
        yield* run(warm, "warm-out.jsonl")
        const t0 = performance.now()
        const result = yield* run(input, "out.jsonl")
        if (result.written !== rows) throw new Error(`expected ${rows} verified rows, got ${result.written}`)
        return performance.now() - t0
      }).pipe(
        Effect.provide(
          Verifier.live({
            inventory,
            allowSideEffects: parseAllowList(undefined),
            specs: [everything],
            cassettesDir: join(dir, "cassettes"),
            maxInFlight: concurrency
          })
        ),
        Effect.provide(live),
        Logger.withMinimumLogLevel(LogLevel.Warning)
      )
    )
    return (rows * 1000) / elapsed
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** One pair of measurements: [verified rows/s, the server's own calls/s]. */
export const benchVerifyOnce = async (rows: number, concurrency: number): Promise<readonly [number, number]> => [
  await verifyRate(rows, concurrency),
  await rawRate(rows, concurrency)
]

const REPEATS = 3

export const benchVerify = async (verdict: (ok: boolean) => string) => {
  console.log(`## 6. skyrl verify against server-everything (stdio; 2 calls per row; goal ratio >= ${GOAL})`)
  console.log(`(each line: the median of ${REPEATS} pairs, verify and the server's own rate measured back to back)`)
  for (const [concurrency, rows] of [[1, 1000], [8, 3000]] as const) {
    const pairs: Array<{ verified: number; raw: number; ratio: number }> = []
    for (let i = 0; i < REPEATS; i++) {
      const [verified, raw] = await benchVerifyOnce(rows, concurrency)
      pairs.push({ verified, raw, ratio: (verified * 2) / raw })
    }
    const median = [...pairs].sort((a, b) => a.ratio - b.ratio)[Math.floor(REPEATS / 2)]!
    console.log(
      `concurrency ${concurrency}: ${rows} rows, ${median.verified.toFixed(0)} rows/s verified ` +
        `(${(median.verified * 2).toFixed(0)} calls/s); server's own rate ${median.raw.toFixed(0)} calls/s; ` +
        `ratio ${median.ratio.toFixed(3)} (all: ${pairs.map((p) => p.ratio.toFixed(2)).join(", ")})  ${
          verdict(median.ratio >= GOAL)
        }`
    )
  }
  console.log()
}

if (import.meta.url === `file://${process.argv[1]}`) await benchVerify((ok) => (ok ? "ok" : "BELOW GOAL"))
