/**
 * Prompt size with a real BPE tokenizer (o200k_base from gpt-tokenizer), counted the way SkyRL
 * measures it: `tokenizer.apply_chat_template(prompt, add_generation_prompt=True)`. The trained
 * model's own tokenizer differs, so this is an estimate; the template is ChatML-like (Qwen's):
 *
 *     <|im_start|>{role}\n{content}<|im_end|>\n   per message, then   <|im_start|>assistant\n
 *
 * where each `<|...|>` marker is one special token. Message contents repeat a lot (every row of a run
 * shares its system message), so counts are cached per content string (bounded caches).
 */
import o200k, { countTokens } from "gpt-tokenizer/encoding/o200k_base"

export { DEFAULT_MAX_PROMPT_TOKENS } from "../domain/row.js"

/** `<|im_start|>`, `<|im_end|>` and the newline after it. */
const MESSAGE_MARKERS = 3

/**
 * Two bounded caches: long texts (system messages, which repeat across a run's rows and cost the most to
 * count) kept long, short ones (user messages, counted when a row is made and again when it is checked)
 * only for the last few hundred rows (a row's user message is counted when the row is made and again when it
 * is checked, right after), so that distinct prompts neither churn the long ones out nor pile up.
 */
const LONG_TEXT = 512
const longCache = new Map<string, number>()
const shortCache = new Map<string, number>()

/** Distinct pieces whose token count `countBpe` remembers. */
const RECENT_PIECES = 4096

/** The parts of gpt-tokenizer's encoder `countBpe` uses (public fields of its classes, not typed as such). */
interface EncoderParts {
  readonly specialTokensSet?: ReadonlySet<string>
  readonly bytePairEncodingCoreProcessor?: {
    readonly tokenSplitRegex?: unknown
    readonly bytePairStringRankEncoder?: unknown
    readonly bytePairEncode?: unknown
  }
}

/**
 * `countTokens(text)` of gpt-tokenizer, counted the way its `countNative` does — each piece of the
 * pre-tokenizer's split is one token when the vocabulary has it, else the length of its byte-pair
 * encoding — without the match iterator and the special-token scans per call (~3× faster on short
 * prompts; test/promptTokens.test.ts holds the two equal). A text that may hold a special token (`<|`) is
 * counted by `countTokens` itself (which refuses it); so is everything when the encoder's parts are not
 * there (another gpt-tokenizer version).
 */
export const countBpe = ((): (text: string) => number => {
  const encoder = o200k as unknown as EncoderParts
  const core = encoder.bytePairEncodingCoreProcessor
  const split = core?.tokenSplitRegex
  const ranks = core?.bytePairStringRankEncoder
  const encode = core?.bytePairEncode
  const specialsStartWithBar = encoder.specialTokensSet !== undefined &&
    [...encoder.specialTokensSet].every((t) => t.startsWith("<|"))
  if (
    !(split instanceof RegExp) || !split.global || !(ranks instanceof Map) || typeof encode !== "function" ||
    !specialsStartWithBar
  ) return countTokens
  // Sticky: each piece is matched where the last one ended (the split's pieces cover the whole text, so
  // these are the pieces its global search finds), and `test` gives its end without a match array.
  const pieces = new RegExp(split.source, `${split.flags.replace("g", "")}y`)
  const bytePairs = encode as (piece: string) => ReadonlyArray<number>
  // Pieces repeat across texts (words): the tokens of the last few thousand distinct ones, in a table small
  // enough to stay in the CPU's caches (the vocabulary's map has 200,000 entries: each lookup missed them).
  const recent = new Map<string, number>()
  return (text) => {
    if (text.includes("<|")) return countTokens(text)
    let n = 0
    for (let start = 0; start < text.length;) {
      pieces.lastIndex = start
      // A text the split does not cover piece after piece (it never happens), or an empty piece: its own way.
      if (!pieces.test(text) || pieces.lastIndex === start) return countTokens(text)
      const piece = text.slice(start, pieces.lastIndex)
      let tokens = recent.get(piece)
      if (tokens === undefined) {
        tokens = ranks.has(piece) ? 1 : bytePairs.call(core, piece).length
        if (recent.size >= RECENT_PIECES) recent.clear()
        recent.set(piece, tokens)
      }
      n += tokens
      start = pieces.lastIndex
    }
    return n
  }
})()

/** BPE tokens of a text (cached). */
export const textTokens = (text: string): number => {
  const cache = text.length >= LONG_TEXT ? longCache : shortCache
  const hit = cache.get(text)
  if (hit !== undefined) return hit
  const n = countBpe(text)
  if (cache.size >= (cache === longCache ? 2_000 : 512)) cache.clear()
  cache.set(text, n)
  return n
}

/** Tokens of the chat-templated prompt, generation prompt included. */
export const chatPromptTokens = (
  messages: ReadonlyArray<{ readonly role: string; readonly content: string }>
): number => {
  let n = 1 + textTokens("assistant\n")
  for (const m of messages) n += MESSAGE_MARKERS + roleTokens(m.role) + textTokens(m.content)
  return n
}

const ROLE_LINES = new Map([["system", textTokens("system\n")], ["user", textTokens("user\n")]])
const roleTokens = (role: string): number => ROLE_LINES.get(role) ?? textTokens(`${role}\n`)
