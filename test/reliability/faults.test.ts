/**
 * Fault injection through the OpenAI-compatible fake, for `generate` and `enrich` (one sampling engine,
 * two front ends): each kind of failure alone, then all of them mixed at 30%. Every run must end with N valid rows (checked independently: row contract + plan against the
 * inventory) or a clear budget error, and every failed attempt must be in the archive with its reason:
 * each injected fault is matched to one archive record of the same request body with the expected
 * status and an `error` text, and the archive holds exactly one record per request the fake received.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { canonicalJson } from "../../src/services/llm/answer.js"
import { runCli } from "../support/cli.js"
import { planAnswer, sourceRowOf } from "../support/fakeEnrich.js"
import type { FakeContext, FakeReply, FakeServer } from "../support/fakeOpenAI.js"
import {
  answer,
  connectionReset,
  hang,
  httpError,
  malformedBody,
  rateLimited,
  refusal,
  serverError,
  truncated
} from "../support/fakeOpenAI.js"
import { isRepairRequest, sampleNumberOf, validTaskFor } from "../support/fakeTasks.js"
import { archiveRecords, fakes, llmEnv, prng, readJsonl, rowProblems, runDirIn, tempDir, USAGE } from "./helpers.js"

const servers = fakes()
afterEach(servers.closeAll)

type Backend = "responses" | "chat"

interface Fault {
  readonly name: string
  /** The archive status the failed attempt must carry. */
  readonly status: string
  /** What its `error` text must say. */
  readonly error: RegExp
  /** Whether the fault applies to this request (e.g. the reasoning 400 only when reasoning is sent). */
  readonly applies?: (body: any) => boolean
  readonly reply: (ctx: FakeContext) => FakeReply
}

const hasReasoning = (body: any) => body?.reasoning !== undefined || body?.reasoning_effort !== undefined

const FAULTS: ReadonlyArray<Fault> = [
  {
    name: "429 with Retry-After: 1 (seconds)",
    status: "RateLimited",
    error: /rate limited.*retry after 1\.0 s/,
    reply: () => rateLimited({ seconds: 1 })
  },
  { name: "500", status: "Transient", error: /HTTP 500/, reply: () => serverError(500) },
  {
    name: "connection reset",
    status: "Transient",
    error: /connection|socket|reset|ECONNRESET/i,
    reply: connectionReset
  },
  { name: "a request that never answers (--timeout 0.5)", status: "Timeout", error: /within 0\.5 s/, reply: hang },
  {
    name: "truncated output (incomplete / length)",
    status: "Truncated",
    error: /max_output_tokens|length/,
    reply: (ctx) =>
      truncated(validTaskFor(ctx).slice(0, 40), ctx.endpoint === "responses" ? "max_output_tokens" : "length")
  },
  {
    name: "refusal",
    status: "Refusal",
    error: /refused: I can't help with that/,
    reply: () => refusal("I can't help with that.")
  },
  {
    name: "malformed JSON body",
    status: "Transient",
    error: /JSON|parse|body|Unexpected/i,
    reply: () => malformedBody("<html><body>502 Bad Gateway</body></html>")
  },
  {
    name: "malformed JSON answer text",
    status: "InvalidOutput",
    error: /not valid JSON/,
    reply: (ctx) => answer(validTaskFor(ctx).slice(0, 60), USAGE)
  },
  {
    name: "schema-invalid JSON answer",
    status: "InvalidOutput",
    error: /tool_sequence/,
    reply: (ctx) => {
      const task = JSON.parse(validTaskFor(ctx))
      delete task.tool_sequence
      return answer(JSON.stringify(task), USAGE)
    }
  },
  {
    name: "400 on the reasoning parameter",
    status: "BadRequest",
    error: /reasoning/,
    applies: hasReasoning,
    reply: (ctx) =>
      httpError(
        400,
        ctx.endpoint === "responses"
          ? "Unsupported parameter: 'reasoning.effort' is not supported with this model."
          : "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
        { param: ctx.endpoint === "responses" ? "reasoning.effort" : "reasoning_effort", code: "unsupported_parameter" }
      )
  }
]

interface Injected {
  readonly fault: Fault
  readonly body: any
}

/** The request of an archive record, the way the fake received it (canonical JSON). */
const canonical = (body: unknown) => canonicalJson(body)

/**
 * Asserts the run's archive: one record per request received, and for each injected fault a distinct
 * record of the same request with the fault's status and reason.
 */
const expectArchived = (server: FakeServer, runDir: string, injected: ReadonlyArray<Injected>) => {
  const records = archiveRecords(runDir)
  const calls = server.requests.filter((q) => q.endpoint !== "other")
  const pool = records.map((r) => ({ ...r, key: canonical(r.record.request), used: false }))
  // One archive record per request received. A request the client gave up on before the fake read it
  // (under load, with --timeout 0.5) is archived as a timeout the fake never logged: the only kind of
  // record that may have no request.
  const received = pool.map(() => false)
  for (const q of calls) {
    const key = canonical(q.body)
    const i = pool.findIndex((r, j) => !received[j] && r.key === key)
    expect(i, "an archive record for each request received").toBeGreaterThanOrEqual(0)
    received[i] = true
  }
  pool.forEach((r, j) => {
    if (!received[j]) expect(r.record.status, "a record without a request received").toBe("Timeout")
  })
  for (const { body, fault } of injected) {
    const key = canonical(body)
    const match = pool.find((r) => !r.used && r.key === key && r.record.status === fault.status)
    expect(match, `an archive record (status ${fault.status}) for the injected "${fault.name}"`).toBeDefined()
    match!.used = true
    expect(typeof match!.record.error).toBe("string")
    expect(match!.record.error).toMatch(fault.error)
  }
  for (const { record } of records) {
    expect(typeof record.status).toBe("string")
    if (record.status !== "ok") expect(record.error, `${record.status} has a reason`).toMatch(/\S/)
  }
  return records
}

/**
 * Model flags of a run. `--timeout 0.5` (for the request that never answers) is given only where that
 * fault can occur; elsewhere 5 s, so a slow CI machine does not add timeouts the test did not inject.
 */
const llmArgs = (backend: Backend, extra: ReadonlyArray<string>) => [
  "--llm",
  "openai",
  "--backend",
  backend,
  "--concurrency",
  "3",
  ...(extra.includes("--timeout") ? [] : ["--timeout", "5"]),
  ...extra
]

// Faults of the task requests: no subjects stage before them (its failure stops the run: test/diversityRun.test.ts).
const generateArgs = (out: string, n: number, backend: Backend, extra: ReadonlyArray<string> = []) => [
  "generate",
  "-n",
  String(n),
  "--out",
  out,
  "--subjects",
  "none",
  ...llmArgs(backend, extra)
]

const TICKERS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM"]

/** A front end of the sampling engine, as the fake sees it. */
interface Command {
  readonly name: "generate" | "enrich"
  /** The command line for n samples into `out` (enrich: writes its n prompts into `dir` first). */
  readonly args: (dir: string, out: string, n: number, backend: Backend, extra?: ReadonlyArray<string>) => Array<string>
  /** 1-based sample number of a request. */
  readonly sampleOf: (body: any) => number | undefined
  /** A valid answer to a request. */
  readonly valid: (ctx: FakeContext) => string
}

const COMMANDS: ReadonlyArray<Command> = [
  {
    name: "generate",
    args: (_dir, out, n, backend, extra = []) => generateArgs(out, n, backend, extra),
    sampleOf: sampleNumberOf,
    valid: validTaskFor
  },
  {
    name: "enrich",
    args: (dir, out, n, backend, extra = []) => {
      const input = join(dir, "prompts.jsonl")
      const prompts = Array.from({ length: n }, (_, i) => ({
        id: `p${i}`,
        messages: [{
          role: "user",
          content: `Get the ${TICKERS[i % TICKERS.length]} quote and its latest headlines (request ${i + 1}).`
        }]
      }))
      writeFileSync(input, prompts.map((x) => JSON.stringify(x)).join("\n") + "\n")
      return ["enrich", input, "--out", out, ...llmArgs(backend, extra)]
    },
    sampleOf: (body) => {
      const row = sourceRowOf(body)
      return row === undefined ? undefined : row + 1
    },
    valid: (ctx) => planAnswer(ctx)
  }
]

const expectRows = (out: string, n: number) => {
  const rows = readJsonl(out)
  expect(rows).toHaveLength(n)
  expect(rowProblems(rows)).toEqual([])
  expect(new Set(rows.map((r) => r.prompt[1].content)).size).toBe(n)
  return rows
}

for (const command of COMMANDS) {
  describe(`${command.name}: each fault alone (first request of every sample fails)`, () => {
    const N = 3
    const sampleNumberOf = command.sampleOf
    for (const fault of FAULTS) {
      // The backend-specific shapes (truncation, the reasoning parameter) on both backends for generate.
      const backends: ReadonlyArray<Backend> =
        command.name === "generate" && (fault.status === "Truncated" || fault.status === "BadRequest")
          ? ["responses", "chat"]
          : ["responses"]
      for (const backend of backends) {
        it(`${fault.name} (${backend}): ${N} valid rows, every failed attempt archived with its reason`, async () => {
          const injected: Array<Injected> = []
          const faulted = new Set<number>()
          const server = await servers.start((ctx) => {
            const k = sampleNumberOf(ctx.body) ?? 0
            if (!faulted.has(k) && (fault.applies?.(ctx.body) ?? true)) {
              faulted.add(k)
              injected.push({ fault, body: ctx.body })
              return fault.reply(ctx)
            }
            return answer(command.valid(ctx), USAGE)
          })
          const dir = tempDir()
          const out = join(dir, "ds.jsonl")
          const r = await runCli(
            command.args(dir, out, N, backend, fault.status === "Timeout" ? ["--timeout", "0.5"] : []),
            { env: llmEnv(server) }
          )
          expect(r.status, r.stderr).toBe(0)
          expectRows(out, N)
          expect(injected.length).toBeGreaterThan(0)
          const runDir = runDirIn(dir)
          const records = expectArchived(server, runDir, injected)
          const manifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"))
          expect(manifest.status).toBe("completed")
          expect(manifest.counts.calls).toBe(records.length)

          if (fault.status === "RateLimited") {
            // The retry waited what the server asked (1 s) before asking again for the same sample.
            for (const { body } of injected) {
              const k = sampleNumberOf(body)
              const times = server.requests.filter((q) => sampleNumberOf(q.body) === k).map((q) => q.time)
              expect(times.length).toBeGreaterThanOrEqual(2)
              expect(times[1] - times[0]).toBeGreaterThanOrEqual(950)
            }
          }
          if (fault.status === "BadRequest") {
            // Resent without the reasoning parameter, and the rest of the run no longer sends it.
            const last = server.requests[server.requests.length - 1]
            expect(hasReasoning(last.body)).toBe(false)
            expect(r.stderr).toMatch(/rejects the reasoning effort parameter/)
          }
          if (fault.status === "Truncated" || fault.status === "Refusal") {
            // The sample was tried again; the rejected attempt is in the rejects file with its reason and archive path.
            const rejects = readJsonl(`${out}.rejects.jsonl`)
            expect(rejects).toHaveLength(N)
            for (const x of rejects) {
              expect(x.reasons.join(" ")).toMatch(fault.error)
              expect(typeof x.raw_output_path).toBe("string")
            }
          }
          if (fault.status === "InvalidOutput") {
            // Repaired once: the repair request carries the invalid answer and what was wrong.
            const repairs = server.requests.filter((q) => isRepairRequest(q.body))
            expect(repairs).toHaveLength(N)
            for (const row of readJsonl(out)) expect(JSON.parse(row.extra_info.task_metadata).repaired).toBe(true)
          }
        }, 30_000)
      }
    }
  })

  describe(`${command.name}: all faults mixed at 30%`, () => {
    const sampleNumberOf = command.sampleOf
    it("ends with N valid rows and every injected fault archived with its reason", async () => {
      const N = 16
      // Decided per (sample, request number) from a seeded PRNG, so the pattern does not depend on how
      // concurrent requests interleave: 30% of requests fail, with a kind drawn from all the faults.
      const decide = (k: number, nth: number): Fault | undefined => {
        const random = prng(8 * 100003 + 1000 * k + nth)
        return random() < 0.3 ? FAULTS[Math.floor(random() * FAULTS.length)] : undefined
      }
      const seen = new Map<number, number>()
      const injected: Array<Injected> = []
      const server = await servers.start((ctx) => {
        const k = sampleNumberOf(ctx.body) ?? 0
        const nth = (seen.get(k) ?? 0) + 1
        seen.set(k, nth)
        const fault = decide(k, nth)
        if (fault !== undefined && (fault.applies?.(ctx.body) ?? true)) {
          injected.push({ fault, body: ctx.body })
          return fault.reply(ctx)
        }
        return answer(command.valid(ctx), USAGE)
      })
      const dir = tempDir()
      const out = join(dir, "ds.jsonl")
      const r = await runCli(
        command.args(dir, out, N, "responses", ["--max-attempts", "5", "--timeout", "0.5"]),
        { env: llmEnv(server) }
      )
      expect(r.status, r.stderr).toBe(0)
      expectRows(out, N)
      const share = injected.length / server.requests.length
      expect(share).toBeGreaterThan(0.15)
      expect(share).toBeLessThan(0.45)
      expect(new Set(injected.map((x) => x.fault.status)).size).toBeGreaterThanOrEqual(6)
      expectArchived(server, runDirIn(dir), injected)
    }, 60_000)
  })
}

describe("generate: a budget that runs out ends with a clear error and keeps what was made", () => {
  it(
    "every request fails: exit 1, a message naming the failed samples and --resume, all attempts archived",
    async () => {
      const server = await servers.start(() => serverError(503))
      const dir = tempDir()
      const out = join(dir, "ds.jsonl")
      const r = await runCli(
        generateArgs(out, 2, "responses", ["--retries", "0", "--max-attempts", "2"]),
        { env: llmEnv(server) }
      )
      expect(r.status).toBe(1)
      expect(r.stderr).toMatch(/0 of 2|2 samples failed/)
      expect(r.stderr).toMatch(/--resume/)
      const runDir = runDirIn(dir)
      const records = archiveRecords(runDir)
      expect(records).toHaveLength(4)
      for (const { record } of records) {
        expect(record.status).toBe("Transient")
        expect(record.error).toMatch(/HTTP 503/)
      }
      const manifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"))
      expect(manifest.status).toBe("incomplete")
      expect(manifest.counts.failed_samples).toBe(2)
    },
    30_000
  )

  it("--max-cost: stops starting calls once spent, keeps the rows made, says why", async () => {
    // Each call costs (1500-1024)*0.25 + 1024*0.025 + 700*2 per 1M = $0.0015446; the cap allows a few.
    const server = await servers.start((ctx) => answer(validTaskFor(ctx), USAGE), 30)
    const dir = tempDir()
    const out = join(dir, "ds.jsonl")
    const r = await runCli(
      // Simple tasks only, as the fake answers: each sample is one call.
      [
        "generate",
        "-n",
        "8",
        "--out",
        out,
        "--llm",
        "openai",
        "--concurrency",
        "1",
        "--max-cost",
        "0.004",
        "--complexities",
        "simple",
        "--subjects",
        "none"
      ],
      { env: llmEnv(server) }
    )
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/--max-cost \$0\.004 reached/)
    const rows = readJsonl(out)
    expect(rows.length).toBe(3)
    expect(rowProblems(rows)).toEqual([])
    expect(server.requests).toHaveLength(3)
    expect(archiveRecords(runDirIn(dir))).toHaveLength(3)
  }, 30_000)

  it("--max-cost with calls in flight: the final line says what the summary says was spent", async () => {
    // Four calls in flight when the cap is reached: they end and are paid for after the stop.
    const server = await servers.start((ctx) => answer(validTaskFor(ctx), USAGE), 200)
    const dir = tempDir()
    const out = join(dir, "ds.jsonl")
    const r = await runCli(
      [
        "generate",
        ...["-n", "12", "--out", out, "--llm", "openai", "--concurrency", "4", "--max-cost", "0.004"],
        ...["--complexities", "simple", "--subjects", "none"]
      ],
      { env: llmEnv(server) }
    )
    expect(r.status).toBe(1)
    const summary = /cost \$(\d+\.\d{4})/.exec(r.stderr)?.[1]
    const spent = /--max-cost \$0\.004 reached \(\$(\d+\.\d{4}) spent\)/.exec(r.stderr)?.[1]
    expect(server.requests.length).toBeGreaterThan(3)
    expect(summary).toBe((server.requests.length * 0.0015446).toFixed(4))
    expect(spent).toBe(summary)
  }, 30_000)
})
