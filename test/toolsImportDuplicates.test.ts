/**
 * `tools import` of a server whose tools/list gives one tool name more than once (on one page, or again on a
 * later page): the first listing is kept, each repeat is left out with a warning naming the server and the
 * tool, and the server is imported with its other tools, as for any other name an inventory refuses. Before,
 * the whole server failed ("no MCP server could be imported", exit 1).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { ROOT } from "./support/python.js"

const SERVER = join(ROOT, "test", "fixtures", "mcp", "scripted-server.mjs")
const stdio = (name: string, mode: string) => `${name}='${process.execPath}' '${SERVER}' ${mode}`

const dir = mkdtempSync(join(tmpdir(), "skyrl-dup-tools-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Written {
  readonly servers: ReadonlyArray<
    { readonly name: string; readonly tools: ReadonlyArray<{ name: string; description: string }> }
  >
}

describe("tools import: a tool name listed more than once", () => {
  it.each([
    ["dup", "on one page, the repeat differing", "and this repeat differs from it"],
    ["duppage", "again on the next page, the same", "and this repeat is the same"]
  ])("%s (%s): the first kept, the repeat left out with a warning, exit 0", async (mode, _, how) => {
    const out = join(dir, `${mode}.json`)
    const r = await runCli(["tools", "import", "--stdio", stdio("s", mode), "--out", out])
    expect(r.stderr).not.toContain("skyrl:")
    expect(r.status).toBe(0)
    expect(r.stderr).toContain(
      `MCP server "s": tool "a" left out: listed again by tools/list (a name an earlier tool has): the first listing ` +
        `is kept, ${how}`
    )
    const written = JSON.parse(readFileSync(out, "utf8")) as Written
    expect(written.servers.map((s) => s.tools.map((t) => [t.name, t.description]))).toEqual([
      [["a", "tool a"], ["b", "tool b"]]
    ])
    const list = await runCli(["tools", "list", "--inventory", out])
    expect(list.status).toBe(0)
  })

  it("--check names the repeat too and compares the first listing (no change)", async () => {
    const out = join(dir, "check.json")
    expect((await runCli(["tools", "import", "--stdio", stdio("s", "dup"), "--out", out])).status).toBe(0)
    const r = await runCli(["tools", "import", "--check", out])
    expect(r.stdout).toBe("")
    expect(r.stderr).toContain("MCP server \"s\": tool \"a\" left out: listed again by tools/list")
    expect(r.stderr).toContain(`${out}: no tool changed on 1 MCP server`)
    expect(r.status).toBe(0)
  })
})
