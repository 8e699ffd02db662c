/** Turns Schema parse errors into readable `path: message` lines (e.g. `tool_sequence[1].server: is missing`). */
import { ParseResult } from "effect"

export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`),
    ""
  )

export interface Issue {
  readonly path: string
  readonly message: string
}

export const parseIssues = (error: ParseResult.ParseError): ReadonlyArray<Issue> =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((i) => ({ path: formatPath(i.path), message: i.message }))
