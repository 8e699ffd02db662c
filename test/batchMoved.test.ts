/**
 * A batch run directory renamed or copied between submission and collect: the built CLI against the fake
 * Files/Batches server (test/support/fakeBatch.ts). The collect works in the directory it is given: its
 * journal, archive, ledger and manifest go there, never to the place batch.json recorded at submit time.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { basename, dirname, join, relative } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { archiveHolds } from "./support/archive.js"
import { batchFakes, env, FAST, readJsonl, tmpOut, USAGE, withoutRun } from "./support/batchCli.js"
import { runCli } from "./support/cli.js"
import type { BatchFake } from "./support/fakeBatch.js"
import { lineAnswer, startBatchFake } from "./support/fakeBatch.js"
import { validTaskFor } from "./support/fakeTasks.js"

const { fake } = batchFakes()

const N = 3

/** Submits a generate run of N samples (seed 3) and waits for its batch; returns the run directory. */
const submitted = async (f: BatchFake, out: string) => {
  const r = await runCli(["generate", "-n", String(N), "--seed", "3", "--out", out, "--backend", "batch"], {
    env: env(f)
  })
  expect(r.status, r.stderr).toBe(0)
  return r.stdout.trim()
}

const collect = async (f: BatchFake, runDir: string) => {
  const c = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })
  expect(c.status, c.stderr).toBe(0)
  return c
}

/** Every file under a directory with its bytes (what a collect of a copy must leave as it was). */
const snapshot = (dir: string): Record<string, string> =>
  Object.fromEntries(
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => {
        const file = join(e.parentPath, e.name)
        return [relative(dir, file), readFileSync(file, "utf8")]
      })
  )

/**
 * What the run paid, by hand: the subjects stage online before the submission (1200 tokens in, 300 out:
 * $0.0009) and N batch answers (1500 in, 1024 of them cached, 700 out: $0.0007723 each at batch prices).
 */
const paid = { calls: N + 1, input: 1200 + N * 1500, cost: 0.0009 + N * 0.0007723 }

/** The run directory holds the whole collect: journal, archive, ledger and manifest with the run's cost. */
const expectCollectedIn = (runDir: string, out: string, twinRows: Array<any>) => {
  for (const file of ["journal.jsonl", "archive_01.jsonl", "ledger.jsonl", "manifest.json", "batch_001_output.jsonl"]) {
    expect(existsSync(join(runDir, file)), file).toBe(true)
  }
  const manifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"))
  expect(manifest.status).toBe("completed")
  expect(manifest.counts.valid).toBe(N)
  expect(manifest.counts.calls).toBe(paid.calls)
  expect(manifest.tokens.input).toBe(paid.input)
  expect(manifest.cost_usd).toBeCloseTo(paid.cost, 10)
  expect(readJsonl(join(runDir, "ledger.jsonl"))).toHaveLength(paid.calls)
  const rows = readJsonl(out)
  expect(rows.map(withoutRun)).toEqual(twinRows.map(withoutRun))
  const here = relative(dirname(out), runDir)
  for (const row of rows) {
    const ref: string = JSON.parse(row.extra_info.task_metadata).raw_output_path
    expect(ref.startsWith(`${here}/archive_01.jsonl#`), ref).toBe(true)
    expect(archiveHolds(dirname(out), ref), ref).toBe(true)
  }
}

/** The twin run: the same run (same seed, same answers) collected where it was submitted; its rows. */
const twinRows = async (f: BatchFake) => {
  const out = tmpOut()
  const runDir = await submitted(f, out)
  await collect(f, runDir)
  const rows = readJsonl(out)
  expect(rows).toHaveLength(N)
  expectCollectedIn(runDir, out, rows)
  return rows
}

const answers = { lines: (ctx: Parameters<typeof validTaskFor>[0]) => lineAnswer(validTaskFor(ctx), USAGE) }
const answering = () => fake(answers)

/**
 * The twin run's rows, made once for the file on a fake of its own: the same seed and answers give the same
 * rows in every test (each test's run is on a fresh fake, which its `online.requests` check then covers alone).
 */
let twin: Array<any>
beforeAll(async () => {
  const f = await startBatchFake(answers)
  try {
    twin = await twinRows(f)
  } finally {
    await f.close()
  }
}, 90_000)

describe("a batch run directory moved between submission and collect", () => {
  it("renamed: status and collect work in it, nothing is made at the old place", async () => {
    // Before: the collect exited 0 but made raw_llm/<run_id>/ again at the old place and wrote the journal,
    // archive, ledger and manifest there (batch.json stayed in the directory given); that new ledger lacked the
    // subjects stage, so the cost said $0.0023 instead of $0.0032.
    expect(USAGE.input).toBe(1500) // the figures of `paid`
    const f = await answering()
    const out = tmpOut()
    const oldDir = await submitted(f, out)
    const renamed = join(dirname(out), "moved-run")
    renameSync(oldDir, renamed)
    const status = await runCli(["batch", "status", renamed, "--wait", ...FAST], { env: env(f) })
    expect(status.status, status.stderr).toBe(0)
    const c = await collect(f, renamed)
    expect(existsSync(oldDir)).toBe(false)
    expectCollectedIn(renamed, out, twin)
    expect(c.stderr).toMatch(/collected: 3 rows .*; cost \$0\.0032 /)
    expect(f.online.requests).toHaveLength(0)
  }, 90_000)

  it("copied to another parent directory: collected in the copy, the original left exactly as it was", async () => {
    // Before: the collect of the copy wrote its journal, archive and ledger into the original.
    const f = await answering()
    const out = tmpOut()
    const original = await submitted(f, out)
    const copy = join(mkdtempSync(join(tmpdir(), "skyrl-batch-copy-")), basename(original))
    cpSync(original, copy, { recursive: true })
    const before = snapshot(dirname(original))
    await collect(f, copy)
    expect(snapshot(dirname(original))).toEqual(before)
    expectCollectedIn(copy, out, twin)
    expect(f.online.requests).toHaveLength(0)
  }, 90_000)

  it("collected, then renamed and collected again: the rows collected before name the new directory", async () => {
    // Before: the second collect wrote the journaled rows as they were journaled, their raw_output_path still
    // naming raw_llm/<run_id>/, which the rename had removed.
    const f = await answering()
    const out = tmpOut()
    const oldDir = await submitted(f, out)
    await collect(f, oldDir)
    const renamed = join(dirname(out), "moved-run")
    renameSync(oldDir, renamed)
    await collect(f, renamed)
    expect(existsSync(oldDir)).toBe(false)
    expectCollectedIn(renamed, out, twin)
    expect(readJsonl(out).map((row) => JSON.parse(row.extra_info.task_metadata).raw_output_path).sort()).toEqual([
      "moved-run/archive_01.jsonl#task_0001_c01.json",
      "moved-run/archive_01.jsonl#task_0002_c01.json",
      "moved-run/archive_01.jsonl#task_0003_c01.json"
    ])
    expect(f.online.requests).toHaveLength(0)
  }, 90_000)

  it(
    "copied from another machine (its --out's directory not here): stops naming options.out; with it set, collected",
    async () => {
      // Before: the collect made the other machine's directories again (the dataset's, and the old run directory
      // with the journal, archive and ledger in it) and exited 0.
      const f = await answering()
      const out = tmpOut()
      const original = await submitted(f, out)
      const here = mkdtempSync(join(tmpdir(), "skyrl-batch-elsewhere-"))
      const copy = join(here, "run")
      cpSync(original, copy, { recursive: true })
      rmSync(dirname(out), { recursive: true })
      const stopped = await runCli(["batch", "collect", copy, "--wait", ...FAST], { env: env(f) })
      expect(stopped.status).toBe(1)
      expect(stopped.stderr).toContain(
        `${join(copy, "batch.json")}, options.out: ${out}: its directory ${dirname(out)} does not exist; ` +
          `this run directory was submitted as ${original}`
      )
      expect(existsSync(dirname(out))).toBe(false)
      expect(existsSync(join(copy, "journal.jsonl"))).toBe(false)
      // As the message says: the paths set to this machine's.
      const file = join(copy, "batch.json")
      const state = JSON.parse(readFileSync(file, "utf8"))
      const mine = join(here, "ds.jsonl")
      state.options.out = mine
      state.options.rejectsFile = `${mine}.rejects.jsonl`
      writeFileSync(file, JSON.stringify(state))
      await collect(f, copy)
      expect(existsSync(dirname(out))).toBe(false)
      expectCollectedIn(copy, mine, twin)
    },
    90_000
  )
})
