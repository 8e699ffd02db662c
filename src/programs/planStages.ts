/**
 * The plan inputs of a generate run (`plan_inputs.json` in its run directory): the entries of
 * `--personas` / `--subjects` files, and the answers of the model stages that come before any task —
 * domains (when `--domains` is not given and the inventory is not the bundled one) and subjects (without
 * `--subjects FILE`). Each stage call is archived in the run directory (`stage_domains_c01.json`) and
 * put in the cost ledger like every call; its answer is saved at once, so `--resume`, `rebuild` and
 * `batch collect` reuse it instead of asking again. Texts and answer cleaning: src/skyrl/planStages.ts.
 */
import { Effect, Either, Option, Schema } from "effect"
import * as path from "node:path"
import type { Inventory as Catalogue } from "../domain/inventory.js"
import { emptyUsage, isAnswerError } from "../domain/llm.js"
import type { AttemptRecord } from "../domain/llm.js"
import type { ListFileSettings, RunSettings } from "../domain/run.js"
import { PlanInputs, SettingsError } from "../domain/run.js"
import { budgetReached, CostLedger } from "../services/CostLedger.js"
import { readJsonFileOrIssue } from "../services/jsonFile.js"
import { Llm } from "../services/Llm.js"
import { encodeArchive, RunJournal } from "../services/RunJournal.js"
import { Storage } from "../services/Storage.js"
import { toJsonText } from "../skyrl/layout.js"
import { fileIssueText } from "../skyrl/parseIssues.js"
import {
  cleanDomains,
  cleanSubjects,
  DOMAINS_KEY,
  DOMAINS_SCHEMA_NAME,
  DomainsAnswer,
  renderDomainsRequest,
  renderStageInstructions,
  renderSubjectsRequest,
  SUBJECTS_KEY,
  SUBJECTS_SCHEMA_NAME,
  SubjectsAnswer
} from "../skyrl/planStages.js"
import { subjectDemand } from "../skyrl/subjects.js"
import { generatePlan } from "./generate.js"

export const PLAN_INPUTS_FILE = "plan_inputs.json"

/** A stage that concerns every sample failed: the run stops (exit 1), having made no task. */
export class PlanStageError extends Schema.TaggedError<PlanStageError>()("PlanStageError", {
  stage: Schema.String,
  reason: Schema.String
}) {
  get exitCode(): number {
    return 1
  }
  override get message(): string {
    const skip = this.stage === "domains" ? "give --domains" : "give --subjects FILE (or --subjects none)"
    return `the ${this.stage} stage failed: ${this.reason}; run again with --resume, or ${skip} to skip it`
  }
}

/** A `--personas` / `--subjects` file as the CLI read it. */
export interface ListFile {
  readonly path: string
  readonly sha256: string
  readonly entries: ReadonlyArray<string>
}

/**
 * The plan inputs kept in a run directory (none when it has no such file). A file there that does not decode is
 * bad input (exit 2), named in one line as a bad manifest.json is (`FILE, FIELD: REASON`); `setting` is what led
 * to the run directory (rebuild's RUN_DIR, generate's --resume).
 */
export const readPlanInputs = (runDir: string, setting: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const file = path.join(runDir, PLAN_INPUTS_FILE)
    if (!(yield* storage.exists(file))) return {} as PlanInputs
    const inputs = yield* readJsonFileOrIssue(file, PlanInputs)
    if (Either.isRight(inputs)) return inputs.right
    return yield* new SettingsError({
      setting,
      reason: `${fileIssueText({ file, issue: inputs.left })}: not a readable plan inputs file (the run's domains, ` +
        "subjects and list files: its work plan is made from them); mend the file"
    })
  })

/** What a run's settings need that its plan inputs do not hold yet. */
export const missingPlanInputs = (
  settings: RunSettings,
  inputs: PlanInputs
): ReadonlyArray<"personas" | "subjects_file" | "domains" | "subjects"> => {
  const d = settings.diversity
  if (d === undefined) return []
  return [
    ...(d.personas !== null && inputs.personas === undefined ? ["personas" as const] : []),
    ...(typeof d.subjects === "object" && inputs.subjects_file === undefined ? ["subjects_file" as const] : []),
    ...(d.domains_from === "model" && inputs.domains === undefined ? ["domains" as const] : []),
    ...(d.subjects === "model" && inputs.subjects === undefined ? ["subjects" as const] : [])
  ]
}

/** A file's entries when its content is the one the run's settings name (else the run keeps its own copy). */
const fileEntries = (want: ListFileSettings, given: ListFile | undefined, flag: string) =>
  given !== undefined && given.sha256 === want.sha256
    ? Effect.succeed(given.entries)
    : Effect.fail(
      new SettingsError({
        setting: flag,
        reason: `the run was made with a file of sha256 ${want.sha256}, and its run directory keeps no copy of it`
      })
    )

export interface StageRun {
  readonly runDir: string
  /** `--max-cost`, checked before each stage call. */
  readonly maxCostUsd?: number | undefined
  readonly settings: RunSettings
  readonly catalogue: Catalogue
  readonly files: { readonly personas?: ListFile | undefined; readonly subjects?: ListFile | undefined }
}

/**
 * Completes a run's plan inputs (inside its run directory: RunJournal, CostLedger and the Llm in
 * context): copies the list files, asks the stages still unanswered, and saves after each step.
 */
export const completePlanInputs = (run: StageRun, start: PlanInputs) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const d = run.settings.diversity
    let inputs = start
    const save = (next: PlanInputs) =>
      Effect.as(
        storage.writeFileAtomic(
          path.join(run.runDir, PLAN_INPUTS_FILE),
          toJsonText(Schema.encodeSync(PlanInputs)(next), { indent: 2 }) + "\n"
        ),
        next
      )
    if (d === undefined) return inputs
    if (d.personas !== null && inputs.personas === undefined) {
      inputs = { ...inputs, personas: yield* fileEntries(d.personas, run.files.personas, "--personas") }
    }
    if (typeof d.subjects === "object" && inputs.subjects_file === undefined) {
      inputs = { ...inputs, subjects_file: yield* fileEntries(d.subjects, run.files.subjects, "--subjects") }
    }
    if (inputs !== start) inputs = yield* save(inputs)
    if (d.domains_from === "model" && inputs.domains === undefined) {
      const { archive, value: domains } = yield* askStage(
        run,
        { stage: "domains", key: DOMAINS_KEY, name: DOMAINS_SCHEMA_NAME, schema: DomainsAnswer },
        renderDomainsRequest(),
        (answer) => cleanDomains(answer)
      )
      yield* Effect.logInfo(`domains stage: ${domains.join("; ")}`)
      inputs = yield* save({ ...inputs, domains, stages: { ...inputs.stages, domains: archive } })
    }
    if (d.subjects === "model" && inputs.subjects === undefined) {
      const demand = subjectDemand(generatePlan(run.settings, run.catalogue, inputs))
      const { archive, value: subjects } = yield* askStage(
        run,
        { stage: "subjects", key: SUBJECTS_KEY, name: SUBJECTS_SCHEMA_NAME, schema: SubjectsAnswer },
        renderSubjectsRequest(demand),
        (answer) => {
          const pools = cleanSubjects(answer, demand)
          return Object.keys(pools).length === 0 ? "the answer lists no usable subject" : pools
        }
      )
      const count = Object.values(subjects).reduce((n, l) => n + l.length, 0)
      yield* Effect.logInfo(
        `subjects stage: ${count} subjects for ${Object.keys(subjects).length} of ${Object.keys(demand).length} domains`
      )
      inputs = yield* save({ ...inputs, subjects, stages: { ...inputs.stages, subjects: archive } })
    }
    return inputs
  })

/** The stage's request (what `--dry-run` shows, and what the stage sends). */
export const stageRequest = <A, I>(
  catalogue: Catalogue,
  key: string,
  name: string,
  schema: Schema.Schema<A, I>,
  text: string
) => ({
  name,
  key,
  instructions: renderStageInstructions(catalogue),
  input: [{ role: "user" as const, content: text }],
  schema
})

/** Attempts of a stage: an answer the model can get wrong (cut off, refused, unusable) is asked again. */
export const STAGE_ATTEMPTS = 3

interface StageSpec<A, I> {
  readonly stage: "domains" | "subjects"
  readonly key: string
  readonly name: string
  readonly schema: Schema.Schema<A, I>
}

/**
 * A stage: up to STAGE_ATTEMPTS calls until one answer is usable (`clean` returns the value, or why
 * not). Every HTTP attempt is archived as `stage_<stage>_cNN.json` and put in the cost ledger, and
 * `--max-cost` is checked before each call. A failure stops the run.
 */
const askStage = <A, I, B>(
  run: StageRun,
  spec: StageSpec<A, I>,
  text: string,
  clean: (answer: A) => B | string
) =>
  Effect.gen(function*() {
    let why = ""
    for (let attempt = 1; attempt <= STAGE_ATTEMPTS; attempt++) {
      const reached = budgetReached(run.maxCostUsd, yield* (yield* CostLedger).totals)
      if (reached !== undefined) {
        why = reached
        break
      }
      const key = attempt === 1 ? spec.key : `${spec.key}-a${attempt}`
      const called = yield* stageCall(run, spec, key, text).pipe(Effect.either)
      if (Either.isLeft(called)) {
        why = called.left.message
        const e = called.left
        if (e._tag !== "StorageError" && e._tag !== "PlanStageError" && isAnswerError(e) && attempt < STAGE_ATTEMPTS) {
          continue
        }
        break
      }
      const value = clean(called.right.value)
      if (typeof value !== "string") return { value, archive: called.right.archive }
      why = value
    }
    return yield* new PlanStageError({ stage: spec.stage, reason: why })
  })

/** One stage call, its HTTP attempts archived and in the ledger (an answer that cannot be archived is not used). */
const stageCall = <A, I>(run: StageRun, spec: StageSpec<A, I>, key: string, text: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const ledger = yield* CostLedger
    const gzip = (yield* RunJournal).spec.gzip
    const prefix = `stage_${spec.stage}_c`
    let call = (yield* storage.readDirectory(run.runDir)).filter((f) => f.startsWith(prefix)).length
    let archive: string | undefined
    let failure: string | undefined
    const onAttempt = (record: AttemptRecord) =>
      Effect.gen(function*() {
        const file = `${prefix}${String(++call).padStart(2, "0")}.json${gzip ? ".gz" : ""}`
        yield* ledger.record({
          key: file,
          sample: -1,
          attempt: 1,
          purpose: spec.stage,
          status: record.status,
          model: record.model,
          batch: false,
          usage: record.usage ?? emptyUsage,
          at: record.startedAt
        })
        yield* storage.writeFileAtomic(
          path.join(run.runDir, file),
          encodeArchive({ ...record, key, purpose: spec.stage }, gzip)
        )
        archive = file
      }).pipe(
        Effect.catchAll((e) => Effect.sync(() => void (failure ??= `could not archive the answer: ${e.message}`)))
      )
    const result = yield* (yield* Llm).complete({
      ...stageRequest(run.catalogue, key, spec.name, spec.schema, text),
      onAttempt
    })
    if (failure !== undefined || archive === undefined) {
      return yield* new PlanStageError({ stage: spec.stage, reason: failure ?? "the answer was not archived" })
    }
    return { value: result.value, archive }
  })

/** The plan inputs a dry run can show: those kept by the latest run for this output, if any. */
export const keptPlanInputs = (runDir: Option.Option<string>) =>
  Option.match(runDir, {
    onNone: () => Effect.succeed({} as PlanInputs),
    onSome: (dir) => readPlanInputs(dir, "--resume").pipe(Effect.orElseSucceed(() => ({}) as PlanInputs))
  })
