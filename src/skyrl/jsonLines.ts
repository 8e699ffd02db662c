/**
 * Reading append-only JSON Lines files that a crash may have cut (run journals, cost ledgers, batch
 * request hashes, verify journals): the rules of the one reader for all of them (`readLogEntries` in
 * src/services/durableLog.ts streams a file through them). A process killed in the middle of an append
 * leaves a last line without its newline (and possibly only part of its bytes); that line is not an entry
 * unless it parses and decodes in full (a cut can only remove bytes from the end, so a complete JSON value
 * there was written whole). A line that is not valid JSON, or does not decode, is skipped and counted, with
 * its line number and why, so one damaged line never hides the entries after it. Pure.
 */
import { Either, ParseResult, Schema } from "effect"
import { parseIssues } from "./parseIssues.js"

/** How many skipped lines a decoder names (the rest are counted). */
export const NAMED_LINES = 10

/** A line that is not an entry: its 1-based number and why. */
export interface SkippedLine {
  readonly line: number
  readonly reason: string
}

/** Why a line is not an entry: not JSON (the parser's words), or the first field the schema refuses. */
const reasonOf = (error: unknown): string => {
  if (!ParseResult.isParseError(error)) return `not JSON (${error instanceof Error ? error.message : String(error)})`
  const issue = parseIssues(error)[0]
  return issue === undefined ? "not an entry" : `${issue.path === "" ? "" : `${issue.path}: `}${issue.message}`
}

/**
 * Decodes a file's lines one at a time with `schema`: `line` gives the line's entry (undefined for a blank
 * or skipped line); `skipped(torn)` the lines skipped, and `named(torn)` the first NAMED_LINES of them, the
 * last line not counted when the file ends without a newline (it may have been cut).
 */
export const jsonLinesDecoder = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema)
  let skipped = 0
  let lineNo = 0
  let lastSkipped = false
  // One more than shown: the last may be a torn line, dropped at the end.
  const named: Array<SkippedLine> = []
  const cut = (torn: boolean) => torn && lastSkipped
  return {
    line: (line: string): A | undefined => {
      lineNo++
      lastSkipped = false
      if (line.trim() === "") return undefined
      const decoded = Either.flatMap(
        Either.try({ try: () => JSON.parse(line) as unknown, catch: (e) => e }),
        (value) => decode(value)
      )
      if (Either.isRight(decoded)) return decoded.right
      skipped++
      lastSkipped = true
      if (named.length <= NAMED_LINES) named.push({ line: lineNo, reason: reasonOf(decoded.left) })
      return undefined
    },
    skipped: (torn: boolean): number => skipped - (cut(torn) ? 1 : 0),
    /** The file ends without a newline (`torn`) in a line that is not an entry: a piece of a line cut short. */
    fragment: cut,
    named: (torn: boolean): ReadonlyArray<SkippedLine> =>
      named.filter((n) => !(cut(torn) && n.line === lineNo)).slice(0, NAMED_LINES)
  }
}
