/**
 * The records of a JSON / JSON Lines file, as `recordsOf` (src/skyrl/records.ts) reads them, with JSON
 * Lines streamed (`Storage.readLines`): `recordStream`, the reader Storage's `readRows` (validate) uses too,
 * so every command decides a file's format the same way (from its first lines, not its extension).
 */
import { Chunk, Effect, Stream } from "effect"
import { InputError } from "../domain/errors.js"
import type { StorageApi } from "../services/Storage.js"
import { rowFormatOf } from "../services/Storage.js"
import type { RecordResult } from "../skyrl/records.js"
import { documentFaultOf, FORMAT_LINES, recordsFormatOf, recordStream } from "../skyrl/records.js"
import { leadOf } from "../skyrl/utf8.js"

/** The first FORMAT_LINES non-blank lines of a file: what `recordsFormatOf` decides from. */
const headsOf = (lines: Stream.Stream<string, InputError>) =>
  lines.pipe(
    Stream.filter((l) => l.trim() !== ""),
    Stream.take(FORMAT_LINES),
    Stream.runCollect,
    Effect.map(Chunk.toReadonlyArray)
  )

const inputError = (file: string) => (e: { readonly reason: string }) => new InputError({ file, reason: e.reason })

export const readRecords = (storage: StorageApi, file: string): Stream.Stream<RecordResult, InputError> => {
  const asInput = inputError(file)
  return recordStream(
    file,
    storage.readLines(file).pipe(Stream.mapError(asInput)),
    Effect.mapError(storage.readText(file), asInput)
  )
}

/**
 * Fails, as `readRecords` does, on a .json or .jsonl file it refuses whole: a text none of whose first
 * lines is JSON or a gzip-compressed file (`recordsFormatOf`), a broken JSON document (`documentFaultOf`:
 * a pretty-printed object or array that does not parse and is no JSON Lines). A file without rows is not
 * refused here: validate reports it as `contract/empty-file`. Since Storage's `readRows` reads through
 * `recordStream` too, it refuses these files itself in the same words: this check before it (validate's)
 * is no longer needed, and only reads the file's first lines (or a whole document) once more.
 */
export const refuseUnreadableRecords = (storage: StorageApi, file: string): Effect.Effect<void, InputError> =>
  Effect.gen(function*() {
    const asInput = inputError(file)
    const heads = yield* headsOf(storage.readLines(file).pipe(Stream.mapError(asInput)))
    if (heads.length === 0) return
    const format = yield* recordsFormatOf(heads, file)
    if (format === "lines" || (rowFormatOf(file) === "json" && leadOf(heads[0]!) === "[")) return
    const fault = documentFaultOf(yield* Effect.mapError(storage.readText(file), asInput))
    if (fault !== undefined) return yield* new InputError({ file, reason: fault })
  })
