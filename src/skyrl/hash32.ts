/**
 * Small, fast, non-cryptographic 32-bit hashes for sketches (near-duplicate signatures, distinct
 * counts, seeded shuffles). Deterministic across platforms and Node versions. Not for anything an
 * adversary controls or that other programs read (those use sha256 in canonical.ts).
 */

/** FNV-1a over UTF-16 code units, 32 bit. */
export const fnv1a32 = (text: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
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
