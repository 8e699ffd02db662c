/**
 * Parts of a batch run whose answers are lost: a completed part whose output file the account no longer
 * has (404 for its content), and a cancelled batch. The other parts' rows are written; the lost samples
 * are named and kept for `batch collect --resubmit`, which sends only them.
 * The built CLI against the fake Files/Batches API (test/support/fakeBatch.ts).
 */
import { describe, expect, it } from "vitest"
import { batchFakes, env, FAST, readJsonl, sampleOfRow, tmpOut, USAGE } from "./support/batchCli.js"
import { runCli } from "./support/cli.js"
import { lineAnswer, lineSkip } from "./support/fakeBatch.js"
import { validTaskFor } from "./support/fakeTasks.js"

const { fake } = batchFakes()

describe("lost batch parts", () => {
  it(
    "a cancelled batch's samples are said cancelled (not a temporary failure), with --resubmit to send them",
    async () => {
      const f = await fake({
        // Batch 2 (samples 3 and 4) is cancelled before running its lines.
        lines: (ctx) => (ctx.batchNo === 2 ? lineSkip() : lineAnswer(validTaskFor(ctx), USAGE)),
        finalStatus: (no) => (no === 2 ? "cancelled" : "completed")
      })
      const out = tmpOut()
      const r = await runCli(
        ["generate", "-n", "4", "--out", out, "--backend", "batch", "--batch-max-requests", "2", "--wait", ...FAST],
        { env: env(f) }
      )
      expect(r.status).toBe(1)
      expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2])
      expect(r.stderr).toMatch(
        /2 samples have no batch answer: 2 cancelled \(their batch was cancelled before answering them/
      )
      expect(r.stderr).not.toMatch(/temporary failure/)
      expect(r.stderr).toMatch(/batch collect .* --resubmit/)
    },
    60_000
  )
})
