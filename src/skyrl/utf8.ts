/**
 * Decoding the bytes skyrl reads: UTF-8 only, never silently repaired. A decoder replaces a byte that is not
 * UTF-8 (a Latin-1 `é`, 0xE9) by U+FFFD, so a row would hold text the file does not, and `datasets` fails
 * on that line while training. `decodeUtf8` gives such a line as a fault line instead: U+DC00 (a lone
 * surrogate, which no decoded text holds) and where its first bad byte is; the line readers report it
 * (`utf8FaultOf`) where they would report a line that is not JSON. A U+FFFD the file holds as UTF-8 (EF BF
 * BD) is text like any other. Pure.
 */
import { isUtf8 } from "node:buffer"

const FAULT = "\uDC00"

/** The offset of the first byte of `bytes` that does not start a valid UTF-8 sequence, or -1. */
export const firstInvalidByte = (bytes: Uint8Array): number => {
  for (let i = 0; i < bytes.length;) {
    const c = bytes[i]!
    const n = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1
    if (n < 0) return i
    // The second byte's range excludes overlong forms, surrogates and code points above U+10FFFF.
    const low = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80
    const high = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf
    for (let k = 1; k <= n; k++) {
      const b = bytes[i + k]
      if (b === undefined || b < (k === 1 ? low : 0x80) || b > (k === 1 ? high : 0xbf)) return i
    }
    i += n + 1
  }
  return -1
}

/**
 * A line's bytes as text, or its fault line when they are not UTF-8 (`offset`: the line's in the file). A
 * line starting with gzip's magic bytes is decoded as it is: the readers name a gzip-compressed file so.
 */
const lineText = (line: Buffer, offset: number): string => {
  if (offset === 0 && ((line[0] === 0xff && line[1] === 0xfe) || (line[0] === 0xfe && line[1] === 0xff))) {
    return `${FAULT} ${UTF16_TEXT}`
  }
  const at = line[0] === 0x1f && line[1] === 0x8b ? -1 : firstInvalidByte(line)
  if (at < 0) return line.toString("utf8")
  const hex = line[at]!.toString(16).toUpperCase().padStart(2, "0")
  // After the mark, the line's first non-blank byte when it is printable ASCII (` ` otherwise): what tells
  // a JSON array (`[`) from JSON Lines (`leadOf`).
  const first = line.find((b) => b !== 0x20 && b !== 0x09)
  const lead = first !== undefined && first > 0x20 && first < 0x7f ? String.fromCharCode(first) : " "
  return `${FAULT}${lead}byte 0x${hex} at byte offset ${offset + at} of the file (re-encode it as UTF-8)`
}

/**
 * `bytes` (whole lines of a file, from byte `offset`) as text; when they are not all UTF-8 (one `isUtf8`
 * pass), each line that is not is its fault line, its line end kept.
 */
export const decodeUtf8 = (bytes: Buffer, offset = 0): string => {
  if (isUtf8(bytes)) return bytes.toString("utf8")
  let text = ""
  for (let start = 0; start <= bytes.length;) {
    let end = start
    while (end < bytes.length && bytes[end] !== 0x0a && bytes[end] !== 0x0d) end++
    text += lineText(bytes.subarray(start, end), offset + start)
    if (end < bytes.length) text += String.fromCharCode(bytes[end]!)
    start = end + 1
  }
  return text
}

/** A file's first line that starts with a UTF-16 byte order mark, as its fault line says it. */
export const UTF16_TEXT =
  "UTF-16 text (it starts with a UTF-16 byte order mark): re-encode it as UTF-8 (iconv -f UTF-16 -t UTF-8)"

/** Whether a (first) line is the fault line of UTF-16 text: the readers refuse such a file whole. */
export const isUtf16Fault = (line: string): boolean => line.trimStart() === `${FAULT} ${UTF16_TEXT}`

/** Whether a line (trimmed or not) is a fault line of `decodeUtf8`. */
export const isUtf8Fault = (line: string): boolean => line.trimStart().startsWith(FAULT)

/** Why line `line` (1-based) is not read, when `text` is a fault line of `decodeUtf8`. */
export const utf8FaultOf = (text: string, line: number): string | undefined =>
  isUtf8Fault(text) ? `line ${line} is not valid UTF-8: ${text.trimStart().slice(FAULT.length + 1)}` : undefined

/**
 * Why line `line` (1-based) of a JSON Lines file is not a record, when `JSON.parse` refused it with `error`:
 * its UTF-8 fault, else the parser's message (the one wording for every JSON Lines reader).
 */
export const unreadableLine = (text: string, line: number, error: unknown): string =>
  utf8FaultOf(text, line) ?? `line ${line} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`

/**
 * The first non-blank character of a text as its file has it (a fault line's too), "" when none: `[` for a
 * JSON array, whether or not its first line is UTF-8.
 */
export const leadOf = (text: string): string => {
  const trimmed = text.trimStart()
  return trimmed.startsWith(FAULT) ? trimmed.charAt(FAULT.length).trim() : trimmed.charAt(0)
}

/** The first fault line of a whole text (a JSON file read whole), as `utf8FaultOf` says it. */
export const firstUtf8Fault = (text: string): string | undefined => {
  if (!text.includes(FAULT)) return undefined
  const lines = text.split(/\r\n|\n|\r/)
  const at = lines.findIndex(isUtf8Fault)
  return at < 0 ? undefined : utf8FaultOf(lines[at]!, at + 1)
}

/**
 * Why a JSON text read whole (an array, an inventory, a tasks file) is not JSON, when `JSON.parse` refused it
 * with `error`: its first UTF-8 fault, else the parser's message on one line, its `at position N` (an offset
 * into the whole file) given as `at line L, column C`, and the line ends of its excerpt of the text escaped
 * (`Unexpected token 'x', ..."},\n {"b": x}..."`: printed as they were, they split the error over lines).
 */
export const wholeJsonFault = (text: string, error: unknown): string => {
  // gzip's first byte (0x1f) starts no JSON text: named as the records readers name it
  if (text.charCodeAt(0) === 0x1f) return "not valid JSON: it is gzip-compressed; decompress it first (gunzip)"
  const message = error instanceof Error ? error.message : String(error)
  const lineAndColumn = (at: number) => {
    const before = text.slice(0, at)
    return `line ${before.split("\n").length}, column ${before.length - before.lastIndexOf("\n")}`
  }
  const located = message.replace(/ at position (\d+)/, (_, n: string) => ` at ${lineAndColumn(Number(n))}`)
  // Node 20 gives no position for an unexpected token (`Unexpected token 'x', "..." is not valid JSON`).
  const token = located === message && message.startsWith("Unexpected token") ? unexpectedTokenAt(text) : undefined
  const where = token === undefined ? "" : ` (at ${lineAndColumn(token)})`
  return firstUtf8Fault(text) ??
    `not valid JSON: ${located.replace(/\r/g, "\\r").replace(/\n/g, "\\n")}${where}`
}

/** Texts longer than this are not searched for an unexpected token's place (each probe parses a prefix). */
const TOKEN_SEARCH_MAX = 32 * 1024 * 1024

/**
 * Where JSON.parse meets an unexpected token in `text` (which it refuses), for the messages that give no position:
 * the shortest prefix JSON.parse refuses for a reason other than its end (`Unexpected end of JSON input`, or a
 * position at the prefix's end) ends with that token. A binary search over prefixes: ~log2(length) parses, only
 * on the error path; undefined for a text over TOKEN_SEARCH_MAX or when no prefix shows it.
 */
const unexpectedTokenAt = (text: string): number | undefined => {
  if (text.length > TOKEN_SEARCH_MAX) return undefined
  const badWithin = (length: number): boolean => {
    try {
      JSON.parse(text.slice(0, length))
      return false
    } catch (e) {
      const m = e instanceof Error ? e.message : ""
      if (m.startsWith("Unexpected end of JSON input")) return false
      const at = / at position (\d+)/.exec(m)
      return at === null || Number(at[1]) < length
    }
  }
  let [lo, hi] = [1, text.length]
  if (!badWithin(hi)) return undefined
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (badWithin(mid)) hi = mid
    else lo = mid + 1
  }
  return lo - 1
}

/** String.prototype.isWellFormed (Node 20; not in the ES2022 lib): no lone surrogate. */
export const isWellFormed = (text: string): boolean => (text as unknown as { isWellFormed(): boolean }).isWellFormed()

/** `text` without a leading BOM (U+FEFF), not copied when it has none. */
export const withoutBom = (text: string): string => text.charCodeAt(0) === 0xfeff ? text.slice(1) : text

/**
 * Where `text` holds half a surrogate pair (JSON can escape one, `"\ud800"`: no Unicode text, so it has no
 * UTF-8), said as a finding says it, or undefined when it holds none. datasets.load_dataset fails on a JSON
 * Lines file holding one ("The surrogate pair in string is invalid") and drops it from a JSON array.
 */
export const loneSurrogateOf = (text: string): string | undefined => {
  if (isWellFormed(text)) return undefined
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0xd800 || c > 0xdfff) continue
    if (c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++
    else {
      return `holds a lone surrogate (U+${c.toString(16).toUpperCase()} at character ${i}): no Unicode text, ` +
        "so no UTF-8; datasets.load_dataset fails on it (\"The surrogate pair in string is invalid\")"
    }
  }
  return undefined
}
