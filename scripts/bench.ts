/**
 * `npm run bench`: prints skyrl's performance figures, each next to its goal (a script, not a test).
 *
 * 1. Throughput of `skyrl generate` against the OpenAI-compatible fake at a fixed latency, at
 *    concurrency 1, 4, 16 and 64, as a ratio to the ceiling concurrency / latency; and under an RPM cap,
 *    as a ratio to RPM / 60. Rates come from the fake's own clock: first request in to last answer out
 *    (RPM: request starts). Goal ≥ 0.9.
 * 2. Local conversion + validation + write of 100,000 tasks (`skyrl convert`, which validates every
 *    plan against the inventory, writes the rows and checks the written file): rows/s over the whole
 *    process (start-up included) and its peak RSS (VmHWM, Linux). Goal ≥ 12,700 rows/s, RSS < 512 MB.
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
 *
 *     npm run bench                       # all six
 *     npm run bench -- 1 3                # only some of them
 *     npm run bench -- --latency 500      # another fake latency (default 1000 ms)
 *
 * Runs the built CLI (bin/skyrl.js → dist/); builds it first when dist/ is missing.
 */
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { availableParallelism, tmpdir } from "node:os"
import { join } from "node:path"
import type { FakeServer } from "../test/support/fakeOpenAI.js"
import { answer, start } from "../test/support/fakeOpenAI.js"
import { isTaskRequest, validTaskFor, validTaskText } from "../test/support/fakeTasks.js"

const ROOT = join(import.meta.dirname, "..")
const BIN = join(ROOT, "bin", "skyrl.js")
const args = process.argv.slice(2)
const latencyAt = args.indexOf("--latency")
/** The fake's fixed latency. Real calls take 10-60 s; 1 s keeps the run short while the client's own
 * per-answer work (a few ms, done one answer at a time) stays a small part of each cycle. */
const LATENCY_MS = latencyAt === -1 ? 1000 : Number(args[latencyAt + 1])
const only = new Set(
  args.filter((_, i) => latencyAt === -1 || (i !== latencyAt && i !== latencyAt + 1)).map(Number).filter((n) =>
    n >= 1 && n <= 6
  )
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

/** Runs `generate` against a fake at LATENCY_MS; returns the fake (with its request log). */
const generateRun = async (n: number, concurrency: number, extra: ReadonlyArray<string> = []) => {
  const server: FakeServer = await start((ctx) => answer(validTaskFor(ctx), USAGE), { latencyMs: LATENCY_MS })
  const dir = mkdtempSync(join(tmpdir(), "skyrl-bench-"))
  try {
    const r = await runCli(
      [
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
      { OPENAI_API_KEY: "sk-bench", OPENAI_BASE_URL: server.baseUrl }
    )
    if (r.status !== 0) fail(`generate -n ${n} --concurrency ${concurrency}`, r)
    // The task requests (the subjects stage, one call before them, is not part of the figures).
    const tasks = server.requests.filter((q) => isTaskRequest(q.body))
    if (tasks.length !== n) {
      console.error(`expected ${n} task requests, the fake received ${tasks.length}`)
      process.exit(1)
    }
    return tasks
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
        `concurrency ${String(c).padStart(2)}: ${n} samples, ${rate.toFixed(2)} req/s, ceiling ${
          ceiling.toFixed(2)
        } req/s, ratio ${ratio.toFixed(3)}  ${verdict(ratio >= 0.9)}`
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
  const N = 100_000
  console.log(`## 2. local conversion + validation + write of ${N.toLocaleString("en-US")} tasks (skyrl convert)`)
  const dir = mkdtempSync(join(tmpdir(), "skyrl-bench-"))
  try {
    const tasks = join(dir, "tasks.jsonl")
    const lines: Array<string> = []
    // Task objects as a model writes them (no null params: convert takes tasks, not strict-mode output).
    for (let k = 1; k <= N; k++) lines.push(validTaskText(k, k % 7).replace("\"limit\":null", "\"limit\":3"))
    writeFileSync(tasks, lines.join("\n") + "\n")
    lines.length = 0
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["convert", tasks, "--out", out])
    if (r.status !== 0) fail("convert", r)
    const rows = readFileSync(out, "utf8").split("\n").filter((l) => l !== "").length
    const rate = (rows * 1000) / r.wallMs
    const rss = r.peakRss === undefined ? "unknown (no /proc)" : `${(r.peakRss / 2 ** 20).toFixed(0)} MB`
    console.log(
      `input ${(statSync(tasks).size / 2 ** 20).toFixed(1)} MB, ${rows} rows written in ${
        (r.wallMs / 1000).toFixed(2)
      } s`
    )
    console.log(
      `throughput: ${Math.round(rate).toLocaleString("en-US")} rows/s (goal >= 12,700)  ${verdict(rate >= 12_700)}`
    )
    console.log(
      `peak RSS: ${rss} (goal < 512 MB)  ${r.peakRss === undefined ? "" : verdict(r.peakRss < 512 * 2 ** 20)}`
    )
    if (rows !== N) console.log(`note: ${N - rows} tasks were rejected`)
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
