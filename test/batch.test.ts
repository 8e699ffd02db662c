/**
 * `generate --backend batch`, `skyrl batch status` and `skyrl batch collect` end to end: the built CLI
 * against the fake Files/Batches server (test/support/fakeBatch.ts) on 127.0.0.1.
 */
import { execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { basename, join } from "node:path"
import { describe, expect, it } from "vitest"
import { archiveHolds, archiveRecords } from "./support/archive.js"
import { batchFakes, env, FAST, onlineCost, readJsonl, sampleOfRow, tmpOut, USAGE } from "./support/batchCli.js"
import { BIN, cleanEnv, runCli } from "./support/cli.js"
import type { BatchFake } from "./support/fakeBatch.js"
import { lineAnswer, lineServerError, lineSkip, STAGE_USAGE } from "./support/fakeBatch.js"
import { planAnswer } from "./support/fakeEnrich.js"
import { answer, start } from "./support/fakeOpenAI.js"
import { invalidTaskText, isRepairRequest, sampleNumberOf, validTaskFor } from "./support/fakeTasks.js"

const { fake, keep } = batchFakes()

const lineBodies = (f: BatchFake, batchNo: number) => f.batches[batchNo - 1].lines

describe("generate --backend batch against the fake Batch API", () => {
  for (const endpoint of ["responses", "chat"] as const) {
    it(
      `--wait with --batch-endpoint ${endpoint}: one batch, shuffled output joined on custom_id, rows, archive, batch prices`,
      async () => {
        const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
        const out = tmpOut()
        const r = await runCli(
          ["generate", "-n", "12", "--out", out, "--backend", "batch", "--batch-endpoint", endpoint, "--wait", ...FAST],
          { env: env(f) }
        )
        expect(r.status, r.stderr).toBe(0)
        const runDir = r.stdout.trim()
        expect(existsSync(join(runDir, "batch.json"))).toBe(true)
        expect(f.batches).toHaveLength(1)
        const b = f.batches[0]
        expect(b.endpoint).toBe(endpoint === "responses" ? "/v1/responses" : "/v1/chat/completions")
        expect(b.completionWindow).toBe("24h")
        expect(f.files.get(b.inputFileId)!.purpose).toBe("batch")
        expect(b.status).toBe("completed")
        const runId = runDir.split("/").at(-1)!
        expect(b.lines.map((l) => l.custom_id)).toEqual(
          Array.from({ length: 12 }, (_, i) => `${runId}:sample-${String(i).padStart(6, "0")}`)
        )
        // The output file really is in another order than the input.
        const outputIds = f.files.get(b.outputFileId!)!.content.trim().split("\n").map((l) => JSON.parse(l).custom_id)
        expect(outputIds).not.toEqual(b.lines.map((l) => l.custom_id))
        // Rows are joined to the right samples whatever the output order.
        const rows = readJsonl(out)
        expect(rows.map(sampleOfRow)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1))
        // No task went online; the subjects stage did, before the submission (its answers shape every line).
        expect(f.online.requests).toHaveLength(0)
        expect(f.stages.requests).toHaveLength(1)
        // Archive: one call per sample, the batch line's answer with its batch id and custom id.
        const archives = archiveRecords(runDir)
        expect(archives).toHaveLength(12)
        const first = archives[0].record
        expect(first.batch_id).toBe(b.id)
        expect(first.custom_id).toBe(`${runId}:sample-000000`)
        expect(first.request).toEqual(b.lines[0].body)
        for (const row of rows) {
          const meta = JSON.parse(row.extra_info.task_metadata)
          expect(archiveHolds(join(out, ".."), meta.raw_output_path)).toBe(true)
          expect(meta.backend).toBe(endpoint)
        }
        const manifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"))
        expect(manifest.status).toBe("completed")
        expect(manifest.counts.requested).toBe(12)
        expect(manifest.counts.valid).toBe(12)
        expect(manifest.tokens.input).toBe(12 * USAGE.input + STAGE_USAGE.input)
        expect(manifest.cost_usd).toBeCloseTo(onlineCost(USAGE, 12) / 2 + onlineCost(STAGE_USAGE, 1), 10)
        expect(r.stderr).toMatch(/requests done/)
      },
      60_000
    )
  }

  it("puts in each line exactly the body the online backend sends", async () => {
    const online = keep(await start((ctx) => answer(validTaskFor(ctx), USAGE)))
    const onlineOut = tmpOut()
    const a = await runCli(["generate", "-n", "4", "--out", onlineOut, "--llm", "openai", "--seed", "3"], {
      env: env(online)
    })
    expect(a.status, a.stderr).toBe(0)
    const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
    const r = await runCli(["generate", "-n", "4", "--out", tmpOut(), "--seed", "3", "--backend", "batch"], {
      env: env(f)
    })
    expect(r.status, r.stderr).toBe(0)
    const sent = new Map(online.requests.map((q) => [sampleNumberOf(q.body), q.body]))
    const lines = lineBodies(f, 1)
    expect(lines).toHaveLength(4)
    for (const line of lines) {
      expect(line.method).toBe("POST")
      expect(line.url).toBe("/v1/responses")
      expect(line.body).toEqual(sent.get(sampleNumberOf(line.body)))
    }
    // Without --wait: submitted only (validating), nothing collected yet.
    expect(f.batches[0].status).toBe("validating")
    const runDir = r.stdout.trim()
    expect(existsSync(join(runDir, "journal.jsonl"))).toBe(false)
  }, 60_000)

  it("splits a run over --batch-max-requests into several batches and collects them all", async () => {
    const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE), maxRequests: 4 })
    const out = tmpOut()
    const r = await runCli(
      ["generate", "-n", "10", "--out", out, "--backend", "batch", "--batch-max-requests", "4", "--wait", ...FAST],
      { env: env(f) }
    )
    expect(r.status, r.stderr).toBe(0)
    expect(f.batches.map((b) => b.lines.length)).toEqual([4, 4, 2])
    expect(f.batches.every((b) => b.status === "completed")).toBe(true)
    const rows = readJsonl(out)
    expect(rows.map(sampleOfRow)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
    const state = JSON.parse(readFileSync(join(r.stdout.trim(), "batch.json"), "utf8"))
    expect(state.parts.map((p: any) => p.batch_id)).toEqual(f.batches.map((b) => b.id))
  }, 60_000)

  it(
    "status shows validating → in_progress → completed; collect before the end exits 75 and keeps nothing half-done",
    async () => {
      const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE), inProgressPolls: 1 })
      const out = tmpOut()
      const r = await runCli(["generate", "-n", "3", "--out", out, "--backend", "batch"], { env: env(f) })
      expect(r.status, r.stderr).toBe(0)
      const runDir = r.stdout.trim()
      expect(JSON.parse(readFileSync(join(runDir, "batch.json"), "utf8")).parts[0].status).toBe("validating")
      const seen: Array<string> = []
      const s1 = await runCli(["batch", "status", runDir], { env: env(f) })
      expect(s1.status, s1.stderr).toBe(0)
      seen.push(/part 1 {2}\S+ {2}(\S+)/.exec(s1.stdout)![1])
      const c = await runCli(["batch", "collect", runDir], { env: env(f) })
      expect(c.status, c.stderr).toBe(75)
      expect(c.stderr).toMatch(/still running/)
      expect(existsSync(out)).toBe(false)
      // Each retrieve moves the fake one step (the collect above polled once too).
      for (let i = 0; i < 3; i++) {
        const s = await runCli(["batch", "status", runDir], { env: env(f) })
        expect(s.status, s.stderr).toBe(0)
        seen.push(/part 1 {2}\S+ {2}(\S+)/.exec(s.stdout)![1])
      }
      expect(seen).toEqual(["in_progress", "finalizing", "completed", "completed"])
      const last = await runCli(["batch", "status", runDir], { env: env(f) })
      expect(last.stdout).toMatch(/3\/3 requests done \(0 failed\)/)
      expect(last.stdout).toMatch(/all done: collect with/)
      const done = await runCli(["batch", "collect", runDir], { env: env(f) })
      expect(done.status, done.stderr).toBe(0)
      expect(readJsonl(out)).toHaveLength(3)
    },
    60_000
  )

  it(
    "an expired batch keeps what completed; its expired and failed lines are retried online at normal price",
    async () => {
      const failing = new Set([3])
      const expiring = new Set([5, 6])
      const f = await fake({
        lines: (ctx) => {
          const k = sampleNumberOf(ctx.body)!
          if (failing.has(k)) return lineServerError()
          if (expiring.has(k)) return lineSkip()
          return lineAnswer(validTaskFor(ctx), USAGE)
        },
        finalStatus: () => "expired",
        online: (ctx) => answer(validTaskFor(ctx), USAGE)
      })
      const out = tmpOut()
      const r = await runCli(["generate", "-n", "8", "--out", out, "--backend", "batch", "--wait", ...FAST], {
        env: env(f)
      })
      expect(r.status, r.stderr).toBe(0)
      expect(r.stderr).toMatch(/batch lines failed: 2 transient \(.*batch_expired.*\); 1 transient \(.*HTTP 500/)
      expect(r.stderr).toMatch(/retried online \(normal price\)/)
      expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
      // The three requests went online, unchanged: first attempts, the very bodies of the batch lines.
      expect(f.online.requests.map((q) => sampleNumberOf(q.body)).sort()).toEqual([3, 5, 6])
      for (const q of f.online.requests) {
        expect(q.body).toEqual(f.batches[0].lines.find((l) => sampleNumberOf(l.body) === sampleNumberOf(q.body)).body)
      }
      expect(f.batches).toHaveLength(1)
      const runDir = r.stdout.trim()
      // The raw output and error files are kept in the run directory.
      expect(readJsonl(join(runDir, "batch_001_errors.jsonl"))).toHaveLength(3)
      const manifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"))
      expect(manifest.status).toBe("completed")
      // 5 answers at batch price, 3 online and the subjects stage at the normal price (failed lines are free).
      expect(manifest.cost_usd).toBeCloseTo(
        onlineCost(USAGE, 5) / 2 + onlineCost(USAGE, 3) + onlineCost(STAGE_USAGE, 1),
        10
      )
    },
    90_000
  )

  it(
    "a batch that expired without answering anything is reported; --resubmit sends its samples again as a batch",
    async () => {
      const f = await fake({
        // Batch 2 (samples 3 and 4) expires before running any line.
        lines: (ctx) => (ctx.batchNo === 2 ? lineSkip() : lineAnswer(validTaskFor(ctx), USAGE)),
        finalStatus: (no) => (no === 2 ? "expired" : "completed")
      })
      const out = tmpOut()
      const r = await runCli(
        ["generate", "-n", "4", "--out", out, "--backend", "batch", "--batch-max-requests", "2", "--wait", ...FAST],
        { env: env(f) }
      )
      expect(r.status).toBe(1)
      expect(r.stderr).toMatch(/made 2 of 4 valid rows/)
      expect(r.stderr).toMatch(/2 samples have no batch answer \(2 expired \(their batch expired without answering/)
      expect(r.stderr).toMatch(/--resubmit/)
      expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2])
      const runDir = r.stdout.trim()
      expect(JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8")).status).toBe("incomplete")
      expect(f.online.requests).toHaveLength(0)

      const again = await runCli(["batch", "collect", runDir, "--resubmit", "--wait", ...FAST], { env: env(f) })
      expect(again.status, again.stderr).toBe(0)
      expect(f.batches).toHaveLength(3)
      expect(f.batches[2].lines.map((l) => sampleNumberOf(l.body)).sort()).toEqual([3, 4])
      // The resubmitted lines are the very same requests (same custom_id and body).
      for (const line of f.batches[2].lines) {
        expect(line).toEqual(f.batches[1].lines.find((l) => l.custom_id === line.custom_id))
      }
      expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2, 3, 4])
      expect(JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8")).status).toBe("completed")
      expect(f.online.requests).toHaveLength(0)
    },
    90_000
  )

  it("a batch that fails validation is reported with its errors and no rows", async () => {
    const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx)), finalStatus: () => "failed" })
    const out = tmpOut()
    const r = await runCli(["generate", "-n", "2", "--out", out, "--backend", "batch", "--wait", ...FAST], {
      env: env(f)
    })
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/ended failed/)
    expect(r.stderr).toMatch(/the fake was told to fail this batch/)
    expect(r.stderr).toMatch(/none of the 2 samples has a batch answer/)
    expect(existsSync(out)).toBe(false)
  }, 60_000)

  it("--repairs online: an invalid plan from the batch is repaired through the live API at normal price", async () => {
    const f = await fake({
      lines: (ctx) => lineAnswer(sampleNumberOf(ctx.body) === 2 ? invalidTaskText(2) : validTaskFor(ctx), USAGE),
      online: (ctx) => answer(validTaskFor(ctx), USAGE)
    })
    const out = tmpOut()
    const r = await runCli(["generate", "-n", "4", "--out", out, "--backend", "batch", "--wait", ...FAST], {
      env: env(f)
    })
    expect(r.status, r.stderr).toBe(0)
    expect(f.online.requests).toHaveLength(1)
    expect(isRepairRequest(f.online.requests[0].body)).toBe(true)
    expect(JSON.stringify(f.online.requests[0].body.input)).toContain("fmp_get_quote")
    const rows = readJsonl(out)
    expect(rows.map(sampleOfRow)).toEqual([1, 2, 3, 4])
    expect(JSON.parse(rows[1].extra_info.task_metadata).repaired).toBe(true)
    const runDir = r.stdout.trim()
    const manifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"))
    // 4 answers at batch price + 1 repair and the subjects stage at the normal price.
    expect(manifest.tokens.input).toBe(5 * USAGE.input + STAGE_USAGE.input)
    expect(manifest.cost_usd).toBeCloseTo(
      onlineCost(USAGE, 4) / 2 + onlineCost(USAGE, 1) + onlineCost(STAGE_USAGE, 1),
      10
    )
    // Both calls of sample 2 are archived: the batch answer, then the online repair.
    const archives = archiveRecords(runDir).map((a) => a.file).filter((x) => x.startsWith("task_0002_"))
    expect(archives).toEqual(["task_0002_c01.json", "task_0002_c02.json"])
  }, 60_000)

  it("a sample that fails in a batch run fails in its rebuild too, counted as the run counted it", async () => {
    const f = await fake({
      lines: (ctx) => lineAnswer(sampleNumberOf(ctx.body) === 2 ? invalidTaskText(2) : validTaskFor(ctx), USAGE)
    })
    const out = tmpOut()
    const r = await runCli(
      ["generate", "-n", "4", "--out", out, "--backend", "batch", "--repairs", "batch", "--wait", ...FAST],
      { env: env(f) }
    )
    expect(r.status).toBe(1)
    const counts = (stderr: string) => /(\d+) rejected attempts, (\d+) failed samples/.exec(stderr)?.slice(1)
    expect(counts(r.stderr)?.[1]).toBe("1")
    const runDir = /archive (\S+)/.exec(r.stderr)?.[1] ?? ""
    // The advice is what retries a batch run's failed samples (--resume of a batch run is refused).
    const final = r.stderr.trim().split("\n").at(-1)!
    expect(final).toContain(
      `1 samples failed after 3 attempts each; run \`skyrl batch collect ${runDir} --retry-failed\` to make them again`
    )
    expect(final).not.toContain("--resume")
    const rebuilt = await runCli(["rebuild", runDir, "--out", `${out}.rebuilt.jsonl`])
    expect(rebuilt.status, rebuilt.stderr).toBe(0)
    expect(counts(rebuilt.stderr)).toEqual(counts(r.stderr))
    expect(readFileSync(`${out}.rebuilt.jsonl`, "utf8")).toBe(readFileSync(out, "utf8"))
  }, 60_000)

  it("--repairs batch: repairs go out as a follow-up batch, collected in the same --wait", async () => {
    const f = await fake({
      lines: (ctx) =>
        lineAnswer(
          sampleNumberOf(ctx.body) === 2 && !isRepairRequest(ctx.body) ? invalidTaskText(2) : validTaskFor(ctx),
          USAGE
        )
    })
    const out = tmpOut()
    const r = await runCli(
      ["generate", "-n", "4", "--out", out, "--backend", "batch", "--repairs", "batch", "--wait", ...FAST],
      { env: env(f) }
    )
    expect(r.status, r.stderr).toBe(0)
    expect(f.online.requests).toHaveLength(0)
    expect(f.batches).toHaveLength(2)
    expect(f.batches[1].lines).toHaveLength(1)
    expect(f.batches[1].lines[0].custom_id).toMatch(/:sample-000001-repair$/)
    expect(isRepairRequest(f.batches[1].lines[0].body)).toBe(true)
    const rows = readJsonl(out)
    expect(rows.map(sampleOfRow)).toEqual([1, 2, 3, 4])
    const manifest = JSON.parse(readFileSync(join(r.stdout.trim(), "manifest.json"), "utf8"))
    expect(manifest.cost_usd).toBeCloseTo(onlineCost(USAGE, 5) / 2 + onlineCost(STAGE_USAGE, 1), 10)
    // rebuild prices the batch answers as the run did, at half (it priced them at the online rate).
    const rebuilt = await runCli(["rebuild", r.stdout.trim(), "--out", `${out}.rebuilt.jsonl`])
    expect(rebuilt.status, rebuilt.stderr).toBe(0)
    expect(rebuilt.stderr).toContain(`(they cost the run $${(onlineCost(USAGE, 5) / 2).toFixed(4)})`)
  }, 60_000)

  /** A fake whose batch answers sample 3 with an invalid plan first (one repair); online calls answer validly. */
  const sampleThreeNeedsRepair = () =>
    fake({
      lines: (ctx) =>
        lineAnswer(
          sampleNumberOf(ctx.body) === 3 && !isRepairRequest(ctx.body) ? invalidTaskText(3) : validTaskFor(ctx),
          USAGE
        ),
      online: (ctx) => answer(validTaskFor(ctx), USAGE)
    })

  it(
    "--repairs batch without --wait: exit 75 after submitting the follow-up; a collect meanwhile neither resubmits nor goes online",
    async () => {
      const f = await sampleThreeNeedsRepair()
      const out = tmpOut()
      const r = await runCli(["generate", "-n", "4", "--out", out, "--backend", "batch"], { env: env(f) })
      expect(r.status, r.stderr).toBe(0)
      const runDir = r.stdout.trim()
      f.batches[0].status = "finalizing" // done at the next retrieve
      const first = await runCli(["batch", "collect", runDir, "--repairs", "batch"], { env: env(f) })
      expect(first.status, first.stderr).toBe(75)
      expect(first.stderr).toMatch(
        /follow-up batch submitted: 1 requests \(1 repairs and new attempts, 0 first attempts \(sent again, or never sent\)\)/
      )
      expect(f.batches).toHaveLength(2)
      // Three samples are journaled already; sample 3 waits for its repair.
      expect(readJsonl(join(runDir, "journal.jsonl")).map((e) => e.index).sort()).toEqual([0, 1, 3])
      // Collecting while the follow-up runs: sample 3 is pending, with either repair mode.
      for (const repairs of ["batch", "online"]) {
        const meanwhile = await runCli(["batch", "collect", runDir, "--repairs", repairs], { env: env(f) })
        expect(meanwhile.status, meanwhile.stderr).toBe(75)
        expect(meanwhile.stderr).toMatch(/1 requests are in batches still running/)
      }
      expect(f.batches).toHaveLength(2)
      expect(f.online.requests).toHaveLength(0)
      expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2, 4])
      const done = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })
      expect(done.status, done.stderr).toBe(0)
      expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2, 3, 4])
      expect(f.online.requests).toHaveLength(0)
    },
    90_000
  )

  it(
    "--repairs batch given at submission is what a later collect does (it repaired online, at full price)",
    async () => {
      const f = await sampleThreeNeedsRepair()
      const out = tmpOut()
      const r = await runCli(["generate", "-n", "4", "--out", out, "--backend", "batch", "--repairs", "batch"], {
        env: env(f)
      })
      expect(r.status, r.stderr).toBe(0)
      const runDir = r.stdout.trim()
      expect(JSON.parse(readFileSync(join(runDir, "batch.json"), "utf8")).repairs).toBe("batch")
      // Without the key: said so, without the --llm replay these commands do not have.
      const { OPENAI_API_KEY: _key, ...keyless } = env(f)
      const status = await runCli(["batch", "status", runDir], { env: keyless })
      expect(status.status).toBe(1)
      expect(status.stderr).toContain("OPENAI_API_KEY is not set: a batch run's batches are on OpenAI's Batch API")
      expect(status.stderr).not.toContain("--llm replay")
      f.batches[0].status = "finalizing"
      const collect = await runCli(["batch", "collect", runDir], { env: env(f) })
      expect(collect.status, collect.stderr).toBe(75)
      expect(collect.stderr).toMatch(/follow-up batch submitted: 1 requests/)
      expect(f.online.requests).toHaveLength(0)
      // The follow-up batch answers the repair: nothing goes online.
      const done = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })
      expect(done.status, done.stderr).toBe(0)
      expect(f.online.requests).toHaveLength(0)
    },
    60_000
  )

  it(
    "Ctrl-C during --wait exits 130 and names `batch collect`, not --resume (refused for a batch run)",
    async () => {
      const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE), inProgressPolls: 50 })
      const out = tmpOut()
      const child = spawn(
        process.execPath,
        [BIN, "generate", "-n", "3", "--out", out, "--backend", "batch", "--wait", "--poll-interval", "0.05"],
        { env: cleanEnv(env(f)), stdio: ["ignore", "pipe", "pipe"] }
      )
      let stderr = ""
      let stdout = ""
      child.stderr.on("data", (d) => (stderr += d))
      child.stdout.on("data", (d) => (stdout += d))
      while (!(f.batches.length === 1 && f.batches[0].polls >= 2)) await new Promise((r) => setTimeout(r, 10))
      child.kill("SIGINT")
      const code = await new Promise<number | null>((resolve) => child.on("close", resolve))
      expect(code, stderr).toBe(130)
      // The run directory printed on stdout, named (until 2026-12-03 the words RUN_DIR).
      expect(stderr).toContain(
        `skyrl: interrupted; what was submitted is kept: \`skyrl batch collect ${stdout.trim()}\``
      )
    },
    60_000
  )

  it("survives a crash between submit and collect; collecting twice adds nothing", async () => {
    const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE), inProgressPolls: 50 })
    const dir = mkdtempSync(join(tmpdir(), "skyrl-batch-"))
    const out = join(dir, "ds.jsonl")
    const child = spawn(
      process.execPath,
      [BIN, "generate", "-n", "6", "--out", out, "--backend", "batch", "--wait", "--poll-interval", "0.05"],
      { env: cleanEnv(env(f)), stdio: ["ignore", "pipe", "ignore"] }
    )
    let stdout = ""
    child.stdout.on("data", (d) => (stdout += d))
    // Kill it once the batch is in progress (submitted and polled).
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (f.batches.length === 1 && f.batches[0].polls >= 2) {
          clearInterval(timer)
          child.kill("SIGKILL")
          resolve()
        }
      }, 10)
      child.on("exit", () => {
        clearInterval(timer)
        reject(new Error("generate ended before it could be killed"))
      })
    })
    await new Promise((resolve) => child.on("close", resolve))
    const runDir = stdout.trim()
    expect(existsSync(join(runDir, "batch.json"))).toBe(true)
    expect(existsSync(out)).toBe(false)
    // Let the batch finish, then collect in a new process.
    f.batches[0].polls = 100
    const c = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })
    expect(c.status, c.stderr).toBe(0)
    expect(f.batches).toHaveLength(1)
    const rows = readJsonl(out)
    expect(rows.map(sampleOfRow)).toEqual([1, 2, 3, 4, 5, 6])
    const downloads = f.requests.filter((q) => q.path.endsWith("/content")).length
    const before = readFileSync(out, "utf8")
    const mtime = statSync(join(runDir, "journal.jsonl")).mtimeMs
    const twice = await runCli(["batch", "collect", runDir], { env: env(f) })
    expect(twice.status, twice.stderr).toBe(0)
    expect(readFileSync(out, "utf8")).toBe(before)
    expect(statSync(join(runDir, "journal.jsonl")).mtimeMs).toBe(mtime)
    expect(f.requests.filter((q) => q.path.endsWith("/content")).length).toBe(downloads)
    expect(f.online.requests).toHaveLength(0)
  }, 90_000)

  /** A fake whose file uploads are refused (400) until `allowUploads()`. */
  const refusingUploads = async () => {
    let refuse = true
    const f = await fake({
      lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE),
      fault: ({ method, path }) =>
        refuse && method === "POST" && path.endsWith("/files")
          ? { status: 400, body: { error: { message: "upload refused for the test", param: null, code: null } } }
          : undefined
    })
    return { f, allowUploads: () => void (refuse = false) }
  }

  it(
    "generate --resume (with or without --force) of a batch run names `batch collect`, and sends nothing",
    async () => {
      const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
      const out = tmpOut()
      const r = await runCli(["generate", "-n", "3", "--out", out, "--backend", "batch"], { env: env(f) })
      expect(r.status, r.stderr).toBe(0)
      const runDir = r.stdout.trim()
      for (const force of [[], ["--force"]]) {
        const g = await runCli(["generate", "-n", "3", "--out", out, "--resume", ...force, "--llm", "openai"], {
          env: env(f)
        })
        expect(g.status).toBe(2)
        expect(g.stderr).toContain(`skyrl batch collect ${runDir}`)
      }
      expect(f.online.requests).toHaveLength(0)
      expect(f.batches).toHaveLength(1)
    },
    60_000
  )

  it(
    "an inventory file edited between submit and collect: collect builds the requests from the run's own copy",
    async () => {
      const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
      const out = tmpOut()
      const inv = join(out, "..", "inv.json")
      const text = readFileSync(join(__dirname, "..", "data", "inventory", "finance-mcp.json"), "utf8")
      writeFileSync(inv, text)
      const args = ["generate", "-n", "3", "--out", out, "--backend", "batch", "--inventory", inv]
      const r = await runCli(args, { env: env(f) })
      expect(r.status, r.stderr).toBe(0)
      // One word of one tool's description: built from this file, every request would differ from the one answered.
      writeFileSync(inv, text.replace("Get real-time stock quote", "Get a real-time stock quote"))
      const c = await runCli(["batch", "collect", r.stdout.trim(), "--wait", ...FAST], { env: env(f) })
      expect(c.status, c.stderr).toBe(0)
      expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2, 3])
      expect(f.batches).toHaveLength(1)
      expect(f.online.requests).toHaveLength(0)
    },
    60_000
  )

  /** A generate run of `n` samples submitted as one batch, completed: its output file, to edit before collecting. */
  const completedBatch = async (n: number) => {
    const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
    const out = tmpOut()
    const r = await runCli(["generate", "-n", String(n), "--out", out, "--backend", "batch"], { env: env(f) })
    expect(r.status, r.stderr).toBe(0)
    const runDir = r.stdout.trim()
    const s = await runCli(["batch", "status", runDir, "--wait", ...FAST], { env: env(f) })
    expect(s.status, s.stderr).toBe(0)
    const id = f.batches[0].outputFileId!
    return { f, out, runDir, id, file: f.files.get(id)! }
  }

  it("an output line that is not JSON is named (file, line); the other samples' rows are written", async () => {
    const { f, out, runDir, id, file } = await completedBatch(3)
    const lines = file.content.split("\n")
    lines[1] = lines[1].slice(0, 40) // cut short: not JSON
    f.files.set(id, { ...file, content: lines.join("\n") })
    const c = await runCli(["batch", "collect", runDir], { env: env(f) })
    expect(c.status).toBe(1)
    expect(c.stderr).toMatch(/batch_001_output\.jsonl line 2: not JSON/)
    expect(readJsonl(out)).toHaveLength(2)
  }, 60_000)

  it(
    "a line for a custom_id the run never submitted is named and ignored; one cut short is said unreadable",
    async () => {
      const { f, out, runDir, id, file } = await completedBatch(2)
      const lines = file.content.trim().split("\n")
      const stranger = JSON.stringify({ ...JSON.parse(lines[0]), custom_id: "another-run:sample-000009" })
      // The second line cut short after its custom_id (as a download cut short would leave the last line).
      f.files.set(id, { ...file, content: `${lines[0]}\n${stranger}\n${lines[1].slice(0, 150)}\n` })
      const c = await runCli(["batch", "collect", runDir], { env: env(f) })
      expect(c.status, c.stderr).toBe(1)
      expect(c.stderr).toMatch(
        /1 lines of the batch output files are for requests this run never submitted.*another-run:sample-000009/
      )
      expect(readJsonl(out)).toHaveLength(1)
      // Its sample is said to have an unreadable line, not to be unanswered by a completed batch.
      expect(c.stderr).toMatch(/1 samples have no batch answer \(1 their line in the batch output is unreadable/)
    },
    60_000
  )

  it("an interrupted submission (upload refused) is kept, and `batch status` finishes it", async () => {
    const { f, allowUploads } = await refusingUploads()
    const out = tmpOut()
    const r = await runCli(["generate", "-n", "3", "--out", out, "--backend", "batch"], { env: env(f) })
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/upload refused for the test/)
    expect(r.stderr).toMatch(/what was prepared is kept/)
    const raw = join(out, "..", "raw_llm")
    const runDir = join(raw, readdirSync(raw)[0])
    const state = JSON.parse(readFileSync(join(runDir, "batch.json"), "utf8"))
    expect(state.parts).toHaveLength(1)
    expect(state.parts[0].batch_id).toBeNull()
    expect(f.batches).toHaveLength(0)
    allowUploads()
    const s = await runCli(["batch", "status", runDir], { env: env(f) })
    expect(s.status, s.stderr).toBe(0)
    expect(f.batches).toHaveLength(1)
    expect(f.batches[0].lines).toHaveLength(3)
    const c = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })
    expect(c.status, c.stderr).toBe(0)
    expect(readJsonl(out)).toHaveLength(3)
  }, 60_000)

  it("a submission that stopped while preparing its parts: collect sends the samples never sent, once", async () => {
    // The state a kill leaves while the parts are prepared: part 3's requests are in requests.jsonl, its
    // part is not in batch.json (nothing of it was uploaded). Before: its samples were "no answer (batch
    // not submitted)" until `--resubmit`, and the run ended incomplete.
    const { f, allowUploads } = await refusingUploads()
    const out = tmpOut()
    const args = ["generate", "-n", "6", "--out", out, "--backend", "batch", "--batch-max-requests", "2"]
    expect((await runCli(args, { env: env(f) })).status).toBe(1)
    allowUploads()
    const raw = join(out, "..", "raw_llm")
    const runDir = join(raw, readdirSync(raw)[0])
    const state = JSON.parse(readFileSync(join(runDir, "batch.json"), "utf8"))
    expect(state.parts).toHaveLength(3)
    writeFileSync(join(runDir, "batch.json"), JSON.stringify({ ...state, parts: state.parts.slice(0, 2) }, null, 2))
    rmSync(join(runDir, "batch_003_input.jsonl"))
    // status says so too (before: `4 requests ... in 2 batches`, and not a word of the 2 others).
    const st = await runCli(["batch", "status", runDir], { env: env(f) })
    expect(st.status, st.stderr).toBe(0)
    expect(st.stdout).toMatch(/2 of the run's 6 samples were never sent .*`skyrl batch collect .*` sends them/)
    const c = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })
    expect(c.status, c.stderr).toBe(0)
    expect(c.stderr).toMatch(/2 samples were never sent/)
    expect(readJsonl(out).map(sampleOfRow).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6])
    const sent = f.batches.flatMap((b) => b.lines.map((l: any) => l.custom_id))
    expect(sent).toHaveLength(6)
    expect(new Set(sent).size).toBe(6)
    expect(f.online.requests).toHaveLength(0)
  }, 90_000)

  it("`batch status` while another process holds the run (a collect) sends nothing and writes nothing", async () => {
    // Before: status finished the submission beside the collect that was finishing it too (each from its
    // own copy of batch.json), so a part could get two batches: paid twice.
    const { f, allowUploads } = await refusingUploads()
    const out = tmpOut()
    const r = await runCli(["generate", "-n", "3", "--out", out, "--backend", "batch"], { env: env(f) })
    expect(r.status).toBe(1)
    allowUploads()
    const raw = join(out, "..", "raw_llm")
    const runDir = join(raw, readdirSync(raw)[0])
    const before = readFileSync(join(runDir, "batch.json"), "utf8")
    const holder = { pid: process.pid, host: hostname(), command: "collect", since: new Date().toISOString() }
    writeFileSync(join(runDir, "lock"), JSON.stringify(holder) + "\n")
    const held = await runCli(["batch", "status", runDir], { env: env(f) })
    expect(held.status, held.stderr).toBe(0)
    expect(held.stderr).toMatch(/in use by another skyrl process .*"command":"collect".*nothing was sent/s)
    expect(held.stdout).toMatch(/part 1 {2}\(not created\)/)
    expect(f.requests.filter((q) => q.method === "POST")).toHaveLength(1) // the refused upload only
    expect(readFileSync(join(runDir, "batch.json"), "utf8")).toBe(before)
    expect(readFileSync(join(runDir, "lock"), "utf8")).toBe(JSON.stringify(holder) + "\n")
    rmSync(join(runDir, "lock"))
    const s = await runCli(["batch", "status", runDir], { env: env(f) })
    expect(s.status, s.stderr).toBe(0)
    expect(f.batches).toHaveLength(1)
    expect(existsSync(join(runDir, "lock"))).toBe(false)
  }, 60_000)

  it(
    "refuses --backend batch with --llm replay, and `batch collect` on a directory that is not a batch run",
    async () => {
      const out = tmpOut()
      const r = await runCli(["generate", "-n", "2", "--out", out, "--backend", "batch", "--llm", "replay"])
      expect(r.status).not.toBe(0)
      expect(r.stderr).toMatch(/cannot replay/)
      const c = await runCli(["batch", "collect", join(out, "..")], { env: { OPENAI_API_KEY: "sk-x" } })
      expect(c.status).toBe(2) // a usage error: the RUN_DIR given is not a batch run's
      expect(c.stderr).toMatch(/batch\.json: no such file/)
    },
    30_000
  )

  it("a run directory with a space and a quote is named in the commands it suggests so that they paste", async () => {
    const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE), inProgressPolls: 1_000_000 })
    const base = mkdtempSync(join(tmpdir(), "skyrl-batch-")) // letters, digits and - only
    mkdirSync(join(base, "it's my runs"))
    const out = join(base, "it's my runs", "ds.jsonl")
    const r = await runCli(["generate", "-n", "2", "--out", out, "--backend", "batch"], { env: env(f) })
    expect(r.status, r.stderr).toBe(0)
    const runDir = r.stdout.trim()
    expect(runDir).toBe(join(base, "it's my runs", "raw_llm", basename(runDir)))
    // Before: `skyrl batch status /tmp/skyrl-batch-X/it's my runs/raw_llm/ID`, three words and an open quote.
    const word = `'${base}/it'\\''s my runs/raw_llm/${basename(runDir)}'`
    expect(r.stderr).toContain(
      `check with \`skyrl batch status ${word}\`, collect with \`skyrl batch collect ${word}\``
    )
    expect(execFileSync("sh", ["-c", `printf %s ${word}`], { encoding: "utf8" })).toBe(runDir)
    const c = await runCli(["batch", "collect", runDir], { env: env(f) })
    expect(c.status, c.stderr).toBe(75) // still running: collect again
    expect(c.stderr).toContain(`run \`skyrl batch collect ${word}\` again when it is done`)
  }, 30_000)
})

describe("enrich --backend batch against the fake Batch API", () => {
  const SHAREGPT = join(__dirname, "fixtures", "sharegpt", "sample_data.json")
  // Read independently of src/skyrl/sources.ts: the source prompts and each prompt's <tools> names.
  const sharegpt: Array<Array<{ from: string; value: string }>> = JSON.parse(readFileSync(SHAREGPT, "utf8"))
  const toolNames = (system: string): Array<string> => {
    const at = system.lastIndexOf("<tools>")
    return JSON.parse(system.slice(at + 7, system.indexOf("</tools>", at))).map((t: any) => t.name)
  }

  it(
    "--limit 3 --inventory-from-prompt --wait: 3 rows with the source prompts, no online call; status and a second collect work",
    async () => {
      const f = await fake({ lines: (ctx) => lineAnswer(planAnswer(ctx), USAGE) })
      const out = tmpOut()
      const r = await runCli(
        [
          "enrich",
          SHAREGPT,
          "--out",
          out,
          "--limit",
          "3",
          "--inventory-from-prompt",
          "--backend",
          "batch",
          "--wait",
          ...FAST
        ],
        { env: env(f) }
      )
      expect(r.status, r.stderr).toBe(0)
      const runDir = r.stdout.trim()
      expect(JSON.parse(readFileSync(join(runDir, "batch.json"), "utf8")).command).toBe("enrich")
      expect(f.batches).toHaveLength(1)
      expect(f.batches[0].lines).toHaveLength(3)
      expect(f.online.requests).toHaveLength(0)
      const rows = readJsonl(out)
      expect(rows).toHaveLength(3)
      for (const [i, row] of rows.entries()) {
        expect(row.prompt).toEqual([
          { role: "system", content: sharegpt[i][0].value.trim() },
          { role: "user", content: sharegpt[i][1].value.trim() }
        ])
        const names = toolNames(sharegpt[i][0].value)
        const steps = row.reward_spec.ground_truth.tool_sequence
        expect(steps.length).toBeGreaterThan(0)
        for (const step of steps) {
          expect(step.server).toBe("prompt")
          expect(names).toContain(step.tool)
        }
        expect(JSON.parse(row.extra_info.task_metadata).source_row).toBe(i)
      }
      const s = await runCli(["batch", "status", runDir], { env: env(f) })
      expect(s.status, s.stderr).toBe(0)
      expect(s.stdout).toMatch(/run .*: enrich, 3 requests/)
      const c = await runCli(["batch", "collect", runDir], { env: env(f) })
      expect(c.status, c.stderr).toBe(0)
      expect(readJsonl(out)).toHaveLength(3)
      expect(f.batches).toHaveLength(1)
      expect(f.online.requests).toHaveLength(0)
    },
    60_000
  )

  it("rows that all have a plan: copied, no batch made, exit 0 (as an online enrich copies them)", async () => {
    const f = await fake({ lines: (ctx) => lineAnswer(planAnswer(ctx), USAGE) })
    const out = tmpOut()
    const input = join(out, "..", "planned.jsonl")
    const source = readJsonl(join(__dirname, "fixtures", "enrich", "skyrl_rows.jsonl")).filter((row) =>
      (row.reward_spec?.ground_truth?.tool_sequence ?? []).length > 0
    )
    expect(source).toHaveLength(2)
    writeFileSync(input, source.map((row) => JSON.stringify(row)).join("\n") + "\n")
    const r = await runCli(["enrich", input, "--out", out, "--backend", "batch", "--wait", ...FAST], {
      env: env(f)
    })
    expect(r.status, r.stderr).toBe(0)
    // The first gives its plan away (prompt/plan-leak): rejected as an online enrich rejects it.
    expect(readJsonl(out).map((row) => row.prompt)).toEqual([source[1].prompt])
    expect(readJsonl(`${out}.rejects.jsonl`).map((x) => [x.row, x.stage])).toEqual([[0, "input"]])
    expect(f.batches).toHaveLength(0)
    expect(f.online.requests).toHaveLength(0)
  }, 60_000)

  it(
    "an inventory file edited between submit and collect: collect builds the requests from the run's own copy",
    async () => {
      // Before: enrich runs kept no inventory.json, so collect refused (exit 1, `changed since the run was
      // submitted`) and the paid batch answers could only be collected by restoring the file; with the bundled
      // inventory changed by an upgrade of skyrl, not at all.
      const f = await fake({ lines: (ctx) => lineAnswer(planAnswer(ctx), USAGE) })
      const out = tmpOut()
      const inv = join(out, "..", "inv.json")
      const text = readFileSync(join(__dirname, "..", "data", "inventory", "finance-mcp.json"), "utf8")
      writeFileSync(inv, text)
      const input = join(__dirname, "fixtures", "enrich", "openai_messages.jsonl")
      const r = await runCli(["enrich", input, "--out", out, "--inventory", inv, "--backend", "batch"], {
        env: env(f)
      })
      expect(r.status, r.stderr).toBe(0)
      const runDir = r.stdout.trim()
      expect(existsSync(join(runDir, "inventory.json"))).toBe(true)
      writeFileSync(inv, text.replace("Get real-time stock quote", "Get a real-time stock quote"))
      const c = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })
      expect(c.status, c.stderr).toBe(0)
      expect(readJsonl(out)).toHaveLength(2)
      expect(f.batches).toHaveLength(1)
      expect(f.online.requests).toHaveLength(0)
      // The run's own copy is checked too: edited, collect refuses it, naming it.
      const kept = join(runDir, "inventory.json")
      writeFileSync(kept, readFileSync(kept, "utf8").replace("Get real-time stock quote", "Get a stock quote"))
      const again = await runCli(["batch", "collect", runDir], { env: env(f) })
      expect(again.status).toBe(1)
      expect(again.stderr).toContain(`${kept}: changed since the run was submitted`)
    },
    60_000
  )

  it("collect refuses an input file changed since submission: nothing sent, nothing written", async () => {
    const f = await fake({ lines: (ctx) => lineAnswer(planAnswer(ctx), USAGE) })
    const out = tmpOut()
    const input = join(out, "..", "chats.json")
    writeFileSync(input, JSON.stringify(sharegpt.slice(0, 2)))
    const args = ["--out", out, "--inventory-from-prompt", "--backend", "batch"]
    const r = await runCli(["enrich", input, ...args], { env: env(f) })
    expect(r.status, r.stderr).toBe(0)
    // Rows added to the input after the submission (its two rows still first).
    writeFileSync(input, JSON.stringify(sharegpt.slice(0, 4)))
    const c = await runCli(["batch", "collect", r.stdout.trim(), "--wait", ...FAST], { env: env(f) })
    expect(c.status).toBe(1)
    expect(c.stderr).toContain(`${input}: changed since the run was submitted`)
    expect(f.batches).toHaveLength(1)
    expect(f.online.requests).toHaveLength(0)
    expect(existsSync(out)).toBe(false)
  }, 60_000)
})
