/** Live wiring of the batch commands and of `generate`/`enrich --backend batch` (loaded lazily). */
import { Effect, Either, Layer, Option, Schema } from "effect"
import * as path from "node:path"
import type { BatchRun } from "../domain/batch.js"
import { BATCH_MAX_BYTES, endpointUrl } from "../domain/batch.js"
import { InputError } from "../domain/errors.js"
import type { Inventory as Catalogue } from "../domain/inventory.js"
import * as Inv from "../domain/inventory.js"
import type { LlmSettings } from "../domain/llm.js"
import type { LlmChoice } from "../domain/llm.js"
import { emptyUsage, makeLlmSettings } from "../domain/llm.js"
import { costOf } from "../domain/pricing.js"
import { RunSettings, sampleKey, SettingsError } from "../domain/run.js"
import { shellWord } from "../domain/words.js"
import type { BatchLimits, CollectOptions, PollOptions } from "../programs/batch.js"
import {
  allTerminal,
  collectRun,
  planParts,
  prepareLine,
  readRun,
  recordedRun,
  refreshRun,
  statusLine,
  submitRun,
  totalsOf,
  unreadableBatchRun,
  waitForRun,
  withRunLock
} from "../programs/batch.js"
import type { EnrichOptions } from "../programs/enrich.js"
import {
  checkShownSchemasOf,
  enrichRunInventory,
  enrichSampling,
  listOfferedToolsOf,
  planEnrichment,
  rejectsPlanLeaksOf
} from "../programs/enrich.js"
import type { GenerateOptions } from "../programs/generate.js"
import { generateSampling } from "../programs/generate.js"
import { lockOutput } from "../programs/outputLock.js"
import type { Job, SamplingOptions } from "../programs/sampling.js"
import { Inventory } from "../services/Inventory.js"
import { BatchClientLive } from "../services/llm/batch.js"
import { LlmLive } from "../services/llm/live.js"
import { progressLayer } from "../services/Progress.js"
import { rateLimiterLayer } from "../services/RateLimiter.js"
import { inventoryFingerprint, runPaths } from "../services/RunJournal.js"
import { Storage, StorageLive } from "../services/Storage.js"
import { toJsonText } from "../skyrl/layout.js"
import { parseIssues } from "../skyrl/parseIssues.js"
import type { InputFormat } from "../skyrl/sources.js"
import type { BatchFlags } from "./batch.js"
import { noteBatchRunDir } from "./batch.js"
import { hasApiKey } from "./llmOptions.js"
import { fileDirectory, outputDirectoriesMakeable } from "./outputDirectories.js"
import { inputSha256 } from "./runShared.js"

const MAX_POLL_MS = 600_000

/** The part limits of a submission or collect: the flags, else (collect) what the run was submitted with. */
const limitsOf = (
  maxRequests: number,
  maxTokens: Option.Option<number>,
  stored: number | null = null
): Effect.Effect<BatchLimits, SettingsError> =>
  Option.match(maxTokens, {
    onNone: (): Effect.Effect<number, SettingsError> => Effect.succeed(stored ?? Number.POSITIVE_INFINITY),
    onSome: (n): Effect.Effect<number, SettingsError> =>
      Number.isInteger(n) && n > 0
        ? Effect.succeed(n)
        : Effect.fail(
          new SettingsError({ setting: "--batch-max-tokens", reason: `must be a positive integer, got ${n}` })
        )
  }).pipe(Effect.map((tokens) => ({ maxRequests, maxBytes: BATCH_MAX_BYTES, maxTokens: tokens })))

const pollOf = (seconds: number): PollOptions => ({
  intervalMs: Math.max(1, Math.round(seconds * 1000)),
  maxIntervalMs: MAX_POLL_MS
})

const settingsOf = (run: BatchRun): LlmSettings =>
  makeLlmSettings({
    model: run.llm.model,
    backend: run.endpoint,
    reasoningEffort: run.llm.reasoningEffort,
    maxOutputTokens: run.llm.maxOutputTokens,
    timeoutMs: run.llm.timeoutMs,
    maxRetries: run.llm.maxRetries
  })

/** The inventory a run names (its file and --servers); `keptByRun` when it is read back to go on with the run. */
const inventoryLayerOf = (run: BatchRun, keptByRun = false) =>
  Inventory.fromFile(run.inventory.path ?? undefined, {
    ...(run.inventory.servers === null ? {} : { servers: run.inventory.servers }),
    keptByRun
  }).pipe(Layer.provide(StorageLive))

/**
 * The inventory a run's requests were built with, as a collect needs it to build them again: the run's own
 * copy (inventory.json, kept by its first collect), else its file. One whose fingerprint is not the run's
 * (the file edited since the submission) is refused: every request would differ from the one answered. Either
 * is read as the run's own (`keptByRun`: a comma in a name accepted), the file only when its fingerprint is checked.
 */
const submittedInventory = (runDir: string, run: BatchRun, sha256: string | null) =>
  Effect.gen(function*() {
    const kept = path.join(runDir, "inventory.json")
    const own = yield* Effect.flatMap(Storage, (st) => st.exists(kept)).pipe(Effect.provide(StorageLive))
    const layer = own
      ? Inventory.fromFile(kept, { keptByRun: true }).pipe(Layer.provide(StorageLive))
      : inventoryLayerOf(run, sha256 !== null)
    const inventory = yield* Inventory.pipe(Effect.provide(layer))
    if (sha256 === null || inventoryFingerprint(inventory.inventory) === sha256) return inventory
    return yield* new InputError({
      file: own ? kept : (run.inventory.path ?? "the bundled inventory"),
      reason: "changed since the run was submitted: its batch answers are for the requests built from the " +
        "inventory it had, so none would be used; restore that inventory, then collect again"
    })
  })

/** What a collect relies on of the options batch.json stores (checked to fail readably on a hand-edited file). */
const StoredOptions = {
  out: Schema.String,
  rawDir: Schema.String,
  runId: Schema.String,
  maxTools: Schema.Number,
  maxTurns: Schema.Number,
  runSettings: RunSettings
}
const StoredGenerateOptions = Schema.Struct({ ...StoredOptions, plan: Schema.Array(Schema.Unknown) })
const StoredEnrichOptions = Schema.Struct({
  ...StoredOptions,
  settings: Schema.Struct({
    input: Schema.String,
    input_format: Schema.String,
    overwrite: Schema.Boolean,
    inventory_from_prompt: Schema.Boolean,
    limit: Schema.NullOr(Schema.Number)
  })
})

/**
 * The options stored in batch.json as `schema` checks them, or the first field it refuses, named as every field
 * of a run directory's files is (`batch.json, options.runSettings.seed: must be a number, got "x": ...`, exit 2).
 */
const storedOptions = <A, I>(run: BatchRun, file: string, schema: Schema.Schema<A, I>, command: string) =>
  Either.match(Schema.decodeUnknownEither(schema)(run.options), {
    onRight: (stored) => Effect.succeed(stored),
    onLeft: (e) => {
      const issue = parseIssues(e)[0] ?? { path: "", message: "does not decode" }
      const at = issue.path === "" ? "options" : `options.${issue.path}`
      return Effect.fail(unreadableBatchRun(file, { ...issue, path: at }, `not the options of ${command} run`))
    }
  })

/** The generate options stored in batch.json. */
const generateOptionsOf = (run: BatchRun, file: string): Effect.Effect<GenerateOptions, SettingsError> =>
  Effect.map(storedOptions(run, file, StoredGenerateOptions, "a generate"), (stored) => ({
    ...(run.options as unknown as GenerateOptions),
    runSettings: stored.runSettings
  }))

/**
 * The input file as the run read it (its sha256): collect plans the samples again from it, and a file
 * changed since (rows added, moved or edited) would send prompts the run never submitted.
 */
const sameInput = (input: string, settings: RunSettings) =>
  Effect.gen(function*() {
    const now = yield* inputSha256(input)
    const then = settings.input?.sha256
    if (then === undefined || then === now) return
    return yield* new InputError({
      file: input,
      reason: `changed since the run was submitted (sha256 ${then.slice(0, 12)}... in the run, ${
        now.slice(0, 12)
      }... now); collect reads it again to know the run's samples: restore the file as submitted, or start a new run`
    })
  })

/** The enrich options stored in batch.json, with the plan made again from the input (as at submit time). */
const enrichOptionsOf = (run: BatchRun, file: string) =>
  Effect.gen(function*() {
    const { runSettings, settings: st } = yield* storedOptions(run, file, StoredEnrichOptions, "an enrich")
    yield* sameInput(st.input, runSettings)
    const baseInventory = st.inventory_from_prompt
      ? undefined
      : yield* submittedInventory(path.dirname(file), run, runSettings.inventory_sha256)
    const plan = yield* planEnrichment({
      input: st.input,
      inputFormat: st.input_format === "auto" ? undefined : (st.input_format as InputFormat),
      limit: st.limit ?? undefined,
      overwrite: st.overwrite,
      baseInventory,
      listOfferedTools: listOfferedToolsOf(runSettings),
      checkShownSchemas: checkShownSchemasOf(runSettings),
      rejectPlanLeaks: rejectsPlanLeaksOf(runSettings)
    }).pipe(Effect.provide(StorageLive))
    return {
      ...(run.options as unknown as EnrichOptions),
      runSettings,
      plan,
      baseInventory,
      debug: false
    } satisfies EnrichOptions
  })

const collectFor = <J extends Job>(
  runDir: string,
  run: BatchRun,
  makeSampling: (catalogue: Catalogue) => SamplingOptions<J>,
  inventoryLayer: Layer.Layer<Inventory, unknown>,
  out: string,
  options: CollectOptions
) =>
  Effect.gen(function*() {
    const settings = settingsOf(run)
    const summary = yield* collectRun(runDir, makeSampling, options).pipe(
      Effect.provide(
        Layer.mergeAll(
          StorageLive,
          inventoryLayer,
          BatchClientLive(settings),
          // Online repairs of a collect are not paced (the collect has no --rpm/--tpm).
          LlmLive(settings).pipe(Layer.provide(rateLimiterLayer({}))),
          progressLayer()
        )
      )
    )
    if (summary.sampling !== undefined) {
      // Every figure from the run's cost ledger (batch answers at batch prices, online calls at normal prices).
      const { costUsd, onlineUsage: online } = summary.totals
      const onlineCost = costOf(run.llm.model, online)
      yield* Effect.logInfo(
        `batch run ${run.run_id} collected: ${summary.sampling.valid} rows in ${out}; ` +
          `cost ${costUsd === undefined ? "unknown (model not in the price table)" : `$${costUsd.toFixed(4)}`}` +
          (online.input + online.output > 0
            ? ` (of which online calls at normal prices: ${online.input} tokens in, ${online.output} out${
              onlineCost === undefined ? "" : `, $${onlineCost.toFixed(4)}`
            }; the rest batch answers at batch prices)`
            : " at batch prices")
      )
    }
    return summary
  })

/**
 * The dataset (and its rejects file) goes to the --out the run recorded (an absolute path), wherever its run
 * directory is now. A run directory moved or copied from elsewhere (another machine) whose recorded --out has
 * no directory here stops the collect before anything is sent or written, rather than make that other
 * place's directories.
 */
const checkRecordedOut = (
  runDir: string,
  file: string,
  o: Pick<GenerateOptions, "out" | "rejectsFile" | "rawDir" | "runId">
) =>
  Effect.gen(function*() {
    const submittedAs = path.join(o.rawDir, o.runId)
    if (path.resolve(submittedAs) === runDir) return
    const storage = yield* Storage
    for (const [field, out] of [["options.out", o.out], ["options.rejectsFile", o.rejectsFile]] as const) {
      const dir = path.dirname(out ?? runDir)
      if (yield* storage.exists(dir)) continue
      return yield* new InputError({
        file,
        field,
        reason: `${out}: its directory ${dir} does not exist; this run directory was submitted as ${submittedAs} ` +
          "(moved or copied from elsewhere since), and a collect writes the dataset to the --out the run " +
          `recorded without making another place's directories: create ${dir}, or set options.out and ` +
          "options.rejectsFile of this batch.json to paths of this machine"
      })
    }
  }).pipe(Effect.provide(StorageLive))

/**
 * The directories the collect writes the dataset and its rejects file in can take them: a read-only one was
 * found only once every answer was judged (and online repairs paid for). A usage error (exit 2) before
 * anything is fetched or sent.
 */
const checkOutWritable = (o: Pick<GenerateOptions, "out" | "rejectsFile">) =>
  outputDirectoriesMakeable([
    fileDirectory("the run's --out", o.out),
    o.rejectsFile === undefined ? undefined : fileDirectory("the run's rejects file", o.rejectsFile)
  ]).pipe(
    Effect.mapError((e) =>
      new SettingsError({
        ...e,
        reason: `${e.reason}; nothing was collected: make it writable, then collect again`
      })
    )
  )

/**
 * Collects the run into the --out it recorded. `lockOut`: the collect takes that --out's lock (`lockOutput`) once
 * the run's options are known to be usable, before anything is fetched or sent; a collect that runs in the
 * `generate` / `enrich --backend batch --wait` that submitted the run holds it already (from its start).
 */
const collectWith = (runDir: string, run: BatchRun, options: CollectOptions, lockOut: boolean) =>
  Effect.gen(function*() {
    const file = path.join(runDir, "batch.json")
    const lock = (out: string) =>
      lockOut ? lockOutput(out, "batch collect").pipe(Effect.provide(StorageLive)) : Effect.void
    if (run.command === "enrich") {
      const enrich = yield* enrichOptionsOf(run, file)
      yield* checkRecordedOut(runDir, file, enrich)
      yield* checkOutWritable(enrich)
      yield* lock(enrich.out)
      const inventory = yield* enrichRunInventory(enrich)
      return yield* collectFor(
        runDir,
        run,
        () => enrichSampling(enrich),
        Layer.succeed(Inventory, inventory),
        enrich.out,
        options
      )
    }
    const generate = yield* generateOptionsOf(run, file)
    yield* checkRecordedOut(runDir, file, generate)
    yield* checkOutWritable(generate)
    yield* lock(generate.out)
    const inventory = yield* submittedInventory(runDir, run, generate.runSettings.inventory_sha256)
    return yield* collectFor(
      runDir,
      run,
      (catalogue) => generateSampling(generate, catalogue),
      Layer.succeed(Inventory, inventory),
      generate.out,
      options
    )
  })

interface SubmitInput<P> {
  readonly program: P
  readonly settings: LlmSettings
  readonly inventory: { readonly path: string | null; readonly servers: ReadonlyArray<string> | null }
  readonly flags: BatchFlags
  readonly concurrency: number
  readonly llm: LlmChoice
  readonly resume: boolean
}

/** Checks shared by the submitting commands: generate and enrich run them before resolving the run. */
export const checkSubmit = (input: Pick<SubmitInput<unknown>, "llm" | "resume">) =>
  Effect.gen(function*() {
    if (input.llm === "replay") {
      return yield* new SettingsError({
        setting: "--backend batch",
        reason: "submits to OpenAI's Batch API and cannot replay recorded answers; drop --llm replay"
      })
    }
    // --llm auto without a key would select the offline replay, which has no Batch API to submit to.
    if (input.llm === "auto" && !(yield* hasApiKey)) {
      return yield* new SettingsError({
        setting: "--backend batch",
        reason:
          "submits to OpenAI's Batch API, and OPENAI_API_KEY is not set; set it, or drop --backend batch to run offline from recorded answers"
      })
    }
    if (input.resume) {
      return yield* new SettingsError({
        setting: "--backend batch --resume",
        reason: "a batch run continues with `skyrl batch collect RUN_DIR` (collecting again never duplicates rows)"
      })
    }
  })

const batchRunOf = (
  command: BatchRun["command"],
  input: SubmitInput<unknown>,
  runId: string,
  options: unknown
): BatchRun => ({
  format: "skyrl-batch/1",
  run_id: runId,
  command,
  created_at: new Date().toISOString(),
  endpoint: input.flags.batchEndpoint,
  llm: {
    model: input.settings.model,
    reasoningEffort: input.settings.reasoningEffort,
    maxOutputTokens: input.settings.maxOutputTokens,
    timeoutMs: input.settings.timeoutMs,
    maxRetries: input.settings.maxRetries
  },
  inventory: {
    path: input.inventory.path === null ? null : path.resolve(input.inventory.path),
    servers: input.inventory.servers === null ? null : [...input.inventory.servers]
  },
  options: JSON.parse(JSON.stringify(options)) as Record<string, unknown>,
  parts: [],
  max_tokens: null,
  online_usage: emptyUsage,
  repairs: input.flags.repairs
})

/** Submits, prints the run directory on stdout, and with --wait polls and collects. */
const submitAndMaybeCollect = <J extends Job>(
  input: SubmitInput<unknown>,
  run: BatchRun,
  makeSampling: (catalogue: Catalogue) => SamplingOptions<J>,
  inventoryLayer: Layer.Layer<Inventory, unknown>
) =>
  Effect.gen(function*() {
    const limits = yield* limitsOf(input.flags.batchMaxRequests, input.flags.batchMaxTokens)
    // The run directory goes to stdout once batch.json is written, before anything is sent: a submission
    // interrupted or failed after that point is finished by `batch status` / `batch collect` of it.
    const announce = (runDir: string) =>
      Effect.sync(() => {
        noteBatchRunDir(runDir)
        process.stdout.write(`${runDir}\n`)
      })
    const submitted = yield* submitRun(run, makeSampling, limits, announce).pipe(
      Effect.provide(
        Layer.mergeAll(StorageLive, inventoryLayer, BatchClientLive({ ...input.settings, backend: run.endpoint }))
      )
    )
    if (!input.flags.wait) return
    yield* collectWith(submitted.runDir, submitted.run, {
      repairs: input.flags.repairs,
      resubmit: false,
      wait: true,
      poll: pollOf(input.flags.pollInterval),
      limits,
      concurrency: input.concurrency,
      retryFailed: false
    }, false)
  })

/** A run's engine options as a batch run records them (backend and endpoint). */
const forBatch = <P extends { readonly backend: string; readonly settings: Readonly<Record<string, unknown>> }>(
  program: P,
  endpoint: BatchRun["endpoint"]
): P => ({
  ...program,
  backend: `batch ${endpoint}`,
  settings: { ...program.settings, backend: "batch", batch_endpoint: endpointUrl(endpoint) }
})

/** `generate --backend batch`: submit (and with --wait, poll and collect). Prints the run directory on stdout. */
export const submitGenerateBatch = (input: SubmitInput<GenerateOptions>) =>
  Effect.gen(function*() {
    const program = forBatch(input.program, input.flags.batchEndpoint)
    const run = batchRunOf("generate", input, program.runId, program)
    yield* submitAndMaybeCollect(
      input,
      run,
      (catalogue) => generateSampling(program, catalogue),
      inventoryLayerOf(run)
    )
  })

/** Writes `inventory.json` in a run directory, unless it is there already (`submittedInventory` reads it). */
const keepInventory = (runDir: string, inventory: Catalogue) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const file = path.join(runDir, "inventory.json")
    if (yield* storage.exists(file)) return
    yield* storage.makeDirectory(runDir)
    yield* storage.writeFileAtomic(file, toJsonText(Schema.encodeSync(Inv.Inventory)(inventory), { indent: 2 }) + "\n")
  }).pipe(Effect.provide(StorageLive))

/**
 * `enrich --backend batch`: the same as generate's. batch.json keeps the options without the plan; collect
 * reads the input again (`planEnrichment` with the stored settings) to rebuild it.
 */
export const submitEnrichBatch = (input: SubmitInput<EnrichOptions>) =>
  Effect.gen(function*() {
    const program = forBatch(input.program, input.flags.batchEndpoint)
    const { baseInventory: _base, plan: _plan, ...stored } = program
    const run = batchRunOf("enrich", input, program.runId, stored)
    // The inventory the requests are built from, kept in the run directory before anything is sent (as a
    // generate run keeps its own): collect builds them again from it, whatever became of the file since.
    if (program.baseInventory !== undefined) {
      yield* keepInventory(runPaths(program.rawDir, program.runId).runDir, program.baseInventory.inventory)
    }
    const inventory = yield* enrichRunInventory(program)
    yield* submitAndMaybeCollect(input, run, () => enrichSampling(program), Layer.succeed(Inventory, inventory))
  })

export const runBatchStatus = (options: {
  readonly runDir: string
  readonly wait: boolean
  readonly pollInterval: number
}) =>
  Effect.gen(function*() {
    const runDir = path.resolve(options.runDir)
    const run0 = yield* readRun(runDir).pipe(Effect.provide(StorageLive))
    const layers = Layer.mergeAll(StorageLive, BatchClientLive(settingsOf(run0)))
    const poll = options.wait ? pollOf(options.pollInterval) : undefined
    // Under the run's lock, read again; held by another process (a collect), only what it recorded.
    const refresh = Effect.flatMap(readRun(runDir), (run) =>
      poll === undefined ? refreshRun(runDir, run) : waitForRun(runDir, run, poll))
    const run = yield* withRunLock(runDir, "batch status", refresh).pipe(
      Effect.catchTag("LockHeld", (held) =>
        Effect.zipRight(
          Effect.logWarning(
            `${runDir} is in use by another skyrl process (${held.holder}); showing the state it recorded in batch.json: nothing was sent or written`
          ),
          recordedRun(runDir, poll)
        )),
      Effect.provide(layers)
    )
    const t = totalsOf(run)
    const lines = [
      `run ${run.run_id}: ${run.command}, ${t.requests} requests to ${
        endpointUrl(run.endpoint)
      } (${run.llm.model}) in ${t.parts} batch${t.parts === 1 ? "" : "es"}`
    ]
    for (const p of run.parts) {
      const c = p.request_counts
      lines.push(
        `part ${p.part}  ${p.batch_id ?? "(not created)"}  ${
          (p.status ?? (p.waiting !== null ? "waiting" : "submitting")).padEnd(11)
        }  ` +
          `${c === null ? "?" : c.completed + c.failed}/${p.requests} done, ${c?.failed ?? 0} failed  ${p.purpose}` +
          (p.tokens > 0 ? `  ~${p.tokens} tokens` : "") +
          (p.errors.length > 0 ? `  errors: ${p.errors.slice(0, 3).join("; ")}` : "") +
          (p.batch_id === null && p.waiting !== null ? `  waiting for the queue: ${p.waiting.reason}` : "")
      )
    }
    // A submission stopped while it prepared its parts left samples no part holds (generate runs record
    // their plan; an enrich run's is its input file): collect sends them, without --resubmit.
    const plan = (run.options as { plan?: unknown }).plan
    const initial = run.parts.filter((p) =>
      p.purpose === "initial"
    ).reduce((n, p) => n + p.requests, 0)
    if (run.command === "generate" && Array.isArray(plan) && initial < plan.length) {
      lines.push(
        `${plan.length - initial} of the run's ${plan.length} samples were never sent (the submission stopped ` +
          `while preparing its parts, or --max-cost held them back): \`skyrl batch collect ${
            shellWord(runDir)
          }\` sends ` +
          "them as a follow-up batch (as far as the budget allows)"
      )
    }
    lines.push(
      statusLine(run) +
        (allTerminal(run)
          ? `; all done: collect with \`skyrl batch collect ${shellWord(runDir)}\``
          : "")
    )
    process.stdout.write(lines.join("\n") + "\n")
  })

export const runBatchCollect = (options: {
  readonly runDir: string
  readonly wait: boolean
  readonly pollInterval: number
  readonly repairs: Option.Option<"online" | "batch">
  readonly resubmit: boolean
  readonly retryFailed: boolean
  readonly maxCost: Option.Option<number>
  readonly concurrency: Option.Option<number>
  readonly batchMaxRequests: number
  readonly batchMaxTokens: Option.Option<number>
}) =>
  Effect.gen(function*() {
    const runDir = path.resolve(options.runDir)
    noteBatchRunDir(runDir)
    const run = yield* readRun(runDir).pipe(Effect.provide(StorageLive))
    const stored = (run.options as { concurrency?: unknown }).concurrency
    yield* collectWith(runDir, run, {
      repairs: Option.getOrElse(options.repairs, () => run.repairs), // the submission's --repairs by default
      resubmit: options.resubmit,
      retryFailed: options.retryFailed,
      maxCostUsd: Option.getOrUndefined(options.maxCost),
      wait: options.wait,
      poll: pollOf(options.pollInterval),
      limits: yield* limitsOf(options.batchMaxRequests, options.batchMaxTokens, run.max_tokens),
      concurrency: Option.getOrElse(options.concurrency, () => (typeof stored === "number" ? stored : 4))
    }, true).pipe(Effect.scoped) // the --out lock, held to the collect's end
  })

/** A request of a dry run: what the sample's first attempt would send. */
export interface DryRunRequest {
  readonly index: number
  readonly instructions: string
  readonly user: string
  readonly jsonSchema: object
}

const DRY_RUN_ID = "20260101T000000Z-000000"

/**
 * `--dry-run --backend batch`: the parts the run would be split into (requests, MB, estimated tokens as
 * the enqueued-token limit counts them) and the cost at batch prices (pricing.ts), without a call.
 */
export const batchDryRun = (input: {
  readonly settings: LlmSettings
  readonly flags: BatchFlags
  readonly requests: Iterable<DryRunRequest>
  /** Expected output tokens per request (the dry run's estimate by effort). */
  readonly expectedOutput: number
}) =>
  Effect.gen(function*() {
    const { flags, settings } = input
    const limits = yield* limitsOf(flags.batchMaxRequests, flags.batchMaxTokens)
    const lines = (function*() {
      for (const r of input.requests) {
        yield prepareLine(flags.batchEndpoint, settings, `${DRY_RUN_ID}:${sampleKey(r.index, 1, "task")}`, {
          name: "skyrl_task",
          instructions: r.instructions,
          input: [{ role: "user", content: r.user }],
          schema: Schema.Unknown
        }, r.jsonSchema)
      }
    })()
    const parts = planParts(lines, limits)
    const requests = parts.reduce((n, p) => n + p.requests, 0)
    const inputTokens = parts.reduce((n, p) => n + p.inputTokens, 0)
    const out = [
      "",
      `## batches (--backend batch: ${endpointUrl(flags.batchEndpoint)}; at most ${limits.maxRequests} requests, ${
        BATCH_MAX_BYTES / 1024 / 1024
      } MB${Number.isFinite(limits.maxTokens) ? `, ${limits.maxTokens} tokens` : ""} per batch)`
    ]
    for (const [i, p] of parts.entries()) {
      out.push(
        `part ${i + 1}: ${p.requests} requests, ${(p.bytes / 1e6).toFixed(2)} MB, ~${p.tokens} tokens enqueued ` +
          `(input ~${p.inputTokens} + max output ${settings.maxOutputTokens} per request)` +
          (p.tokens > limits.maxTokens
            ? `; over --batch-max-tokens ${limits.maxTokens} on its own: sent alone, once no other batch of the run runs`
            : "")
      )
    }
    const usage = { input: inputTokens, cached: 0, output: requests * input.expectedOutput, reasoning: 0 }
    const cost = costOf(settings.model, usage, { batch: true })
    out.push(
      cost === undefined
        ? `no price known for ${settings.model}`
        : `cost at batch prices for ${requests} requests: ~$${cost.toFixed(4)} (input ~${inputTokens} tokens, ` +
          `output ~${usage.output}; online: ~$${
            costOf(settings.model, usage)!.toFixed(4)
          }; repairs and retries add to it)`
    )
    return out
  })
