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
import { randomBytes } from "node:crypto"
import { createReadStream } from "node:fs"
import * as fs from "node:fs/promises"
import { hostname } from "node:os"
import * as path from "node:path"
import { createInterface } from "node:readline"
import { InputError, LockHeld, StorageError } from "../domain/errors.js"
import type { SkyRLRow } from "../domain/row.js"
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
   * Streams the rows of a .json, .jsonl or .parquet dataset (memory bounded for .jsonl and .parquet).
   * Fails with an InputError naming the file (and the row, or line, where one is at fault).
   */
  readonly readRows: (file: string) => Stream.Stream<RowRecord, InputError>
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

export const writeJsonRows = async (
  handle: fs.FileHandle,
  rows: Iterable<SkyRLRow>,
  format: "json" | "jsonl",
  options: WriteRowsOptions
): Promise<number> => {
  const out = bufferedWriter(handle)
  let n = 0
  if (format === "jsonl") {
    for (const row of rows) {
      await out.write(toJsonText(encodeRow(row), { ...options, indent: 0 }) + "\n")
      n++
    }
  } else {
    const indent = options.indent ?? 2
    const pad = " ".repeat(indent)
    await out.write("[")
    for (const row of rows) {
      const text = toJsonText(encodeRow(row), { ...options, indent })
      await out.write((n === 0 ? "" : ",") + (indent > 0 ? "\n" + text.replace(/^/gm, pad) : text))
      n++
    }
    await out.write(n === 0 ? "]\n" : indent > 0 ? "\n]\n" : "]\n")
  }
  await out.flush()
  return n
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
  writeRows: (file, rows, options = {}) => {
    const format = rowFormatOf(file)
    if (format === undefined) {
      return Effect.fail(
        new StorageError({
          path: file,
          operation: "write",
          reason: "unknown dataset format: use a .json, .jsonl or .parquet extension"
        })
      )
    }
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
