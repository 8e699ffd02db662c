/**
 * The run lock a `batch collect` holds names the command as the user typed it: another process finding the run in
 * use is told "batch collect", not the run's "generate". A collect also holds the lock of the --out it writes
 * (`<out>.lock`, as generate, enrich and verify do): beside another writer of that file it exits 1 having fetched
 * and sent nothing. The built CLI against the fake Files/Batches API.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { dirname, join } from "node:path"
import { describe, expect, it } from "vitest"
import { batchFakes, env, FAST, tmpOut, USAGE } from "./support/batchCli.js"
import { runCli } from "./support/cli.js"
import { lineAnswer } from "./support/fakeBatch.js"
import { answer } from "./support/fakeOpenAI.js"
import { invalidTaskText, sampleNumberOf, validTaskFor } from "./support/fakeTasks.js"

const { fake } = batchFakes()

describe("batch collect's run lock", () => {
  it("names `batch collect` while the collect holds it", async () => {
    let runDir = ""
    let out = ""
    const locks: Array<string> = []
    const outLocks: Array<string | undefined> = []
    const f = await fake({
      // Sample 1's batch answer is an invalid plan: its repair goes online during the collect.
      lines: (ctx) => lineAnswer(sampleNumberOf(ctx.body) === 1 ? invalidTaskText(1) : validTaskFor(ctx), USAGE),
      online: (ctx) => {
        locks.push(readFileSync(join(runDir, "lock"), "utf8"))
        outLocks.push(existsSync(`${out}.lock`) ? readFileSync(`${out}.lock`, "utf8") : undefined)
        return answer(validTaskFor(ctx), USAGE)
      }
    })
    out = tmpOut()
    const r = await runCli(["generate", "-n", "2", "--out", out, "--backend", "batch"], { env: env(f) })
    expect(r.status, r.stderr).toBe(0)
    runDir = join(join(dirname(out), "raw_llm"), readdirSync(join(dirname(out), "raw_llm"))[0])
    const c = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })
    expect(c.status, c.stderr).toBe(0)
    expect(locks.length).toBeGreaterThan(0)
    expect(JSON.parse(locks[0]).command).toBe("batch collect")
    // The --out's lock too (before: none, so a generate or another collect writing it was not met).
    expect(JSON.parse(outLocks[0]!)).toMatchObject({ pid: expect.any(Number), command: "batch collect" })
    expect(existsSync(`${out}.lock`)).toBe(false)
  }, 60_000)

  it("a collect whose --out another live process writes exits 1 naming it, fetching and writing nothing", async () => {
    const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
    const out = tmpOut()
    const r = await runCli(["generate", "-n", "2", "--out", out, "--backend", "batch"], { env: env(f) })
    expect(r.status, r.stderr).toBe(0)
    const runDir = r.stdout.trim()
    const held = JSON.stringify({
      pid: process.pid,
      host: hostname(),
      command: "generate",
      since: "2026-12-04T00:00:00Z"
    })
    writeFileSync(`${out}.lock`, held + "\n") // this test's own process: alive
    const asked = f.requests.length
    const c = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })
    expect(c.status, c.stderr).toBe(1) // was 0: collected beside the generate, the last to finish winning
    expect(c.stderr).toContain(`skyrl: ${out} is being written by another skyrl run (${held})`)
    expect(f.requests.length).toBe(asked)
    expect(existsSync(out)).toBe(false)
    expect(readFileSync(`${out}.lock`, "utf8")).toBe(held + "\n")
    expect(existsSync(join(runDir, "lock"))).toBe(false)
  }, 60_000)
})
