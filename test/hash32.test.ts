import { describe, expect, it } from "vitest"
import { combine32, fmix32, fnv1a32, fnv1a32Words, IntSet } from "../src/skyrl/hash32.js"

describe("32-bit hashes", () => {
  it("match the published FNV-1a and MurmurHash3 finalizer values", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5)
    expect(fnv1a32("a")).toBe(0xe40c292c)
    expect(fnv1a32("foobar")).toBe(0xbf9cf968)
    expect(fmix32(0)).toBe(0)
  })
  it("fnv1a32Words hashes each space-separated word as fnv1a32 does", () => {
    const words = (text: string) => Array.from(fnv1a32Words(text))
    expect(words("")).toEqual([])
    expect(words("foobar")).toEqual([0xbf9cf968])
    expect(words("a foobar a")).toEqual([0xe40c292c, 0xbf9cf968, 0xe40c292c])
    for (const text of ["get nvda s quote", "ünïcode wörds 日本語 テキスト", "1 22 333 4444"]) {
      expect(words(text)).toEqual(text.split(" ").map(fnv1a32))
    }
  })
  it("combine32 chains in order when started from a constant", () => {
    const chain = (a: number, b: number) => combine32(combine32(7, a), b)
    expect(chain(1, 2)).not.toBe(chain(2, 1))
  })
})

describe("IntSet", () => {
  it("counts distinct 32-bit values, zero and growth included", () => {
    const set = new IntSet()
    for (let i = 0; i < 10_000; i++) set.add(i % 5000)
    set.add(0xffffffff)
    set.add(-1) // the same 32 bits as 0xffffffff
    expect(set.size).toBe(5001)
  })
})
