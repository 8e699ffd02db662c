/** Live wiring of the batch commands and of `generate --backend batch` (loaded lazily). */
import { Effect, Layer, Option } from "effect"
import * as path from "node:path"
import type { BatchRun } from "../domain/batch.js"
import { BATCH_MAX_BYTES, BatchStateError, endpointUrl, isTerminal } from "../domain/batch.js"
import type { LlmSettings } from "../domain/llm.js"
import type { LlmChoice } from "../domain/llm.js"
import { emptyUsage, makeLlmSettings } from "../domain/llm.js"
import { SettingsError } from "../domain/run.js"
import type { CollectOptions, PollOptions } from "../programs/batch.js"
import { collectRun, readRun, refreshRun, statusLine, submitRun, totalsOf, waitForRun } from "../programs/batch.js"
import type { GenerateOptions } from "../programs/generate.js"
import { generateSampling } from "../programs/generate.js"
import { Inventory } from "../services/Inventory.js"
import { BatchClientLive } from "../services/llm/batch.js"
import { LlmLive } from "../services/llm/live.js"
import { progressLayer } from "../services/Progress.js"
import { StorageLive } from "../services/Storage.js"
import type { BatchFlags } from "./batch.js"

const MAX_POLL_MS = 600_000

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

const inventoryLayerOf = (run: BatchRun) =>
  Inventory.fromFile(
    run.inventory.path ?? undefined,
    run.inventory.servers === null ? undefined : { servers: run.inventory.servers }
  ).pipe(Layer.provide(StorageLive))

/** The generate options stored in batch.json (checked enough to fail readably on a hand-edited file). */
const generateOptionsOf = (run: BatchRun, file: string): Effect.Effect<GenerateOptions, BatchStateError> => {
  const o = run.options as Record<string, unknown>
  const ok = Array.isArray(o.plan) && typeof o.out === "string" && typeof o.rawDir === "string" &&
    typeof o.runId === "string" && typeof o.maxTools === "number" && typeof o.maxTurns === "number"
  return ok
    ? Effect.succeed(o as unknown as GenerateOptions)
    : Effect.fail(new BatchStateError({ path: file, reason: "options: not the options of a generate run" }))
}

const collectWith = (runDir: string, run: BatchRun, options: CollectOptions) =>
  Effect.gen(function*() {
    const generate = yield* generateOptionsOf(run, path.join(runDir, "batch.json"))
    const settings = settingsOf(run)
    const summary = yield* collectRun(runDir, run, (catalogue) => generateSampling(generate, catalogue), options).pipe(
      Effect.provide(
        Layer.mergeAll(
          StorageLive,
          inventoryLayerOf(run),
          BatchClientLive(settings),
          LlmLive(settings),
          progressLayer()
        )
      )
    )
    if (summary.sampling !== undefined) {
      const online = summary.run.online_usage
      yield* Effect.logInfo(
        `batch run ${run.run_id} collected: ${summary.sampling.valid} rows in ${generate.out}; ` +
          `cost ${
            summary.sampling.costUsd === undefined
              ? "unknown (model not in the price table)"
              : `$${summary.sampling.costUsd.toFixed(4)}`
          } at batch prices` +
          (online.input + online.output > 0
            ? ` (online repairs at normal prices: ${online.input} tokens in, ${online.output} out)`
            : "")
      )
    }
    return summary
  })

/** `generate --backend batch`: submit (and with --wait, poll and collect). Prints the run directory on stdout. */
export const submitGenerateBatch = (input: {
  readonly program: GenerateOptions
  readonly settings: LlmSettings
  readonly inventory: { readonly path: string | null; readonly servers: ReadonlyArray<string> | null }
  readonly flags: BatchFlags
  readonly concurrency: number
  readonly llm: LlmChoice
  readonly resume: boolean
}) =>
  Effect.gen(function*() {
    if (input.llm === "replay") {
      return yield* new SettingsError({
        setting: "--backend batch",
        reason: "submits to OpenAI's Batch API and cannot replay recorded answers; drop --llm replay"
      })
    }
    if (input.resume) {
      return yield* new SettingsError({
        setting: "--backend batch --resume",
        reason: "a batch run continues with `skyrl batch collect RUN_DIR` (collecting again never duplicates rows)"
      })
    }
    const endpoint = input.flags.batchEndpoint
    const program: GenerateOptions = {
      ...input.program,
      backend: `batch ${endpoint}`,
      settings: { ...input.program.settings, backend: "batch", batch_endpoint: endpointUrl(endpoint) }
    }
    const run: BatchRun = {
      format: "skyrl-batch/1",
      run_id: program.runId,
      command: "generate",
      created_at: new Date().toISOString(),
      endpoint,
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
      options: JSON.parse(JSON.stringify(program)) as Record<string, unknown>,
      parts: [],
      online_usage: emptyUsage
    }
    const limits = { maxRequests: input.flags.batchMaxRequests, maxBytes: BATCH_MAX_BYTES }
    const submitted = yield* submitRun(run, (catalogue) => generateSampling(program, catalogue), limits).pipe(
      Effect.provide(
        Layer.mergeAll(StorageLive, inventoryLayerOf(run), BatchClientLive({ ...input.settings, backend: endpoint }))
      )
    )
    process.stdout.write(`${submitted.runDir}\n`)
    if (!input.flags.wait) return
    yield* collectWith(submitted.runDir, submitted.run, {
      repairs: input.flags.repairs,
      resubmit: false,
      wait: true,
      poll: pollOf(input.flags.pollInterval),
      limits,
      concurrency: input.concurrency
    })
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
    const run = yield* (options.wait
      ? waitForRun(runDir, run0, pollOf(options.pollInterval))
      : refreshRun(runDir, run0)).pipe(Effect.provide(layers))
    const t = totalsOf(run)
    const lines = [
      `run ${run.run_id}: ${run.command}, ${t.requests} requests to ${
        endpointUrl(run.endpoint)
      } (${run.llm.model}) in ${t.parts} batch${t.parts === 1 ? "" : "es"}`
    ]
    for (const p of run.parts) {
      const c = p.request_counts
      lines.push(
        `part ${p.part}  ${p.batch_id ?? "(not created)"}  ${(p.status ?? "submitting").padEnd(11)}  ` +
          `${c === null ? "?" : c.completed + c.failed}/${p.requests} done, ${c?.failed ?? 0} failed  ${p.purpose}` +
          (p.errors.length > 0 ? `  errors: ${p.errors.slice(0, 3).join("; ")}` : "")
      )
    }
    lines.push(
      statusLine(run) +
        (run.parts.every((p) => isTerminal(p.status))
          ? `; all done: collect with \`skyrl batch collect ${runDir}\``
          : "")
    )
    process.stdout.write(lines.join("\n") + "\n")
  })

export const runBatchCollect = (options: {
  readonly runDir: string
  readonly wait: boolean
  readonly pollInterval: number
  readonly repairs: "online" | "batch"
  readonly resubmit: boolean
  readonly concurrency: Option.Option<number>
  readonly batchMaxRequests: number
}) =>
  Effect.gen(function*() {
    const runDir = path.resolve(options.runDir)
    const run = yield* readRun(runDir).pipe(Effect.provide(StorageLive))
    const stored = (run.options as { concurrency?: unknown }).concurrency
    yield* collectWith(runDir, run, {
      repairs: options.repairs,
      resubmit: options.resubmit,
      wait: options.wait,
      poll: pollOf(options.pollInterval),
      limits: { maxRequests: options.batchMaxRequests, maxBytes: BATCH_MAX_BYTES },
      concurrency: Option.getOrElse(options.concurrency, () => (typeof stored === "number" ? stored : 4))
    })
  })
