/**
 * A run's archive of model calls on disk (raw_llm/<run_id>/): each HTTP attempt's request (without the
 * key), raw answer, usage, timing and outcome.
 *
 * Layout: one append-only log per session (each process that opens the run: generate, `--resume`, a
 * `batch collect` round), `archive_01.jsonl`, `archive_02.jsonl`, ... — one line per HTTP attempt, the
 * record with its call's name first: `{"name":"task_0007_c02.json","key":...,"sample":6,...,"call":2}`.
 * Lines are appended with group commit (durableLog.ts: the attempts that end together share one write and
 * one fdatasync). With `--raw-gzip` the log is `archive_01.jsonl.gz` and each line is its own gzip member
 * (the file is one gzip stream: `zcat` reads it). A session never appends to a log it did not create, and a
 * log whose write failed is not appended to again (the next attempt starts the next log), so a line cut by
 * a crash can only be a log's last, and it is not a record. A call is named by its log and name:
 * `raw_llm/<run_id>/archive_01.jsonl#task_0007_c02.json` (rows' `raw_output_path`, rejects).
 *
 * Versions before the log wrote one file per call, `task_0007_c02.json(.gz)`: they are still read, so
 * their runs resume and rebuild as before.
 */
import { Effect, Either, Option, Stream } from "effect"
import * as path from "node:path"
import { crc32, gunzipSync, gzipSync, inflateRawSync } from "node:zlib"
import type { StorageError } from "../domain/errors.js"
import { requestJson } from "./llm/answer.js"
import { Storage } from "./Storage.js"

/** `task_0007_c02.json`: sample 7 (1-based), its second model call. */
export const archiveCallName = (index: number, call: number, total: number): string => {
  const width = Math.max(4, String(total).length)
  return `task_${String(index + 1).padStart(width, "0")}_c${String(call).padStart(2, "0")}.json`
}

/** A call's name (`task_0007_c02.json`), or a file of the per-call layout (`.json.gz` too). */
export const ARCHIVE_NAME = /^task_(\d+)_c(\d+)\.json(\.gz)?$/

/** `archive_03.jsonl(.gz)`: the log of the run's third session. */
const LOG_NAME = /^archive_(\d+)\.jsonl(\.gz)?$/

export const archiveLogName = (n: number, gzip: boolean): string =>
  `archive_${String(n).padStart(2, "0")}.jsonl${gzip ? ".gz" : ""}`

/** Where a logged record is: its log, and its bytes there (a gzip member when `gzip`). */
export interface LogSpan {
  readonly log: string
  readonly offset: number
  readonly length: number
  readonly gzip: boolean
}

/** One archived HTTP attempt of a sample. */
export interface ArchivedCall {
  readonly call: number
  /** Its name as rows and rejects give it: `<log>#<name>`, or the file of the per-call layout. */
  readonly file: string
  /** Its request key (`sample-000006-a2`), when known without reading it. */
  readonly key?: string | undefined
  /** Where it is in a log (absent: the whole of `file`). */
  readonly at?: LogSpan | undefined
}

/** `<log>#<name>`: a logged call's name. */
export const loggedCallRef = (log: string, name: string): string => `${log}#${name}`

/**
 * An archived call's reference (a row's or reject's `raw_output_path`: `<dirs>/archive_01.jsonl#task_0007_c02.json`,
 * or a per-call file `<dirs>/task_0007_c02.json`) relative to its run directory, where every log and per-call
 * file lies: the directories before it dropped. Undefined when `ref` names no archived call.
 */
export const callRefInRunDir = (ref: string): string | undefined => {
  const hash = ref.lastIndexOf("#")
  const file = path.posix.basename(hash === -1 ? ref : ref.slice(0, hash))
  if (hash === -1) return ARCHIVE_NAME.test(file) ? file : undefined
  const name = ref.slice(hash + 1)
  return LOG_NAME.test(file) && ARCHIVE_NAME.test(name) ? loggedCallRef(file, name) : undefined
}

/** The call's name (`task_0007_c02.json`) of an archived call's reference, in either layout. */
export const archiveCallNameOf = (ref: string): string => {
  const hash = ref.lastIndexOf("#")
  return hash === -1 ? path.basename(ref) : ref.slice(hash + 1)
}

/**
 * The bytes of one logged record: its line (UTF-8), or (gzip) its line as a gzip member. The line is
 * written into one buffer piece by piece: as one string it was copied again (a ~27 KB request's text
 * joined to the rest, then flattened to count and write its bytes) for every call.
 */
export const encodeLogRecord = (
  name: string,
  record: Readonly<Record<string, unknown>>,
  gzip: boolean
): Uint8Array => {
  // The request's JSON as it was sent (made once, from cached pieces), after the rest of the record.
  const { request, ...rest } = record
  const head = JSON.stringify({ name, ...rest })
  const pieces = request === undefined
    ? [head, "\n"]
    : [
      head.slice(0, -1),
      head === `{"name":${JSON.stringify(name)}}` ? "" : ",",
      "\"request\":",
      requestJson(request),
      "}\n"
    ]
  const line = Buffer.allocUnsafe(pieces.reduce((n, p) => n + Buffer.byteLength(p, "utf8"), 0))
  let at = 0
  for (const p of pieces) at += line.write(p, at, "utf8")
  return gzip ? gzipSync(line) : line
}

/** A record's parsed value (undefined when it is not one: cut by a crash, or not JSON). */
const parseRecord = (text: string): Record<string, unknown> | undefined => {
  const value = Either.try(() => JSON.parse(text) as unknown)
  return Either.isRight(value) && typeof value.right === "object" && value.right !== null &&
      !Array.isArray(value.right)
    ? value.right as Record<string, unknown>
    : undefined
}

/** A log line (or gzip member) that is not a record of a call, and why. */
interface UnreadableRecord {
  readonly log: string
  /** Its line (1-based) in a plain log; a gzip log's member is named by its byte offset. */
  readonly line?: number | undefined
  readonly offset: number
  readonly reason: string
}

/** An archived call as the index holds it: its sample (0-based) and where its record is. */
interface IndexEntry {
  readonly index: number
  readonly call: ArchivedCall
}

/** The index entry of a logged record, or why `text` is not a record of a call (parsed once). */
const entryOf = (text: string, at: LogSpan): Either.Either<IndexEntry, string> => {
  const value = Either.try(() => JSON.parse(text) as unknown)
  if (Either.isLeft(value)) return Either.left("not JSON")
  const record = value.right
  if (typeof record !== "object" || record === null || Array.isArray(record)) return Either.left("not a JSON object")
  const { key, name } = record as Record<string, unknown>
  if (typeof name !== "string") {
    return Either.left(`name: expected a call's name (task_0007_c02.json), got ${JSON.stringify(name)}`)
  }
  const m = ARCHIVE_NAME.exec(name)
  if (m === null) return Either.left(`name: ${JSON.stringify(name)} is not a call's name (task_0007_c02.json)`)
  const call: ArchivedCall = {
    call: Number(m[2]),
    file: loggedCallRef(at.log, name),
    key: typeof key === "string" ? key : undefined,
    at
  }
  return Either.right({ index: Number(m[1]) - 1, call })
}

/** A gzip member's header as Node writes it: magic, deflate, no flags. */
const isMemberStart = (buffer: Buffer, offset: number): boolean =>
  buffer[offset] === 0x1f && buffer[offset + 1] === 0x8b && buffer[offset + 2] === 0x08 && buffer[offset + 3] === 0

/**
 * The records of a gzip log: one gzip member each. A member that does not inflate (damaged) is skipped up to
 * the next member's header, and named in `unreadable`; one cut by a crash, the log's last, is not a record.
 */
const gzipEntries = (log: string, bytes: Uint8Array) => {
  const out: Array<IndexEntry> = []
  const unreadable: Array<UnreadableRecord> = []
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let offset = 0
  // A member as Node writes it: a 10-byte header without optional fields, deflate data, an 8-byte trailer.
  while (offset < buffer.length) {
    const inflated = offset + 18 <= buffer.length && isMemberStart(buffer, offset)
      ? Either.try(() =>
        inflateRawSync(buffer.subarray(offset + 10), { info: true }) as unknown as {
          readonly buffer: Buffer
          readonly engine: { readonly bytesWritten: number }
        }
      )
      : undefined
    const length = inflated !== undefined && Either.isRight(inflated)
      ? 10 + inflated.right.engine.bytesWritten + 8
      : undefined
    if (inflated === undefined || Either.isLeft(inflated) || length === undefined || offset + length > buffer.length) {
      // Damaged: on to the next member, if there is one (none: the log's last, cut by a crash).
      let next = offset + 1
      while (next + 18 <= buffer.length && !isMemberStart(buffer, next)) next++
      if (next + 18 > buffer.length) break
      unreadable.push({ log, offset, reason: "not a gzip member (damaged)" })
      offset = next
      continue
    }
    // The trailer's CRC-32 of the data (a damaged member may still inflate, to other bytes).
    if (crc32(inflated.right.buffer) !== buffer.readUInt32LE(offset + length - 8)) {
      unreadable.push({ log, offset, reason: "fails its CRC check (damaged)" })
      offset += length
      continue
    }
    const entry = entryOf(inflated.right.buffer.toString("utf8"), { log, offset, length, gzip: true })
    if (Either.isRight(entry)) out.push(entry.right)
    else unreadable.push({ log, offset, reason: entry.left })
    offset += length
  }
  return { entries: out, unreadable }
}

/** The records of a plain log, line by line (streamed): each with its byte span; the lines that are not one. */
const plainEntries = (log: string) =>
  Effect.flatMap(Storage, (storage) => {
    const out: Array<IndexEntry> = []
    const unreadable: Array<UnreadableRecord> = []
    let offset = 0
    let line = 0
    return storage.readLines(log).pipe(
      Stream.runForEachChunk((lines) =>
        Effect.sync(() => {
          for (const text of lines) {
            line++
            const length = Buffer.byteLength(text, "utf8") + 1
            const entry = text === "" ? undefined : entryOf(text, { log, offset, length, gzip: false })
            if (entry !== undefined && Either.isRight(entry)) out.push(entry.right)
            else if (entry !== undefined) unreadable.push({ log, line, offset, reason: entry.left })
            offset += length
          }
        })
      ),
      // A last line without its line end is a piece a crash cut short, not damage.
      Effect.zipRight(storage.size(log)),
      Effect.map((size) => ({
        entries: out,
        unreadable: offset > size && unreadable.at(-1)?.line === line ? unreadable.slice(0, -1) : unreadable
      }))
    )
  })

/** How many damaged records a warning names before "...". */
const NAMED_RECORDS = 5

/** Says on stderr which records of a run's archive logs are not readable, and what becomes of their calls. */
const warnUnreadable = (unreadable: ReadonlyArray<UnreadableRecord>): Effect.Effect<void> =>
  unreadable.length === 0 ? Effect.void : Effect.logWarning(
    `${unreadable.length} archive record(s) are not readable, skipped (${
      unreadable.slice(0, NAMED_RECORDS).map((u) =>
        `${u.log} ${u.line === undefined ? `byte ${u.offset}` : `line ${u.line}`}: ${u.reason}`
      ).join("; ")
    }${unreadable.length > NAMED_RECORDS ? "; ..." : ""}): the answers they held are not the run's: rebuild ` +
      "cannot make the rows of their samples, and --resume asks for them again (when their samples have no row)"
  )

export interface ArchiveIndex {
  /** Archived calls by sample (0-based), each sample's in call order. */
  readonly bySample: Map<number, Array<ArchivedCall>>
  /** The highest log number in the directory (0: none). */
  readonly lastLog: number
}

/** Every archived call of a run directory, in both layouts. */
export const readArchiveIndex = (runDir: string): Effect.Effect<ArchiveIndex, StorageError, Storage> =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const bySample = new Map<number, Array<ArchivedCall>>()
    const add = (index: number, call: ArchivedCall) => {
      const calls = bySample.get(index)
      if (calls === undefined) bySample.set(index, [call])
      else calls.push(call)
    }
    let lastLog = 0
    const unreadable: Array<UnreadableRecord> = []
    for (const name of yield* storage.readDirectory(runDir)) {
      const file = path.join(runDir, name)
      const perCall = ARCHIVE_NAME.exec(name)
      if (perCall !== null) add(Number(perCall[1]) - 1, { call: Number(perCall[2]), file })
      const log = LOG_NAME.exec(name)
      if (log === null) continue
      lastLog = Math.max(lastLog, Number(log[1]))
      const read = log[2] === undefined
        ? yield* plainEntries(file)
        : gzipEntries(file, yield* storage.readBytes(file))
      for (const e of read.entries) add(e.index, e.call)
      unreadable.push(...read.unreadable)
    }
    for (const calls of bySample.values()) calls.sort((a, b) => a.call - b.call)
    yield* warnUnreadable(unreadable)
    return { bySample, lastLog }
  })

/** An archived call's record, parsed (undefined when it cannot be read: not an answer). */
export const readArchivedRecord = (call: ArchivedCall): Effect.Effect<unknown, never, Storage> =>
  Effect.flatMap(Storage, (storage) => {
    const at = call.at
    const bytes = at === undefined ? storage.readBytes(call.file) : storage.readSlice(at.log, at.offset, at.length)
    const gzip = at === undefined ? call.file.endsWith(".gz") : at.gzip
    return Effect.map(Effect.option(bytes), (read) => {
      if (Option.isNone(read)) return undefined
      const text = Either.try(() =>
        gzip ? gunzipSync(read.value).toString("utf8") : Buffer.from(read.value).toString("utf8")
      )
      return Either.isLeft(text) ? undefined : parseRecord(text.right)
    })
  })
