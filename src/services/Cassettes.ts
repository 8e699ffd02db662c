/**
 * Cassettes: the tool-result store `skyrl verify` writes (format in src/skyrl/cassettes.ts). One
 * `cassettes.jsonl` per directory, appended with group commit (./durableLog.ts), one line per distinct
 * key: a call whose key is already stored (this run or an earlier one) is not written again, unless the
 * stored result is a tool error and this one is not (readers keep that later line: `cassetteReader`).
 *
 * One process writes a store at a time: opening takes the store's lock file (`cassettes.jsonl.lock`, by
 * `Storage.acquireLock`, the run directory's mechanism: a live holder makes the open fail with
 * `CassettesLocked`, a lock left by a process that is gone is taken over) and the scope's end releases it,
 * however the run ends. Two writers would each read the keys before the other's lines and append the
 * same keys. Readers (`cassettes stats`, MCPToolEnv) take no lock.
 *
 * Opening reads the keys already there, a few lines at a time (memory holds the keys, not the file, which
 * may be larger than one string can be); a torn last line (a crash in mid-write) is cut off before the first
 * new entry is written, so the next line starts on a line of its own.
 */
import { Context, Effect, Layer, Schema } from "effect"
import * as path from "node:path"
import type { StorageError } from "../domain/errors.js"
import { plural } from "../domain/words.js"
import type { CassetteEntry } from "../skyrl/cassettes.js"
import { admit, CASSETTE_FILE, cassetteLine, cassetteReader, isErrorEntry, resultDigest } from "../skyrl/cassettes.js"
import { makeDurableLog } from "./durableLog.js"
import type { StorageApi } from "./Storage.js"
import { forEachLine, holdLock, Storage } from "./Storage.js"

export interface CassettesApi {
  /** The cassette file (`DIR/cassettes.jsonl`). */
  readonly file: string
  /**
   * Stores a result unless its key is already stored; true when it was new. With `wait`, returns once
   * the line is on disk; otherwise it is written within one fsync's time (see `flush`).
   */
  readonly record: (entry: CassetteEntry, options?: { readonly wait?: boolean }) => Effect.Effect<boolean, StorageError>
  /**
   * `record(entry)` without `wait`, done when called (no Effect per call): `start` starts the background writer
   * when it is not running (`Effect.void` otherwise): run it. `differs`: the key is stored already with another
   * answer (`resultDigest`; tool errors aside), which replay gives instead of this one.
   */
  readonly recordNow: (entry: CassetteEntry) => RecordedNow
  readonly has: (key: string) => boolean
  /** Waits until every recorded line is on disk. */
  readonly flush: Effect.Effect<void, StorageError>
  /** Entries found when the store was opened, entries added since, and stored tool errors answered since. */
  readonly counts: Effect.Effect<CassetteStoreCounts>
}

/** What `recordNow` did with an entry. */
export interface RecordedNow {
  readonly differs: boolean
  readonly start: Effect.Effect<void>
}

const KEPT: RecordedNow = { differs: false, start: Effect.void }
const OTHERWISE: RecordedNow = { differs: true, start: Effect.void }

/** A store's entries (distinct keys) when it was opened and added since, and its tool errors a later answer replaced. */
export interface CassetteStoreCounts {
  readonly existing: number
  readonly added: number
  /** Lines appended over a stored tool error: no new entry, but a line of the file (`admit`'s "replaces"). */
  readonly replaced: number
  /** Calls answered otherwise than the entry stored under their key (`RecordedNow.differs`): not written. */
  readonly differed: number
}

/**
 * The summary's line for a store: `cassettes: FILE: 2 new, 1 tool error replaced by its answer, 9 in all`; of a store
 * that holds nothing, that nothing was recorded (no file is written then).
 */
export const formatStoreCounts = (file: string, c: CassetteStoreCounts): string =>
  c.existing + c.added + c.replaced === 0 ?
    `cassettes: none recorded (${file} not written)` :
    `cassettes: ${file}: ${c.added} new, ${
      c.replaced === 0 ? "" : `${plural(c.replaced, "tool error")} replaced by an answer, `
    }${c.existing + c.added} in all${
      c.differed === 0 ? "" : `; ${plural(c.differed, "call")} answered otherwise than the entry stored under ` +
        "their key (a stateful tool, or a server that changed): replay gives the stored answer (their rows' steps " +
        "say stored_answer_differs)"
    }`

/** The lock file of the store in `dir`, there while a process writes the store. */
export const cassetteLockOf = (dir: string): string => path.join(dir, `${CASSETTE_FILE}.lock`)

/** Another process writes the cassette store (`holder`: its lock file, with its pid): nothing was run (exit 1). */
export class CassettesLocked extends Schema.TaggedError<CassettesLocked>()("CassettesLocked", {
  dir: Schema.String,
  holder: Schema.String
}) {
  override get message(): string {
    return `the cassette store ${this.dir} is in use by another skyrl process (${this.holder}); one process ` +
      `writes a store at a time: wait for it to finish or give another --cassettes DIR ` +
      `(if no such process runs, delete ${cassetteLockOf(this.dir)})`
  }
}

export class Cassettes extends Context.Tag("skyrl/Cassettes")<Cassettes, CassettesApi>() {
  /**
   * The store in `dir` (created when missing), locked for this process until the layer's scope closes
   * (flushed, then unlocked). Fails with `CassettesLocked` when a live process holds it.
   */
  static layer = (dir: string): Layer.Layer<Cassettes, StorageError | CassettesLocked, Storage> =>
    Layer.scoped(Cassettes, open(dir))
}

const open = (dir: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const file = path.join(dir, CASSETTE_FILE)
    yield* storage.makeDirectory(dir)
    // Before the keys are read (a writer's keys must include every line on disk); released after the
    // final flush (finalizers run in reverse order).
    yield* holdLock(storage, cassetteLockOf(dir)).pipe(
      Effect.catchTag("LockHeld", (e) => new CassettesLocked({ dir, holder: e.holder }))
    )
    // The store's `torn`: its last line is a piece of one (durableLog's `fragment`), cut off before the first write;
    // a whole last entry without its line end (`endsOpen` alone) gets one first.
    const digests = new Map<string, number>()
    const { endsOpen, errors, keys, torn: fragment } = yield* storedKeys(storage, file, digests)
    const existing = keys.size
    const log = yield* makeDurableLog(file, undefined, { torn: endsOpen, fragment })
    let replaced = 0
    let differed = 0
    /**
     * Whether the entry's line is to be written (its key is new, or stored as a tool error it does not repeat), or
     * its key is stored with another answer ("differs": an ok answer against an ok one, by `resultDigest`).
     */
    const claim = (entry: CassetteEntry): "write" | "kept" | "differs" => {
      const admitted = admit(entry, keys, errors)
      if (admitted === "replaces") replaced++
      if (admitted !== "duplicate") {
        if (!isErrorEntry(entry)) digests.set(entry.key, resultDigest(entry))
        return "write"
      }
      if (isErrorEntry(entry) || errors.has(entry.key) || digests.get(entry.key) === resultDigest(entry)) return "kept"
      differed++
      return "differs"
    }
    return {
      file,
      record: (entry, options) =>
        Effect.suspend(() =>
          claim(entry) === "write"
            ? Effect.as(log.append(cassetteLine(entry), options), true)
            // Already stored: with `wait`, make sure the earlier line (maybe still in flight) is on disk.
            : Effect.as(options?.wait === true ? log.flush : Effect.void, false)
        ),
      recordNow: (entry) => {
        const claimed = claim(entry)
        if (claimed !== "write") return claimed === "differs" ? OTHERWISE : KEPT
        return { differs: false, start: log.appendNow(cassetteLine(entry)) }
      },
      has: (key) => keys.has(key),
      flush: log.flush,
      counts: Effect.sync(() => ({ existing, added: keys.size - existing, replaced, differed }))
    } satisfies CassettesApi
  })

/**
 * The keys of the entries in `file` (none when it is not there), read a few lines at a time (`cassetteReader`),
 * nothing written: `errors` the keys held as a tool error, `endsOpen` the file ends without a line end,
 * `torn` its last line was cut short (a crash in mid-write).
 */
export const readStoreKeys = (storage: StorageApi, file: string, digests?: Map<string, number>) =>
  Effect.gen(function*() {
    const keys = new Set<string>()
    const errors = new Set<string>()
    if (!(yield* storage.exists(file))) return { keys, errors, endsOpen: false, torn: false, invalid: [], reasons: [] }
    const onEntry = digests === undefined
      ? () => undefined
      : (entry: CassetteEntry) => void (!isErrorEntry(entry) && digests.set(entry.key, resultDigest(entry)))
    const reader = cassetteReader(onEntry, keys, errors)
    const { endsOpen } = yield* forEachLine(storage, file, reader.line)
    const { invalid, reasons, torn } = reader.done(endsOpen)
    return { keys, errors, endsOpen, torn, invalid, reasons }
  })

/**
 * Lines of a store that are not entries (other than a torn last one): readers refuse the store (`cassettes
 * stats` exits 1, MCPToolEnv will not load it), so a writer that appends to it says so before it runs.
 */
const invalidLinesWarning = (file: string, invalid: ReadonlyArray<number>, reasons: ReadonlyArray<string>) =>
  `${file}: ${invalid.length} line(s) are not cassette entries (line ${invalid.slice(0, 10).join(", ")}` +
  `${invalid.length > 10 ? ", ..." : ""}; the first: ${reasons[0]}): MCPToolEnv refuses this store and ` +
  "`skyrl cassettes stats` exits 1 on it; this run appends to it all the same (mend or remove those lines)"

/**
 * The keys of the entries in `file` (`readStoreKeys`), with a warning naming the lines that are not entries, and
 * one for a last line cut short by a crash (no line end, not an entry: `torn`), which the first write cuts off.
 */
const storedKeys = (storage: StorageApi, file: string, digests: Map<string, number>) =>
  Effect.gen(function*() {
    const { endsOpen, errors, invalid, keys, reasons, torn } = yield* readStoreKeys(storage, file, digests)
    if (invalid.length > 0) yield* Effect.logWarning(invalidLinesWarning(file, invalid, reasons))
    if (torn) {
      yield* Effect.logWarning(
        `${file}: the last line was cut short (a crash while writing): it is cut off before this run's first entry`
      )
    }
    return { keys, errors, endsOpen, torn }
  })
