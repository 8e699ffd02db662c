/**
 * An append-only file written with group commit, on an append handle kept open (`Storage.openAppend`,
 * opened on the first write): lines appended while a write is in flight go out together in the next
 * write (one write + fdatasync for many lines).
 *
 * `append(text, { wait: true })` returns once the text is on disk. Without `wait` it returns at once and
 * a background writer (in the caller's scope) writes it after a short window (`windowMs`, default 50 ms,
 * so that one flush carries many lines; again after each write while lines keep coming); `flush` waits
 * for everything appended so far. A write failure is kept and reported by the next `append` with `wait`
 * or by `flush`. The scope's finalizer flushes what is left.
 */
import { Effect, ExecutionStrategy } from "effect"
import * as Scope from "effect/Scope"
import type { StorageError } from "../domain/errors.js"
import type { AppendHandle } from "./Storage.js"
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
    // The handle lives in a child scope made now, so it closes after the final flush below (finalizers run
    // in reverse order).
    const handleScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
    const lock = yield* Effect.makeSemaphore(1)
    let handle: AppendHandle | undefined
    let pending: Array<string> = []
    let failure: StorageError | undefined
    let scheduled = false
    const opened = Effect.suspend(() =>
      handle !== undefined
        ? Effect.succeed(handle)
        : Effect.tap(Scope.extend(storage.openAppend(file), handleScope), (h) => Effect.sync(() => (handle = h)))
    )
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
          return Effect.flatMap(opened, (h) => h.append(text)).pipe(
            Effect.tapError((e) => Effect.sync(() => (failure = e)))
          )
        })
      )
    )
    // One window before each background write, so that a steady stream of lines is written in batches.
    const drain = Effect.gen(function*() {
      while (pending.length > 0 && failure === undefined) {
        yield* Effect.sleep(windowMs)
        yield* Effect.ignore(writeBatch)
      }
      scheduled = false
    })
    const kick = Effect.suspend(() => {
      if (scheduled) return Effect.void
      scheduled = true
      return Effect.asVoid(Effect.forkIn(drain, scope))
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
          return options?.wait === true ? writeBatch : scheduled ? Effect.void : kick
        }),
      flush
    }
  })
