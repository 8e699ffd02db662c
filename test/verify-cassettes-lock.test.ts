/**
 * The built CLI: one process writes a cassette store at a time. A verify on a store another verify is
 * writing fails at once (exit 1, the store and the holder's pid named) and runs and writes nothing; the
 * holder's lock goes when it ends (here by Ctrl-C); a lock left by a process that is gone is taken over.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runChild } from "./support/child.js"
import { BIN, cleanEnv, runCli } from "./support/cli.js"
import { ROOT } from "./support/python.js"
import { rowFor, serverBin, writeJsonl } from "./support/verifyRows.js"

const dir = mkdtempSync(join(tmpdir(), "skyrl-cassettes-lock-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const at = (name: string) => join(dir, name)
const INVENTORY = join(ROOT, "test", "fixtures", "inventory", "everything.json")
const tapes = at("tapes")
const lock = join(tapes, "cassettes.jsonl.lock")

/** `verify ROWS --out OUT` on the shared store (the fixture inventory has no annotations: every tool allowed). */
const verifyArgs = (rows: string, out: string) => [
  "verify",
  at(rows),
  "--inventory",
  INVENTORY,
  "--servers-config",
  at("mcp.json"),
  "--allow-side-effects",
  "all",
  "--out",
  at(out),
  "--cassettes",
  tapes
]

const waitFor = async (check: () => boolean, ms: number) => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
    if (check()) return
  }
  throw new Error("timed out")
}

describe("verify: one process writes a cassette store at a time (built CLI)", () => {
  beforeAll(() => {
    writeFileSync(
      at("mcp.json"),
      JSON.stringify({
        mcpServers: { everything: { command: process.execPath, args: [serverBin("server-everything"), "stdio"] } }
      })
    )
    writeJsonl(at("slow.jsonl"), [
      rowFor("slow", [{
        server: "everything",
        tool: "trigger-long-running-operation",
        // A side effect here (no annotations): Ctrl-C lets it finish before the run stops, so not too long.
        params: { duration: 15, steps: 2 }
      }])
    ])
    writeJsonl(at("sums.jsonl"), [
      rowFor("s1", [{ server: "everything", tool: "get-sum", params: { a: 1, b: 2 } }]),
      rowFor("s2", [{ server: "everything", tool: "get-sum", params: { a: 3, b: 4 } }])
    ])
  })

  it(
    "a second verify on a store in use exits 1 naming the store and the holder's pid, writing nothing; Ctrl-C releases the holder's lock",
    async () => {
      const holder = spawn(process.execPath, [BIN, ...verifyArgs("slow.jsonl", "slow-out.jsonl")], {
        env: cleanEnv(),
        cwd: ROOT,
        stdio: "ignore"
      })
      const exited = new Promise<number | null>((resolve) => holder.on("exit", (code) => resolve(code)))
      try {
        // The lock is created, then its holder written: wait for both.
        await waitFor(() => existsSync(lock) && readFileSync(lock, "utf8").trim() !== "", 20_000)
        const held = readFileSync(lock, "utf8")
        expect(JSON.parse(held)).toMatchObject({ pid: holder.pid, host: hostname() })
        const second = await runCli(verifyArgs("sums.jsonl", "sums-out.jsonl"))
        expect(second.status).toBe(1)
        expect(second.stderr).toContain(
          `skyrl: the cassette store ${tapes} is in use by another skyrl process ({"pid":${holder.pid},`
        )
        expect(second.stderr).toContain(`(if no such process runs, delete ${lock})`)
        expect(second.stderr).not.toContain("started") // no server started, no tool ran
        expect(second.stdout).toBe("")
        expect(readdirSync(dir).filter((name) => name.includes("sums-out"))).toEqual([]) // no output, rejects, journal
        expect(readdirSync(tapes)).toEqual(["cassettes.jsonl.lock"]) // nothing written to the store
        expect(readFileSync(lock, "utf8")).toBe(held)
      } finally {
        holder.kill("SIGINT")
      }
      expect(await exited).toBe(130)
      expect(existsSync(lock)).toBe(false)
    },
    60_000
  )

  it("a stale lock on the store (its process is gone) is taken over, and released when the run ends", async () => {
    const gone = (await runChild(process.execPath, ["-e", ""])).pid // exited: no process has this pid now
    writeFileSync(lock, JSON.stringify({ pid: gone, host: hostname(), since: "2026-11-30T00:00:00.000Z" }) + "\n")
    // The store may hold the slow call of the test before (a side effect: a Ctrl-C once it started lets it finish).
    const store = join(tapes, "cassettes.jsonl")
    const entries = () =>
      existsSync(store) ? readFileSync(store, "utf8").trim().split("\n").filter((l) => l !== "") : []
    const before = entries().length
    const r = await runCli(verifyArgs("sums.jsonl", "sums-out.jsonl"))
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: expect.not.stringContaining("in use") })
    expect(r.stdout).toContain(`cassettes: ${store}: 2 new, ${before + 2} in all`)
    expect(entries()).toHaveLength(before + 2)
    expect(existsSync(lock)).toBe(false)
  })
})

describe("verify: one run writes an --out at a time (built CLI)", () => {
  // Before: two runs of one --out both exited 0, their journal lines mixed, the last to finish replacing the
  // other's rows and rejects.
  it(
    "a verify whose --out another live verify holds exits 1 naming it, writing nothing; a stale lock is taken over",
    async () => {
      const out = at("locked-out.jsonl")
      const outLock = `${out}.lock` // the --out lock every writer of a dataset takes (before 2026-12-04 evening: .verify.lock)
      const held = JSON.stringify({
        pid: process.pid,
        host: hostname(),
        command: "verify",
        since: "2026-12-04T00:00:00Z"
      })
      writeFileSync(outLock, held + "\n") // this test's own process: alive
      const args = verifyArgs("sums.jsonl", "locked-out.jsonl").map((a) => (a === tapes ? at("tapes-out") : a))
      const second = await runCli(args)
      expect(second.status).toBe(1)
      expect(second.stderr).toContain(`skyrl: ${out} is being written by another skyrl run (${held})`)
      expect(second.stderr).toContain(`(if no such process runs, delete ${outLock})`)
      expect(readdirSync(dir).filter((name) => name.startsWith("locked-out"))).toEqual(["locked-out.jsonl.lock"])
      expect(readFileSync(outLock, "utf8")).toBe(held + "\n")

      const gone = (await runChild(process.execPath, ["-e", ""])).pid
      writeFileSync(outLock, JSON.stringify({ pid: gone, host: hostname(), since: "2026-12-04T00:00:00Z" }) + "\n")
      const r = await runCli(args)
      expect(r.status, r.stderr).toBe(0)
      expect(r.stdout).toContain("wrote 2 verified rows")
      expect(existsSync(outLock)).toBe(false)
    },
    60_000
  )
})
