/**
 * The graceful stop under `npm run skyrl -- ...` (as README shows it) at a terminal: Ctrl-C signals the whole
 * foreground process group (npm, skyrl), and npm forwards the SIGINT it got to its child. With bash as the
 * script shell (macOS's /bin/sh; it execs the command) skyrl is that child and got the one Ctrl-C twice within
 * milliseconds: the second interrupted the graceful stop at once (3 runs of 3 before src/bin.ts took a repeat
 * within 0.25 s for the same press). npm exits with skyrl's code.
 */
import { spawn } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { cleanEnv } from "./support/cli.js"
import { planAnswer } from "./support/fakeEnrich.js"
import type { FakeReply } from "./support/fakeOpenAI.js"
import { answer } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, readJsonl, tempDir, USAGE } from "./support/fakeRun.js"
import { ROOT } from "./support/python.js"
import { ctrlC, ended, gate, until, watched } from "./support/signals.js"

const servers = fakes()
afterEach(servers.closeAll)

describe("npm run skyrl at a terminal", () => {
  it("one Ctrl-C (the whole group) stops gracefully: the calls in flight are kept", async () => {
    const held = gate()
    let tasks = 0
    const server = await servers.start(async (ctx): Promise<FakeReply> => {
      if (++tasks > 1) await held.opened
      return answer(planAnswer(ctx), USAGE)
    })
    const dir = tempDir("skyrl-stop-npm-")
    const input = join(dir, "prompts.jsonl")
    const prompts = ["quote of AAPL?", "news of MSFT?", "NVDA close?", "AMZN profile?"]
    writeFileSync(
      input,
      prompts.map((p, i) => JSON.stringify({ id: `p${i}`, messages: [{ role: "user", content: p }] }) + "\n").join("")
    )
    const out = join(dir, "enriched.jsonl")
    const child = spawn(
      "npm",
      [
        "run",
        "--silent",
        "--script-shell",
        "bash",
        "skyrl",
        "--",
        "enrich",
        input,
        "--out",
        out,
        "--llm",
        "openai",
        "--concurrency",
        "2"
      ],
      { env: cleanEnv(llmEnv(server, "sk-test-graceful")), cwd: ROOT, stdio: "pipe", detached: true }
    )
    const run = watched(child)
    await until(() => tasks === 3)
    ctrlC(run)
    await until(() => run.stderr.includes("SIGINT: stopping"))
    // npm's copy of the signal comes within milliseconds: the calls are still held when it does.
    await new Promise((resolve) => setTimeout(resolve, 100))
    held.release()
    const code = await ended(run, 30_000)
    expect(run.stderr).not.toContain("skyrl: interrupted")
    expect(readJsonl(out), run.stderr).toHaveLength(3)
    expect(tasks).toBe(3)
    expect(code, run.stderr).toBe(130)
  }, 60_000)
})
