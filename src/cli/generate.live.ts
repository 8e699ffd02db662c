/** Live wiring of `generate` (loaded lazily by src/cli/generate.ts). */
import { Effect, Layer, Option } from "effect"
import * as path from "node:path"
import { RunSettings, SettingsError } from "../domain/run.js"
import type { VerifyHook } from "../programs/acceptance.js"
import type { GenerateOptions } from "../programs/generate.js"
import { generatePlan, generateProgram } from "../programs/generate.js"
import { Inventory } from "../services/Inventory.js"
import { progressLayer } from "../services/Progress.js"
import { inventoryFingerprint } from "../services/RunJournal.js"
import { StorageLive } from "../services/Storage.js"
import { parseComplexities } from "../skyrl/workPlan.js"
import * as Plan from "./generatePlan.live.js"
import { baseUrlChecked, llmSettingsFromOptions, replayInput, usesOpenAI } from "./llmOptions.js"
import { outputDirectoriesMakeable, runDirectories } from "./outputDirectories.js"
import { outputsApart } from "./outputsApart.js"
import type { RunCliOptions } from "./runShared.js"
import * as Run from "./runShared.js"
import { serverListOf } from "./serverList.js"
import { warnIndentIgnored } from "./shared.js"
import { cassetteStoreOutput, verifyDetailsOf, verifySettingOf, withRunVerification } from "./verifyFlags.js"

export interface GenerateCliOptions extends RunCliOptions {
  readonly n: number
  readonly domains: Option.Option<string>
  readonly personas: Option.Option<string>
  readonly subjects: Option.Option<string>
  readonly nearDup: string
  readonly complexities: string
  readonly seed: number
  readonly allowUnstatedLiterals: boolean
  readonly allowToolNamesInPrompt: boolean
}

/**
 * The most samples one run makes. A run builds its whole work plan before its first call (~0.4 GB and ~10 s of CPU
 * for 1,000,000 samples): `-n 100000000` took minutes and ~4 GB before any call, deaf to SIGTERM, and
 * `-n 4294967296` failed with "internal error: Invalid array length".
 */
const MAX_SAMPLES = 1_000_000

export const runGenerate = (options: GenerateCliOptions) =>
  Effect.gen(function*() {
    const n = yield* Run.positiveInt(options.n, "--n (N_SAMPLES)")
    if (n > MAX_SAMPLES) {
      return yield* new SettingsError({
        setting: "--n (N_SAMPLES)",
        reason: `${n} is more than one run makes (at most ${MAX_SAMPLES.toLocaleString("en-US")}: a run holds its ` +
          "work plan in memory); make several runs, each with its own --out and --seed, and concatenate them"
      })
    }
    const { concurrency, maxAttempts, maxTools, maxTurns } = yield* Run.runLimitsOf(options)
    const complexities = parseComplexities(options.complexities)
    if (typeof complexities === "string") {
      return yield* new SettingsError({ setting: "--complexities (COMPLEXITIES)", reason: complexities })
    }
    const { out, rawDir } = yield* Run.outputPathsOf(options)
    const inputs = [
      ...Run.runInputs(options, true),
      Option.isSome(options.personas) ? { what: "--personas file", file: options.personas.value } : undefined,
      Option.isSome(options.subjects) ? { what: "--subjects file", file: options.subjects.value } : undefined,
      yield* replayInput(options)
    ]
    yield* outputsApart("generate", Run.runOutputs(out), inputs)
    if (options.verify && !options.dryRun) {
      yield* outputsApart("generate", [cassetteStoreOutput(options, out)], Run.filesOnly(inputs))
    }
    if (!options.dryRun) {
      yield* outputDirectoriesMakeable(runDirectories(options))
      // One run writes an --out at a time, from before its first call (the stages) to its dataset.
      yield* Run.lockRunOutput(out, "generate")
    }
    const flagLlm = llmSettingsFromOptions(options)
    // --backend batch: the bodies are for --batch-endpoint (so --dry-run shows the body each batch line carries).
    const bodySettings = options.backend === "batch" ? { ...flagLlm, backend: options.batchEndpoint } : flagLlm
    const servers = yield* serverListOf(options.servers)
    const inventoryLayer = Inventory.fromFile(
      Option.getOrUndefined(options.inventory),
      Option.isSome(servers) ? { servers: servers.value } : undefined
    ).pipe(Layer.provide(StorageLive))
    const modelSettings = Run.modelSettingsOf(options, flagLlm, yield* usesOpenAI(options))
    // Loaded before the plan flags are judged: an unknown --servers entry is the error to report, not what
    // the remaining inventory (not the bundled one) would need.
    const inventory = yield* Inventory.pipe(Effect.provide(inventoryLayer))
    const plan = yield* Plan.planFlags(options, modelSettings.answers).pipe(Effect.provide(StorageLive))

    const rowSettings = yield* Run.rowSettingsOf(options)
    const catalogue = inventory.inventory
    const fresh = new RunSettings({
      command: "generate",
      ...modelSettings,
      seed: options.seed,
      n,
      domains: plan.domains,
      complexities,
      inventory_sha256: inventoryFingerprint(catalogue),
      max_tools: maxTools,
      max_turns: maxTurns,
      max_prompt_tokens: rowSettings.maxPromptTokens,
      as_of: rowSettings.asOf,
      data_source: options.dataSource,
      diversity: plan.diversity,
      input: null,
      ...verifySettingOf(options),
      ...(options.allowUnstatedLiterals ? {} : { literals: "stated-v4" as const }),
      ...(options.allowToolNamesInPrompt ? {} : { user_leaks: "repaired-v7" as const })
    })
    if (!options.dryRun) yield* baseUrlChecked(options)
    if (options.dryRun) {
      return yield* Plan.dryRun({ options, settings: fresh, catalogue, plan, rawDir, out, body: bodySettings }).pipe(
        Effect.provide(Layer.mergeAll(Layer.succeed(Inventory, inventory), StorageLive))
      )
    }
    const run = yield* Run.runOf("generate", options, { rawDir, out, fresh })
    const s = run.settings
    // --resume --force with another inventory: the run's own copy (inventory.json in its directory).
    const runInventory = s.inventory_sha256 === fresh.inventory_sha256
      ? inventory
      : yield* Inventory.pipe(
        Effect.provide(
          Inventory.fromFile(path.join(rawDir, run.runId, "inventory.json"), { keptByRun: true }).pipe(
            Layer.provide(StorageLive)
          )
        )
      )
    yield* warnIndentIgnored(out, options.indent)
    const llmOpts = Run.llmOptionsOf(options, s)
    const settings = llmSettingsFromOptions(llmOpts)
    const paced = (o: typeof llmOpts) => Run.pacedLlmLayer(options, o)
    const base = {
      ...Run.engineOptionsOf(options, run, { out, rawDir, concurrency, maxAttempts }, settings, {
        n: s.n,
        domains: s.domains,
        complexities: s.complexities,
        inventory: Option.getOrNull(options.inventory),
        servers: Option.getOrNull(servers),
        personas: Option.getOrNull(options.personas),
        subjects: Option.getOrNull(options.subjects),
        near_dup: s.diversity?.near_dup ?? null,
        ...verifyDetailsOf(options, s.verify, out)
      }),
      seed: s.seed ?? options.seed
    }
    // The stages run online (a batch run's too: their answers shape every request it submits); with
    // --verify after the servers are up, so nothing is asked of the model when they cannot start.
    const programOf = Effect.map(
      Plan.planInputsOf({
        base,
        catalogue: runInventory.inventory,
        files: plan.files,
        llm: paced(options.backend === "batch" ? { ...llmOpts, backend: options.batchEndpoint } : llmOpts)
      }),
      (inputs): GenerateOptions => ({ ...base, plan: generatePlan(s, runInventory.inventory, inputs) })
    )
    if (options.backend === "batch") {
      const { submitGenerateBatch } = yield* Effect.promise(() => import("./batch.live.js"))
      return yield* submitGenerateBatch({
        program: yield* programOf,
        settings: { ...settings, backend: options.batchEndpoint },
        inventory: { path: Option.getOrNull(options.inventory), servers: Option.getOrNull(servers) },
        flags: options,
        concurrency,
        llm: options.llm,
        resume: options.resume
      })
    }
    const engine = (verify: VerifyHook<unknown> | undefined) =>
      Effect.flatMap(programOf, (program) =>
        generateProgram({ ...program, verify }).pipe(
          Effect.provide(
            Layer.mergeAll(StorageLive, Layer.succeed(Inventory, runInventory), paced(llmOpts), progressLayer())
          )
        ))
    return yield* withRunVerification(
      {
        flags: options,
        setting: s.verify,
        inventory: runInventory.inventory,
        runDir: path.join(rawDir, run.runId),
        out
      },
      engine
    )
  }).pipe(Effect.scoped)
