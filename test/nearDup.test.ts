import { describe, expect, it } from "vitest"
import { normalizeForDuplicates } from "../src/skyrl/checks.js"
import {
  bandsFor,
  DuplicateIndex,
  explainPair,
  MinHashIndex,
  parseNearDupThreshold,
  planSignature,
  shingleTexts,
  signatureOf,
  signatureSimilarity
} from "../src/skyrl/nearDup.js"
import { piecewise } from "../src/skyrl/piecewise.js"
import { mulberry32 } from "../src/skyrl/workPlan.js"

/** n distinct words w<offset>..; two texts from it share exactly the words they share. */
const words = (n: number, offset = 0): Array<string> => Array.from({ length: n }, (_, i) => `w${offset + i}`)

/**
 * 100 distinct words, the last m replaced: each text has 98 three-word shingles, m of them (those
 * starting at word 98 - m or later) touch a replaced word, so J = (98 - m) / (98 + m).
 */
const pair = (m: number, offset = 0): [string, string] => {
  const a = words(100, offset)
  const b = [...a.slice(0, 100 - m), ...words(m, offset + 100_000)]
  return [a.join(" "), b.join(" ")]
}

describe("MinHash signatures", () => {
  it("have a fixed size whatever the prompt's length, and the same text gives the same signature", () => {
    // 128 values and a 128-bit mask of the bins that held a shingle
    expect(signatureOf("one").length).toBe(132)
    expect(signatureOf(words(5000).join(" ")).length).toBe(132)
    expect(signatureOf("Get the weather in Lisbon")).toEqual(signatureOf("Get the weather in Lisbon"))
  })

  it("see prompts as validate's normalization does (case, punctuation, spacing)", () => {
    expect(signatureOf("Get the WEATHER, in Lisbon!")).toEqual(signatureOf("get the weather in   lisbon"))
  })

  it("estimate the shingle Jaccard similarity", () => {
    const [a, b] = pair(5)
    expect(explainPair(a, b).jaccard).toBeCloseTo(93 / 103, 10)
    expect(Math.abs(signatureSimilarity(signatureOf(a), signatureOf(b)) - 93 / 103)).toBeLessThan(0.1)
    const [c, d] = pair(40)
    expect(explainPair(c, d).jaccard).toBeCloseTo(58 / 138, 10)
    expect(Math.abs(signatureSimilarity(signatureOf(c), signatureOf(d)) - 58 / 138)).toBeLessThan(0.1)
  })

  it("cut a prompt shorter than a shingle into one shingle", () => {
    expect(shingleTexts("Hello, world")).toEqual(["hello world"])
    expect(shingleTexts("a b c d")).toEqual(["a b c", "b c d"])
    expect(shingleTexts("  ...  ")).toEqual([])
  })
})

describe("LSH bands", () => {
  it("choose 21 bands of 6 rows for 0.8 over 128 bins (miss chance (1 - 0.8^6)^21 = 0.17%)", () => {
    expect(bandsFor(0.8, 128)).toEqual({ bands: 21, rows: 6 })
    expect(bandsFor(1, 128)).toEqual({ bands: 1, rows: 128 })
  })
})

describe("MinHashIndex", () => {
  it("tests without inserting, then inserts and finds the near-duplicate but not the distant prompt", () => {
    const index = new MinHashIndex()
    const [a, near] = pair(5)
    const [, far] = pair(40)
    expect(index.insert(a)).toEqual({ id: 0, matches: [] })
    expect(index.query(far)).toEqual([])
    const found = index.query(near)
    expect(found.map((m) => m.id)).toEqual([0])
    expect(found[0].similarity).toBeGreaterThanOrEqual(0.8)
    expect(index.size).toBe(1)
    expect(index.insert(a).matches).toEqual([{ id: 0, similarity: 1 }])
    expect(index.size).toBe(2)
  })

  it("finds every pair at J >= 0.92 among 400 prompts and no unrelated one", () => {
    const index = new MinHashIndex()
    const rand = mulberry32(3)
    let found = 0
    let spurious = 0
    for (let k = 0; k < 200; k++) {
      // 100 words drawn from a 2,000-word vocabulary (shared across prompts, as real prompts share words).
      const a = Array.from({ length: 100 }, () => `v${Math.floor(rand() * 2000)}`)
      const b = [...a.slice(0, 96), "x1", "x2", "x3", "x4"] // at most 4 of 98 shingles differ: J >= 94/102
      if (index.query(a.join(" ")).length > 0) spurious++
      const { id } = index.insert(a.join(" "))
      if (index.query(b.join(" ")).some((m) => m.id === id)) found++
    }
    expect(found).toBe(200)
    expect(spurious).toBe(0)
  })

  it("keeps at most 8 matches per query, and an exact copy is found as the first prompt with its text", () => {
    const index = new MinHashIndex()
    const base = words(40).join(" ")
    // 30 variants that differ in one last word: J = 38/40 between any two.
    for (let i = 0; i < 30; i++) index.insert(`${base} last${i}`)
    expect(index.query(`${base} last99`).length).toBe(8)
    const copies = new MinHashIndex()
    for (let i = 0; i < 30; i++) copies.insert(base)
    expect(copies.query(base)).toEqual([{ id: 0, similarity: 1 }])
  })

  it("holds the same bytes for 300 short or 300 long prompts", () => {
    const short = new MinHashIndex()
    const long = new MinHashIndex()
    for (let i = 0; i < 300; i++) {
      short.insert(words(6, i * 10).join(" "))
      long.insert(words(2000, i * 3000).join(" "))
    }
    expect(long.bytes).toBe(short.bytes)
  })

  it("parses --near-dup", () => {
    expect(parseNearDupThreshold("0.8")).toBe(0.8)
    expect(parseNearDupThreshold(" 1 ")).toBe(1)
    for (const bad of ["0", "1.5", "", "x", "-0.2"]) expect(parseNearDupThreshold(bad)).toMatch(/above 0 and at most 1/)
  })

  it("rejects settings it cannot honour", () => {
    expect(() => new MinHashIndex({ threshold: 0 })).toThrow(/threshold/)
    expect(() => new MinHashIndex({ bins: 100 })).toThrow(/power of two/)
  })
})

describe("plan signatures", () => {
  const step = (params: unknown, derived?: Array<string>) => ({
    server: "fs",
    tool: "read_file",
    params,
    ...(derived === undefined ? {} : { derived_params: derived })
  })

  it("are the ordered calls with their literal params, in canonical JSON", () => {
    expect(planSignature([step({ path: "/a", encoding: "utf8" })])).toBe(
      "[[\"fs\",\"read_file\",{\"encoding\":\"utf8\",\"path\":\"/a\"}]]"
    )
    expect(planSignature([step("{\"path\":\"/a\",\"head\":null}")])).toBe(planSignature([step({ path: "/a" })]))
  })

  it("leave derived params out (their values are illustrative)", () => {
    expect(planSignature([step({ path: "/a", id: "x" }, ["id"])])).toBe(
      planSignature([step({ path: "/a", id: "y" }, ["id"])])
    )
    expect(planSignature([step({ path: "/a", id: "x" })])).not.toBe(planSignature([step({ path: "/a", id: "y" })]))
  })
})

describe("DuplicateIndex", () => {
  const plan = (path: string) => [{ server: "fs", tool: "read_file", params: { path } }]
  const [a, near] = pair(5)
  const [c] = pair(5, 500)

  it("claims a new task, rejects a near-duplicate prompt and a same-plan task, and tests without inserting", () => {
    const index = new DuplicateIndex()
    expect(index.claim({ prompt: a, plan: plan("/a") })).toEqual({ accepted: true, id: 0 })
    expect(index.test({ prompt: c, plan: plan("/a") })).toEqual([{ id: 0, kind: "plan", similarity: 1 }])
    expect(index.size).toBe(1)
    const rejected = index.claim({ prompt: near, plan: plan("/b") })
    expect(rejected.accepted).toBe(false)
    expect(rejected.accepted ? [] : rejected.matches.map((m) => [m.id, m.kind])).toEqual([[0, "near-prompt"]])
    expect(index.claim({ prompt: c, plan: plan("/c") })).toEqual({ accepted: true, id: 1 })
    expect(index.size).toBe(2)
  })

  it("reports clusters with the pairs that link them", () => {
    const index = new DuplicateIndex()
    index.insert({ prompt: a, plan: plan("/a") }) // 0
    index.insert({ prompt: near, plan: plan("/b") }) // 1: near 0
    index.insert({ prompt: c, plan: plan("/c") }) // 2
    index.insert({ prompt: a, plan: plan("/d") }) // 3: copy of 0, near 1
    index.insert({ prompt: pair(5, 900)[0], plan: plan("/c") }) // 4: same plan as 2
    const clusters = index.clusters()
    expect(clusters.map((x) => [x.kind, x.members])).toEqual([["near-prompt", [0, 1, 3]], ["plan", [2, 4]]])
    expect(clusters[0].pairs.map((p) => [p.a, p.b])).toEqual([[0, 1], [0, 3], [1, 3]])
    expect(clusters[0].pairs[1].similarity).toBe(1)
    expect(clusters[1].pairs).toEqual([{ a: 2, b: 4, similarity: 1 }])
  })

  it("probe gives test's matches, and its insert what insert gives, also after other inserts came between", () => {
    const candidates = [
      { prompt: a, plan: plan("/a") },
      { prompt: near, plan: plan("/b") },
      { prompt: c, plan: plan("/c") },
      { prompt: a, plan: plan("/d") },
      { prompt: pair(5, 900)[0], plan: plan("/c") }
    ]
    const plain = new DuplicateIndex()
    const probed = new DuplicateIndex()
    for (const x of candidates) {
      const probe = probed.probe(x)
      expect(probe.matches).toEqual(probed.test(x))
      expect(probe.insert()).toEqual(plain.insert(x))
    }
    expect(probed.clusters()).toEqual(plain.clusters())
    // Probed before two inserts: its insert finds the matches again.
    const late = probed.probe({ prompt: near, plan: plan("/c") })
    plain.insert(candidates[0])
    probed.insert(candidates[0])
    plain.insert(candidates[2])
    probed.insert(candidates[2])
    expect(late.insert()).toEqual(plain.insert({ prompt: near, plan: plan("/c") }))
    expect(probed.clusters()).toEqual(plain.clusters())
  })

  it("links clusters transitively (A~B, B~C gives one cluster even when A and C differ more)", () => {
    // b: base's first 6 words replaced (J = 92/104); c: b's last 6 replaced (J(b, c) = 92/104,
    // J(base, c) = 86/110 = 0.78)
    const base = words(100)
    const b = [...words(6, 7000), ...base.slice(6)]
    const c = [...b.slice(0, 94), ...words(6, 8000)]
    const index = new DuplicateIndex()
    for (const t of [base, b, c]) index.insert({ prompt: t.join(" ") })
    expect(explainPair(base.join(" "), c.join(" ")).jaccard).toBeLessThan(0.8)
    expect(index.clusters().map((x) => x.members)).toEqual([[0, 1, 2]])
  })
})

describe("explainPair", () => {
  it("gives the exact Jaccard and the shared shingles in the first prompt's order", () => {
    const why = explainPair("Read the config file and list its keys", "Please read the config file and list all keys")
    // a: read the config | the config file | config file and | file and list | and list its | list its keys
    // b: please read the | read the config | the config file | config file and | file and list | and list all | list all keys
    expect(why.shared).toEqual(["read the config", "the config file", "config file and", "file and list"])
    expect(why.jaccard).toBeCloseTo(4 / 9, 10)
    expect(why.sharedCount).toBe(4)
  })
})

describe("MinHashIndex maxWalk (validate's bound on a bucket flooded by one template)", () => {
  const base = "the quick brown fox jumps over the lazy dog near the river bank on a sunny day"
  const variants = Array.from({ length: 30 }, (_, i) => `${base} number${i}`)

  it("looks at every bucket entry by default, and at most maxWalk per band when given", () => {
    const all = new MinHashIndex({ maxMatches: 100, threshold: 0.5 })
    const shallow = new MinHashIndex({ maxMatches: 100, threshold: 0.5, maxWalk: 2 })
    for (const v of variants) {
      all.insert(v)
      shallow.insert(v)
    }
    const probe = `${base} another`
    const everyMatch = all.query(probe)
    // Every variant differs from the probe in its last shingle only (Jaccard 15/17): LSH finds nearly all.
    expect(everyMatch.length).toBeGreaterThanOrEqual(27)
    const found = shallow.query(probe)
    expect(found.length).toBeGreaterThan(0)
    expect(found.length).toBeLessThan(everyMatch.length)
    // Newest first: the latest variants are the ones found.
    expect(Math.min(...found.map((m) => m.id))).toBeGreaterThan(0)
  })
})

describe("a long text normalized in pieces (piecewise)", () => {
  // Characters where a cut in the wrong place changes the result: a final sigma (lower-cased by what follows),
  // combining marks and Hangul jamo (NFKC composes them with what precedes), compatibility forms (NFKC: ﬁ,
  // full-width Ａ, 𝐀, ㈱), astral letters (a surrogate pair), separators of every kind, typographic quotes.
  const alphabet = [..."aZ09 Σσ\u0301\u0327\u1100\u1161ﬁＡ𝐀㈱😀é-_.,\t\n\u00a0\u2019\u201c'", "  ", " a", " 9", "ΑΣ "]
  const texts = (count: number, seed: number): Array<string> => {
    const random = mulberry32(seed)
    return Array.from(
      { length: count },
      () =>
        Array.from({ length: Math.floor(random() * 60) }, () => alphabet[Math.floor(random() * alphabet.length)]).join(
          ""
        )
    )
  }
  // The formulas as they were before pieces (2026-12-04): the whole text at once (`whole` trimmed, as
  // normalizeForDuplicates trims the joined pieces).
  const normalized = (text: string) => text.normalize("NFKC").toLowerCase().replace(/[^\p{L}\p{N}]+/gu, " ")
  const whole = (text: string) => normalized(text).trim()
  const comparable = (text: string) =>
    text.toLowerCase().replace(/[\s_-]+/g, " ").replace(/[\u2018\u2019]/g, "'").replace(/[\u201c\u201d]/g, "\"")

  it("gives what the transform gives on the whole text, for pieces of any size", () => {
    for (const [i, text] of texts(3000, 11).entries()) {
      const size = 1 + (i % 9)
      expect(piecewise(text, normalized, size).trim()).toBe(whole(text))
      expect(piecewise(text, comparable, size), JSON.stringify(text)).toBe(comparable(text))
    }
  })

  it("normalizeForDuplicates of a text longer than a piece is the whole-text formula's result", () => {
    const long = texts(8000, 12).join(" ")
    expect(long.length).toBeGreaterThan(3 * 65536)
    expect(normalizeForDuplicates(long)).toBe(whole(long))
  })

  it("cuts a text only between a space and an ASCII letter or digit", () => {
    const cuts: Array<string> = []
    piecewise("ab Σ a\u0301 c 9d", (p) => (cuts.push(p), p), 1)
    // Not before Σ (not ASCII), nor in "ab" (no space); before "a\u0301": the mark stays with its letter.
    expect(cuts).toEqual(["ab Σ ", "a\u0301 ", "c ", "9d"])
  })
})
