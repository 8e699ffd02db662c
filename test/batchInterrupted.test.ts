/**
 * Ctrl-C during a `--backend batch` submission: the run directory is on stdout as soon as the run is
 * recorded (batch.json written), so `RUN=$(skyrl generate ... --backend batch)` has it though the
 * submission was interrupted, and `skyrl batch status "$RUN"` finishes it without uploading twice.
 * The built CLI against the fake Files/Batches API (test/support/fakeBatch.ts).
 */
import { existsSync } from "node:fs"
import { basename, join, relative } from "node:path"
import { describe, expect, it } from "vitest"
import { batchFakes, env, tmpOut, USAGE } from "./support/batchCli.js"
import { runCli } from "./support/cli.js"
import { lineAnswer } from "./support/fakeBatch.js"
import { validTaskFor } from "./support/fakeTasks.js"
import type { StartedCli } from "./support/signals.js"
import { started, until } from "./support/signals.js"

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
    // The line names the run directory, to paste (before: `skyrl batch collect RUN_DIR`).
    expect(run.stderr.trim().split("\n").at(-1)).toBe(
      `skyrl: interrupted; what was submitted is kept: \`skyrl batch collect ${runDir}\` continues it`
    )

    const status = await runCli(["batch", "status", runDir], { env: env(f) })
    expect(status.status, status.stderr).toBe(0)
    expect(f.batches).toHaveLength(1)
    expect(Object.fromEntries(f.batchesPerPart())).toEqual({ [`${basename(runDir)}:1`]: 1 })
    expect([...f.uploadsPerContent().values()]).toEqual([1])
  }, 60_000)

  it(
    "Ctrl-C during `batch collect --wait`: the line names the run directory given (options between the words too)",
    async () => {
      // The batch stays in progress: the collect waits for it until interrupted.
      const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE), inProgressPolls: 1_000_000 })
      const out = tmpOut()
      const sent = await runCli(["generate", "-n", "2", "--out", out, "--backend", "batch"], { env: env(f) })
      expect(sent.status, sent.stderr).toBe(0)
      const runDir = sent.stdout.trim()
      // Given relative (from its parent), with option values before it: the line names it absolute.
      const run = started(
        [
          "batch",
          "collect",
          "--poll-interval",
          "0.05",
          "--concurrency",
          "2",
          relative(process.cwd(), runDir),
          "--wait"
        ],
        env(f)
      )
      await until(() => /requests done/.test(run.stderr))
      run.child.kill("SIGINT")
      expect(await run.code, run.stderr).toBe(130)
      expect(run.stderr.trim().split("\n").at(-1)).toBe(
        `skyrl: interrupted; what was collected is kept: run \`skyrl batch collect ${runDir}\` again to continue ` +
          "(collecting again never makes a sample twice)"
      )
    },
    60_000
  )
})
