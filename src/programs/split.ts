/**
 * `split`: a leak-free train/validation split of SkyRL datasets. A first pass decodes every row (the row decoder
 * of verify and enrich, `decodeRow`; a bad row fails the run naming file, row and field, before anything is
 * written) and keeps only each row's group key; the groups are assigned (src/skyrl/split.ts); then each output is
 * written to a temp file from a pass over the inputs that keeps its rows as read, in input order, and both are
 * renamed into place together (`writeRowStreams`: both new or both as they were). The inputs are only read: one a
 * live skyrl process is writing (its `<input>.lock`) fails the run at the start, and one that changed between the
 * first pass and the commit (size, mtime or inode: a `generate --resume` renamed its output over it) fails it
 * before anything is written. A side without rows fails it too (SkyRL's loader fails on an empty file).
 */
import { Chunk, Effect, Either, Schema, Stream } from "effect"
import type { StorageError } from "../domain/errors.js"
import { InputError } from "../domain/errors.js"
import type { SkyRLRow } from "../domain/row.js"
import { plural } from "../domain/words.js"
import type { FileIdentity, StorageApi } from "../services/Storage.js"
import { sameIdentity, Storage } from "../services/Storage.js"
import { decodeRow, RowJson } from "../skyrl/layout.js"
import type { GroupBy, SideCount, SplitAssignment, ValRule } from "../skyrl/split.js"
import { assignSplit, emptySideProblem, groupKeyOf, splitWarnings } from "../skyrl/split.js"
import { outputLockOf } from "./outputLock.js"

/** The split cannot be written (a side without rows): exit 1, nothing written. */
export class SplitError extends Schema.TaggedError<SplitError>()("SplitError", { reason: Schema.String }) {
  override get message(): string {
    return this.reason
  }
}

const toInputError = (file: string) => (e: StorageError) => new InputError({ file, reason: e.message })

export interface SplitOptions {
  readonly files: ReadonlyArray<string>
  readonly train: string
  readonly val: string
  readonly rule: ValRule
  readonly seed: number
  readonly groupBy: GroupBy
}

/** The rows of one file, decoded; the first that does not decode fails the stream naming its file, row and field. */
const decodedRows = (storage: StorageApi, file: string): Stream.Stream<SkyRLRow, InputError> =>
  storage.readRows(file).pipe(Stream.mapChunksEffect((records) => {
    const rows: Array<SkyRLRow> = []
    for (const record of records) {
      const decoded = decodeRow(record.value)
      if (Either.isLeft(decoded)) {
        const { path, message } = decoded.left
        return Effect.fail(new InputError({ file, row: record.index, field: path, reason: message }))
      }
      rows.push(decoded.right)
    }
    return Effect.succeed(Chunk.unsafeFromArray(rows))
  }))

/**
 * Every row of every file in input order, as read (each run of the stream reads the files again): a row is written
 * as its input has it, columns skyrl does not know and key order included (the decoded row would drop them).
 */
const rowsAsRead = (storage: StorageApi, files: ReadonlyArray<string>) =>
  Stream.flatMap(
    Stream.fromIterable(files),
    (file) => Stream.map(storage.readRows(file), (record) => new RowJson(JSON.stringify(record.value)))
  )

/** `file, row N` of a position over all inputs, from the row count of each file. */
const whereOf = (files: ReadonlyArray<string>, counts: ReadonlyArray<number>) => (position: number): string => {
  let rest = position
  for (const [i, count] of counts.entries()) {
    if (rest < count) return `${files[i]} row ${rest}`
    rest -= count
  }
  return `row ${position}`
}

/** The summary line: rows and groups on each side. */
const summaryOf = (options: SplitOptions, split: SplitAssignment): string => {
  const asked = options.rule._tag === "rows" && split.val.rows !== options.rule.rows
    ? ` (${options.rule.rows} asked: a group is never cut)`
    : ""
  const side = (file: string, count: SideCount) =>
    `${file} ${plural(count.rows, "row")} in ${plural(count.groups, "group")}`
  return `split ${plural(split.train.rows + split.val.rows, "row")} by ${options.groupBy}: ` +
    `${side(options.train, split.train)}, ${side(options.val, split.val)}${asked}`
}

/** Each input's identity before it is read; an input a live skyrl process is writing (its `<in>.lock`) fails. */
const inputIdentities = (storage: StorageApi, files: ReadonlyArray<string>) =>
  Effect.forEach(files, (file) =>
    Effect.gen(function*() {
      const holder = yield* Effect.mapError(storage.lockHolder(outputLockOf(file)), toInputError(file))
      if (holder !== undefined && !holder.stale) {
        return yield* new InputError({
          file,
          reason: `is being written by a skyrl run (${holder.text}): split it once that run is done (if no such ` +
            `process runs, delete ${outputLockOf(file)})`
        })
      }
      return yield* Effect.mapError(storage.identity(file), toInputError(file))
    }))

/** Each input as it was before the first pass (`identities`): checked once both sides are written, before either is committed. */
const unchangedSince = (storage: StorageApi, files: ReadonlyArray<string>, identities: ReadonlyArray<FileIdentity>) =>
  Effect.forEach(
    files,
    (file, i) =>
      Effect.flatMap(
        Effect.mapError(storage.identity(file), toInputError(file)),
        (now) =>
          sameIdentity(now, identities[i]!)
            ? Effect.void
            : new InputError({
              file,
              reason: "changed while it was split (another process wrote or replaced it between the reads); " +
                "nothing written: split it again once it is no longer being written"
            })
      ),
    { discard: true }
  )

export const splitProgram = (options: SplitOptions) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const identities = yield* inputIdentities(storage, options.files)
    const keys: Array<string> = []
    const counts: Array<number> = []
    for (const file of options.files) {
      const before = keys.length
      yield* Stream.runForEachChunk(decodedRows(storage, file), (rows) =>
        Effect.sync(() => {
          for (const row of rows) keys.push(groupKeyOf(row, options.groupBy, keys.length))
        }))
      counts.push(keys.length - before)
    }
    const split = assignSplit(keys, options.rule, options.seed)
    const empty = emptySideProblem(split, options.rule)
    if (empty !== undefined) return yield* new SplitError({ reason: empty })
    const side = (val: number) =>
      Stream.suspend(() => {
        let position = 0
        return Stream.filter(rowsAsRead(storage, options.files), () => split.inVal[position++] === val)
      })
    yield* storage.writeRowStreams([{ file: options.train, rows: side(0) }, { file: options.val, rows: side(1) }], {
      beforeCommit: unchangedSince(storage, options.files, identities)
    })
    yield* Effect.logInfo(summaryOf(options, split))
    for (const warning of splitWarnings(split, whereOf(options.files, counts))) yield* Effect.logWarning(warning)
    return split
  })
