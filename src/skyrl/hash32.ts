/**
 * Small, fast, non-cryptographic 32-bit hashes for sketches (near-duplicate signatures, distinct
 * counts, seeded shuffles). Deterministic across platforms and Node versions. Not for anything an
 * adversary controls or that other programs read (those use sha256 in canonical.ts).
 */

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193

/** FNV-1a over UTF-16 code units, 32 bit. */
export const fnv1a32 = (text: string): number => {
  let h = FNV_OFFSET
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, FNV_PRIME)
  }
  return h >>> 0
}

/**
 * `fnv1a32` of each word of a text whose words are separated by single spaces, with no space at either
 * end (`text.split(" ").map(fnv1a32)` for a non-empty text), without a string or a boxed number per word:
 * for a prompt of millions of words those were most of the time and memory `validate` spent on it.
 */
export const fnv1a32Words = (text: string): Uint32Array => {
  if (text === "") return new Uint32Array(0)
  let words = 1
  for (let i = text.indexOf(" "); i !== -1; i = text.indexOf(" ", i + 1)) words++
  const hashes = new Uint32Array(words)
  let word = 0
  let h = FNV_OFFSET
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 32) {
      hashes[word++] = h
      h = FNV_OFFSET
    } else {
      h ^= c
      h = Math.imul(h, FNV_PRIME)
    }
  }
  hashes[word] = h
  return hashes
}

/** MurmurHash3's finalizer: spreads every input bit over the output (a bijection on 32-bit ints). */
export const fmix32 = (x: number): number => {
  let h = x >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * Combines a running hash with one more 32-bit value. Start chains from a constant
 * (`combine32(combine32(SEED, a), b)`): on two raw values alone it is symmetric (it mixes `h ^ x`).
 */
export const combine32 = (h: number, x: number): number => fmix32(Math.imul(h ^ x, 0x9e3779b1) + 0x7f4a7c15)

/** A set of 32-bit integers in one typed array (open addressing): far lighter and faster than a Set. */
export class IntSet {
  private table = new Uint32Array(1 << 12)
  /** 0 marks an empty slot, so the value 0 is tracked apart. */
  private hasZero = false
  private count = 0

  get size(): number {
    return this.count + (this.hasZero ? 1 : 0)
  }

  add(value: number): void {
    const v = value >>> 0
    if (v === 0) {
      this.hasZero = true
      return
    }
    if ((this.count + 1) * 2 > this.table.length) this.grow()
    if (this.place(this.table, v)) this.count++
  }

  private place(table: Uint32Array, v: number): boolean {
    const mask = table.length - 1
    let i = fmix32(v) & mask
    while (table[i] !== 0) {
      if (table[i] === v) return false
      i = (i + 1) & mask
    }
    table[i] = v
    return true
  }

  private grow(): void {
    const bigger = new Uint32Array(this.table.length * 2)
    for (const v of this.table) if (v !== 0) this.place(bigger, v)
    this.table = bigger
  }
}
