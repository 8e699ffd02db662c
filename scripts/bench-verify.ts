/**
 * Bench section 6 (`npm run bench -- 6`): `skyrl verify` throughput against server-everything over
 * stdio, in-process (the verify program with its live layers: McpServers, Cassettes, Storage), at
 * concurrency 1 and 8, next to the server's own call rate measured in the same run by a bare SDK client
 * issuing the same calls at the same concurrency. Each row has two steps (echo, get-sum) with params
 * distinct per row, so every call is a new cassette line; the journal and the output are written too.
 * Both measurements first run WARM_UP_ROWS rows (other params) on the same server, untimed: a fresh
 * server-everything is several times slower until its JIT has warmed up.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { Effect, Layer, Logger, LogLevel, Runtime } from "effect"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { importInventory } from "../src/programs/toolsImport.js"
import { verifyDatasets } from "../src/programs/verify.js"
import { McpClientLive } from "../src/services/McpClient.js"
import type { Storage } from "../src/services/Storage.js"
import { StorageLive } from "../src/services/Storage.js"
import { Verifier } from "../src/services/Verifier.js"
import { parseAllowList } from "../src/skyrl/verification.js"
import { nodeServer, rowFor, serverBin, writeJsonl } from "../test/support/verifyRows.js"

const GOAL = 0.8
/** Rows run before timing, on the same server, in both measurements (both processes' JIT warms up). */
const WARM_UP_ROWS = 500
const WARM_UP_OFFSET = 1_000_000
const everything = nodeServer("everything", [serverBin("server-everything"), "stdio"])
const calls = (k: number) => [
  { tool: "echo", params: { message: `row ${k}` } },
  { tool: "get-sum", params: { a: k, b: 1 } }
]

/** A bare SDK client doing `rows` × the two calls, `concurrency` rows at once. */
const rawRate = async (rows: number, concurrency: number): Promise<Measure> => {
  const transport = new StdioClientTransport({
    command: everything._tag === "stdio" ? everything.command : "",
    args: everything._tag === "stdio" ? [...everything.args] : [],
    stderr: "pipe"
  })
  const client = new Client({ name: "bench", version: "0" })
  await client.connect(transport)
  const drive = async (from: number, to: number) => {
    let next = from
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < to) {
        const k = next++
        for (const c of calls(k)) await client.callTool({ name: c.tool, arguments: c.params })
      }
    }))
  }
  await drive(WARM_UP_OFFSET, WARM_UP_OFFSET + WARM_UP_ROWS)
  const m = await measured(() => drive(0, rows))
  await client.close()
  return perRow(rows, m)
}

const live = Layer.merge(McpClientLive, StorageLive)

/** CPU time (ms) used so far by this process's children (the servers), from /proc; 0 where there is none. */
const childrenCpuMs = (): number => {
  try {
    let ticks = 0
    for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      if (Number(fields[1]) === process.pid) ticks += Number(fields[11]) + Number(fields[12])
    }
    return ticks * 10
  } catch {
    return 0
  }
}

let hook: { before: () => Promise<void>; after: () => Promise<void> } | undefined
/** For profiling: called around each measured run. */
export const setMeasureHook = (h: typeof hook) => {
  hook = h
}

/** Runs `f` and returns its wall time and the CPU time of this process and of its children (ms). */
const measured = async (f: () => Promise<void>) => {
  if (hook !== undefined) await hook.before()
  const cpu0 = process.cpuUsage()
  const children0 = childrenCpuMs()
  const t0 = performance.now()
  await f()
  const wall = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  if (hook !== undefined) await hook.after()
  return { wall, clientCpu: (cpu.user + cpu.system) / 1000, serverCpu: childrenCpuMs() - children0 }
}

export interface Measure {
  /** Rows per second. */
  readonly rate: number
  /** CPU per row, µs: this process (the client), and the server. */
  readonly clientCpu: number
  readonly serverCpu: number
}

const perRow = (rows: number, m: { wall: number; clientCpu: number; serverCpu: number }): Measure => ({
  rate: (rows * 1000) / m.wall,
  clientCpu: (m.clientCpu * 1000) / rows,
  serverCpu: (m.serverCpu * 1000) / rows
})

/** `verifyDatasets` on `rows` rows (servers warm). */
const verifyRate = async (rows: number, concurrency: number): Promise<Measure> => {
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
    const warm = dataset("warm.jsonl", WARM_UP_ROWS, WARM_UP_OFFSET)
    const input = dataset("rows.jsonl", rows, 0)
    const run = (file: string, out: string) =>
      verifyDatasets({ files: [file], out: join(dir, out), inventory, concurrency, resume: false })
    const m = await Effect.runPromise(
      Effect.gen(function*() {
        yield* run(warm, "warm-out.jsonl")
        const runtime = yield* Effect.runtime<Verifier | Storage>()
        return yield* Effect.promise(() =>
          measured(async () => {
            const result = await Runtime.runPromise(runtime)(run(input, "out.jsonl"))
            if (result.written !== rows) throw new Error(`expected ${rows} verified rows, got ${result.written}`)
          })
        )
      }).pipe(
        Effect.provide(
          Verifier.live({
            inventory,
            allowSideEffects: parseAllowList(undefined),
            specs: [everything],
            cassettesDir: join(dir, "cassettes")
          })
        ),
        Effect.provide(live),
        Logger.withMinimumLogLevel(LogLevel.Warning)
      )
    )
    return perRow(rows, m)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** One pair of measurements: verify, then the bare client. */
export const benchVerifyOnce = async (rows: number, concurrency: number) => ({
  verify: await verifyRate(rows, concurrency),
  raw: await rawRate(rows, concurrency)
})

const REPEATS = 3

export const benchVerify = async (verdict: (ok: boolean) => string) => {
  console.log(`## 6. skyrl verify against server-everything (stdio; 2 calls per row; goal ratio >= ${GOAL})`)
  console.log(`(each line: the median of ${REPEATS} pairs, verify and the server's own rate measured back to back)`)
  for (const [concurrency, rows] of [[1, 1000], [8, 3000]] as const) {
    const pairs: Array<{ verify: Measure; raw: Measure; ratio: number }> = []
    for (let i = 0; i < REPEATS; i++) {
      const { raw, verify } = await benchVerifyOnce(rows, concurrency)
      pairs.push({ verify, raw, ratio: verify.rate / raw.rate })
    }
    const m = [...pairs].sort((a, b) => a.ratio - b.ratio)[Math.floor(REPEATS / 2)]!
    console.log(
      `concurrency ${concurrency}: ${rows} rows, ${m.verify.rate.toFixed(0)} rows/s verified ` +
        `(${(m.verify.rate * 2).toFixed(0)} calls/s); server's own rate ${(m.raw.rate * 2).toFixed(0)} calls/s; ` +
        `ratio ${m.ratio.toFixed(3)} (all: ${pairs.map((p) => p.ratio.toFixed(2)).join(", ")})  ${
          verdict(m.ratio >= GOAL)
        }`
    )
    console.log(
      `  CPU per row: verify ${m.verify.clientCpu.toFixed(0)} µs + server ${m.verify.serverCpu.toFixed(0)} µs; ` +
        `bare client ${m.raw.clientCpu.toFixed(0)} µs + server ${m.raw.serverCpu.toFixed(0)} µs`
    )
  }
  console.log()
}

if (import.meta.url === `file://${process.argv[1]}`) await benchVerify((ok) => (ok ? "ok" : "BELOW GOAL"))
