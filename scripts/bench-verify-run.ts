/**
 * The lanes of bench section 6 (scripts/bench-verify.ts), each run in a process of its own: `verify`
 * (`skyrl verify`'s program with its live layers, kept open across runs, under the V8 flags the CLI sets for
 * the `verify` command: bin/bundle.js `runtimeFlags`), `bare` (the SDK's client alone: the server's own call
 * rate) and `direct` (verify's stdio transport alone, for the diagnosis). bench-verify.ts bundles this file
 * with esbuild as scripts/build.mjs bundles the CLI (packages left to node_modules; under tsx, every closure
 * goes through tsx's name-keeping wrapper, a cost per row the shipped CLI does not pay) and forks it once
 * per lane with SKYRL_BENCH_LANE set (see `Lane`); the lane warms up, says it is ready, then runs the slices
 * it is sent and answers each with its wall time and the CPU time of its process, its main thread and its
 * server, from /proc.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { Effect, Exit, Layer, Logger, LogLevel, Runtime, Scope } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { setFlagsFromString } from "node:v8"
import { familyOf, runtimeFlags } from "../bin/bundle.js"
import { importInventory } from "../src/programs/toolsImport.js"
import { verifyDatasets } from "../src/programs/verify.js"
import type { McpServerSpec } from "../src/services/McpClient.js"
import { McpClientLive } from "../src/services/McpClient.js"
import { StdioTransport } from "../src/services/StdioTransport.js"
import type { Storage } from "../src/services/Storage.js"
import { StorageLive } from "../src/services/Storage.js"
import { Verifier } from "../src/services/Verifier.js"
import { parseAllowList } from "../src/skyrl/verification.js"
import { benchCalls } from "./bench-verify-calls.js"

const live = Layer.merge(McpClientLive, StorageLive)

/** verify on its own server (Verifier layer kept open): `run(file)` verifies one dataset. */
export const verifier = async (dir: string, server: McpServerSpec) => {
  const imported = await Effect.runPromise(importInventory([server]).pipe(Effect.provide(live)))
  const inventory = imported.inventory!
  const scope = Effect.runSync(Scope.make())
  const layer = Verifier.live({
    inventory,
    allowSideEffects: parseAllowList(undefined),
    specs: [server],
    cassettesDir: join(dir, "cassettes")
  }).pipe(Layer.provideMerge(live))
  const runtime = await Effect.runPromise(
    Layer.toRuntime(layer).pipe(Scope.extend(scope), Logger.withMinimumLogLevel(LogLevel.Warning))
  )
  let runs = 0
  const run = (file: string, concurrency: number, rows: number) =>
    Runtime.runPromise(runtime as Runtime.Runtime<Verifier | Storage>)(
      verifyDatasets({ files: [file], out: join(dir, `out-${runs++}.jsonl`), inventory, concurrency, resume: false })
        .pipe(Logger.withMinimumLogLevel(LogLevel.Warning))
    ).then((result) => {
      if (result.written !== rows) throw new Error(`expected ${rows} verified rows, got ${result.written}`)
    })
  return { run, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

/**
 * `drive(from, to, calls)`: the calls of rows from..to-1 through `call`, `concurrency` rows at a time, each
 * row's calls one after the other (as verify runs a plan).
 */
const driver =
  (concurrency: number, call: (tool: string, params: Record<string, unknown>) => Promise<unknown>) =>
  async (
    from: number,
    to: number,
    calls: (k: number) => ReadonlyArray<{ tool: string; params: Record<string, unknown> }>
  ) => {
    let next = from
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < to) {
        const k = next++
        for (const c of calls(k)) await call(c.tool, c.params)
      }
    }))
  }

/**
 * The same calls through verify's stdio transport alone (`StdioTransport.call`, the direct lane verify's
 * calls take: its request text, ids and batched writes), with none of verify's work around them (rows,
 * checks, cassettes, journal, output): `drive(from, to)` makes the calls of rows from..to-1, `concurrency`
 * rows at a time, as the bare client does. Tells verify's bookkeeping from its transport, and how the
 * server fares with verify's requests.
 */
export const directLane = async (server: McpServerSpec, concurrency: number) => {
  if (server._tag !== "stdio") throw new Error("directLane: a stdio server")
  const transport = new StdioTransport({ command: server.command, args: [...server.args], stderr: "pipe" })
  const client = new Client({ name: "bench", version: "0" })
  await client.connect(transport)
  const call = (name: string, args: Record<string, unknown>) =>
    new Promise<void>((resolve, reject) =>
      transport.call(name, args, 30_000, { done: (error) => (error === undefined ? resolve() : reject(error)) })
    )
  const drive = driver(concurrency, call)
  return { drive, pid: transport.pid ?? undefined, close: () => client.close() }
}

/** A bare SDK client on its own server: `drive(from, to, calls)` makes the calls of rows from..to-1. */
export const bareClient = async (server: McpServerSpec, concurrency: number) => {
  if (server._tag !== "stdio") throw new Error("bareClient: a stdio server")
  const transport = new StdioClientTransport({ command: server.command, args: [...server.args], stderr: "pipe" })
  const client = new Client({ name: "bench", version: "0" })
  await client.connect(transport)
  const drive = driver(concurrency, (name, args) => client.callTool({ name, arguments: args }))
  return { drive, pid: transport.pid ?? undefined, close: () => client.close() }
}

// ---------------------------------------------------------------------------------------------
// The lane process

/** What a lane is told at its start (SKYRL_BENCH_LANE, JSON). */
export interface Lane {
  readonly kind: "verify" | "bare" | "direct"
  readonly server: McpServerSpec
  readonly concurrency: number
  /** verify: its working directory (outputs, cassettes); its warm-up dataset of `warmUp` rows from `warmUpFrom`. */
  readonly dir: string
  readonly warmUpFile: string
  readonly warmUpFrom: number
  readonly warmUp: number
}

/** A slice to run: rows from..to-1 (verify: the dataset `file` holding them). */
export interface SliceRequest {
  readonly from: number
  readonly to: number
  readonly file: string
}

/** What a slice took: wall time, and CPU time (ms) of the lane's process, its main thread and its server. */
export interface SliceTimes {
  readonly rows: number
  readonly wallMs: number
  readonly cpuMs: number
  readonly mainMs: number
  readonly serverCpuMs: number
  readonly serverWakeUps: number
}

/** CPU time (ms) a process or thread has used so far, from /proc (0 where there is none). */
const cpuMsOf = (file: string): number => {
  try {
    const stat = readFileSync(file, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return 0
  }
}

/** Voluntary context switches of a process so far (each a wake-up after it waited), from /proc (0 where there is none). */
const wakeUpsOf = (pid: number | undefined): number => {
  try {
    return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0)
  } catch {
    return 0
  }
}

/** This process's child running `script` (the server verify started), from /proc. */
const childRunning = (script: string): number | undefined => {
  try {
    return readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number).find((pid) => {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid &&
        readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(script)
    })
  } catch {
    return undefined
  }
}

/** Sets up the lane, warms it up, then runs each slice it is sent (until it is sent `close`). */
const runLane = async (lane: Lane) => {
  let run: (slice: SliceRequest) => Promise<void>
  let close: () => Promise<void>
  let server: number | undefined
  if (lane.kind === "verify") {
    // As the CLI's `verify` runs: the flags bin/bundle.js sets once the bundle's modules are initialized.
    for (const flag of runtimeFlags(familyOf(["verify"])).afterInit) setFlagsFromString(flag)
    const v = await verifier(lane.dir, lane.server)
    run = (slice) => v.run(slice.file, lane.concurrency, slice.to - slice.from)
    close = v.close
    await v.run(lane.warmUpFile, lane.concurrency, lane.warmUp)
    server = childRunning(lane.server._tag === "stdio" ? lane.server.args[0] ?? "" : "")
  } else {
    const side = lane.kind === "bare"
      ? await bareClient(lane.server, lane.concurrency)
      : await directLane(lane.server, lane.concurrency)
    run = (slice) => side.drive(slice.from, slice.to, benchCalls)
    close = side.close
    server = side.pid
    await side.drive(lane.warmUpFrom, lane.warmUpFrom + lane.warmUp, benchCalls)
  }
  const self = `/proc/self/task/${process.pid}/stat`
  process.on("message", (message: SliceRequest | "close") => {
    if (message === "close") {
      void close().then(() => process.exit(0))
      return
    }
    const cpu0 = process.cpuUsage()
    const main0 = cpuMsOf(self)
    const server0 = cpuMsOf(`/proc/${server}/stat`)
    const wakeUps0 = wakeUpsOf(server)
    const t0 = performance.now()
    run(message).then(() => {
      const wallMs = performance.now() - t0
      const cpu = process.cpuUsage(cpu0)
      const times: SliceTimes = {
        rows: message.to - message.from,
        wallMs,
        cpuMs: (cpu.user + cpu.system) / 1000,
        mainMs: cpuMsOf(self) - main0,
        serverCpuMs: cpuMsOf(`/proc/${server}/stat`) - server0,
        serverWakeUps: wakeUpsOf(server) - wakeUps0
      }
      process.send!(times)
    }, (e) => {
      console.error(e)
      process.exit(1)
    })
  })
  process.send!("ready")
}

if (process.env.SKYRL_BENCH_LANE !== undefined && process.send !== undefined) {
  await runLane(JSON.parse(process.env.SKYRL_BENCH_LANE) as Lane)
}
