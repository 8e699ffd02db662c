/**
 * Near-duplicates of a whole pass (`skyrl validate`'s diversity report) with memory independent of the
 * rows: what `DuplicateIndex.insert` keeps per row (a MinHash signature, its LSH band entries, the plan
 * key) is spilled (spill.ts) as the rows come, and `resolve` finds afterwards the matches `insert` would
 * have returned, one partition of a key space at a time:
 *
 * 1. exact copies: rows grouped by signature hash, each later row compared with the first of its group;
 * 2. LSH: the band keys of every row, grouped by key (one table for every band, as the index has); in a
 *    bucket, in row order, each row looks at the `maxWalk` newest entries before it (a ring of their
 *    signatures), as `MinHashIndex.query` walks a bucket's chain, and its verified matches are spilled
 *    with their place in that walk (band, position);
 * 3. plans: rows grouped by plan key; every later row of a group matches the first;
 * 4. the matches of each row, in row order: the first `maxMatches` distinct ones in the order the
 *    query meets them (the copy, then band by band) are the query's result, which gives the findings and
 *    the cluster links (a union-find of 4 bytes a row; the links themselves are spilled for the pairs).
 *
 * The outcome is `DuplicateIndex`'s with `maxWalk` (the same rows, matches, similarities, clusters and
 * pairs; test/deferredDuplicates.test.ts): only a query's first `maxMatches` matches count, and a band's
 * walk adds at most that many, so each (row, band) spills at most `maxMatches` matches. Memory: the
 * union-find, one bit a row (exact copies), a ring of `maxWalk` signatures and one partition at a time.
 */
import type { DuplicateCandidate, DuplicateCluster, DuplicateKind, DuplicatePair, NearDupOptions } from "./nearDup.js"
import {
  bandKeyOf,
  candidateSignature,
  DEFAULT_MAX_MATCHES,
  MinHashIndex,
  planKeyOf,
  signatureHash,
  signatureLength,
  signatureSimilarity,
  VALIDATE_MAX_WALK
} from "./nearDup.js"
import type { Spill, SpillFile } from "./spill.js"
import { appendWords, FirstBy, forEachGroup, RowBits } from "./spill.js"
import { UnionFind } from "./unionFind.js"

export interface DeferredNearDupOptions extends NearDupOptions {
  /** Spilled records sorted in memory at once (spill.ts). */
  readonly partitionRecords?: number | undefined
}

/** A row (insertion id) that matches an earlier one: the earliest it matches, and how similar. */
export interface IdFinding {
  readonly id: number
  readonly earlier: number
  readonly similarity: number
}

export interface ResolvedNearDuplicates {
  readonly findings: Readonly<
    Record<DuplicateKind, { readonly count: number; readonly examples: ReadonlyArray<IdFinding> }>
  >
  /** Per kind: clusters, and the rows in them. */
  readonly summary: Readonly<Record<DuplicateKind, { readonly clusters: number; readonly rows: number }>>
  /**
   * The first `maxClusters` of `DuplicateIndex.clusters()` (near-prompt clusters, then plan clusters, each
   * largest first), with their first `maxPairs + 1` members and first `maxPairs` pairs.
   */
  readonly clusters: ReadonlyArray<DuplicateCluster & { readonly size: number }>
}

export interface ReportLimits {
  readonly maxExamples: number
  readonly maxClusters: number
  readonly maxPairs: number
}

/** `order` of a plan match (after every prompt match of its row). */
const PLAN = 0xffffffff
/** `order` of a band match: (band + 1) × BAND + position in the walk; 0 is the exact copy. */
const BAND = 1 << 20

const f64 = new Float64Array(1)
const f64Words = new Uint32Array(f64.buffer)
const similarityAt = (records: Uint32Array, at: number): number => {
  f64Words[0] = records[at]!
  f64Words[1] = records[at + 1]!
  return f64[0]!
}

/** Clusters are listed largest first, then by their first member. */
const clusterRank = (size: number, first: number) => -size * 2 ** 32 + first

export class DeferredDuplicates {
  readonly threshold: number
  private readonly bins: number
  private readonly shingleWords: number
  private readonly bands: number
  private readonly rows: number
  private readonly maxMatches: number
  private readonly maxWalk: number
  private readonly stride: number
  /** Per row: its signature. */
  private readonly sigs: SpillFile
  /** [signature hash, id] */
  private readonly hashes: SpillFile
  /** [plan key hi, lo, id] */
  private readonly plans: SpillFile
  private count = 0

  constructor(private readonly spill: Spill, private readonly options: DeferredNearDupOptions = {}) {
    // The index checks the options and derives the bands.
    const index = new MinHashIndex(options)
    this.threshold = index.threshold
    this.bins = index.bins
    this.shingleWords = index.shingleWords
    this.bands = index.bands
    this.rows = index.rows
    this.maxMatches = options.maxMatches ?? DEFAULT_MAX_MATCHES
    this.maxWalk = Math.min(options.maxWalk ?? VALIDATE_MAX_WALK, BAND - 1)
    if (!Number.isFinite(this.maxWalk) || this.maxWalk < 1) throw new RangeError("maxWalk must be finite and >= 1")
    this.stride = signatureLength(this.bins)
    this.sigs = spill.file(this.stride)
    this.hashes = spill.file(2)
    this.plans = spill.file(3)
  }

  /** Adds a row; returns its id (the insertion number, as `DuplicateIndex.insert` gives). */
  add(candidate: DuplicateCandidate): number {
    const id = this.count++
    const sig = candidateSignature(candidate, this.bins, this.shingleWords)
    this.sigs.append(sig)
    appendWords(this.hashes, signatureHash(sig), id)
    const key = planKeyOf(candidate.plan)
    if (key !== undefined) appendWords(this.plans, parseInt(key.slice(0, 8), 16), parseInt(key.slice(8), 16), id)
    return id
  }

  resolve(limits: ReportLimits): ResolvedNearDuplicates {
    const matches = this.spill.file(5)
    const copies = this.findCopies(matches)
    this.findBandMatches(matches, copies)
    const plan = this.findPlanDuplicates(matches, limits)
    const near = this.mergeMatches(matches, limits)
    matches.dispose()
    return {
      findings: { "near-prompt": near.findings, plan: near.planFindings },
      summary: { "near-prompt": near.summary, plan: plan.summary },
      clusters: [...near.clusters, ...plan.clusters].slice(0, limits.maxClusters)
    }
  }

  private putMatch(file: SpillFile, q: number, order: number, id: number, similarity: number): void {
    f64[0] = similarity
    appendWords(file, q, order, id, f64Words[0]!, f64Words[1]!)
  }

  /** Exact copies (the same signature as the first row with its hash): not banded; each matches that row. */
  private findCopies(matches: SpillFile): RowBits {
    const copies = new RowBits()
    const first = new Uint32Array(this.stride)
    const sig = new Uint32Array(this.stride)
    forEachGroup(this.spill, this.hashes, this.groupOptions(1), (records, order, from, to) => {
      if (to - from < 2) return
      const f = records[order[from]! * 2 + 1]!
      this.sigs.read(f, first)
      for (let i = from + 1; i < to; i++) {
        const q = records[order[i]! * 2 + 1]!
        this.sigs.read(q, sig)
        if (signatureSimilarity(sig, first, this.bins) !== 1) continue
        copies.add(q)
        this.putMatch(matches, q, 0, f, 1)
      }
    })
    return copies
  }

  /** Every row's walk of each of its buckets, bucket by bucket. */
  private findBandMatches(matches: SpillFile, copies: RowBits): void {
    const entries = this.spill.file(3)
    const entry = new Uint32Array(3)
    this.sigs.scan((chunk, first) => {
      for (let r = 0; r * this.stride < chunk.length; r++) {
        entry[1] = first + r
        for (let band = 0; band < this.bands; band++) {
          entry[0] = bandKeyOf(chunk, band, this.rows, r * this.stride)
          entry[2] = band
          entries.append(entry)
        }
      }
    })
    const walk = new BucketWalk(this.maxWalk, this.stride, (q, band, position, id, qSig, ring, slot) => {
      const similarity = signatureSimilarity(qSig, ring, this.bins, 0, slot * this.stride)
      if (similarity < this.threshold) return false
      this.putMatch(matches, q, (band + 1) * BAND + position, id, similarity)
      return true
    }, this.maxMatches)
    forEachGroup(this.spill, entries, this.groupOptions(1), (records, order, from, to) => {
      if (to - from < 2) return
      walk.bucket(records, order, from, to, this.sigs, copies)
    })
    entries.dispose()
  }

  /** Identical plans: a cluster per plan key; every later row matches the first. */
  private findPlanDuplicates(matches: SpillFile, limits: ReportLimits) {
    const top = new FirstBy<DuplicateCluster & { size: number }>(
      limits.maxClusters,
      (c) => clusterRank(c.size, c.members[0]!)
    )
    let rows = 0
    forEachGroup(this.spill, this.plans, this.groupOptions(2), (records, order, from, to) => {
      if (to - from < 2) return
      rows += to - from
      const f = records[order[from]! * 3 + 2]!
      for (let i = from + 1; i < to; i++) this.putMatch(matches, records[order[i]! * 3 + 2]!, PLAN, f, 1)
      const members = Array.from(
        { length: Math.min(to - from, limits.maxPairs + 1) },
        (_, i) => records[order[from + i]! * 3 + 2]!
      )
      const pairs = members.slice(1, limits.maxPairs + 1).map((b) => ({ a: f, b, similarity: 1 }))
      top.add({ kind: "plan", size: to - from, members, pairs })
    })
    return {
      summary: { clusters: top.count, rows },
      clusters: top.items
    }
  }

  /** Each row's matches in the order its query meets them: findings, links, clusters. */
  private mergeMatches(matches: SpillFile, limits: ReportLimits) {
    const near = new FirstBy<IdFinding>(limits.maxExamples, (f) => f.id)
    const plan = new FirstBy<IdFinding>(limits.maxExamples, (f) => f.id)
    const links = new Links(this.count)
    const edges = this.spill.file(4)
    const options = { ...this.groupOptions(1), keyBound: Math.max(1, this.count) }
    forEachGroup(this.spill, matches, options, (records, order, from, to) => {
      const q = records[order[from]! * 5]!
      const found: Array<{ id: number; similarity: number }> = []
      for (let i = from; i < to; i++) {
        const at = order[i]! * 5
        const id = records[at + 2]!
        if (records[at + 1] === PLAN) plan.add({ id: q, earlier: id, similarity: 1 })
        else if (found.length < this.maxMatches && !found.some((m) => m.id === id)) {
          found.push({ id, similarity: similarityAt(records, at + 3) })
        }
      }
      if (found.length === 0) return
      found.sort((a, b) => b.similarity - a.similarity || a.id - b.id)
      const earliest = found.reduce((a, b) => (b.id < a.id ? b : a))
      near.add({ id: q, earlier: earliest.id, similarity: earliest.similarity })
      for (const m of found) {
        links.union(m.id, q)
        f64[0] = m.similarity
        edges.append([m.id, q, f64Words[0]!, f64Words[1]!])
      }
    })
    const clusters = links.largest(limits, edges)
    edges.dispose()
    return {
      findings: { count: near.count, examples: near.items },
      planFindings: { count: plan.count, examples: plan.items },
      summary: links.summary(),
      clusters
    }
  }

  private groupOptions(keyWords: 1 | 2) {
    return { keyWords, partitionRecords: this.options.partitionRecords }
  }
}

/**
 * The walk of one bucket: its entries in row order, each row first looking at the `depth` newest entries
 * before it (newest first, as `MinHashIndex.query` walks a chain: a row met twice is looked at once),
 * then adding its own entries unless it is an exact copy. `verify` says whether a candidate matches;
 * a walk stops after `maxMatches` matches.
 */
class BucketWalk {
  private readonly ids: Int32Array
  private readonly sigs: Uint32Array
  private readonly qSig: Uint32Array
  private readonly seen: Array<number> = []
  private head = 0
  private size = 0

  constructor(
    private readonly depth: number,
    private readonly stride: number,
    private readonly verify: (
      q: number,
      band: number,
      position: number,
      id: number,
      qSig: Uint32Array,
      ring: Uint32Array,
      slot: number
    ) => boolean,
    private readonly maxMatches: number
  ) {
    this.ids = new Int32Array(depth)
    this.sigs = new Uint32Array(depth * stride)
    this.qSig = new Uint32Array(stride)
  }

  /** `records` are [key, id, band]; `order[from..to)` one key's, by id then band. */
  bucket(records: Uint32Array, order: Uint32Array, from: number, to: number, sigs: SpillFile, copies: RowBits): void {
    this.head = 0
    this.size = 0
    for (let i = from; i < to;) {
      const q = records[order[i]! * 3 + 1]!
      let j = i + 1
      while (j < to && records[order[j]! * 3 + 1] === q) j++
      if (this.size > 0 || j < to) sigs.read(q, this.qSig)
      if (this.size > 0) { for (let e = i; e < j; e++) this.walk(q, records[order[e]! * 3 + 2]!) }
      if (j < to && !copies.has(q)) { for (let e = i; e < j; e++) this.push(q) }
      i = j
    }
  }

  private walk(q: number, band: number): void {
    const seen = this.seen
    seen.length = 0
    let matched = 0
    for (let n = 0; n < this.size && matched < this.maxMatches; n++) {
      const slot = (this.head - 1 - n + this.depth) % this.depth
      const id = this.ids[slot]!
      if (seen.includes(id)) continue
      seen.push(id)
      if (this.verify(q, band, n, id, this.qSig, this.sigs, slot)) matched++
    }
  }

  private push(q: number): void {
    this.ids[this.head] = q
    this.sigs.set(this.qSig, this.head * this.stride)
    this.head = (this.head + 1) % this.depth
    this.size = Math.min(this.depth, this.size + 1)
  }
}

/** The spilled pass's clusters: a union-find of its rows, summed up and read back for the largest. */
class Links extends UnionFind {
  summary(): { readonly clusters: number; readonly rows: number } {
    let clusters = 0
    let rows = 0
    for (let x = 0; x < this.length; x++) {
      const size = this.rootSize(x)
      if (size === 0) continue
      clusters++
      rows += size
    }
    return { clusters, rows }
  }

  /** The largest clusters (then the earliest), with their first members and their first links in `edges`. */
  largest(limits: ReportLimits, edges: SpillFile): Array<DuplicateCluster & { size: number }> {
    const top = new FirstBy<{ root: number; size: number }>(limits.maxClusters, (c) => clusterRank(c.size, c.root))
    for (let x = 0; x < this.length; x++) {
      const size = this.rootSize(x)
      if (size > 0) top.add({ root: x, size })
    }
    const members = new Map(top.items.map((c) => [c.root, [] as Array<number>]))
    const pairs = new Map(top.items.map((c) => [c.root, [] as Array<DuplicatePair>]))
    if (top.items.length > 0) {
      for (let x = 0; x < this.length; x++) {
        const list = this.linked(x) ? members.get(this.find(x)) : undefined
        if (list !== undefined && list.length <= limits.maxPairs) list.push(x)
      }
      edges.scan((chunk) => {
        for (let at = 0; at < chunk.length; at += 4) {
          const list = pairs.get(this.find(chunk[at]!))
          if (list !== undefined && list.length < limits.maxPairs) {
            list.push({ a: chunk[at]!, b: chunk[at + 1]!, similarity: similarityAt(chunk, at + 2) })
          }
        }
      })
    }
    return top.items.map((c) => ({
      kind: "near-prompt",
      size: c.size,
      members: members.get(c.root)!,
      pairs: pairs.get(c.root)!
    }))
  }
}
