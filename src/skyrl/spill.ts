/**
 * Spilled records: fixed-size records of 32-bit words appended during a pass over a dataset and read back
 * after it, so that what the pass must remember about every row (duplicate keys, near-duplicate
 * signatures) lives in a scratch file instead of memory. The file itself is a service's
 * (src/services/Scratch.ts); this module holds the interface and the pure algorithms over it:
 * `forEachGroup` finds the records that share a key one partition of the key space at a time, so memory
 * is bounded by the partition size (`DEFAULT_PARTITION_RECORDS`), whatever the number of rows (a single
 * key shared by more records than that is sorted whole).
 */

/** Records of `width` 32-bit words, in the order they were appended. */
export interface SpillFile {
  readonly width: number
  /** Records appended so far. */
  readonly count: number
  /** Appends one record: the `width` values of `record` from index `at` (default 0; missing ones are 0). */
  append(record: ArrayLike<number>, at?: number): void
  /** Calls `each` with successive chunks of whole records, from the first (`first`: index of the chunk's first). */
  scan(each: (records: Uint32Array, first: number) => void): void
  /** Reads record `index` into `out`. */
  read(index: number, out: Uint32Array): void
  /** Frees the file (no method may be called after). */
  dispose(): void
}

/** Where spilled records go (one scratch directory, removed with everything in it when its scope ends). */
export interface Spill {
  file(width: number): SpillFile
}

/** One record's words, reused by `appendWords` (`append` copies them). */
const words = new Uint32Array(5)

/** Appends the record (a, b, c, d, e) to `file` (its first `file.width` words). */
export const appendWords = (file: SpillFile, a: number, b = 0, c = 0, d = 0, e = 0): void => {
  words[0] = a
  words[1] = b
  words[2] = c
  words[3] = d
  words[4] = e
  file.append(words)
}

/**
 * Records sorted in memory at once (~20-30 bytes each with the sort's arrays: ~2 MB): bounds the memory of
 * a group pass, with the partition files' buffers (at most `MAX_FAN_OUT` at once).
 */
const DEFAULT_PARTITION_RECORDS = 1 << 16

export interface GroupOptions {
  /** Most records sorted in memory at once (default `DEFAULT_PARTITION_RECORDS`). */
  readonly partitionRecords?: number | undefined
  /** Words of the key (at the start of each record): records group when these are equal. */
  readonly keyWords: 1 | 2
  /**
   * Keys are below this bound (default 2^32: hashes). Partitions are ranges of the first key word, so
   * groups come in key order: give the bound when the key is a row number and groups must come in row order.
   */
  readonly keyBound?: number | undefined
  /**
   * `group` looks at no record, only at how many groups there are: a range of one key is then one group
   * without reading its records (it is called with empty arrays), however many rows share the key.
   */
  readonly keysOnly?: boolean | undefined
}

/**
 * Calls `group` for each run of records with the same key, in key order (the first two words, then the
 * order the records were appended). `records` holds the partition's records; `order` their indexes
 * sorted, and the group is `order[from..to)` (record `order[i]` starts at `records[order[i] * width]`).
 * The records are read once when they fit in one partition, else distributed into partition files by
 * key range first (at most `MAX_FAN_OUT` at a time; a part still too large is split again).
 */
export const forEachGroup = (
  spill: Spill,
  file: SpillFile,
  options: GroupOptions,
  group: (records: Uint32Array, order: Uint32Array, from: number, to: number) => void
): void => {
  const size = Math.min(MAX_PARTITION_RECORDS, Math.max(1, options.partitionRecords ?? DEFAULT_PARTITION_RECORDS))
  const keysOnly = options.keysOnly === true && options.keyWords === 1
  groupRange(spill, file, 0, options.keyBound ?? 2 ** 32, size, options.keyWords, group, workspaceOf(spill), keysOnly)
}

const NO_RECORDS = new Uint32Array(0)

/** Partition files written at once at most: more are made a level down (a range of a range). */
const MAX_FAN_OUT = 64

/** The groups of `file`, whose first words are in [lo, hi): sorted whole, or split into key ranges first. */
const groupRange = (
  spill: Spill,
  file: SpillFile,
  lo: number,
  hi: number,
  size: number,
  keyWords: 1 | 2,
  group: (records: Uint32Array, order: Uint32Array, from: number, to: number) => void,
  workspace: Workspace,
  keysOnly: boolean
): void => {
  // `keysOnly`: a range of one first word is one group without sorting its records (a bigram every prompt
  // shares is a key of every row: 1,000,000 records, 16 MB sorted at once).
  if (keysOnly && hi - lo === 1) {
    if (file.count > 0) group(NO_RECORDS, NO_RECORDS, 0, 0)
    return
  }
  const parts = Math.min(MAX_FAN_OUT, Math.ceil(file.count / size), hi - lo)
  if (parts <= 1) {
    groupPartition(file, keyWords, group, workspace)
    return
  }
  const span = Math.ceil((hi - lo) / parts)
  const files = Array.from({ length: parts }, () => spill.file(file.width))
  const w = file.width
  file.scan((records) => {
    for (let at = 0; at < records.length; at += w) {
      // The record is copied from `records` as it stands: a view of it per record made a 6.7-million-record
      // partition pass mostly garbage collection.
      files[Math.min(parts - 1, Math.floor((records[at]! - lo) / span))]!.append(records, at)
    }
  })
  files.forEach((part, i) => {
    const from = lo + i * span
    groupRange(spill, part, from, Math.min(hi, from + span), size, keyWords, group, workspace, keysOnly)
    part.dispose()
  })
}

/** Records of one partition at most: a record's index takes 21 bits beside its 32-bit key in a double. */
const MAX_PARTITION_RECORDS = 1 << 21

/**
 * The arrays one partition is sorted in, grown as needed and reused by every partition of a spill: typed
 * arrays live outside V8's heap, and V8 collects them only after tens of MB more have been allocated,
 * so new ones per partition would raise the peak memory with the number of partitions.
 */
class Workspace {
  records = new Uint32Array(0)
  keyed = new Float64Array(0)
  order = new Uint32Array(0)
  fit(n: number, w: number): void {
    if (this.records.length < n * w) this.records = new Uint32Array(n * w)
    if (this.order.length < n) {
      this.order = new Uint32Array(n)
      this.keyed = new Float64Array(n)
    }
  }
}

const workspaces = new WeakMap<Spill, Workspace>()
const workspaceOf = (spill: Spill): Workspace => {
  let w = workspaces.get(spill)
  if (w === undefined) workspaces.set(spill, w = new Workspace())
  return w
}

/** Record indexes by the first word, then index: one numeric sort when the indexes fit beside the key. */
const sortedByFirstWord = (records: Uint32Array, w: number, n: number, workspace: Workspace): Uint32Array => {
  const order = workspace.order.subarray(0, n)
  for (let i = 0; i < n; i++) order[i] = i
  if (n > MAX_PARTITION_RECORDS) {
    // A key space partition this large holds one key of very many records (a flood of copies).
    return order.sort((a, b) => records[a * w]! - records[b * w]! || a - b)
  }
  const keyed = workspace.keyed.subarray(0, n)
  for (let i = 0; i < n; i++) keyed[i] = records[i * w]! * MAX_PARTITION_RECORDS + i
  keyed.sort()
  for (let i = 0; i < n; i++) order[i] = keyed[i]! % MAX_PARTITION_RECORDS
  return order
}

const groupPartition = (
  file: SpillFile,
  keyWords: 1 | 2,
  group: (records: Uint32Array, order: Uint32Array, from: number, to: number) => void,
  workspace: Workspace
): void => {
  const w = file.width
  const n = file.count
  workspace.fit(n, w)
  const records = workspace.records.subarray(0, n * w)
  file.scan((chunk, first) => records.set(chunk, first * w))
  const order = sortedByFirstWord(records, w, n, workspace)
  for (let from = 0; from < n;) {
    let to = from + 1
    while (to < n && records[order[to]! * w] === records[order[from]! * w]) to++
    // Records sharing the first word: by the second, then their index.
    if (w > 1 && to - from > 1) {
      order.subarray(from, to).sort((a, b) => records[a * w + 1]! - records[b * w + 1]! || a - b)
    }
    if (keyWords === 1) group(records, order, from, to)
    else {
      for (let start = from; start < to;) {
        let end = start + 1
        while (end < to && records[order[end]! * w + 1] === records[order[start]! * w + 1]) end++
        group(records, order, start, end)
        start = end
      }
    }
    from = to
  }
}

/** Distinct values of a file of 1-word records (one partition of the value range at a time). */
export const countDistinct = (spill: Spill, file: SpillFile, partitionRecords?: number): number => {
  let distinct = 0
  forEachGroup(spill, file, { keyWords: 1, partitionRecords, keysOnly: true }, () => void distinct++)
  return distinct
}

/** A set of row numbers in one bit each. */
export class RowBits {
  private bits = new Uint32Array(64)
  has(row: number): boolean {
    const word = row >>> 5
    return word < this.bits.length && (this.bits[word]! & (1 << (row & 31))) !== 0
  }
  add(row: number): void {
    const word = row >>> 5
    if (word >= this.bits.length) {
      const grown = new Uint32Array(Math.max(word + 1, this.bits.length * 2))
      grown.set(this.bits)
      this.bits = grown
    }
    this.bits[word] = this.bits[word]! | (1 << (row & 31))
  }
}

/** The first `max` items by a number (smallest first), kept as they come: examples in row order. */
export class FirstBy<A> {
  readonly items: Array<A> = []
  count = 0
  constructor(private readonly max: number, private readonly by: (a: A) => number) {}
  add(item: A): void {
    this.count++
    if (this.max <= 0) return
    if (this.items.length === this.max && this.by(this.items[this.max - 1]!) <= this.by(item)) return
    let i = this.items.length
    while (i > 0 && this.by(this.items[i - 1]!) > this.by(item)) i--
    this.items.splice(i, 0, item)
    if (this.items.length > this.max) this.items.pop()
  }
}
