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
import { SettingsError } from "../domain/run.js"
import { Inventory } from "../services/Inventory.js"
import { archiveOnly } from "../services/llm/archive.js"
import { progressSilent } from "../services/Progress.js"
import { readJournal, readManifestOrIssue, RunJournal } from "../services/RunJournal.js"
import { Storage } from "../services/Storage.js"
import { generatePlan, generateSampling } from "./generate.js"
import { missingPlanInputs, PLAN_INPUTS_FILE, readPlanInputs } from "./planStages.js"
import { runEngine, runSpecOf } from "./sampling.js"
import { recordedVerifyHook } from "./verifyHook.js"

export interface RebuildOptions {
  readonly runDir: string
  readonly out: string
  readonly indent: number | undefined
  readonly ascii: boolean
}

export const rebuildProgram = (options: RebuildOptions) =>
  Effect.gen(function*() {
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
      const { message, path: field } = manifest.left
      return yield* new InputError({ file: manifestFile, field, reason: `not a readable run manifest: ${message}` })
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
    const settings = m.run_settings
    const catalogue = yield* (yield* Inventory).get
    // The plan inputs the run kept (list files, the answers of its domains and subjects stages).
    const inputs = yield* readPlanInputs(runDir)
    const missing = missingPlanInputs(settings, inputs)
    if (missing.length > 0) {
      return yield* new InputError({
        file: path.join(runDir, PLAN_INPUTS_FILE),
        reason: `lacks the run's ${missing.join(", ")}: the run never got past its first stages`
      })
    }
    const plan = generatePlan(settings, catalogue, inputs)
    const { latest, rowOrder } = yield* readJournal(runDir, new Set(plan.map((p) => p.index)))
    const failedAfter = new Map([...latest].flatMap(([i, e]) => e.status === "failed" ? [[i, e.attempts]] : []))
    const sampling = generateSampling({
      out: options.out,
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
      // A run made with --verify: the outcomes it recorded (rebuild runs no plan).
      verify: settings.verify === undefined ? undefined : yield* recordedVerifyHook(runDir)
    }, catalogue)
    const made = yield* runEngine(sampling).pipe(
      Effect.map((summary) => summary.valid),
      Effect.catchTag("IncompleteRun", (e) => Effect.succeed(e.made)),
      // The directory given, whatever its name (runSpecOf joins rawDir and the run id: another place for a copy).
      Effect.provide(
        Layer.mergeAll(archiveOnly(runDir), RunJournal.memory({ ...runSpecOf(sampling), runDir }), progressSilent)
      )
    )
    if (made < m.counts.valid) {
      const earlierOut = made === 0 && (yield* (yield* Storage).exists(options.out))
      return yield* new RebuildIncomplete({
        runId: m.run_id,
        made,
        expected: m.counts.valid,
        out: options.out,
        earlierOut
      })
    }
    yield* Effect.logInfo(
      `rebuilt ${made} rows of run ${m.run_id} (manifest counts ${m.counts.valid} valid) into ${options.out}`
    )
    return { written: made, expected: m.counts.valid }
  })

/** Fewer rows than the run made (exit 1): the run directory lacks what the others need. */
export class RebuildIncomplete extends Schema.TaggedError<RebuildIncomplete>()("RebuildIncomplete", {
  runId: Schema.String,
  made: Schema.Number,
  expected: Schema.Number,
  out: Schema.String,
  /** Nothing rebuilt and an --out there: an earlier run's file, left as it was (`noDatasetWritten`). */
  earlierOut: Schema.optional(Schema.Boolean)
}) {
  override get message(): string {
    const written = this.made === 0
      ? `; ${noDatasetWritten(this.out, this.earlierOut === true, "this rebuild")}`
      : ` into ${this.out} (kept as it is)`
    return `rebuilt ${this.made} of the ${this.expected} rows run ${this.runId} made${written}: the run directory ` +
      "lacks what the others need (an archive file missing or cut short, or an inventory.json that changed); " +
      "rebuild reproduces a run only from its complete directory"
  }
}
