/**
 * The vocabulary's byte table (src/skyrl/bpeTable.ts) holds gpt-tokenizer's ranks as they are, survives
 * its file form, and counts a piece's byte-pair merge as the library's encoder does — byte-order marks
 * and byte tokens (ranges that are not valid UTF-8) included; long pieces with the heap merge, which
 * merges as the naive loop does.
 */
import { countTokens } from "gpt-tokenizer/encoding/o200k_base"
import { describe, expect, it } from "vitest"
import {
  type BpeTable,
  HEAP_MERGE_FROM,
  heapMergeCount,
  isValidUtf8,
  lookup,
  makeTable,
  mergeCount,
  naiveMergeCount,
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

  it("merges long pieces with the heap as the naive loop does (ties included), and as the library", () => {
    let seed = 4242
    const next = (n: number) => Math.floor(((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * n)
    const utf8 = new TextEncoder()
    // Small alphabets, so that pairs of equal rank come side by side and overlap (runs of one character,
    // "abab…"), and merged parts meet again; bytes with byte-order marks and ranges that are not UTF-8.
    const alphabets: ReadonlyArray<ReadonlyArray<string>> = [
      ["x"],
      ["a", "b"],
      ["ab"],
      ["a", "b", "c"],
      [..."abcdefghijklmnopqrstuvwxyz"],
      [..."etaoin"],
      [..."0123456789"],
      [" "],
      [" ", "\n", "\t"],
      ["=", "-", "*", "_"],
      ["é", "ß", "Ж"],
      ["中", "文", "字"],
      ["😀", "👍"],
      ["é", "中", "😀", "\ufeff", "a", " "],
      ["th", "e", "in", "g", "tion", "'s", " "]
    ]
    const bytesAlphabet = [0xef, 0xbb, 0xbf, 0x80, 0xc3, 0x61, 0x78, 0xff]
    const inputs: Array<Uint8Array> = []
    for (let i = 0; i < 600; i++) {
      // Mostly around the threshold and up to a few hundred bytes; one in six up to 3,000.
      const length = i % 6 === 0 ? 1 + next(3000) : HEAP_MERGE_FROM - 8 + next(400)
      if (i % 7 === 0) {
        inputs.push(Uint8Array.from({ length }, () => bytesAlphabet[next(bytesAlphabet.length)]!))
        continue
      }
      const alphabet = alphabets[i % alphabets.length]!
      const runs = next(3) === 0 // runs of one symbol, of random lengths
      let text = ""
      while (utf8.encode(text).length < length) {
        const symbol = alphabet[next(alphabet.length)]!
        text += runs ? symbol.repeat(1 + next(40)) : symbol
      }
      inputs.push(utf8.encode(text))
    }
    for (const c of ["x", "ab", "abc", " ", "0", "é", "😀", "-"]) {
      for (const length of [HEAP_MERGE_FROM - 1, HEAP_MERGE_FROM, 999, 1000, 1001, 2048, 3000]) {
        inputs.push(utf8.encode(c.repeat(Math.ceil(length / c.length)).slice(0, length)))
      }
    }
    expect(inputs.filter((b) => b.length >= 2000).length).toBeGreaterThan(40)
    // Compared in a loop, the pieces that differ listed (vitest's toEqual on thousands of bytes is slow).
    const differing: Array<{ hex: string; naive: number; heap: number; mergeCount: number; library?: number }> = []
    for (const [i, bytes] of inputs.entries()) {
      const naive = naiveMergeCount(table, bytes, bytes.length)
      const heap = heapMergeCount(table, bytes, bytes.length)
      const merged = mergeCount(table, bytes, bytes.length)
      // The library's own loop on every fourth (the naive loop with the library's lookups; as slow).
      const library = i % 4 === 0 ? core.bytePairEncodingCoreProcessor.bytePairMerge(bytes).length : naive
      if (heap !== naive || merged !== naive || library !== naive) {
        differing.push({ hex: Buffer.from(bytes).toString("hex"), naive, heap, mergeCount: merged, library })
      }
    }
    // Short ones too (mergeCount leaves them to the naive loop), and the empty and one-byte pieces.
    for (const bytes of inputs.map((b) => b.subarray(0, next(HEAP_MERGE_FROM)))) {
      const [naive, heap] = [naiveMergeCount(table, bytes, bytes.length), heapMergeCount(table, bytes, bytes.length)]
      if (heap !== naive) differing.push({ hex: Buffer.from(bytes).toString("hex"), naive, heap, mergeCount: -1 })
    }
    expect(differing).toEqual([])
    // A prefix of a longer buffer (as countBpe passes its scratch buffer).
    const long = utf8.encode("x".repeat(5000))
    expect(heapMergeCount(table, long, 3000)).toBe(naiveMergeCount(table, long.subarray(0, 3000), 3000))
  })

  it("counts texts with byte-order marks as countTokens", () => {
    const texts = ["\ufeffabc", "x\ufeff\ufeffy", " \ufefftext\ufeff", "\ufeff", "\ufeffusing", "\ufeff\ufeff\n\n"]
    for (const text of texts) {
      expect([text, countBpe(text)]).toEqual([text, countTokens(text)])
    }
  })
})
