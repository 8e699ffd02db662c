/**
 * `convert`: task objects → SkyRL rows; bad tasks go to the rejects file with their index and reason.
 *
 * One pass, memory independent of the file's size: JSON Lines are read a buffer of lines at a time, each
 * task converted and its plan validated, the rows written as they are made and checked as they are
 * written (`checksAsWritten`: the rules of `skyrl validate`, on exactly the values the file holds). A JSON
 * array (or a pretty-printed object) is parsed whole. Only the rejects are kept until the end (their lines).
 */
import { Chunk, Effect, Either, Stream } from "effect"
import { InputError } from "../domain/errors.js"
import type { Inventory } from "../domain/inventory.js"
import { formatIssue } from "../domain/inventory.js"
import { describeType, isObject } from "../domain/json.js"
import { noDatasetWritten } from "../domain/noDataset.js"
import type { SkyRLRow } from "../domain/row.js"
import type { StorageApi } from "../services/Storage.js"
import { Storage } from "../services/Storage.js"
import type { ConversionContext } from "../skyrl/convert.js"
import { convertTask, loneSurrogateIn } from "../skyrl/convert.js"
import { toJsonText } from "../skyrl/layout.js"
import { withModelParams } from "../skyrl/outputSchema.js"
import { validatePlan } from "../skyrl/planValidation.js"
import type { RecordResult } from "../skyrl/records.js"
import { extractTaskObject } from "../skyrl/records.js"
import { readRecords } from "./readRecords.js"
import { checksAsWritten } from "./validate.js"

export interface ConvertOptions {
  readonly tasksFile: string
  readonly out: string
  readonly rejectsFile: string
  readonly dataSource: string
  readonly inventory?: Inventory
  /** Prompt budget (default DEFAULT_MAX_PROMPT_TOKENS). */
  readonly maxPromptTokens?: number
  /** `--as-of`: the date of every row; without it each task's as_of, generated_at date, else `today`. */
  readonly asOf?: string
  readonly today?: string
}

/** The `field` of a reject whose record is unusable as a whole: a line that is not JSON, a value that is not an object. */
export const WHOLE_RECORD = "(record)"

export interface Reject {
  readonly index: number
  readonly line?: number
  readonly field: string
  readonly reason: string
}

export interface ConvertSummary {
  readonly written: number
  readonly rejected: ReadonlyArray<Reject>
}

type Converted =
  | { readonly _tag: "Row"; readonly row: SkyRLRow; readonly raised?: string | undefined }
  | { readonly _tag: "Reject"; readonly reject: Reject }

/** One record: its row (and the warning when its max_turns was raised), or why it is rejected. */
const convertRecord = (record: RecordResult, options: ConvertOptions, context: ConversionContext): Converted => {
  const line = record.line === undefined ? {} : { line: record.line }
  // A record unusable as a whole (a line that is not JSON, a value that is not an object) is field "(record)", as
  // in enrich's rejects.
  if (record._tag === "Unparsable") {
    return { _tag: "Reject", reject: { index: record.index, ...line, field: WHOLE_RECORD, reason: record.reason } }
  }
  if (!isObject(record.value)) {
    const reason = `expected an object, got ${describeType(record.value)}`
    return { _tag: "Reject", reject: { index: record.index, ...line, field: WHOLE_RECORD, reason } }
  }
  const extracted = Either.mapLeft(extractTaskObject(record.value), (reason) => ({ field: "(answer)", reason }))
  // Params as generate reads the model's (a JSON string, the nulls of optional params): the same answer converts.
  const inventory = options.inventory
  const read = inventory === undefined ? extracted : Either.flatMap(extracted, (t) => withModelParams(inventory, t))
  const converted = Either.flatMap(
    read,
    (task) => {
      const lone = record.escapes === false ? undefined : loneSurrogateIn(task)
      return Either.mapLeft(
        lone === undefined ? convertTask(task, context) : Either.left(lone),
        (e) => ({ field: e.field, reason: e.reason })
      )
    }
  )
  if (Either.isLeft(converted)) return { _tag: "Reject", reject: { index: record.index, ...line, ...converted.left } }
  // Plan validity is the product's promise: a plan the inventory rejects never reaches the dataset.
  const issues = options.inventory === undefined
    ? []
    : validatePlan(options.inventory, converted.right.reward_spec.ground_truth.tool_sequence)
  if (issues.length > 0) {
    const first = issues[0]
    return {
      _tag: "Reject",
      reject: {
        index: record.index,
        ...line,
        field: `tool_sequence[${first.step - 1}].${first.path.replace(/\//g, ".")}`,
        reason: issues.map(formatIssue).join("; ")
      }
    }
  }
  const gt = converted.right.reward_spec.ground_truth
  const given = converted.right.extra_info.task_metadata.max_turns_given
  return {
    _tag: "Row",
    row: converted.right,
    raised: given === undefined ? undefined : `${options.tasksFile}: task ${record.index} (${gt.task_id}): max_turns ` +
      `${given} raised to ${gt.max_turns}: its ${gt.tool_sequence.length} steps, one call per turn, and the final ` +
      `answer need ${gt.max_turns} (the given value is kept as task_metadata.max_turns_given)`
  }
}

/** What a run has seen so far: records read, tasks rejected, warnings not logged yet. */
interface Run {
  read: number
  readonly rejected: Array<Reject>
  readonly warnings: Array<string>
}

/** Converts one record: its row goes into `made`; a reject or warning is noted in `run`. */
const take = (
  record: RecordResult,
  options: ConvertOptions,
  context: ConversionContext,
  run: Run,
  made: Array<SkyRLRow>
): void => {
  run.read++
  const converted = convertRecord(record, options, context)
  if (converted._tag === "Reject") {
    const r = converted.reject
    run.rejected.push(r)
    run.warnings.push(`${options.tasksFile}: task ${r.index} rejected: ${r.field}: ${r.reason}`)
    return
  }
  if (converted.raised !== undefined) run.warnings.push(converted.raised)
  made.push(converted.row)
}

/** The rows made from a batch of records, after the warnings they gave are logged. */
const madeRows = (run: Run, made: Array<SkyRLRow>): Effect.Effect<Chunk.Chunk<SkyRLRow>> => {
  const rows = Chunk.unsafeFromArray(made)
  if (run.warnings.length === 0) return Effect.succeed(rows)
  const warnings = run.warnings.splice(0)
  return Effect.as(Effect.forEach(warnings, (w) => Effect.logWarning(w), { discard: true }), rows)
}

/**
 * The rows of a tasks file, converted as its records are read (JSON Lines streamed, see `readRecords`):
 * reading, parsing and converting are one pass over each batch of lines, so a row is made a few lines
 * after its text is read and written right after.
 */
const taskRows = (
  storage: StorageApi,
  options: ConvertOptions,
  context: ConversionContext,
  run: Run
): Stream.Stream<SkyRLRow, InputError> =>
  readRecords(storage, options.tasksFile).pipe(Stream.mapChunksEffect((records) => {
    const made: Array<SkyRLRow> = []
    for (const record of records) take(record, options, context, run, made)
    return madeRows(run, made)
  }))

export const convertProgram = (options: ConvertOptions) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const context: ConversionContext = {
      dataSource: options.dataSource,
      inventory: options.inventory,
      maxPromptTokens: options.maxPromptTokens,
      asOf: options.asOf,
      today: options.today,
      metadata: { source: `convert:${options.tasksFile}` }
    }
    const run: Run = { read: 0, rejected: [], warnings: [] }
    // A file whose every task was rejected fails the write before it commits: no empty dataset is written (SkyRL's
    // loader fails on one; `validate` reports it as contract/empty-file), and an existing --out stays as it was.
    const allRejected = new InputError({ file: options.tasksFile, reason: "every task was rejected" })
    const rows = taskRows(storage, options, context, run).pipe(
      Stream.concat(
        Stream.suspend(() => run.read === 0 || run.rejected.length < run.read ? Stream.empty : Stream.fail(allRejected))
      )
    )
    /** The error of a run whose every task was rejected: whether an --out there is an earlier run's, said plainly. */
    const allRejectedError = (earlierOut: boolean) =>
      new InputError({
        file: options.tasksFile,
        reason: `all ${run.read} tasks were rejected (reasons in ${options.rejectsFile}); nothing to convert, so ` +
          noDatasetWritten(options.out, earlierOut)
      })
    // This run's rejects, empty when none was rejected: the file never lists an earlier run's.
    const rejectsText = () => run.rejected.map((r) => toJsonText({ file: options.tasksFile, ...r }) + "\n").join("")
    // The same checks as `skyrl validate`, made as the rows are written: violations are logged and fail
    // the run (the file is kept).
    const checks = yield* checksAsWritten(options.out, options.inventory, { maxPromptTokens: options.maxPromptTokens })
    // The rejects file is replaced with the dataset (`companion`: renamed right after it), never without it: a
    // dataset that cannot be written (a full disk) leaves the earlier run's pair as it was. Only when every
    // task was rejected is it written alone, since it holds the reasons (--out is kept: no empty dataset), and the
    // error says whether an --out there is an earlier run's.
    const written = yield* storage.writeRowStream(options.out, rows, {
      inspect: checks.inspect,
      whileFinishing: checks.prepare,
      companion: { file: options.rejectsFile, text: rejectsText }
    }).pipe(
      Effect.catchIf((e) => e === allRejected, () =>
        storage.writeFileAtomic(options.rejectsFile, rejectsText()).pipe(
          Effect.zipRight(storage.exists(options.out)),
          Effect.flatMap((earlier) => Effect.fail(allRejectedError(earlier)))
        ))
    )
    const { read, rejected } = run
    yield* Effect.logInfo(
      `converted ${written} of ${read} tasks into ${options.out}` +
        (rejected.length > 0 ? `; ${rejected.length} rejected (see ${options.rejectsFile})` : "")
    )
    yield* checks.settle
    return { written, rejected } satisfies ConvertSummary
  }).pipe(Effect.scoped)
