/**
 * `--max-cost` on a batch run: the batch's answers are paid for as the batch runs, so a collect uses every
 * one of them whatever the budget; the budget stops the calls the collect would make (online repairs and
 * retries, follow-up batches). `batch collect --max-cost` replaces the run's budget. The built CLI against
 * the fake Files/Batches API (test/support/fakeBatch.ts).
 */
import { readdirSync, readFileSync, rmSync } from "node:fs"
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

/** `generate -n 6 --backend batch --reasoning-effort minimal --max-cost 0.0074`: 2 of the 6 requests fit (below). */
const submitSix = (f: Parameters<typeof env>[0], out: string, extra: ReadonlyArray<string> = []) =>
  runCli(
    ["generate", "-n", "6", "--out", out, "--backend", "batch", "--reasoning-effort", "minimal", "--max-cost", "0.0074"]
      .concat(extra),
    { env: env(f) }
  )

describe("--max-cost with --backend batch", () => {
  it("every answer of the batch is used though they cost more than --max-cost: they are paid for", async () => {
    const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
    const out = tmpOut()
    // 10 answers at batch prices cost ~$0.0077 (hand-priced: half of 10 online calls), more than $0.003.
    expect(costOfCalls(10, USAGE) / 2).toBeGreaterThan(0.003)
    // Submitted without a budget (a submission holds to --max-cost: see below), collected with one.
    const sent = await runCli(["generate", "-n", "10", "--out", out, "--backend", "batch"], { env: env(f) })
    expect(sent.status, sent.stderr).toBe(0)
    const r = await runCli(["batch", "collect", runDirOf(out), "--max-cost", "0.003", "--wait", ...FAST], {
      env: env(f)
    })
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
      const sent = await runCli(["generate", "-n", "6", "--out", out, "--backend", "batch"], { env: env(f) })
      expect(sent.status, sent.stderr).toBe(0)
      const r = await runCli(["batch", "collect", runDirOf(out), "--max-cost", "0.003", "--wait", ...FAST], {
        env: env(f)
      })
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

  // The one stage of `generate -n 6` (subjects) costs $0.0009 online (support/fakeBatch.ts STAGE_USAGE:
  // 1200 input at $0.25/M + 300 output at $2/M), in the run's ledger before anything is submitted.
  const STAGE_USD = 0.0009

  it(
    "a submission whose ledger already reached --max-cost submits nothing and says so; collect --max-cost sends it",
    async () => {
      const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
      const out = tmpOut()
      const r = await runCli(["generate", "-n", "6", "--out", out, "--backend", "batch", "--max-cost", "0.0005"], {
        env: env(f)
      })
      expect(r.status, r.stderr).toBe(1)
      expect(f.batches).toHaveLength(0)
      expect(f.files.size).toBe(0)
      const runDir = runDirOf(out)
      expect(JSON.parse(readFileSync(join(runDir, "batch.json"), "utf8")).parts).toEqual([])
      const final = r.stderr.trim().split("\n").at(-1)!
      expect(final).toContain(`--max-cost $0.0005 reached ($${STAGE_USD.toFixed(4)} spent)`)
      expect(final).toContain("0 of the 6 samples submitted")
      expect(final).toContain(`skyrl batch collect ${runDir} --max-cost N`)

      const again = await runCli(["batch", "collect", runDir, "--max-cost", "1", "--wait", ...FAST], { env: env(f) })
      expect(again.status, again.stderr).toBe(0)
      expect(readJsonl(out).map(sampleOfRow)).toEqual(range(6))
      expect(f.batches).toHaveLength(1)
      expect(f.batches[0].lines).toHaveLength(6)
    },
    60_000
  )

  it("a submission holds back the requests whose estimate at batch prices would pass --max-cost", async () => {
    const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
    const out = tmpOut()
    // Each request is estimated at its input (~9k tokens here; checked below) at $0.125/M plus 1500 output
    // tokens (--reasoning-effort minimal, as --dry-run estimates it) at $1/M: between $0.0025 and $0.0030 for
    // an input of 8k to 12k tokens. Beside the stage's $0.0009, $0.0074 holds 2 of them (at most $0.0069),
    // never 3 (at least $0.0084).
    const r = await submitSix(f, out)
    expect(r.status, r.stderr).toBe(0)
    const runDir = runDirOf(out)
    const parts = JSON.parse(readFileSync(join(runDir, "batch.json"), "utf8")).parts
    expect(parts).toHaveLength(1)
    expect(parts[0].requests).toBe(2)
    const inputPerRequest = parts[0].tokens / 2 - 32_000 // tokens: input + --max-output-tokens (32000) each
    expect(inputPerRequest).toBeGreaterThan(8_000)
    expect(inputPerRequest).toBeLessThan(12_000)
    expect(f.batches).toHaveLength(1)
    expect(f.batches[0].lines.map((l) => sampleNumberOf(l.body)).sort()).toEqual([1, 2])
    expect(r.stderr).toMatch(/--max-cost \$0\.0074: 4 of the 6 samples held back/)

    // Collected with the run's budget: the 2 answers cost $0.0015 in all (hand-priced at batch prices), so
    // $0.0074 - $0.0009 - $0.0015 = $0.0050 is left: one more request (at most $0.0030), not two (at least
    // $0.0050), goes into a follow-up batch.
    expect(costOfCalls(2, USAGE) / 2).toBeCloseTo(0.0015446, 7)
    // (The batch ended first: while it runs, its own estimate counts against the budget, and leaves no room.)
    expect((await runCli(["batch", "status", runDir, "--wait", ...FAST], { env: env(f) })).status).toBe(0)
    const collect = await runCli(["batch", "collect", runDir], { env: env(f) })
    expect(collect.status, collect.stderr).toBe(75)
    expect(f.batches).toHaveLength(2)
    expect(f.batches[1].lines.map((l) => sampleNumberOf(l.body))).toEqual([3])
    expect(collect.stderr).toMatch(
      /follow-up batch submitted: 1 requests .*--max-cost \$0\.0074: 3 of the 4 requests held back/
    )

    // With 3 answers in (~$0.0032 spent), $0.004 leaves less than one request's estimate: --wait sends nothing
    // more and ends (exit 1) with the 3 rows, naming the budget (before, it sent every sample).
    const short = await runCli(["batch", "collect", runDir, "--max-cost", "0.004", "--wait", ...FAST], {
      env: env(f)
    })
    expect(short.status, short.stderr).toBe(1)
    expect(f.batches).toHaveLength(2)
    expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2, 3])
    expect(short.stderr.trim().split("\n").at(-1)).toMatch(
      /3 samples with no answer: .*--max-cost \$0\.004 leaves less than one more request's estimate/
    )

    const all = await runCli(["batch", "collect", runDir, "--max-cost", "1", "--wait", ...FAST], { env: env(f) })
    expect(all.status, all.stderr).toBe(0)
    expect(readJsonl(out).map(sampleOfRow)).toEqual(range(6))
  }, 60_000)

  it("a collect whose rounds look at the same samples again says each warning once", async () => {
    // 2 of 6 samples submitted (--max-cost, as above), requests.jsonl deleted; collected with a budget that fits
    // no follow-up request: the round is made again (its requests refused by the budget). Before, that second
    // round warned again of requests.jsonl and of the 4 samples never sent.
    const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
    const out = tmpOut()
    expect((await submitSix(f, out)).status).toBe(0)
    const runDir = runDirOf(out)
    expect((await runCli(["batch", "status", runDir, "--wait", ...FAST], { env: env(f) })).status).toBe(0)
    rmSync(join(runDir, "requests.jsonl"))
    const c = await runCli(["batch", "collect", runDir, "--max-cost", "0.004", "--wait", ...FAST], { env: env(f) })
    expect(c.status, c.stderr).toBe(1)
    expect(f.batches).toHaveLength(1)
    expect(c.stderr.match(/requests\.jsonl lacks the 2 requests of part 1/g)).toHaveLength(1)
    expect(c.stderr.match(/4 samples were never sent/g)).toHaveLength(1)
  }, 60_000)
  it("a part waiting for room in the queue counts in the budget of a follow-up batch (it will be sent)", async () => {
    const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE), inProgressPolls: 1_000_000 })
    const out = tmpOut()
    // As the test above: 2 of the 6 requests fit $0.0074; a 50,000-token queue holds one at a time, so the
    // second part waits for room while the first batch runs.
    const sent = await submitSix(f, out, ["--batch-max-tokens", "50000"])
    expect(sent.status, sent.stderr).toBe(0)
    const runDir = runDirOf(out)
    const parts = () => JSON.parse(readFileSync(join(runDir, "batch.json"), "utf8")).parts
    expect(parts().map((p: any) => [p.requests, p.batch_id === null])).toEqual([[1, false], [1, true]])
    // The collect holds the 4 samples back: the two parts' estimate and what the stage spent leave no room.
    const r = await runCli(["batch", "collect", runDir], { env: env(f) })
    expect(parts()).toHaveLength(2) // was: a third part, one more request (~$0.0088 committed for $0.0074)
    expect(r.stderr).not.toMatch(/follow-up batch submitted/)
    // Its last line says why they wait, beside the batches still running (was: only the batches).
    expect(r.status).toBe(75)
    expect(r.stderr).toMatch(
      /requests are in batches still running; the samples never sent wait: --max-cost \$0\.0074 /
    )
  }, 60_000)
})
