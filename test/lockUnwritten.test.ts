/**
 * A lock file made but not written (a full disk, a file size limit: `ulimit -f 0`) is removed: it was left empty,
 * and every later run said the output was "being written by another skyrl run ((an unreadable lock file))", exit 1,
 * never taking it over (an empty lock names no process to find gone).
 */
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runChild } from "./support/child.js"
import { BIN, cleanEnv, runCli } from "./support/cli.js"

const task = {
  task_id: "t0",
  user_prompt: "Quote for ticker number 0",
  tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }],
  evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
}

describe.skipIf(process.platform === "win32")("a lock file that could not be written", () => {
  it("is removed, so the next run takes the output (it was left empty and refused every later run)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-lock-"))
    writeFileSync(join(dir, "tasks.jsonl"), JSON.stringify(task) + "\n")
    const limited = await runChild("bash", [
      "-c",
      `ulimit -f 0; exec "$0" "$@"`,
      process.execPath,
      BIN,
      "convert",
      "tasks.jsonl",
      "--out",
      "out/o.jsonl"
    ], { env: cleanEnv(), cwd: dir, timeoutMs: 60_000 })
    expect(limited.status, limited.stderr).toBe(1)
    expect(limited.stderr).toMatch(/lock/)
    expect(readdirSync(join(dir, "out"))).toEqual([])
    const again = await runCli(["convert", "tasks.jsonl", "--out", "out/o.jsonl"], { cwd: dir })
    expect(again.status, again.stderr).toBe(0)
    expect(existsSync(join(dir, "out", "o.jsonl.lock"))).toBe(false)
  }, 60_000)
})
