/**
 * Acceptance: the one place that judges a model's task for a run — online runs, answers replayed from
 * the archive on resume, `rebuild` and batch collect all come through here, so they cannot disagree.
 *
 *   decode (the Llm layer, with the output Schema)
 *   → plan: steps decoded against the job's inventory, validated (tools, params, call budget, placeholders)
 *   → convert: toSkyRLSample with the run's metadata
 *   → every row check `skyrl validate` runs (src/skyrl/checks.ts: contract, plan, prompt tokens, Arrow
 *     hazards, duplicates, ... — a rule added there applies here with no change), against the rows
 *     accepted before it
 *   → verify (optional hook: execution on live servers, `generate --verify`)
 *   → claim: the row checks run again, then the near-duplicate gate (duplicateGate.ts: MinHash over user
 *     prompts and identical plans, when the run has one), and the row is kept, together with its journal
 *     line, in one atomic step, so two samples racing with the same prompt cannot both be accepted.
 * A failure the model can fix (a plan problem, a prompt over the token budget, a verification failure
 * with a repair message) is a `Repair`; one it cannot (a duplicate) is a `Reject`, which for a duplicate
 * carries what the sample's next request should avoid (the earliest accepted task it duplicates); one no
 * other answer to the same request would escape (`finalRules`: enrich's plan leak) is a `final` Reject.
 */
import { Effect, Either } from "effect"
import { formatIssue } from "../domain/inventory.js"
import type { StepIssue } from "../domain/inventory.js"
import type { SkyRLRow } from "../domain/row.js"
import type { AvoidNote } from "../domain/run.js"
import type { ModelTask } from "../domain/task.js"
import type { InventoryApi } from "../services/Inventory.js"
import type { CheckOptions, Finding } from "../skyrl/checks.js"
import { DatasetChecker, defaultSeverity } from "../skyrl/checks.js"
import type { RowSettings } from "../skyrl/convert.js"
import { convertTask } from "../skyrl/convert.js"
import type { GateMatch } from "../skyrl/duplicateGate.js"
import { DuplicateGate } from "../skyrl/duplicateGate.js"
import { encodeRow } from "../skyrl/layout.js"
import type { PlanStep } from "../skyrl/planValidation.js"
import { planIssues } from "./runFiles.js"

/** What execution verification says about a row (`generate --verify`: src/programs/verifyHook.ts). */
export type VerifyOutcome =
  /** `row`: the row to keep (e.g. with its verification record); absent, the row as judged. */
  | { readonly ok: true; readonly row?: SkyRLRow | undefined }
  | {
    readonly ok: false
    readonly reason: string
    /** Sent back to the model when it can fix the problem; absent, the attempt is rejected. */
    readonly repair?: string | undefined
    /** The failure concerns every sample (a server that cannot be reached): the run stops. */
    readonly stop?: boolean | undefined
  }

/** Runs a row's plan (e.g. against live MCP servers) before the row is accepted. */
export type VerifyHook<J> = (row: SkyRLRow, job: J) => Effect.Effect<VerifyOutcome>

export type Verdict =
  | { readonly _tag: "Accepted"; readonly row: SkyRLRow }
  /** Ask the model again with `message` (once per attempt). */
  | { readonly _tag: "Repair"; readonly reasons: ReadonlyArray<string>; readonly message: string }
  | {
    readonly _tag: "Reject"
    readonly reasons: ReadonlyArray<string>
    /** A duplicate: the accepted task the sample's next request should steer off. */
    readonly avoid?: AvoidNote | undefined
    /** The reason concerns every sample (the run stops). */
    readonly stop?: boolean | undefined
    /** No other answer to this request would do (`AcceptanceOptions.finalRules`): the sample fails now. */
    readonly final?: boolean | undefined
  }

export interface AcceptanceOptions<J> {
  readonly taskInput: (job: J, task: ModelTask, steps: ReadonlyArray<PlanStep>) => unknown
  /** What this job's request asked of the plan (e.g. its complexity): each problem is repaired like a plan's. */
  readonly jobPlanIssues?: ((job: J, steps: ReadonlyArray<PlanStep>) => ReadonlyArray<string>) | undefined
  readonly inventoryOf: (job: J) => InventoryApi
  readonly dataSource: string
  /** The prompt budget and `Today is` date every row is made with. */
  readonly rowSettings: RowSettings
  readonly maxTools: number
  /** The row checks (`inventory`: plans are checked against it too; `maxPromptTokens`: the budget). */
  readonly checks: CheckOptions
  /** Rule-id prefixes that only warn (enrich keeps the source's prompts: their size and duplicates). */
  readonly warnOnly: ReadonlyArray<string>
  /**
   * Rule-id prefixes whose failure no answer to the same request can fix (enrich: `prompt/plan-leak`, where the
   * tools a row offers are its source prompt's): the attempt is rejected with `hint` after its reasons, and the
   * sample fails without a repair or another attempt. Undefined: none.
   */
  readonly finalRules?: { readonly prefixes: ReadonlyArray<string>; readonly hint: string } | undefined
  readonly verify?: VerifyHook<J> | undefined
  /** The near-duplicate gate's threshold (undefined: no gate). */
  readonly nearDuplicates?: { readonly threshold: number } | undefined
}

/** Rules whose failure the model cannot fix by repairing this answer: the attempt is rejected. */
const NOT_REPAIRABLE = ["duplicate/"]

const describeFinding = (f: Finding): string => `${f.rule} ${f.field}: ${f.message}`

const checksRepair = (findings: ReadonlyArray<Finding>): string =>
  [
    "The row made from your previous answer fails these checks:",
    ...findings.map((f) => `- ${describeFinding(f)}`),
    "Return the whole task again in the same JSON format with these problems fixed (for a prompt over the " +
    "token budget, write a shorter user_prompt)."
  ].join("\n")

const genericRepair = (reasons: ReadonlyArray<string>): string =>
  `Your previous answer had problems:\n${reasons.map((r) => `- ${r}`).join("\n")}\n` +
  "Return the whole task again in the same JSON format with these problems fixed."

export interface Acceptance<J> {
  /** Plan, conversion, row checks (without keeping the row) and verification: a candidate row or why not. */
  readonly judge: (job: J, index: number, task: ModelTask, metadata: Record<string, unknown>) => Effect.Effect<Verdict>
  /**
   * Checks the row against every row accepted so far and, when it passes, keeps it and runs `commit` (with
   * the row as encoded for disk) in the same atomic step (the journal line takes its place in the file
   * there); the effect `commit` returns (the wait for that line to be on disk) runs after the step. Fails
   * only when that fails.
   */
  readonly claim: <E>(
    index: number,
    row: SkyRLRow,
    commit: (encoded: unknown) => Effect.Effect<Effect.Effect<void, E>>
  ) => Effect.Effect<Verdict, E>
  /** Rows accepted before this session (or written without a model call): kept without judging. */
  readonly seed: (index: number, encoded: unknown) => void
}

export const makeAcceptance = <J>(options: AcceptanceOptions<J>): Effect.Effect<Acceptance<J>> =>
  Effect.gen(function*() {
    const checker = new DatasetChecker(options.checks)
    checker.beginFile("accepted")
    const mutex = yield* Effect.makeSemaphore(1)
    // A finding blocks when its rule is an error here (checks.severity, else the rule's own) and not warn-only.
    const severityOf = (f: Finding) => options.checks.severity?.[f.rule] ?? defaultSeverity(f.rule)
    const warned = (f: Finding) => severityOf(f) === "warning" || options.warnOnly.some((p) => f.rule.startsWith(p))
    const blocking = (findings: ReadonlyArray<Finding>) => findings.filter((f) => !warned(f))
    const schemas = new Map(
      (options.checks.inventory?.servers ?? []).flatMap((s) =>
        s.tools.map((t) => [`${s.name}/${t.name}`, t.inputSchema])
      )
    )
    const gate = options.nearDuplicates === undefined
      ? undefined
      : new DuplicateGate(options.nearDuplicates.threshold, (server, tool) => schemas.get(`${server}/${tool}`))

    /** The verdict on a row's near-duplicate matches (undefined: it passes, or they only warn). */
    const onDuplicates = (matches: ReadonlyArray<GateMatch>): Verdict | undefined => {
      const failing = matches.filter((m) => !options.warnOnly.some((p) => m.rule.startsWith(p)))
      return failing.length === 0
        ? undefined
        : { _tag: "Reject", reasons: failing.map((m) => m.reason), avoid: failing[0].avoid }
    }

    /** A duplicate rejected by the row checks (identical prompts) names what to avoid too, when the gate knows. */
    const withAvoid = (verdict: Verdict, encoded: unknown): Verdict =>
      verdict._tag !== "Reject" || verdict.avoid !== undefined || gate === undefined ||
        !verdict.reasons.some((r) => r.startsWith("duplicate/"))
        ? verdict
        : { ...verdict, avoid: gate.test(encoded).matches[0]?.avoid }

    /** The verdict on a row's findings (undefined: it passes). */
    const onFindings = (findings: ReadonlyArray<Finding>): Verdict | undefined => {
      const failing = blocking(findings)
      if (failing.length === 0) return undefined
      const reasons = failing.map(describeFinding)
      const final = options.finalRules
      if (final !== undefined && failing.some((f) => final.prefixes.some((p) => f.rule.startsWith(p)))) {
        return { _tag: "Reject", reasons: [...reasons, final.hint], final: true }
      }
      return failing.some((f) => NOT_REPAIRABLE.some((p) => f.rule.startsWith(p)))
        ? { _tag: "Reject", reasons }
        : { _tag: "Repair", reasons, message: checksRepair(failing) }
    }

    const planVerdict = (job: J, task: ModelTask): Either.Either<ReadonlyArray<PlanStep>, Verdict> => {
      const inventory = options.inventoryOf(job)
      const repair = (issues: ReadonlyArray<StepIssue>, reasons: ReadonlyArray<string>): Verdict => ({
        _tag: "Repair",
        reasons,
        message: inventory.repairMessage(issues)
      })
      const steps = inventory.decodeSteps(task.tool_sequence)
      if (Either.isLeft(steps)) return Either.left(repair(steps.left, steps.left.map(formatIssue)))
      const problems = planIssues(steps.right, { maxTools: options.maxTools }, inventory.validatePlan)
      if (problems.length > 0) {
        return Either.left(repair(problems.map((p) => p.issue), problems.map((p) => p.text)))
      }
      const asked = options.jobPlanIssues?.(job, steps.right) ?? []
      if (asked.length > 0) return Either.left({ _tag: "Repair", reasons: asked, message: genericRepair(asked) })
      return Either.right(steps.right)
    }

    /** Plan and conversion: the row, or the verdict on why not. */
    const judgeRow = (job: J, task: ModelTask, metadata: Record<string, unknown>): Either.Either<SkyRLRow, Verdict> => {
      const steps = planVerdict(job, task)
      if (Either.isLeft(steps)) return Either.left(steps.left)
      const converted = convertTask(options.taskInput(job, task, steps.right), {
        dataSource: options.dataSource,
        inventory: options.inventoryOf(job).inventory,
        ...options.rowSettings,
        metadata
      })
      if (Either.isLeft(converted)) {
        const reasons = [converted.left.message]
        return Either.left({ _tag: "Repair", reasons, message: genericRepair(reasons) })
      }
      return Either.right(converted.right)
    }

    const verifyRow = (job: J, index: number, row: SkyRLRow) =>
      Effect.gen(function*() {
        // With verification, the cheap checks first (nothing kept), so a row that fails them is not executed.
        const encoded = encodeRow(row)
        const early = onFindings(checker.check(index, encoded, { keep: false })) ??
          onDuplicates(gate?.test(encoded).matches ?? [])
        if (early !== undefined) return early
        const verified = yield* options.verify!(row, job)
        if (verified.ok) return { _tag: "Accepted", row: verified.row ?? row } satisfies Verdict
        return verified.repair === undefined
          ? { _tag: "Reject", reasons: [verified.reason], stop: verified.stop } satisfies Verdict
          : { _tag: "Repair", reasons: [verified.reason], message: verified.repair } satisfies Verdict
      })

    const judge = (job: J, index: number, task: ModelTask, metadata: Record<string, unknown>) =>
      Effect.suspend((): Effect.Effect<Verdict> => {
        const judged = judgeRow(job, task, metadata)
        if (Either.isLeft(judged)) return Effect.succeed(judged.left)
        if (options.verify === undefined) return Effect.succeed({ _tag: "Accepted", row: judged.right })
        return verifyRow(job, index, judged.right)
      })

    /**
     * The claim's atomic step (under the mutex): the row checks against every row kept so far, the gate,
     * and, when the row passes, keeping it and queueing its journal line (`commit`).
     */
    const claimStep = <E>(
      index: number,
      row: SkyRLRow,
      commit: (encoded: unknown) => Effect.Effect<Effect.Effect<void, E>>
    ): Effect.Effect<{ readonly verdict: Verdict; readonly durable: Effect.Effect<void, E> }> =>
      Effect.suspend(() => {
        const encoded = encodeRow(row)
        // The gate runs only when the row checks pass (inside `keep`, so the checker keeps the row only
        // when the gate lets it through too).
        let dup: ReturnType<DuplicateGate["test"]> | undefined
        const findings = checker.check(index, encoded, {
          keep: (found) => {
            if (blocking(found).length > 0) return false
            dup = gate?.test(encoded)
            return onDuplicates(dup?.matches ?? []) === undefined
          }
        })
        const verdict = onFindings(findings) ?? onDuplicates(dup?.matches ?? [])
        if (verdict !== undefined) {
          return Effect.succeed({
            verdict: withAvoid(verdict, encoded),
            durable: Effect.void as Effect.Effect<void, E>
          })
        }
        dup?.keep(index)
        // Warn-only findings (enrich's source prompts) are summed up by the final check of the written file;
        // near-duplicates are not among its checks, so they are warned about here.
        const logs = [
          ...findings.map((f) => Effect.logDebug(`sample ${index + 1}: ${describeFinding(f)}`)),
          ...(dup?.matches ?? []).map((m) => Effect.logWarning(`sample ${index + 1}: ${m.reason}`))
        ]
        const accepted: Verdict = { _tag: "Accepted", row }
        const committed = Effect.map(commit(encoded), (durable) => ({ verdict: accepted, durable }))
        return logs.length === 0 ? committed : Effect.zipRight(Effect.all(logs, { discard: true }), committed)
      })

    const claim = <E>(
      index: number,
      row: SkyRLRow,
      commit: (encoded: unknown) => Effect.Effect<Effect.Effect<void, E>>
    ) =>
      Effect.flatMap(
        mutex.withPermits(1)(claimStep(index, row, commit)),
        (claimed) => Effect.as(claimed.durable, claimed.verdict)
      )

    return {
      judge,
      claim,
      seed: (index, encoded) => {
        checker.check(index, encoded, { keep: true })
        gate?.test(encoded).keep(index)
      }
    } satisfies Acceptance<J>
  })
