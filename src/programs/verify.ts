/**
 * `skyrl verify`: runs every row's plan on the live MCP servers (Verifier) and keeps the rows that
 * verify, with their verification record in `task_metadata.verification`; the others go to the rejects
 * file with their stage and reason. Stages, in order: read (the row parses) → contract (a SkyRL row
 * with a plan) → schema (the plan is valid against the inventory) → execution (the plan runs).
 *
 * Rows are streamed through `concurrency` at a time; the outputs are written at the end (atomically), in
 * input order. A journal next to the output (`<out>.verify-journal.jsonl`) keeps each executed row's
 * outcome under the hash of the row, so `--resume` never runs a finished row again (verified and
 * tool-error outcomes are final; timeouts, unavailable servers and skipped rows are tried again). Within a
 * run, a row that is the same as an earlier one (the same hash) takes that row's outcome: its plan does not
 * run twice.
 */
import { Deferred, Effect, Either, Exit, Fiber, FiberId, Option, Queue, Schema, Stream } from "effect"
import * as path from "node:path"
import type { InputError, StorageError } from "../domain/errors.js"
import type { Inventory } from "../domain/inventory.js"
import { formatIssue, serverVersionLabel } from "../domain/inventory.js"
import { SkyRLRow } from "../domain/row.js"
import { readStoreKeys } from "../services/Cassettes.js"
import type { DurableLog, LogTail } from "../services/durableLog.js"
import { makeDurableLog, readLogEntries, tailOf, warnSkippedLines, WHOLE } from "../services/durableLog.js"
import type { ServerState } from "../services/McpServers.js"
import { rowFormatOf, Storage } from "../services/Storage.js"
import type { Finish, VerifierApi } from "../services/Verifier.js"
import { finishingNotice, sideEffectIntent, toCompletion, Verifier } from "../services/Verifier.js"
import { tooLongStep } from "../skyrl/callSize.js"
import { callKey, sha256Hex } from "../skyrl/canonical.js"
import { CASSETTE_FILE } from "../skyrl/cassettes.js"
import { loneSurrogateIn } from "../skyrl/convert.js"
import { nestsDeeperThan } from "../skyrl/depth.js"
import type { WritableRow } from "../skyrl/layout.js"
import {
  decodeRow,
  deepJsonTextFault,
  RowJson,
  rowJsonWithMetadata,
  toJsonText,
  withOwnColumns
} from "../skyrl/layout.js"
import { formatPath } from "../skyrl/parseIssues.js"
import { NON_FINITE_REASON, nonFiniteAt, validatePlan } from "../skyrl/planValidation.js"
import type { RecordResult } from "../skyrl/records.js"
import type { OutcomeSource, Stage, VerifyStatus, VerifyStep, VerifySummary } from "../skyrl/verification.js"
import {
  FailureFields,
  failureFields,
  isFinalForResume,
  MAX_PARAMS_DEPTH,
  outcomeStands,
  recordStep,
  resultsElsewhereWarning,
  sideEffectByInventory,
  standingElsewhere,
  SummaryCounter,
  toVerifySteps,
  VerificationFailed,
  VerificationRecord,
  verifiedRecord
} from "../skyrl/verification.js"
import { lockOutput } from "./outputLock.js"
import { readRecords } from "./readRecords.js"

export interface VerifyDatasetsOptions {
  readonly files: ReadonlyArray<string>
  readonly out: string
  readonly inventory: Inventory
  readonly concurrency: number
  readonly limit?: number | undefined
  readonly resume: boolean
  /** The caller holds `out`'s lock (`lockOutput`) already: `skyrl verify` takes it before its cassette store opens. */
  readonly outLocked?: boolean
}

/** One row that did not verify, as written to `<out>.rejects.jsonl`. */
export interface VerifyReject {
  readonly file: string
  readonly row: number
  readonly line?: number
  readonly stage: Stage
  readonly status?: VerifyStatus
  readonly step?: number
  readonly server?: string
  readonly tool?: string
  readonly field?: string
  readonly reason: string
}

export interface VerifyResult {
  readonly summary: VerifySummary
  /** The servers of the rows whose outcome came from the journal (an earlier session's): see EarlierServers. */
  readonly earlierServers: EarlierServers
  readonly written: number
  readonly rejects: number
  readonly rejectsFile: string
}

/**
 * Server name → the versions (`name@version`, as a verification record holds them; null: the server gave no
 * info) that an earlier session's rows (taken from the journal by `--resume`) ran on. A journaled failure
 * records no version: the servers of the steps it sent are there with no version unless a verified row gives one.
 */
export type EarlierServers = ReadonlyMap<string, ReadonlySet<string | null>>

/**
 * The summary's `servers:` lines: this session's servers (`states`, as the Verifier reports them) and those of
 * the rows taken from the journal, so every counted row's servers are listed. A version an earlier session saw
 * that is not this session's is shown beside it; a server only the journal's rows used says so.
 */
export const formatServerLines = (
  states: ReadonlyArray<ServerState>,
  earlier: EarlierServers
): Array<string> => {
  const label = (v: string | null) => v ?? "no server info"
  const lines = new Map<string, string>()
  for (const s of states) {
    const now = s.unavailable !== undefined
      ? `unavailable (${s.unavailable.split("\n")[0]})`
      : serverVersionLabel(s.serverInfo) ?? "no server info"
    const restarts = s.starts > 1 ? `, started ${s.starts} times` : ""
    const before = [...(earlier.get(s.server) ?? [])].map(label).filter((v) => v !== now)
    lines.set(
      s.server,
      before.length === 0
        ? `${now}${restarts}`
        : `${now} (this session${restarts}); ${before.join(", ")} (an earlier session's rows)`
    )
  }
  for (const [server, versions] of earlier) {
    if (lines.has(server)) continue
    const known = versions.size === 0 ? "version not recorded" : [...versions].map(label).join(", ")
    lines.set(server, `${known} (an earlier session's rows; not started in this session)`)
  }
  return [...lines].sort((a, b) => a[0].localeCompare(b[0])).map(([server, text]) => `  ${server}: ${text}`)
}

export const rejectsFileOf = (out: string) => `${out}.rejects.jsonl`
export const journalFileOf = (out: string) => `${out}.verify-journal.jsonl`
interface Located {
  readonly file: string
  readonly order: number
  readonly record: RecordResult
}

/** A row as messages name it: `a.jsonl row 3 (line 4)` (rows numbered from 0, as validate and the rejects do). */
const rowName = ({ file, record }: Located): string =>
  `${file} row ${record.index}${record.line === undefined ? "" : ` (line ${record.line})`}`

/** What one row came to. */
type Outcome =
  | { readonly _tag: "verified"; readonly order: number; readonly row: WritableRow; readonly resumed: boolean }
  | { readonly _tag: "rejected"; readonly order: number; readonly reject: VerifyReject; readonly resumed: boolean }

/** A journal line: the final outcome of an executed row, under the hash of the row. */
const JournalEntry = Schema.Struct({
  hash: Schema.String,
  record: Schema.optional(VerificationRecord),
  failure: Schema.optional(FailureFields)
})
type JournalEntry = typeof JournalEntry.Type

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * Calls `f` on every record of every file, numbered in input order, the first `limit` only: JSON Lines
 * streamed and parsed a few lines at a time as `f` takes them (`readRecords`: so, with `f` offering to a
 * bounded queue, parsing and checking interleave with the calls, and memory holds the rows in flight, not
 * the file), Parquet row group by row group. A bad line is a record of its own.
 */
const eachRecord = <E, R>(
  files: ReadonlyArray<string>,
  limit: number | undefined,
  f: (located: Located) => Effect.Effect<void, E, R>
): Effect.Effect<void, E | InputError | StorageError, R | Storage> =>
  eachChunk(files, limit, (chunk) => Effect.forEach(chunk, f, { discard: true }))

/** `eachRecord`, the records handed to `f` a read chunk at a time (one Effect per chunk, not per record). */
const eachChunk = <E, R>(
  files: ReadonlyArray<string>,
  limit: number | undefined,
  f: (chunk: ReadonlyArray<Located>) => Effect.Effect<void, E, R>
): Effect.Effect<void, E | InputError | StorageError, R | Storage> =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const max = limit ?? Infinity
    let order = 0
    for (const file of files) {
      if (order >= max) return
      const records: Stream.Stream<RecordResult, InputError> = rowFormatOf(file) === "parquet"
        ? Stream.map(storage.readRows(file), (r) => ({ _tag: "Record", index: r.index, value: r.value }))
        : readRecords(storage, file)
      yield* Stream.runForEachChunk(
        limit === undefined ? records : Stream.take(records, max - order), // take(Infinity) throws
        (chunk) => {
          const located: Array<Located> = []
          for (const record of chunk) located.push({ file, order: order++, record })
          return f(located)
        }
      )
    }
  })

/**
 * Elements held between the feed and the workers before a worker is free; at most `capacity` before the
 * feed waits (`onRoom`), then until HANDOFF_ROOM have been taken.
 */
const handoffCapacity = (concurrency: number) => Math.max(256, 8 * concurrency)

/** Elements the workers take from a full queue before the feed goes on (so that it wakes once per so many, not each). */
const HANDOFF_ROOM = 16

/**
 * The queue between the feed and the workers, plain (no Effect per element): an element offered goes to a
 * worker waiting for one or is held; a worker takes a held element without an Effect (`poll`), and waits
 * with one (`take`) only when none is held. After `end`, a waiting or later take gets `undefined`.
 */
class Handoff<A> {
  private items: Array<A | undefined> = []
  private head = 0
  private ended = false
  private readonly takers: Array<(a: A | undefined) => void> = []
  private room: (() => void) | undefined = undefined
  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.items.length - this.head
  }

  /** The next element held, or undefined when none is. */
  poll(): A | undefined {
    if (this.head === this.items.length) return undefined
    const a = this.items[this.head]
    this.items[this.head++] = undefined
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    if (this.room !== undefined && this.size <= this.capacity - HANDOFF_ROOM) {
      const room = this.room
      this.room = undefined
      room()
    }
    return a
  }

  /** The next element: at once when one is held, else when one is offered; undefined once the queue has ended. */
  readonly take: Effect.Effect<A | undefined> = Effect.suspend(() => {
    const a = this.poll()
    if (a !== undefined || this.ended) return Effect.succeed(a)
    return Effect.async<A | undefined>((resume) => {
      const taker = (x: A | undefined) => resume(Effect.succeed(x))
      this.takers.push(taker)
      return Effect.sync(() => {
        const i = this.takers.indexOf(taker)
        if (i >= 0) this.takers.splice(i, 1)
      })
    })
  })

  /** Gives `a` to a waiting worker, or holds it; returns whether the feed may offer more without waiting. */
  offer(a: A): boolean {
    const taker = this.takers.shift()
    if (taker !== undefined) taker(a)
    else this.items.push(a)
    return this.size < this.capacity
  }

  /** Calls `f` once the workers have taken HANDOFF_ROOM of the elements held (one waiting feed at most). */
  onRoom(f: () => void): void {
    this.room = f
  }

  cancelRoom(): void {
    this.room = undefined
  }

  /** No more elements: the waiting takes get undefined, and so do the takes after the held elements. */
  end(): void {
    this.ended = true
    for (const taker of this.takers.splice(0)) taker(undefined)
  }
}

/**
 * Offers the elements made of `items` (`make`, called for each as it is offered) in order, one Effect for
 * them all: between two elements it lets the event loop run (setImmediate), so that an answer that came in
 * meanwhile is taken up (and the next call sent) before the next element is made, not after a batch of
 * them; when the queue is full it waits until the workers have made room.
 */
const offerEach = <B, A>(handoff: Handoff<A>, items: ReadonlyArray<B>, make: (b: B) => A): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    let i = 0
    let stopped = false
    let immediate: ReturnType<typeof setImmediate> | undefined = undefined
    const later = () => {
      immediate = setImmediate(next)
    }
    const next = (): void => {
      immediate = undefined
      if (stopped) return
      if (i === items.length) return resume(Effect.void)
      let a: A
      try {
        a = make(items[i++]!)
      } catch (e) {
        return resume(Effect.die(e))
      }
      if (handoff.offer(a)) later()
      else handoff.onRoom(later)
    }
    next()
    return Effect.sync(() => {
      stopped = true
      if (immediate !== undefined) clearImmediate(immediate)
      handoff.cancelRoom()
    })
  })

/**
 * Runs `f` on every element `feed` offers, `concurrency` at a time, as soon as a worker is free (no
 * barrier between elements; finishing order is not input order). `feed` offers a batch of items at a time
 * (`offerEach`: one Effect per batch, each element made from its item as it is offered), over a plain
 * bounded queue (`Handoff`): the feed runs ahead of the workers by at most the queue's size. The first
 * failure stops everything.
 *
 * `f(a)` is called when a worker takes the element and may start its work at once (send a request); the
 * Effect it returns waits for that work and gives the element's completion, which the worker runs once it
 * has started the next element: the completion of one element overlaps the first wait of the next.
 */
const forEachConcurrently = <A extends object, E, R, E2, R2>(
  feed: (
    offerEach: <B>(items: ReadonlyArray<B>, make: (b: B) => A) => Effect.Effect<void>
  ) => Effect.Effect<void, E, R>,
  concurrency: number,
  f: (a: A) => Effect.Effect<Effect.Effect<void, E2, R2>, E2, R2>
): Effect.Effect<void, E | E2, R | R2> =>
  Effect.suspend(() => {
    const handoff = new Handoff<A>(handoffCapacity(concurrency))
    // Once the feed is done (not when it fails: then everything stops), the workers end after the elements held.
    const feeding = Effect.zipRight(
      feed((items, make) => offerEach(handoff, items, make)),
      Effect.sync(() => handoff.end())
    )
    const worker = Effect.gen(function*() {
      let previous: Effect.Effect<void, E2, R2> = Effect.void
      for (;;) {
        // A held element without an Effect; the wait for one only when none is held (or the queue has ended).
        const next = handoff.poll() ?? (yield* handoff.take)
        if (next === undefined) break
        const started = f(next)
        yield* previous
        previous = yield* started
      }
      yield* previous
    })
    return Effect.all([feeding, ...Array.from({ length: concurrency }, () => worker)], {
      concurrency: "unbounded",
      discard: true
    })
  })

/** The plan of a decoded row as it runs (`derived_params` as decoded: JSON text or an older row's list). */
export const stepsOfRow = (row: SkyRLRow): ReadonlyArray<VerifyStep> =>
  toVerifySteps(row.reward_spec.ground_truth.tool_sequence)

// ---------------------------------------------------------------------------------------------
// Stages before execution

/** A row whose plan may run: the decoded row, the row as read and its JSON text, the steps, the journal key. */
export interface Plan {
  readonly _tag: "plan"
  readonly row: SkyRLRow
  readonly value: unknown
  readonly text: string
  readonly steps: ReadonlyArray<VerifyStep>
  readonly hash: string
}

export type Checked =
  | { readonly _tag: "reject"; readonly reject: VerifyReject; readonly passed: Stage | "none" }
  | Plan

interface CheckedRecord {
  readonly located: Located
  readonly checked: Checked
  /** The earlier row of the run this one is the same as (its plan is not run again). */
  readonly copyOf: FirstCopy | undefined
}

/** The first step whose params nest too deep to hash and send (MAX_PARAMS_DEPTH), as a reject's field and reason. */
const tooDeepStep = (row: SkyRLRow): { readonly field: string; readonly reason: string } | undefined => {
  const i = row.reward_spec.ground_truth.tool_sequence.findIndex((s) => nestsDeeperThan(s.params, MAX_PARAMS_DEPTH))
  return i < 0 ? undefined : {
    field: `reward_spec.ground_truth.tool_sequence[${i}].params`,
    reason: `step ${i + 1}: params nested more than ${MAX_PARAMS_DEPTH} levels deep (objects and arrays): ` +
      "too deep to hash and send"
  }
}

/**
 * The first string of a row that holds a lone surrogate, in the row as read (`value`) or in a step's params
 * (JSON text in the row: `"\\ud800"` there is one once it is parsed), as a reject's field and reason. No file
 * `datasets` loads can hold the row, and MCPToolEnv refuses to send such params (no MCP transport can).
 */
const loneSurrogateInRow = (
  value: unknown,
  row: SkyRLRow
): { readonly field: string; readonly reason: string } | undefined => {
  const inRow = loneSurrogateIn(value)
  if (inRow !== undefined) return { field: inRow.field, reason: inRow.reason }
  const steps = row.reward_spec.ground_truth.tool_sequence
  for (let i = 0; i < steps.length; i++) {
    const inParams = loneSurrogateIn(steps[i]!.params, ["reward_spec", "ground_truth", "tool_sequence", i, "params"])
    if (inParams !== undefined) return { field: inParams.field, reason: inParams.reason }
  }
  return undefined
}

/**
 * The first step param that is a number beyond a double's range (JSON text such as 1e400 parses to Infinity),
 * as a reject's field and reason: the call would send it as null (JSON has no Infinity), so what ran and was
 * recorded would not be the row's call.
 */
const nonFiniteParam = (row: SkyRLRow): { readonly field: string; readonly reason: string } | undefined => {
  const steps = row.reward_spec.ground_truth.tool_sequence
  for (let i = 0; i < steps.length; i++) {
    const at = nonFiniteAt(steps[i]!.params, ["reward_spec", "ground_truth", "tool_sequence", i, "params"])
    if (at !== undefined) return { field: formatPath(at), reason: NON_FINITE_REASON }
  }
  return undefined
}

/** read → contract → schema: the row's plan, or the stage it failed with the reason. */
export const checkRecord = (located: Located, inventory: Inventory): Checked => {
  const { file, record } = located
  const at = { file, row: record.index, ...(record.line === undefined ? {} : { line: record.line }) }
  if (record._tag === "Unparsable") {
    return { _tag: "reject", passed: "none", reject: { ...at, stage: "read", reason: record.reason } }
  }
  const tooDeep = deepJsonTextFault(record.value)
  if (tooDeep !== undefined) {
    return { _tag: "reject", passed: "none", reject: { ...at, stage: "read", reason: tooDeep } }
  }
  const decoded = decodeRow(record.value)
  if (Either.isLeft(decoded)) {
    const missingPlan = /tool_sequence/.test(decoded.left.path) ? "no usable plan: " : ""
    return {
      _tag: "reject",
      passed: "read",
      reject: { ...at, stage: "contract", field: decoded.left.path, reason: `${missingPlan}${decoded.left.message}` }
    }
  }
  const row = decoded.right
  const lone = record.escapes === false ? undefined : loneSurrogateInRow(record.value, row)
  if (lone !== undefined) return { _tag: "reject", passed: "read", reject: { ...at, stage: "contract", ...lone } }
  const infinite = nonFiniteParam(row)
  if (infinite !== undefined) {
    return { _tag: "reject", passed: "read", reject: { ...at, stage: "contract", ...infinite } }
  }
  const field = "reward_spec.ground_truth.tool_sequence"
  if (row.reward_spec.ground_truth.tool_sequence.length === 0) {
    return {
      _tag: "reject",
      passed: "read",
      reject: { ...at, stage: "contract", field, reason: "no plan: the row has no steps" }
    }
  }
  const deep = tooDeepStep(row)
  if (deep !== undefined) return { _tag: "reject", passed: "read", reject: { ...at, stage: "contract", ...deep } }
  // The journal's key: the row as read (the same file text parses to the same key order).
  const text = JSON.stringify(record.value)
  // A step's name and params are text of the row's JSON (the params' JSON text, or the values as written).
  const long = tooLongStep(row.reward_spec.ground_truth.tool_sequence, text.length)
  if (long !== undefined) {
    return {
      _tag: "reject",
      passed: "read",
      reject: { ...at, stage: "contract", field: long.field, reason: long.reason }
    }
  }
  const steps = row.reward_spec.ground_truth.tool_sequence
  const issues = validatePlan(inventory, steps)
  if (issues.length > 0) {
    const first = issues[0]!
    // The field names the step's place in the list, not its number: a misnumbered step's first issue is its
    // number's (`path` "step"), and the first issue belongs to the first step that has one.
    const index = first.path === "step"
      ? steps.findIndex((s, i) => s.step === first.step && s.step !== i + 1)
      : first.step - 1
    return {
      _tag: "reject",
      passed: "contract",
      reject: {
        ...at,
        stage: "schema",
        step: first.step,
        server: first.server,
        tool: first.tool,
        // The first issue's own field (`...[0].server`, `...[0].params.limit`), as `validate` names it.
        field: `${field}[${index}].${first.path.split("/").join(".")}`,
        reason: issues.map(formatIssue).join("; ")
      }
    }
  }
  return { _tag: "plan", row, value: record.value, text, steps: stepsOfRow(row), hash: sha256Hex(text) }
}

// ---------------------------------------------------------------------------------------------
// The same row twice in one run

type PlanOutcome = Either.Either<VerificationRecord, VerificationFailed>

/**
 * What the copies of a row need of its plan's outcome: a failure as it is; of a verified record only what
 * a copy's own steps do not give again (a verified plan's steps all answered, each under its call's key).
 * One is kept per distinct row for the whole run (a copy may come last): with its hash and FirstCopy, ~250
 * bytes a row, against ~700 keeping the record.
 */
type Kept =
  | VerificationFailed
  | (Pick<VerificationRecord, "verified_at" | "servers" | "derived_values_found"> & {
    /** Each step's `derived_values_found` (undefined where it has none). */
    readonly found: ReadonlyArray<boolean | undefined>
    /** The indexes of the steps with `stored_answer_differs`, when any has it. */
    readonly differs?: ReadonlyArray<number>
  })

const keptOf = (outcome: PlanOutcome): Kept =>
  Either.isRight(outcome)
    ? {
      verified_at: outcome.right.verified_at,
      servers: outcome.right.servers,
      derived_values_found: outcome.right.derived_values_found,
      found: outcome.right.steps.map((s) => s.derived_values_found),
      ...differsOf(outcome.right.steps)
    }
    : outcome.left

const differsOf = (steps: VerificationRecord["steps"]): { readonly differs?: ReadonlyArray<number> } => {
  const differs = steps.flatMap((s, i) => s.stored_answer_differs === true ? [i] : [])
  return differs.length === 0 ? {} : { differs }
}

/** The outcome kept, made whole again for a copy's steps (the same as the first row's). */
const outcomeAgain = (kept: Kept, steps: ReadonlyArray<VerifyStep>): PlanOutcome =>
  kept instanceof VerificationFailed
    ? Either.left(kept)
    : Either.right(verifiedRecord(
      kept.verified_at,
      kept.servers,
      steps.map((s, i) =>
        recordStep(s, callKey(s.server, s.tool, s.params), kept.found[i], kept.differs?.includes(i) === true)
      ),
      kept.derived_values_found
    ))

/**
 * The first row of the run with a given hash (the same JSON text as read). The rows after it with that hash
 * are its copies: they do not run the plan again (nothing acts or is paid for twice) but take its outcome,
 * as `--resume` gives a journaled outcome to every copy; a copy that comes while the plan runs waits.
 */
class FirstCopy {
  private kept: Kept | undefined = undefined
  private waiting: Deferred.Deferred<PlanOutcome> | undefined = undefined
  constructor(readonly file: string, readonly row: number) {}

  /** The plan's outcome for a copy of its row (`steps`: the copy's), once it is known. */
  outcomeFor(steps: ReadonlyArray<VerifyStep>): Effect.Effect<PlanOutcome> {
    if (this.kept !== undefined) return Effect.succeed(this.asCopy(outcomeAgain(this.kept, steps)))
    this.waiting ??= Deferred.unsafeMake<PlanOutcome>(FiberId.none)
    return Effect.map(Deferred.await(this.waiting), (outcome) => this.asCopy(outcome))
  }

  known(outcome: PlanOutcome): void {
    this.kept = keptOf(outcome)
    if (this.waiting !== undefined) Deferred.unsafeDone(this.waiting, Exit.succeed(outcome))
  }

  /** The plan's outcome as its copy's: a failure's reason says which row ran it. */
  private asCopy(outcome: PlanOutcome): PlanOutcome {
    return Either.mapLeft(outcome, (f) =>
      new VerificationFailed({
        ...failureFields(f),
        reason: `the same row as ${this.file}:row ${this.row}, not run again: ${f.reason}`
      }))
  }
}

/**
 * In input order (the feed's): the earlier row of the run `checked` is a copy of, or undefined when it is
 * the first with its hash (then recorded as such), or has no plan to run, or the journal holds its outcome.
 */
const firstCopyOf = (located: Located, checked: Checked, ctx: RunContext): FirstCopy | undefined => {
  if (checked._tag === "reject" || ctx.done.has(checked.hash)) return undefined
  const first = ctx.firsts.get(checked.hash)
  if (first === undefined) ctx.firsts.set(checked.hash, new FirstCopy(located.file, located.record.index))
  return first
}

// ---------------------------------------------------------------------------------------------
// Journal

/**
 * What decides whether a journaled outcome stands (`outcomeStands`): the cassette store's keys, which steps
 * have side effects, and the store's file (for the warning about results held elsewhere).
 */
interface JournalJudge {
  readonly hasResult: (key: string) => boolean
  readonly sideEffect: (step: { readonly server: string; readonly tool: string }) => boolean
  readonly storeFile: Effect.Effect<string>
}

/**
 * What becomes of the rows of journal lines that are not readable: no outcome is taken from them. A plan with
 * side effects has a line (`interrupted`) before it acts, which stands when its outcome line is lost.
 */
const SKIPPED_JOURNAL_LINES = "the rows whose outcome they held run again, unless a later line holds it; a plan " +
  "with side effects whose earlier line (interrupted, written before it acted) reads is rejected as interrupted, " +
  "never run again"

/**
 * The journal's final outcomes, read a few lines at a time (a journal may be larger than one string can be),
 * with a warning naming the lines that are not readable, or saying there is no journal.
 */
const readJournal = (file: string, judge: JournalJudge) =>
  Effect.gen(function*() {
    const found = yield* (yield* Storage).exists(file)
    if (!found) {
      // A mistyped --out, or another directory: nothing to continue, and every row (side effects too) runs.
      yield* Effect.logWarning(
        `--resume: ${file} is not there (no verify run of this --out to continue): every row runs`
      )
    }
    const entries = new Map<string, JournalEntry>()
    // A row's last line decides (an `interruptedAt` line is followed by the plan's outcome, final or not).
    const read = yield* readLogEntries(file, JournalEntry, (e) => {
      if (outcomeStands(e, judge.hasResult, judge.sideEffect)) entries.set(e.hash, e)
      else entries.delete(e.hash)
    })
    yield* warnSkippedLines(file, read, SKIPPED_JOURNAL_LINES)
    const elsewhere = standingElsewhere(entries.values(), judge.hasResult, judge.sideEffect)
    if (elsewhere > 0) yield* Effect.logWarning(resultsElsewhereWarning(elsewhere, yield* judge.storeFile))
    yield* logNotRetried(entries.values())
    // A last line cut short by a crash: the journal's first write cuts it off, or starts a line of its own
    // after a whole entry (durableLog's `fragment`, `torn`).
    return { entries, tail: tailOf(read), found }
  })

/** Says how many journaled timeouts and unavailable servers are not retried: a step with side effects ran. */
const logNotRetried = (entries: Iterable<JournalEntry>) => {
  // Grouped by what happened (the journal knows rows by hash only: their numbers come with the dataset's rows).
  const counts = new Map<string, number>()
  let rows = 0
  for (const e of entries) {
    if (e.failure?.sideEffectRan === undefined) continue
    const what = `${e.failure.status} after step ${e.failure.sideEffectRan}`
    counts.set(what, (counts.get(what) ?? 0) + 1)
    rows++
  }
  const groups = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([what, n]) => `${n} ${what}`)
  return rows === 0 ? Effect.void : Effect.logWarning(
    `${rows} ${rows === 1 ? "row" : "rows"} not retried (${groups.slice(0, 5).join(", ")}${
      groups.length > 5 ? ", ..." : ""
    }): a step with side effects already ran, and running the plan again would act twice; their outcome is kept`
  )
}

// ---------------------------------------------------------------------------------------------
// Execution

/** The row with its verification record (`task_metadata.verification`). */
export const withVerification = (row: SkyRLRow, record: VerificationRecord): SkyRLRow =>
  new SkyRLRow(
    { ...row, extra_info: { task_metadata: { ...row.extra_info.task_metadata, verification: record } } },
    { disableValidation: true }
  )

/**
 * `withVerification` of a row to write: its JSON text made from the text read when the row is in the form
 * skyrl writes (the same bytes, nothing encoded again), the row itself otherwise, with the columns of the user's own
 * that the row as read holds (`withOwnColumns`).
 */
const verifiedRow = (plan: Plan, record: VerificationRecord, recordJson?: string): WritableRow => {
  const text = rowJsonWithMetadata(plan.value, plan.text, plan.row, "verification", record, recordJson)
  return text === undefined ? withOwnColumns(withVerification(plan.row, record), plan.value) : new RowJson(text)
}

const rejectOf = (
  located: Located,
  failure: VerificationFailed | NonNullable<JournalEntry["failure"]>
): VerifyReject => ({
  file: located.file,
  row: located.record.index,
  ...(located.record.line === undefined ? {} : { line: located.record.line }),
  stage: "execution",
  status: failure.status,
  ...(failure.step === undefined ? {} : { step: failure.step }),
  ...(failure.server === undefined ? {} : { server: failure.server }),
  ...(failure.tool === undefined ? {} : { tool: failure.tool }),
  reason: failure.reason
})

interface RunContext {
  readonly verifier: VerifierApi
  readonly journal: DurableLog
  /** Waits until the journal file is ready (emptied, for a fresh run). */
  readonly journalReady: Effect.Effect<void, StorageError>
  readonly done: ReadonlyMap<string, JournalEntry>
  /** The first row of the run with each hash, for its copies (see FirstCopy). */
  readonly firsts: Map<string, FirstCopy>
  readonly counter: SummaryCounter
  /** The servers of the rows taken from the journal (`fromJournal`). */
  readonly earlierServers: Map<string, Set<string | null>>
  /** Whether a plan has a step whose tool is not annotated read-only. */
  readonly hasSideEffects: (steps: ReadonlyArray<VerifyStep>) => boolean
  /** What Ctrl-C says of a plan it lets finish (`finishingNotice`): which row. */
  readonly finishing: (plan: string) => string
}

/**
 * Starts a checked row (its first call is sent now when its server is up) and returns the wait for its
 * calls, which gives the rest: recording the outcome in the summary (and the journal when final) and
 * handing it to `push` (called when the completion runs). A plan with side effects does all of it before the wait ends.
 */
const startRecord = (
  { checked, copyOf, located }: CheckedRecord,
  ctx: RunContext,
  push: (o: Outcome) => Effect.Effect<void>
): Effect.Effect<Effect.Effect<void, StorageError>, StorageError> => {
  if (checked._tag === "reject") {
    return Effect.succeed(Effect.suspend(() => {
      ctx.counter.add({ passed: checked.passed })
      return push({ _tag: "rejected", order: located.order, reject: checked.reject, resumed: false })
    }))
  }
  const previous = ctx.done.get(checked.hash)
  if (previous !== undefined) {
    return Effect.succeed(Effect.suspend(() => push(fromJournal(located, checked, previous, ctx))))
  }
  if (copyOf !== undefined) {
    return Effect.map(
      copyOf.outcomeFor(checked.steps),
      (outcome) => Effect.suspend(() => push(settle(located, checked, outcome, ctx, "copy")))
    )
  }
  // A plan with side effects waits until its results and journal line are on disk, so a crash after
  // it never makes `--resume` run it twice; read-only plans are written in the background.
  if (ctx.hasSideEffects(checked.steps)) {
    // Before the first step with side effects is sent, the journal says it may act (`interruptedAt`): a run
    // killed after that never runs the plan again on --resume. The plan's outcome then always follows it.
    const intent = sideEffectIntent((failure) =>
      ctx.journal.append(JSON.stringify({ hash: checked.hash, failure }) + "\n", { wait: true })
    )
    const finish = (outcome: Either.Either<VerificationRecord, VerificationFailed>) => {
      const recordJson = recordJsonOf(outcome)
      const settled = settleRan(located, checked, outcome, ctx, recordJson)
      const line = journalLine(checked, outcome, recordJson, intent.written())
      const written = line === undefined ? Effect.void : ctx.journal.append(line, { wait: true })
      return Effect.as(written, Effect.suspend(() => push(settled)))
    }
    // Started only when waited for, so an interruption before that never runs them; not before the journal
    // that will record them is ready. Once started, run to the journal line even when interrupted.
    return Effect.zipRight(
      ctx.journalReady,
      toCompletion(
        Effect.matchEffect(
          ctx.verifier.verify(checked.steps, { durable: true, beforeSideEffect: intent.beforeSideEffect }),
          {
            onFailure: (e) => e._tag === "VerificationFailed" ? finish(Either.left(e)) : Effect.fail(e),
            onSuccess: (record) => finish(Either.right(record))
          }
        ),
        () => ctx.finishing(rowName(located))
      )
    )
  }
  // Started now (its first call sent); the completion records the last answer in the cassettes, settles
  // the row, queues its journal line for the background writer and hands the outcome on, with no Effect of
  // its own beyond those it must run. The worker runs it once it has sent its next row's first call.
  const complete = (finish: Finish) =>
    Effect.suspend(() => {
      const { kick, outcome } = finish()
      const recordJson = recordJsonOf(outcome)
      const settled = settleRan(located, checked, outcome, ctx, recordJson)
      const line = journalLine(checked, outcome, recordJson)
      const logged = line === undefined ? Effect.void : ctx.journal.appendNow(line)
      const started = kick === Effect.void ? logged : logged === Effect.void ? kick : Effect.zipRight(kick, logged)
      return started === Effect.void ? push(settled) : Effect.zipRight(started, push(settled))
    })
  return Effect.match(ctx.verifier.begin(checked.steps), {
    onFailure: (e) => complete(() => ({ outcome: Either.left(e), kick: Effect.void })),
    onSuccess: complete
  })
}

/** The verification record's JSON text, made once for the row and its journal line. */
const recordJsonOf = (outcome: Either.Either<VerificationRecord, VerificationFailed>) =>
  Either.isRight(outcome) ? JSON.stringify(outcome.right) : undefined

/**
 * The journal line of a final outcome (undefined when it is not final: the row runs again on `--resume`;
 * after an `interruptedAt` line (`always`) a line all the same, which replaces it): `JSON.stringify` of the
 * JournalEntry, the record's part from its text `recordJson` when given.
 */
const journalLine = (
  plan: Plan,
  outcome: Either.Either<VerificationRecord, VerificationFailed>,
  recordJson?: string,
  always = false
) => {
  if (!always && !isFinalForResume(outcome)) return undefined
  if (Either.isRight(outcome)) {
    return `{"hash":${JSON.stringify(plan.hash)},"record":${recordJson ?? JSON.stringify(outcome.right)}}\n`
  }
  const entry: JournalEntry = { hash: plan.hash, failure: failureFields(outcome.left) }
  return JSON.stringify(entry) + "\n"
}

const fromJournal = (located: Located, plan: Plan, entry: JournalEntry, ctx: RunContext): Outcome => {
  noteEarlierServers(ctx.earlierServers, plan, entry)
  const outcome = entry.record !== undefined
    ? Either.right(entry.record)
    : Either.left(new VerificationFailed(entry.failure!))
  return settle(located, plan, outcome, ctx, "journal")
}

/**
 * Adds the servers of a journaled outcome to `into`: a verified record's servers with their versions; for a
 * failure, the servers of the steps it sent (up to its failing step; every step when it names none), no version.
 */
const noteEarlierServers = (into: Map<string, Set<string | null>>, plan: Plan, entry: JournalEntry) => {
  const versionsOf = (server: string) => {
    let set = into.get(server)
    if (set === undefined) into.set(server, set = new Set())
    return set
  }
  if (entry.record !== undefined) {
    for (const [server, version] of Object.entries(entry.record.servers)) versionsOf(server).add(version)
    return
  }
  const last = entry.failure?.step ?? Infinity
  for (const s of plan.steps) if (s.step <= last) versionsOf(s.server)
}

/** The outcome of a plan run in this run: settled, and given to the row's copies later in the run. */
const settleRan = (
  located: Located,
  plan: Plan,
  outcome: PlanOutcome,
  ctx: RunContext,
  recordJson: string | undefined
): Outcome => {
  ctx.firsts.get(plan.hash)?.known(outcome)
  return settle(located, plan, outcome, ctx, "run", recordJson)
}

const settle = (
  located: Located,
  plan: Plan,
  outcome: PlanOutcome,
  ctx: RunContext,
  from: OutcomeSource,
  recordJson?: string
): Outcome => {
  const resumed = from === "journal"
  if (Either.isRight(outcome)) {
    ctx.counter.add({
      passed: "execution",
      status: "verified",
      derivedNotFound: outcome.right.derived_values_found === false
    }, from)
    return { _tag: "verified", order: located.order, row: verifiedRow(plan, outcome.right, recordJson), resumed }
  }
  ctx.counter.add({ passed: "schema", status: outcome.left.status, failure: outcome.left }, from)
  return { _tag: "rejected", order: located.order, reject: rejectOf(located, outcome.left), resumed }
}

/** The end of a row stream that held no verified row (not an error of the run: see `orderedOutputs`). */
const nothingVerified = { _tag: "NothingVerified" } as const

/** Verified rows handed to the dataset's writer at once. */
const OUTPUT_BATCH = 64

/**
 * The outputs, as outcomes come in: verified rows go to `out` in input order while the run goes on (an
 * outcome waits only for those before it, as rows finish out of order; memory holds the rows in flight,
 * not the dataset); rejects are kept (small) and written with the dataset, as its companion (`write`).
 * `write` is the dataset's writer, to run beside the workers; `end` (after the last `push`) lets it finish.
 */
const orderedOutputs = (out: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const rows = yield* Queue.bounded<Option.Option<WritableRow>>(1024)
    let count = 0
    const rejects: Array<string> = []
    const rejectsFile = rejectsFileOf(out)
    // This run's rejects, empty when none was rejected (the file never lists an earlier run's); taken once the
    // last row is written, when every outcome is in.
    const rejectsText = () => rejects.join("")
    // The rejects file is replaced with the dataset (`companion`: written and synced beside it before its
    // rename, renamed right after), never without it: a dataset that cannot be written (a full disk) leaves
    // the earlier run's pair as it was. A run that verified no row fails its write before the commit, so an
    // existing `out` stays as it was; the rejects, which say why (the command fails), are then written alone.
    // The write then counts 0 rows.
    const write = storage.writeRowStream(
      out,
      Stream.fromQueue(rows).pipe(
        Stream.takeWhile(Option.isSome),
        Stream.map((o) => (count++, o.value)),
        Stream.concat(Stream.suspend(() => count === 0 ? Stream.fail(nothingVerified) : Stream.empty))
      ),
      { companion: { file: rejectsFile, text: rejectsText } }
    ).pipe(Effect.catchIf(
      (e): e is typeof nothingVerified => e === nothingVerified,
      () => Effect.as(storage.writeFileAtomic(rejectsFile, rejectsText()), 0)
    ))
    const lock = yield* Effect.makeSemaphore(1)
    const waiting = new Map<number, Outcome>()
    let next = 0
    // Verified rows go to the writer OUTPUT_BATCH at a time (one wake-up of the writer per batch), in
    // input order: they are put in `verified` synchronously, and batches are offered under the lock.
    let verified: Array<Option.Option<WritableRow>> = []
    const handOver = lock.withPermits(1)(Effect.suspend(() => {
      const batch = verified
      verified = []
      return Queue.offerAll(rows, batch)
    }))
    const handOverVoid = Effect.asVoid(handOver)
    const drain = () => {
      for (let o = waiting.get(next); o !== undefined; o = waiting.get(next)) {
        waiting.delete(next++)
        if (o._tag === "verified") verified.push(Option.some(o.row))
        else rejects.push(toJsonText(o.reject) + "\n")
      }
    }
    return {
      /** Takes the outcome when called (no Effect per row); returns the hand-over to run when a batch is full. */
      push: (o: Outcome): Effect.Effect<void> => {
        waiting.set(o.order, o)
        if (o.order === next) drain()
        return verified.length >= OUTPUT_BATCH ? handOverVoid : Effect.void
      },
      write,
      end: Effect.zipRight(handOver, Queue.offer(rows, Option.none())),
      /** The rejects of the run (once `write` is done). */
      rejected: () => rejects.length
    }
  })

/**
 * Verifies the rows of `files` and writes the verified ones to `out` and the others to
 * `<out>.rejects.jsonl`. Needs a Verifier (servers and cassettes) and Storage.
 */
export const verifyDatasets = (options: VerifyDatasetsOptions) =>
  Effect.scoped(Effect.gen(function*() {
    // Before the journal is read (and any server starts).
    if (options.outLocked !== true) yield* lockOutput(options.out, "verify")
    const verifier = yield* Verifier
    const journalFile = journalFileOf(options.out)
    const { entries: done, found, tail } = options.resume
      ? yield* readJournal(journalFile, {
        hasResult: verifier.hasResult,
        sideEffect: verifier.sideEffect,
        storeFile: Effect.map(verifier.report, (r) => r.cassettes.file)
      })
      : { entries: new Map<string, JournalEntry>(), tail: WHOLE, found: false }
    // Without a journal, its warning has said that every row runs.
    if (found) {
      yield* Effect.logInfo(
        `${journalFile}: ${done.size} ${done.size === 1 ? "row" : "rows"} already verified or failed`
      )
    }
    const journal = yield* openJournal(journalFile, options.resume, tail)
    const ctx: RunContext = {
      verifier,
      journal: journal.log,
      journalReady: journal.ready,
      done,
      firsts: new Map(),
      counter: new SummaryCounter(),
      earlierServers: new Map(),
      hasSideEffects: (steps) => steps.some(verifier.sideEffect),
      finishing: finishingNotice()
    }
    const outputs = yield* orderedOutputs(options.out)
    // The stages before execution run in the reading fiber, ahead of the workers (while they wait for
    // the servers), so their CPU time is off the calls' path.
    const verifying = forEachConcurrently<CheckedRecord, InputError | StorageError, Storage, StorageError, never>(
      (offerEach) =>
        eachChunk(options.files, options.limit, (chunk) =>
          offerEach(chunk, (located) => {
            const checked = checkRecord(located, options.inventory)
            return { located, checked, copyOf: firstCopyOf(located, checked, ctx) }
          })),
      options.concurrency,
      (r) => startRecord(r, ctx, outputs.push)
    )
    // Every row's cassette entries and journal line are on disk before the dataset that names them is
    // committed (the two flushes side by side: other files).
    const settled = Effect.zipRight(
      verifying,
      Effect.all([verifier.flush, journal.settle], { concurrency: 2, discard: true })
    )
    // The dataset is written beside the workers; a failure of either stops both. Once every row is settled
    // the dataset's last rows are written and committed, and the rejects file with them (`orderedOutputs`).
    const [, written] = yield* Effect.all([Effect.zipRight(settled, outputs.end), outputs.write], { concurrency: 2 })
    return {
      summary: ctx.counter.summary(),
      earlierServers: ctx.earlierServers,
      written,
      rejects: outputs.rejected(),
      rejectsFile: rejectsFileOf(options.out)
    } satisfies VerifyResult
  }))

/**
 * The run's journal log. A fresh run empties an existing journal (atomically) while its first rows run:
 * the journal's first write, a plan with side effects (`ready`) and the dataset's commit (`settle`) wait
 * for it. A journal that is not there needs no emptying: its first write creates it, and `settle` makes
 * an empty one for a run that wrote none. `settle` also flushes the log.
 */
const openJournal = (file: string, resume: boolean, tail: LogTail) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const stale = !resume && (yield* storage.exists(file))
    const ready = stale ? Fiber.join(yield* Effect.forkScoped(storage.writeFileAtomic(file, ""))) : Effect.void
    const log = yield* makeDurableLog(file, undefined, { ...tail, ready })
    const settle = Effect.all([log.flush, ready], { concurrency: 2, discard: true }).pipe(
      Effect.zipRight(Effect.gen(function*() {
        if (!resume && !stale && !(yield* storage.exists(file))) yield* storage.writeFileAtomic(file, "")
      }))
    )
    return { log, ready, settle }
  })

// ---------------------------------------------------------------------------------------------
// Dry run

export interface DryRunLine {
  readonly file: string
  readonly row: number
  readonly action: "run" | "skip-side-effect" | "copy" | "resume" | "reject"
  readonly text: string
}

/** What `verify` would do with each row, without starting a server. */
/**
 * The journal's outcomes `--resume` would take, for a dry run: read as the run reads them (`readJournal`),
 * with the store's keys read (nothing written, nothing started) and side effects by the inventory's annotations.
 */
const journaledForDryRun = (options: VerifyDatasetsOptions & { readonly cassettesDir: string }) =>
  Effect.gen(function*() {
    const store = path.join(options.cassettesDir, CASSETTE_FILE)
    const { keys } = yield* readStoreKeys(yield* Storage, store)
    const judge = {
      hasResult: (k: string) => keys.has(k),
      sideEffect: sideEffectByInventory(options.inventory),
      storeFile: Effect.succeed(store)
    }
    return (yield* readJournal(journalFileOf(options.out), judge)).entries
  })

export const dryRunDatasets = (
  options: VerifyDatasetsOptions & {
    readonly blocked: (steps: ReadonlyArray<VerifyStep>) => ReadonlyArray<VerifyStep>
    /** With `resume`: the cassette store the run would use (a journaled outcome stands when it holds its results). */
    readonly cassettesDir: string
    /**
     * Takes each row's line as it is made (the CLI prints it), in row order; the result's `lines` is then
     * empty. Without it every line is kept for the result (a dataset of a million rows, a million lines).
     */
    readonly onLine?: ((line: DryRunLine) => Effect.Effect<void>) | undefined
  }
) =>
  Effect.gen(function*() {
    const done = options.resume ? yield* journaledForDryRun(options) : new Map<string, JournalEntry>()
    const counter = new SummaryCounter()
    const servers = new Set<string>()
    const lines: Array<DryRunLine> = []
    // The first row of the run with each hash, and whether it is skipped: the rows after it with that hash
    // are its copies, which the run does not run again but gives its outcome (FirstCopy).
    const firsts = new Map<string, { readonly file: string; readonly row: number; readonly skipped: boolean }>()
    const lineOf = (located: Located): DryRunLine => {
      const checked = checkRecord(located, options.inventory)
      const at = { file: located.file, row: located.record.index }
      if (checked._tag === "reject") {
        counter.add({ passed: checked.passed })
        const r = checked.reject
        return {
          ...at,
          action: "reject",
          text: `${r.stage}${r.field === undefined ? "" : ` ${r.field}`}: ${r.reason}`
        }
      }
      const journaled = done.get(checked.hash)
      if (journaled !== undefined) {
        // As the run takes it (`fromJournal`): its outcome, counted as resumed.
        const failure = journaled.failure
        counter.add(
          failure === undefined
            ? { passed: "execution", status: "verified" }
            : { passed: "schema", status: failure.status, failure: new VerificationFailed(failure) },
          "journal"
        )
        const outcome = failure === undefined ? "verified" : `${failure.status}: ${failure.reason}`
        return { ...at, action: "resume", text: `the journal's outcome, not run again: ${outcome}` }
      }
      const first = firsts.get(checked.hash)
      if (first !== undefined) {
        // Counted as the run counts it: with the first row's outcome (skipped, or not known before it runs).
        counter.add({ passed: "schema", ...(first.skipped ? { status: "skipped-side-effect" } : {}) }, "copy")
        return {
          ...at,
          action: "copy",
          text: `the same row as ${first.file}:row ${first.row}, not run again${
            first.skipped ? " (skip-side-effect)" : ""
          }`
        }
      }
      const calls = checked.steps.map((s) => `${s.server}/${s.tool}`).join(", ")
      const blocked = options.blocked(checked.steps)
      firsts.set(checked.hash, { ...at, skipped: blocked.length > 0 })
      // A skipped row is known without running anything: counted as the run would count it.
      counter.add({ passed: "schema", ...(blocked.length > 0 ? { status: "skipped-side-effect" } : {}) })
      if (blocked.length > 0) {
        return {
          ...at,
          action: "skip-side-effect",
          text: blocked.map((s) => `step ${s.step} ${s.server}/${s.tool}`).join(", ")
        }
      }
      for (const s of checked.steps) servers.add(s.server)
      return { ...at, action: "run", text: `${checked.steps.length} steps: ${calls}` }
    }
    const { onLine } = options
    yield* eachRecord(
      options.files,
      options.limit,
      onLine === undefined
        ? (located) => Effect.sync(() => void lines.push(lineOf(located)))
        : (located) => Effect.suspend(() => onLine(lineOf(located)))
    )
    return { lines, servers: [...servers].sort(), summary: counter.summary() }
  })
