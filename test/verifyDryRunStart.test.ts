/**
 * `verify --dry-run` (the built CLI) says, for each server it would start, what the run would find first: a
 * variable its launch spec needs that is not set, a cwd that is not there. Before, it said `would start ...` for
 * them, and the run then made every row of such a server `server-unavailable`.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { rowFor, serverBin, writeJsonl } from "./support/verifyRows.js"

const dir = mkdtempSync(join(tmpdir(), "skyrl-dry-start-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const sum = {
  name: "get-sum",
  description: "Adds two numbers",
  inputSchema: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] },
  annotations: { readOnlyHint: true }
}
const server = (name: string, launch: Record<string, unknown>) => ({
  name,
  launch: { transport: "stdio", command: process.execPath, args: [serverBin("server-everything")], ...launch },
  tools: [sum]
})

describe("verify --dry-run: servers that would not start", () => {
  it("names the variable not set and the cwd not there; a server that can start is listed with its directory", async () => {
    const gone = join(dir, "moved-away")
    writeFileSync(
      join(dir, "inv.json"),
      JSON.stringify({
        servers: [
          server("keyed", { env: ["SKYRL_TEST_DRY_KEY"], cwd: null }),
          server("moved", { env: [], cwd: gone }),
          server("here", { env: [], cwd: dir })
        ]
      })
    )
    writeJsonl(
      join(dir, "rows.jsonl"),
      ["keyed", "moved", "here"].map((s) => rowFor(s, [{ server: s, tool: "get-sum", params: { a: 1, b: 2 } }]))
    )
    const r = await runCli([
      "verify",
      join(dir, "rows.jsonl"),
      "--inventory",
      join(dir, "inv.json"),
      "--out",
      join(dir, "v.jsonl"),
      "--dry-run"
    ])
    expect(r.status).toBe(0)
    const target = `${process.execPath} ${serverBin("server-everything")}`
    const lines = r.stdout.split("\n").filter((l) => l.startsWith("server ")).sort()
    expect(lines).toEqual([
      `server here: would start ${target} (in ${dir})`,
      `server keyed: would start ${target}, but cannot: environment variable $SKYRL_TEST_DRY_KEY not set ` +
      "(needed by the server) (its rows would be server-unavailable)",
      `server moved: would start ${target} (in ${gone}), but cannot: its working directory (cwd) ${gone} does ` +
      "not exist (its rows would be server-unavailable)"
    ])
  })
})
