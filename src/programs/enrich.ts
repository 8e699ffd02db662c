/**
 * `enrich`: plan tool calls for prompts that already exist (SkyRL rows without a plan, ShareGPT or OpenAI
 * chat logs), through the shared sampling engine (src/programs/sampling.ts). The prompt text of each row
 * comes from the source, never from the model.
 *
 * Two steps: `planEnrichment` reads the input and sorts every row into a job (needs a plan), a skip (a
 * SkyRL row that already has one: copied to the output as it is) or a reject (unusable row: field and
 * reason); `enrichProgram` runs the jobs. `--dry-run` stops after the first step.
 *
 * Inventories. With an inventory file, a prompt whose system message lists its tools (`<tools>` block) is
 * planned with the inventory's tools that the prompt lists (a plan must not use a tool the agent was never
 * told about); a prompt without a list gets the whole inventory, and its row's system message then lists
 * the tools the row offers after the source's text (convert.ts, `givenSystem: "add-tools"`; not with
 * `--keep-system-message`). With `--inventory-from-prompt`, each prompt's `<tools>` block is its inventory,
 * all tools on one server named "prompt".
 */
import { Chunk, Effect, Either, Logger, LogLevel, Stream } from "effect"
import { InputError } from "../domain/errors.js"
import * as Inv from "../domain/inventory.js"
import { isObject } from "../domain/json.js"
import type { SkyRLRow } from "../domain/row.js"
import type { RejectRecord, RunSettings } from "../domain/run.js"
import { plural } from "../domain/words.js"
import type { InventoryApi } from "../services/Inventory.js"
import { Inventory, makeInventory } from "../services/Inventory.js"
import { rowFormatOf, Storage } from "../services/Storage.js"
import { leakInputOf } from "../skyrl/checks.js"
import { toolFreePromptTokens } from "../skyrl/convert.js"
import type { EnrichRequestSpec } from "../skyrl/enrichPrompt.js"
import { renderEnrichInstructions, renderEnrichRequest } from "../skyrl/enrichPrompt.js"
import { decodeRow, type OwnColumns } from "../skyrl/layout.js"
import { DEFAULT_NEAR_DUP_THRESHOLD } from "../skyrl/nearDup.js"
import { planLeak } from "../skyrl/promptLeak.js"
import type { RecordResult } from "../skyrl/records.js"
import { recordsOf } from "../skyrl/records.js"
import { shownConflicts } from "../skyrl/shownSchemas.js"
import type { InputFormat, SourcePrompt, ToolsBlock } from "../skyrl/sources.js"
import { brokenToolsBlock, extractSource, findToolsBlock, listsTools, toolNamesOf } from "../skyrl/sources.js"
import { WHOLE_RECORD } from "./convert.js"
import { modelTaskFields } from "./runFiles.js"
import type { SampleOutcome, SamplingOptions } from "./sampling.js"
import { runSampling } from "./sampling.js"
import { checkWrittenDataset } from "./validate.js"

/** The server name of tools taken from a prompt's `<tools>` block (--inventory-from-prompt). */
export const PROMPT_SERVER = Inv.PROMPT_SERVER

/**
 * Row checks that only warn for enrich: they judge the source's prompt text, which enrich keeps as it is (its
 * size; identical, normalized-identical and near-duplicate prompts, and so the same plan for them). What enrich
 * decides itself, the plan, the tools a row offers and its task_id (`prompt/plan-leak`, `duplicate/task-id`), is
 * judged as `skyrl validate` judges it (`enrichWarnOnly`: `--allow-plan-leak` makes a leak a warning again).
 */
export const ENRICH_WARN_ONLY: ReadonlyArray<string> = [
  "prompt/too-long",
  "duplicate/prompt",
  "duplicate/near-prompt",
  "duplicate/similar-prompt",
  "duplicate/same-plan"
]

/** The rule an enrich run rejects rows for unless `--allow-plan-leak`: the prompt gives the plan away. */
const PLAN_LEAK = "prompt/plan-leak"

/**
 * Whether a run's rows must not give their plan away (`input.plan_leak: "rejected"`, the default): absent in
 * runs made with `--allow-plan-leak` and before the setting existed, which wrote such rows with a warning.
 */
export const rejectsPlanLeaksOf = (settings: Pick<RunSettings, "input">): boolean =>
  settings.input?.plan_leak === "rejected"

/** The rules that only warn in an enrich run with these settings (`ENRICH_WARN_ONLY`, and a leak when allowed). */
export const enrichWarnOnly = (settings: Pick<RunSettings, "input">): ReadonlyArray<string> =>
  rejectsPlanLeaksOf(settings) ? ENRICH_WARN_ONLY : [...ENRICH_WARN_ONLY, PLAN_LEAK]

export interface EnrichJob {
  /** The 0-based row index in the source file (also the sample index of the run). */
  readonly index: number
  readonly source: SourcePrompt
  /** The job's own inventory (narrowed to the prompt's tools, or taken from the prompt); undefined: the run's. */
  readonly inventory: InventoryApi | undefined
  readonly offered: EnrichRequestSpec["offered"]
  /**
   * The row's task_id when the source gives an id: the id itself, or `<id>-row<index>` when an earlier row
   * of the file (or any row copied as it is) has that id. Undefined: the model's task_id with `-row<index>`.
   * Either way no two rows of the output share one (`duplicate/task-id` fails `skyrl validate`).
   */
  readonly taskId?: string | undefined
}

export interface InputReject {
  readonly index: number
  readonly id: string | undefined
  readonly field: string
  readonly reason: string
}

export interface Skip {
  readonly index: number
  readonly id: string | undefined
  readonly row: SkyRLRow
  /** The columns of the user's own the input row holds (`ownColumnsOf`), written with it. */
  readonly ownColumns: OwnColumns | undefined
  readonly reason: string
}

export interface EnrichPlan {
  readonly input: string
  readonly jobs: ReadonlyArray<EnrichJob>
  readonly skipped: ReadonlyArray<Skip>
  readonly rejected: ReadonlyArray<InputReject>
  /** Rows looked at (reading stops once --limit rows are planned). */
  readonly rowsRead: number
  /** True when --limit stopped the reading before the end of the file. */
  readonly limited: boolean
  /**
   * Every task_id the plan gives a row: those of the rows kept as is and the jobs' own (`EnrichJob.taskId`). A
   * task_id made from the model's answer yields to them (`enrichTaskId`), so no two rows of the output share one.
   */
  readonly taskIds: ReadonlySet<string>
}

export interface PlanOptions {
  readonly input: string
  /** Forced format; undefined = detect per row. */
  readonly inputFormat: InputFormat | undefined
  /** Stop after this many rows to plan (rows kept as is and rejects do not count). */
  readonly limit: number | undefined
  readonly overwrite: boolean
  /** The inventory file's service; undefined = --inventory-from-prompt. */
  readonly baseInventory: InventoryApi | undefined
  /**
   * The run's `--max-prompt-tokens` when a system message that lists no tool gets the offered tools
   * (undefined: `--keep-system-message`): a row over it before any tool is listed is rejected unplanned.
   */
  readonly listOfferedTools?: { readonly maxPromptTokens: number } | undefined
  /** Offer no listed tool whose shown schema differs from the inventory's (false: match by name only). */
  readonly checkShownSchemas?: boolean | undefined
  /**
   * Reject a row whose prompt would give its plan away (`prompt/plan-leak` against the inventory file): one
   * whose `<tools>` block lists too few tools for any plan, and a row with a plan that would be kept as is.
   * False (`--allow-plan-leak`): such rows are planned and kept, and the leak is a warning.
   */
  readonly rejectPlanLeaks?: boolean | undefined
}

/** `PlanOptions.checkShownSchemas` of a run's settings. */
export const checkShownSchemasOf = (settings: Pick<RunSettings, "input">): boolean =>
  settings.input?.shown_schemas === "checked"

/** `PlanOptions.listOfferedTools` of a run's settings. */
export const listOfferedToolsOf = (
  settings: Pick<RunSettings, "input" | "max_prompt_tokens">
): PlanOptions["listOfferedTools"] =>
  settings.input?.list_offered_tools === true ? { maxPromptTokens: settings.max_prompt_tokens } : undefined

/** A SkyRL row as other tools write it (params / task_metadata as objects) → the on-disk layout. */
const toEncodedLayout = (row: unknown): unknown => {
  if (!isObject(row)) return row
  const out: Record<string, unknown> = { ...row }
  if (isObject(row.reward_spec) && isObject(row.reward_spec.ground_truth)) {
    const gt = row.reward_spec.ground_truth
    out.reward_spec = {
      ...row.reward_spec,
      ground_truth: {
        ...gt,
        tool_sequence: Array.isArray(gt.tool_sequence)
          ? gt.tool_sequence.map((s) =>
            isObject(s) && isObject(s.params) ? { ...s, params: JSON.stringify(s.params) } : s
          )
          : gt.tool_sequence
      }
    }
  }
  const info = isObject(row.extra_info) ? row.extra_info : {}
  const meta = info.task_metadata
  out.extra_info = { ...info, task_metadata: typeof meta === "string" ? meta : JSON.stringify(meta ?? {}) }
  return out
}

/**
 * Every record of the input with its 0-based index (a line that is not JSON becomes a reject). JSON Lines are
 * parsed as the records are iterated (`recordsOf`), so planning holds the file's text and the record in hand,
 * not every parsed record at once.
 */
const readInput = (file: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    if (rowFormatOf(file) === "parquet") {
      const rows = yield* Stream.runCollect(storage.readRows(file))
      return Chunk.toReadonlyArray(rows).map((r): RecordResult => ({ _tag: "Record", index: r.index, value: r.value }))
    }
    const text = yield* storage.readText(file).pipe(
      Effect.mapError((e) => new InputError({ file, reason: `cannot read: ${e.reason}` }))
    )
    return yield* Either.match(recordsOf(text, file), { onLeft: Effect.fail, onRight: Effect.succeed })
  })

/**
 * Why a prompt whose system message lists no tool (or that has none: skyrl's own is made) cannot get the
 * offered tools within the budget (undefined: it can, or it is kept as it is). Found before planning: no
 * model call is paid for a row that cannot fit, whatever plan comes back.
 */
const overBudgetUnlisted = (source: SourcePrompt, budget: number | undefined): string | undefined => {
  if (budget === undefined || (source.system !== undefined && listsTools(source.system))) return undefined
  const tokens = toolFreePromptTokens(source.system, source.user)
  if (tokens <= budget) return undefined
  const over = `${tokens} tokens before any tool is listed, over --max-prompt-tokens ${budget}`
  return source.system === undefined
    ? `the user message with skyrl's system message takes ${over} (raise it)`
    : `the system message lists no tools, and with skyrl's tool-call lines and the user message it takes ${over} ` +
      "(raise it, or keep the message as it is with --keep-system-message)"
}

const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>) => Logger.withMinimumLogLevel(effect, LogLevel.Warning)

/** Reads the input and sorts its rows into jobs, skips and rejects. Calls no model. */
export const planEnrichment = (options: PlanOptions) =>
  Effect.gen(function*() {
    const records = yield* readInput(options.input)
    const jobs: Array<EnrichJob> = []
    const skipped: Array<Skip> = []
    const rejected: Array<InputReject> = []
    const context: PlanContext = { options, cached: inventoryCache(), warned: new Set() }
    // The task_ids of the rows kept as is so far, with the row of each: a copy cannot take another id.
    const keptIds = new Map<string, number>()
    let rowsRead = 0
    let limited = false
    for (const record of records) {
      if (options.limit !== undefined && jobs.length >= options.limit) {
        limited = true
        break
      }
      rowsRead++
      const planned = yield* planRecord(record, context)
      if (planned._tag === "job") jobs.push(planned.job)
      else if (planned._tag === "reject") rejected.push(planned.reject)
      else {
        const { skip } = planned
        const taskId = skip.row.reward_spec.ground_truth.task_id
        const first = keptIds.get(taskId)
        if (first === undefined) {
          keptIds.set(taskId, skip.index)
          skipped.push(skip)
        } else {
          rejected.push({
            index: skip.index,
            id: skip.id,
            field: "reward_spec.ground_truth.task_id",
            reason:
              `the row has a plan, and its task_id ${JSON.stringify(taskId)} is also the task_id of row ${first}, ` +
              "kept as is: a copy would be a second row with that task_id (duplicate/task-id fails `skyrl validate`); " +
              "use --overwrite to plan both again, each with a task_id of its own"
          })
        }
      }
    }
    const { taskIds, withIds } = withTaskIds(jobs, skipped)
    return {
      input: options.input,
      jobs: withIds,
      skipped,
      rejected,
      rowsRead,
      limited,
      taskIds
    } satisfies EnrichPlan
  })

/** What becomes of one input row: a job to plan, a row kept as is, or a reject. */
type Planned =
  | { readonly _tag: "job"; readonly job: EnrichJob }
  | { readonly _tag: "skip"; readonly skip: Skip }
  | { readonly _tag: "reject"; readonly reject: InputReject }

const job = (j: EnrichJob): Planned => ({ _tag: "job", job: j })
const reject = (r: InputReject): Planned => ({ _tag: "reject", reject: r })

/** What planning one row reads: the options, the inventories made so far (by key), the warnings given. */
interface PlanContext {
  readonly options: PlanOptions
  readonly cached: (
    key: string,
    build: () => Effect.Effect<InventoryApi, Inv.InventoryError>
  ) => Effect.Effect<Either.Either<InventoryApi, Inv.InventoryError>>
  readonly warned: Set<string>
}

/** Inventories made once per key (a <tools> block, a set of offered tools), their failure too. */
const inventoryCache = (): PlanContext["cached"] => {
  const cache = new Map<string, Either.Either<InventoryApi, Inv.InventoryError>>()
  return (key, build) =>
    Effect.gen(function*() {
      const hit = cache.get(key)
      if (hit !== undefined) return hit
      const built = yield* Effect.either(quiet(build()))
      cache.set(key, built)
      return built
    })
}

const planRecord = (record: RecordResult, context: PlanContext): Effect.Effect<Planned> =>
  Effect.gen(function*() {
    const { options } = context
    const index = record.index
    // A record unusable as a whole (a line that is not JSON, a value that is not an object) is field "(record)",
    // as in convert's rejects.
    if (record._tag === "Unparsable") {
      return reject({ index, id: undefined, field: WHOLE_RECORD, reason: record.reason })
    }
    const source = extractSource(record.value, options.inputFormat)
    if (source._tag === "Invalid") {
      const field = source.field === "" && !isObject(record.value) ? WHOLE_RECORD : source.field
      return reject({ index, id: source.id, field, reason: source.reason })
    }
    if (source.hasPlan && !options.overwrite) return existingPlan(index, source, record.value, options)
    const block = source.system === undefined ? undefined : findToolsBlock(source.system)
    const broken = source.system === undefined || block !== undefined ? undefined : brokenToolsBlock(source.system)
    if (broken !== undefined) {
      const reason = `the system message's <tools> block does not read as its tools: ${broken}`
      return reject({ index, id: source.id, field: source.systemField ?? "", reason })
    }
    const base = options.baseInventory
    if (base === undefined) return yield* withPromptTools(index, source, block, context)
    if (block === undefined) {
      const over = overBudgetUnlisted(source, options.listOfferedTools?.maxPromptTokens)
      return over !== undefined
        ? reject({ index, id: source.id, field: source.systemField ?? "", reason: over })
        : job({ index, source, inventory: undefined, offered: { _tag: "all" } })
    }
    return yield* withListedTools(index, source, block, base, context)
  })

/** A row that has a plan, copied as it is (`--overwrite` plans it again): it must be as valid as one skyrl makes. */
const existingPlan = (index: number, source: SourcePrompt, value: unknown, options: PlanOptions): Planned => {
  const id = source.id
  const row = decodeRow(toEncodedLayout(value))
  if (Either.isLeft(row)) {
    return reject({
      index,
      id,
      field: row.left.path,
      reason: `the row has a plan but is not a valid SkyRL row: ${row.left.message}`
    })
  }
  const issues = options.baseInventory === undefined
    ? []
    : options.baseInventory.validatePlan(row.right.reward_spec.ground_truth.tool_sequence)
  if (issues.length > 0) {
    return reject({
      index,
      id,
      field: `reward_spec.ground_truth.tool_sequence[${issues[0].step - 1}].${issues[0].path.replace(/\//g, ".")}`,
      reason: `the existing plan is invalid against the inventory (use --overwrite to plan it again): ${
        issues.map(Inv.formatIssue).join("; ")
      }`
    })
  }
  const leak = options.baseInventory === undefined || options.rejectPlanLeaks !== true
    ? undefined
    : keptRowLeak(options.baseInventory.inventory, row.right)
  if (leak !== undefined) {
    return reject({
      index,
      id,
      field: leak.field,
      reason: `the row has a plan, but its prompt gives it away (${PLAN_LEAK}: ${leak.message}), which fails ` +
        "`skyrl validate`; use --overwrite to plan it again, or --allow-plan-leak to keep it as it is"
    })
  }
  return {
    _tag: "skip",
    skip: {
      index,
      id,
      row: row.right,
      ownColumns: source.ownColumns,
      reason: "already has a plan (use --overwrite to plan it again)"
    }
  }
}

/**
 * `prompt/plan-leak` of a row as it would be copied, read as `skyrl validate` reads the row on disk
 * (`leakInputOf`; the decoded row holds the same values, its task_metadata parsed), with the field validate
 * names; undefined when its prompt does not give the plan away.
 */
const keptRowLeak = (
  inventory: Inv.Inventory,
  row: SkyRLRow
): { readonly field: string; readonly message: string } | undefined => {
  const gt = row.reward_spec.ground_truth
  const input = leakInputOf(row.prompt, { available_tools: gt.available_tools }, row.extra_info.task_metadata)
  const message = planLeak(inventory, { ...input, plan: gt.tool_sequence })
  if (message === undefined) return undefined
  const known = input.availableTools !== undefined && input.availableTools.length > 0
  return { field: known ? "reward_spec.ground_truth.available_tools" : "prompt[0].content", message }
}

/** --inventory-from-prompt: the row's own <tools> block is its inventory. */
const withPromptTools = (index: number, source: SourcePrompt, block: ToolsBlock | undefined, context: PlanContext) =>
  Effect.gen(function*() {
    const field = source.systemField ?? ""
    if (block === undefined) {
      return reject({
        index,
        id: source.id,
        field,
        reason: source.system === undefined
          ? "has no system message, so no <tools> block for --inventory-from-prompt"
          : "the system message has no <tools> block (a JSON list of tools) for --inventory-from-prompt"
      })
    }
    const raw = { servers: [{ name: PROMPT_SERVER, tools: block.tools }] }
    const built = yield* context.cached(
      JSON.stringify(block.tools),
      () =>
        Effect.flatMap(
          Inv.decodeInventory(raw, "<tools> block"),
          (inventory) => makeInventory(inventory, "<tools> block")
        )
    )
    if (Either.isLeft(built)) {
      return reject({ index, id: source.id, field, reason: `unusable <tools> block: ${built.left.message}` })
    }
    return job({
      index,
      source,
      inventory: built.right,
      offered: { _tag: "catalogue", inventory: built.right.inventory }
    })
  })

/** The prompt lists its tools: plan with the inventory's tools that it lists, as it shows them. */
const withListedTools = (
  index: number,
  source: SourcePrompt,
  block: ToolsBlock,
  base: InventoryApi,
  context: PlanContext
) =>
  Effect.gen(function*() {
    const names = new Set(toolNamesOf(block))
    const conflicts = context.options.checkShownSchemas === true ? shownConflicts(block, base.inventory) : new Map()
    const servers = base.inventory.servers
      .map((s) =>
        new Inv.InventoryServer({
          name: s.name,
          tools: s.tools.filter((t) => names.has(t.name) && !conflicts.has(`${s.name}/${t.name}`))
        })
      )
      .filter((s) => s.tools.length > 0)
    const offered = servers.flatMap((s) => s.tools.map((t) => ({ server: s.name, tool: t.name })))
    const conflictText = [...new Set([...conflicts.values()].map((c) => `${c.tool}: ${c.diffs.join(", ")}`))]
      .join("; ")
    if (offered.length === 0) {
      return reject({
        index,
        id: source.id,
        field: source.systemField ?? "",
        reason: conflicts.size > 0
          ? `the system message shows the inventory's tools it lists with other schemas (${conflictText}): a plan ` +
            "would teach params the prompt never shows; use --inventory-from-prompt to plan with the prompt's " +
            "own schemas, or --allow-schema-mismatch"
          : `the system message offers none of the inventory's tools (it lists ${[...names].slice(0, 8).join(", ")}${
            names.size > 8 ? ", ..." : ""
          }); use --inventory-from-prompt to plan with the prompt's own tools`
      })
    }
    if (conflicts.size > 0 && !context.warned.has(conflictText)) {
      context.warned.add(conflictText)
      yield* Effect.logWarning(
        `${rowLabel(index, source.id)} (and rows listing the same tools): not offered to plan with, shown with ` +
          `other schemas than the inventory's: ${conflictText}`
      )
    }
    const all = Inv.toolCount(base.inventory) === offered.length
    const narrowed = all ? Either.right(base) : yield* context.cached(
      offered.map((t) => `${t.server}/${t.tool}`).join(","),
      () => makeInventory(new Inv.Inventory({ servers }), base.source)
    )
    if (Either.isLeft(narrowed)) return reject({ index, id: source.id, field: "", reason: narrowed.left.message })
    const leak = all || context.options.rejectPlanLeaks !== true
      ? undefined
      : planLeak(base.inventory, { system: source.system, availableTools: offered, plan: offered.slice(0, 1) })
    if (leak !== undefined) {
      // The fewer tools a plan uses, the more distractors its row offers: a plan of one listed tool is the best
      // case, so when it leaks every plan does, and no model call is paid for the row.
      return reject({
        index,
        id: source.id,
        field: source.systemField ?? "",
        reason: `the prompt's <tools> block lists too few tools for a prompt that does not give its plan away: even ` +
          `a plan of one of the ${plural(offered.length, "inventory tool")} it lists would fail \`skyrl validate\` ` +
          `(${PLAN_LEAK}: ${leak}); enrich keeps the tools a source lists as they are, so it cannot offer more; ` +
          "use --allow-plan-leak to plan it anyway"
      })
    }
    return job({
      index,
      source,
      inventory: all ? undefined : narrowed.right,
      offered: { _tag: "names", tools: offered }
    })
  })

/**
 * Jobs with their row's task_id (`EnrichJob.taskId`): copied rows keep theirs, a job yields to any earlier one;
 * and every task_id so given (`EnrichPlan.taskIds`).
 */
const withTaskIds = (
  jobs: ReadonlyArray<EnrichJob>,
  skipped: ReadonlyArray<Skip>
): { readonly withIds: Array<EnrichJob>; readonly taskIds: ReadonlySet<string> } => {
  const used = new Set(skipped.map((s) => s.row.reward_spec.ground_truth.task_id))
  const withIds = jobs.map((job) => {
    const id = job.source.id
    if (id === undefined) return job
    let taskId = used.has(id) ? `${id}-row${job.index}` : id
    for (let n = 2; used.has(taskId); n++) taskId = `${id}-row${job.index}-${n}`
    used.add(taskId)
    return { ...job, taskId }
  })
  return { withIds, taskIds: used }
}

/**
 * The task_id of a planned row: the source's (made unique) or the model's with the source row, `<id>-row<N>`,
 * or `<id>-row<N>-2` (-3, ...) when a row of the plan has that id (`taken`: `EnrichPlan.taskIds`), e.g. a
 * source row whose own id is `enriched-0-row0`. Two such ids never meet: each ends in its own row number (N
 * is the last digits after `-row`, before any `-<n>`), so the id depends on the plan and the answer only, and
 * a resumed run or a batch collect gives the id an uninterrupted run gives.
 */
export const enrichTaskId = (job: EnrichJob, modelTaskId: string, taken: ReadonlySet<string>): string => {
  if (job.taskId !== undefined) return job.taskId
  const base = `${modelTaskId.trim() || "task"}-row${job.index}`
  let taskId = base
  for (let n = 2; taken.has(taskId); n++) taskId = `${base}-${n}`
  return taskId
}

export interface EnrichOptions extends
  Omit<
    SamplingOptions<EnrichJob>,
    | "command"
    | "jobs"
    | "instructions"
    | "requestText"
    | "taskInput"
    | "jobMetadata"
    | "passthrough"
    | "jobInventory"
    | "inputRejects"
    | "onSampleDone"
    | "seed"
  >
{
  readonly plan: EnrichPlan
  /** The inventory file's service; undefined = --inventory-from-prompt. */
  readonly baseInventory: InventoryApi | undefined
  /** Log each job's request size and inventory at debug level (--debug). */
  readonly debug: boolean
}

/** `row 3 (id abc)`: how log lines and reports name a source row. */
export const rowLabel = (index: number, id: string | undefined): string =>
  `row ${index}${id === undefined ? "" : ` (id ${id})`}`

/** The shared prefix of an enrich run. */
export const enrichInstructions = (
  baseInventory: InventoryApi | undefined,
  settings: { readonly maxTools: number; readonly maxTurns: number; readonly asOf?: string | undefined }
): string => renderEnrichInstructions(baseInventory?.inventory, settings)

export const enrichRequest = (job: EnrichJob, attempt: number): string =>
  renderEnrichRequest({
    row: job.index,
    id: job.source.id,
    system: job.source.system,
    user: job.source.user,
    offered: job.offered,
    attempt
  })

type TaskInput = SamplingOptions<EnrichJob>["taskInput"]

/** The task handed to conversion: the source prompt (never the model's user_prompt) and the model's plan. */
export const enrichTaskInput = (maxTurns: number, taken: ReadonlySet<string>): TaskInput => (job, task, steps) => ({
  task_id: enrichTaskId(job, task.task_id, taken),
  messages: [
    ...(job.source.system === undefined ? [] : [{ role: "system", content: job.source.system }]),
    { role: "user", content: job.source.user }
  ],
  ...modelTaskFields(task, steps, maxTurns)
})

/**
 * The columns of the user's own each input row holds (SkyRL rows: `ownColumnsOf`), by index, for the row made from it
 * or kept as is: a file's rows keep one set of keys whether they were planned or copied.
 */
const columnsByIndex = (plan: EnrichPlan) => {
  const columns = new Map<number, OwnColumns>()
  for (const j of plan.jobs) if (j.source.ownColumns !== undefined) columns.set(j.index, j.source.ownColumns)
  for (const s of plan.skipped) if (s.ownColumns !== undefined) columns.set(s.index, s.ownColumns)
  return columns.size === 0 ? undefined : (index: number) => columns.get(index)
}

/** Provenance of an enriched row (merged into task_metadata). */
export const enrichMetadata = (input: string, inventorySource: string) => (job: EnrichJob) => ({
  source_file: input,
  source_row: job.index,
  source_id: job.source.id ?? null,
  source_format: job.source.format,
  inventory: inventorySource,
  ...(job.source.format === "skyrl"
    ? {}
    : {
      observed_tool_calls: job.source.observedToolCalls.map((c) => ({
        name: c.name,
        arguments: c.arguments,
        message: c.message
      }))
    }),
  ...(job.source.unreadableToolCalls.length === 0 ? {} : { unreadable_tool_calls: job.source.unreadableToolCalls }),
  ...(job.source.otherFields === undefined ? {} : { source_fields: job.source.otherFields })
})

/** The row's log line; prompts over the run's `--max-prompt-tokens` budget are flagged. */
const outcomeLine = (job: EnrichJob, outcome: SampleOutcome, budget: number): string => {
  // The engine's own lines and archive names count samples from 1 (task_0004 is row 3).
  const label = `${rowLabel(job.index, job.source.id)} [sample ${job.index + 1}]`
  if (outcome.status === "failed") {
    const reasons = [...new Set(outcome.reasons)].join("; ")
    return outcome.reasons.length === 0
      ? `${label}: not planned (the run stopped)`
      : outcome.calls === 0
      ? `${label}: not planned: ${reasons}`
      : `${label}: failed after ${outcome.attempts} attempts: ${reasons}`
  }
  const steps = outcome.row.reward_spec.ground_truth.tool_sequence
  const tokens = outcome.row.extra_info.task_metadata.prompt_tokens_est ?? 0
  return `${label}: planned, ${steps.length} steps (${steps.map((s) => s.tool).join(", ")}); ` +
    `${outcome.calls} calls; prompt ~${tokens} tokens` +
    (tokens > budget ? ` (over the --max-prompt-tokens budget of ${budget})` : "")
}

/** Runs the planned jobs through the sampling engine; skips (rows kept as is) are written unchanged, rejects reported. */
export const enrichProgram = (options: EnrichOptions) =>
  Effect.gen(function*() {
    const { plan } = options
    // Written to the output unchanged, so "kept as is", not "skipped" (which read as left out).
    for (const s of plan.skipped) yield* Effect.logInfo(`${rowLabel(s.index, s.id)}: kept as is: ${s.reason}`)
    for (const job of plan.jobs) {
      if (job.taskId === undefined || job.taskId === job.source.id) continue
      yield* Effect.logWarning(
        `${
          rowLabel(job.index, job.source.id)
        }: its id is also the id of another row of the file; this row's task_id is ${job.taskId}`
      )
    }
    for (const r of plan.rejected) {
      yield* Effect.logWarning(
        `${rowLabel(r.index, r.id)}: rejected: ${
          new InputError({ file: plan.input, row: r.index, field: r.field, reason: r.reason }).message
        }`
      )
    }
    if (options.debug) {
      for (const job of plan.jobs) {
        const tools = job.inventory?.inventory ?? options.baseInventory?.inventory
        yield* Effect.logDebug(
          `${rowLabel(job.index, job.source.id)}: ${
            tools === undefined ? "?" : Inv.toolCount(tools)
          } tools offered; request ${
            enrichRequest(job, 1).length
          } chars; ${job.source.observedToolCalls.length} observed tool calls`
        )
      }
    }
    const summary = yield* runSampling<EnrichJob>(enrichSampling(options)).pipe(
      Effect.provideService(Inventory, yield* enrichRunInventory(options))
    )
    // The same checks as `skyrl validate` on what was written (plans against the inventory file when there
    // is one). Prompt size and duplicate prompts come from the source text, which enrich must not change:
    // they are warned about, not failed on (and a leak, in a run that allows it).
    yield* checkWrittenDataset(options.out, options.baseInventory?.inventory, {
      warnOnly: enrichWarnOnly(options.runSettings),
      maxPromptTokens: options.runSettings.max_prompt_tokens
    })
    return summary
  })

/** The plan's rejected input rows as the rejects file lists them (`stage: "input"`, before any attempt's). */
export const inputRejectRecords = (plan: Pick<EnrichPlan, "input" | "rejected">): ReadonlyArray<RejectRecord> =>
  plan.rejected.map((r) => ({
    index: r.index,
    attempt: 0,
    reasons: [new InputError({ file: plan.input, row: r.index, field: r.field, reason: r.reason }).message],
    raw_output_path: null,
    // Extra columns of the rejects file for input rows.
    stage: "input",
    file: plan.input,
    row: r.index,
    field: r.field,
    reason: r.reason,
    ...(r.id === undefined ? {} : { source_id: r.id })
  } as RejectRecord))

/** The Inventory service of an enrich run: the inventory file's, else the first job's own (never offered as such). */
export const enrichRunInventory = (options: Pick<EnrichOptions, "plan" | "baseInventory">) =>
  Effect.suspend(() => {
    const own = options.baseInventory ?? options.plan.jobs[0]?.inventory
    return own === undefined ? placeholderInventory : Effect.succeed(own)
  })

/** The sampling-engine options of an enrich run (also what a `--backend batch` run submits and collects). */
export const enrichSampling = (options: EnrichOptions): SamplingOptions<EnrichJob> => {
  const { plan } = options
  const inputRejects = inputRejectRecords(plan)
  return {
    ...options,
    command: "enrich",
    seed: null,
    jobs: plan.jobs,
    instructions: enrichInstructions(options.baseInventory, { ...options, asOf: options.runSettings.as_of }),
    requestText: enrichRequest,
    taskInput: enrichTaskInput(options.maxTurns, plan.taskIds),
    jobMetadata: enrichMetadata(plan.input, options.baseInventory?.source ?? PROMPT_SERVER),
    // The prompts are the source's, which enrich must not change: their size and duplicates only warn
    // (near-duplicates too: the gate logs them, the prompt stays as given).
    warnOnly: enrichWarnOnly(options.runSettings),
    // Plans are judged against the inventory file as `skyrl validate` judges them (the job's own inventory
    // is narrowed to the tools its prompt lists: a leak is counted against the whole).
    checksInventory: options.baseInventory?.inventory,
    // A row whose prompt's tools (the source's) are too few for its plan: a repair or another attempt could
    // only pick a plan of fewer tools than the model judged the task needs, so the sample fails at once.
    finalRules: rejectsPlanLeaksOf(options.runSettings)
      ? {
        prefixes: [PLAN_LEAK],
        hint: "the prompt's tool list is the source's (enrich cannot offer more tools), and another answer could " +
          "only be a plan of fewer tools than the model found the request needs; --allow-plan-leak writes such a " +
          "row with a warning"
      }
      : undefined,
    nearDuplicates: { threshold: DEFAULT_NEAR_DUP_THRESHOLD },
    maxPromptTokens: options.runSettings.max_prompt_tokens,
    passthrough: plan.skipped.map((s) => ({ index: s.index, row: s.row })),
    columnsOf: columnsByIndex(plan),
    jobInventory: (job) => job.inventory,
    inputRejects,
    onSampleDone: (job, outcome) => {
      const line = outcomeLine(job, outcome, options.runSettings.max_prompt_tokens)
      return outcome.status === "row" ? Effect.logInfo(line) : Effect.logWarning(line)
    }
  }
}

/**
 * With --inventory-from-prompt and no row to plan, the engine still needs an Inventory service (it writes
 * the skipped rows and the rejects); this one is never offered to a model.
 */
const placeholderInventory = Effect.orDie(
  quiet(makeInventory(
    new Inv.Inventory({
      servers: [new Inv.InventoryServer({ name: PROMPT_SERVER, tools: [new Inv.InventoryTool({ name: "none" })] })]
    }),
    "(no rows to plan)"
  ))
)
