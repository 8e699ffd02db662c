/**
 * `generate --verify`, Ctrl-C while several plans with side effects run: each is let finish (so that --resume
 * does not run it again), and the run says why once, as `skyrl verify` does (finishingNotice): the first plan
 * with the reason, the others by name. It printed the whole sentence once per plan in flight.
 *
 * The built CLI against the OpenAI-compatible fake and a live server-everything (stdio): each sample's plan is
 * one trigger-long-running-operation of a few seconds (no annotations: a side effect, allowed by
 * --allow-side-effects all). SIGINT once the run's verifications.jsonl holds each plan's intent line (written
 * before its side effect is sent: all three are running).
 */
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import { BIN, cleanEnv } from "./support/cli.js"
import type { FakeContext, FakeServer } from "./support/fakeOpenAI.js"
import { answer, start } from "./support/fakeOpenAI.js"
import { sampleNumberOf } from "./support/fakeTasks.js"
import { ROOT, serverBin } from "./support/mcpServers.js"

const dir = mkdtempSync(join(tmpdir(), "skyrl-verify-hook-int-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const at = (...parts: Array<string>) => join(dir, ...parts)

const servers: Array<FakeServer> = []
afterEach(async () => {
  while (servers.length > 0) await servers.pop()!.close()
})

const SECONDS = 6

/** Sample k's task: one long-running operation (a side effect here) of SECONDS seconds. */
const taskFor = (ctx: FakeContext) => {
  const k = sampleNumberOf(ctx.body) ?? 0
  return answer(JSON.stringify({
    task_id: `long-${k}`,
    user_prompt: `Run the long operation number ${k} for ${SECONDS} seconds in ${k} steps.`,
    complexity: "simple",
    domain: "testing",
    assumptions: [],
    max_turns: 3,
    tool_sequence: [
      { server: "everything", tool: "trigger-long-running-operation", params: { duration: SECONDS, steps: k } }
    ],
    evaluation_rubric: { name: "runs", criteria: [{ name: "ran", description: "runs it", scoring: "0-1" }] }
  }))
}

const waitFor = async (check: () => boolean, ms: number) => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
    if (check()) return
  }
  throw new Error("timed out")
}

const WHY = "so that --resume does not run them again"

describe("generate --verify: Ctrl-C with several plans with side effects in flight (built CLI, fake model)", () => {
  it("says why it finishes them once, and names each plan it finishes", async () => {
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
    const fake = await start(taskFor)
    servers.push(fake)
    const out = at("run", "ds.jsonl")
    // prettier-ignore
    const args = [
      "generate",
      "--n",
      "3",
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
    const child = spawn(process.execPath, [BIN, ...args], {
      env: cleanEnv({ OPENAI_API_KEY: "sk-test-verify", OPENAI_BASE_URL: fake.baseUrl }),
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stderr = ""
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.stdout.resume()
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    const kill = setTimeout(() => child.kill("SIGKILL"), 50_000)
    try {
      const intents = () => {
        const raw = at("run", "raw_llm")
        if (!existsSync(raw)) return 0
        const runs = readdirSync(raw)
        const log = runs.length === 1 ? join(raw, runs[0]!, "verifications.jsonl") : undefined
        if (log === undefined || !existsSync(log)) return 0
        return readFileSync(log, "utf8").split("\n").filter((l) => l.includes("interrupted")).length
      }
      await waitFor(() => intents() >= 3, 40_000).catch((e) => {
        throw new Error(`${String(e)}; stderr so far:\n${stderr}`)
      })
      // The first Ctrl-C stops the run gracefully (no new model call; test/gracefulStop.test.ts): the plans go on.
      // The second interrupts, and the plans with side effects are let finish.
      child.kill("SIGINT")
      await waitFor(() => stderr.includes("SIGINT: stopping"), 10_000)
      // A repeat of the first signal within 0.25 s is taken for the same press (src/bin.ts): the second comes later.
      await new Promise((resolve) => setTimeout(resolve, 300))
      child.kill("SIGINT")
      expect(await exited, stderr).toBe(130)
    } finally {
      clearTimeout(kill)
      child.kill("SIGKILL")
    }
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
