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
  const decode = Schema.decodeUnknownEither(schema)
  const entries: Array<A> = []
  let skipped = 0
  const lines = text.split("\n")
  const torn = text !== "" && !text.endsWith("\n")
  lines.forEach((line, i) => {
    if (line.trim() === "") return
    const last = i === lines.length - 1
    const parsed = Either.try(() => JSON.parse(line) as unknown)
    const decoded = Either.flatMap(parsed, (value) => decode(value))
    if (Either.isRight(decoded)) entries.push(decoded.right)
    else if (!last) skipped++
  })
  return { entries, skipped, torn }
}
