/**
 * `generate --verify` and the graceful stop: the first Ctrl-C lets the plans being verified finish (their rows
 * kept, exit 130, no model call after it); a second interrupts them (plans with side effects are let finish:
 * below); a third ends the process at once.
 *
 * The built CLI against the OpenAI-compatible fake and a live server-everything (stdio): each sample's plan is
 * one trigger-long-running-operation of a few seconds (a side effect, allowed by --allow-side-effects all).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import type { FakeContext } from "./support/fakeOpenAI.js"
import { answer } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, readJsonl } from "./support/fakeRun.js"
import { isTaskRequest, sampleNumberOf } from "./support/fakeTasks.js"
import { ROOT, serverBin } from "./support/mcpServers.js"
import { askStop, ctrlC, ended, gate, pressAgain, started, until } from "./support/signals.js"

const dir = mkdtempSync(join(tmpdir(), "skyrl-stop-verify-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const at = (...parts: Array<string>) => join(dir, ...parts)

const servers = fakes()
afterEach(servers.closeAll)

/** Sample k's task: one long-running operation (a side effect here) of `seconds` seconds. */
const taskFor = (seconds: number) => (ctx: FakeContext) => {
  const k = sampleNumberOf(ctx.body) ?? 0
  return answer(JSON.stringify({
    task_id: `long-${k}`,
    user_prompt: `Run the long operation number ${k} for ${seconds} seconds in ${k} steps.`,
    complexity: "simple",
    domain: "testing",
    assumptions: [],
    max_turns: 3,
    tool_sequence: [
      { server: "everything", tool: "trigger-long-running-operation", params: { duration: seconds, steps: k } }
    ],
    evaluation_rubric: { name: "runs", criteria: [{ name: "ran", description: "runs it", scoring: "0-1" }] }
  }))
}

const setUp = (name: string, n = 4) => {
  const inv = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "inventory", "everything.json"), "utf8"))
  for (const server of inv.servers) {
    server.tools = server.tools.filter((t: any) => t.name === "trigger-long-running-operation")
  }
  writeFileSync(at("inv.json"), JSON.stringify(inv))
  writeFileSync(
    at("mcp.json"),
    JSON.stringify({
      mcpServers: { everything: { command: process.execPath, args: [serverBin("server-everything"), "stdio"] } }
    })
  )
  const out = at(name, "ds.jsonl")
  // prettier-ignore
  const args = [
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
    "3",
    "--llm",
    "openai",
    "--inventory",
    at("inv.json"),
    "--servers-config",
    at("mcp.json"),
    "--allow-side-effects",
    "all",
    "--verify",
    "--out",
    out
  ]
  return { out, args }
}

/** Plans whose verification started (their intent line is in the run's verifications.jsonl). */
const intents = (out: string) => {
  const raw = join(out, "..", "raw_llm")
  if (!existsSync(raw)) return 0
  const runs = readdirSync(raw)
  const log = runs.length === 1 ? join(raw, runs[0]!, "verifications.jsonl") : undefined
  if (log === undefined || !existsSync(log)) return 0
  return readFileSync(log, "utf8").split("\n").filter((l) => l.includes("interrupted")).length
}

describe("generate --verify: the first signal lets the plans being verified finish", () => {
  it(
    "SIGINT with 3 plans verifying and 3 answers in flight: their 6 rows are kept, exit 130, no call after",
    async () => {
      // Samples 1-3 answered at once (their plans then verify for 3 s); 4-6 held until after the signal; 7-8 wait
      // for a sample slot (2 x --concurrency) and are never asked.
      const held = gate()
      const answerFor = taskFor(3)
      const server = await servers.start(async (ctx) => {
        if ((sampleNumberOf(ctx.body) ?? 0) > 3) await held.opened
        return answerFor(ctx)
      })
      const { args, out } = setUp("first", 8)
      const run = started(args, llmEnv(server, "sk-test-verify"))
      await until(() => intents(out) >= 3 && server.requests.length === 6, 40_000).catch((e) => {
        throw new Error(`${String(e)}; stderr so far:\n${run.stderr}`)
      })
      await askStop(run)
      expect(run.stderr).toContain("waiting for the 3 calls in flight")
      held.release()
      expect(await ended(run, 40_000), run.stderr).toBe(130)
      expect(server.requests.filter((r) => isTaskRequest(r.body))).toHaveLength(6)
      expect(server.requests).toHaveLength(6)
      expect(readJsonl(out)).toHaveLength(6)
      expect(run.stderr.trim().split("\n").at(-1)).toContain("skyrl: made 6 of 8 valid rows")
    },
    60_000
  )

  it("a third signal ends the process at once while the second waits for the plans with side effects", async () => {
    const server = await servers.start(taskFor(8))
    const { args, out } = setUp("third")
    const run = started(args, llmEnv(server, "sk-test-verify"))
    await until(() => intents(out) >= 3, 40_000).catch((e) => {
      throw new Error(`${String(e)}; stderr so far:\n${run.stderr}`)
    })
    await askStop(run)
    await pressAgain(run)
    await until(() => run.stderr.includes("finishing"))
    const t0 = Date.now()
    await pressAgain(run)
    await ended(run, 15_000)
    expect(Date.now() - t0).toBeLessThan(5_000)
    expect(await run.signal).toBe("SIGINT")
  }, 60_000)
})

// Ctrl-C at a terminal signals the whole foreground process group. skyrl's stdio MCP servers were in it: they died
// with the first Ctrl-C, so the plans being verified failed as server-unavailable ("not retried on --resume either")
// instead of finishing; now each server has a group of its own (StdioTransport). The tests above signal the CLI alone.
describe("generate --verify: Ctrl-C at a terminal", () => {
  it("Ctrl-C at a terminal (the whole process group: the MCP servers too): the plans verifying finish", async () => {
    const server = await servers.start(taskFor(3))
    const { args, out } = setUp("group", 4)
    const run = started(args, llmEnv(server, "sk-test-verify"), { group: true })
    await until(() => intents(out) >= 4, 40_000).catch((e) => {
      throw new Error(`${String(e)}; stderr so far:\n${run.stderr}`)
    })
    ctrlC(run)
    await until(() => run.stderr.includes("SIGINT: stopping"))
    const code = await ended(run, 40_000)
    expect(existsSync(out), run.stderr).toBe(true)
    expect(readJsonl(out), run.stderr).toHaveLength(4)
    expect(code, run.stderr).toBe(0)
  }, 60_000)
})

// Plans with side effects in flight at the second signal are each let finish (so that --resume does not run them
// again), and the run says why once, as `skyrl verify` does (finishingNotice): the first plan with the reason, the
// others by name. It printed the whole sentence once per plan in flight.
describe("generate --verify: the second signal with several plans with side effects in flight", () => {
  it("says why it finishes them once, and names each plan it finishes", async () => {
    const WHY = "so that --resume does not run them again"
    const server = await servers.start(taskFor(6))
    const { args, out } = setUp("notice", 3)
    const run = started(args, llmEnv(server, "sk-test-verify"))
    await until(() => intents(out) >= 3, 40_000).catch((e) => {
      throw new Error(`${String(e)}; stderr so far:\n${run.stderr}`)
    })
    await askStop(run)
    await pressAgain(run)
    expect(await ended(run, 40_000), run.stderr).toBe(130)
    const stderr = run.stderr
    const finishing = stderr.split("\n").filter((l) => l.includes("interrupted: ") && l.includes("finishing"))
    expect(finishing, stderr).toHaveLength(3)
    expect(stderr.split(WHY).length - 1, stderr).toBe(1)
    // generate's flag for a call's timeout (skyrl verify's is --timeout).
    expect(stderr, stderr).toContain(`${WHY} (each call within --verify-timeout;`)
    // What --resume does with such a plan's answer here (skyrl verify rejects its row).
    expect(stderr, stderr).toContain("--resume then rejects that answer as interrupted and makes its sample again)")
    // Each plan named once: sample 1, 2 and 3 (attempt 1), in whatever order they were interrupted.
    for (const k of [1, 2, 3]) {
      expect(finishing.filter((l) => l.includes(`sample ${k}, attempt 1`)), stderr).toHaveLength(1)
    }
    expect(stderr).toContain("skyrl: interrupted; the work done so far is kept: rerun the same command with --resume")
  }, 60_000)
})
