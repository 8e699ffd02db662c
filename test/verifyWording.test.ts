/**
 * What `skyrl verify` (the built CLI) says, said once and where it belongs: `--resume` without a journal warns
 * that every row runs and no longer adds "0 rows already verified or failed"; the rows a journal keeps from
 * running again are grouped by what happened ("2 interrupted after step 1", not the same text once per row); a
 * --cassettes path under a file names the flag; a dry run connects to an HTTP server, it does not start one.
 * (Ctrl-C's notice, once per run naming each row: test/verify.test.ts.)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { rowFor, serverBin, writeJsonl } from "./support/verifyRows.js"

const dir = mkdtempSync(join(tmpdir(), "skyrl-verify-wording-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const at = (name: string) => join(dir, name)

const echo = {
  name: "echo",
  description: "Echoes",
  inputSchema: { type: "object", properties: { message: { type: "string" } }, required: ["message"] },
  annotations: { readOnlyHint: true }
}
writeFileSync(at("inv.json"), JSON.stringify({ servers: [{ name: "everything", tools: [echo] }] }))
writeFileSync(
  at("mcp.json"),
  JSON.stringify({
    mcpServers: { everything: { command: process.execPath, args: [serverBin("server-everything"), "stdio"] } }
  })
)
const rows = writeJsonl(at("rows.jsonl"), [
  rowFor("a", [{ server: "everything", tool: "echo", params: { message: "a" } }])
])
const verify = (out: string, ...more: Array<string>) =>
  runCli(["verify", rows, "--inventory", at("inv.json"), "--servers-config", at("mcp.json"), "--out", out, ...more])

describe("verify's messages", () => {
  it("--resume without a journal: the warning alone; with one: how many rows it holds", async () => {
    const out = at("first/out.jsonl")
    mkdirSync(at("first"))
    const first = await verify(out, "--resume")
    expect(first.status).toBe(0)
    expect(first.stderr).toContain(`--resume: ${out}.verify-journal.jsonl is not there`)
    expect(first.stderr).not.toContain("already verified or failed") // was "...: 0 rows already verified or failed"
    const again = await verify(out, "--resume")
    expect(again.stderr).toContain(`${out}.verify-journal.jsonl: 1 row already verified or failed`)
    expect(again.stderr).not.toContain("is not there")
  })

  it("the rows a journal keeps from running again are grouped by what happened", async () => {
    const out = at("journal/out.jsonl")
    mkdirSync(at("journal"))
    const failure = (hash: string, status: string, step: number) =>
      JSON.stringify({
        hash,
        failure: { status, step, server: "everything", tool: "echo", reason: "r", sideEffectRan: 1 }
      })
    writeFileSync(
      `${out}.verify-journal.jsonl`,
      [failure("h1", "interrupted", 1), failure("h2", "timeout", 2), failure("h3", "interrupted", 1)].join("\n") + "\n"
    )
    const r = await verify(out, "--resume")
    // Was "3 row(s) not retried (interrupted after step 1, timeout after step 1, interrupted after step 1)".
    expect(r.stderr).toContain(
      "3 rows not retried (2 interrupted after step 1, 1 timeout after step 1): a step with side effects already ran"
    )
  })

  it("--cassettes under a file names the flag (it said only 'ENOTDIR: not a directory, access ...')", async () => {
    writeFileSync(at("afile"), "")
    const r = await verify(at("c.jsonl"), "--cassettes", at("afile/sub"))
    expect(r.stderr.trim().split("\n").at(-1)).toBe(
      `skyrl: --cassettes: ${at("afile/sub")}: ENOTDIR: not a directory, access '${at("afile/sub")}'`
    )
    expect(r.status).toBe(2)
  })

  it("a dry run would connect to an HTTP server (it said 'would start http://...')", async () => {
    const inv = at("web-inv.json")
    writeFileSync(inv, JSON.stringify({ servers: [{ name: "web", tools: [echo] }] }))
    writeFileSync(at("web.json"), JSON.stringify({ mcpServers: { web: { url: "http://127.0.0.1:9/mcp" } } }))
    const webRows = writeJsonl(at("web.jsonl"), [
      rowFor("w", [{ server: "web", tool: "echo", params: { message: "w" } }])
    ])
    const r = await runCli([
      "verify",
      webRows,
      "--inventory",
      inv,
      "--servers-config",
      at("web.json"),
      "--out",
      at("w-out.jsonl"),
      "--dry-run"
    ])
    expect(r.stdout).toContain("server web: would connect to http://127.0.0.1:9/mcp")
    expect(r.stdout).not.toContain("would start")
  })
})
