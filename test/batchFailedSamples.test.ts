/**
 * Samples that failed (every attempt rejected, up to --max-attempts) in a batch run are not made again by
 * a later collect round or a later `batch collect`: those are for the batches still running, not for new
 * attempts nobody asked for. `batch collect --retry-failed` gives them --max-attempts more, once.
 * The built CLI against the fake Files/Batches API (test/support/fakeBatch.ts).
 */
import { readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { describe, expect, it } from "vitest"
import { batchFakes, env, FAST, readJsonl, sampleOfRow, tmpOut, USAGE } from "./support/batchCli.js"
import { runCli } from "./support/cli.js"
import { lineAnswer, lineRefused, lineServerError } from "./support/fakeBatch.js"
import { answer } from "./support/fakeOpenAI.js"
import { sampleNumberOf, validTaskFor } from "./support/fakeTasks.js"

const { fake } = batchFakes()

const runDirOf = (out: string) => {
  const raw = join(dirname(out), "raw_llm")
  return join(raw, readdirSync(raw)[0])
}

/** `<run_id>:sample-000000-a2` → `sample-000000-a2`. */
const keyOf = (customId: string) => customId.slice(customId.lastIndexOf(":") + 1)

describe("failed samples of a batch run", () => {
  it(
    "--repairs batch --wait: a sample refused at every attempt gets --max-attempts attempts, not more per round",
    async () => {
      // Sample 1: every request refused (400). Sample 2: every request fails transiently (500), so the
      // collect keeps submitting follow-up batches for it after sample 1 has failed.
      const f = await fake({
        lines: (ctx) => {
          const k = sampleNumberOf(ctx.body)
          return k === 1 ? lineRefused() : k === 2 ? lineServerError() : lineAnswer(validTaskFor(ctx), USAGE)
        }
      })
      const out = tmpOut()
      const r = await runCli(
        [
          "generate",
          "-n",
          "3",
          "--out",
          out,
          "--backend",
          "batch",
          "--repairs",
          "batch",
          "--max-attempts",
          "2",
          "--retries",
          "1",
          "--wait",
          ...FAST
        ],
        { env: env(f) }
      )
      expect(r.status, r.stderr).toBe(1)
      const sent = f.batches.flatMap((b) =>
        b.lines.map((l) => ({ sample: sampleNumberOf(l.body), key: keyOf(l.custom_id) }))
      )
      // Sample 1: its first attempt and one new attempt (--max-attempts 2), each sent once.
      expect(sent.filter((s) => s.sample === 1).map((s) => s.key).sort()).toEqual(["sample-000000", "sample-000000-a2"])
      // Sample 2: each of its 2 attempts sent, then retried once (--retries 1).
      expect(sent.filter((s) => s.sample === 2).map((s) => s.key).sort()).toEqual([
        "sample-000001",
        "sample-000001",
        "sample-000001-a2",
        "sample-000001-a2"
      ])
      expect(readJsonl(out).map(sampleOfRow)).toEqual([3])
      expect(r.stderr).toMatch(/2 samples failed after 2 attempts each/)
    },
    90_000
  )

  it(
    "--repairs online: collecting again sends nothing for a failed sample; --retry-failed gives it --max-attempts more",
    async () => {
      const f = await fake({
        lines: (ctx) => (sampleNumberOf(ctx.body) === 1 ? lineRefused() : lineAnswer(validTaskFor(ctx), USAGE)),
        online: (ctx) => answer(validTaskFor(ctx), USAGE)
      })
      const out = tmpOut()
      const first = await runCli(
        ["generate", "-n", "3", "--out", out, "--backend", "batch", "--max-attempts", "1", "--wait", ...FAST],
        { env: env(f) }
      )
      expect(first.status, first.stderr).toBe(1)
      expect(first.stderr).toMatch(
        /1 samples failed after 1 attempts each; run `skyrl batch collect .* --retry-failed`/
      )
      expect(readJsonl(out).map(sampleOfRow)).toEqual([2, 3])
      const runDir = runDirOf(out)

      // Collecting again: the failed sample is not made again (before: a new attempt online, at full price).
      const again = await runCli(["batch", "collect", runDir], { env: env(f) })
      expect(again.status, again.stderr).toBe(1)
      expect(f.online.requests).toHaveLength(0)
      expect(again.stderr).toMatch(/1 samples failed after 1 attempts each/)
      expect(readJsonl(out).map(sampleOfRow)).toEqual([2, 3])

      // Asked for: --max-attempts (1) more attempt, online, and the row.
      const retried = await runCli(["batch", "collect", runDir, "--retry-failed"], { env: env(f) })
      expect(retried.status, retried.stderr).toBe(0)
      expect(f.online.requests).toHaveLength(1)
      expect(sampleNumberOf(f.online.requests[0].body)).toBe(1)
      expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2, 3])
    },
    90_000
  )
})
