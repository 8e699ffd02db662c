/** Live wiring of `generate` (loaded lazily by src/cli/generate.ts). */
import { Effect, Layer, Option, Schema } from "effect"
import { randomBytes } from "node:crypto"
import * as path from "node:path"
import { priceOf } from "../domain/pricing.js"
import { SettingsError } from "../domain/run.js"
import type { GenerateOptions } from "../programs/generate.js"
import { generateProgram } from "../programs/generate.js"
import { makeRunId } from "../programs/runFiles.js"
import { Inventory } from "../services/Inventory.js"
import { buildBody } from "../services/llm/answer.js"
import { progressLayer } from "../services/Progress.js"
import { rateLimiterLayer } from "../services/RateLimiter.js"
import { rowFormatOf, StorageLive } from "../services/Storage.js"
import { renderInstructions, renderSampleRequest } from "../skyrl/generationPrompt.js"
import { estimateTokens } from "../skyrl/prompt.js"
import type { PlannedSample } from "../skyrl/workPlan.js"
import { DEFAULT_DOMAINS, parseComplexities, parseDomains, workPlan } from "../skyrl/workPlan.js"
import type { LlmOptions } from "./llmOptions.js"
import { hasApiKey, llmLayer, llmSettingsFromOptions } from "./llmOptions.js"
import type { RunCliOptions } from "./runShared.js"
import { EXPECTED_OUTPUT, latestRunFor, positiveInt } from "./runShared.js"

export interface GenerateCliOptions extends RunCliOptions {
  readonly n: number
  readonly domains: Option.Option<string>
  readonly complexities: string
  readonly seed: number
}

export const runGenerate = (options: GenerateCliOptions) =>
  Effect.gen(function*() {
    const n = yield* positiveInt(options.n, "--n (N_SAMPLES)")
    const maxTools = yield* positiveInt(options.maxTools, "--max-tools (MAX_TOOLS)")
    const maxTurns = yield* positiveInt(options.maxTurns, "--max-turns (MAX_TURNS)")
    const concurrency = yield* positiveInt(options.concurrency, "--concurrency (CONCURRENCY)")
    const maxAttempts = yield* positiveInt(options.maxAttempts, "--max-attempts")
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
    const plan = workPlan(options.seed, n, domains, complexities)
    const rawDir = path.resolve(Option.getOrElse(options.rawDir, () => path.join(path.dirname(out), "raw_llm")))
    const llmOpts: LlmOptions = options
    // --backend batch: the bodies are for --batch-endpoint (so --dry-run shows the body each batch line carries).
    const settings = options.backend === "batch"
      ? { ...llmSettingsFromOptions(llmOpts), backend: options.batchEndpoint }
      : llmSettingsFromOptions(llmOpts)
    const servers = Option.map(options.servers, parseDomains)
    const inventoryLayer = Inventory.fromFile(
      Option.getOrUndefined(options.inventory),
      Option.isSome(servers) ? { servers: servers.value } : undefined
    ).pipe(Layer.provide(StorageLive))

    if (options.dryRun) {
      return yield* dryRun(options, plan, maxTools, maxTurns, settings).pipe(Effect.provide(inventoryLayer))
    }

    let runId = makeRunId(new Date(), randomBytes(3).toString("hex"))
    if (options.resume) {
      const previous = latestRunFor(rawDir, out, "generate")
      if (previous === undefined) {
        yield* Effect.logWarning(`--resume: no earlier run for ${out} in ${rawDir}; starting a new run`)
      } else runId = previous
    }
    const program: GenerateOptions = {
      out,
      plan,
      seed: options.seed,
      maxTools,
      maxTurns,
      concurrency,
      maxCostUsd: Option.getOrUndefined(options.maxCost),
      maxAttemptsPerSample: maxAttempts,
      rawDir,
      runId,
      resume: options.resume,
      rawGzip: options.rawGzip,
      indent: Option.getOrUndefined(options.indent),
      ascii: options.ascii,
      dataSource: options.dataSource,
      rejectsFile: `${out}.rejects.jsonl`,
      model: settings.model,
      backend: settings.backend,
      settings: {
        n,
        domains,
        complexities,
        max_tools: maxTools,
        max_turns: maxTurns,
        concurrency,
        rpm: Option.getOrNull(options.rpm),
        tpm: Option.getOrNull(options.tpm),
        max_cost_usd: Option.getOrNull(options.maxCost),
        max_attempts: maxAttempts,
        llm: options.llm,
        model: settings.model,
        backend: settings.backend,
        reasoning_effort: settings.reasoningEffort,
        max_output_tokens: settings.maxOutputTokens,
        timeout_ms: settings.timeoutMs,
        retries: settings.maxRetries,
        inventory: Option.getOrNull(options.inventory),
        servers: Option.getOrNull(servers),
        data_source: options.dataSource
      },
      expectedOutputTokens: EXPECTED_OUTPUT[settings.reasoningEffort] ?? 8000
    }
    if (options.backend === "batch") {
      const { submitGenerateBatch } = yield* Effect.promise(() => import("./batch.live.js"))
      return yield* submitGenerateBatch({
        program,
        settings,
        inventory: { path: Option.getOrNull(options.inventory), servers: Option.getOrNull(servers) },
        flags: options,
        concurrency,
        llm: options.llm,
        resume: options.resume
      })
    }
    const summary = yield* generateProgram(program).pipe(
      Effect.provide(
        Layer.mergeAll(
          StorageLive,
          inventoryLayer,
          llmLayer(llmOpts).pipe(
            Layer.provide(
              rateLimiterLayer({ rpm: Option.getOrUndefined(options.rpm), tpm: Option.getOrUndefined(options.tpm) })
            )
          ),
          progressLayer()
        )
      )
    )
    return summary
  })

const dryRun = (
  options: GenerateCliOptions,
  plan: ReadonlyArray<PlannedSample>,
  maxTools: number,
  maxTurns: number,
  settings: ReturnType<typeof llmSettingsFromOptions>
) =>
  Effect.gen(function*() {
    const inventory = yield* Inventory
    const catalogue = yield* inventory.get
    const instructions = renderInstructions(catalogue, { maxTools, maxTurns })
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
    const output = EXPECTED_OUTPUT[settings.reasoningEffort] ?? 8000
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
    process.stdout.write(lines.join("\n") + "\n")
    if (baseUrlProblem) {
      return yield* new SettingsError({
        setting: "OPENAI_BASE_URL",
        reason: `must be an http(s) URL, got "${baseUrl}"`
      })
    }
  })
