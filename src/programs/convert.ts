/** `convert`: task objects → SkyRL rows; bad tasks go to the rejects file with their index and reason. */
import { Effect, Either } from "effect"
import { InputError } from "../domain/errors.js"
import type { Inventory } from "../domain/inventory.js"
import { formatIssue } from "../domain/inventory.js"
import type { SkyRLRow } from "../domain/row.js"
import { Storage } from "../services/Storage.js"
import { convertTask } from "../skyrl/convert.js"
import { toJsonText } from "../skyrl/layout.js"
import { validatePlan } from "../skyrl/planValidation.js"
import { extractTaskObject, recordsOf } from "../skyrl/records.js"
import { checkWrittenDataset } from "./validate.js"

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

export const convertProgram = (options: ConvertOptions) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const text = yield* storage.readText(options.tasksFile).pipe(
      Effect.mapError((e) => new InputError({ file: options.tasksFile, reason: e.reason }))
    )
    const records = yield* Either.match(recordsOf(text, options.tasksFile), {
      onLeft: Effect.fail,
      onRight: Effect.succeed
    })
    const rejected: Array<Reject> = []
    const raised: Array<string> = []
    let read = 0
    // Rows are made as the writer asks for them (JSON Lines are parsed line by line): the dataset is
    // never held in memory whole.
    const rows = function*(): Generator<SkyRLRow> {
      for (const record of records) {
        read++
        const line = record.line === undefined ? {} : { line: record.line }
        if (record._tag === "Unparsable") {
          rejected.push({ index: record.index, ...line, field: "(record)", reason: record.reason })
          continue
        }
        const converted = Either.flatMap(
          Either.mapLeft(extractTaskObject(record.value), (reason) => ({ field: "(answer)", reason })),
          (task) =>
            Either.mapLeft(
              convertTask(task, {
                dataSource: options.dataSource,
                inventory: options.inventory,
                maxPromptTokens: options.maxPromptTokens,
                asOf: options.asOf,
                today: options.today,
                metadata: { source: `convert:${options.tasksFile}` }
              }),
              (e) => ({ field: e.field, reason: e.reason })
            )
        )
        if (Either.isLeft(converted)) {
          rejected.push({ index: record.index, ...line, ...converted.left })
          continue
        }
        // Plan validity is the product's promise: a plan the inventory rejects never reaches the dataset.
        const issues = options.inventory === undefined
          ? []
          : validatePlan(options.inventory, converted.right.reward_spec.ground_truth.tool_sequence)
        if (issues.length > 0) {
          const first = issues[0]
          rejected.push({
            index: record.index,
            ...line,
            field: `tool_sequence[${first.step - 1}].${first.path.replace(/\//g, ".")}`,
            reason: issues.map(formatIssue).join("; ")
          })
          continue
        }
        const gt = converted.right.reward_spec.ground_truth
        const given = converted.right.extra_info.task_metadata.max_turns_given
        if (given !== undefined) {
          raised.push(
            `${options.tasksFile}: task ${record.index} (${gt.task_id}): max_turns ${given} raised to ${gt.max_turns}: ` +
              `its ${gt.tool_sequence.length} steps, one call per turn, and the final answer need ${gt.max_turns} ` +
              "(the given value is kept as task_metadata.max_turns_given)"
          )
        }
        yield converted.right
      }
    }
    const written = yield* storage.writeRows(options.out, rows())
    for (const line of raised) yield* Effect.logWarning(line)
    for (const r of rejected) {
      yield* Effect.logWarning(`${options.tasksFile}: task ${r.index} rejected: ${r.field}: ${r.reason}`)
    }
    if (rejected.length > 0) {
      yield* storage.writeFileAtomic(
        options.rejectsFile,
        rejected.map((r) => toJsonText({ file: options.tasksFile, ...r }) + "\n").join("")
      )
    }
    yield* Effect.logInfo(
      `converted ${written} of ${read} tasks into ${options.out}` +
        (rejected.length > 0 ? `; ${rejected.length} rejected (see ${options.rejectsFile})` : "")
    )
    if (written === 0 && rejected.length > 0) {
      return yield* new InputError({
        file: options.tasksFile,
        reason: `all ${rejected.length} tasks were rejected (reasons in ${options.rejectsFile}); nothing to convert`
      })
    }
    // The same checks as `skyrl validate`: violations are logged and fail the run (the file is kept).
    yield* checkWrittenDataset(options.out, options.inventory, { maxPromptTokens: options.maxPromptTokens })
    return { written, rejected } satisfies ConvertSummary
  })
