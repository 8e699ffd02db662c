/**
 * An append-only file written with group commit, on an append handle kept open (`Storage.openAppend`,
 * opened on the first write): lines appended while a write is in flight go out together in the next
 * write (one write + fdatasync for many lines). The one group-commit writer of the project: run
 * journals and cost ledgers, the model-call archive, cassettes and verify journals all append through it.
 *
 * `enqueue(text)` puts the text in the file's order at once (so a caller's critical section fixes the
 * order of its lines) and returns the wait for it to be on disk; `append(text, { wait: true })` is both.
 * Writes go one at a time: a wait with no write in flight writes everything pending itself; the waits that
 * come while one is in flight park (no lock: a callback each) and, when it ends, are done or fail with it,
 * or try again (the first to try writes what came meanwhile). Without `wait`, `append` returns at once and
 * a background writer (in the caller's scope) writes the text after a short window (`windowMs`, default
 * 50 ms, so that one flush carries many lines; again after each write while lines keep coming); `flush`
 * waits for everything appended so far. A write failure is kept: the waiters of its batch and of every
 * later line, and `flush`, fail with it, and nothing more is written to the file (a failed write may have
 * left part of its text); a wait for lines an earlier write put on disk succeeds. `torn`: the file ends
 * in the middle of a line (a crash), so the first write starts a new line. The scope's finalizer flushes
 * what is left.
 *
 * A fiber interrupted while it waits, or before its batch's write started, leaves the lines to the next
 * write or the final flush; a write that has started finishes (the live handle's append is
 * uninterruptible), and its failure is kept even when its fiber is interrupted.
 */
import type { Schema } from "effect"
import { Cause, Effect, ExecutionStrategy, Exit, Option } from "effect"
import * as Scope from "effect/Scope"
import type { StorageError } from "../domain/errors.js"
import type { SkippedLine } from "../skyrl/jsonLines.js"
import { jsonLinesDecoder } from "../skyrl/jsonLines.js"
import type { AppendHandle } from "./Storage.js"
import { forEachLine, Storage } from "./Storage.js"

/** What reading a log found besides its entries. */
export interface LogRead {
  /** Lines that are not entries, a torn last line aside (see `named` for the first of them). */
  readonly skipped: number
  /** The first NAMED_LINES of the skipped lines, with why. */
  readonly named: ReadonlyArray<SkippedLine>
  /** The file ends without a newline. */
  readonly torn: boolean
  /** It ends in a line that is not an entry: a piece of a line a crash cut short (`DurableLogOptions.fragment`). */
  readonly fragment: boolean
}

/** How a log read ends (`LogRead`), as `makeDurableLog` takes it to append after it. */
export type LogTail = Pick<LogRead, "torn" | "fragment">

/** A log that is not there, or ends with a line end. */
export const WHOLE: LogTail = { torn: false, fragment: false }

export const tailOf = (read: LogRead): LogTail => ({ torn: read.torn, fragment: read.fragment })

/**
 * Reads a log written here a few lines at a time, by the rules of src/skyrl/jsonLines.ts,
 * handing each entry to `f`: memory holds what `f` keeps, not the file (which may be larger than one
 * string can be). A file that is not there has no entries. `torn`: it ends without a newline.
 */
export const readLogEntries = <A, I>(
  file: string,
  schema: Schema.Schema<A, I>,
  f: (entry: A) => void
): Effect.Effect<LogRead, StorageError, Storage> =>
  Effect.gen(function*() {
    const storage = yield* Storage
    if (!(yield* storage.exists(file))) return { skipped: 0, named: [], ...WHOLE }
    const decoder = jsonLinesDecoder(schema)
    const { endsOpen } = yield* forEachLine(storage, file, (line) => {
      const entry = decoder.line(line)
      if (entry !== undefined) f(entry)
    })
    return {
      skipped: decoder.skipped(endsOpen),
      named: decoder.named(endsOpen),
      torn: endsOpen,
      fragment: decoder.fragment(endsOpen)
    }
  })

/**
 * Says on stderr which lines of a log `readLogEntries` skipped (a torn last line aside: a crash's, not
 * damage), with why, and what becomes of what they held (`outcome`); nothing when it skipped none. The one
 * wording of the journals' readers (`generate`/`enrich --resume`, `verify --resume`).
 */
export const warnSkippedLines = (file: string, read: LogRead, outcome: string): Effect.Effect<void> =>
  read.skipped === 0 ? Effect.void : Effect.logWarning(
    `${file}: ${read.skipped} line(s) are not readable, skipped (${
      read.named.map((n) => `line ${n.line}: ${n.reason}`).join("; ")
    }${read.skipped > read.named.length ? "; ..." : ""}): ${outcome}`
  )

export interface DurableLog {
  readonly file: string
  readonly append: (text: string, options?: { readonly wait?: boolean }) => Effect.Effect<void, StorageError>
  /** Puts `text` in the file's order now; returns the wait for it to be on disk. */
  readonly enqueue: (text: string) => Effect.Effect<Effect.Effect<void, StorageError>>
  /**
   * `enqueue` as a plain function, for a caller that must do something in the same synchronous step (note
   * where its bytes start): queues `data` when called and returns the wait.
   */
  readonly queue: (data: string | Uint8Array) => Effect.Effect<void, StorageError>
  /**
   * `append(text)` without `wait`, done when called (no Effect per line): queues `text` for the background
   * writer and returns what starts that writer when it is not running (`Effect.void` when it is): run it.
   */
  readonly appendNow: (text: string) => Effect.Effect<void>
  readonly flush: Effect.Effect<void, StorageError>
  /** Texts appended that are not on disk yet (queued, or in a write that has not finished). */
  readonly unwritten: Effect.Effect<number>
}

export interface DurableLogOptions {
  /** The file ends in the middle of a line: the first write starts with a line end. */
  readonly torn?: boolean
  /**
   * That last line is a piece of a line a crash cut short (no entry: `LogRead.fragment`): it is cut off when the
   * file is first opened, instead of staying as a line of its own that every later reader would skip and name.
   */
  readonly fragment?: boolean
  /** Waited for before the file is first opened (e.g. the old file being emptied for a fresh run). */
  readonly ready?: Effect.Effect<void, StorageError>
}

/** What one write takes: the bytes of `count` texts. */
interface Batch {
  readonly bytes: Uint8Array
  readonly count: number
}

const NEW_LINE = Buffer.from("\n")

/** A batch this small is copied out of the pending buffer (`Buffer.from` takes it from Node's pool), not handed over. */
const SMALL_BATCH = Buffer.poolSize >>> 1

/**
 * The texts waiting for a write, kept as their UTF-8 bytes in a buffer outside the JS heap. A line waits for
 * the window and then for its write and sync: in a busy run (`verify`: thousands of rows a second, a
 * young-generation collection every ~50 ms) longer than a collection cycle, so kept as strings the lines and
 * their joined batch were copied by the collector, then promoted to the old generation, for every line.
 */
class PendingBytes {
  private buffer: Buffer
  private length = 0
  count = 0
  constructor(private readonly initial = 16 * 1024) {
    this.buffer = Buffer.allocUnsafe(initial)
  }

  add(data: string | Uint8Array): void {
    const room = this.buffer.length - this.length
    const most = typeof data === "string" ? data.length * 3 : data.length
    if (most > room) {
      const need = typeof data === "string" ? Buffer.byteLength(data, "utf8") : data.length
      if (need > room) this.grow(this.length + need)
    }
    if (typeof data === "string") this.length += this.buffer.write(data, this.length, "utf8")
    else {
      this.buffer.set(data, this.length)
      this.length += data.length
    }
    this.count++
  }

  /**
   * Everything pending: a small batch copied out (from Node's shared pool: no allocation of its own), a
   * larger one handed over (the next texts go to a new buffer about as large).
   */
  take(): Batch {
    const pending = this.buffer.subarray(0, this.length)
    const small = this.length <= SMALL_BATCH
    const batch = { bytes: small ? Buffer.from(pending) : pending, count: this.count }
    if (!small) this.buffer = Buffer.allocUnsafe(Math.max(this.initial, this.length + (this.length >> 2)))
    this.length = 0
    this.count = 0
    return batch
  }

  /** A batch whose write never started, back before what came since. */
  putBack(batch: Batch): void {
    const since = this.buffer.subarray(0, this.length)
    const count = this.count
    this.buffer = Buffer.allocUnsafe(Math.max(this.initial, batch.bytes.length + since.length))
    this.length = 0
    this.add(batch.bytes)
    this.add(since)
    this.count = batch.count + count
  }

  private grow(atLeast: number): void {
    const next = Buffer.allocUnsafe(Math.max(atLeast, this.buffer.length * 2))
    this.buffer.copy(next, 0, 0, this.length)
    this.buffer = next
  }
}

export const makeDurableLog = (
  file: string,
  windowMs = 50,
  options: DurableLogOptions = {}
): Effect.Effect<DurableLog, never, Storage | Scope.Scope> =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const scope = yield* Effect.scope
    // The handle lives in a child scope made now, so it closes after the final flush below (finalizers run
    // in reverse order).
    const handleScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
    let handle: AppendHandle | undefined
    const pending = new PendingBytes()
    let unwritten = 0
    // Texts pushed, and texts on disk: writes go in push order, so the first `written` texts are on disk.
    let pushed = 0
    let written = 0
    let failure: StorageError | undefined
    let scheduled = false
    // A write is in flight (the lock: one write at a time).
    let writing = false
    let startNewLine = options.torn === true && options.fragment !== true
    // Waits parked while a write is in flight, each resumed when it ends: done, failed, or to try again.
    let waiters: Array<{ readonly upTo: number; readonly resume: (next: Effect.Effect<void, StorageError>) => void }> =
      []
    const opened = Effect.suspend(() =>
      handle !== undefined
        ? Effect.succeed(handle)
        : Effect.zipRight(
          options.ready ?? Effect.void,
          Effect.tap(
            Scope.extend(storage.openAppend(file, { cutPartialLine: options.fragment === true }), handleScope),
            (h) => Effect.sync(() => (handle = h))
          )
        )
    )
    /**
     * The wait for the first `upTo` texts to be on disk: done when a write already put them there (even if a
     * later write failed); else, when no write is in flight, this fiber writes everything pending; else it
     * parks until the write in flight ends, and then is done, fails with it, or tries again (the first to try
     * writes what came meanwhile, for all of them). Whatever ends a write, interruption included, is
     * settled: a batch interrupted before its write started goes back to the front of `pending` (the next
     * write or the final flush carries it); a write that failed (part of it may be in the file) is kept as
     * the log's failure, interruption or not, so nothing is appended after a cut record and every later wait
     * fails.
     */
    const writeBatch = (upTo: number): Effect.Effect<void, StorageError> =>
      Effect.suspend(() => {
        if (upTo <= written) return Effect.void
        if (failure !== undefined) return Effect.fail(failure)
        if (writing) return Effect.async<void, StorageError>((resume) => void waiters.push({ upTo, resume }))
        if (pending.count === 0) return Effect.void
        writing = true
        const batch = pending.take()
        let started = false
        const bytes = startNewLine ? Buffer.concat([NEW_LINE, batch.bytes]) : batch.bytes
        return Effect.flatMap(opened, (h) => Effect.suspend(() => ((started = true), h.append(bytes)))).pipe(
          Effect.onExit((exit) => Effect.sync(() => settle(exit, batch, started)))
        )
      })
    const settle = (exit: Exit.Exit<void, StorageError>, batch: Batch, started: boolean) => {
      writing = false
      if (Exit.isSuccess(exit)) {
        startNewLine = false
        unwritten -= batch.count
        written += batch.count
      } else {
        const error = Option.getOrUndefined(Cause.failureOption(exit.cause))
        if (error === undefined && !started) pending.putBack(batch)
        else {
          // Interrupted once the write started: the live append is uninterruptible, so it finished what it began.
          if (error !== undefined) failure ??= error
          else {
            startNewLine = false
            written += batch.count
          }
          unwritten -= batch.count
        }
      }
      const parked = waiters
      waiters = []
      for (const w of parked) {
        w.resume(
          w.upTo <= written ? Effect.void : failure !== undefined ? Effect.fail(failure) : writeBatch(w.upTo)
        )
      }
    }
    // One window before each background write, so that a steady stream of lines is written in batches.
    const drain = Effect.gen(function*() {
      while (pending.count > 0 && failure === undefined) {
        yield* Effect.sleep(windowMs)
        yield* Effect.ignore(writeBatch(pushed))
      }
      scheduled = false
    })
    const kick = Effect.suspend(() => {
      if (scheduled) return Effect.void
      scheduled = true
      return Effect.asVoid(Effect.forkIn(drain, scope))
    })
    /** Queues `data`; returns how many texts are queued so far (with it). */
    const add = (data: string | Uint8Array) => {
      pending.add(data)
      unwritten++
      return ++pushed
    }
    /** Queues `data`; returns the wait for it (and everything before it) to be on disk. */
    const push = (data: string | Uint8Array) => writeBatch(add(data))
    /** Queues `text` for the background writer; returns what starts that writer when it is not running. */
    const appendNow = (text: string) => {
      add(text)
      return scheduled ? Effect.void : kick
    }
    const flush = Effect.suspend(() => writeBatch(pushed))
    yield* Effect.addFinalizer(() =>
      Effect.catchAll(flush, (e) => Effect.logError(`${file}: the last lines could not be written: ${e.message}`))
    )
    return {
      file,
      append: (text, options) => Effect.suspend(() => options?.wait === true ? push(text) : appendNow(text)),
      enqueue: (text) => Effect.sync(() => push(text)),
      queue: push,
      appendNow,
      flush,
      unwritten: Effect.sync(() => unwritten)
    }
  })
