/**
 * A batch run directory edited or partly deleted between submission and collect: the built CLI against the
 * fake Files/Batches server (test/support/fakeBatch.ts). Whatever is missing, a collect never pays for a
 * request the batches already answered, and says what it could not rebuild.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { archiveHolds } from "./support/archive.js"
import { batchFakes, env, FAST, onlineCost, readJsonl, sampleOfRow, tmpOut, USAGE } from "./support/batchCli.js"
import { runCli } from "./support/cli.js"
import { lineAnswer, STAGE_USAGE } from "./support/fakeBatch.js"
import { validTaskFor } from "./support/fakeTasks.js"

const { fake } = batchFakes()

/** A generate run of 4 samples in 2 batches, submitted and finished (status --wait), not collected. */
const finishedRun = async () => {
  const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
  const out = tmpOut()
  const args = ["generate", "-n", "4", "--out", out, "--backend", "batch", "--batch-max-requests", "2"]
  const r = await runCli(args, { env: env(f) })
  expect(r.status, r.stderr).toBe(0)
  const runDir = r.stdout.trim()
  const s = await runCli(["batch", "status", runDir, "--wait", ...FAST], { env: env(f) })
  expect(s.status, s.stderr).toBe(0)
  expect(f.batches.map((b) => b.status)).toEqual(["completed", "completed"])
  return { f, out, runDir, creates: () => f.requests.filter((q) => q.method === "POST").length }
}

describe("a batch run directory partly deleted", () => {
  it(
    "requests.jsonl deleted: collect reads each part's requests from its input file and sends nothing again",
    async () => {
      // Before: every sample counted as "never sent" (no part held it), and the collect paid for all 4 again in
      // a follow-up batch (exit 75), though the output files of both batches held their answers.
      const { creates, f, out, runDir } = await finishedRun()
      const posts = creates()
      rmSync(join(runDir, "requests.jsonl"))
      const c = await runCli(["batch", "collect", runDir], { env: env(f) })
      expect(c.status, c.stderr).toBe(0)
      expect(c.stderr).toMatch(/requests\.jsonl lacks the 2 requests of part 1; read from batch_001_input\.jsonl/)
      expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2, 3, 4])
      expect(f.batches).toHaveLength(2)
      expect(creates()).toBe(posts)
      expect(f.online.requests).toHaveLength(0)
    },
    60_000
  )

  it(
    "requests.jsonl and a part's input file deleted: collect stops naming both, sends and writes nothing",
    async () => {
      const { creates, f, out, runDir } = await finishedRun()
      const posts = creates()
      rmSync(join(runDir, "requests.jsonl"))
      rmSync(join(runDir, "batch_002_input.jsonl"))
      const c = await runCli(["batch", "collect", runDir], { env: env(f) })
      expect(c.status).toBe(1)
      expect(c.stderr).toContain(`${join(runDir, "requests.jsonl")}: lacks the 2 requests of part 2`)
      expect(c.stderr).toContain("batch_002_input.jsonl")
      expect(creates()).toBe(posts)
      expect(f.online.requests).toHaveLength(0)
      expect(existsSync(out)).toBe(false)
      expect(readFileSync(join(runDir, "batch.json"), "utf8")).not.toMatch(/follow-up/)
    },
    60_000
  )

  it("a downloaded output file deleted: the next collect downloads it again instead of failing", async () => {
    // Before: `skyrl: cannot read .../batch_001_output.jsonl: no such file or directory`, exit 1, on every
    // collect, though the API still had the file (batch.json records its id).
    const { f, out, runDir } = await finishedRun()
    const c = await runCli(["batch", "collect", runDir], { env: env(f) })
    expect(c.status, c.stderr).toBe(0)
    const rows = readFileSync(out, "utf8")
    const downloads = () => f.requests.filter((q) => q.path.endsWith("/content")).length
    const before = downloads()
    rmSync(join(runDir, "batch_001_output.jsonl"))
    rmSync(join(runDir, "journal.jsonl"))
    writeFileSync(out, "")
    const again = await runCli(["batch", "collect", runDir], { env: env(f) })
    expect(again.status, again.stderr).toBe(0)
    expect(again.stderr).toMatch(/batch_001_output\.jsonl was downloaded before and is gone; downloading it again/)
    expect(downloads()).toBe(before + 1)
    expect(existsSync(join(runDir, "batch_001_output.jsonl"))).toBe(true)
    expect(readFileSync(out, "utf8")).toBe(rows)
    expect(f.batches).toHaveLength(2)
    expect(f.online.requests).toHaveLength(0)
  }, 60_000)

  it(
    "journal, archive, then both (and an output file) deleted: each collect rebuilds the rows, the cost stays the one paid",
    async () => {
      // Before: with the archive and the journal gone, the collect archived the 4 batch answers under new call
      // names and added them to the ledger again: the manifest said 9 calls, 13,200 input tokens and $0.0070784
      // (4 × $0.0007723 more) for what cost 5 calls, 7,200 tokens and $0.0039892.
      const { f, out, runDir } = await finishedRun()
      const first = await runCli(["batch", "collect", runDir], { env: env(f) })
      expect(first.status, first.stderr).toBe(0)
      const prompts = readJsonl(out).map((row) => row.prompt)
      const paid = {
        calls: 5,
        input: 4 * USAGE.input + STAGE_USAGE.input,
        cost: onlineCost(USAGE, 4) / 2 + onlineCost(STAGE_USAGE, 1)
      }
      const manifest = () => JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"))
      const expectPaidOnce = () => {
        const m = manifest()
        expect(m.counts.calls).toBe(paid.calls)
        expect(m.tokens.input).toBe(paid.input)
        expect(m.cost_usd).toBeCloseTo(paid.cost, 10)
        expect(readJsonl(join(runDir, "ledger.jsonl"))).toHaveLength(paid.calls)
      }
      expectPaidOnce()
      const steps = [["journal.jsonl"], ["archive_01.jsonl"], ["journal.jsonl", "batch_001_output.jsonl"]]
      for (const [i, files] of steps.entries()) {
        // The third step: the archive is gone since the second (a collect that replays nothing archives nothing).
        for (const file of files) rmSync(join(runDir, file))
        expect(existsSync(join(runDir, "archive_01.jsonl"))).toBe(i === 0)
        writeFileSync(out, "")
        const again = await runCli(["batch", "collect", runDir], { env: env(f) })
        expect(again.status, `${files.join(" + ")}: ${again.stderr}`).toBe(0)
        expect(readJsonl(out).map((row) => row.prompt)).toEqual(prompts)
        expectPaidOnce()
        expect(again.stderr).toMatch(/collected: 4 rows .*; cost \$0\.0040 /)
      }
      // The last collect archived the answers again (new call names) and its rows point at them.
      for (const row of readJsonl(out)) {
        const meta = JSON.parse(row.extra_info.task_metadata)
        expect(meta.raw_output_path).toMatch(/archive_01\.jsonl#task_000\d_c02\.json$/)
        expect(archiveHolds(join(out, ".."), meta.raw_output_path)).toBe(true)
      }
      expect(f.batches).toHaveLength(2)
      expect(f.online.requests).toHaveLength(0)
    },
    90_000
  )

  it(
    "a batch the API does not know (batch.json edited, or another project's key): named, with the likely cause",
    async () => {
      // Before: `skyrl: not found at the model API (check --model and OPENAI_BASE_URL): No such batch`, naming
      // neither the batch nor the key.
      const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
      const r = await runCli(["generate", "-n", "2", "--out", tmpOut(), "--backend", "batch"], { env: env(f) })
      expect(r.status, r.stderr).toBe(0)
      const runDir = r.stdout.trim()
      const file = join(runDir, "batch.json")
      const state = JSON.parse(readFileSync(file, "utf8"))
      state.parts[0].batch_id = "batch-unknown"
      writeFileSync(file, JSON.stringify(state))
      for (const command of ["status", "collect"]) {
        const c = await runCli(["batch", command, runDir], { env: env(f) })
        expect(c.status).toBe(1)
        expect(c.stderr).toMatch(/batch batch-unknown: No such batch \(the run recorded it; .*OPENAI_API_KEY/)
      }
      expect(f.batches).toHaveLength(1)
    },
    60_000
  )
})
