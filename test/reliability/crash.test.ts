/**
 * Crash tests: `generate` is killed with SIGKILL at seeded "random" points — while a request is in
 * flight, right after an answer arrives (archive write / journal append), and during the final dataset
 * write — then continued with `--resume` until it finishes. Checked:
 * - the output path is, at every moment (polled while the processes run and between them), either
 *   absent or a complete, valid dataset: never half-written;
 * - the end result is exactly N rows, unique by sample and by prompt, each valid;
 * - no paid call is repeated: after a kill, no sample whose answer was journaled, nor any sample whose
 *   valid answer was already archived, is requested again;
 * - every call the fake answered is still in the archive (nothing overwritten on resume).
 * The kill points come from a seeded PRNG (mulberry32) so a failure reproduces; at most 3 kills per run.
 */
import type { FSWatcher } from "node:fs"
import { existsSync, readdirSync, readFileSync, rmSync, statSync, watch, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runCli } from "../support/cli.js"
import { planAnswer, sourceRowOf } from "../support/fakeEnrich.js"
import type { FakeContext } from "../support/fakeOpenAI.js"
import { answer } from "../support/fakeOpenAI.js"
import { isRepairRequest, isTaskRequest, sampleNumberOf, validTaskFor } from "../support/fakeTasks.js"
import {
  archiveRecords,
  fakes,
  llmEnv,
  prng,
  readJsonl,
  rowProblems,
  runDirIn,
  sleep,
  spawnCli,
  tempDir,
  USAGE
} from "./helpers.js"

const servers = fakes()
afterEach(servers.closeAll)

type KillPoint = "request" | "journal" | "final-write"

/** Checks the output file as a reader would see it right now; returns a problem or undefined. */
const readableProblem = (out: string, n: number): string | undefined => {
  let text: string
  try {
    text = readFileSync(out, "utf8")
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" ? undefined : String(e)
  }
  try {
    const rows = out.endsWith(".json")
      ? JSON.parse(text)
      : (() => {
        if (!text.endsWith("\n")) throw new Error("does not end with a newline")
        return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
      })()
    if (!Array.isArray(rows)) return "not an array"
    if (rows.length !== n) return `${rows.length} rows instead of ${n}`
    const problems = rowProblems(rows)
    return problems.length > 0 ? problems[0] : undefined
  } catch (e) {
    return `unreadable (${text.length} bytes): ${(e as Error).message}`
  }
}

const journalOf = (dir: string): Array<any> => {
  const raw = join(dir, "raw_llm")
  if (!existsSync(raw)) return []
  const runs = readdirSync(raw)
  if (runs.length === 0) return []
  const file = join(raw, runs[0], "journal.jsonl")
  if (!existsSync(file)) return []
  // A torn last line (killed mid-append) is not an entry.
  return readFileSync(file, "utf8").split("\n").flatMap((l) => {
    try {
      return l.trim() === "" ? [] : [JSON.parse(l)]
    } catch {
      return []
    }
  })
}

const runDirs = (dir: string) => {
  const raw = join(dir, "raw_llm")
  return existsSync(raw) ? readdirSync(raw).map((r) => join(raw, r)) : []
}

/** A front end of the sampling engine, as the fake sees it. */
interface Command {
  readonly name: "generate" | "enrich"
  /** The command line for n samples into `out` (enrich writes its prompts into `dir`). */
  readonly args: (dir: string, out: string, n: number) => Array<string>
  /** 1-based sample number of a request. */
  readonly sampleOf: (body: any) => number | undefined
  readonly valid: (ctx: FakeContext) => string
}

const GENERATE: Command = {
  name: "generate",
  args: (_dir, out, n) => ["generate", "-n", String(n), "--out", out, "--llm", "openai", "--concurrency", "3"],
  sampleOf: sampleNumberOf,
  valid: validTaskFor
}

const ENRICH: Command = {
  name: "enrich",
  args: (dir, out, n) => {
    const input = join(dir, "prompts.jsonl")
    if (!existsSync(input)) {
      const tickers = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL"]
      const prompts = Array.from({ length: n }, (_, i) => ({
        id: `p${i}`,
        messages: [{ role: "user", content: `Get the ${tickers[i % 5]} quote and its news (request ${i + 1}).` }]
      }))
      writeFileSync(input, prompts.map((x) => JSON.stringify(x)).join("\n") + "\n")
    }
    return ["enrich", input, "--out", out, "--llm", "openai", "--concurrency", "3"]
  },
  sampleOf: (body) => {
    const row = sourceRowOf(body)
    return row === undefined ? undefined : row + 1
  },
  valid: (ctx) => planAnswer(ctx)
}

interface Scenario {
  readonly command: Command
  readonly seed: number
  readonly out: string
  readonly points: ReadonlyArray<KillPoint>
}

const SCENARIOS: ReadonlyArray<Scenario> = [
  { command: GENERATE, seed: 11, out: "ds.json", points: ["request", "journal", "final-write"] },
  { command: GENERATE, seed: 23, out: "ds.jsonl", points: ["journal", "request", "final-write"] },
  { command: GENERATE, seed: 37, out: "ds.json", points: ["journal", "journal", "request"] },
  { command: ENRICH, seed: 51, out: "ds.jsonl", points: ["journal", "request", "final-write"] }
]

describe("generate and enrich survive SIGKILL at random points", () => {
  for (const scenario of SCENARIOS) {
    const { command } = scenario
    it(
      `${command.name}, seed ${scenario.seed}: kills ${scenario.points.join(", ")} into ${scenario.out}, then --resume`,
      async () => {
        const N = 10
        const LATENCY = 40
        const random = prng(scenario.seed)
        const dir = tempDir("skyrl-crash-")
        const out = join(dir, scenario.out)
        const tmpName = new RegExp(`^\\.${scenario.out.replace(".", "\\.")}\\..*\\.tmp$`)

        // The current process and what should kill it.
        let current: ReturnType<typeof spawnCli> | undefined
        let point: KillPoint | undefined
        let countdown = 0
        let run = 0
        let armed: number | undefined
        const kill = () => {
          if (alive()) current!.child.kill("SIGKILL")
        }
        const answered: Array<{ run: number; k: number; repair: boolean }> = []
        const alive = () =>
          current !== undefined && current.child.exitCode === null && current.child.signalCode === null
        const server = await servers.start(async (ctx: FakeContext) => {
          const k = command.sampleOf(ctx.body) ?? 0
          if (point === "journal" && countdown <= 0) {
            // Asked after the armed sample: held until the kill lands (10 s at most), so that the run cannot
            // end before the test has seen the armed answer archived (on a loaded machine in CI it did: no kill
            // landed, and the runs after it had nothing left to do).
            const until = Date.now() + 10_000
            while (alive() && Date.now() < until) await sleep(2)
            // Killed while held: never answered (as the request kill point).
            if (!alive()) return answer(command.valid(ctx), USAGE)
          }
          if (point === "request" && --countdown === 0) {
            // Killed while this request is in flight: it is never answered.
            kill()
            return answer(command.valid(ctx), USAGE)
          }
          if (point === "journal" && --countdown === 0) {
            // Killed just after this answer is archived: plan check, journal append (see the watcher).
            armed = k
          }
          answered.push({ run, k, repair: isRepairRequest(ctx.body) })
          return answer(command.valid(ctx), USAGE)
        }, LATENCY)

        // The reader: polls the output path the whole time.
        const problems: Array<string> = []
        let polls = 0
        // Killed once an archive log holds a call of the armed sample, a few ms later (seeded).
        const holdsArmed = (file: string) =>
          armed !== undefined &&
          new RegExp(`^\\{"name":"task_0*${armed}_c\\d+\\.json"`, "m").test(readFileSync(file, "utf8"))
        const killArmed = () => {
          armed = undefined
          const delay = Math.floor(random() * 4)
          if (delay === 0) kill()
          else setTimeout(kill, delay)
        }
        const poller = setInterval(() => {
          polls++
          const p = readableProblem(out, N)
          if (p !== undefined) problems.push(p)
          // The archive logs are in directories the run makes (raw_llm/, the run's): the poll reads them. A recursive
          // fs.watch missed appends (Node 20 on Linux adds a watcher for each new directory after it appears: on a
          // loaded machine a run's answers were all archived before, and no kill landed), and it threw an uncaught
          // ENOENT when such a directory was gone before it scanned it (a CI run's two "unhandled errors").
          if (point === "journal" && armed !== undefined) {
            const logs = runDirs(dir).flatMap((d) =>
              readdirSync(d).filter((f) => /^archive_\d+\.jsonl$/.test(f)).map((f) => join(d, f))
            )
            if (logs.some(holdsArmed)) killArmed()
          }
        }, 3)
        let watcher: FSWatcher | undefined
        try {
          // The final write's temp file, beside the output: `dir` itself, not a directory the run makes.
          watcher = watch(dir, (_event, name) => {
            if (point === "final-write" && name !== null && tmpName.test(name)) kill()
          })
          const args = command.args(dir, out, N)
          const kills: Array<
            { point: KillPoint; signal: string | null; journaled: Set<number>; archived: Set<number> }
          > = []
          // Every archive file seen after a kill, with the start time of the call it records.
          const seenFiles = new Map<string, string>()
          for (const p of scenario.points) {
            run++
            point = p
            countdown = 2 + Math.floor(random() * 7)
            armed = undefined
            current = spawnCli(run === 1 ? args : [...args, "--resume"], llmEnv(server))
            const result = await current.done
            point = undefined
            // What was safely kept at the moment of the kill.
            const journaled = new Set(journalOf(dir).filter((e) => e.status === "row").map((e) => e.index + 1))
            const archived = new Set(
              runDirs(dir).flatMap((d) => archiveRecords(d)).filter((a) => a.record.status === "ok").map((a) =>
                a.record.sample + 1
              )
            )
            kills.push({ point: p, signal: result.signal, journaled, archived })
            for (const d of runDirs(dir)) for (const a of archiveRecords(d)) seenFiles.set(a.file, a.record.startedAt)
            const between = readableProblem(out, N)
            if (between !== undefined) problems.push(`after kill ${run}: ${between}`)
            await sleep(20)
          }
          // At least one of the kills landed (a kill after the last rename only means the run had finished).
          expect(kills.filter((k) => k.signal === "SIGKILL").length).toBeGreaterThanOrEqual(2)

          run++
          current = spawnCli([...args, "--resume"], llmEnv(server))
          const last = await current.done
          expect(last.status, last.stderr).toBe(0)

          expect(problems, `the output was never half-written (${polls} polls)`).toEqual([])
          const rows = out.endsWith(".json") ? JSON.parse(readFileSync(out, "utf8")) : readJsonl(out)
          expect(rows).toHaveLength(N)
          expect(rowProblems(rows)).toEqual([])
          expect(new Set(rows.map((r: any) => r.prompt[1].content)).size).toBe(N)
          expect(new Set(rows.map((r: any) => JSON.parse(r.extra_info.task_metadata).sample_index)).size).toBe(N)

          // No paid call repeated: after kill i, no later run asked again for a sample journaled or
          // answered-and-archived by then.
          kills.forEach((k, i) => {
            const later = answered.filter((a) => a.run > i + 1).map((a) => a.k)
            for (const s of later) {
              expect(k.journaled.has(s), `sample ${s} was journaled before kill ${i + 1} and requested again`).toBe(
                false
              )
            }
            for (const s of later) {
              expect(
                k.archived.has(s),
                `sample ${s}'s answer was archived before kill ${i + 1} (${k.point}) and requested again`
              ).toBe(false)
            }
          })
          // Every answered call is still in the archive: nothing was overwritten by a resumed run.
          expect(runDirs(dir)).toHaveLength(1)
          const final = new Map(archiveRecords(runDirs(dir)[0]).map((a) => [a.file, a.record.startedAt]))
          for (const [file, startedAt] of seenFiles) {
            expect(final.get(file), `${file} (a call made before a kill) is kept as it was`).toBe(startedAt)
          }
        } finally {
          clearInterval(poller)
          watcher?.close()
          kill()
        }
      },
      60_000
    )
  }
})

describe("the window between archiving an answer and journaling it", () => {
  it(
    "--resume uses an answer that was archived but never journaled, and never overwrites an archive file",
    async () => {
      const server = await servers.start((ctx) => answer(validTaskFor(ctx), USAGE))
      const dir = tempDir("skyrl-crash-")
      const out = join(dir, "ds.jsonl")
      const args = ["generate", "-n", "6", "--out", out, "--llm", "openai", "--concurrency", "2"]
      const first = await runCli(args, { env: llmEnv(server) })
      expect(first.status, first.stderr).toBe(0)
      // The tasks (the subjects stage before them is cached in the run directory and not asked again).
      const tasks = () => server.requests.filter((q) => isTaskRequest(q.body))
      expect(tasks()).toHaveLength(6)

      // The state a crash leaves: samples 4-6 answered and archived, but only samples 1-3 journaled (and
      // half a line of sample 4's entry); sample 5's archived call failed; no dataset yet. (The record of
      // sample 5's call is rewritten in its log to say so.)
      const runDir = runDirIn(dir)
      const journal = join(runDir, "journal.jsonl")
      const entries = readFileSync(journal, "utf8").split("\n").filter((l) => l !== "")
      const kept = entries.filter((l) => JSON.parse(l).index < 3)
      const torn = entries.find((l) => JSON.parse(l).index === 3)!
      writeFileSync(journal, kept.join("\n") + "\n" + torn.slice(0, Math.floor(torn.length / 2)))
      const log = join(runDir, "archive_01.jsonl")
      writeFileSync(
        log,
        readFileSync(log, "utf8").split("\n").map((l) => {
          if (!l.startsWith("{\"name\":\"task_0005_")) return l
          return JSON.stringify({ ...JSON.parse(l), status: "Transient", error: "connection error" })
        }).join("\n")
      )
      rmSync(out)
      const before = new Map(
        readdirSync(runDir).filter((f) => f.startsWith("archive_")).map((f) => [f, statSync(join(runDir, f)).mtimeMs])
      )
      const calls = archiveRecords(runDir).map((a) => a.file)

      const resumed = await runCli([...args, "--resume"], { env: llmEnv(server) })
      expect(resumed.status, resumed.stderr).toBe(0)
      // Only sample 5 (whose archived call had failed) is asked again; 4 and 6 come from the archive.
      const again = server.requests.slice(7).map((q) => sampleNumberOf(q.body))
      expect(again).toEqual([5])
      expect(tasks()).toHaveLength(7)
      const rows = readJsonl(out)
      expect(rows).toHaveLength(6)
      expect(rowProblems(rows)).toEqual([])
      const meta = rows.map((r) => JSON.parse(r.extra_info.task_metadata))
      expect(meta.map((m) => m.sample_index)).toEqual([0, 1, 2, 3, 4, 5])
      expect(meta[3].raw_output_path).toMatch(/task_0004_c01\.json$/)
      expect(meta[4].raw_output_path).toMatch(/task_0005_c02\.json$/)
      // Every log that was there is untouched; sample 5's new call got the next number, in this session's log.
      for (const [f, mtime] of before) expect(statSync(join(runDir, f)).mtimeMs, f).toBe(mtime)
      expect(archiveRecords(runDir).map((a) => a.file)).toEqual([...calls, "task_0005_c02.json"].sort())
      expect(meta[4].raw_output_path).toMatch(/archive_02\.jsonl#task_0005_c02\.json$/)
    },
    60_000
  )
})
