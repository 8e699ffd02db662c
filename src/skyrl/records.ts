/**
 * Reading records from JSON / JSONL text: a top-level array, a single object, or one JSON value per line.
 * A line that is not JSON (or not UTF-8: src/skyrl/utf8.ts) becomes a per-record error (the run goes on);
 * text that is neither form is a file-level error. No I/O: the caller reads the file (`recordStream` takes
 * its lines and its text as the caller reads them).
 */
import { Chunk, Effect, Either, Stream } from "effect"
import * as path from "node:path"
import { InputError } from "../domain/errors.js"
import { MAX_JSON_DEPTH, nestsDeeperThan, tooDeepReason } from "./depth.js"
import type { JsonTextFacts } from "./jsonTextFacts.js"
import { jsonTextFacts } from "./jsonTextFacts.js"
import {
  firstUtf8Fault,
  isUtf16Fault,
  isUtf8Fault,
  leadOf,
  unreadableLine,
  UTF16_TEXT,
  wholeJsonFault,
  withoutBom
} from "./utf8.js"

export type RecordResult =
  | {
    readonly _tag: "Record"
    readonly index: number
    readonly line?: number
    readonly value: unknown
    /** Whether the JSON text it was parsed from holds a `\u` escape (only these can make a lone surrogate). */
    readonly escapes?: boolean
    /** What its line's text says to Arrow that the value does not (`RecordsOptions.textFacts`). */
    readonly facts?: JsonTextFacts
  }
  | { readonly _tag: "Unparsable"; readonly index: number; readonly line?: number; readonly reason: string }

const describe = (e: unknown) => (e instanceof Error ? e.message : String(e))

/**
 * The record of a parsed value, or its fault when it nests deeper than skyrl reads (`MAX_JSON_DEPTH`): that
 * record is refused, the others read (before, such a record overflowed the stack and ended the whole run).
 */
const recordOf = (index: number, line: number | undefined, value: unknown, escapes: boolean): RecordResult => {
  const at = line === undefined ? { index } : { index, line }
  return nestsDeeperThan(value, MAX_JSON_DEPTH)
    ? { _tag: "Unparsable", ...at, reason: tooDeepReason(line === undefined ? `record ${index}` : `line ${line}`) }
    : { _tag: "Record", ...at, value, escapes }
}

/** Whether JSON text holds a `\u` escape. */
const hasEscape = (text: string): boolean => text.includes("\\u")

/**
 * Non-blank lines (the first and up to 7 after it) `recordsFormatOf` reads to tell JSON Lines whose first
 * line is not JSON from a text that is no JSON at all (a CSV, a YAML or text file).
 */
const FORMAT_LINES = 8

/**
 * A text that starts with neither '[' nor '{', whose first line is no JSON value and none of whose next
 * lines read (`heads`: at most FORMAT_LINES) is a JSON object or array (gzip's magic byte 0x1f is named: a
 * common mistake).
 */
const notJson = (file: string, heads: ReadonlyArray<string>) => {
  const after = heads.length - 1
  const later = after === 0
    ? " (the file's only line)"
    : `, nor is any of the ${after} non-blank line${after === 1 ? "" : "s"} after it a JSON object or array`
  return new InputError({
    file,
    reason: heads[0]!.charCodeAt(0) === 0x1f
      ? "not JSON or JSON Lines: it is gzip-compressed; decompress it first (gunzip)"
      : `not JSON or JSON Lines: the first line is not a JSON value${later}, and a JSON document starts with '[' or '{'`
  })
}

/** The first line of a text, without its line end ("\r" is JSON whitespace). */
const firstLineOf = (text: string): string => {
  const end = text.indexOf("\n")
  return end === -1 ? text : text.slice(0, end)
}

export const parseRecords = (text: string, file: string): Either.Either<ReadonlyArray<RecordResult>, InputError> =>
  Either.map(recordsOf(text, file), (records) => [...records])

export interface RecordsOptions {
  /**
   * A file without records (no non-blank line, an empty JSON array) gives none instead of failing: `validate`
   * reports such a file as `contract/empty-file`; the other commands refuse it (an empty dataset written at
   * exit 0 would hide the mistake upstream).
   */
  readonly emptyIsNone?: boolean | undefined
  /**
   * A JSON Lines record carries what its line's text says to Arrow that its value does not (`jsonTextFacts`: a key
   * given twice, a whole number written as a float): `validate` reports them.
   */
  readonly textFacts?: boolean | undefined
}

/**
 * The records of `text`, like `parseRecords`, but JSON Lines are parsed one line at a time as the result
 * is iterated, so a large file never has all its records in memory at once.
 */
export const recordsOf = (
  text: string,
  file: string,
  options: RecordsOptions = {}
): Either.Either<Iterable<RecordResult>, InputError> => {
  const body = withoutBom(text)
  const trimmed = body.trimStart()
  if (trimmed === "") {
    return options.emptyIsNone === true
      ? Either.right([])
      : Either.left(new InputError({ file, reason: "the file is empty" }))
  }
  const lead = leadOf(trimmed)
  if (lead === "[") {
    const whole = arrayRecords(body, file, options)
    if (whole !== undefined) return whole
  } else if (lead === "{") {
    try {
      const value: unknown = JSON.parse(body)
      return Either.right([recordOf(0, undefined, value, hasEscape(body))])
    } catch (e) {
      // Not one object: JSON Lines (read below), unless it is one pretty-printed object.
      const fault = objectDocumentFault(body, e)
      if (fault !== undefined) return Either.left(new InputError({ file, reason: fault }))
    }
  } else {
    const format = recordsFormatOf(headLinesOf(body), file)
    if (Either.isLeft(format)) return Either.left(format.left)
  }
  return Either.right({ [Symbol.iterator]: () => jsonLines(body) })
}

/**
 * The records of a text that is one JSON array; undefined when it is not JSON but JSON Lines
 * (`arrayDocumentFault`).
 */
const arrayRecords = (
  body: string,
  file: string,
  options: RecordsOptions
): Either.Either<Iterable<RecordResult>, InputError> | undefined => {
  try {
    const value: unknown = JSON.parse(body)
    if (!Array.isArray(value)) return Either.left(new InputError({ file, reason: "expected a JSON array" }))
    // Like an empty file: an empty dataset written at exit 0 would hide the mistake upstream.
    if (value.length === 0 && options.emptyIsNone !== true) {
      return Either.left(new InputError({ file, reason: "the JSON array is empty: nothing to read" }))
    }
    const escapes = hasEscape(body)
    return Either.right(value.map((v, index) => recordOf(index, undefined, v, escapes)))
  } catch (e) {
    const fault = arrayDocumentFault(body, e)
    return fault === undefined ? undefined : Either.left(new InputError({ file, reason: fault }))
  }
}

/**
 * Why `body`, a text starting with '[' that `JSON.parse` refused (`error`), is one broken JSON array, or
 * undefined when it is JSON Lines: its first line is a JSON value of its own (JSON Lines whose rows are
 * lists), or JSON Lines after a first line that is not JSON (`bracketedBadFirstLine`).
 */
const arrayDocumentFault = (body: string, error: unknown): string | undefined =>
  parsesAlone(firstLineOf(body.trimStart())) || bracketedBadFirstLine(headLinesOf(body))
    ? undefined
    : wholeJsonFault(body, error)

const parsesAlone = (line: string): boolean => {
  try {
    JSON.parse(line)
    return true
  } catch {
    return false
  }
}

/** A JSON Lines line: a JSON value, or a line that is not UTF-8 (a row of its own). */
const isJsonLine = (line: string): boolean => isUtf8Fault(line) || parsesAlone(line)

/**
 * Why `body`, a text starting with '{' that `JSON.parse` refused (`error`), is one broken JSON document,
 * or undefined when it is JSON Lines whose first row is broken (read line by line: that row is rejected,
 * the rest read). One (pretty-printed) document: its first line alone is no JSON value (nor a line that
 * is not UTF-8), and it has more non-blank lines, none of the next FORMAT_LINES - 1 of which is a JSON
 * object or array on its own, as rows of JSON Lines are (a pretty-printed object's lines are
 * `"key": value,` and `}`). It is then refused whole, where JSON.parse broke: `not valid JSON: ... at
 * line 4, column 3` (`wholeJsonFault`), not read as one rejected record per line. A text of one line
 * (`{not json`) stays a JSON Lines row that is not JSON, as does a text with such a later line, unless
 * its first line is no JSON value and a line is not UTF-8 (a pretty-printed object holding a Latin-1 byte).
 */
const objectDocumentFault = (body: string, error: unknown): string | undefined => {
  const heads = headLinesOf(body)
  if (isJsonLine(heads[0]!)) return undefined
  if (heads.length > 1 && !heads.slice(1).some(isRecordLine)) return wholeJsonFault(body, error)
  return firstUtf8Fault(body)
}

/**
 * Why a text is not one JSON document, when it starts with '[' or '{' and does not parse whole and is no
 * JSON Lines either (the rule of `recordsOf`); undefined otherwise (it parses, is JSON Lines, or starts
 * with neither: `recordsFormatOf` decides that from its first lines). For a reader of its own rows
 * (`validate`, whose Storage reader reads any .jsonl file line by line) to refuse the files `readRecords`
 * refuses, the same way.
 */
export const documentFaultOf = (text: string): string | undefined => {
  const body = withoutBom(text)
  const lead = leadOf(body)
  if (lead !== "[" && lead !== "{") return undefined
  try {
    JSON.parse(body)
    return undefined
  } catch (e) {
    return lead === "{" ? objectDocumentFault(body, e) : arrayDocumentFault(body, e)
  }
}

function* jsonLines(body: string): Generator<RecordResult> {
  const read = jsonLinesReader()
  for (let start = 0; start < body.length;) {
    const end = body.indexOf("\n", start)
    const raw = body.slice(start, end === -1 ? body.length : end)
    start = end === -1 ? body.length : end + 1
    const record = read(raw)
    if (record !== undefined) yield record
  }
}

/**
 * Reads JSON Lines one line at a time (the lines of a file in order, without their line ends): the record
 * of a line, or undefined for a blank one. Records are numbered 0.. and lines 1.., as `recordsOf` does.
 */
export const jsonLinesReader = (options: RecordsOptions = {}) => {
  let index = 0
  let lineNo = 0
  return (raw: string): RecordResult | undefined => {
    lineNo++
    const line = raw.trim()
    if (line === "") return undefined
    const at = index++
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch (e) {
      const reason = unreadableLine(line, lineNo, e)
      return { _tag: "Unparsable", index: at, line: lineNo, reason }
    }
    const record = recordOf(at, lineNo, value, hasEscape(line))
    if (options.textFacts !== true || record._tag !== "Record") return record
    const facts = jsonTextFacts(line)
    return facts === undefined ? record : { ...record, facts }
  }
}

/** The first FORMAT_LINES non-blank lines of a text, trimmed: what `recordsFormatOf` decides from. */
const headLinesOf = (body: string): Array<string> => {
  const heads: Array<string> = []
  for (let start = 0; start < body.length && heads.length < FORMAT_LINES;) {
    const end = body.indexOf("\n", start)
    const line = body.slice(start, end === -1 ? body.length : end).trim()
    if (line !== "") heads.push(line)
    start = end === -1 ? body.length : end + 1
  }
  return heads
}

/** A line that is a JSON object or array: what a later line must be to make the text JSON Lines. */
const isRecordLine = (line: string): boolean => {
  const lead = line.charAt(0)
  return (lead === "{" || lead === "[") && parsesAlone(line)
}

/**
 * Whether `heads` (a text's first non-blank lines, the first starting with '[') are JSON Lines after a
 * first line that is not JSON (`[INFO] starting`): the first is no JSON value and every later one is a JSON
 * object or array. Never a JSON document: after a complete value on a line of its own, a document's next
 * line starts with ',' or a closing bracket, and the line closing the first line's '[' is no value of its
 * own. A broken pretty-printed array (`  {"a": 1},` lines) keeps its whole-file error.
 */
const bracketedBadFirstLine = (heads: ReadonlyArray<string>): boolean =>
  heads.length > 1 && !isJsonLine(heads[0]!) && heads.slice(1).every(isRecordLine)

/**
 * How a file is read, decided from its first non-blank lines (`heads`: BOM removed, at most FORMAT_LINES;
 * the one rule of `recordsOf` and `readRecords`): JSON Lines that can be streamed line by line, or a text
 * that must be parsed whole (a JSON array, a pretty-printed object). JSON Lines: a first line that is a
 * JSON value (`null`, `42`: a record that is no object) or not UTF-8 (a row of its own); or, when it is
 * neither (a stray header or log line) and does not start with '[' or '{', a later one of `heads` that is
 * a JSON object or array: the first line is then a line that is not JSON, a rejected record like any
 * other. Not a JSON scalar there: a one-column CSV of numbers is no JSON Lines. A first line starting with
 * '[' opens a JSON document unless every later one of `heads` is a record (`bracketedBadFirstLine`); one
 * starting with '{' is read whole, since only the whole text tells (a hand-formatted document may hold a
 * line that is an object of its own): `recordsOf` parses it, and when it does not parse tells a broken
 * document, refused whole, from JSON Lines whose first row is broken (`objectDocumentFault`). A text none of
 * whose `heads` is a record is a file-level error, as is a gzip-compressed file.
 */
export const recordsFormatOf = (
  heads: ReadonlyArray<string>,
  file: string
): Either.Either<"lines" | "whole", InputError> => {
  const lines = heads.map((l) => l.trim()).filter((l) => l !== "")
  const head = lines[0]
  if (head === undefined) return Either.left(new InputError({ file, reason: "the file is empty" }))
  if (isUtf16Fault(head)) {
    // Every line after it is a run of NUL-spaced characters: one rejected record a line, NULs echoed, said nothing.
    return Either.left(new InputError({ file, reason: `not JSON or JSON Lines: it is ${UTF16_TEXT}` }))
  }
  if (leadOf(head) === "[") return Either.right(bracketedBadFirstLine(lines) ? "lines" : "whole")
  if (isJsonLine(head)) return Either.right("lines")
  if (head.startsWith("{")) return Either.right("whole")
  if (head.charCodeAt(0) !== 0x1f && lines.slice(1).some(isRecordLine)) return Either.right("lines")
  return Either.left(notJson(file, lines))
}

/**
 * The records of a JSON / JSON Lines file, streamed: the one reader of every command that reads datasets or
 * tasks (`convert`, `enrich`'s planning aside, `verify` through src/programs/readRecords.ts; `validate` through
 * Storage's `readRows`), so a file is read the same way whatever reads it, whatever its extension says:
 * `recordsFormatOf` decides from its first lines. JSON Lines are read from `lines` (the file's lines, without
 * their ends, a BOM dropped, a line that is not UTF-8 given as its fault line), so memory holds the lines in
 * flight, not the file (one string of a whole file cannot pass V8's limit of ~512 MB); a JSON array or a
 * pretty-printed object is parsed whole from `text`, read only then. A file of one JSON object on one line
 * is one record without a line, as `recordsOf` reads it, unless it is named `.jsonl`: a record read from a
 * line of a .jsonl file names its line, even when it is the file's only one.
 */
export const recordStream = <E>(
  file: string,
  lines: Stream.Stream<string, E>,
  text: Effect.Effect<string, E>,
  options: RecordsOptions = {}
): Stream.Stream<RecordResult, E | InputError> =>
  Stream.unwrap(Effect.gen(function*() {
    const heads = yield* lines.pipe(
      Stream.filter((l) => l.trim() !== ""),
      Stream.take(FORMAT_LINES),
      Stream.runCollect,
      Effect.map(Chunk.toReadonlyArray)
    )
    if (heads.length === 0 && options.emptyIsNone === true) return Stream.empty
    // The first few non-blank lines decide (a first line that is not JSON may open JSON Lines).
    const format = yield* recordsFormatOf(heads, file)
    if (format === "whole") return Stream.fromIterable(yield* recordsOf(yield* text, file, options))
    // A .json file of one JSON object is one record without a line (as recordsOf reads it): its first
    // record waits until a second one shows the file has several. A .jsonl file's records are its lines.
    const read = jsonLinesReader(options)
    const mayBeOneObject = path.extname(file).toLowerCase() !== ".jsonl"
    let held: RecordResult | undefined
    let count = 0
    return lines.pipe(
      Stream.mapChunks((chunk) => {
        const records: Array<RecordResult> = []
        for (const line of chunk) {
          const record = read(line)
          if (record === undefined) continue
          if (held !== undefined) records.push(held)
          held = undefined
          if (++count === 1 && mayBeOneObject) held = record
          else records.push(record)
        }
        return Chunk.unsafeFromArray(records)
      }),
      Stream.concat(Stream.suspend(() => {
        if (held === undefined) return Stream.empty
        if (held._tag === "Unparsable") return Stream.make(held) // a line that is no object names its line
        const { line: _line, ...whole } = held
        return Stream.make(whole as RecordResult)
      }))
    )
  }))

/**
 * Accepts a task object, or a raw model answer that carries one: a Chat Completions body
 * (`choices[0].message.content`), a Responses body (the `message` item's `output_text`), or an
 * archive record (`{ response: ... }`). Returns the task object or a reason.
 */
export const extractTaskObject = (value: unknown): Either.Either<unknown, string> => {
  if (typeof value !== "object" || value === null) return Either.right(value)
  const v = value as Record<string, any>
  if (v.response !== undefined && v.tool_sequence === undefined && v.user_prompt === undefined) {
    return extractTaskObject(v.response)
  }
  let text: unknown = undefined
  if (Array.isArray(v.choices)) text = v.choices[0]?.message?.content
  else if (Array.isArray(v.output)) {
    const message = v.output.find((o: any) => o?.type === "message")
    text = message?.content?.find((c: any) => c?.type === "output_text")?.text
  } else return Either.right(value)
  if (typeof text !== "string") return Either.left("the model answer has no text content")
  let task: unknown
  try {
    task = JSON.parse(text)
  } catch (e) {
    return Either.left(`the model answer is not valid JSON: ${describe(e)}`)
  }
  return nestsDeeperThan(task, MAX_JSON_DEPTH)
    ? Either.left(tooDeepReason("the model answer's JSON"))
    : Either.right(task)
}
