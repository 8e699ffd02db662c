/**
 * o200k_base's vocabulary for the BPE count (src/skyrl/promptTokens.ts), loaded when a count is first
 * needed: the byte table the build writes next to the bundle (dist/o200k_base.bpe, src/skyrl/bpeTable.ts),
 * or, from source (tests) or when that file is missing or not a table, one made from gpt-tokenizer's
 * ranks. gpt-tokenizer's own encoder (for texts with special-token markers) is made only when such a text
 * comes, from the same ranks.
 */
import { GptEncoding } from "gpt-tokenizer/GptEncoding"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { type BpeTable, makeTable, type Ranks, ranksOf, readTable } from "./bpeTable.js"

/** The file name of the table the build writes beside the bundle. */
const O200K_TABLE_FILE = "o200k_base.bpe"

/** gpt-tokenizer's ranks, loaded at run time (not bundled: 4 MB of JavaScript). */
export const libraryRanks = (): Ranks =>
  (createRequire(import.meta.url)("gpt-tokenizer/bpeRanks/o200k_base") as { readonly default: Ranks }).default

const fromFile = (): BpeTable | undefined => {
  try {
    return readTable(readFileSync(new URL(O200K_TABLE_FILE, import.meta.url)))
  } catch {
    return undefined
  }
}

let table: BpeTable | null | undefined

/** The table, or undefined when gpt-tokenizer's ranks break what it assumes (then the library counts). */
export const o200kTable = (): BpeTable | undefined => {
  if (table === undefined) table = fromFile() ?? makeTable(libraryRanks()) ?? null
  return table ?? undefined
}

let encoder: GptEncoding | undefined

/** No special token is disallowed: one in a message (`<|endoftext|>`) is counted as ordinary text. */
const AS_TEXT = { disallowedSpecial: new Set<string>() }

/** gpt-tokenizer's `countTokens` for o200k_base, special tokens' text counted as ordinary text. */
export const libraryCountTokens = (text: string): number => {
  encoder ??= GptEncoding.getEncodingApi("o200k_base", () => {
    const t = o200kTable()
    return t === undefined ? libraryRanks() : ranksOf(t)
  })
  return encoder.countTokens(text, AS_TEXT)
}
