/**
 * A dry run is a preflight: `enrich --dry-run` and `verify --dry-run` exit with the code the real run gives for
 * the same input: 1 when no row would be written (every row rejected, skipped or on a server that cannot
 * start), 0 when one would. The report is printed either way, and a dry run writes nothing. Before, both dry
 * runs exited 0 whatever they found, while the real runs exited 1.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { planAnswer } from "./support/fakeEnrich.js"
import { answer } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, tempDir } from "./support/fakeRun.js"
import { rowFor, serverBin, writeJsonl } from "./support/verifyRows.js"

const servers = fakes()
afterEach(servers.closeAll)

const FIXTURES = join(__dirname, "fixtures")

describe("enrich --dry-run exits as the run would", () => {
  const chat = (id: string, content: string) => JSON.stringify({ id, messages: [{ role: "user", content }] })

  it("1 when every row read would be rejected, 0 when one is kept as is; nothing written", async () => {
    const server = await servers.start((ctx) => answer(planAnswer(ctx)))
    const env = llmEnv(server, "sk-test-dry-exit")
    const dir = tempDir("skyrl-dry-exit-")
    const bad = join(dir, "bad.jsonl")
    writeFileSync(bad, [chat("e1", "  "), chat("e2", ""), "{\"question\": \"?\"}"].join("\n") + "\n")
    const out = join(dir, "rows.jsonl")
    const dry = await runCli(["enrich", bad, "--out", out, "--dry-run", "--llm", "openai"], { env })
    expect(dry.status, dry.stderr).toBe(1)
    // The report is printed in full, then why a run would fail.
    expect(dry.stdout).toContain("planned 0, kept as is 0, rejected 3")
    expect(dry.stdout).toMatch(/^row 2: reject, /m)
    expect(dry.stderr).toContain(
      `skyrl: ${bad}, row 0, messages[0].content: is empty (no usable row: all 3 rows read were rejected); ` +
        "--dry-run: a run would write no dataset and exit 1 (nothing was written)"
    )
    expect(existsSync(out)).toBe(false)
    expect(existsSync(`${out}.rejects.jsonl`)).toBe(false)
    expect(server.requests.filter((q) => q.endpoint !== "other")).toEqual([])
    // The run's code for the same input.
    const run = await runCli(["enrich", bad, "--out", out, "--llm", "openai"], { env })
    expect(run.status).toBe(1)
    expect(run.stderr).toContain("no usable row: all 3 rows read were rejected")

    // A row kept as is is written: the run exits 0, and so does its dry run.
    const kept = join(dir, "kept.jsonl")
    // Row 3 of the fixture (row 1's prompt gives its plan away, so a run rejects it too).
    const withPlan = readFileSync(join(FIXTURES, "enrich", "skyrl_rows.jsonl"), "utf8").split("\n")[3]
    expect(JSON.parse(withPlan).reward_spec.ground_truth.tool_sequence.length).toBeGreaterThan(0)
    writeFileSync(kept, [chat("e1", "  "), withPlan].join("\n") + "\n")
    const out2 = join(dir, "kept-rows.jsonl")
    const dryKept = await runCli(["enrich", kept, "--out", out2, "--dry-run", "--llm", "openai"], { env })
    expect(dryKept.status, dryKept.stderr).toBe(0)
    expect(dryKept.stdout).toContain("planned 0, kept as is 1, rejected 1")
    const runKept = await runCli(["enrich", kept, "--out", out2, "--llm", "openai"], { env })
    expect(runKept.status, runKept.stderr).toBe(0)
  }, 60_000)
})

describe("verify --dry-run exits as the run would", () => {
  const sum = {
    name: "get-sum",
    description: "Adds two numbers",
    inputSchema: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] },
    annotations: { readOnlyHint: true }
  }
  const write = { ...sum, name: "write-sum", annotations: { readOnlyHint: false, destructiveHint: true } }
  const server = (name: string, launch: Record<string, unknown> = {}) => ({
    name,
    launch: {
      transport: "stdio",
      command: process.execPath,
      args: [serverBin("server-everything")],
      env: [],
      ...launch
    },
    tools: [sum, write]
  })
  const step = (server: string, tool: string, params: Record<string, unknown> = { a: 1, b: 2 }) => [
    { server, tool, params }
  ]

  it("1 when every row is rejected, skipped for its side effect or on a server that cannot start", async () => {
    const dir = tempDir("skyrl-dry-exit-verify-")
    const inv = join(dir, "inv.json")
    writeFileSync(
      inv,
      JSON.stringify({ servers: [server("up"), server("keyed", { env: ["SKYRL_TEST_DRY_EXIT_KEY"] })] })
    )
    const verify = (file: string, dry: boolean) =>
      runCli(["verify", file, "--inventory", inv, "--out", join(dir, "v.jsonl"), ...(dry ? ["--dry-run"] : [])])

    // Row 0 names a tool the inventory lacks (rejected), row 1 has a side effect (skipped), row 2 runs on a
    // server whose variable is not set (server-unavailable), row 3 is a copy of row 2.
    const none = writeJsonl(join(dir, "none.jsonl"), [
      rowFor("ghost", step("up", "no-such-tool")),
      rowFor("writes", step("up", "write-sum")),
      rowFor("keyed", step("keyed", "get-sum")),
      rowFor("keyed", step("keyed", "get-sum"))
    ])
    const dry = await verify(none, true)
    expect(dry.status, dry.stderr).toBe(1)
    expect(dry.stdout).toMatch(/row 0: reject: schema /)
    expect(dry.stdout).toContain("row 1: skip-side-effect: step 1 up/write-sum")
    expect(dry.stdout).toMatch(/^server keyed: would start .*, but cannot: environment variable/m)
    expect(dry.stderr).toContain(
      "skyrl: --dry-run: none of the 4 rows would be verified (1 rejected, 1 skipped for side effects, " +
        "2 on servers that cannot start), so a run would write no dataset and exit 1 (nothing was run or written)"
    )
    expect(existsSync(join(dir, "v.jsonl"))).toBe(false)
    expect(existsSync(join(dir, "v.jsonl.rejects.jsonl"))).toBe(false)
    const run = await verify(none, false)
    expect(run.status).toBe(1)
    expect(run.stderr).toContain("none of the 4 rows verified")

    // A row that would run on a server that can start: 0, as the run.
    const some = writeJsonl(join(dir, "some.jsonl"), [
      rowFor("ghost", step("up", "no-such-tool")),
      rowFor("sum", step("up", "get-sum"))
    ])
    const drySome = await verify(some, true)
    expect(drySome.status, drySome.stderr).toBe(0)
    const runSome = await verify(some, false)
    expect(runSome.status, runSome.stderr).toBe(0)
  }, 120_000)
})
