/**
 * The run lock a `batch collect` holds names the command as the user typed it: another process finding the run in
 * use is told "batch collect", not the run's "generate". The built CLI against the fake Files/Batches API.
 */
import { readdirSync, readFileSync } from "node:fs"
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
    const locks: Array<string> = []
    const f = await fake({
      // Sample 1's batch answer is an invalid plan: its repair goes online during the collect.
      lines: (ctx) => lineAnswer(sampleNumberOf(ctx.body) === 1 ? invalidTaskText(1) : validTaskFor(ctx), USAGE),
      online: (ctx) => {
        locks.push(readFileSync(join(runDir, "lock"), "utf8"))
        return answer(validTaskFor(ctx), USAGE)
      }
    })
    const out = tmpOut()
    const r = await runCli(["generate", "-n", "2", "--out", out, "--backend", "batch"], { env: env(f) })
    expect(r.status, r.stderr).toBe(0)
    runDir = join(join(dirname(out), "raw_llm"), readdirSync(join(dirname(out), "raw_llm"))[0])
    const c = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })
    expect(c.status, c.stderr).toBe(0)
    expect(locks.length).toBeGreaterThan(0)
    expect(JSON.parse(locks[0]).command).toBe("batch collect")
  }, 60_000)
})
