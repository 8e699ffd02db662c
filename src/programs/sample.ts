/**
 * The steps of one sample (see sampling.ts for the run around them), each an Effect.fnUntraced taking
 * the run's context (no tracing span: they run once per answer, and a span costs a stack capture each):
 *
 *   sample   the attempt loop: attempts until one is accepted, the attempts run out, or the run stops;
 *            then the sample's journal line (a row is journaled by the claim itself)
 *   attempt  one answer and, when the model can fix it, one repair of it
 *   call     one model call: the budget checked first, then every HTTP attempt archived (a fresh
 *            record in the session's archive log, or the archived one it was replayed from) and put in
 *            the cost ledger
 */
import { Cause, Effect, Either, Exit, Fiber, Ref } from "effect"
import type { StorageError } from "../domain/errors.js"
import type { AttemptRecord, LlmError, Usage } from "../domain/llm.js"
import { addUsage, emptyUsage, failureScope, InvalidOutput, isAnswerError, isRequestSpecific } from "../domain/llm.js"
import type { SkyRLRow } from "../domain/row.js"
import type { JournalEntry, RejectRecord } from "../domain/run.js"
import { sampleKey } from "../domain/run.js"
import type { ModelTask } from "../domain/task.js"
import { ModelTask as ModelTaskSchema } from "../domain/task.js"
import type { CostLedgerApi, RunStop } from "../services/CostLedger.js"
import { budgetReached } from "../services/CostLedger.js"
import type { InventoryApi } from "../services/Inventory.js"
import type { LlmApi, LlmMessage, LlmResult } from "../services/Llm.js"
import { archiveCallNameOf } from "../services/runArchive.js"
import type { RunJournalApi } from "../services/RunJournal.js"
import type { Acceptance } from "./acceptance.js"
import type { Job, SamplingOptions } from "./sampling.js"

/** Name of the task output schema sent with every request. */
export const TASK_SCHEMA_NAME = "skyrl_task"

export interface RunContext<J extends Job> {
  readonly options: SamplingOptions<J>
  readonly llm: LlmApi
  readonly journal: RunJournalApi
  readonly ledger: CostLedgerApi
  readonly acceptance: Acceptance<J>
  readonly inventoryOf: (job: J) => InventoryApi
  /** Why the run stopped starting calls (budget, a run-level error); undefined while it goes on. */
  readonly stop: Ref.Ref<RunStop | undefined>
  /** Whether any answer came back yet, and how many 400s of no known kind came before it. */
  readonly refusals: Ref.Ref<
    { readonly answered: boolean; readonly unexplained: number; readonly unreachable: number }
  >
  /**
   * The rows accepted in this session, by sample: the dataset is written from them instead of decoding
   * their journal lines again (a row's journal line is `encodeRow` of this very row).
   */
  readonly made: Map<number, SkyRLRow>
  /** Samples the answer source has no answer for (replay, rebuild): how many, and the first one's reason. */
  readonly unanswered: { count: number; reason: string | undefined }
  /** Paths in row metadata and rejects are relative to the output file's directory. */
  readonly relativeToOut: (file: string) => string
  /**
   * `--concurrency` permits, one held by each model call while its HTTP attempts run (the waits for its
   * archive and ledger writes come after): what the run sends at once. Handling an answer (checks, row,
   * journal) runs after the permit is given back, so the next request goes out while the answers of a
   * wave that came back together are handled.
   */
  readonly calls: Effect.Semaphore
  /**
   * The model calls not over yet, each with where it stands: a stop on a signal waits for those `sending`
   * (a request under way) and interrupts those `waiting` (for a rate-limit slot or a retry's backoff), which
   * then send nothing more (`stopWaitingCalls`).
   */
  readonly openCalls: Set<OpenCall>
}

/**
 * A model call under way: `waiting` before its first HTTP attempt and between a retryable failure and its
 * retry, `sending` while an HTTP attempt is under way, `ending` once an attempt came back with what the call
 * ends with (an answer or a final error).
 */
export interface OpenCall {
  state: "waiting" | "sending" | "ending"
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
}

/** The calls with a request under way (what a stop on a signal waits for). */
export const callsInFlight = <J extends Job>(ctx: RunContext<J>): number => {
  let n = 0
  for (const c of ctx.openCalls) if (c.state === "sending") n++
  return n
}

/** On a stop asked by a signal: the calls waiting to send (a rate-limit slot, a retry's backoff) end now. */
export const stopWaitingCalls = <J extends Job>(ctx: RunContext<J>): Effect.Effect<void> =>
  Effect.forEach(
    [...ctx.openCalls].filter((c) => c.state === "waiting" && c.fiber !== undefined),
    (c) => Fiber.interruptFork(c.fiber!),
    { discard: true }
  )

/** How one call ended, with the archived call (`<log>#<name>`) of its last HTTP attempt. */
interface Called {
  readonly result: Either.Either<LlmResult<ModelTask>, LlmError> | undefined
  readonly file: string | undefined
  readonly startedAt: string
  readonly usage: Usage
  /** An archive or ledger write that failed: the answer is not counted as made. */
  readonly storageError: StorageError | undefined
}

const isUnanswered = (result: Either.Either<unknown, LlmError>) =>
  Either.isLeft(result) && failureScope(result.left) === "unanswered"

/** Sets the run's stop reason (the first one wins); `budget` when it is `--max-cost`'s. */
const stopRun = <J extends Job>(ctx: RunContext<J>, reason: string, budget = false) =>
  Ref.update(ctx.stop, (s) => s ?? { reason, budget })

/** The budget, checked before every call (repairs included): at most the calls in flight overshoot it. */
const budgetLeft = <J extends Job>(ctx: RunContext<J>): Effect.Effect<boolean> =>
  Effect.flatMap(
    Ref.get(ctx.stop),
    (stop) =>
      stop !== undefined ? Effect.succeed(false) : Effect.flatMap(ctx.ledger.totals, (totals) => {
        const reached = budgetReached(ctx.options.maxCostUsd, totals)
        return reached === undefined ? Effect.succeed(true) : Effect.as(stopRun(ctx, reached, true), false)
      })
  )

/**
 * One model call (`callUnbounded`) under one of the run's call permits. The permit goes back when the HTTP
 * attempts end: the waits for their archive records and ledger lines to be on disk run after it (the
 * ledger's totals count each call before, so the next call's budget check sees it), and the answer is
 * used only once they are done.
 */
export const call = <J extends Job>(
  ctx: RunContext<J>,
  job: J,
  attempt: number,
  purpose: "task" | "repair",
  input: ReadonlyArray<LlmMessage>
) =>
  Effect.flatMap(
    ctx.calls.withPermits(1)(callUnbounded(ctx, job, attempt, purpose, input)),
    ({ durable, result, state }) =>
      Effect.map(
        durable.length === 1 ? durable[0]! : Effect.all(durable, { discard: true }),
        (): Called => ({ ...state, result })
      )
  )

/** What a call's HTTP attempts left, filled in as their records reach the disk. */
type CallState = { -readonly [K in keyof Omit<Called, "result">]: Called[K] }

const callUnbounded = Effect.fnUntraced(function*<J extends Job>(
  ctx: RunContext<J>,
  job: J,
  attempt: number,
  purpose: "task" | "repair",
  input: ReadonlyArray<LlmMessage>
) {
  // Written only by this call's own steps (its attempts, then their waits, one after the other).
  const state: CallState = { file: undefined, startedAt: "", usage: emptyUsage, storageError: undefined }
  // Per HTTP attempt, the wait for its records to be on disk (then noted in `state`); never fails.
  const durable: Array<Effect.Effect<void>> = []
  const failed = (e: StorageError) => Effect.sync(() => void (state.storageError ??= e))
  if (!(yield* budgetLeft(ctx))) return { state, durable, result: undefined }
  const key = sampleKey(job.index, attempt, purpose)
  const open: OpenCall = { state: "waiting", fiber: undefined }
  // Uninterruptible: a stop that interrupts the call (waiting for its retry) lands after both lines are queued.
  const onAttempt = (record: AttemptRecord) =>
    Effect.gen(function*() {
      // A retryable failure may be retried after a wait; anything else is what the call ends with.
      open.state = isRetryableStatus(record.status) ? "waiting" : "ending"
      const target = record.archived === undefined ? yield* ctx.journal.nextArchiveCall(job.index) : undefined
      // A batch answer's line names its batch, so the ledger counts that output line once (CostLedger.ts).
      const batchId = (record as { readonly batch_id?: unknown }).batch_id
      const ledgerLine = {
        key: target?.name ?? archiveCallNameOf(record.archived!),
        sample: job.index,
        attempt,
        purpose,
        status: record.status,
        model: record.model,
        batch: "batch_id" in record,
        ...(typeof batchId === "string" ? { batch_id: batchId } : {}),
        usage: record.usage ?? emptyUsage,
        at: record.startedAt,
        // A recorded answer (`--llm replay`) cost this run nothing. The run's own archived answers (resume,
        // rebuild) keep their price: the ledger counts each key once, and one whose line a crash lost was paid.
        replayed: record.backend === "replay"
      }
      // The cost is real whatever happens to the archive: its ledger line is queued (and counted) first and
      // written even when the archive write fails; both go out with the lines of other calls ending meanwhile.
      const ledgered = yield* ctx.ledger.enqueue(ledgerLine)
      const archived = target === undefined
        ? { file: record.archived!, durable: Effect.void }
        : yield* ctx.journal.enqueueArchive(job.index, target, {
          ...record,
          key,
          sample: job.index,
          sample_attempt: attempt,
          purpose
        })
      // Both lines are queued: the ledger's wait comes second, and its failure (when both fail) wins.
      durable.push(
        Effect.flatMap(Effect.either(archived.durable), (archiveWait) =>
          Effect.flatMap(Effect.either(ledgered), (ledgerWait) => {
            if (Either.isLeft(ledgerWait)) {
              return failed(ledgerWait.left)
            }
            if (Either.isLeft(archiveWait)) {
              return failed(archiveWait.left)
            }
            return Effect.sync(() => {
              state.file = archived.file
              state.startedAt = record.startedAt
              if (record.usage !== undefined) {
                state.usage = addUsage(state.usage, record.usage)
              }
            })
          }))
      )
    }).pipe(Effect.catchAll(failed), Effect.uninterruptible)
  const request = {
    name: TASK_SCHEMA_NAME,
    instructions: ctx.options.instructions,
    input,
    schema: ModelTaskSchema,
    jsonSchema: ctx.inventoryOf(job).outputJsonSchema({ maxSteps: ctx.options.maxTools }),
    key,
    onAttempt
  }
  // A run that cannot stop on a signal (rebuild, batch collect) calls in its own fiber, as it always did.
  if (ctx.options.stopOnSignal !== true) {
    return { state, durable, result: yield* Effect.either(ctx.llm.complete(request)) }
  }
  // After a stop on a signal no HTTP attempt starts: a call about to send one (its rate-limit slot come,
  // its retry's backoff over, a fallback's re-send) is interrupted instead, and ends having sent nothing more.
  const beforeSend = Effect.flatMap(
    Ref.get(ctx.stop),
    (stop) => stop?.signal !== undefined ? Effect.interrupt : Effect.sync(() => void (open.state = "sending"))
  )
  const fiber = yield* Effect.fork(ctx.llm.complete({ ...request, beforeSend }))
  open.fiber = fiber
  ctx.openCalls.add(open)
  const exit = yield* Fiber.await(fiber).pipe(Effect.ensuring(Effect.sync(() => void ctx.openCalls.delete(open))))
  // Interrupted by a stop while it waited to send: what it sent before (a 429) is archived; no result.
  if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) return { state, durable, result: undefined }
  const result = yield* Effect.either(exit)
  return { state, durable, result }
})

/** The statuses of the errors the Llm layers retry (`isRetryable`). */
const RETRYABLE: ReadonlySet<AttemptRecord["status"]> = new Set(["RateLimited", "Transient", "Timeout"])
const isRetryableStatus = (status: AttemptRecord["status"]): boolean => RETRYABLE.has(status)

/** 400s of no known kind before any answer: that many, and the request every sample sends is at fault. */
export const UNEXPLAINED_400_LIMIT = 3
/** Requests that got no HTTP answer at all after their retries, before any answer: that many, and the API is out of reach. */
export const UNREACHABLE_LIMIT = 3

/** A failure with no HTTP answer behind it (connection refused or reset, DNS, TLS), left after the retries. */
const unreachable = (e: LlmError): boolean => e._tag === "Transient" && e.httpStatus === undefined

/**
 * A 400 that names neither a per-request nor a run-level cause counts for its sample; but when the first
 * requests of a run all get one and nothing was answered yet, the request every sample sends is at fault:
 * the run stops instead of spending every sample's attempts on it. Likewise when the first requests all got no
 * HTTP answer at all after their retries (connection refused, DNS): the API is out of reach for every sample.
 */
const noteRefusal = <J extends Job>(ctx: RunContext<J>, result: Either.Either<unknown, LlmError>) => {
  const answered = Either.isRight(result) || isAnswerError(result.left)
  const unexplained = Either.isLeft(result) && result.left._tag === "BadRequest" &&
    failureScope(result.left) === "sample" && !isRequestSpecific(result.left)
  const unanswered = Either.isLeft(result) && unreachable(result.left)
  return Effect.flatMap(
    Ref.updateAndGet(ctx.refusals, (r) => ({
      answered: r.answered || answered,
      unexplained: r.unexplained + (unexplained ? 1 : 0),
      unreachable: r.unreachable + (unanswered ? 1 : 0)
    })),
    (next) =>
      next.answered || Either.isRight(result)
        ? Effect.void
        : unexplained && next.unexplained >= UNEXPLAINED_400_LIMIT
        ? stopRun(
          ctx,
          `the first ${next.unexplained} requests were all refused, so the request itself is at fault: ${result.left.message}`
        )
        : unanswered && next.unreachable >= UNREACHABLE_LIMIT
        ? stopRun(
          ctx,
          `the first ${next.unreachable} requests got no answer from the model API after their retries ` +
            `(${result.left.message}): it is out of reach from here, and every sample would wait the same way; ` +
            "check OPENAI_BASE_URL and the network"
        )
        : Effect.void
  )
}

const invalidOutputRepair = (e: InvalidOutput): string =>
  [
    "Your previous answer did not match the required JSON format. Problems:",
    ...e.issues.slice(0, 20).map((i) => `- ${i.path === "" ? "" : `${i.path}: `}${i.message}`),
    "Return the whole task again as one JSON object in the required format."
  ].join("\n")

/** Row metadata of an answer (the accepted call's start time comes from its archive record, as rebuild reads it). */
const metadataOf = <J extends Job>(
  ctx: RunContext<J>,
  job: J,
  attempt: number,
  repaired: boolean,
  answer: LlmResult<ModelTask>,
  called: Called
): Record<string, unknown> => ({
  source: ctx.options.command,
  model: answer.model,
  backend: answer.backend,
  run_id: ctx.journal.spec.runId,
  generated_at: called.startedAt,
  seed: ctx.options.seed,
  sample_index: job.index,
  attempt,
  repaired,
  ...ctx.options.jobMetadata(job, attempt),
  reasoning_tokens: answer.usage.reasoning,
  raw_output_path: called.file === undefined ? null : ctx.relativeToOut(called.file)
})

/** Everything a sample has done so far in this session (for its journal line). */
export interface SampleTally {
  readonly calls: number
  readonly usage: Usage
  readonly rejects: ReadonlyArray<RejectRecord>
}

/** A sample's tally, updated by its own steps only (one attempt at a time). */
interface Tally {
  current: SampleTally
}

export const attempt = Effect.fnUntraced(function*<J extends Job>(
  ctx: RunContext<J>,
  job: J,
  attemptNo: number,
  tally: Tally
) {
  // The sample's rejects so far in this session: re-judged the same way when answers are replayed.
  const history = tally.current.rejects
  let input: ReadonlyArray<LlmMessage> = [{
    role: "user",
    content: ctx.options.requestText(job, attemptNo, history)
  }]
  const reject = (
    reasons: ReadonlyArray<string>,
    file: string | undefined,
    avoid?: RejectRecord["avoid"]
  ): RejectRecord => ({
    index: job.index,
    attempt: attemptNo,
    reasons: [...reasons],
    raw_output_path: file === undefined ? null : ctx.relativeToOut(file),
    ...(avoid === undefined ? {} : { avoid })
  })
  for (let round = 0; round < 2; round++) {
    const called = yield* call(ctx, job, attemptNo, round === 0 ? "task" : "repair", input)
    tally.current = {
      ...tally.current,
      // A source with no answer for the request (replay, rebuild) made no call.
      calls: tally.current.calls + (called.result === undefined || isUnanswered(called.result) ? 0 : 1),
      usage: addUsage(tally.current.usage, called.usage)
    }
    if (called.result === undefined) {
      const reason = (yield* Ref.get(ctx.stop))?.reason ?? "stopped"
      return { _tag: "Stopped", reason, reject: undefined, called: round > 0 } as const
    }
    if (called.storageError !== undefined) {
      // A paid answer that could not be archived is not used: no row without its archive.
      const reason = `could not archive the answer: ${called.storageError.message}`
      return { _tag: "Stopped", reason, reject: reject([reason], called.file), called: true } as const
    }
    yield* noteRefusal(ctx, called.result)
    if (Either.isLeft(called.result)) {
      const e = called.result.left
      const scope = failureScope(e)
      if (scope === "unanswered") {
        return { _tag: "Stopped", reason: e.message, reject: undefined, called: round > 0, unanswered: true } as const
      }
      if (scope === "run") {
        yield* stopRun(ctx, e.message)
        return { _tag: "Stopped", reason: e.message, reject: reject([e.message], called.file), called: true } as const
      }
      if (e._tag === "InvalidOutput" && round === 0) {
        input = [...input, { role: "assistant", content: e.text }, { role: "user", content: invalidOutputRepair(e) }]
        continue
      }
      return { _tag: "Rejected", reject: reject([e.message], called.file) } as const
    }
    const answer = called.result.right
    const metadata = metadataOf(ctx, job, attemptNo, round === 1, answer, called)
    const judged = yield* ctx.acceptance.judge(job, job.index, answer.value, metadata)
    const verdict = judged._tag === "Accepted"
      ? yield* ctx.acceptance.claim(job.index, judged.row, (encoded) => journalRow(ctx, job, attemptNo, encoded, tally))
      : judged
    if (verdict._tag === "Accepted") {
      return { _tag: "Accepted", row: verdict.row, calls: tally.current.calls } as const
    }
    if (verdict._tag === "Reject" && verdict.stop === true) {
      const reason = verdict.reasons.join("; ")
      yield* stopRun(ctx, reason)
      return { _tag: "Stopped", reason, reject: reject(verdict.reasons, called.file), called: true } as const
    }
    if (verdict._tag === "Repair" && round === 0) {
      input = [...input, { role: "assistant", content: answer.text }, { role: "user", content: verdict.message }]
      continue
    }
    return {
      _tag: "Rejected",
      reject: reject(verdict.reasons, called.file, verdict._tag === "Reject" ? verdict.avoid : undefined),
      final: verdict._tag === "Reject" && verdict.final === true
    } as const
  }
  return yield* Effect.dieMessage("unreachable: an attempt ends within two rounds")
})

/** The journal line of an accepted row, encoded (queued inside the claim, so journal order is claim order). */
const journalRow = <J extends Job>(
  ctx: RunContext<J>,
  job: J,
  attemptNo: number,
  row: unknown,
  tally: Tally
) =>
  Effect.suspend(() => {
    const t = tally.current
    return ctx.journal.enqueue({
      index: job.index,
      status: "row",
      row,
      attempts: attemptNo,
      calls: t.calls,
      usage: t.usage,
      rejects: t.rejects
    })
  })

/**
 * Attempts per session: `--max-attempts` new ones on top of those an earlier session already made (an
 * attempt replayed from the archive is free and counted among those); in rebuild, those of the run.
 */
const attemptLimit = <J extends Job>(ctx: RunContext<J>, job: J, before: JournalEntry | undefined) =>
  ctx.options.failedAfter?.get(job.index) ?? (before?.attempts ?? 0) + ctx.options.maxAttemptsPerSample

export const sample = Effect.fnUntraced(function*<J extends Job>(
  ctx: RunContext<J>,
  job: J,
  before: JournalEntry | undefined
) {
  if ((yield* Ref.get(ctx.stop)) !== undefined) return
  const tally: Tally = { current: { calls: 0, usage: emptyUsage, rejects: [] } }
  const limit = attemptLimit(ctx, job, before)
  let attemptNo = 0
  let stopped: string | undefined
  let unanswered: string | undefined
  while (attemptNo < limit) {
    attemptNo++
    const outcome = yield* attempt(ctx, job, attemptNo, tally)
    if (outcome._tag === "Accepted") {
      ctx.made.set(job.index, outcome.row)
      if (ctx.options.onSampleDone !== undefined) {
        yield* ctx.options.onSampleDone(job, {
          status: "row",
          row: outcome.row,
          attempts: attemptNo,
          calls: outcome.calls
        })
      }
      return
    }
    if (outcome.reject !== undefined) {
      const r = outcome.reject
      tally.current = { ...tally.current, rejects: [...tally.current.rejects, r] }
      yield* Effect.logWarning(`sample ${job.index + 1} attempt ${r.attempt} rejected: ${r.reasons.join("; ")}`)
    }
    // A reject no other answer to the request would escape (AcceptanceOptions.finalRules): no further attempt.
    if (outcome._tag === "Rejected" && "final" in outcome && outcome.final) break
    if (outcome._tag === "Stopped") {
      stopped = outcome.reason
      if (outcome.unanswered === true) {
        unanswered = outcome.reason
        if (ctx.unanswered.count++ === 0) ctx.unanswered.reason = outcome.reason
      }
      if (!outcome.called) attemptNo--
      break
    }
  }
  const t = tally.current
  if (stopped !== undefined && t.calls === 0 && t.rejects.length === 0) {
    // Nothing spent: not journaled, so a later run asks again; the reason still reaches the caller.
    if (unanswered !== undefined && ctx.options.onSampleDone !== undefined) {
      yield* ctx.options.onSampleDone(job, { status: "failed", reasons: [unanswered], attempts: 0, calls: 0 })
    }
    return
  }
  const entry: JournalEntry = {
    index: job.index,
    status: stopped === undefined ? "failed" : "stopped",
    attempts: attemptNo,
    calls: t.calls,
    usage: t.usage,
    rejects: t.rejects
  }
  yield* ctx.journal.append(entry)
  if (ctx.options.onSampleDone !== undefined) {
    yield* ctx.options.onSampleDone(job, {
      status: "failed",
      reasons: t.rejects.flatMap((r) => r.reasons),
      attempts: attemptNo,
      calls: t.calls
    })
  }
})
