/**
 * Execution verification inside the run engine (`generate --verify`, `enrich --verify`): the engine's
 * verify hook (acceptance.ts) filled from the Verifier. Each task that passed every other check runs its
 * plan on the live servers before it counts:
 *
 * - verified: the row is kept with `task_metadata.verification` (the record `skyrl verify` writes);
 * - tool-error: the model gets the tool's own error text once as a repair (`verificationRepairMessage`);
 *   a repaired plan that fails again rejects the attempt, and the sample is made again;
 * - timeout, skipped-side-effect: the attempt is rejected with the reason;
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
 */
import { Effect, Either, Schema } from "effect"
import type * as Scope from "effect/Scope"
import * as path from "node:path"
import type { StorageError } from "../domain/errors.js"
import type { SkyRLRow } from "../domain/row.js"
import { makeDurableLog, readLogEntries } from "../services/durableLog.js"
import { Storage } from "../services/Storage.js"
import { sideEffectIntent, toCompletion, Verifier } from "../services/Verifier.js"
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

/** One line of `verifications.jsonl`: the outcome of one answer's plan. */
export const VerificationLogEntry = Schema.Struct({
  sample: Schema.Number,
  attempt: Schema.Number,
  purpose: Schema.Literal("task", "repair"),
  /** sha256 of the canonical JSON of the plan as it ran (server, tool, params, derived params per step). */
  plan: Schema.String,
  record: Schema.optional(VerificationRecord),
  failure: Schema.optional(FailureFields)
})
export type VerificationLogEntry = typeof VerificationLogEntry.Type

type Outcome = Either.Either<VerificationRecord, VerificationFailed>

/** Which answer a row came from (its metadata), with its plan's hash; undefined for a row without that metadata. */
const answerOf = (row: SkyRLRow, steps: ReadonlyArray<VerifyStep>) => {
  const m = row.extra_info.task_metadata
  if (typeof m.sample_index !== "number" || typeof m.attempt !== "number") return undefined
  const plan = sha256Hex(canonicalJson(steps.map((s) => [s.server, s.tool, s.params, s.derivedParams])))
  const purpose = m.repaired === true ? "repair" as const : "task" as const
  return { sample: m.sample_index, attempt: m.attempt, purpose, plan }
}

const keyOf = (a: Pick<VerificationLogEntry, "sample" | "attempt" | "purpose" | "plan">) =>
  `${a.sample}/${a.attempt}/${a.purpose}/${a.plan}`

const outcomeOfEntry = (e: VerificationLogEntry): Outcome | undefined =>
  e.record !== undefined
    ? Either.right(e.record)
    : e.failure !== undefined
    ? Either.left(new VerificationFailed(e.failure))
    : undefined

/**
 * What the engine does with an outcome. An unreachable server stops the run when it happens; recorded
 * (`replayed`: a server lost after a side effect ran, judged again on --resume or by rebuild) it rejects
 * that answer only, so that the resumed run makes the sample again.
 */
const verdictOf = (row: SkyRLRow, outcome: Outcome, replayed = false): VerifyOutcome => {
  if (Either.isRight(outcome)) return { ok: true, row: withVerification(row, outcome.right) }
  const failure = outcome.left
  const reason = `verification ${failure.message}`
  if (isRepairable(failure)) return { ok: false, reason, repair: verificationRepairMessage(failure) }
  return { ok: false, reason, stop: !replayed && failure.status === "server-unavailable" }
}

/** The outcomes already in a run's log, by answer. */
const readLog = (file: string) =>
  Effect.gen(function*() {
    const entries = new Map<string, VerificationLogEntry>()
    const { torn } = yield* readLogEntries(file, VerificationLogEntry, (e) => entries.set(keyOf(e), e))
    return { entries, torn }
  })

/**
 * The hook of a run that verifies (Verifier in context): outcomes recorded in `<runDir>/verifications.jsonl`
 * are reused, the others are run and recorded.
 */
export const makeVerifyHook = (runDir: string): Effect.Effect<
  VerifyHook<unknown>,
  StorageError,
  Verifier | Storage | Scope.Scope
> =>
  Effect.gen(function*() {
    const verifier = yield* Verifier
    const file = verificationLogOf(runDir)
    const { entries, torn } = yield* readLog(file)
    const log = yield* makeDurableLog(file, undefined, { torn })
    const elsewhere = standingElsewhere(entries.values(), verifier.hasResult, verifier.sideEffect)
    if (elsewhere > 0) {
      yield* Effect.logWarning(resultsElsewhereWarning(elsewhere, (yield* verifier.report).cassettes.file))
    }
    const recorded = (key: string): Outcome | undefined => {
      const e = entries.get(key)
      return e !== undefined && outcomeStands(e, verifier.hasResult, verifier.sideEffect)
        ? outcomeOfEntry(e)
        : undefined
    }
    const run = (steps: ReadonlyArray<VerifyStep>, answer: ReturnType<typeof answerOf>) =>
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
          const entry: VerificationLogEntry = Either.isRight(outcome)
            ? { ...answer, record: outcome.right }
            : { ...answer, failure: failureFields(outcome.left) }
          yield* log.append(JSON.stringify(entry) + "\n", { wait: true })
          entries.set(keyOf(answer), entry)
        }
        return outcome
      })
    /** A plan with side effects runs to its recorded outcome even when interrupted (it would act twice on --resume). */
    const verifyNow = (steps: ReadonlyArray<VerifyStep>, answer: ReturnType<typeof answerOf>) =>
      steps.some(verifier.sideEffect) ? toCompletion(run(steps, answer)) : run(steps, answer)
    return (row: SkyRLRow) => {
      const steps = stepsOfRow(row)
      const answer = answerOf(row, steps)
      const known = answer === undefined ? undefined : recorded(keyOf(answer))
      return (known === undefined ? verifyNow(steps, answer) : Effect.succeed(known)).pipe(
        Effect.map((outcome) => verdictOf(row, outcome, known !== undefined)),
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
 * The hook of `rebuild`: the outcomes the run recorded, never a call (an answer without one is rejected,
 * as its row cannot be re-derived).
 */
export const recordedVerifyHook = (runDir: string): Effect.Effect<VerifyHook<unknown>, StorageError, Storage> =>
  Effect.map(readLog(verificationLogOf(runDir)), ({ entries }) => (row: SkyRLRow) => {
    const answer = answerOf(row, stepsOfRow(row))
    const entry = answer === undefined ? undefined : entries.get(keyOf(answer))
    const outcome = entry === undefined ? undefined : outcomeOfEntry(entry)
    return Effect.succeed<VerifyOutcome>(
      outcome === undefined
        ? { ok: false, reason: `no verification of this answer recorded in ${verificationLogOf(runDir)}` }
        : verdictOf(row, outcome, true)
    )
  })
