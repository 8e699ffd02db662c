/**
 * An append-only file written with group commit, on top of `Storage.appendDurable`: lines appended
 * while a write is in flight go out together in the next write (one fsync for many lines).
 *
 * `append(text, { wait: true })` returns once the text is on disk (fsynced). Without `wait` it returns
 * at once and a background writer (in the caller's scope) writes it after a short window (`windowMs`,
 * default 50 ms, so that one fsync carries many lines); `flush` waits for everything appended so far.
 * A write failure is kept and reported by the next `append` with `wait` or by `flush`. The scope's
 * finalizer flushes what is left.
 */
import { Effect } from "effect"
import type * as Scope from "effect/Scope"
import type { StorageError } from "../domain/errors.js"
import { Storage } from "./Storage.js"

export interface DurableLog {
  readonly file: string
  readonly append: (text: string, options?: { readonly wait?: boolean }) => Effect.Effect<void, StorageError>
  readonly flush: Effect.Effect<void, StorageError>
}

export const makeDurableLog = (
  file: string,
  windowMs = 50
): Effect.Effect<DurableLog, never, Storage | Scope.Scope> =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const scope = yield* Effect.scope
    const lock = yield* Effect.makeSemaphore(1)
    let pending: Array<string> = []
    let failure: StorageError | undefined
    let scheduled = false
    /**
     * Writes what is pending (everything appended before the lock was taken is on disk after it).
     * Uninterruptible: a batch taken from `pending` is always written.
     */
    const writeBatch = Effect.uninterruptible(
      lock.withPermits(1)(
        Effect.suspend(() => {
          if (failure !== undefined) return Effect.fail(failure)
          if (pending.length === 0) return Effect.void
          const text = pending.join("")
          pending = []
          return storage.appendDurable(file, text).pipe(Effect.tapError((e) => Effect.sync(() => (failure = e))))
        })
      )
    )
    const drain = Effect.gen(function*() {
      while (pending.length > 0 && failure === undefined) yield* Effect.ignore(writeBatch)
      scheduled = false
    })
    const kick = Effect.suspend(() => {
      if (scheduled) return Effect.void
      scheduled = true
      return Effect.asVoid(Effect.forkIn(Effect.zipRight(Effect.sleep(windowMs), drain), scope))
    })
    const flush = writeBatch
    yield* Effect.addFinalizer(() =>
      Effect.catchAll(flush, (e) => Effect.logError(`${file}: the last lines could not be written: ${e.message}`))
    )
    return {
      file,
      append: (text, options) =>
        Effect.suspend(() => {
          pending.push(text)
          return options?.wait === true ? writeBatch : kick
        }),
      flush
    }
  })
