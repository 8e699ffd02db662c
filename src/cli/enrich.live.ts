/** Live wiring of `enrich` (loaded lazily by src/cli/enrich.ts). */
import { Effect, Layer, Logger, LogLevel, Option } from "effect"
import * as path from "node:path"
import type { StorageError } from "../domain/errors.js"
import { InputError } from "../domain/errors.js"
import { toolCount } from "../domain/inventory.js"
import { noDatasetWritten } from "../domain/noDataset.js"
import { expectedOutputOf, priceOf } from "../domain/pricing.js"
import { RunSettings, SettingsError } from "../domain/run.js"
import { plural } from "../domain/words.js"
import type { EnrichJob, EnrichOptions, EnrichPlan } from "../programs/enrich.js"
import {
  checkShownSchemasOf,
  enrichInstructions,
  enrichProgram,
  enrichRequest,
  inputRejectRecords,
  listOfferedToolsOf,
  planEnrichment,
  PROMPT_SERVER,
  rejectsPlanLeaksOf,
  rowLabel
} from "../programs/enrich.js"
import { rejectsFileText } from "../programs/sampling.js"
import type { InventoryApi } from "../services/Inventory.js"
import { Inventory } from "../services/Inventory.js"
import { progressLayer } from "../services/Progress.js"
import { inventoryFingerprint } from "../services/RunJournal.js"
import { Storage, StorageLive } from "../services/Storage.js"
import { estimateTokens } from "../skyrl/prompt.js"
import type { InputFormat } from "../skyrl/sources.js"
import type { LlmOptions } from "./llmOptions.js"
import { baseUrlChecked, hasApiKey, llmSettingsFromOptions, replayInput, usesOpenAI } from "./llmOptions.js"
import { outputDirectoriesMakeable, runDirectories } from "./outputDirectories.js"
import { outputsApart } from "./outputsApart.js"
import type { RunCliOptions } from "./runShared.js"
import {
  engineOptionsOf,
  filesOnly,
  inputSha256,
  llmOptionsOf,
  lockRunOutput,
  modelSettingsOf,
  outputPathsOf,
  pacedLlmLayer,
  positiveInt,
  printLines,
  rowSettingsOf,
  runInputs,
  runLimitsOf,
  runOf,
  runOutputs
} from "./runShared.js"
import { serverListOf } from "./serverList.js"
import { warnIndentIgnored } from "./shared.js"
import { cassetteStoreOutput, verifyDetailsOf, verifySettingOf, withRunVerification } from "./verifyFlags.js"

export interface EnrichCliOptions extends RunCliOptions {
  readonly input: string
  readonly inputFormat: "auto" | "skyrl" | "sharegpt" | "openai"
  readonly limit: Option.Option<number>
  readonly overwrite: boolean
  readonly inventoryFromPrompt: boolean
  readonly keepSystemMessage: boolean
  readonly allowSchemaMismatch: boolean
  readonly allowPlanLeak: boolean
  readonly debug: boolean
}

/**
 * Offline, a recorded answer is a plan only for the prompt it was recorded for: enrich replays an answer
 * only for the very request (a run of these prompts, `--replay-dir`), never another prompt's plan.
 */
const ENRICH_REPLAY = {
  reason: "offline, enrich answers a prompt only from an answer recorded for that very request (the bundled " +
    "answers are plans for generate's finance samples, not for your prompts); set OPENAI_API_KEY, or pass " +
    "--replay-dir with the archive of a run that planned these prompts"
}

/**
 * Fails when every row the plan read was rejected (naming the first), so that no run is made for nothing. The
 * rejects file is written first, as a run writes it (run_id null when no run was made): it holds every row's
 * reason. No dataset is written (an empty one never is), and an --out there is left as it was; the error says
 * whether one is there, since it is an earlier run's and does not match these rejects.
 */
const usableRows = (
  input: string,
  out: string,
  plan: EnrichPlan,
  runId: string | null
): Effect.Effect<void, InputError | StorageError> => {
  const none = noUsableRow(input, plan)
  if (none === undefined) return Effect.void
  const rejectsFile = `${out}.rejects.jsonl`
  return Effect.gen(function*() {
    const storage = yield* Storage
    yield* storage.writeFileAtomic(rejectsFile, rejectsFileText(runId, inputRejectRecords(plan)))
    const earlierOut = yield* storage.exists(out)
    return yield* none(`reasons in ${rejectsFile}; nothing to enrich, so ${noDatasetWritten(out, earlierOut)}`)
  }).pipe(Effect.provide(StorageLive))
}

/**
 * When every row the plan read was rejected: the error naming the first, with `then` (what came of it) after
 * the count. Undefined when a row is planned or kept as is (or none was read).
 */
const noUsableRow = (input: string, plan: EnrichPlan): ((then: string) => InputError) | undefined => {
  if (!(plan.jobs.length === 0 && plan.skipped.length === 0 && plan.rejected.length > 0)) return undefined
  const first = plan.rejected[0]
  return (then) =>
    new InputError({
      file: input,
      row: first.index,
      field: first.field,
      reason: `${first.reason} (no usable row: all ${plan.rejected.length} rows read were rejected); ${then}`
    })
}

export const runEnrich = (options: EnrichCliOptions) => {
  const program = Effect.gen(function*() {
    const { concurrency, maxAttempts, maxTools, maxTurns } = yield* runLimitsOf(options)
    const limit = Option.isSome(options.limit) ? yield* positiveInt(options.limit.value, "--limit") : undefined
    if (options.verify && options.inventoryFromPrompt) {
      return yield* new SettingsError({
        setting: "--verify",
        reason: "needs MCP servers to run the plans on; with --inventory-from-prompt the tools come from each " +
          "prompt's <tools> block, which names no server to start"
      })
    }
    const input = options.input
    const inputs = [
      { what: "input file", file: input },
      ...runInputs(options, !options.inventoryFromPrompt),
      yield* replayInput(options)
    ]
    yield* outputsApart("enrich", runOutputs(options.out), inputs)
    if (options.verify && !options.dryRun) {
      yield* outputsApart("enrich", [cassetteStoreOutput(options, options.out)], filesOnly(inputs))
    }
    const { out, rawDir } = yield* outputPathsOf(options)
    if (!options.dryRun) {
      yield* outputDirectoriesMakeable(runDirectories(options))
      // One run writes an --out at a time, from before its first call to its dataset.
      yield* lockRunOutput(out, "enrich")
    }
    const servers = yield* serversChecked(options)
    const baseInventory = yield* baseInventoryOf(options, servers)
    const rowSettings = yield* rowSettingsOf(options)
    const plan = yield* planEnrichment({
      input,
      inputFormat: options.inputFormat === "auto" ? undefined : options.inputFormat,
      limit,
      overwrite: options.overwrite,
      baseInventory,
      listOfferedTools: options.keepSystemMessage ? undefined : { maxPromptTokens: rowSettings.maxPromptTokens },
      checkShownSchemas: !options.allowSchemaMismatch,
      rejectPlanLeaks: !options.allowPlanLeak
    }).pipe(Effect.provide(StorageLive))

    const llmOpts: LlmOptions = options
    // --backend batch: the bodies are for --batch-endpoint (so --dry-run shows the body each batch line carries).
    const settings = options.backend === "batch"
      ? { ...llmSettingsFromOptions(llmOpts), backend: options.batchEndpoint }
      : llmSettingsFromOptions(llmOpts)
    if (!options.dryRun) yield* baseUrlChecked(options)
    if (options.dryRun) {
      return yield* dryRun(options, plan, baseInventory, { maxTools, maxTurns, asOf: rowSettings.asOf }, settings)
    }

    // A new run fails before it is made; a resumed one once its own settings have planned the rows.
    if (!options.resume) yield* usableRows(input, out, plan, null)
    const inputHash = yield* inputSha256(input)
    const fresh = new RunSettings({
      command: "enrich",
      ...modelSettingsOf(options, settings, yield* usesOpenAI(options)),
      seed: null,
      n: plan.jobs.length,
      domains: [],
      complexities: [],
      inventory_sha256: baseInventory === undefined ? null : inventoryFingerprint(baseInventory.inventory),
      max_tools: maxTools,
      max_turns: maxTurns,
      max_prompt_tokens: rowSettings.maxPromptTokens,
      as_of: rowSettings.asOf,
      data_source: options.dataSource,
      input: inputSettingsOf(options, limit, inputHash),
      ...verifySettingOf(options)
    })
    const run = yield* runOf("enrich", options, { rawDir, out, fresh })
    const s = run.settings
    const runPlan = yield* planOfRun(options, { plan, fresh, run, baseInventory })
    yield* usableRows(input, out, runPlan, run.runId)
    yield* warnIndentIgnored(out, options.indent)
    const runLlm = llmOptionsOf(llmOpts, s)
    const runSettings = llmSettingsFromOptions(runLlm)
    const program: EnrichOptions = {
      ...engineOptionsOf(options, run, { out, rawDir, concurrency, maxAttempts }, runSettings, {
        input: path.resolve(input),
        input_format: s.input?.format ?? options.inputFormat,
        limit: s.input?.limit ?? null,
        overwrite: s.input?.overwrite ?? options.overwrite,
        inventory_from_prompt: options.inventoryFromPrompt,
        keep_system_message: s.input?.list_offered_tools !== true,
        debug: options.debug,
        inventory: options.inventoryFromPrompt ? PROMPT_SERVER : (baseInventory?.source ?? null),
        servers: Option.getOrNull(servers),
        rows: { planned: runPlan.jobs.length, skipped: runPlan.skipped.length, rejected: runPlan.rejected.length },
        ...verifyDetailsOf(options, s.verify, out)
      }),
      plan: runPlan,
      baseInventory,
      debug: options.debug
    }
    if (options.backend === "batch") {
      const { submitEnrichBatch } = yield* Effect.promise(() => import("./batch.live.js"))
      return yield* submitEnrichBatch({
        program,
        settings: { ...runSettings, backend: options.batchEndpoint },
        inventory: {
          path: options.inventoryFromPrompt ? null : Option.getOrNull(options.inventory),
          servers: Option.getOrNull(servers)
        },
        flags: options,
        concurrency,
        llm: options.llm,
        resume: options.resume
      })
    }
    const summary = yield* runEngine(options, {
      program,
      runLlm,
      verify: s.verify,
      baseInventory,
      runDir: path.join(rawDir, run.runId),
      out
    })
    yield* Effect.logInfo(
      `enrich: ${summary.valid} rows written (${runPlan.jobs.length} planned, ${runPlan.skipped.length} kept as is, ` +
        `${runPlan.rejected.length} rejected input rows${
          runPlan.rejected.length > 0 ? `, see ${out}.rejects.jsonl` : ""
        })`
    )
    return summary
  }).pipe(Effect.scoped)
  return options.debug ? Logger.withMinimumLogLevel(program, LogLevel.Debug) : program
}

/** --servers parsed, and --servers / --inventory beside --inventory-from-prompt (its tools are the prompts'). */
const serversChecked = (options: EnrichCliOptions) =>
  Effect.gen(function*() {
    const servers = yield* serverListOf(options.servers)
    if (options.inventoryFromPrompt && Option.isSome(servers)) {
      return yield* new SettingsError({
        setting: "--servers",
        reason: `cannot be combined with --inventory-from-prompt (prompt tools are all on server "${PROMPT_SERVER}")`
      })
    }
    if (options.inventoryFromPrompt && Option.isSome(options.inventory)) {
      yield* Effect.logWarning(
        `--inventory ${options.inventory.value} is not used: --inventory-from-prompt takes each prompt's <tools> block`
      )
    }
    return servers
  })

/** The inventory the plans are checked against (--inventory, --servers); none with --inventory-from-prompt. */
const baseInventoryOf = (options: EnrichCliOptions, servers: Option.Option<ReadonlyArray<string>>) =>
  options.inventoryFromPrompt ? Effect.succeed(undefined) : Inventory.pipe(
    Effect.provide(
      Inventory.fromFile(
        Option.getOrUndefined(options.inventory),
        Option.isSome(servers) ? { servers: servers.value } : undefined
      ).pipe(Layer.provide(StorageLive))
    )
  )

/** The run's `input` settings: the input file (path and sha256) and how it is read. */
const inputSettingsOf = (options: EnrichCliOptions, limit: number | undefined, sha256: string) => ({
  path: path.resolve(options.input),
  sha256,
  format: options.inputFormat,
  limit: limit ?? null,
  overwrite: options.overwrite,
  inventory_from_prompt: options.inventoryFromPrompt,
  ...(options.keepSystemMessage ? {} : { list_offered_tools: true as const }),
  ...(options.allowSchemaMismatch ? {} : { shown_schemas: "checked" as const }),
  ...(options.allowPlanLeak ? {} : { plan_leak: "rejected" as const })
})

/**
 * The plan of the run: the one made from the flags when the run's settings read the input alike, else made
 * again from the run's own (`--resume --force`), which needs the same input file and inventory.
 */
const planOfRun = (
  options: EnrichCliOptions,
  { baseInventory, fresh, plan, run }: {
    readonly plan: EnrichPlan
    readonly fresh: RunSettings
    readonly run: { readonly runId: string; readonly settings: RunSettings }
    readonly baseInventory: InventoryApi | undefined
  }
) =>
  Effect.gen(function*() {
    const s = run.settings
    if (
      s.inventory_sha256 !== fresh.inventory_sha256 || s.input?.sha256 !== fresh.input?.sha256 ||
      s.input?.path !== fresh.input?.path || s.input?.inventory_from_prompt !== fresh.input?.inventory_from_prompt
    ) {
      return yield* new SettingsError({
        setting: "--resume --force",
        reason:
          `run ${run.runId} planned another input file or inventory; it can only go on with those (start a new run)`
      })
    }
    const sameReading = s.input?.limit === fresh.input?.limit && s.input?.overwrite === fresh.input?.overwrite &&
      s.input?.format === fresh.input?.format && s.max_prompt_tokens === fresh.max_prompt_tokens &&
      s.input?.list_offered_tools === fresh.input?.list_offered_tools &&
      s.input?.shown_schemas === fresh.input?.shown_schemas && s.input?.plan_leak === fresh.input?.plan_leak
    if (sameReading) return plan
    return yield* planEnrichment({
      input: options.input,
      inputFormat: s.input?.format === "auto" || s.input === null ? undefined : (s.input.format as InputFormat),
      limit: s.input?.limit ?? undefined,
      overwrite: s.input?.overwrite ?? false,
      baseInventory,
      listOfferedTools: listOfferedToolsOf(s),
      checkShownSchemas: checkShownSchemasOf(s),
      rejectPlanLeaks: rejectsPlanLeaksOf(s)
    }).pipe(Effect.provide(StorageLive))
  })

/** The run engine on the run's plan, online; with the run's --verify, once the servers are up. */
const runEngine = (
  options: EnrichCliOptions,
  { baseInventory, out, program, runDir, runLlm, verify }: {
    readonly program: EnrichOptions
    readonly runLlm: LlmOptions
    readonly verify: RunSettings["verify"]
    readonly baseInventory: InventoryApi | undefined
    readonly runDir: string
    readonly out: string
  }
) =>
  withRunVerification(
    { flags: options, setting: verify, inventory: baseInventory?.inventory, runDir, out },
    (hook) =>
      enrichProgram({ ...program, verify: hook }).pipe(
        Effect.provide(
          Layer.mergeAll(StorageLive, pacedLlmLayer(options, runLlm, ENRICH_REPLAY), progressLayer())
        )
      )
  )

const dryRun = (
  options: EnrichCliOptions,
  plan: EnrichPlan,
  baseInventory: InventoryApi | undefined,
  limits: { readonly maxTools: number; readonly maxTurns: number; readonly asOf: string },
  settings: ReturnType<typeof llmSettingsFromOptions>
) =>
  Effect.gen(function*() {
    const keySet = yield* hasApiKey
    const instructions = enrichInstructions(baseInventory, limits)
    const lines: Array<string> = []
    lines.push("# skyrl enrich --dry-run (no model is called)")
    lines.push(`model ${settings.model}, backend ${settings.backend}, reasoning effort ${settings.reasoningEffort}`)
    lines.push(`llm: ${options.llm}; OPENAI_API_KEY ${keySet ? "is set (not shown)" : "is not set"}`)
    lines.push(
      `inventory: ${
        baseInventory === undefined
          ? `each prompt's <tools> block (server "${PROMPT_SERVER}")`
          : `${baseInventory.source} (${
            toolCount(baseInventory.inventory)
          } tools; narrowed to the tools a prompt lists)`
      }`
    )
    lines.push(
      `input ${options.input}: ${plan.rowsRead} rows read${
        plan.limited ? ` (stopped at --limit ${options.limit.pipe(Option.getOrElse(() => 0))})` : ""
      }`
    )
    lines.push("", "## rows")
    const jobLine = (j: EnrichJob): string => {
      const offered = j.offered._tag === "all"
        ? "all inventory tools"
        : j.offered._tag === "names"
        ? `${plural(j.offered.tools.length, "tool")} the prompt lists`
        : `${plural(toolCount(j.offered.inventory), "tool")} from its <tools> block`
      return `${rowLabel(j.index, j.source.id)}: plan (${j.source.format}; ${offered}; ${
        plural(j.source.observedToolCalls.length, "observed tool call")
      })`
    }
    // The rows' lines in index order, each made as it is printed (not a line per row held, then one text).
    const rowLines = mergeByIndex<string>([
      rowList(plan.jobs, jobLine),
      rowList(plan.skipped, (s) => `${rowLabel(s.index, s.id)}: keep as is, ${s.reason}`),
      rowList(plan.rejected, (r) =>
        `${rowLabel(r.index, r.id)}: reject, ${
          new InputError({ file: plan.input, row: r.index, field: r.field, reason: r.reason }).message
        }`)
    ])
    const tail: Array<string> = [
      "",
      `planned ${plan.jobs.length}, kept as is ${plan.skipped.length}, rejected ${plan.rejected.length}`
    ]
    const first = plan.jobs[0]
    if (first !== undefined) {
      const request = enrichRequest(first, 1)
      tail.push("", "## shared instructions", instructions, "", "## first request", request)
      const shared = estimateTokens(instructions)
      const perCall = plan.jobs.reduce((n, j) => n + estimateTokens(enrichRequest(j, 1)), 0) / plan.jobs.length +
        shared
      const output = expectedOutputOf(settings.reasoningEffort)
      const price = priceOf(settings.model)
      tail.push("", "## estimate")
      tail.push(`input per call ~${Math.round(perCall)} tokens (shared prefix ~${shared}), output per call ~${output}`)
      if (price === undefined) tail.push(`no price known for ${settings.model}`)
      else {
        const cold = (plan.jobs.length * (perCall * price.input + output * price.output)) / 1e6
        tail.push(
          `cost for ${plan.jobs.length} rows: ~$${cold.toFixed(4)} without the prompt cache (repairs add to it)`
        )
      }
      if (options.backend === "batch") {
        const { batchDryRun } = yield* Effect.promise(() => import("./batch.live.js"))
        const schemaOf = (j: EnrichJob) =>
          (j.inventory ?? baseInventory ?? first.inventory)?.outputJsonSchema({ maxSteps: limits.maxTools }) ?? {}
        const requests = function*() {
          for (const j of plan.jobs) {
            yield { index: j.index, instructions, user: enrichRequest(j, 1), jsonSchema: schemaOf(j) }
          }
        }
        tail.push(
          ...yield* batchDryRun({
            settings,
            flags: options,
            expectedOutput: output,
            requests: requests()
          })
        )
      }
    }
    yield* printLines(
      (function*() {
        yield* lines
        yield* rowLines
        yield* tail
      })()
    )
    // A preflight: the run's exit code for this input (1 when it would fail for want of a usable row). With
    // --resume --force the run plans with its own settings, which may take rows these flags reject.
    const none = options.resume && options.force ? undefined : noUsableRow(options.input, plan)
    if (none !== undefined) {
      return yield* none("--dry-run: a run would write no dataset and exit 1 (nothing was written)")
    }
    return undefined
  })

/** A list of rows in index order (as the plan found them; sorted first otherwise) and the line of each. */
interface RowList<L> {
  readonly length: number
  readonly indexAt: (k: number) => number
  readonly lineAt: (k: number) => L
}

const rowList = <T extends { readonly index: number }, L>(
  items: ReadonlyArray<T>,
  line: (item: T) => L
): RowList<L> => {
  const ordered = items.every((x, i) => i === 0 || items[i - 1].index <= x.index)
    ? items
    : [...items].sort((a, b) => a.index - b.index)
  return { length: ordered.length, indexAt: (k) => ordered[k].index, lineAt: (k) => line(ordered[k]) }
}

/**
 * The lines of several lists of rows merged in index order (the earlier list first on a tie): what sorting
 * their lines together gave, without holding them.
 */
function* mergeByIndex<L>(lists: ReadonlyArray<RowList<L>>): Generator<L> {
  const at = lists.map(() => 0)
  for (;;) {
    let next = -1
    for (let k = 0; k < lists.length; k++) {
      if (at[k] < lists[k].length && (next === -1 || lists[k].indexAt(at[k]) < lists[next].indexAt(at[next]))) next = k
    }
    if (next === -1) return
    yield lists[next].lineAt(at[next]++)
  }
}
