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
import { FORMAT_LINES, jsonLinesReader, recordsFormatOf, recordsOf } from "../skyrl/records.js"

export const readRecords = (storage: StorageApi, file: string): Stream.Stream<RecordResult, InputError> =>
  Stream.unwrap(Effect.gen(function*() {
    const asInput = (e: { readonly reason: string }) => new InputError({ file, reason: e.reason })
    const lines = storage.readLines(file).pipe(Stream.mapError(asInput))
    // The first few non-blank lines decide (a first line that is not JSON may open JSON Lines).
    const heads = yield* lines.pipe(Stream.filter((l) => l.trim() !== ""), Stream.take(FORMAT_LINES), Stream.runCollect)
    const format = yield* recordsFormatOf(Chunk.toReadonlyArray(heads), file)
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
