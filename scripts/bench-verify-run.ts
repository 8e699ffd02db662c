/**
 * The verify side of bench section 6 (scripts/bench-verify.ts): `skyrl verify`'s program with its live
 * layers, kept open across runs. bench-verify.ts bundles this file with esbuild as scripts/build.mjs
 * bundles the CLI (packages left to node_modules) and runs the bundle: under tsx, every closure the code
 * makes goes through tsx's name-keeping wrapper, a cost per row the shipped CLI does not pay.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { Effect, Exit, Layer, Logger, LogLevel, Runtime, Scope } from "effect"
import { join } from "node:path"
import { importInventory } from "../src/programs/toolsImport.js"
import { verifyDatasets } from "../src/programs/verify.js"
import type { McpServerSpec } from "../src/services/McpClient.js"
import { McpClientLive } from "../src/services/McpClient.js"
import { StdioTransport } from "../src/services/StdioTransport.js"
import type { Storage } from "../src/services/Storage.js"
import { StorageLive } from "../src/services/Storage.js"
import { Verifier } from "../src/services/Verifier.js"
import { parseAllowList } from "../src/skyrl/verification.js"

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
  const drive = async (
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
  return { drive, pid: transport.pid ?? undefined, close: () => client.close() }
}
