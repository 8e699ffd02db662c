/**
 * `npm run bench`: prints skyrl's performance figures, each next to its goal (a script, not a test).
 *
 * 1. Throughput of `skyrl generate` against the OpenAI-compatible fake at a fixed latency, at
 *    concurrency 1, 4, 16 and 64, as a ratio to the ceiling concurrency / latency; and under an RPM cap,
 *    as a ratio to RPM / 60. Rates come from the fake's own clock: first request in to last answer out
 *    (RPM: request starts). Goal ≥ 0.9.
 * 2. `skyrl convert` of 100,000 tasks (validates every plan against the inventory, writes the rows and
 *    checks them as written): rows/s over the whole process (start-up included), goal ≥ 25,000. Then the
 *    peak RSS (VmHWM, Linux) of `convert` and of `validate --json` (checks and the diversity report with
 *    near-duplicates) at 100,000 and at 1,000,000 rows (`--large N` to change): goal within 10% of each
 *    other and under 300 MB.
 * 3. The byte-identical prefix every request of a run shares, as a share of each request's input, on
 *    the request bodies the fake received, in the order the model reads them (output schema,
 *    instructions, messages). Goal ≥ 80% for every request.
 * 4. `skyrl --help` cold start: the median of 10 runs. Goal ≤ 0.8 s.
 * 5. Near-duplicate detection (src/skyrl/nearDup.ts, as `validate` runs it) on 100,000 generated
 *    prompts, short (~40 words) and long (~400 words), each in its own process
 *    (scripts/bench-nearDup.ts): time (goal < 30 s) and peak RSS, which must not grow with the prompts'
 *    length (goal: long / short < 1.25 while the text is 10× longer); plus the recall of injected
 *    near-duplicates.
 * 6. `skyrl verify` against server-everything (stdio, from node_modules), in-process: rows verified
 *    per second at concurrency 1 and 8 (two calls per row, distinct params, cassettes and journal written,
 *    output written), as a ratio to the server's own call rate measured in the same run with a bare SDK
 *    client at the same concurrency. Goal ≥ 0.8.
 * 7. Client CPU per answer of `generate -n 1000 --concurrency 16` against a zero-latency fake: the
 *    process's user + system CPU time (scripts/cpu-on-exit.mjs, preloaded) over the answers it received,
 *    start-up and final checks included. Goal ≤ 2 ms.
 * 8. Whole-process `generate -n 1024 --concurrency 32` against a 500 ms fake: the ceiling (every model
 *    call taking exactly 500 ms: the stage calls one at a time, then the task calls 32 at a time) over
 *    the process's wall time from spawn to exit. Goal ≥ 0.85.
 *
 *     npm run bench                       # all eight
 *     npm run bench -- 1 3                # only some of them
 *     npm run bench -- --latency 500      # another fake latency for section 1 (default 1000 ms)
 *     npm run bench -- 2 --large 300000   # section 2's large run at another size
 *
 * Runs the built CLI (bin/skyrl.js → dist/); builds it first when dist/ is missing.
 */
import { spawn, spawnSync } from "node:child_process"
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { availableParallelism, loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import type { FakeServer } from "../test/support/fakeOpenAI.js"
import { answer, start } from "../test/support/fakeOpenAI.js"
import { isTaskRequest, validTaskFor, writeTasks } from "../test/support/fakeTasks.js"

const ROOT = join(import.meta.dirname, "..")
const BIN = join(ROOT, "bin", "skyrl.js")
const args = process.argv.slice(2)
const latencyAt = args.indexOf("--latency")
/** The fake's fixed latency. Real calls take 10-60 s; 1 s keeps the run short while the client's own
 * per-answer work (a few ms, done one answer at a time) stays a small part of each cycle. */
const LATENCY_MS = latencyAt === -1 ? 1000 : Number(args[latencyAt + 1])
const largeAt = args.indexOf("--large")
/** Rows of section 2's large run (default 1,000,000). */
const largeRows = largeAt === -1 ? 1_000_000 : Number(args[largeAt + 1])
const optionAt = new Set([latencyAt, largeAt].filter((i) => i !== -1).flatMap((i) => [i, i + 1]))
const only = new Set(
  args.filter((_, i) => !optionAt.has(i)).map(Number).filter((n) => n >= 1 && n <= 8)
)
const wanted = (n: number) => only.size === 0 || only.has(n)
const USAGE = { input: 3000, cached: 2816, output: 700, reasoning: 400 }

if (!existsSync(join(ROOT, "dist", "bin.js"))) {
  console.log("dist/ is missing: building it (npm run build)")
  const b = spawnSync(process.execPath, [join(ROOT, "scripts", "build.mjs")], { stdio: "inherit" })
  if (b.status !== 0) process.exit(b.status ?? 1)
}

const cleanEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const k of Object.keys(env)) if (k.startsWith("OPENAI_") || k.startsWith("SKYRL_")) delete env[k]
  return { ...env, NO_COLOR: "1", ...extra }
}

interface Finished {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
  readonly wallMs: number
  /** Peak resident set size in bytes (VmHWM), when /proc is there. */
  readonly peakRss: number | undefined
}

/** Runs node with `argv`, sampling its peak RSS from /proc while it runs. */
const runNode = (argv: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Finished> =>
  new Promise((resolve) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, argv, { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    let stdout = ""
    child.stderr.on("data", (d) => (stderr += d))
    child.stdout.on("data", (d) => (stdout += d))
    let peak: number | undefined
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))
        if (m !== null) peak = Math.max(peak ?? 0, Number(m[1]) * 1024)
      } catch {
        // not Linux, or the process is gone
      }
    }
    const timer = setInterval(sample, 20)
    child.on("close", (status) => {
      clearInterval(timer)
      resolve({ status, stdout, stderr, wallMs: performance.now() - t0, peakRss: peak })
    })
  })

/** Runs the CLI (bin/skyrl.js). */
const runCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Finished> =>
  runNode([BIN, ...args], env)

/** Lines of a file, read a buffer at a time (the file may be larger than a string can be). */
const countLines = async (file: string) => {
  let n = 0
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++
  }
  return n
}

const loadAverage = () => loadavg().map((x) => x.toFixed(1)).join(" ")

const pct = (x: number) => `${(100 * x).toFixed(1)}%`
const verdict = (ok: boolean) => (ok ? "ok" : "BELOW GOAL")
const fail = (what: string, r: Finished): never => {
  console.error(`${what} failed (exit ${r.status}):\n${r.stderr.slice(-2000)}`)
  process.exit(1)
}

const cpuModel = (): string => {
  try {
    return /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "unknown"
  } catch {
    return "unknown"
  }
}

console.log(`# skyrl bench — ${new Date().toISOString().slice(0, 10)}`)
console.log(
  `machine: ${availableParallelism()} CPUs (nproc), ${cpuModel()}, node ${process.version}, ${process.platform}`
)
console.log()

/** Runs `generate` against a fake at LATENCY_MS (or `latencyMs`); returns its task requests. */
const generateRun = async (n: number, concurrency: number, extra: ReadonlyArray<string> = []) =>
  (await generateProcess(n, concurrency, extra)).tasks

/**
 * Runs `generate` against a fake; returns the fake's task requests, every request it received, the
 * process (wall time from spawn to exit) and its CPU time (user + system, from scripts/cpu-on-exit.mjs).
 */
const generateProcess = async (
  n: number,
  concurrency: number,
  extra: ReadonlyArray<string> = [],
  latencyMs = LATENCY_MS
) => {
  const server: FakeServer = await start((ctx) => answer(validTaskFor(ctx), USAGE), { latencyMs })
  const dir = mkdtempSync(join(tmpdir(), "skyrl-bench-"))
  const cpuFile = join(dir, "cpu.json")
  try {
    const spawnedAt = Date.now()
    const r = await runNode(
      [
        "--import",
        pathToFileURL(join(ROOT, "scripts", "cpu-on-exit.mjs")).href,
        BIN,
        "generate",
        "-n",
        String(n),
        "--out",
        join(dir, "ds.jsonl"),
        "--llm",
        "openai",
        "--concurrency",
        String(concurrency),
        ...extra
      ],
      { OPENAI_API_KEY: "sk-bench", OPENAI_BASE_URL: server.baseUrl, SKYRL_BENCH_CPU_FILE: cpuFile }
    )
    if (r.status !== 0) fail(`generate -n ${n} --concurrency ${concurrency}`, r)
    // The task requests (the subjects stage, one call before them, is not part of the figures).
    const tasks = server.requests.filter((q) => isTaskRequest(q.body))
    // More when some answers were asked for again (a near-duplicate rejected at acceptance).
    if (tasks.length < n) {
      console.error(`expected at least ${n} task requests, the fake received ${tasks.length}`)
      process.exit(1)
    }
    const cpu = JSON.parse(readFileSync(cpuFile, "utf8")) as { user: number; system: number }
    const times = server.requests.map((q) => q.time)
    // Spawn to first request, first request to last request sent, last request sent to exit.
    const phases = {
      startMs: Math.min(...times) - spawnedAt,
      requestsMs: Math.max(...times) - Math.min(...times),
      endMs: spawnedAt + r.wallMs - Math.max(...times)
    }
    return { tasks, requests: server.requests.length, process: r, cpuMs: (cpu.user + cpu.system) / 1000, phases }
  } finally {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

let prefixBodies: Array<any> | undefined

if (wanted(1) || wanted(3)) {
  if (wanted(1)) console.log(`## 1. throughput against the ceiling (fake latency ${LATENCY_MS} ms; goal ratio >= 0.9)`)
  for (const c of wanted(1) ? [1, 4, 16, 64] : [16]) {
    const n = 8 * c
    const requests = await generateRun(n, c)
    const first = Math.min(...requests.map((q) => q.time))
    const last = Math.max(...requests.map((q) => q.time)) + LATENCY_MS
    const rate = (n * 1000) / (last - first)
    const ceiling = (c * 1000) / LATENCY_MS
    const ratio = rate / ceiling
    if (wanted(1)) {
      console.log(
        `concurrency ${String(c).padStart(2)}: ${n} samples (${requests.length} task requests), ${
          rate.toFixed(2)
        } samples/s, ceiling ${ceiling.toFixed(2)} req/s (one sample per request), ratio ${ratio.toFixed(3)}  ${
          verdict(ratio >= 0.9)
        }`
      )
    }
    if (c === 16) prefixBodies = requests.map((q) => q.body)
  }
  if (wanted(1)) {
    const rpm = 1200
    const n = 80
    const requests = await generateRun(n, 64, ["--rpm", String(rpm)])
    const starts = requests.map((q) => q.time).sort((a, b) => a - b)
    const rate = ((n - 1) * 1000) / (starts[starts.length - 1] - starts[0])
    const ratio = rate / (rpm / 60)
    console.log(
      `--rpm ${rpm} (concurrency 64): ${n} samples, ${rate.toFixed(2)} req/s, ceiling ${
        (rpm / 60).toFixed(2)
      } req/s, ` +
        `ratio ${ratio.toFixed(3)}  ${verdict(ratio >= 0.9 && ratio <= 1.02)}`
    )
    console.log()
  }
}

if (wanted(2)) {
  const [N, LARGE] = [100_000, largeRows]
  console.log(
    `## 2. \`convert\` of ${N.toLocaleString("en-US")} tasks (goal >= 25,000 rows/s, whole process), and peak RSS of ` +
      `\`convert\` and \`validate\` at ${N.toLocaleString("en-US")} and ${LARGE.toLocaleString("en-US")} rows ` +
      "(goal: within 10% of each other, < 300 MB)"
  )
  const dir = mkdtempSync(join(tmpdir(), "skyrl-bench-"))
  const mb = (
    bytes: number | undefined
  ) => (bytes === undefined ? "unknown (no /proc)" : `${(bytes / 2 ** 20).toFixed(0)} MB`)
  const peaks: Record<"convert" | "validate", Array<number | undefined>> = { convert: [], validate: [] }
  try {
    for (const n of [N, LARGE]) {
      const tasks = join(dir, "tasks.jsonl")
      await writeTasks(tasks, n)
      const out = join(dir, "rows.jsonl")
      const load = loadAverage()
      const r = await runCli(["convert", tasks, "--out", out])
      if (r.status !== 0) fail("convert", r)
      const rows = await countLines(out)
      const rate = (rows * 1000) / r.wallMs
      peaks.convert.push(r.peakRss)
      console.log(
        `convert ${n.toLocaleString("en-US")} tasks (input ${(statSync(tasks).size / 2 ** 20).toFixed(0)} MB, output ${
          (statSync(out).size / 2 ** 20).toFixed(0)
        } MB): ${rows} rows in ${(r.wallMs / 1000).toFixed(2)} s, ${Math.round(rate).toLocaleString("en-US")} rows/s` +
          `${n === N ? `  ${verdict(rate >= 25_000)}` : ""}; peak RSS ${mb(r.peakRss)} (load ${load})`
      )
      if (rows !== n) console.log(`note: ${n - rows} tasks were rejected`)
      rmSync(tasks)
      const v = await runCli(["validate", out, "--json"])
      if (v.status !== 0 && v.status !== 1) fail("validate", v)
      peaks.validate.push(v.peakRss)
      console.log(
        `validate ${rows.toLocaleString("en-US")} rows: ${(v.wallMs / 1000).toFixed(2)} s, ${
          Math.round((rows * 1000) / v.wallMs).toLocaleString("en-US")
        } rows/s; peak RSS ${mb(v.peakRss)} (load ${loadAverage()})`
      )
      rmSync(out)
    }
    for (const command of ["convert", "validate"] as const) {
      const [small, large] = peaks[command]
      if (small === undefined || large === undefined) continue
      const ratio = large / small
      console.log(
        `${command} peak RSS ${LARGE.toLocaleString("en-US")} / ${N.toLocaleString("en-US")} rows: ${mb(large)} / ${
          mb(small)
        } = ${ratio.toFixed(2)}  ${verdict(ratio <= 1.1 && large < 300 * 2 ** 20 && small < 300 * 2 ** 20)}`
      )
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  console.log()
}

if (wanted(3) && prefixBodies !== undefined) {
  console.log("## 3. shared prefix of each request's input (goal >= 80% for every request)")
  // What the model reads, in order: the structured-output schema, the instructions, the messages.
  const modelInput = (body: any): string => {
    const schema = JSON.stringify(body.text?.format?.schema ?? body.response_format?.json_schema?.schema ?? {})
    const messages: Array<any> = body.input ?? body.messages ?? []
    return [schema, body.instructions ?? "", ...messages.map((m) => `${m.role}\n${m.content}`)].join("\n")
  }
  const inputs = prefixBodies.map((b) => Buffer.from(modelInput(b), "utf8"))
  const raw = prefixBodies.map((b) => Buffer.from(JSON.stringify(b), "utf8"))
  const commonPrefix = (buffers: ReadonlyArray<Buffer>): number => {
    let n = Math.min(...buffers.map((b) => b.length))
    for (const b of buffers.slice(1)) {
      let i = 0
      while (i < n && b[i] === buffers[0][i]) i++
      n = i
    }
    return n
  }
  const shared = commonPrefix(inputs)
  const shares = inputs.map((b) => shared / b.length)
  const min = Math.min(...shares)
  const mean = shares.reduce((a, b) => a + b, 0) / shares.length
  console.log(
    `${inputs.length} requests (generate, concurrency 16): shared prefix ${shared} bytes; per request min ${
      pct(min)
    }, ` +
      `mean ${pct(mean)}  ${verdict(min >= 0.8)}`
  )
  const rawShared = commonPrefix(raw)
  console.log(
    `(for reference, the raw JSON body as sent: ${rawShared} bytes shared, min ${
      pct(Math.min(...raw.map((b) => rawShared / b.length)))
    }; the API places the schema before the instructions, so the figure above is the one caching sees)`
  )
  console.log()
}

if (wanted(4)) {
  console.log("## 4. `skyrl --help` cold start (median of 10; goal <= 0.8 s)")
  const times: Array<number> = []
  for (let i = 0; i < 10; i++) {
    const r = await runCli(["--help"])
    if (r.status !== 0) fail("skyrl --help", r)
    times.push(r.wallMs)
  }
  times.sort((a, b) => a - b)
  const median = (times[4] + times[5]) / 2
  console.log(
    `median ${(median / 1000).toFixed(3)} s (min ${(times[0] / 1000).toFixed(3)}, max ${
      (times[9] / 1000).toFixed(3)
    })  ${verdict(median <= 800)}`
  )
}

if (wanted(5)) {
  const N = 100_000
  console.log(
    `## 5. near-duplicate detection on ${
      N.toLocaleString("en-US")
    } prompts (goal < 30 s; peak RSS independent of prompt length)`
  )
  const mb = (
    bytes: number | undefined
  ) => (bytes === undefined ? "unknown (no /proc)" : `${(bytes / 2 ** 20).toFixed(0)} MB`)
  const peaks: Array<number | undefined> = []
  for (const words of [40, 400]) {
    // The worker runs under tsx like this script (process.execArgv carries its loader).
    const r = await runNode([...process.execArgv, join(ROOT, "scripts", "bench-nearDup.ts"), String(N), String(words)])
    if (r.status !== 0) fail(`near-duplicate worker (${words} words)`, r)
    const m = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}")
    peaks.push(r.peakRss)
    console.log(
      `~${words} words (${Math.round(m.meanPromptBytes)} B/prompt): ${m.seconds.toFixed(2)} s (process ${
        (r.wallMs / 1000).toFixed(2)
      } s), peak RSS ${mb(r.peakRss)}, index ${
        mb(m.indexBytes)
      }; injected near-duplicates found ${m.found}/${m.injected}, ` +
        `other matches ${m.otherMatches}  ${verdict(m.seconds < 30)}`
    )
  }
  const [short, long] = peaks
  if (short !== undefined && long !== undefined) {
    console.log(
      `peak RSS long / short: ${(long / short).toFixed(2)} for 10x the text (goal < 1.25)  ${
        verdict(long / short < 1.25)
      }`
    )
  }
  console.log()
}

if (wanted(6)) {
  const { benchVerify } = await import("./bench-verify.js")
  await benchVerify(verdict)
}

if (wanted(7)) {
  const n = 1000
  console.log(`## 7. client CPU per answer: \`generate -n ${n}\` against a zero-latency fake (goal <= 2 ms)`)
  const run = await generateProcess(n, 16, [], 0)
  const answers = run.requests
  const perAnswer = run.cpuMs / answers
  console.log(
    `${n} samples from ${answers} answers (task and stage calls) in ${
      (run.process.wallMs / 1000).toFixed(2)
    } s; process CPU ${(run.cpuMs / 1000).toFixed(2)} s ` +
      `(user + system, start-up and final checks included): ${perAnswer.toFixed(2)} ms per answer, ` +
      `${Math.round(1000 / perAnswer)} answers/s on one core  ${verdict(perAnswer <= 2)}`
  )
  console.log()
}

if (wanted(8)) {
  const [c, latency, n] = [32, 500, 1024]
  console.log(
    `## 8. whole-process \`generate -n ${n} --concurrency ${c}\` against a ${latency} ms fake vs the ceiling ` +
      "(goal >= 0.85)"
  )
  const run = await generateProcess(n, c, [], latency)
  // The ceiling: every model call the run makes (the stage calls before the tasks, one at a time, then
  // the task calls `c` at a time) taking exactly the fake's latency, and nothing else.
  const stages = run.requests - run.tasks.length
  const ceilingMs = (stages + Math.ceil(run.tasks.length / c)) * latency
  const ratio = ceilingMs / run.process.wallMs
  console.log(
    `${n} samples from ${run.tasks.length} task calls (+${stages} stage call${stages === 1 ? "" : "s"}) in ${
      (run.process.wallMs / 1000).toFixed(2)
    } s ` +
      `(process, spawn to exit), ceiling ${(ceilingMs / 1000).toFixed(2)} s: ratio ${ratio.toFixed(3)}  ${
        verdict(ratio >= 0.85)
      }`
  )
  const { endMs, requestsMs, startMs } = run.phases
  console.log(
    `spawn to first request ${(startMs / 1000).toFixed(2)} s, first to last request ${
      (requestsMs / 1000).toFixed(2)
    } s, ` +
      `last request to exit ${(endMs / 1000).toFixed(2)} s; process CPU ${
        (run.cpuMs / 1000).toFixed(2)
      } s (load ${loadAverage()})`
  )
  console.log()
}
