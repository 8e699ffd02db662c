/**
 * The sampling engine shared by `generate` and `enrich`: for each job, ask the model for a task, validate
 * its plan against the inventory (repairing once), convert it to a SkyRL row, archive every call, and
 * write the dataset.
 *
 * Durability: every model call is archived as it happens; every finished sample is journaled (append +
 * fsync) before the next is counted; the dataset is written atomically from the journal at the end.
 * `--resume` reads the journal and continues with the samples that are not finished, so no answered
 * sample is requested again and no row is duplicated. A crash between archiving an answer and journaling
 * it leaves the answer on disk only: a resumed sample first tries its last archived answer (judged as if
 * it had just arrived) before calling the model, and numbers new calls after the archived ones, so a paid
 * answer is neither requested again nor overwritten.
 */
import { Clock, Effect, Either, Option, Ref, Schema } from "effect"
import * as path from "node:path"
import { gunzipSync } from "node:zlib"
import type { StepIssue } from "../domain/inventory.js"
import { formatIssue } from "../domain/inventory.js"
import type { AttemptRecord, LlmError, Usage } from "../domain/llm.js"
import { addUsage, emptyUsage, InvalidOutput } from "../domain/llm.js"
import { costOf } from "../domain/pricing.js"
import type { SkyRLRow } from "../domain/row.js"
import type { RejectRecord } from "../domain/run.js"
import { IncompleteRun, JournalEntry, RunManifest } from "../domain/run.js"
import type { ModelTask } from "../domain/task.js"
import { ModelTask as ModelTaskSchema } from "../domain/task.js"
import { Inventory } from "../services/Inventory.js"
import type { InventoryApi } from "../services/Inventory.js"
import { Llm } from "../services/Llm.js"
import type { LlmMessage } from "../services/Llm.js"
import { backendOfBody, decodeText, extractText, usageOf } from "../services/llm/answer.js"
import { Progress } from "../services/Progress.js"
import { Storage } from "../services/Storage.js"
import { normalizeForDuplicates } from "../skyrl/checks.js"
import { convertTask } from "../skyrl/convert.js"
import { decodeRow, encodeRow, toJsonText } from "../skyrl/layout.js"
import type { PlanStep } from "../skyrl/planValidation.js"
import { archiveFileName, encodeArchive, planIssues, runPaths } from "./runFiles.js"

export interface Job {
  /** 0-based position in the run; also the sample number in archive names and journal lines. */
  readonly index: number
}

export interface SamplingOptions<J extends Job> {
  readonly command: "generate" | "enrich"
  readonly jobs: ReadonlyArray<J>
  /** The shared prefix (identical for every request of the run). */
  readonly instructions: string
  /** The varying user message for a job's attempt (attempt ≥ 1). */
  readonly requestText: (job: J, attempt: number) => string
  /** The raw task handed to `convertTask` once the plan is valid. */
  readonly taskInput: (job: J, task: ModelTask, steps: ReadonlyArray<PlanStep>) => unknown
  /** Extra metadata for the job's row. */
  readonly jobMetadata: (job: J) => Readonly<Record<string, unknown>>
  /** Reject a task whose user prompt repeats an earlier one (generate). */
  readonly dedupePrompts: boolean
  /** Rows that need no model call (enrich: rows that already have a plan), written in index order. */
  readonly passthrough?: ReadonlyArray<{ readonly index: number; readonly row: SkyRLRow }>
  /** A job's own inventory (enrich: the tools its prompt offers); default: the Inventory service's. */
  readonly jobInventory?: (job: J) => InventoryApi | undefined
  /** Rejects found before any call (enrich: unusable input rows), written to the rejects file too. */
  readonly inputRejects?: ReadonlyArray<RejectRecord>
  /** Called once per job the run finishes (enrich logs one line per task). */
  readonly onSampleDone?: (job: J, outcome: SampleOutcome) => Effect.Effect<void>
  readonly out: string
  readonly seed: number | null
  readonly maxTools: number
  readonly maxTurns: number
  readonly concurrency: number
  readonly maxCostUsd: number | undefined
  readonly maxAttemptsPerSample: number
  readonly rawDir: string
  readonly runId: string
  readonly resume: boolean
  readonly rawGzip: boolean
  readonly indent: number | undefined
  readonly ascii: boolean
  readonly dataSource: string
  readonly rejectsFile: string
  /** Model, backend and effort as configured (for the manifest and row metadata). */
  readonly model: string
  readonly backend: string
  readonly settings: Readonly<Record<string, unknown>>
  /** Expected output tokens per call, for the TPM limiter before real figures exist. */
  readonly expectedOutputTokens: number
  /** Cost of the run's tokens (default: the model's online price; batch runs pass batch prices). */
  readonly costOf?: ((usage: Usage) => number | undefined) | undefined
}

/** Name of the task output schema sent with every request. */
export const TASK_SCHEMA_NAME = "skyrl_task"

/** The request key of a sample's call (replay and batch answers join on it): `sample-000007[-a2][-repair]`. */
export const sampleKey = (index: number, attempt: number, purpose: "task" | "repair"): string =>
  `sample-${String(index).padStart(6, "0")}${attempt > 1 ? `-a${attempt}` : ""}${purpose === "repair" ? "-repair" : ""}`

export type SampleOutcome =
  | { readonly status: "row"; readonly row: SkyRLRow; readonly attempts: number; readonly calls: number }
  | {
    readonly status: "failed"
    readonly reasons: ReadonlyArray<string>
    readonly attempts: number
    readonly calls: number
  }

export interface SamplingSummary {
  readonly runId: string
  readonly runDir: string
  readonly valid: number
  readonly requested: number
  readonly rejectedAttempts: number
  readonly failedSamples: number
  readonly calls: number
  readonly usage: Usage
  readonly costUsd: number | undefined
}

const FATAL: ReadonlySet<string> = new Set([
  "Authentication",
  "QuotaExceeded",
  "BadRequest",
  "NotFound",
  "MissingApiKey"
])

interface RunState {
  readonly valid: number
  readonly rejected: number
  readonly failed: number
  readonly calls: number
  readonly repairs: number
  readonly done: number
  readonly usage: Usage
  readonly stop: string | undefined
}

const describeLlmError = (e: LlmError): string => e.message

const usageOfError = (e: LlmError): Usage | undefined =>
  "usage" in e && e.usage !== undefined ? e.usage as Usage : undefined

export const runSampling = <J extends Job>(options: SamplingOptions<J>) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const llm = yield* Llm
    const inventory = yield* Inventory
    const progress = yield* Progress
    const catalogue = yield* inventory.get

    const outDir = path.dirname(path.resolve(options.out))
    const paths = runPaths(options.rawDir, options.runId)
    const relativeToOut = (file: string) => path.relative(outDir, file).split(path.sep).join("/")
    yield* storage.makeDirectory(paths.runDir)

    // Resume: finished samples from the journal (a torn last line from a crash is ignored).
    const previous = new Map<number, JournalEntry>()
    if (options.resume && (yield* storage.exists(paths.journal))) {
      const text = yield* storage.readText(paths.journal)
      for (const line of text.split("\n")) {
        if (line.trim() === "") continue
        const parsed = Either.try(() => JSON.parse(line) as unknown)
        if (Either.isLeft(parsed)) continue
        const entry = Schema.decodeUnknownEither(JournalEntry)(parsed.right)
        if (Either.isRight(entry)) previous.set(entry.right.index, entry.right)
      }
      if (!text.endsWith("\n") && text !== "") yield* storage.appendDurable(paths.journal, "\n")
    }
    // Resume: the archive files already there, by sample (see the module comment).
    const archived = new Map<number, Array<{ readonly call: number; readonly file: string }>>()
    if (options.resume) {
      for (const name of yield* storage.readDirectory(paths.runDir).pipe(Effect.orElseSucceed(() => []))) {
        const m = ARCHIVE_NAME.exec(name)
        if (m === null) continue
        const index = Number(m[1]) - 1
        archived.set(index, [...(archived.get(index) ?? []), {
          call: Number(m[2]),
          file: path.join(paths.runDir, name)
        }])
      }
    }
    const finished = (i: number) => previous.get(i)?.status === "row"
    const todo = options.jobs.filter((s) => !finished(s.index))
    const attemptsBefore = (i: number) => previous.get(i)?.attempts ?? 0
    const callsBefore = (i: number) =>
      Math.max(previous.get(i)?.calls ?? 0, ...(archived.get(i) ?? []).map((a) => a.call))

    const instructions = options.instructions
    const inventoryOf = (job: J): InventoryApi => options.jobInventory?.(job) ?? inventory
    const startedAt = new Date(yield* Clock.currentTimeMillis).toISOString()
    const t0 = yield* Clock.currentTimeMillis

    const prior = [...previous.values()]
    const state = yield* Ref.make<RunState>({
      valid: prior.filter((e) => e.status === "row").length,
      rejected: prior.reduce((n, e) => n + e.rejects.length, 0),
      failed: 0,
      calls: prior.reduce((n, e) => n + e.calls, 0),
      repairs: 0,
      done: prior.filter((e) => e.status === "row").length,
      usage: prior.reduce((u, e) => addUsage(u, e.usage), emptyUsage),
      stop: undefined
    })
    const costNow = (s: RunState) =>
      options.costOf !== undefined ? options.costOf(s.usage) : costOf(options.model, s.usage)
    const seenPrompts = new Set<string>(
      prior.flatMap((e) => {
        if (e.status !== "row") return []
        const row = decodeRow(e.row)
        return Either.isRight(row)
          ? [normalizeForDuplicates(row.right.prompt[row.right.prompt.length - 1].content)]
          : []
      })
    )

    const manifest = (status: RunManifest["status"], s: RunState, finishedAt: string | null, now: number) =>
      new RunManifest({
        run_id: options.runId,
        command: options.command,
        status,
        output: path.resolve(options.out),
        started_at: startedAt,
        finished_at: finishedAt,
        settings: options.settings,
        seed: options.seed,
        model: options.model,
        backend: options.backend,
        llm: llm.describe,
        counts: {
          requested: options.jobs.length,
          valid: s.valid,
          rejected_attempts: s.rejected,
          failed_samples: s.failed,
          calls: s.calls,
          repairs: s.repairs
        },
        tokens: s.usage,
        cost_usd: costNow(s) ?? null,
        elapsed_ms: now - t0
      })
    const writeManifest = (status: RunManifest["status"], finishedAt: string | null) =>
      Effect.gen(function*() {
        const s = yield* Ref.get(state)
        const now = yield* Clock.currentTimeMillis
        const encoded = Schema.encodeSync(RunManifest)(manifest(status, s, finishedAt, now))
        yield* storage.writeFileAtomic(paths.manifest, toJsonText(encoded, { indent: 2 }) + "\n")
      })
    yield* writeManifest("running", null)
    yield* Effect.logInfo(
      `run ${options.runId}: ${todo.length} of ${options.jobs.length} samples to make with ${llm.describe}` +
        (previous.size > 0 ? ` (resumed: ${options.jobs.length - todo.length} already done)` : "")
    )

    /** One model call for a sample, archived whatever happens. */
    const call = (
      sample: J,
      attempt: number,
      callNo: Ref.Ref<number>,
      purpose: "task" | "repair",
      input: ReadonlyArray<LlmMessage>
    ) =>
      Effect.gen(function*() {
        const archived = yield* Ref.make<Option.Option<string>>(Option.none())
        const startedAt = yield* Ref.make("")
        const onAttempt = (record: AttemptRecord) =>
          Effect.gen(function*() {
            const n = yield* Ref.updateAndGet(callNo, (x) => x + 1)
            const file = path.join(paths.runDir, archiveFileName(sample.index, n, options.jobs.length, options.rawGzip))
            yield* Ref.update(state, (s) => ({
              ...s,
              calls: s.calls + 1,
              usage: record.usage === undefined ? s.usage : addUsage(s.usage, record.usage)
            }))
            yield* storage.writeFileAtomic(
              file,
              encodeArchive(
                { ...record, sample: sample.index, sample_attempt: attempt, call: n, purpose },
                options.rawGzip
              )
            ).pipe(Effect.catchAll((e) => Effect.logWarning(`could not archive ${file}: ${e.message}`)))
            yield* Ref.set(archived, Option.some(file))
            yield* Ref.set(startedAt, record.startedAt)
          })
        const result = yield* llm.complete({
          name: TASK_SCHEMA_NAME,
          instructions,
          input,
          schema: ModelTaskSchema,
          jsonSchema: inventoryOf(sample).outputJsonSchema({ maxSteps: options.maxTools }),
          key: sampleKey(sample.index, attempt, purpose),
          onAttempt
        }).pipe(Effect.either)
        return { result, file: yield* Ref.get(archived), startedAt: yield* Ref.get(startedAt) }
      })

    /** Checks a decoded task: plan validity, placeholders, duplicates; returns the row or the reasons. */
    const judge = (job: J, task: ModelTask, meta: Record<string, unknown>): Verdict => {
      const jobInventory = inventoryOf(job)
      const jobCatalogue = jobInventory === inventory ? catalogue : jobInventory.inventory
      const steps = jobInventory.decodeSteps(task.tool_sequence)
      if (Either.isLeft(steps)) {
        return Either.left({ reasons: steps.left.map(formatIssue), issues: steps.left, repairable: true })
      }
      const problems = planIssues(jobCatalogue, steps.right, { maxTools: options.maxTools }, jobInventory.validatePlan)
      if (problems.length > 0) {
        return Either.left({
          reasons: problems.map((p) => p.text),
          issues: problems.map((p) => p.issue),
          repairable: true
        })
      }
      const converted = convertTask(
        options.taskInput(job, task, steps.right),
        { dataSource: options.dataSource, inventory: jobCatalogue, metadata: meta }
      )
      if (Either.isLeft(converted)) {
        return Either.left({ reasons: [converted.left.message], issues: [], repairable: true })
      }
      const key = normalizeForDuplicates(converted.right.prompt[converted.right.prompt.length - 1].content)
      if (options.dedupePrompts && seenPrompts.has(key)) {
        return Either.left({ reasons: ["duplicate of an earlier task's prompt"], issues: [], repairable: false })
      }
      return Either.right({ row: converted.right, key })
    }

    /** Journals a finished sample's row and counts it. */
    const accept = (
      sample: J,
      verdict: { readonly row: SkyRLRow; readonly key: string },
      done: { readonly attempts: number; readonly calls: number; readonly usage: Usage },
      rejects: ReadonlyArray<RejectRecord>
    ) =>
      Effect.gen(function*() {
        seenPrompts.add(verdict.key)
        const entry: JournalEntry = {
          index: sample.index,
          status: "row",
          row: encodeRow(verdict.row),
          attempts: done.attempts,
          calls: done.calls,
          usage: done.usage,
          rejects
        }
        yield* storage.appendDurable(paths.journal, JSON.stringify(Schema.encodeSync(JournalEntry)(entry)) + "\n")
        yield* Ref.update(
          state,
          (x) => ({ ...x, valid: x.valid + 1, done: x.done + 1, rejected: x.rejected + rejects.length })
        )
        if (options.onSampleDone !== undefined) {
          yield* options.onSampleDone(sample, {
            status: "row",
            row: verdict.row,
            attempts: done.attempts,
            calls: done.calls
          })
        }
      })

    /**
     * Resume: the sample's last archived answer, when it was archived but never journaled (a crash in
     * between) and makes a valid row; true when it was used.
     */
    const adoptArchived = (sample: J) =>
      Effect.gen(function*() {
        const last = [...(archived.get(sample.index) ?? [])].sort((a, b) => b.call - a.call)[0]
        if (last === undefined) return false
        const bytes = yield* storage.readBytes(last.file).pipe(Effect.option)
        if (Option.isNone(bytes)) return false
        const record = Either.try(() =>
          JSON.parse(
            last.file.endsWith(".gz")
              ? gunzipSync(bytes.value).toString("utf8")
              : Buffer.from(bytes.value).toString("utf8")
          ) as Record<string, any>
        )
        if (Either.isLeft(record) || record.right.status !== "ok") return false
        const r = record.right
        const backend = backendOfBody(r.response) ?? (r.backend === "chat" ? "chat" : "responses")
        const text = extractText(backend, r.response)
        if (Either.isLeft(text)) return false
        const usage = usageOf(backend, r.response)
        const task = decodeText(ModelTaskSchema, text.right, r.response, usage)
        if (Either.isLeft(task)) return false
        const attempt = typeof r.sample_attempt === "number" ? r.sample_attempt : attemptsBefore(sample.index) + 1
        const verdict = judge(sample, task.right, {
          source: options.command,
          model: r.model,
          backend: r.backend,
          run_id: options.runId,
          generated_at: r.startedAt,
          seed: options.seed,
          sample_index: sample.index,
          attempt,
          repaired: r.purpose === "repair",
          ...options.jobMetadata(sample),
          reasoning_tokens: usage.reasoning,
          raw_output_path: relativeToOut(last.file)
        })
        if (Either.isLeft(verdict)) return false
        yield* Effect.logInfo(`sample ${sample.index + 1}: using its archived answer (${path.basename(last.file)})`)
        yield* accept(sample, verdict.right, { attempts: attempt, calls: callsBefore(sample.index), usage }, [])
        return true
      })

    const processSample = (sample: J) =>
      Effect.gen(function*() {
        if (archived.has(sample.index) && (yield* adoptArchived(sample))) return
        const callNo = yield* Ref.make(callsBefore(sample.index))
        const rejects: Array<RejectRecord> = []
        let usage: Usage = emptyUsage
        let attempt = attemptsBefore(sample.index)
        const firstAttempt = attempt
        while (attempt - firstAttempt < options.maxAttemptsPerSample) {
          const s = yield* Ref.get(state)
          if (s.stop !== undefined) break
          const spent = costNow(s)
          if (options.maxCostUsd !== undefined && spent !== undefined && spent >= options.maxCostUsd) {
            yield* Ref.update(
              state,
              (x) => ({ ...x, stop: `--max-cost $${options.maxCostUsd} reached ($${spent.toFixed(4)} spent)` })
            )
            break
          }
          attempt++
          const request = options.requestText(sample, attempt)
          let input: ReadonlyArray<LlmMessage> = [{ role: "user", content: request }]
          let repaired = false
          for (let round = 0; round < 2; round++) {
            const { file, result, startedAt } = yield* call(
              sample,
              attempt,
              callNo,
              round === 0 ? "task" : "repair",
              input
            )
            const rel = Option.getOrNull(Option.map(file, relativeToOut))
            if (Either.isLeft(result)) {
              const e = result.left
              const u = usageOfError(e)
              if (u !== undefined) usage = addUsage(usage, u)
              if (FATAL.has(e._tag)) {
                yield* Ref.update(state, (x) => ({ ...x, stop: describeLlmError(e) }))
                rejects.push({ index: sample.index, attempt, reasons: [describeLlmError(e)], raw_output_path: rel })
                break
              }
              if (e._tag === "InvalidOutput" && round === 0) {
                input = [...input, { role: "assistant", content: e.text }, {
                  role: "user",
                  content: invalidOutputRepair(e)
                }]
                yield* Ref.update(state, (x) => ({ ...x, repairs: x.repairs + 1 }))
                repaired = true
                continue
              }
              rejects.push({ index: sample.index, attempt, reasons: [describeLlmError(e)], raw_output_path: rel })
              break
            }
            const answer = result.right
            usage = addUsage(usage, answer.usage)
            const verdict = judge(sample, answer.value, {
              source: options.command,
              model: answer.model,
              backend: answer.backend,
              run_id: options.runId,
              // The accepted call's start (from its archive record), so `rebuild` derives the same value.
              generated_at: startedAt,
              seed: options.seed,
              sample_index: sample.index,
              attempt,
              repaired,
              ...options.jobMetadata(sample),
              reasoning_tokens: answer.usage.reasoning,
              raw_output_path: rel
            })
            if (Either.isRight(verdict)) {
              yield* accept(sample, verdict.right, { attempts: attempt, calls: yield* Ref.get(callNo), usage }, rejects)
              return
            }
            if (round === 0 && verdict.left.repairable) {
              input = [...input, { role: "assistant", content: answer.text }, {
                role: "user",
                content: verdict.left.issues.length > 0
                  ? inventoryOf(sample).repairMessage(verdict.left.issues)
                  : `Your previous answer had problems:\n${verdict.left.reasons.map((r) => `- ${r}`).join("\n")}\n` +
                    "Return the whole task again in the same JSON format with these problems fixed."
              }]
              yield* Ref.update(state, (x) => ({ ...x, repairs: x.repairs + 1 }))
              repaired = true
              continue
            }
            rejects.push({ index: sample.index, attempt, reasons: [...verdict.left.reasons], raw_output_path: rel })
            break
          }
          for (const r of rejects.slice(-1)) {
            yield* Effect.logWarning(
              `sample ${sample.index + 1} attempt ${r.attempt} rejected: ${r.reasons.join("; ")}`
            )
          }
        }
        const entry: JournalEntry = {
          index: sample.index,
          status: "failed",
          attempts: attempt,
          calls: yield* Ref.get(callNo),
          usage,
          rejects
        }
        yield* storage.appendDurable(paths.journal, JSON.stringify(Schema.encodeSync(JournalEntry)(entry)) + "\n")
        yield* Ref.update(
          state,
          (x) => ({ ...x, failed: x.failed + 1, done: x.done + 1, rejected: x.rejected + rejects.length })
        )
        if (options.onSampleDone !== undefined) {
          yield* options.onSampleDone(sample, {
            status: "failed",
            reasons: rejects.flatMap((r) => r.reasons),
            attempts: attempt,
            calls: entry.calls
          })
        }
      })

    const snapshot = Effect.gen(function*() {
      const s = yield* Ref.get(state)
      const now = yield* Clock.currentTimeMillis
      return {
        done: s.done,
        total: options.jobs.length,
        valid: s.valid,
        rejected: s.rejected,
        failed: s.failed,
        tokens: s.usage.input + s.usage.output,
        costUsd: costNow(s),
        elapsedMs: now - t0
      }
    })
    yield* progress.track(
      snapshot,
      Effect.forEach(todo, processSample, { concurrency: options.concurrency, discard: true })
    )

    // The dataset: every journaled row, in sample order, written atomically.
    const journalText = yield* storage.readText(paths.journal).pipe(Effect.orElseSucceed(() => ""))
    const rows = new Map<number, unknown>()
    const allRejects: Array<RejectRecord> = [...(options.inputRejects ?? [])]
    for (const line of journalText.split("\n")) {
      if (line.trim() === "") continue
      const parsed = Either.try(() => JSON.parse(line) as unknown)
      if (Either.isLeft(parsed)) continue
      const entry = Schema.decodeUnknownEither(JournalEntry)(parsed.right)
      if (Either.isLeft(entry)) continue
      allRejects.push(...entry.right.rejects)
      if (entry.right.status === "row") rows.set(entry.right.index, entry.right.row)
    }
    for (const p of options.passthrough ?? []) rows.set(p.index, encodeRow(p.row))
    const ordered = [...rows.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, r]) => {
      const row = decodeRow(r)
      return Either.isRight(row) ? [row.right] : []
    })
    const written = yield* storage.writeRows(options.out, ordered, {
      ...(options.indent === undefined ? {} : { indent: options.indent }),
      ascii: options.ascii
    })
    if (allRejects.length > 0) {
      yield* storage.writeFileAtomic(
        options.rejectsFile,
        allRejects.map((r) => JSON.stringify({ run_id: options.runId, ...r }) + "\n").join("")
      )
    }
    const final = yield* Ref.get(state)
    const complete = rows.size >= options.jobs.length + (options.passthrough?.length ?? 0)
    yield* writeManifest(complete ? "completed" : "incomplete", new Date(yield* Clock.currentTimeMillis).toISOString())
    const cost = costNow(final)
    yield* Effect.logInfo(
      `wrote ${written} rows to ${options.out}; ${final.rejected} rejected attempts, ${final.failed} failed samples; ` +
        `${final.calls} calls, tokens in ${final.usage.input} (cached ${final.usage.cached}) out ${final.usage.output} ` +
        `(reasoning ${final.usage.reasoning})${
          cost === undefined ? "" : `, cost $${cost.toFixed(4)}`
        }; archive ${paths.runDir}`
    )
    if (!complete) {
      return yield* new IncompleteRun({
        made: written,
        requested: options.jobs.length + (options.passthrough?.length ?? 0),
        output: options.out,
        reason: final.stop ??
          `${final.failed} samples failed after ${options.maxAttemptsPerSample} attempts each; rerun with --resume to retry them`
      })
    }
    return {
      runId: options.runId,
      runDir: paths.runDir,
      valid: written,
      requested: options.jobs.length,
      rejectedAttempts: final.rejected,
      failedSamples: final.failed,
      calls: final.calls,
      usage: final.usage,
      costUsd: cost
    } satisfies SamplingSummary
  })

/** `task_0007_c02.json(.gz)`: sample 7 (1-based), call 2 (see `archiveFileName`). */
const ARCHIVE_NAME = /^task_(\d+)_c(\d+)\.json(\.gz)?$/

type Verdict = Either.Either<
  { readonly row: SkyRLRow; readonly key: string },
  { readonly reasons: ReadonlyArray<string>; readonly issues: ReadonlyArray<StepIssue>; readonly repairable: boolean }
>

const invalidOutputRepair = (e: InvalidOutput): string =>
  [
    "Your previous answer did not match the required JSON format. Problems:",
    ...e.issues.slice(0, 20).map((i) => `- ${i.path === "" ? "" : `${i.path}: `}${i.message}`),
    "Return the whole task again as one JSON object in the required format."
  ].join("\n")
