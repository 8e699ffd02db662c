/** Live wiring of `generate` (loaded lazily by src/cli/generate.ts). */
import { Effect, Layer, Option, Schema } from "effect"
import * as path from "node:path"
import { priceOf } from "../domain/pricing.js"
import { RunSettings, SettingsError } from "../domain/run.js"
import type { GenerateOptions } from "../programs/generate.js"
import { generatePlan, generateProgram } from "../programs/generate.js"
import { Inventory } from "../services/Inventory.js"
import { buildBody } from "../services/llm/answer.js"
import { progressLayer } from "../services/Progress.js"
import { rateLimiterLayer } from "../services/RateLimiter.js"
import { inventoryFingerprint } from "../services/RunJournal.js"
import { rowFormatOf, StorageLive } from "../services/Storage.js"
import { renderInstructions, renderSampleRequest } from "../skyrl/generationPrompt.js"
import { estimateTokens } from "../skyrl/prompt.js"
import type { PlannedSample } from "../skyrl/workPlan.js"
import { DEFAULT_DOMAINS, parseComplexities, parseDomains, workPlan } from "../skyrl/workPlan.js"
import { hasApiKey, llmLayer, llmSettingsFromOptions, usesOpenAI } from "./llmOptions.js"
import type { RunCliOptions } from "./runShared.js"
import * as Run from "./runShared.js"

export interface GenerateCliOptions extends RunCliOptions {
  readonly n: number
  readonly domains: Option.Option<string>
  readonly complexities: string
  readonly seed: number
}

export const runGenerate = (options: GenerateCliOptions) =>
  Effect.gen(function*() {
    const n = yield* Run.positiveInt(options.n, "--n (N_SAMPLES)")
    const maxTools = yield* Run.positiveInt(options.maxTools, "--max-tools (MAX_TOOLS)")
    const maxTurns = yield* Run.positiveInt(options.maxTurns, "--max-turns (MAX_TURNS)")
    const concurrency = yield* Run.positiveInt(options.concurrency, "--concurrency (CONCURRENCY)")
    const maxAttempts = yield* Run.positiveInt(options.maxAttempts, "--max-attempts")
    if (maxTurns < 2) return yield* new SettingsError({ setting: "--max-turns", reason: "must be at least 2" })
    const complexities = parseComplexities(options.complexities)
    if (typeof complexities === "string") {
      return yield* new SettingsError({ setting: "--complexities (COMPLEXITIES)", reason: complexities })
    }
    const domains = Option.match(options.domains, { onNone: () => DEFAULT_DOMAINS, onSome: parseDomains })
    if (domains.length === 0) {
      return yield* new SettingsError({ setting: "--domains (DOMAINS)", reason: "needs at least one domain" })
    }
    const out = path.resolve(options.out)
    // Checked before any call is paid for.
    if (rowFormatOf(out) === undefined) {
      return yield* new SettingsError({
        setting: "--out",
        reason: `"${options.out}" must end in .json, .jsonl or .parquet`
      })
    }
    const rawDir = path.resolve(Option.getOrElse(options.rawDir, () => path.join(path.dirname(out), "raw_llm")))
    const flagLlm = llmSettingsFromOptions(options)
    // --backend batch: the bodies are for --batch-endpoint (so --dry-run shows the body each batch line carries).
    const bodySettings = options.backend === "batch" ? { ...flagLlm, backend: options.batchEndpoint } : flagLlm
    const servers = Option.map(options.servers, parseDomains)
    const inventoryLayer = Inventory.fromFile(
      Option.getOrUndefined(options.inventory),
      Option.isSome(servers) ? { servers: servers.value } : undefined
    ).pipe(Layer.provide(StorageLive))

    const rowSettings = yield* Run.rowSettingsOf(options)
    if (options.dryRun) {
      const plan = workPlan(options.seed, n, domains, complexities)
      return yield* dryRun(options, plan, maxTools, maxTurns, bodySettings, rowSettings.asOf).pipe(
        Effect.provide(inventoryLayer)
      )
    }

    const inventory = yield* Inventory.pipe(Effect.provide(inventoryLayer))
    const catalogue = inventory.inventory
    const fresh = new RunSettings({
      command: "generate",
      ...Run.modelSettingsOf(options, flagLlm, yield* usesOpenAI(options)),
      seed: options.seed,
      n,
      domains,
      complexities,
      inventory_sha256: inventoryFingerprint(catalogue),
      max_tools: maxTools,
      max_turns: maxTurns,
      max_prompt_tokens: rowSettings.maxPromptTokens,
      as_of: rowSettings.asOf,
      data_source: options.dataSource,
      input: null
    })
    const run = yield* Run.resolveRun({
      rawDir,
      out,
      command: "generate",
      fresh,
      resume: options.resume,
      force: options.force,
      keepAsOf: Option.isNone(options.asOf)
    }).pipe(Effect.provide(StorageLive))
    const s = run.settings
    // --resume --force with another inventory: the run's own copy (inventory.json in its directory).
    const runInventory = s.inventory_sha256 === fresh.inventory_sha256
      ? Layer.succeed(Inventory, inventory)
      : Inventory.fromFile(path.join(rawDir, run.runId, "inventory.json")).pipe(Layer.provide(StorageLive))
    const llmOpts = Run.llmOptionsOf(options, s)
    const settings = llmSettingsFromOptions(llmOpts)
    const program: GenerateOptions = {
      ...Run.engineOptionsOf(options, run, { out, rawDir, concurrency, maxAttempts }, settings, {
        n: s.n,
        domains: s.domains,
        complexities: s.complexities,
        inventory: Option.getOrNull(options.inventory),
        servers: Option.getOrNull(servers)
      }),
      plan: generatePlan(s),
      seed: s.seed ?? options.seed
    }
    if (options.backend === "batch") {
      const { submitGenerateBatch } = yield* Effect.promise(() => import("./batch.live.js"))
      return yield* submitGenerateBatch({
        program,
        settings: { ...settings, backend: options.batchEndpoint },
        inventory: { path: Option.getOrNull(options.inventory), servers: Option.getOrNull(servers) },
        flags: options,
        concurrency,
        llm: options.llm,
        resume: options.resume
      })
    }
    return yield* generateProgram(program).pipe(
      Effect.provide(
        Layer.mergeAll(
          StorageLive,
          runInventory,
          llmLayer(llmOpts).pipe(
            Layer.provide(
              rateLimiterLayer({ rpm: Option.getOrUndefined(options.rpm), tpm: Option.getOrUndefined(options.tpm) })
            )
          ),
          progressLayer()
        )
      )
    )
  })

const dryRun = (
  options: GenerateCliOptions,
  plan: ReadonlyArray<PlannedSample>,
  maxTools: number,
  maxTurns: number,
  settings: ReturnType<typeof llmSettingsFromOptions>,
  asOf: string
) =>
  Effect.gen(function*() {
    const inventory = yield* Inventory
    const catalogue = yield* inventory.get
    const instructions = renderInstructions(catalogue, { maxTools, maxTurns, asOf })
    const jsonSchema = inventory.outputJsonSchema({ maxSteps: maxTools })
    const first = plan[0]
    const request = renderSampleRequest({ ...first, total: plan.length, attempt: 1 })
    const body = buildBody(settings.backend, settings, {
      name: "skyrl_task",
      instructions,
      input: [{ role: "user", content: request }],
      schema: Schema.Unknown
    }, jsonSchema)
    const keySet = yield* hasApiKey
    const baseUrl = process.env.OPENAI_BASE_URL
    const baseUrlProblem = baseUrl !== undefined && baseUrl !== "" && !/^https?:\/\/[^\s]+$/.test(baseUrl)
    const shared = estimateTokens(instructions) + estimateTokens(JSON.stringify(jsonSchema))
    const perCall = shared + estimateTokens(request)
    const output = Run.EXPECTED_OUTPUT[settings.reasoningEffort] ?? 8000
    const price = priceOf(settings.model)
    const lines: Array<string> = []
    lines.push(`# skyrl generate --dry-run (no model is called)`)
    lines.push(`model ${settings.model}, backend ${settings.backend}, reasoning effort ${settings.reasoningEffort}`)
    lines.push(
      `llm: ${options.llm}; OPENAI_API_KEY ${keySet ? "is set (not shown)" : "is not set"}` +
        (options.llm === "auto" && !keySet ? " -> would run offline from recorded answers" : "")
    )
    lines.push(
      `OPENAI_BASE_URL: ${baseUrl === undefined || baseUrl === "" ? "(default)" : baseUrl}` +
        (baseUrlProblem ? "  <- not an http(s) URL" : "")
    )
    lines.push("", `## work plan (${plan.length} samples, seed ${options.seed})`)
    for (const s of plan) lines.push(`${String(s.index + 1).padStart(5)}  ${s.complexity.padEnd(8)}  ${s.domain}`)
    lines.push("", "## first request body", JSON.stringify(body, null, 2))
    lines.push("", "## estimate")
    lines.push(
      `input per call ~${perCall} tokens (shared prefix ~${shared}), output per call ~${output} (effort ${settings.reasoningEffort})`
    )
    if (price === undefined) lines.push(`no price known for ${settings.model}`)
    else {
      const cold = (plan.length * (perCall * price.input + output * price.output)) / 1e6
      const warm =
        (plan.length * ((perCall - shared) * price.input + shared * price.cachedInput + output * price.output)) /
        1e6
      lines.push(
        `cost for ${plan.length} samples: ~$${warm.toFixed(4)} with the prompt cache, ~$${
          cold.toFixed(4)
        } without (repairs and retries add to it)`
      )
    }
    if (options.backend === "batch") {
      const { batchDryRun } = yield* Effect.promise(() => import("./batch.live.js"))
      const user = (s: PlannedSample) => renderSampleRequest({ ...s, total: plan.length, attempt: 1 })
      lines.push(
        ...yield* batchDryRun({
          settings,
          flags: options,
          expectedOutput: output,
          requests: plan.map((s) => ({ index: s.index, instructions, jsonSchema, user: user(s) }))
        })
      )
    }
    process.stdout.write(lines.join("\n") + "\n")
    if (baseUrlProblem) {
      return yield* new SettingsError({
        setting: "OPENAI_BASE_URL",
        reason: `must be an http(s) URL, got "${baseUrl}"`
      })
    }
  })
