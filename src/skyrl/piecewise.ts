/**
 * A whole-text transform (NFKC, lower case, a global regex replace) run on a long text one piece at a time.
 *
 * V8's global `replace` over a 20 MB prompt allocates ~16 times the text (its match list and parts, in the old
 * generation), and `validate` spent most of its time collecting that: a 20 MB user message took ~10 s of CPU,
 * ~60% of it in the GC. On pieces of PIECE characters the same work allocates young garbage only.
 */

/** The characters of a piece, about: a piece ends at the first cut at or after this length. */
const PIECE = 1 << 16

/** ASCII letter or digit (a char code). */
export const isAsciiAlnum = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)

/**
 * The first place at or after `from` where a text may be cut: between an ASCII space and an ASCII letter or digit;
 * -1 when there is none.
 */
const nextCut = (text: string, from: number): number => {
  for (let i = text.indexOf(" ", from - 1); i !== -1 && i + 1 < text.length; i = text.indexOf(" ", i + 1)) {
    if (isAsciiAlnum(text.charCodeAt(i + 1))) return i + 1
  }
  return -1
}

/**
 * `transform(text)`, computed on pieces of about `size` characters and joined. Correct for a transform that
 * gives the same result on a text as on its two sides joined, when cut between an ASCII space and an ASCII letter
 * or digit:
 * - NFKC: both are starters that never compose with the character before them;
 * - `toLowerCase`: the one context rule of the default case mapping, a final sigma, looks past neither (a space is
 *   neither cased nor case-ignorable, an ASCII letter is cased, a digit neither);
 * - a global replace (or `split` then `join`) of a pattern whose matches hold no letter or digit (a run of
 *   separators), or one character.
 */
export const piecewise = (text: string, transform: (piece: string) => string, size = PIECE): string => {
  if (text.length <= size) return transform(text)
  const parts: Array<string> = []
  let start = 0
  while (start < text.length) {
    const cut = text.length - start <= size ? -1 : nextCut(text, start + size)
    if (cut === -1) {
      parts.push(transform(text.slice(start)))
      break
    }
    parts.push(transform(text.slice(start, cut)))
    start = cut
  }
  return parts.join("")
}
