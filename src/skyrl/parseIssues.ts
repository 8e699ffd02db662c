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

/** A file that is there but is not what it should be (does not decode, is not JSON, cannot be read), and where and why. */
export interface FileIssue {
  readonly file: string
  readonly issue: Issue
}

/**
 * `FILE, FIELD: REASON` (`FILE: REASON` for the whole file): how every JSON file a run directory keeps and skyrl reads
 * back (manifest.json, batch.json and its options, plan_inputs.json) is named when it does not decode, e.g.
 * `raw_llm/R/manifest.json, counts.valid: must be a number, got "x"`.
 */
export const fileIssueText = ({ file, issue }: FileIssue): string =>
  `${file}${issue.path === "" ? "" : `, ${issue.path}`}: ${issue.message}`

const EXPECTED = /^Expected (.+), actual (.+)$/s

/** What Effect says it expected where an object is (a struct or record type written out, a class's encoded side). */
const OBJECT_TYPE = /^(\{ readonly |\{ \}$|\w+ \(Encoded side\)$|Readonly(Record|Map)<|\w+ \(Type side\)$)/
const ARRAY_TYPE = /^(ReadonlyArray<|Array<|readonly \[|\[)/
const LITERAL = /^("(?:[^"\\]|\\.)*"|-?\d[\d.e+-]*|true|false|null)$/
/** Effect's type names, in words. */
const NAMED: Readonly<Record<string, string>> = {
  number: "a number",
  string: "a string",
  boolean: "true or false",
  bigint: "an integer",
  object: "an object",
  unknown: "a value"
}

/** The members of a union Effect wrote (`"a" | { readonly b: 1 | 2 } | undefined`), split at its top level only. */
const unionMembers = (type: string): Array<string> => {
  const members: Array<string> = []
  let depth = 0
  let quoted = false
  let from = 0
  for (let i = 0; i < type.length; i++) {
    const c = type[i]!
    if (quoted) {
      if (c === "\\") i++
      else if (c === "\"") quoted = false
    } else if (c === "\"") quoted = true
    else if ("{[(<".includes(c)) depth++
    else if ("}])>".includes(c)) depth--
    else if (depth === 0 && type.startsWith(" | ", i)) {
      members.push(type.slice(from, i))
      from = i + 3
      i += 2
    }
  }
  members.push(type.slice(from))
  return members
}

const inWords = (member: string): string =>
  NAMED[member] ?? (OBJECT_TYPE.test(member) ? "an object" : ARRAY_TYPE.test(member) ? "an array" : member)

/**
 * `must be X, got Y` for Effect's `Expected X, actual Y`, X in words: `must be one of "simple", "moderate",
 * "complex", got null`, `must be an integer, got Infinity`, `must be an object, got []` (not the object's type written
 * out), `must be an array, got "x"`. `undefined` among the members is an optional field's absence, which a value
 * given is not: left out. An integer too large for a double to hold exactly says so.
 */
const mustBe = (expected: ReadonlyArray<string>, actual: string): string => {
  const members = expected.flatMap(unionMembers).filter((m) => m !== "undefined")
  const words = [...new Set(members.map(inWords))]
  if (words.length === 0) return `must be left out, got ${actual}`
  if (words.every((w) => LITERAL.test(w)) && words.length > 1) {
    return `must be one of ${words.join(", ")}, got ${actual}`
  }
  const unsafe = words.includes("an integer") && /^-?\d{16,}$/.test(actual) && !Number.isSafeInteger(Number(actual))
  const range = unsafe ? " within ±9007199254740991 (a larger one is not held exactly)" : ""
  return `must be ${words.join(" or ")}${range}, got ${actual}`
}

/**
 * The issues of a parse error, one per path and problem, in words: a union's members each say what they expected
 * (`Expected "simple", actual "super"`, then `"moderate"`, ...), merged into one line naming them all (`must be one
 * of "simple", "moderate", "complex", got "super"`); Effect's `Expected X, actual Y` is `must be X, got Y` with X
 * in words (`mustBe`). Other messages (`is missing`, a refinement's own) are kept as they are.
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
    message: expected === undefined || actual === undefined ? message : mustBe(expected, actual)
  }))
}
