/**
 * A part that batch.json no longer records though its batch was created (batch.json edited by hand, or an
 * older copy restored): the collect finds the batch again on the account (its metadata names the run and the
 * part) and adopts it, rather than sending the part's samples again as "never sent" and paying for them twice.
 * The built CLI against the fake Files/Batches API (test/support/fakeBatch.ts).
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { batchFakes, env, FAST, readJsonl, tmpOut, USAGE, withoutRun } from "./support/batchCli.js"
import { runCli } from "./support/cli.js"
import type { BatchFake } from "./support/fakeBatch.js"
import { lineAnswer } from "./support/fakeBatch.js"
import { validTaskFor } from "./support/fakeTasks.js"

const { fake } = batchFakes()

const N = 4

/** Submits a generate run of N samples (seed 3) in two parts of 2; returns the run directory. */
const submitted = async (f: BatchFake, out: string) => {
  const r = await runCli(
    ["generate", "-n", String(N), "--seed", "3", "--out", out, "--backend", "batch", "--batch-max-requests", "2"],
    { env: env(f) }
  )
  expect(r.status, r.stderr).toBe(0)
  return r.stdout.trim()
}

const collect = (f: BatchFake, runDir: string) =>
  runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })

const batchJson = (runDir: string) => join(runDir, "batch.json")
const stateOf = (runDir: string) => JSON.parse(readFileSync(batchJson(runDir), "utf8"))

/** batch.json without the given part, as a hand edit or an older copy leaves it. */
const dropPart = (runDir: string, part: number) => {
  const state = stateOf(runDir)
  writeFileSync(batchJson(runDir), JSON.stringify({ ...state, parts: state.parts.filter((p: any) => p.part !== part) }))
}

/** The batches the fake holds for a run, by part: `{ "1": 1, "2": 1 }`. */
const batchesOf = (f: BatchFake, runDir: string) => {
  const runId = stateOf(runDir).run_id as string
  return Object.fromEntries(
    [...f.batchesPerPart()].filter(([k]) => k.startsWith(`${runId}:`)).map(([k, n]) => [k.slice(runId.length + 1), n])
  )
}

/** The rows of the same run (same seed, same answers) collected untouched. */
const untouchedRows = async (f: BatchFake) => {
  const out = tmpOut()
  const c = await collect(f, await submitted(f, out))
  expect(c.status, c.stderr).toBe(0)
  return readJsonl(out)
}

const answers = () => fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })

describe("a part batch.json does not record", () => {
  it.each([
    ["the last part, removed while its batch runs", 2, false],
    ["the first part, removed after its batch completed", 1, true]
  ])(
    "%s: collect adopts its batch, creates none, and writes the rows an untouched collect writes",
    async (_name, part, ended) => {
      const f = await answers()
      const twin = await untouchedRows(f)
      const out = tmpOut()
      const runDir = await submitted(f, out)
      if (ended) {
        const s = await runCli(["batch", "status", runDir, "--wait", ...FAST], { env: env(f) })
        expect(s.status, s.stderr).toBe(0)
      }
      const original = stateOf(runDir).parts.find((p: any) => p.part === part)
      dropPart(runDir, part)
      const before = f.batches.length

      const c = await collect(f, runDir)
      expect(c.status, c.stderr).toBe(0)
      // No batch created: the lost part's samples are answered by its batch, paid for once.
      expect(f.batches.length - before).toBe(0)
      expect(batchesOf(f, runDir)).toEqual({ 1: 1, 2: 1 })
      expect(c.stderr).toMatch(new RegExp(`part ${part}: batch ${original.batch_id} .*adopting it`))
      expect(c.stderr).not.toMatch(/never sent|follow-up batch submitted/)
      expect(readJsonl(out).map(withoutRun)).toEqual(twin.map(withoutRun))
      // batch.json records the part again, with its batch.
      const parts = stateOf(runDir).parts
      expect(parts.map((p: any) => [p.part, p.batch_id, p.status, p.requests])).toEqual(
        [1, 2].map((n) => [n, n === part ? original.batch_id : expect.any(String), "completed", 2])
      )
      expect(parts.find((p: any) => p.part === part).input_file_id).toBe(original.input_file_id)
    },
    90_000
  )

  it(
    "its batch on the account, and no file here says which samples it holds: nothing is sent, the batch is named",
    async () => {
      const f = await answers()
      const out = tmpOut()
      const runDir = await submitted(f, out)
      const lost = stateOf(runDir).parts.find((p: any) => p.part === 2)
      dropPart(runDir, 2)
      rmSync(join(runDir, "requests.jsonl"))
      rmSync(join(runDir, lost.input))
      const before = f.batches.length

      const c = await collect(f, runDir)
      expect(c.status).toBe(1)
      expect(c.stderr).toMatch(new RegExp(`does not record batch ${lost.batch_id} \\(part 2, .*restore batch\\.json`))
      expect(f.batches.length - before).toBe(0)
    },
    90_000
  )
})
