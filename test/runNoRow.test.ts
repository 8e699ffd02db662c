/**
 * A `generate` run (online or `--backend batch`, then `batch collect`) that makes no row writes no dataset (an empty
 * one never is) and leaves an --out an earlier run left as it was. The error says whether one is there, in the
 * words `convert` and `enrich` use when every row is rejected (src/programs/noDataset.ts): that it is an earlier
 * run's and does not match this run, or that --out was not written. Before, it said only
 * `made 0 of N valid rows (<out> not written)`, beside an earlier run's --out.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { batchFakes, env as batchEnv, FAST } from "./support/batchCli.js"
import { runCli } from "./support/cli.js"
import { lineAnswer } from "./support/fakeBatch.js"
import { answer, refusal } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, tempDir, USAGE } from "./support/fakeRun.js"
import { invalidTaskText, sampleNumberOf, withStages } from "./support/fakeTasks.js"

const servers = fakes()
afterEach(servers.closeAll)
const { fake: batchFake } = batchFakes()

const EARLIER = "{\"earlier\":1}\n"
const EMPTY_NEVER = " (an empty dataset is never written: SkyRL's loader fails on one)"
const earlierRuns = (out: string) =>
  `; no dataset was written: the ${out} there is an earlier run's, left as it was, and does not match this run` +
  EMPTY_NEVER
const notWritten = (out: string) => `; ${out} was not written` + EMPTY_NEVER

/** The last line of stderr: the final error. */
const finalLine = (stderr: string) => stderr.trim().split("\n").at(-1)!

describe("generate that makes no row (every answer invalid or refused)", () => {
  const run = async (out: string) => {
    // Sample 1's answers (and their repairs) are invalid, sample 2's refused: no sample makes a row.
    const server = await servers.start(withStages(
      (ctx) => {
        const k = sampleNumberOf(ctx.body) ?? 1
        return k === 1 ? answer(invalidTaskText(k), USAGE) : refusal("I can't help with that.")
      },
      (text) => answer(text, USAGE)
    ))
    return runCli(
      ["generate", "-n", "2", "--out", out, "--llm", "openai", "--complexities", "simple", "--max-attempts", "1"],
      { env: llmEnv(server, "sk-test-no-row") }
    )
  }
  const REASON = "made 0 of 2 valid rows: 2 samples failed after 1 attempts each; rerun with --resume to retry them"

  it("an earlier run's --out there: kept as it was, and the error says it is an earlier run's", async () => {
    const out = join(tempDir("skyrl-no-row-"), "ds.jsonl")
    writeFileSync(out, EARLIER)
    const r = await run(out)
    expect(r.status).toBe(1)
    expect(finalLine(r.stderr)).toBe(`skyrl: ${REASON}${earlierRuns(out)}`)
    expect(readFileSync(out, "utf8")).toBe(EARLIER)
  }, 60_000)

  it("no --out there: none is made, and the error says it was not written", async () => {
    const out = join(tempDir("skyrl-no-row-"), "ds.jsonl")
    const r = await run(out)
    expect(r.status).toBe(1)
    expect(finalLine(r.stderr)).toBe(`skyrl: ${REASON}${notWritten(out)}`)
    expect(existsSync(out)).toBe(false)
  }, 60_000)
})

describe("batch collect that makes no row", () => {
  /** Submits `generate -n 2 --backend batch` (no --wait) and returns the run directory. */
  const submit = async (f: { baseUrl: string }, out: string, extra: ReadonlyArray<string> = []) => {
    const r = await runCli(["generate", "-n", "2", "--out", out, "--backend", "batch", ...extra], { env: batchEnv(f) })
    expect(r.status, r.stderr).toBe(0)
    return r.stdout.trim()
  }

  for (const earlier of [true, false]) {
    it(`a batch that answered nothing, ${earlier ? "an earlier run's --out there" : "no --out there"}`, async () => {
      const f = await batchFake({ lines: () => lineAnswer(invalidTaskText(1)), finalStatus: () => "failed" })
      const out = join(tempDir("skyrl-no-row-batch-"), "ds.jsonl")
      if (earlier) writeFileSync(out, EARLIER)
      const runDir = await submit(f, out)
      const r = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: batchEnv(f) })
      expect(r.status).toBe(1)
      expect(finalLine(r.stderr)).toBe(
        `skyrl: made 0 of 2 valid rows: none of the 2 samples has a batch answer; run \`skyrl batch collect ${runDir} ` +
          `--resubmit\` to send them again${earlier ? earlierRuns(out) : notWritten(out)}`
      )
      if (earlier) expect(readFileSync(out, "utf8")).toBe(EARLIER)
      else expect(existsSync(out)).toBe(false)
    }, 60_000)
  }

  it("every answer and its online repair invalid, an earlier run's --out there", async () => {
    const f = await batchFake({
      lines: (ctx) => lineAnswer(invalidTaskText(sampleNumberOf(ctx.body) ?? 1), USAGE),
      online: (ctx) => answer(invalidTaskText(sampleNumberOf(ctx.body) ?? 1), USAGE)
    })
    const out = join(tempDir("skyrl-no-row-batch-"), "ds.jsonl")
    writeFileSync(out, EARLIER)
    const runDir = await submit(f, out, ["--max-attempts", "1", "--repairs", "online"])
    const r = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: batchEnv(f) })
    expect(r.status).toBe(1)
    expect(finalLine(r.stderr)).toBe(
      `skyrl: made 0 of 2 valid rows: 2 samples failed after 1 attempts each; run \`skyrl batch collect ${runDir} ` +
        `--retry-failed\` to make them again (--max-attempts more attempts each)${earlierRuns(out)}`
    )
    expect(readFileSync(out, "utf8")).toBe(EARLIER)
  }, 60_000)
})

describe("batch collect that has made no row yet, some batches still running", () => {
  it("an earlier run's --out there: it is not said to hold what was collected", async () => {
    // Two batches of one sample: the first answers invalidly (its online repair too), the second is still running.
    const f = await batchFake({
      lines: (ctx) => lineAnswer(invalidTaskText(sampleNumberOf(ctx.body) ?? 1), USAGE),
      online: (ctx) => answer(invalidTaskText(sampleNumberOf(ctx.body) ?? 1), USAGE),
      inProgressPolls: 1000
    })
    const out = join(tempDir("skyrl-no-row-batch-"), "ds.jsonl")
    writeFileSync(out, EARLIER)
    const submitted = await runCli(
      ["generate", "-n", "2", "--out", out, "--backend", "batch", "--batch-max-requests", "1", "--max-attempts", "1"],
      { env: batchEnv(f) }
    )
    expect(submitted.status, submitted.stderr).toBe(0)
    const runDir = submitted.stdout.trim()
    f.batches[0].status = "finalizing" // done at the next retrieve; the second batch keeps running
    const r = await runCli(["batch", "collect", runDir, "--repairs", "online"], { env: batchEnv(f) })
    expect(r.status, r.stderr).toBe(75)
    // Before: `collected 0 rows into <out>; 1 requests are in batches still running`, of the earlier run's --out.
    expect(finalLine(r.stderr)).toBe(
      `skyrl: collected no row yet${earlierRuns(out)}; 1 requests are in batches still running; run ` +
        `\`skyrl batch collect ${runDir}\` again when it is done (or add --wait)`
    )
    expect(readFileSync(out, "utf8")).toBe(EARLIER)
  }, 60_000)
})
