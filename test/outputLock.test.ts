/**
 * Every command that writes a dataset `--out` (`generate`, `enrich`, `verify`, `batch collect`, `convert`,
 * `rebuild`) holds `<out>.lock` while it runs (pid, host, command), taken before any model call or server start
 * (src/programs/outputLock.ts). Before, two fresh runs of one `--out` each paid for every sample and the last
 * rename won without a word; `verify` held `<out>.verify.lock` and the others none, so they did not meet a
 * `generate` at all. A live holder makes the second writer exit 1 naming it, having asked nothing; the lock of a
 * process that is gone (`kill -9`) is taken over, so `--resume` after a crash goes on.
 */
import { Effect, Either, Layer, Option } from "effect"
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runConvert } from "../src/cli/convert.live.js"
import { rebuildProgram } from "../src/programs/rebuild.js"
import { verifyDatasets } from "../src/programs/verify.js"
import type { VerifierApi } from "../src/services/Verifier.js"
import { Verifier } from "../src/services/Verifier.js"
import { runChild } from "./support/child.js"
import { runCli } from "./support/cli.js"
import {
  catalogue,
  EngineTest,
  generateOptions,
  OUT,
  reply,
  requestOf,
  runGenerate,
  scripted,
  settingsFor
} from "./support/engine.js"
import { planAnswer } from "./support/fakeEnrich.js"
import type { FakeServer } from "./support/fakeOpenAI.js"
import { answer } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, readJsonl, runDirOf, tempDir, USAGE } from "./support/fakeRun.js"
import { validTaskFor, validTaskText, withStages } from "./support/fakeTasks.js"
import { makeMemoryStorage } from "./support/memoryStorage.js"
import { ended, started, until } from "./support/signals.js"
import { rowFor, writeJsonl } from "./support/verifyRows.js"

const SHAREGPT = join(__dirname, "fixtures", "sharegpt", "sample_data.json")

const servers = fakes()
afterEach(servers.closeAll)
const calls = (server: FakeServer) => server.requests.filter((q) => q.endpoint !== "other")

/** A pid no process has now: a child that has exited. */
const gonePid = async () => (await runChild(process.execPath, ["-e", ""])).pid!

/** A fake model answering `generate`'s stages after `delayMs`, and the command line of an `n`-sample run. */
const generateRun = async (n: number, delayMs: number) => {
  const server = await servers.start(
    withStages((ctx) => answer(validTaskFor(ctx), USAGE), (text) => answer(text, USAGE)),
    delayMs
  )
  const dir = tempDir("skyrl-outlock-")
  const out = join(dir, "ds.jsonl")
  const args = ["generate", "-n", String(n), "--out", out, "--llm", "openai", "--concurrency", "1"]
  return { args, dir, out, server }
}

describe("one generate or enrich writes an --out at a time", () => {
  it("enrich while another live run holds <out>.lock: exit 1 naming the holder, no model call, nothing written; a dead holder's lock is taken over", async () => {
    const server = await servers.start((ctx) => answer(planAnswer(ctx), USAGE))
    const dir = tempDir("skyrl-outlock-")
    const out = join(dir, "o.jsonl")
    const lock = `${out}.lock`
    // This test's own process: alive.
    const held = JSON.stringify({
      pid: process.pid,
      host: hostname(),
      command: "enrich",
      since: "2026-12-04T00:00:00Z"
    })
    writeFileSync(lock, held + "\n")
    const args = ["enrich", SHAREGPT, "--out", out, "--llm", "openai"]
    const second = await runCli(args, { env: llmEnv(server) })
    expect(second.status, second.stderr).toBe(1) // was 0, having paid for every sample again
    expect(second.stderr).toContain(`skyrl: ${out} is being written by another skyrl run (${held})`)
    expect(second.stderr).toContain(`(if no such process runs, delete ${lock})`)
    expect(calls(server)).toHaveLength(0)
    expect(readdirSync(dir)).toEqual(["o.jsonl.lock"])
    expect(readFileSync(lock, "utf8")).toBe(held + "\n")

    writeFileSync(lock, JSON.stringify({ pid: await gonePid(), host: hostname(), command: "enrich" }) + "\n")
    const r = await runCli(args, { env: llmEnv(server) })
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out).length).toBeGreaterThan(0)
    expect(existsSync(lock)).toBe(false) // released at the end
  })

  it("two fresh generate runs of one --out at once: one makes the dataset, the other exits 1 having asked nothing", async () => {
    const { args, dir, out, server } = await generateRun(3, 150)
    const [a, b] = await Promise.all([runCli(args, { env: llmEnv(server) }), runCli(args, { env: llmEnv(server) })])
    const statuses = [a.status, b.status].sort()
    expect(statuses, `${a.stderr}\n${b.stderr}`).toEqual([0, 1]) // were [0, 0], each paying for every call
    const loser = a.status === 1 ? a : b
    expect(loser.stderr).toMatch(
      /skyrl: \S+ds\.jsonl is being written by another skyrl run \(\{"pid":\d+,.*"command":"generate"/
    )
    expect(readdirSync(join(dir, "raw_llm"))).toHaveLength(1) // one run made
    expect(calls(server)).toHaveLength(4) // its subjects stage and 3 samples, once
    expect(readJsonl(out)).toHaveLength(3)
    expect(existsSync(`${out}.lock`)).toBe(false)
  })

  it("generate killed (kill -9) leaves its lock; --resume takes it over and finishes the run", async () => {
    const { args, out, server } = await generateRun(4, 100)
    const run = started(args, llmEnv(server))
    await until(() => calls(server).length >= 3)
    run.child.kill("SIGKILL")
    await ended(run)
    expect(existsSync(`${out}.lock`)).toBe(true)
    const runDir = runDirOf(out)
    const r = await runCli([...args, "--resume"], { env: llmEnv(server) })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).not.toContain("is being written by another")
    expect(runDirOf(out)).toBe(runDir) // the same run, continued
    expect(readJsonl(out)).toHaveLength(4)
    expect(existsSync(`${out}.lock`)).toBe(false)
  })
})

/** A live holder's lock text (this test's own process) as `command`. */
const liveHolder = (command: string) =>
  JSON.stringify({ pid: process.pid, host: hostname(), command, since: "2026-12-04T00:00:00Z" }) + "\n"

/** A Verifier for a run whose rows are all rejected when read: `flush` (at the run's end) notes the --out lock's text then. */
const noteLockAtFlush = (lockText: () => string | undefined) => {
  const seen: Array<string | undefined> = []
  const unused = () => Effect.dieMessage("no row to verify")
  const api: VerifierApi = {
    verify: unused,
    begin: unused,
    blocked: () => [],
    start: () => Effect.succeed([]),
    hasResult: () => false,
    sideEffect: () => false,
    flush: Effect.sync(() => void seen.push(lockText())),
    report: Effect.succeed({ servers: [], cassettes: { file: "", existing: 0, added: 0, replaced: 0, differed: 0 } })
  }
  return { seen, layer: Layer.succeed(Verifier, api) }
}

describe("verify, batch collect, convert and rebuild take the same --out lock (before: .verify.lock, or none)", () => {
  it("verify meets a generate's <out>.lock: exit 1 naming it, nothing written; its own run holds <out>.lock as verify", async () => {
    const out = "/mem/out.jsonl"
    const lock = `${out}.lock`
    const storage = makeMemoryStorage({ "/mem/in.jsonl": "{not json\n", [lock]: liveHolder("generate") })
    const verifier = noteLockAtFlush(() => storage.files.get(lock) as string | undefined)
    const verify = verifyDatasets({
      files: ["/mem/in.jsonl"],
      out,
      inventory: catalogue,
      concurrency: 1,
      resume: false
    })
      .pipe(Effect.provide(Layer.merge(storage.layer, verifier.layer)))
    const held = await Effect.runPromise(Effect.either(verify))
    // Before: verify took <out>.verify.lock, ran beside the generate, and the last to finish replaced the other's rows.
    expect(Either.isLeft(held) && held.left._tag).toBe("OutputInUse")
    const message = Either.isLeft(held) ? held.left.message : ""
    expect(message).toContain(`${out} is being written by another skyrl run (${liveHolder("generate").trim()})`)
    expect(message).toContain(`(if no such process runs, delete ${lock})`)
    expect(storage.writes).toEqual([])
    expect(verifier.seen).toEqual([])

    storage.files.delete(lock)
    await Effect.runPromise(verify)
    expect(JSON.parse(verifier.seen[0]!)).toMatchObject({ pid: process.pid, command: "verify" })
    expect(storage.files.has(lock)).toBe(false) // released at the end
    expect(storage.files.has(`${out}.verify.lock`)).toBe(false)
  })

  it("skyrl verify takes the --out lock before opening its cassette store: a held --out opens no store", async () => {
    const dir = tempDir("skyrl-outlock-")
    const rows = join(dir, "in.jsonl")
    writeJsonl(rows, [rowFor("r1", [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }])])
    const out = join(dir, "v.jsonl")
    writeFileSync(`${out}.lock`, liveHolder("verify"))
    const r = await runCli(["verify", rows, "--out", out, "--cassettes", join(dir, "tapes")])
    expect(r.status, r.stderr).toBe(1)
    expect(r.stderr).toContain(`${out} is being written by another skyrl run (${liveHolder("verify").trim()})`)
    // Before: the store was opened first (the tapes folder made, its lock taken, its keys read), then the run failed.
    expect(readdirSync(dir).sort()).toEqual(["in.jsonl", "v.jsonl.lock"])
  })

  it("convert beside a live writer of its --out exits 1 naming it, writing nothing; then writes and releases", async () => {
    const dir = tempDir("skyrl-outlock-")
    const tasks = join(dir, "tasks.json")
    writeFileSync(tasks, JSON.stringify([JSON.parse(validTaskText(1))]))
    const out = join(dir, "c.jsonl")
    writeFileSync(`${out}.lock`, liveHolder("batch collect"))
    const convert = runConvert({
      tasks,
      out,
      inventory: Option.none(),
      dataSource: "skyrl",
      rejects: Option.none(),
      maxPromptTokens: 4096,
      asOf: Option.none()
    })
    const held = await Effect.runPromise(Effect.either(convert))
    expect(Either.isLeft(held) && held.left.message).toContain(
      `${out} is being written by another skyrl run (${liveHolder("batch collect").trim()})`
    ) // before: converted, its rename replacing the collect's rows (or being replaced by them)
    expect(readdirSync(dir).sort()).toEqual(["c.jsonl.lock", "tasks.json"])
    writeFileSync(`${out}.lock`, JSON.stringify({ pid: await gonePid(), host: hostname(), command: "generate" }) + "\n")
    await Effect.runPromise(convert)
    expect(readJsonl(out)).toHaveLength(1)
    expect(existsSync(`${out}.lock`)).toBe(false)
  })

  it("rebuild beside a live writer of its --out exits 1 naming it, writing nothing", async () => {
    const storage = makeMemoryStorage()
    const { llm } = scripted((call) => reply(JSON.parse(validTaskText(requestOf(call).k))))
    await Effect.runPromise(runGenerate(storage, llm, generateOptions(settingsFor(2))).pipe(Effect.provide(EngineTest)))
    const out = "/mem/rebuilt.jsonl"
    storage.files.set(`${out}.lock`, liveHolder("generate"))
    const writes = storage.writes.length
    const rebuild = rebuildProgram({ runDir: "/mem/raw_llm/run-1", out, indent: undefined, ascii: false }).pipe(
      Effect.provide(Layer.merge(storage.layer, EngineTest))
    )
    const held = await Effect.runPromise(Effect.either(rebuild))
    expect(Either.isLeft(held) && held.left._tag).toBe("OutputInUse") // before: rebuilt beside the generate
    expect(storage.writes.slice(writes)).toEqual([])
    storage.files.delete(`${out}.lock`)
    await Effect.runPromise(rebuild)
    expect(storage.text(out)).toBe(storage.text(OUT))
    expect(storage.files.has(`${out}.lock`)).toBe(false)
  })
})
