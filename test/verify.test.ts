/**
 * `skyrl verify` in-process against real MCP servers from node_modules over stdio: everything
 * (stateless: every plan step runs), memory (stateful), filesystem over a temporary directory, a server
 * killed between rows, and bad input (no plan, unknown server, missing command, a server that never
 * answers initialize). Inventories are imported from the live servers (launch specs, annotations).
 */
import { Effect, Either, Fiber, Layer, Logger, Schema } from "effect"
import { createHash } from "node:crypto"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { decodeInventory, Inventory } from "../src/domain/inventory.js"
import { importInventory } from "../src/programs/toolsImport.js"
import { journalFileOf, rejectsFileOf, verifyDatasets } from "../src/programs/verify.js"
import type { McpServerSpec } from "../src/services/McpClient.js"
import { McpClientLive } from "../src/services/McpClient.js"
import { Storage, StorageLive } from "../src/services/Storage.js"
import type { VerifierLiveSettings } from "../src/services/Verifier.js"
import { Verifier } from "../src/services/Verifier.js"
import { cassetteReader } from "../src/skyrl/cassettes.js"
import { RowJson } from "../src/skyrl/layout.js"
import { parseAllowList } from "../src/skyrl/verification.js"
import { loggingInto } from "./support/logs.js"
import { makeMemoryStorage, streamingOnly } from "./support/memoryStorage.js"
import type { PlanStepInput } from "./support/verifyRows.js"
import { nodeServer, rowFor, serverBin, writeJsonl } from "./support/verifyRows.js"

const live = Layer.merge(McpClientLive, StorageLive)
/**
 * `live` with a storage that refuses to read the journal or the cassette store whole: both are streamed
 * (either may be larger than one string can be), which every run of `verify` below checks.
 */
const streamedLive = Layer.merge(
  McpClientLive,
  streamingOnly((file) => /(verify-journal|cassettes)\.jsonl$/.test(file))
)

/**
 * The inventory imported from the live servers `specs`, once per file for the same specs (an import starts each
 * server; the tests below read the inventory and do not change it).
 */
const imports = new Map<string, Promise<Inventory>>()
const importLive = (specs: ReadonlyArray<McpServerSpec>): Promise<Inventory> => {
  const key = JSON.stringify(specs)
  let imported = imports.get(key)
  if (imported === undefined) {
    imported = Effect.runPromise(importInventory(specs, { timeout: "20 seconds" }).pipe(Effect.provide(live))).then(
      (result) => {
        expect(result.outcomes.filter((o) => o._tag === "failed")).toEqual([])
        return result.inventory!
      }
    )
    imports.set(key, imported)
  }
  return imported
}

interface RunOptions {
  readonly inventory: Inventory
  readonly specs: ReadonlyArray<McpServerSpec>
  readonly rows: ReadonlyArray<unknown>
  readonly allow?: string
  readonly unavailable?: Record<string, string>
  readonly timeout?: number
  /** Seconds for a server's start (default: the larger of 30 and `timeout`). */
  readonly startTimeout?: number
  readonly concurrency?: number
  readonly resume?: boolean
  readonly dir?: string
  /** The cassette store's directory (default: `cassettes` in `dir`). */
  readonly cassettes?: string
  /** Gets the run's log messages, each as `LEVEL: message` (default: the default logger). */
  readonly logs?: Array<string>
}

/** The JSON lines of a file (none when it is not there). */
const lines = (file: string) =>
  existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l)) : []

/** The run `verify` makes of `rows` (written to a temp .jsonl in `dir`), its outputs in `dir`. */
const verifyRun = (o: RunOptions, dir: string) => {
  const input = writeJsonl(join(dir, "in.jsonl"), o.rows)
  const settings: VerifierLiveSettings = {
    inventory: o.inventory,
    allowSideEffects: parseAllowList(o.allow),
    specs: o.specs,
    ...(o.unavailable === undefined ? {} : { unavailable: o.unavailable }),
    cassettesDir: o.cassettes ?? join(dir, "cassettes"),
    timeout: `${o.timeout ?? 20} seconds`,
    ...(o.startTimeout === undefined ? {} : { startTimeout: `${o.startTimeout} seconds` }),
    maxInFlight: o.concurrency ?? 4
  }
  return Effect.gen(function*() {
    const result = yield* verifyDatasets({
      files: [input],
      out: join(dir, "out.jsonl"),
      inventory: o.inventory,
      concurrency: o.concurrency ?? 4,
      resume: o.resume ?? false
    })
    return { result, report: yield* (yield* Verifier).report }
  }).pipe(
    Effect.provide(Verifier.live(settings)),
    Effect.provide(streamedLive),
    Effect.provide(o.logs === undefined ? Layer.empty : loggingInto(o.logs))
  )
}

/** Verifies `rows` (written to a temp .jsonl) and returns what the run wrote. */
const verify = async (o: RunOptions) => {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), "skyrl-verify-"))
  const out = join(dir, "out.jsonl")
  const { report, result } = await Effect.runPromise(verifyRun(o, dir))
  const rows = lines(out)
  return {
    dir,
    result,
    report,
    rows,
    verification: rows.map((r) => JSON.parse(r.extra_info.task_metadata).verification),
    rejects: lines(rejectsFileOf(out)),
    cassettes: lines(join(o.cassettes ?? join(dir, "cassettes"), "cassettes.jsonl")),
    /** Read when asked (a test may leave a damaged line in it on purpose). */
    get journal() {
      return lines(journalFileOf(out))
    }
  }
}

/** The documented cassette key, computed here from its definition (flat params: sorted keys suffice). */
const expectedKey = (server: string, tool: string, params: Record<string, unknown>) => {
  const sorted = Object.fromEntries(Object.keys(params).sort().map((k) => [k, params[k]]))
  return createHash("sha256").update(`${server}\n${tool}\n${JSON.stringify(sorted)}`, "utf8").digest("hex")
}

const row = (id: string, ...steps: Array<PlanStepInput>) => rowFor(id, steps)

const textOf = (entry: any) =>
  entry.result.content.filter((b: any) => b.type === "text").map((b: any) => b.text).join("\n")

const temps: Array<string> = []
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix))
  temps.push(d)
  return d
}
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})

describe("verify against server-everything (stateless)", () => {
  const everything = nodeServer("everything", [serverBin("server-everything"), "stdio"])
  let inventory: Inventory
  beforeAll(async () => {
    inventory = await importLive([everything])
  }, 30_000)

  const plans: Array<[string, Array<PlanStepInput>]> = [
    ["echo+sum", [
      { server: "everything", tool: "echo", params: { message: "hello" } },
      { server: "everything", tool: "get-sum", params: { a: 2, b: 3 } }
    ]],
    ["image", [{ server: "everything", tool: "get-tiny-image", params: {} }]],
    ["annotated", [{ server: "everything", tool: "get-annotated-message", params: { messageType: "success" } }]],
    ["structured", [{ server: "everything", tool: "get-structured-content", params: { location: "Chicago" } }]],
    ["links", [{ server: "everything", tool: "get-resource-links", params: { count: 2 } }]],
    ["reference", [{
      server: "everything",
      tool: "get-resource-reference",
      params: { resourceType: "Text", resourceId: 1 }
    }]],
    ["long", [{ server: "everything", tool: "trigger-long-running-operation", params: { duration: 0.2, steps: 2 } }]],
    ["sum-again", [{ server: "everything", tool: "get-sum", params: { b: 3, a: 2 } }]],
    ["derived", [
      { server: "everything", tool: "get-sum", params: { a: 40, b: 2 } },
      { server: "everything", tool: "echo", params: { message: "42" }, depends_on: [1], derived_params: ["message"] }
    ]]
  ]

  it("runs every step of every plan; one cassette entry per distinct call; records keys and versions", async () => {
    const run = await verify({ inventory, specs: [everything], rows: plans.map(([id, steps]) => row(id, ...steps)) })
    expect(run.rejects).toEqual([])
    expect(run.result.summary.statuses.verified).toBe(plans.length)
    expect(run.rows.map((r) => r.reward_spec.ground_truth.task_id)).toEqual(plans.map(([id]) => id))
    const calls = plans.flatMap(([, steps]) => steps.map((s) => expectedKey(s.server, s.tool, s.params)))
    const distinct = [...new Set(calls)]
    expect(distinct.length).toBe(calls.length - 1) // get-sum {a:2,b:3} twice, key order aside
    expect(run.cassettes.map((c) => c.key).sort()).toEqual([...distinct].sort())
    // Each row's record names the cassette key of each step and the server's version.
    run.verification.forEach((v, i) => {
      expect(v).toMatchObject({ status: "verified", servers: { everything: "mcp-servers/everything@2.0.0" } })
      expect(v.steps.map((s: any) => s.key)).toEqual(
        plans[i]![1].map((s) => expectedKey(s.server, s.tool, s.params))
      )
      expect(Date.parse(v.verified_at)).not.toBeNaN()
    })
    const byTool = (tool: string) => run.cassettes.find((c) => c.tool === tool)!
    expect(textOf(byTool("get-sum"))).toBe("The sum of 2 and 3 is 5.")
    expect(byTool("get-structured-content").result.structuredContent).toMatchObject({ humidity: expect.any(Number) })
    expect(byTool("get-tiny-image").result.content.map((b: any) => b.type)).toContain("image")
    for (const c of run.cassettes) {
      expect(c).toMatchObject({ server: "everything", server_version: "mcp-servers/everything@2.0.0" })
      expect(c.result.isError).toBe(false)
      expect(c.duration_ms).toBeGreaterThanOrEqual(0)
    }
    // The derived param ran with its illustrative value, and its result says so.
    expect(run.cassettes.find((c) => c.tool === "echo" && c.params.message === "42")!.illustrative).toBe(true)
    expect(run.cassettes.find((c) => c.tool === "echo" && c.params.message === "hello")!.illustrative).toBe(false)
    expect(run.verification[8].steps.map((s: any) => s.illustrative)).toEqual([false, true])
    expect(run.report.servers).toEqual([expect.objectContaining({ server: "everything", starts: 1 })])
  }, 60_000)

  it(
    "keeps the columns of the user's own a row holds (top-level and extra_info keys); other rows as before",
    async () => {
      const sum = { server: "everything", tool: "get-sum", params: { a: 1, b: 2 } }
      const plain = row("plain", sum)
      const own = row("own", sum)
      own.ability = "math"
      own.extra_info = { ...own.extra_info, index: 7, split: "train" }
      const run = await verify({ inventory, specs: [everything], rows: [plain, own] })
      expect(run.rejects).toEqual([])
      expect(Object.keys(run.rows[0])).toEqual(["data_source", "prompt", "env_class", "reward_spec", "extra_info"])
      expect(Object.keys(run.rows[0].extra_info)).toEqual(["task_metadata"])
      expect(Object.keys(run.rows[1])).toEqual([
        "data_source",
        "prompt",
        "env_class",
        "reward_spec",
        "extra_info",
        "ability"
      ])
      expect(run.rows[1].ability).toBe("math")
      expect(run.rows[1].extra_info).toMatchObject({ index: 7, split: "train" })
      expect(Object.keys(run.rows[1].extra_info)).toEqual(["task_metadata", "index", "split"])
      expect(run.verification.map((v) => v.status)).toEqual(["verified", "verified"])
      expect(run.rows[1].reward_spec).toEqual(own.reward_spec)
    },
    60_000
  )

  it(
    "records whether each derived value is in the results before its step (derived_values_found); the summary counts the rows where one is not",
    async () => {
      const sum = (a: number, b: number): PlanStepInput => ({ server: "everything", tool: "get-sum", params: { a, b } })
      const echoDerived = (message: string): PlanStepInput => ({
        server: "everything",
        tool: "echo",
        params: { message },
        depends_on: [1],
        derived_params: ["message"]
      })
      const rows = [
        row("found", sum(40, 2), echoDerived("42")), // "The sum of 40 and 2 is 42."
        row("not-found", sum(40, 3), echoDerived("42")), // "... is 43.": the illustration is not what the tool gave
        row("plain", { server: "everything", tool: "echo", params: { message: "hello" } }),
        // step 2 copies the sum, step 3 sends one the result does not write (computed, e.g. the sum plus one)
        row("mixed", sum(40, 2), echoDerived("42"), echoDerived("43"))
      ]
      const run = await verify({ inventory, specs: [everything], rows: [...rows, rows[1], rows[3]] })
      expect(run.rejects).toEqual([])
      expect(run.verification.map((v) => v.derived_values_found)).toEqual([true, false, undefined, false, false, false])
      expect("derived_values_found" in run.verification[2]).toBe(false)
      // how the results were read for it (MCPToolEnv grounds a record without it by each result's whole text)
      expect(run.verification.map((v) => v.derived_reading)).toEqual([
        "json-leaves-4",
        "json-leaves-4",
        undefined,
        "json-leaves-4",
        "json-leaves-4",
        "json-leaves-4"
      ])
      expect(run.result.summary).toMatchObject({ derivedNotFound: 4, copies: 2 })
      // Each step with derived params says whether its own were found; a step without says nothing, and a
      // plan without derived params keeps the record's fields as before (row "plain")
      const bySteps = (v: any) => v.steps.map((s: any) => s.derived_values_found)
      expect(run.verification.map(bySteps)).toEqual([
        [undefined, true],
        [undefined, false],
        [undefined],
        [undefined, true, false],
        [undefined, false], // a copy of "not-found": the first row's record
        [undefined, true, false] // a copy of "mixed"
      ])
      expect(run.verification[3].steps.map((s: any) => Object.keys(s))).toEqual([
        ["step", "server", "tool", "key", "illustrative"],
        ["step", "server", "tool", "key", "illustrative", "derived_values_found"],
        ["step", "server", "tool", "key", "illustrative", "derived_values_found"]
      ])
      expect(Object.keys(run.verification[2])).toEqual(["status", "verified_at", "servers", "steps"])
      expect(Object.keys(run.verification[2].steps[0])).toEqual(["step", "server", "tool", "key", "illustrative"])
    },
    60_000
  )

  it(
    "reads Parquet, JSON and JSON Lines datasets in input order, the first --limit rows (a bad line a row of its own; JSON Lines streamed, never read whole)",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "skyrl-verify-formats-"))
      const rowsOf = (from: number, n: number) =>
        Array.from(
          { length: n },
          (_, i) => row(`f${from + i}`, { server: "everything", tool: "echo", params: { message: `m${from + i}` } })
        )
      const parquet = join(dir, "a.parquet")
      await Effect.runPromise(
        Effect.flatMap(Storage, (s) => s.writeRows(parquet, rowsOf(0, 3).map((r) => new RowJson(JSON.stringify(r)))))
          .pipe(Effect.provide(StorageLive))
      )
      const json = join(dir, "b.json")
      writeFileSync(json, JSON.stringify(rowsOf(3, 2)))
      const jsonl = join(dir, "c.jsonl")
      writeFileSync(
        jsonl,
        [...rowsOf(5, 1).map((r) => JSON.stringify(r)), "{not json", ...rowsOf(6, 2).map((r) => JSON.stringify(r))]
          .join("\n") + "\n"
      )
      const out = join(dir, "out.jsonl")
      // One string of a whole file cannot pass V8's limit (~512 MB): JSON Lines must be streamed.
      const streamedOnly = streamingOnly((file) => file === jsonl)
      const result = await Effect.runPromise(
        verifyDatasets({ files: [parquet, json, jsonl], out, inventory, concurrency: 3, limit: 8, resume: false }).pipe(
          Effect.provide(Verifier.live({
            inventory,
            allowSideEffects: parseAllowList(undefined),
            specs: [everything],
            cassettesDir: join(dir, "cassettes")
          })),
          Effect.provide(Layer.merge(McpClientLive, streamedOnly))
        )
      )
      expect(result.written).toBe(7)
      const rows = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l))
      expect(rows.map((r) => r.reward_spec.ground_truth.task_id)).toEqual(["f0", "f1", "f2", "f3", "f4", "f5", "f6"])
      const rejects = readFileSync(rejectsFileOf(out), "utf8").trim().split("\n").map((l) => JSON.parse(l))
      expect(rejects).toEqual([expect.objectContaining({ file: jsonl, row: 1, line: 2, stage: "read" })])
    },
    60_000
  )

  it("the cassette entries and journal lines of the rows are on disk before the dataset naming them is committed", async () => {
    const storage = makeMemoryStorage({
      "/mem/in.jsonl": plans.slice(0, 2).map(([id, steps]) => JSON.stringify(row(id, ...steps))).join("\n") + "\n"
    })
    const settings: VerifierLiveSettings = {
      inventory,
      allowSideEffects: parseAllowList(undefined),
      specs: [everything],
      cassettesDir: "/mem/cassettes"
    }
    const result = await Effect.runPromise(
      verifyDatasets({ files: ["/mem/in.jsonl"], out: "/mem/out.jsonl", inventory, concurrency: 2, resume: false })
        .pipe(Effect.provide(Verifier.live(settings)), Effect.provide(Layer.merge(McpClientLive, storage.layer)))
    )
    expect(result.written).toBe(2)
    const at = (file: string, kind: string) =>
      storage.writes.flatMap((w, i) => (w.file === file && w.kind === kind ? [i] : []))
    const [committed] = at("/mem/out.jsonl", "rows")
    const appended = [
      ...at("/mem/cassettes/cassettes.jsonl", "append"),
      ...at(journalFileOf("/mem/out.jsonl"), "append")
    ]
    expect(storage.text("/mem/cassettes/cassettes.jsonl").trim().split("\n")).toHaveLength(3)
    expect(storage.text(journalFileOf("/mem/out.jsonl")).trim().split("\n")).toHaveLength(2)
    expect(committed).toBeDefined()
    expect(Math.max(...appended)).toBeLessThan(committed!)
  })

  it("a fresh run empties the journal before its first journal line and before the dataset is committed (or makes an empty one)", async () => {
    const journal = journalFileOf("/mem/out.jsonl")
    const stale = JSON.stringify({ hash: "0".repeat(64), failure: { status: "tool-error", reason: "old" } }) + "\n"
    const run = async (lines: ReadonlyArray<string>, before: string | null = stale) => {
      const storage = makeMemoryStorage({
        "/mem/in.jsonl": lines.join("\n") + "\n",
        ...(before === null ? {} : { [journal]: before })
      })
      const settings: VerifierLiveSettings = {
        inventory,
        allowSideEffects: parseAllowList(undefined),
        specs: [everything],
        cassettesDir: "/mem/cassettes"
      }
      await Effect.runPromise(
        verifyDatasets({ files: ["/mem/in.jsonl"], out: "/mem/out.jsonl", inventory, concurrency: 2, resume: false })
          .pipe(Effect.provide(Verifier.live(settings)), Effect.provide(Layer.merge(McpClientLive, storage.layer)))
      )
      const at = (file: string, kind: string) =>
        storage.writes.flatMap((w, i) => (w.file === file && w.kind === kind ? [i] : []))
      return {
        storage,
        emptied: at(journal, "atomic"),
        appended: at(journal, "append"),
        committed: at("/mem/out.jsonl", "rows")
      }
    }
    // No row runs: the journal is emptied all the same.
    const none = await run(["{not json", JSON.stringify({ data_source: "x" })])
    expect(none.storage.text(journal)).toBe("")
    expect(none.emptied).toHaveLength(1)
    expect(none.committed).toEqual([]) // no row verified: the dataset is not written
    const some = await run(plans.slice(0, 2).map(([id, steps]) => JSON.stringify(row(id, ...steps))))
    expect(some.storage.text(journal).trim().split("\n")).toHaveLength(2)
    expect(some.storage.text(journal)).not.toContain(stale)
    expect(some.emptied[0]!).toBeLessThan(Math.min(...some.appended))
    expect(some.emptied[0]!).toBeLessThan(some.committed[0]!)
    // No journal before: the first line creates it; a run that writes no line leaves an empty one.
    const fresh = await run(plans.slice(0, 2).map(([id, steps]) => JSON.stringify(row(id, ...steps))), null)
    expect(fresh.storage.text(journal).trim().split("\n")).toHaveLength(2)
    expect(fresh.emptied).toEqual([])
    const nothing = await run(["{not json"], null)
    expect(nothing.storage.text(journal)).toBe("")
    expect(nothing.committed).toEqual([])
  })

  it("side effects are opt-in: a tool not annotated read-only is skipped unless allowed", async () => {
    const toggle = row("toggle", { server: "everything", tool: "toggle-simulated-logging", params: {} })
    const skipped = await verify({ inventory, specs: [everything], rows: [toggle] })
    expect(skipped.rows).toEqual([])
    expect(skipped.rejects).toEqual([
      expect.objectContaining({
        stage: "execution",
        status: "skipped-side-effect",
        step: 1,
        tool: "toggle-simulated-logging",
        reason: expect.stringContaining("--allow-side-effects toggle-simulated-logging")
      })
    ])
    expect(skipped.cassettes).toEqual([])
    expect(skipped.report.servers).toEqual([]) // nothing started
    const allowed = await verify({
      inventory,
      specs: [everything],
      rows: [toggle],
      allow: "everything.toggle-simulated-logging"
    })
    expect(allowed.result.summary.statuses.verified).toBe(1)
    expect(textOf(allowed.cassettes[0])).toMatch(/logging/i)
  }, 60_000)

  it("a call over --timeout is `timeout`; the server keeps serving the next rows", async () => {
    const slow = row("slow", {
      server: "everything",
      tool: "trigger-long-running-operation",
      params: { duration: 8, steps: 1 }
    })
    const after = row("after", { server: "everything", tool: "echo", params: { message: "still here" } })
    const run = await verify({ inventory, specs: [everything], rows: [slow, after], timeout: 3, concurrency: 1 })
    expect(run.rejects).toEqual([
      expect.objectContaining({
        status: "timeout",
        tool: "trigger-long-running-operation",
        reason: "no answer within 3s"
      })
    ])
    expect(run.rows.map((r) => r.reward_spec.ground_truth.task_id)).toEqual(["after"])
    expect(run.cassettes.map((c) => c.tool)).toEqual(["echo"]) // no result, nothing recorded
  }, 60_000)

  it("a server's start has its own bound: a start longer than --timeout is waited for", async () => {
    const dir = tempDir("skyrl-verify-slow-start-")
    const preload = join(dir, "slow.cjs")
    // 2.5 s before the server reads its stdin, as a loaded machine or `npx -y` gives (5-7 s seen at load 6).
    writeFileSync(preload, "Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500)\n")
    const spec = nodeServer("everything", ["-r", preload, serverBin("server-everything"), "stdio"])
    const echo = row("echo", { server: "everything", tool: "echo", params: { message: "late" } })
    const run = await verify({ inventory, specs: [spec], rows: [echo], timeout: 1, dir })
    // Was server-unavailable, "no answer within 1s (initialize)": --timeout bounded the start too.
    expect(run.rejects).toEqual([])
    expect(run.rows.map((r) => r.reward_spec.ground_truth.task_id)).toEqual(["echo"])
    const bounded = await verify({ inventory, specs: [spec], rows: [echo], timeout: 1, startTimeout: 1 })
    expect(bounded.rejects).toEqual([
      expect.objectContaining({
        status: "server-unavailable",
        reason: expect.stringContaining("no answer within 1s (initialize)")
      })
    ])
  }, 60_000)

  it("a server killed between rows is restarted and the run completes", async () => {
    const dir = tempDir("skyrl-verify-kill-")
    const pidFile = join(dir, "pid")
    const preload = join(dir, "pid.cjs")
    writeFileSync(preload, `require("fs").writeFileSync(${JSON.stringify(pidFile)}, String(process.pid))\n`)
    const spec = nodeServer("everything", ["-r", preload, serverBin("server-everything"), "stdio"])
    const steps = (
      n: number
    ) => [{ step: 1, server: "everything", tool: "get-sum", params: { a: n, b: 1 }, derivedParams: [] }]
    const settings: VerifierLiveSettings = {
      inventory,
      allowSideEffects: parseAllowList(undefined),
      specs: [spec],
      cassettesDir: join(dir, "cassettes"),
      timeout: "20 seconds"
    }
    const outcome = await Effect.runPromise(
      Effect.gen(function*() {
        const verifier = yield* Verifier
        const first = yield* verifier.verify(steps(1))
        const pid = Number(readFileSync(pidFile, "utf8"))
        process.kill(pid, "SIGKILL")
        while (yield* Effect.sync(() => isAlive(pid))) yield* Effect.sleep("20 millis")
        const second = yield* verifier.verify(steps(2))
        const third = yield* verifier.verify(steps(3))
        return {
          first,
          second,
          third,
          pids: [pid, Number(readFileSync(pidFile, "utf8"))],
          report: yield* verifier.report
        }
      }).pipe(Effect.provide(Verifier.live(settings)), Effect.provide(live))
    )
    expect([outcome.first, outcome.second, outcome.third].map((r) => r.status)).toEqual([
      "verified",
      "verified",
      "verified"
    ])
    expect(outcome.pids[1]).not.toBe(outcome.pids[0])
    expect(outcome.report.servers).toEqual([expect.objectContaining({ server: "everything", starts: 2 })])
  }, 60_000)
})

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("verify against server-memory (stateful)", () => {
  const dir = tempDir("skyrl-verify-memory-")
  const memory = nodeServer("memory", [serverBin("server-memory")], { MEMORY_FILE_PATH: join(dir, "memory.jsonl") })
  let inventory: Inventory
  beforeAll(async () => {
    inventory = await importLive([memory])
  }, 30_000)

  it("create-then-read verifies; reading an entity never created verifies with an empty result", async () => {
    const created = row(
      "create-read",
      {
        server: "memory",
        tool: "create_entities",
        params: { entities: [{ name: "Ada", entityType: "person", observations: ["wrote the first program"] }] }
      },
      { server: "memory", tool: "open_nodes", params: { names: ["Ada"] } }
    )
    const never = row("never", { server: "memory", tool: "open_nodes", params: { names: ["Nobody"] } })
    const observe = row("observe-missing", {
      server: "memory",
      tool: "add_observations",
      params: { observations: [{ entityName: "Nobody", contents: ["x"] }] }
    })
    const run = await verify({
      inventory,
      specs: [memory],
      rows: [created, never, observe],
      allow: "create_entities,add_observations",
      concurrency: 1
    })
    expect(run.rows.map((r) => r.reward_spec.ground_truth.task_id)).toEqual(["create-read", "never"])
    const read = (names: Array<string>) =>
      run.cassettes.find((c) => c.tool === "open_nodes" && c.params.names[0] === names[0])!
    expect(read(["Ada"]).result.structuredContent.entities).toEqual([
      expect.objectContaining({ name: "Ada", observations: ["wrote the first program"] })
    ])
    // What server-memory does (recorded in the README): an unknown name is not an error, just no entity.
    expect(read(["Nobody"]).result).toMatchObject({
      isError: false,
      structuredContent: { entities: [], relations: [] }
    })
    // Writing to an entity that does not exist is a tool error, with the tool's own text.
    expect(run.rejects).toEqual([
      expect.objectContaining({
        status: "tool-error",
        step: 1,
        server: "memory",
        tool: "add_observations",
        reason: "Entity with name Nobody not found"
      })
    ])
    expect(run.result.summary.toolErrors).toEqual({ "memory/add_observations": { "tool-error": 1 } })
  }, 60_000)
})

describe("verify against server-memory: one call's key, two answers", () => {
  it("a read that answers otherwise after this row's write is marked stored_answer_differs and counted", async () => {
    const dir = tempDir("skyrl-verify-memory-state-")
    const memory = nodeServer("memory", [serverBin("server-memory")], { MEMORY_FILE_PATH: join(dir, "memory.jsonl") })
    const inventory = await importLive([memory])
    const open = { server: "memory", tool: "open_nodes", params: { names: ["Grace"] } }
    const create = {
      server: "memory",
      tool: "create_entities",
      params: { entities: [{ name: "Grace", entityType: "person", observations: ["wrote a compiler"] }] }
    }
    const rows = [row("read-first", open), row("create-read", create, open)]
    const run = await verify({ inventory, specs: [memory], rows, allow: "create_entities", concurrency: 1, dir })
    // Before: both verified, no word; the store held row 0's empty answer under the key row 1 recorded, and replay
    // gave row 1 an empty graph where it had read Grace.
    expect(run.verification.map((v) => v.steps.map((s: any) => s.stored_answer_differs))).toEqual([
      [undefined],
      [undefined, true]
    ])
    const stored = run.cassettes.filter((c) => c.tool === "open_nodes")
    expect(stored.map((c) => c.result.structuredContent.entities)).toEqual([[]])
    expect(run.report.cassettes).toMatchObject({ added: 2, differed: 1 })
  }, 60_000)
})

describe("verify against server-filesystem over a temporary directory", () => {
  const root = tempDir("skyrl-verify-fs-")
  const fs = nodeServer("fs", [serverBin("server-filesystem"), root])
  let inventory: Inventory
  beforeAll(async () => {
    writeFileSync(join(root, "notes.txt"), "alpha\nbeta\n")
    inventory = await importLive([fs])
  }, 30_000)

  const rows = () => [
    row("read", { server: "fs", tool: "read_text_file", params: { path: join(root, "notes.txt") } }),
    row("missing", { server: "fs", tool: "read_text_file", params: { path: join(root, "missing.txt") } }),
    row(
      "write",
      { server: "fs", tool: "write_file", params: { path: join(root, "out.txt"), content: "written by verify" } },
      { server: "fs", tool: "read_text_file", params: { path: join(root, "out.txt") } }
    )
  ]

  it("reading a missing file is tool-error; write_file is skipped without the flag", async () => {
    const run = await verify({ inventory, specs: [fs], rows: rows() })
    expect(run.rows.map((r) => r.reward_spec.ground_truth.task_id)).toEqual(["read"])
    expect(textOf(run.cassettes.find((c) => c.params.path.endsWith("notes.txt")))).toBe("alpha\nbeta\n")
    expect(run.rejects).toEqual([
      expect.objectContaining({
        row: 1,
        status: "tool-error",
        tool: "read_text_file",
        reason: expect.stringMatching(/ENOENT|no such file/i)
      }),
      expect.objectContaining({ row: 2, status: "skipped-side-effect", step: 1, tool: "write_file" })
    ])
    expect(existsSync(join(root, "out.txt"))).toBe(false)
    expect(run.cassettes.some((c) => c.tool === "write_file")).toBe(false)
  }, 60_000)

  it(
    "with --allow-side-effects write_file, it writes inside the temporary directory and the plan verifies",
    async () => {
      const run = await verify({ inventory, specs: [fs], rows: rows(), allow: "write_file", concurrency: 1 })
      expect(run.rows.map((r) => r.reward_spec.ground_truth.task_id)).toEqual(["read", "write"])
      expect(readFileSync(join(root, "out.txt"), "utf8")).toBe("written by verify")
      expect(textOf(run.cassettes.find((c) => c.tool === "read_text_file" && c.params.path.endsWith("out.txt")))).toBe(
        "written by verify"
      )
      // The write's plan has two lines: before write_file was sent, that it may act (what --resume reads if the
      // run is killed then), and its outcome, which replaces it.
      expect(run.journal.map((j) => j.record?.status ?? j.failure.status).sort()).toEqual([
        "interrupted",
        "tool-error",
        "verified",
        "verified"
      ])
    },
    60_000
  )

  it("a call that failed in an earlier run and answers now: its answer is appended, and readers keep it", async () => {
    const dir = tempDir("skyrl-verify-fixed-")
    const cassettes = join(dir, "cassettes")
    const path = join(root, "made-later.txt")
    const plan = [row("later", { server: "fs", tool: "read_text_file", params: { path } })]
    const before = await verify({ inventory, specs: [fs], rows: plan, cassettes })
    expect(before.rejects).toEqual([expect.objectContaining({ status: "tool-error" })])
    writeFileSync(path, "made since\n")
    const after = await verify({ inventory, specs: [fs], rows: plan, cassettes })
    const key = expectedKey("fs", "read_text_file", { path })
    expect(after.verification[0].steps).toEqual([expect.objectContaining({ key })])
    // Was one line, the ENOENT error, under the key of a row now verified: MCPToolEnv replayed the error.
    expect(after.cassettes.map((c) => [c.key, c.result.isError, textOf(c)])).toEqual([
      [key, true, expect.stringContaining("ENOENT")],
      [key, false, "made since\n"]
    ])
    const kept: Array<string> = []
    const reader = cassetteReader((e) => kept.push(textOf(e)))
    for (const line of readFileSync(join(cassettes, "cassettes.jsonl"), "utf8").split("\n")) reader.line(line)
    expect(kept.at(-1)).toBe("made since\n")
  }, 60_000)

  it("--resume never runs a finished row again", async () => {
    const dir = tempDir("skyrl-verify-resume-")
    const first = await verify({ inventory, specs: [fs], rows: rows(), allow: "write_file", dir })
    expect(first.result.summary.statuses.verified).toBe(2)
    rmSync(join(root, "out.txt"))
    const again = await verify({ inventory, specs: [fs], rows: rows(), allow: "write_file", dir, resume: true })
    expect(existsSync(join(root, "out.txt"))).toBe(false) // write_file did not run again
    expect(again.result.summary.resumed).toBe(3)
    expect(again.rows).toEqual(first.rows)
    expect(again.rejects).toEqual(first.rejects)
    expect(again.report.servers).toEqual([])
  }, 60_000)

  it(
    "--resume with another cassette store runs the read-only plans again for their results, never a side effect",
    async () => {
      const dir = tempDir("skyrl-verify-other-store-")
      const first = await verify({ inventory, specs: [fs], rows: rows(), allow: "write_file", dir })
      expect(first.result.summary.statuses.verified).toBe(2)
      rmSync(join(root, "out.txt"))
      const cassettes = join(dir, "other")
      const again = await verify({
        inventory,
        specs: [fs],
        rows: rows(),
        allow: "write_file",
        dir,
        resume: true,
        cassettes
      })
      expect(existsSync(join(root, "out.txt"))).toBe(false) // write_file did not run again
      expect(again.rows).toEqual(first.rows.map((r) => expect.objectContaining({ prompt: r.prompt })))
      // The read-only verified plan ran again, so the new store holds its results; the write's stay in the first.
      expect(again.cassettes.map((c) => c.tool)).toEqual(["read_text_file"])
      expect(again.result.summary.resumed).toBe(2)
    },
    60_000
  )

  it(
    "--resume without a journal (a mistyped --out) warns that every row runs; with one it does not",
    async () => {
      const dir = tempDir("skyrl-verify-no-journal-")
      const journal = journalFileOf(join(dir, "out.jsonl"))
      const warned = (logs: ReadonlyArray<string>) => logs.filter((l) => l.includes("is not there"))
      const logs: Array<string> = []
      const first = await verify({ inventory, specs: [fs], rows: rows(), dir, resume: true, logs })
      expect(first.result.summary.resumed).toBe(0)
      expect(warned(logs)).toEqual([
        `WARN: --resume: ${journal} is not there (no verify run of this --out to continue): every row runs`
      ])
      const again: Array<string> = []
      await verify({ inventory, specs: [fs], rows: rows(), dir, resume: true, logs: again })
      expect(warned(again)).toEqual([])
    },
    60_000
  )

  it(
    "--resume after a crash cut the journal's last line: the piece is cut off, that row runs again, and the next --resume reads its new line without a warning",
    async () => {
      const dir = tempDir("skyrl-verify-torn-")
      await verify({ inventory, specs: [fs], rows: rows(), allow: "write_file", dir, concurrency: 1 })
      const journal = journalFileOf(join(dir, "out.jsonl"))
      // The read row's line last (the write's two lines, its intent and its outcome, before it), cut short.
      const [read, ...others] = readFileSync(journal, "utf8").split("\n").filter((l) => l !== "")
      const text = [...others, read!].join("\n") + "\n"
      writeFileSync(journal, text.slice(0, text.length - 20))
      const second = await verify({ inventory, specs: [fs], rows: rows(), allow: "write_file", dir, resume: true })
      expect(second.result.summary.resumed).toBe(2)
      const after = readFileSync(journal, "utf8").split("\n")
      // The piece of the cut line is gone (it stayed, on a line of its own, until 2026-12-02): the row's new line follows
      expect(after.slice(0, 3)).toEqual(others)
      expect(JSON.parse(after[3]!)).toMatchObject({ record: { status: "verified" } })
      expect(after.slice(4)).toEqual([""])
      rmSync(join(root, "out.txt"))
      const logs: Array<string> = []
      const third = await verify({ inventory, specs: [fs], rows: rows(), allow: "write_file", dir, resume: true, logs })
      expect(existsSync(join(root, "out.txt"))).toBe(false) // write_file did not run a third time
      expect(third.result.summary.resumed).toBe(3)
      // No line of the journal is unreadable now (the cut line, left before the new ones, was named here).
      expect(logs.filter((l) => l.includes("not readable"))).toEqual([])
    },
    60_000
  )

  it(
    "--resume with journal lines that are not readable before its last: a warning names them; their rows run again, no other does",
    async () => {
      const dir = tempDir("skyrl-verify-damaged-")
      await verify({ inventory, specs: [fs], rows: rows(), allow: "write_file", dir, concurrency: 1 })
      const journal = journalFileOf(join(dir, "out.jsonl"))
      const text = readFileSync(journal, "utf8").split("\n").filter((l) => l !== "")
      const lineOf = (status: string) =>
        text.findIndex((l) => (JSON.parse(l).record?.status ?? JSON.parse(l).failure.status) === status)
      const [read, missing, intent] = [lineOf("verified"), lineOf("tool-error"), lineOf("interrupted")]
      const outcome = intent + 1 // the write's outcome replaces its `interrupted` line
      expect(JSON.parse(text[outcome]!).record).toMatchObject({ status: "verified", steps: [{}, {}] })
      expect(new Set([read, missing, intent, outcome]).size).toBe(4)
      // The read row's line is not JSON; the write's outcome line (after its `interrupted` line) has a field refused.
      const damaged = [
        text[read]!.slice(0, 30),
        text[intent]!,
        text[outcome]!.replace(/"hash":"[0-9a-f]+"/, "\"hash\":5"),
        text[missing]!
      ]
      writeFileSync(journal, damaged.join("\n") + "\n")
      rmSync(join(root, "out.txt"))
      const logs: Array<string> = []
      const again = await verify({ inventory, specs: [fs], rows: rows(), allow: "write_file", dir, resume: true, logs })
      expect(logs.filter((l) => l.includes("not readable"))).toEqual([
        `WARN: ${journal}: 2 line(s) are not readable, skipped (line 1: not JSON (Unterminated string in JSON at ` +
        "position 30); line 3: hash: must be a string, got 5): the rows whose outcome they held run again, unless a " +
        "later line holds it; a plan with side effects whose earlier line (interrupted, written before it acted) reads is " +
        "rejected as interrupted, never run again"
      ])
      // The missing file's tool error and the write's `interrupted` line are taken; the read row ran again.
      expect(again.result.summary.resumed).toBe(2)
      expect(again.rows.map((r) => r.reward_spec.ground_truth.task_id)).toEqual(["read"])
      expect(again.rejects).toEqual([
        expect.objectContaining({ row: 1, status: "tool-error" }),
        expect.objectContaining({ row: 2, status: "interrupted", tool: "write_file" })
      ])
      expect(existsSync(join(root, "out.txt"))).toBe(false) // write_file did not run again
      expect(again.report.servers.map((s) => s.server)).toEqual(["fs"]) // started for the read row only
    },
    60_000
  )
})

describe("verify: bad input gives a clear reason and the run goes on", () => {
  const everything = nodeServer("everything", [serverBin("server-everything"), "stdio"])

  it("no plan, unknown server, a missing command, a server that hangs on initialize, no launch spec", async () => {
    const base = await importLive([everything])
    const tool = base.servers[0]!.tools.find((t) => t.name === "echo")!
    const server = (name: string) => ({ ...base.servers[0]!, name, tools: [tool] })
    const inventory = {
      servers: [base.servers[0]!, server("ghost"), server("hang"), server("nolaunch")]
    } as unknown as Inventory
    const good = row("good", { server: "everything", tool: "echo", params: { message: "ok" } })
    const noPlan = row("no-plan", { server: "everything", tool: "echo", params: { message: "x" } })
    noPlan.reward_spec.ground_truth.tool_sequence = []
    const planless = row("planless", { server: "everything", tool: "echo", params: { message: "y" } })
    delete planless.reward_spec.ground_truth.tool_sequence
    const echoOn = (name: string) => row(name, { server: name, tool: "echo", params: { message: name } })
    const start = Date.now()
    const run = await verify({
      inventory,
      specs: [
        everything,
        { _tag: "stdio", name: "ghost", command: "/nonexistent/mcp-server", args: [] },
        nodeServer("hang", ["-e", "console.error('listening on nothing'); setInterval(() => {}, 1000)"])
      ],
      unavailable: { nolaunch: "no launch spec (test)" },
      rows: [
        good,
        noPlan,
        planless,
        echoOn("unknown"),
        echoOn("ghost"),
        echoOn("ghost"),
        echoOn("hang"),
        echoOn("nolaunch"),
        good
      ],
      // The hanging server's wait; server-everything's start must fit in it (5-7 s seen at load 6).
      startTimeout: 8
    })
    expect(Date.now() - start).toBeLessThan(20_000) // the hanging server waited for once
    expect(run.rows.map((r) => r.reward_spec.ground_truth.task_id)).toEqual(["good", "good"])
    const reason = (i: number) => run.rejects.find((r) => r.row === i)
    expect(reason(1)).toMatchObject({ stage: "contract", reason: "no plan: the row has no steps" })
    expect(reason(2)).toMatchObject({
      stage: "contract",
      field: expect.stringContaining("tool_sequence"),
      reason: expect.stringContaining("no usable plan")
    })
    expect(reason(3)).toMatchObject({
      stage: "schema",
      field: "reward_spec.ground_truth.tool_sequence[0].server",
      reason: expect.stringContaining("unknown server \"unknown\"")
    })
    expect(reason(4)).toMatchObject({
      status: "server-unavailable",
      server: "ghost",
      reason: expect.stringContaining("command not found")
    })
    // Row 5 is row 4 again (the same JSON text): it takes row 4's outcome, and says so.
    expect(reason(5)).toMatchObject({
      status: "server-unavailable",
      reason: `the same row as ${join(run.dir, "in.jsonl")}:row 4, not run again: ${reason(4)!.reason}`
    })
    expect(reason(6)).toMatchObject({
      status: "server-unavailable",
      reason: expect.stringContaining("no answer within 8s (initialize)")
    })
    expect(reason(6)!.reason).toContain("listening on nothing")
    expect(reason(7)).toMatchObject({ status: "server-unavailable", reason: "no launch spec (test)" })
    expect(run.result.summary.stages).toEqual({ rows: 9, read: 9, contract: 7, schema: 6, execution: 2 })
    const ghost = run.report.servers.find((s) => s.server === "ghost")!
    expect(ghost.starts).toBe(0)
  }, 60_000)
})

describe("verify: params nested too deep to hash or send", () => {
  const everything = nodeServer("everything", [serverBin("server-everything"), "stdio"])

  it(
    "params 150 levels deep are a contract reject naming the field, 5,000 a read reject; the run goes on",
    async () => {
      const base = await importLive([everything])
      // echo as a catalogue may declare it: extra params allowed, so the deep value passes the schema stage.
      const open = { type: "object", properties: { message: { type: "string" } }, additionalProperties: true }
      const data = JSON.parse(JSON.stringify(Schema.encodeSync(Inventory)(base)))
      data.servers[0].tools = data.servers[0].tools
        .filter((t: any) => t.name === "echo")
        .map((t: any) => ({ ...t, inputSchema: open, schema_hash: undefined }))
      const inventory = Either.getOrThrow(decodeInventory(data))
      const deepRow = (levels: number) => {
        const deep = row(`deep-${levels}`, { server: "everything", tool: "echo", params: { message: "hi" } })
        // On disk params are JSON text: this row's, by hand (made by the product, it would fail the same way).
        deep.reward_spec.ground_truth.tool_sequence[0].params = `{"message":"hi","deep":${"[".repeat(levels)}${
          "]".repeat(levels)
        }}`
        return deep
      }
      const run = await verify({
        inventory,
        specs: [everything],
        rows: [
          deepRow(5000),
          deepRow(150),
          row("good", { server: "everything", tool: "echo", params: { message: "ok" } })
        ]
      })
      // Was (5,000): the whole run failed, "Maximum call stack size exceeded", nothing written. Deeper than skyrl
      // reads any JSON (512 levels, src/skyrl/depth.ts) it is refused as it is read; deeper than params may be sent
      // (100), at the contract stage.
      expect(run.rows.map((r) => r.reward_spec.ground_truth.task_id)).toEqual(["good"])
      expect(run.rejects).toEqual([
        expect.objectContaining({
          row: 0,
          stage: "read",
          reason: expect.stringContaining(
            "reward_spec.ground_truth.tool_sequence[0].params nests objects and arrays more than 512 levels deep"
          )
        }),
        expect.objectContaining({
          row: 1,
          stage: "contract",
          field: "reward_spec.ground_truth.tool_sequence[0].params",
          reason: expect.stringContaining("nested more than 100 levels deep")
        })
      ])
    },
    60_000
  )
})

describe("verify: a step too long to send over stdio", () => {
  const everything = nodeServer("everything", [serverBin("server-everything"), "stdio"])

  it("a step over 10 MiB is a contract reject naming step and size; the server is not killed", async () => {
    const inventory = await importLive([everything])
    const big = row("big", { server: "everything", tool: "echo", params: { message: "x".repeat(11 * 1_048_576) } })
    const run = await verify({
      inventory,
      specs: [everything],
      rows: [big, row("good", { server: "everything", tool: "echo", params: { message: "ok" } })]
    })
    // Was: the server refused the line and exited, twice; the row was server-unavailable, "went away ... twice".
    expect(run.rows.map((r) => r.reward_spec.ground_truth.task_id)).toEqual(["good"])
    // {"jsonrpc":"2.0","id":1000000000,"method":"tools/call","params":{"name":"echo","arguments":{"message":"..."}}}\n
    const bytes = 11 * 1_048_576 + 108
    expect(run.rejects).toEqual([
      expect.objectContaining({
        row: 0,
        stage: "contract",
        field: "reward_spec.ground_truth.tool_sequence[0].params",
        reason: `step 1: its tools/call request is ${bytes} bytes long, over the 10485760 bytes (10 MiB) an MCP ` +
          "message may take over stdio: too long to send (the server would refuse it and exit)"
      })
    ])
    expect(run.report.servers.find((s) => s.server === "everything")!.starts).toBe(1)
  }, 60_000)
})

const SIDE_EFFECT_SERVER = join(import.meta.dirname, "fixtures", "mcp", "side-effect-server.mjs")

/**
 * The side-effect fixture server "se", appending to `dir`/appended.log: the lines appended so far, and the
 * texts its read-only `echo` was called with.
 */
const sideEffectServer = (dir: string) => {
  const log = join(dir, "appended.log")
  const linesOf = (file: string) =>
    existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l !== "") : []
  const appended = () => linesOf(log)
  const echoed = () => linesOf(`${log}.calls`)
  return { spec: nodeServer("se", [SIDE_EFFECT_SERVER, log]), log, appended, echoed }
}

/**
 * The side-effect server's inventory, imported once for the file (from a server of its own): its tools are the same
 * whatever file it is given, and verify starts each test's own server from the specs it is given (the inventory's
 * launch spec is not read).
 */
let sideEffectImport: Promise<Inventory> | undefined
const sideEffectInventory = () =>
  sideEffectImport ??= importLive([sideEffectServer(tempDir("skyrl-verify-se-import-")).spec])

describe("verify: a server that goes away mid-plan", () => {
  const { spec: sideEffects, appended } = sideEffectServer(tempDir("skyrl-verify-lost-"))

  it("a plan whose side-effecting step already ran is not run again on the restarted server", async () => {
    const inventory = await sideEffectInventory()
    const plan = row(
      "append-then-crash",
      { server: "se", tool: "append", params: { text: "hello" } },
      { server: "se", tool: "crash", params: {} }
    )
    const run = await verify({ inventory, specs: [sideEffects], rows: [plan], allow: "append" })
    expect(appended()).toEqual(["hello"]) // was ["hello", "hello"]: the plan ran again from step 1
    expect(run.rejects).toEqual([expect.objectContaining({ status: "server-unavailable", step: 2, tool: "crash" })])
    expect(run.rejects[0].reason).toContain("not run again: step 1 se/append has side effects and already ran")
    // Said once: it read "the server went away during the call (the server went away during the call (MCP error ...))".
    expect(run.rejects[0].reason.match(/went away during the call/g)).toHaveLength(1)
  }, 60_000)

  it("a read-only plan still runs again once (and fails naming the second loss)", async () => {
    const inventory = await sideEffectInventory()
    const run = await verify({
      inventory,
      specs: [sideEffects],
      rows: [row("crash", { server: "se", tool: "crash", params: {} })]
    })
    expect(run.report.servers).toEqual([expect.objectContaining({ server: "se", starts: 2 })])
    expect(run.rejects[0]).toMatchObject({ status: "server-unavailable", step: 1, tool: "crash" })
    expect(run.rejects[0].reason).toContain("went away during the call twice")
  }, 60_000)
})

describe("verify: launch args that reference the environment", () => {
  it(
    "${VAR} in a stdio server's args is the variable's value at start; an unset one makes it unavailable",
    async () => {
      const dir = tempDir("skyrl-verify-argvar-")
      const log = join(dir, "from-env.log")
      process.env.SKYRL_TEST_SE_LOG = log
      // cwd: dir, so that a literal "${SKYRL_TEST_SE_LOG}" file (the server given the reference) lands there.
      const spec = { ...nodeServer("se", [SIDE_EFFECT_SERVER, "${SKYRL_TEST_SE_LOG}"]), cwd: dir }
      const inventory = await importLive([spec])
      const rows = [row("append", { server: "se", tool: "append", params: { text: "hello" } })]
      const run = await verify({ inventory, specs: [spec], rows, allow: "append" })
      expect(run.rows).toHaveLength(1)
      // Was: the server got the literal text and wrote dir/${SKYRL_TEST_SE_LOG}.
      expect(readFileSync(log, "utf8")).toBe("hello\n")
      delete process.env.SKYRL_TEST_SE_LOG
      const unset = await verify({ inventory, specs: [spec], rows, allow: "append" })
      expect(unset.rejects).toEqual([expect.objectContaining({ status: "server-unavailable" })])
      expect(unset.rejects[0].reason).toContain("$SKYRL_TEST_SE_LOG not set")
    },
    60_000
  )
})

describe("verify --resume after a side effect ran", () => {
  it(
    "a row that ended server-unavailable after its side-effecting step ran is not run again; a read-only one is",
    async () => {
      const dir = tempDir("skyrl-verify-resume-se-")
      const { spec: sideEffects, appended } = sideEffectServer(dir)
      const inventory = await sideEffectInventory()
      const rows = [
        row("append-then-crash", { server: "se", tool: "append", params: { text: "hello" } }, {
          server: "se",
          tool: "crash",
          params: {}
        }),
        row("crash", { server: "se", tool: "crash", params: {} })
      ]
      const options = { inventory, specs: [sideEffects], rows, allow: "append", dir, concurrency: 1 }
      await verify(options)
      expect(appended()).toEqual(["hello"])
      const again = await verify({ ...options, resume: true })
      expect(appended()).toEqual(["hello"]) // was ["hello", "hello"]: --resume ran the plan again from step 1
      expect(again.result.summary.resumed).toBe(1)
      expect(again.rejects[0]).toMatchObject({ status: "server-unavailable", step: 2, tool: "crash" })
      expect(again.rejects[0].reason).toContain(
        "not run again: step 1 se/append has side effects and already ran; not retried on --resume either"
      )
      // The read-only row is tried again, as documented: started, lost, restarted, lost.
      expect(again.report.servers).toEqual([expect.objectContaining({ server: "se", starts: 2 })])
    },
    60_000
  )
})

/** A row whose plan appends a line (a side effect, allowed) then calls a tool that never answers. */
const appendThenHang = async (dir: string, timeout: number) => {
  const { spec: sideEffects, appended } = sideEffectServer(dir)
  const inventory = await sideEffectInventory()
  const rows = [
    row("append-then-hang", { server: "se", tool: "append", params: { text: "hello" } }, {
      server: "se",
      tool: "hang",
      params: {}
    })
  ]
  return { options: { inventory, specs: [sideEffects], rows, allow: "append", dir, timeout }, appended }
}

describe("verify --resume after a side effect ran and a later step timed out", () => {
  it("the timed-out row is journaled and not run again", async () => {
    const { options, appended } = await appendThenHang(tempDir("skyrl-verify-resume-timeout-"), 3)
    const first = await verify(options)
    expect(first.rejects[0]).toMatchObject({ status: "timeout", step: 2, tool: "hang" })
    expect(first.rejects[0].reason).toContain(
      "not retried on --resume: step 1 se/append has side effects and already ran"
    )
    const again = await verify({ ...options, resume: true })
    expect(appended()).toEqual(["hello"]) // was ["hello", "hello"]: the timeout was tried again from step 1
    expect(again.result.summary.resumed).toBe(1)
    expect(again.rejects[0]).toMatchObject({ status: "timeout", step: 2, reason: first.rejects[0].reason })
  }, 60_000)
})

describe("verify --resume after Ctrl-C in the middle of a plan whose side-effecting step ran", () => {
  it("the plan runs to its outcome and is journaled before the run stops; --resume does not run it again", async () => {
    const { options, appended } = await appendThenHang(tempDir("skyrl-verify-interrupt-se-"), 2)
    const dir = options.dir
    const logs: Array<string> = []
    const logger = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push(String(message))))
    const fiber = Effect.runFork(verifyRun(options, dir).pipe(Effect.provide(logger)))
    // A run that ended before step 1 ran (its server did not start) fails here, not at the test's timeout.
    while (appended().length === 0 && fiber.unsafePoll() === null) await new Promise((r) => setTimeout(r, 20))
    expect(fiber.unsafePoll(), "the run ended before step 1 ran").toBeNull()
    // What a kill -9 now would leave on disk: the journal says, before step 1 was sent, that it may act.
    const journal = journalFileOf(join(dir, "out.jsonl"))
    const killed = readFileSync(journal, "utf8")
    expect(lines(journal)).toEqual([
      expect.objectContaining({
        failure: expect.objectContaining({ status: "interrupted", step: 1, sideEffectRan: 1 })
      })
    ])
    await Effect.runPromise(Fiber.interrupt(fiber)) // Ctrl-C while step 2 is out
    // The wait is said (Ctrl-C seemed to do nothing until the plan's last call timed out).
    // Once, naming the row (it said "finishing a plan whose side effects have started" once per plan, naming none).
    expect(logs.filter((l) => l.startsWith("interrupted: "))).toEqual([
      expect.stringMatching(
        /^interrupted: finishing \S+ row 0 \(line 1\), whose side effects have started, so that --resume does not/
      )
    ])
    // The plan's outcome follows, and replaces the first line.
    expect(lines(journal)).toEqual([
      expect.objectContaining({ failure: expect.objectContaining({ status: "interrupted" }) }),
      expect.objectContaining({ failure: expect.objectContaining({ status: "timeout", step: 2, sideEffectRan: 1 }) })
    ])
    const again = await verify({ ...options, resume: true })
    expect(appended()).toEqual(["hello"]) // was ["hello", "hello"]: --resume ran the plan again from step 1
    expect(again.result.summary.resumed).toBe(1)
    expect(again.rejects[0]).toMatchObject({ status: "timeout", step: 2, tool: "hang" })
    // After a kill -9 in the middle of the plan (its journal as it was then): not run again either; before, the
    // journal held nothing of the plan and --resume ran it again.
    writeFileSync(journal, killed)
    const afterKill = await verify({ ...options, resume: true })
    expect(appended()).toEqual(["hello"])
    expect(afterKill.rejects[0]).toMatchObject({ status: "interrupted", step: 1, tool: "append" })
    expect(afterKill.rejects[0].reason).toContain("it may have acted, so the plan is not run again")
  }, 60_000)
})

describe("verify: read-only by the inventory and by the live server", () => {
  it("a tool the inventory marks read-only but the live server does not is skipped without the flag", async () => {
    const dir = tempDir("skyrl-verify-live-ro-")
    const { spec: sideEffects, log } = sideEffectServer(dir)
    const data = JSON.parse(JSON.stringify(Schema.encodeSync(Inventory)(await sideEffectInventory())))
    // A stale or hand-edited inventory: append (readOnlyHint: false on the server) marked read-only.
    for (const t of data.servers[0].tools) if (t.name === "append") t.annotations = { readOnlyHint: true }
    const inventory = Either.getOrThrow(decodeInventory(data))
    const rows = [row("append", { server: "se", tool: "append", params: { text: "hello" } })]
    const run = await verify({ inventory, specs: [sideEffects], rows, dir })
    expect(existsSync(log)).toBe(false) // was: the line was appended, and the row verified
    expect(run.rejects).toEqual([expect.objectContaining({ status: "skipped-side-effect", step: 1, tool: "append" })])
    expect(run.rejects[0].reason).toContain(
      "the inventory annotates it readOnlyHint: true but the live server's tools/list does not, so it may change"
    )
    const allowed = await verify({ inventory, specs: [sideEffects], rows, allow: "append" })
    expect(allowed.rejects).toEqual([])
    expect(readFileSync(log, "utf8")).toBe("hello\n")
  }, 60_000)

  it("a tool the live server lists twice, once without readOnlyHint, is skipped without the flag", async () => {
    const dir = tempDir("skyrl-verify-live-dup-")
    const { log, spec } = sideEffectServer(dir)
    const twice = { ...spec, env: { DUP_APPEND: "1" } }
    const data = JSON.parse(JSON.stringify(Schema.encodeSync(Inventory)(await sideEffectInventory())))
    for (const t of data.servers[0].tools) if (t.name === "append") t.annotations = { readOnlyHint: true }
    const inventory = Either.getOrThrow(decodeInventory(data))
    const rows = [row("append", { server: "se", tool: "append", params: { text: "hello" } })]
    const run = await verify({ inventory, specs: [twice], rows, dir })
    // Was: the second listing (read-only) counted, and the line was appended without --allow-side-effects.
    expect(existsSync(log)).toBe(false)
    expect(run.rejects).toEqual([expect.objectContaining({ status: "skipped-side-effect", step: 1, tool: "append" })])
  }, 60_000)
})

describe("verify: a server that lists otherwise after it restarts", () => {
  it("a step sent after the restart runs only if the restarted server lists it read-only", async () => {
    const dir = tempDir("skyrl-verify-live-flip-")
    const { log, spec } = sideEffectServer(dir)
    const flipping = { ...spec, env: { FLIP: join(dir, "started") } }
    const data = JSON.parse(JSON.stringify(Schema.encodeSync(Inventory)(await sideEffectInventory())))
    for (const t of data.servers[0].tools) if (t.name === "append") t.annotations = { readOnlyHint: true }
    const inventory = Either.getOrThrow(decodeInventory(data))
    // crash makes the first start exit; the plan runs again on the restarted server, which lists append as it is
    const rows = [row("flip", { server: "se", tool: "crash", params: {} }, {
      server: "se",
      tool: "append",
      params: { text: "hello" }
    })]
    const run = await verify({ inventory, specs: [flipping], rows, dir })
    expect(existsSync(log)).toBe(false) // was: appended, and the row verified (the first start's listing counted)
    expect(run.rejects).toEqual([expect.objectContaining({ status: "skipped-side-effect", step: 2, tool: "append" })])
    expect(run.rejects[0].reason).toContain("the live server's tools/list does not")
  }, 60_000)
})

describe("verify: a tool the live server does not list", () => {
  it("is a tool-error naming the stale inventory, not a side-effect skip", async () => {
    const dir = tempDir("skyrl-verify-live-missing-")
    const { spec, log } = sideEffectServer(dir)
    const data = JSON.parse(JSON.stringify(Schema.encodeSync(Inventory)(await sideEffectInventory())))
    // A stale inventory: a read-only tool the server has since removed.
    const echo = data.servers[0].tools.find((t: any) => t.name === "echo")
    data.servers[0].tools.push({ ...echo, name: "ghost", annotations: { readOnlyHint: true } })
    const inventory = Either.getOrThrow(decodeInventory(data))
    const rows = [row("ghost", { server: "se", tool: "echo", params: { text: "a" } }, {
      server: "se",
      tool: "ghost",
      params: { text: "b" }
    })]
    const run = await verify({ inventory, specs: [spec], rows, dir })
    // Was skipped-side-effect: "the inventory annotates it readOnlyHint: true but the live server's tools/list does
    // not, so it may change something ... (allow it with --allow-side-effects ghost)".
    expect(run.rejects).toEqual([expect.objectContaining({ status: "tool-error", step: 2, tool: "ghost" })])
    expect(run.rejects[0].reason).toBe(
      "the live server's tools/list has no tool \"ghost\": the inventory is stale (see `skyrl tools import --check " +
        "INV`); nothing of this plan ran"
    )
    expect(existsSync(`${log}.calls`)).toBe(false) // step 1 did not run either
  }, 60_000)
})

describe("verify: the same row twice in one run", () => {
  const appendRow = (text: string) => row(`append-${text}`, { server: "se", tool: "append", params: { text } })
  const echoRow = (text: string) => row(`echo-${text}`, { server: "se", tool: "echo", params: { text } })
  const idsOf = (rows: ReadonlyArray<any>) => rows.map((r) => r.reward_spec.ground_truth.task_id)

  it("runs the plan once: every copy gets the first copy's outcome, in input order", async () => {
    const dir = tempDir("skyrl-verify-dup-")
    const { spec, appended, echoed } = sideEffectServer(dir)
    const inventory = await sideEffectInventory()
    // A plan whose second step's text is derived from the first's result (recorded as illustrative).
    const derived = row("derived", { server: "se", tool: "echo", params: { text: "b" } }, {
      server: "se",
      tool: "echo",
      params: { text: "c" },
      depends_on: [1],
      derived_params: ["text"]
    })
    const rows = [
      appendRow("once"),
      echoRow("a"),
      derived,
      appendRow("once"),
      echoRow("fail"),
      echoRow("a"),
      echoRow("fail"),
      derived
    ]
    const run = await verify({ inventory, specs: [spec], rows, allow: "all", dir, concurrency: 2 })
    expect(appended()).toEqual(["once"]) // was ["once", "once"]: the copy acted again
    expect(echoed().sort()).toEqual(["a", "b", "c", "fail"]) // was 7 calls: a read-only copy was paid for again
    expect(idsOf(run.rows)).toEqual(["append-once", "echo-a", "derived", "append-once", "echo-a", "derived"])
    // The same record, to the byte (key order included).
    const recordText = (i: number) => JSON.stringify(run.verification[i])
    expect([3, 4, 5].map(recordText)).toEqual([0, 1, 2].map(recordText))
    expect(run.verification[5].steps.map((s: any) => s.illustrative)).toEqual([false, true])
    const input = join(dir, "in.jsonl")
    expect(run.rejects).toEqual([
      expect.objectContaining({ row: 4, status: "tool-error", tool: "echo", reason: "failed as asked" }),
      expect.objectContaining({ row: 6, status: "tool-error", tool: "echo" })
    ])
    expect(run.rejects[1].reason).toBe(`the same row as ${input}:row 4, not run again: failed as asked`)
    expect(run.result.summary.statuses).toMatchObject({ verified: 6, "tool-error": 2 })
    expect(run.result.summary.copies).toBe(4)
    // One outcome per row in the journal (the append's is preceded by its intent line); --resume gives it to
    // every copy and runs nothing.
    const outcomes = run.journal.filter((j) => j.failure?.status !== "interrupted")
    expect(outcomes).toHaveLength(4)
    expect(new Set(outcomes.map((j) => j.hash)).size).toBe(4)
    const again = await verify({ inventory, specs: [spec], rows, allow: "all", dir, resume: true })
    expect(again.result.summary.resumed).toBe(8)
    expect(again.rows).toEqual(run.rows)
    expect(appended()).toEqual(["once"])
    expect(echoed()).toHaveLength(4)
  }, 60_000)

  it.each([8, 1])("at --concurrency %i with the copies adjacent: one call per distinct row, in input order", async (
    concurrency
  ) => {
    const dir = tempDir("skyrl-verify-dup-adjacent-")
    const { spec, appended, echoed } = sideEffectServer(dir)
    const inventory = await sideEffectInventory()
    const texts = ["t0", "t1", "t2", "t3"]
    const rows = texts.flatMap((t) => [appendRow(t), appendRow(t), appendRow(t), echoRow(t), echoRow(t), echoRow(t)])
    const run = await verify({ inventory, specs: [spec], rows, allow: "all", dir, concurrency })
    expect(run.rejects).toEqual([])
    expect(appended().sort()).toEqual(texts) // was 12 lines: each copy appended again
    expect(echoed().sort()).toEqual(texts) // was 12 calls
    expect(idsOf(run.rows)).toEqual(rows.map((r) => r.reward_spec.ground_truth.task_id))
    const recordText = (i: number) => JSON.stringify(run.verification[i])
    run.verification.forEach((_, i) => expect(recordText(i)).toBe(recordText(i - (i % 3))))
    expect(run.result.summary.statuses.verified).toBe(24)
    expect(run.result.summary.copies).toBe(16)
  }, 60_000)
})
