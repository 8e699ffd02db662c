/**
 * What a row's JSON Lines text says to Arrow that JSON.parse's value does not (`validate`'s reading of each line;
 * pyarrow's JSON reader is what `datasets.load_dataset("json", ...)` uses). Pure.
 * - An object that names a key twice: JSON.parse (and Python's json) keep the last value without a word, but pyarrow
 *   refuses the whole file ("Column(/b) was specified twice in row 0"), and datasets then falls back to pandas, which
 *   fails on a SkyRL row or loads a simpler one with its nested objects dropped (`arrow/repeated-key`).
 * - A whole number written as a float (`3.0`, `1e2`): JSON.parse gives the integer 3, but pyarrow types the column
 *   double, and SkyRL's concatenation of such a file with one that writes `3` fails ("The features can't be
 *   aligned"): `arrow/int-float` counts it a float.
 * (Checked with datasets and pyarrow in the project's venv.)
 */
import { formatPath } from "./parseIssues.js"

export interface JsonTextFacts {
  /** The field (`reward_spec.ground_truth.max_turns`) of the first key an object names twice. */
  readonly repeatedKey?: string
  /** The fields of the whole numbers written as floats (`3.0`, `1e2`), in text order. */
  readonly wholeFloats?: ReadonlyArray<string>
}

/** A frame of the scan: an object's keys so far and the key being read, or an array's index. */
interface Frame {
  readonly keys: Set<string> | undefined
  at: string | number
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const NUMBER = /-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/y

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

const pathOf = (frames: ReadonlyArray<Frame>): string => formatPath(frames.map((f) => f.at))

/**
 * The facts of `text`, valid JSON (JSON.parse read it), or undefined when it has none: the first key an object names
 * twice (its escapes read, so `"a"` and `"\u0061"` are one key), and the whole numbers written as floats.
 */
export const jsonTextFacts = (text: string): JsonTextFacts | undefined => {
  const frames: Array<Frame> = []
  let keyNext = false
  let wholeFloats: Array<string> | undefined
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      const end = stringEnd(text, i)
      if (keyNext) {
        const raw = text.slice(i + 1, end)
        const key = raw.includes("\\") ? JSON.parse(`"${raw}"`) as string : raw
        const frame = frames[frames.length - 1]!
        if (frame.keys!.has(key)) {
          const repeatedKey = formatPath([...frames.slice(0, -1).map((f) => f.at), key])
          return wholeFloats === undefined ? { repeatedKey } : { repeatedKey, wholeFloats }
        }
        frame.keys!.add(key)
        frame.at = key
        keyNext = false
      }
      i = end
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) { // - 0-9: a number
      NUMBER.lastIndex = i
      const m = NUMBER.exec(text)!
      if ((m[1] !== undefined || m[2] !== undefined) && Number.isInteger(Number(m[0]))) {
        ;(wholeFloats ??= []).push(pathOf(frames))
      }
      i = NUMBER.lastIndex - 1
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
  return wholeFloats === undefined ? undefined : { wholeFloats }
}
