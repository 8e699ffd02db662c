/**
 * The first Ctrl-C (SIGINT) or SIGTERM during generate / enrich stops the run gracefully: no new model call,
 * the calls in flight are answered and kept (archive, ledger, journal, rows), the dataset of the rows made is
 * written, exit 130 / 143; `--resume` then asks only for what was never asked. A second signal stops at once.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import type { FakeReply } from "./support/fakeOpenAI.js"
import { answer, hang } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, readJsonl, runDirOf, tempDir, USAGE } from "./support/fakeRun.js"
import { isTaskRequest, validTaskFor } from "./support/fakeTasks.js"
import { askStop, gate, pressAgain, started, until } from "./support/signals.js"

const servers = fakes()
afterEach(servers.closeAll)

const ledgerLines = (out: string) => readFileSync(join(runDirOf(out), "ledger.jsonl"), "utf8").trim().split("\n")

describe("the first signal stops a run gracefully", () => {
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    it(
      `${signal}: the calls in flight are answered and kept, none is sent after; --resume asks only the rest`,
      async () => {
        // Task requests from the 3rd on wait until the test lets them answer (after the signal).
        const held = gate()
        let tasks = 0
        const server = await servers.start(async (ctx): Promise<FakeReply> => {
          if (isTaskRequest(ctx.body) && ++tasks > 2) await held.opened
          return answer(validTaskFor(ctx), USAGE)
        })
        const out = join(tempDir("skyrl-stop-"), "ds.jsonl")
        const args = ["generate", "-n", "8", "--out", out, "--llm", "openai", "--concurrency", "3"]
        const env = llmEnv(server, "sk-test-graceful")
        const run = started(args, env)
        // Two answered, three in flight (the concurrency): then the signal.
        await until(() => tasks === 5)
        await askStop(run, signal)
        expect(run.stderr).toContain("waiting for the 3 calls in flight, whose answers are kept")
        held.release()
        expect(await run.code, run.stderr).toBe(code)
        // No request after the signal; the five answers are rows, in the dataset and the ledger.
        expect(tasks).toBe(5)
        expect(readJsonl(out)).toHaveLength(5)
        expect(ledgerLines(out)).toHaveLength(server.requests.length)
        const final = run.stderr.trim().split("\n").at(-1)!
        expect(final).toContain("skyrl: made 5 of 8 valid rows")
        expect(final).toContain("--resume")
        const before = server.requests.length
        const resumed = await runCli([...args, "--resume"], { env })
        expect(resumed.status, resumed.stderr).toBe(0)
        expect(resumed.stderr).toContain("3 of 8 samples to make")
        // Only the three samples never asked are asked: nothing paid twice.
        expect(server.requests.slice(before).filter((r) => isTaskRequest(r.body))).toHaveLength(3)
        expect(readJsonl(out)).toHaveLength(8)
      },
      60_000
    )
  }

  it("a second signal stops at once (a call that never answers is given up)", async () => {
    const server = await servers.start((ctx) =>
      isTaskRequest(ctx.body) && ctx.index >= 2 ? hang() : answer(validTaskFor(ctx), USAGE)
    )
    const out = join(tempDir("skyrl-stop-"), "ds.jsonl")
    const run = started(
      ["generate", "-n", "4", "--out", out, "--llm", "openai", "--concurrency", "1"],
      llmEnv(server, "sk-test-graceful")
    )
    await until(() => server.requests.length >= 3)
    await askStop(run)
    expect(run.stderr).toContain("waiting for the 1 call in flight")
    await pressAgain(run)
    expect(await run.code, run.stderr).toBe(130)
    expect(run.stderr).toContain(
      "skyrl: interrupted; the work done so far is kept: rerun the same command with --resume"
    )
  }, 60_000)
})
