/**
 * The Verifier gives the same outcomes and cassette lines whether its calls are sent at once on a server
 * that is up (`McpServers.begin` when calls in flight are not bounded by the servers layer, as `skyrl
 * verify` runs: each step's call goes out before the step before is recorded) or go through the servers
 * layer's bound (`maxInFlight`). Real servers over stdio: server-everything and server-filesystem over a
 * temporary directory.
 */
import { Effect, Layer } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Inventory } from "../src/domain/inventory.js"
import { importInventory } from "../src/programs/toolsImport.js"
import { McpClientLive } from "../src/services/McpClient.js"
import { StorageLive } from "../src/services/Storage.js"
import { Verifier } from "../src/services/Verifier.js"
import type { VerifyStep } from "../src/skyrl/verification.js"
import { parseAllowList } from "../src/skyrl/verification.js"
import { nodeServer, serverBin } from "./support/verifyRows.js"

const live = Layer.merge(McpClientLive, StorageLive)
const root = mkdtempSync(join(tmpdir(), "skyrl-verify-direct-"))
writeFileSync(join(root, "notes.txt"), "alpha\n")
const everything = nodeServer("everything", [serverBin("server-everything"), "stdio"])
const fs = nodeServer("fs", [serverBin("server-filesystem"), root])

afterAll(() => rmSync(root, { recursive: true, force: true }))

const step = (
  n: number,
  server: string,
  tool: string,
  params: Record<string, unknown>,
  derived: Array<string> = []
) => ({
  step: n,
  server,
  tool,
  params,
  derivedParams: derived
})

/** Plans with every outcome: verified (several content kinds, derived params), tool error, timeout, protocol error. */
const plans: ReadonlyArray<ReadonlyArray<VerifyStep>> = [
  [step(1, "everything", "echo", { message: "hello" }), step(2, "everything", "get-sum", { a: 2, b: 3 })],
  [
    step(1, "everything", "get-tiny-image", {}),
    step(2, "everything", "get-structured-content", { location: "Chicago" })
  ],
  [step(1, "everything", "get-sum", { a: 40, b: 2 }), step(2, "everything", "echo", { message: "42" }, ["message"])],
  [step(1, "fs", "read_text_file", { path: join(root, "notes.txt") }), step(2, "everything", "echo", { message: "x" })],
  [step(1, "everything", "echo", { message: "before" }), step(2, "fs", "read_text_file", { path: join(root, "no") })],
  [step(1, "everything", "trigger-long-running-operation", { duration: 6, steps: 1 })],
  [step(1, "everything", "get-sum", { a: "not a number", b: 1 }), step(2, "everything", "echo", { message: "y" })],
  [step(1, "everything", "echo", { message: "after" })]
]

/** Runs the plans one after another (servers started by a first plan) and returns outcomes and cassette lines. */
const runAll = (inventory: Inventory, dir: string, maxInFlight: number | undefined) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const verifier = yield* Verifier
      yield* verifier.verify([
        step(1, "everything", "echo", { message: "start" }),
        step(2, "fs", "list_allowed_directories", {})
      ])
      const outcomes = []
      for (const plan of plans) outcomes.push(yield* Effect.either(verifier.verify(plan)))
      yield* verifier.flush
      return outcomes
    }).pipe(
      Effect.provide(Verifier.live({
        inventory,
        allowSideEffects: parseAllowList(undefined),
        specs: [everything, fs],
        cassettesDir: join(dir, "cassettes"),
        // Short of the 6 s long-running operation that is to time out (a server's start has 30 s).
        timeout: "5 seconds",
        ...(maxInFlight === undefined ? {} : { maxInFlight })
      })),
      Effect.provide(live)
    )
  ).then((outcomes) => ({
    outcomes: outcomes.map((o) =>
      o._tag === "Right" ? { ...o.right, verified_at: "T" } : { ...o.left, message: o.left.message }
    ),
    cassettes: readFileSync(join(dir, "cassettes", "cassettes.jsonl"), "utf8")
      .replace(/"recorded_at":"[^"]*"/g, "\"recorded_at\":\"T\"")
      .replace(/"duration_ms":\d+/g, "\"duration_ms\":0")
  }))

describe("the Verifier's calls sent at once and through the in-flight bound", () => {
  let inventory: Inventory
  beforeAll(async () => {
    const imported = await Effect.runPromise(importInventory([everything, fs]).pipe(Effect.provide(live)))
    inventory = imported.inventory!
  }, 30_000)

  it("give the same outcomes and cassette lines for every kind of outcome", async () => {
    const direct = await runAll(inventory, mkdtempSync(join(root, "direct-")), undefined)
    const chained = await runAll(inventory, mkdtempSync(join(root, "chained-")), 4)
    expect(direct).toEqual(chained)
    expect(direct.outcomes.map((o) => ("status" in o ? o.status : o._tag))).toEqual([
      "verified",
      "verified",
      "verified",
      "verified",
      "tool-error",
      "timeout",
      "tool-error",
      "verified"
    ])
    // Every call that answered (the timeout did not), the tool errors included: the start plan's 2, then per plan.
    expect(direct.cassettes.split("\n").filter((l) => l !== "")).toHaveLength(2 + 2 + 2 + 2 + 2 + 2 + 0 + 1 + 1)
  }, 60_000)
})

/**
 * A stdio MCP server (JSON-RPC by hand) whose `crash` tool exits without answering while its crash file
 * holds fewer than `crashes` lines (one is added per crash); `ok` answers.
 */
const CRASHING = String.raw`
const fs = require("node:fs")
const [file, crashes] = [process.argv[1], Number(process.argv[2])]
const out = (m) => process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...m }) + "\n")
const tool = (name) => ({ name, inputSchema: { type: "object" }, annotations: { readOnlyHint: true } })
let rest = ""
process.stdin.on("data", (chunk) => {
  rest += chunk
  for (let nl = rest.indexOf("\n"); nl !== -1; nl = rest.indexOf("\n")) {
    const m = JSON.parse(rest.slice(0, nl))
    rest = rest.slice(nl + 1)
    if (m.method === "initialize") {
      out({ id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "crashing", version: "1" } } })
    } else if (m.method === "tools/list") out({ id: m.id, result: { tools: [tool("ok"), tool("crash")] } })
    else if (m.method === "tools/call") {
      const seen = fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").length - 1 : 0
      if (m.params.name === "crash" && seen < crashes) {
        fs.appendFileSync(file, "crash\n")
        process.exit(1)
      }
      out({ id: m.id, result: { content: [{ type: "text", text: m.params.name }] } })
    }
  }
})
`

describe("a server lost during a call (calls sent at once on a server that is up)", () => {
  const run = async (crashes: number) => {
    const dir = mkdtempSync(join(root, "crash-"))
    const spec = nodeServer("crashing", ["-e", CRASHING, join(dir, "crashes"), String(crashes)])
    const imported = await Effect.runPromise(importInventory([spec]).pipe(Effect.provide(live)))
    return Effect.runPromise(
      Effect.gen(function*() {
        const verifier = yield* Verifier
        // Starts the server: the plan below is sent at once.
        yield* verifier.verify([step(1, "crashing", "ok", {})])
        const outcome = yield* Effect.either(
          verifier.verify([step(1, "crashing", "ok", { n: 1 }), step(2, "crashing", "crash", {})])
        )
        return { outcome, report: yield* verifier.report }
      }).pipe(
        Effect.provide(Verifier.live({
          inventory: imported.inventory!,
          allowSideEffects: parseAllowList(undefined),
          specs: [spec],
          cassettesDir: join(dir, "cassettes"),
          timeout: "5 seconds"
        })),
        Effect.provide(live)
      )
    )
  }

  it("restarts the server and runs the plan again once: verified when it answers then", async () => {
    const { outcome, report } = await run(1)
    expect(outcome._tag === "Right" && outcome.right.steps.map((s) => s.tool)).toEqual(["ok", "crash"])
    expect(report.servers.map((s) => s.starts)).toEqual([2])
  }, 30_000)

  it("server-unavailable when it goes away again", async () => {
    const { outcome, report } = await run(99)
    expect(outcome._tag === "Left" && outcome.left).toMatchObject({
      status: "server-unavailable",
      step: 2,
      tool: "crash",
      reason: expect.stringContaining("went away during the call twice")
    })
    expect(report.servers.map((s) => s.starts)).toEqual([2])
  }, 30_000)
})
