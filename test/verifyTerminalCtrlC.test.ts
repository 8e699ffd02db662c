/**
 * `skyrl verify`, Ctrl-C at a terminal: the signal goes to the whole foreground process group. The stdio MCP servers
 * skyrl starts are in a group of their own (StdioTransport), so a plan whose side effects have started runs to its
 * outcome on a live server and is journaled (see test/verify.test.ts for the in-process case); before, the server
 * died with the same Ctrl-C and the plan ended as server-unavailable.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { ROOT, serverBin } from "./support/mcpServers.js"
import { ctrlC, ended, started, until } from "./support/signals.js"
import { rowFor, writeJsonl } from "./support/verifyRows.js"

const dir = mkdtempSync(join(tmpdir(), "skyrl-verify-group-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const at = (...parts: Array<string>) => join(dir, ...parts)

/**
 * Whether a child of `pid` runs server-everything: spawned and exec'd, so in a process group of its own (a signal
 * to the CLI's group while the server is being spawned, between fork and setsid, reaches it: a window no spawn
 * closes, and no test of this).
 */
const serverRunningUnder = (pid: number): boolean =>
  readdirSync("/proc").filter((d) => /^\d+$/.test(d)).some((d) => {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8")
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid &&
        readFileSync(`/proc/${d}/cmdline`, "utf8").includes("server-everything")
    } catch {
      return false // exited meanwhile
    }
  })

const journalLines = (file: string): Array<any> =>
  existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []

describe("skyrl verify: Ctrl-C at a terminal (the whole process group)", () => {
  it("a plan whose side effects have started runs to its outcome on its live server", async () => {
    writeFileSync(
      at("mcp.json"),
      JSON.stringify({
        mcpServers: { everything: { command: process.execPath, args: [serverBin("server-everything"), "stdio"] } }
      })
    )
    // One plan: a 3-second long-running operation (no annotations: a side effect, allowed below).
    writeJsonl(at("rows.jsonl"), [
      rowFor("long-1", [{
        server: "everything",
        tool: "trigger-long-running-operation",
        params: { duration: 3, steps: 3 }
      }])
    ])
    const out = at("out.jsonl")
    const run = started(
      [
        "verify",
        at("rows.jsonl"),
        "--inventory",
        join(ROOT, "test", "fixtures", "inventory", "everything.json"),
        "--servers-config",
        at("mcp.json"),
        "--allow-side-effects",
        "all",
        "--out",
        out
      ],
      {},
      { group: true }
    )
    const journal = `${out}.verify-journal.jsonl`
    // The intent line (written before the side-effecting call is sent) and its server up: the plan is running.
    const running = () =>
      journalLines(journal).some((l) => l.failure?.status === "interrupted") && serverRunningUnder(run.child.pid!)
    await until(running, 30_000).catch((e) => {
      throw new Error(`${String(e)}; stderr so far:\n${run.stderr}`)
    })
    ctrlC(run)
    const code = await ended(run, 30_000)
    expect(run.stderr).toContain("interrupted: finishing")
    expect(run.stderr).not.toContain("server-unavailable")
    // The plan's outcome replaced its intent line: verified, on the server that was not stopped by the Ctrl-C.
    const last = journalLines(journal).at(-1)
    expect(last?.failure, run.stderr).toBeUndefined()
    expect(code, run.stderr).toBe(130)
  }, 60_000)
})
