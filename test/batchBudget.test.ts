/**
 * `--max-cost` on a batch run: the batch's answers are paid for as the batch runs, so a collect uses every
 * one of them whatever the budget; the budget stops the calls the collect would make (online repairs and
 * retries, follow-up batches). `batch collect --max-cost` replaces the run's budget. The built CLI against
 * the fake Files/Batches API (test/support/fakeBatch.ts).
 */
import { readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { describe, expect, it } from "vitest"
import { batchFakes, env, FAST, readJsonl, sampleOfRow, tmpOut, USAGE } from "./support/batchCli.js"
import { runCli } from "./support/cli.js"
import { lineAnswer } from "./support/fakeBatch.js"
import { answer } from "./support/fakeOpenAI.js"
import { invalidTaskText, isRepairRequest, sampleNumberOf, validTaskFor } from "./support/fakeTasks.js"
import { costOfCalls } from "./support/usage.js"

const { fake } = batchFakes()

const runDirOf = (out: string) => {
  const raw = join(dirname(out), "raw_llm")
  return join(raw, readdirSync(raw)[0])
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

describe("--max-cost with --backend batch", () => {
  it("every answer of the batch is used though they cost more than --max-cost: they are paid for", async () => {
    const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
    const out = tmpOut()
    // 10 answers at batch prices cost ~$0.0077 (hand-priced: half of 10 online calls), more than $0.003.
    expect(costOfCalls(10, USAGE) / 2).toBeGreaterThan(0.003)
    const r = await runCli(
      ["generate", "-n", "10", "--out", out, "--backend", "batch", "--max-cost", "0.003", "--wait", ...FAST],
      { env: env(f) }
    )
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out).map(sampleOfRow)).toEqual(range(10))
    expect(f.online.requests).toHaveLength(0)
  }, 60_000)

  it(
    "spent: no online repair is made (those samples are said to wait for a budget); collect --max-cost makes them",
    async () => {
      // Samples 1 and 2 answer an invalid plan in the batch: each needs a repair (online).
      const f = await fake({
        lines: (ctx) => {
          const k = sampleNumberOf(ctx.body) ?? 0
          return lineAnswer(k <= 2 ? invalidTaskText(k) : validTaskFor(ctx), USAGE)
        },
        online: (ctx) => answer(validTaskFor(ctx), USAGE)
      })
      const out = tmpOut()
      const r = await runCli(
        ["generate", "-n", "6", "--out", out, "--backend", "batch", "--max-cost", "0.003", "--wait", ...FAST],
        { env: env(f) }
      )
      expect(r.status, r.stderr).toBe(1)
      expect(f.online.requests).toHaveLength(0)
      expect(readJsonl(out).map(sampleOfRow)).toEqual([3, 4, 5, 6])
      const final = r.stderr.trim().split("\n").at(-1)!
      expect(final).toMatch(/2 samples with no answer: .*--max-cost \$0\.003 reached/)
      expect(final).toMatch(/batch collect .* --max-cost/)

      const runDir = runDirOf(out)
      const again = await runCli(["batch", "collect", runDir, "--max-cost", "1"], { env: env(f) })
      expect(again.status, again.stderr).toBe(0)
      expect(f.online.requests.map((q) => sampleNumberOf(q.body)).sort()).toEqual([1, 2])
      expect(f.online.requests.every((q) => isRepairRequest(q.body))).toBe(true)
      expect(readJsonl(out).map(sampleOfRow)).toEqual(range(6))
    },
    60_000
  )
})
