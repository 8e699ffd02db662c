/**
 * Parts of a batch run whose answers are lost: a completed part whose output file the account no longer
 * has (404 for its content), and a cancelled batch. The other parts' rows are written; the lost samples
 * are named and kept for `batch collect --resubmit`, which sends only them.
 * The built CLI against the fake Files/Batches API (test/support/fakeBatch.ts).
 */
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { batchFakes, env, FAST, readJsonl, sampleOfRow, tmpOut, USAGE } from "./support/batchCli.js"
import { runCli } from "./support/cli.js"
import { lineAnswer, lineSkip } from "./support/fakeBatch.js"
import { sampleNumberOf, validTaskFor } from "./support/fakeTasks.js"

const { fake } = batchFakes()

describe("lost batch parts", () => {
  it(
    "a completed part whose output file is gone (404): the other part's rows are written, its samples resubmitted alone",
    async () => {
      const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE), maxRequests: 2 })
      const out = tmpOut()
      const r = await runCli(
        ["generate", "-n", "4", "--out", out, "--backend", "batch", "--batch-max-requests", "2"],
        { env: env(f) }
      )
      expect(r.status, r.stderr).toBe(0)
      const runDir = r.stdout.trim()
      const s = await runCli(["batch", "status", runDir, "--wait", ...FAST], { env: env(f) })
      expect(s.status, s.stderr).toBe(0)
      const gone = f.batches[1].outputFileId!
      f.files.delete(gone)

      const c = await runCli(["batch", "collect", runDir], { env: env(f) })
      // As for any sample left without an answer: exit 1, the answered part's rows written.
      expect(c.status, c.stderr).toBe(1)
      expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2])
      // Named: the part, the file id, the 404; and what to do.
      expect(c.stderr).toMatch(new RegExp(`part 2.*${gone}.*404`))
      expect(c.stderr).toMatch(/2 samples have no batch answer \(2 .*output file/)
      expect(c.stderr).toMatch(/--resubmit/)
      expect(f.online.requests).toHaveLength(0)

      const asked = f.requests.filter((q) => q.path.includes(gone)).length
      const again = await runCli(["batch", "collect", runDir, "--resubmit", "--wait", ...FAST], { env: env(f) })
      expect(again.status, again.stderr).toBe(0)
      // Said once by this collect, and asked of the API once, though its rounds (the follow-up batch waited
      // for, then collected) each look at the part again (before, once per round).
      expect(again.stderr.match(new RegExp(`output file ${gone} is not found`, "g"))).toHaveLength(1)
      expect(f.requests.filter((q) => q.path.includes(gone)).length - asked).toBe(1)
      // Only the lost part's samples are sent again, as the same requests; nothing answered is paid twice.
      expect(f.batches).toHaveLength(3)
      expect(f.batches[2].lines.map((l) => sampleNumberOf(l.body)).sort()).toEqual([3, 4])
      for (const line of f.batches[2].lines) {
        expect(line).toEqual(f.batches[1].lines.find((l) => l.custom_id === line.custom_id))
      }
      expect(f.online.requests).toHaveLength(0)
      expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2, 3, 4])
    },
    90_000
  )

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

      // Sent again: the cancelled lines were no attempt (no answer, nothing paid), so neither the archive nor
      // the ledger keeps them as one; before, each was archived as a "Transient" failure, "temporary failure of
      // the model API: batch_cancelled: ...", with a $0 ledger line of that status.
      const runDir = r.stdout.trim()
      const again = await runCli(["batch", "collect", runDir, "--resubmit", "--wait", ...FAST], { env: env(f) })
      expect(again.status, again.stderr).toBe(0)
      expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2, 3, 4])
      const archived = readdirSync(runDir).filter((n) => n.startsWith("archive_")).flatMap((n) =>
        readJsonl(join(runDir, n))
      )
      expect(archived.map((a) => [a.name, a.status]).sort()).toEqual([
        ["task_0001_c01.json", "ok"],
        ["task_0002_c01.json", "ok"],
        ["task_0003_c01.json", "ok"],
        ["task_0004_c01.json", "ok"]
      ])
      const ledger = readJsonl(join(runDir, "ledger.jsonl")).filter((e) => e.purpose === "task")
      expect(ledger.map((e) => e.status)).toEqual(["ok", "ok", "ok", "ok"])
    },
    60_000
  )
})
