/**
 * The records of a JSON / JSON Lines file, as `recordsOf` (src/skyrl/records.ts) reads them, with JSON
 * Lines streamed (`Storage.readLines`, chosen from the first lines by `recordsFormatOf`): memory holds the
 * lines in flight, not the file, so a JSON Lines file of any size can be read (one string of the whole
 * file cannot pass V8's limit of ~512 MB). A JSON array or a pretty-printed object is read whole. A record
 * read from a line of a .jsonl file names its line, even when it is the file's only one.
 */
import { Chunk, Effect, Stream } from "effect"
import { InputError } from "../domain/errors.js"
import type { StorageApi } from "../services/Storage.js"
import { rowFormatOf } from "../services/Storage.js"
import type { RecordResult } from "../skyrl/records.js"
import { documentFaultOf, FORMAT_LINES, jsonLinesReader, recordsFormatOf, recordsOf } from "../skyrl/records.js"
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

export const readRecords = (storage: StorageApi, file: string): Stream.Stream<RecordResult, InputError> =>
  Stream.unwrap(Effect.gen(function*() {
    const asInput = inputError(file)
    const lines = storage.readLines(file).pipe(Stream.mapError(asInput))
    // The first few non-blank lines decide (a first line that is not JSON may open JSON Lines).
    const format = yield* recordsFormatOf(yield* headsOf(lines), file)
    if (format === "whole") {
      const text = yield* Effect.mapError(storage.readText(file), asInput)
      return Stream.fromIterable(yield* recordsOf(text, file))
    }
    // A .json file of one JSON object is one record without a line (as recordsOf reads it): its first
    // record waits until a second one shows the file has several. A .jsonl file's records are its lines.
    const read = jsonLinesReader()
    const mayBeOneObject = rowFormatOf(file) !== "jsonl"
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
        const { line: _line, ...whole } = held as Extract<RecordResult, { _tag: "Record" }>
        return Stream.make(whole as RecordResult)
      }))
    )
  }))

/**
 * Fails, as `readRecords` does, on a .json or .jsonl file it refuses whole: a text none of whose first
 * lines is JSON or a gzip-compressed file (`recordsFormatOf`), a broken JSON document (`documentFaultOf`:
 * a pretty-printed object or array that does not parse and is no JSON Lines). For a command that reads
 * the rows itself (`validate`: Storage's reader reads a .jsonl file line by line, so such a file was one
 * `contract/json` violation a line). A file without rows is not refused here: validate reports it as
 * `contract/empty-file`. A .json file starting with '[' is not parsed here: Storage's reader parses it
 * whole and refuses it in the same words.
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
