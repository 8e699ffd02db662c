/**
 * A server whose tools/list (or initialize) answer is not valid MCP (the SDK's zod schema refuses it): the failure
 * is one line naming where, as a call's invalid result is (`issuesText`). Before, `tools import` printed the zod
 * issues as a multi-line JSON array (`tools/list failed: [\n  {\n    "expected": "array", ...`).
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { importInventory } from "../src/programs/toolsImport.js"
import type { McpServerSpec } from "../src/services/McpClient.js"
import { McpClientLive } from "../src/services/McpClient.js"

/** A raw JSON-RPC server: initialize answers `init`, tools/list answers `tools`. */
const rawServer = (name: string, init: unknown, tools: unknown): McpServerSpec => ({
  _tag: "stdio",
  name,
  command: process.execPath,
  args: [
    "-e",
    `const init = ${JSON.stringify(init)}, tools = ${JSON.stringify(tools)}; ` +
    "require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => { " +
    "const m = JSON.parse(l); " +
    "const send = (result) => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }) + '\\n'); " +
    "if (m.method === 'initialize') send({ protocolVersion: m.params.protocolVersion, ...init }); " +
    "else if (m.method === 'tools/list') send({ tools }) })"
  ]
})

const run = (specs: ReadonlyArray<McpServerSpec>) =>
  Effect.runPromise(importInventory(specs, { timeout: "10 seconds" }).pipe(Effect.provide(McpClientLive)))

describe("an answer that is not valid MCP", () => {
  it("tools/list: one line naming the tool's field", async () => {
    const init = { capabilities: { tools: {} }, serverInfo: { name: "raw", version: "1" } }
    const tools = [
      { name: "ok", inputSchema: { type: "object", properties: {} } },
      { name: "bad", inputSchema: { type: "object", properties: {}, required: "z" } }
    ]
    const result = await run([rawServer("raw", init, tools)])
    const outcome = result.outcomes[0] as { _tag: string; message: string }
    expect(outcome._tag).toBe("failed")
    expect(outcome.message).toMatch(
      /^MCP server "raw" \(.*\): tools\/list failed: the answer is not valid MCP: tools\.1\.inputSchema\.required: Invalid input: expected array, received string$/
    )
  })

  it("initialize: one line naming the field", async () => {
    const result = await run([rawServer("noinfo", { capabilities: {} }, [])])
    const outcome = result.outcomes[0] as { _tag: string; message: string }
    expect(outcome._tag).toBe("failed")
    expect(outcome.message).toMatch(/^MCP server "noinfo" \(.*\): the answer is not valid MCP: serverInfo: [^\n]+$/)
  })
})
