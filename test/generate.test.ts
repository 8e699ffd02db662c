/**
 * `skyrl generate` end to end: the built CLI against the OpenAI-compatible fake on 127.0.0.1.
 */
import { spawn } from "node:child_process"
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { basename, join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { archiveHolds, archiveRecords } from "./support/archive.js"
import { BIN, cleanEnv, runCli } from "./support/cli.js"
import type { FakeReply, FakeServer } from "./support/fakeOpenAI.js"
import {
  answer,
  connectionReset,
  hang,
  httpError,
  malformedBody,
  rateLimited,
  serverError
} from "./support/fakeOpenAI.js"
import { fakes, llmEnv, readJsonl, runDirOf, tempDir, USAGE } from "./support/fakeRun.js"
import {
  invalidTaskText,
  isRepairRequest,
  isTaskRequest,
  sampleNumberOf,
  validTaskFor,
  withStages
} from "./support/fakeTasks.js"
import { restoredRun } from "./support/restoredRun.js"

const servers = fakes()
afterEach(servers.closeAll)
const fake = servers.start

const env = (server: FakeServer, extra: Record<string, string> = {}) => llmEnv(server, "sk-test-generate", extra)

/**
 * An offline run (the bundled recorded answers, no key) of 2 samples to <dir>/proj/ds.jsonl, made once for the
 * tests that rebuild or resume such a run, and put back at that path for each: resolves <dir>.
 */
const offlineRun = restoredRun("skyrl-gen-offline-", async (dir) => {
  mkdirSync(join(dir, "proj"))
  expect((await runCli(["generate", "-n", "2", "--out", join(dir, "proj", "ds.jsonl")])).status).toBe(0)
})

describe("generate against the fake OpenAI server", () => {
  for (const backend of ["responses", "chat"] as const) {
    it(
      `--n 20 with the ${backend} backend writes 20 valid rows, 20 referenced archive files and exact token totals`,
      async () => {
        const server = await fake((ctx) => answer(validTaskFor(ctx), USAGE))
        const out = join(tempDir("skyrl-gen-"), "ds.jsonl")
        const r = await runCli(
          ["generate", "--n", "20", "--out", out, "--llm", "openai", "--backend", backend, "--concurrency", "4"],
          { env: env(server) }
        )
        expect(r.status, r.stderr).toBe(0)
        const rows = readJsonl(out)
        expect(rows).toHaveLength(20)
        expect(new Set(rows.map((x) => x.prompt[1].content)).size).toBe(20)
        const runDir = runDirOf(out)
        expect(archiveRecords(runDir)).toHaveLength(20)
        // Before the tasks, the subjects stage: one more call, archived and counted like the others.
        expect(readdirSync(runDir).filter((f) => f.startsWith("stage_"))).toEqual(["stage_subjects_c01.json"])
        const referenced = rows.map((x) => JSON.parse(x.extra_info.task_metadata).raw_output_path)
        for (const rel of referenced) expect(archiveHolds(join(out, ".."), rel)).toBe(true)
        expect(new Set(referenced).size).toBe(20)
        // Every request went to the chosen endpoint with the configured model, effort and strict schema.
        const all = server.requests.filter((q) => q.endpoint !== "other")
        expect(all).toHaveLength(21)
        const calls = all.filter((q) => isTaskRequest(q.body))
        expect(calls).toHaveLength(20)
        for (const q of calls) {
          expect(q.endpoint).toBe(backend)
          expect(q.body.model).toBe("gpt-5-mini")
          if (backend === "responses") {
            expect(q.body.reasoning).toEqual({ effort: "high" })
            expect(q.body.text.format.strict).toBe(true)
          } else {
            expect(q.body.reasoning_effort).toBe("high")
            expect(q.body.response_format.json_schema.strict).toBe(true)
          }
        }
        // The shared prefix (instructions / system message) is byte-identical across the run.
        const prefixes = new Set(
          calls.map((q) => (backend === "responses" ? q.body.instructions : q.body.messages[0].content))
        )
        expect(prefixes.size).toBe(1)
        const manifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"))
        expect(manifest.status).toBe("completed")
        expect(manifest.counts.valid).toBe(20)
        expect(manifest.tokens).toEqual({
          input: 21 * USAGE.input,
          cached: 21 * USAGE.cached,
          output: 21 * USAGE.output,
          reasoning: 21 * USAGE.reasoning
        })
        // Cost from the price table: gpt-5-mini $0.25 / $0.025 cached / $2.00 output per 1M tokens.
        const expected = (21 * ((USAGE.input - USAGE.cached) * 0.25 + USAGE.cached * 0.025 + USAGE.output * 2)) / 1e6
        expect(manifest.cost_usd).toBeCloseTo(expected, 10)
      },
      60_000
    )
  }

  it("repairs an invalid plan once and keeps the rejected answer in the archive", async () => {
    const server = await fake(withStages(
      (ctx) =>
        answer(isRepairRequest(ctx.body) ? validTaskFor(ctx) : invalidTaskText(sampleNumberOf(ctx.body) ?? 1), USAGE),
      (text) => answer(text, USAGE)
    ))
    const out = join(tempDir("skyrl-gen-"), "ds.jsonl")
    // An earlier run's rejects list does not stay when this run has none.
    writeFileSync(`${out}.rejects.jsonl`, "{\"index\":0,\"reasons\":[\"an earlier run\"]}\n")
    const r = await runCli(["generate", "-n", "3", "--out", out, "--llm", "openai"], { env: env(server) })
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out)).toHaveLength(3)
    expect(readFileSync(`${out}.rejects.jsonl`, "utf8")).toBe("")
    const repairs = server.requests.filter((q) => q.endpoint === "responses" && isRepairRequest(q.body))
    expect(repairs).toHaveLength(3)
    // The repair request tells the model what was wrong, by step, tool and param.
    const text = JSON.stringify(repairs[0].body.input)
    expect(text).toContain("fmp_get_quote")
    expect(text).toMatch(/symbol/)
    const rows = readJsonl(out)
    for (const row of rows) expect(JSON.parse(row.extra_info.task_metadata).repaired).toBe(true)
    expect(archiveRecords(runDirOf(out))).toHaveLength(6)
  }, 60_000)

  it(
    "a literal value its prompt never states goes back to the model; --allow-unstated-literals accepts it",
    async () => {
      // First answers with the prompt's numbers taken out (its plan keeps them: counts, dates), repairs as asked.
      const unstated = (ctx: Parameters<typeof validTaskFor>[0]) => {
        const task = JSON.parse(validTaskFor(ctx))
        return JSON.stringify({ ...task, user_prompt: task.user_prompt.replace(/\d+/g, "some") })
      }
      const server = await fake(withStages(
        (ctx) => answer(isRepairRequest(ctx.body) ? validTaskFor(ctx) : unstated(ctx), USAGE),
        (text) => answer(text, USAGE)
      ))
      const dir = tempDir("skyrl-gen-")
      const out = join(dir, "ds.jsonl")
      const r = await runCli(["generate", "-n", "4", "--out", out, "--llm", "openai"], { env: env(server) })
      expect(r.status, r.stderr).toBe(0)
      const repairs = server.requests.filter((q) => isTaskRequest(q.body) && isRepairRequest(q.body))
      expect(repairs.length).toBeGreaterThan(0)
      expect(JSON.stringify(repairs[0]!.body.input)).toContain("prompt/literal-not-shown")
      const strict = await runCli(["validate", out, "--json"])
      expect(JSON.parse(strict.stdout).rules.find((x: any) => x.id === "prompt/literal-not-shown").count).toBe(0)

      const lenient = join(dir, "lenient.jsonl")
      const before = server.requests.length
      const l = await runCli([
        "generate",
        "-n",
        "4",
        "--out",
        lenient,
        "--llm",
        "openai",
        "--allow-unstated-literals"
      ], {
        env: env(server)
      })
      expect(l.status, l.stderr).toBe(0)
      expect(server.requests.slice(before).filter((q) => isRepairRequest(q.body))).toHaveLength(0)
      const warned = await runCli(["validate", lenient, "--json"])
      expect(JSON.parse(warned.stdout).rules.find((x: any) => x.id === "prompt/literal-not-shown").count)
        .toBeGreaterThan(0)
    },
    60_000
  )

  it(
    "a user message naming a plan tool goes back to the model; --allow-tool-names-in-prompt accepts it",
    async () => {
      // First answers name their first step's tool in the user message; repairs as asked.
      const naming = (ctx: Parameters<typeof validTaskFor>[0]) => {
        const task = JSON.parse(validTaskFor(ctx))
        return JSON.stringify({ ...task, user_prompt: `Use ${task.tool_sequence[0].tool}. ${task.user_prompt}` })
      }
      const server = await fake(withStages(
        (ctx) => answer(isRepairRequest(ctx.body) ? validTaskFor(ctx) : naming(ctx), USAGE),
        (text) => answer(text, USAGE)
      ))
      const dir = tempDir("skyrl-gen-")
      const leaks = async (file: string) =>
        JSON.parse((await runCli(["validate", file, "--json"])).stdout).rules.find((x: any) =>
          x.id === "prompt/user-names-tool"
        ).count
      const out = join(dir, "ds.jsonl")
      const r = await runCli(["generate", "-n", "4", "--out", out, "--llm", "openai"], { env: env(server) })
      expect(r.status, r.stderr).toBe(0)
      const repairs = server.requests.filter((q) => isTaskRequest(q.body) && isRepairRequest(q.body))
      expect(repairs).toHaveLength(4)
      expect(JSON.stringify(repairs[0]!.body.input)).toContain("prompt/user-names-tool")
      expect(await leaks(out)).toBe(0)

      const lenient = join(dir, "lenient.jsonl")
      const before = server.requests.length
      const flags = ["--llm", "openai", "--allow-tool-names-in-prompt"]
      const l = await runCli(["generate", "-n", "4", "--out", lenient, ...flags], { env: env(server) })
      expect(l.status, l.stderr).toBe(0)
      expect(server.requests.slice(before).filter((q) => isRepairRequest(q.body))).toHaveLength(0)
      expect(await leaks(lenient)).toBe(4)
    },
    60_000
  )

  it("a plan still invalid after repair goes to the rejects file and the slot is retried", async () => {
    const invalidFor = new Set<number>([2])
    const server = await fake(withStages((ctx) => {
      const k = sampleNumberOf(ctx.body) ?? 1
      const firstAttempt = !/attempt \d+/.test(JSON.stringify(ctx.body.input ?? ctx.body.messages))
      return answer(invalidFor.has(k) && firstAttempt ? invalidTaskText(k) : validTaskFor(ctx), USAGE)
    }, (text) => answer(text, USAGE)))
    const out = join(tempDir("skyrl-gen-"), "ds.jsonl")
    const r = await runCli(["generate", "-n", "3", "--out", out, "--llm", "openai"], { env: env(server) })
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out)).toHaveLength(3)
    const rejects = readJsonl(`${out}.rejects.jsonl`)
    expect(rejects).toHaveLength(1)
    expect(rejects[0].index).toBe(1)
    expect(rejects[0].reasons.join(" ")).toMatch(/fmp_get_quote/)
    expect(archiveHolds(join(out, ".."), rejects[0].raw_output_path)).toBe(true)
  }, 60_000)

  it(
    "every row check at acceptance: an over-long prompt and a duplicate are rejected with their reasons; exit 0 with N rows",
    async () => {
      const long = `Sample 2: ${"compare every quote with every headline of the week in detail, ".repeat(120)}`
      const prompts = new Map<number, string>()
      const server = await fake((ctx) => {
        const k = sampleNumberOf(ctx.body) ?? 0
        const firstAttempt = !/attempt \d+/.test(JSON.stringify(ctx.body.input ?? ctx.body.messages))
        // Answers that follow the request (focus tool, complexity), with the prompt replaced.
        const task = JSON.parse(validTaskFor(ctx))
        if (k === 1) prompts.set(1, task.user_prompt)
        if (k === 2 && firstAttempt) return answer(JSON.stringify({ ...task, user_prompt: long }), USAGE)
        if (k === 4 && firstAttempt) return answer(JSON.stringify({ ...task, user_prompt: prompts.get(1) }), USAGE)
        return answer(JSON.stringify(task), USAGE)
      })
      const out = join(tempDir("skyrl-gen-"), "ds.jsonl")
      const r = await runCli(
        ["generate", "-n", "5", "--out", out, "--llm", "openai", "--concurrency", "1", "--complexities", "simple"],
        { env: env(server) }
      )
      expect(r.status, r.stderr).toBe(0)
      const rows = readJsonl(out)
      expect(rows).toHaveLength(5)
      expect(new Set(rows.map((x) => x.prompt[1].content)).size).toBe(5)
      const rejects = readJsonl(`${out}.rejects.jsonl`)
      expect(rejects.map((x) => [x.index, x.attempt])).toEqual([[1, 1], [3, 1]])
      expect(rejects[0].reasons.join(" ")).toMatch(/prompt.* over the budget of 1024 prompt tokens/)
      expect(rejects[1].reasons.join(" ")).toMatch(/duplicate\/prompt/)
      // The final check of the written file found nothing.
      expect(r.stderr).not.toMatch(/violation/)
    },
    60_000
  )

  it("ends with N valid rows when 30% of requests fail (429, 500, reset, timeout, malformed)", async () => {
    let n = 0
    const faults: Array<() => FakeReply> = [
      () => rateLimited({ ms: 50 }),
      () => serverError(500),
      () => connectionReset(),
      () => hang(),
      () => answer("{\"task_id\": \"oops\", \"user_prompt\": ", USAGE),
      () => malformedBody("<html>bad gateway</html>")
    ]
    const server = await fake((ctx) => {
      n++
      // Deterministic 30%: 3 of every 10 requests fail, cycling through the fault kinds.
      if (n % 10 < 3) return faults[n % faults.length]()
      return answer(validTaskFor(ctx), USAGE)
    })
    const out = join(tempDir("skyrl-gen-"), "ds.jsonl")
    const r = await runCli(
      ["generate", "-n", "12", "--out", out, "--llm", "openai", "--timeout", "0.5", "--concurrency", "4"],
      { env: env(server) }
    )
    expect(r.status, r.stderr).toBe(0)
    const rows = readJsonl(out)
    expect(rows).toHaveLength(12)
    const runDir = runDirOf(out)
    const records = archiveRecords(runDir).map((a) => a.record)
    const failed = records.filter((x) => x.status !== "ok")
    expect(failed.length).toBeGreaterThan(0)
    for (const f of failed) expect(typeof f.error === "string" || f.status === "InvalidOutput").toBe(true)
  }, 90_000)

  it(
    "survives SIGKILL mid-run: --resume makes exactly N unique rows and never re-requests a journaled sample",
    async () => {
      const server = await fake((ctx) => answer(validTaskFor(ctx), USAGE), 120)
      const dir = tempDir("skyrl-gen-")
      const out = join(dir, "ds.jsonl")
      const args = ["generate", "-n", "16", "--out", out, "--llm", "openai", "--concurrency", "2"]
      const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env(server)), stdio: "ignore" })
      // Kill once a few samples are journaled.
      let journal = ""
      const journaled = await new Promise<Set<number>>((resolve, reject) => {
        const timer = setInterval(() => {
          const raw = join(dir, "raw_llm")
          if (!existsSync(raw)) return
          const runs = readdirSync(raw)
          if (runs.length === 0) return
          journal = join(raw, runs[0], "journal.jsonl")
          if (!existsSync(journal)) return
          const done = readJsonl(journal).filter((e) => e.status === "row")
          if (done.length >= 5) {
            child.kill("SIGKILL")
            clearInterval(timer)
            resolve(new Set(readJsonl(journal).filter((e) => e.status === "row").map((e) => e.index + 1)))
          }
        }, 20)
        child.on("exit", () => {
          clearInterval(timer)
          reject(new Error("the run ended before it could be killed"))
        })
      })
      await new Promise((resolve) => child.on("close", resolve))
      expect(existsSync(out)).toBe(false)
      // Answers archived but not journaled when it was killed are replayed from the archive, not asked again.
      const runDir = runDirOf(out)
      const archived = new Set(
        archiveRecords(runDir).filter((a) => a.record.status === "ok")
          .map((a) => Number(/^task_(\d+)_/.exec(a.file)![1]))
      )
      const before = server.requests.length
      const r = await runCli([...args, "--resume"], { env: env(server) })
      expect(r.status, r.stderr).toBe(0)
      const rows = readJsonl(out)
      expect(rows).toHaveLength(16)
      expect(new Set(rows.map((x) => x.prompt[1].content)).size).toBe(16)
      const again = server.requests.slice(before).map((q) => sampleNumberOf(q.body))
      for (const k of again) expect(journaled.has(k!) || archived.has(k!)).toBe(false)
      expect(again.length).toBe(16 - new Set([...journaled, ...archived]).size)
    },
    90_000
  )

  it("--dry-run calls no model and prints the plan, a request and the estimate", async () => {
    const server = await fake((ctx) => answer(validTaskFor(ctx), USAGE))
    const out = join(tempDir("skyrl-gen-"), "ds.jsonl")
    const r = await runCli(["generate", "-n", "4", "--out", out, "--dry-run"], { env: env(server) })
    expect(r.status, r.stderr).toBe(0)
    expect(server.requests).toHaveLength(0)
    expect(r.stdout).toContain("work plan (4 samples")
    expect(r.stdout).toContain("\"strict\": true")
    expect(r.stdout).toMatch(/cost for 4 samples: ~\$\d/)
    expect(r.stdout).not.toContain("sk-test-generate")
    expect(existsSync(out)).toBe(false)
  })

  it("--servers naming an unknown server says so (not that recorded answers cannot give domains)", async () => {
    const out = join(tempDir("skyrl-gen-"), "ds.jsonl")
    const r = await runCli(["generate", "-n", "2", "--out", out, "--servers", "fmp,nosuch"])
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain("unknown server \"nosuch\" in --servers")
    expect(r.stderr).not.toContain("--domains")
    expect(existsSync(out)).toBe(false)
  })

  it("a key a header cannot carry (a .env file's \\r) is a clear error naming the character, never the key", async () => {
    const out = join(tempDir("skyrl-gen-"), "ds.jsonl")
    const key = "sk-test-7c1e9b2f\r"
    const r = await runCli(["generate", "-n", "1", "--out", out, "--llm", "openai"], {
      env: { OPENAI_API_KEY: key, OPENAI_BASE_URL: "http://127.0.0.1:9/v1" }
    })
    expect(r.status).toBe(1)
    // Was: "skyrl: internal error: Invalid character in header content [\"authorization\"]" once a call was made.
    expect(r.stderr).toContain(
      "OPENAI_API_KEY cannot be sent in an HTTP header: it holds a line end (U+000D) at character 17 of 17 " +
        "(a .env file saved with Windows line ends?)"
    )
    expect(r.stderr + r.stdout).not.toContain("7c1e9b2f")
    expect(existsSync(out)).toBe(false)
  })

  it("runs offline with no key from the bundled recorded answers (the README's main job)", async () => {
    const out = join(tempDir("skyrl-gen-"), "ds.jsonl")
    const r = await runCli(["generate", "-n", "5", "--out", out])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/OPENAI_API_KEY is not set/)
    expect(readJsonl(out)).toHaveLength(5)
  })
})

describe("rebuild", () => {
  it(
    "re-derives a run's dataset from its run directory, equal to what generate wrote (repairs, duplicates)",
    async () => {
      const prompts = new Map<number, string>()
      const server = await fake(
        withStages((ctx) => {
          const k = sampleNumberOf(ctx.body) ?? 0
          const firstAttempt = !/attempt \d+/.test(JSON.stringify(ctx.body.input ?? ctx.body.messages))
          const task = JSON.parse(validTaskFor(ctx))
          if (k === 2) prompts.set(2, task.user_prompt)
          // Sample 6's first answer repeats sample 2's prompt (with its own plan): the run rejects it, and so
          // must rebuild. Sample 2 is answered before sample 6 is asked (concurrency 3, odd samples repaired).
          if (k === 6 && firstAttempt && !isRepairRequest(ctx.body)) {
            return answer(JSON.stringify({ ...task, user_prompt: prompts.get(2) }), USAGE)
          }
          return answer(isRepairRequest(ctx.body) || k % 2 === 0 ? JSON.stringify(task) : invalidTaskText(k), USAGE)
        }, (text) => answer(text, USAGE)),
        30
      )
      const dir = tempDir("skyrl-rebuild-")
      const out = join(dir, "ds.jsonl")
      const r = await runCli(
        // Simple tasks only: the repeated prompt is then judged as a duplicate, not first as off-request.
        [
          "generate",
          "-n",
          "8",
          "--out",
          out,
          "--llm",
          "openai",
          "--raw-gzip",
          "--concurrency",
          "3",
          "--complexities",
          "simple"
        ],
        { env: env(server) }
      )
      expect(r.status, r.stderr).toBe(0)
      expect(readJsonl(`${out}.rejects.jsonl`).map((x) => x.reasons.join(" "))).toEqual([
        expect.stringMatching(/duplicate\/prompt/)
      ])
      const requests = server.requests.length
      const again = join(dir, "rebuilt.jsonl")
      const b = await runCli(["rebuild", runDirOf(out), "--out", again])
      expect(b.status, b.stderr).toBe(0)
      expect(server.requests.length).toBe(requests) // no model call
      expect(readFileSync(again, "utf8")).toBe(readFileSync(out, "utf8"))
      // Its summary says what it did: the run's task answers judged again from the archive, what they cost the run,
      // and that the rejected attempt is not written. Was the engine's line, `wrote 8 rows to ...; 1 rejected
      // attempts, 0 failed samples; 13 calls, tokens ..., cost $...`: calls it never made, rejects it never wrote.
      const answers = server.requests.filter((q) => isTaskRequest(q.body)).length
      expect(b.stderr).toMatch(
        new RegExp(
          `rebuilt 8 rows of run \\S+ \\(it made 8\\) into \\S*rebuilt\\.jsonl, calling no model: ${answers} archived ` +
            "answers judged again \\(they cost the run \\$\\d+\\.\\d{4}\\), 1 rejected attempts, 0 failed samples " +
            "\\(rebuild writes no rejects file\\); archive "
        )
      )
      expect(b.stderr).not.toMatch(/ calls, tokens in /)
      expect(existsSync(`${again}.rejects.jsonl`)).toBe(false)
    },
    60_000
  )

  it("a run with a failed sample: rebuild fails it too and counts it as the run did", async () => {
    const server = await fake(
      withStages(
        (ctx) => answer(sampleNumberOf(ctx.body) === 3 ? invalidTaskText(3) : validTaskFor(ctx), USAGE),
        (text) => answer(text, USAGE)
      ),
      10
    )
    const dir = tempDir("skyrl-rebuild-")
    const out = join(dir, "ds.jsonl")
    const r = await runCli(
      ["generate", "-n", "4", "--out", out, "--llm", "openai", "--complexities", "simple", "--max-attempts", "2"],
      { env: env(server) }
    )
    expect(r.status).toBe(1)
    const counts = (stderr: string) => /(\d+) rejected attempts, (\d+) failed samples/.exec(stderr)?.slice(1)
    expect(counts(r.stderr)).toEqual(["2", "1"]) // sample 3: two attempts (each an answer and its repair)
    const b = await runCli(["rebuild", runDirOf(out), "--out", join(dir, "rebuilt.jsonl")])
    expect(b.status, b.stderr).toBe(0)
    expect(counts(b.stderr)).toEqual(counts(r.stderr))
    expect(readFileSync(join(dir, "rebuilt.jsonl"), "utf8")).toBe(readFileSync(out, "utf8"))
  })

  it("a run directory that lacks answers (an archive cut short or gone) fails with what it made, not exit 0", async () => {
    const out = join(tempDir("skyrl-gen-"), "ds.jsonl")
    expect((await runCli(["generate", "-n", "4", "--out", out])).status).toBe(0)
    const runDir = runDirOf(out)
    const archive = join(runDir, "archive_01.jsonl")
    const lines = readFileSync(archive, "utf8").split("\n").filter((l) => l !== "")
    writeFileSync(archive, lines.slice(0, 3).join("\n") + "\n") // the last answer lost
    const cut = join(runDir, "..", "cut.jsonl")
    const short = await runCli(["rebuild", runDir, "--out", cut])
    expect(short.status).toBe(1)
    expect(short.stderr).toMatch(/rebuilt 3 of the 4 rows run \S+ made into .*cut\.jsonl \(kept as it is\): the run/)
    expect(readJsonl(cut)).toHaveLength(3)
    rmSync(archive)
    const none = join(runDir, "..", "none.jsonl")
    const empty = await runCli(["rebuild", runDir, "--out", none])
    expect(empty.status).toBe(1)
    expect(empty.stderr).toMatch(/rebuilt 0 of the 4 rows run \S+ made; .*none\.jsonl was not written/)
    expect(empty.stderr).not.toMatch(/rebuilt 0 rows .* into/)
    expect(existsSync(none)).toBe(false)
    // An --out already there (an earlier rebuild's) is left as it was, and the error says so.
    writeFileSync(none, "{}\n")
    const again = await runCli(["rebuild", runDir, "--out", none])
    expect(again.status).toBe(1)
    expect(again.stderr).toMatch(
      /rebuilt 0 of the 4 rows run \S+ made; no dataset was written: the \S*none\.jsonl there is an earlier run's, left as it was, and does not match this rebuild \(an empty dataset is never written/
    )
    expect(readFileSync(none, "utf8")).toBe("{}\n")
  })

  it("refuses an --out that is one of the run directory's own files (it wrote rows over journal.jsonl)", async () => {
    const out = join(await offlineRun(), "proj", "ds.jsonl")
    const runDir = runDirOf(out)
    const journal = join(runDir, "journal.jsonl")
    const before = readFileSync(journal, "utf8")
    const r = await runCli(["rebuild", runDir, "--out", join(runDir, ".", "journal.jsonl")])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain("is inside the run directory")
    expect(r.stderr).toContain("(as journal.jsonl), which rebuild only reads")
    expect(readFileSync(journal, "utf8")).toBe(before)
    // A new file there is refused too (the run reads names it does not have yet: archive_02.jsonl, ...).
    const fresh = await runCli(["rebuild", runDir, "--out", join(runDir, "rebuilt.jsonl")])
    expect(fresh.status, fresh.stderr).toBe(2)
    expect(existsSync(join(runDir, "rebuilt.jsonl"))).toBe(false)
  })

  it("a run directory copied under another name: the summary names that directory (it named <parent>/<run_id>, which does not exist)", async () => {
    const dir = join(await offlineRun(), "proj")
    const out = join(dir, "ds.jsonl")
    const copy = join(dir, "kept-run")
    cpSync(runDirOf(out), copy, { recursive: true })
    const r = await runCli(["rebuild", copy, "--out", join(dir, "rebuilt.jsonl")])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toContain(`archive ${copy}\n`)
    // The rows name the archive they were rebuilt from, relative to the output.
    const paths = readJsonl(join(dir, "rebuilt.jsonl")).map((x) =>
      JSON.parse(x.extra_info.task_metadata).raw_output_path
    )
    expect(paths).toEqual([
      "kept-run/archive_01.jsonl#task_0001_c01.json",
      "kept-run/archive_01.jsonl#task_0002_c01.json"
    ])
  })
})

/** Starts `generate` and kills it (SIGKILL) once `samples` samples are journaled; resolves the journaled sample numbers. */
const killAfter = async (args: ReadonlyArray<string>, server: FakeServer, dir: string, samples: number) => {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env(server)), stdio: "ignore" })
  const journaled = await new Promise<Set<number>>((resolve, reject) => {
    const timer = setInterval(() => {
      const raw = join(dir, "raw_llm")
      if (!existsSync(raw) || readdirSync(raw).length === 0) return
      const journal = join(raw, readdirSync(raw)[0], "journal.jsonl")
      if (!existsSync(journal)) return
      const done = readJsonl(journal).filter((e) => e.status === "row")
      if (done.length >= samples) {
        child.kill("SIGKILL")
        clearInterval(timer)
        resolve(new Set(done.map((e) => e.index + 1)))
      }
    }, 20)
    child.on("exit", () => {
      clearInterval(timer)
      reject(new Error("the run ended before it could be killed"))
    })
  })
  await new Promise((resolve) => child.on("close", resolve))
  return journaled
}

describe("--resume checks what it resumes", () => {
  it("a run whose manifest.json does not decode is not passed over: --resume names it and makes nothing", async () => {
    const dir = join(await offlineRun(), "proj")
    const out = join(dir, "ds.jsonl")
    const [runId] = readdirSync(join(dir, "raw_llm"))
    const manifest = join(dir, "raw_llm", runId!, "manifest.json")
    writeFileSync(manifest, readFileSync(manifest, "utf8").replace(/"command": ?"generate"/, "\"command\":7"))
    const resumed = await runCli(["generate", "-n", "2", "--out", out, "--resume"])
    expect(resumed.status).toBe(2)
    // Was: "no earlier generate run ...; starting a new run", which made (and, with a key, paid for) both again.
    expect(resumed.stderr).toContain(`skyrl: --resume: ${manifest}, command: `)
    expect(resumed.stderr).toContain(`mend the file, or move its directory out of ${join(dir, "raw_llm")}`)
    expect(readdirSync(join(dir, "raw_llm"))).toEqual([runId])
  })

  it("a run directory renamed inside raw_llm is not started anew under its run id: --resume names it and makes nothing", async () => {
    // Before: --resume found the run by its manifest but continued raw_llm/<run_id>/, a new empty directory, so
    // it made (and with a model, paid for) every sample again: "2 of 2 samples to make", exit 0.
    const dir = join(await offlineRun(), "proj")
    const out = join(dir, "ds.jsonl")
    const runDir = runDirOf(out)
    const runId = basename(runDir)
    const renamed = join(dir, "raw_llm", "kept")
    renameSync(runDir, renamed)
    const before = readFileSync(out, "utf8")
    const resumed = await runCli(["generate", "-n", "2", "--out", out, "--resume"])
    expect(resumed.status).toBe(2)
    expect(resumed.stderr).toContain(
      `skyrl: --resume: run ${runId} for ${out} is in ${renamed}, which --resume does not continue (it continues ` +
        `${runDir}): rename that directory back to ${runId}`
    )
    expect(readdirSync(join(dir, "raw_llm"))).toEqual(["kept"])
    expect(readFileSync(out, "utf8")).toBe(before)
    // Named back, it resumes: nothing left to make.
    renameSync(renamed, runDir)
    const again = await runCli(["generate", "-n", "2", "--out", out, "--resume"])
    expect(again.status, again.stderr).toBe(0)
    expect(again.stderr).toContain("0 of 2 samples to make")
  })

  it("-n 20 killed, then --resume -n 10 is refused naming the setting; with --force it writes 20", async () => {
    const server = await fake((ctx) => answer(validTaskFor(ctx), USAGE), 100)
    const dir = tempDir("skyrl-resume-")
    const out = join(dir, "ds.jsonl")
    const base = ["generate", "--out", out, "--llm", "openai", "--concurrency", "2"]
    const journaled = await killAfter([...base, "-n", "20"], server, dir, 4)
    const before = server.requests.length
    const refused = await runCli([...base, "-n", "10", "--resume"], { env: env(server) })
    expect(refused.status).toBe(2)
    expect(refused.stderr).toMatch(/--resume: run \S+ was made with other settings: n: 20 in the run, 10 now/)
    expect(server.requests.length).toBe(before)
    expect(existsSync(out)).toBe(false)
    const forced = await runCli([...base, "-n", "10", "--resume", "--force"], { env: env(server) })
    expect(forced.status, forced.stderr).toBe(0)
    const rows = readJsonl(out)
    expect(rows).toHaveLength(20)
    expect(new Set(rows.map((x) => x.prompt[1].content)).size).toBe(20)
    const again = server.requests.slice(before).map((q) => sampleNumberOf(q.body)!)
    for (const k of again) expect(journaled.has(k)).toBe(false)
  }, 90_000)

  it(
    "answers replayed from recordings (--llm replay) cost the run nothing: $0 in its ledger and manifest",
    async () => {
      const server = await fake((ctx) => answer(validTaskFor(ctx), USAGE))
      const dir = tempDir("skyrl-replay-cost-")
      const paid = join(dir, "paid.jsonl")
      const first = await runCli(["generate", "-n", "3", "--out", paid, "--llm", "openai"], { env: env(server) })
      expect(first.status, first.stderr).toBe(0)
      expect(JSON.parse(readFileSync(join(runDirOf(paid), "manifest.json"), "utf8")).cost_usd).toBeGreaterThan(0)
      const free = join(dir, "free", "ds.jsonl")
      const replayed = await runCli([
        "generate",
        "-n",
        "3",
        "--out",
        free,
        "--llm",
        "replay",
        "--replay-dir",
        runDirOf(paid)
      ])
      expect(replayed.status, replayed.stderr).toBe(0)
      expect(replayed.stderr).toContain("cost $0.0000")
      expect(readJsonl(join(runDirOf(free), "ledger.jsonl")).map((l) => l.cost_usd)).toEqual([0, 0, 0])
      expect(JSON.parse(readFileSync(join(runDirOf(free), "manifest.json"), "utf8")).cost_usd).toBe(0)
    },
    60_000
  )

  it(
    "a run stopped by an error about every request (quota, key, model) asks again on --resume (it replayed the error)",
    async () => {
      for (
        const stop of [
          httpError(429, "You exceeded your current quota", { code: "insufficient_quota", type: "insufficient_quota" }),
          httpError(401, "Incorrect API key provided", { code: "invalid_api_key" }),
          httpError(404, "The model `gpt-5-mini` does not exist", { code: "model_not_found" })
        ]
      ) {
        let failFrom = 3
        const server = await fake((ctx) => (ctx.index >= failFrom ? stop : answer(validTaskFor(ctx), USAGE)))
        const out = join(tempDir("skyrl-run-error-"), "ds.jsonl")
        const args = ["generate", "-n", "5", "--out", out, "--llm", "openai", "--concurrency", "1"]
        const first = await runCli(args, { env: env(server) })
        expect(first.status).toBe(1)
        failFrom = Number.POSITIVE_INFINITY
        const before = server.requests.length
        const resumed = await runCli([...args, "--resume"], { env: env(server) })
        expect(resumed.status, resumed.stderr).toBe(0)
        expect(server.requests.length).toBeGreaterThan(before)
        expect(readJsonl(out)).toHaveLength(5)
      }
    },
    90_000
  )

  it(
    "two processes on one run: the second fails with a lock error and spends nothing; the lock of a killed run is taken over",
    async () => {
      let hangFrom = 2
      const server = await fake((ctx) => (ctx.index >= hangFrom ? hang() : answer(validTaskFor(ctx), USAGE)))
      const dir = tempDir("skyrl-lock-")
      const out = join(dir, "ds.jsonl")
      const args = ["generate", "-n", "4", "--out", out, "--llm", "openai", "--concurrency", "1"]
      const first = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env(server)), stdio: "ignore" })
      while (server.requests.length < 3) await new Promise((resolve) => setTimeout(resolve, 20))
      const before = server.requests.length
      const second = await runCli([...args, "--resume"], { env: env(server) })
      expect(second.status).toBe(1)
      // The first holds its --out (`<out>.lock`, taken before the run directory's lock).
      expect(second.stderr).toMatch(/ds\.jsonl is being written by another skyrl run \(\{"pid":\d+/)
      expect(server.requests.length).toBe(before)
      first.kill("SIGKILL")
      await new Promise((resolve) => first.on("close", resolve))
      hangFrom = Number.POSITIVE_INFINITY
      const third = await runCli([...args, "--resume"], { env: env(server) })
      expect(third.status, third.stderr).toBe(0)
      expect(readJsonl(out)).toHaveLength(4)
    },
    60_000
  )
})

describe("--resume of a run whose raw directory moved (--raw-dir names the new place)", () => {
  it("the rows and rejects journaled before the move name the new directory, as those made after it do", async () => {
    // Before: rows 1 and 2 and the reject (journaled before the move) kept raw_llm/<run_id>/..., which no longer
    // existed; only row 3, made after the move, named the new place.
    let quotaFrom = 3
    const server = await fake(withStages((ctx) => {
      const k = sampleNumberOf(ctx.body) ?? 1
      if (k >= quotaFrom) {
        return httpError(429, "You exceeded your current quota", {
          code: "insufficient_quota",
          type: "insufficient_quota"
        })
      }
      const firstAttempt = !/attempt \d+/.test(JSON.stringify(ctx.body.input ?? ctx.body.messages))
      return answer(k === 2 && firstAttempt ? invalidTaskText(k) : validTaskFor(ctx), USAGE)
    }, (text) => answer(text, USAGE)))
    const dir = tempDir("skyrl-moved-raw-")
    const out = join(dir, "ds.jsonl")
    const args = ["generate", "-n", "3", "--out", out, "--llm", "openai", "--concurrency", "1"]
    const first = await runCli(args, { env: env(server) })
    expect(first.status, first.stderr).toBe(1)
    const runId = basename(runDirOf(out))
    renameSync(join(dir, "raw_llm"), join(dir, "kept"))
    quotaFrom = Number.POSITIVE_INFINITY
    const resumed = await runCli([...args, "--resume", "--raw-dir", join(dir, "kept")], { env: env(server) })
    expect(resumed.status, resumed.stderr).toBe(0)
    expect(resumed.stderr).toContain("1 of 3 samples to make")
    const rows = readJsonl(out).map((x) => JSON.parse(x.extra_info.task_metadata).raw_output_path)
    expect(rows).toEqual([
      `kept/${runId}/archive_01.jsonl#task_0001_c01.json`,
      `kept/${runId}/archive_01.jsonl#task_0002_c03.json`,
      `kept/${runId}/archive_02.jsonl#task_0003_c02.json`
    ])
    const rejects = readJsonl(`${out}.rejects.jsonl`).map((r) => r.raw_output_path)
    expect(rejects).toEqual([`kept/${runId}/archive_01.jsonl#task_0002_c02.json`])
    for (const ref of [...rows, ...rejects]) expect(archiveHolds(dir, ref), ref).toBe(true)
    expect(existsSync(join(dir, "raw_llm"))).toBe(false)
  }, 60_000)
})

describe("--resume of a project folder moved whole (dataset, raw_llm/ and all)", () => {
  const taskSamples = (server: FakeServer) =>
    server.requests.filter((q) => q.endpoint !== "other" && isTaskRequest(q.body)).map((q) => sampleNumberOf(q.body))
  /** What the stopped run asked its fake: the task requests' sample numbers. */
  let stoppedAsked: Array<number | undefined> = []
  /**
   * A run of 3 samples stopped by a quota error at sample 3, in <dir>/proj, made once and put back at that path
   * for each test: resolves <dir>.
   */
  const stoppedRun = restoredRun("skyrl-moved-proj-", async (dir) => {
    const server = await fake(withStages((ctx) =>
      (sampleNumberOf(ctx.body) ?? 1) >= 3
        ? httpError(429, "You exceeded your current quota", { code: "insufficient_quota", type: "insufficient_quota" })
        : answer(validTaskFor(ctx), USAGE), (text) => answer(text, USAGE)))
    const out = join(dir, "proj", "ds.jsonl")
    mkdirSync(join(dir, "proj"))
    const first = await runCli(["generate", "-n", "3", "--out", out, "--llm", "openai", "--concurrency", "1"], {
      env: env(server)
    })
    expect(first.status, first.stderr).toBe(1)
    stoppedAsked = taskSamples(server)
  })

  for (const made of ["now", "before the manifest recorded run_dir"] as const) {
    it(`continues the run where it is now, asking only the sample left (manifest written ${made})`, async () => {
      // Before: "no earlier generate run for <new>/ds.jsonl ...; starting a new run", and all 3 samples were made
      // (and, with a model, paid for) again in a second run directory.
      const dir = await stoppedRun()
      const runId = basename(runDirOf(join(dir, "proj", "ds.jsonl")))
      const manifestFile = join(dir, "proj", "raw_llm", runId, "manifest.json")
      if (made !== "now") {
        const { run_dir, ...older } = JSON.parse(readFileSync(manifestFile, "utf8"))
        expect(run_dir).toBe(join(dir, "proj", "raw_llm", runId))
        writeFileSync(manifestFile, JSON.stringify(older, null, 2) + "\n")
      }
      expect(stoppedAsked).toEqual([1, 2, 3])
      renameSync(join(dir, "proj"), join(dir, "proj2"))
      // The fake, quota restored (the stopped run's answered it the same way before the quota error).
      const server = await fake(withStages((ctx) => answer(validTaskFor(ctx), USAGE), (text) => answer(text, USAGE)))
      const out = join(dir, "proj2", "ds.jsonl")
      const args = ["generate", "-n", "3", "--out", out, "--llm", "openai", "--concurrency", "1"]
      // --dry-run shows what --resume reuses: the subjects the moved run's stage answered.
      const dry = await runCli([...args, "--dry-run"], { env: env(server) })
      expect(dry.status, dry.stderr).toBe(0)
      expect(dry.stdout).toContain(`cached in run ${runId} (reused with --resume): equity research 4;`)
      const resumed = await runCli([...args, "--resume"], { env: env(server) })
      expect(resumed.status, resumed.stderr).toBe(0)
      expect(resumed.stderr).toContain(
        `--resume: run ${runId} was made in ${join(dir, "proj", "raw_llm", runId)} for ${
          join(dir, "proj", "ds.jsonl")
        }; ` +
          `both moved since, to ${join(dir, "proj2", "raw_llm", runId)} and ${out}: continuing it there`
      )
      expect(resumed.stderr).toContain("1 of 3 samples to make")
      // Samples 1 and 2 were not asked again: the only new task request is sample 3's.
      expect(taskSamples(server)).toEqual([3])
      expect(readdirSync(join(dir, "proj2", "raw_llm"))).toEqual([runId])
      const rows = readJsonl(out).map((x) => JSON.parse(x.extra_info.task_metadata).raw_output_path)
      expect(rows).toEqual([
        `raw_llm/${runId}/archive_01.jsonl#task_0001_c01.json`,
        `raw_llm/${runId}/archive_01.jsonl#task_0002_c01.json`,
        `raw_llm/${runId}/archive_02.jsonl#task_0003_c02.json`
      ])
      for (const ref of rows) expect(archiveHolds(join(dir, "proj2"), ref), ref).toBe(true)
      const manifest = JSON.parse(readFileSync(join(dir, "proj2", "raw_llm", runId, "manifest.json"), "utf8"))
      expect([manifest.status, manifest.output, manifest.run_dir]).toEqual([
        "completed",
        out,
        join(dir, "proj2", "raw_llm", runId)
      ])
      expect(existsSync(join(dir, "proj"))).toBe(false)
    }, 60_000)
  }

  it("runs of two outputs moved into one raw_llm: --resume stops naming both, and makes nothing", async () => {
    // Output a is the offline run's <dir>/proj/ds.jsonl; b's is made the same way.
    const dir = await offlineRun()
    const [a, b] = ["proj", "b"]
    mkdirSync(join(dir, b))
    expect((await runCli(["generate", "-n", "2", "--out", join(dir, b, "ds.jsonl")])).status).toBe(0)
    const runIds = [a, b].map((name) => basename(runDirOf(join(dir, name, "ds.jsonl"))))
    mkdirSync(join(dir, "c", "raw_llm"), { recursive: true })
    for (const [i, name] of [a, b].entries()) {
      renameSync(join(dir, name, "raw_llm", runIds[i]!), join(dir, "c", "raw_llm", runIds[i]!))
    }
    const r = await runCli(["generate", "-n", "2", "--out", join(dir, "c", "ds.jsonl"), "--resume"])
    expect(r.status).toBe(2)
    const raw = join(dir, "c", "raw_llm")
    expect(r.stderr).toContain(
      `skyrl: --resume: no generate run in ${raw} was made for ${join(dir, "c", "ds.jsonl")}, and runs made for ` +
        `other outputs moved here with them could each be the one to continue: ${join(raw, runIds[0]!)} (made for ` +
        `${join(dir, a, "ds.jsonl")}), ${join(raw, runIds[1]!)} (made for ${join(dir, b, "ds.jsonl")}); move ` +
        `the runs not to continue out of ${raw}, then resume again`
    )
    expect(readdirSync(raw).sort()).toEqual([...runIds].sort())
    expect(existsSync(join(dir, "c", "ds.jsonl"))).toBe(false)
  }, 60_000)

  it("two runs of the one output moved together: the latest is continued, as before the move", async () => {
    const dir = await offlineRun()
    const out = join(dir, "proj", "ds.jsonl")
    const older = basename(runDirOf(out))
    expect((await runCli(["generate", "-n", "2", "--out", out, "--seed", "8"])).status).toBe(0)
    const latest = readdirSync(join(dir, "proj", "raw_llm")).find((d) => d !== older)!
    renameSync(join(dir, "proj"), join(dir, "proj2"))
    const r = await runCli(["generate", "-n", "2", "--out", join(dir, "proj2", "ds.jsonl"), "--seed", "8", "--resume"])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toContain(`--resume: run ${latest} was made in ${join(dir, "proj", "raw_llm", latest)}`)
    expect(r.stderr).toContain("0 of 2 samples to make")
    expect(readdirSync(join(dir, "proj2", "raw_llm")).sort()).toEqual([older, latest].sort())
  }, 60_000)
})

describe("Ctrl-C", () => {
  it("exits 130 on SIGINT and a --resume run finishes the dataset", async () => {
    let hangFrom = 2
    const server = await fake((ctx) => (ctx.index >= hangFrom ? hang() : answer(validTaskFor(ctx), USAGE)))
    const dir = tempDir("skyrl-int-")
    const out = join(dir, "ds.jsonl")
    const args = ["generate", "-n", "4", "--out", out, "--llm", "openai", "--concurrency", "1"]
    const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env(server)), stdio: "pipe" })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    while (server.requests.length < 3) await new Promise((resolve) => setTimeout(resolve, 20))
    // The first Ctrl-C waits for the call in flight (it never answers here: test/gracefulStop.test.ts); the second
    // stops at once.
    child.kill("SIGINT")
    while (!stderr.includes("SIGINT: stopping")) await new Promise((resolve) => setTimeout(resolve, 20))
    // A repeat of the first signal within 0.25 s is taken for the same press (src/bin.ts): the second comes later.
    await new Promise((resolve) => setTimeout(resolve, 300))
    child.kill("SIGINT")
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve))
    expect(code, stderr).toBe(130)
    expect(stderr).toContain("skyrl: interrupted; the work done so far is kept: rerun the same command with --resume")
    hangFrom = Number.POSITIVE_INFINITY
    const r = await runCli([...args, "--resume"], { env: env(server) })
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out)).toHaveLength(4)
  }, 60_000)
})

describe("settings are checked before any call", () => {
  it("an output extension it cannot write is a usage error (exit 2) and the model is never called", async () => {
    const server = await fake((ctx) => answer(validTaskFor(ctx), USAGE))
    const out = join(tempDir("skyrl-gen-"), "ds.txt")
    const r = await runCli(["generate", "-n", "2", "--out", out, "--llm", "openai"], { env: env(server) })
    expect(r.status).toBe(2)
    expect(r.stderr).toContain(".json, .jsonl or .parquet")
    expect(server.requests).toHaveLength(0)
  })
  it("bad complexities name the setting", async () => {
    const out = join(tempDir("skyrl-gen-"), "ds.jsonl")
    const r = await runCli(["generate", "-n", "2", "--out", out, "--complexities", "hard:1"])
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/--complexities \(COMPLEXITIES\): unknown complexity "hard"/)
  })
})
