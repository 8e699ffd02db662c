/**
 * Fixed-size keys for duplicate detection over datasets of any size (checks.ts): a 64-bit hash of a text
 * (`hash64`, two 32-bit halves; two different texts share one with probability ~2^-64, so a million rows
 * give a false duplicate about once in 10^7 datasets), and `KeyTable`, which maps such keys to a few
 * 32-bit values in typed arrays: about 18 bytes a key with one value, where a JS Map of strings costs
 * ~100 bytes plus the strings. Pure; not for anything an adversary controls.
 *
 * The table is a list of tiers, each a bucketized cuckoo hash table (2 candidate buckets of 4 slots),
 * filled to 90% before the next tier is added; tiers grow to 2^16 buckets, then stay that size. A tier is
 * never rehashed, so memory grows by at most one tier at a time (no doubling spike), at the price of
 * looking a key up in every tier (a few cache lines each).
 */
import { fmix32 } from "./hash32.js"

/** The 64-bit hash of a text: `out[0]` high, `out[1]` low half (written in place, no allocation). */
export const hash64 = (text: string, out: Uint32Array, seed = 0): Uint32Array => {
  let h1 = 0xdeadbeef ^ seed
  let h2 = 0x41c6ce57 ^ seed
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 2654435761)
    h2 = Math.imul(h2 ^ c, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  out[0] = fmix32(h1 ^ text.length)
  out[1] = fmix32(h2 + Math.imul(text.length, 0x9e3779b1))
  return out
}

const SLOTS_PER_BUCKET = 4
const FIRST_BUCKETS = 1 << 12
const MAX_BUCKETS = 1 << 16
const MAX_LOAD = 0.9
const MAX_KICKS = 128

class Tier {
  /** Per slot: key high, key low, then the values; a zero key marks an empty slot. */
  readonly slots: Uint32Array
  readonly mask: number
  count = 0
  private readonly swap: Uint32Array
  constructor(readonly buckets: number, readonly stride: number) {
    this.slots = new Uint32Array(buckets * SLOTS_PER_BUCKET * stride)
    this.mask = buckets - 1
    this.swap = new Uint32Array(stride)
  }
  /** Slot offset of the key, or -1. */
  find(hi: number, lo: number): number {
    const at = this.findIn(hi & this.mask, hi, lo)
    return at >= 0 ? at : this.findIn(fmix32(lo) & this.mask, hi, lo)
  }
  private findIn(b: number, hi: number, lo: number): number {
    for (let s = 0, at = b * SLOTS_PER_BUCKET * this.stride; s < SLOTS_PER_BUCKET; s++, at += this.stride) {
      if (this.slots[at] === hi && this.slots[at + 1] === lo) return at
    }
    return -1
  }
  private freeSlot(b: number): number {
    for (let s = 0, at = b * SLOTS_PER_BUCKET * this.stride; s < SLOTS_PER_BUCKET; s++, at += this.stride) {
      if (this.slots[at] === 0 && this.slots[at + 1] === 0) return at
    }
    return -1
  }
  /** Places an entry (`entry`: key and values); returns the entry it could not place (in `entry`) or true. */
  place(entry: Uint32Array): boolean {
    if (this.count >= this.buckets * SLOTS_PER_BUCKET * MAX_LOAD) return false
    const swap = this.swap
    for (let kick = 0; kick < MAX_KICKS; kick++) {
      const b1 = entry[0]! & this.mask
      const b2 = fmix32(entry[1]!) & this.mask
      const free = Math.max(this.freeSlot(b1), this.freeSlot(b2))
      if (free >= 0) {
        this.slots.set(entry, free)
        this.count++
        return true
      }
      // Both buckets full: evict a slot of one of them (chosen by the kick number) and place that entry next.
      const b = kick % 2 === 0 ? b1 : b2
      const at = (b * SLOTS_PER_BUCKET + ((kick >> 1) % SLOTS_PER_BUCKET)) * this.stride
      swap.set(this.slots.subarray(at, at + this.stride))
      this.slots.set(entry, at)
      entry.set(swap)
    }
    return false
  }
}

/** 64-bit keys (as two 32-bit halves; the zero key is stored as (0, 1)) → `values` 32-bit values each. */
export class KeyTable {
  private readonly tiers: Array<Tier> = []
  private readonly stride: number
  private readonly entry: Uint32Array
  private entries = 0

  constructor(readonly values: 1 | 2) {
    this.stride = 2 + values
    this.entry = new Uint32Array(this.stride)
  }

  get size(): number {
    return this.entries
  }

  /** Bytes held by the table. */
  get bytes(): number {
    return this.tiers.reduce((n, t) => n + t.slots.byteLength, 0)
  }

  /** Copies the values of a key into `out` and returns true, or returns false when the key is not there. */
  get(hi: number, lo: number, out: Uint32Array): boolean {
    const h = hi >>> 0
    const l = h === 0 && lo >>> 0 === 0 ? 1 : lo >>> 0
    for (const tier of this.tiers) {
      const at = tier.find(h, l)
      if (at < 0) continue
      for (let i = 0; i < this.values; i++) out[i] = tier.slots[at + 2 + i]!
      return true
    }
    return false
  }

  /** Adds a key that is not in the table (callers `get` first) with its values (`value1` when there are two). */
  set(hi: number, lo: number, value0: number, value1 = 0): void {
    this.entry[0] = hi >>> 0
    this.entry[1] = hi >>> 0 === 0 && lo >>> 0 === 0 ? 1 : lo >>> 0
    this.entry[2] = value0
    if (this.values > 1) this.entry[3] = value1
    this.entries++
    const last = this.tiers.at(-1)
    if (last !== undefined && last.place(this.entry)) return
    // The last tier is full (or its cuckoo walk failed): the entry left over starts a new tier.
    const buckets = last === undefined ? FIRST_BUCKETS : Math.min(MAX_BUCKETS, last.buckets * 2)
    const tier = new Tier(buckets, this.stride)
    this.tiers.push(tier)
    tier.place(this.entry)
  }
}
