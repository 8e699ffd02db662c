/**
 * `tools import --servers-config F` where F lists no server to import (an empty `mcpServers`, every entry
 * `"disabled": true`): the error names the file and why. Before, it read "give at least one server with --stdio,
 * --http or --servers-config", as if no --servers-config had been given.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"

const dir = mkdtempSync(join(tmpdir(), "skyrl-empty-config-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("tools import --servers-config with no server to import", () => {
  it("names the file, for an empty mcpServers and for one whose entries are all disabled", async () => {
    const empty = join(dir, "empty.json")
    writeFileSync(empty, "{\"mcpServers\": {}}\n")
    const off = join(dir, "off.json")
    writeFileSync(off, JSON.stringify({ mcpServers: { fs: { command: "npx", disabled: true } } }))
    for (const file of [empty, off]) {
      const r = await runCli(["tools", "import", "--servers-config", file, "--out", join(dir, "inv.json")])
      expect(r.status).toBe(2)
      expect(r.stderr).toContain(
        `tools import: ${file} lists no server to import (its mcpServers is empty, or every entry is "disabled": true)`
      )
    }
  })
})
