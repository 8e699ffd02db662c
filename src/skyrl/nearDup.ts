/**
 * Near-duplicate detection over user prompts (MinHash + LSH banding) and over plans (same calls with
 * the same literal params). Pure and deterministic: no randomness beyond fixed hash constants, so the
 * same prompts in the same order always give the same matches.
 *
 * Prompts: normalized as validate does (`normalizeForDuplicates`: NFKC, lower case, letters and
 * digits), cut into word shingles (3 words; a prompt shorter than that is one shingle), and sketched
 * into a fixed-size signature (`bins` 32-bit values, default 128, plus a bit per bin) by
 * one-permutation hashing: each shingle is hashed once, so the time is linear in the prompt and the
 * memory per prompt is the signature alone, whatever the prompt's length. Similarity is estimated on
 * the bins either prompt filled (Li, Owen & Zhang 2012; for a prompt with fewer shingles than bins
 * this is close to the exact Jaccard, for a long one its standard error is about sqrt(J(1-J)/bins),
 * ±0.035 at 0.8). Empty bins are filled by optimal densification (Shrivastava 2017) for LSH banding
 * (`bandsFor`), which finds candidates without comparing every pair; each is then verified.
 *
 * Plans: `planSignature` is the canonical JSON of the ordered (server, tool, literal params) — params
 * listed in a step's `derived_params` are left out, as their values are illustrative.
 */
import { canonicalJson, sha256Hex } from "./canonical.js"
import { normalizeForDuplicates } from "./checks.js"
import { combine32, fmix32, fnv1a32Words } from "./hash32.js"
import { UnionFind } from "./unionFind.js"

export const DEFAULT_NEAR_DUP_THRESHOLD = 0.8
export const DEFAULT_BINS = 128
export const DEFAULT_SHINGLE_WORDS = 3
/** Verified matches kept per query (enough to link clusters; bounds the work on floods of copies). */
export const DEFAULT_MAX_MATCHES = 8
/**
 * Entries of one band's bucket `skyrl validate` looks at per query, newest first (the index's default is
 * every entry, as the acceptance gate uses it). A bucket holds the prompts that share one band of 6 values;
 * prompts cut from one template (similar, yet below the threshold) fill the same buckets by the thousand,
 * and verifying every entry makes a query linear in the rows seen (validate quadratic: 100k templated
 * prompts took 80 s, 200k 310 s). A pair at the threshold shares about 5.5 of the 21 bands, so it is
 * missed only when it is beyond this depth in every bucket it shares: in a flood of one template, a
 * near-duplicate of a row many rows earlier.
 */
export const VALIDATE_MAX_WALK = 32

export interface NearDupOptions {
  /** Estimated Jaccard similarity at or above which two prompts are near-duplicates (0 < t ≤ 1). */
  readonly threshold?: number
  /** Signature size, a power of two from 16 to 1024. */
  readonly bins?: number
  readonly shingleWords?: number
  readonly maxMatches?: number
  /** Bucket entries a query looks at per band, newest first (default: all; see `VALIDATE_MAX_WALK`). */
  readonly maxWalk?: number
}

/** Parses `--near-dup T`: a number in (0, 1]; an error message otherwise. */
export const parseNearDupThreshold = (text: string): number | string => {
  const t = Number(text.trim())
  return text.trim() !== "" && t > 0 && t <= 1 ? t : `must be a number above 0 and at most 1, got "${text}"`
}

/** The words of a prompt as near-duplicate detection sees them. */
export const promptWords = (text: string): ReadonlyArray<string> => {
  const normalized = normalizeForDuplicates(text)
  return normalized === "" ? [] : normalized.split(" ")
}

/** The word shingles of a prompt as text (for explanations; detection hashes them instead). */
export const shingleTexts = (text: string, words = DEFAULT_SHINGLE_WORDS): ReadonlyArray<string> => {
  const w = promptWords(text)
  if (w.length === 0) return []
  if (w.length <= words) return [w.join(" ")]
  return Array.from({ length: w.length - words + 1 }, (_, i) => w.slice(i, i + words).join(" "))
}

const EMPTY = 0xffffffff
const BIN_SALT = 0x9e3779b9

/** Length of a signature of `bins` bins: the values, then one bit per bin saying it held a shingle. */
export const signatureLength = (bins: number): number => bins + bins / 32

/**
 * The signature of a prompt: for each bin the least value among the shingles hashed into it, then a
 * bit mask of the bins that held one. Empty bins get the value of the first filled bin of their own
 * fixed probe sequence (the same for every prompt): LSH bands need every value. A prompt without words
 * has no filled bin.
 */
export const signatureOf = (text: string, bins = DEFAULT_BINS, words = DEFAULT_SHINGLE_WORDS): Uint32Array =>
  signatureOfWords(wordHashes(text), bins, words)

/** The words of a prompt hashed (fnv1a32 of each of `promptWords`, in a typed array). */
export const wordHashes = (text: string): Uint32Array => fnv1a32Words(normalizeForDuplicates(text))

/** `signatureOf` from the prompt's word hashes (for callers that already have them). */
export const signatureOfWords = (
  w: ArrayLike<number>,
  bins = DEFAULT_BINS,
  words = DEFAULT_SHINGLE_WORDS
): Uint32Array => {
  const sig = new Uint32Array(signatureLength(bins)).fill(EMPTY, 0, bins)
  const mask = bins - 1
  const isFilled = (b: number) => (sig[bins + (b >>> 5)] & (1 << (b & 31))) !== 0
  const n = w.length <= words ? Math.min(w.length, 1) : w.length - words + 1
  const span = Math.min(words, w.length)
  for (let i = 0; i < n; i++) {
    let h = 0x2545f491
    for (let j = 0; j < span; j++) h = combine32(h, w[i + j])
    const v = fmix32(h)
    const b = fmix32(h ^ BIN_SALT) & mask
    if (!isFilled(b) || v < sig[b]) sig[b] = v
    sig[bins + (b >>> 5)] |= 1 << (b & 31)
  }
  if (n === 0) return sig
  for (let b = 0; b < bins; b++) {
    if (isFilled(b)) continue
    for (let attempt = 1;; attempt++) {
      const from = fmix32(Math.imul(b + 1, 0x27d4eb2f) ^ Math.imul(attempt, 0x165667b1)) & mask
      if (isFilled(from)) {
        sig[b] = sig[from]
        break
      }
    }
  }
  return sig
}

const popcount = (x: number): number => {
  let v = x - ((x >>> 1) & 0x55555555)
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333)
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24)
}

/**
 * Estimated Jaccard similarity of two signatures (one-permutation hashing, Li et al. 2012): among the
 * bins either prompt filled, the share both filled with the same least shingle. Two prompts without
 * words are alike (1). `a` from `aOffset` and `b` from `bOffset`, each `signatureLength(bins)` long.
 */
export const signatureSimilarity = (
  a: Uint32Array,
  b: Uint32Array,
  bins = DEFAULT_BINS,
  aOffset = 0,
  bOffset = 0
): number => {
  let either = 0
  let same = 0
  for (let word = 0; word < bins / 32; word++) {
    const ma = a[aOffset + bins + word]
    const mb = b[bOffset + bins + word]
    either += popcount(ma | mb)
    let both = ma & mb
    while (both !== 0) {
      const bit = 31 - Math.clz32(both & -both)
      const i = word * 32 + bit
      if (a[aOffset + i] === b[bOffset + i]) same++
      both &= both - 1
    }
  }
  return either === 0 ? 1 : same / either
}

/**
 * LSH bands for a threshold: the most rows per band (fewest false candidates) whose chance of missing a
 * pair at the threshold, (1 - t^rows)^bands, stays under 0.5%. 0.8 with 128 bins: 21 bands of 6.
 */
export const bandsFor = (threshold: number, bins: number): { readonly bands: number; readonly rows: number } => {
  let best = { bands: bins, rows: 1 }
  for (let rows = 1; rows <= bins; rows++) {
    const bands = Math.floor(bins / rows)
    if (Math.pow(1 - Math.pow(threshold, rows), bands) <= 0.005) best = { bands, rows }
  }
  return best
}

/** The LSH bucket key of a signature's band `band` (`rows` values a band); one table holds every band's keys. */
export const bandKeyOf = (sig: Uint32Array, band: number, rows: number, offset = 0): number => {
  let h = Math.imul(band + 1, 0x9e3779b1)
  const start = offset + band * rows
  for (let i = start; i < start + rows; i++) h = combine32(h, sig[i])
  return h
}

/** A 32-bit hash of a whole signature (values and mask): exact copies share it. */
export const signatureHash = (sig: Uint32Array): number => {
  let h = 0x12345678
  for (let i = 0; i < sig.length; i++) h = combine32(h, sig[i])
  return h
}

export interface PromptMatch {
  /** Insertion number of the earlier prompt (0-based). */
  readonly id: number
  /** Estimated Jaccard similarity of the shingle sets. */
  readonly similarity: number
}

/** Open-addressing table from a 32-bit band key to the head of a chain of entries (id × bands + band). */
class BandTable {
  private keys = new Uint32Array(1 << 12)
  private heads = new Int32Array(1 << 12).fill(-1)
  private used = 0

  slot(key: number): number {
    const mask = this.keys.length - 1
    let i = fmix32(key) & mask
    while (this.heads[i] !== -1 && this.keys[i] !== key) i = (i + 1) & mask
    return i
  }
  head(key: number): number {
    return this.heads[this.slot(key)]
  }
  /** Makes `entry` the new head for `key`; returns the previous head (-1 when none). */
  push(key: number, entry: number): number {
    if ((this.used + 1) * 2 > this.keys.length) this.grow()
    const i = this.slot(key)
    const previous = this.heads[i]
    if (previous === -1) this.used++
    this.keys[i] = key
    this.heads[i] = entry
    return previous
  }
  get bytes(): number {
    return this.keys.byteLength + this.heads.byteLength
  }
  private grow(): void {
    const keys = this.keys
    const heads = this.heads
    this.keys = new Uint32Array(keys.length * 2)
    this.heads = new Int32Array(keys.length * 2).fill(-1)
    for (let i = 0; i < keys.length; i++) {
      if (heads[i] === -1) continue
      const j = this.slot(keys[i])
      this.keys[j] = keys[i]
      this.heads[j] = heads[i]
    }
  }
}

/**
 * MinHash index over prompts. `query` tests without inserting; `insert` adds and returns the matches
 * found among earlier prompts. Memory per prompt: its signature (`bins × 4.125` bytes) plus about
 * `bands × 12` bytes of band entries (≈ 0.8 KB at the defaults, ≈ 1.2 KB with growth slack),
 * independent of the prompt's length. An exact copy of an earlier prompt (same signature) is stored but
 * not banded: queries find the first prompt with that signature.
 */
export class MinHashIndex {
  readonly threshold: number
  readonly bins: number
  readonly shingleWords: number
  readonly bands: number
  readonly rows: number
  private readonly maxMatches: number
  private readonly maxWalk: number
  /** Signature length (values and filled-bin mask). */
  private readonly stride: number
  private sigs: Uint32Array
  private next: Int32Array
  private stamps: Int32Array
  private stamp = 0
  private count = 0
  private readonly table = new BandTable()
  /** Signature hash → first id with that exact signature (exact copies skip the bands). */
  private readonly exact = new Map<number, number>()

  constructor(options: NearDupOptions = {}) {
    this.threshold = options.threshold ?? DEFAULT_NEAR_DUP_THRESHOLD
    this.bins = options.bins ?? DEFAULT_BINS
    this.shingleWords = options.shingleWords ?? DEFAULT_SHINGLE_WORDS
    this.maxMatches = options.maxMatches ?? DEFAULT_MAX_MATCHES
    this.maxWalk = options.maxWalk ?? Infinity
    if (!(this.threshold > 0 && this.threshold <= 1)) throw new RangeError("threshold must be in (0, 1]")
    if (this.bins < 16 || this.bins > 1024 || (this.bins & (this.bins - 1)) !== 0) {
      throw new RangeError("bins must be a power of two from 16 to 1024")
    }
    if (!(this.shingleWords >= 1)) throw new RangeError("shingleWords must be at least 1")
    ;({ bands: this.bands, rows: this.rows } = bandsFor(this.threshold, this.bins))
    this.stride = signatureLength(this.bins)
    this.sigs = new Uint32Array(this.stride * 256)
    this.next = new Int32Array(this.bands * 256)
    this.stamps = new Int32Array(256)
  }

  get size(): number {
    return this.count
  }

  /** Bytes held by the index's arrays (signatures, band chains, table). */
  get bytes(): number {
    return this.sigs.byteLength + this.next.byteLength + this.stamps.byteLength + this.table.bytes +
      this.exact.size * 16
  }

  signature(text: string): Uint32Array {
    return signatureOf(text, this.bins, this.shingleWords)
  }

  /** Similarity of a signature with an inserted prompt. */
  similarityTo(sig: Uint32Array, id: number): number {
    return signatureSimilarity(sig, this.sigs, this.bins, 0, id * this.stride)
  }

  /** Earlier prompts at or above the threshold (most similar first, at most `maxMatches`). */
  query(textOrSignature: string | Uint32Array): ReadonlyArray<PromptMatch> {
    const sig = typeof textOrSignature === "string" ? this.signature(textOrSignature) : textOrSignature
    const found: Array<PromptMatch> = []
    const copy = this.exact.get(signatureHash(sig))
    if (copy !== undefined && this.similarityTo(sig, copy) === 1) found.push({ id: copy, similarity: 1 })
    const stamp = ++this.stamp
    if (copy !== undefined) this.stamps[copy] = stamp
    for (let band = 0; band < this.bands && found.length < this.maxMatches; band++) {
      let walked = 0
      const head = this.table.head(bandKeyOf(sig, band, this.rows))
      for (let e = head; e !== -1 && walked < this.maxWalk; e = this.next[e]) {
        walked++
        const id = (e / this.bands) | 0
        if (this.stamps[id] === stamp) continue
        this.stamps[id] = stamp
        const similarity = this.similarityTo(sig, id)
        if (similarity >= this.threshold) found.push({ id, similarity })
        if (found.length >= this.maxMatches) break
      }
    }
    return found.sort((a, b) => b.similarity - a.similarity || a.id - b.id)
  }

  /** Adds a prompt; returns its id and the earlier prompts it matches. */
  insert(textOrSignature: string | Uint32Array): { readonly id: number; readonly matches: ReadonlyArray<PromptMatch> } {
    const sig = typeof textOrSignature === "string" ? this.signature(textOrSignature) : textOrSignature
    const matches = this.query(sig)
    const id = this.count++
    this.ensureCapacity(this.count)
    this.sigs.set(sig, id * this.stride)
    const h = signatureHash(sig)
    const copyOf = this.exact.get(h)
    if (copyOf !== undefined && this.similarityTo(sig, copyOf) === 1) return { id, matches }
    if (copyOf === undefined) this.exact.set(h, id)
    for (let band = 0; band < this.bands; band++) {
      const entry = id * this.bands + band
      this.next[entry] = this.table.push(bandKeyOf(sig, band, this.rows), entry)
    }
    return { id, matches }
  }

  private ensureCapacity(n: number): void {
    if (n * this.stride <= this.sigs.length) return
    const cap = Math.max(n, (this.sigs.length / this.stride) * 2)
    const grow = <A extends Uint32Array | Int32Array>(old: A, make: (size: number) => A, per: number): A => {
      const out = make(cap * per)
      out.set(old)
      return out
    }
    this.sigs = grow(this.sigs, (s) => new Uint32Array(s), this.stride)
    this.next = grow(this.next, (s) => new Int32Array(s), this.bands)
    this.stamps = grow(this.stamps, (s) => new Int32Array(s), 1)
  }
}

// ---------------------------------------------------------------------------------------------
// Plans

export interface SignatureStep {
  readonly server: string
  readonly tool: string
  /** An object, or its JSON text (the on-disk layout). */
  readonly params: unknown
  /** Params whose values come from earlier results (left out of the signature). Missing: none. */
  readonly derived_params?: ReadonlyArray<string> | undefined
}

const literalParams = (step: SignatureStep): unknown => {
  let params = step.params
  if (typeof params === "string") {
    try {
      params = JSON.parse(params)
    } catch {
      return params
    }
  }
  if (typeof params !== "object" || params === null || Array.isArray(params)) return params
  const derived = new Set(step.derived_params ?? [])
  return Object.fromEntries(Object.entries(params).filter(([k, v]) => !derived.has(k) && v !== null))
}

/** The plan's identity for duplicate purposes: ordered (server, tool, literal params), canonical JSON. */
export const planSignature = (steps: ReadonlyArray<SignatureStep>): string =>
  canonicalJson(steps.map((s) => [s.server, s.tool, literalParams(s)]))

// ---------------------------------------------------------------------------------------------
// Both keys together, with clusters

export interface DuplicateCandidate {
  readonly prompt: string
  /** `wordHashes(prompt)` when the caller has them already (saves normalizing the prompt twice). */
  readonly wordHashes?: ArrayLike<number> | undefined
  /** Omit to check the prompt only. */
  readonly plan?: ReadonlyArray<SignatureStep> | undefined
}

export type DuplicateKind = "near-prompt" | "plan"

export interface DuplicateMatch {
  readonly id: number
  readonly kind: DuplicateKind
  /** Estimated prompt similarity (near-prompt), or 1 (plan). */
  readonly similarity: number
}

export interface DuplicatePair {
  readonly a: number
  readonly b: number
  readonly similarity: number
}

export interface DuplicateCluster {
  readonly kind: DuplicateKind
  /** Ids in insertion order; the first is the one kept, the others its near-duplicates. */
  readonly members: ReadonlyArray<number>
  /** The links that put the members together (each later member with the earlier ones it matched). */
  readonly pairs: ReadonlyArray<DuplicatePair>
}

/**
 * Prompt MinHash and plan signatures under one set of ids. Generation: `claim` (test and insert in one
 * synchronous step, so two concurrent samples cannot both pass). Validation: `insert` every row, then
 * `clusters()`.
 */
export class DuplicateIndex {
  private readonly prompts: MinHashIndex
  private readonly plans = new Map<string, number>()
  private readonly edges: Record<DuplicateKind, Array<DuplicatePair>> = { "near-prompt": [], plan: [] }

  constructor(options: NearDupOptions = {}) {
    this.prompts = new MinHashIndex(options)
  }

  get size(): number {
    return this.prompts.size
  }

  get threshold(): number {
    return this.prompts.threshold
  }

  /** Earlier entries the candidate duplicates: near-prompt matches first, then a same-plan match. */
  test(candidate: DuplicateCandidate): ReadonlyArray<DuplicateMatch> {
    return this.matches(this.signature(candidate), planKeyOf(candidate.plan))
  }

  /** Inserts whatever it matches; the matches become cluster links. */
  insert(candidate: DuplicateCandidate): { readonly id: number; readonly matches: ReadonlyArray<DuplicateMatch> } {
    const sig = this.signature(candidate)
    const key = planKeyOf(candidate.plan)
    return this.insertWith(sig, key, this.matches(sig, key))
  }

  /**
   * `test`, with the `insert` of the same candidate: the insert reuses the signature, plan key and matches
   * (found again only when something was inserted since), so a test followed by an insert costs one.
   */
  probe(candidate: DuplicateCandidate): {
    readonly matches: ReadonlyArray<DuplicateMatch>
    readonly insert: () => { readonly id: number; readonly matches: ReadonlyArray<DuplicateMatch> }
  } {
    const sig = this.signature(candidate)
    const key = planKeyOf(candidate.plan)
    const matches = this.matches(sig, key)
    const size = this.prompts.size
    return {
      matches,
      insert: () => this.insertWith(sig, key, this.prompts.size === size ? matches : this.matches(sig, key))
    }
  }

  private insertWith(sig: Uint32Array, key: string | undefined, matches: ReadonlyArray<DuplicateMatch>) {
    const { id } = this.prompts.insert(sig)
    if (key !== undefined && !this.plans.has(key)) this.plans.set(key, id)
    for (const m of matches) this.edges[m.kind].push({ a: m.id, b: id, similarity: m.similarity })
    return { id, matches }
  }

  /** Inserts only when nothing matches. */
  claim(
    candidate: DuplicateCandidate
  ):
    | { readonly accepted: true; readonly id: number }
    | { readonly accepted: false; readonly matches: ReadonlyArray<DuplicateMatch> }
  {
    const matches = this.test(candidate)
    return matches.length > 0 ? { accepted: false, matches } : { accepted: true, id: this.insert(candidate).id }
  }

  /** Clusters of each kind, largest first (ties: earliest first member). */
  clusters(): ReadonlyArray<DuplicateCluster> {
    return (["near-prompt", "plan"] as const).flatMap((kind) => clustersOf(kind, this.edges[kind], this.prompts.size))
  }

  /** Bytes held by the prompt index (plus about 80 bytes per distinct plan in the plan map). */
  get bytes(): number {
    return this.prompts.bytes
  }

  private signature(candidate: DuplicateCandidate): Uint32Array {
    return candidateSignature(candidate, this.prompts.bins, this.prompts.shingleWords)
  }

  private matches(sig: Uint32Array, key: string | undefined) {
    const out: Array<DuplicateMatch> = this.prompts.query(sig).map((m) => ({ ...m, kind: "near-prompt" as const }))
    const samePlan = key === undefined ? undefined : this.plans.get(key)
    if (samePlan !== undefined) out.push({ id: samePlan, kind: "plan", similarity: 1 })
    return out
  }
}

/**
 * A plan's duplicate key: 64 bits of the sha256 of its signature, as 16 hex digits (fixed size per plan,
 * collisions negligible at millions of plans); undefined for no plan.
 */
export const planKeyOf = (plan: ReadonlyArray<SignatureStep> | undefined): string | undefined =>
  plan === undefined || plan.length === 0 ? undefined : sha256Hex(planSignature(plan)).slice(0, 16)

/** The prompt's signature of a candidate (from its word hashes when it has them). */
export const candidateSignature = (candidate: DuplicateCandidate, bins: number, shingleWords: number): Uint32Array =>
  candidate.wordHashes === undefined
    ? signatureOf(candidate.prompt, bins, shingleWords)
    : signatureOfWords(candidate.wordHashes, bins, shingleWords)

/** The clusters the links of one kind make among ids 0..n-1 (a union-find). */
const clustersOf = (
  kind: DuplicateKind,
  edges: ReadonlyArray<DuplicatePair>,
  n: number
): ReadonlyArray<DuplicateCluster> => {
  const links = new UnionFind(n)
  for (const e of edges) links.union(e.a, e.b)
  const groups = new Map<number, { members: Array<number>; pairs: Array<DuplicatePair> }>()
  for (let x = 0; x < n; x++) {
    if (!links.linked(x)) continue
    const root = links.find(x)
    const g = groups.get(root) ?? { members: [], pairs: [] }
    g.members.push(x)
    groups.set(root, g)
  }
  for (const e of edges) groups.get(links.find(e.a))?.pairs.push(e)
  return [...groups.values()]
    .sort((x, y) => y.members.length - x.members.length || x.members[0] - y.members[0])
    .map((g) => ({ kind, members: g.members, pairs: g.pairs }))
}

// ---------------------------------------------------------------------------------------------
// Explanations

export interface PairExplanation {
  /** Exact Jaccard similarity of the two shingle sets. */
  readonly jaccard: number
  /** Shingles both prompts contain, in the first prompt's order (at most `max`). */
  readonly shared: ReadonlyArray<string>
  readonly sharedCount: number
}

/** Why two prompts count as one: their exact shingle overlap (needs both texts). */
export const explainPair = (a: string, b: string, max = 8, words = DEFAULT_SHINGLE_WORDS): PairExplanation => {
  const sa = [...new Set(shingleTexts(a, words))]
  const sb = new Set(shingleTexts(b, words))
  const shared = sa.filter((s) => sb.has(s))
  const union = sa.length + sb.size - shared.length
  return { jaccard: union === 0 ? 1 : shared.length / union, shared: shared.slice(0, max), sharedCount: shared.length }
}
