/**
 * Bench section 6 (`npm run bench -- 6`): `skyrl verify` throughput against server-everything over
 * stdio, in-process (the verify program with its live layers: McpServers, Cassettes, Storage), at
 * concurrency 1 and 8, next to the server's own call rate measured in the same run by a bare SDK client
 * issuing the same calls at the same concurrency.
 *
 * - Same work on both sides: each row has two steps (echo, get-sum) with params distinct per row, run one
 *   after the other; `concurrency` rows at once. verify also reads and checks the rows, writes every call
 *   to the cassettes (each is a new line), the journal and the output.
 * - Start-up excluded on both sides: each side has its own server, started and warmed up (WARM_UP_ROWS
 *   rows, untimed) before anything is timed: the figure is the steady state a long run spends most of its
 *   time in. V8 keeps optimizing new functions of verify (~20 per 500 rows) and of server-everything for
 *   the first few thousand rows: after a 500-row warm-up the timed rows were still paying for it (verify
 *   ~470 µs of CPU a row at concurrency 1 against ~360 after 3,000 rows, the server ~230 against ~150).
 * - Measured in slices, alternating: ROUNDS rounds of one verify run over SLICE rows and the bare client
 *   on the same number of rows (which side goes first alternates), summed per side. On a shared machine
 *   the load from other processes changes from second to second; back-to-back single runs gave ratios
 *   from 0.3 to 0.9 for the same code, slices spread both sides over the same moments.
 * - Each side runs in a process of its own (scripts/bench-verify-run.ts, forked once per side: a lane),
 *   verify's under the V8 flags the CLI sets for `verify`: in one process, garbage one side made was
 *   partly collected during the other's slice, and what a slice was charged depended on the side before it
 *   (2026-12-01: the same code measured 0.888 and 0.679 at concurrency 1 with two and three sides in
 *   the bench's process).
 * Each verify slice is a whole `verifyDatasets` run (its journal, output and rejects files are committed
 * with their fsyncs), so its fixed cost per run is counted too.
 * - Beside them, for the diagnosis only (not in the ratio): the same calls through verify's stdio transport
 *   alone (`directLane`: its request text and batched writes, none of verify's work around the calls), on a
 *   third server, in the same alternation; and each side's server wake-ups per row (voluntary context
 *   switches, from /proc): a server woken for fewer calls at a time spends more CPU per call.
 */
import { build } from "esbuild"
import type { ChildProcess } from "node:child_process"
import { fork } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { nodeServer, rowFor, serverBin, writeJsonl } from "../test/support/verifyRows.js"
import { benchCalls } from "./bench-verify-calls.js"
import type { Lane, SliceRequest, SliceTimes } from "./bench-verify-run.js"

const GOAL = 0.8
const WARM_UP_ROWS = 3_000
const WARM_UP_OFFSET = 1_000_000
const ROUNDS = 6
const everything = nodeServer("everything", [serverBin("server-everything"), "stdio"])

interface Totals {
  rows: number
  wallMs: number
  clientCpuMs: number
  /** The client's CPU on its main thread (the rest is V8's compiler and GC helper threads, libuv's pool). */
  clientMainMs: number
  serverCpuMs: number
  serverWakeUps: number
}

const zero = (): Totals => ({ rows: 0, wallMs: 0, clientCpuMs: 0, clientMainMs: 0, serverCpuMs: 0, serverWakeUps: 0 })

const add = (totals: Totals, t: SliceTimes) => {
  totals.rows += t.rows
  totals.wallMs += t.wallMs
  totals.clientCpuMs += t.cpuMs
  totals.clientMainMs += t.mainMs
  totals.serverCpuMs += t.serverCpuMs
  totals.serverWakeUps += t.serverWakeUps
  if (process.env.SKYRL_BENCH_SLICES !== undefined) {
    console.log(`    slice: ${(t.rows * 1000 / t.wallMs).toFixed(0)} rows/s`)
  }
}

/**
 * The lanes' program (scripts/bench-verify-run.ts), bundled as the CLI is (esbuild, no name-keeping wrappers;
 * the packages from node_modules, as the bare client's: hence a file below node_modules).
 */
const laneBundle = async (): Promise<string> => {
  const outfile = join(import.meta.dirname, "..", "node_modules", ".cache", "skyrl-bench", "bench-verify-run.mjs")
  await build({
    entryPoints: [join(import.meta.dirname, "bench-verify-run.ts")],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    logLevel: "warning"
  })
  return outfile
}

/** A lane's process, once it has warmed up: `run` sends it a slice and gives its times. */
const startLane = async (bundle: string, lane: Lane) => {
  // SKYRL_BENCH_VERIFY_NODE_FLAGS: node flags for the verify lane only (to measure one, e.g. a young
  // generation size, before giving it to the CLI).
  const flags = lane.kind === "verify"
    ? (process.env.SKYRL_BENCH_VERIFY_NODE_FLAGS ?? "").split(" ").filter(Boolean)
    : []
  const child: ChildProcess = fork(bundle, [], {
    execArgv: flags,
    env: { ...process.env, SKYRL_BENCH_LANE: JSON.stringify(lane) },
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  const next = () =>
    new Promise<unknown>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the ${lane.kind} lane exited (${code})`))
      child.once("exit", onExit)
      child.once("message", (m) => {
        child.off("exit", onExit)
        resolve(m)
      })
    })
  await next() // "ready"
  return {
    run: async (slice: SliceRequest) => {
      child.send(slice)
      return await next() as SliceTimes
    },
    close: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve())
        child.send("close")
      })
  }
}

export interface Figure {
  /** Rows per second. */
  readonly verify: number
  readonly raw: number
  readonly ratio: number
  /** CPU per row, µs: this process (the client) and the server, per side. */
  readonly cpu: { readonly verify: [number, number]; readonly raw: [number, number] }
  /** The client's CPU per row on its main thread, µs, per side (from /proc; 0 where there is none). */
  readonly mainThread: { readonly verify: number; readonly raw: number }
  /** Server wake-ups per row, per side. */
  readonly wakeUps: { readonly verify: number; readonly raw: number; readonly direct: number }
  /** verify's stdio transport alone (`directLane`): rows per second, CPU per row (client, its main thread, server). */
  readonly direct: { readonly rate: number; readonly cpu: [number, number]; readonly mainThread: number }
}

/** verify and the bare client at `concurrency`, in ROUNDS alternating slices of `slice` rows, each in its own process. */
export const measureVerify = async (concurrency: number, slice: number): Promise<Figure> => {
  const dir = mkdtempSync(join(tmpdir(), "skyrl-bench-verify-"))
  const dataset = (name: string, n: number, offset: number) =>
    writeJsonl(
      join(dir, name),
      Array.from({ length: n }, (_, i) =>
        rowFor(`r${offset + i}`, benchCalls(offset + i).map((c) => ({ server: "everything", ...c }))))
    )
  const bundle = await laneBundle()
  const lane = (kind: Lane["kind"]): Lane => ({
    kind,
    server: everything,
    concurrency,
    dir,
    warmUpFile: kind === "verify" ? dataset("warm.jsonl", WARM_UP_ROWS, WARM_UP_OFFSET) : "",
    warmUpFrom: WARM_UP_OFFSET,
    warmUp: WARM_UP_ROWS
  })
  const files = Array.from({ length: ROUNDS }, (_, r) => dataset(`rows-${r}.jsonl`, slice, r * slice))
  // One at a time, so that each warms up on a quiet machine.
  const v = await startLane(bundle, lane("verify"))
  const raw = await startLane(bundle, lane("bare"))
  const direct = await startLane(bundle, lane("direct"))
  try {
    const totals = { verify: zero(), raw: zero(), direct: zero() }
    for (let r = 0; r < ROUNDS; r++) {
      const request: SliceRequest = { from: r * slice, to: (r + 1) * slice, file: files[r]! }
      const sides = [
        async () => add(totals.verify, await v.run(request)),
        async () => add(totals.raw, await raw.run(request))
      ]
      for (const side of r % 2 === 0 ? sides : [...sides].reverse()) await side()
      add(totals.direct, await direct.run(request))
    }
    const rate = (t: Totals) => (t.rows * 1000) / t.wallMs
    const perRow = (t: Totals): [number, number] => [(t.clientCpuMs * 1000) / t.rows, (t.serverCpuMs * 1000) / t.rows]
    return {
      verify: rate(totals.verify),
      raw: rate(totals.raw),
      ratio: rate(totals.verify) / rate(totals.raw),
      cpu: { verify: perRow(totals.verify), raw: perRow(totals.raw) },
      mainThread: {
        verify: (totals.verify.clientMainMs * 1000) / totals.verify.rows,
        raw: (totals.raw.clientMainMs * 1000) / totals.raw.rows
      },
      wakeUps: {
        verify: totals.verify.serverWakeUps / totals.verify.rows,
        raw: totals.raw.serverWakeUps / totals.raw.rows,
        direct: totals.direct.serverWakeUps / totals.direct.rows
      },
      direct: {
        rate: rate(totals.direct),
        cpu: perRow(totals.direct),
        mainThread: (totals.direct.clientMainMs * 1000) / totals.direct.rows
      }
    }
  } finally {
    await direct.close()
    await raw.close()
    await v.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

export const benchVerify = async (verdict: (ok: boolean) => string) => {
  console.log(`## 6. skyrl verify against server-everything (stdio; 2 calls per row; goal ratio >= ${GOAL})`)
  console.log(
    `(each line: ${ROUNDS} alternating slices per side, verify runs and the bare client on the same calls, each side in a process of its own)`
  )
  for (const [concurrency, slice] of [[1, 500], [8, 1500]] as const) {
    const m = await measureVerify(concurrency, slice)
    console.log(
      `concurrency ${concurrency}: ${ROUNDS * slice} rows, ${m.verify.toFixed(0)} rows/s verified ` +
        `(${(m.verify * 2).toFixed(0)} calls/s); server's own rate ${(m.raw * 2).toFixed(0)} calls/s; ` +
        `ratio ${m.ratio.toFixed(3)}  ${verdict(m.ratio >= GOAL)}`
    )
    console.log(
      `  CPU per row: verify ${m.cpu.verify[0].toFixed(0)} µs + server ${m.cpu.verify[1].toFixed(0)} µs; ` +
        `bare client ${m.cpu.raw[0].toFixed(0)} µs + server ${m.cpu.raw[1].toFixed(0)} µs ` +
        `(the clients' main threads: verify ${m.mainThread.verify.toFixed(0)} µs, bare ${
          m.mainThread.raw.toFixed(0)
        } µs; the rest is V8's compiler and GC threads, libuv's pool); server wake-ups per row: verify ${
          m.wakeUps.verify.toFixed(2)
        }, bare ${m.wakeUps.raw.toFixed(2)}`
    )
    console.log(
      `  the same calls through verify's stdio transport alone (no rows, checks, cassettes, journal, output; ` +
        `not in the ratio): ${m.direct.rate.toFixed(0)} rows/s, CPU per row ${m.direct.cpu[0].toFixed(0)} µs (main ${
          m.direct.mainThread.toFixed(0)
        }) + server ${m.direct.cpu[1].toFixed(0)} µs, server wake-ups per row ${m.wakeUps.direct.toFixed(2)}`
    )
  }
  console.log()
}

if (import.meta.url === `file://${process.argv[1]}`) await benchVerify((ok) => (ok ? "ok" : "BELOW GOAL"))
