/**
 * A BPE vocabulary (o200k_base's ranks, as gpt-tokenizer ships them) as one byte table: each rank's
 * bytes and an open-addressing hash table from bytes to rank, in typed arrays. Made once at build time
 * (dist/o200k_base.bpe) and read as it is: gpt-tokenizer's own encoder builds a Map of 200,000 strings
 * from a 4 MB JavaScript array at each start (~0.1 s of CPU and its garbage, with the array's bytecode in
 * the code cache), where this table costs a file read.
 *
 * `countPieceTokens` counts a piece's tokens as gpt-tokenizer's `bytePairEncode(piece).length` does,
 * including how it looks up a byte range during merges: a range that is valid UTF-8 by the string
 * vocabulary after decoding (which drops a leading byte-order mark), any other by the byte tokens.
 * test/bpeTable.test.ts holds the counts equal to the library's. A long piece (a run of one character,
 * a long word) is merged with a heap, in O(n log n), where the library's loop takes O(n²).
 */
import { isWellFormed } from "./utf8.js"

/** Ranks as gpt-tokenizer holds them: a token's text, or its bytes when they are not valid UTF-8. */
export type Ranks = ReadonlyArray<string | ReadonlyArray<number>>

const MAGIC = 0x31_65_70_62 // "bpe1"
const HEADER_WORDS = 4

export interface BpeTable {
  /** Number of ranks. */
  readonly count: number
  /** offsets[r]..offsets[r + 1]: the bytes of rank r in `bytes`. */
  readonly offsets: Uint32Array
  /** Hash slots: rank + 1, or 0 for an empty slot (length a power of two). */
  readonly slots: Uint32Array
  readonly bytes: Uint8Array
}

/** FNV-1a over bytes[start, end). */
const hashOf = (bytes: Uint8Array, start: number, end: number): number => {
  let h = 0x811c9dc5
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193)
  return h >>> 0
}

/** gpt-tokenizer's `isValidUTF8` (utfUtil.ts), over bytes[start, end). */
export const isValidUtf8 = (bytes: Uint8Array, start: number, end: number): boolean => {
  for (let i = start; i < end;) {
    const b1 = bytes[i]!
    let size: number
    let cp: number
    if (b1 <= 0x7f) [size, cp] = [1, b1]
    else if ((b1 & 0xe0) === 0xc0 && b1 > 0xc1) [size, cp] = [2, b1 & 0x1f]
    else if ((b1 & 0xf0) === 0xe0) [size, cp] = [3, b1 & 0x0f]
    else if ((b1 & 0xf8) === 0xf0 && b1 <= 0xf4) [size, cp] = [4, b1 & 0x07]
    else return false
    if (i + size > end) return false
    for (let j = 1; j < size; j++) {
      const b = bytes[i + j]!
      if ((b & 0xc0) !== 0x80) return false
      cp = (cp << 6) | (b & 0x3f)
    }
    if ((size === 2 && cp < 0x80) || (size === 3 && cp < 0x800) || (size === 4 && cp < 0x10000)) return false
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return false
    i += size
  }
  return true
}

/** The rank of bytes[start, end), or -1. */
export const lookup = (table: BpeTable, bytes: Uint8Array, start: number, end: number): number => {
  const { bytes: own, offsets, slots } = table
  const mask = slots.length - 1
  const length = end - start
  for (let i = hashOf(bytes, start, end) & mask;; i = (i + 1) & mask) {
    const slot = slots[i]!
    if (slot === 0) return -1
    const rank = slot - 1
    const from = offsets[rank]!
    if (offsets[rank + 1]! - from !== length) continue
    let k = 0
    while (k < length && own[from + k] === bytes[start + k]) k++
    if (k === length) return rank
  }
}

/**
 * The table of `ranks`, or undefined when they break what lookups assume (then the library counts): no
 * two findable ranks with the same bytes, texts without lone surrogates, every single byte a token.
 */
export const makeTable = (ranks: Ranks): BpeTable | undefined => {
  const encoder = new TextEncoder()
  const parts = ranks.map((r) => typeof r === "string" ? encoder.encode(r) : Uint8Array.from(r))
  const offsets = new Uint32Array(ranks.length + 1)
  parts.forEach((p, r) => (offsets[r + 1] = offsets[r]! + p.length))
  const bytes = new Uint8Array(offsets[ranks.length]!)
  parts.forEach((p, r) => bytes.set(p, offsets[r]))
  let size = 1
  while (size < ranks.length * 2) size *= 2
  const table = { count: ranks.length, offsets, slots: new Uint32Array(size), bytes }
  for (let r = 0; r < ranks.length; r++) {
    const [start, end] = [offsets[r]!, offsets[r + 1]!]
    if (typeof ranks[r] === "string" ? !isWellFormed(ranks[r] as string) : isValidUtf8(bytes, start, end)) {
      // A byte token that is valid UTF-8 (o200k_base has 9, each a byte-order mark and more): the library
      // looks such bytes up as text (without the mark), so it never finds the token; nor does the table.
      if (typeof ranks[r] === "string") return undefined
      continue
    }
    if (lookup(table, bytes, start, end) !== -1) return undefined
    let i = hashOf(bytes, start, end) & (size - 1)
    while (table.slots[i] !== 0) i = (i + 1) & (size - 1)
    table.slots[i] = r + 1
  }
  const one = new Uint8Array(1)
  for (let b = 0; b < 256; b++) if (((one[0] = b), lookup(table, one, 0, 1)) === -1) return undefined
  return table
}

/** The table as one buffer: a header (magic, count, slots, byte length), the offsets, slots and bytes. */
export const serializeTable = (table: BpeTable): Uint8Array => {
  const words = HEADER_WORDS + table.offsets.length + table.slots.length
  const out = new Uint8Array(words * 4 + table.bytes.length)
  const view = new Uint32Array(out.buffer, 0, words)
  view.set([MAGIC, table.count, table.slots.length, table.bytes.length])
  view.set(table.offsets, HEADER_WORDS)
  view.set(table.slots, HEADER_WORDS + table.offsets.length)
  out.set(table.bytes, words * 4)
  return out
}

/** A table from `serializeTable`'s bytes (viewed, not copied), or undefined when they are not one. */
export const readTable = (data: Uint8Array): BpeTable | undefined => {
  if (data.byteOffset % 4 !== 0 || data.length < HEADER_WORDS * 4) return undefined
  const [magic, count, slots, length] = new Uint32Array(data.buffer, data.byteOffset, HEADER_WORDS)
  const words = HEADER_WORDS + count! + 1 + slots!
  if (magic !== MAGIC || data.length !== words * 4 + length! || (slots! & (slots! - 1)) !== 0) return undefined
  return {
    count: count!,
    offsets: new Uint32Array(data.buffer, data.byteOffset + HEADER_WORDS * 4, count! + 1),
    slots: new Uint32Array(data.buffer, data.byteOffset + (HEADER_WORDS + count! + 1) * 4, slots!),
    bytes: data.subarray(words * 4)
  }
}

/** The ranks back, as gpt-tokenizer holds them (for the library's own encoder, when it is needed). */
export const ranksOf = (table: BpeTable): Ranks => {
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true })
  return Array.from({ length: table.count }, (_, r) => {
    const part = table.bytes.subarray(table.offsets[r], table.offsets[r + 1])
    const isText = isValidUtf8(part, 0, part.length) && lookup(table, part, 0, part.length) === r
    return isText ? decoder.decode(part) : Array.from(part)
  })
}

/** A byte range's rank during merges, looked up as gpt-tokenizer's `getBpeRankFromBytes` does. */
const mergeRank = (table: BpeTable, bytes: Uint8Array, start: number, end: number): number => {
  // Valid UTF-8 is looked up as decoded text, and decoding drops a leading byte-order mark.
  if (
    end - start >= 3 && bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf &&
    isValidUtf8(bytes, start, end)
  ) return lookup(table, bytes, start + 3, end)
  return lookup(table, bytes, start, end)
}

const INF = Number.POSITIVE_INFINITY

/**
 * Pieces of at least this many bytes are merged with the heap (`heapMergeCount`), shorter ones with the
 * naive loop (`naiveMergeCount`), which is as fast or faster below ~64 bytes (pieces of random letters,
 * word parts, runs of one character or of punctuation; both cost mostly their rank lookups) and ~10%
 * faster below ~24, where nearly all pieces outside the vocabulary are; from ~128 bytes the heap is
 * faster (0.7–0.9× at 128–256 bytes) and then ever more so.
 */
export const HEAP_MERGE_FROM = 128

/**
 * Tokens of the byte-pair merge of bytes[0, length) (gpt-tokenizer's `bytePairMerge`: the adjacent pair
 * of lowest rank merged first, the leftmost of equal ones).
 */
export const mergeCount = (table: BpeTable, bytes: Uint8Array, length: number): number =>
  length < HEAP_MERGE_FROM ? naiveMergeCount(table, bytes, length) : heapMergeCount(table, bytes, length)

/**
 * `mergeCount` as gpt-tokenizer's `bytePairMerge` does it: find the lowest rank (the first of equal ones,
 * strictly lower replaces), merge, and look again — O(n²) on a piece of n bytes.
 */
export const naiveMergeCount = (table: BpeTable, bytes: Uint8Array, length: number): number => {
  const starts: Array<number> = []
  const ranks: Array<number> = []
  const rankAt = (i: number): number => {
    const end = starts[i + 2]
    if (end === undefined) return INF
    const r = mergeRank(table, bytes, starts[i]!, end)
    return r === -1 ? INF : r
  }
  for (let i = 0; i <= length; i++) {
    starts.push(i)
    const r = i < length - 1 ? mergeRank(table, bytes, i, i + 2) : -1
    ranks.push(r === -1 ? INF : r)
  }
  while (starts.length > 1) {
    let lowest = INF
    let at = -1
    for (let i = 0; i < ranks.length - 1; i++) if (ranks[i]! < lowest) [lowest, at] = [ranks[i]!, i]
    if (at === -1) break
    starts.splice(at + 1, 1)
    ranks.splice(at, 1)
    ranks[at] = rankAt(at)
    if (at > 0) ranks[at - 1] = rankAt(at - 1)
  }
  return starts.length - 1
}

/**
 * The heap merge's scratch, grown as needed (a merge runs to its end without calling out) up to pieces of
 * KEEP_SCRATCH bytes (2.3 MB kept); a longer piece's is its own, left to the collector.
 */
const KEEP_SCRATCH = 65_536
let nextOf = new Int32Array(0)
let prevOf = new Int32Array(0)
let pairRankOf = new Int32Array(0)
let heapRanks = new Int32Array(0)
let heapStarts = new Int32Array(0)

/**
 * `mergeCount` in O(n log n): the same merges as `naiveMergeCount`, in the same order. Parts are a doubly
 * linked list named by their first byte (which a part keeps as it grows rightwards); `pairRankOf[p]` is the
 * rank of the pair of part p and the next one (-1: none, or p is merged away). A binary min-heap holds
 * (rank, p) candidates ordered by rank then p — the lowest rank, the leftmost of equal ones, as the naive
 * scan picks. A merge changes only the pairs on either side of the new part: their new ranks are pushed
 * and the old entries left in the heap, skipped when they come out (their rank is no longer p's). Every
 * live pair has an entry with its current rank, and an entry that passes that check is a live pair at
 * that rank, so the entry on top that passes is the naive loop's choice. At most n - 1 entries to start
 * and two pushed per merge: the heap never holds 3n.
 */
export const heapMergeCount = (table: BpeTable, bytes: Uint8Array, length: number): number => {
  if (length < 2) return length
  let next = nextOf
  let prev = prevOf
  let pairRank = pairRankOf
  let ranks = heapRanks
  let starts = heapStarts
  if (next.length < length) {
    let capacity = 1024
    while (capacity < length) capacity *= 2
    next = new Int32Array(capacity)
    prev = new Int32Array(capacity)
    pairRank = new Int32Array(capacity)
    ranks = new Int32Array(capacity * 3)
    starts = new Int32Array(capacity * 3)
    if (capacity <= KEEP_SCRATCH) {
      ;[nextOf, prevOf, pairRankOf, heapRanks, heapStarts] = [next, prev, pairRank, ranks, starts]
    }
  }
  let size = 0
  /** Puts (r, p) at `at` or below, where the heap has a hole. */
  const siftDown = (from: number, r: number, p: number): void => {
    let at = from
    for (;;) {
      let child = 2 * at + 1
      if (child >= size) break
      const right = child + 1
      if (
        right < size &&
        (ranks[right]! < ranks[child]! || (ranks[right] === ranks[child] && starts[right]! < starts[child]!))
      ) {
        child = right
      }
      if (ranks[child]! > r || (ranks[child] === r && starts[child]! > p)) break
      ranks[at] = ranks[child]!
      starts[at] = starts[child]!
      at = child
    }
    ranks[at] = r
    starts[at] = p
  }
  const push = (r: number, p: number): void => {
    let at = size++
    while (at > 0) {
      const parent = (at - 1) >> 1
      if (ranks[parent]! < r || (ranks[parent] === r && starts[parent]! < p)) break
      ranks[at] = ranks[parent]!
      starts[at] = starts[parent]!
      at = parent
    }
    ranks[at] = r
    starts[at] = p
  }
  for (let p = 0; p < length; p++) {
    next[p] = p + 1
    prev[p] = p - 1
    const r = p < length - 1 ? mergeRank(table, bytes, p, p + 2) : -1
    pairRank[p] = r
    if (r !== -1) {
      ranks[size] = r
      starts[size++] = p
    }
  }
  for (let i = (size >> 1) - 1; i >= 0; i--) siftDown(i, ranks[i]!, starts[i]!)
  let parts = length
  while (size > 0) {
    const rank = ranks[0]!
    const p = starts[0]!
    if (--size > 0) siftDown(0, ranks[size]!, starts[size]!)
    if (pairRank[p] !== rank) continue
    // Part p takes in the next part; then the pair it starts and the one before it change.
    const after = next[next[p]!]!
    pairRank[next[p]!] = -1
    next[p] = after
    parts--
    if (after < length) {
      prev[after] = p
      const r = mergeRank(table, bytes, p, next[after]!)
      pairRank[p] = r
      if (r !== -1) push(r, p)
    } else {
      pairRank[p] = -1
    }
    if (p > 0) {
      const before = prev[p]!
      const r = mergeRank(table, bytes, before, after)
      pairRank[before] = r
      if (r !== -1) push(r, before)
    }
  }
  return parts
}
