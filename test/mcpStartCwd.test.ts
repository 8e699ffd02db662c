/**
 * A stdio server whose working directory (`cwd`: an inventory's launch spec, a --servers-config entry) is not
 * there: the start fails naming that directory. Node's spawn says `ENOENT` for a missing cwd, the code of a
 * missing command, and throws `ENOTDIR` for a cwd that is a file; before, the first read "cannot start: command
 * not found (spawn node ENOENT)" for a `node` that was there, and the second "spawn ENOTDIR".
 */
import { Effect } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { importInventory } from "../src/programs/toolsImport.js"
import type { McpServerSpec } from "../src/services/McpClient.js"
import { McpClientLive } from "../src/services/McpClient.js"

const run = (specs: ReadonlyArray<McpServerSpec>) =>
  Effect.runPromise(importInventory(specs, { timeout: "10 seconds" }).pipe(Effect.provide(McpClientLive)))

const node = (name: string, cwd: string): McpServerSpec => ({
  _tag: "stdio",
  name,
  command: process.execPath,
  args: ["-e", "setInterval(() => {}, 1000)"],
  cwd
})

describe("a stdio server's cwd that is not a directory", () => {
  const dir = mkdtempSync(join(tmpdir(), "skyrl-cwd-"))
  const missing = join(dir, "moved-away")
  const file = join(dir, "a-file.txt")
  writeFileSync(file, "not a directory\n")

  it("names the directory, not a missing command", async () => {
    const result = await run([node("gone", missing), node("file", file)])
    const [gone, isFile] = result.outcomes
    expect(gone).toMatchObject({
      _tag: "failed",
      message: `MCP server "gone" (${process.execPath} -e setInterval(() => {}, 1000)): cannot start: its working ` +
        `directory (cwd) ${missing} does not exist`
    })
    expect(isFile).toMatchObject({
      _tag: "failed",
      message: `MCP server "file" (${process.execPath} -e setInterval(() => {}, 1000)): cannot start: its working ` +
        `directory (cwd) ${file} is not a directory`
    })
  })

  it("a missing command in a cwd that is there is still 'command not found'", async () => {
    const result = await run([{
      _tag: "stdio",
      name: "nope",
      command: join(dir, "no-such-server"),
      args: [],
      cwd: dir
    }])
    expect(result.outcomes[0]).toMatchObject({ _tag: "failed", message: expect.stringContaining("command not found") })
  })
})
