/**
 * Ctrl-C during a `--backend batch` submission: the run directory is on stdout as soon as the run is
 * recorded (batch.json written), so `RUN=$(skyrl generate ... --backend batch)` has it though the
 * submission was interrupted, and `skyrl batch status "$RUN"` finishes it without uploading twice.
 * The built CLI against the fake Files/Batches API (test/support/fakeBatch.ts).
 */
import { existsSync } from "node:fs"
import { basename, join } from "node:path"
import { describe, expect, it } from "vitest"
import { batchFakes, env, tmpOut, USAGE } from "./support/batchCli.js"
import { runCli } from "./support/cli.js"
import { lineAnswer } from "./support/fakeBatch.js"
import { validTaskFor } from "./support/fakeTasks.js"
import type { StartedCli } from "./support/signals.js"
import { started } from "./support/signals.js"

const { fake } = batchFakes()

describe("Ctrl-C during a batch submission", () => {
  it("after the upload was accepted: exit 130, the run directory on stdout, status finishes it once", async () => {
    const cli: { run?: StartedCli } = {}
    let interrupted = false
    const f = await fake({
      lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE),
      accepted: (event) => {
        if (event.kind !== "upload" || interrupted) return
        interrupted = true
        cli.run!.child.kill("SIGINT")
        return "hang"
      }
    })
    const out = tmpOut()
    const run = started(["generate", "-n", "3", "--out", out, "--backend", "batch"], env(f))
    cli.run = run
    let stdout = ""
    run.child.stdout!.on("data", (d) => (stdout += d))
    expect(await run.code, run.stderr).toBe(130)
    expect(interrupted).toBe(true)
    const runDir = stdout.trim()
    expect(runDir, run.stderr).not.toBe("")
    expect(existsSync(join(runDir, "batch.json"))).toBe(true)
    expect(f.batches).toHaveLength(0)

    const status = await runCli(["batch", "status", runDir], { env: env(f) })
    expect(status.status, status.stderr).toBe(0)
    expect(f.batches).toHaveLength(1)
    expect(Object.fromEntries(f.batchesPerPart())).toEqual({ [`${basename(runDir)}:1`]: 1 })
    expect([...f.uploadsPerContent().values()]).toEqual([1])
  }, 60_000)
})
