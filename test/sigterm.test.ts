/**
 * SIGTERM (kill, a container stop, a job scheduler) ends the CLI as Ctrl-C does (journal kept, "rerun with
 * --resume"), but with its own conventional code, 143 (128 + 15); SIGINT stays 130 (128 + 2).
 */
import { Cause } from "effect"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { exitCodeOf } from "../src/cli/exit.js"
import { BIN, cleanEnv, runCli } from "./support/cli.js"
import { answer, hang } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, readJsonl, tempDir, USAGE } from "./support/fakeRun.js"
import { validTaskFor } from "./support/fakeTasks.js"

const servers = fakes()
afterEach(servers.closeAll)

describe("exitCodeOf", () => {
  it("an interruption is 130 after SIGINT (or none named), 143 after SIGTERM", () => {
    expect(exitCodeOf(Cause.interrupt("fiber" as never))).toBe(130)
    expect(exitCodeOf(Cause.interrupt("fiber" as never), "SIGINT")).toBe(130)
    expect(exitCodeOf(Cause.interrupt("fiber" as never), "SIGTERM")).toBe(143)
    // A failure is reported with its own code whatever signal came.
    expect(exitCodeOf(Cause.fail({ exitCode: 2 }), "SIGTERM")).toBe(2)
  })
})

describe("SIGTERM", () => {
  it("exits 143 with the interrupt's message, and a --resume run finishes the dataset", async () => {
    let hangFrom = 2
    const server = await servers.start((ctx) => (ctx.index >= hangFrom ? hang() : answer(validTaskFor(ctx), USAGE)))
    const out = join(tempDir("skyrl-term-"), "ds.jsonl")
    const args = ["generate", "-n", "4", "--out", out, "--llm", "openai", "--concurrency", "1"]
    const env = llmEnv(server, "sk-test-sigterm")
    const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: "pipe" })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    while (server.requests.length < 3) await new Promise((resolve) => setTimeout(resolve, 20))
    // The first SIGTERM waits for the call in flight (it never answers here: test/gracefulStop.test.ts); the
    // second stops at once.
    child.kill("SIGTERM")
    while (!stderr.includes("SIGTERM: stopping")) await new Promise((resolve) => setTimeout(resolve, 20))
    // A repeat of the first signal within 0.25 s is taken for the same press (src/bin.ts): the second comes later.
    await new Promise((resolve) => setTimeout(resolve, 300))
    child.kill("SIGTERM")
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve))
    expect(code, stderr).toBe(143)
    expect(stderr).toContain("skyrl: interrupted; the work done so far is kept: rerun the same command with --resume")
    hangFrom = Number.POSITIVE_INFINITY
    const r = await runCli([...args, "--resume"], { env })
    expect(r.status, r.stderr).toBe(0)
    // The journal was kept: the samples answered before the signal are not made again.
    expect(r.stderr).toMatch(/[1-3] of 4 samples to make/)
    expect(readJsonl(out)).toHaveLength(4)
  }, 60_000)
})
