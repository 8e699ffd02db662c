/**
 * A reader that goes away (`skyrl generate --dry-run | head`, `skyrl validate big.jsonl | less` quit early) closes
 * the pipe: Node then reports EPIPE on the next write. Before, that was an unhandled 'error' event: a Node stack
 * trace on stderr and exit code 1, and with stderr closed (`2>&1 | head`) a run that made its rows exited 1.
 */
import { spawn } from "node:child_process"
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { BIN, cleanEnv } from "./support/cli.js"
import { ROOT } from "./support/python.js"

/** Runs the CLI with the read end of `closed` (stdout or stderr) shut before the CLI writes a byte. */
const runWithClosed = (closed: "stdout" | "stderr", args: ReadonlyArray<string>) =>
  new Promise<{ status: number | null; other: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: cleanEnv(),
      stdio: ["ignore", "pipe", "pipe"]
    })
    child[closed].destroy()
    let other = ""
    const open = closed === "stdout" ? child.stderr : child.stdout
    open.on("data", (chunk: Buffer) => {
      other += chunk.toString("utf8")
    })
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, other }))
  })

describe("a closed output pipe", () => {
  it("stdout: the command stops quietly with 141 (as a process killed by SIGPIPE), no stack trace", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "skyrl-pipe-")), "x.jsonl")
    const r = await runWithClosed("stdout", ["generate", "-n", "300", "--dry-run", "--out", out])
    expect(r.other).not.toContain("EPIPE")
    expect(r.other).not.toContain("Unhandled 'error' event")
    expect(r.status).toBe(141)
  })
  it("stderr: the logs are lost but the run goes on and ends with its own exit code", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "skyrl-pipe-")), "x.jsonl")
    const r = await runWithClosed("stderr", ["generate", "-n", "3", "--llm", "replay", "--out", out])
    expect(r.status).toBe(0)
    expect(existsSync(out)).toBe(true)
    expect(readFileSync(out, "utf8").trim().split("\n")).toHaveLength(3)
  })

  // /dev/full: every write fails with ENOSPC (a full disk).
  const runInto = (full: "stdout" | "stderr", args: ReadonlyArray<string>) =>
    new Promise<{ status: number | null; other: string }>((resolve, reject) => {
      const fd = openSync("/dev/full", "w")
      const stdio = full === "stdout" ? ["ignore", fd, "pipe"] as const : ["ignore", "pipe", fd] as const
      const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(), stdio: [...stdio] })
      closeSync(fd)
      let other = ""
      ;(full === "stdout" ? child.stderr : child.stdout)!.on("data", (chunk: Buffer) => {
        other += chunk.toString("utf8")
      })
      child.on("error", reject)
      child.on("close", (status) => resolve({ status, other }))
    })
  it("stdout on a full disk: exit 1 and one line saying the output is lost (before: a 25 KB stack trace)", async () => {
    const r = await runInto("stdout", ["schema", "row"])
    expect(r.status).toBe(1)
    expect(r.other).toBe("skyrl: cannot write to stdout: ENOSPC: no space left on device, write (the output is lost)\n")
  })
  it("stderr on a full disk: the run goes on to its rows and exit 0 (before: exit 1 at once, nothing written)", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "skyrl-full-")), "x.jsonl")
    const r = await runInto("stderr", ["generate", "-n", "3", "--llm", "replay", "--out", out])
    expect(r.status).toBe(0)
    expect(readFileSync(out, "utf8").trim().split("\n")).toHaveLength(3)
  })
})
