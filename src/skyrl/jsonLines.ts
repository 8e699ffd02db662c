/**
 * Reading append-only JSON Lines files that a crash may have cut (run journals, cost ledgers, batch
 * request hashes): the one reader for all of them. A process killed in the middle of an append leaves a
 * last line without its newline (and possibly only part of its bytes); that line is not an entry. A line
 * that is not valid JSON, or does not decode, is skipped and counted, so one damaged line never hides
 * the entries after it. Pure.
 */
import { Either, Schema } from "effect"

export interface JsonLines<A> {
  readonly entries: ReadonlyArray<A>
  /** Lines skipped: not JSON, or not decodable with the schema. */
  readonly skipped: number
  /** The text does not end with a newline: the next append must start a new line first. */
  readonly torn: boolean
}

/**
 * The complete lines of `text` decoded with `schema`. A last line without its newline counts only when
 * it parses and decodes in full (a cut can only remove bytes from the end, so a complete JSON value there
 * was written whole).
 */
export const readJsonLines = <A, I>(schema: Schema.Schema<A, I>, text: string): JsonLines<A> => {
  const decoder = jsonLinesDecoder(schema)
  const entries: Array<A> = []
  for (const line of text.split("\n")) {
    const entry = decoder.line(line)
    if (entry !== undefined) entries.push(entry)
  }
  const torn = text !== "" && !text.endsWith("\n")
  return { entries, skipped: decoder.skipped(torn), torn }
}

/**
 * `readJsonLines` one line at a time, for a reader that streams the file: `line` gives the line's entry
 * (undefined for a blank or skipped line); `skipped(torn)` the lines skipped, the last one not counted
 * when the file ends without a newline (it may have been cut).
 */
export const jsonLinesDecoder = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema)
  let skipped = 0
  let lastSkipped = false
  return {
    line: (line: string): A | undefined => {
      lastSkipped = false
      if (line.trim() === "") return undefined
      const decoded = Either.flatMap(Either.try(() => JSON.parse(line) as unknown), (value) => decode(value))
      if (Either.isRight(decoded)) return decoded.right
      skipped++
      lastSkipped = true
      return undefined
    },
    skipped: (torn: boolean): number => skipped - (torn && lastSkipped ? 1 : 0)
  }
}
