/**
 * The records of a JSON / JSON Lines file, as `recordsOf` (src/skyrl/records.ts) reads them, with JSON
 * Lines streamed (`Storage.readLines`): `recordStream`, the reader Storage's `readRows` (validate) uses too,
 * so every command decides a file's format the same way (from its first lines, not its extension).
 */
import { Effect, Stream } from "effect"
import { InputError } from "../domain/errors.js"
import type { StorageApi } from "../services/Storage.js"
import type { RecordResult } from "../skyrl/records.js"
import { recordStream } from "../skyrl/records.js"

const inputError = (file: string) => (e: { readonly reason: string }) => new InputError({ file, reason: e.reason })

export const readRecords = (storage: StorageApi, file: string): Stream.Stream<RecordResult, InputError> => {
  const asInput = inputError(file)
  return recordStream(
    file,
    storage.readLines(file).pipe(Stream.mapError(asInput)),
    Effect.mapError(storage.readText(file), asInput)
  )
}
