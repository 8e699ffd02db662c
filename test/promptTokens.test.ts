/**
 * `countBpe` (src/skyrl/promptTokens.ts) counts as gpt-tokenizer's own `countTokens` does, on texts of
 * every kind the pre-tokenizer splits differently: prompts and system messages skyrl writes, the recorded
 * answers, contractions, digits, whitespace runs, line ends, non-Latin scripts, emoji, combining marks,
 * lone surrogates and random strings; and long runs (one piece of thousands of bytes, which the heap merge
 * counts) in linear-ish time.
 */
import { countTokens } from "gpt-tokenizer/encoding/o200k_base"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { renderSystemPrompt } from "../src/skyrl/prompt.js"
import { countBpe } from "../src/skyrl/promptTokens.js"
import { loadInventory } from "./support/inventories.js"

const SAMPLES = [
  "",
  " ",
  "a",
  "Sample 12 variant 3: get NVDA's quote and its latest 2 headlines.",
  "I'm sure they'll say we'd've DONE it; THEY'RE here, you're not.",
  "1234567 12.5% 0.000001 -42 3e10 2026-11-30T10:00:00Z",
  "  leading and trailing  \n\n\r\n\ttabs\t\there   ",
  "line one\nline two\r\nline three\rline four\n\n\n",
  "path/to/file.json, a/b//c, https://example.com/x?y=1&z=2#frag",
  "Привет, мир! Как дела? Ελληνικά κείμενα. עִבְרִית",
  "日本語のテキストと中文文本，还有한국어 문장。",
  "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇫🇷🇯🇵 and ✨ sparkles",
  "e\u0301 combining, n\u0303, a\u030a\u0301, Zalgo z\u0336\u0353a\u0337l\u0338g\u0335o",
  "lone \ud800 surrogate and \udfff other",
  "{\"symbol\":\"NVDA\",\"limit\":3} <tool_call>{\"name\": \"x\"}</tool_call>",
  "tabs\t\t\tand    many     spaces        before words",
  "CamelCaseWords and HTTPServer and iPhone and McDONALD's",
  "...!!!???---___***&&&^^^%%%$$$###@@@",
  "\u00a0non-breaking\u2003em space\u3000ideographic"
]

/** Deterministic random strings over a mix of the character classes the split distinguishes. */
const randomTexts = (n: number): ReadonlyArray<string> => {
  const alphabet = [
    ..."abcXYZ019 \n\r\t'.,;:/-_!?\"{}[]()",
    "é",
    "ß",
    "Ж",
    "ж",
    "中",
    "ت",
    "😀",
    "\u0301",
    "\u00a0",
    "ǅ",
    "ʰ",
    "²",
    "Ⅻ"
  ]
  let seed = 12345
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  return Array.from({ length: n }, () => {
    let text = ""
    const length = Math.floor(next() * 60)
    for (let i = 0; i < length; i++) text += alphabet[Math.floor(next() * alphabet.length)]
    return text
  })
}

const recordedTexts = (): ReadonlyArray<string> => {
  const dir = join(import.meta.dirname, "..", "data", "replay")
  const texts: Array<string> = []
  const collect = (value: unknown): void => {
    if (typeof value === "string") texts.push(value)
    else if (Array.isArray(value)) value.forEach(collect)
    else if (typeof value === "object" && value !== null) Object.values(value).forEach(collect)
  }
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".json") || f.endsWith(".jsonl"))) {
    const text = readFileSync(join(dir, name), "utf8")
    for (const line of name.endsWith(".jsonl") ? text.split("\n").filter((l) => l.trim() !== "") : [text]) {
      collect(JSON.parse(line))
    }
  }
  return texts
}

describe("countBpe", () => {
  it("counts as gpt-tokenizer's countTokens on every kind of text", () => {
    const inventory = loadInventory("finance-mcp")
    const system = renderSystemPrompt(
      inventory.servers.flatMap((s) =>
        s.tools.map((t) => ({ server: s.name, tool: t.name, callName: t.name, definition: t, paramNames: [] }))
      ),
      { asOf: "2026-11-30" }
    )
    const texts = [...SAMPLES, system, ...recordedTexts(), ...randomTexts(3000)]
    expect(texts.length).toBeGreaterThan(3000)
    for (const text of texts) expect([text, countBpe(text)]).toEqual([text, countTokens(text)])
  })

  it("counts long runs as countTokens: pieces of thousands of bytes, merged with the heap", () => {
    let seed = 99
    const next = (n: number) => Math.floor(((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * n)
    const symbols = ["x", "ab", "abc", "Ab", " ", "\n", "0", "é", "ж", "中", "😀", "-", "=", "'s", "e\u0301"]
    const texts: Array<string> = []
    for (let i = 0; i < 120; i++) {
      const length = 100 + next(4000)
      const a = symbols[next(symbols.length)]!
      const b = symbols[next(symbols.length)]!
      let text = i % 3 === 0 ? "Get the quote for MSFT. " : ""
      // A run of one symbol, of two alternating, or of random letters.
      if (i % 3 === 0) text += a.repeat(length / a.length)
      else if (i % 3 === 1) text += (a + b).repeat(length / (a.length + b.length))
      else for (let k = 0; k < length; k++) text += "abcdefghijklmnopqrstuvwxyz"[next(26)]
      texts.push(text)
    }
    for (const text of texts) expect([text, countBpe(text)]).toEqual([text, countTokens(text)])
  })

  it("counts a 200,000-character run in well under a second (once O(n²): ~50 s)", () => {
    // One call of countBpe on a text not counted before (nothing cached): the split, the vocabulary lookup
    // of the 200,001-byte piece " xxx…" and its heap merge, ~0.15 s here. The bound is generous.
    const text = `Get the quote for MSFT. ${"x".repeat(200_000)}`
    const started = performance.now()
    const n = countBpe(text)
    const elapsed = performance.now() - started
    // gpt-tokenizer's countTokens says the same (measured once: it takes ~50 s).
    expect(n).toBe(25_009)
    expect(elapsed).toBeLessThan(2_000)
  })

  it("counts a special token's text in a message as ordinary text (countTokens, by default, throws on it)", () => {
    const asText = { disallowedSpecial: new Set<string>() }
    expect(() => countTokens("hello <|endoftext|> world")).toThrow(/special token/)
    for (const text of ["hello <|endoftext|> world", "<|im_start|>user\nhi<|im_end|>", "a <| b |> c", "<|"]) {
      expect([text, countBpe(text)]).toEqual([text, countTokens(text, asText)])
    }
    expect(countBpe("hello <|endoftext|> world")).toBeGreaterThan(countBpe("hello  world") + 1)
    // A long run after `<|` is merged by the heap too (the library's count of it took ~15 s).
    const started = performance.now()
    expect(countBpe(`<|${"a".repeat(100_000)}`)).toBe(12_502)
    expect(performance.now() - started).toBeLessThan(2_000)
  })
})
