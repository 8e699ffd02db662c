/**
 * Issue 18 end to end (the built CLI against the OpenAI-compatible fake): any inventory (the domains
 * stage), a work plan with coverage (focus tools, styles, personas from the seed), near-duplicates
 * rejected at generation with what to avoid, and the diversity report of `validate`.
 */
import { Either } from "effect"
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import type { Inventory } from "../src/domain/inventory.js"
import { parseInventoryText } from "../src/domain/inventory.js"
import { convertTask } from "../src/skyrl/convert.js"
import { encodeRow } from "../src/skyrl/layout.js"
import { DEFAULT_PERSONAS, TASK_STYLES } from "../src/skyrl/personas.js"
import { runCli } from "./support/cli.js"
import { planAnswer } from "./support/fakeEnrich.js"
import type { FakeHandler, FakeServer } from "./support/fakeOpenAI.js"
import { answer, refusal } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, readJsonl, runDirOf, tempDir, USAGE } from "./support/fakeRun.js"
import {
  FAKE_DOMAINS,
  firstUserText,
  isRepairRequest,
  isStageRequest,
  isTaskRequest,
  sampleNumberOf,
  schemaNameOf,
  validTaskFor
} from "./support/fakeTasks.js"
import { expectNoFinanceWords } from "./support/financeWords.js"
import { loadInventory } from "./support/inventories.js"
import { ROOT } from "./support/python.js"

const servers = fakes()
afterEach(servers.closeAll)
const fake = (handler: FakeHandler) => servers.start(handler)
const env = (server: FakeServer) => llmEnv(server, "sk-test-diversity")
const tmp = () => tempDir("skyrl-div-")
/** First-attempt task requests by sample number: the request text. */
const firstRequests = (server: FakeServer): Map<number, string> => {
  const out = new Map<number, string>()
  for (const q of server.requests) {
    const text = firstUserText(q.body)
    if (!isTaskRequest(q.body) || isRepairRequest(q.body) || /This is attempt \d+/.test(text)) continue
    out.set(sampleNumberOf(q.body)!, text)
  }
  return out
}
const countsOf = (values: ReadonlyArray<string>) => {
  const m = new Map<string, number>()
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1)
  return m
}

describe("any inventory: generate over server-everything", () => {
  it(
    "imported with `tools import`: no finance word in any request; the domains stage is archived, shown by --dry-run, " +
      "and reused on --resume",
    async () => {
      const dir = tmp()
      const invFile = join(dir, "everything.json")
      const bin = join(ROOT, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
      const imported = await runCli([
        "tools",
        "import",
        "--stdio",
        `everything=${process.execPath} ${bin} stdio`,
        "--out",
        invFile
      ])
      expect(imported.status, imported.stderr).toBe(0)
      const inventory: Inventory = Either.getOrThrow(parseInventoryText(readFileSync(invFile, "utf8"), invFile))
      const out = join(dir, "ds.jsonl")
      const args = [
        "generate",
        "-n",
        "8",
        "--out",
        out,
        "--inventory",
        invFile,
        "--llm",
        "openai",
        "--concurrency",
        "2"
      ]

      // --dry-run shows the domains stage's request (and calls nothing).
      const idle = await fake(() => answer("{}"))
      const dry = await runCli([...args, "--dry-run"], { env: env(idle) })
      expect(dry.status, dry.stderr).toBe(0)
      expect(idle.requests).toHaveLength(0)
      expect(dry.stdout).toContain("## domains stage")
      expect(dry.stdout).toContain("\"name\": \"skyrl_domains\"")
      expect(dry.stdout).toContain("Propose 6 distinct use-case domains")
      expectNoFinanceWords(dry.stdout, inventory)

      // Run 1: sample 3 is refused and has one attempt, so the run ends incomplete.
      const first = await fake((ctx) =>
        sampleNumberOf(ctx.body) === 3
          ? refusal("I can't help with that.")
          : answer(validTaskFor(ctx, inventory), USAGE)
      )
      const r1 = await runCli([...args, "--max-attempts", "1"], { env: env(first) })
      expect(r1.status).toBe(1)
      expect(r1.stderr).toMatch(/made 7 of 8 valid rows/)
      expect(first.requests.map((q) => schemaNameOf(q.body)).slice(0, 2)).toEqual(["skyrl_domains", "skyrl_subjects"])
      const runDir = runDirOf(out)
      // Archived like every call, in the ledger, and cached in the run directory.
      const stage = JSON.parse(readFileSync(join(runDir, "stage_domains_c01.json"), "utf8"))
      expect(stage.status).toBe("ok")
      expect(stage.request.text.format.name).toBe("skyrl_domains")
      const ledger = readJsonl(join(runDir, "ledger.jsonl"))
      expect(ledger.filter((l) => l.purpose === "domains").map((l) => l.key)).toEqual(["stage_domains_c01.json"])
      const inputs = JSON.parse(readFileSync(join(runDir, "plan_inputs.json"), "utf8"))
      expect(inputs.domains).toEqual(FAKE_DOMAINS)
      expect(inputs.stages.domains).toBe("stage_domains_c01.json")
      const manifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"))
      expect(manifest.run_settings.diversity.domains_from).toBe("model")
      expect(manifest.counts.calls).toBe(2 + 8)

      // --dry-run now shows the cached domains.
      const dry2 = await runCli([...args, "--dry-run"], { env: env(idle) })
      expect(dry2.stdout).toContain(
        `cached in run ${manifest.run_id} (reused with --resume): ${FAKE_DOMAINS.join("; ")}`
      )

      // Run 2 (--resume): no stage is asked again; sample 3 is made with the run's domains.
      const second = await fake((ctx) => answer(validTaskFor(ctx, inventory), USAGE))
      const r2 = await runCli([...args, "--resume"], { env: env(second) })
      expect(r2.status, r2.stderr).toBe(0)
      expect(second.requests.filter((q) => isStageRequest(q.body))).toHaveLength(0)
      expect(second.requests.map((q) => sampleNumberOf(q.body))).toEqual([3])
      expect(readJsonl(out)).toHaveLength(8)
      expect(readdirSync(runDir).filter((f) => f.startsWith("stage_domains"))).toEqual(["stage_domains_c01.json"])

      // No finance domain or example in any request of either run (stages, tasks, repairs).
      for (const q of [...first.requests, ...second.requests]) {
        const text = [q.body.instructions, ...q.body.input.map((m: any) => m.content)].join("\n")
        expectNoFinanceWords(text, inventory)
        if (isTaskRequest(q.body)) expect(FAKE_DOMAINS).toContain(/^Domain: (.*)\.$/m.exec(text)![1])
      }
    },
    90_000
  )
})

describe("work plan with coverage", () => {
  const run = async (seed: number) => {
    const server = await fake((ctx) => answer(validTaskFor(ctx), USAGE))
    const out = join(tmp(), "ds.jsonl")
    const r = await runCli(
      ["generate", "-n", "100", "--out", out, "--llm", "openai", "--concurrency", "8", "--seed", String(seed)],
      { env: env(server) }
    )
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out)).toHaveLength(100)
    return firstRequests(server)
  }

  it(
    "-n 100 over the finance inventory: focus tools cover all 25 tools evenly, each request has a persona and a style; same seed same requests, another seed others",
    async () => {
      const a = await run(7)
      expect([...a.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
      const requests = [...a.values()]
      const focus = countsOf(requests.map((t) => /^Focus tool: the plan must call (\S+) /m.exec(t)![1]))
      expect(focus.size).toBe(25)
      expect(Math.max(...focus.values()) - Math.min(...focus.values())).toBeLessThanOrEqual(1)
      const styleNames = TASK_STYLES.map((s) => s.name)
      const styles = countsOf(requests.map((t) => /^Task style: (\w+): /m.exec(t)![1]))
      for (const s of styles.keys()) expect(styleNames).toContain(s)
      expect(styles.size).toBe(TASK_STYLES.length)
      // 100 requests over 8 styles and 24 personas: 12-13 each, 4-5 each.
      expect([...styles.values()].every((n) => n === 12 || n === 13)).toBe(true)
      const personas = countsOf(requests.map((t) => /^The user is (.+); write the request/m.exec(t)![1]))
      for (const p of personas.keys()) expect(DEFAULT_PERSONAS).toContain(p)
      expect(personas.size).toBe(DEFAULT_PERSONAS.length)
      expect([...personas.values()].every((n) => n === 4 || n === 5)).toBe(true)

      const again = await run(7)
      expect(again).toEqual(a)
      const other = await run(8)
      const differing = [...a.keys()].filter((k) => other.get(k) !== a.get(k)).length
      expect(differing).toBeGreaterThan(90)
    },
    120_000
  )
})

describe("near-duplicates at generation", () => {
  it(
    "a near-duplicate injected by the model is rejected, the sample's next request names what to avoid, and the run ends with N rows none a near-duplicate of another",
    async () => {
      const words = Array.from({ length: 40 }, (_, i) => `w${i}`)
      const long = `Please compare ${words.join(" ")} and summarize it for the weekly review.`
      let sample1: any
      const server = await fake((ctx) => {
        const task = JSON.parse(validTaskFor(ctx))
        const k = sampleNumberOf(ctx.body)
        const first = !/This is attempt \d+/.test(firstUserText(ctx.body))
        if (k === 1) sample1 = { ...task, user_prompt: long }
        if (k === 1) return answer(JSON.stringify(sample1), USAGE)
        // Sample 3's first answer: sample 1's prompt with its last word changed (3-word shingle Jaccard 0.95).
        if (k === 3 && first) {
          return answer(JSON.stringify({ ...task, user_prompt: long.replace("review.", "memo.") }), USAGE)
        }
        return answer(JSON.stringify(task), USAGE)
      })
      const dir = tmp()
      const out = join(dir, "ds.jsonl")
      // The injected prompts do not state their plans' values: warned of, not repaired, so the gate alone judges them.
      const flags = "--llm openai --concurrency 1 --near-dup 0.8 --allow-unstated-literals".split(" ")
      const r = await runCli(["generate", "-n", "6", "--out", out, ...flags], { env: env(server) })
      expect(r.status, r.stderr).toBe(0)
      const rows = readJsonl(out)
      expect(rows).toHaveLength(6)
      const rejects = readJsonl(`${out}.rejects.jsonl`)
      expect(rejects.map((x) => [x.index, x.attempt])).toEqual([[2, 1]])
      expect(rejects[0].reasons.join(" ")).toMatch(
        /^duplicate\/similar-prompt prompt: 0\.\d\d similar to the prompt of sample 1/
      )
      expect(rejects[0].avoid.kind).toBe("near-prompt")
      // The next request for sample 3 names sample 1's task: its prompt and its tools.
      const retry = server.requests.map((q) => firstUserText(q.body)).find((t) =>
        /^Write task 3 of 6\./.test(t) && /This is attempt 2/.test(t)
      )!
      expect(retry).toContain("Your previous answer duplicated a task already in the dataset.")
      expect(retry).toContain(`- "${long.slice(0, 100)}`)
      const tools1 = sample1.tool_sequence.map((s: any) => s.tool).join(" > ")
      expect(retry).toContain(`tools ${tools1})`)
      // None of the rows is a near-duplicate of another (validate's own check, MinHash and plans).
      const v = await runCli(["validate", out, "--json"])
      expect(v.status, v.stderr).toBe(0)
      const report = JSON.parse(v.stdout)
      expect(report.diversity.nearDuplicates.prompt.clusters).toBe(0)
      expect(report.diversity.nearDuplicates.plan.clusters).toBe(0)
      expect(report.rules.find((x: any) => x.id === "duplicate/similar-prompt").count).toBe(0)
      // The manifest keeps the run's diversity report.
      const manifest = JSON.parse(readFileSync(join(runDirOf(out), "manifest.json"), "utf8"))
      expect(manifest.diversity.rows).toBe(6)
      expect(manifest.diversity.nearDuplicates.prompt.clusters).toBe(0)
      expect(r.stderr).toContain("Diversity (6 rows)")
      // rebuild judges the answers again in claim order and makes the same rows (the same avoid note, so
      // the same second request, answered from the archive).
      const again = join(dir, "rebuilt.jsonl")
      const b = await runCli(["rebuild", runDirOf(out), "--out", again])
      expect(b.status, b.stderr).toBe(0)
      expect(readFileSync(again, "utf8")).toBe(readFileSync(out, "utf8"))
    },
    60_000
  )

  it("--resume refuses changed personas, subjects or --near-dup (file contents, not paths)", async () => {
    const server = await fake((ctx) => answer(validTaskFor(ctx), USAGE))
    const dir = tmp()
    const out = join(dir, "ds.jsonl")
    const personas = join(dir, "personas.txt")
    const subjects = join(dir, "subjects.txt")
    writeFileSync(personas, "# who asks\na night-shift nurse\na retired sailor\n")
    writeFileSync(subjects, "Lisbon\nthe 1998 World Cup\nsourdough starters\n")
    const args = [
      "generate",
      "-n",
      "2",
      "--out",
      out,
      "--llm",
      "openai",
      "--personas",
      personas,
      "--subjects",
      subjects
    ]
    const r = await runCli(args, { env: env(server) })
    expect(r.status, r.stderr).toBe(0)
    const texts = [...firstRequests(server).values()].join("\n")
    expect(texts).toMatch(/The user is (a night-shift nurse|a retired sailor);/)
    expect(texts).toMatch(/Subject: build the task around "(Lisbon|the 1998 World Cup|sourdough starters)"\./)
    // No subjects stage with a subjects file.
    expect(server.requests.filter((q) => isStageRequest(q.body))).toHaveLength(0)

    writeFileSync(personas, "a night-shift nurse\na retired pilot\n")
    const changedPersonas = await runCli([...args, "--resume"], { env: env(server) })
    expect(changedPersonas.status).toBe(2)
    expect(changedPersonas.stderr).toMatch(/diversity\.personas\.sha256: [0-9a-f]{64} in the run, [0-9a-f]{64} now/)
    writeFileSync(personas, "# who asks\na night-shift nurse\na retired sailor\n")
    const changedNearDup = await runCli([...args, "--resume", "--near-dup", "0.9"], { env: env(server) })
    expect(changedNearDup.status).toBe(2)
    expect(changedNearDup.stderr).toMatch(/diversity\.near_dup: 0\.8 in the run, 0\.9 now/)
    writeFileSync(subjects, "Lisbon\n")
    const changedSubjects = await runCli([...args, "--resume"], { env: env(server) })
    expect(changedSubjects.status).toBe(2)
    expect(changedSubjects.stderr).toMatch(/diversity\.subjects\.(entries: 3 in the run, 1 now|sha256: )/)
    writeFileSync(subjects, "Lisbon\nthe 1998 World Cup\nsourdough starters\n")
    // The same contents at another path are the same settings.
    const moved = join(dir, "personas-copy.txt")
    writeFileSync(moved, readFileSync(personas))
    const same = await runCli([...args.map((a) => (a === personas ? moved : a)), "--resume"], { env: env(server) })
    expect(same.status, same.stderr).toBe(0)
  }, 60_000)
})

describe("the stages", () => {
  it("a stage the model keeps answering badly stops the run before any task; --resume asks it again", async () => {
    let bad = 0
    const server = await fake((ctx) => {
      if (schemaNameOf(ctx.body) !== "skyrl_subjects") return answer(validTaskFor(ctx), USAGE)
      bad++
      // An unusable list, then refusals: three attempts, all bad.
      return bad === 1 ? answer(JSON.stringify({ domains: [] }), USAGE) : refusal("No.")
    })
    const dir = tmp()
    const out = join(dir, "ds.jsonl")
    const args = ["generate", "-n", "3", "--out", out, "--llm", "openai"]
    const r = await runCli(args, { env: env(server) })
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/the subjects stage failed: .*refus.*; run again with --resume, or give --subjects FILE/)
    expect(server.requests.map((q) => schemaNameOf(q.body))).toEqual(Array(3).fill("skyrl_subjects"))
    const runDir = runDirOf(out)
    expect(readdirSync(runDir).filter((f) => f.startsWith("stage_")).sort()).toEqual([
      "stage_subjects_c01.json",
      "stage_subjects_c02.json",
      "stage_subjects_c03.json"
    ])
    expect(readJsonl(join(runDir, "ledger.jsonl"))).toHaveLength(3)
    expect(existsSync(join(runDir, "plan_inputs.json"))).toBe(false)
    const good = await fake((ctx) => answer(validTaskFor(ctx), USAGE))
    const again = await runCli([...args, "--resume"], { env: env(good) })
    expect(again.status, again.stderr).toBe(0)
    expect(good.requests.map((q) => schemaNameOf(q.body))).toEqual(["skyrl_subjects", ...Array(3).fill("skyrl_task")])
    expect(readdirSync(runDir).filter((f) => f.startsWith("stage_subjects"))).toHaveLength(4)
    const manifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"))
    expect(manifest.counts.calls).toBe(3 + 1 + 3)
  }, 60_000)
})

describe("enrich keeps its prompts", () => {
  it("a near-duplicate prompt is planned and kept as given, with a warning", async () => {
    const server = await fake((ctx) => answer(planAnswer(ctx), USAGE))
    const dir = tmp()
    const input = join(dir, "chats.jsonl")
    const base = "Please get the AAPL quote and its latest five headlines for the weekly review I send to my team " +
      "every Monday morning before the stand-up meeting"
    const prompts = [base, `${base} starts`, "What is the weather like in Lisbon today and tomorrow?"]
    writeFileSync(
      input,
      prompts.map((p, i) => JSON.stringify({ id: `c${i}`, messages: [{ role: "user", content: p }] })).join("\n") + "\n"
    )
    const out = join(dir, "enriched.jsonl")
    // One sample at a time: accepted in plan order, so sample 2 is the one compared with sample 1 (with
    // several in flight, whichever answer comes back first is accepted first).
    const r = await runCli(["enrich", input, "--out", out, "--llm", "openai", "--concurrency", "1"], {
      env: env(server)
    })
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out).map((row) => row.prompt.at(-1).content)).toEqual(prompts)
    expect(r.stderr).toMatch(/sample 2: duplicate\/similar-prompt prompt: 0\.\d\d similar to the prompt of sample 1/)
  }, 60_000)
})

describe("validate: the diversity report", () => {
  const finance = loadInventory("finance-mcp")
  type Step = { server: string; tool: string; params: Record<string, unknown> }
  const quote = (symbol: string): Step => ({ server: "fmp", tool: "fmp_get_quote", params: { symbol } })
  const news = (ticker: string): Step => ({ server: "polygon", tool: "polygon_get_news", params: { ticker, limit: 3 } })
  const profile = (symbol: string): Step => ({ server: "fmp", tool: "fmp_get_company_profile", params: { symbol } })
  const search = (query: string): Step => ({ server: "tavily", tool: "tavily_search", params: { query } })
  const row = (id: string, prompt: string, steps: ReadonlyArray<Step>, requested: string) =>
    encodeRow(Either.getOrThrow(convertTask(
      {
        task_id: id,
        user_prompt: prompt,
        tool_sequence: steps,
        evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "0-1" }] }
      },
      { inventory: finance, metadata: { requested_complexity: requested } }
    )))
  const P0 = "Check the latest quote for Microsoft and tell me whether it moved more than two percent since the " +
    "previous close, with the exact figures you used"

  it("--json reports known duplicates, coverage holes and complexity mismatches with exact counts", async () => {
    const rows = [
      row("r0", P0, [quote("MSFT")], "simple"),
      // r1: the very same prompt (duplicate/prompt), another plan.
      row("r1", P0, [quote("NVDA")], "simple"),
      // r2: the same words in another case and punctuation (duplicate/near-prompt).
      row("r2", `${P0.toUpperCase()}!!`, [quote("AMD")], "simple"),
      // r3: one word changed at the end (MinHash only: duplicate/similar-prompt).
      row("r3", P0.replace("used", "found"), [quote("INTC")], "simple"),
      // r4: another prompt, r0's plan (duplicate/same-plan).
      row("r4", "What does Microsoft trade at right now? Just the price please.", [quote("MSFT")], "simple"),
      // r5: requested complex, made simple (2 calls): a complexity mismatch.
      row("r5", "Give me Tesla's quote and three recent headlines about it.", [quote("TSLA"), news("TSLA")], "complex"),
      // r6: requested simple, made moderate (3 calls): a complexity mismatch.
      row(
        "r6",
        "Profile Nvidia, quote it, and list three news items.",
        [profile("NVDA"), quote("NVDA"), news("NVDA")],
        "simple"
      ),
      row(
        "r7",
        "Search the web for recent solar panel recycling startups.",
        [search("solar panel recycling startups")],
        "simple"
      )
    ]
    const dir = tmp()
    const file = join(dir, "known.jsonl")
    writeFileSync(file, rows.map((x) => JSON.stringify(x)).join("\n") + "\n")
    const r = await runCli(["validate", file, "--json"])
    expect(r.status).toBe(1) // duplicate/prompt and duplicate/near-prompt are errors
    const report = JSON.parse(r.stdout)
    const count = (id: string) => report.rules.find((x: any) => x.id === id).count
    expect(count("duplicate/prompt")).toBe(1)
    expect(count("duplicate/near-prompt")).toBe(1)
    // r1, r2 (identical words) and r3 are each at least 0.8 similar to r0.
    expect(count("duplicate/similar-prompt")).toBe(3)
    expect(report.rules.find((x: any) => x.id === "duplicate/similar-prompt").severity).toBe("warning")
    expect(count("duplicate/same-plan")).toBe(1)
    expect(report.rules.find((x: any) => x.id === "duplicate/same-plan").examples[0]).toMatchObject({ row: 4 })
    const d = report.diversity
    expect(d.rows).toBe(8)
    // 4 tools used (quote, news, profile, tavily_search) of 25.
    expect(d.tools.used).toBe(4)
    expect(d.tools.inventory).toBe(25)
    expect(d.tools.neverUsed).toHaveLength(21)
    expect(d.tools.neverUsed).toContain("slack/send_slack_message")
    expect(d.tools.perTool.find((t: any) => t.tool === "fmp_get_quote").rows).toBe(7)
    expect(d.nearDuplicates.prompt).toEqual({ clusters: 1, rows: 4, redundant: 3 })
    expect(d.nearDuplicates.plan).toEqual({ clusters: 1, rows: 2, redundant: 1 })
    const cluster = d.nearDuplicates.clusters.find((c: any) => c.kind === "near-prompt")
    expect(cluster.members.map((m: any) => m.row)).toEqual([0, 1, 2, 3])
    const pair = cluster.pairs.find((p: any) => p.b.row === 3)
    expect(pair.a.row).toBe(0)
    expect(pair.jaccard).toBeCloseTo(23 / 25, 10)
    expect(pair.sharedShingles[0]).toBe("check the latest")
    expect(d.complexity.mismatches).toBe(2)
    expect(d.complexity.requested).toEqual({ simple: 7, complex: 1 })
    expect(d.complexity.produced).toEqual({ simple: 7, moderate: 1 })
    expect(d.complexity.examples.map((e: any) => [e.row, e.requested, e.produced])).toEqual([
      [5, "complex", "simple"],
      [6, "simple", "moderate"]
    ])
    // The readable form says the same.
    const text = await runCli(["validate", file])
    expect(text.stdout).toContain("Diversity (8 rows)")
    expect(text.stdout).toContain("tools: 4 used of 25 in the inventory; never used: ")
    expect(text.stdout).toMatch(/near-prompt cluster of 4: .*known\.jsonl:0, .*known\.jsonl:1/)
    expect(text.stdout).toMatch(
      /known\.jsonl:0 ~ .*known\.jsonl:3 \(similarity 0\.\d\d, exact 0\.92; shared: "check the latest"/
    )
    expect(text.stdout).toContain("complexity mismatches: 2 (25.0%)")
    expect(existsSync(file)).toBe(true)
  }, 60_000)
})
