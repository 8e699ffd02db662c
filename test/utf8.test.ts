/** src/skyrl/utf8.ts: the UTF-8 validator that locates a bad byte agrees with Node's `isUtf8` on any bytes. */
import fc from "fast-check"
import { isUtf8 } from "node:buffer"
import { describe, expect, it } from "vitest"
import { decodeUtf8, firstInvalidByte, firstUtf8Fault, utf8FaultOf } from "../src/skyrl/utf8.js"

describe("utf8", () => {
  it("firstInvalidByte is -1 exactly when isUtf8 says yes, and the bytes before it are UTF-8", () => {
    const edgy = fc.constantFrom(0x00, 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff)
    fc.assert(
      fc.property(fc.array(fc.oneof(edgy, fc.integer({ min: 0, max: 255 })), { maxLength: 12 }), (list) => {
        const bytes = Uint8Array.from(list)
        const at = firstInvalidByte(bytes)
        expect(at < 0).toBe(isUtf8(bytes))
        if (at >= 0) expect(isUtf8(bytes.subarray(0, at))).toBe(true)
      }),
      { numRuns: 20_000 }
    )
    for (const text of ["", "a", "é", "\uFFFD", "😀", "\u{10FFFF}"]) {
      expect(firstInvalidByte(Buffer.from(text))).toBe(-1)
    }
  })

  it("decodeUtf8: valid bytes as they are; each bad line a fault line, line ends kept, offsets from `offset`", () => {
    expect(decodeUtf8(Buffer.from("a\uFFFD\r\nb\n"))).toBe("a\uFFFD\r\nb\n")
    const text = decodeUtf8(Buffer.concat([Buffer.from("ok\r\n"), Buffer.from("x\xe9\n\xff", "latin1")]), 100)
    const lines = text.split(/\r\n|\n/)
    expect(lines.map((l, i) => utf8FaultOf(l, i + 1) ?? l)).toEqual([
      "ok",
      "line 2 is not valid UTF-8: byte 0xE9 at byte offset 105 of the file (re-encode it as UTF-8)",
      "line 3 is not valid UTF-8: byte 0xFF at byte offset 107 of the file (re-encode it as UTF-8)"
    ])
    expect(firstUtf8Fault(text)).toBe(utf8FaultOf(lines[1]!, 2))
    expect(firstUtf8Fault("ok\n")).toBeUndefined()
  })
})
