/**
 * `generate --verify` (issue 14): the built CLI against the OpenAI-compatible fake and a live
 * server-everything over stdio, with an inventory `tools import` made from it (launch spec, annotations).
 * The fake answers plans valid on that inventory; some of them fail when they run (get-resource-reference
 * with resourceId 0 is the tool's own error), so the repair path and the rejection after it are exercised.
 * No domains or subjects stage (--domains, --subjects none): every model call is a sample's.
 */
import { createHash } from "node:crypto"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import type { CliResult } from "./support/cli.js"
import { runCli } from "./support/cli.js"
import { isRepair, sourceRowOf } from "./support/fakeEnrich.js"
import type { FakeContext, FakeServer } from "./support/fakeOpenAI.js"
import { answer, start } from "./support/fakeOpenAI.js"
import { isRepairRequest, sampleNumberOf } from "./support/fakeTasks.js"
import { serverBin, writeJsonl } from "./support/mcpServers.js"

const dir = mkdtempSync(join(tmpdir(), "skyrl-verify-gen-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const at = (...parts: Array<string>) => join(dir, ...parts)
const jsonl = (file: string): Array<any> =>
  existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l)) : []

const servers: Array<FakeServer> = []
afterEach(async () => {
  while (servers.length > 0) await servers.pop()!.close()
})

/** The attempt a request is for ("This is attempt 2: ..." in its first user message; 1 when absent). */
const attemptOf = (body: any): number => {
  const first = (body?.input ?? body?.messages ?? []).find((m: any) => m.role === "user")
  const m = /This is attempt (\d+)/.exec(String(first?.content ?? ""))
  return m === null ? 1 : Number(m[1])
}

/**
 * A simple task for sample k on server-everything. Its resource id is 0 (valid against the schema, an
 * error when it runs) for sample 1's first answer (repaired) and for both answers of sample 2's first
 * attempt (rejected, then made again); otherwise k.
 */
const taskFor = (ctx: FakeContext) => {
  const k = sampleNumberOf(ctx.body) ?? 0
  const repair = isRepairRequest(ctx.body)
  const attempt = attemptOf(ctx.body)
  const failing = (k === 1 && !repair) || (k === 2 && attempt === 1)
  return JSON.stringify({
    task_id: `everything-${k}`,
    user_prompt: `Echo a greeting for visitor ${k} (try ${attempt}), then fetch text resource number ${k}.`,
    complexity: "simple",
    domain: "testing",
    assumptions: [],
    max_turns: 4,
    tool_sequence: [
      { server: "everything", tool: "echo", params: { message: `visitor ${k}` } },
      {
        server: "everything",
        tool: "get-resource-reference",
        params: { resourceType: "Text", resourceId: failing ? 0 : k }
      }
    ],
    evaluation_rubric: {
      name: "echo and fetch",
      criteria: [{ name: "grounded", description: "uses the tool results", scoring: "0-1" }]
    }
  })
}

const callKey = (server: string, tool: string, params: Record<string, unknown>) => {
  const sorted = Object.fromEntries(Object.keys(params).sort().map((k) => [k, params[k]]))
  return createHash("sha256").update(`${server}\n${tool}\n${JSON.stringify(sorted)}`, "utf8").digest("hex")
}

/** enrich: a plan for source row r; row 0's first answer fetches resource 0 (an error when it runs). */
const planFor = (ctx: FakeContext) => {
  const r = sourceRowOf(ctx.body) ?? 0
  const id = r === 0 && !isRepair(ctx.body) ? 0 : r + 1
  return JSON.stringify({
    task_id: `row-${r}`,
    user_prompt: "ignored by enrich",
    complexity: "simple",
    domain: "testing",
    assumptions: [],
    max_turns: 3,
    tool_sequence: [
      { server: "everything", tool: "get-resource-reference", params: { resourceType: "Text", resourceId: id } }
    ],
    evaluation_rubric: { name: "fetch", criteria: [{ name: "grounded", description: "uses it", scoring: "0-1" }] }
  })
}

/** The fake model; closed after the test unless `own` is false (then its maker closes it). */
const fake = async (own = true) => {
  const s = await start((ctx) => answer(sampleNumberOf(ctx.body) === undefined ? planFor(ctx) : taskFor(ctx)))
  if (own) servers.push(s)
  return s
}

const env = (server: FakeServer) => ({ OPENAI_API_KEY: "sk-test-verify", OPENAI_BASE_URL: server.baseUrl })

const generateArgs = (out: string, n: number, ...extra: Array<string>) => [
  "generate",
  "--n",
  String(n),
  "--complexities",
  "simple",
  "--domains",
  "testing",
  "--subjects",
  "none",
  "--concurrency",
  "1",
  "--llm",
  "openai",
  "--inventory",
  at("inv.json"),
  "--out",
  out,
  ...extra
]

/**
 * `generate -n 3 --verify` into run1 with its own fake model, run once for the file (after the inventory is made):
 * the first test checks it, the second resumes it after a crash, the last refuses to resume it without --verify.
 */
let firstRun: Promise<{ server: FakeServer; out: string; r: CliResult }> | undefined
const verifiedRun = () =>
  firstRun ??= (async () => {
    const server = await fake(false)
    const out = at("run1", "ds.jsonl")
    return { server, out, r: await runCli(generateArgs(out, 3, "--verify"), { env: env(server) }) }
  })()
afterAll(async () => {
  if (firstRun !== undefined) await (await firstRun).server.close()
})

describe("generate --verify against server-everything (built CLI, fake model)", () => {
  beforeAll(async () => {
    const r = await runCli([
      "tools",
      "import",
      "--stdio",
      `everything=${process.execPath} ${serverBin("server-everything")} stdio`,
      "--out",
      at("inv.json")
    ])
    expect(r.status, r.stderr).toBe(0)
    // Only the two tools the fake's plans call, so each sample's focus tool (one per sample, from the
    // inventory) is one its plan calls; the server still has all its tools.
    const inv = JSON.parse(readFileSync(at("inv.json"), "utf8"))
    for (const server of inv.servers) {
      server.tools = server.tools.filter((t: any) => ["echo", "get-resource-reference"].includes(t.name))
    }
    writeFileSync(at("inv.json"), JSON.stringify(inv, null, 2))
  }, 60_000)

  it(
    "a tool error is repaired once with the tool's text; a second failure is rejected and the sample made again; N verified rows",
    async () => {
      const { out, r, server } = await verifiedRun()
      expect(r.status, r.stderr).toBe(0)

      const rows = jsonl(out)
      expect(rows).toHaveLength(3)
      const meta = rows.map((row) => JSON.parse(row.extra_info.task_metadata))
      expect(meta.map((m) => [m.sample_index, m.attempt, m.repaired])).toEqual([[0, 1, true], [1, 2, false], [
        2,
        1,
        false
      ]])
      for (const [i, m] of meta.entries()) {
        const steps = JSON.parse(rows[i].reward_spec.ground_truth.tool_sequence[1].params)
        expect(steps.resourceId).toBe(i + 1)
        expect(m.verification).toMatchObject({
          status: "verified",
          servers: { everything: "mcp-servers/everything@2.0.0" }
        })
        expect(m.verification.steps.map((s: any) => s.key)).toEqual(
          rows[i].reward_spec.ground_truth.tool_sequence.map((s: any) =>
            callKey(s.server, s.tool, JSON.parse(s.params))
          )
        )
      }

      // 6 requests: sample 1 (answer + repair), sample 2 (answer + repair, then attempt 2), sample 3.
      const requests = server.requests.filter((q) => q.endpoint !== "other")
      expect(requests.map((q) => [sampleNumberOf(q.body), attemptOf(q.body), isRepairRequest(q.body)])).toEqual([
        [1, 1, false],
        [1, 1, true],
        [2, 1, false],
        [2, 1, true],
        [2, 2, false],
        [3, 1, false]
      ])
      // The repair carries the tool's own error text.
      const repairText = JSON.stringify(requests[1].body.input.at(-1))
      expect(repairText).toContain("failed when it ran on the live server")
      expect(repairText).toContain("Invalid resourceId: 0. Must be a finite positive integer.")

      // Sample 2's first attempt is rejected with the tool error as its reason.
      expect(jsonl(`${out}.rejects.jsonl`)).toEqual([
        expect.objectContaining({
          index: 1,
          attempt: 1,
          reasons: [
            expect.stringMatching(
              /^verification tool-error: step 2 everything\/get-resource-reference: Invalid resourceId: 0/
            )
          ]
        })
      ])

      // One cassette entry per distinct call: 3 echoes, resource ids 0 (the error, recorded once), 1, 2, 3.
      const cassettes = jsonl(at("run1", "cassettes", "cassettes.jsonl"))
      const keys = cassettes.map((c) => c.key)
      expect(new Set(keys).size).toBe(keys.length)
      expect(cassettes.map((c) => `${c.tool}:${JSON.stringify(c.params)}`).sort()).toEqual([
        "echo:{\"message\":\"visitor 1\"}",
        "echo:{\"message\":\"visitor 2\"}",
        "echo:{\"message\":\"visitor 3\"}",
        ...[0, 1, 2, 3].map((id) => `get-resource-reference:{"resourceType":"Text","resourceId":${id}}`)
      ])
      expect(cassettes.find((c) => c.params.resourceId === 0).result.isError).toBe(true)

      // The run directory keeps every finished verification; the journal keeps the rows with their records.
      const runDir = join(out, "..", "raw_llm", readdirSync(join(out, "..", "raw_llm"))[0])
      const log = jsonl(join(runDir, "verifications.jsonl"))
      expect(log.map((e) => [e.sample, e.attempt, e.purpose, e.record?.status ?? e.failure.status])).toEqual([
        [0, 1, "task", "tool-error"],
        [0, 1, "repair", "verified"],
        [1, 1, "task", "tool-error"],
        [1, 1, "repair", "tool-error"],
        [1, 2, "task", "verified"],
        [2, 1, "task", "verified"]
      ])
      const journalRows = jsonl(join(runDir, "journal.jsonl")).filter((e) => e.status === "row")
      expect(journalRows.map((e) => JSON.parse(e.row.extra_info.task_metadata).verification)).toEqual(
        meta.map((m) => m.verification)
      )
      const manifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"))
      expect(manifest.run_settings.verify).toEqual({ allow_side_effects: [] })

      // rebuild re-derives the same rows from the run directory, verifications included, running nothing.
      const rebuilt = at("run1", "rebuilt.jsonl")
      const rb = await runCli(["rebuild", runDir, "--out", rebuilt])
      expect(rb.status, rb.stderr).toBe(0)
      expect(readFileSync(rebuilt, "utf8")).toBe(readFileSync(out, "utf8"))
    },
    120_000
  )

  it(
    "--resume after a crash before the journal lines reuses the recorded verifications: no plan runs again",
    async () => {
      // The file's run (the first test only read it; rebuild wrote its rows outside the run directory).
      const { out, r: first, server } = await verifiedRun()
      expect(first.status, first.stderr).toBe(0)
      const written = readFileSync(out, "utf8")
      const cassettes = readFileSync(at("run1", "cassettes", "cassettes.jsonl"), "utf8")
      const runDir = join(out, "..", "raw_llm", readdirSync(join(out, "..", "raw_llm"))[0])
      // As if the process died after verifying every answer but before any journal line reached the disk.
      rmSync(join(runDir, "journal.jsonl"))
      rmSync(out)
      const asked = server.requests.length
      const again = await runCli(generateArgs(out, 3, "--verify", "--resume"), { env: env(server) })
      expect(again.status, again.stderr).toBe(0)
      expect(server.requests.length).toBe(asked) // answers replayed from the archive
      // Same rows byte for byte (a verification run again would have a new verified_at), no new cassette line.
      expect(readFileSync(out, "utf8")).toBe(written)
      expect(readFileSync(at("run1", "cassettes", "cassettes.jsonl"), "utf8")).toBe(cassettes)
      expect(jsonl(join(runDir, "verifications.jsonl"))).toHaveLength(6)
    },
    120_000
  )

  it(
    "enrich --verify: the same hook (a failing plan repaired with the tool's text; rows keep the record)",
    async () => {
      const server = await fake()
      const input = writeJsonl(at("chats.jsonl"), [
        { id: "a", messages: [{ role: "user", content: "Show me text resource one, please." }] },
        { id: "b", messages: [{ role: "user", content: "I need the second text resource." }] }
      ])
      const out = at("enrich", "ds.jsonl")
      const r = await runCli(
        ["enrich", input, "--out", out, "--inventory", at("inv.json"), "--llm", "openai", "--verify"],
        { env: env(server) }
      )
      expect(r.status, r.stderr).toBe(0)
      const rows = jsonl(out)
      expect(rows.map((row) => row.prompt.at(-1).content)).toEqual([
        "Show me text resource one, please.",
        "I need the second text resource."
      ])
      expect(rows.map((row) => JSON.parse(row.extra_info.task_metadata).verification.status)).toEqual([
        "verified",
        "verified"
      ])
      const repair = server.requests.find((q) => isRepair(q.body))
      expect(JSON.stringify(repair?.body.input.at(-1))).toContain("Invalid resourceId: 0")
      expect(jsonl(at("enrich", "cassettes", "cassettes.jsonl"))).toHaveLength(3)
    },
    120_000
  )

  it("refuses what cannot work, before anything is asked of the model", async () => {
    const server = await fake()
    const batch = await runCli(generateArgs(at("x", "b.jsonl"), 1, "--verify", "--backend", "batch"), {
      env: env(server)
    })
    expect(batch.status).toBe(2)
    expect(batch.stderr).toContain("--verify: cannot be combined with --backend batch")
    // The bundled finance inventory has no launch specs: every server is named with the reason.
    const finance = await runCli(
      ["generate", "--n", "1", "--llm", "openai", "--verify", "--out", at("x", "f.jsonl")],
      { env: env(server) }
    )
    expect(finance.status).toBe(1)
    expect(finance.stderr).toMatch(/--verify: 5 MCP servers of the inventory cannot start/)
    expect(finance.stderr).toMatch(/fmp: no launch spec/)
    const fromPrompt = await runCli(
      [
        "enrich",
        writeJsonl(at("x-chats.jsonl"), [{ messages: [{ role: "user", content: "hi" }] }]),
        "--out",
        at("x", "e.jsonl"),
        "--inventory-from-prompt",
        "--verify"
      ],
      { env: env(server) }
    )
    expect(fromPrompt.status).toBe(2)
    expect(fromPrompt.stderr).toContain("--verify: needs MCP servers to run the plans on")
    expect(server.requests).toEqual([])
    // A resumed run must keep its verification settings (the file's --verify run).
    const { out, r: made } = await verifiedRun()
    expect(made.status, made.stderr).toBe(0)
    const resumed = await runCli(generateArgs(out, 3, "--resume"), { env: env(server) })
    expect(resumed.status).toBe(2)
    expect(resumed.stderr).toContain("verify: {\"allow_side_effects\":[]} in the run, (none) now")
  }, 120_000)
})

describe("generate --verify: the same plan in two samples at once (side-effect fixture server)", () => {
  const SIDE_EFFECT_SERVER = join(import.meta.dirname, "fixtures", "mcp", "side-effect-server.mjs")
  const lines = (file: string) => existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l !== "") : []

  /** generate's arguments with inventory `inv` and both samples at once (--concurrency 2). */
  const bothAtOnce = (args: ReadonlyArray<string>, inv: string) =>
    args.map((a, i) => a === at("inv.json") ? inv : args[i - 1] === "--concurrency" ? "2" : a)

  /** Sample k's task: its own prompt and task id, the same plan for every sample (an append, then an echo). */
  const samePlanFor = (ctx: FakeContext) => {
    const k = sampleNumberOf(ctx.body) ?? 0
    return JSON.stringify({
      task_id: `same-plan-${k}`,
      user_prompt: `Request ${k}: add the line "once" to the log, then have "a" said back to me.`,
      complexity: "simple",
      domain: "testing",
      assumptions: [],
      max_turns: 4,
      tool_sequence: [
        { server: "se", tool: "append", params: { text: "once" } },
        { server: "se", tool: "echo", params: { text: "a" } }
      ],
      evaluation_rubric: { name: "append", criteria: [{ name: "done", description: "appended", scoring: "0-1" }] }
    })
  }

  it(
    "runs the plan once: the side effect acts once, both samples are kept with its record, the log says whose it is",
    async () => {
      const log = at("same", "appended.log")
      const inv = at("same-inv.json")
      const imported = await runCli([
        "tools",
        "import",
        "--stdio",
        `se=${process.execPath} ${SIDE_EFFECT_SERVER} ${log}`,
        "--out",
        inv
      ])
      expect(imported.status, imported.stderr).toBe(0)
      // Only the two tools the plan calls (each sample's focus tool is then one it calls).
      const inventory = JSON.parse(readFileSync(inv, "utf8"))
      for (const s of inventory.servers) s.tools = s.tools.filter((t: any) => ["append", "echo"].includes(t.name))
      writeFileSync(inv, JSON.stringify(inventory, null, 2))
      const server = await start((ctx) => answer(samePlanFor(ctx)))
      servers.push(server)
      const out = at("same", "ds.jsonl")
      // No near-duplicate gate: it would reject the second sample's plan once the first is accepted.
      const args = bothAtOnce(
        generateArgs(out, 2, "--verify", "--allow-side-effects", "append", "--near-dup", "off"),
        inv
      )
      const r = await runCli(args, { env: env(server) })
      expect(r.status, r.stderr).toBe(0)
      // Before: ["once", "once"] and two echo calls (each sample ran the plan).
      expect(lines(log)).toEqual(["once"])
      expect(lines(`${log}.calls`)).toEqual(["a"])
      const rows = jsonl(out)
      expect(rows).toHaveLength(2)
      const records = rows.map((row) => JSON.parse(row.extra_info.task_metadata).verification)
      expect(records[0]).toMatchObject({ status: "verified" })
      expect(records[1]).toEqual(records[0])
      const runDir = join(out, "..", "raw_llm", readdirSync(join(out, "..", "raw_llm"))[0])
      const outcomes = jsonl(join(runDir, "verifications.jsonl")).filter((e) => e.failure?.status !== "interrupted")
      expect(outcomes.map((e) => e.sample).sort()).toEqual([0, 1])
      const [ran, copy] = outcomes[0].outcome_of === undefined ? outcomes : [outcomes[1], outcomes[0]]
      expect(ran.outcome_of).toBeUndefined()
      expect(copy.outcome_of).toEqual({ sample: ran.sample, attempt: 1, purpose: "task" })
      expect(copy.record).toEqual(ran.record)
      // --resume and rebuild run nothing again.
      const again = await runCli([...args, "--resume"], { env: env(server) })
      expect(again.status, again.stderr).toBe(0)
      expect(lines(log)).toEqual(["once"])
      const rebuilt = at("same", "rebuilt.jsonl")
      const rb = await runCli(["rebuild", runDir, "--out", rebuilt])
      expect(rb.status, rb.stderr).toBe(0)
      expect(readFileSync(rebuilt, "utf8")).toBe(readFileSync(out, "utf8"))
    },
    120_000
  )
})
