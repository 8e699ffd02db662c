/**
 * An object that names a key twice in a JSON text. JSON.parse (and Python's json) keep the last value without a
 * word, but pyarrow's JSON reader refuses the whole file ("Column(/b) was specified twice in row 0"), and
 * `datasets.load_dataset("json", ...)` then falls back to pandas, which fails on a SkyRL row or loads a simpler
 * one with its nested objects dropped (checked with datasets 4 in the project's venv). `validate` names the first
 * such key of a JSON Lines row (`arrow/repeated-key`). Pure.
 */
import { formatPath } from "./parseIssues.js"

/** A frame of the scan: an object's keys so far and the key being read, or an array's index. */
interface Frame {
  readonly keys: Set<string> | undefined
  at: string | number
}

const QUOTE = 0x22
const BACKSLASH = 0x5c

/** The index of the quote that ends the string whose opening quote is at `start` (valid JSON text). */
const stringEnd = (text: string, start: number): number => {
  let end = text.indexOf("\"", start + 1)
  for (;;) {
    let slashes = 0
    while (text.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++
    if (slashes % 2 === 0) return end
    end = text.indexOf("\"", end + 1)
  }
}

/**
 * The field (`reward_spec.ground_truth.max_turns`, `prompt[1].role`) of the first key an object of `text` names
 * twice (its escapes read, so `"a"` and `"\u0061"` are one key), or undefined. `text` is valid JSON (JSON.parse
 * read it).
 */
export const repeatedKeyOf = (text: string): string | undefined => {
  const frames: Array<Frame> = []
  let keyNext = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      const end = stringEnd(text, i)
      if (keyNext) {
        const raw = text.slice(i + 1, end)
        const key = raw.includes("\\") ? JSON.parse(`"${raw}"`) as string : raw
        const frame = frames[frames.length - 1]!
        if (frame.keys!.has(key)) return formatPath([...frames.slice(0, -1).map((f) => f.at), key])
        frame.keys!.add(key)
        frame.at = key
        keyNext = false
      }
      i = end
    } else if (c === 0x7b) { // {
      frames.push({ keys: new Set(), at: "" })
      keyNext = true
    } else if (c === 0x5b) { // [
      frames.push({ keys: undefined, at: 0 })
    } else if (c === 0x7d || c === 0x5d) { // } ]
      frames.pop()
      keyNext = false
    } else if (c === 0x2c) { // ,
      const frame = frames[frames.length - 1]! // a comma is inside an object or an array
      if (frame.keys === undefined) frame.at = (frame.at as number) + 1
      else keyNext = true
    }
  }
  return undefined
}
