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
import { O200K_TOKEN_SPLIT_REGEX } from "gpt-tokenizer/encodingParams/constants"
import { type BpeTable, lookup, mergeCount } from "./bpeTable.js"
import { libraryCountTokens, o200kTable } from "./o200k.js"
import { isWellFormed } from "./utf8.js"

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

/** Sticky: each piece is matched where the last one ended (the split's pieces cover the whole text). */
const pieces = new RegExp(O200K_TOKEN_SPLIT_REGEX.source, `${O200K_TOKEN_SPLIT_REGEX.flags.replace("g", "")}y`)
const utf8 = new TextEncoder()
let scratch = new Uint8Array(256)
const merged = new Map<string, number>()

/** Tokens of text[start, end), one piece of the split: one when the vocabulary has it, else its merge's. */
const pieceTokens = (table: BpeTable, text: string, start: number, end: number): number => {
  if (scratch.length < (end - start) * 3) scratch = new Uint8Array((end - start) * 3)
  let length = 0
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i)
    if (c >= 0x80) {
      length = utf8.encodeInto(text.slice(start, end), scratch).written
      break
    }
    scratch[length++] = c
  }
  if (lookup(table, scratch, 0, length) !== -1) return 1
  // Pieces outside the vocabulary (rarer words) recur across prompts: their merges are cached, as the
  // library caches them (bounded: cleared when full).
  const piece = text.slice(start, end)
  let n = merged.get(piece)
  if (n === undefined) {
    if (merged.size >= 8_192) merged.clear()
    merged.set(piece, n = mergeCount(table, scratch, length))
  }
  return n
}

/**
 * `countTokens(text)` of gpt-tokenizer, counted the way its `countNative` does — each piece of the
 * pre-tokenizer's split is one token when the vocabulary has it, else the length of its byte-pair
 * encoding — from the vocabulary's byte table (src/skyrl/bpeTable.ts) instead of the library's encoder,
 * and without its match iterator and special-token scans (test/promptTokens.test.ts holds the two equal).
 * A special token's text (`<|endoftext|>`) in a message is counted as the ordinary text it is, as the
 * library counts it when no special token is disallowed (by default it throws, and a prompt holding one
 * stopped a whole convert). A text with a lone surrogate is counted by the library.
 */
export const countBpe = (text: string): number => {
  const table = o200kTable()
  if (table === undefined || !isWellFormed(text)) return libraryCountTokens(text)
  let n = 0
  for (let start = 0; start < text.length;) {
    pieces.lastIndex = start
    // A text the split does not cover piece after piece (it never happens), or an empty piece: its own way.
    if (!pieces.test(text) || pieces.lastIndex === start) return libraryCountTokens(text)
    n += pieceTokens(table, text, start, pieces.lastIndex)
    start = pieces.lastIndex
  }
  return n
}

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
