/**
 * `skyrl verify` in-process against a server that misbehaves (test/fixtures/mcp/misbehaving-server.mjs, raw
 * JSON-RPC over stdio): what one call does wrong rejects that call's row with a reason that says what it was,
 * and neither the server nor the rows beside it pay for it.
 */
import { Effect, Layer } from "effect"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import type { Inventory } from "../src/domain/inventory.js"
import { importInventory } from "../src/programs/toolsImport.js"
import { rejectsFileOf, verifyDatasets } from "../src/programs/verify.js"
import type { McpServerSpec } from "../src/services/McpClient.js"
import { McpClientLive } from "../src/services/McpClient.js"
import { StorageLive } from "../src/services/Storage.js"
import { Verifier } from "../src/services/Verifier.js"
import { parseAllowList } from "../src/skyrl/verification.js"
import { nodeServer, rowFor, writeJsonl } from "./support/verifyRows.js"

const live = Layer.merge(McpClientLive, StorageLive)
const SERVER = join(import.meta.dirname, "fixtures", "mcp", "misbehaving-server.mjs")

const temps: Array<string> = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "skyrl-verify-misbehaving-"))
  temps.push(d)
  return d
}
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})

const lines = (file: string): Array<any> =>
  existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l)) : []

/** The server as "bad", its calls logged in `dir`/calls.log (`env`: more of its settings). */
const server = (dir: string, env: Record<string, string> = {}) => {
  const log = join(dir, "calls.log")
  const spec = nodeServer("bad", [SERVER], { CALLS_LOG: log, ...env })
  const linesOf = (file: string) =>
    existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l !== "") : []
  const calls = () => linesOf(log)
  /** The servers started that still run (a zombie, ended and waiting to be reaped, does not). */
  const running = () =>
    linesOf(`${log}.pids`).filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
        return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
      } catch {
        return false
      }
    })
  return { spec, calls, running }
}

let imported: Inventory | undefined
const inventoryOf = async (): Promise<Inventory> => {
  if (imported !== undefined) return imported
  const spec = server(tempDir()).spec
  const result = await Effect.runPromise(importInventory([spec], { timeout: "20 seconds" }).pipe(Effect.provide(live)))
  imported = result.inventory!
  return imported
}

const call = (tool: string, text: string, n?: number) =>
  rowFor(`${tool}-${text}`, [{ server: "bad", tool, params: { text, ...(n === undefined ? {} : { n }) } }])

/** Verifies `rows` against `spec` in `dir`: the result, the server report, the rows written and the rejects. */
const verify = async (
  spec: McpServerSpec,
  dir: string,
  rows: ReadonlyArray<unknown>,
  options: { readonly timeout?: number; readonly startTimeout?: number; readonly concurrency?: number } = {}
) => {
  const inventory = await inventoryOf()
  const input = writeJsonl(join(dir, "in.jsonl"), rows)
  const out = join(dir, "out.jsonl")
  const started = performance.now()
  const { report, result } = await Effect.runPromise(
    Effect.gen(function*() {
      const result = yield* verifyDatasets({
        files: [input],
        out,
        inventory,
        concurrency: options.concurrency ?? 4,
        resume: false
      })
      return { result, report: yield* (yield* Verifier).report }
    }).pipe(
      Effect.provide(Verifier.live({
        inventory,
        allowSideEffects: parseAllowList(undefined),
        specs: [spec],
        cassettesDir: join(dir, "cassettes"),
        timeout: `${options.timeout ?? 20} seconds`,
        ...(options.startTimeout === undefined ? {} : { startTimeout: `${options.startTimeout} seconds` })
      })),
      Effect.provide(live)
    )
  )
  return {
    result,
    report,
    ms: performance.now() - started,
    rows: lines(out),
    rejects: lines(rejectsFileOf(out)),
    cassettes: lines(join(dir, "cassettes", "cassettes.jsonl"))
  }
}

describe("verify against a server that misbehaves", () => {
  it("a result nested deeper than skyrl reads is that row's tool-error, not recorded; the run goes on", async () => {
    const dir = tempDir()
    const { calls, spec } = server(dir)
    const rows = [call("deep", "a"), call("deep", "b", 600), call("ok", "c")]
    const run = await verify(spec, dir, rows, { concurrency: 1 })
    // Was: "internal error: Maximum call stack size exceeded" (the cassette line's JSON.stringify), exit 1, no row
    // written, and the same on --resume; at 600 levels, a cassette line MCPToolEnv's reader raised RecursionError on.
    const reason = "protocol error: the result nests objects and arrays more than 512 levels deep: too deep to read " +
      "(skyrl's checks and MCPToolEnv walk values recursively)"
    expect(run.rejects.map((r) => [r.row, r.status, r.reason])).toEqual(
      [0, 1].map((row) => [row, "tool-error", reason])
    )
    expect(run.rows).toHaveLength(1)
    expect(run.cassettes.map((c) => c.tool)).toEqual(["ok"])
    expect(calls()).toEqual(["deep a", "deep b", "ok c"])
  }, 60_000)

  it(
    "an error the server answers with -32000 or -32001 is that row's tool-error: no restart, nothing sent twice",
    async () => {
      const dir = tempDir()
      const { calls, spec } = server(dir)
      const run = await verify(spec, dir, [call("busy", "a"), call("late", "b"), call("ok", "c")], { concurrency: 1 })
      // Was: "the server went away during the call (MCP error -32000: backend busy)", the server restarted and the
      // call sent again, the row server-unavailable; and -32001 a `timeout`, "no answer within 20s", at once.
      expect(run.rejects.map((r) => [r.row, r.status, r.reason])).toEqual([
        [0, "tool-error", "protocol error: MCP error -32000: backend busy"],
        [1, "tool-error", "protocol error: MCP error -32001: the backend timed out"]
      ])
      expect(run.rows).toHaveLength(1)
      expect(run.report.servers).toEqual([expect.objectContaining({ server: "bad", starts: 1 })])
      expect(calls()).toEqual(["busy a", "late b", "ok c"])
    },
    60_000
  )

  it(
    "a result that is no tool result is that row's tool-error, naming the field; the server is not restarted",
    async () => {
      const dir = tempDir()
      const { calls, spec } = server(dir)
      const run = await verify(spec, dir, [call("invalid", "a"), call("ok", "b")], { concurrency: 1 })
      expect(run.rejects).toEqual([
        expect.objectContaining({ row: 0, status: "tool-error", step: 1, tool: "invalid" })
      ])
      // Was: server-unavailable, "the server went away during the call twice: the server went away during the
      // call ([\n  {\n    \"expected\": \"array\", ..." (a ZodError taken for a lost connection): the server was
      // killed, restarted and the plan run again.
      expect(run.rejects[0].reason).toBe(
        "protocol error: the result is no tool result: content: Invalid input: expected array, received string"
      )
      expect(run.rows).toHaveLength(1)
      expect(run.report.servers).toEqual([expect.objectContaining({ server: "bad", starts: 1 })])
      expect(calls()).toEqual(["invalid a", "ok b"])
    },
    60_000
  )

  it(
    "an answer that is no JSON-RPC response fails its call at once (a protocol error), not after --timeout",
    async () => {
      const dir = tempDir()
      const { calls, spec } = server(dir)
      const run = await verify(spec, dir, [call("nullresult", "a"), call("nomessage", "b"), call("ok", "c")], {
        timeout: 20
      })
      // Was: both waited out --timeout and were rejected as "timeout: no answer within 20s".
      expect(run.ms).toBeLessThan(15_000)
      expect(run.rejects.map((r) => [r.status, r.reason])).toEqual([
        ["tool-error", "protocol error: the answer is no JSON-RPC response: result: expected an object, got null"],
        ["tool-error", "protocol error: the answer is no JSON-RPC response: error.message: expected a string, got none"]
      ])
      expect(run.rows).toHaveLength(1)
      expect(run.report.servers).toEqual([expect.objectContaining({ starts: 1 })])
      expect(calls().sort()).toEqual(["nomessage b", "nullresult a", "ok c"])
    },
    60_000
  )

  it("an answer over 10 MiB rejects its row naming its size; the server goes on serving the others", async () => {
    const dir = tempDir()
    const { calls, spec } = server(dir)
    const run = await verify(spec, dir, [call("ok", "a"), call("huge", "b", 11), call("ok", "c")], { concurrency: 1 })
    // Was: server-unavailable, "the server went away during the call twice ... Connection closed": the line
    // went past the read buffer, the connection was closed, the server restarted and the plan run again.
    expect(run.rejects).toEqual([expect.objectContaining({ row: 1, status: "tool-error", tool: "huge" })])
    expect(run.rejects[0].reason).toMatch(
      /^protocol error: the answer is 11534\d{3} bytes long, over the 10485760 bytes \(10 MiB\) an MCP message may take/
    )
    expect(run.rows).toHaveLength(2)
    expect(run.report.servers).toEqual([expect.objectContaining({ starts: 1 })])
    expect(calls()).toEqual(["ok a", "huge b", "ok c"])
  }, 60_000)

  it(
    "a server whose tools/list does not answer within --start-timeout, or that exits then, is unavailable, said so",
    async () => {
      const dir = tempDir()
      const hangs = server(dir, { LIST: "hang" })
      const hung = await verify(hangs.spec, dir, [call("ok", "a"), call("ok", "b")], { startTimeout: 2 })
      // Was: 60 s (the SDK's own timeout, whatever --timeout, which bounded the start then), then both rows skipped-side-effect: "the live
      // server's tools/list failed (tools/list failed: MCP error -32001: Request timed out), so it may change
      // something; ... (allow it with --allow-side-effects ok)".
      expect(hung.ms).toBeLessThan(15_000)
      expect(hung.rejects.map((r) => r.status)).toEqual(["server-unavailable", "server-unavailable"])
      expect(hung.rejects[0].reason).toContain("no answer within 2s (tools/list)")
      expect(hangs.calls()).toEqual([])
      const exits = server(tempDir(), { LIST: "exit" })
      const exited = await verify(exits.spec, dir, [call("ok", "a"), call("ok", "b")], { startTimeout: 2 })
      // Was: skipped-side-effect ("tools/list failed: the server closed the connection ...; allow it with
      // --allow-side-effects ok"), the server started twice.
      expect(exited.rejects.map((r) => r.status)).toEqual(["server-unavailable", "server-unavailable"])
      expect(exited.rejects[0].reason).toContain("tools/list failed: the server closed the connection before answering")
      expect(exited.report.servers).toEqual([expect.objectContaining({ starts: 0 })])
    },
    120_000
  )

  it("a row whose call makes the server exit does not take the rows in flight beside it down with it", async () => {
    const dir = tempDir()
    const { calls, spec } = server(dir)
    const slow = Array.from({ length: 15 }, (_, i) => call("slow", `r${i}`, 300))
    const rows = [...slow.slice(0, 3), call("exit", "x"), ...slow.slice(3)]
    const run = await verify(spec, dir, rows, { concurrency: 16 })
    // Was: 1 verified of 16 at --concurrency 16 (26 of 30 at 4): the rows in flight lost their calls with the
    // exiting one, ran again beside it, lost them again and were server-unavailable ("went away during the
    // call twice"), and four deaths in a row gave the server up for the rest of the run.
    expect(run.rows).toHaveLength(15)
    expect(run.rejects).toEqual([expect.objectContaining({ row: 3, status: "server-unavailable", tool: "exit" })])
    expect(run.rejects[0].reason).toMatch(
      /^the server went away during the call twice, the second time the only call on it: /
    )
    expect(calls().filter((c) => c.startsWith("exit"))).toEqual(["exit x", "exit x"])
    // Each slow row ran once or twice (twice when its call was lost with the first exit), never more.
    const slowCalls = calls().filter((c) => c.startsWith("slow"))
    for (let i = 0; i < 15; i++) expect(slowCalls.filter((c) => c === `slow r${i}`).length).toBeLessThanOrEqual(2)
    expect(run.report.servers).toEqual([expect.objectContaining({ server: "bad", starts: 3 })])
  }, 60_000)

  it("rows whose calls make the server exit, one after another, do not get the server given up", async () => {
    const dir = tempDir()
    const { calls, spec } = server(dir)
    const slow = Array.from({ length: 12 }, (_, i) => call("slow", `r${i}`, 200))
    const exits = Array.from({ length: 4 }, (_, i) => call("exit", `x${i}`))
    const run = await verify(spec, dir, [...slow.slice(0, 4), ...exits, ...slow.slice(4)], { concurrency: 4 })
    // Was: a death of the server during a call run alone counted toward giving it up (3 restarts in a row
    // without an answer between): four such rows in a row gave it up, and every row after them was
    // server-unavailable ("the server exited 4 times in a row; given up"): 10 of 36 verified at --concurrency 4.
    expect(run.rows).toHaveLength(12)
    expect(run.rejects.map((r) => [r.row, r.status])).toEqual([4, 5, 6, 7].map((row) => [row, "server-unavailable"]))
    // Each exit call ran once or twice (once when the server had exited before it read it, the first time).
    const exitCalls = calls().filter((c) => c.startsWith("exit"))
    for (let i = 0; i < 4; i++) expect([1, 2]).toContain(exitCalls.filter((c) => c === `exit x${i}`).length)
  }, 60_000)

  it(
    "a row holding a lone surrogate (in its params or anywhere) is a contract reject naming the field; no call is made",
    async () => {
      const dir = tempDir()
      const { calls, spec } = server(dir)
      const inParams = rowFor("lone", [{ server: "bad", tool: "ok", params: { text: "lone \ud800 here" } }])
      const inPrompt = call("ok", "b")
      inPrompt.prompt[1].content = "Say \udc00 please"
      const run = await verify(spec, dir, [inParams, inPrompt, call("ok", "c")])
      // Was: both verified and written to --out, a file datasets.load_dataset cannot read ("The surrogate pair in
      // string is invalid"), the first after a call MCPToolEnv refuses to make ("no MCP transport can send").
      expect(run.rejects).toEqual([
        expect.objectContaining({
          row: 0,
          stage: "contract",
          field: "reward_spec.ground_truth.tool_sequence[0].params.text",
          reason: expect.stringMatching(/^holds a lone surrogate \(U\+D800 at character 5\): no Unicode text/)
        }),
        expect.objectContaining({
          row: 1,
          stage: "contract",
          field: "prompt[1].content",
          reason: expect.stringMatching(/^holds a lone surrogate \(U\+DC00 at character 4\)/)
        })
      ])
      expect(run.rows).toHaveLength(1)
      expect(calls()).toEqual(["ok c"])
    },
    60_000
  )

  it(
    "a call that holds the server so that it answers nothing within --timeout: the server is restarted for the rows after it",
    async () => {
      const rows = [call("ok", "a"), call("block", "x"), ...Array.from({ length: 8 }, (_, i) => call("ok", `r${i}`))]
      for (const concurrency of [1, 2]) {
        const dir = tempDir()
        const { calls, running, spec } = server(dir)
        const run = await verify(spec, dir, rows, { timeout: 2, concurrency })
        // The held server was ended before the run was (it spun on, at 100% CPU, after the run's end).
        expect(running()).toEqual([])
        // Was: every row after it timed out too (8 of 8, each waiting --timeout: at 30 s and 10,000 rows, a day),
        // the server never restarted.
        expect(run.rejects).toEqual([expect.objectContaining({ row: 1, status: "timeout", tool: "block" })])
        // The rows sent after it waited in vain, and ran again (each call alone) on the restarted server.
        expect(run.rejects[0].reason).toBe(
          "no answer within 2s, nor to a ping after it: the server was held and restarted"
        )
        expect(run.rows).toHaveLength(9)
        expect(run.report.servers).toEqual([expect.objectContaining({ server: "bad", starts: 2 })])
        expect(calls().filter((c) => c === "block x")).toHaveLength(1)
      }
    },
    60_000
  )

  it(
    "a server that takes its calls one at a time, slow but sound: at --concurrency 8 no row waits out --timeout in the queue",
    async () => {
      const dir = tempDir()
      const { spec } = server(dir, { SERIAL: "1" })
      // 16 calls of 300 ms, one at a time: a call sent behind 7 others waits 2.1 s, over the 1 s timeout.
      const rows = Array.from({ length: 16 }, (_, i) => call("slow", `r${i}`, 300))
      const run = await verify(spec, dir, rows, { timeout: 1, concurrency: 8 })
      // Was: 11 of 16 rows `timeout` (measured 2026-12-02), each rejected for the calls queued before it.
      expect(run.rejects).toEqual([])
      expect(run.rows).toHaveLength(16)
      expect(run.ms).toBeGreaterThanOrEqual(16 * 300) // the server did take them one at a time
      expect(run.report.servers).toEqual([expect.objectContaining({ server: "bad", starts: 1 })])
    },
    60_000
  )

  it(
    "on a server that takes its calls one at a time, a call it never finishes is the only timeout, after its own --timeout",
    async () => {
      const dir = tempDir()
      const { calls, spec } = server(dir, { SERIAL: "1" })
      const rows = [
        ...Array.from({ length: 3 }, (_, i) => call("slow", `a${i}`, 300)),
        call("slow", "never", 600_000),
        ...Array.from({ length: 12 }, (_, i) => call("slow", `b${i}`, 300))
      ]
      const run = await verify(spec, dir, rows, { timeout: 1, concurrency: 8 })
      expect(run.rejects).toEqual([
        expect.objectContaining({ row: 3, status: "timeout", reason: "no answer within 1s" })
      ])
      expect(run.rows).toHaveLength(15)
      // 15 calls of 300 ms and the one that never ends waited out for 1 s (then cancelled: the server goes on).
      expect(run.ms).toBeLessThan(15 * 300 + 1_000 + 3_000)
      expect(run.report.servers).toEqual([expect.objectContaining({ server: "bad", starts: 1 })])
      expect(calls().filter((c) => c === "slow never")).toHaveLength(1)
    },
    60_000
  )

  it(
    "a server that reads its requests one at a time, pings too, each call slower than --timeout: rows time out, the server kept",
    async () => {
      const dir = tempDir()
      const { calls, spec } = server(dir, { SERIAL: "lines" })
      // 3 calls of 2.6 s, one at a time (answered at 2.6, 5.2 and 7.8 s), at --timeout 2 (1 s left the server's
      // start little room on a loaded machine): each ping after a call that timed out waits behind the calls still
      // queued, over its 2 s wait, but an answer comes every 2.6 s.
      const rows = Array.from({ length: 3 }, (_, i) => call("slow", `r${i}`, 2_600))
      const run = await verify(spec, dir, rows, { timeout: 2, concurrency: 3 })
      // Was: "no answer within 2s, nor to a ping after it: the server was held and restarted" for the first row,
      // the server ended while it worked, and a row after it ran again on a second server.
      expect(run.rejects.length).toBeGreaterThan(0) // a loaded machine may see a call answered before its timer
      for (const reject of run.rejects) {
        expect(reject).toEqual(expect.objectContaining({ status: "timeout", reason: "no answer within 2s" }))
      }
      expect(run.rows.length + run.rejects.length).toBe(3)
      expect(run.report.servers).toEqual([expect.objectContaining({ server: "bad", starts: 1 })])
      expect(calls().sort()).toEqual(["slow r0", "slow r1", "slow r2"]) // each made once
    },
    60_000
  )

  it(
    "a row whose params hold a number beyond a double's range (1e400: Infinity, sent as null) is a contract reject",
    async () => {
      const dir = tempDir()
      const { calls, spec } = server(dir)
      const huge = call("ok", "a")
      huge.reward_spec.ground_truth.tool_sequence[0].params = `{"text": "a", "n": -1e400}`
      const run = await verify(spec, dir, [huge, call("ok", "b")])
      // Was: verified, the server called with {"n": null} and the cassette keyed so, the row saying -1e400.
      expect(run.rejects).toEqual([
        expect.objectContaining({
          row: 0,
          stage: "contract",
          field: "reward_spec.ground_truth.tool_sequence[0].params.n",
          reason: "a number beyond a double's range (JSON text such as 1e400 reads as Infinity, which a call " +
            "sends as null): write it within ±1.7976931348623157e308, or as a string"
        })
      ])
      expect(calls()).toEqual(["ok b"])
    },
    60_000
  )

  it(
    "a server that floods stderr and exits: the reason holds the tail of its stderr, each line cut short",
    async () => {
      const dir = tempDir()
      const { spec } = server(dir)
      const plan = rowFor("flood-exit", [
        { server: "bad", tool: "noisy", params: { text: "a" } },
        { server: "bad", tool: "exit", params: { text: "b" } }
      ])
      const run = await verify(spec, dir, [plan])
      expect(run.rejects).toEqual([expect.objectContaining({ status: "server-unavailable", step: 2 })])
      const tail = run.rejects[0].reason.split("stderr (last lines):\n")[1].split("\n")
      // Was: 15 lines of 1,023 characters each (a 15 KB reason, and as much in the log).
      expect(tail).toHaveLength(15)
      expect(tail[0]).toBe(`    ${"x".repeat(300)}... (723 more characters)`)
    },
    60_000
  )

  it(
    "noise around an answer, and the answer sent twice, change nothing: the row verifies, the server kept",
    async () => {
      const dir = tempDir()
      const { calls, spec } = server(dir)
      const run = await verify(spec, dir, [call("noisy", "a"), call("ok", "b"), call("noisy", "c")])
      expect(run.rejects).toEqual([])
      expect(run.rows).toHaveLength(3)
      expect(run.cassettes.map((c) => c.result.content[0].text).sort()).toEqual(["noisy a", "noisy c", "ok b"])
      expect(run.report.servers).toEqual([expect.objectContaining({ starts: 1 })])
      expect(calls().sort()).toEqual(["noisy a", "noisy c", "ok b"])
    },
    60_000
  )
})
