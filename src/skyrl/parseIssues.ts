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

const EXPECTED = /^Expected (.+), actual (.+)$/s

/** What Effect says it expected where an object is (a struct or record type written out, a class's encoded side). */
const OBJECT_TYPE = /^(\{ readonly |\w+ \(Encoded side\)$)/

/**
 * The issues of a parse error, one per path and problem: a union's members each say what they expected
 * (`Expected "simple", actual "super"`, then `"moderate"`, ...), merged into one line naming them all
 * (`Expected "simple" | "moderate" | "complex", actual "super"`). Where an object was expected, the message says so
 * (`must be an object, got "str"`) instead of writing the object's type out.
 */
export const parseIssues = (error: ParseResult.ParseError): ReadonlyArray<Issue> => {
  const issues: Array<Issue & { expected?: Array<string>; actual?: string }> = []
  for (const i of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const path = formatPath(i.path)
    const m = EXPECTED.exec(i.message)
    const last = issues.at(-1)
    if (m !== null && last?.path === path && last.actual === m[2] && last.expected !== undefined) {
      last.expected.push(m[1]!)
      continue
    }
    issues.push(
      m === null ? { path, message: i.message } : { path, message: i.message, expected: [m[1]!], actual: m[2]! }
    )
  }
  return issues.map(({ actual, expected, message, path }) => ({
    path,
    message: expected?.length === 1 && OBJECT_TYPE.test(expected[0]!)
      // Not "Expected { readonly index: number; readonly status: ...; ... }, actual "str"" (a journal line).
      ? `must be an object, got ${actual}`
      : expected === undefined || expected.length === 1
      ? message
      : `Expected ${expected.join(" | ")}, actual ${actual}`
  }))
}
