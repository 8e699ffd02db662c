import { describe, expect, it } from "vitest"
import type { Spill, SpillFile } from "../src/skyrl/spill.js"
import { appendWords, countDistinct } from "../src/skyrl/spill.js"

/** An in-memory spill that counts the records its files hand out in scans. */
const memorySpill = () => {
  const stats = { scanned: 0 }
  const spill: Spill = {
    file: (width: number): SpillFile => {
      const words: Array<number> = []
      return {
        width,
        get count() {
          return words.length / width
        },
        append: (record, at = 0) => {
          for (let i = 0; i < width; i++) words.push(record[at + i] ?? 0)
        },
        scan: (each) => {
          stats.scanned += words.length / width
          each(Uint32Array.from(words), 0)
        },
        read: (index, out) => out.set(words.slice(index * width, index * width + width)),
        dispose: () => void (words.length = 0)
      }
    }
  }
  return { spill, stats }
}

describe("countDistinct", () => {
  it("counts the distinct values of a file, across partitions and keys next to each other", () => {
    const { spill } = memorySpill()
    const file = spill.file(1)
    for (const v of [5, 6, 5, 0, 2 ** 32 - 1, 6, 7, 0, 123456789]) appendWords(file, v)
    // 0, 5, 6, 7, 123456789, 2^32-1
    expect(countDistinct(spill, file, 2)).toBe(6)
    expect(countDistinct(spill, file)).toBe(6)
  })

  it("a value shared by more records than a partition is one value, counted without sorting its records whole", () => {
    const { spill, stats } = memorySpill()
    const file = spill.file(1)
    for (let i = 0; i < 1000; i++) appendWords(file, 7)
    appendWords(file, 8)
    expect(countDistinct(spill, file, 64)).toBe(2)
    // 1,001 records split into 16 key ranges of 2^28, each range holding more than 64 split again by 16:
    // 2^28, 2^24, ... 2^4, 1. The ranges from 2^32 to 2^4 are read to be split (8 scans: 8,008 records,
    // the 2^4 range holding both values); the two ranges of one value are not read (before: a 9th read of all 1,001).
    expect(stats.scanned).toBe(8 * 1001)
  })
})
