/**
 * `skyrl enrich` end to end: the built CLI against the OpenAI-compatible fake on 127.0.0.1, with a fake
 * model that plans with the tools each request offers (test/support/fakeEnrich.ts).
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync
} from "node:fs"
import { join } from "node:path"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import { archiveHolds, archiveRecords } from "./support/archive.js"
import type { CliResult } from "./support/cli.js"
import { runCli } from "./support/cli.js"
import type { PlanChoice } from "./support/fakeEnrich.js"
import { isRepair, offeredTools, planAnswer, quotedUserRequest, sourceRowOf } from "./support/fakeEnrich.js"
import type { FakeContext, FakeServer } from "./support/fakeOpenAI.js"
import { answer, start } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, readJsonl, tempDir } from "./support/fakeRun.js"

const FIXTURES = join(__dirname, "fixtures")
const SHAREGPT = join(FIXTURES, "sharegpt", "sample_data.json")
const KEY = "sk-test-enrich-0123456789"
const USAGE = { input: 2000, cached: 1024, output: 600, reasoning: 300 }

const servers = fakes()
afterEach(servers.closeAll)

const fake = (choice: (ctx: FakeContext) => PlanChoice = () => ({})) =>
  servers.start((ctx) => answer(planAnswer(ctx, choice(ctx)), USAGE))
const calls = (server: FakeServer) => server.requests.filter((q) => q.endpoint !== "other")

const env = (server: FakeServer) => llmEnv(server, KEY)

const tmp = () => tempDir("skyrl-enrich-")

const enrich = (args: ReadonlyArray<string>, server: FakeServer, cwd?: string) =>
  runCli(["enrich", ...args, "--llm", "openai", "--concurrency", "2"], {
    env: env(server),
    ...(cwd === undefined ? {} : { cwd })
  })

const OPENAI_MESSAGES = join(FIXTURES, "enrich", "openai_messages.jsonl")

interface SharedRun {
  readonly server: FakeServer
  readonly dir: string
  readonly out: string
  readonly r: CliResult
}
const sharedRuns = new Map<string, Promise<SharedRun>>()
const sharedServers: Array<FakeServer> = []
afterAll(async () => {
  while (sharedServers.length > 0) await sharedServers.pop()!.close()
})
/**
 * `enrich <input> --out <dir>/rows.jsonl` against a fake model answering as `choice`, run once per file under
 * `key`: several tests run this identical command on identical inputs and only read what it made (output,
 * run directory, log, the requests). Its fake stays up until the file ends (afterEach closes the others).
 */
const sharedEnrich = (
  key: string,
  input: string,
  choice: (ctx: FakeContext) => PlanChoice = () => ({})
): Promise<SharedRun> => {
  let run = sharedRuns.get(key)
  if (run === undefined) {
    sharedRuns.set(
      key,
      run = (async () => {
        const server = await start((ctx) => answer(planAnswer(ctx, choice(ctx)), USAGE))
        sharedServers.push(server)
        const dir = tmp()
        const out = join(dir, "rows.jsonl")
        return { server, dir, out, r: await enrich([input, "--out", out], server) }
      })()
    )
  }
  return run
}
/** `enrich openai_messages.jsonl --out <dir>/rows.jsonl`, the fake preferring fmp_get_quote: once per file. */
const openaiPreferQuote = () =>
  sharedEnrich("openai, prefer fmp_get_quote", OPENAI_MESSAGES, () => ({ prefer: ["fmp_get_quote"] }))
/** `enrich openai_messages.jsonl --out <dir>/rows.jsonl`, the fake's default plans: once per file. */
const openaiDefault = () => sharedEnrich("openai, default plans", OPENAI_MESSAGES)

const meta = (row: any) => JSON.parse(row.extra_info.task_metadata)

/**
 * A row written before param provenance as enrich copies it: unchanged, plus the fields every row of a file
 * needs (Arrow), filled as /work/spec/formats.md reads them (call name = tool, empty lists as JSON text,
 * unknown hash, no schemas), and, since the tools its prompt offered are unknown, the plan's tools as
 * available_tools (sorted by server and tool: never empty on disk) marked `available_tools_source: "plan"`.
 */
const withProvenanceDefaults = (row: any) => {
  const steps = row.reward_spec.ground_truth.tool_sequence
  const planTools = [...new Map(steps.map((s: any) => [`${s.server}/${s.tool}`, s])).values()]
    .sort((a: any, b: any) => a.server < b.server || (a.server === b.server && a.tool < b.tool) ? -1 : 1)
    .map((s: any) => ({ call_name: s.tool, server: s.server, tool: s.tool }))
  const metadata = row.extra_info.task_metadata
  const marked = { ...(typeof metadata === "string" ? JSON.parse(metadata) : metadata), available_tools_source: "plan" }
  return {
    ...row,
    reward_spec: {
      ...row.reward_spec,
      ground_truth: {
        ...row.reward_spec.ground_truth,
        tool_sequence: steps.map((s: any) => ({
          ...s,
          call_name: s.tool,
          depends_on: "[]",
          derived_params: "[]",
          schema_hash: ""
        })),
        available_tools: planTools,
        tool_schemas: "{}"
      }
    },
    extra_info: { ...row.extra_info, task_metadata: JSON.stringify(marked) }
  }
}
const plan = (row: any) =>
  row.reward_spec.ground_truth.tool_sequence.map((s: any) => ({ ...s, params: JSON.parse(s.params) }))
/** A bundled inventory tool as an OpenAI fine-tuning record's `tools` entry gives it (its schema as the inventory's). */
const inventoryFunction = (name: string) => {
  const inventory = JSON.parse(readFileSync(join(__dirname, "..", "data", "inventory", "finance-mcp.json"), "utf8"))
  const tool = inventory.servers.flatMap((s: any) => s.tools).find((t: any) => t.name === name)
  return { type: "function", function: { name, description: tool.description, parameters: tool.inputSchema } }
}

/** Bytes and mtime of a file, to show it was not modified. */
const fingerprint = (file: string) => ({ bytes: readFileSync(file).toString("base64"), mtime: statSync(file).mtimeMs })
/** The fingerprint of every file under a directory, by relative path. */
const tree = (dir: string): Record<string, ReturnType<typeof fingerprint>> =>
  Object.fromEntries(
    readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => statSync(join(dir, f)).isFile()).sort().map((
      f
    ) => [f, fingerprint(join(dir, f))])
  )

// Independent reading of the fixture (not through src/skyrl/sources.ts): the prompt's tools and the logged calls.
const sharegpt: Array<Array<{ from: string; value: string }>> = JSON.parse(readFileSync(SHAREGPT, "utf8"))
const promptTools = (system: string): Map<string, any> => {
  const start = system.lastIndexOf("<tools>")
  const tools: Array<any> = JSON.parse(system.slice(start + 7, system.indexOf("</tools>", start)))
  return new Map(tools.map((t) => [t.name, t.parameters]))
}
const loggedCalls = (conversation: Array<{ from: string; value: string }>) =>
  conversation.filter((m) => m.from === "gpt").flatMap((m) =>
    [...m.value.matchAll(/<tool_call>\s*([\s\S]*?)\s*<\/tool_call>/g)].map((x) => {
      const call = JSON.parse(x[1])
      return { name: call.name, arguments: call.arguments }
    })
  )

describe("enrich: ShareGPT chat logs (the repo copy of sample_data.json)", () => {
  it(
    "--limit 5 --inventory-from-prompt: 5 rows with the source prompt verbatim, a valid plan on the prompt's tools, and the logged calls",
    async () => {
      const server = await fake()
      const dir = tmp()
      const input = join(dir, "sample_data.json")
      copyFileSync(SHAREGPT, input)
      const before = fingerprint(input)
      const out = join(dir, "enriched.jsonl")
      const r = await enrich([input, "--out", out, "--limit", "5", "--inventory-from-prompt"], server)
      expect(r.status, r.stderr).toBe(0)
      expect(calls(server)).toHaveLength(5)
      const rows = readJsonl(out)
      expect(rows).toHaveLength(5)
      // The written file is checked like `skyrl validate`; the source prompts (kept verbatim) are over
      // SkyRL's 512-token default, which is reported as a warning rather than failing the run.
      expect(r.stderr).toMatch(/WARN .*prompt\/too-long: 5/)
      for (const [i, row] of rows.entries()) {
        const source = sharegpt[i]
        expect(row.prompt).toEqual([
          { role: "system", content: source[0].value.trim() },
          { role: "user", content: source[1].value.trim() }
        ])
        // The plan uses only tools the prompt's <tools> block lists, with their required params.
        const tools = promptTools(source[0].value)
        const steps = plan(row)
        expect(steps.length).toBeGreaterThan(0)
        for (const step of steps) {
          expect(step.server).toBe("prompt")
          expect(tools.has(step.tool), step.tool).toBe(true)
          for (const required of tools.get(step.tool).required ?? []) expect(step.params).toHaveProperty(required)
          for (const key of Object.keys(step.params)) {
            expect(Object.keys(tools.get(step.tool).properties)).toContain(key)
          }
        }
        const m = meta(row)
        expect(m.observed_tool_calls.map((c: any) => ({ name: c.name, arguments: c.arguments }))).toEqual(
          loggedCalls(source)
        )
        expect(m.source_row).toBe(i)
        expect(m.source_format).toBe("sharegpt")
        expect(m.source_file).toBe(input)
        expect(m.source).toBe("enrich")
        expect(m.inventory).toBe("prompt")
      }
      // `skyrl validate` of the file: the steps on server "prompt" are checked against each row's own tools.
      const checked = await runCli(["validate", out, "--json", "--max-prompt-tokens", "100000"])
      const report = JSON.parse(checked.stdout)
      // (The fixture's rows 0 and 1 share a prompt: duplicate/prompt is the file's own.)
      expect(checked.status).toBe(1)
      expect(report.rules.filter((x: any) => x.count > 0 && x.severity === "error").map((x: any) => x.id)).toEqual([
        "duplicate/prompt"
      ])
      // The logged calls are metadata, never the ground truth: row 0's agent called send_slack_message with a
      // param its schema lacks; the plan comes from the model.
      expect(meta(rows[0]).observed_tool_calls[0].arguments.user).toBe("@requestor")
      // Each request quoted the source user text exactly and offered only that prompt's tools.
      for (const q of calls(server)) {
        const row = sourceRowOf(q.body)!
        expect(quotedUserRequest(q.body)).toBe(sharegpt[row][1].value.trim())
        expect(offeredTools(q.body).map((t) => t.tool).sort()).toEqual(
          [...promptTools(sharegpt[row][0].value).keys()].sort()
        )
      }
      // One log line per task: index, steps, outcome.
      const lines = r.stderr.split("\n").filter((l) => / row \d+ \[sample \d+\]: planned, \d+ steps/.test(l))
      expect(lines).toHaveLength(5)
      expect(lines.map((l) => Number(/ row (\d+) /.exec(l)![1])).sort()).toEqual([0, 1, 2, 3, 4])
      for (const l of lines) expect(l).toMatch(/steps \(\w+(, \w+)*\); 1 calls; prompt ~\d+ tokens/)
      // These prompts are over the run's budget (--max-prompt-tokens, default 1024): the line says so.
      for (const l of lines) expect(l).toMatch(/prompt ~\d+ tokens \(over the --max-prompt-tokens budget of 1024\)/)
      expect(fingerprint(input)).toEqual(before)
    },
    60_000
  )

  // The fixture's <tools> blocks show these inventory tools with other schemas: get_slack_channel_history
  // (limit default 20, the inventory's 10), fmp_get_income_statement (limit default 4, the inventory's 2),
  // fmp_get_stock_news (param `symbol`, the inventory's `tickers`), tavily_search (no `search_depth`).
  const SHOWN_OTHERWISE = new Set([
    "get_slack_channel_history",
    "fmp_get_income_statement",
    "fmp_get_stock_news",
    "tavily_search"
  ])
  const inventoryTools = () => {
    const inventory = JSON.parse(readFileSync(join(__dirname, "..", "data", "inventory", "finance-mcp.json"), "utf8"))
    const tools = new Map<string, any>()
    for (const s of inventory.servers) for (const t of s.tools) tools.set(t.name, { server: s.name, ...t })
    return tools
  }

  it(
    "the default inventory file: each prompt is planned with the inventory tools it lists as the inventory has them",
    async () => {
      const server = await fake()
      const dir = tmp()
      const out = join(dir, "enriched.json")
      const r = await enrich([SHAREGPT, "--out", out, "--limit", "5"], server)
      expect(r.status, r.stderr).toBe(0)
      const rows: Array<any> = JSON.parse(readFileSync(out, "utf8"))
      expect(rows).toHaveLength(5)
      const inventory = inventoryTools()
      const serverOf = new Map([...inventory].map(([name, t]) => [name, t.server as string]))
      for (const q of calls(server)) {
        const row = sourceRowOf(q.body)!
        const listed = promptTools(sharegpt[row][0].value)
        const expected = [...listed.keys()].filter((name) => serverOf.has(name) && !SHOWN_OTHERWISE.has(name)).sort()
        expect(offeredTools(q.body).map((t) => t.tool).sort()).toEqual(expected)
        expect(expected.length).toBeLessThan(listed.size)
        // Every tool offered shows the inventory's params (a plan on it uses params the prompt shows).
        for (const name of expected) {
          expect(Object.keys(listed.get(name).properties).sort(), name).toEqual(
            Object.keys(inventory.get(name).inputSchema.properties).sort()
          )
        }
      }
      expect(r.stderr).toMatch(
        /WARN .*row 0 \(and rows listing the same tools\): not offered to plan with, shown with other schemas than the inventory's: .*fmp_get_stock_news: params limit, symbol shown, limit, tickers in the inventory/
      )
      // The chat log's system message is kept byte for byte, so its <tools> block still shows the tools left out of
      // the offer (the inventory lacks them, or shows them otherwise): MCPToolEnv answers their calls "unknown
      // tool". The final check says so (before: nothing).
      expect(r.stderr).toMatch(/WARN {2}prompt\/tools-shown-unoffered: 5 — /)
      expect(r.stderr).toMatch(
        /enriched\.json row 1 prompt\[0\]\.content: its <tools> block shows 5 tools the row does not offer \(get_slack_channel_history; get_slack_user_info; tavily_search; tavily_search_news; tavily_extract\)/
      )
      for (const [i, row] of rows.entries()) {
        expect(row.prompt).toEqual([
          { role: "system", content: sharegpt[i][0].value.trim() },
          { role: "user", content: sharegpt[i][1].value.trim() }
        ])
        expect(meta(row).observed_tool_calls.map((c: any) => ({ name: c.name, arguments: c.arguments }))).toEqual(
          loggedCalls(sharegpt[i])
        )
        for (const step of plan(row)) {
          expect(step.server).toBe(serverOf.get(step.tool))
          expect(promptTools(sharegpt[i][0].value).has(step.tool)).toBe(true)
        }
      }
    },
    60_000
  )

  it("--allow-schema-mismatch: the listed inventory tools by name, however the prompt shows them", async () => {
    const server = await fake()
    const out = join(tmp(), "enriched.jsonl")
    const r = await enrich([SHAREGPT, "--out", out, "--limit", "5", "--allow-schema-mismatch"], server)
    expect(r.status, r.stderr).toBe(0)
    const inventory = inventoryTools()
    for (const q of calls(server)) {
      const listed = promptTools(sharegpt[sourceRowOf(q.body)!][0].value)
      const expected = [...listed.keys()].filter((name) => inventory.has(name)).sort()
      expect(offeredTools(q.body).map((t) => t.tool).sort()).toEqual(expected)
    }
    expect(r.stderr).not.toMatch(/shown with other schemas/)
  }, 60_000)

  /** The news tool as a chat log shows it: `symbol` only (the inventory's has limit and tickers too). */
  const news = { name: "fmp_get_stock_news", parameters: { type: "dict", properties: { symbol: { type: "string" } } } }
  /** A ShareGPT file of one chat whose system message lists `tools` in a <tools> block. */
  const newsLog = (tools: ReadonlyArray<unknown>): string => {
    const input = join(tmp(), "news.json")
    writeFileSync(
      input,
      JSON.stringify([[
        { from: "system", value: `You call tools.\n<tools>${JSON.stringify(tools)}</tools>` },
        { from: "human", value: "Show me the latest news for TSLA please." }
      ]])
    )
    return input
  }

  it("a prompt that shows every inventory tool it lists otherwise is rejected before planning", async () => {
    // Listed twice, beside an entry no inventory reads (each entry is read on its own: one that does not
    // read once turned the whole check off), and a quote tool whose schema does not read.
    const input = newsLog([news, news, { name: "weird", parameters: { type: "string" } }, {
      name: "fmp_get_quote",
      parameters: "symbol"
    }])
    const server = await fake()
    const r = await enrich([input, "--out", join(tmp(), "o.jsonl"), "--dry-run"], server)
    expect(r.stdout + r.stderr).toMatch(
      /row 0: reject, .*: the system message shows the inventory's tools it lists with other schemas \(fmp_get_stock_news: params symbol shown, limit, tickers in the inventory; fmp_get_quote: its shown schema does not read \(.*\)\): a plan would teach params the prompt never shows; use --inventory-from-prompt .*, or --allow-schema-mismatch/
    )
    expect(calls(server)).toEqual([])
  })

  it(
    "--resume --force goes on with the run's settings (a run made without the shown-schema check), not another input",
    async () => {
      // Every row is rejected by the check: before, the resumed run failed with "no usable row" before --force
      // could plan the rows as the run did. The made run's settings lack `shown_schemas` and `plan_leak`, as a run
      // made before either existed (its one listed tool leaves a plan no distractor: --allow-plan-leak plans it).
      const input = newsLog([news])
      const server = await fake()
      const out = join(tmp(), "o.jsonl")
      const made = await enrich([input, "--out", out, "--allow-schema-mismatch", "--allow-plan-leak"], server)
      expect(made.status, made.stderr).toBe(0)
      const before = calls(server).length
      const resumed = await enrich([input, "--out", out, "--resume", "--force"], server)
      expect(resumed.status, resumed.stderr).toBe(0)
      expect(resumed.stderr).not.toMatch(/no usable row/)
      expect(resumed.stderr).toMatch(/0 of 1 samples to make/)
      expect(calls(server).length).toBe(before)
      // Without --resume the check applies and the input has no usable row.
      const fresh = await enrich([input, "--out", join(tmp(), "o2.jsonl")], server)
      expect(fresh.status).toBe(1)
      expect(fresh.stderr).toMatch(/no usable row: all 1 rows read were rejected/)
      // The same prompts in another file: the run planned the rows of its own input, which --force cannot swap.
      const other = join(tmp(), "other.json")
      writeFileSync(other, readFileSync(input))
      const swapped = await enrich([other, "--out", out, "--resume", "--force", "--allow-schema-mismatch"], server)
      expect(swapped.status).toBe(2)
      expect(swapped.stderr).toMatch(
        /--resume --force: run \S+ planned another input file or inventory; it can only go on with those \(start a new run\)/
      )
      // --servers names servers of the inventory, which --inventory-from-prompt does not read.
      const both = await enrich([
        input,
        "--out",
        join(tmp(), "o3.jsonl"),
        "--inventory-from-prompt",
        "--servers",
        "fmp"
      ], server)
      expect(both.status).toBe(2)
      expect(both.stderr).toMatch(
        /--servers: cannot be combined with --inventory-from-prompt \(prompt tools are all on server/
      )
      expect(calls(server).length).toBe(before)
    },
    60_000
  )

  it("a <tools> block that does not read (broken JSON) rejects its row, named, in both modes", async () => {
    const input = join(tmp(), "broken.json")
    const system = "Function signatures are within <tools></tools> XML tags.\n" +
      "<tools>[{\"name\": \"fmp_get_quote\", \"parameters\": {\"type\": \"dict\",}]</tools>"
    writeFileSync(input, JSON.stringify([[{ from: "system", value: system }, { from: "human", value: "Quote AAPL." }]]))
    const server = await fake()
    for (const mode of [[], ["--inventory-from-prompt"]]) {
      const r = await enrich([input, "--out", join(tmp(), "o.jsonl"), "--dry-run", ...mode], server)
      expect(r.stdout + r.stderr).toMatch(
        /row 0: reject, .*\[0\]\.value: the system message's <tools> block does not read as its tools: it is not valid JSON \(/
      )
    }
    // An empty list lists no tools: skyrl's listing is added (it is not a broken block).
    writeFileSync(
      input,
      JSON.stringify([[{ from: "system", value: "Tools: <tools>[]</tools>" }, { from: "human", value: "Quote AAPL." }]])
    )
    const empty = await enrich([input, "--out", join(tmp(), "o.jsonl"), "--dry-run"], server)
    expect(empty.stdout + empty.stderr).toMatch(/row 0: plan \(/)
    expect(calls(server)).toEqual([])
  })

  it("a second run calls the model 0 times: with --resume, and on its own output", async () => {
    const server = await fake()
    const dir = tmp()
    const out = join(dir, "enriched.jsonl")
    const first = await enrich([SHAREGPT, "--out", out, "--limit", "5", "--inventory-from-prompt"], server)
    expect(first.status, first.stderr).toBe(0)
    expect(calls(server)).toHaveLength(5)
    // Each row offers its prompt's own tools: its <tools> block shows none it does not offer.
    expect(first.stderr).not.toMatch(/tools-shown-unoffered/)
    const firstRows = readFileSync(out, "utf8")

    const resumed = await enrich(
      [SHAREGPT, "--out", out, "--limit", "5", "--inventory-from-prompt", "--resume"],
      server
    )
    expect(resumed.status, resumed.stderr).toBe(0)
    expect(calls(server)).toHaveLength(5)
    expect(readFileSync(out, "utf8")).toBe(firstRows)
    expect(resumed.stderr).toMatch(/0 of 5 samples to make/)

    // Its own output as input: every row has a plan (valid against its prompt's tools), so every row is
    // kept as is (copied unchanged), with the columns of the user's own that a row holds (was: left out).
    // (On every row: a column on some rows only is an arrow/key-sets violation of the checks as written.)
    const withOwn = readJsonl(out).map((r: any, i: number) => ({
      ...r,
      ability: "finance",
      extra_info: { ...r.extra_info, index: i }
    }))
    const ownInput = join(dir, "own.jsonl")
    writeFileSync(ownInput, withOwn.map((r: unknown) => JSON.stringify(r)).join("\n") + "\n")
    const again = join(dir, "again.jsonl")
    const second = await enrich([ownInput, "--out", again, "--inventory-from-prompt"], server)
    expect(second.status, second.stderr).toBe(0)
    expect(calls(server)).toHaveLength(5)
    expect(readJsonl(again)).toEqual(withOwn)
    expect(second.stderr.split("\n").filter((l) => /: kept as is: already has a plan/.test(l))).toHaveLength(5)
    // The count says the same (was "5 skipped", while the 5 rows were written).
    expect(second.stderr).toContain("enrich: 5 rows written (0 planned, 5 kept as is, 0 rejected input rows)")

    // The same through Parquet (SkyRL rows read from .parquet).
    const parquet = join(dir, "enriched.parquet")
    expect((await enrich([out, "--out", parquet, "--inventory-from-prompt"], server)).status).toBe(0)
    const fromParquet = join(dir, "from-parquet.jsonl")
    const third = await enrich([parquet, "--out", fromParquet, "--inventory-from-prompt"], server)
    expect(third.status, third.stderr).toBe(0)
    expect(calls(server)).toHaveLength(5)
    expect(readJsonl(fromParquet)).toEqual(readJsonl(out))
  }, 90_000)
})

describe("enrich --resume of a project folder moved whole", () => {
  for (const input of ["inside the folder", "outside it"] as const) {
    it(`continues the run where it is now and calls the model 0 times (input file ${input})`, async () => {
      // Before: "no earlier enrich run ...; starting a new run", and the 3 rows were planned (paid for) again;
      // an input file moved with the folder was also a setting that differed (input.path).
      const server = await fake()
      const dir = tmp()
      mkdirSync(join(dir, "proj"))
      const source = (proj: string) => (input === "outside it" ? SHAREGPT : join(dir, proj, "in.json"))
      if (input !== "outside it") copyFileSync(SHAREGPT, source("proj"))
      const args = (proj: string) => [
        source(proj),
        "--out",
        join(dir, proj, "enriched.jsonl"),
        "--limit",
        "3",
        "--inventory-from-prompt"
      ]
      const first = await enrich(args("proj"), server)
      expect(first.status, first.stderr).toBe(0)
      expect(calls(server)).toHaveLength(3)
      const rows = readFileSync(join(dir, "proj", "enriched.jsonl"), "utf8")
      renameSync(join(dir, "proj"), join(dir, "proj2"))
      const resumed = await enrich([...args("proj2"), "--resume"], server)
      expect(resumed.status, resumed.stderr).toBe(0)
      expect(resumed.stderr).toMatch(
        /--resume: run \S+ was made in .*\/proj\/raw_llm\/\S+ for .*\/proj\/enriched\.jsonl; both moved/
      )
      expect(resumed.stderr).toMatch(/0 of 3 samples to make/)
      expect(calls(server)).toHaveLength(3)
      // The same rows: raw_output_path is relative to the output, which moved with its run directory.
      expect(readFileSync(join(dir, "proj2", "enriched.jsonl"), "utf8")).toBe(rows)
      expect(readdirSync(join(dir, "proj2", "raw_llm"))).toHaveLength(1)
    }, 60_000)
  }
})

describe("enrich offline: an answer is replayed only for the prompt it was recorded for", () => {
  const offline = (args: ReadonlyArray<string>) => runCli(["enrich", ...args, "--llm", "replay"])
  const plans = (file: string) => readJsonl(file).map((r) => r.reward_spec.ground_truth.tool_sequence)

  it("a run's own archive plans its prompts again; the bundled answers (generate's) plan none of yours", async () => {
    const server = await fake()
    const dir = tmp()
    const out = join(dir, "enriched.jsonl")
    const first = await enrich([SHAREGPT, "--out", out, "--limit", "3", "--inventory-from-prompt"], server)
    expect(first.status, first.stderr).toBe(0)

    const again = join(dir, "again", "enriched.jsonl")
    const replayed = await offline([
      SHAREGPT,
      "--out",
      again,
      "--limit",
      "3",
      "--inventory-from-prompt",
      "--replay-dir",
      join(dir, "raw_llm")
    ])
    expect(replayed.status, replayed.stderr).toBe(0)
    expect(plans(again)).toEqual(plans(out))
    expect(calls(server)).toHaveLength(3)

    // Finance prompts against the finance inventory: the bundled answers are finance plans, but for other
    // prompts (an AMD / INTC comparison must not get an NVDA plan), so no row is written.
    const input = join(FIXTURES, "enrich", "openai_messages.jsonl")
    const bundled = join(dir, "bundled.jsonl")
    const none = await offline([input, "--out", bundled, "--limit", "5"])
    expect(none.status).toBe(1)
    expect(existsSync(bundled)).toBe(false)
    const notPlanned = none.stderr.split("\n").filter((l) => /\[sample \d+\]: not planned: no recorded answer/.test(l))
    expect(notPlanned.length).toBeGreaterThan(0)
    expect(none.stderr).toMatch(/made 0 of \d+ valid rows: .*samples? with no answer: .*set OPENAI_API_KEY/)
    expect(none.stderr).toContain(`; ${bundled} was not written (an empty dataset is never written`)
    expect(none.stderr).not.toMatch(/rerun with --resume/)
  }, 90_000)
})

describe("enrich: SkyRL rows and OpenAI message lists", () => {
  const SKYRL = join(FIXTURES, "enrich", "skyrl_rows.jsonl")
  const source = readJsonl(SKYRL)

  it("an OpenAI fine-tuning record's `tools` are its prompt's tools (shown, planned with); its other fields kept", async () => {
    const server = await fake()
    const dir = tmp()
    const input = join(dir, "ft.jsonl")
    const weather = {
      type: "function",
      function: {
        name: "get_weather",
        description: "Current weather for a city",
        parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
      }
    }
    const record = {
      messages: [{ role: "user", content: "What is the weather in Paris?" }],
      tools: [weather],
      category: "weather",
      meta: { origin: "ft-2026" }
    }
    writeFileSync(input, JSON.stringify(record) + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await enrich([input, "--out", out, "--inventory-from-prompt"], server)
    expect(r.status, r.stderr).toBe(0)
    expect(offeredTools(calls(server)[0]!.body).map((t) => t.tool)).toEqual(["get_weather"])
    const [row] = readJsonl(out)
    expect(row.prompt[0].content).toContain(`<tools>\n${JSON.stringify(weather)}\n</tools>`)
    expect(plan(row).map((s: any) => s.tool)).toEqual(["get_weather"])
    expect(row.prompt[1]).toEqual({ role: "user", content: "What is the weather in Paris?" })
    // The record's other fields are kept in the metadata (was: dropped).
    expect(meta(row).source_fields).toEqual({ category: "weather", meta: { origin: "ft-2026" } })
  })

  it("SkyRL rows keep the columns of the user's own, planned or kept as is (one set of keys in the file)", async () => {
    const server = await fake()
    const dir = tmp()
    const input = join(dir, "own.jsonl")
    const withOwn = source.map((row: any, i: number) => ({
      ...row,
      ability: "finance",
      extra_info: { ...row.extra_info, index: i }
    }))
    writeFileSync(input, withOwn.map((row: unknown) => JSON.stringify(row)).join("\n") + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await enrich([input, "--out", out], server)
    expect(r.status, r.stderr).toBe(0)
    expect(calls(server).map((q) => sourceRowOf(q.body)).sort()).toEqual([0, 2])
    // Row 1, kept as is, gives its plan away (its system message names only its plan's tool): not copied.
    const rows = readJsonl(out)
    expect(rows.map((row: any) => [row.ability, row.extra_info.index])).toEqual([0, 2, 3].map((i) => ["finance", i]))
    expect(rows.map((row: any) => Object.keys(row).slice(5))).toEqual([0, 2, 3].map(() => ["ability"]))
    expect(rows.map((row: any) => Object.keys(row.extra_info))).toEqual(
      [0, 2, 3].map(() => ["task_metadata", "index"])
    )
  })

  it("SkyRL rows without a plan are planned; rows with one are copied unchanged unless --overwrite", async () => {
    const server = await fake()
    const dir = tmp()
    const out = join(dir, "rows.jsonl")
    // Row 1's prompt gives its plan away (prompt/plan-leak): --allow-plan-leak copies it, with a warning (by
    // default it is rejected: "enrich: a row whose prompt would give its plan away", below).
    const r = await enrich([SKYRL, "--out", out, "--allow-plan-leak"], server)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/WARN .*prompt\/plan-leak: 1 /)
    expect(calls(server).map((q) => sourceRowOf(q.body)).sort()).toEqual([0, 2])
    const rows = readJsonl(out)
    expect(rows).toHaveLength(4)
    // Row 0: the system text as written (its tool list is not a <tools> block, so skyrl's listing of the
    // offered tools follows it) and the user message as written (trimmed); row 2 has no system message, so the
    // default one is made.
    expect(rows[0].prompt[0].role).toBe("system")
    expect(rows[0].prompt[0].content.startsWith(`${source[0].prompt[0].content}\n\nTo call a tool`)).toBe(true)
    expect(meta(rows[0]).system_prompt_origin).toBe("source_with_tools")
    expect(rows[0].prompt[1]).toEqual({ role: "user", content: "What is NVDA trading at right now?" })
    expect(rows[2].prompt[1]).toEqual({ role: "user", content: source[2].prompt[0].content })
    expect(rows[2].prompt[0].role).toBe("system")
    expect(rows[2].prompt[0].content).toContain("<tool_call>")
    for (const step of plan(rows[2])) expect(rows[2].prompt[0].content).toContain(step.tool)
    expect(rows[2].reward_spec.ground_truth.task_id).toBe("no-plan-2")
    expect(meta(rows[0]).observed_tool_calls).toBeUndefined()
    // Rows with a plan: unchanged (row 3 was written with object params by another tool: re-encoded, same values).
    expect(rows[1]).toEqual(withProvenanceDefaults(source[1]))
    expect(plan(rows[3])).toEqual(withProvenanceDefaults(source[3]).reward_spec.ground_truth.tool_sequence)
    expect(meta(rows[3])).toEqual({ ...source[3].extra_info.task_metadata, available_tools_source: "plan" })
    expect(rows[3].reward_spec.ground_truth.available_tools.length).toBeGreaterThan(0)
    // Was "skipped, already has a plan", while the row is in the output.
    expect(r.stderr).toMatch(/row 1 \(id has-plan-1\): kept as is: already has a plan \(use --overwrite/)
    // Row 2's made system message offers all 25 tools: over SkyRL's 512 default, within the run's budget of 1024,
    // so its line flags nothing.
    const row2 = r.stderr.split("\n").find((l) => /row 2 \(id no-plan-2\) \[sample 3\]: planned/.test(l))!
    expect(Number(/prompt ~(\d+) tokens/.exec(row2)![1])).toBeGreaterThan(512)
    expect(row2).not.toMatch(/over/)

    const server2 = await fake()
    const out2 = join(dir, "overwritten.jsonl")
    const o = await enrich([SKYRL, "--out", out2, "--overwrite"], server2)
    expect(o.status, o.stderr).toBe(0)
    expect(calls(server2).map((q) => sourceRowOf(q.body)).sort()).toEqual([0, 1, 2, 3])
    const rows2 = readJsonl(out2)
    expect(rows2.map((x) => meta(x).source)).toEqual(["enrich", "enrich", "enrich", "enrich"])
    expect(rows2[1].prompt[0].content.startsWith(`${source[1].prompt[0].content}\n\n`)).toBe(true)
    expect(rows2[1].prompt[1]).toEqual(source[1].prompt[1])
  }, 60_000)

  it("OpenAI message lists: prompt verbatim, tool_calls and <tool_call> blocks as observed calls", async () => {
    const { out, r, server } = await openaiPreferQuote()
    expect(r.status, r.stderr).toBe(0)
    const rows = readJsonl(out)
    expect(rows).toHaveLength(2)
    // The system message lists no tool: the offered ones are added after it (see the describe block below).
    expect(rows[0].prompt[0].content.startsWith("You are a helpful research agent.\n\n")).toBe(true)
    expect(rows[0].prompt[1]).toEqual({ role: "user", content: "Compare the current quotes of AMD and INTC." })
    expect(rows[0].reward_spec.ground_truth.task_id).toBe("oa-1")
    expect(meta(rows[0]).observed_tool_calls).toEqual([
      { name: "fmp_get_quote", arguments: { symbol: "AMD" }, message: 2 },
      { name: "fmp_get_quote", arguments: { symbol: "INTC" }, message: 2 }
    ])
    expect(rows[1].prompt[1].content).toBe("Search the web for news about the Federal Reserve meeting.")
    expect(meta(rows[1]).observed_tool_calls).toEqual([
      { name: "tavily_search", arguments: { query: "Federal Reserve meeting" }, message: 1 }
    ])
    expect(meta(rows[1]).source_format).toBe("openai")
    // No <tools> block: the whole inventory is offered.
    expect(offeredTools(calls(server)[0].body).length).toBeGreaterThan(20)
  }, 60_000)

  it(
    "no two rows share a task_id: a repeated source id, one the model gives every row, one a made id equals",
    async () => {
      // Before: rows 1 and 2 were both "dup", rows 3 and 4 both "quote-lookup", and row 1 had the id of the
      // copied row 0: enrich exited 0 and `skyrl validate` on its output failed (duplicate/task-id, 3 violations).
      // Until 2026-12-05 a made id was not checked against the source's: row 4's was "quote-lookup-row4", row 6's
      // own; and row 7, a second copy of row 0, was copied too (both exit 0, duplicate/task-id in validate).
      // Row 4 fails in the first session (its answers plan a tool no prompt offers) and is made by --resume: its id
      // is the one an uninterrupted run gives.
      let firstSession = true
      const server = await servers.start((ctx) => {
        const failing = firstSession && sourceRowOf(ctx.body) === 4
        const choice = failing ? { force: { server: "fmp", tool: "no_such_tool", params: {} } } : {}
        return answer(JSON.stringify({ ...JSON.parse(planAnswer(ctx, choice)), task_id: "quote-lookup" }), USAGE)
      })
      const dir = tmp()
      const input = join(dir, "mixed.jsonl")
      const copied = source.find((row) => row.reward_spec?.ground_truth?.task_id === "has-plan-3")
      const chat = (id: string | undefined, user: string) =>
        JSON.stringify({ ...(id === undefined ? {} : { id }), messages: [{ role: "user", content: user }] })
      writeFileSync(
        input,
        [
          JSON.stringify(copied),
          chat("has-plan-3", "Get the AMD quote."),
          chat("dup", "Get the INTC quote."),
          chat("dup", "Get the KO quote."),
          chat(undefined, "Get the PEP quote."),
          chat(undefined, "Get the TSLA quote."),
          chat("quote-lookup-row4", "Get the MSFT quote."),
          JSON.stringify(copied)
        ].join("\n") + "\n"
      )
      const out = join(dir, "rows.jsonl")
      const first = await enrich([input, "--out", out, "--max-attempts", "1"], server)
      expect(first.status, first.stderr).toBe(1)
      expect(first.stderr).toMatch(/made 6 of 7 valid rows/)
      firstSession = false
      const r = await enrich([input, "--out", out, "--resume"], server)
      expect(r.status, r.stderr).toBe(0)
      const rows = readJsonl(out)
      expect(rows.map((x) => x.reward_spec.ground_truth.task_id)).toEqual([
        "has-plan-3",
        "has-plan-3-row1",
        "dup",
        "dup-row3",
        "quote-lookup-row4-2",
        "quote-lookup-row5",
        "quote-lookup-row4"
      ])
      expect(rows.slice(1).map((x) => meta(x).source_id)).toEqual([
        "has-plan-3",
        "dup",
        "dup",
        null,
        null,
        "quote-lookup-row4"
      ])
      expect(first.stderr).toContain(
        "row 3 (id dup): its id is also the id of another row of the file; this row's task_id is dup-row3"
      )
      const inputRejects = readJsonl(`${out}.rejects.jsonl`).filter((x) => x.stage === "input")
      expect(inputRejects.map((x) => [x.row, x.field])).toEqual([[7, "reward_spec.ground_truth.task_id"]])
      expect(inputRejects[0].reason).toMatch(
        /^the row has a plan, and its task_id "has-plan-3" is also the task_id of row 0, kept as is: .*use --overwrite to plan both again/
      )
      const v = await runCli(["validate", out, "--max-prompt-tokens", "4096"])
      expect(v.stdout).not.toMatch(/duplicate\/task-id\s+[1-9]/)
      expect(v.stderr).not.toMatch(/duplicate\/task-id/)
    },
    60_000
  )

  it("JSON Lines whose rows are bare message lists: one row per line", async () => {
    const server = await fake(() => ({ prefer: ["fmp_get_quote"] }))
    const dir = tmp()
    const input = join(dir, "bare.jsonl")
    const users = ["Get the latest quote for AMD.", "Get the latest quote for INTC."]
    writeFileSync(input, users.map((u) => JSON.stringify([{ role: "user", content: u }])).join("\n") + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await enrich([input, "--out", out], server)
    expect(r.status, r.stderr).toBe(0)
    const rows = readJsonl(out)
    expect(rows.map((x) => x.prompt[1].content)).toEqual(users)
    expect(rows.map((x) => meta(x).source_row)).toEqual([0, 1])
  }, 60_000)
})

describe("enrich: bad input", () => {
  const BAD = join(FIXTURES, "enrich", "bad_rows.jsonl")

  it(
    "row-level problems go to the rejects file (file, row, field) and the run continues; the input is untouched",
    async () => {
      const server = await fake()
      const dir = tmp()
      const input = join(dir, "bad_rows.jsonl")
      copyFileSync(BAD, input)
      const before = fingerprint(input)
      const out = join(dir, "rows.jsonl")
      const r = await enrich([input, "--out", out], server)
      expect(r.status, r.stderr).toBe(0)
      const rows = readJsonl(out)
      expect(rows.map((x) => meta(x).source_id)).toEqual(["good-0", "good-5"])
      const rejects = readJsonl(`${out}.rejects.jsonl`)
      expect(rejects.map((x) => [x.row, x.field])).toEqual([
        [1, "conversations"],
        [2, "messages[0].role"],
        [3, "messages[1].content"],
        [4, "(record)"],
        [6, ""]
      ])
      for (const x of rejects) {
        expect(x.file).toBe(input)
        expect(x.stage).toBe("input")
        expect(x.reasons[0]).toContain(`${input}, row ${x.row}`)
      }
      expect(rejects[0].reason).toBe("has no user message")
      expect(rejects[1].reason).toMatch(/^assistant message \("assistant"\) where the prompt should be/)
      expect(rejects[2].reason).toBe("is empty")
      expect(rejects[3].reason).toMatch(/^line 5 is not valid JSON/)
      expect(r.stderr).toContain(`row 3 (id empty-3): rejected: ${input}, row 3, messages[1].content: is empty`)
      expect(r.stderr).toMatch(/row 0 \(id good-0\) \[sample 1\]: planned, \d+ steps/)
      expect(calls(server)).toHaveLength(2)
      expect(fingerprint(input)).toEqual(before)
    },
    60_000
  )

  it(
    "an unreadable input fails with the file named; a file of only bad rows names the first row and field",
    async () => {
      const server = await fake()
      const dir = tmp()
      const out = join(dir, "rows.jsonl")
      // A missing input is a usage error (exit 2) naming the path, as in convert, validate and verify.
      const missing = await enrich([join(dir, "missing.jsonl"), "--out", out], server)
      expect(missing.status).toBe(2)
      expect(missing.stderr).toContain(`Path '${join(dir, "missing.jsonl")}' must exist`)
      mkdirSync(join(dir, "folder.json"))
      const folder = await enrich([join(dir, "folder.json"), "--out", out], server)
      // @effect/cli checks the argument's path type: a usage error (exit 2) naming the path.
      expect(folder.status).toBe(2)
      expect(folder.stderr).toContain(`Expected path '${join(dir, "folder.json")}' to be a regular file`)
      writeFileSync(join(dir, "broken.json"), "[{\"messages\": ")
      const broken = await enrich([join(dir, "broken.json"), "--out", out], server)
      expect(broken.status).toBe(1)
      expect(broken.stderr).toMatch(/broken\.json: not valid JSON/)
      writeFileSync(join(dir, "all-bad.json"), JSON.stringify([[{ from: "gpt", value: "hello" }]]))
      const allBad = await enrich([join(dir, "all-bad.json"), "--out", out], server)
      expect(allBad.status).toBe(1)
      expect(allBad.stderr).toMatch(
        /all-bad\.json, row 0, \[0\]\.from: assistant message \("gpt"\) where the prompt should be/
      )
      expect(calls(server)).toHaveLength(0)
      expect(existsSync(out)).toBe(false)
    },
    60_000
  )

  it(
    "a prompt holding half a surrogate pair (an emoji cut in two) is an input reject: no model call for it",
    async () => {
      // Before: the row was planned, and each of --max-attempts answers (3 paid calls) was refused for the
      // source's own text (contract/json), with `rerun with --resume to retry them` (3 more calls each time).
      const server = await fake()
      const dir = tmp()
      const input = join(dir, "chats.jsonl")
      // JSON text can escape half a pair: Python's json.dumps of a string cut inside an emoji writes "\ud83d".
      writeFileSync(
        input,
        "{\"id\": \"ok-0\", \"messages\": [{\"role\": \"user\", \"content\": \"Get the AAPL quote.\"}]}\n" +
          "{\"id\": \"cut-1\", \"messages\": [{\"role\": \"user\", \"content\": \"Get the KO quote \\ud83d\"}]}\n"
      )
      const out = join(dir, "rows.jsonl")
      const r = await enrich([input, "--out", out], server)
      expect(r.status, r.stderr).toBe(0)
      expect(calls(server)).toHaveLength(1)
      expect(readJsonl(out).map((x) => meta(x).source_id)).toEqual(["ok-0"])
      const rejects = readJsonl(`${out}.rejects.jsonl`)
      expect(rejects.map((x) => [x.stage, x.row, x.field])).toEqual([["input", 1, "messages[0].content"]])
      expect(rejects[0].reason).toMatch(/^holds a lone surrogate \(U\+D83D at character 17\)/)
    },
    60_000
  )

  it(
    "--out equal to the input, or with an unwritable extension, is a usage error (exit 2) before any call",
    async () => {
      const server = await fake()
      const dir = tmp()
      const input = join(dir, "in.jsonl")
      copyFileSync(join(FIXTURES, "enrich", "openai_messages.jsonl"), input)
      const before = fingerprint(input)
      const r = await enrich([input, "--out", input], server)
      expect(r.status).toBe(2)
      expect(r.stderr).toMatch(/--out: is the input file/)
      expect(fingerprint(input)).toEqual(before)
      const csv = await enrich([input, "--out", join(dir, "rows.csv")], server)
      expect(csv.status).toBe(2)
      expect(csv.stderr).toMatch(/--out: ".*rows\.csv" must end in \.json, \.jsonl or \.parquet/)
      expect(calls(server)).toHaveLength(0)
    },
    30_000
  )
})

describe("enrich: --dry-run, --limit, --debug and repair", () => {
  /**
   * Rows: 0 planned, 1 kept as is (has a plan), 2 rejected, 3 planned, 4 planned, 5 planned, 6 rejected (its
   * tools, two inventory tools, are too few for any plan that its prompt does not give away).
   */
  const mixed = (dir: string): string => {
    const skyrl = readJsonl(join(FIXTURES, "enrich", "skyrl_rows.jsonl"))
    const file = join(dir, "mixed.jsonl")
    const rows = [
      { id: "a", messages: [{ role: "user", content: "Get the AAPL quote." }] },
      skyrl[3],
      { id: "bad", messages: [{ role: "user", content: "" }] },
      { id: "b", messages: [{ role: "user", content: "Get the MSFT quote." }] },
      { id: "c", messages: [{ role: "user", content: "Get the AMZN quote." }] },
      { id: "d", messages: [{ role: "user", content: "Get the META quote." }] },
      {
        id: "few",
        messages: [{ role: "user", content: "What is AAPL trading at, and what does the company do?" }],
        tools: ["fmp_get_quote", "fmp_get_company_profile"].map(inventoryFunction)
      }
    ]
    writeFileSync(file, rows.map((x) => JSON.stringify(x)).join("\n") + "\n")
    return file
  }

  it("--dry-run calls no model and reports planned, kept-as-is and rejected rows with reasons", async () => {
    const server = await fake()
    const dir = tmp()
    const out = join(dir, "rows.jsonl")
    const r = await enrich([mixed(dir), "--out", out, "--dry-run"], server)
    expect(r.status, r.stderr).toBe(0)
    expect(calls(server)).toHaveLength(0)
    expect(existsSync(out)).toBe(false)
    expect(existsSync(join(dir, "raw_llm"))).toBe(false)
    expect(r.stdout).toMatch(/^row 0 \(id a\): plan \(openai; all inventory tools; 0 observed tool calls\)$/m)
    expect(r.stdout).toMatch(
      /^row 1 \(id has-plan-3\): keep as is, already has a plan \(use --overwrite to plan it again\)$/m
    )
    expect(r.stdout).toMatch(/^row 2 \(id bad\): reject, .*mixed\.jsonl, row 2, messages\[0\]\.content: is empty$/m)
    // Before (2026-12-05) it was planned, and its row written though `skyrl validate` fails it (prompt/plan-leak).
    expect(r.stdout).toMatch(
      /^row 6 \(id few\): reject, .*mixed\.jsonl, row 6, tools: the prompt's <tools> block lists too few tools for a prompt that does not give its plan away: even a plan of one of the 2 inventory tools it lists would fail `skyrl validate` \(prompt\/plan-leak: 1 distractor offered, at least 3 needed\); .*; use --allow-plan-leak to plan it anyway$/m
    )
    expect(r.stdout).toContain("planned 4, kept as is 1, rejected 2")
    expect(r.stdout).toContain("<<<USER_REQUEST\nGet the AAPL quote.\nUSER_REQUEST>>>")
  }, 30_000)

  it("--dry-run counts a row's observed tool calls in the singular too (was '1 observed tool calls')", async () => {
    const server = await fake()
    const out = join(tmp(), "rows.jsonl")
    const r = await enrich([join(FIXTURES, "enrich", "openai_messages.jsonl"), "--out", out, "--dry-run"], server)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^row 0 \(id oa-1\): plan \(openai; all inventory tools; 2 observed tool calls\)$/m)
    expect(r.stdout).toMatch(/^row 1: plan \(openai; all inventory tools; 1 observed tool call\)$/m)
  }, 30_000)

  it(
    "--dry-run: a row that is not UTF-8 is rejected naming its line and byte offset; the others are planned",
    async () => {
      const server = await fake()
      const dir = tmp()
      const file = join(dir, "latin1.jsonl")
      const good = Buffer.from(
        JSON.stringify({ id: "a", messages: [{ role: "user", content: "Get the AAPL quote." }] }) + "\n"
      )
      const bad = JSON.stringify({ id: "b", messages: [{ role: "user", content: "Get the TSLA quote at the café." }] })
      writeFileSync(file, Buffer.concat([good, Buffer.from(bad + "\n", "latin1")]))
      const r = await enrich([file, "--out", join(dir, "rows.jsonl"), "--dry-run"], server)
      expect(r.status, r.stderr).toBe(0)
      const at = good.length + bad.indexOf("é")
      expect(r.stdout).toContain(
        `row 1: reject, ${file}, row 1, (record): line 2 is not valid UTF-8: byte 0xE9 at byte offset ${at}`
      )
      expect(r.stdout).toContain("planned 1, kept as is 0, rejected 1")
    },
    30_000
  )

  it("--dry-run: a JSON Lines file whose first line is null: that row is rejected, the others planned", async () => {
    const server = await fake()
    const dir = tmp()
    const file = join(dir, "null-first.jsonl")
    const users = ["Get the AAPL quote.", "Get the TSLA quote."]
    const rows = users.map((content, i) => JSON.stringify({ id: `r${i}`, messages: [{ role: "user", content }] }))
    writeFileSync(file, ["null", ...rows].join("\n") + "\n")
    const r = await enrich([file, "--out", join(dir, "rows.jsonl"), "--dry-run"], server)
    // Was exit 1: "not JSON or JSON Lines: the first character must be '[' or '{'".
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain(
      `row 0: reject, ${file}, row 0, (record): not a SkyRL row, ShareGPT conversation or OpenAI message list (got null)`
    )
    expect(r.stdout).toContain("planned 2, kept as is 0, rejected 1")
  }, 30_000)

  it("--limit N counts planned rows only (rows kept as is and rejects before them do not count)", async () => {
    const server = await fake()
    const dir = tmp()
    const out = join(dir, "rows.jsonl")
    const r = await enrich([mixed(dir), "--out", out, "--limit", "2"], server)
    expect(r.status, r.stderr).toBe(0)
    expect(calls(server).map((q) => sourceRowOf(q.body)).sort()).toEqual([0, 3])
    const rows = readJsonl(out)
    expect(rows.map((x) => meta(x).source_id ?? x.reward_spec.ground_truth.task_id)).toEqual(["a", "has-plan-3", "b"])
    expect(readJsonl(`${out}.rejects.jsonl`).map((x) => x.row)).toEqual([2])
    const dry = await enrich([mixed(dir), "--out", out, "--limit", "3", "--dry-run"], server)
    expect(dry.stdout).toContain("planned 3, kept as is 1, rejected 1")
    expect(dry.stdout).toContain("5 rows read (stopped at --limit 3)")
  }, 60_000)

  it("archives keep each full request and answer, with or without --debug, and never the key", async () => {
    const server = await fake()
    for (const debug of [false, true]) {
      // Without --debug: the run other tests check too (made once per file).
      const { dir, r } = debug
        ? await (async () => {
          const dir = tmp()
          const out = join(dir, "rows.jsonl")
          return { dir, r: await enrich([OPENAI_MESSAGES, "--out", out, "--debug"], server) }
        })()
        : await openaiDefault()
      expect(r.status, r.stderr).toBe(0)
      const runDir = join(dir, "raw_llm", readdirSync(join(dir, "raw_llm"))[0])
      const archives = archiveRecords(runDir)
      expect(archives).toHaveLength(2)
      for (const { record } of archives) {
        expect(record.request.input[0].content).toMatch(/^Plan the request of source row \d/)
        expect(typeof record.request.instructions).toBe("string")
        expect(record.response.output).toBeDefined()
        expect(record.status).toBe("ok")
      }
      for (const f of readdirSync(runDir)) expect(readFileSync(join(runDir, f), "utf8")).not.toContain(KEY)
      expect(r.stderr).not.toContain(KEY)
      const debugLines = r.stderr.split("\n").filter((l) => /DEBUG .*tools offered; request \d+ chars/.test(l))
      expect(debugLines).toHaveLength(debug ? 2 : 0)
      expect(JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8")).settings.debug).toBe(debug)
    }
  }, 60_000)

  it("a plan naming a tool the prompt does not offer is repaired once with the validation message", async () => {
    // The first answer for each row calls fmp_get_quote, which the tavily prompt (row 1) does not offer.
    const server = await fake((ctx) =>
      isRepair(ctx.body) ? {} : { force: { server: "prompt", tool: "fmp_get_quote", params: { symbol: "MSFT" } } }
    )
    const dir = tmp()
    const out = join(dir, "rows.jsonl")
    const r = await enrich([SHAREGPT, "--out", out, "--limit", "2", "--inventory-from-prompt"], server)
    expect(r.status, r.stderr).toBe(0)
    const byRow = new Map<number, number>()
    for (const q of calls(server)) byRow.set(sourceRowOf(q.body)!, (byRow.get(sourceRowOf(q.body)!) ?? 0) + 1)
    expect(byRow.get(0)).toBe(1)
    expect(byRow.get(1)).toBe(2)
    const repair = calls(server).find((q) => isRepair(q.body))!
    expect(JSON.stringify(repair.body.input)).toContain("fmp_get_quote")
    const rows = readJsonl(out)
    expect(rows).toHaveLength(2)
    expect(plan(rows[1]).map((s: any) => s.tool)).not.toContain("fmp_get_quote")
    expect(meta(rows[1]).repaired).toBe(true)
  }, 60_000)

  it("a row whose plan stays invalid fails with its reasons logged and rejected; the others are kept", async () => {
    const server = await fake((ctx) =>
      sourceRowOf(ctx.body) === 1
        ? { force: { server: "prompt", tool: "fmp_get_quote", params: { symbol: "MSFT" } } }
        : {}
    )
    const dir = tmp()
    const out = join(dir, "rows.jsonl")
    const r = await enrich(
      [SHAREGPT, "--out", out, "--limit", "2", "--inventory-from-prompt", "--max-attempts", "1"],
      server
    )
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/made 1 of 2 valid rows/)
    expect(r.stderr).toMatch(/row 1 \[sample 2\]: failed after 1 attempts: .*fmp_get_quote/)
    expect(readJsonl(out).map((x) => meta(x).source_row)).toEqual([0])
    const rejects = readJsonl(`${out}.rejects.jsonl`)
    expect(rejects.map((x) => x.index)).toEqual([1])
    expect(archiveHolds(dir, rejects[0].raw_output_path)).toBe(true)
  }, 60_000)
})

describe("enrich: a row whose prompt would give its plan away is not written (prompt/plan-leak)", () => {
  it(
    "its sample fails at its first answer, with the reason in the rejects file; --allow-plan-leak writes it",
    async () => {
      // Before (2026-12-05): ENRICH_WARN_ONLY made every prompt/* finding a warning: row 0 was written, exit 0, and
      // `skyrl validate` failed it (prompt/plan-leak: 2 distractors offered, at least 3 needed). Its record's tools,
      // four inventory tools, are the source's: enrich cannot offer more, and the fake's plan uses two.
      const server = await fake()
      const dir = tmp()
      const input = join(dir, "tools.jsonl")
      const four = ["fmp_get_quote", "fmp_get_company_profile", "fmp_search_ticker", "fmp_get_market_gainers"]
      const records = [
        {
          id: "tf-1",
          messages: [{ role: "user", content: "What is AAPL trading at, and what does the company do?" }],
          tools: four.map(inventoryFunction)
        },
        { id: "ok", messages: [{ role: "user", content: "Get the NVDA quote." }] }
      ]
      writeFileSync(input, records.map((x) => JSON.stringify(x)).join("\n") + "\n")
      const out = join(dir, "rows.jsonl")
      const r = await enrich([input, "--out", out], server)
      expect(r.status, r.stderr).toBe(1)
      expect(r.stderr).toMatch(/made 1 of 2 valid rows/)
      // One call: no repair, no second attempt (another answer could only be a plan of fewer tools).
      expect(calls(server).map((q) => sourceRowOf(q.body)).sort()).toEqual([0, 1])
      expect(readJsonl(out).map((x) => x.reward_spec.ground_truth.task_id)).toEqual(["ok"])
      const rejects = readJsonl(`${out}.rejects.jsonl`)
      expect(rejects.map((x) => [x.index, x.attempt])).toEqual([[0, 1]])
      expect(rejects[0].reasons).toEqual([
        "prompt/plan-leak reward_spec.ground_truth.available_tools: 2 distractors offered, at least 3 needed",
        "the prompt's tool list is the source's (enrich cannot offer more tools), and another answer could only be a " +
        "plan of fewer tools than the model found the request needs; --allow-plan-leak writes such a row with a warning"
      ])
      const v = await runCli(["validate", out])
      expect(v.status, v.stdout + v.stderr).toBe(0)

      const lenient = join(dir, "lenient.jsonl")
      const l = await enrich([input, "--out", lenient, "--allow-plan-leak"], server)
      expect(l.status, l.stderr).toBe(0)
      expect(readJsonl(lenient).map((x) => x.reward_spec.ground_truth.task_id)).toEqual(["tf-1", "ok"])
      expect(l.stderr).toMatch(/WARN .*prompt\/plan-leak: 1 /)
    },
    60_000
  )
})

describe("enrich: existing plans are checked before they are copied", () => {
  it("a row whose plan the inventory refuses, or whose prompt gives its plan away, goes to the rejects file", async () => {
    const server = await fake()
    const dir = tmp()
    const input = join(dir, "rows.jsonl")
    const rows = readJsonl(join(FIXTURES, "enrich", "skyrl_rows.jsonl"))
    const bad = JSON.parse(JSON.stringify(rows[1]))
    bad.reward_spec.ground_truth.tool_sequence[0].tool = "fmp_get_quote_v9"
    writeFileSync(input, [rows[1], bad, rows[3]].map((r) => JSON.stringify(r)).join("\n") + "\n")
    const out = join(dir, "out.jsonl")
    const r = await enrich([input, "--out", out], server)
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out).map((x) => x.reward_spec.ground_truth.task_id)).toEqual(["has-plan-3"])
    const rejects = readJsonl(`${out}.rejects.jsonl`)
    expect(rejects.map((x) => [x.row, x.field])).toEqual([
      [0, "prompt[0].content"],
      [1, "reward_spec.ground_truth.tool_sequence[0].tool"]
    ])
    // Row 0's system message names its plan's one tool and no other (an old row: its offer is unknown). Before
    // (2026-12-05) it was copied, exit 0, and `skyrl validate` failed the output (prompt/plan-leak).
    expect(rejects[0].reason).toBe(
      "the row has a plan, but its prompt gives it away (prompt/plan-leak: only the plan's 1 tool is offered (the " +
        "inventory has 24 more) (tools read from the system message: the row has no available_tools)), which fails " +
        "`skyrl validate`; use --overwrite to plan it again, or --allow-plan-leak to keep it as it is"
    )
    expect(JSON.stringify(rejects[1])).toContain("fmp_get_quote_v9")
    expect(calls(server)).toHaveLength(0)
  })
})

describe("enrich: a prompt that lists no tools is shown the tools its plan may use", () => {
  const OPENAI = join(FIXTURES, "enrich", "openai_messages.jsonl")
  // Written out here, not imported: the protocol line skyrl's system messages give (MCPToolEnv parses it).
  const PROTOCOL =
    "To call a tool, reply with exactly: <tool_call>{\"name\": \"TOOL\", \"arguments\": {...}}</tool_call>"
  /** Call names of the `- name(...)` lines of a system message (read independently of src/skyrl/prompt.ts). */
  const listed = (system: string) => [...system.matchAll(/^- ([\w.]+)\(/gm)].map((m) => m[1])
  const shown = (row: any) => {
    const system: string = row.prompt[0].content
    const offered = row.reward_spec.ground_truth.available_tools.map((t: any) => t.call_name)
    expect(listed(system)).toEqual(offered)
    for (const step of row.reward_spec.ground_truth.tool_sequence) expect(offered).toContain(step.call_name)
    expect(system).toContain(PROTOCOL)
  }

  it("a system message without a <tools> block keeps its text and gets the offered tools after it", async () => {
    // The run the OpenAI message list test checks too (made once per file); the --resume below is refused
    // before it writes anything or calls the model.
    const { dir, out, r, server } = await openaiPreferQuote()
    expect(r.status, r.stderr).toBe(0)
    const rows = readJsonl(out)
    expect(rows).toHaveLength(2)
    const system: string = rows[0].prompt[0].content
    expect(rows[0].prompt[0].role).toBe("system")
    // The source's text (trimmed) first, a blank line, then skyrl's protocol and tool lines; no date line added.
    expect(system.startsWith("You are a helpful research agent.\n\nTo call a tool, reply with exactly: ")).toBe(true)
    expect(system).not.toMatch(/Today is/)
    expect(rows[0].prompt[1]).toEqual({ role: "user", content: "Compare the current quotes of AMD and INTC." })
    shown(rows[0])
    // The whole inventory fits the default budget of 1024 tokens: every one of its 25 tools is listed.
    expect(listed(system)).toHaveLength(25)
    expect(plan(rows[0]).map((s: any) => s.tool)).toContain("fmp_get_quote")
    expect(meta(rows[0]).system_prompt_origin).toBe("source_with_tools")
    expect(meta(rows[0]).prompt_tokens_est).toBeLessThanOrEqual(1024)
    // The plan is valid and the file passes validate, which finds every offered tool named in the prompt.
    const v = await runCli(["validate", out, "--json"])
    expect(v.status, v.stdout + v.stderr).toBe(0)
    const report = JSON.parse(v.stdout)
    expect(report.violations).toBe(0)
    expect(report.rules.find((x: any) => x.id === "prompt/tools-not-shown").count).toBe(0)
    // A setting of the run: --resume with --keep-system-message is refused, naming it.
    const manifest = JSON.parse(readFileSync(join(dir, "raw_llm", meta(rows[0]).run_id, "manifest.json"), "utf8"))
    expect(manifest.run_settings.input.list_offered_tools).toBe(true)
    const made = tree(dir)
    const resumed = await enrich([OPENAI, "--out", out, "--resume", "--keep-system-message"], server)
    expect(resumed.status).toBe(2)
    expect(resumed.stderr).toMatch(
      /was made with other settings: input\.list_offered_tools: true in the run, \(none\) now/
    )
    // Refused before anything was written (the run is shared with another test).
    expect(tree(dir)).toEqual(made)
  }, 60_000)

  it("a source without a system message gets skyrl's own system message, marked as made", async () => {
    const { out, r } = await openaiDefault()
    expect(r.status, r.stderr).toBe(0)
    const row = readJsonl(out)[1]
    expect(row.prompt).toHaveLength(2)
    expect(row.prompt[0].content.startsWith("You are an agent that solves the user's task with tools.")).toBe(true)
    expect(row.prompt[0].content).toMatch(/^Today is \d{4}-\d{2}-\d{2}\.$/m)
    shown(row)
    expect(meta(row).system_prompt_origin).toBe("generated")
  }, 60_000)

  it("--keep-system-message keeps the source's system message byte for byte (the old rows)", async () => {
    const server = await fake(() => ({ prefer: ["fmp_get_quote"] }))
    const dir = tmp()
    const out = join(dir, "rows.jsonl")
    const r = await enrich([OPENAI, "--out", out, "--keep-system-message"], server)
    expect(r.status, r.stderr).toBe(0)
    const rows = readJsonl(out)
    expect(rows[0].prompt).toEqual([
      { role: "system", content: "You are a helpful research agent." },
      { role: "user", content: "Compare the current quotes of AMD and INTC." }
    ])
    expect(meta(rows[0]).system_prompt_origin).toBe("source")
    // available_tools records the whole inventory, as before.
    expect(rows[0].reward_spec.ground_truth.available_tools).toHaveLength(25)
    const manifest = JSON.parse(
      readFileSync(join(dir, "raw_llm", meta(rows[0]).run_id, "manifest.json"), "utf8")
    )
    // The run records the setting only for the default (a run made before it resumes with the flag).
    expect(manifest.run_settings.input.list_offered_tools).toBeUndefined()
    expect(manifest.settings.keep_system_message).toBe(true)
    // validate warns about such a row (exit 0): its prompt names none of the tools it offers.
    const v = await runCli(["validate", out, "--json"])
    expect(v.status, v.stdout + v.stderr).toBe(0)
    const shownRule = JSON.parse(v.stdout).rules.find((x: any) => x.id === "prompt/tools-not-shown")
    expect(shownRule.examples.map((e: any) => e.row)).toEqual([0])
  }, 60_000)

  it(
    "the prompt budget applies to the new prompt: fewer tools under a tight one, a reject when nothing fits",
    async () => {
      const server = await fake(() => ({ prefer: ["fmp_get_quote"] }))
      const dir = tmp()
      const out = join(dir, "rows.jsonl")
      const r = await enrich([OPENAI, "--out", out, "--limit", "1", "--max-prompt-tokens", "300"], server)
      expect(r.status, r.stderr).toBe(0)
      const row = readJsonl(out)[0]
      shown(row)
      expect(listed(row.prompt[0].content).length).toBeLessThan(25)
      expect(listed(row.prompt[0].content).length).toBeGreaterThanOrEqual(1 + 3)
      expect(meta(row).prompt_tokens_est).toBeLessThanOrEqual(300)

      // 80 tokens: row 0's own text, skyrl's tool-call lines and its user message are already over, and so is
      // row 1's user message with skyrl's own system message: both are rejected before any model call (row 1
      // was planned, and its prompt refused after every attempt, each paid for).
      const tight = await fake(() => ({ prefer: ["fmp_get_quote"] }))
      const out2 = join(dir, "tight.jsonl")
      const t = await enrich([OPENAI, "--out", out2, "--max-prompt-tokens", "80", "--max-attempts", "1"], tight)
      expect(t.status).toBe(1)
      expect(calls(tight)).toEqual([])
      // No usable row: the run fails naming the first reject (as for any input whose rows are all rejected).
      expect(t.stderr).toMatch(
        /row 0, messages\[0\]\.content: the system message lists no tools, and with skyrl's tool-call lines and the user message it takes \d+ tokens before any tool is listed, over --max-prompt-tokens 80 .*\(no usable row: all 2 rows read were rejected\)/
      )
      const dry = await enrich([OPENAI, "--out", out2, "--max-prompt-tokens", "80", "--dry-run"], tight)
      expect(dry.stdout + dry.stderr).toMatch(
        /row 1: reject, .*row 1: the user message with skyrl's system message takes \d+ tokens before any tool is listed, over --max-prompt-tokens 80 \(raise it\)/
      )
    },
    60_000
  )
})
