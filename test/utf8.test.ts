/** src/skyrl/utf8.ts: the UTF-8 validator that locates a bad byte agrees with Node's `isUtf8` on any bytes. */
import fc from "fast-check"
import { isUtf8 } from "node:buffer"
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { DEFAULT_INVENTORY } from "../src/cli/paths.js"
import { decodeUtf8, firstInvalidByte, firstUtf8Fault, utf8FaultOf, wholeJsonFault } from "../src/skyrl/utf8.js"
import { runCli } from "./support/cli.js"
import { validTaskText } from "./support/fakeTasks.js"

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

describe("wholeJsonFault: why a JSON file read whole is not JSON, on one line", () => {
  const fault = (text: string) => {
    try {
      JSON.parse(text)
    } catch (e) {
      return wholeJsonFault(text, e)
    }
    throw new Error("parsed")
  }
  it("names the line and column where the parser gives a position (it gave the character offset in the file)", () => {
    // Line 3 is ` {"b": 2 "c": 3}`: after `2`, a ',' or '}' was expected at its 10th character.
    expect(fault("[\n {\"a\": 1},\n {\"b\": 2 \"c\": 3}\n]\n")).toBe(
      "not valid JSON: Expected ',' or '}' after property value in JSON at line 3, column 10"
    )
  })
  it("keeps the parser's excerpt of the text on one line (its line feeds were printed as they are)", () => {
    const reason = fault("[\n {\"a\": 1},\n {\"b\": x}\n]\n")
    expect(reason).not.toMatch(/[\r\n]/)
    expect(reason).toContain("{\"b\": x}\\n]")
  })
  it("names the line and column of an unexpected token, for which the parser gives no position", () => {
    // Line 3 is ` {"b": x}`: the `x` is its 8th character.
    expect(fault("[\n {\"a\": 1},\n {\"b\": x}\n]\n")).toMatch(
      /^not valid JSON: Unexpected token 'x', .* \(at line 3, column 8\)$/
    )
    // A pretty-printed object: `x` at line 3, column 8.
    expect(fault("{\n  \"a\": 1,\n  \"b\": x\n}\n")).toMatch(/\(at line 3, column 8\)$/)
    expect(fault("{\"a\": tru }")).toMatch(/\(at line 1, column 10\)$/)
  })
  it("says a byte that is not UTF-8 first, as before", () => {
    const text = decodeUtf8(Buffer.from([0x5b, 0x22, 0xe9, 0x22, 0x0a]))
    expect(fault(text)).toBe(
      "line 1 is not valid UTF-8: byte 0xE9 at byte offset 2 of the file (re-encode it as UTF-8)"
    )
  })
})

describe("files that are not UTF-8, by how they are read (the built CLI)", () => {
  const dir = mkdtempSync(join(tmpdir(), "skyrl-utf8-"))
  /** `text` with its first "é" as the Latin-1 byte 0xE9. */
  const latin1 = (text: string) => {
    const at = Buffer.from(text.slice(0, text.indexOf("é")), "utf8").length
    return Buffer.concat([
      Buffer.from(text.slice(0, text.indexOf("é"))),
      Buffer.from([0xe9]),
      Buffer.from(text.slice(at + 1))
    ])
  }
  const task = (k: number) => JSON.parse(validTaskText(k, 0).replace("\"limit\":null", "\"limit\":3"))

  it("a one-line JSON array: unreadable, naming line 1 and the byte (it was read as JSON Lines)", async () => {
    const tasks = [task(1), { ...task(2), user_prompt: `${task(2).user_prompt} at the café` }, task(3)]
    const file = join(dir, "min.json")
    writeFileSync(file, latin1(JSON.stringify(tasks)))
    // convert: exit 1, as for any tasks file that is not JSON; validate: 2, an unreadable file.
    const c = await runCli(["convert", file, "--out", join(dir, "min-out.jsonl")])
    expect(c.status).toBe(1)
    expect(c.stderr).toMatch(/min\.json: line 1 is not valid UTF-8: byte 0xE9 at byte offset \d+ of the file/)
    expect(existsSync(join(dir, "min-out.jsonl.rejects.jsonl"))).toBe(false)
    const v = await runCli(["validate", file])
    expect(v.status).toBe(2)
    expect(v.stderr).toMatch(/line 1 is not valid UTF-8: byte 0xE9/)
  })

  it("one pretty-printed object: unreadable, naming its line (it became one reject per line)", async () => {
    const file = join(dir, "pretty.json")
    writeFileSync(file, latin1(JSON.stringify({ ...task(1), user_prompt: "Quote AAPL at the café." }, null, 2)))
    const c = await runCli(["convert", file, "--out", join(dir, "pretty-out.jsonl")])
    expect(c.status).toBe(1)
    expect(c.stderr).toMatch(/line 3 is not valid UTF-8: byte 0xE9 at byte offset \d+ of the file/)
    expect(existsSync(join(dir, "pretty-out.jsonl.rejects.jsonl"))).toBe(false)
  })

  it("an inventory: refused naming the line and byte, not a JSON position in text it never held", async () => {
    const inventory = readFileSync(DEFAULT_INVENTORY, "utf8").replace("Get real-time", "Get café real-time")
    const file = join(dir, "inv.json")
    writeFileSync(file, latin1(inventory))
    const r = await runCli(["tools", "list", "--inventory", file])
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(
      /inv\.json: not a readable inventory: line \d+ is not valid UTF-8: byte 0xE9 at byte offset \d+ of the file/
    )
  })
})
