/**
 * The run journal: the one owner of a run directory (raw_llm/<run_id>/) while a run works on it.
 *
 * Opening it (a scoped layer) takes the directory's `lock` (a second process fails at once with
 * `RunLocked`, having spent nothing), checks the settings fingerprint of a run being resumed, reads the
 * journal and the cost ledger (a line cut by a crash is not an entry), lists the archive, and writes a
 * `running` manifest. While the run works it appends journal lines (one per finished sample) and ledger
 * lines (one per call, see CostLedger.ts), appends archive records under fresh call numbers to the
 * session's archive log (runArchive.ts), and keeps the counts every summary reads. Closing it writes the manifest — status, counts, tokens and cost from the
 * journal and the ledger — and releases the lock, whatever ended the run (done, failed, interrupted).
 *
 * `RunJournal.memory` is the same service without files (rebuild: nothing is written to the run it reads).
 */
import { Cause, Clock, Context, Effect, Either, Layer, Option, Schema } from "effect"
import * as Scope from "effect/Scope"
import * as path from "node:path"
import { gzipSync } from "node:zlib"
import type { StorageError } from "../domain/errors.js"
import * as Inv from "../domain/inventory.js"
import { isObject } from "../domain/json.js"
import type { RunStatus } from "../domain/run.js"
import { JournalEntry, LedgerEntry, RunLocked, RunManifest, RunSettings, SettingsError } from "../domain/run.js"
import { canonicalJson, sha256Hex } from "../skyrl/canonical.js"
import { metadataOf } from "../skyrl/checks.js"
import { toJsonText } from "../skyrl/layout.js"
import type { FileIssue } from "../skyrl/parseIssues.js"
import { fileIssueText } from "../skyrl/parseIssues.js"
import type { CostLedgerApi } from "./CostLedger.js"
import { CostLedger, makeCostLedger } from "./CostLedger.js"
import type { DurableLog, LogTail } from "./durableLog.js"
import { makeDurableLog, readLogEntries, tailOf, warnSkippedLines, WHOLE } from "./durableLog.js"
import { readJsonFileOrIssue } from "./jsonFile.js"
import type { ArchivedCall } from "./runArchive.js"
import {
  ARCHIVE_NAME,
  archiveCallName,
  archiveLogName,
  callRefInRunDir,
  encodeLogRecord,
  loggedCallRef,
  readArchiveIndex
} from "./runArchive.js"
import type { StorageApi } from "./Storage.js"
import { holdLock, Storage } from "./Storage.js"

export interface RunPaths {
  readonly runDir: string
  readonly manifest: string
  readonly journal: string
  readonly ledger: string
  readonly lock: string
  readonly inventory: string
}

export const runPaths = (rawDir: string, runId: string): RunPaths => {
  const runDir = path.join(rawDir, runId)
  const at = (name: string) => path.join(runDir, name)
  return {
    runDir,
    manifest: at("manifest.json"),
    journal: at("journal.jsonl"),
    ledger: at("ledger.jsonl"),
    lock: at("lock"),
    inventory: at("inventory.json")
  }
}

export const encodeArchive = (record: Readonly<Record<string, unknown>>, gzip: boolean): string | Uint8Array => {
  const text = JSON.stringify(record, null, 2) + "\n"
  return gzip ? gzipSync(text) : text
}

/** The hash `--resume` compares: sha256 of the canonical JSON of the encoded settings. */
export const fingerprintOf = (settings: RunSettings): string =>
  sha256Hex(canonicalJson(Schema.encodeSync(RunSettings)(settings)))

/** The `inventory_sha256` of run settings: sha256 of the canonical JSON of the encoded inventory. */
export const inventoryFingerprint = (inventory: Inv.Inventory): string =>
  sha256Hex(canonicalJson(Schema.encodeSync(Inv.Inventory)(inventory)))

/** Each setting that differs, as `name: <run's value> in the run, <value> now`. */
export const settingsDifferences = (run: RunSettings, now: RunSettings): ReadonlyArray<string> =>
  differences(
    Schema.encodeSync(RunSettings)(run) as Record<string, unknown>,
    Schema.encodeSync(RunSettings)(now) as Record<string, unknown>,
    ""
  )

/**
 * A run's recorded settings read where its output is now: an enrich input file recorded at a path that
 * lies, relative to the output then, where the one given now lies relative to the output now, moved with
 * it (a project folder moved whole) and takes the path given now. `settings` itself otherwise (the same
 * output, or the input file elsewhere), so an unmoved run is compared as before.
 */
export const settingsHere = (
  settings: RunSettings,
  output: { readonly then: string; readonly now: string },
  given: RunSettings
): RunSettings => {
  const [input, now] = [settings.input, given.input]
  if (output.then === output.now || input === null || now === null || input.path === now.path) return settings
  const moved = path.resolve(path.dirname(output.now), path.relative(path.dirname(output.then), input.path))
  return moved === now.path ? new RunSettings({ ...settings, input: { ...input, path: now.path } }) : settings
}

/**
 * The flag that gives a setting's older default, which a run made before the setting existed recorded as
 * its absence: naming it tells how to resume such a run.
 */
const FLAG_OF_ABSENT: Readonly<Record<string, string>> = {
  "input.shown_schemas": "--allow-schema-mismatch",
  "input.plan_leak": "--allow-plan-leak",
  "input.list_offered_tools": "--keep-system-message",
  literals: "--allow-unstated-literals",
  user_leaks: "--allow-tool-names-in-prompt"
}

/** The hint for a run made before `when` under an older rule. */
const madeBefore = (when: string) => `a run made before ${when}: resume with --force, which keeps its rule`

/** How to resume a run whose setting holds a value of an older rule, by setting and value. */
const HINT_OF_OLDER: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  literals: {
    stated: madeBefore("2026-12-02"),
    "stated-outside-tool-lists": madeBefore("2026-12-02 04:00 UTC"),
    "stated-v3": madeBefore("2026-12-02 20:30 UTC")
  },
  user_leaks: {
    repaired: madeBefore("2026-12-02 04:00 UTC"),
    "repaired-v2": madeBefore("2026-12-02 20:30 UTC"),
    "repaired-v3": madeBefore("2026-12-03 03:45 UTC"),
    "repaired-v4": madeBefore("2026-12-03 07:05 UTC"),
    "repaired-v5": madeBefore("2026-12-03 09:45 UTC"),
    "repaired-v6": madeBefore("2026-12-05 10:00 UTC")
  }
}

/** `path: A in the run, B now` for each setting that differs, objects compared field by field. */
const differences = (a: Record<string, unknown>, b: Record<string, unknown>, prefix: string): Array<string> => {
  const show = (v: unknown) => (v === undefined ? "(none)" : typeof v === "string" ? v : canonicalJson(v))
  // Both sides' keys: an optional setting (verify) may be in one only.
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k]))
    .flatMap((k) => {
      const [x, y, path] = [a[k], b[k], `${prefix}${k}`]
      if (isObject(x) && isObject(y)) return differences(x, y, `${path}.`)
      const flag = x === undefined ? FLAG_OF_ABSENT[path] : undefined
      const hint = flag !== undefined
        ? `resume with ${flag}`
        : typeof x === "string"
        ? HINT_OF_OLDER[path]?.[x]
        : undefined
      return [`${path}: ${show(x)} in the run, ${show(y)} now${hint === undefined ? "" : ` (${hint})`}`]
    })
}

/** What a run is and how its manifest describes it. */
export interface RunSpec {
  readonly runDir: string
  readonly runId: string
  readonly command: "generate" | "enrich"
  /** The dataset file the run writes. */
  readonly output: string
  readonly settings: RunSettings
  /** Every setting of the session, for people reading the manifest (not compared). */
  readonly details: Readonly<Record<string, unknown>>
  readonly model: string
  readonly backend: string
  /** Samples of the work plan (a journal line of another sample is ignored). */
  readonly planned: ReadonlySet<number>
  /** Rows written without a model call (enrich: rows that already have a plan). */
  readonly passthrough: number
  readonly gzip: boolean
  /** The inventory the run plans with, kept in the run directory (`inventory.json`) for rebuild and --force. */
  readonly inventory?: unknown
  /**
   * The command the run's lock names while this session holds it (default: `command`): `batch collect` for a collect,
   * so that a second one is told what holds the run as the user typed it, not the run's `generate`.
   */
  readonly lockCommand?: string | undefined
}

/** A call about to be made: its number in its sample and its name (`task_0007_c02.json`). */
export interface ArchiveTarget {
  readonly call: number
  readonly name: string
}

export interface JournalCounts {
  readonly done: number
  readonly valid: number
  readonly failed: number
  readonly rejected: number
}

export interface RunJournalApi {
  readonly spec: RunSpec
  readonly paths: RunPaths
  /** The latest journal entry of each planned sample, earlier sessions included. */
  readonly latest: Effect.Effect<ReadonlyMap<number, JournalEntry>>
  /** Planned samples with a row, in journal order (the order their prompts were claimed). */
  readonly rowOrder: Effect.Effect<ReadonlyArray<number>>
  /** Appends a journal line (flushed before it returns). */
  readonly append: (entry: JournalEntry) => Effect.Effect<void, StorageError>
  /**
   * Puts a journal line in the file's order now and returns the wait for it to be on disk: so a caller
   * can order lines inside its own critical section (the claim of a prompt) and wait outside it.
   */
  readonly enqueue: (entry: JournalEntry) => Effect.Effect<Effect.Effect<void, StorageError>>
  /** The archived calls of a sample, any session, by call number. */
  readonly archived: (index: number) => Effect.Effect<ReadonlyArray<ArchivedCall>>
  /** The sample's next call number and its name (a number is never used twice, even if unwritten). */
  readonly nextArchiveCall: (index: number) => Effect.Effect<ArchiveTarget>
  /**
   * Appends a call's record to the session's archive log now and returns its reference (`<log>#<name>`)
   * with the wait for it to be on disk (group commit; the wait lists it among the sample's archived
   * calls), so a caller can wait outside its call permit.
   */
  readonly enqueueArchive: (
    index: number,
    target: ArchiveTarget,
    record: Readonly<Record<string, unknown>>
  ) => Effect.Effect<{ readonly file: string; readonly durable: Effect.Effect<void, StorageError> }, StorageError>
  /** Counted in `counts` and `latest` but not yet on disk (queued, or being written). */
  readonly unwritten: Effect.Effect<number>
  readonly counts: Effect.Effect<JournalCounts>
  /**
   * Records how the run ended (its manifest status, and the diversity report of what it wrote); absent,
   * the status comes from how the scope closed.
   */
  readonly settle: (
    status: "completed" | "incomplete" | "interrupted",
    llm: string,
    diversity?: unknown
  ) => Effect.Effect<void>
}

export class RunJournal extends Context.Tag("skyrl/RunJournal")<RunJournal, RunJournalApi>() {
  /** Opens the run directory (lock, fingerprint, journal, ledger); provides the journal and its cost ledger. */
  static layer = (
    spec: RunSpec
  ): Layer.Layer<RunJournal | CostLedger, RunLocked | SettingsError | StorageError, Storage> =>
    Layer.scopedContext(Effect.map(openRun(spec, true), (s) =>
      Context.make(RunJournal, s.journal).pipe(
        Context.add(CostLedger, s.ledger)
      )))

  /** The same service in memory: reads nothing, writes nothing, takes no lock (rebuild). */
  static memory = (spec: RunSpec): Layer.Layer<RunJournal | CostLedger, never, Storage> =>
    Layer.scopedContext(
      Effect.map(Effect.orDie(openRun(spec, false)), (s) =>
        Context.make(RunJournal, s.journal).pipe(Context.add(CostLedger, s.ledger)))
    )
}

interface State {
  readonly latest: Map<number, JournalEntry>
  readonly rowOrder: Array<number>
  readonly archive: Map<number, Array<ArchivedCall>>
  /** The highest call number used per sample (written or not). */
  readonly lastCall: Map<number, number>
  /** The highest archive log number used (this session's log is the next). */
  lastLog: number
  tail: LogTail
  settled:
    | {
      readonly status: "completed" | "incomplete" | "interrupted"
      readonly llm: string
      readonly diversity?: unknown
    }
    | undefined
}

const emptyState = (): State => ({
  latest: new Map(),
  rowOrder: [],
  archive: new Map(),
  lastCall: new Map(),
  lastLog: 0,
  tail: WHOLE,
  settled: undefined
})

const countsOf = (state: State): JournalCounts => {
  let valid = 0
  let failed = 0
  let rejected = 0
  for (const e of state.latest.values()) {
    if (e.status === "row") valid++
    else if (e.status === "failed") failed++
    rejected += e.rejects.length
  }
  return { done: valid + failed, valid, failed, rejected }
}

/** What becomes of the samples of journal lines that are not readable (as of samples a crash left unjournaled). */
const SKIPPED_JOURNAL_LINES = "the samples whose lines they were are made again, unless a later line holds them: " +
  "the answers the run archived for them are judged again first, not paid again"

/** What becomes of the calls of ledger lines that are not readable: their cost is not known. */
const SKIPPED_LEDGER_LINES = "the cost of the calls they recorded is missing from the run's totals and from what " +
  "--max-cost counts as spent"

/** Reads the journal, the ledger and the archive listing of a run directory (nothing when `onDisk` is false). */
const readRunDirectory = (spec: RunSpec, paths: RunPaths, onDisk: boolean) =>
  Effect.gen(function*() {
    const state = emptyState()
    if (!onDisk) return { state, ledger: [] as ReadonlyArray<LedgerEntry>, ledgerTail: WHOLE }
    // Read a few lines at a time: a journal holds every row made (~9 KB a line), more than one string can.
    const journal = yield* readLogEntries(paths.journal, JournalEntry, (entry) => record(state, spec.planned, entry))
    yield* warnSkippedLines(paths.journal, journal, SKIPPED_JOURNAL_LINES)
    state.tail = tailOf(journal)
    const archive = yield* readArchiveIndex(paths.runDir)
    state.lastLog = archive.lastLog
    for (const [index, calls] of archive.bySample) {
      state.archive.set(index, calls)
      state.lastCall.set(index, calls.at(-1)!.call)
    }
    const entries: Array<LedgerEntry> = []
    const ledger = yield* readLogEntries(paths.ledger, LedgerEntry, (entry) => {
      entries.push(entry)
      // A call whose archive write failed still used its number (its ledger line has it): never reuse one.
      const m = ARCHIVE_NAME.exec(entry.key)
      if (m !== null) state.lastCall.set(entry.sample, Math.max(state.lastCall.get(entry.sample) ?? 0, Number(m[2])))
    })
    yield* warnSkippedLines(paths.ledger, ledger, SKIPPED_LEDGER_LINES)
    return { state, ledger: entries as ReadonlyArray<LedgerEntry>, ledgerTail: tailOf(ledger) }
  })

/** Keeps a journal line: the latest per sample, except that nothing follows a sample's row line. */
const record = (state: State, planned: ReadonlySet<number>, entry: JournalEntry) => {
  if (!planned.has(entry.index) || state.latest.get(entry.index)?.status === "row") return
  state.latest.set(entry.index, entry)
  if (entry.status === "row") state.rowOrder.push(entry.index)
}

const addArchived = (state: State, index: number, call: ArchivedCall) => {
  const list = state.archive.get(index) ?? []
  list.push(call)
  if (list.length > 1 && list[list.length - 2].call > call.call) list.sort((a, b) => a.call - b.call)
  state.archive.set(index, list)
  state.lastCall.set(index, Math.max(state.lastCall.get(index) ?? 0, call.call))
}

/**
 * The journal of a run directory as the engine reads it: latest entry per sample, rows in claim order; and
 * how the read went (`read`: lines skipped, with why).
 */
export const readJournal = (runDir: string, planned: ReadonlySet<number>) =>
  Effect.gen(function*() {
    const state = emptyState()
    const read = yield* readLogEntries(
      path.join(runDir, "journal.jsonl"),
      JournalEntry,
      (entry) => record(state, planned, entry)
    )
    return {
      latest: state.latest as ReadonlyMap<number, JournalEntry>,
      rowOrder: state.rowOrder as ReadonlyArray<number>,
      read
    }
  })

/** A resumed run must have been made with the same settings (the CLI resolves `--force` before this). */
const checkSettings = (spec: RunSpec, paths: RunPaths) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    if (!(yield* storage.exists(paths.manifest))) return undefined
    const manifest = yield* readManifestOrIssue(paths.manifest)
    if (Either.isLeft(manifest)) {
      return yield* new SettingsError({
        setting: "--resume",
        reason: `${fileIssueText({ file: paths.manifest, issue: manifest.left })}: the run's settings cannot ` +
          "be checked against these; mend the file or start a new run"
      })
    }
    const m = manifest.right
    if (m.fingerprint === undefined || m.run_settings === undefined) {
      return yield* new SettingsError({
        setting: "--resume",
        reason: `${paths.runDir} was made by an earlier skyrl that did not record its settings; start a new run`
      })
    }
    // A run moved with its output: its enrich input file moved with them.
    const recorded = settingsHere(m.run_settings, { then: m.output, now: spec.output }, spec.settings)
    if ((recorded === m.run_settings ? m.fingerprint : fingerprintOf(recorded)) !== fingerprintOf(spec.settings)) {
      return yield* new SettingsError({
        setting: "--resume",
        reason: `${paths.runDir} was made with other settings (${
          settingsDifferences(recorded, spec.settings).join("; ")
        })`
      })
    }
    return m
  })

/** The manifest of a run directory, or where and why its file is none (unreadable, empty, not JSON, a field refused). */
export const readManifestOrIssue = (file: string) => readJsonFileOrIssue(file, RunManifest)

/** The manifest of a run directory, when it is one. */
export const readManifest = (file: string) => Effect.map(readManifestOrIssue(file), Either.getRight)

/** A run directory in rawDir and its manifest. */
interface RunFound {
  readonly manifest: RunManifest
  /** Its directory's name in rawDir. */
  readonly dir: string
}

/** Where a run's directory and output were when its manifest was written (a run moved since). */
export interface RunPlaceThen {
  readonly runDir: string
  readonly output: string
}

/** A run moved with its output: found in `dir`, made where `then` says. */
export interface MovedRun extends RunFound {
  readonly then: RunPlaceThen
}

/** The latest of runs (by start), its own directory `<run_id>` before a copy under another name. */
const latestOf = <F extends RunFound>(found: ReadonlyArray<F>): F | undefined => {
  const ownName = (f: F) => (f.dir === f.manifest.run_id ? 1 : 0)
  return [...found].sort((a, b) =>
    a.manifest.started_at.localeCompare(b.manifest.started_at) || ownName(a) - ownName(b)
  ).at(-1)
}

/**
 * The run directory a journaled `raw_output_path` (relative to the output's directory then) names: the
 * last such path of the journal (a row's or a reject's: the latest session's, as the manifest is). Undefined
 * when no line names an archived call.
 */
const runDirOfJournal = (runDir: string, outputThen: string) =>
  Effect.gen(function*() {
    let ref: string | undefined
    yield* readLogEntries(path.join(runDir, "journal.jsonl"), JournalEntry, (entry) => {
      for (const r of [...entry.rejects.map((r) => r.raw_output_path), rowOutputPath(entry.row)]) {
        if (typeof r === "string" && callRefInRunDir(r) !== undefined) ref = r
      }
    }).pipe(Effect.orElseSucceed(() => undefined))
    if (ref === undefined) return undefined
    const inRun = callRefInRunDir(ref)!
    return path.resolve(path.dirname(outputThen), ref.slice(0, ref.length - inRun.length))
  })

/** A journaled (encoded) row's `task_metadata.raw_output_path`. */
export const rowOutputPath = (row: unknown): unknown => {
  const meta = isObject(row) ? metadataOf(row) : undefined
  return isObject(meta) ? meta.raw_output_path : undefined
}

/**
 * A run found in `rawDir/dir` that wrote another output, if it is this output's run moved with it: its
 * output lay where `output` lies now relative to its run directory (`run_dir` recorded in the manifest,
 * or read off its journal's last `raw_output_path` in a manifest written before that field).
 */
const movedWith = (rawDir: string, output: string, found: RunFound) =>
  Effect.gen(function*() {
    const { dir, manifest } = found
    const now = path.join(rawDir, dir)
    if (path.basename(manifest.output) !== path.basename(output)) return undefined
    const runDir = manifest.run_dir ?? (yield* runDirOfJournal(now, manifest.output))
    if (runDir === undefined || path.relative(runDir, manifest.output) !== path.relative(now, output)) return undefined
    return { ...found, then: { runDir, output: manifest.output } } satisfies MovedRun
  })

/**
 * The most recent run of `command` in rawDir that wrote `output` (for --resume), the directory it was
 * found in (its own, `<run_id>`, when a copy under another name is there too), and the manifests in rawDir
 * that are there but do not decode (whose runs cannot be told apart). When no run wrote `output`: the
 * latest run moved here with its output (`movedFrom`: where both were), unless runs of several outputs
 * moved so (`ambiguous`: which of them is meant cannot be told).
 */
export const findLatestRun = (rawDir: string, output: string, command: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const runs: Array<RunFound> = []
    const unreadable: Array<FileIssue> = []
    const ids = (yield* storage.exists(rawDir))
      ? yield* storage.readDirectory(rawDir).pipe(Effect.orElseSucceed(() => []))
      : []
    for (const id of ids) {
      const file = path.join(rawDir, id, "manifest.json")
      if (!(yield* storage.exists(file))) continue
      const m = yield* readManifestOrIssue(file)
      if (Either.isLeft(m)) unreadable.push({ file, issue: m.left })
      else if (m.right.command === command) runs.push({ manifest: m.right, dir: id })
    }
    const exact = runs.filter((r) => r.manifest.output === output)
    const moved = exact.length > 0 ? [] : (yield* Effect.forEach(runs, (r) => movedWith(rawDir, output, r)))
      .filter((r) => r !== undefined)
    const ambiguous = new Set(moved.map((r) => r.manifest.output)).size > 1 ? moved : []
    const last: RunFound & Partial<MovedRun> | undefined = ambiguous.length > 0
      ? undefined
      : latestOf<RunFound & Partial<MovedRun>>(exact.length > 0 ? exact : moved)
    return {
      latest: Option.fromNullable(last?.manifest),
      latestDir: Option.fromNullable(last === undefined ? undefined : path.join(rawDir, last.dir)),
      movedFrom: Option.fromNullable(last?.then),
      ambiguous: ambiguous as ReadonlyArray<MovedRun>,
      unreadable
    }
  })

/**
 * A JSON Lines file appended with group commit (durableLog.ts): lines are queued in call order
 * (synchronously, so a caller's critical section fixes their order), and one append + fsync writes every
 * line queued meanwhile. No file (`RunJournal.memory`): lines are only counted as written.
 */
const groupAppender = (file: string | undefined, tail: LogTail) =>
  file === undefined
    ? Effect.succeed({ enqueue: () => Effect.succeed(Effect.void), unwritten: Effect.succeed(0) })
    : makeDurableLog(file, 50, tail)

const openRun = (spec: RunSpec, onDisk: boolean) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const paths = runPaths(path.dirname(spec.runDir), path.basename(spec.runDir))
    if (onDisk) {
      yield* storage.makeDirectory(paths.runDir)
      yield* holdLock(storage, paths.lock, spec.lockCommand ?? spec.command).pipe(
        Effect.catchTag("LockHeld", (e) => new RunLocked({ runDir: paths.runDir, holder: e.holder }))
      )
    }
    const previous = onDisk ? yield* checkSettings(spec, paths) : undefined
    const { ledger: priorLedger, ledgerTail, state } = yield* readRunDirectory(spec, paths, onDisk)
    const ledgerFile = yield* groupAppender(onDisk ? paths.ledger : undefined, ledgerTail)
    const ledger = yield* makeCostLedger(
      spec.model,
      priorLedger,
      (entry) => ledgerFile.enqueue(JSON.stringify(entry) + "\n")
    )
    if (onDisk && spec.inventory !== undefined && !(yield* storage.exists(paths.inventory))) {
      yield* storage.writeFileAtomic(paths.inventory, toJsonText(spec.inventory, { indent: 2 }) + "\n")
    }
    const started = previous?.started_at ?? new Date(yield* Clock.currentTimeMillis).toISOString()
    const t0 = yield* Clock.currentTimeMillis
    const writeManifest = (status: typeof RunStatus.Type, llm: string) =>
      onDisk ? manifestWriter(spec, paths, state, ledger, started, t0)(status, llm) : Effect.void
    yield* writeManifest("running", previous?.llm ?? "")
    yield* Effect.addFinalizer((exit) =>
      Effect.orDie(
        writeManifest(
          state.settled?.status ?? (exit._tag === "Success"
            ? "incomplete"
            : Cause.isInterruptedOnly(exit.cause)
            ? "interrupted"
            : "failed"),
          state.settled?.llm ?? previous?.llm ?? ""
        )
      ).pipe(Effect.catchAllDefect((d) => Effect.logError(`could not write ${paths.manifest}: ${String(d)}`)))
    )
    const journalFile = yield* groupAppender(onDisk ? paths.journal : undefined, state.tail)
    // Recorded when queued, so the in-memory order is the file's order.
    const enqueue = (entry: JournalEntry) =>
      Effect.tap(
        journalFile.enqueue(journalLine(entry)),
        () => Effect.sync(() => record(state, spec.planned, entry))
      )
    const archiveLog = archiveLogOpener(paths.runDir, state, spec.gzip, { storage, scope: yield* Effect.scope })
    const enqueueArchive: RunJournalApi["enqueueArchive"] = (index, target, record) =>
      Effect.gen(function*() {
        const key = typeof record.key === "string" ? record.key : undefined
        if (!onDisk) {
          const file = path.join(paths.runDir, target.name)
          return { file, durable: Effect.sync(() => addArchived(state, index, { call: target.call, file, key })) }
        }
        const log = yield* archiveLog
        // One synchronous step: the record's bytes start where the log's queued bytes end.
        const data = encodeLogRecord(target.name, { ...record, call: target.call }, spec.gzip)
        const at = { log: log.file, offset: log.bytes, length: byteLength(data), gzip: spec.gzip }
        log.bytes += at.length
        const wait = log.durable.queue(data)
        const file = loggedCallRef(log.file, target.name)
        return {
          file,
          durable: wait.pipe(
            Effect.tapError(() => Effect.sync(() => (log.failed = true))),
            Effect.zipRight(Effect.sync(() => addArchived(state, index, { call: target.call, file, key, at })))
          )
        }
      })
    const journal: RunJournalApi = {
      spec,
      paths,
      latest: Effect.sync(() => new Map(state.latest)),
      rowOrder: Effect.sync(() => [...state.rowOrder]),
      append: (entry) => Effect.flatten(enqueue(entry)),
      enqueue,
      archived: (index) => Effect.sync(() => [...(state.archive.get(index) ?? [])]),
      nextArchiveCall: (index) =>
        Effect.sync(() => {
          const call = (state.lastCall.get(index) ?? 0) + 1
          state.lastCall.set(index, call)
          return { call, name: archiveCallName(index, call, spec.planned.size) }
        }),
      enqueueArchive,
      counts: Effect.sync(() => countsOf(state)),
      unwritten: journalFile.unwritten,
      settle: (status, llm, diversity) =>
        Effect.sync(() => void (state.settled = { status, llm, ...(diversity === undefined ? {} : { diversity }) }))
    }
    return { journal, ledger }
  })

/**
 * A journal line: `JSON.stringify(Schema.encodeSync(JournalEntry)(entry))`, written by hand for the usual
 * entry (no rejects: the Schema's encoding costs ~50 µs a sample); test/runJournal.test.ts holds the two
 * equal.
 */
export const journalLine = (entry: JournalEntry): string => {
  const u = entry.usage
  const usual = entry.rejects.length === 0 && typeof entry.index === "number" &&
    (entry.status === "row" || entry.status === "failed" || entry.status === "stopped") &&
    typeof entry.attempts === "number" && typeof entry.calls === "number" && typeof u.input === "number" &&
    typeof u.cached === "number" && typeof u.output === "number" && typeof u.reasoning === "number"
  if (!usual) return JSON.stringify(Schema.encodeSync(JournalEntry)(entry)) + "\n"
  return JSON.stringify({
    index: entry.index,
    status: entry.status,
    ...("row" in entry ? { row: entry.row } : {}),
    attempts: entry.attempts,
    calls: entry.calls,
    usage: { input: u.input, cached: u.cached, output: u.output, reasoning: u.reasoning },
    rejects: []
  }) + "\n"
}

const byteLength = (data: string | Uint8Array): number =>
  typeof data === "string" ? Buffer.byteLength(data, "utf8") : data.length

interface ArchiveLog {
  readonly file: string
  readonly durable: DurableLog
  /** Bytes queued so far (where the next record starts). */
  bytes: number
  /** A write failed: the log is not appended to again. */
  failed: boolean
}

/**
 * The session's archive log, opened on first use under the next free number, and again under a new number
 * after a write to it failed (a failed write may have left part of a record).
 */
const archiveLogOpener = (
  runDir: string,
  state: State,
  gzip: boolean,
  context: { readonly storage: StorageApi; readonly scope: Scope.Scope }
) => {
  let current: ArchiveLog | undefined
  const lock = Effect.unsafeMakeSemaphore(1)
  const open = Effect.gen(function*() {
    if (current !== undefined && !current.failed) return current
    const file = path.join(runDir, archiveLogName(++state.lastLog, gzip))
    const durable = yield* makeDurableLog(file).pipe(
      Scope.extend(context.scope),
      Effect.provideService(Storage, context.storage)
    )
    const log: ArchiveLog = { file, durable, bytes: 0, failed: false }
    current = log
    return log
  })
  return Effect.suspend(() =>
    current !== undefined && !current.failed ? Effect.succeed(current) : lock.withPermits(1)(open)
  )
}

const manifestWriter = (
  spec: RunSpec,
  paths: RunPaths,
  state: State,
  ledger: CostLedgerApi,
  startedAt: string,
  t0: number
) =>
(status: typeof RunStatus.Type, llm: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const now = yield* Clock.currentTimeMillis
    const counts = countsOf(state)
    const totals = yield* ledger.totals
    const manifest = new RunManifest({
      run_id: spec.runId,
      command: spec.command,
      status,
      output: spec.output,
      run_dir: path.resolve(paths.runDir),
      started_at: startedAt,
      finished_at: status === "running" ? null : new Date(now).toISOString(),
      settings: spec.details,
      seed: spec.settings.seed,
      model: spec.model,
      backend: spec.backend,
      llm,
      counts: {
        requested: spec.planned.size + spec.passthrough,
        valid: counts.valid + spec.passthrough,
        rejected_attempts: counts.rejected,
        failed_samples: counts.failed,
        calls: totals.calls,
        repairs: totals.repairs
      },
      tokens: totals.usage,
      cost_usd: totals.costUsd ?? null,
      elapsed_ms: now - t0,
      run_settings: spec.settings,
      fingerprint: fingerprintOf(spec.settings),
      ...(state.settled?.diversity === undefined ? {} : { diversity: state.settled.diversity })
    })
    yield* storage.writeFileAtomic(
      paths.manifest,
      toJsonText(Schema.encodeSync(RunManifest)(manifest), { indent: 2 }) + "\n"
    )
  })
