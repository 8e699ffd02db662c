/**
 * The graceful stop (test/gracefulStop.test.ts) in more places: enrich, an answer that needs a repair, the
 * stage calls before the samples, --max-cost, --log-format json, --rpm pacing and 429 backoffs, --verify.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { planAnswer, sourceRowOf } from "./support/fakeEnrich.js"
import type { FakeReply } from "./support/fakeOpenAI.js"
import { answer, rateLimited } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, readJsonl, runDirOf, tempDir, USAGE } from "./support/fakeRun.js"
import {
  invalidTaskText,
  isRepairRequest,
  isStageRequest,
  isTaskRequest,
  sampleNumberOf,
  validTaskFor
} from "./support/fakeTasks.js"
import { askStop, ended, gate, pause, signalTwice, started, until } from "./support/signals.js"

const servers = fakes()
afterEach(servers.closeAll)

const ledgerLines = (out: string) => readFileSync(join(runDirOf(out), "ledger.jsonl"), "utf8").trim().split("\n")
const journal = (out: string) => readJsonl(join(runDirOf(out), "journal.jsonl"))

const PROMPTS = [
  "What is the current quote of AAPL?",
  "Show me the latest news for MSFT.",
  "How did NVDA close yesterday?",
  "Give me the company profile of AMZN.",
  "What is the change percent of GOOGL today?",
  "Fetch the quote and news of META.",
  "Summarise the latest headlines about TSLA.",
  "Compare the quote of JPM with its previous close."
]

const promptsFile = (dir: string, n: number) => {
  const input = join(dir, "prompts.jsonl")
  writeFileSync(
    input,
    PROMPTS.slice(0, n).map((p, i) => JSON.stringify({ id: `p${i}`, messages: [{ role: "user", content: p }] }) + "\n")
      .join("")
  )
  return input
}

/**
 * enrich over the first `n` prompts (`extra`: more flags) against a fake that answers the first `free` task
 * requests and holds the others until `held.release()`; `counter.tasks`: the requests it got.
 */
const heldEnrich = async (name: string, n: number, free: number, extra: ReadonlyArray<string>) => {
  const held = gate()
  const counter = { tasks: 0 }
  const server = await servers.start(async (ctx): Promise<FakeReply> => {
    if (++counter.tasks > free) await held.opened
    return answer(planAnswer(ctx), USAGE)
  })
  const dir = tempDir(`skyrl-stop-${name}-`)
  const out = join(dir, "enriched.jsonl")
  const args = ["enrich", promptsFile(dir, n), "--out", out, "--llm", "openai", ...extra]
  const env = llmEnv(server, "sk-test-graceful")
  return { held, counter, server, out, args, env, run: started(args, env) }
}

describe("enrich: the first signal stops gracefully", () => {
  it("SIGINT with 3 calls in flight: their rows are kept, --resume asks only the rest", async () => {
    const { args, counter, env, held, out, run, server } = await heldEnrich("enrich", 8, 2, ["--concurrency", "3"])
    await until(() => counter.tasks === 5)
    await askStop(run)
    expect(run.stderr).toContain("waiting for the 3 calls in flight, whose answers are kept")
    held.release()
    expect(await ended(run), run.stderr).toBe(130)
    expect(counter.tasks).toBe(5)
    expect(readJsonl(out)).toHaveLength(5)
    expect(ledgerLines(out)).toHaveLength(5)
    const final = run.stderr.trim().split("\n").at(-1)!
    expect(final).toContain("skyrl: made 5 of 8 valid rows")
    expect(final).toContain("interrupted (Ctrl-C)")
    expect(final).toContain("--resume")
    const resumed = await runCli([...args, "--resume"], { env })
    expect(resumed.status, resumed.stderr).toBe(0)
    expect(resumed.stderr).toContain("3 of 8 samples to make")
    expect(server.requests.slice(5)).toHaveLength(3)
    expect(readJsonl(out)).toHaveLength(8)
  }, 60_000)
})

describe("an answer that needs a repair, in flight when the signal comes", () => {
  it("no repair is sent after the stop; --resume replays the answer and sends only the repair", async () => {
    const held = gate()
    let firstOfSample2 = true
    const server = await servers.start(async (ctx): Promise<FakeReply> => {
      if (!isTaskRequest(ctx.body)) return answer(validTaskFor(ctx), USAGE)
      if (sampleNumberOf(ctx.body) === 2 && !isRepairRequest(ctx.body) && firstOfSample2) {
        firstOfSample2 = false
        await held.opened
        return answer(invalidTaskText(2), USAGE)
      }
      return answer(validTaskFor(ctx), USAGE)
    })
    const out = join(tempDir("skyrl-stop-repair-"), "ds.jsonl")
    const args = ["generate", "-n", "2", "--out", out, "--llm", "openai", "--concurrency", "2"]
    const env = llmEnv(server, "sk-test-graceful")
    const run = started(args, env)
    const taskRequests = () => server.requests.filter((r) => isTaskRequest(r.body))
    // Sample 1 answered, sample 2's first answer held.
    await until(() => taskRequests().length === 2)
    await askStop(run)
    held.release()
    expect(await ended(run), run.stderr).toBe(130)
    const sent = taskRequests()
    expect(sent.filter((r) => isRepairRequest(r.body))).toHaveLength(0)
    expect(sent).toHaveLength(2)
    expect(readJsonl(out)).toHaveLength(1)
    // Sample 2 is journaled as stopped after its one paid call, which is in the ledger.
    expect(ledgerLines(out)).toHaveLength(server.requests.length)
    expect(journal(out).filter((e) => e.index === 1).map((e) => [e.status, e.calls])).toEqual([["stopped", 1]])
    expect(run.stderr.trim().split("\n").at(-1)).toContain("skyrl: made 1 of 2 valid rows")
    const before = server.requests.length
    const resumed = await runCli([...args, "--resume"], { env })
    expect(resumed.status, resumed.stderr).toBe(0)
    const after = server.requests.slice(before)
    // Only the repair: the held answer is replayed from the archive, not asked (and paid) again.
    expect(after.map((r) => [sampleNumberOf(r.body), isRepairRequest(r.body)])).toEqual([[2, true]])
    expect(readJsonl(out)).toHaveLength(2)
    // Priced once each: the ledger has a line per request the fake got (the replayed answer's is not added again).
    expect(ledgerLines(out)).toHaveLength(server.requests.length)
  }, 60_000)
})

describe("the signal before and around the samples", () => {
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    it(`${signal} during generate's stage calls interrupts at once (${code})`, async () => {
      const held = gate()
      const server = await servers.start(async (ctx): Promise<FakeReply> => {
        if (isStageRequest(ctx.body)) await held.opened
        return answer(validTaskFor(ctx), USAGE)
      })
      const out = join(tempDir("skyrl-stop-stage-"), "ds.jsonl")
      const run = started(
        ["generate", "-n", "4", "--out", out, "--llm", "openai"],
        llmEnv(server, "sk-test-graceful")
      )
      await until(() => server.requests.length === 1)
      run.child.kill(signal)
      // Not held up by the stage's answer, which never comes.
      expect(await ended(run), run.stderr).toBe(code)
      expect(run.stderr).not.toContain("stopping")
      // As test/sigterm.test.ts: the same line for either signal (the exit code tells them apart).
      expect(run.stderr.trim().split("\n").at(-1)).toBe(
        "skyrl: interrupted; the work done so far is kept: rerun the same command with --resume to continue"
      )
      held.release()
    }, 60_000)
  }

  it("--log-format json: the stopping warning and the final line are JSON lines", async () => {
    const { counter, held, out, run } = await heldEnrich("json", 4, 1, ["--concurrency", "2", "--log-format", "json"])
    await until(() => counter.tasks === 3)
    await askStop(run)
    held.release()
    expect(await ended(run), run.stderr).toBe(130)
    const lines = run.stderr.trim().split("\n").map((l) => JSON.parse(l))
    const stopping = lines.filter((l) => String(l.message).startsWith("SIGINT: stopping"))
    expect(stopping).toHaveLength(1)
    expect(stopping[0].logLevel).toBe("WARN")
    expect(lines.at(-1).logLevel).toBe("ERROR")
    expect(stopping[0].message).toContain("waiting for the 2 calls in flight")
    expect(String(lines.at(-1).message)).toContain("made 3 of 4 valid rows")
    expect(String(lines.at(-1).message)).toContain("interrupted (Ctrl-C)")
    expect(readJsonl(out)).toHaveLength(3)
  }, 60_000)

  it("--max-cost reached, then a signal while the calls in flight end", async () => {
    const { counter, held, out, run } = await heldEnrich("cost", 6, 1, [
      "--concurrency",
      "3",
      "--max-cost",
      "0.0000001"
    ])
    await until(() => counter.tasks === 3)
    // The first answer spent the budget (its ledger line is written as it is counted): the two others are in flight.
    // Waited for from the ledger, not from the requests: a loaded machine may take long to read the answer.
    const ledger = join(runDirOf(out), "ledger.jsonl")
    await until(() => existsSync(ledger) && readFileSync(ledger, "utf8").includes("\n"))
    await pause(1500)
    await askStop(run)
    expect(run.stderr).toContain("waiting for the 2 calls in flight")
    held.release()
    const code = await ended(run)
    expect(counter.tasks).toBe(3)
    expect(readJsonl(out)).toHaveLength(3)
    // The run had stopped on --max-cost before the signal, which changed nothing: it ends as it would have.
    expect(code, run.stderr).toBe(1)
    const final = run.stderr.trim().split("\n").at(-1)!
    expect(final).toContain("skyrl: made 3 of 6 valid rows")
    expect(final).toContain("--max-cost")
    expect(final).not.toContain("interrupted")
  }, 60_000)
})

describe("a repeated signal", () => {
  it(
    "the same signal again within milliseconds (a wrapper forwarding the terminal's Ctrl-C) is the same press",
    async () => {
      const { counter, held, out, run } = await heldEnrich("twice", 4, 1, ["--concurrency", "2"])
      await until(() => counter.tasks === 3)
      signalTwice(run, "SIGINT", 30)
      await until(() => run.stderr.includes("SIGINT: stopping"))
      await pause(100)
      held.release()
      expect(await ended(run), run.stderr).toBe(130)
      expect(run.stderr).not.toContain("skyrl: interrupted")
      expect(readJsonl(out)).toHaveLength(3)
      expect(counter.tasks).toBe(3)
    },
    60_000
  )
})

describe("a repeated signal that interrupts", () => {
  it(
    "during the stage calls, the same SIGINT twice within milliseconds interrupts once (its line, exit 130)",
    async () => {
      const held = gate()
      const server = await servers.start(async (ctx): Promise<FakeReply> => {
        if (isStageRequest(ctx.body)) await held.opened
        return answer(validTaskFor(ctx), USAGE)
      })
      const out = join(tempDir("skyrl-stop-stage-twice-"), "ds.jsonl")
      const run = started(["generate", "-n", "4", "--out", out, "--llm", "openai"], llmEnv(server, "sk-test-graceful"))
      await until(() => server.requests.length === 1)
      signalTwice(run, "SIGINT", 5)
      expect(await ended(run), run.stderr).toBe(130)
      expect(await run.signal).toBe(null)
      expect(run.stderr.trim().split("\n").at(-1)).toBe(
        "skyrl: interrupted; the work done so far is kept: rerun the same command with --resume to continue"
      )
      held.release()
    },
    60_000
  )
})

describe("calls that wait are not sent after the stop", () => {
  it("a call in a 429 backoff is not retried after the signal, and is not counted in flight", async () => {
    const held = gate()
    let limited = false
    const server = await servers.start(async (ctx): Promise<FakeReply> => {
      const k = sourceRowOf(ctx.body)
      // Row 1 (sample 2): a 429 asking to wait 30 s; row 2 (sample 3): held until after the signal.
      if (k === 1 && !limited) {
        limited = true
        return rateLimited({ seconds: 30 })
      }
      if (k === 2) await held.opened
      return answer(planAnswer(ctx), USAGE)
    })
    const dir = tempDir("skyrl-stop-429-")
    const out = join(dir, "enriched.jsonl")
    const input = promptsFile(dir, 3)
    const env = llmEnv(server, "sk-test-graceful")
    const run = started(["enrich", input, "--out", out, "--llm", "openai", "--concurrency", "3"], env)
    await until(() => server.requests.length === 3 && run.stderr.includes("retry 1/"), 20_000).catch((e) => {
      throw new Error(`${String(e)}: ${run.stderr}`)
    })
    const t0 = Date.now()
    await askStop(run)
    expect(run.stderr).toContain("waiting for the 1 call in flight")
    held.release()
    expect(await ended(run), run.stderr).toBe(130)
    expect(Date.now() - t0).toBeLessThan(20_000)
    expect(server.requests).toHaveLength(3)
    expect(readJsonl(out)).toHaveLength(2)
    // The 429 is archived and in the ledger (free); the sample, which got no answer, is asked on --resume.
    expect(ledgerLines(out)).toHaveLength(3)
    expect(journal(out).map((e) => e.index).sort()).toEqual([0, 2])
    const resumed = await runCli(["enrich", input, "--out", out, "--llm", "openai", "--resume"], { env })
    expect(resumed.status, resumed.stderr).toBe(0)
    expect(resumed.stderr).toContain("1 of 3 samples to make")
    expect(server.requests.slice(3).map((r) => sourceRowOf(r.body))).toEqual([1])
    expect(readJsonl(out)).toHaveLength(3)
  }, 60_000)

  it("--rpm: a call waiting for its slot is not sent after the signal, and is not counted in flight", async () => {
    const held = gate()
    const server = await servers.start(async (ctx): Promise<FakeReply> => {
      await held.opened
      return answer(planAnswer(ctx), USAGE)
    })
    const dir = tempDir("skyrl-stop-rpm-")
    const out = join(dir, "enriched.jsonl")
    const run = started(
      ["enrich", promptsFile(dir, 3), "--out", out, "--llm", "openai", "--concurrency", "3", "--rpm", "4"],
      llmEnv(server, "sk-test-graceful")
    )
    await until(() => server.requests.length === 1)
    const t0 = Date.now()
    await askStop(run)
    expect(run.stderr).toContain("waiting for the 1 call in flight")
    held.release()
    expect(await ended(run), run.stderr).toBe(130)
    expect(Date.now() - t0).toBeLessThan(10_000)
    expect(server.requests).toHaveLength(1)
    expect(readJsonl(out)).toHaveLength(1)
  }, 60_000)
})
