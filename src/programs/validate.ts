/**
 * `validate`: streams dataset files through the checks of src/skyrl/checks.ts and, for `skyrl validate`
 * itself (`validateDatasets`), the diversity report of src/skyrl/diversity.ts with its near-duplicate
 * rules; and `checkWrittenDataset`: the checks (not the diversity pass) on a file a command has just
 * written (convert, generate, enrich), which then refuses to finish silently: every violation is logged
 * as an error and the command fails with exit 1, keeping the written file.
 */
import { Effect, Either, Schema, Stream } from "effect"
import type { StorageError } from "../domain/errors.js"
import type { Inventory } from "../domain/inventory.js"
import type { EncodedRow } from "../domain/row.js"
import { shellWord } from "../domain/words.js"
import { failOnScratchError, optionalSpill } from "../services/Scratch.js"
import type { ReadRowsOptions, RowRecord } from "../services/Storage.js"
import { rowFormatOf, Storage } from "../services/Storage.js"
import type { CheckOptions, Finding, Report, RuleReport } from "../skyrl/checks.js"
import { DatasetChecker } from "../skyrl/checks.js"
import type { DiversityReport, DuplicateFindings, RowRef } from "../skyrl/diversity.js"
import { DiversityAccumulator, explainClusters, readRow, refsToExplain } from "../skyrl/diversity.js"
import { deepJsonTextFault } from "../skyrl/layout.js"
import { DEFAULT_NEAR_DUP_THRESHOLD, VALIDATE_MAX_WALK } from "../skyrl/nearDup.js"

/** A dataset file that cannot be read or parsed (exit 2). */
export class UnreadableDatasetError extends Schema.TaggedError<UnreadableDatasetError>()("UnreadableDatasetError", {
  file: Schema.String,
  row: Schema.optional(Schema.Number),
  reason: Schema.String
}) {
  get exitCode(): number {
    return 2
  }
  override get message(): string {
    return `${this.file}${this.row === undefined ? "" : `, row ${this.row}`}: ${this.reason}`
  }
}

/** A dataset with violations (exit 1). The file is kept. */
export class DatasetViolationsError extends Schema.TaggedError<DatasetViolationsError>()("DatasetViolationsError", {
  files: Schema.Array(Schema.String),
  violations: Schema.Number,
  rules: Schema.Array(Schema.String),
  written: Schema.Boolean,
  /** What the violations likely come from, when that can be told (rows of another inventory). */
  hint: Schema.optional(Schema.String)
}) {
  get exitCode(): number {
    return 1
  }
  override get message(): string {
    const files = this.files.join(", ")
    const what = `${this.violations} violation${this.violations === 1 ? "" : "s"} (${this.rules.join(", ")})`
    const hint = this.hint === undefined ? "" : `; ${this.hint}`
    return this.written
      ? `${files} was written but has ${what}; the file is kept — see \`skyrl validate ${
        this.files.map(shellWord).join(" ")
      }\`${hint}`
      : `${files}: ${what}${hint}`
  }
}

export interface ValidateOptions extends Omit<CheckOptions, "inventory"> {
  readonly files: ReadonlyArray<string>
  readonly inventory?: Inventory | undefined
}

/** Something fed every row alongside the checks (the diversity report's accumulator). */
export interface RowSink {
  readonly add: (row: unknown, ref: RowRef) => void
}

/**
 * Streams every row of every file to `each` (0-based row index per file), after `begin` of its file and, for a
 * Parquet file, `columnTypes` of its columns typed otherwise than skyrl types them. A JSON Lines line that is
 * not JSON is a record of its own (`RowRecord.unparsable`): the rows after it are read too.
 */
const forEachRow = (
  files: ReadonlyArray<string>,
  each: (file: string, record: RowRecord) => void,
  begin: (file: string) => void = () => undefined,
  columnTypes?: ReadRowsOptions["columnTypes"]
) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    for (const file of files) {
      begin(file)
      // A file convert, enrich and verify refuse whole (no JSON at all, a broken JSON document) is unreadable
      // here too, not one contract/json violation a line: readRows reads through the same reader (recordStream).
      yield* storage.readRows(file, { keepUnparsable: true, textFacts: true, columnTypes }).pipe(
        Stream.runForEachChunk((chunk) =>
          Effect.sync(() => {
            for (const record of chunk) each(file, record)
          })
        ),
        Effect.mapError((e) =>
          new UnreadableDatasetError({ file: e.file, ...(e.row === undefined ? {} : { row: e.row }), reason: e.reason })
        )
      )
    }
  })

/**
 * Streams every file through one checker (so Arrow hazards are found across files too), and `sink`. With
 * a Scratch service (`validate`, `convert`) the duplicate keys are spilled to a scratch file for the
 * pass (`CheckOptions.spill`); without one (the final checks of `generate`, `enrich`) they are kept in
 * memory.
 */
export const validateFiles = (
  options: ValidateOptions,
  sink?: RowSink
): Effect.Effect<Report, UnreadableDatasetError | StorageError, Storage> =>
  Effect.gen(function*() {
    const spill = yield* optionalSpill("checks")
    const checker = new DatasetChecker({ ...options, spill })
    yield* forEachRow(options.files, (file, { facts, index, unparsable, value }) => {
      const fault = unparsable ?? deepJsonTextFault(value)
      if (fault === undefined) {
        checker.add(index, value, facts)
      } else checker.addUnparsable(index, fault)
      // an unparsable line, or a row too deep to check, counts as an unreadable row there
      sink?.add(fault === undefined ? value : undefined, { file, row: index })
    }, (file) =>
      checker.beginFile(file), (issues) =>
      checker.columnTypes(issues))
    return checker.report()
  }).pipe(Effect.scoped, failOnScratchError)

/** What `skyrl validate` prints: the checks' report, its near-duplicate rules, and the diversity report. */
export interface DatasetReport extends Report {
  readonly diversity: DiversityReport
}

const DUPLICATE_RULES = { "duplicate/similar-prompt": "near-prompt", "duplicate/same-plan": "plan" } as const

/** The checks' report with validate's near-duplicate rules counted from the diversity pass. */
const withDuplicateRules = (
  report: Report,
  found: Readonly<Record<"near-prompt" | "plan", DuplicateFindings>>,
  threshold: number
): Report => {
  const findingOf = (rule: keyof typeof DUPLICATE_RULES) => (d: DuplicateFindings["examples"][number]): Finding => ({
    rule,
    file: d.row.file,
    row: d.row.row,
    field: rule === "duplicate/same-plan" ? "reward_spec.ground_truth.tool_sequence" : "prompt",
    message: rule === "duplicate/same-plan"
      ? `the same calls with the same literal params as ${d.earlier.file} row ${d.earlier.row}`
      : `${d.similarity.toFixed(2)} similar (threshold ${threshold}) to ${d.earlier.file} row ${d.earlier.row}`
  })
  let warnings = report.warnings
  let violations = report.violations
  const rules = report.rules.map((r) => {
    if (!(r.id in DUPLICATE_RULES)) return r
    const id = r.id as keyof typeof DUPLICATE_RULES
    const f = found[DUPLICATE_RULES[id]]
    // Warnings unless the run asked for them to fail it (`--fail-on`): the report's severity says which.
    if (r.severity === "error") violations += f.count
    else warnings += f.count
    return { ...r, count: f.count, examples: f.examples.map(findingOf(id)) }
  })
  return { ...report, rules, warnings, violations, ok: violations === 0 }
}

/**
 * The checks' report with validate's `contract/empty-file` counted: `datasets.load_dataset`, which SkyRL loads
 * each file with, fails on a file without rows (StopIteration for an empty .jsonl, "corresponds to no data" for
 * `[]`), so such a file is a violation, not a clean dataset.
 */
const withEmptyFiles = (report: Report): Report => {
  const empty = report.files.filter((f) => f.rows === 0)
  if (empty.length === 0) return report
  const examples = empty.map((f): Finding => ({
    rule: "contract/empty-file",
    file: f.file,
    row: 0,
    field: "(file)",
    message: "holds no row; SkyRL's loader (datasets.load_dataset) fails on it: leave it out of the dataset list"
  }))
  const rules = report.rules.map((r) => r.id === "contract/empty-file" ? { ...r, count: empty.length, examples } : r)
  const violations = report.violations + empty.length
  return { ...report, rules, violations, ok: false }
}

/** The user prompts of some rows (a second read: the report keeps no text). */
const promptsOf = (files: ReadonlyArray<string>, refs: ReadonlyArray<RowRef>) =>
  Effect.gen(function*() {
    const wanted = new Set(refs.map((r) => `${r.file}\n${r.row}`))
    const texts = new Map<string, string>()
    if (wanted.size === 0) return texts
    yield* forEachRow(files.filter((f) => refs.some((r) => r.file === f)), (file, { index, value }) => {
      const key = `${file}\n${index}`
      const prompt = wanted.has(key) ? readRow(value)?.prompt : undefined
      if (prompt !== undefined) texts.set(key, prompt)
    })
    return texts
  })

/**
 * `skyrl validate`: the checks, the diversity report (tools, sequences, subjects, distinct-2,
 * near-duplicate clusters with their shared shingles, complexity mix) and its near-duplicate rules
 * (warnings). Memory: with a Scratch service (the CLI's), what both remember per row is spilled to
 * scratch files for the pass, so memory does not grow with the rows; texts of the clustered rows only
 * are read again.
 */
export const validateDatasets = (
  options: ValidateOptions & { readonly nearDup?: number | undefined }
): Effect.Effect<DatasetReport, UnreadableDatasetError | StorageError, Storage> =>
  Effect.gen(function*() {
    const threshold = options.nearDup ?? DEFAULT_NEAR_DUP_THRESHOLD
    const accumulator = new DiversityAccumulator({
      inventory: options.inventory,
      threshold,
      maxWalk: VALIDATE_MAX_WALK,
      spill: yield* optionalSpill("diversity"),
      partitionRecords: options.partitionRecords
    })
    const report = yield* validateFiles(options, accumulator)
    const diversity = accumulator.report()
    const texts = yield* promptsOf(options.files, refsToExplain(diversity))
    return {
      ...withDuplicateRules(withEmptyFiles(report), accumulator.duplicateFindings(), threshold),
      diversity: explainClusters(diversity, (r) => texts.get(`${r.file}\n${r.row}`))
    }
  }).pipe(Effect.scoped, failOnScratchError)

const describeRule = (rule: RuleReport): string =>
  `${rule.id}: ${rule.count} — ${rule.title}` +
  rule.examples.map((e) => `\n  ${e.file} row ${e.row} ${e.field}: ${e.message}`).join("") +
  (rule.count > rule.examples.length ? `\n  ... and ${rule.count - rule.examples.length} more` : "")

/** Logs each failing rule and its first offending rows as errors. */
export const logViolations = (report: Report) =>
  Effect.forEach(
    report.rules.filter((r) => r.count > 0 && r.severity === "error"),
    (rule) => Effect.logError(describeRule(rule)),
    { discard: true }
  )

interface WrittenCheckOptions extends Omit<CheckOptions, "inventory"> {
  /**
   * Rule-id prefixes reported as warnings instead of failing the run: for `enrich`, whose prompts
   * must stay as the source wrote them, prompt size and duplicate prompts are properties of the input.
   */
  readonly warnOnly?: ReadonlyArray<string>
}

/**
 * What the check of a written file does with its report: warnings logged, and with violations the errors
 * logged and `DatasetViolationsError` (exit 1); the file stays where it is.
 */
const settleWrittenReport = (file: string, report: Report, warnOnly: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    if (report.ok && report.warnings === 0) {
      yield* Effect.logDebug(`${file}: ${report.rows} rows pass every check`)
      return report
    }
    const warned = (r: RuleReport) => r.severity === "warning" || warnOnly.some((prefix) => r.id.startsWith(prefix))
    const failing = report.rules.filter((r) => r.count > 0 && !warned(r))
    for (const rule of report.rules.filter((r) => r.count > 0 && warned(r))) {
      yield* Effect.logWarning(describeRule(rule))
    }
    if (failing.length === 0) return report
    yield* logViolations({ ...report, rules: failing })
    return yield* new DatasetViolationsError({
      files: [file],
      violations: failing.reduce((n, r) => n + r.count, 0),
      rules: failing.map((r) => r.id),
      written: true
    })
  })

/**
 * The check `convert`, `generate` and `enrich` run on what they wrote: reads the file back as SkyRL
 * would see it and runs every rule (plans against `inventory` when given). With violations it logs
 * them as errors and fails with `DatasetViolationsError` (exit 1); the file stays where it is.
 */
export const checkWrittenDataset = (
  file: string,
  inventory?: Inventory,
  options: WrittenCheckOptions = {}
): Effect.Effect<Report, UnreadableDatasetError | DatasetViolationsError | StorageError, Storage> =>
  Effect.gen(function*() {
    const { warnOnly = [], ...checkOptions } = options
    const report = yield* validateFiles({ ...checkOptions, files: [file], inventory })
    return yield* settleWrittenReport(file, report, warnOnly)
  })

/**
 * `checkWrittenDataset` made while the file is written, in one pass: give `inspect` to the Storage writer
 * (`WriteRowsOptions.inspect`), which hands it each row as encoded for disk, then run `settle`. `prepare`
 * (optional: `WriteRowsOptions.whileFinishing`) makes the report once every row is inspected, while the file's
 * last bytes go to the disk; `settle` makes it otherwise, and acts on it. A .json or
 * .jsonl file holds exactly those values as JSON, and Storage reads the file back and compares its bytes
 * before it replaces the target, so this checks what is on disk without parsing it again. Parquet turns
 * values into columns: for a .parquet file `inspect` is undefined and `settle` reads the file back. The
 * duplicate keys go to a scratch file open until the scope closes (when a Scratch service is provided).
 */
export const checksAsWritten = (file: string, inventory?: Inventory, options: WrittenCheckOptions = {}) =>
  Effect.gen(function*() {
    const { warnOnly = [], ...checkOptions } = options
    if (rowFormatOf(file) === "parquet") {
      return { inspect: undefined, prepare: undefined, settle: checkWrittenDataset(file, inventory, options) }
    }
    const spill = yield* optionalSpill("checks")
    const checker = new DatasetChecker({ ...checkOptions, inventory, spill })
    checker.beginFile(file)
    let index = 0
    // The report, once made (`prepare`); what it threw is thrown again by `settle`.
    let made: Either.Either<Report, unknown> | undefined
    const prepare = (): Either.Either<Report, unknown> =>
      made ??= Either.try({ try: () => checker.report(), catch: (thrown) => thrown })
    return {
      inspect: (row: EncodedRow) => void checker.add(index++, row),
      prepare,
      settle: failOnScratchError(Effect.suspend(() => {
        const report = prepare()
        if (Either.isLeft(report)) throw report.left
        return settleWrittenReport(file, report.right, warnOnly)
      }))
    }
  })
