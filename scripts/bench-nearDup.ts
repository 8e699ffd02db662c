/**
 * Worker of `npm run bench -- 5` (scripts/bench.ts runs it as a child process to read its peak RSS):
 * near-duplicate detection over N generated prompts of about W words each, through the same index
 * `validate` uses (`DuplicateIndex.insert`: each prompt is compared with all earlier ones, then added).
 *
 *     tsx scripts/bench-nearDup.ts N W      # prints one JSON line
 *
 * Prompts are made on the fly (never all held), from a seeded PRNG: phrases of 3-8 words drawn from a
 * bank of 2,000 phrases over a 6,000-word vocabulary, so unrelated prompts share words and phrases as
 * templated prompts do. Every 100th prompt is an injected near-duplicate: prompt i - 50 with one word
 * replaced (shingle Jaccard about 1 - 6 / W); the worker counts how many of them the index finds.
 */
import { DuplicateIndex } from "../src/skyrl/nearDup.js"
import { mulberry32 } from "../src/skyrl/workPlan.js"

const N = Number(process.argv[2] ?? 100_000)
const W = Number(process.argv[3] ?? 40)
if (!(N > 0 && W >= 10)) {
  console.error("usage: bench-nearDup.ts N WORDS (N > 0, WORDS >= 10)")
  process.exit(2)
}

const vocabRand = mulberry32(20261130)
const syllables = ["ka", "lo", "mi", "ra", "te", "su", "no", "vi", "pe", "da", "gu", "ze", "fo", "ri", "ba"]
const word = () =>
  Array.from({ length: 2 + Math.floor(vocabRand() * 3) }, () => syllables[Math.floor(vocabRand() * 15)]).join("")
const vocabulary = Array.from({ length: 6000 }, word)
const phrases = Array.from(
  { length: 2000 },
  () => Array.from({ length: 3 + Math.floor(vocabRand() * 6) }, () => vocabulary[Math.floor(vocabRand() * 6000)])
)

/** Prompt i, always the same for the same i. */
const promptWords = (i: number): Array<string> => {
  const rand = mulberry32((i * 2654435761) >>> 0)
  const out: Array<string> = []
  while (out.length < W) {
    // Zipf-like choice of phrase: low indices are much more common.
    const p = phrases[Math.floor(Math.pow(rand(), 2) * phrases.length)]
    out.push(...p.slice(0, W - out.length))
    if (rand() < 0.3 && out.length < W) out.push(vocabulary[Math.floor(rand() * vocabulary.length)])
  }
  return out
}

const isInjected = (i: number) => i % 100 === 99 && i >= 50

const prompt = (i: number): string => {
  if (!isInjected(i)) return `${promptWords(i).join(" ")}.`
  const source = promptWords(i - 50)
  source[Math.floor(source.length / 2)] = "replacedword"
  return `${source.join(" ")}.`
}

const index = new DuplicateIndex()
let injected = 0
let found = 0
let otherMatches = 0
let textBytes = 0
const t0 = performance.now()
for (let i = 0; i < N; i++) {
  const text = prompt(i)
  textBytes += text.length
  const { matches } = index.insert({ prompt: text })
  if (isInjected(i)) {
    injected++
    if (matches.some((m) => m.id === i - 50)) found++
  } else if (matches.length > 0) otherMatches++
}
const seconds = (performance.now() - t0) / 1000
console.log(JSON.stringify({
  n: N,
  words: W,
  seconds,
  injected,
  found,
  otherMatches,
  meanPromptBytes: textBytes / N,
  indexBytes: index.bytes
}))
