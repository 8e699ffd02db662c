/** Pieces of the live wiring that `generate` and `enrich` share (loaded lazily with them). */
import type { Option } from "effect"
import { Effect, Layer, Option as O } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as path from "node:path"
import type { LlmSettings } from "../domain/llm.js"
import { RunSettings, SettingsError } from "../domain/run.js"
import { shellWord } from "../domain/words.js"
import { lockOutput } from "../programs/outputLock.js"
import { makeRunId } from "../programs/runFiles.js"
import type { ExactOnly } from "../services/llm/replay.js"
import { rateLimiterLayer } from "../services/RateLimiter.js"
import type { MovedRun } from "../services/RunJournal.js"
import { findLatestRun, settingsDifferences, settingsHere } from "../services/RunJournal.js"
import { Storage, StorageLive } from "../services/Storage.js"
import { fileIssueText } from "../skyrl/parseIssues.js"
import type { BatchFlags } from "./batch.js"
import type { LlmOptions } from "./llmOptions.js"
import { llmLayer } from "./llmOptions.js"
import { checkOutFormat } from "./outFormat.js"
import type { Input, Output } from "./outputsApart.js"
import { DEFAULT_INVENTORY } from "./paths.js"
import { resolveAsOf } from "./shared.js"
import type { RunVerifyFlags } from "./verifyFlags.js"
import { checkVerifyFlags } from "./verifyFlags.js"

/**
 * A generate run's N is fixed (its work plan spreads domains, complexities and subjects over N samples): more
 * rows are another run.
 */
const MORE_ROWS = ". For more rows than the run's N, make a second dataset (another --out, another --seed) and " +
  "check both together with `skyrl validate FIRST SECOND` (it finds prompts and plans repeated across files); " +
  "SkyRL trains on several files"

/** The parsed options every model-calling command shares (`runOptions`, shared.ts and the LLM/batch flags). */
export interface RunCliOptions extends LlmOptions, BatchFlags, RunVerifyFlags {
  readonly out: string
  readonly maxTools: number
  readonly maxTurns: number
  readonly inventory: Option.Option<string>
  readonly dataSource: string
  readonly concurrency: number
  readonly rawDir: Option.Option<string>
  readonly rawGzip: boolean
  readonly resume: boolean
  readonly force: boolean
  readonly dryRun: boolean
  readonly indent: Option.Option<number>
  readonly ascii: boolean
  readonly servers: Option.Option<string>
  readonly maxAttempts: number
  readonly rpm: Option.Option<number>
  readonly tpm: Option.Option<number>
  readonly maxCost: Option.Option<number>
  readonly maxPromptTokens: number
  readonly asOf: Option.Option<string>
}

/** The size of the blocks `printLines` writes (bytes of UTF-16 code units, near enough). */
const PRINT_BLOCK = 64 * 1024

/**
 * Writes lines to stdout, each followed by "\n" (the bytes of `lines.join("\n") + "\n"`), a block of
 * about 64 KB at a time, waiting while the reader has not taken what was written: a dry run prints the
 * lines of a million samples without holding them, or their text, all at once. A stdout that is closed
 * (EPIPE: bin.ts ends the process with 141) or destroyed ends the printing.
 */
export const printLines = (lines: Iterable<string>) =>
  Effect.promise(async () => {
    const out = process.stdout
    const settled = () =>
      new Promise<void>((resolve) => {
        const done = () => {
          out.off("drain", done)
          out.off("close", done)
          out.off("error", done)
          resolve()
        }
        out.on("drain", done)
        out.on("close", done)
        out.on("error", done)
      })
    let block: Array<string> = []
    let size = 0
    const flush = async () => {
      const text = block.join("\n") + "\n"
      block = []
      size = 0
      if (!out.write(text) && !out.destroyed && out.writableNeedDrain) await settled()
    }
    for (const line of lines) {
      if (out.destroyed) return
      block.push(line)
      size += line.length + 1
      if (size >= PRINT_BLOCK) await flush()
    }
    if (block.length > 0 && !out.destroyed) await flush()
  })

/**
 * The prompt settings of a new run (`--max-prompt-tokens`, `--as-of`), checked; `--as-of` defaults to
 * today (the run's start date). A resumed run keeps its own date unless `--as-of` is given
 * (`resolveRun`'s `keepAsOf`).
 */
export const rowSettingsOf = (options: Pick<RunCliOptions, "maxPromptTokens" | "asOf">) =>
  Effect.all({
    maxPromptTokens: positiveInt(options.maxPromptTokens, "--max-prompt-tokens (MAX_PROMPT_TOKENS)"),
    asOf: resolveAsOf(options.asOf, new Date())
  })

export const positiveInt = (value: number, setting: string) =>
  Number.isInteger(value) && value > 0
    ? Effect.succeed(value)
    : Effect.fail(new SettingsError({ setting, reason: `must be a positive integer, got ${value}` }))

/** What a run command (`generate`, `enrich`) writes beside its archive: the rows and their rejects. */
export const runOutputs = (out: string): ReadonlyArray<Output> => [
  { setting: "--out", file: out },
  { setting: "--out's rejects file", file: `${out}.rejects.jsonl` }
]

/** The files a run command reads besides its input: the inventory (when it reads one) and --verify's. */
export const runInputs = (
  options: Pick<RunCliOptions, "inventory" | "serversConfig" | "cassettes">,
  readsInventory: boolean
): ReadonlyArray<Input | undefined> => [
  readsInventory
    ? { what: "--inventory file", file: O.getOrElse(options.inventory, () => DEFAULT_INVENTORY) }
    : undefined,
  O.isSome(options.serversConfig) ? { what: "--servers-config file", file: options.serversConfig.value } : undefined,
  O.isSome(options.cassettes) ? { what: "cassette store", file: options.cassettes.value, directory: true } : undefined
]

/**
 * The inputs that are files (not the cassette directory): what `--verify`'s cassette store, appended to inside its
 * own directory, must be none of.
 */
export const filesOnly = (inputs: ReadonlyArray<Input | undefined>): ReadonlyArray<Input | undefined> =>
  inputs.filter((i) => i?.directory !== true)

/** The session limits every run command checks first (positive integers, two turns at least), and the --verify flags. */
export const runLimitsOf = (options: RunCliOptions) =>
  Effect.gen(function*() {
    const maxTools = yield* positiveInt(options.maxTools, "--max-tools (MAX_TOOLS)")
    const maxTurns = yield* positiveInt(options.maxTurns, "--max-turns (MAX_TURNS)")
    const concurrency = yield* positiveInt(options.concurrency, "--concurrency (CONCURRENCY)")
    const maxAttempts = yield* positiveInt(options.maxAttempts, "--max-attempts")
    if (maxTurns < 2) return yield* new SettingsError({ setting: "--max-turns", reason: "must be at least 2" })
    // 0 or less paced nothing (--rpm, --tpm) or stopped the run before its first call (--max-cost), silently.
    if (O.isSome(options.rpm)) yield* positiveInt(options.rpm.value, "--rpm (OPENAI_RPM)")
    if (O.isSome(options.tpm)) yield* positiveInt(options.tpm.value, "--tpm (OPENAI_TPM)")
    if (O.isSome(options.maxCost) && !(options.maxCost.value > 0)) {
      const reason = `must be a positive number of USD, got ${options.maxCost.value}`
      return yield* new SettingsError({ setting: "--max-cost (MAX_COST_USD)", reason })
    }
    yield* checkVerifyFlags(options)
    return { maxTools, maxTurns, concurrency, maxAttempts }
  })

/** The output file, its format checked before any call is paid for, and the archive root (`--raw-dir`). */
export const outputPathsOf = (options: Pick<RunCliOptions, "out" | "rawDir">) =>
  Effect.gen(function*() {
    yield* checkOutFormat(options.out)
    const out = path.resolve(options.out)
    const rawDir = path.resolve(O.getOrElse(options.rawDir, () => path.join(path.dirname(out), "raw_llm")))
    return { out, rawDir }
  })

/**
 * Holds the run's `--out` lock for the scope (`lockOutput`), taken before any model call: `OutputInUse` naming the
 * holder when another live process writes this `--out`; the lock of a process that is gone (`kill -9`) is taken
 * over, so `--resume` after a crash goes on.
 */
export const lockRunOutput = (out: string, command: "generate" | "enrich") =>
  lockOutput(out, command).pipe(Effect.provide(StorageLive))

/** The model layer of a run, paced by `--rpm` / `--tpm`. */
export const pacedLlmLayer = (flags: Pick<RunCliOptions, "rpm" | "tpm">, llm: LlmOptions, exactOnly?: ExactOnly) =>
  llmLayer(llm, exactOnly).pipe(
    Layer.provide(rateLimiterLayer({ rpm: O.getOrUndefined(flags.rpm), tpm: O.getOrUndefined(flags.tpm) }))
  )

/** The model part of a run's settings, from the flags (`--backend batch` names its endpoint). */
export const modelSettingsOf = (flags: RunCliOptions, llm: LlmSettings, openai: boolean) => ({
  model: llm.model,
  answers: flags.backend === "batch" || openai ? "model" as const : "recorded" as const,
  backend: flags.backend === "batch" ? `batch ${flags.batchEndpoint}` : llm.backend,
  reasoning_effort: llm.reasoningEffort,
  max_output_tokens: llm.maxOutputTokens
})

/** The LLM flags with the model settings a run is made with (its own, with --resume --force). */
export const llmOptionsOf = (flags: LlmOptions, settings: RunSettings): LlmOptions => ({
  ...flags,
  model: settings.model,
  backend: settings.backend.startsWith("batch") ? "batch" : (settings.backend as LlmOptions["backend"]),
  reasoningEffort: settings.reasoning_effort as LlmOptions["reasoningEffort"],
  maxOutputTokens: settings.max_output_tokens
})

/**
 * The engine options every run command derives alike from its flags and the run's settings, with the
 * session's settings for the manifest (`details`: the command adds its own).
 */
export const engineOptionsOf = (
  flags: RunCliOptions,
  run: ResolvedRun,
  session: {
    readonly out: string
    readonly rawDir: string
    readonly concurrency: number
    readonly maxAttempts: number
  },
  llm: LlmSettings,
  details: Readonly<Record<string, unknown>>
) => {
  const s = run.settings
  return {
    out: session.out,
    maxTools: s.max_tools,
    maxTurns: s.max_turns,
    concurrency: session.concurrency,
    maxCostUsd: O.getOrUndefined(flags.maxCost),
    maxAttemptsPerSample: session.maxAttempts,
    rawDir: session.rawDir,
    runId: run.runId,
    rawGzip: flags.rawGzip,
    indent: O.getOrUndefined(flags.indent),
    ascii: flags.ascii,
    dataSource: s.data_source,
    rejectsFile: `${session.out}.rejects.jsonl`,
    model: s.model,
    backend: s.backend,
    runSettings: s,
    settings: {
      ...details,
      max_tools: s.max_tools,
      max_turns: s.max_turns,
      concurrency: session.concurrency,
      rpm: O.getOrNull(flags.rpm),
      tpm: O.getOrNull(flags.tpm),
      max_cost_usd: O.getOrNull(flags.maxCost),
      max_attempts: session.maxAttempts,
      llm: flags.llm,
      model: s.model,
      backend: s.backend,
      reasoning_effort: s.reasoning_effort,
      max_output_tokens: s.max_output_tokens,
      timeout_ms: llm.timeoutMs,
      retries: llm.maxRetries,
      data_source: s.data_source
    }
  }
}

export interface ResolvedRun {
  readonly runId: string
  /** The settings the run is made with: the flags', or with --resume --force the run's own. */
  readonly settings: RunSettings
  readonly resumed: boolean
}

/** A batch run resumed online: it goes on with `batch collect` (online it would ask its samples again). */
const batchRunResumed = (runDir: string) =>
  new SettingsError({
    setting: "--resume",
    reason: `${runDir} is a --backend batch run: it goes on with \`skyrl batch collect ${shellWord(runDir)}\` ` +
      "(collecting again never duplicates rows); run without --resume to start a new run"
  })

/**
 * Runs of several outputs moved here, each where this output lies relative to it: which one is to be
 * continued cannot be told, and a guess could make (and pay for) another project's samples.
 */
const ambiguousMove = (
  input: { readonly rawDir: string; readonly out: string; readonly command: string },
  runs: ReadonlyArray<MovedRun>
) =>
  new SettingsError({
    setting: "--resume",
    reason: `no ${input.command} run in ${input.rawDir} was made for ${input.out}, and runs made for other ` +
      `outputs moved here with them could each be the one to continue: ${
        runs.map((r) => `${path.join(input.rawDir, r.dir)} (made for ${r.then.output})`).join(", ")
      }; move the runs not to continue out of ${input.rawDir}, then resume again`
  })

/**
 * A new run beside an unfinished one of this output (interrupted, killed, out of attempts) makes, and pays for,
 * its samples again: a warning says so, and that `--resume` continues it. Runs that cannot be read are left to
 * `--resume`, which names them.
 */
const warnUnfinished = (input: { readonly rawDir: string; readonly out: string; readonly command: string }) =>
  findLatestRun(input.rawDir, input.out, input.command).pipe(
    Effect.flatMap(({ latest }) => {
      if (O.isNone(latest) || latest.value.status === "completed") return Effect.void
      const { counts, run_id, status } = latest.value
      // A manifest still "running" is a run killed (its counts are those of its start) or running now.
      const how = status === "running"
        ? "it was killed, or is running now"
        : `${status}: ${counts.valid} of ${counts.requested} rows`
      return Effect.logWarning(
        `run ${run_id} for ${input.out} did not complete (${how}); this starts a new run, which makes every ` +
          "sample again: add --resume to continue it"
      )
    }),
    Effect.catchAll(() => Effect.void)
  )

/**
 * Which run this command works on, and with which settings. Without --resume: a new run. With it: the
 * latest run of this command for this output, refused (a usage error naming each differing setting) when
 * the settings that make the rows differ — unless --force, which continues with the run's own settings
 * (never a mix of both).
 */
export const resolveRun = (input: {
  readonly rawDir: string
  readonly out: string
  readonly command: "generate" | "enrich"
  readonly fresh: RunSettings
  readonly resume: boolean
  readonly force: boolean
  /** `--as-of` not given: a resumed run keeps the date it started with (not a difference). */
  readonly keepAsOf: boolean
}) =>
  Effect.gen(function*() {
    const fresh: ResolvedRun = {
      runId: makeRunId(new Date(), randomBytes(3).toString("hex")),
      settings: input.fresh,
      resumed: false
    }
    if (!input.resume) {
      yield* warnUnfinished(input)
      return fresh
    }
    const { ambiguous, latest: found, latestDir, movedFrom, unreadable } = yield* findLatestRun(
      input.rawDir,
      input.out,
      input.command
    )
    // A run whose manifest cannot be read may be the one to resume: starting anew would pay for its work again.
    if (unreadable.length > 0) {
      return yield* new SettingsError({
        setting: "--resume",
        reason: `${fileIssueText(unreadable[0]!)}: it may be the run to resume (starting anew would make, and ` +
          `pay for, its samples again); mend the file, or move its directory out of ${input.rawDir}`
      })
    }
    if (ambiguous.length > 0) return yield* ambiguousMove(input, ambiguous)
    if (O.isNone(found)) {
      yield* Effect.logWarning(
        `--resume: no earlier ${input.command} run for ${input.out} in ${input.rawDir}; starting a new run`
      )
      return fresh
    }
    const run = found.value
    if (run.run_settings === undefined) {
      return yield* new SettingsError({
        setting: "--resume",
        reason:
          `run ${run.run_id} was made by an earlier skyrl that did not record its settings; start a new run without --resume`
      })
    }
    const foundIn = O.getOrElse(latestDir, () => path.join(input.rawDir, run.run_id))
    if (run.run_settings.backend.startsWith("batch") && !input.fresh.backend.startsWith("batch")) {
      return yield* batchRunResumed(foundIn)
    }
    // The run continues in rawDir/<run_id>: from a directory renamed since, it would start there anew (and
    // make, and pay for, every sample again).
    if (path.basename(foundIn) !== run.run_id) {
      return yield* new SettingsError({
        setting: "--resume",
        reason: `run ${run.run_id} for ${input.out} is in ${foundIn}, which --resume does not continue (it ` +
          `continues ${path.join(input.rawDir, run.run_id)}): rename that directory back to ${run.run_id}`
      })
    }
    if (O.isSome(movedFrom)) {
      yield* Effect.logInfo(
        `--resume: run ${run.run_id} was made in ${movedFrom.value.runDir} for ${movedFrom.value.output}; both ` +
          `moved since, to ${foundIn} and ${input.out}: continuing it there`
      )
    }
    const wanted = input.keepAsOf ? new RunSettings({ ...input.fresh, as_of: run.run_settings.as_of }) : input.fresh
    const recorded = settingsHere(run.run_settings, { then: run.output, now: input.out }, wanted)
    const differences = settingsDifferences(recorded, wanted)
    if (differences.length > 0 && !input.force) {
      return yield* new SettingsError({
        setting: "--resume",
        reason: `run ${run.run_id} was made with other settings: ${differences.join("; ")}. ` +
          "Run without --resume to start a new run, or add --force to continue it with its own settings" +
          (input.command === "generate" && recorded.n < wanted.n ? MORE_ROWS : "")
      })
    }
    if (differences.length > 0) {
      yield* Effect.logWarning(
        `--resume --force: continuing run ${run.run_id} with its own settings (${differences.join("; ")})`
      )
    }
    return { runId: run.run_id, settings: recorded, resumed: true } satisfies ResolvedRun
  })

/**
 * The run a `generate` or `enrich` command works on (`resolveRun` with its flags), after a batch
 * submission's own checks: those come before the run is resolved or anything is paid for.
 */
export const runOf = (
  command: "generate" | "enrich",
  options: RunCliOptions,
  paths: { readonly rawDir: string; readonly out: string; readonly fresh: RunSettings }
) =>
  Effect.gen(function*() {
    if (options.backend === "batch") {
      yield* (yield* Effect.promise(() => import("./batch.live.js"))).checkSubmit(options)
    }
    return yield* resolveRun({
      ...paths,
      command,
      resume: options.resume,
      force: options.force,
      keepAsOf: O.isNone(options.asOf)
    }).pipe(Effect.provide(StorageLive))
  })

/**
 * The sha256 (hex) of an input file's bytes, as a run records it (`input.sha256`) and a batch collect
 * compares it.
 */
export const inputSha256 = (file: string) =>
  Effect.flatMap(Storage, (st) => st.readBytes(file)).pipe(
    Effect.map((bytes) => createHash("sha256").update(bytes).digest("hex")),
    Effect.provide(StorageLive)
  )
