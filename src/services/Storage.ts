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
 * streams a dataset back as `{ index, value }` (Parquet row group by row group; `.json` and `.jsonl` by the
 * records reader every command uses, src/skyrl/records.ts `recordStream`: JSON Lines line by line, a JSON
 * array parsed whole, decided from the first lines, not the extension), failing with an `InputError` that
 * names the file and row. A .json or
 * .jsonl file is read back before it replaces the target: its length and CRC-32 must be the bytes the
 * writer produced. `readLines` streams any text file's lines (memory bounded by one read buffer).
 */
import { Chunk, Clock, Context, Effect, Layer, Stream } from "effect"
import type * as Scope from "effect/Scope"
import { isAscii, isUtf8 } from "node:buffer"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import { hostname } from "node:os"
import * as path from "node:path"
import { crc32 } from "node:zlib"
import { InputError, LockHeld, StorageError } from "../domain/errors.js"
import type { EncodedRow } from "../domain/row.js"
import type { ColumnTypeIssue } from "../domain/row.js"
import type { JsonTextFacts } from "../skyrl/jsonTextFacts.js"
import type { JsonTextOptions, WritableRow } from "../skyrl/layout.js"
import { encodedOf, encodedRowJson, RowJson, toJsonText, writeEncodedRowJson } from "../skyrl/layout.js"
import { recordStream } from "../skyrl/records.js"
import { decodeUtf8, withoutBom } from "../skyrl/utf8.js"
import { writeAll } from "./diskWrites.js"
import { SinkWorker } from "./sinkWorker.js"

/**
 * Writes all of `data` at the handle's position (append mode: the end): a short write is followed by more
 * writes, and a write that stops is an error naming its cause and where it stopped (./diskWrites.ts).
 */
export { writeAll }

export type RowFormat = "json" | "jsonl" | "parquet"

export const rowFormatOf = (file: string): RowFormat | undefined => {
  const ext = path.extname(file).toLowerCase()
  return ext === ".json" ? "json" : ext === ".jsonl" ? "jsonl" : ext === ".parquet" ? "parquet" : undefined
}

export interface WriteRowsOptions extends JsonTextOptions {
  /**
   * Sees each row as it is encoded for disk, before it is serialized (the checks of what a command
   * writes, made as it writes; a .json or .jsonl file holds exactly these values, as JSON).
   */
  readonly inspect?: ((row: EncodedRow) => void) | undefined
  /**
   * Called once every row is written to the (temp) file, while its last bytes go to the disk and are synced
   * and read back (before it replaces the target): CPU work for after the rows (the checks' report) done
   * while this waits for the disk. It must not throw.
   */
  readonly whileFinishing?: (() => void) | undefined
  /**
   * A small file that belongs with the dataset (convert's rejects): its text, taken once every row is written,
   * goes to a temp file beside it that is synced before the dataset replaces its target and renamed right
   * after, so an earlier run's pair is never split by a dataset that could not be written (neither file is
   * replaced then). A failure to rename it once the dataset was is the only way to get one without the other.
   */
  readonly companion?: { readonly file: string; readonly text: () => string } | undefined
  /**
   * Whether the rows may replace the `file` already there (rebuild: only when it is complete): asked with their
   * count once they are written to the temp file, synced and read back, right before the rename; not asked when
   * no `file` is there (the rows are written). false: the temp files (the dataset's, a companion's) are removed
   * and `file` (and the companion's file) are left as they were, byte for byte; the write still returns the
   * row count. A writer killed (`kill -9`) before the rename leaves its temp file, which the next write of
   * `file` that commits removes (`removeDeadTemps`).
   */
  readonly replaceIf?: ((rows: number) => Effect.Effect<boolean>) | undefined
}

/** One row of a dataset file as read: its 0-based index and the parsed on-disk value. */
export interface RowRecord {
  readonly index: number
  /** 1-based line of the row (JSON Lines only). */
  readonly line?: number
  readonly value: unknown
  /** What the row's JSON Lines text says to Arrow that its value does not (`ReadRowsOptions.textFacts`). */
  readonly facts?: JsonTextFacts
  /**
   * Why the line is not a row (`readRows` with `keepUnparsable`: a JSON Lines line that is not JSON, or
   * not UTF-8, or a record nested deeper than skyrl reads, `MAX_JSON_DEPTH`);
   * `value` is then undefined.
   */
  readonly unparsable?: string
}

export interface ReadRowsOptions {
  /**
   * A JSON Lines line that is not JSON becomes a record with `unparsable` set and the rows after it are
   * read (`validate` reports it and goes on); without it, the stream fails there. A gzip-compressed file
   * fails either way.
   */
  readonly keepUnparsable?: boolean
  /** A JSON Lines row carries what its text says to Arrow that its value does not (`RowRecord.facts`). */
  readonly textFacts?: boolean
  /**
   * Called once for a .parquet file, before its rows, with the columns of skyrl's row skeleton that the file
   * types otherwise than skyrl writes them (./parquetTypes.ts: none, for skyrl's own files); never for JSON.
   */
  readonly columnTypes?: ((issues: ReadonlyArray<ColumnTypeIssue>) => void) | undefined
}

/**
 * Calls `f` on each line of `file`, read a few lines at a time (`readLines`: memory holds the lines in
 * flight, not the file, which may be larger than one string can be), then gives its size in bytes and
 * whether it ends without a line end (`endsOpen`: its last line an append may have cut short).
 */
export const forEachLine = (
  storage: StorageApi,
  file: string,
  f: (line: string) => void
): Effect.Effect<{ readonly size: number; readonly endsOpen: boolean }, StorageError> =>
  Effect.gen(function*() {
    const size = yield* storage.size(file)
    if (size === 0) return { size, endsOpen: false }
    yield* Stream.runForEachChunk(storage.readLines(file), (lines) =>
      Effect.sync(() => {
        for (const line of lines) f(line)
      }))
    return { size, endsOpen: (yield* storage.readSlice(file, size - 1, 1))[0] !== 0x0a }
  })

/** A file's version (`identity`): equal identities, the same file unchanged (as far as size and mtime tell). */
export interface FileIdentity {
  readonly size: number
  readonly mtimeMs: number
  readonly ino: number
}

export const sameIdentity = (a: FileIdentity, b: FileIdentity): boolean =>
  a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino

/** A lock file's holder (`lockHolder`). */
export interface LockHolder {
  readonly text: string
  readonly stale: boolean
}

export interface StorageApi {
  /**
   * A text file (UTF-8; a line that is not is given as its fault line, see src/skyrl/utf8.ts), without a
   * BOM at its start: a JSON file an editor saved with one (an inventory, `--servers-config`) reads as JSON.
   */
  readonly readText: (file: string) => Effect.Effect<string, StorageError>
  readonly readBytes: (file: string) => Effect.Effect<Uint8Array, StorageError>
  /** `length` bytes of a file from byte `offset` (fewer at its end). */
  readonly readSlice: (file: string, offset: number, length: number) => Effect.Effect<Uint8Array, StorageError>
  /** The file's length in bytes. */
  readonly size: (file: string) => Effect.Effect<number, StorageError>
  /**
   * What identifies a file's version (size, mtime, inode): a file rewritten or replaced (another renamed over
   * it) has another, so a reader that reads it twice can tell it changed in between.
   */
  readonly identity: (file: string) => Effect.Effect<FileIdentity, StorageError>
  /**
   * Who holds a lock file (its text: pid, host, command, since) and whether that process is gone (`stale`: same
   * host, pid not running); undefined when there is no such file.
   */
  readonly lockHolder: (file: string) => Effect.Effect<LockHolder | undefined, StorageError>
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
    rows: Iterable<WritableRow>,
    options?: WriteRowsOptions
  ) => Effect.Effect<number, StorageError>
  /**
   * `appendDurable` on a file kept open until the scope closes (created with its directory when missing):
   * for logs appended to many times, without a mkdir, open and close per append. `cutPartialLine`: a last line
   * without its line end (a piece of a line a crash cut short) is cut off first (the file truncated after its
   * last line end, synced), so that the next line starts a line of its own and no reader meets the piece again.
   */
  readonly openAppend: (
    file: string,
    options?: { readonly cutPartialLine?: boolean }
  ) => Effect.Effect<AppendHandle, StorageError, Scope.Scope>
  /** `writeRows` of rows made as a stream is consumed (memory bounded by a chunk of rows). A
   * stream that fails fails the write with its error, and an interruption stops it; either way `file` is
   * left as it was (the temp file is removed). */
  readonly writeRowStream: <E>(
    file: string,
    rows: Stream.Stream<WritableRow, E>,
    options?: WriteRowsOptions
  ) => Effect.Effect<number, StorageError | E>
  /**
   * `writeRowStream` of several datasets that belong together (split's train and val): each is written to a temp
   * file and checked, then `beforeCommit` runs (a failure there fails the write), then all are renamed over their
   * files in one uninterruptible step, so that a failure or an interruption before it leaves every file as it was
   * (the temp files removed) and never the new one beside the old other. A failure to rename one once another was
   * is the only way to get a mixed set. Returns the row count of each, in order.
   */
  readonly writeRowStreams: <E>(
    outputs: ReadonlyArray<{ readonly file: string; readonly rows: Stream.Stream<WritableRow, E> }>,
    options?: { readonly beforeCommit?: Effect.Effect<void, E> | undefined }
  ) => Effect.Effect<ReadonlyArray<number>, StorageError | E>
  /**
   * The lines of a text file, without their line ends (`\n`, `\r\n` or `\r`; a BOM at the start is
   * dropped; a line that is not UTF-8 is its fault line, see src/skyrl/utf8.ts), in chunks of many lines
   * (consume with `Stream.runForEachChunk` or the like).
   */
  readonly readLines: (file: string) => Stream.Stream<string, StorageError>
  /**
   * Streams the rows of a .json, .jsonl or .parquet dataset (memory bounded for .jsonl and .parquet).
   * Fails with an InputError naming the file (and the row, or line, where one is at fault).
   */
  readonly readRows: (file: string, options?: ReadRowsOptions) => Stream.Stream<RowRecord, InputError>
}

/** An open append-only file (`openAppend`). */
export interface AppendHandle {
  /** Appends text (or bytes) and flushes it to disk (fdatasync) before succeeding. */
  readonly append: (data: string | Uint8Array) => Effect.Effect<void, StorageError>
}

export class Storage extends Context.Tag("skyrl/Storage")<Storage, StorageApi>() {}

/**
 * A file-system error in words; one about another path than `file` (a directory level that could not be made
 * for it) names that path and the call (`no such file or directory (mkdir '/a/b')`).
 */
const reason = (e: unknown, file?: string): string => {
  const err = e as NodeJS.ErrnoException
  const elsewhere = typeof err?.path === "string" && file !== undefined && path.resolve(err.path) !== path.resolve(file)
    ? ` (${err.syscall ?? "at"} '${err.path}')`
    : ""
  if (err?.code === "ENOENT") return `no such file or directory${elsewhere}`
  if (err?.code === "EISDIR") return `is a directory, not a file${elsewhere}`
  if (err?.code === "EACCES") return `permission denied${elsewhere}`
  return err?.message ?? String(e)
}

const attempt = <A>(file: string, operation: string, f: () => Promise<A>): Effect.Effect<A, StorageError> =>
  Effect.tryPromise({ try: f, catch: (e) => new StorageError({ path: file, operation, reason: reason(e, file) }) })

/**
 * Makes `dir` and its missing parents one level at a time, not with Node's `fs.mkdir(dir, { recursive: true })`:
 * Node 20's never returns for a path under /proc (it retries the level whose mkdir fails with ENOENT forever, at
 * 100% CPU). Walks up to the first ancestor that is there (stat), which must be a directory, then makes each
 * missing level below it (EEXIST, another process's mkdir, is fine). A level that cannot be made fails as mkdir
 * does, with its code (ENOENT, EACCES, EROFS, ...) and a message naming that level; an ancestor that is a file is
 * ENOTDIR naming it. Returns the levels it made, top first.
 */
export const makeDirectories = async (dir: string): Promise<Array<string>> => {
  const missing: Array<string> = []
  let at = path.resolve(dir)
  for (;;) {
    const stat = await fs.stat(at).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return undefined
      throw e
    })
    if (stat !== undefined) {
      if (stat.isDirectory()) break
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${at}'`), {
        code: "ENOTDIR",
        syscall: "mkdir",
        path: at
      })
    }
    missing.push(at)
    const parent = path.dirname(at)
    if (parent === at) break
    at = parent
  }
  const made: Array<string> = []
  for (const level of missing.reverse()) {
    const ours = await fs.mkdir(level).then(() => true, (e: NodeJS.ErrnoException) => {
      if (e.code !== "EEXIST") throw e
      return false
    })
    if (ours) made.push(level)
  }
  return made
}

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

/** Bytes written to a file so far: their count and CRC-32 (compared with the file read back). */
export interface Written {
  readonly bytes: number
  readonly crc: number
}

/** What a `ByteSink` wrote, and the part of it already read back from the file (a prefix, after its sync). */
export interface SinkResult extends Written {
  readonly readBack: Written
}

const SINK_BUFFER = 1 << 20
const SYNC_EVERY = 64 << 20
/** Bytes written before the disk side moves to a worker thread (`SinkWorker`), when the target has an fd. */
const OFFLOAD_FROM = 8 << 20
/** Buffers the worker may hold before the writer waits (and spare ones kept for reuse). */
const WORKER_BUFFERS = 8

/** Where a `ByteSink` writes: appends, optionally a data sync and positioned reads (for the read-back). */
export interface SinkTarget {
  readonly write: (bytes: Uint8Array) => Promise<unknown>
  readonly datasync?: () => Promise<unknown>
  readonly read?: (buffer: Buffer, offset: number, length: number, position: number) => Promise<{ bytesRead: number }>
  /**
   * The file's descriptor, when `write`, `datasync` and `read` are those of this open file (appends at its
   * position): past `OFFLOAD_FROM` bytes, a worker thread does them on it instead (see ./sinkWorker.ts).
   */
  readonly fd?: number
}

export interface ByteSinkOptions {
  /** Bytes between two data syncs (default 64 MiB). */
  readonly syncEvery?: number
  /** Bytes written on this thread before the worker takes over (default 8 MiB; needs `SinkTarget.fd`). */
  readonly offloadFrom?: number
}

/**
 * Text written through two alternating byte buffers: one fills while the other is written to the file (on
 * libuv's threads), so encoding and the disk overlap. `write` never waits; `drained` waits until at most
 * one buffer is in flight (call it between batches), `finish` until everything is written.
 *
 * With `datasync` the file is flushed to disk every SYNC_EVERY bytes as it goes, and with `read` each
 * region so flushed is then read back from the file and its CRC-32 continued (`SinkResult.readBack`),
 * while the rows after it are still being made: the caller reads back only the rest after its final sync
 * (`readBackFrom`), and compares the whole with what was written.
 *
 * With the target's `fd`, once `offloadFrom` bytes are written the appends, their CRC-32, the syncs and the
 * read-backs move to a worker thread (./sinkWorker.ts: the same steps; each buffer's memory is moved there
 * and back), which
 * continues from the CRC and read-back this thread reached; the result is the same, except that the worker
 * also syncs and reads back the last region when it finishes (nothing is left to read back after). `close`
 * ends that worker when the sink is given up (call it before the file is closed).
 */
export class ByteSink {
  private buffer: Buffer = Buffer.allocUnsafe(SINK_BUFFER)
  private used = 0
  private inFlight: Promise<void> | undefined
  private failure: unknown
  private readonly encoded = new Map<string, Buffer>()
  /** Buffers whose write is done, ready to fill again. */
  private readonly spare: Array<Buffer> = []
  private crc = 0
  private bytes = 0
  private unsynced = 0
  private syncing: Promise<unknown> = Promise.resolve()
  /** The prefix of the file read back so far (after its sync), and the read-back in progress. */
  private readBack: Written = { bytes: 0, crc: 0 }
  private reading: Promise<void> = Promise.resolve()
  private readonly syncEvery: number
  private readonly offloadFrom: number
  /** The worker (once started), whether it said it is ready, and whether it has taken over. */
  private worker: SinkWorker | undefined
  private workerReady = false
  private offloaded = false
  /** Writes the worker has not done yet (by id), and a wake-up for `drained` when one is. */
  private readonly lent = new Set<number>()
  private nextId = 0
  private wake: (() => void) | undefined
  constructor(private readonly out: SinkTarget, options: ByteSinkOptions = {}) {
    this.syncEvery = options.syncEvery ?? SYNC_EVERY
    this.offloadFrom = options.offloadFrom ?? OFFLOAD_FROM
  }

  /** Writes a text that repeats (the same string again and again): from its encoded bytes, kept. */
  writeShared(text: string): void {
    let bytes = this.encoded.get(text)
    if (bytes === undefined) {
      bytes = Buffer.from(text, "utf8")
      if (this.encoded.size >= 64) this.encoded.clear()
      this.encoded.set(text, bytes)
    }
    if (this.used + bytes.length > SINK_BUFFER) {
      this.flush()
      if (bytes.length > SINK_BUFFER) return this.send(bytes, undefined)
    }
    this.buffer.set(bytes, this.used)
    this.used += bytes.length
  }

  write(text: string): void {
    if (this.used + text.length * 3 > SINK_BUFFER) {
      this.flush()
      if (text.length * 3 > SINK_BUFFER) return this.send(Buffer.from(text, "utf8"), undefined)
    }
    this.used += this.buffer.write(text, this.used, "utf8")
  }

  private flush(): void {
    if (this.used === 0) return
    const full = this.buffer
    const bytes = full.subarray(0, this.used)
    this.buffer = this.spare.pop() ?? Buffer.allocUnsafe(SINK_BUFFER)
    this.used = 0
    this.send(bytes, full)
  }

  /** Queues `bytes` after the writes before it; `owner` (the buffer they are in) is reused once written. */
  private send(bytes: Buffer, owner: Buffer | undefined): void {
    if (this.workerReady && !this.offloaded) this.handOver()
    if (this.offloaded) {
      const id = this.nextId++
      this.lent.add(id)
      // A buffer of this sink's moves to the worker (its own ArrayBuffer: allocUnsafe of 1 MiB is not pooled).
      return this.worker!.write(id, bytes, owner !== undefined)
    }
    this.crc = crc32(bytes, this.crc)
    this.bytes += bytes.length
    this.unsynced += bytes.length
    // Flushed to disk as it goes (on libuv's threads, while rows are made), so the final fsync is short.
    // (beside the writes, not between them: a write never waits for a sync).
    const sync = this.unsynced >= this.syncEvery ? this.out.datasync : undefined
    if (sync !== undefined) this.unsynced = 0
    const end = this.bytes
    this.inFlight = (this.inFlight ?? Promise.resolve()).then(async () => {
      // Every byte (a short write is followed by more), or an error saying why not (a full disk).
      await writeAll(this.out, bytes, end - bytes.length)
      if (sync !== undefined) {
        const synced = sync.call(this.out).then(() => this.readBackTo(end))
        this.syncing = Promise.all([this.syncing, synced.catch((e: unknown) => void (this.failure ??= e))])
      }
    }).then(
      () => void (owner !== undefined && this.spare.length < 2 && this.spare.push(owner)),
      (e) => void (this.failure ??= e)
    )
    if (this.worker === undefined && this.out.fd !== undefined && this.bytes >= this.offloadFrom) this.startWorker()
  }

  /** Starts the worker; this thread goes on writing until it is ready (a worker that fails to start: for good). */
  private startWorker(): void {
    const failedToStart = (e: unknown) => {
      if (!this.offloaded) this.workerReady = false
      else this.failure ??= e
      this.returned(-1, undefined)
    }
    try {
      this.worker = new SinkWorker(this.out.fd!, this.syncEvery, {
        ready: () => void (this.workerReady = true),
        done: (id, memory) => this.returned(id, memory),
        failed: failedToStart
      })
    } catch (e) {
      failedToStart(e)
    }
  }

  /**
   * The worker takes over: it starts from this thread's totals once this thread's writes, syncs and
   * read-backs are done (the writes from now on wait for that in the worker's queue).
   */
  private handOver(): void {
    this.offloaded = true
    const state = { bytes: this.bytes, crc: this.crc, unsynced: this.unsynced }
    this.worker!.start(
      Promise.all([this.inFlight, this.syncing, this.reading.catch(() => undefined)]).then(() => ({
        ...state,
        readBack: this.readBack
      }))
    )
  }

  /** The worker wrote buffer `id`: its memory (when it was moved there) may be filled again. */
  private returned(id: number, memory: ArrayBuffer | undefined): void {
    this.lent.delete(id)
    if (memory !== undefined && this.spare.length < WORKER_BUFFERS) this.spare.push(Buffer.from(memory))
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  /** Reads the file back up to `end` (its bytes before that are written and synced), in order. */
  private readBackTo(end: number): Promise<void> {
    const read = this.out.read
    if (read === undefined) return Promise.resolve()
    this.reading = this.reading.then(async () => {
      if (this.failure !== undefined) return
      this.readBack = await readBackFrom(read, this.readBack, end)
      if (this.readBack.bytes < end) {
        throw new Error(`the file read back ends at byte ${this.readBack.bytes}, before the ${end} bytes written`)
      }
    })
    return this.reading
  }

  /** Whether the worker thread writes the file now (see the class's comment). */
  get onWorker(): boolean {
    return this.offloaded
  }

  /**
   * Whether the writer must wait: no spare buffer is free while a write is in flight, or (on the worker) the
   * worker holds `WORKER_BUFFERS` already (a few MB of slack: a write held up by a sync does not stop the rows).
   */
  private waiting(): boolean {
    return this.offloaded
      ? this.lent.size >= WORKER_BUFFERS
      : this.spare.length === 0 && this.inFlight !== undefined
  }

  /** Whether `drained` has to wait (no spare buffer is free) or report a failure. */
  backlogged(): boolean {
    return this.waiting() || this.failure !== undefined
  }

  /** Waits while no spare buffer is free (the writes lag behind): the caller's backpressure. */
  async drained(): Promise<void> {
    if (!this.offloaded) {
      if (this.waiting()) await this.inFlight
    } else {
      while (this.waiting() && this.failure === undefined) await new Promise<void>((resolve) => (this.wake = resolve))
    }
    if (this.failure !== undefined) throw this.failure
  }

  async finish(): Promise<SinkResult> {
    this.flush()
    await this.inFlight
    await this.syncing
    await this.reading.catch((e: unknown) => void (this.failure ??= e))
    const offloaded = this.offloaded ? await this.worker!.finish() : undefined
    await this.close()
    if (this.offloaded && offloaded === undefined) {
      this.failure ??= new Error("the writer thread ended without a result")
    }
    if (this.failure !== undefined) throw this.failure
    return offloaded ?? { bytes: this.bytes, crc: this.crc, readBack: this.readBack }
  }

  /** Ends the worker, if one was started, once what it was given is written (idempotent). */
  close(): Promise<void> {
    if (this.worker === undefined) return Promise.resolve()
    return this.offloaded ? this.worker.close() : this.worker.stop()
  }
}

const READ_BACK_BUFFER = 1 << 20

/**
 * The length and CRC-32 of a file as it is on disk now, continued from `from` (a prefix already read back:
 * its length and CRC), up to `end` bytes or the end of the file.
 */
export const readBackFrom = async (
  read: NonNullable<SinkTarget["read"]>,
  from: Written = { bytes: 0, crc: 0 },
  end = Number.POSITIVE_INFINITY
): Promise<Written> => {
  const buffer = Buffer.allocUnsafe(READ_BACK_BUFFER)
  let { bytes, crc } = from
  while (bytes < end) {
    const { bytesRead } = await read(buffer, 0, Math.min(buffer.length, end - bytes), bytes)
    if (bytesRead === 0) break
    crc = crc32(buffer.subarray(0, bytesRead), crc)
    bytes += bytesRead
  }
  return { bytes, crc }
}

/**
 * Writes rows as .json or .jsonl through `sink` and returns the row count. `inspect` sees each encoded
 * row before it is serialized.
 */
export const writeJsonRowStream = <E>(
  sink: {
    readonly write: (text: string) => void
    readonly writeShared: (text: string) => void
    readonly drained: () => Promise<void>
    /** Whether `drained` has anything to wait for. */
    readonly backlogged: () => boolean
  },
  rows: Stream.Stream<WritableRow, E>,
  format: "json" | "jsonl",
  options: WriteRowsOptions
): Effect.Effect<number, E | StorageError> =>
  Effect.suspend(() => {
    let n = 0
    const indent = options.indent ?? 2
    const pad = " ".repeat(indent)
    const pieces = { text: (json: string) => sink.write(json), shared: (json: string) => sink.writeShared(json) }
    // A row already in its JSON text goes out as it is where nothing else is asked for it.
    const asText = format === "jsonl" && options.ascii !== true && options.inspect === undefined
    const write = (row: WritableRow): void => {
      if (asText && row instanceof RowJson) {
        sink.write(row.text)
        return sink.write("\n")
      }
      const encoded = encodedOf(row)
      options.inspect?.(encoded)
      if (format === "jsonl" && options.ascii !== true) {
        return writeEncodedRowJson(encoded, pieces, "\n")
      }
      if (format === "jsonl") return sink.write(encodedRowJson(encoded, options) + "\n")
      const text = toJsonText(encoded, { ...options, indent })
      // Indented by its line ends only: JSON.stringify leaves U+2028 / U+2029 raw in strings, and `^` with
      // the m flag would match after them too (two spaces inserted into a prompt or a plan's params).
      sink.write((n === 0 ? "" : ",") + (indent > 0 ? "\n" + pad + text.replaceAll("\n", "\n" + pad) : text))
    }
    if (format === "json") sink.write("[")
    return rows.pipe(
      Stream.runForEachChunk((chunk) =>
        Effect.suspend(() => {
          for (const row of chunk) {
            write(row)
            n++
          }
          // No wait (an asynchronous step) between batches while a buffer is free.
          return sink.backlogged() ? Effect.promise(() => sink.drained()) : Effect.void
        })
      ),
      Effect.zipRight(Effect.sync(() => {
        if (format === "json") sink.write(n === 0 ? "]\n" : indent > 0 ? "\n]\n" : "]\n")
        return n
      }))
    )
  })

/**
 * Writes rows as .json or .jsonl into an open (temp) file; returns the row count and the bytes written.
 * A write error rejects.
 */
export const writeJsonRows = async (
  handle: { readonly write: (bytes: Uint8Array) => Promise<unknown> },
  rows: Iterable<WritableRow>,
  format: "json" | "jsonl",
  options: WriteRowsOptions
): Promise<number> => {
  const sink = new ByteSink(handle)
  const n = await Effect.runPromise(writeJsonRowStream(sink, Stream.fromIterable(rows), format, options))
  await sink.finish()
  return n
}

/** A parse failure inside a dataset file, before it becomes an InputError. */
class RowReadFailure extends Error {
  constructor(readonly row: number | undefined, reason: string) {
    super(reason)
  }
}

/** Bytes read at a time when lines are streamed (the next read runs while these lines are used). */
const READ_BUFFER = 64 * 1024
/**
 * The same for `readLines` (a tasks file for `convert`): ~1,000 tasks, so that a read held up behind the
 * writes of the dataset on libuv's threads seldom makes the rows wait (64 KiB reads waited ~1 s in all for
 * 100,000 tasks on a busy machine, 512 KiB ones ~0.1-0.2 s). Datasets (`readRows`) keep the smaller reads:
 * a read holds ~70 rows of 7 KB here, whose parsed values would stay alive with it.
 */
const TEXT_READ_BUFFER = 512 * 1024
/**
 * Lines handed on at a time: few enough that the rows made from them are written and dropped while young
 * (they die in the young generation instead of being copied out of it).
 */
const LINE_BATCH = 16

/** A byte-order mark in UTF-8. */
const BOM = Buffer.from([0xef, 0xbb, 0xbf])

/** The lines of a text that ends with a line end. */
const splitLines = (text: string): Array<string> => {
  const lines = text.includes("\r") ? text.split(/\r\n|\n|\r/) : text.split("\n")
  lines.pop()
  return lines
}

/** The lines of a block of a file: `take(from, to)` gives lines `from` to `to` (excluded) as text. */
interface BlockLines {
  readonly length: number
  readonly take: (from: number, to: number) => Array<string>
}

/**
 * The lines of `bytes`, whole lines from byte `offset` of a file (`last`: the rest of the file, which may
 * end without a line end): decoded by `decodeUtf8` (a line that is not UTF-8 is its fault line), a BOM at
 * the file's start dropped. Bytes that are all UTF-8 (the usual case) are cut into lines first and each line
 * decoded when it is taken (`utf8Lines`): the same lines.
 */
const linesOf = (bytes: Buffer, offset: number, last = false): BlockLines => {
  if (isUtf8(bytes)) return utf8Lines(bytes, offset === 0 && bytes.subarray(0, 3).equals(BOM) ? BOM.length : 0)
  const decoded = decodeUtf8(bytes, offset)
  const text = offset === 0 ? withoutBom(decoded) : decoded
  const lines = last ? (text === "" ? [] : splitLines(text + "\n")) : splitLines(text)
  return { length: lines.length, take: (from, to) => lines.slice(from, to) }
}

/**
 * The lines of UTF-8 `bytes` from `start`, cut at `\n`, `\r\n` and a lone `\r`, a last line without a line end
 * kept, each decoded alone when taken (as Latin-1 when the bytes are ASCII). A read decoded whole was a string of
 * its size (512 KiB for a tasks file, allocated in pages of its own) kept alive by every line cut from it, and
 * lines decoded all at once outlived young-generation collections while the first ones were used.
 */
const utf8Lines = (bytes: Buffer, start: number): BlockLines => {
  const encoding = isAscii(bytes) ? "latin1" : "utf8"
  const bounds: Array<number> = [] // each line's first byte and the byte after its last
  let lf = bytes.indexOf(0x0a, start)
  let cr = bytes.indexOf(0x0d, start)
  for (let at = start; at < bytes.length;) {
    if (lf >= 0 && lf < at) lf = bytes.indexOf(0x0a, at)
    if (cr >= 0 && cr < at) cr = bytes.indexOf(0x0d, at)
    const end = lf < 0 ? (cr < 0 ? bytes.length : cr) : cr < 0 ? lf : Math.min(lf, cr)
    bounds.push(at, end)
    at = end === cr && bytes[end + 1] === 0x0a ? end + 2 : end + 1
  }
  const length = bounds.length / 2
  const take = (from: number, to: number) => {
    const lines: Array<string> = []
    for (let i = from; i < Math.min(to, length); i++) {
      lines.push(bytes.toString(encoding, bounds[2 * i], bounds[2 * i + 1]))
    }
    return lines
  }
  return { length, take }
}

/** The offset of the last line end (\n or \r) of `bytes`, or -1; a \r at the very end is not one. */
const lastLineEnd = (bytes: Buffer): number => {
  const end = bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length
  return end === 0 ? -1 : Math.max(bytes.lastIndexOf(0x0a, end - 1), bytes.lastIndexOf(0x0d, end - 1))
}

/**
 * The lines of a text file, a read buffer at a time (each yield is the complete lines of one or more
 * reads). Line ends: `\n`, `\r\n`, or a lone `\r` (as node:readline); a BOM at the start is dropped. Lines
 * are cut from the bytes, so a line that is not UTF-8 is known with its offset (`linesOf`).
 */
export async function* lineChunks(file: string, size = READ_BUFFER): AsyncGenerator<Array<string>> {
  const handle = await fs.open(file, "r")
  try {
    const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)] as const
    let which = 0
    let next: Promise<{ bytesRead: number }> = handle.read(buffers[0], 0, size, null)
    let rest: Array<Buffer> = [] // copies of the bytes of the line not ended yet
    let offset = 0 // of rest's first byte in the file
    for (;;) {
      const { bytesRead } = await next
      if (bytesRead === 0) {
        const lines = linesOf(Buffer.concat(rest), offset, true)
        if (lines.length > 0) yield lines.take(0, lines.length)
        return
      }
      const current = buffers[which].subarray(0, bytesRead)
      which = 1 - which
      // Read ahead into the other buffer while this one is decoded and its lines are used.
      next = handle.read(buffers[which], 0, size, null)
      const cut = lastLineEnd(current)
      // A \r held at the end of the rest ends its line when the read after it has no line end.
      const held = cut < 0 && rest.length > 0 && rest[rest.length - 1]!.at(-1) === 0x0d
      if (cut < 0 && !held) {
        rest.push(Buffer.from(current))
        continue
      }
      const block = Buffer.concat(held ? rest : [...rest, current.subarray(0, cut + 1)])
      const lines = linesOf(block, offset)
      offset += block.length
      rest = [Buffer.from(current.subarray(cut + 1))]
      for (let i = 0; i < lines.length; i += LINE_BATCH) yield lines.take(i, i + LINE_BATCH)
    }
  } finally {
    await handle.close()
  }
}

export const readTextLines = (file: string): Stream.Stream<string, StorageError> =>
  Stream.fromAsyncIterable(
    { [Symbol.asyncIterator]: () => lineChunks(file, TEXT_READ_BUFFER)[Symbol.asyncIterator]() },
    (e) => new StorageError({ path: file, operation: "read", reason: reason(e) })
  ).pipe(Stream.mapChunks((chunks) => Chunk.unsafeFromArray(Chunk.toReadonlyArray(chunks).flat())))

/** A text file as `StorageApi.readText` gives it: UTF-8 (faults marked), without a leading BOM. */
const readTextFile = async (file: string): Promise<string> => withoutBom(decodeUtf8(await fs.readFile(file)))

/** Where `jsonDatasetRows` stops at a line that is not a row. */
const STOP = Symbol("stop")

/**
 * The rows of a .json or .jsonl dataset, read by the records reader every command uses (`recordStream`,
 * src/skyrl/records.ts), so a file is read as `convert` and `verify` read it, whatever its extension: JSON Lines
 * (also in a .json file, and after a first line that is not JSON, such as a log line) streamed from its lines, a
 * JSON array or pretty-printed object parsed whole. A file without rows gives none (validate reports it). A line
 * that is not JSON (or not UTF-8) is a row saying why with `keep`; without it the stream fails there, naming the
 * row, after the rows before it.
 */
const jsonDatasetRows = (file: string, keep: boolean, textFacts: boolean): Stream.Stream<RowRecord, InputError> =>
  Stream.suspend(() => {
    const asInput = (e: unknown) => new InputError({ file, reason: reason(e) })
    const lines = Stream.fromAsyncIterable(
      { [Symbol.asyncIterator]: () => lineChunks(file)[Symbol.asyncIterator]() },
      asInput
    ).pipe(Stream.mapChunks((batches) => Chunk.unsafeFromArray(Chunk.toReadonlyArray(batches).flat())))
    const text = Effect.tryPromise({ try: () => readTextFile(file), catch: asInput })
    let failure: InputError | undefined
    return recordStream(file, lines, text, { emptyIsNone: true, textFacts }).pipe(
      Stream.mapChunks((chunk) => {
        const rows: Array<RowRecord | typeof STOP> = []
        for (const r of chunk) {
          if (r._tag === "Record") {
            const row: RowRecord = r.line === undefined
              ? { index: r.index, value: r.value }
              : { index: r.index, line: r.line, value: r.value }
            rows.push(r.facts === undefined ? row : { ...row, facts: r.facts })
          } else if (keep) {
            const at = r.line === undefined ? { index: r.index } : { index: r.index, line: r.line }
            rows.push({ ...at, value: undefined, unparsable: r.reason })
          } else {
            failure = new InputError({ file, row: r.index, reason: r.reason })
            rows.push(STOP)
            break
          }
        }
        return Chunk.unsafeFromArray(rows)
      }),
      Stream.takeWhile((r): r is RowRecord => r !== STOP),
      Stream.concat(Stream.suspend(() => failure === undefined ? Stream.empty : Stream.fail(failure)))
    )
  })

async function* parquetRows(file: string, columnTypes: ReadRowsOptions["columnTypes"]): AsyncGenerator<RowRecord> {
  // An empty file said "its metadata or a data page is damaged (... Offset is outside the bounds of the DataView)".
  if ((await fs.stat(file)).size === 0) throw new RowReadFailure(undefined, "not a Parquet file: it is empty")
  const { readParquetRows } = await import("./parquet.js")
  let index = 0
  try {
    for await (const value of readParquetRows(file, columnTypes)) yield { index: index++, value }
  } catch (e) {
    if (e instanceof RowReadFailure || (e as NodeJS.ErrnoException)?.code !== undefined) throw e
    // The reader's own TypeError or RangeError (`Cannot read properties of undefined (reading 'map')`) on bytes
    // that pass its first checks says nothing to the user: said as damaged, with the reader's words after it.
    const damaged = e instanceof TypeError || e instanceof RangeError
      ? `its metadata or a data page is damaged (the reader failed: ${(e as Error).message})`
      : (e as Error).message
    throw new RowReadFailure(index === 0 ? undefined : index, `not a readable Parquet file: ${damaged}`)
  }
}

export const readDatasetRows = (file: string, options?: ReadRowsOptions): Stream.Stream<RowRecord, InputError> => {
  const keep = options?.keepUnparsable === true
  const format = rowFormatOf(file)
  if (format === undefined) {
    return Stream.fail(
      new InputError({ file, reason: "unknown dataset format: use a .json, .jsonl or .parquet extension" })
    )
  }
  const toInputError = (e: unknown) =>
    e instanceof RowReadFailure
      ? new InputError({ file, ...(e.row === undefined ? {} : { row: e.row }), reason: e.message })
      : new InputError({ file, reason: reason(e) })
  // Rows in chunks of a read buffer's lines (a Stream element per row costs more than parsing it).
  if (format === "json" || format === "jsonl") return jsonDatasetRows(file, keep, options?.textFacts === true)
  return Stream.fromAsyncIterable(
    { [Symbol.asyncIterator]: () => parquetRows(file, options?.columnTypes)[Symbol.asyncIterator]() },
    toInputError
  )
}

/** PF_EXITING in /proc/PID/stat's flags: the process is being torn down (a `kill -9` just sent). */
const PF_EXITING = 0x4

/**
 * Whether a process is dying or dead but not yet reaped (Linux: state Z or X, or PF_EXITING), which a
 * signal 0 still reaches: a `--resume` right after a `kill -9` found the killed run's pid "in use".
 */
const isEnding = (pid: number): boolean => {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  } catch {
    return false // no procfs (macOS) or gone already: signal 0 decides
  }
  // "PID (COMM) STATE PPID PGRP SESSION TTY TPGID FLAGS ...": COMM may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return fields[0] === "Z" || fields[0] === "X" || (Number(fields[6]) & PF_EXITING) !== 0
}

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
  return !isEnding(pid)
}

/**
 * Who holds a lock file, and whether that process is gone (same host, pid not running); undefined when there is no
 * lock file. The one reader of lock files: `acquireLockFile` and `Storage.lockHolder`.
 */
const readLockHolder = (file: string): Promise<LockHolder | undefined> =>
  fs.readFile(file, "utf8").then(lockHolderOf, (e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined
    throw e
  })

/** A lock file's holder from its text (`readLockHolder`; the memory storage of the tests reads it so too). */
export const lockHolderOf = (text: string): LockHolder => {
  try {
    const owner = JSON.parse(text) as { pid?: unknown; host?: unknown }
    const stale = owner.host === hostname() && typeof owner.pid === "number" && !isRunning(owner.pid)
    return { text: text.trim(), stale }
  } catch {
    return { text: text.trim() === "" ? "(an unreadable lock file)" : text.trim(), stale: false }
  }
}

const createExclusive = async (file: string, text: string): Promise<boolean> => {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(file, "wx")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false
    throw e
  }
  try {
    await writeAll(handle, text)
    await handle.sync()
  } catch (e) {
    // Made but not written (a full disk, a file size limit): removed, or every later run found an empty lock it
    // could not read the holder of ("(an unreadable lock file)") and never took it over.
    await handle.close().catch(() => undefined)
    await fs.rm(file, { force: true })
    throw e
  }
  await handle.close()
  await syncDirectory(path.dirname(path.resolve(file)))
  return true
}

/**
 * Holds the lock file `file` for the scope, this process its owner (pid, host, `command` when given, when it was
 * taken), released when the scope closes: the one way runs, cassette stores and `verify --out` are locked.
 * `LockHeld` names a live holder; the lock of a process that is gone is taken over (`acquireLock`).
 */
export const holdLock = (
  storage: StorageApi,
  file: string,
  command?: string
): Effect.Effect<void, LockHeld | StorageError, Scope.Scope> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const since = new Date(now).toISOString()
    const owner = command === undefined
      ? { pid: process.pid, host: hostname(), since }
      : { pid: process.pid, host: hostname(), command, since }
    return Effect.acquireRelease(storage.acquireLock(file, owner), () => storage.releaseLock(file))
  })

const acquireLockFile = (
  file: string,
  owner: Readonly<Record<string, unknown>>
): Effect.Effect<void, LockHeld | StorageError> =>
  Effect.gen(function*() {
    const text = JSON.stringify(owner) + "\n"
    yield* attempt(file, "create directory for", () => makeDirectories(path.dirname(path.resolve(file))))
    for (let round = 0; round < 3; round++) {
      if (yield* attempt(file, "create lock", () => createExclusive(file, text))) return
      const holder = yield* attempt(file, "read lock", () => readLockHolder(file))
      if (holder === undefined) continue // released since the create failed: try again
      if (!holder.stale) return yield* new LockHeld({ path: file, holder: holder.text })
      // Left by a process that is gone (kill -9): move it aside (one taker wins the rename; the winner
      // removes it), then retry.
      const aside = `${file}.stale-${process.pid}-${randomBytes(3).toString("hex")}`
      yield* attempt(file, "take over stale lock", () =>
        fs.rename(file, aside).then(() =>
          fs.rm(aside, { force: true }), (e) => {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
            throw e
          }
        }))
    }
    return yield* new LockHeld({ path: file, holder: "another process (the lock kept changing hands)" })
  })

/** An open temp file and whether it was renamed over its target. */
type TempFile = { readonly tmp: string; readonly handle: fs.FileHandle; renamed: boolean }

/** A temp file beside `file`, removed when the scope closes unless it was renamed over `file`. */
const tempFileFor = (file: string) =>
  Effect.acquireRelease(
    attempt(file, "write", async () => {
      await makeDirectories(path.dirname(path.resolve(file)))
      const tmp = tempName(path.resolve(file))
      return { tmp, handle: await fs.open(tmp, "w+"), renamed: false }
    }),
    (t) =>
      Effect.promise(async () => {
        await t.handle.close().catch(() => undefined)
        if (!t.renamed) await fs.rm(t.tmp, { force: true }).catch(() => undefined)
      })
  )

/**
 * fsync and the read-back check (when the bytes are known: the file from its first byte to its end must be those
 * bytes; the prefix `written.readBack` was read back after an earlier sync). Interruptible: nothing is committed yet.
 */
const checkTemp = (
  file: string,
  t: TempFile,
  written: SinkResult | undefined
) =>
  attempt(file, "write", async () => {
    await t.handle.sync()
    if (written !== undefined) {
      const onDisk = await readBackFrom(positionedRead(t.handle), written.readBack)
      if (onDisk.bytes !== written.bytes || onDisk.crc !== written.crc) {
        throw new Error(
          `the file read back (${onDisk.bytes} bytes, CRC-32 ${onDisk.crc}) is not what was written ` +
            `(${written.bytes} bytes, CRC-32 ${written.crc})`
        )
      }
    }
  })

/** `checkTemp`, then the rename (`renameAllOrNone` of the one file). */
const commitTemp = (
  file: string,
  t: TempFile,
  written: SinkResult | undefined
) => Effect.zipRight(checkTemp(file, t, written), renameAllOrNone([{ file, t }]))

/** A checked temp file and the file it is to replace. */
type Staged = { readonly file: string; readonly t: TempFile }

/** Writes and syncs a `companion`'s temp file, for `renameAllOrNone` with the writer's own. */
const stageCompanion = (companion: NonNullable<WriteRowsOptions["companion"]>) =>
  Effect.flatMap(tempFileFor(companion.file), (t) =>
    Effect.as(
      attempt(companion.file, "write", async () => {
        await writeAll(t.handle, companion.text())
        await t.handle.sync()
      }),
      { file: companion.file, t }
    ))

/**
 * Commits a checked dataset temp file and then its companion's (convert's rows and rejects) with `renameAllOrNone`,
 * so that an interruption or a failed rename leaves both new or both as they were, never the new dataset beside the
 * old rejects file. Only when `confirmed` (`replaceConfirmed`) says so; otherwise neither is renamed (the scope
 * removes both).
 */
const commitPair = (
  file: string,
  t: TempFile,
  written: SinkResult | undefined,
  companion: Staged | undefined,
  confirmed: Effect.Effect<boolean> = Effect.succeed(true)
) =>
  Effect.zipRight(
    checkTemp(file, t, written),
    Effect.flatMap(confirmed, (replace) =>
      replace ? renameAllOrNone(companion === undefined ? [{ file, t }] : [{ file, t }, companion]) : Effect.void)
  )

/**
 * Renames each staged temp file over its file, in order, in one uninterruptible step, then syncs their directories
 * (uninterruptible: an interruption while a rename was in flight abandoned its promise, and the scope then removed
 * the temp files while the rename went on, which could commit a dataset without its rejects file).
 * When a rename fails, the files renamed before it are put back as they were (the old file from a hard link made
 * beside it just before its rename, `.NAME.PID.HEX.old`, or removed when there was none) and the error names the file
 * whose rename failed: the set is all new or all as it was. A hard link that cannot be made (a file system without
 * them) is a copy. Only a crash between two renames (SIGKILL, power) leaves the first ones new; their old files are
 * then in the `.old` links beside them, until the next write of the same file sweeps them (`removeDeadTemps`).
 */
const renameAllOrNone = (staged: ReadonlyArray<Staged>) =>
  Effect.uninterruptible(Effect.tryPromise({
    try: async () => {
      const done: Array<{ readonly file: string; readonly old: string | undefined }> = []
      for (const [i, { file, t }] of staged.entries()) {
        let old: string | undefined
        try {
          if (i < staged.length - 1) old = await keepOld(file)
          await t.handle.close()
          await fs.rename(t.tmp, file)
          t.renamed = true
        } catch (e) {
          if (old !== undefined) await fs.rm(old, { force: true }).catch(() => undefined)
          throw new RenameFailure(file, e, await putBack(done))
        }
        done.push({ file, old })
      }
      for (const dir of new Set(staged.map(({ file }) => path.dirname(path.resolve(file))))) {
        await syncDirectoryShared(dir)
      }
      for (const { old } of done) if (old !== undefined) await fs.rm(old, { force: true }).catch(() => undefined)
      for (const { file } of staged) await removeDeadTemps(file)
    },
    catch: (e) =>
      e instanceof RenameFailure
        ? new StorageError({ path: e.file, operation: "write", reason: reason(e.cause, e.file) + e.notPutBack })
        : new StorageError({ path: staged[0]?.file ?? "", operation: "write", reason: reason(e, staged[0]?.file) })
  }))

/** A rename (or the link before it) of `renameAllOrNone` that failed, and what could not be put back. */
class RenameFailure {
  constructor(readonly file: string, readonly cause: unknown, readonly notPutBack: string) {}
}

/** A hard link (or a copy) of `file` beside it, to put back; undefined when there is no `file`. */
const keepOld = async (file: string): Promise<string | undefined> => {
  const old = tempName(path.resolve(file)).replace(/\.tmp$/, ".old")
  try {
    await fs.link(file, old)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    await fs.copyFile(file, old, fs.constants.COPYFILE_EXCL)
  }
  return old
}

/**
 * Puts the files renamed by `renameAllOrNone` back as they were, last first; returns what could not be, for the error
 * ("" when all were).
 */
const putBack = async (done: ReadonlyArray<{ readonly file: string; readonly old: string | undefined }>) => {
  const left: Array<string> = []
  for (const { file, old } of [...done].reverse()) {
    try {
      if (old === undefined) await fs.rm(file, { force: true })
      else await fs.rename(old, file)
      await syncDirectoryShared(path.dirname(path.resolve(file)))
    } catch (e) {
      left.push(`${file} is the new one (${reason(e, file)}${old === undefined ? "" : `; the old one is ${old}`})`)
    }
  }
  return left.length === 0 ? "" : `; not put back: ${left.join("; ")}`
}

/**
 * `replaceIf`'s answer for `rows` rows written: asked only when `file` is there (no file there: true). A refusal
 * leaves the temp files to the scope, which removes them.
 */
const replaceConfirmed = (file: string, rows: number, replaceIf: WriteRowsOptions["replaceIf"]) =>
  replaceIf === undefined
    ? Effect.succeed(true)
    : Effect.flatMap(
      Effect.promise(() => fs.access(path.resolve(file)).then(() => true, () => false)),
      (there) => there ? replaceIf(rows) : Effect.succeed(true)
    )

/** Targets whose temp files left by dead processes were looked for (once per target and process). */
const tempsSwept = new Set<string>()

/**
 * Removes the temp files of `file` that a process killed in mid-write left (`.<name>.<pid>.<hex>.tmp` whose pid is
 * not running), and the old version `renameAllOrNone` kept of it when the process died between two renames
 * (`.<name>.<pid>.<hex>.old`): the next successful write of the same file sweeps them, as it replaces what they held.
 */
const removeDeadTemps = async (file: string): Promise<void> => {
  const target = path.resolve(file)
  if (tempsSwept.has(target)) return
  tempsSwept.add(target)
  const prefix = `.${path.basename(target)}.`
  await removeFilesOfDeadProcesses(
    path.dirname(target),
    (name) =>
      name.startsWith(prefix) && (name.endsWith(".tmp") || name.endsWith(".old"))
        ? name.slice(prefix.length).split(".", 1)[0]
        : undefined
  )
}

/**
 * Removes the files of `dir` that processes now gone left: `pidOf` gives a name's pid (as written in it), or
 * undefined for a name that is not such a file. Files of this process and of running ones are kept.
 */
const removeFilesOfDeadProcesses = async (
  dir: string,
  pidOf: (name: string) => string | undefined
): Promise<void> => {
  const names = await fs.readdir(dir).catch(() => [] as Array<string>)
  for (const name of names) {
    const written = pidOf(name)
    if (written === undefined || !/^[0-9]+$/.test(written)) continue
    const pid = Number(written)
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || isRunning(pid)) continue
    await fs.rm(path.join(dir, name), { force: true }).catch(() => undefined)
  }
}

const positionedRead = (handle: fs.FileHandle): NonNullable<SinkTarget["read"]> => (buffer, offset, length, position) =>
  handle.read(buffer, offset, length, position)

const readSlice = async (file: string, offset: number, length: number): Promise<Uint8Array> => {
  const handle = await fs.open(file, "r")
  try {
    const buffer = Buffer.allocUnsafe(length)
    let got = 0
    while (got < length) {
      const { bytesRead } = await handle.read(buffer, got, length - got, offset + got)
      if (bytesRead === 0) break
      got += bytesRead
    }
    return buffer.subarray(0, got)
  } finally {
    await handle.close()
  }
}

/** Opens `file` for appending, creating it (and its directory, whose new entry is synced) when missing. */
const openForAppend = async (file: string): Promise<fs.FileHandle> => {
  await makeDirectories(path.dirname(path.resolve(file)))
  const created = await fs.access(file).then(() => false, () => true)
  const handle = await fs.open(file, "a")
  if (created) await syncDirectory(path.dirname(path.resolve(file)))
  return handle
}

/**
 * Truncates `file` after its last line end (to nothing when it has none), synced; nothing when it ends with one
 * or is not there.
 */
const cutPartialLine = async (file: string): Promise<void> => {
  const handle = await fs.open(file, "r+").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined
    throw e
  })
  if (handle === undefined) return
  try {
    const { size } = await handle.stat()
    const chunk = Buffer.alloc(Math.min(size, 1 << 16))
    let end = size
    while (end > 0) {
      const start = Math.max(0, end - chunk.length)
      const { bytesRead } = await handle.read(chunk, 0, end - start, start)
      const at = chunk.subarray(0, bytesRead).lastIndexOf(0x0a)
      if (at !== -1) {
        end = start + at + 1
        break
      }
      end = start
    }
    if (end === size) return
    await handle.truncate(end)
    await handle.datasync()
  } finally {
    await handle.close()
  }
}

const openAppend = (
  file: string,
  options: { readonly cutPartialLine?: boolean } = {}
): Effect.Effect<AppendHandle, StorageError, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      attempt(file, "open for appending", async () => {
        if (options.cutPartialLine === true) await cutPartialLine(file)
        return openForAppend(file)
      }),
      (handle) => Effect.promise(() => handle.close().catch(() => undefined))
    ),
    (handle) => ({
      // Uninterruptible: a write that has started is finished (and synced) before its fiber stops, so a
      // later append never lands before it.
      append: (data) =>
        Effect.uninterruptible(attempt(file, "append to", async () => {
          await writeAll(handle, data)
          await handle.datasync()
        }))
    })
  )

/** The items of `iterable` until `signal` aborts (then the iteration throws). */
async function* untilAborted<A>(iterable: AsyncIterable<A>, signal: AbortSignal): AsyncGenerator<A> {
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(new Error("interrupted"))
    signal.addEventListener("abort", () => reject(new Error("interrupted")), { once: true })
  })
  aborted.catch(() => undefined)
  const items = iterable[Symbol.asyncIterator]()
  for (;;) {
    const next = await Promise.race([items.next(), aborted])
    if (next.done === true) return
    yield next.value
  }
}

const writeRowStreamLive = <E>(
  file: string,
  rows: Stream.Stream<WritableRow, E>,
  options: WriteRowsOptions = {}
): Effect.Effect<number, StorageError | E> => {
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
  return Effect.scoped(Effect.gen(function*() {
    const { n, t, written } = yield* stageRowStream(file, format, rows, options)
    const companion = options.companion === undefined ? undefined : yield* stageCompanion(options.companion)
    yield* commitPair(file, t, written, companion, replaceConfirmed(file, n, options.replaceIf))
    return n
  }))
}

/**
 * What a .parquet output leaves out: the fields its rows hold that skyrl's Parquet layout has no column for (a
 * column of the user's own), the first 8 by path with their row counts.
 */
const leftOutWarning = (file: string, leftOut: ReadonlyMap<string, number>): string => {
  const fields = [...leftOut].slice(0, 8).map(([at, rows]) => `${at} (${rows} row${rows === 1 ? "" : "s"})`)
  const more = leftOut.size > 8 ? ` and ${leftOut.size - 8} more` : ""
  return `${file}: ${leftOut.size} field${leftOut.size === 1 ? "" : "s"} the rows hold ${
    leftOut.size === 1 ? "is" : "are"
  } not written: skyrl's Parquet layout has no column for ${leftOut.size === 1 ? "it" : "them"}: ${
    fields.join(", ")
  }${more}; a .json or .jsonl output keeps every field as read`
}

/**
 * Writes the rows to a temp file beside `file` (removed when the scope closes unless renamed over it): its row count,
 * the temp file and, for .json and .jsonl, what was written (for `checkTemp`'s read-back).
 */
const stageRowStream = <E>(
  file: string,
  format: RowFormat,
  rows: Stream.Stream<WritableRow, E>,
  options: WriteRowsOptions
): Effect.Effect<
  { readonly n: number; readonly t: TempFile; readonly written: SinkResult | undefined },
  StorageError | E,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const t = yield* tempFileFor(file)
    if (format === "parquet") {
      const { writeParquetRows } = yield* Effect.promise(() => import("./parquet.js"))
      // The rows' own failure (an input error) is theirs, not a failure to write the file.
      let failed: { readonly error: E } | undefined
      const encoded = rows.pipe(
        Stream.tapError((error) => Effect.sync(() => (failed = { error }))),
        Stream.map((row) => {
          const e = encodedOf(row)
          options.inspect?.(e)
          return e
        })
      )
      // The signal ends the iteration when the write is interrupted: a `next` waiting for a row the
      // interrupted producer will never make must not hold the write (and its temp file) open.
      const { leftOut, n } = yield* Effect.flatMap(Stream.toAsyncIterableEffect(encoded), (iterable) =>
        Effect.tryPromise({
          try: (signal) =>
            writeParquetRows(t.handle, untilAborted(iterable, signal)),
          catch: (e): StorageError | E =>
            failed !== undefined
              ? failed.error
              : new StorageError({ path: file, operation: "write", reason: reason(e) })
        }))
      if (leftOut.size > 0) {
        yield* Effect.logWarning(leftOutWarning(file, leftOut))
      }
      return { n, t, written: undefined }
    }
    const sink = new ByteSink({
      write: (bytes) =>
        t.handle.write(bytes),
      datasync: () => t.handle.datasync(),
      read: positionedRead(t.handle),
      fd: t.handle.fd
    })
    // Before the temp file is closed (finalizers run last first): no write of the sink's may outlive it.
    yield* Effect.addFinalizer(() => Effect.promise(() => sink.close()))
    const n = yield* writeJsonRowStream(sink, rows, format, options).pipe(
      Effect.catchAllDefect((e) => new StorageError({ path: file, operation: "write", reason: reason(e) }))
    )
    const written = yield* attempt(file, "write", () => {
      const finished = sink.finish()
      options.whileFinishing?.()
      return finished
    })
    return { n, t, written }
  })

/** `writeRowStreams`: every output staged and checked, `beforeCommit`, then every rename, all or none (`renameAllOrNone`). */
const writeRowStreamsLive = <E>(
  outputs: ReadonlyArray<{ readonly file: string; readonly rows: Stream.Stream<WritableRow, E> }>,
  options: { readonly beforeCommit?: Effect.Effect<void, E> | undefined } = {}
): Effect.Effect<ReadonlyArray<number>, StorageError | E> =>
  Effect.scoped(Effect.gen(function*() {
    const staged: Array<Staged & { readonly n: number }> = []
    for (const { file, rows } of outputs) {
      const format = rowFormatOf(file)
      if (format === undefined) {
        return yield* new StorageError({
          path: file,
          operation: "write",
          reason: "unknown dataset format: use a .json, .jsonl or .parquet extension"
        })
      }
      const { n, t, written } = yield* stageRowStream(file, format, rows, {})
      yield* checkTemp(file, t, written)
      staged.push({ file, n, t })
    }
    if (options.beforeCommit !== undefined) yield* options.beforeCommit
    yield* renameAllOrNone(staged)
    return staged.map(({ n }) => n)
  }))

export const StorageLive: Layer.Layer<Storage> = Layer.succeed(Storage, {
  readText: (file) => attempt(file, "read", () => readTextFile(file)),
  readBytes: (file) => attempt(file, "read", () => fs.readFile(file)),
  readSlice: (file, offset, length) => attempt(file, "read", () => readSlice(file, offset, length)),
  size: (file) => attempt(file, "read", () => fs.stat(file).then((s) => s.size)),
  identity: (file) =>
    attempt(file, "read", () => fs.stat(file).then((s) => ({ size: s.size, mtimeMs: s.mtimeMs, ino: s.ino }))),
  lockHolder: (file) => attempt(file, "read lock", () => readLockHolder(file)),
  exists: (file) => Effect.promise(() => fs.access(file).then(() => true, () => false)),
  makeDirectory: (dir) => attempt(dir, "create directory", () => makeDirectories(dir).then(() => undefined)),
  readDirectory: (dir) => attempt(dir, "list", () => fs.readdir(dir).then((names) => names.sort())),
  writeFileAtomic: (file, data) =>
    Effect.scoped(
      Effect.flatMap(tempFileFor(file), (t) =>
        Effect.zipRight(
          attempt(file, "write", () => writeAll(t.handle, data)),
          commitTemp(file, t, undefined)
        ))
    ),
  appendDurable: (file, text) =>
    attempt(file, "append to", async () => {
      const handle = await openForAppend(file)
      try {
        await writeAll(handle, text)
        await handle.sync()
      } finally {
        await handle.close()
      }
    }),
  acquireLock: acquireLockFile,
  releaseLock: (file) => Effect.promise(() => fs.rm(file, { force: true })),
  openAppend,
  writeRows: (file, rows, options = {}) => {
    return writeRowStreamLive(file, Stream.fromIterable(rows), options)
  },
  writeRowStream: (file, rows, options) => writeRowStreamLive(file, rows, options),
  writeRowStreams: writeRowStreamsLive,
  readLines: readTextLines,
  readRows: readDatasetRows
})
