/**
 * Verifier: runs one plan's steps in order on the live servers (McpServers), records every tool result
 * in the cassettes (Cassettes), and returns the verification record, or a VerificationFailed saying
 * why the plan did not verify (with the tool's own error text for `tool-error`; see
 * `verificationRepairMessage` for the text a model gets to repair it).
 *
 * This is the piece the run engine calls for `generate --verify` / `enrich --verify`, and what
 * `skyrl verify` calls per row:
 *
 *     const verifier = yield* Verifier
 *     const outcome = yield* Effect.either(verifier.verify(toVerifySteps(planSteps)))
 *     // Right(record): keep it (e.g. task_metadata.verification); Left(failure): when
 *     // isRepairable(failure), send verificationRepairMessage(failure) to the model once
 *     // (src/skyrl/verification.ts); otherwise reject the sample with failure.message.
 *
 * with `Verifier.live({ inventory, allowSideEffects, specs, unavailable, cassettesDir, timeout })` provided
 * (it needs McpClient and Storage; `specsForInventory` in src/skyrl/serverSpecs.ts gives specs/unavailable).
 *
 * - Side effects are opt-in: a step whose tool is not annotated `readOnlyHint: true` by both the inventory
 *   and the live server's tools/list (once per start) runs only when allowed (`--allow-side-effects`);
 *   otherwise nothing of the plan runs (`skipped-side-effect`).
 * - Derived params run with their illustrative values; their results are recorded `illustrative: true`.
 * - A server that goes away during a call is restarted (McpServers) and the plan runs again from its
 *   first step, once; a second loss makes it `server-unavailable`.
 */
import { Context, Duration, Effect, Either, Fiber, Layer } from "effect"
import type { StorageError } from "../domain/errors.js"
import type { Inventory } from "../domain/inventory.js"
import { makeEntry } from "../skyrl/cassettes.js"
import { derivedValuesFoundBySteps, policyText, rowFound } from "../skyrl/grounding.js"
import type { AllowList, FailureFields, VerificationRecord, VerifyStep } from "../skyrl/verification.js"
import {
  allowed,
  blockedSteps,
  failureFields,
  interruptedAt,
  liveMissingToolFailure,
  liveSideEffectFailure,
  notListedNowFailure,
  recordStep,
  resultText,
  sideEffectByInventory,
  sideEffectFailure,
  VerificationFailed,
  verifiedRecord,
  withDerivedFound
} from "../skyrl/verification.js"
import type { CassettesLocked, CassetteStoreCounts } from "./Cassettes.js"
import { Cassettes } from "./Cassettes.js"
import type { McpCallError, McpClient, McpServerSpec } from "./McpClient.js"
import type { BeginOptions, CallAnswer, NotListedReadOnly, ServerState, ServerUnavailableError } from "./McpServers.js"
import { McpServers } from "./McpServers.js"
import type { Storage } from "./Storage.js"

export interface VerifyOptions {
  /**
   * Return only once the plan's cassette lines are on disk (default true); with false they are written in
   * the background (`flush` waits for them).
   */
  readonly durable?: boolean
  /**
   * Done (e.g. a journal line on disk saying that the step may act: `interruptedAt`) before the call of the
   * plan's first step with side effects is sent, and again should the plan run again on a restarted server.
   */
  readonly beforeSideEffect?: BeforeSideEffect
}

export interface VerifierApi {
  readonly verify: (
    steps: ReadonlyArray<VerifyStep>,
    options?: VerifyOptions
  ) => Effect.Effect<VerificationRecord, VerificationFailed | StorageError>
  /**
   * The plan started now (its first call is sent before this returns when its server is up, so the caller's
   * next work overlaps the server's), for a caller that has more to send before it records the outcome:
   * the Effect (run it once) runs the plan up to its last answer (or first tool error) and gives the
   * `Finish` that records that answer in the cassettes and makes the outcome when called. A failure before
   * the last answer (timeout, protocol error, server unavailable, side effects not allowed) fails it. Not
   * durable: `flush` waits for the cassette lines.
   */
  readonly begin: (steps: ReadonlyArray<VerifyStep>) => Effect.Effect<Finish, VerificationFailed>
  /** The steps that would be skipped for their side effects (nothing runs). */
  readonly blocked: (steps: ReadonlyArray<VerifyStep>) => ReadonlyArray<VerifyStep>
  /**
   * Starts these servers now (before anything is paid for, e.g. `generate --verify`): the ones that
   * cannot start, each with its reason (empty: all up).
   */
  readonly start: (servers: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<ServerUnavailableError>>
  /** Whether the cassettes hold a result under this key. */
  readonly hasResult: (key: string) => boolean
  /**
   * Whether a step's tool has side effects: not annotated `readOnlyHint: true` in the inventory, or (once
   * its server started) in the server's tools/list.
   */
  readonly sideEffect: (step: { readonly server: string; readonly tool: string }) => boolean
  /** Waits until every recorded result is on disk. */
  readonly flush: Effect.Effect<void, StorageError>
  /** The servers used so far (version, starts, why unavailable) and the cassette store's counts. */
  readonly report: Effect.Effect<VerifierReport>
}

/**
 * The end of a plan that ran (`begin`): records its last answer and gives the outcome, with what
 * starts the cassettes' background writer when it is not running (run it). Call it once.
 */
export type Finish = () => {
  readonly outcome: Either.Either<VerificationRecord, VerificationFailed>
  readonly kick: Effect.Effect<void>
}

export interface VerifierReport {
  readonly servers: ReadonlyArray<ServerState>
  readonly cassettes: { readonly file: string } & CassetteStoreCounts
}

export interface VerifierSettings {
  /** The catalogue the plans were made with (annotations decide what may run). */
  readonly inventory: Inventory
  readonly allowSideEffects: AllowList
}

export interface VerifierLiveSettings extends VerifierSettings {
  /** How to start each server (see `specsForInventory`). */
  readonly specs: ReadonlyArray<McpServerSpec>
  /** Servers that cannot be started, with the reason (e.g. no launch spec). */
  readonly unavailable?: Readonly<Record<string, string>>
  readonly cassettesDir: string
  /** Time for one call (default 30 s). */
  readonly timeout?: Duration.DurationInput
  /** Time for a server's start: initialize and tools/list (default: the larger of 30 s and `timeout`). */
  readonly startTimeout?: Duration.DurationInput
  /** Calls in flight per server (default: bounded by the callers, e.g. verify's row concurrency). */
  readonly maxInFlight?: number
}

/** A server's start: 30 s, or the call's timeout when that is longer. */
const startTimeoutOf = (settings: VerifierLiveSettings): Duration.DurationInput =>
  settings.startTimeout ?? Duration.max(Duration.seconds(30), Duration.decode(settings.timeout ?? Duration.seconds(30)))

export class Verifier extends Context.Tag("skyrl/Verifier")<Verifier, VerifierApi>() {
  /** Over the McpServers and Cassettes of the context. */
  static layer = (settings: VerifierSettings): Layer.Layer<Verifier, never, McpServers | Cassettes> =>
    Layer.effect(Verifier, make(settings))

  /** With its own servers and cassette store (scoped: servers are closed, cassettes flushed, at the end). */
  static live = (
    settings: VerifierLiveSettings
  ): Layer.Layer<Verifier, StorageError | CassettesLocked, McpClient | Storage> =>
    Verifier.layer(settings).pipe(
      Layer.provide(
        Layer.merge(
          McpServers.layer({
            specs: settings.specs,
            ...(settings.unavailable === undefined ? {} : { unavailable: settings.unavailable }),
            timeout: settings.timeout ?? Duration.seconds(30),
            startTimeout: startTimeoutOf(settings),
            maxInFlight: settings.maxInFlight
          }),
          Cassettes.layer(settings.cassettesDir)
        )
      )
    )
}

/**
 * The server went away during step `step`'s call: the plan runs again once on the restarted server,
 * unless a step up to that one has side effects (it ran, or may have: running it again would act twice).
 */
class ConnectionLost {
  readonly _tag = "ConnectionLost"
  constructor(readonly error: McpCallError, readonly step: VerifyStep) {}
}

const failureOf = (step: VerifyStep, e: McpCallError | ServerUnavailableError): VerificationFailed | ConnectionLost => {
  const at = { step: step.step, server: step.server, tool: step.tool }
  if (e._tag === "ServerUnavailableError") {
    return new VerificationFailed({ status: "server-unavailable", ...at, reason: e.reason })
  }
  if (e.kind === "connection") return new ConnectionLost(e, step)
  return new VerificationFailed({
    status: e.kind === "timeout" ? "timeout" : "tool-error",
    ...at,
    reason: e.kind === "timeout" ? e.reason : `protocol error: ${e.reason}`
  })
}

/** Why a plan whose side-effecting step ran (or was in flight) is not run again after its server went away. */
const notRunAgain = (e: ConnectionLost, acted: VerifyStep): string =>
  `${e.error.reason}; the plan is not run again: ${actedText(acted, e.step)}` +
  "; not retried on --resume either"

/** `step N server/tool has side effects and already ran` (or `was in flight`, when it is the failed step `at`). */
const actedText = (acted: VerifyStep, at: VerifyStep): string =>
  `step ${acted.step} ${acted.server}/${acted.tool} has side effects and ` +
  (acted === at ? "was in flight" : "already ran")

/**
 * A timeout or unavailable server at step `at` after a step with side effects ran or was sent (`acted`):
 * marked final, so `--resume` does not run the plan again (it would act twice); the reason says why.
 */
const afterSideEffect = (f: VerificationFailed, acted: VerifyStep, at: VerifyStep) =>
  new VerificationFailed({
    ...failureFields(f),
    reason: `${f.reason}; not retried on --resume: ${actedText(acted, at)}`,
    sideEffectRan: acted.step
  })

/**
 * A plan's write-ahead record for its side effects: `beforeSideEffect` appends (through `append`, which waits
 * for the disk) the outcome the plan has if the run stops before its own is recorded (`interruptedAt`), and
 * `written` says whether it did: the plan's outcome, final or not, must then follow it.
 */
export const sideEffectIntent = (append: (failure: FailureFields) => Effect.Effect<void, StorageError>) => {
  let written = false
  const beforeSideEffect = (step: VerifyStep) =>
    Effect.suspend(() => {
      written = true
      return append(interruptedAt(step))
    })
  return { beforeSideEffect, written: () => written }
}

/** A call that is the only one on its server while in flight (McpServers' BeginOptions). */
/** How a step's call is begun: alone on its server or not, and whether it must be listed read-only as it is sent. */
const BEGIN: Readonly<Record<"shared" | "alone", Readonly<Record<"free" | "readOnly", BeginOptions>>>> = {
  shared: { free: {}, readOnly: { readOnly: true } },
  alone: { free: { alone: true }, readOnly: { alone: true, readOnly: true } }
}

/** `VerifyOptions.beforeSideEffect`, as the plan's steps pass it on. */
type BeforeSideEffect = ((step: VerifyStep) => Effect.Effect<void, StorageError>) | undefined

/**
 * Runs `plan` — a plan with side effects and the recording of its outcome (cassettes, journal) — to its end
 * when the fiber is interrupted (Ctrl-C): cut short after a step with side effects ran, nothing would say
 * so, and `--resume` would run the plan again (act twice). The interruption takes effect once `plan` is
 * done, and says that it waits; `plan` itself stays interruptible, so its own timeouts still end its calls and
 * server starts.
 */
export const toCompletion = <A, E, R>(
  plan: Effect.Effect<A, E, R>,
  /** What the wait says: the run's `finishingNotice` for this plan. */
  notice: () => string
): Effect.Effect<A, E, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Effect.forkDaemon(Effect.interruptible(plan)), (fiber) =>
      restore(Fiber.join(fiber)).pipe(
        Effect.onInterrupt(() => Effect.zipRight(Effect.suspend(() => Effect.logWarning(notice())), Fiber.await(fiber)))
      ))
  )

/**
 * What Ctrl-C says of the plans `toCompletion` waits for in one run, each named (`plan`: which row): the first
 * with why, the others by name only. Before, every plan still running printed the same sentence, naming none.
 * `timeoutFlag`: the flag that bounds each call; `onResume`: what `--resume` does with a plan cut short by a
 * second Ctrl-C (`skyrl verify`'s defaults; generate / enrich --verify give --verify-timeout and their own).
 */
export const finishingNotice = (
  timeoutFlag = "--timeout",
  onResume = "rejects the row as interrupted"
) => {
  let told = false
  return (plan: string): string => {
    if (told) return `interrupted: also finishing ${plan} (its side effects have started)`
    told = true
    return `interrupted: finishing ${plan}, whose side effects have started, so that --resume does not run them ` +
      `again (each call within ${timeoutFlag}; Ctrl-C again stops at once, and --resume then ${onResume})`
  }
}

let lastMillis = NaN
let lastIso = ""
/** `new Date(ms).toISOString()`, kept for the last millisecond asked (calls answer many to a millisecond). */
/** Whether a step of the plan has derived params (its results are then kept for `derivedValuesFoundBySteps`). */
const hasDerived = (steps: ReadonlyArray<VerifyStep>): boolean => steps.some((s) => s.derivedParams.length > 0)

const isoTime = (ms: number): string => {
  if (ms !== lastMillis) {
    lastIso = new Date(ms).toISOString()
    lastMillis = ms
  }
  return lastIso
}

const make = (settings: VerifierSettings) =>
  Effect.gen(function*() {
    const servers = yield* McpServers
    const cassettes = yield* Cassettes
    // The layer's clock, read per call without an Effect (`Effect.clockWith` was one more step per call).
    const clock = yield* Effect.clock
    const blocked = (steps: ReadonlyArray<VerifyStep>) =>
      blockedSteps(settings.inventory, steps, settings.allowSideEffects)
    // Asked for every row `verify` runs: the read-only tools' set is made once.
    const byInventory = sideEffectByInventory(settings.inventory)
    /** The server listed its tools, and not this one as read-only. */
    const liveDenies = (step: { readonly server: string; readonly tool: string }) =>
      servers.liveReadOnly(step.server)?.tools.has(step.tool) === false
    // Once the server listed its tools, its own annotations count too.
    const sideEffect = (step: { readonly server: string; readonly tool: string }) =>
      byInventory(step) || liveDenies(step)

    /** `found`: per step, whether its derived values are in its dependencies' results (`derivedValuesFoundBySteps`). */
    const verified = (
      now: number,
      versions: Record<string, string | null>,
      steps: Array<VerificationRecord["steps"][number]>,
      found?: ReadonlyArray<boolean | undefined>
    ): VerificationRecord =>
      found === undefined
        ? verifiedRecord(isoTime(now), versions, steps)
        : verifiedRecord(isoTime(now), versions, withDerivedFound(steps, found), rowFound(found))

    /**
     * Records step `step`'s answer in the cassettes (in the background: what it returns starts the writer
     * when it is not running; run it) and, when it is not a tool error, adds it to `done`.
     */
    const record = (
      step: VerifyStep,
      answer: CallAnswer,
      now: number,
      versions: Record<string, string | null>,
      done: Array<VerificationRecord["steps"][number]>
    ): Effect.Effect<void> => {
      const entry = makeEntry({
        server: step.server,
        tool: step.tool,
        params: step.params,
        result: answer.result,
        duration_ms: answer.durationMs,
        server_version: answer.serverVersion,
        recorded_at: isoTime(now),
        illustrative: step.derivedParams.length > 0
      })
      versions[step.server] = answer.serverVersion
      const recorded = cassettes.recordNow(entry)
      if (!answer.result.isError) done.push(recordStep(step, entry.key, undefined, recorded.differs))
      return recorded.start
    }

    /**
     * The plan's end, from its last answer (the last step's, or the first tool error): recorded when called.
     * `texts`: the results before it, as a policy reads them, when a step has derived params.
     */
    const finishWith = (
      steps: ReadonlyArray<VerifyStep>,
      step: VerifyStep,
      answer: CallAnswer,
      versions: Record<string, string | null>,
      done: Array<VerificationRecord["steps"][number]>,
      texts: Array<string> | undefined
    ): Finish =>
    () => {
      const now = clock.unsafeCurrentTimeMillis()
      const kick = record(step, answer, now, versions, done)
      const outcome = answer.result.isError
        ? Either.left(
          new VerificationFailed({
            status: "tool-error",
            step: step.step,
            server: step.server,
            tool: step.tool,
            reason: resultText(answer.result.content)
          })
        )
        : Either.right(verified(now, versions, done, texts && derivedValuesFoundBySteps(steps, texts)))
      return { outcome, kick }
    }

    /**
     * The steps from `i` on, each recorded in the cassettes as it answers; the first tool error ends the
     * plan. `called` is step i's call, already started. The next step's call is sent as soon as a step has
     * answered without an error, before that step's result is recorded (the recording overlaps the call);
     * the last answer is recorded when the caller calls the `Finish` this gives (after its own next call).
     * Written as a chain of steps rather than a generator: it runs twice per row on the hot path.
     */
    const runFrom = (
      steps: ReadonlyArray<VerifyStep>,
      i: number,
      called: Effect.Effect<CallAnswer, McpCallError | ServerUnavailableError | NotListedReadOnly | StorageError>,
      versions: Record<string, string | null>,
      done: Array<VerificationRecord["steps"][number]>,
      before: BeforeSideEffect,
      texts: Array<string> | undefined,
      alone: boolean
    ): Effect.Effect<Finish, VerificationFailed | ConnectionLost | StorageError> => {
      const step = steps[i]!
      return Effect.matchEffect(called, {
        onFailure: (e) => Effect.fail(e._tag === "StorageError" ? e : failedAt(steps, i, e)),
        onSuccess: (answer) => {
          if (answer.result.isError || i + 1 === steps.length) {
            return Effect.succeed(finishWith(steps, step, answer, versions, done, texts))
          }
          const next = send(steps, i + 1, before, alone)
          texts?.push(policyText(answer.result))
          const recorded = record(step, answer, clock.unsafeCurrentTimeMillis(), versions, done)
          const rest = runFrom(steps, i + 1, next, versions, done, before, texts, alone)
          return recorded === Effect.void ? rest : Effect.zipRight(recorded, rest)
        }
      })
    }
    const beginStep = (step: VerifyStep, alone: boolean) =>
      servers.begin(
        step.server,
        step.tool,
        step.params,
        BEGIN[alone ? "alone" : "shared"][
          allowed(settings.allowSideEffects, step.server, step.tool)
            ? "free"
            : "readOnly"
        ]
      )
    /** Step i's call, sent now (`alone`: the only call on its server); the plan's first step with side effects once `before` is done. */
    const send = (steps: ReadonlyArray<VerifyStep>, i: number, before: BeforeSideEffect, alone: boolean) => {
      const step = steps[i]!
      return before === undefined || step !== steps.find(sideEffect)
        ? beginStep(step, alone)
        : Effect.flatMap(before(step), () => beginStep(step, alone))
    }
    /**
     * The plan from its first step, that step's call sent now; with `alone`, each call the only one on its
     * server while it is in flight (a plan run again after its server went away).
     */
    const runNow = (
      steps: ReadonlyArray<VerifyStep>,
      before: BeforeSideEffect,
      alone = false
    ): Effect.Effect<Finish, VerificationFailed | ConnectionLost | StorageError> =>
      steps.length > 0
        ? runFrom(steps, 0, send(steps, 0, before, alone), {}, [], before, hasDerived(steps) ? [] : undefined, alone)
        : Effect.sync(() => () => ({
          outcome: Either.right(verified(clock.unsafeCurrentTimeMillis(), {}, [])),
          kick: Effect.void
        }))

    /**
     * Runs only when every step is allowed or read-only by both the inventory and the live server's own
     * tools/list (listed once per start; a server not up yet is started first to list it).
     */
    const beginWith = (
      steps: ReadonlyArray<VerifyStep>,
      before: BeforeSideEffect
    ): Effect.Effect<Finish, VerificationFailed | StorageError> => {
      const stopped = blocked(steps)
      if (stopped.length > 0) return Effect.fail(sideEffectFailure(stopped))
      const unchecked = steps.filter((s) => !allowed(settings.allowSideEffects, s.server, s.tool))
      if (unchecked.length === 0) return runChecked(steps, before)
      const down = serversDown(unchecked)
      if (down.length === 0) return liveChecked(steps, unchecked, before)
      return Effect.zipRight(
        Effect.forEach(down, (server) => Effect.ignore(servers.start(server)), { discard: true }),
        Effect.suspend(() => liveChecked(steps, unchecked, before))
      )
    }
    // Without `before` nothing can fail with a StorageError.
    const begin = (steps: ReadonlyArray<VerifyStep>) =>
      beginWith(steps, undefined) as Effect.Effect<Finish, VerificationFailed>
    /** The servers of `steps` never started (so not listed yet). */
    const serversDown = (steps: ReadonlyArray<VerifyStep>): Array<string> => {
      const down: Array<string> = []
      for (const s of steps) {
        if (servers.liveReadOnly(s.server) === undefined && !down.includes(s.server)) down.push(s.server)
      }
      return down
    }
    /** Fails when the live server does not list a step of `unchecked` read-only (a server still down: the call says so). */
    const liveChecked = (
      steps: ReadonlyArray<VerifyStep>,
      unchecked: ReadonlyArray<VerifyStep>,
      before: BeforeSideEffect
    ) => {
      const notLive = unchecked.filter(liveDenies)
      if (notLive.length === 0) return runChecked(steps, before)
      const live = servers.liveReadOnly(notLive[0]!.server)
      const missing = notLive.find((s) => live?.error === undefined && live?.listed.has(s.tool) === false)
      if (missing !== undefined) return Effect.fail(liveMissingToolFailure(missing))
      return Effect.fail(liveSideEffectFailure(notLive, live?.error))
    }
    /** The plan, run again once when its server went away (unless a step with side effects ran). */
    const runChecked = (
      steps: ReadonlyArray<VerifyStep>,
      before: BeforeSideEffect
    ): Effect.Effect<Finish, VerificationFailed | StorageError> => {
      const lost = (e: ConnectionLost, reason: string, acted = ranSideEffect(steps, e.step)) =>
        Effect.fail(
          new VerificationFailed({
            status: "server-unavailable",
            step: e.step.step,
            server: e.step.server,
            tool: e.step.tool,
            reason,
            ...(acted === undefined ? {} : { sideEffectRan: acted.step })
          })
        )
      const isLost = (e: unknown): e is ConnectionLost => e instanceof ConnectionLost
      return runNow(steps, before).pipe(
        Effect.catchIf(isLost, (e) => {
          const acted = ranSideEffect(steps, e.step)
          if (acted !== undefined) return lost(e, notRunAgain(e, acted))
          // Each call of the plan's second run is the only one on its server: should the server go away again,
          // it is for this plan (the first time, it may have been for a call beside it).
          return Effect.logWarning(`${e.error.message}; running the plan again on the restarted server`).pipe(
            Effect.zipRight(Effect.suspend(() => runNow(steps, before, true))),
            Effect.catchIf(isLost, (e2) =>
              lost(
                e2,
                `the server went away during the call twice, the second time the only call on it: ${e2.error.reason}`
              ))
          )
        })
      )
    }
    /** The first of the first `count` steps whose tool has side effects. */
    const firstSideEffect = (steps: ReadonlyArray<VerifyStep>, count: number) => steps.slice(0, count).find(sideEffect)
    /** The first step up to `at` (which was sent) whose tool has side effects. */
    const ranSideEffect = (steps: ReadonlyArray<VerifyStep>, at: VerifyStep) =>
      firstSideEffect(steps, steps.indexOf(at) + 1)
    /** Step i's failure; a timeout or an unavailable server after a step with side effects ran (or was sent) is final. */
    const failedAt = (
      steps: ReadonlyArray<VerifyStep>,
      i: number,
      e: McpCallError | ServerUnavailableError | NotListedReadOnly
    ) => {
      if (e._tag === "NotListedReadOnly") return notListedNowFailure(steps[i]!, e.listError)
      const f = failureOf(steps[i]!, e)
      if (f instanceof ConnectionLost || f.status === "tool-error") return f
      // An unavailable server never got step i's call; a timed-out call may have acted.
      const acted = firstSideEffect(steps, e._tag === "ServerUnavailableError" ? i : i + 1)
      return acted === undefined ? f : afterSideEffect(f, acted, steps[i]!)
    }
    const verify = (steps: ReadonlyArray<VerifyStep>, options?: VerifyOptions) =>
      Effect.suspend(() => {
        const ran = Effect.flatMap(beginWith(steps, options?.beforeSideEffect), (finish) => {
          const { kick, outcome } = finish()
          return Effect.zipRight(kick, outcome)
        })
        return options?.durable === false ? ran : Effect.tap(ran, () => cassettes.flush)
      })
    const report = Effect.gen(function*() {
      const counts = yield* cassettes.counts
      return { servers: yield* servers.states, cassettes: { file: cassettes.file, ...counts } }
    })
    const start = (names: ReadonlyArray<string>) =>
      Effect.map(
        Effect.forEach(names, (name) => Effect.flip(servers.start(name)).pipe(Effect.option), { concurrency: 4 }),
        (failed) => failed.flatMap((f) => f._tag === "Some" ? [f.value] : [])
      )
    return {
      verify,
      begin,
      blocked,
      start,
      hasResult: cassettes.has,
      sideEffect,
      flush: cassettes.flush,
      report
    } satisfies VerifierApi
  })
