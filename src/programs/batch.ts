/**
 * Batch runs through OpenAI's Batch API: status and collect (submission: ./batchSubmit.ts). The sampling
 * engine (./sampling.ts) is reused unchanged: collect runs it with an Llm that answers from the
 * collected output (src/services/llm/batchReplay.ts), so rows, archive, journal, cost ledger, repairs,
 * rejects and resume behave exactly as in an online run.
 *
 * - status: retrieves the batches (polling with a growing interval until all are done with `wait`),
 *   finishing first any submission that was interrupted (adopting a batch created before a crash) and
 *   submitting parts that waited for room in the enqueued-token queue.
 * - collect: downloads output and error files (kept in the run directory), joins lines on custom_id,
 *   and runs the sampling engine over the samples that have a line (or a journal entry: collecting
 *   again never redoes a finished sample). Repairs, new attempts and retries of lines that failed
 *   transiently go online or, with `repairs: "batch"`, into a follow-up batch (see batchReplay.ts for
 *   how the run is paused); a line refused for its request rejects that attempt and the sample is made
 *   again. Samples with no line at all (a failed batch, a cancelled one, one that expired without
 *   answering anything) are reported; `resubmit` sends them again as a follow-up batch. Every answer's
 *   usage is in the run's cost ledger (batch answers at batch prices, online calls at normal prices).
 */
import { Clock, Duration, Effect, Either, Option, Ref, Schedule, Schema } from "effect"
import * as path from "node:path"
import type { BatchPart, BatchRun } from "../domain/batch.js"
import { BatchPending, BatchStateError, endpointUrl, isTerminal } from "../domain/batch.js"
import type { Inventory as Catalogue } from "../domain/inventory.js"
import { noDatasetWritten } from "../domain/noDataset.js"
import { expectedOutputOf } from "../domain/pricing.js"
import { IncompleteRun } from "../domain/run.js"
import { shellWord } from "../domain/words.js"
import { BatchClient } from "../services/Batch.js"
import { budgetReached, CostLedger } from "../services/CostLedger.js"
import type { LedgerTotals } from "../services/CostLedger.js"
import { readLogEntries } from "../services/durableLog.js"
import { Inventory } from "../services/Inventory.js"
import type { InventoryApi } from "../services/Inventory.js"
import { Llm } from "../services/Llm.js"
import type { LlmApi } from "../services/Llm.js"
import { makeArchiveLlm } from "../services/llm/archive.js"
import type { DeferredRequest } from "../services/llm/batchReplay.js"
import {
  BatchAnswers,
  bodyHash,
  isFirstAttemptKey,
  lineError,
  makeBatchLlm,
  parseBatchLines,
  sampleCustomId
} from "../services/llm/batchReplay.js"
import type { ProgressApi, ProgressSnapshot } from "../services/Progress.js"
import { Progress } from "../services/Progress.js"
import { RunJournal } from "../services/RunJournal.js"
import { Storage } from "../services/Storage.js"
import type { BatchLimits, PreparedLine } from "./batchSubmit.js"
import type { SubmitBudget, UnrecordedPart } from "./batchSubmit.js"
import {
  adoptUnrecorded,
  bodySettingsOf,
  finishSubmission,
  firstRequest,
  heldBackText,
  nowIso,
  onQueueRefusal,
  partName,
  readRun,
  REQUESTS_FILE,
  runningEstimateUsd,
  submitParts,
  waitingLine,
  withinBudget,
  writeRun
} from "./batchSubmit.js"
import { enrichWarnOnly } from "./enrich.js"
import type { Job, SamplingOptions, SamplingSummary } from "./sampling.js"
import { runEngine, runSpecOf, sampleKey } from "./sampling.js"
import { checkWrittenDataset } from "./validate.js"

export {
  planParts,
  prepareLine,
  readRun,
  splitLines,
  submitRun,
  unreadableBatchRun,
  withRunLock
} from "./batchSubmit.js"
export type { BatchLimits } from "./batchSubmit.js"

export interface PollOptions {
  /** First wait between two polls; grows ×1.5 up to `maxIntervalMs`. */
  readonly intervalMs: number
  readonly maxIntervalMs: number
}

export interface StatusTotals {
  readonly parts: number
  readonly running: number
  readonly requests: number
  readonly completed: number
  readonly failed: number
}

export const totalsOf = (run: BatchRun): StatusTotals => ({
  parts: run.parts.length,
  running: run.parts.filter((p) => !isTerminal(p.status)).length,
  requests: run.parts.reduce((n, p) => n + p.requests, 0),
  completed: run.parts.reduce((n, p) => n + (p.request_counts?.completed ?? 0), 0),
  failed: run.parts.reduce((n, p) => n + (p.request_counts?.failed ?? 0), 0)
})

/** One readable line about the whole run (the progress line while waiting). */
export const statusLine = (run: BatchRun, elapsedMs?: number): string => {
  const t = totalsOf(run)
  const states = new Map<string, number>()
  for (const p of run.parts) {
    const state = p.status ?? (p.waiting !== null ? "waiting for the queue" : "submitting")
    states.set(state, (states.get(state) ?? 0) + 1)
  }
  const stateText = [...states.entries()].map(([s, n]) => `${n} ${s}`).join(", ")
  const elapsed = elapsedMs === undefined ? "" : `; waited ${formatDuration(elapsedMs)}`
  return `batch run ${run.run_id}: ${t.completed + t.failed}/${t.requests} requests done (${t.failed} failed); ` +
    `${t.parts} batch${t.parts === 1 ? "" : "es"}: ${stateText}${elapsed}`
}

const formatDuration = (ms: number): string => {
  const s = Math.round(ms / 1000)
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m` : s >= 60
    ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
    : `${s}s`
}

/** Retrieves every batch that is not finished; records what changed. */
export const refreshRun = (runDir: string, start: BatchRun) =>
  Effect.gen(function*() {
    const client = yield* BatchClient
    let run = yield* finishSubmission(runDir, start)
    let changed = false
    for (const part of run.parts) {
      if (part.batch_id === null || isTerminal(part.status)) continue
      const info = yield* client.retrieveBatch(part.batch_id)
      const refused = onQueueRefusal(part, info, yield* nowIso)
      if (refused !== undefined) {
        changed = true
        run = { ...run, parts: run.parts.map((p) => (p.part === part.part ? refused : p)) }
        yield* Effect.logWarning(
          refused.waiting === null
            ? `batch ${info.id} (part ${part.part}) was refused: ${refused.errors.join("; ")}`
            : waitingLine(run, refused)
        )
        continue
      }
      const next: BatchPart = {
        ...part,
        status: info.status,
        request_counts: info.requestCounts,
        output_file_id: info.outputFileId,
        error_file_id: info.errorFileId,
        errors: info.errors,
        updated_at: yield* nowIso
      }
      if (JSON.stringify({ ...next, updated_at: "" }) !== JSON.stringify({ ...part, updated_at: "" })) {
        changed = true
        run = { ...run, parts: run.parts.map((p) => (p.part === part.part ? next : p)) }
        if (isTerminal(info.status) && info.status !== "completed") {
          yield* Effect.logWarning(
            `batch ${info.id} (part ${part.part}) ended ${info.status}: ${
              info.requestCounts?.completed ?? 0
            } of ${part.requests} requests completed` +
              (info.errors.length > 0 ? `; ${info.errors.slice(0, 3).join("; ")}` : "")
          )
        }
      }
    }
    if (changed) yield* writeRun(runDir, run)
    return run
  })

export const allTerminal = (run: BatchRun): boolean => run.parts.every((p) => isTerminal(p.status))

/** The polling schedule: `intervalMs`, then ×1.5 each poll, never more than `maxIntervalMs`. */
export const pollSchedule = (poll: PollOptions) =>
  Schedule.exponential(Duration.millis(poll.intervalMs), 1.5).pipe(
    Schedule.union(Schedule.spaced(Duration.millis(Math.max(poll.intervalMs, poll.maxIntervalMs))))
  )

/** Polls until every batch is finished, logging the progress line whenever it changes. */
export const waitForRun = (runDir: string, start: BatchRun, poll: PollOptions) =>
  Effect.gen(function*() {
    const state = yield* Ref.make(start)
    const t0 = yield* Clock.currentTimeMillis
    let last = ""
    const once = Effect.gen(function*() {
      const run = yield* refreshRun(runDir, yield* Ref.get(state))
      yield* Ref.set(state, run)
      const line = statusLine(run)
      if (line !== last) {
        last = line
        yield* Effect.logInfo(statusLine(run, (yield* Clock.currentTimeMillis) - t0))
      }
      return run
    })
    yield* Effect.repeat(once, { schedule: pollSchedule(poll), until: allTerminal })
    return yield* Ref.get(state)
  })

/**
 * The state of a run another process holds (a collect, a submission): its batch.json as that process
 * records it, read only; with `poll`, read again until every batch ended. Sends and writes nothing.
 */
export const recordedRun = (runDir: string, poll: PollOptions | undefined) =>
  poll === undefined
    ? readRun(runDir)
    : Effect.repeat(readRun(runDir), { schedule: pollSchedule(poll), until: allTerminal }).pipe(
      Effect.zipRight(readRun(runDir))
    )

/**
 * Downloads the output and error files of finished batches (once; kept in the run directory). A file the
 * API no longer has (404 for its content: deleted from the account, or another project's key) concerns its
 * part's samples only: it is named in `gone` (by part) and its samples are reported as having no answer, kept
 * for `--resubmit`; the other parts are collected. Any other error stops the collect (the next one tries again).
 * `known` (kept by the collect across its rounds) holds the files found gone already: neither asked of the API
 * nor warned about again by a later round of the same collect.
 */
const download = (runDir: string, start: BatchRun, known: Set<string>) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const client = yield* BatchClient
    let run = start
    const gone = new Map<number, Array<string>>()
    /** The file's content, or undefined (named in `gone`, warned) when the API answers 404 for it. */
    const content = (part: BatchPart, kind: "output" | "error", id: string) => {
      const isGone = () =>
        gone.set(part.part, [...(gone.get(part.part) ?? []), `${kind} file ${id} not found at the API, 404`])
      if (known.has(id)) {
        isGone()
        return Effect.succeed(undefined)
      }
      return client.fileContent(id).pipe(
        Effect.map((text): string | undefined => text),
        Effect.catchTag("NotFound", (e) =>
          Effect.gen(function*() {
            isGone()
            known.add(id)
            yield* Effect.logWarning(
              `batch ${part.batch_id} (part ${part.part}) ${part.status}, but its ${kind} file ${id} is not found ` +
                `at the API (404: ${e.reason}); its samples have no answer: \`skyrl batch collect ${
                  shellWord(runDir)
                } ` +
                "--resubmit` sends them again as a batch (the other parts are collected)"
            )
            return undefined
          }))
      )
    }
    /** A file recorded as downloaded that is no longer in the run directory (deleted): downloaded again. */
    const lost = (name: string | null) =>
      name === null ? Effect.succeed(false) : Effect.map(storage.exists(path.join(runDir, name)), (here) => !here)
    for (const original of start.parts) {
      if (!isTerminal(original.status)) continue
      let part = original
      for (const [key, name] of [["output", part.output], ["error_output", part.error_output]] as const) {
        if (yield* lost(name)) {
          yield* Effect.logWarning(
            `${path.join(runDir, name!)} was downloaded before and is gone; downloading it again`
          )
          part = { ...part, [key]: null }
        }
      }
      const patch: { output?: string; error_output?: string } = {}
      if (part.output_file_id !== null && part.output === null) {
        const text = yield* content(part, "output", part.output_file_id)
        if (text !== undefined) {
          yield* storage.writeFileAtomic(path.join(runDir, partName(part.part, "output")), text)
          patch.output = partName(part.part, "output")
        }
      }
      if (part.error_file_id !== null && part.error_output === null) {
        const text = yield* content(part, "error", part.error_file_id)
        if (text !== undefined) {
          yield* storage.writeFileAtomic(path.join(runDir, partName(part.part, "errors")), text)
          patch.error_output = partName(part.part, "errors")
        }
      }
      if (Object.keys(patch).length > 0) {
        const updated_at = yield* nowIso
        run = { ...run, parts: run.parts.map((p) => (p.part === part.part ? { ...p, ...patch, updated_at } : p)) }
        yield* writeRun(runDir, run)
      }
    }
    return { run, gone }
  })

/** A line of requests.jsonl: which part submitted a request, and the hash of its body. */
const RequestHash = Schema.Struct({ custom_id: Schema.String, part: Schema.Number, sha256: Schema.String })

/** A line of a part's input file, as far as its request hash needs it. */
const InputLine = Schema.parseJson(Schema.Struct({ custom_id: Schema.String, body: Schema.Unknown }))

/**
 * The request hashes of the parts that requests.jsonl does not hold in full (the file deleted, cut short
 * or edited), read from each such part's input file, which holds the very lines that were uploaded.
 * Without them the part's samples would count as never sent and be paid for again in a follow-up batch,
 * however many answers their batch holds; so a part whose input file cannot be read either stops the
 * collect, naming both files. `told` (kept by the collect across its rounds) holds the parts warned about
 * already: read again by each round, said once per collect.
 */
const restoreSubmitted = (
  runDir: string,
  run: BatchRun,
  answers: BatchAnswers,
  perPart: Map<number, number>,
  told: Set<number>
) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const requestsFile = path.join(runDir, REQUESTS_FILE)
    for (const part of run.parts) {
      const listed = perPart.get(part.part) ?? 0
      if (listed >= part.requests) continue
      const missing = part.requests - listed
      const inputFile = path.join(runDir, part.input)
      const unreadable = (why: string) =>
        new BatchStateError({
          path: requestsFile,
          reason: `lacks the ${missing} requests of part ${part.part}, and its input file ${inputFile} ${why}: ` +
            "which samples the part holds is unknown, so none is sent again (that could pay for answers its batch " +
            "already holds); restore either file, then collect again"
        })
      const text = yield* storage.readText(inputFile).pipe(
        Effect.catchAll((e) => Effect.fail(unreadable(`cannot be read (${e.reason})`)))
      )
      const lines = text.split("\n").filter((l) => l.trim() !== "")
      const decoded = lines.map((l) => Schema.decodeUnknownEither(InputLine)(l))
      const bad = decoded.findIndex(Either.isLeft)
      if (bad >= 0) return yield* unreadable(`has a line that is not a request (line ${bad + 1})`)
      if (decoded.length !== part.requests) {
        return yield* unreadable(`holds ${decoded.length} requests, not the ${part.requests} batch.json records`)
      }
      for (const d of decoded) {
        if (Either.isRight(d)) answers.addSubmitted(d.right.custom_id, part.part, bodyHash(d.right.body))
      }
      if (told.has(part.part)) continue
      told.add(part.part)
      yield* Effect.logWarning(
        `${requestsFile} lacks the ${missing} requests of part ${part.part}; read from ${part.input}`
      )
    }
  })

/** A part's input file in the run directory: `batch_001_input.jsonl`. */
const INPUT_FILE = /^batch_(\d+)_input\.jsonl$/

/**
 * The parts `batch.json` does not record that the run directory knows of (an older batch.json restored, a hand
 * edit): those requests.jsonl names for these custom_ids, and those whose input file is here; each with the
 * requests its input file holds (the lines uploaded), else those requests.jsonl lists for it.
 */
const unrecordedParts = (runDir: string, run: BatchRun, answers: BatchAnswers, customIds: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const recorded = new Set(run.parts.map((p) => p.part))
    const numbers = new Set<number>()
    for (const id of customIds) {
      for (const n of answers.submittedHashes(id).keys()) if (!recorded.has(n)) numbers.add(n)
    }
    for (const name of yield* storage.readDirectory(runDir)) {
      const m = INPUT_FILE.exec(name)
      if (m !== null && !recorded.has(Number(m[1]))) numbers.add(Number(m[1]))
    }
    const known: Array<UnrecordedPart> = []
    for (const n of [...numbers].sort((a, b) => a - b)) {
      const input = path.join(runDir, partName(n, "input"))
      if (yield* storage.exists(input)) {
        const text = yield* storage.readText(input)
        const requests = text.split("\n").filter((l) => l.trim() !== "").length
        known.push({ part: n, requests, bytes: Buffer.byteLength(text, "utf8") })
      } else {
        known.push({ part: n, requests: answers.customIdsInParts(new Set([n])).length, bytes: 0 })
      }
    }
    return known
  })

/** Every collected line and submitted hash of the run (`told`: see restoreSubmitted). */
const loadAnswers = (runDir: string, run: BatchRun, told: Set<number>) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const answers = new BatchAnswers()
    const requestsFile = path.join(runDir, REQUESTS_FILE)
    const perPart = new Map<number, number>()
    yield* readLogEntries(requestsFile, RequestHash, (r) => {
      answers.addSubmitted(r.custom_id, r.part, r.sha256)
      perPart.set(r.part, (perPart.get(r.part) ?? 0) + 1)
    })
    yield* restoreSubmitted(runDir, run, answers, perPart, told)
    let unreadable = 0
    const named: Array<string> = []
    const strangers: Array<string> = []
    for (const part of run.parts) {
      for (const file of [part.output, part.error_output]) {
        if (file === null || part.batch_id === null) continue
        const content = yield* storage.readText(path.join(runDir, file))
        const parsed = parseBatchLines(content, part.part, part.batch_id, part.updated_at)
        unreadable += parsed.unreadable
        named.push(...parsed.problems.map((p) => `${path.join(runDir, file)} ${p}`))
        for (const id of parsed.unreadableIds) answers.addUnreadable(id)
        for (const l of parsed.lines) {
          if (answers.wasSubmitted(l.customId)) answers.addLine(l)
          else strangers.push(`${file}: ${l.customId}`)
        }
      }
    }
    if (strangers.length > 0) {
      yield* Effect.logWarning(
        `${strangers.length} lines of the batch output files are for requests this run never submitted; ignored: ${
          strangers.slice(0, 5).join("; ")
        }`
      )
    }
    if (unreadable > 0) {
      yield* Effect.logWarning(
        `${unreadable} lines of the batch output files are not readable; ignored (their samples count as unanswered): ${
          named.slice(0, 5).join("; ")
        }`
      )
    }
    return answers
  })

export interface CollectOptions {
  readonly repairs: "online" | "batch"
  /** Send samples the batches did not answer again, as a follow-up batch. */
  readonly resubmit: boolean
  /** Poll until the batches (and follow-up batches) are done, then collect. */
  readonly wait: boolean
  readonly poll: PollOptions
  readonly limits: BatchLimits
  /** Online calls at once (repairs with `repairs: "online"`). */
  readonly concurrency: number
  /**
   * Give the samples journaled as failed when the collect starts --max-attempts more attempts (once, for
   * the whole collect). Without it a failed sample stays failed: its attempts are replayed from the
   * archive, and no new one is made for it by this collect or any of its rounds.
   */
  readonly retryFailed: boolean
  /** `batch collect --max-cost`: replaces the run's budget (undefined: the run's). */
  readonly maxCostUsd?: number | undefined
}

export interface CollectSummary {
  readonly run: BatchRun
  /** The run's cost ledger, every session and round. */
  readonly totals: LedgerTotals
  readonly sampling: SamplingSummary | undefined
  readonly unanswered: number
  readonly pending: number
}

/** Which samples a collect round can make: those with a line or a journal entry, and (resubmit) the rest. */
interface RoundJobs<J> {
  readonly jobs: ReadonlyArray<J>
  readonly pending: number
  readonly unanswered: number
  /** `3 expired (every line of its batch); 1 no answer (batch failed)` */
  readonly unansweredText: string
  /** First attempts whose line failed: retried (transient) or made again (refused for the request). */
  readonly failedText: string
  /** Samples (indices) no recorded part ever held (a submission stopped while preparing, or --max-cost held them
   * back): sent now, in this round. */
  readonly neverSent: ReadonlyArray<number>
}

/** No part recorded in batch.json holds this sample's request: nothing of it was uploaded, so nothing paid. */
const neverSent = (run: BatchRun, answers: BatchAnswers, customId: string): boolean => {
  const parts = answers.submittedHashes(customId)
  return !run.parts.some((p) => parts.has(p.part))
}

/** `3 a; 1 b` from counts by reason, most frequent first. */
const countText = (counts: ReadonlyMap<string, number>): string =>
  [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([r, n]) => `${n} ${r}`)
    .join("; ")

const bump = (counts: Map<string, number>, reason: string) => {
  const key = reason.slice(0, 300)
  counts.set(key, (counts.get(key) ?? 0) + 1)
}

/** Why a sample its parts did not answer has no answer: a file of its part gone from the API, or its batch's state. */
const noAnswer = (parts: ReadonlyArray<BatchPart>, gone: ReadonlyMap<number, ReadonlyArray<string>>): string => {
  const lost = parts.find((p) => gone.has(p.part))
  return lost !== undefined
    ? `no answer (part ${lost.part}: ${gone.get(lost.part)!.join("; ")})`
    : `no answer (batch ${parts[0]?.status ?? "not submitted"})`
}

const sortJobs = <J extends Job>(
  run: BatchRun,
  base: SamplingOptions<J>,
  inventory: InventoryApi,
  answers: BatchAnswers,
  journaled: ReadonlyMap<number, unknown>,
  resubmit: boolean,
  gone: ReadonlyMap<number, ReadonlyArray<string>>
): RoundJobs<J> => {
  const runningParts = new Set(run.parts.filter((p) => !isTerminal(p.status)).map((p) => p.part))
  // Samples with any request (first attempt, repair, retry) in a batch still running wait for it.
  const runningSamples = new Set(answers.customIdsInParts(runningParts).map(sampleCustomId))
  const jobs: Array<J> = []
  const reasons = new Map<string, number>()
  const failed = new Map<string, number>()
  let pending = 0
  const unsent: Array<number> = []
  for (const job of base.jobs) {
    const customId = `${base.runId}:${sampleKey(job.index, 1, "task")}`
    if (!journaled.has(job.index) && runningSamples.has(customId)) {
      pending++
      continue
    }
    const found = journaled.has(job.index)
      ? undefined
      : answers.lookup(customId, bodyHash(firstRequest(run, base, inventory, job).line.body))
    const failure = found?.kind === "error" ? answers.failureOf(found.line) : undefined
    if (found?.kind === "error" && failure !== "lost") {
      const e = lineError(found.line)
      bump(failed, failure === "retry" ? `transient (${e.message})` : `refused for their request (${e.message})`)
    }
    if (found === undefined || found.kind === "answer" || (failure !== undefined && failure !== "lost")) {
      jobs.push(job)
      continue
    }
    if (found.kind === "none" && neverSent(run, answers, customId)) {
      unsent.push(job.index)
      jobs.push(job) // its first attempt has no line: the round holds it for a follow-up batch
      continue
    }
    const reason = found.kind === "error"
      ? (found.line.error?.code === "batch_expired"
        ? "expired (their batch expired without answering any request)"
        : found.line.error?.code === "batch_cancelled"
        ? "cancelled (their batch was cancelled before answering them; `--resubmit` sends them again)"
        : `lost: ${lineError(found.line).message}`)
      : found.kind === "mismatch"
      ? "the submitted request differs from the one asked now (inventory or settings changed)"
      : answers.isUnreadable(customId)
      ? "their line in the batch output is unreadable (named above)"
      : noAnswer(run.parts.filter((p) => answers.submittedHashes(customId).has(p.part)), gone)
    bump(reasons, reason)
    if (resubmit) jobs.push(job)
  }
  return {
    jobs,
    pending,
    unanswered: [...reasons.values()].reduce((a, b) => a + b, 0),
    unansweredText: countText(reasons),
    failedText: countText(failed),
    neverSent: unsent
  }
}

/**
 * One round: the run engine over this round's samples, answered by the run's archive first, then by
 * the batch output (repairs online, or deferred to a follow-up batch). Ends `done`, or `deferred` when
 * every open sample waits for a follow-up batch (the engine is then interrupted).
 */
const collectRound = Effect.fn("Batch.round")(function*<J extends Job>(
  runDir: string,
  run: BatchRun,
  base: SamplingOptions<J>,
  answers: BatchAnswers,
  jobs: ReadonlyArray<J>,
  options: CollectOptions,
  failedAfter: ReadonlyMap<number, number>,
  /** Why no request may go online or into a follow-up batch at all (the budget left fits none); else undefined. */
  held: string | undefined
) {
  const online = yield* Effect.serviceOption(Llm)
  const outerProgress = yield* Progress
  const journal = yield* RunJournal
  const deferred = new Map<string, DeferredRequest>()
  const overBudget = new Set<string>()
  const ledger = yield* CostLedger
  const maxCostUsd = options.maxCostUsd ?? base.maxCostUsd
  const budget = maxCostUsd === undefined ? undefined : Effect.map(ledger.totals, (totals) => {
    const reached = held ?? budgetReached(maxCostUsd, totals)
    return reached === undefined ? undefined : (
      `the batches hold no answer to it, and ${reached}, the batch answers included: no online call or ` +
      `follow-up batch is made for it; \`skyrl batch collect ${
        shellWord(runDir)
      } --max-cost N\` with a larger N makes it`
    )
  })
  const batchLlm: LlmApi = yield* makeBatchLlm({
    runId: base.runId,
    endpoint: run.endpoint,
    body: bodySettingsOf(run),
    answers,
    repairs: options.repairs,
    online: Option.getOrUndefined(online),
    onlineConcurrency: options.concurrency,
    maxRetries: run.llm.maxRetries,
    deferred,
    budget,
    overBudget,
    describe: `openai batch ${endpointUrl(run.endpoint)} ${run.llm.model} (${run.parts.length} batch${
      run.parts.length === 1 ? "" : "es"
    }; repairs ${options.repairs})`
  })
  const llm = makeArchiveLlm(journal.archived, yield* Storage, batchLlm)
  const snapshotRef = yield* Ref.make<Option.Option<Effect.Effect<ProgressSnapshot>>>(Option.none())
  const progress: ProgressApi = {
    track: (snapshot, work) =>
      Effect.zipRight(Ref.set(snapshotRef, Option.some(snapshot)), outerProgress.track(snapshot, work))
  }
  const watch = Effect.gen(function*() {
    for (;;) {
      yield* Effect.sleep(Duration.millis(25))
      if (deferred.size === 0) continue
      const snapshot = yield* Ref.get(snapshotRef)
      if (Option.isNone(snapshot)) continue
      const s = yield* snapshot.value
      // Ended only once every done sample's journal line is on disk: interrupting sooner would drop it.
      if (s.done + deferred.size + overBudget.size >= s.total && (yield* journal.unwritten) === 0) {
        return { _tag: "deferred", deferred } as const
      }
    }
  })
  const engine = runEngine({
    ...base,
    jobs,
    // Batch answers are local: every sample may run at once (online calls are bounded in the Llm).
    concurrency: Math.max(1, jobs.length),
    // The batch answered lines already: a refused line is about its request, not the request every sample sends.
    answered: answers.anyAnswered,
    failedAfter,
    // The budget is checked by the batch Llm (budget above): batch answers are paid for, and always used.
    maxCostUsd: undefined,
    finishHint: `run \`skyrl batch collect ${
      shellWord(runDir)
    }\` again to write them (collecting again never asks for a sample twice)`,
    retryHint: `run \`skyrl batch collect ${
      shellWord(runDir)
    } --retry-failed\` to make them again (--max-attempts more attempts each)`
  }).pipe(
    Effect.provideService(Llm, llm),
    Effect.provideService(Progress, progress),
    Effect.either,
    Effect.map((result) => ({ _tag: "done", result }) as const)
  )
  return yield* Effect.raceFirst(engine, watch)
})

/**
 * The attempts after which each sample journaled as failed fails again in this round (its attempts replayed
 * from the archive, none made anew): its journaled attempts, or, for one failed when the collect started and
 * given `--retry-failed`, those plus --max-attempts (the one grant of that collect, whatever its rounds).
 * Without this, each round and each collect gave every failed sample --max-attempts more: a collect --wait
 * whose follow-up batches kept coming made a sample refused at every attempt dozens of times.
 */
export const failedLimits = (
  latest: ReadonlyMap<number, { readonly status: string; readonly attempts: number }>,
  failedAtStart: ReadonlyMap<number, number>,
  retryFailed: boolean,
  maxAttempts: number
): Map<number, number> => {
  const limits = new Map<number, number>()
  for (const [index, e] of latest) {
    if (e.status !== "failed") continue
    const before = failedAtStart.get(index)
    limits.set(index, retryFailed && before !== undefined ? before + maxAttempts : e.attempts)
  }
  return limits
}

/** Sends the requests held back by a round as a follow-up batch. */
const submitDeferred = (
  runDir: string,
  run: BatchRun,
  deferred: ReadonlyMap<string, DeferredRequest>,
  limits: BatchLimits,
  budget: SubmitBudget | undefined
) =>
  Effect.gen(function*() {
    const all: Array<PreparedLine> = [...deferred.values()].map((d) => ({
      line: { custom_id: d.customId, method: "POST", url: endpointUrl(run.endpoint), body: d.body },
      inputTokens: d.inputTokens,
      tokens: d.inputTokens + run.llm.maxOutputTokens
    }))
    // --max-cost: the requests whose estimate fits beside what the run spent; the rest wait for a later round
    // or collect (none fits: `held`, and the collect ends them as over the budget).
    const { lines: taken, tally } = withinBudget(all, budget)
    const lines = [...taken]
    if (budget !== undefined && lines.length === 0) {
      return { run, reason: "", held: heldBackText(budget, tally, "requests") }
    }
    const next = yield* submitParts(runDir, run, lines, "follow-up", limits)
    const first = lines.filter((l) => isFirstAttemptKey(l.line.custom_id.slice(run.run_id.length + 1))).length
    const kinds = `${
      lines.length - first
    } repairs and new attempts, ${first} first attempts (sent again, or never sent)`
    const heldBack = budget !== undefined && tally.held > 0
      ? `; ${heldBackText(budget, tally, "requests")}: a later round or collect sends them as far as the budget allows`
      : ""
    const reason = `follow-up batch submitted: ${lines.length} requests (${kinds})${heldBack}`
    yield* Effect.logInfo(reason)
    return { run: next, reason, held: undefined }
  })

/**
 * The `--max-cost` of a follow-up batch: the ledger's total and the estimate of the batches still running, each
 * request's output as `--dry-run` expects it at the run's reasoning effort.
 */
const followUpBudget = (run: BatchRun, maxCostUsd: number | undefined, totals: LedgerTotals) => {
  if (maxCostUsd === undefined || totals.costUsd === undefined) return undefined
  const outputTokens = expectedOutputOf(run.llm.reasoningEffort)
  const running = runningEstimateUsd(run, outputTokens)
  return {
    maxCostUsd,
    committedUsd: totals.costUsd + running,
    committedText: `$${totals.costUsd.toFixed(4)} spent` +
      (running > 0 ? `, ~$${running.toFixed(4)} estimated for the batches still running` : ""),
    model: run.llm.model,
    outputTokens
  } satisfies SubmitBudget
}

/** The same checks as `skyrl validate` on what was written, as the online commands run them. */
const checkCollected = <J extends Job>(base: SamplingOptions<J>) =>
  Effect.gen(function*() {
    const maxPromptTokens = base.runSettings.max_prompt_tokens
    // Enrich keeps the source prompts verbatim (their size and duplicates are warnings); its plans are checked
    // against the inventory file as the online run checks them (its Inventory service), none with
    // --inventory-from-prompt (each row's own tools, validated at acceptance).
    if (base.command === "enrich") {
      const inventory = base.runSettings.input?.inventory_from_prompt === true
        ? undefined
        : yield* (yield* Inventory).get
      return yield* checkWrittenDataset(base.out, inventory, {
        warnOnly: enrichWarnOnly(base.runSettings),
        maxPromptTokens
      })
    }
    return yield* checkWrittenDataset(base.out, yield* (yield* Inventory).get, { maxPromptTokens })
  })

/**
 * Collects a batch run: see the module comment. The collect holds the run directory (its journal, lock and
 * cost ledger) for all its rounds, and reads batch.json once it holds the lock (a status that ran just
 * before may have created batches). Needs the online `Llm` (used only for requests that go online),
 * `BatchClient`, `Storage`, `Inventory` and `Progress`.
 */
export const collectRun = <J extends Job>(
  runDir: string,
  makeSampling: (catalogue: Catalogue) => SamplingOptions<J>,
  options: CollectOptions
) =>
  Effect.gen(function*() {
    const catalogue = yield* (yield* Inventory).get
    const base = makeSampling(catalogue)
    // The directory given, wherever it is now (runSpecOf joins the rawDir and run id recorded at submit time:
    // a run directory renamed or copied since would have its journal, archive and ledger made there again).
    const spec = {
      ...runSpecOf(base, base.command === "generate" ? catalogue : undefined),
      runDir,
      lockCommand: "batch collect"
    }
    return yield* collectRounds(runDir, base, options).pipe(Effect.provide(RunJournal.layer(spec)))
  })

/**
 * What one collect remembers across its rounds: why the budget left fits no request of a follow-up batch (the
 * next round then makes none), and what it has warned about already (files gone from the API, parts whose
 * requests requests.jsonl lacks, samples never sent), each said once per collect, not at every round.
 */
interface CollectMemory {
  held: string | undefined
  readonly goneFiles: Set<string>
  readonly restoredParts: Set<number>
  readonly toldNeverSent: Set<number>
  /** Whether the account's batches were looked through for parts batch.json lacks (once per collect). */
  lookedUp: boolean
}

const collectRounds = <J extends Job>(
  runDir: string,
  base: SamplingOptions<J>,
  options: CollectOptions
) =>
  Effect.gen(function*() {
    const inventory = yield* Inventory
    const journal = yield* RunJournal
    const ledger = yield* CostLedger
    let run = yield* readRun(runDir)
    // `--batch-max-tokens` given to collect replaces the run's (its queue rule and its follow-up parts).
    const maxTokens = Number.isFinite(options.limits.maxTokens) ? options.limits.maxTokens : null
    if (maxTokens !== null && maxTokens !== run.max_tokens) {
      run = { ...run, max_tokens: maxTokens }
      yield* writeRun(runDir, run)
    }
    // The samples failed before this collect (--retry-failed gives them --max-attempts more, once).
    const failedAtStart = new Map(
      [...(yield* journal.latest)].flatMap(([i, e]) => (e.status === "failed" ? [[i, e.attempts] as const] : []))
    )
    const memory: CollectMemory = {
      held: undefined,
      goneFiles: new Set(),
      restoredParts: new Set(),
      toldNeverSent: new Set(),
      lookedUp: false
    }
    for (;;) {
      run = options.wait ? yield* waitForRun(runDir, run, options.poll) : yield* refreshRun(runDir, run)
      if (!options.wait) yield* Effect.logInfo(statusLine(run))
      const downloaded = yield* download(runDir, run, memory.goneFiles)
      run = downloaded.run
      const answers = yield* loadAnswers(runDir, run, memory.restoredParts)
      const round = sortJobs(run, base, inventory, answers, yield* journal.latest, options.resubmit, downloaded.gone)
      if (round.neverSent.length > 0 && !memory.lookedUp) {
        // Samples no recorded part holds: before they are sent (and paid for) again, the account's batches of
        // this run for parts batch.json lacks are adopted, and the round made again with them.
        memory.lookedUp = true
        const customIds = round.neverSent.map((i) => `${base.runId}:${sampleKey(i, 1, "task")}`)
        const adopted = yield* adoptUnrecorded(runDir, run, yield* unrecordedParts(runDir, run, answers, customIds))
        if (adopted.parts.length > run.parts.length) {
          run = adopted
          continue
        }
      }
      yield* warnRound(round, options, memory)
      // A run with no sample to make (enrich rows that all have a plan) still writes the rows it copies.
      if (round.jobs.length === 0 && base.jobs.length > 0) return yield* nothingToMake(runDir, base, round)
      const failedAfter = failedLimits(
        yield* journal.latest,
        failedAtStart,
        options.retryFailed,
        base.maxAttemptsPerSample
      )
      const held = memory.held
      const outcome = yield* collectRound(runDir, run, base, answers, round.jobs, options, failedAfter, held).pipe(
        // batch.json keeps what went online at full price (the ledger has every call).
        Effect.ensuring(Effect.gen(function*() {
          const online = (yield* ledger.totals).onlineUsage
          if (online.input + online.output === run.online_usage.input + run.online_usage.output) return
          run = { ...run, online_usage: online }
          yield* writeRun(runDir, run).pipe(Effect.orDie)
        }))
      )
      if (outcome._tag === "deferred") {
        const budget = followUpBudget(run, options.maxCostUsd ?? base.maxCostUsd, yield* ledger.totals)
        const submitted = yield* submitDeferred(runDir, run, outcome.deferred, options.limits, budget)
        if (submitted.held !== undefined) {
          // Nothing sent: the round is made again, its requests refused by the budget, and ends as over it.
          memory.held = submitted.held
          continue
        }
        run = submitted.run
        if (options.wait) continue
        return yield* new BatchPending({ runDir, reason: submitted.reason })
      }
      return yield* finishCollect(runDir, base, run, round, outcome.result, options, memory.held)
    }
  })

/** A round's warnings: failed lines, samples never sent (each once per collect), samples with no answer. */
const warnRound = <J>(round: RoundJobs<J>, options: CollectOptions, memory: CollectMemory) =>
  Effect.gen(function*() {
    if (round.failedText !== "") {
      yield* Effect.logWarning(
        `batch lines failed: ${round.failedText}; transient failures are retried ${
          options.repairs === "online" ? "online (normal price)" : "in a follow-up batch"
        }, samples whose request was refused are made again (up to --max-attempts)`
      )
    }
    const newlyUnsent = round.neverSent.filter((i) => !memory.toldNeverSent.has(i))
    for (const i of newlyUnsent) memory.toldNeverSent.add(i)
    if (newlyUnsent.length > 0) {
      yield* Effect.logWarning(
        `${newlyUnsent.length} samples were never sent (the submission stopped before recording their part, or ` +
          "--max-cost held them back); sending them as a follow-up batch, as far as the budget allows"
      )
    }
    if (round.unanswered > 0) {
      yield* Effect.logWarning(
        `${round.unanswered} samples have no batch answer: ${round.unansweredText}${
          options.resubmit ? " (resubmitting them as a follow-up batch)" : ""
        }`
      )
    }
  })

/** A round with no sample to make: batches still running, or none of the samples has an answer. */
const nothingToMake = <J extends Job>(runDir: string, base: SamplingOptions<J>, round: RoundJobs<J>) =>
  Effect.gen(function*() {
    if (round.pending > 0) {
      return yield* new BatchPending({ runDir, reason: `${round.pending} requests are in batches still running` })
    }
    // No sample journaled, so no row written: an --out there is an earlier run's (the error says so).
    return yield* new IncompleteRun({
      made: 0,
      requested: base.jobs.length,
      output: base.out,
      reason: `none of the ${base.jobs.length} samples has a batch answer; run \`skyrl batch collect ${
        shellWord(runDir)
      } --resubmit\` to send them again`,
      earlierOut: yield* (yield* Storage).exists(base.out)
    })
  })

const isIncompleteRun = (e: { readonly _tag: string }): e is IncompleteRun => e._tag === "IncompleteRun"

/**
 * The end of a collect whose round made its samples: the journal settled (the manifest describes the whole run),
 * then the summary, or why the run is not complete (batches still running, samples with no answer, the engine's).
 */
const finishCollect = <J extends Job, E extends { readonly _tag: string }>(
  runDir: string,
  base: SamplingOptions<J>,
  run: BatchRun,
  round: RoundJobs<J>,
  result: Either.Either<SamplingSummary, E>,
  options: CollectOptions,
  /** Why the budget let no follow-up request go (`CollectMemory.held`): said with batches still running too. */
  held: string | undefined
) =>
  Effect.gen(function*() {
    const journal = yield* RunJournal
    const storage = yield* Storage
    const incomplete = (round.unanswered > 0 && !options.resubmit) || round.pending > 0
    yield* journal.settle(
      incomplete || Either.isLeft(result) ? "incomplete" : "completed",
      `openai batch ${run.llm.model}`
    )
    // The engine stopped short (IncompleteRun: reported with this round's reasons), or failed otherwise.
    const stopped = Either.isLeft(result) ? result.left : undefined
    if (stopped !== undefined && !isIncompleteRun(stopped)) return yield* Effect.fail(stopped)
    const made = stopped !== undefined ? stopped.made : Either.isRight(result) ? result.right.valid : 0
    if (round.pending > 0) {
      // No row yet: nothing was written, so an --out there is an earlier run's (said so, not "collected into").
      const collected = made === 0
        ? `collected no row yet; ${noDatasetWritten(base.out, yield* storage.exists(base.out), "this run")}`
        : `collected ${made} rows into ${base.out}`
      return yield* new BatchPending({
        runDir,
        reason: `${collected}; ${round.pending} requests are in batches still running${
          held === undefined ? "" : `; the samples never sent wait: ${held}`
        }`
      })
    }
    if (stopped !== undefined || (round.unanswered > 0 && !options.resubmit)) {
      const reasons = [
        ...(round.unanswered > 0
          ? [
            `${round.unanswered} samples have no batch answer (${round.unansweredText}); run \`skyrl batch collect ${
              shellWord(runDir)
            } --resubmit\` to send them again as a batch`
          ]
          : []),
        ...(stopped !== undefined ? [stopped.reason] : [])
      ]
      return yield* new IncompleteRun({
        made,
        requested: base.jobs.length,
        output: base.out,
        reason: reasons.join("; "),
        // No row: the round wrote none, so an --out there is an earlier run's (the error says so).
        ...(made === 0 ? { earlierOut: yield* storage.exists(base.out) } : {})
      })
    }
    yield* checkCollected(base)
    return {
      run,
      totals: yield* (yield* CostLedger).totals,
      sampling: Either.getOrUndefined(result),
      unanswered: round.unanswered,
      pending: round.pending
    } satisfies CollectSummary
  })
