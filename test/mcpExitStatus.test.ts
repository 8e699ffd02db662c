/**
 * A stdio server that exits before it answers (after initialize, say, with nothing on stderr): the reason says how
 * it ended (its exit code, or the signal). Before, it read "the server closed the connection before answering; it
 * probably exited (MCP error -32000: Connection closed)", whatever the code.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { importInventory } from "../src/programs/toolsImport.js"
import type { McpServerSpec } from "../src/services/McpClient.js"
import { McpClientLive } from "../src/services/McpClient.js"

/** Answers initialize, then exits with `code` (or kills itself with `signal`) when asked tools/list. */
const quitter = (name: string, end: string): McpServerSpec => ({
  _tag: "stdio",
  name,
  command: process.execPath,
  args: [
    "-e",
    "require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => { " +
    "const m = JSON.parse(l); " +
    "if (m.method === 'initialize') process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { " +
    "protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'q', version: '1' } " +
    `} }) + '\\n'); else if (m.method === 'tools/list') { ${end} } })`
  ]
})

const run = (specs: ReadonlyArray<McpServerSpec>) =>
  Effect.runPromise(importInventory(specs, { timeout: "10 seconds" }).pipe(Effect.provide(McpClientLive)))

describe("a server that exits before it answers", () => {
  it("the reason gives its exit code or signal", async () => {
    const result = await run([
      quitter("three", "process.exit(3)"),
      quitter("killed", "process.kill(process.pid, 'SIGKILL')")
    ])
    const [three, killed] = result.outcomes as ReadonlyArray<{ _tag: string; message: string }>
    expect(three._tag).toBe("failed")
    expect(three.message).toContain(
      "tools/list failed: the server closed the connection before answering: it exited with code 3 (MCP error -32000: Connection closed)"
    )
    expect(killed.message).toContain(
      "tools/list failed: the server closed the connection before answering: it was ended by SIGKILL (MCP error -32000: Connection closed)"
    )
  })
})
