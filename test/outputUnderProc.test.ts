/**
 * An output under /proc (`--out /proc/x/out.jsonl`, `--cassettes /proc/x/y`): Node 20's
 * `fs.mkdir(dir, { recursive: true })` never returns for such a path (it spins at 100% CPU, and SIGTERM does not
 * stop it), so the CLI ran forever. Now each command finds, before it runs, that the directory cannot be made:
 * a usage error (exit 2) naming the flag, its value and the level mkdir refused.
 *
 * Each run has its own kill timer (runChild: SIGTERM at 10 s, SIGKILL 5 s later), so a CLI that spins fails the
 * test (status null) instead of outliving it.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runChild } from "./support/child.js"
import { BIN, cleanEnv } from "./support/cli.js"
import { ROOT, rowFor } from "./support/verifyRows.js"

const KILL_AFTER_MS = 10_000

const tmp = () => mkdtempSync(join(tmpdir(), "skyrl-proc-"))

/** A directory under /proc that is not there (and cannot be made: mkdir says ENOENT). */
const underProc = `/proc/skyrl-no-such-${process.pid}`

const run = (args: ReadonlyArray<string>) =>
  runChild(process.execPath, [BIN, ...args], { env: cleanEnv(), cwd: ROOT, timeoutMs: KILL_AFTER_MS })

const task = {
  task_id: "t0",
  user_prompt: "Quote for ticker number 0",
  tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }],
  evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
}

describe.skipIf(!existsSync("/proc/self"))("an output under /proc", () => {
  it("convert --out /proc/.../out.jsonl: exit 2 naming --out, the path and mkdir's ENOENT", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.jsonl")
    writeFileSync(input, JSON.stringify(task) + "\n")
    const out = `${underProc}/out.jsonl`
    const r = await run(["convert", input, "--out", out])
    expect(r.stderr).not.toContain("still running")
    expect(r.status).toBe(2)
    expect(r.stderr).toBe(`skyrl: --out: ${out}: ENOENT: no such file or directory, mkdir '${underProc}'\n`)
  }, 25_000)

  it(
    "verify --cassettes /proc/.../y: exit 2 naming --cassettes, before any server starts; --out's directory is not left behind",
    async () => {
      const dir = tmp()
      const rows = join(dir, "rows.jsonl")
      writeFileSync(
        rows,
        JSON.stringify(rowFor("t0", [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }])) + "\n"
      )
      const out = join(dir, "new", "out.jsonl")
      const cassettes = `${underProc}/y`
      const r = await run(["verify", rows, "--out", out, "--cassettes", cassettes])
      expect(r.stderr).not.toContain("still running")
      expect(r.status).toBe(2)
      expect(r.stderr).toBe(
        `skyrl: --cassettes: ${cassettes}: ENOENT: no such file or directory, mkdir '${underProc}'\n`
      )
      // The check made new/ to see that it can be, and removed it.
      expect(existsSync(join(dir, "new"))).toBe(false)
    },
    25_000
  )

  it(
    "generate --out /proc/.../o.jsonl offline (no key): exit 2 naming --out, before any answer is asked for",
    async () => {
      const out = `${underProc}/o.jsonl`
      const r = await run(["generate", "--n", "2", "--out", out])
      expect(r.stderr).not.toContain("still running")
      expect(r.status).toBe(2)
      expect(r.stderr).toContain(`skyrl: --out: ${out}: ENOENT: no such file or directory, mkdir '${underProc}'\n`)
      expect(r.stdout).toBe("")
    },
    25_000
  )
})
