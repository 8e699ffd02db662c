/**
 * Execution verification inside the run engine (`generate --verify`, `enrich --verify`): the engine's
 * verify hook (acceptance.ts) filled from the Verifier. Each task that passed every other check runs its
 * plan on the live servers before it counts:
 *
 * - verified: the row is kept with `task_metadata.verification` (the record `skyrl verify` writes);
 * - tool-error: the model gets the tool's own error text once as a repair (`verificationRepairMessage`);
 *   a repaired plan that fails again rejects the attempt, and the sample is made again;
 * - timeout, skipped-side-effect: the attempt is rejected with the reason;
 * - a plan with a step too long to send (over the 10 MiB an MCP message may take): the attempt is rejected
 *   before anything runs, as `skyrl verify` refuses such a row at its contract stage;
 * - server-unavailable, or a verification that cannot be recorded: the run stops (it concerns every
 *   sample; what was made is kept).
 *
 * Every finished verification (verified, tool-error, or a timeout or lost server after a step with side
 * effects ran: as in `skyrl verify`'s journal) is appended to the
 * run directory's `verifications.jsonl` and on disk (with its cassette lines) before the hook returns,
 * under the answer it judged (sample, attempt, task or repair) and the hash of the plan. An answer judged
 * again — `--resume` replaying the archive after a crash, a failed sample's attempts replayed, `rebuild` —
 * takes its outcome from there and never runs its plan again (a verified outcome whose cassette lines are
 * missing, e.g. another `--cassettes` directory, runs again, as in `skyrl verify --resume`).
 *
 * The same plan in two answers (the same calls, derived params and depends_on: `outcome_key`) runs once in a
 * run, as the same row does in `skyrl verify`: an answer whose plan is running waits for its outcome, one
 * whose plan's final outcome is logged takes it, and each says so in its own log line (`outcome_of`) and
 * reject reason. A tool error is taken too: each answer still gets its own repair with the tool's text.
 */
import { Cause, Deferred, Effect, Either, Exit, FiberId, Option, Schema } from "effect"
import type * as Scope from "effect/Scope"
import * as path from "node:path"
import type { StorageError } from "../domain/errors.js"
import type { SkyRLRow } from "../domain/row.js"
import type { DurableLog } from "../services/durableLog.js"
import { makeDurableLog, readLogEntries, tailOf, warnSkippedLines } from "../services/durableLog.js"
import { Storage } from "../services/Storage.js"
import type { VerifierApi } from "../services/Verifier.js"
import { finishingNotice, sideEffectIntent, toCompletion, Verifier } from "../services/Verifier.js"
import { tooLongStep } from "../skyrl/callSize.js"
import { canonicalJson, sha256Hex } from "../skyrl/canonical.js"
import type { VerifyStep } from "../skyrl/verification.js"
import {
  FailureFields,
  failureFields,
  isFinalForResume,
  isRepairable,
  outcomeStands,
  resultsElsewhereWarning,
  standingElsewhere,
  VerificationFailed,
  VerificationRecord,
  verificationRepairMessage
} from "../skyrl/verification.js"
import type { VerifyHook, VerifyOutcome } from "./acceptance.js"
import { stepsOfRow, withVerification } from "./verify.js"

/** The run directory's log of finished verifications. */
export const verificationLogOf = (runDir: string) => path.join(runDir, "verifications.jsonl")

/** An answer: its sample, attempt and whether it is the task or its repair. */
const AnswerRef = Schema.Struct({
  sample: Schema.Number,
  attempt: Schema.Number,
  purpose: Schema.Literal("task", "repair")
})
type AnswerRef = typeof AnswerRef.Type

/** One line of `verifications.jsonl`: the outcome of one answer's plan. */
export const VerificationLogEntry = Schema.Struct({
  ...AnswerRef.fields,
  /** sha256 of the canonical JSON of the plan as it ran (server, tool, params, derived params per step). */
  plan: Schema.String,
  /**
   * sha256 of `plan` with each step's depends_on: what the outcome depends on (the calls; the derived params
   * and depends_on the record's `illustrative` and `derived_values_found` come from). Answers with the same
   * key share one verification. Absent from lines written before it existed (their outcomes are not shared).
   */
  outcome_key: Schema.optional(Schema.String),
  record: Schema.optional(VerificationRecord),
  failure: Schema.optional(FailureFields),
  /** The answer whose run gave this outcome: the plan ran once, for that answer, and not for this one. */
  outcome_of: Schema.optional(AnswerRef)
})
export type VerificationLogEntry = typeof VerificationLogEntry.Type

type Outcome = Either.Either<VerificationRecord, VerificationFailed>

/** Which answer a row came from (its metadata), with its plan's hash and outcome key; undefined without that metadata. */
const answerOf = (row: SkyRLRow, steps: ReadonlyArray<VerifyStep>) => {
  const m = row.extra_info.task_metadata
  if (typeof m.sample_index !== "number" || typeof m.attempt !== "number") return undefined
  const plan = sha256Hex(canonicalJson(steps.map((s) => [s.server, s.tool, s.params, s.derivedParams])))
  const outcome_key = sha256Hex(canonicalJson([plan, steps.map((s) => s.dependsOn ?? [])]))
  const purpose = m.repaired === true ? "repair" as const : "task" as const
  return { sample: m.sample_index, attempt: m.attempt, purpose, plan, outcome_key }
}
type Answer = NonNullable<ReturnType<typeof answerOf>>

const refOf = (a: AnswerRef): AnswerRef => ({ sample: a.sample, attempt: a.attempt, purpose: a.purpose })

/** An answer's plan as Ctrl-C names it (`finishingNotice`). */
const planName = (a: AnswerRef | undefined): string =>
  a === undefined
    ? "a plan"
    : `the plan of sample ${a.sample + 1}, attempt ${a.attempt}${a.purpose === "repair" ? " (its repair)" : ""}`

const keyOf = (a: Pick<VerificationLogEntry, "sample" | "attempt" | "purpose" | "plan">) =>
  `${a.sample}/${a.attempt}/${a.purpose}/${a.plan}`

/** The log line of an answer's final outcome. */
const entryOf = (answer: Answer, outcome: Outcome): VerificationLogEntry =>
  Either.isRight(outcome) ? { ...answer, record: outcome.right } : { ...answer, failure: failureFields(outcome.left) }

const outcomeOfEntry = (e: VerificationLogEntry): Outcome | undefined =>
  e.record !== undefined
    ? Either.right(e.record)
    : e.failure !== undefined
    ? Either.left(new VerificationFailed(e.failure))
    : undefined

/** A reject reason's note for an outcome taken from another answer (`of`) with the same plan. */
const takenNote = (of: AnswerRef) =>
  ` (not run again: the outcome of the same plan in sample ${of.sample + 1}, attempt ${of.attempt}` +
  `${of.purpose === "repair" ? ", its repair" : ""})`

/**
 * What the engine does with an outcome. An unreachable server stops the run when it happens; recorded
 * (`replayed`: a server lost after a side effect ran, judged again on --resume or by rebuild) it rejects
 * that answer only, so that the resumed run makes the sample again. `of`: the answer whose run gave it.
 */
const verdictOf = (row: SkyRLRow, outcome: Outcome, replayed = false, of?: AnswerRef): VerifyOutcome => {
  if (Either.isRight(outcome)) return { ok: true, row: withVerification(row, outcome.right) }
  const failure = outcome.left
  const reason = `verification ${failure.message}${of === undefined ? "" : takenNote(of)}`
  if (isRepairable(failure)) return { ok: false, reason, repair: verificationRepairMessage(failure) }
  return { ok: false, reason, stop: !replayed && failure.status === "server-unavailable" }
}

/**
 * An answer whose plan is not sent (`tooLongStep` of src/skyrl/callSize.ts, as `skyrl verify`'s contract stage
 * refuses its row: a step's tools/call request over the 10 MiB an MCP message may take over stdio, which the server
 * would refuse, exiting):
 * the attempt is rejected, nothing run or logged (judged again, it is refused again); undefined for any other.
 */
const unsendable = (row: SkyRLRow): VerifyOutcome | undefined => {
  const long = tooLongStep(row.reward_spec.ground_truth.tool_sequence)
  return long === undefined ? undefined : { ok: false, reason: `verification not run: ${long.field}: ${long.reason}` }
}

/**
 * A run's logged outcomes: the last line of each answer, and of each plan (`outcome_key`; the same objects,
 * so a distinct plan costs one map slot).
 */
class Logged {
  readonly byAnswer = new Map<string, VerificationLogEntry>()
  readonly byPlan = new Map<string, VerificationLogEntry>()
  keep(e: VerificationLogEntry): void {
    this.byAnswer.set(keyOf(e), e)
    if (e.outcome_key !== undefined) this.byPlan.set(e.outcome_key, e)
  }
  /** The lines of answers whose plan ran (not of those that took another answer's outcome). */
  *ran(): Generator<VerificationLogEntry> {
    for (const e of this.byAnswer.values()) if (e.outcome_of === undefined) yield e
  }
}

/** What becomes of the answers of log lines that are not readable, in a run and in `rebuild`. */
const SKIPPED_LINES = {
  run: "the answers whose outcome they held are verified again when judged, unless a later line holds it; a plan " +
    "with side effects whose earlier line (written before it acted) reads keeps that outcome, never run again",
  rebuild: "the answers whose outcome they held have none here, unless a later line holds it: their rows are not " +
    "rebuilt"
} as const

/** The outcomes already in a run's log, with a warning naming its lines that are not readable. */
const readLog = (file: string, reader: keyof typeof SKIPPED_LINES) =>
  Effect.gen(function*() {
    const logged = new Logged()
    const read = yield* readLogEntries(file, VerificationLogEntry, (e) => logged.keep(e))
    yield* warnSkippedLines(file, read, SKIPPED_LINES[reader])
    return { logged, tail: tailOf(read) }
  })

/** What an answer's outcome is: `of` the answer whose run gave it, when another; `replayed` when read from the log. */
interface Judged {
  readonly outcome: Outcome
  readonly replayed: boolean
  readonly of?: AnswerRef | undefined
}

/** A plan running for an answer (`of`): its outcome, or undefined when it did not end (interrupted) or died. */
interface Running {
  readonly of: AnswerRef
  readonly done: Deferred.Deferred<Outcome | undefined, StorageError>
}

type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** A run's end as its waiters take it: its outcome, its StorageError, or undefined (interrupted, died: look again). */
const releaseOf = (exit: Exit.Exit<Outcome, StorageError>): Exit.Exit<Outcome | undefined, StorageError> =>
  Exit.isSuccess(exit) || Option.isSome(Cause.failureOption(exit.cause)) ? exit : Exit.succeed(undefined)

/**
 * The hook of a run that verifies (Verifier in context): outcomes recorded in `<runDir>/verifications.jsonl`
 * are reused, the others are run and recorded; the same plan runs once (`planJudge`).
 */
export const makeVerifyHook = (runDir: string): Effect.Effect<
  VerifyHook<unknown>,
  StorageError,
  Verifier | Storage | Scope.Scope
> =>
  Effect.gen(function*() {
    const verifier = yield* Verifier
    const file = verificationLogOf(runDir)
    const { logged, tail } = yield* readLog(file, "run")
    const log = yield* makeDurableLog(file, undefined, tail)
    const elsewhere = standingElsewhere(logged.ran(), verifier.hasResult, verifier.sideEffect)
    if (elsewhere > 0) {
      yield* Effect.logWarning(resultsElsewhereWarning(elsewhere, (yield* verifier.report).cassettes.file))
    }
    // One per run: Ctrl-C says why it lets plans with side effects finish once, then names the others.
    const judge = planJudge(
      verifier,
      log,
      logged,
      finishingNotice(
        "--verify-timeout",
        "rejects that answer as interrupted and makes its sample again"
      )
    )
    return (row: SkyRLRow) => {
      const refused = unsendable(row)
      if (refused !== undefined) return Effect.succeed(refused)
      const steps = stepsOfRow(row)
      return judge(steps, answerOf(row, steps)).pipe(
        Effect.map((judged) => verdictOf(row, judged.outcome, judged.replayed, judged.of)),
        Effect.catchTag("StorageError", (e) =>
          Effect.succeed<VerifyOutcome>({
            ok: false,
            reason: `verification results could not be recorded: ${e.message}`,
            stop: true
          }))
      )
    }
  })

/**
 * How an answer's plan gets its outcome: the answer's own logged outcome (`--resume`, replayed attempts);
 * else that of the same plan (`outcome_key`) for another answer, waited for while it runs or taken from
 * its log line; else the plan runs and its outcome is recorded. Memory: the plans running, and one map slot
 * per distinct plan logged (`Logged`).
 */
const planJudge = (
  verifier: VerifierApi,
  log: DurableLog,
  logged: Logged,
  /** What Ctrl-C says of a plan it lets finish: the run's `finishingNotice`. */
  finishing: (plan: string) => string
) => {
  const standing = (e: VerificationLogEntry | undefined) =>
    e !== undefined && outcomeStands(e, verifier.hasResult, verifier.sideEffect) ? outcomeOfEntry(e) : undefined
  /** A line on disk before it returns, and kept. */
  const record = (entry: VerificationLogEntry) =>
    Effect.map(log.append(JSON.stringify(entry) + "\n", { wait: true }), () => logged.keep(entry))
  const run = (steps: ReadonlyArray<VerifyStep>, answer: Answer | undefined) =>
    Effect.gen(function*() {
      // Before the first step with side effects is sent, the log says it may act (`interruptedAt`): a run
      // killed after that never verifies the answer again on --resume. The outcome then always follows it.
      const intent = answer === undefined
        ? undefined
        : sideEffectIntent((failure) => log.append(JSON.stringify({ ...answer, failure }) + "\n", { wait: true }))
      const outcome: Outcome = yield* verifier.verify(steps, { beforeSideEffect: intent?.beforeSideEffect }).pipe(
        Effect.map(Either.right),
        Effect.catchTag("VerificationFailed", (f) => Effect.succeed(Either.left(f)))
      )
      // Final: verified, a tool error, or a failure after a side effect ran (running it again would act twice).
      if (answer !== undefined && (intent?.written() || isFinalForResume(outcome))) {
        yield* record(entryOf(answer, outcome))
      }
      return outcome
    })
  /** A plan with side effects runs to its recorded outcome even when interrupted (it would act twice on --resume). */
  const verifyNow = (
    steps: ReadonlyArray<VerifyStep>,
    answer: Answer | undefined
  ): Effect.Effect<Judged, StorageError> =>
    Effect.map(
      steps.some(verifier.sideEffect)
        ? toCompletion(run(steps, answer), () => finishing(planName(answer)))
        : run(steps, answer),
      (outcome) => ({ outcome, replayed: false })
    )
  const running = new Map<string, Running>()
  /**
   * The answer's plan, run (`restore`: interruptible again), registered now, in the same step as the
   * look-ups that found no other run of it: answers with the same plan that come meanwhile wait for its end.
   */
  const runFirst = (steps: ReadonlyArray<VerifyStep>, answer: Answer, restore: Restore) => {
    const done = Deferred.unsafeMake<Outcome | undefined, StorageError>(FiberId.none)
    running.set(answer.outcome_key, { of: refOf(answer), done })
    return Effect.onExit(restore(verifyNow(steps, answer)), (exit) => {
      running.delete(answer.outcome_key)
      return Deferred.done(done, releaseOf(Exit.map(exit, (j) => j.outcome)))
    })
  }
  /** Another answer's (`of`) outcome as this answer's: logged under it when final, saying whose it is. */
  const take = (answer: Answer, outcome: Outcome, of: AnswerRef, replayed: boolean) => {
    const judged: Judged = { outcome, replayed, of }
    return isFinalForResume(outcome)
      ? Effect.as(record({ ...entryOf(answer, outcome), outcome_of: of }), judged)
      : Effect.succeed(judged)
  }
  /** The outcome of the same plan for another answer: waited for while it runs, or its standing log line. */
  const fromOther = (steps: ReadonlyArray<VerifyStep>, answer: Answer) => {
    const other = running.get(answer.outcome_key)
    if (other !== undefined) {
      // Undefined: that run did not end (interrupted): look again (its logged outcome, or run it).
      return Effect.flatMap(
        Deferred.await(other.done),
        (o) => o === undefined ? judge(steps, answer) : take(answer, o, other.of, false)
      )
    }
    const last = logged.byPlan.get(answer.outcome_key)
    const outcome = standing(last)
    return outcome === undefined ? undefined : take(answer, outcome, last!.outcome_of ?? refOf(last!), true)
  }
  const judge = (steps: ReadonlyArray<VerifyStep>, answer: Answer): Effect.Effect<Judged, StorageError> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const own = logged.byAnswer.get(keyOf(answer))
        const outcome = standing(own)
        if (outcome !== undefined) return Effect.succeed({ outcome, replayed: true, of: own!.outcome_of })
        const other = fromOther(steps, answer)
        return other !== undefined ? restore(other) : runFirst(steps, answer, restore)
      })
    )
  return (steps: ReadonlyArray<VerifyStep>, answer: Answer | undefined) =>
    answer === undefined ? verifyNow(steps, undefined) : judge(steps, answer)
}

/**
 * The hook of `rebuild`: the outcomes the run recorded, never a call (an answer without one is rejected,
 * as its row cannot be re-derived).
 */
export const recordedVerifyHook = (runDir: string): Effect.Effect<VerifyHook<unknown>, StorageError, Storage> =>
  Effect.map(readLog(verificationLogOf(runDir), "rebuild"), ({ logged }) => (row: SkyRLRow) => {
    const refused = unsendable(row)
    if (refused !== undefined) return Effect.succeed(refused)
    const answer = answerOf(row, stepsOfRow(row))
    const entry = answer === undefined ? undefined : logged.byAnswer.get(keyOf(answer))
    const outcome = entry === undefined ? undefined : outcomeOfEntry(entry)
    return Effect.succeed<VerifyOutcome>(
      outcome === undefined
        ? { ok: false, reason: `no verification of this answer recorded in ${verificationLogOf(runDir)}` }
        : verdictOf(row, outcome, true, entry?.outcome_of)
    )
  })
