/**
 * Prompt size with a real BPE tokenizer (o200k_base from gpt-tokenizer), counted the way SkyRL
 * measures it: `tokenizer.apply_chat_template(prompt, add_generation_prompt=True)`. The trained
 * model's own tokenizer differs, so this is an estimate; the template is ChatML-like (Qwen's):
 *
 *     <|im_start|>{role}\n{content}<|im_end|>\n   per message, then   <|im_start|>assistant\n
 *
 * where each `<|...|>` marker is one special token. Message contents repeat a lot (every row of a run
 * shares its system message), so counts are cached per content string (bounded cache).
 */
import { countTokens } from "gpt-tokenizer/encoding/o200k_base"

export { DEFAULT_MAX_PROMPT_TOKENS } from "../domain/row.js"

/** `<|im_start|>`, `<|im_end|>` and the newline after it. */
const MESSAGE_MARKERS = 3
const CACHE_LIMIT = 20_000

const cache = new Map<string, number>()

/** BPE tokens of a text (cached). */
export const textTokens = (text: string): number => {
  const hit = cache.get(text)
  if (hit !== undefined) return hit
  const n = countTokens(text)
  if (cache.size >= CACHE_LIMIT) cache.clear()
  cache.set(text, n)
  return n
}

/** Tokens of the chat-templated prompt, generation prompt included. */
export const chatPromptTokens = (
  messages: ReadonlyArray<{ readonly role: string; readonly content: string }>
): number => {
  let n = 1 + textTokens("assistant\n")
  for (const m of messages) n += MESSAGE_MARKERS + textTokens(`${m.role}\n`) + textTokens(m.content)
  return n
}
