/**
 * Subject seeds: hands each sample a subject (a company, a topic, a place, a file...) from a pool, so
 * that thousands of requests do not converge on the same few. Pure and deterministic: the subject of a
 * sample depends only on the seed, the plan's domains and the pools, never on the order samples
 * finish in (concurrency, resume).
 *
 * Pools: `byDomain` (from a model stage that proposes subjects per domain) and `shared` (from
 * `--subjects FILE`, for every domain without its own pool). Samples that draw from the same pool
 * form a group; the pool is shuffled with the seed and the group's samples, in index order, take its
 * entries one by one, so no subject repeats within a pool until the pool runs out (then it cycles,
 * and `reuse` says how often). Entries the first attempts leave over are spares for later attempts
 * of a sample (after a near-duplicate), so a retry gets a subject no other sample was given.
 */
import { fnv1a32 } from "./hash32.js"
import { seededShuffle } from "./workPlan.js"

export interface SubjectPools {
  readonly byDomain?: Readonly<Record<string, ReadonlyArray<string>>> | undefined
  readonly shared?: ReadonlyArray<string> | undefined
}

export interface SubjectAllocation {
  /** The subject of a sample's attempt (1-based), or undefined when its domain has no pool. */
  readonly subjectFor: (index: number, attempt: number) => string | undefined
  /** Per pool ("*" for the shared one): its size, the samples drawing from it, spares and cycles. */
  readonly pools: ReadonlyArray<PoolUse>
}

export interface PoolUse {
  readonly pool: string
  readonly subjects: number
  readonly samples: number
  /** Subjects no first attempt uses (available to retries). */
  readonly spares: number
  /** Most times one subject is handed to first attempts (1 when the pool is large enough). */
  readonly reuse: number
}

export const SHARED_POOL = "*"

const distinct = (items: ReadonlyArray<string>): ReadonlyArray<string> => {
  const seen = new Set<string>()
  return items.map((s) => s.trim()).filter((s) => {
    const key = s.toLowerCase()
    if (s === "" || seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** The pools with blanks and repeats dropped, empty pools removed. */
const cleanPools = (pools: SubjectPools): Map<string, ReadonlyArray<string>> => {
  const out = new Map<string, ReadonlyArray<string>>()
  for (const [domain, list] of Object.entries(pools.byDomain ?? {})) {
    const clean = distinct(list)
    if (clean.length > 0) out.set(domain, clean)
  }
  const shared = distinct(pools.shared ?? [])
  if (shared.length > 0) out.set(SHARED_POOL, shared)
  return out
}

/** How many samples draw from each pool: what a model stage should be asked for (at least). */
export const subjectDemand = (
  plan: Iterable<{ readonly domain: string }>
): Readonly<Record<string, number>> => {
  const out: Record<string, number> = {}
  for (const s of plan) out[s.domain] = (out[s.domain] ?? 0) + 1
  return out
}

export const allocateSubjects = (
  seed: number,
  plan: ReadonlyArray<{ readonly index: number; readonly domain: string }>,
  pools: SubjectPools
): SubjectAllocation => {
  const sorted = [...plan].sort((a, b) => a.index - b.index)
  return allocateInIndexOrder(seed, sorted, sorted.length === 0 ? 0 : sorted[sorted.length - 1].index + 1, pools)
}

/**
 * `allocateSubjects` over a plan of `n` samples given by the domain of each index (a work plan made
 * sample by sample, never held whole): the same allocation as over the plan's array.
 */
export const allocateSubjectsOf = (
  seed: number,
  n: number,
  domainOf: (index: number) => string,
  pools: SubjectPools
): SubjectAllocation =>
  allocateInIndexOrder(
    seed,
    (function*() {
      for (let index = 0; index < n; index++) yield { index, domain: domainOf(index) }
    })(),
    n,
    pools
  )

/**
 * The allocation over samples given in ascending index order, every index below `size`. Each sample's pool
 * and rank in it are kept in typed arrays (8 bytes a sample, nothing at all without pools), not a map of
 * objects: a plan of a million samples kept ~100 MB for them.
 */
const allocateInIndexOrder = (
  seed: number,
  samples: Iterable<{ readonly index: number; readonly domain: string }>,
  size: number,
  pools: SubjectPools
): SubjectAllocation => {
  const clean = cleanPools(pools)
  const shuffled = new Map<string, ReadonlyArray<string>>()
  const members = new Map<string, number>()
  const poolNames: Array<string> = []
  const poolIds = new Map<string, number>()
  // -1: no pool (the sample's domain has none, or no sample has this index).
  const poolOf = new Int32Array(clean.size === 0 ? 0 : size).fill(-1)
  const rankOf = new Int32Array(clean.size === 0 ? 0 : size)
  if (clean.size > 0) {
    for (const sample of samples) {
      // A domain's own pool, else the shared one (a domain named "*" has no pool of its own).
      const pool = sample.domain !== SHARED_POOL && clean.has(sample.domain)
        ? sample.domain
        : clean.has(SHARED_POOL)
        ? SHARED_POOL
        : undefined
      if (pool === undefined) continue
      if (!shuffled.has(pool)) {
        shuffled.set(pool, seededShuffle(clean.get(pool) ?? [], (seed ^ fnv1a32(pool)) >>> 0))
        poolIds.set(pool, poolNames.length)
        poolNames.push(pool)
      }
      const r = members.get(pool) ?? 0
      poolOf[sample.index] = poolIds.get(pool)!
      rankOf[sample.index] = r
      members.set(pool, r + 1)
    }
  }
  const subjectFor = (index: number, attempt: number): string | undefined => {
    const id = Number.isInteger(index) && index >= 0 && index < poolOf.length ? poolOf[index] : -1
    if (id === -1) return undefined
    const pool = poolNames[id]
    const rank = rankOf[index]
    const list = shuffled.get(pool) ?? []
    const group = members.get(pool) ?? 0
    if (attempt <= 1 || list.length <= group) return list[(rank + Math.max(0, attempt - 1)) % list.length]
    const spares = list.length - group
    return list[group + ((attempt - 2) * group + rank) % spares]
  }
  const uses: Array<PoolUse> = [...shuffled].map(([pool, list]) => {
    const samples = members.get(pool) ?? 0
    return {
      pool,
      subjects: list.length,
      samples,
      spares: Math.max(0, list.length - samples),
      reuse: Math.ceil(samples / list.length)
    }
  })
  return { subjectFor, pools: uses }
}
