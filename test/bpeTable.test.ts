/**
 * The vocabulary's byte table (src/skyrl/bpeTable.ts) holds gpt-tokenizer's ranks as they are, survives
 * its file form, and counts a piece's byte-pair merge as the library's encoder does — byte-order marks
 * and byte tokens (ranges that are not valid UTF-8) included.
 */
import { countTokens } from "gpt-tokenizer/encoding/o200k_base"
import { describe, expect, it } from "vitest"
import {
  type BpeTable,
  isValidUtf8,
  lookup,
  makeTable,
  mergeCount,
  ranksOf,
  readTable,
  serializeTable
} from "../src/skyrl/bpeTable.js"
import { libraryRanks, o200kTable } from "../src/skyrl/o200k.js"
import { countBpe } from "../src/skyrl/promptTokens.js"

const ranks = libraryRanks()
const table = makeTable(ranks)!

/** gpt-tokenizer's encoder parts the merge count is compared with. */
const core = (await import("gpt-tokenizer/encoding/o200k_base")).default as unknown as {
  bytePairEncodingCoreProcessor: { bytePairMerge(bytes: Uint8Array): ReadonlyArray<number> }
}

const same = (a: BpeTable, b: BpeTable): boolean =>
  a.count === b.count && Buffer.from(a.bytes).equals(b.bytes) &&
  Buffer.from(a.offsets.buffer, a.offsets.byteOffset, a.offsets.byteLength).equals(
    Buffer.from(b.offsets.buffer, b.offsets.byteOffset, b.offsets.byteLength)
  ) &&
  Buffer.from(a.slots.buffer, a.slots.byteOffset, a.slots.byteLength).equals(
    Buffer.from(b.slots.buffer, b.slots.byteOffset, b.slots.byteLength)
  )

describe("bpeTable", () => {
  it("holds every rank, and its file form reads back the same", () => {
    expect(table).toBeDefined()
    // What countBpe counts with (not the library's own encoder), the same table.
    expect(same(o200kTable()!, table)).toBe(true)
    const back = ranksOf(table)
    expect(back.length).toBe(ranks.length)
    // Compared as JSON text: toEqual on 200,000 entries takes vitest ~20 s.
    expect(JSON.stringify(back)).toBe(JSON.stringify(ranks))
    const file = serializeTable(table)
    const copy = new Uint8Array(file.length)
    copy.set(file)
    expect(same(readTable(copy)!, table)).toBe(true)
    const utf8 = new TextEncoder()
    for (const r of [0, 1, 100, 12345, 199_997]) {
      const bytes = typeof ranks[r] === "string" ? utf8.encode(ranks[r]) : Uint8Array.from(ranks[r]!)
      expect(lookup(table, bytes, 0, bytes.length)).toBe(r)
    }
    expect(lookup(table, utf8.encode("no such token, surely"), 0, 21)).toBe(-1)
  })

  it("rejects bytes that are not a table, and ranks its lookups cannot hold", () => {
    expect(readTable(new Uint8Array(64))).toBeUndefined()
    expect(readTable(serializeTable(table).subarray(0, 1000))).toBeUndefined()
    const bytes = Array.from({ length: 256 }, (_, b) => b < 128 ? String.fromCharCode(b) : [b])
    expect(makeTable(bytes)).toBeDefined()
    expect(makeTable([...bytes, "a"])).toBeUndefined() // the same bytes twice
    expect(makeTable([...bytes, "\ud800"])).toBeUndefined() // a lone surrogate
    // A byte token that is valid UTF-8: kept (for the ranks), never found (the library looks it up as text).
    const quirk = makeTable([...bytes, [0x61, 0x62]])!
    expect(lookup(quirk, Uint8Array.of(0x61, 0x62), 0, 2)).toBe(-1)
    expect(ranksOf(quirk)[256]).toEqual([0x61, 0x62])
    expect(makeTable(bytes.slice(1))).toBeUndefined() // a byte without a token
  })

  it("counts a merge as gpt-tokenizer's bytePairMerge, on random bytes and texts", () => {
    let seed = 777
    const next = (n: number) => Math.floor(((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * n)
    const utf8 = new TextEncoder()
    const inputs: Array<Uint8Array> = []
    const alphabet = ["a", "e", "th", " ", "\ufeff", "é", "中", "😀", "\n", "ing", "'s", "0"]
    for (let i = 0; i < 2000; i++) {
      const text = Array.from({ length: 1 + next(12) }, () => alphabet[next(alphabet.length)]).join("")
      inputs.push(utf8.encode(text))
      inputs.push(Uint8Array.from({ length: 1 + next(10) }, () => [0xef, 0xbb, 0xbf, 0x80, 0xc3, 0x61][next(6)]!))
    }
    for (const bytes of inputs) {
      expect([bytes, mergeCount(table, bytes, bytes.length)]).toEqual([
        bytes,
        core.bytePairEncodingCoreProcessor.bytePairMerge(bytes).length
      ])
    }
    expect(inputs.some((b) => !isValidUtf8(b, 0, b.length))).toBe(true)
  })

  it("counts texts with byte-order marks as countTokens", () => {
    const texts = ["\ufeffabc", "x\ufeff\ufeffy", " \ufefftext\ufeff", "\ufeff", "\ufeffusing", "\ufeff\ufeff\n\n"]
    for (const text of texts) {
      expect([text, countBpe(text)]).toEqual([text, countTokens(text)])
    }
  })
})
