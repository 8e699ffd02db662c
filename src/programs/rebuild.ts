/**
 * `rebuild`: re-derive a generate run's dataset from its run directory, calling no model. It is the run
 * engine again, answered by the run's own archive (`archiveOnly`): each sample asks for its calls by
 * request key and gets the archived answers, judged by the same acceptance pipeline — plan checks, every
 * row check, duplicates — in the order the run claimed its rows (the journal's order), one sample at a
 * time. So the rows come out as the run wrote them (raw_output_path is relative to the new output's
 * directory). Nothing is written into the run directory.
 */
import { Effect, Either, Layer, Schema } from "effect"
import * as path from "node:path"
import { InputError } from "../domain/errors.js"
import { noDatasetWritten } from "../domain/noDataset.js"
import { type IncompleteRun, type JournalEntry, SettingsError } from "../domain/run.js"
import type { LedgerTotals } from "../services/CostLedger.js"
import { CostLedger } from "../services/CostLedger.js"
import { warnSkippedLines } from "../services/durableLog.js"
import { Inventory } from "../services/Inventory.js"
import { archiveOnly, NO_ARCHIVED_ANSWER } from "../services/llm/archive.js"
import { progressSilent } from "../services/Progress.js"
import { callRefInRunDir } from "../services/runArchive.js"
import type { JournalCounts } from "../services/RunJournal.js"
import {
  inventoryFingerprint,
  readJournal,
  readManifestOrIssue,
  rowOutputPath,
  RunJournal
} from "../services/RunJournal.js"
import { Storage } from "../services/Storage.js"
import { fileIssueText } from "../skyrl/parseIssues.js"
import { generatePlan, generateSampling } from "./generate.js"
import { lockOutput } from "./outputLock.js"
import { missingPlanInputs, PLAN_INPUTS_FILE, readPlanInputs } from "./planStages.js"
import { runEngine, runSpecOf } from "./sampling.js"
import { recordedVerifyHook } from "./verifyHook.js"

export interface RebuildOptions {
  readonly runDir: string
  readonly out: string
  readonly indent: number | undefined
  readonly ascii: boolean
  /** Where the inventory comes from, as the drift warning names it (default: "the inventory given"). */
  readonly inventoryFrom?: string | undefined
  /** The CLI's check that --out lies outside the run directory, made once RUN_DIR is known to be a generate run's. */
  readonly outApart?: Effect.Effect<void, SettingsError> | undefined
}

/** How many of the samples not rebuilt the error names. */
const NAMED_MISSING = 5

/** What rebuild does with the samples of journal lines it cannot read (`warnSkippedLines`). */
const SKIPPED_JOURNAL_LINES = "rebuild judges their samples after the rows of the readable lines, in sample " +
  "order, not in the order the run accepted them (with a duplicate among them the rows may differ from the run's)"

export const rebuildProgram = (options: RebuildOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const runDir = path.resolve(options.runDir)
    const manifestFile = path.join(runDir, "manifest.json")
    if (!(yield* (yield* Storage).exists(manifestFile))) {
      return yield* new SettingsError({
        setting: "RUN_DIR",
        reason:
          `${runDir} is not a run directory: it has no manifest.json (expected raw_llm/<run_id>/ of a generate run)`
      })
    }
    const manifest = yield* readManifestOrIssue(manifestFile)
    if (Either.isLeft(manifest)) {
      // Bad input, exit 2, named as `--resume` names it (file, field, reason).
      return yield* new SettingsError({
        setting: "RUN_DIR",
        reason: `${fileIssueText({ file: manifestFile, issue: manifest.left })}: not a readable run manifest ` +
          "(rebuild reads the run's settings from it); mend the file"
      })
    }
    const m = manifest.right
    if (m.command !== "generate") {
      return yield* new SettingsError({
        setting: "RUN_DIR",
        reason: `rebuild re-derives generate runs; this run was made by \`${m.command}\``
      })
    }
    if (m.run_settings === undefined) {
      return yield* new SettingsError({
        setting: "RUN_DIR",
        reason: "the run was made by an earlier skyrl that did not record its settings"
      })
    }
    if (options.outApart !== undefined) yield* options.outApart
    // One command writes an --out at a time: a rebuild beside a run writing the same --out (its --resume, say)
    // replaced that run's rows, or had its own replaced, without a word.
    yield* lockOutput(options.out, "rebuild")
    const settings = m.run_settings
    const catalogue = yield* (yield* Inventory).get
    // Another inventory than the run's (an --inventory given, an inventory.json edited) makes another work
    // plan, whose requests the run's archive does not answer: said now, and again if rows are missing.
    const inventoryNow = inventoryFingerprint(catalogue)
    const inventoryChanged = settings.inventory_sha256 !== null && settings.inventory_sha256 !== inventoryNow
    if (inventoryChanged) {
      yield* Effect.logWarning(
        `${options.inventoryFrom ?? "the inventory given"} is not the inventory run ${m.run_id} planned with ` +
          `(inventory_sha256: ${settings.inventory_sha256} in the run, ${inventoryNow} now): its work plan ` +
          "differs, and the run's archive answers only the run's own requests"
      )
    }
    // The plan inputs the run kept (list files, the answers of its domains and subjects stages).
    const inputs = yield* readPlanInputs(runDir, "RUN_DIR")
    const missing = missingPlanInputs(settings, inputs)
    if (missing.length > 0) {
      return yield* new InputError({
        file: path.join(runDir, PLAN_INPUTS_FILE),
        reason: `lacks the run's ${missing.join(", ")}: the run never got past its first stages`
      })
    }
    const plan = generatePlan(settings, catalogue, inputs)
    const { latest, read, rowOrder } = yield* readJournal(runDir, new Set(plan.map((p) => p.index)))
    yield* warnSkippedLines(path.join(runDir, "journal.jsonl"), read, SKIPPED_JOURNAL_LINES)
    // The rows the run made: its journal's (a run killed before its manifest was written again counts 0
    // there), or the manifest's count when it has more (a journal cut short or gone).
    const expected = Math.max(m.counts.valid, rowOrder.length)
    const failedAfter = new Map([...latest].flatMap(([i, e]) => e.status === "failed" ? [[i, e.attempts]] : []))
    // The run's rows the rebuild did not make (sample indices in the run's order), given its journal's entries.
    const notMade = (rebuilt: ReadonlyMap<number, JournalEntry>) =>
      rowOrder.filter((i) => rebuilt.get(i)?.status !== "row")
    // An --out already there (the run's own dataset, an earlier rebuild) is replaced only by a complete rebuild:
    // Storage asks before its rename (`replaceOutIf`), and a refusal leaves it as it was.
    const replace = { refused: false }
    const sampling = generateSampling({
      out: options.out,
      replaceOutIf: (written, rebuilt) => {
        const complete = written >= expected && notMade(rebuilt).length === 0
        replace.refused = !complete
        return complete
      },
      plan,
      seed: settings.seed ?? 0,
      maxTools: settings.max_tools,
      maxTurns: settings.max_turns,
      concurrency: 1,
      maxCostUsd: undefined,
      // Until the archive has no answer: a sample makes every attempt the run made for it.
      maxAttemptsPerSample: Number.POSITIVE_INFINITY,
      failedAfter,
      rawDir: path.dirname(runDir),
      runId: m.run_id,
      rawGzip: false,
      indent: options.indent,
      ascii: options.ascii,
      dataSource: settings.data_source,
      rejectsFile: undefined,
      model: m.model,
      backend: m.backend,
      settings: m.settings,
      runSettings: settings,
      order: rowOrder,
      // Its own line says what it did (`rebuiltLine`): the engine's would count the archived answers as calls.
      ownSummary: true,
      finishHint: "run the rebuild again (it asks no model)",
      // A run made with --verify: the outcomes it recorded (rebuild runs no plan).
      verify: settings.verify === undefined ? undefined : yield* recordedVerifyHook(runDir)
    }, catalogue)
    const { answers, engineReason, made, rebuilt } = yield* Effect.gen(function*() {
      const { engineReason, made } = yield* runEngine(sampling).pipe(
        Effect.map((summary) => ({ made: summary.valid, engineReason: undefined })),
        // Why the engine fell short, for the error below, when it says more than that the archive lacks an answer
        // (which the error says): an archived record it could not use, named by file.
        Effect.catchTag("IncompleteRun", (e) => Effect.succeed({ made: e.made, engineReason: moreThanNoAnswer(e) }))
      )
      const journal = yield* RunJournal
      // The archived answers judged (each as a call of the in-memory ledger, priced as the run priced it).
      const answers = { counts: yield* journal.counts, totals: yield* (yield* CostLedger).totals }
      return { answers, engineReason, made, rebuilt: yield* journal.latest }
    }).pipe(
      // The directory given, whatever its name (runSpecOf joins rawDir and the run id: another place for a copy).
      Effect.provide(
        Layer.mergeAll(archiveOnly(runDir), RunJournal.memory({ ...runSpecOf(sampling), runDir }), progressSilent)
      )
    )
    // The run's rows not rebuilt, each with the call its row came from (as the run named it), in sample order.
    const notRebuilt = notMade(rebuilt).sort((a, b) => a - b).map((i) => {
      const ref = rowOutputPath(latest.get(i)?.row)
      const call = typeof ref === "string" ? callRefInRunDir(ref) : undefined
      return call === undefined ? `sample ${i + 1}` : `sample ${i + 1} (${call})`
    })
    if (made < expected || notRebuilt.length > 0) {
      return yield* new RebuildIncomplete({
        runId: m.run_id,
        made,
        expected,
        out: options.out,
        // No row: nothing was written, so an --out there is an earlier one.
        earlierOut: made === 0 && (yield* (yield* Storage).exists(options.out)),
        missing: [...notRebuilt.slice(0, NAMED_MISSING), ...(notRebuilt.length > NAMED_MISSING ? ["..."] : [])],
        outKept: made > 0 && replace.refused,
        inventoryChanged,
        engineReason
      })
    }
    yield* Effect.logInfo(rebuiltLine({ runId: m.run_id, made, expected, out: options.out, runDir, ...answers }))
    return { written: made, expected }
  }))

/**
 * What a rebuild did, in one line: the rows remade from how many archived answers, with no model call; what those
 * answers cost the run that made them (the archive's usage, priced as the run priced it: batch answers at half);
 * the attempts rejected and samples failed again, which it does not write (it writes the dataset only, no rejects
 * file: the run's rejects are its own, in its journal and its `<out>.rejects.jsonl`). Before, the engine's line
 * (`... 3 rejected attempts, 0 failed samples; 21 calls, tokens ..., cost $0.0324`) read as calls made and
 * rejects written by the rebuild.
 */
const rebuiltLine = (r: {
  readonly runId: string
  readonly made: number
  readonly expected: number
  readonly out: string
  readonly runDir: string
  readonly counts: Pick<JournalCounts, "rejected" | "failed">
  readonly totals: Pick<LedgerTotals, "calls" | "costUsd">
}): string => {
  const { calls, costUsd } = r.totals
  const cost = costUsd === undefined ? "" : ` (they cost the run $${costUsd.toFixed(4)})`
  return `rebuilt ${r.made} rows of run ${r.runId} (it made ${r.expected}) into ${r.out}, calling no model: ` +
    `${calls} archived answer${calls === 1 ? "" : "s"} judged again${cost}, ${r.counts.rejected} rejected attempts, ` +
    `${r.counts.failed} failed samples (rebuild writes no rejects file); archive ${r.runDir}`
}

/** The engine's reason for the samples it did not finish, unless it only says the archive has no answer. */
const moreThanNoAnswer = (e: IncompleteRun): string | undefined =>
  e.reason.endsWith(NO_ARCHIVED_ANSWER) ? undefined : e.reason

/** Fewer rows than the run made (exit 1): the run directory lacks what the others need. */
export class RebuildIncomplete extends Schema.TaggedError<RebuildIncomplete>()("RebuildIncomplete", {
  runId: Schema.String,
  made: Schema.Number,
  expected: Schema.Number,
  out: Schema.String,
  /** Nothing rebuilt and an --out there: an earlier run's file, left as it was (`noDatasetWritten`). */
  earlierOut: Schema.optional(Schema.Boolean),
  /**
   * Rows rebuilt, but an --out was there (the run's own dataset, perhaps): it is left as it was, not replaced
   * by fewer rows, and the rows rebuilt are not written.
   */
  outKept: Schema.optional(Schema.Boolean),
  /** The inventory is not the one the run planned with (warned at the start). */
  inventoryChanged: Schema.optional(Schema.Boolean),
  /** The first samples whose rows the run made and the rebuild did not, with the call each row came from. */
  missing: Schema.optional(Schema.Array(Schema.String)),
  /** What the run engine said of the samples it did not finish (`1 sample with no answer: archive_01.jsonl ...`). */
  engineReason: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const written = this.made === 0
      ? `; ${noDatasetWritten(this.out, this.earlierOut === true, "this rebuild")}`
      : this.outKept === true
      ? `; they were not written: the ${this.out} there is left as it was (a rebuild that falls short never ` +
        "replaces a dataset; give a new --out to keep them)"
      : ` into ${this.out} (kept as it is)`
    const why = this.inventoryChanged === true
      ? "the inventory is not the one the run planned with (see the warning above), so its work plan asks for " +
        "what the run's archive does not hold; rebuild with the inventory the run planned with (its inventory.json as the run " +
        "wrote it, or --inventory naming that inventory)"
      : "the run directory lacks what the others need (an archive file missing or cut short, or an inventory.json " +
        "that changed); rebuild reproduces a run only from its complete directory"
    const missing = this.missing === undefined || this.missing.length === 0
      ? ""
      : `; not rebuilt: ${this.missing.join(", ")}`
    // As many rows or more, yet some of the run's missing: rows it never journaled (a run killed) among them.
    const counts = this.made < this.expected
      ? `${this.made} of the ${this.expected} rows run ${this.runId} made`
      : `${this.made} rows, not the ${this.expected} rows run ${this.runId} made (rows it never journaled among them)`
    const engine = this.engineReason === undefined ? "" : ` (${this.engineReason})`
    return `rebuilt ${counts}${written}: ${why}${missing}${engine}`
  }
}
