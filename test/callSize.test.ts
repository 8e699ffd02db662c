/**
 * src/skyrl/callSize.ts: the one home of the MCP message limit and of a step's tools/call request size (verify's
 * contract stage, the --verify hook, the stdio transport and validate's contract/call-size).
 */
import { STDIO_DEFAULT_MAX_BUFFER_SIZE } from "@modelcontextprotocol/sdk/shared/stdio.js"
import { describe, expect, it } from "vitest"
import {
  callRequestBytes,
  callRequestLine,
  DIRECT_IDS,
  MCP_MESSAGE_LIMIT,
  tooLongStep,
  withinLimitByLength
} from "../src/skyrl/callSize.js"

describe("callSize", () => {
  it("a row's text length bounds the request even where numbers grow as written (1e20: 21 digits); the SDK's limit", () => {
    // Params whose JSON text is 3.49 million characters, 3 UTF-8 bytes each but for 400 numbers written 1e20, which
    // JSON.stringify writes as 21 digits: the bound of 3 bytes a character of the row's text that verify used
    // skipped it, and the server it was sent to refused the line and exited.
    const text = `{"s":"${"\u4e2d".repeat(3_493_000)}","n":[${Array(400).fill("1e20").join(",")}]}`
    expect(3 * (text.length + 128)).toBeLessThanOrEqual(MCP_MESSAGE_LIMIT)
    expect(withinLimitByLength(text.length)).toBe(false)
    const long = tooLongStep([{ tool: "t", params: JSON.parse(text) }], text.length)
    expect(long).toMatchObject({ index: 0, field: "reward_spec.ground_truth.tool_sequence[0].params" })
    expect(long!.bytes).toBeGreaterThan(MCP_MESSAGE_LIMIT)
    // A short row is never measured.
    expect(tooLongStep([{ tool: "t", params: { a: 1 } }], 1_000)).toBeUndefined()
    // The limit is the SDK's, and the bytes are those of the line the stdio transport writes.
    expect(MCP_MESSAGE_LIMIT).toBe(STDIO_DEFAULT_MAX_BUFFER_SIZE)
    const cases: Array<[string, object]> = [["fmp_get_quote", { symbol: "AAPL" }], ["t\u00e9\n", {
      q: "\u00e9\u{1F600}\"",
      n: [1e21]
    }]]
    for (const [name, args] of cases) {
      const line = callRequestLine(DIRECT_IDS, name, args)
      expect(line.endsWith("}\n") && !line.slice(0, -1).includes("\n")).toBe(true)
      expect(JSON.parse(line)).toEqual({
        jsonrpc: "2.0",
        id: DIRECT_IDS,
        method: "tools/call",
        params: { name, arguments: args }
      })
      expect(callRequestBytes(name, JSON.stringify(args))).toBe(Buffer.byteLength(line))
    }
    expect(long!.bytes).toBe(Buffer.byteLength(callRequestLine(DIRECT_IDS, "t", JSON.parse(text))))
  })
})
