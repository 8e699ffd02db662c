/**
 * `rebuild`: re-derive a generate run's dataset from its raw archive alone, calling no model. For each
 * sample the archived answers are taken in call order and the first one that decodes and passes the
 * same plan validation becomes the row, with the metadata the run recorded. The rows come out as the run
 * wrote them (raw_output_path is relative to the new output's directory).
 */
import { Effect, Either, Option, Schema } from "effect"
import * as path from "node:path"
import { gunzipSync } from "node:zlib"
import { InputError } from "../domain/errors.js"
import { Backend } from "../domain/llm.js"
import type { SkyRLRow } from "../domain/row.js"
import { RunManifest, SettingsError } from "../domain/run.js"
import { ModelTask } from "../domain/task.js"
import { Inventory } from "../services/Inventory.js"
import { backendOfBody, decodeText, extractText, usageOf } from "../services/llm/answer.js"
import { Storage } from "../services/Storage.js"
import { convertTask } from "../skyrl/convert.js"
import { parseComplexities, workPlan } from "../skyrl/workPlan.js"
import { generatedTaskInput } from "./generate.js"
import { planIssues } from "./runFiles.js"

const ARCHIVE = /^task_(\d+)_c(\d+)\.json(\.gz)?$/

const ArchiveRecord = Schema.Struct({
  status: Schema.String,
  backend: Schema.String,
  model: Schema.String,
  startedAt: Schema.String,
  response: Schema.optional(Schema.Unknown),
  sample: Schema.Number,
  sample_attempt: Schema.Number,
  purpose: Schema.String
})

export interface RebuildOptions {
  readonly runDir: string
  readonly out: string
  readonly indent: number | undefined
  readonly ascii: boolean
}

export const rebuildProgram = (options: RebuildOptions) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const inventory = yield* Inventory
    const catalogue = yield* inventory.get
    const manifestFile = path.join(options.runDir, "manifest.json")
    const manifestText = yield* storage.readText(manifestFile).pipe(
      Effect.mapError((e) => new InputError({ file: manifestFile, reason: e.reason }))
    )
    const manifest = yield* Schema.decodeUnknown(Schema.parseJson(RunManifest))(manifestText).pipe(
      Effect.mapError((e) => new InputError({ file: manifestFile, reason: `not a run manifest: ${e.message}` }))
    )
    if (manifest.command !== "generate") {
      return yield* new SettingsError({
        setting: "RUN_DIR",
        reason: `rebuild re-derives generate runs; this is a ${manifest.command} run`
      })
    }
    const settings = manifest.settings as Record<string, any>
    const complexities = parseComplexities(
      (settings.complexities as Array<{ complexity: string; weight: number }>).map((c) => `${c.complexity}:${c.weight}`)
        .join(",")
    )
    if (typeof complexities === "string") return yield* new SettingsError({ setting: "manifest", reason: complexities })
    const plan = workPlan(manifest.seed ?? 0, settings.n, settings.domains, complexities)
    const taskInput = generatedTaskInput(settings.max_turns)
    const outDir = path.dirname(path.resolve(options.out))
    // Runs made before these settings were recorded: the defaults of that time's successor (no date line).
    const rowSettings = {
      ...(typeof settings.max_prompt_tokens === "number" ? { maxPromptTokens: settings.max_prompt_tokens } : {}),
      ...(typeof settings.as_of === "string" ? { asOf: settings.as_of } : {})
    }

    // Archive files by sample, in call order.
    const names = (yield* storage.readDirectory(options.runDir)).flatMap((name) => {
      const m = ARCHIVE.exec(name)
      return m === null ? [] : [{ name, sample: Number(m[1]) - 1, call: Number(m[2]), gz: m[3] !== undefined }]
    }).sort((a, b) => a.sample - b.sample || a.call - b.call)

    const rows = new Map<number, SkyRLRow>()
    for (const file of names) {
      if (rows.has(file.sample) || plan[file.sample] === undefined) continue
      const full = path.join(options.runDir, file.name)
      const bytes = yield* storage.readBytes(full)
      const text = file.gz ? gunzipSync(bytes).toString("utf8") : Buffer.from(bytes).toString("utf8")
      const record = Schema.decodeUnknownEither(Schema.parseJson(ArchiveRecord))(text)
      if (Either.isLeft(record) || record.right.status !== "ok") continue
      const r = record.right
      const backend = backendOfBody(r.response) ??
        Option.getOrElse(Schema.decodeUnknownOption(Backend)(r.backend), () => "chat" as const)
      const answerText = extractText(backend, r.response)
      if (Either.isLeft(answerText)) continue
      const task = decodeText(ModelTask, answerText.right, r.response, { input: 0, cached: 0, output: 0, reasoning: 0 })
      if (Either.isLeft(task)) continue
      const steps = inventory.decodeSteps(task.right.tool_sequence)
      if (Either.isLeft(steps)) continue
      if (
        planIssues(catalogue, steps.right, { maxTools: settings.max_tools }, inventory.validatePlan).length > 0
      ) continue
      const job = plan[file.sample]
      const row = convertTask(taskInput(job, task.right, steps.right), {
        dataSource: settings.data_source,
        inventory: catalogue,
        ...rowSettings,
        metadata: {
          source: "generate",
          model: r.model,
          backend: r.backend,
          run_id: manifest.run_id,
          generated_at: r.startedAt,
          seed: manifest.seed,
          sample_index: job.index,
          attempt: r.sample_attempt,
          repaired: r.purpose === "repair",
          requested_complexity: job.complexity,
          requested_domain: job.domain,
          reasoning_tokens: usageOf(backend, r.response).reasoning,
          raw_output_path: path.relative(outDir, full).split(path.sep).join("/")
        }
      })
      if (Either.isRight(row)) rows.set(file.sample, row.right)
    }
    const ordered = [...rows.entries()].sort((a, b) => a[0] - b[0]).map(([, row]) => row)
    const written = yield* storage.writeRows(options.out, ordered, {
      ...(options.indent === undefined ? {} : { indent: options.indent }),
      ascii: options.ascii
    })
    yield* Effect.logInfo(
      `rebuilt ${written} rows of run ${manifest.run_id} (manifest counts ${manifest.counts.valid} valid) into ${options.out}`
    )
    return { written, expected: manifest.counts.valid }
  })
