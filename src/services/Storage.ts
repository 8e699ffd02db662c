/**
 * Storage: every file skyrl reads or writes goes through this service, so tests can swap it.
 * Outputs are written atomically (temp file in the same directory, fsync, rename, fsync of the
 * directory): a reader sees the old file or the new one, never half of one, and a rename survives a power
 * loss. Journals are append-only and flushed per line (a new journal's directory entry too).
 * `acquireLock` takes an exclusive lock file (a run directory's `lock`); a lock left by a process that no
 * longer runs on this host is taken over.
 *
 * Datasets: `writeRows` picks the format by extension — `.json` (one array, `indent` 2 by default),
 * `.jsonl` (one row a line, streamed), `.parquet` (nested columns, see ./parquet.ts); `readRows`
 * streams a dataset back as `{ index, value }` (JSON Lines line by line, Parquet row group by row
 * group, `.json` parsed whole), failing with an `InputError` that names the file and row.
 */
import { Context, Effect, Layer, Stream } from "effect"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import { createReadStream } from "node:fs"
import * as fs from "node:fs/promises"
import { hostname } from "node:os"
import * as path from "node:path"
import { createInterface } from "node:readline"
import { InputError, LockHeld, StorageError } from "../domain/errors.js"
import type { EncodedRow, SkyRLRow } from "../domain/row.js"
import type { JsonTextOptions } from "../skyrl/layout.js"
import { encodeRow, toJsonText } from "../skyrl/layout.js"

export type RowFormat = "json" | "jsonl" | "parquet"

export const rowFormatOf = (file: string): RowFormat | undefined => {
  const ext = path.extname(file).toLowerCase()
  return ext === ".json" ? "json" : ext === ".jsonl" ? "jsonl" : ext === ".parquet" ? "parquet" : undefined
}

export interface WriteRowsOptions extends JsonTextOptions {}

/** One row of a dataset file as read: its 0-based index and the parsed on-disk value. */
export interface RowRecord {
  readonly index: number
  /** 1-based line of the row (JSON Lines only). */
  readonly line?: number
  readonly value: unknown
}

export interface StorageApi {
  readonly readText: (file: string) => Effect.Effect<string, StorageError>
  readonly readBytes: (file: string) => Effect.Effect<Uint8Array, StorageError>
  readonly exists: (file: string) => Effect.Effect<boolean>
  readonly makeDirectory: (dir: string) => Effect.Effect<void, StorageError>
  readonly readDirectory: (dir: string) => Effect.Effect<ReadonlyArray<string>, StorageError>
  /** Writes the whole file atomically (temp file + fsync + rename). */
  readonly writeFileAtomic: (file: string, data: string | Uint8Array) => Effect.Effect<void, StorageError>
  /** Appends text and flushes it to disk before succeeding (journals). */
  readonly appendDurable: (file: string, text: string) => Effect.Effect<void, StorageError>
  /**
   * `appendDurable` on a file kept open until the scope closes (created with its directory when missing):
   * for logs appended to many times, without a mkdir, open and close per append.
   */
  readonly openAppend: (file: string) => Effect.Effect<AppendHandle, StorageError, Scope.Scope>
  /**
   * Creates `file` exclusively, holding `owner` (JSON: pid, host, ...), or fails with `LockHeld` naming the
   * holder. A lock whose process is gone (same host, pid not running) is taken over.
   */
  readonly acquireLock: (
    file: string,
    owner: { readonly pid: number; readonly host: string } & Readonly<Record<string, unknown>>
  ) => Effect.Effect<void, LockHeld | StorageError>
  /** Removes a lock file this process holds. */
  readonly releaseLock: (file: string) => Effect.Effect<void>
  /** Writes a dataset in the format its extension names, atomically. Returns the row count. */
  readonly writeRows: (
    file: string,
    rows: Iterable<SkyRLRow>,
    options?: WriteRowsOptions
  ) => Effect.Effect<number, StorageError>
  /**
   * `writeRows` of rows made as a stream is consumed (memory bounded by a chunk of rows). A stream that
   * fails, or an interruption, fails the write with a StorageError and leaves `file` as it was.
   */
  readonly writeRowStream: <E>(
    file: string,
    rows: Stream.Stream<SkyRLRow, E>,
    options?: WriteRowsOptions
  ) => Effect.Effect<number, StorageError>
  /**
   * Streams the rows of a .json, .jsonl or .parquet dataset (memory bounded for .jsonl and .parquet).
   * Fails with an InputError naming the file (and the row, or line, where one is at fault).
   */
  readonly readRows: (file: string) => Stream.Stream<RowRecord, InputError>
}

/** An open append-only file (`openAppend`). */
export interface AppendHandle {
  /** Appends text and flushes it to disk (fdatasync) before succeeding. */
  readonly append: (text: string) => Effect.Effect<void, StorageError>
}

export class Storage extends Context.Tag("skyrl/Storage")<Storage, StorageApi>() {}

const reason = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException
  if (err?.code === "ENOENT") return "no such file or directory"
  if (err?.code === "EISDIR") return "is a directory, not a file"
  if (err?.code === "EACCES") return "permission denied"
  return err?.message ?? String(e)
}

const attempt = <A>(file: string, operation: string, f: () => Promise<A>): Effect.Effect<A, StorageError> =>
  Effect.tryPromise({ try: f, catch: (e) => new StorageError({ path: file, operation, reason: reason(e) }) })

const tempName = (file: string): string =>
  path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`)

/** Flushes a directory's entries (a rename or a new file) to disk; a no-op where directories cannot be synced. */
export const syncDirectory = async (dir: string): Promise<void> => {
  let handle: fs.FileHandle | undefined
  try {
    handle = await fs.open(dir, "r")
    await handle.sync()
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== "EISDIR" && code !== "EINVAL" && code !== "EPERM" && code !== "EBADF") throw e
  } finally {
    await handle?.close().catch(() => undefined)
  }
}

/**
 * `syncDirectory`, shared by concurrent callers: while one sync of a directory runs, the callers that
 * arrive wait for the one sync after it (which covers their renames); so 64 archive writes finishing
 * together cost two directory syncs, not 64.
 */
const directorySyncs = new Map<string, { running?: Promise<void> | undefined; next?: Promise<void> | undefined }>()
const syncDirectoryShared = (dir: string): Promise<void> => {
  let state = directorySyncs.get(dir)
  if (state === undefined) directorySyncs.set(dir, state = {})
  const s = state
  if (s.running === undefined) {
    s.running = syncDirectory(dir).finally(() => (s.running = undefined))
    return s.running
  }
  s.next ??= s.running.catch(() => undefined).then(() => {
    s.next = undefined
    return syncDirectoryShared(dir)
  })
  return s.next
}

/** Writes through a temp file and renames it over `file`; the temp file is removed on failure. */
const atomically = async (file: string, write: (handle: fs.FileHandle) => Promise<void>): Promise<void> => {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true })
  const tmp = tempName(path.resolve(file))
  const handle = await fs.open(tmp, "w")
  try {
    await write(handle)
    await handle.sync()
    await handle.close()
    await fs.rename(tmp, file)
    await syncDirectoryShared(path.dirname(path.resolve(file)))
  } catch (e) {
    await handle.close().catch(() => undefined)
    await fs.rm(tmp, { force: true }).catch(() => undefined)
    throw e
  }
}

/** Buffered writer over a file handle (rows are streamed, never joined into one string). */
const bufferedWriter = (handle: fs.FileHandle) => {
  let chunks: Array<string> = []
  let size = 0
  const flush = async () => {
    if (chunks.length === 0) return
    const text = chunks.join("")
    chunks = []
    size = 0
    await handle.write(text)
  }
  return {
    write: async (text: string) => {
      chunks.push(text)
      size += text.length
      if (size >= 1 << 20) await flush()
    },
    flush
  }
}

/** The text of a .json / .jsonl dataset piece by piece: `start`, then each `row`, then `end()`. */
const jsonDatasetText = (format: "json" | "jsonl", options: WriteRowsOptions) => {
  const indent = format === "jsonl" ? 0 : options.indent ?? 2
  const pad = " ".repeat(indent)
  const textOptions = { ...options, indent }
  let n = 0
  return {
    start: format === "json" ? "[" : "",
    row: (row: EncodedRow): string => {
      const text = toJsonText(row, textOptions)
      if (format === "jsonl") return (n++, text + "\n")
      return (n++ === 0 ? "" : ",") + (indent > 0 ? "\n" + text.replace(/^/gm, pad) : text)
    },
    end: (): string => (format === "jsonl" ? "" : n === 0 ? "]\n" : indent > 0 ? "\n]\n" : "]\n"),
    count: () => n
  }
}

export const writeJsonRows = async (
  handle: fs.FileHandle,
  rows: Iterable<SkyRLRow>,
  format: "json" | "jsonl",
  options: WriteRowsOptions
): Promise<number> => {
  const out = bufferedWriter(handle)
  const text = jsonDatasetText(format, options)
  await out.write(text.start)
  for (const row of rows) await out.write(text.row(encodeRow(row)))
  await out.write(text.end())
  await out.flush()
  return text.count()
}

/** A parse failure inside a dataset file, before it becomes an InputError. */
class RowReadFailure extends Error {
  constructor(readonly row: number | undefined, reason: string) {
    super(reason)
  }
}

const parseLine = (text: string, row: number, line: number): unknown => {
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new RowReadFailure(row, `line ${line} is not valid JSON: ${(e as Error).message}`)
  }
}

async function* jsonLinesRows(file: string): AsyncGenerator<RowRecord> {
  const input = createReadStream(file, { encoding: "utf8", highWaterMark: 1 << 20 })
  const lines = createInterface({ input, crlfDelay: Infinity })
  let index = 0
  let line = 0
  try {
    for await (const text of lines) {
      line++
      if (text.trim() === "") continue
      yield { index, line, value: parseLine(text, index, line) }
      index++
    }
  } finally {
    lines.close()
    input.destroy()
  }
}

async function* jsonRows(file: string): AsyncGenerator<RowRecord> {
  const text = await fs.readFile(file, "utf8")
  if (!text.trimStart().startsWith("[")) {
    // Like `datasets`, a .json file may also hold JSON Lines.
    let index = 0
    let line = 0
    for (const l of text.split("\n")) {
      line++
      if (l.trim() === "") continue
      yield { index, line, value: parseLine(l, index, line) }
      index++
    }
    return
  }
  let rows: unknown
  try {
    rows = JSON.parse(text)
  } catch (e) {
    throw new RowReadFailure(undefined, `not valid JSON: ${(e as Error).message}`)
  }
  for (const [index, value] of (rows as ReadonlyArray<unknown>).entries()) yield { index, value }
}

async function* parquetRows(file: string): AsyncGenerator<RowRecord> {
  const { readParquetRows } = await import("./parquet.js")
  let index = 0
  try {
    for await (const value of readParquetRows(file)) yield { index: index++, value }
  } catch (e) {
    if (e instanceof RowReadFailure || (e as NodeJS.ErrnoException)?.code !== undefined) throw e
    throw new RowReadFailure(index === 0 ? undefined : index, `not a readable Parquet file: ${(e as Error).message}`)
  }
}

export const readDatasetRows = (file: string): Stream.Stream<RowRecord, InputError> => {
  const format = rowFormatOf(file)
  if (format === undefined) {
    return Stream.fail(
      new InputError({ file, reason: "unknown dataset format: use a .json, .jsonl or .parquet extension" })
    )
  }
  const source =
    () => (format === "jsonl" ? jsonLinesRows(file) : format === "json" ? jsonRows(file) : parquetRows(file))
  return Stream.fromAsyncIterable(
    { [Symbol.asyncIterator]: () => source()[Symbol.asyncIterator]() },
    (e) =>
      e instanceof RowReadFailure
        ? new InputError({ file, ...(e.row === undefined ? {} : { row: e.row }), reason: e.message })
        : new InputError({ file, reason: reason(e) })
  )
}

const unknownFormat = (file: string) =>
  new StorageError({
    path: file,
    operation: "write",
    reason: "unknown dataset format: use a .json, .jsonl or .parquet extension"
  })

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Who holds a lock file, and whether that process is gone (same host, pid not running). */
const lockHolder = async (file: string): Promise<{ readonly text: string; readonly stale: boolean }> => {
  const text = await fs.readFile(file, "utf8").catch(() => "")
  try {
    const owner = JSON.parse(text) as { pid?: unknown; host?: unknown }
    const stale = owner.host === hostname() && typeof owner.pid === "number" && !isRunning(owner.pid)
    return { text: text.trim(), stale }
  } catch {
    return { text: text.trim() === "" ? "(an unreadable lock file)" : text.trim(), stale: false }
  }
}

/** Opens `file` with `flags`, writes `text` and flushes it to disk. */
const writeSynced = async (file: string, flags: "a" | "wx", text: string): Promise<void> => {
  const handle = await fs.open(file, flags)
  try {
    await handle.write(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Opens `file` for appending, creating it (and its directory, whose new entry is synced) when missing. */
const openForAppend = async (file: string): Promise<fs.FileHandle> => {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true })
  const created = await fs.access(file).then(() => false, () => true)
  const handle = await fs.open(file, "a")
  if (created) await syncDirectory(path.dirname(path.resolve(file)))
  return handle
}

const openAppend = (file: string): Effect.Effect<AppendHandle, StorageError, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      attempt(file, "open for appending", () => openForAppend(file)),
      (handle) => Effect.promise(() => handle.close().catch(() => undefined))
    ),
    (handle) => ({
      append: (text) =>
        attempt(file, "append to", async () => {
          await handle.write(text)
          await handle.datasync()
        })
    })
  )

/**
 * The rows of `iterable`, encoded, until `signal` aborts (then the iteration throws: a `next` that waits
 * for a row the interrupted producer will never make does not hold the write open).
 */
async function* encodedUntilAborted(iterable: AsyncIterable<SkyRLRow>, signal: AbortSignal) {
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(new Error("interrupted"))
    signal.addEventListener("abort", () => reject(new Error("interrupted")), { once: true })
  })
  aborted.catch(() => undefined)
  const rows = iterable[Symbol.asyncIterator]()
  for (;;) {
    const next = await Promise.race([rows.next(), aborted])
    if (next.done === true) return
    yield encodeRow(next.value)
  }
}

/**
 * `writeRowStream`: the stream consumed as an async iterable by the format's writer, inside the atomic
 * write. A failure of the stream fails the write (as a StorageError naming the file), and so does an
 * interruption; either way the temp file is removed and `file` is left as it was.
 */
const writeRowStream = <E>(
  file: string,
  rows: Stream.Stream<SkyRLRow, E>,
  options: WriteRowsOptions = {}
): Effect.Effect<number, StorageError> => {
  const format = rowFormatOf(file)
  if (format === undefined) return Effect.fail(unknownFormat(file))
  return Effect.scoped(
    Effect.flatMap(Stream.toAsyncIterableEffect(rows), (iterable) =>
      Effect.tryPromise({
        try: async (signal) => {
          let n = 0
          await atomically(file, async (h) => {
            const encoded = encodedUntilAborted(iterable, signal)
            if (format === "parquet") {
              const { writeParquetRows } = await import("./parquet.js")
              n = await writeParquetRows(h, encoded)
              return
            }
            const out = bufferedWriter(h)
            const text = jsonDatasetText(format, options)
            await out.write(text.start)
            for await (const row of encoded) await out.write(text.row(row))
            await out.write(text.end())
            await out.flush()
            n = text.count()
          })
          return n
        },
        catch: (e) => new StorageError({ path: file, operation: "write", reason: reason(e) })
      }))
  )
}

const createExclusive = async (file: string, text: string): Promise<boolean> => {
  try {
    await writeSynced(file, "wx", text)
    await syncDirectory(path.dirname(path.resolve(file)))
    return true
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false
    throw e
  }
}

const acquireLockFile = (
  file: string,
  owner: Readonly<Record<string, unknown>>
): Effect.Effect<void, LockHeld | StorageError> =>
  Effect.gen(function*() {
    const text = JSON.stringify(owner) + "\n"
    yield* attempt(file, "create directory for", () => fs.mkdir(path.dirname(path.resolve(file)), { recursive: true }))
    for (let round = 0; round < 3; round++) {
      if (yield* attempt(file, "create lock", () => createExclusive(file, text))) return
      const holder = yield* attempt(file, "read lock", () => lockHolder(file))
      if (!holder.stale) return yield* new LockHeld({ path: file, holder: holder.text })
      // Left by a process that is gone (kill -9): move it aside (one taker wins the rename), then retry.
      yield* attempt(file, "take over stale lock", () =>
        fs.rename(file, `${file}.stale-${process.pid}-${randomBytes(3).toString("hex")}`).catch((e) => {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
            throw e
          }
        }))
    }
    return yield* new LockHeld({ path: file, holder: "another process (the lock kept changing hands)" })
  })

export const StorageLive: Layer.Layer<Storage> = Layer.succeed(Storage, {
  readText: (file) => attempt(file, "read", () => fs.readFile(file, "utf8")),
  readBytes: (file) => attempt(file, "read", () => fs.readFile(file)),
  exists: (file) => Effect.promise(() => fs.access(file).then(() => true, () => false)),
  makeDirectory: (dir) =>
    attempt(dir, "create directory", () => fs.mkdir(dir, { recursive: true }).then(() => undefined)),
  readDirectory: (dir) => attempt(dir, "list", () => fs.readdir(dir).then((names) => names.sort())),
  writeFileAtomic: (file, data) => attempt(file, "write", () => atomically(file, (h) => h.writeFile(data))),
  appendDurable: (file, text) =>
    attempt(file, "append to", async () => {
      await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true })
      const created = await fs.access(file).then(() => false, () => true)
      await writeSynced(file, "a", text)
      if (created) await syncDirectory(path.dirname(path.resolve(file)))
    }),
  acquireLock: acquireLockFile,
  releaseLock: (file) => Effect.promise(() => fs.rm(file, { force: true })),
  openAppend,
  writeRowStream,
  writeRows: (file, rows, options = {}) => {
    const format = rowFormatOf(file)
    if (format === undefined) return Effect.fail(unknownFormat(file))
    return attempt(file, "write", async () => {
      let n = 0
      if (format === "parquet") {
        const { writeParquetRows } = await import("./parquet.js")
        const encoded = function*() {
          for (const row of rows) yield encodeRow(row)
        }
        await atomically(file, async (h) => {
          n = await writeParquetRows(h, encoded())
        })
      } else {
        await atomically(file, async (h) => {
          n = await writeJsonRows(h, rows, format, options)
        })
      }
      return n
    })
  },
  readRows: readDatasetRows
})
