/**
 * The on-disk row layout (decided in issue 2, documented in README "Row layout"): every row has the same
 * typed skeleton; each step's `params` and `extra_info.task_metadata` are JSON strings, because Arrow
 * (HuggingFace `datasets`) pads, retypes or refuses objects whose shape varies between rows.
 */
import { Either, Schema } from "effect"
import { SkyRLRow } from "../domain/row.js"
import type { EncodedRow } from "../domain/row.js"
import { parseIssues } from "./parseIssues.js"

export const encodeRow: (row: SkyRLRow) => EncodedRow = Schema.encodeSync(SkyRLRow)

/** Decodes one on-disk row; the error names the first offending field. */
export const decodeRow = (u: unknown): Either.Either<SkyRLRow, { readonly path: string; readonly message: string }> =>
  Either.mapLeft(
    Schema.decodeUnknownEither(SkyRLRow)(u, { errors: "first" }),
    (e) => parseIssues(e)[0] ?? { path: "", message: "invalid row" }
  )

export interface JsonTextOptions {
  /** Spaces of indentation for .json output (0 = compact). */
  readonly indent?: number
  /** Escape every non-ASCII character as \uXXXX. */
  readonly ascii?: boolean
}

const NON_ASCII = /[\u0080-\uffff]/g

export const toJsonText = (value: unknown, options: JsonTextOptions = {}): string => {
  const text = JSON.stringify(value, null, options.indent ?? 0)
  return options.ascii === true
    ? text.replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    : text
}

/** One JSONL line (no trailing newline) for a row. */
export const rowToJsonLine = (row: SkyRLRow, options: JsonTextOptions = {}): string =>
  toJsonText(encodeRow(row), { ...options, indent: 0 })
