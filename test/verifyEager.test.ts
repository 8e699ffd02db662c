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
  [step(1, "everything", "trigger-long-running-operation", { duration: 3, steps: 1 })],
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
        timeout: "1 second",
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
