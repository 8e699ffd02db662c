/**
 * The run engine shared by `generate` and `enrich`, and run over a run's archive by `rebuild` and over
 * batch answers by `batch collect`: plan the work, make each sample (sample.ts: call → attempt →
 * sample, judged by acceptance.ts), write the dataset.
 *
 * Durability: every model call is archived as it happens and put in the cost ledger; every finished
 * sample is journaled (append + fsync, group-committed; a row's line takes its place in the journal in
 * the same atomic step that claims its prompt, so the journal's order is the claim order); the dataset
 * is written atomically from the journal at the end, filtered to the run's work plan. The run directory belongs to one process at a time (RunJournal's lock). Answers come through
 * `archiveFirst`: a sample asks for what it needs by request key, and whatever the archive already holds
 * (a crash between archiving and journaling, an earlier batch round) is replayed instead of asked again,
 * so a paid answer is neither requested twice nor counted twice.
 */
import { Clock, Effect, Layer, Ref, Runtime, Schema } from "effect"
import * as path from "node:path"
import { StorageError } from "../domain/errors.js"
import * as Inv from "../domain/inventory.js"
import type { Usage } from "../domain/llm.js"
import type { EncodedRow } from "../domain/row.js"
import { SkyRLRow } from "../domain/row.js"
import type { JournalEntry, RejectRecord, RunSettings } from "../domain/run.js"
import { IncompleteRun } from "../domain/run.js"
import type { ModelTask } from "../domain/task.js"
import type { RunStop } from "../services/CostLedger.js"
import { CostLedger, finalStopReason } from "../services/CostLedger.js"
import type { InventoryApi } from "../services/Inventory.js"
import { Inventory } from "../services/Inventory.js"
import { Llm } from "../services/Llm.js"
import { archiveFirst } from "../services/llm/archive.js"
import { Progress } from "../services/Progress.js"
import { callRefInRunDir } from "../services/runArchive.js"
import type { RunSpec } from "../services/RunJournal.js"
import { RunJournal } from "../services/RunJournal.js"
import { StopRequests } from "../services/StopRequests.js"
import { Storage } from "../services/Storage.js"
import type { DiversityReport } from "../skyrl/diversity.js"
import { diversityOfRows, renderDiversityText } from "../skyrl/diversity.js"
import { decodeRow, encodeRow, type OwnColumns, withColumns } from "../skyrl/layout.js"
import { DEFAULT_NEAR_DUP_THRESHOLD } from "../skyrl/nearDup.js"
import type { PlanStep } from "../skyrl/planValidation.js"
import type { PromptReading } from "../skyrl/promptReading.js"
import type { AcceptanceOptions, VerifyHook } from "./acceptance.js"
import { makeAcceptance } from "./acceptance.js"
import type { RunContext } from "./sample.js"
import { callsInFlight, sample, stopWaitingCalls } from "./sample.js"

export { sampleKey } from "../domain/run.js"
export { TASK_SCHEMA_NAME } from "./sample.js"

export interface Job {
  /** 0-based position in the run; also the sample number in archive names and journal lines. */
  readonly index: number
}

export interface SamplingOptions<J extends Job> {
  readonly command: "generate" | "enrich"
  readonly jobs: ReadonlyArray<J>
  /** The shared prefix (identical for every request of the run). */
  readonly instructions: string
  /**
   * The varying user message for a job's attempt (attempt ≥ 1); `history` is the sample's rejected
   * attempts so far in this session (a duplicate's reject names what to avoid; absent: none).
   */
  readonly requestText: (job: J, attempt: number, history?: ReadonlyArray<RejectRecord>) => string
  /** The raw task handed to `convertTask` once the plan is valid. */
  readonly taskInput: (job: J, task: ModelTask, steps: ReadonlyArray<PlanStep>) => unknown
  /** What a job's request asked of its plan (generate: the requested complexity); repaired like plan problems. */
  readonly jobPlanIssues?: ((job: J, steps: ReadonlyArray<PlanStep>) => ReadonlyArray<string>) | undefined
  /** Extra metadata for the row of a job's attempt. */
  readonly jobMetadata: (job: J, attempt: number) => Readonly<Record<string, unknown>>
  /** Rows that need no model call (enrich: rows that already have a plan), written in index order. */
  readonly passthrough?: ReadonlyArray<{ readonly index: number; readonly row: SkyRLRow }>
  /**
   * The columns of the user's own the row of a job index keeps (enrich: those of its input row, `ownColumnsOf`),
   * written after skyrl's own keys (`withColumns`); none by default.
   */
  readonly columnsOf?: ((index: number) => OwnColumns | undefined) | undefined
  /** A job's own inventory (enrich: the tools its prompt offers); default: the Inventory service's. */
  readonly jobInventory?: (job: J) => InventoryApi | undefined
  /** Rejects found before any call (enrich: unusable input rows), written to the rejects file too. */
  readonly inputRejects?: ReadonlyArray<RejectRecord>
  /** Called once per job the run finishes (enrich logs one line per task). */
  readonly onSampleDone?: (job: J, outcome: SampleOutcome) => Effect.Effect<void>
  /** Row-check rule prefixes that only warn (enrich: the source's prompt size and duplicates). */
  readonly warnOnly?: ReadonlyArray<string>
  /**
   * The inventory the row checks judge plans against (the plan rules, `prompt/plan-leak`) where it is not the
   * Inventory service's: enrich's inventory file (undefined: none, as with --inventory-from-prompt). generate
   * judges against its catalogue.
   */
  readonly checksInventory?: Inv.Inventory | undefined
  /** Rules whose failure ends the sample at once, without a repair or another attempt (`AcceptanceOptions`). */
  readonly finalRules?: AcceptanceOptions<J>["finalRules"]
  /** Rules that are errors at acceptance although warnings in files (a repair when the model can fix them). */
  readonly errorRules?: ReadonlyArray<string>
  /** How the row checks read a prompt's stated literals (default: the current reading). */
  readonly promptReading?: PromptReading | undefined
  /** Prompt token budget of the row checks (default: checks.ts's). */
  readonly maxPromptTokens?: number | undefined
  /**
   * Near-duplicates at acceptance (`nearDup.ts`: MinHash over user prompts at `threshold`, and identical
   * plans): rejected, unless their rules are warn-only (enrich). Undefined: not checked.
   */
  readonly nearDuplicates?: { readonly threshold: number } | undefined
  /** Execution verification before a row is accepted (`generate --verify`, issue 14). */
  readonly verify?: VerifyHook<J> | undefined
  /**
   * Answers came back for this run already (batch collect: the batch answered some lines), so a refused
   * request is about itself from the start, never taken for a fault of the request every sample sends.
   */
  readonly answered?: boolean | undefined
  /** How failed or stopped samples are made again (default: `rerun with --resume`; a batch run collects again). */
  readonly retryHint?: string | undefined
  /**
   * How the rows made are written when the dataset (or its rejects file) could not be: they are journaled in
   * the run directory, and this finishes the run without asking for them again (default: rerun the same
   * command with `--resume`; a batch run collects again; rebuild runs again).
   */
  readonly finishHint?: string | undefined
  /**
   * A signal (the first Ctrl-C or SIGTERM) stops the run gracefully: no new call, the calls in flight end
   * and are kept, the rows made are written (`StopRequests`); otherwise it interrupts at once. generate and
   * enrich online; not rebuild or batch collect (no call in flight to wait for, or a batch's to collect).
   */
  readonly stopOnSignal?: boolean | undefined
  /** Samples to make first, in this order (rebuild: the order the run claimed them). */
  readonly order?: ReadonlyArray<number> | undefined
  /**
   * The caller says what was written (rebuild: rows remade from archived answers, no model called, no rejects
   * file), so the engine's summary line (`wrote N rows to OUT; R rejected attempts, ...; C calls, ..., cost $X`),
   * which would say otherwise, is not logged. Default: it is.
   */
  readonly ownSummary?: boolean | undefined
  /**
   * Sees each row of the dataset as it is encoded for disk (generate: the final checks, made as the file
   * is written with `checksAsWritten` instead of reading the file back).
   */
  readonly inspectWritten?: ((row: EncodedRow) => void) | undefined
  readonly out: string
  /**
   * rebuild: whether the rows may replace an `out` already there, asked with their count and the journal's
   * entries once they are written beside it, before the rename (Storage's `replaceIf`; not asked when no `out`
   * is there); false leaves `out` as it was. Default: they replace it.
   */
  readonly replaceOutIf?: ((written: number, latest: ReadonlyMap<number, JournalEntry>) => boolean) | undefined
  readonly seed: number | null
  readonly maxTools: number
  readonly maxTurns: number
  readonly concurrency: number
  readonly maxCostUsd: number | undefined
  readonly maxAttemptsPerSample: number
  /**
   * rebuild: the attempts after which the run ended each sample it failed, so that the rebuilt run fails
   * it there too (the archive holds no more answers for it) and counts it as the run did.
   */
  readonly failedAfter?: ReadonlyMap<number, number> | undefined
  readonly rawDir: string
  readonly runId: string
  readonly rawGzip: boolean
  readonly indent: number | undefined
  readonly ascii: boolean
  readonly dataSource: string
  /** Where rejected attempts go (undefined: nowhere; rebuild). */
  readonly rejectsFile: string | undefined
  /** Model, backend and effort as configured (for the manifest and row metadata). */
  readonly model: string
  readonly backend: string
  /** Every setting of the session (the manifest's `settings`, for people). */
  readonly settings: Readonly<Record<string, unknown>>
  /** The settings that make the rows (fingerprinted; checked on --resume). */
  readonly runSettings: RunSettings
}

export type SampleOutcome =
  | { readonly status: "row"; readonly row: SkyRLRow; readonly attempts: number; readonly calls: number }
  | {
    readonly status: "failed"
    readonly reasons: ReadonlyArray<string>
    readonly attempts: number
    readonly calls: number
  }

export interface SamplingSummary {
  readonly runId: string
  readonly runDir: string
  readonly valid: number
  readonly requested: number
  readonly rejectedAttempts: number
  readonly failedSamples: number
  readonly calls: number
  readonly usage: Usage
  readonly costUsd: number | undefined
  /** The diversity report of the rows written (also in the manifest). */
  readonly diversity: DiversityReport
}

/** The run directory a run's options describe (generate keeps its inventory there, for rebuild and --force). */
export const runSpecOf = <J extends Job>(
  options: Pick<
    SamplingOptions<J>,
    | "rawDir"
    | "runId"
    | "command"
    | "out"
    | "runSettings"
    | "settings"
    | "model"
    | "backend"
    | "jobs"
    | "passthrough"
    | "rawGzip"
  >,
  inventory?: Inv.Inventory
): RunSpec => ({
  runDir: path.join(options.rawDir, options.runId),
  runId: options.runId,
  command: options.command,
  output: path.resolve(options.out),
  settings: options.runSettings,
  details: options.settings,
  model: options.model,
  backend: options.backend,
  planned: new Set(options.jobs.map((j) => j.index)),
  passthrough: options.passthrough?.length ?? 0,
  gzip: options.rawGzip,
  ...(inventory === undefined ? {} : { inventory: Schema.encodeSync(Inv.Inventory)(inventory) })
})

/** The run's journal (lock, fingerprint, ledger) and the archive-first answer source over the Llm in context. */
export const runLayer = (spec: RunSpec) => archiveFirst.pipe(Layer.provideMerge(RunJournal.layer(spec)))

/** A run of the engine in its own run directory: what generate and enrich run. */
export const runSampling = <J extends Job>(options: SamplingOptions<J>) =>
  Effect.gen(function*() {
    const catalogue = yield* (yield* Inventory).get
    const spec = runSpecOf(options, options.command === "generate" ? catalogue : undefined)
    return yield* runEngine({ ...options, stopOnSignal: true }).pipe(Effect.provide(runLayer(spec)))
  })

const makeContext = <J extends Job>(options: SamplingOptions<J>) =>
  Effect.gen(function*() {
    const inventory = yield* Inventory
    const inventoryOf = (job: J): InventoryApi => options.jobInventory?.(job) ?? inventory
    const outDir = path.dirname(path.resolve(options.out))
    const acceptance = yield* makeAcceptance<J>({
      taskInput: options.taskInput,
      jobPlanIssues: options.jobPlanIssues,
      inventoryOf,
      dataSource: options.dataSource,
      rowSettings: {
        maxPromptTokens: options.runSettings.max_prompt_tokens,
        asOf: options.runSettings.as_of,
        givenSystem: options.runSettings.input?.list_offered_tools === true ? "add-tools" : "keep"
      },
      maxTools: options.maxTools,
      checks: {
        inventory: options.command === "generate" ? inventory.inventory : options.checksInventory,
        ...(options.maxPromptTokens === undefined ? {} : { maxPromptTokens: options.maxPromptTokens }),
        promptReading: options.promptReading,
        // A model that labels its task's complexity is asked to make the label fit the plan (files only warn).
        severity: {
          "plan/complexity": "error",
          ...Object.fromEntries((options.errorRules ?? []).map((r) => [r, "error"]))
        }
      },
      warnOnly: options.warnOnly ?? [],
      finalRules: options.finalRules,
      verify: options.verify,
      nearDuplicates: options.nearDuplicates
    })
    return {
      options,
      llm: yield* Llm,
      journal: yield* RunJournal,
      ledger: yield* CostLedger,
      acceptance,
      inventoryOf,
      stop: yield* Ref.make<RunStop | undefined>(undefined),
      unanswered: { count: 0, reason: undefined },
      refusals: yield* Ref.make({ answered: options.answered === true, unexplained: 0, unreachable: 0 }),
      relativeToOut: (file) => path.relative(outDir, file).split(path.sep).join("/"),
      calls: yield* Effect.makeSemaphore(options.concurrency),
      openCalls: new Set(),
      made: new Map()
    } satisfies RunContext<J>
  })

/**
 * Plan the work: the samples not finished yet, in the order to make them; the rows accepted before
 * (earlier sessions, in the order they were claimed, and rows written without a call) are kept by the
 * checks, so duplicates and Arrow changes are judged against them.
 */
const planWork = Effect.fn("Run.plan")(function*<J extends Job>(ctx: RunContext<J>) {
  const latest = yield* ctx.journal.latest
  for (const index of yield* ctx.journal.rowOrder) ctx.acceptance.seed(index, latest.get(index)?.row)
  for (const p of ctx.options.passthrough ?? []) ctx.acceptance.seed(p.index, encodeRow(p.row))
  const rank = new Map((ctx.options.order ?? []).map((index, i) => [index, i]))
  // A replay of R recorded answers has one for each of samples 1..R; a later sample could only get one of
  // theirs again (its key modulo R), a duplicate at best: it is not asked (see `replayLimitText`).
  const recorded = ctx.llm.recordedAnswers
  const answerable = (job: J) => recorded === undefined || job.index < recorded
  const open = ctx.options.jobs.filter((job) => latest.get(job.index)?.status !== "row")
  const todo = open
    .filter(answerable)
    .map((job) => ({ job, before: latest.get(job.index) }))
    .sort((a, b) =>
      (rank.get(a.job.index) ?? Infinity) - (rank.get(b.job.index) ?? Infinity) || a.job.index - b.job.index
    )
  const unasked = open.length - todo.length
  yield* Effect.logInfo(
    `run ${ctx.journal.spec.runId}: ${todo.length} of ${ctx.options.jobs.length} samples to make with ${ctx.llm.describe}` +
      (open.length < ctx.options.jobs.length ? ` (${ctx.options.jobs.length - open.length} already done)` : "")
  )
  const limit = recorded === undefined || unasked === 0 ? undefined : { recorded, unasked }
  if (limit !== undefined) {
    yield* Effect.logWarning(
      `${ctx.options.jobs.length} samples asked, more than the replay can make: ${replayLimitText(limit, false)}`
    )
  }
  return { todo, limit }
})

/** A replay's limit: how many recorded answers it holds, and how many samples it left unasked for it. */
interface ReplayLimit {
  readonly recorded: number
  readonly unasked: number
}

const replayLimitText = ({ recorded, unasked }: ReplayLimit, ended: boolean): string =>
  `the replay holds ${recorded} recorded answer${recorded === 1 ? "" : "s"}, one for each of samples 1-${recorded}, ` +
  `so it makes at most ${recorded} row${recorded === 1 ? "" : "s"}: the other ${unasked} sample${
    unasked === 1 ? "" : "s"
  } ${ended ? (unasked === 1 ? "was" : "were") : unasked === 1 ? "is" : "are"} not asked (any answer ${
    unasked === 1 ? "it" : "they"
  } could get is one of those again, a duplicate at best); set OPENAI_API_KEY to make more rows`

const progressOf = <J extends Job>(ctx: RunContext<J>, t0: number) =>
  Effect.gen(function*() {
    const counts = yield* ctx.journal.counts
    const totals = yield* ctx.ledger.totals
    return {
      done: counts.done,
      total: ctx.options.jobs.length,
      valid: counts.valid,
      rejected: counts.rejected,
      failed: counts.failed,
      tokens: totals.usage.input + totals.usage.output,
      costUsd: totals.costUsd,
      elapsedMs: (yield* Clock.currentTimeMillis) - t0
    }
  })

/**
 * While the run makes samples, a signal stops it gracefully (`stopOnSignal`): no call starts after it, the
 * calls in flight end and their answers are archived, priced and judged, then the rows made are written and
 * the run ends with the signal's exit code (IncompleteRun). Said on stderr when it comes.
 */
const listenForStop = <J extends Job>(ctx: RunContext<J>) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const stopRequests = yield* StopRequests
    yield* stopRequests.listen((signal) =>
      Runtime.runSync(runtime)(Effect.gen(function*() {
        const reason = `interrupted (${signal === "SIGINT" ? "Ctrl-C" : "SIGTERM"}); ` +
          "the work done so far is kept: rerun the same command with --resume to continue"
        yield* Ref.update(ctx.stop, (s) => s ?? { reason, budget: false, signal })
        // Calls waiting for a rate-limit slot or a retry are not in flight: they end now, sending nothing.
        const n = callsInFlight(ctx)
        yield* stopWaitingCalls(ctx)
        const again = signal === "SIGINT" ? "Ctrl-C" : "SIGTERM"
        yield* Effect.logWarning(
          `${signal}: stopping: no new model call is made; ` + (n === 0
            ? "none is in flight"
            : `waiting for the ${n} call${n === 1 ? "" : "s"} in flight, whose answers are kept ` +
              `(${again} again stops at once and loses them)`)
        )
      }))
    )
  })

/** The engine inside an opened run (RunJournal, CostLedger and the answering Llm in context). */
export const runEngine = Effect.fn("Run.engine")(function*<J extends Job>(options: SamplingOptions<J>) {
  const ctx = yield* makeContext(options)
  const { limit, todo } = yield* planWork(ctx)
  const t0 = yield* Clock.currentTimeMillis
  // Twice as many samples as calls: while `concurrency` of them wait for answers, the others are handled
  // (the call permits bound what is sent). One at a time stays one at a time: samples are then accepted
  // in plan order, which rebuild relies on.
  const work = Effect.forEach(todo, ({ before, job }) => sample(ctx, job, before), {
    concurrency: options.concurrency === 1 ? 1 : 2 * options.concurrency,
    discard: true
  })
  yield* (yield* Progress).track(
    progressOf(ctx, t0),
    // A signal stops the run gracefully while samples are made (after, writing the dataset, it interrupts).
    options.stopOnSignal === true ? Effect.scoped(Effect.zipRight(listenForStop(ctx), work)) : work
  )
  return yield* writeDataset(ctx, limit)
})

/**
 * A journaled `raw_output_path` (relative to the output as the run directory was then) as it is now: the
 * same text for a run that stayed where it was; the run directory's current place for one renamed, copied
 * or moved since (a batch collect of a copy, `--resume --raw-dir`), whose old place may be gone. A text
 * that names no archived call is kept.
 */
const currentRef = <J extends Job>(ctx: RunContext<J>, ref: string | null | undefined) => {
  const inRun = ref === null || ref === undefined ? undefined : callRefInRunDir(ref)
  return inRun === undefined ? ref : ctx.relativeToOut(path.join(ctx.journal.paths.runDir, inRun))
}

/** A journaled row with its `raw_output_path` where the run directory is now (the row itself when unchanged). */
const rowHere = <J extends Job>(ctx: RunContext<J>, row: SkyRLRow): SkyRLRow => {
  const metadata = row.extra_info.task_metadata
  const ref = currentRef(ctx, metadata.raw_output_path)
  if (ref === metadata.raw_output_path) return row
  return new SkyRLRow({ ...row, extra_info: { task_metadata: { ...metadata, raw_output_path: ref } } }, {
    disableValidation: true
  })
}

const rejectsOf = <J extends Job>(ctx: RunContext<J>, latest: ReadonlyMap<number, JournalEntry>) => [
  ...(ctx.options.inputRejects ?? []),
  ...[...latest.values()].sort((a, b) => a.index - b.index).flatMap((e) =>
    e.rejects.map((r) => ({ ...r, raw_output_path: currentRef(ctx, r.raw_output_path) ?? null }))
  )
]

/**
 * The text of a run's rejects file: a line per reject, each naming the run (null: none was made, as for an
 * `enrich` whose every input row was rejected).
 */
export const rejectsFileText = (runId: string | null, rejects: ReadonlyArray<RejectRecord>): string =>
  rejects.map((r) => JSON.stringify({ run_id: runId, ...r }) + "\n").join("")

/** Write the dataset (every journaled row of the plan, in sample order) and the rejects; settle the run. */
const writeDataset = Effect.fn("Run.write")(function*<J extends Job>(
  ctx: RunContext<J>,
  replayLimit: ReplayLimit | undefined
) {
  const storage = yield* Storage
  const { journal, options } = ctx
  const latest = yield* journal.latest
  const rows = new Map<number, { readonly row: SkyRLRow; readonly encoded: unknown }>()
  for (const e of latest.values()) {
    if (e.status !== "row") continue
    const made = ctx.made.get(e.index)
    if (made !== undefined) {
      rows.set(e.index, { row: made, encoded: e.row })
      continue
    }
    // Journaled in an earlier session, perhaps where the run directory was before.
    const row = decodeRow(e.row)
    if (row._tag === "Right") rows.set(e.index, { row: rowHere(ctx, row.right), encoded: e.row })
  }
  for (const p of options.passthrough ?? []) rows.set(p.index, { row: p.row, encoded: encodeRow(p.row) })
  const byIndex = [...rows.entries()].sort((a, b) => a[0] - b[0])
  const sorted = byIndex.map(([, r]) => r)
  const ordered = byIndex.map(([index, r]) => withColumns(r.row, options.columnsOf?.(index)))
  const replaceOutIf = options.replaceOutIf
  let outKept = false // an --out there that `replaceOutIf` kept
  const rejects = rejectsOf(ctx, latest)
  // Written when there are rejects, and emptied when an earlier run's are there (never a stale list); with the
  // dataset (`companion`: renamed right after it), so that a crash never leaves the new rows beside old rejects.
  const rejectsFile = options.rejectsFile !== undefined &&
      (rejects.length > 0 || (yield* storage.exists(options.rejectsFile)))
    ? { file: options.rejectsFile, text: () => rejectsFileText(options.runId, rejects) }
    : undefined
  // A dataset that cannot be written (a directory made read-only, a disk full) loses nothing: the rows are
  // journaled in the run directory, and the error says how to write them without paying for them again.
  const kept = (e: StorageError) =>
    new StorageError({
      ...e,
      reason:
        `${e.reason}; ${
          rows.size === 0 ? "the run's work is" : `the ${rows.size} rows made are`
        } kept in the run directory ${journal.paths.runDir} ` +
        `(its journal and archive): once ${path.dirname(path.resolve(e.path))} can be written, ${
          options.finishHint ?? "rerun the same command with --resume to write them (a row made is not asked for again)"
        }`
    })
  // No row: an existing --out is left as it was (an empty file replaced it, and SkyRL cannot load one).
  const written = ordered.length === 0 ? 0 : yield* storage.writeRows(options.out, ordered, {
    ...(options.indent === undefined ? {} : { indent: options.indent }),
    ascii: options.ascii,
    inspect: options.inspectWritten,
    companion: rejectsFile,
    replaceIf: replaceOutIf === undefined ? undefined : (n) =>
      Effect.sync(() => {
        outKept = !replaceOutIf(n, latest)
        return !outKept
      })
  }).pipe(Effect.mapError(kept))
  if (rejectsFile !== undefined && ordered.length === 0) {
    yield* storage.writeFileAtomic(rejectsFile.file, rejectsFile.text()).pipe(Effect.mapError(kept))
  }
  const requested = options.jobs.length + (options.passthrough?.length ?? 0)
  const complete = rows.size >= requested
  const diversity = diversityOfRows(sorted.map((r) => r.encoded), options.out, {
    inventory: options.command === "generate" ? (yield* Inventory).inventory : undefined,
    threshold: options.nearDuplicates?.threshold ?? DEFAULT_NEAR_DUP_THRESHOLD
  })
  const stop = yield* Ref.get(ctx.stop)
  // A run stopped by a signal (its calls in flight ended first) is `interrupted`, as one interrupted at once
  // is (RunJournal's finalizer): a script tells it from a run whose samples failed or ran out of answers.
  yield* journal.settle(
    complete ? "completed" : stop?.signal !== undefined ? "interrupted" : "incomplete",
    ctx.llm.describe,
    diversity
  )
  const counts = yield* journal.counts
  const totals = yield* ctx.ledger.totals
  if (options.ownSummary !== true) {
    yield* Effect.logInfo(
      `${
        written === 0
          ? "no row, so not written:"
          : outKept
          ? `made ${written} rows, not written over the file there (kept as it was):`
          : `wrote ${written} rows to`
      } ${options.out}; ${counts.rejected} rejected attempts, ${counts.failed} failed samples; ` +
        `${totals.calls} calls, tokens in ${totals.usage.input} (cached ${totals.usage.cached}) out ${totals.usage.output} ` +
        `(reasoning ${totals.usage.reasoning})${
          totals.costUsd === undefined ? "" : `, cost $${totals.costUsd.toFixed(4)}`
        }; archive ${journal.paths.runDir}`
    )
  }
  yield* Effect.logInfo(renderDiversityText(diversity))
  if (!complete) {
    return yield* new IncompleteRun({
      made: written,
      requested,
      output: options.out,
      reason: stop !== undefined
        ? finalStopReason(stop, options.maxCostUsd, totals)
        : whyIncomplete(
          latest,
          ctx.unanswered,
          options.runSettings.answers === "recorded",
          options.retryHint,
          replayLimit
        ),
      ...(stop?.signal === undefined ? {} : { signal: stop.signal }),
      // No row: nothing was written, so an --out there is an earlier run's (the error says so).
      ...(written === 0 ? { earlierOut: yield* storage.exists(options.out) } : {})
    })
  }
  return {
    runId: options.runId,
    runDir: journal.paths.runDir,
    valid: written,
    requested: options.jobs.length,
    rejectedAttempts: counts.rejected,
    failedSamples: counts.failed,
    calls: totals.calls,
    usage: totals.usage,
    costUsd: totals.costUsd,
    diversity
  } satisfies SamplingSummary
})

const whyIncomplete = (
  latest: ReadonlyMap<number, JournalEntry>,
  unanswered: RunContext<Job>["unanswered"],
  recorded: boolean,
  retryHint = "rerun with --resume to retry them",
  replayLimit?: ReplayLimit
): string => {
  const entries = [...latest.values()]
  const failed = entries.filter((e) => e.status === "failed")
  const stopped = entries.filter((e) => e.status === "stopped")
  // Attempts of all sessions (--resume gives each failed sample --max-attempts more).
  // A loop, not Math.min(...): a run of a few hundred thousand failed samples would overflow the call's arguments.
  const [fewest, most] = failed.reduce(([lo, hi], e) => [Math.min(lo, e.attempts), Math.max(hi, e.attempts)], [
    Infinity,
    0
  ])
  const parts = [
    ...(failed.length > 0
      ? [
        `${failed.length} samples failed after ${
          fewest === most ? `${most} attempts each` : `${fewest}-${most} attempts`
        }`
      ]
      : []),
    ...(stopped.length > 0
      ? [`${stopped.length} samples stopped (${stopped[0].rejects.at(-1)?.reasons.join("; ") ?? "unfinished"})`]
      : [])
  ]
  // An answer source with no answer for a sample has none on a rerun either: no --resume advice for those.
  const none = [
    ...(unanswered.count === 0
      ? []
      : [`${unanswered.count} sample${unanswered.count === 1 ? "" : "s"} with no answer: ${unanswered.reason}`]),
    ...(replayLimit === undefined ? [] : [replayLimitText(replayLimit, true)])
  ]
  if (parts.length === 0 && none.length > 0) return none.join("; ")
  // Recorded answers (--llm replay) give a sample the same answer again: a rerun cannot do better.
  const retry = recorded
    ? "the recorded answers cannot make more of these rows (set OPENAI_API_KEY to ask a model)"
    : retryHint
  return [`${parts.length === 0 ? "some samples are unfinished" : parts.join("; ")}; ${retry}`, ...none].join("; ")
}
