/**
 * `--servers-config` (mcpServers JSON): a `disabled` that is not a boolean (`"disabled": "true"`) and an entry
 * with both `command` and `url` are errors naming the file and the entry, as other malformed fields are.
 * Before, `"disabled": "true"` was read as enabled (the server the file meant to leave out was started), and
 * `command` beside `url` was silently dropped for HTTP.
 */
import { Either } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { parseServersConfig } from "../src/skyrl/serverSpecs.js"
import { runCli } from "./support/cli.js"

const reason = (config: unknown) => Either.flip(parseServersConfig(JSON.stringify(config))).pipe(Either.getOrThrow)

const dir = mkdtempSync(join(tmpdir(), "skyrl-servers-config-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("--servers-config: disabled and command beside url", () => {
  it("a disabled that is not a boolean is an error naming the entry's field", () => {
    expect(reason({ mcpServers: { s: { command: "x", disabled: "true" } } })).toBe(
      "mcpServers.s: disabled: must be true or false (a JSON boolean), not \"true\""
    )
    expect(reason({ mcpServers: { s: { command: "x", disabled: 1 } } })).toBe(
      "mcpServers.s: disabled: must be true or false (a JSON boolean), not 1"
    )
    // Booleans as before: true leaves the entry out, false keeps it.
    const specs = Either.getOrThrow(
      parseServersConfig(
        JSON.stringify({ mcpServers: { on: { command: "x", disabled: false }, off: { command: "y", disabled: true } } })
      )
    )
    expect(specs.map((s) => s.name)).toEqual(["on"])
  })

  it("an entry with both command and url is ambiguous", () => {
    expect(reason({ mcpServers: { both: { command: "npx", url: "http://127.0.0.1:3000/mcp" } } })).toBe(
      "mcpServers.both: has both \"command\" (a stdio server) and \"url\" (a streamable-HTTP server), so which to " +
        "start is ambiguous: keep one"
    )
  })

  it("tools import names the file and the entry (exit 1, as for any malformed entry), and starts nothing", async () => {
    for (
      const [entry, expected] of [
        [{ command: process.execPath, disabled: "true" }, "mcpServers.s: disabled: must be true or false"],
        [{ command: process.execPath, url: "http://127.0.0.1:9/mcp" }, "mcpServers.s: has both \"command\""]
      ] as const
    ) {
      const config = join(dir, "mcp.json")
      writeFileSync(config, JSON.stringify({ mcpServers: { s: entry } }))
      const r = await runCli([
        "tools",
        "import",
        "--servers-config",
        config,
        "--out",
        join(dir, "inv.json"),
        "--timeout",
        "5"
      ])
      expect(r.stderr).toContain(`skyrl: ${config}: ${expected}`)
      expect(r.stderr).not.toContain("importing")
      expect(r.status).toBe(1)
    }
  })
})
