/**
 * Reading append-only JSON Lines files that a crash may have cut (run journals, cost ledgers, batch
 * request hashes, verify journals): the rules of the one reader for all of them (`readLogEntries` in
 * src/services/durableLog.ts streams a file through them). A process killed in the middle of an append
 * leaves a last line without its newline (and possibly only part of its bytes); that line is not an entry
 * unless it parses and decodes in full (a cut can only remove bytes from the end, so a complete JSON value
 * there was written whole). A line that is not valid JSON, or does not decode, is skipped and counted, so
 * one damaged line never hides the entries after it. Pure.
 */
import { Either, Schema } from "effect"

/**
 * Decodes a file's lines one at a time with `schema`: `line` gives the line's entry (undefined for a blank
 * or skipped line); `skipped(torn)` the lines skipped, the last one not counted when the file ends without
 * a newline (it may have been cut).
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
