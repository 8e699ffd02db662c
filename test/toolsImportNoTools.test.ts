/**
 * `tools import` where a server gives no tool an inventory can hold: its tools/list is empty, or every tool
 * it lists is left out (a comma in the name, a schema no validator compiles). Such a server is not imported:
 * alone, exit 1 with nothing written (an existing --out is kept); beside others, a failure as a server that
 * could not be listed is. Before, the inventory was written with 0 tools, exit 0, replacing a good --out that
 * every other command then refused ("the inventory has no tools"). `--check` still compares such a server:
 * each tool the inventory has for it is removed.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { ROOT } from "./support/python.js"

const SERVER = join(ROOT, "test", "fixtures", "mcp", "scripted-server.mjs")
const stdio = (name: string, mode: string) => `${name}='${process.execPath}' '${SERVER}' ${mode}`

const dir = mkdtempSync(join(tmpdir(), "skyrl-no-tools-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("tools import: a server with no usable tool", () => {
  const good = join(dir, "good.json")
  let goodText = ""
  beforeAll(async () => {
    const r = await runCli(["tools", "import", "--stdio", stdio("s", "ok"), "--out", good])
    expect(r.stderr).not.toContain("skyrl:")
    expect(r.status).toBe(0)
    goodText = readFileSync(good, "utf8")
  })

  it.each([
    ["empty", "lists no tool (its tools/list answer is empty)"],
    ["comma", "lists no tool an inventory can hold: all 2 are left out (each named in a warning)"],
    ["badschema", "lists no tool an inventory can hold: all 2 are left out (each named in a warning)"]
  ])("%s: exit 1, the existing --out kept, the server named with why", async (mode, why) => {
    const r = await runCli(["tools", "import", "--stdio", stdio("s", mode), "--out", good])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(`skyrl: no MCP server could be imported; ${good} was not written`)
    expect(r.stderr).toMatch(
      new RegExp(`^MCP server "s" \\(.*scripted-server\\.mjs ${mode}\\): ${why.replace(/[()]/g, "\\$&")}$`, "m")
    )
    expect(readFileSync(good, "utf8")).toBe(goodText)
    const list = await runCli(["tools", "list", "--inventory", good])
    expect(list.status).toBe(0)
  })

  it("names each left-out tool in a warning", async () => {
    const r = await runCli(["tools", "import", "--stdio", stdio("s", "comma"), "--out", join(dir, "c.json")])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain("MCP server \"s\": tool \"a,b\" left out: name: holds a comma")
    expect(r.stderr).toContain("MCP server \"s\": tool \" pad\" left out: name:")
  })

  it("beside a server that has tools: that one is written, the empty one is a failure (exit 1)", async () => {
    const out = join(dir, "mixed.json")
    const r = await runCli([
      "tools",
      "import",
      "--stdio",
      stdio("e", "empty"),
      "--stdio",
      stdio("t", "ok"),
      "--out",
      out
    ])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(`skyrl: imported 1 of 2 MCP servers into ${out}; failed:`)
    expect(r.stderr).toMatch(/^MCP server "e" \(.*\): lists no tool \(its tools\/list answer is empty\)$/m)
    const written = JSON.parse(readFileSync(out, "utf8")) as { servers: Array<{ name: string }> }
    expect(written.servers.map((s) => s.name)).toEqual(["t"])
  })

  it("--check: a server that now lists no tool has each of the inventory's tools removed (exit 1)", async () => {
    // An inventory of its own: the tests above must not be able to change what this one checks.
    const inventory = join(dir, "check.json")
    expect((await runCli(["tools", "import", "--stdio", stdio("s", "ok"), "--out", inventory])).status).toBe(0)
    const config = join(dir, "empty-config.json")
    writeFileSync(config, JSON.stringify({ mcpServers: { s: { command: process.execPath, args: [SERVER, "empty"] } } }))
    const r = await runCli(["tools", "import", "--check", inventory, "--servers-config", config])
    expect(r.status).toBe(1)
    expect(r.stdout.trim()).toBe("- s/a removed")
    expect(r.stderr).toContain(`skyrl: ${inventory}: 1 tool changed (listed on stdout)`)
    expect(r.stderr).toMatch(/WARN {2}MCP server "s" \(.*\): lists no tool \(its tools\/list answer is empty\)/)
    expect(r.stderr).not.toContain("no tool changed")
  })
})
