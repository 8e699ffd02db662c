/**
 * The lock on a dataset `--out`: `<out>.lock` (pid, host, command, since), held by every command that writes a
 * dataset there (`generate`, `enrich`, `verify`, `batch collect`, `convert`, `rebuild`, `split`) from before its first
 * model call or server start to its last write. A second writer of the same `--out`, whichever command, fails
 * at once (`OutputInUse`, exit 1) having asked nothing; the lock of a process that is gone (`kill -9`) is taken
 * over (`holdLock`), so `--resume` after a crash goes on. Before 2026-12-04 (evening) `verify` held
 * `<out>.verify.lock` and `batch collect`, `convert` and `rebuild` none, so they met neither each other nor a
 * `generate`: the last to finish replaced the other's rows (and rejects) without a word. A `<out>.verify.lock`
 * an older version left is not read: it is no lock of this one's.
 */
import { Effect, Schema } from "effect"
import { holdLock, Storage } from "../services/Storage.js"

/** The lock file of a dataset `--out`. */
export const outputLockOf = (out: string) => `${out}.lock`

/** The commands that write a dataset `--out` (the holder's `command`). */
export type OutputWriter = "generate" | "enrich" | "verify" | "batch collect" | "convert" | "rebuild" | "split"

/**
 * Another live skyrl process is writing this `--out` (it holds `outputLockOf(out)`; `holder` is its lock's text:
 * pid, host, command): nothing was asked of a model, no server started, nothing written (exit 1).
 */
export class OutputInUse extends Schema.TaggedError<OutputInUse>()("OutputInUse", {
  out: Schema.String,
  holder: Schema.String
}) {
  override get message(): string {
    return `${this.out} is being written by another skyrl run (${this.holder}); one command writes an --out (and ` +
      "its rejects) at a time (two would each do all the work, and the last to finish replace the other's rows): " +
      `wait for it to finish or give another --out (if no such process runs, delete ${outputLockOf(this.out)})`
  }
}

/**
 * Holds `--out`'s lock for the scope, this process its holder as `command`: `OutputInUse` naming the holder when
 * another live process holds it; a dead one's is taken over.
 */
export const lockOutput = (out: string, command: OutputWriter) =>
  Effect.flatMap(Storage, (storage) =>
    holdLock(storage, outputLockOf(out), command).pipe(
      Effect.catchTag("LockHeld", (e) => new OutputInUse({ out, holder: e.holder }))
    ))
