/**
 * Ctrl-C at a terminal signals the whole foreground process group. skyrl's stdio MCP servers were in it: they
 * died with the first Ctrl-C, so the graceful stop's plans being verified failed as server-unavailable ("not
 * retried on --resume either") instead of finishing; now each server has a group of its own (StdioTransport).
 * test/gracefulStopVerify.test.ts signals the CLI alone.
 *
 * `generate --verify` and the graceful stop: the first Ctrl-C lets the plans being verified finish (their rows
 * kept, exit 130, no model call after it); a second interrupts them (plans with side effects are let finish:
 * test/verifyHookInterrupt.test.ts); a third ends the process at once.
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
import { sampleNumberOf } from "./support/fakeTasks.js"
import { ROOT, serverBin } from "./support/mcpServers.js"
import { ctrlC, ended, started, until } from "./support/signals.js"

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
