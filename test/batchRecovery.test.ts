/**
 * Batch runs that never pay twice and finish on their own, end to end (the built CLI against the fake
 * Files/Batches API, test/support/fakeBatch.ts): lines that fail transiently or are refused for their
 * request, crashes at each remote step of a submission, a create that times out after the API accepted
 * it, the enqueued-token queue (`--batch-max-tokens`, refusals), and `--dry-run --backend batch`.
 */
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { basename, dirname, join } from "node:path"
import { describe, expect, it } from "vitest"
import { batchFakes, env, FAST, onlineCost, readJsonl, sampleOfRow, tmpOut, USAGE } from "./support/batchCli.js"
import { BIN, cleanEnv, runCli } from "./support/cli.js"
import type { AcceptedEvent, BatchFake } from "./support/fakeBatch.js"
import { failingLines, lineAnswer, lineFate, STAGE_USAGE } from "./support/fakeBatch.js"
import { answer, hang } from "./support/fakeOpenAI.js"
import { sampleNumberOf, validTaskFor } from "./support/fakeTasks.js"

const { fake } = batchFakes()

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

/** The samples (1-based) whose line of batch `no` the fake made fail this way. */
const fated = (f: BatchFake, no: number, rates: Parameters<typeof lineFate>[3], fate: "transient" | "permanent") => {
  const ids = f.batches[no - 1].lines.map((l) => l.custom_id as string)
  return f.batches[no - 1].lines.filter((l) => lineFate(l.custom_id, ids, no, rates) === fate)
    .map((l) => sampleNumberOf(l.body)!).sort((a, b) => a - b)
}

const manifestOf = (runDir: string) => JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"))
const stateOf = (runDir: string) => JSON.parse(readFileSync(join(runDir, "batch.json"), "utf8"))

describe("lines that fail", () => {
  const N = 20
  const transient = { transient: 0.15 }

  it(
    "15% transient line failures (500, 429, 503): --wait retries them online at normal price and ends with N rows",
    async () => {
      const f = await fake({
        lines: failingLines({ ...transient, answer: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) }),
        online: (ctx) => answer(validTaskFor(ctx), USAGE)
      })
      const out = tmpOut()
      const r = await runCli(
        ["generate", "-n", String(N), "--out", out, "--backend", "batch", "--wait", ...FAST],
        {
          env: env(f)
        }
      )
      expect(r.status, r.stderr).toBe(0)
      const failed = fated(f, 1, transient, "transient")
      expect(failed).toHaveLength(3)
      expect(r.stderr).toMatch(/batch lines failed: .*transient .*retried online \(normal price\)/)
      expect(readJsonl(out).map(sampleOfRow)).toEqual(range(N))
      expect(f.batches).toHaveLength(1)
      // Exactly the failed lines went online, as they were: the same first-attempt bodies.
      expect(f.online.requests.map((q) => sampleNumberOf(q.body)).sort((a, b) => a! - b!)).toEqual(failed)
      for (const q of f.online.requests) {
        expect(q.body).toEqual(f.batches[0].lines.find((l) => sampleNumberOf(l.body) === sampleNumberOf(q.body)).body)
      }
      const runDir = r.stdout.trim()
      const manifest = manifestOf(runDir)
      expect(manifest.status).toBe("completed")
      expect(manifest.counts.valid).toBe(N)
      // From the cost ledger: N - 3 answers at batch price, 3 online and the subjects stage at the normal
      // price; failed lines are free.
      expect(manifest.cost_usd).toBeCloseTo(
        onlineCost(USAGE, N - 3) / 2 + onlineCost(USAGE, 3) + onlineCost(STAGE_USAGE, 1),
        10
      )
      const ledger = readJsonl(join(runDir, "ledger.jsonl"))
      expect(ledger.filter((e) => e.batch && e.status === "ok")).toHaveLength(N - 3)
      expect(ledger.filter((e) => !e.batch && e.status === "ok").map((e) => e.purpose).sort()).toEqual([
        "subjects",
        "task",
        "task",
        "task"
      ])
      expect(ledger.filter((e) => e.batch && e.status !== "ok").map((e) => e.cost_usd)).toEqual([0, 0, 0])
    },
    90_000
  )

  it(
    "15% transient line failures with --repairs batch: retried in a follow-up batch, N rows, nothing online",
    async () => {
      const f = await fake({
        lines: failingLines({ ...transient, answer: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) })
      })
      const out = tmpOut()
      const r = await runCli(
        ["generate", "-n", String(N), "--out", out, "--backend", "batch", "--repairs", "batch", "--wait", ...FAST],
        { env: env(f) }
      )
      expect(r.status, r.stderr).toBe(0)
      expect(r.stderr).toMatch(/retried in a follow-up batch/)
      expect(readJsonl(out).map(sampleOfRow)).toEqual(range(N))
      expect(f.online.requests).toHaveLength(0)
      expect(f.batches).toHaveLength(2)
      // The follow-up holds the failed first attempts, unchanged (same custom_id and body).
      const failed = fated(f, 1, transient, "transient")
      expect(f.batches[1].lines.map((l) => sampleNumberOf(l.body)).sort((a, b) => a! - b!)).toEqual(failed)
      for (const line of f.batches[1].lines) {
        expect(line).toEqual(f.batches[0].lines.find((l) => l.custom_id === line.custom_id))
      }
      expect(r.stderr).toMatch(/follow-up batch submitted: 3 requests \(0 repairs and new attempts, 3 first attempts/)
      expect(manifestOf(r.stdout.trim()).cost_usd).toBeCloseTo(
        onlineCost(USAGE, N) / 2 + onlineCost(STAGE_USAGE, 1),
        10
      )
    },
    90_000
  )

  it("killed while a failed line's online retry is in flight: the next collect records that line once", async () => {
    const proc: { child?: ChildProcess } = {}
    let killed = false
    const f = await fake({
      lines: failingLines({ ...transient, answer: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) }),
      online: (ctx) => {
        if (killed) return answer(validTaskFor(ctx), USAGE)
        killed = true
        // Once the failed lines' records are on disk (they are written as the retries start).
        setTimeout(() => proc.child!.kill("SIGKILL"), 500)
        return hang()
      }
    })
    const out = tmpOut()
    const args = ["generate", "-n", String(N), "--out", out, "--backend", "batch", "--wait", ...FAST]
    proc.child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env(f)), stdio: "ignore" })
    await new Promise((resolve) => proc.child!.on("close", resolve))
    expect(killed).toBe(true)
    const runDir = runDirOf(out)
    const r = await runCli(["batch", "collect", runDir], { env: env(f) })
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out).map(sampleOfRow)).toEqual(range(N))
    const failed = fated(f, 1, transient, "transient")
    const ledger = readJsonl(join(runDir, "ledger.jsonl"))
    // Each failed line once (it was recorded a second time, a call more in every count).
    expect(ledger.filter((e) => e.batch && e.status !== "ok")).toHaveLength(failed.length)
    expect(manifestOf(runDir).counts.calls).toBe(ledger.length)
  }, 90_000)

  for (const repairs of ["online", "batch"] as const) {
    it(`10% of the lines refused with a 400: those samples are made again (--repairs ${repairs}), N rows`, async () => {
      const rates = { permanent: 0.1 }
      const f = await fake({
        lines: failingLines({ ...rates, answer: (ctx) => lineAnswer(validTaskFor(ctx), USAGE) }),
        online: (ctx) => answer(validTaskFor(ctx), USAGE)
      })
      const out = tmpOut()
      const r = await runCli(
        ["generate", "-n", String(N), "--out", out, "--backend", "batch", "--repairs", repairs, "--wait", ...FAST],
        { env: env(f) }
      )
      expect(r.status, r.stderr).toBe(0)
      const refused = fated(f, 1, rates, "permanent")
      expect(refused).toHaveLength(2)
      expect(r.stderr).toMatch(/refused for their request \(the model API rejected the request \(param input\)/)
      expect(readJsonl(out).map(sampleOfRow)).toEqual(range(N))
      // The second attempt of each refused sample (a new request, key -a2), online or in a follow-up batch.
      const again = repairs === "online"
        ? f.online.requests.map((q) => ({ sample: sampleNumberOf(q.body), id: "" }))
        : f.batches[1].lines.map((l) => ({ sample: sampleNumberOf(l.body), id: l.custom_id as string }))
      expect(again.map((a) => a.sample).sort((a, b) => a! - b!)).toEqual(refused)
      if (repairs === "batch") {
        expect(f.online.requests).toHaveLength(0)
        for (const a of again) expect(a.id).toMatch(/:sample-\d{6}-a2$/)
        expect(f.batches).toHaveLength(2)
      } else expect(f.batches).toHaveLength(1)
      // Each refused attempt is a reject with the API's message.
      const rejects = readJsonl(`${out}.rejects.jsonl`)
      expect(rejects.map((j) => j.index + 1).sort((a, b) => a - b)).toEqual(refused)
      for (const j of rejects) expect(j.reasons.join(" ")).toMatch(/the fake refuses this request/)
    }, 90_000)
  }
})

/** Runs the CLI and kills it (SIGKILL) from the fake's `accepted` hook at the first event of `kind`. */
const killAt = async (kind: AcceptedEvent["kind"], args: ReadonlyArray<string>) => {
  const proc: { child?: ChildProcess } = {}
  let killed = false
  const f = await fake({
    lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE),
    accepted: (event) => {
      if (event.kind !== kind || killed) return
      killed = true
      proc.child!.kill("SIGKILL")
      return "hang"
    }
  })
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env(f)), stdio: "ignore" })
  proc.child = child
  const status = await new Promise<number | null>((resolve) => child.on("close", resolve))
  return { f, status, killed }
}

const runDirOf = (out: string) => {
  const raw = join(dirname(out), "raw_llm")
  return join(raw, readdirSync(raw)[0])
}

/** Exactly one batch per part of the run, and no input file uploaded twice. */
const expectNothingTwice = (f: BatchFake, runDir: string, parts: number) => {
  const runId = basename(runDir)
  expect(Object.fromEntries(f.batchesPerPart())).toEqual(
    Object.fromEntries(range(parts).map((p) => [`${runId}:${p}`, 1]))
  )
  expect([...f.uploadsPerContent().values()]).toEqual(range(parts).map(() => 1))
}

describe("crashes at each remote step of a submission", () => {
  const args = (out: string) => ["generate", "-n", "4", "--out", out, "--backend", "batch", "--batch-max-requests", "2"]

  it("killed after the upload was accepted: `batch status` finds the file instead of uploading it again", async () => {
    const out = tmpOut()
    const { f, killed, status } = await killAt("upload", args(out))
    expect(killed).toBe(true)
    expect(status).not.toBe(0)
    const runDir = runDirOf(out)
    const before = stateOf(runDir).parts[0]
    expect(before.upload_started_at).not.toBeNull()
    expect(before.input_file_id).toBeNull()
    expect(f.files.size).toBe(1)
    const s = await runCli(["batch", "status", runDir], { env: env(f) })
    expect(s.status, s.stderr).toBe(0)
    expect(s.stderr).toMatch(/part 1: its input file file-\w+ was uploaded before; not uploading again/)
    expectNothingTwice(f, runDir, 2)
    expect(stateOf(runDir).parts.map((p: any) => p.batch_id)).toEqual(f.batches.map((b) => b.id))
    const c = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })
    expect(c.status, c.stderr).toBe(0)
    expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2, 3, 4])
    expectNothingTwice(f, runDir, 2)
  }, 90_000)

  it("killed after the create was accepted, before the state write: `batch collect` adopts the batch", async () => {
    const out = tmpOut()
    const { f, killed } = await killAt("create", args(out))
    expect(killed).toBe(true)
    const runDir = runDirOf(out)
    const before = stateOf(runDir).parts[0]
    expect(before.create_started_at).not.toBeNull()
    expect(before.batch_id).toBeNull()
    expect(f.batches).toHaveLength(1)
    const c = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })
    expect(c.status, c.stderr).toBe(0)
    expect(c.stderr).toMatch(/part 1: batch batch-\w+ was created before .*adopting it, not creating another/)
    expect(stateOf(runDir).parts[0].batch_id).toBe(f.batches[0].id)
    expectNothingTwice(f, runDir, 2)
    expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2, 3, 4])
  }, 90_000)

  it("a create and an upload that time out after the API accepted them are looked up, not sent again", async () => {
    const hung = new Set<string>()
    const f = await fake({
      lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE),
      accepted: (event) => {
        if (hung.has(event.kind)) return
        hung.add(event.kind)
        return "hang"
      }
    })
    const out = tmpOut()
    const r = await runCli(
      ["generate", "-n", "3", "--out", out, "--backend", "batch", "--timeout", "1", "--wait", ...FAST],
      { env: env(f) }
    )
    expect(r.status, r.stderr).toBe(0)
    expect([...hung].sort()).toEqual(["create", "upload"])
    expect(f.requests.filter((q) => q.method === "POST")).toHaveLength(2)
    expectNothingTwice(f, r.stdout.trim(), 1)
    expect(readJsonl(out).map(sampleOfRow)).toEqual([1, 2, 3])
  }, 90_000)
})

describe("the enqueued-token queue", () => {
  /** `part 1: 6 requests, 0.15 MB, ~40000 tokens enqueued` lines of a dry run. */
  const dryParts = (stdout: string) =>
    [...stdout.matchAll(/^part (\d+): (\d+) requests, [\d.]+ MB, ~(\d+) tokens enqueued/gm)].map((m) => ({
      requests: Number(m[2]),
      tokens: Number(m[3])
    }))
  const base = ["-n", "6", "--max-output-tokens", "1000", "--backend", "batch"]

  it(
    "--batch-max-tokens splits the parts as the dry run says and keeps the second out of the queue until the first ends",
    async () => {
      const whole = await runCli(["generate", "--out", tmpOut(), "--dry-run", ...base])
      expect(whole.status, whole.stderr).toBe(0)
      const [all] = dryParts(whole.stdout)
      expect(all.requests).toBe(6)
      const limit = String(Math.floor((all.tokens / 6) * 3.5))
      const dry = await runCli(["generate", "--out", tmpOut(), "--dry-run", ...base, "--batch-max-tokens", limit])
      const planned = dryParts(dry.stdout)
      expect(planned.map((p) => p.requests)).toEqual([3, 3])

      let firstWhenSecondCreated: string | undefined
      const f = await fake({
        lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE),
        accepted: (event) => {
          if (event.kind === "create" && event.batch.no === 2) firstWhenSecondCreated = f.batches[0].status
        }
      })
      const out = tmpOut()
      const r = await runCli(["generate", "--out", out, ...base, "--batch-max-tokens", limit, "--wait", ...FAST], {
        env: env(f)
      })
      expect(r.status, r.stderr).toBe(0)
      expect(f.batches.map((b) => b.lines.length)).toEqual([3, 3])
      expect(stateOf(r.stdout.trim()).parts.map((p: any) => p.tokens)).toEqual(planned.map((p) => p.tokens))
      expect(r.stderr).toMatch(
        /part 2 \(~\d+k tokens\) waits for room in the enqueued-token queue of gpt-5-mini: this run's running batches hold/
      )
      expect(firstWhenSecondCreated).toBe("completed")
      expect(readJsonl(out).map(sampleOfRow)).toEqual(range(6))
    },
    90_000
  )

  it(
    "a request larger on its own than --batch-max-tokens goes in a batch of its own (dry run and run), one at a time",
    async () => {
      // Before: the dry run ended `skyrl: internal error: one request counts ~N tokens, more than
      // --batch-max-tokens 1000 allows`, and the submission stopped (exit 1) naming batch.json, with nothing
      // submitted and `batch status finishes it` (it did not: every collect stopped on the same error).
      const three = ["-n", "3", ...base.slice(2), "--batch-max-tokens", "1000"]
      const dry = await runCli(["generate", "--out", tmpOut(), "--dry-run", ...three])
      expect(dry.status, dry.stderr).toBe(0)
      expect(dryParts(dry.stdout).map((p) => p.requests)).toEqual([1, 1, 1])
      expect(dry.stdout).toMatch(/^part 1: .* over --batch-max-tokens 1000 on its own: sent alone/m)
      const previousWhenCreated: Array<string> = []
      const f = await fake({
        lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE),
        accepted: (event) => {
          if (event.kind === "create" && event.batch.no > 1) previousWhenCreated.push(f.batches.at(-2)!.status)
        }
      })
      const out = tmpOut()
      const r = await runCli(["generate", "--out", out, ...three, "--wait", ...FAST], { env: env(f) })
      expect(r.status, r.stderr).toBe(0)
      expect(r.stderr).toMatch(/part 1 is one request of ~\d+k tokens, more than --batch-max-tokens 1000: sent alone/)
      expect(f.batches.map((b) => b.lines.length)).toEqual([1, 1, 1])
      // One at a time: each batch created once the one before it ended.
      expect(previousWhenCreated).toEqual(["completed", "completed"])
      expect(readJsonl(out).map(sampleOfRow)).toEqual(range(3))
      expect(f.online.requests).toHaveLength(0)
    },
    90_000
  )

  it(
    "a batch the API refuses for the enqueued-token limit waits, is created again when a batch ends, and the run finishes",
    async () => {
      // The fake counts 1M tokens a request and allows 4M: one part of 4 fits, two do not.
      const f = await fake({
        lines: (ctx) => lineAnswer(validTaskFor(ctx), USAGE),
        queueLimit: { limit: 4_000_000, tokens: () => 1_000_000 }
      })
      const out = tmpOut()
      const r = await runCli(
        ["generate", "-n", "8", "--out", out, "--backend", "batch", "--batch-max-requests", "4", "--wait", ...FAST],
        { env: env(f) }
      )
      expect(r.status, r.stderr).toBe(0)
      expect(r.stderr).toMatch(
        /part 2 \(~\d+k tokens\) waits for room in the enqueued-token queue of gpt-5-mini: Enqueued token limit reached .*Limit: 4,000,000 enqueued tokens/
      )
      expect(r.stderr).toMatch(/waiting for the queue/)
      expect(f.batches.map((b) => b.status)).toEqual(["completed", "failed", "completed"])
      expect(f.batches[1].errors[0].code).toBe("token_limit_exceeded")
      const runDir = r.stdout.trim()
      const state = stateOf(runDir)
      expect(state.parts[1].refused).toEqual([f.batches[1].id])
      expect(state.parts[1].batch_id).toBe(f.batches[2].id)
      expect(readJsonl(out).map(sampleOfRow)).toEqual(range(8))
      expect(manifestOf(runDir).status).toBe("completed")
    },
    90_000
  )
})

describe("--dry-run --backend batch", () => {
  it("prints the parts, their requests and token estimates, and the cost at batch prices; calls nothing", async () => {
    const r = await runCli([
      "generate",
      "-n",
      "10",
      "--out",
      tmpOut(),
      "--dry-run",
      "--backend",
      "batch",
      "--batch-max-requests",
      "4"
    ])
    expect(r.status, r.stderr).toBe(0)
    const parts = [
      ...r.stdout.matchAll(/^part (\d+): (\d+) requests, [\d.]+ MB, ~(\d+) tokens enqueued \(input ~(\d+)/gm)
    ]
    expect(parts.map((m) => Number(m[2]))).toEqual([4, 4, 2])
    // Every part counts its input plus max_output_tokens (32000 by default) per request.
    for (const m of parts) expect(Number(m[3])).toBe(Number(m[4]) + Number(m[2]) * 32_000)
    const cost =
      /cost at batch prices for 10 requests: ~\$([\d.]+) \(input ~(\d+) tokens, output ~(\d+); online: ~\$([\d.]+)/
        .exec(r.stdout)!
    const input = Number(cost[2])
    expect(input).toBe(parts.reduce((n, m) => n + Number(m[4]), 0))
    // gpt-5-mini: $0.25 in, $2.00 out per 1M; batch half; 8000 output tokens a request at effort high.
    expect(Number(cost[3])).toBe(10 * 8000)
    expect(Number(cost[1])).toBeCloseTo((input * 0.25 + 80_000 * 2) / 1e6 / 2, 4)
    expect(Number(cost[4])).toBeCloseTo(Number(cost[1]) * 2, 3)
  }, 60_000)

  it("enrich: the same section for the rows it would plan", async () => {
    const sharegpt = join(__dirname, "fixtures", "sharegpt", "sample_data.json")
    const r = await runCli([
      "enrich",
      sharegpt,
      "--out",
      tmpOut(),
      "--limit",
      "3",
      "--inventory-from-prompt",
      "--dry-run",
      "--backend",
      "batch"
    ])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/## batches \(--backend batch: \/v1\/responses/)
    expect(r.stdout).toMatch(/^part 1: 3 requests/m)
    expect(r.stdout).toMatch(/cost at batch prices for 3 requests/)
  }, 60_000)
})
