/**
 * Benchmark of `skyrl validate` (not a test): writes N rows (default 100,000) to a temp .jsonl and
 * .parquet, runs the built CLI (`node bin/skyrl.js validate FILE --json`) on each, and prints rows/s,
 * wall time and the peak RSS of the validate process (VmHWM from /proc, sampled until it exits).
 *
 *     npx tsx scripts/bench-validate.ts [ROWS]        (run `npm run build` first)
 *
 * Rows are skyrl's own layout, made from a few hundred distinct converted tasks with unique ids and
 * prompts, so the run is clean and every check does its full work (tokenizer, duplicates, hazards).
 */
import { Either, Schema } from "effect"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { open } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Inventory } from "../src/domain/inventory.js"
import type { EncodedRow } from "../src/domain/row.js"
import { writeParquetRows } from "../src/services/parquet.js"
import { convertTask } from "../src/skyrl/convert.js"
import { encodeRow } from "../src/skyrl/layout.js"

const ROOT = join(import.meta.dirname, "..")
const N = Number(process.argv[2] ?? 100_000)
const BIN = join(ROOT, "bin", "skyrl.js")
if (!existsSync(join(ROOT, "dist", "bin.js"))) {
  console.error("dist/ is missing: run `npm run build` first")
  process.exit(2)
}

const inventory = Schema.decodeUnknownSync(Inventory)(
  JSON.parse(readFileSync(join(ROOT, "data", "inventory", "finance-mcp.json"), "utf8"))
)
const TICKERS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "JPM", "XOM", "KO"]
const plans = [
  (t: string) => [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: t } }],
  (t: string) => [
    { server: "fmp", tool: "fmp_get_quote", params: { symbol: t } },
    { server: "polygon", tool: "polygon_get_news", params: { ticker: t, limit: 3 } }
  ],
  (t: string) => [
    {
      server: "polygon",
      tool: "polygon_get_aggs",
      params: { ticker: t, start_date: "2025-06-01", end_date: "2025-09-01" }
    },
    { server: "fmp", tool: "fmp_get_income_statement", params: { symbol: t, period: "quarterly", limit: 4 } },
    { server: "python_execution", tool: "execute_python", params: { code: "print(sum([1.5, 2.5]))" } }
  ]
]
const templates: Array<EncodedRow> = []
for (const [i, t] of TICKERS.entries()) {
  for (const [j, plan] of plans.entries()) {
    const row = convertTask({
      task_id: `x`,
      user_prompt: `Research ${t}: summarize its price action, the latest results and what matters next.`,
      domain: ["equities", "earnings", "macro"][j],
      complexity: (["simple", "moderate", "complex"] as const)[j],
      tool_sequence: plan(t),
      evaluation_rubric: { name: "r", criteria: [{ name: "accuracy", description: "Numbers match", scoring: "0-5" }] }
    }, { inventory, metadata: { model: "gpt-5-mini", run_id: `bench-${i}`, generated_at: "2026-01-01T00:00:00Z" } })
    templates.push(encodeRow(Either.getOrThrow(row)))
  }
}

function* rows(): Generator<EncodedRow> {
  for (let i = 0; i < N; i++) {
    const base = templates[i % templates.length]
    const user = `${base.prompt[1].content} Focus #${i}: compare with period ${i % 97} and note ${(i * 7919) % 100003}.`
    yield {
      ...base,
      prompt: [base.prompt[0], { role: "user", content: user }],
      reward_spec: { ...base.reward_spec, ground_truth: { ...base.reward_spec.ground_truth, task_id: `bench-${i}` } }
    }
  }
}

const dir = mkdtempSync(join(tmpdir(), "skyrl-bench-"))
const jsonl = join(dir, "rows.jsonl")
const parquet = join(dir, "rows.parquet")
{
  const handle = await open(jsonl, "w")
  let buffer: Array<string> = []
  for (const row of rows()) {
    buffer.push(JSON.stringify(row))
    if (buffer.length === 5000) {
      await handle.write(buffer.join("\n") + "\n")
      buffer = []
    }
  }
  if (buffer.length > 0) await handle.write(buffer.join("\n") + "\n")
  await handle.close()
}
{
  const handle = await open(parquet, "w")
  await writeParquetRows(handle, rows())
  await handle.close()
}

const peakKb = (pid: number): number | undefined => {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return m === null ? undefined : Number(m[1])
  } catch {
    return undefined
  }
}

const measure = (file: string) =>
  new Promise<{ seconds: number; peakMb: number; status: number | null; report: any }>((resolve) => {
    const start = performance.now()
    const child = spawn(process.execPath, [BIN, "validate", file, "--json"], { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    let peak = 0
    const timer = setInterval(() => {
      peak = Math.max(peak, peakKb(child.pid!) ?? 0)
    }, 50)
    child.stdout.on("data", (d) => {
      out += d
      peak = Math.max(peak, peakKb(child.pid!) ?? 0)
    })
    child.on("exit", (status) => {
      clearInterval(timer)
      resolve({ seconds: (performance.now() - start) / 1000, peakMb: peak / 1024, status, report: JSON.parse(out) })
    })
  })

for (const file of [jsonl, parquet]) {
  const { peakMb, report, seconds, status } = await measure(file)
  const size = statSync(file).size / 1e6
  console.log(
    `${file.endsWith(".parquet") ? "parquet" : "jsonl  "} ${N} rows (${size.toFixed(1)} MB): ${
      seconds.toFixed(1)
    } s, ` +
      `${Math.round(N / seconds)} rows/s, peak RSS ${peakMb.toFixed(0)} MB, exit ${status}, ` +
      `violations ${report.violations}, prompt tokens max ${report.promptTokens.max}`
  )
}
if (process.env.KEEP_BENCH === undefined) rmSync(dir, { recursive: true, force: true })
else console.log(dir)
