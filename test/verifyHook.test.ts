/**
 * The engine's verify hook (src/programs/verifyHook.ts) over a scripted Verifier and memory storage: what
 * each outcome becomes for the engine, outcomes recorded in the run directory and reused (never run
 * twice), and a run that stops when verification concerns every sample (a server that cannot be reached).
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, Layer } from "effect"
import * as path from "node:path"
import { StorageError } from "../src/domain/errors.js"
import type { Inventory } from "../src/domain/inventory.js"
import type { SkyRLRow } from "../src/domain/row.js"
import type { RunSettings } from "../src/domain/run.js"
import type { VerifyOutcome } from "../src/programs/acceptance.js"
import { generatePlan } from "../src/programs/generate.js"
import { makeVerifyHook, recordedVerifyHook, verificationLogOf } from "../src/programs/verifyHook.js"
import type { VerifierApi } from "../src/services/Verifier.js"
import { Verifier } from "../src/services/Verifier.js"
import { convertTask } from "../src/skyrl/convert.js"
import type { VerificationRecord, VerifyStep } from "../src/skyrl/verification.js"
import { failureFields, VerificationFailed } from "../src/skyrl/verification.js"
import {
  catalogue,
  EngineTest,
  generateOptions,
  OUT,
  reply,
  requestOf,
  runGenerate,
  scripted,
  settingsFor
} from "./support/engine.js"
import { validTaskText } from "./support/fakeTasks.js"
import { loggingInto } from "./support/logs.js"
import { makeMemoryStorage } from "./support/memoryStorage.js"

const RUN_DIR = "/mem/raw_llm/run-1"

/** A row of sample `sample`, attempt 1, whose quote step asks for `symbol` (named `name` in its id and prompt). */
const rowOf = (symbol: string, sample = 0, repaired = false, name = symbol): SkyRLRow =>
  Either.getOrThrow(convertTask({
    task_id: `t-${name}`,
    user_prompt: `Get the quote for ${name}.`,
    tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol } }],
    evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
  }, { inventory: catalogue, metadata: { sample_index: sample, attempt: 1, repaired } }))

const record = (steps: ReadonlyArray<VerifyStep>): VerificationRecord => ({
  status: "verified",
  verified_at: "2026-11-30T00:00:00.000Z",
  servers: { fmp: "fmp@1.0.0" },
  steps: steps.map((s) => ({
    step: s.step,
    server: s.server,
    tool: s.tool,
    key: `key-${String(s.params.symbol)}`,
    illustrative: false
  }))
})

/** A Verifier whose outcome depends on the symbol: BAD a tool error, SLOW a timeout, DOWN an unreachable server. */
const scriptedVerifier = (known: Set<string> = new Set(["key-AAPL", "key-MSFT"])) => {
  const runs: Array<string> = []
  const failure = (status: VerificationFailed["status"], reason: string) =>
    new VerificationFailed({ status, step: 1, server: "fmp", tool: "fmp_get_quote", reason })
  const verify: VerifierApi["verify"] = (steps) =>
    Effect.suspend(() => {
      const symbol = String(steps[0]!.params.symbol)
      runs.push(symbol)
      if (symbol === "BAD") return Effect.fail(failure("tool-error", "Unknown symbol BAD"))
      if (symbol === "SLOW") return Effect.fail(failure("timeout", "no answer within 30s"))
      if (symbol === "DOWN") return Effect.fail(failure("server-unavailable", "cannot start: command not found"))
      // After step 1, a side effect, ran: a timeout / a lost server that running the plan again would repeat.
      const acted = (status: VerificationFailed["status"]) =>
        new VerificationFailed({ ...failureFields(failure(status, "step 2 failed")), step: 2, sideEffectRan: 1 })
      if (symbol === "ACTED") return Effect.fail(acted("timeout"))
      if (symbol === "ACTEDDOWN") return Effect.fail(acted("server-unavailable"))
      return Effect.succeed(record(steps))
    })
  const api: VerifierApi = {
    verify,
    // `skyrl verify`'s per-row entry point; the hook runs `verify`.
    begin: () => Effect.dieMessage("the verify hook does not call begin"),
    blocked: () => [],
    start: () => Effect.succeed([]),
    hasResult: (key) => known.has(key),
    sideEffect: () => false,
    flush: Effect.void,
    report: Effect.succeed({ servers: [], cassettes: { file: "", existing: 0, added: 0, replaced: 0, differed: 0 } })
  }
  return { runs, api, layer: Layer.succeed(Verifier, api) }
}

/** A memory storage whose verifications.jsonl cannot be appended to (no space left on device). */
const storageWithoutRoomForTheLog = () => {
  const storage = makeMemoryStorage()
  storage.onWrite = (file) =>
    file.endsWith("verifications.jsonl")
      ? Effect.fail(new StorageError({ path: file, operation: "append to", reason: "no space left on device" }))
      : Effect.void
  return storage
}

const judgeAll = (rows: ReadonlyArray<SkyRLRow>) =>
  Effect.scoped(Effect.gen(function*() {
    const hook = yield* makeVerifyHook(RUN_DIR)
    return yield* Effect.forEach(rows, (row) => hook(row, undefined))
  }))

describe("the verify hook", () => {
  it.effect("maps each outcome: verified keeps the record, a tool error is a repair, a timeout a reject, an unreachable server stops the run", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const verifier = scriptedVerifier()
      const [ok, bad, slow, down] = yield* judgeAll([rowOf("AAPL"), rowOf("BAD"), rowOf("SLOW"), rowOf("DOWN")]).pipe(
        Effect.provide(Layer.merge(storage.layer, verifier.layer))
      )
      expect(ok).toMatchObject({ ok: true })
      const kept = (ok as Extract<VerifyOutcome, { ok: true }>).row!
      expect(kept.extra_info.task_metadata.verification).toEqual(record([{
        step: 1,
        server: "fmp",
        tool: "fmp_get_quote",
        params: { symbol: "AAPL" },
        derivedParams: []
      }]))
      expect(bad).toMatchObject({
        ok: false,
        reason: expect.stringContaining("tool-error: step 1 fmp/fmp_get_quote: Unknown symbol BAD")
      })
      expect((bad as { repair: string }).repair).toContain("Unknown symbol BAD")
      expect(slow).toEqual({ ok: false, reason: expect.stringContaining("timeout"), stop: false })
      expect(down).toEqual({ ok: false, reason: expect.stringContaining("command not found"), stop: true })
      // The finished ones (verified, tool error) are in the run directory's log.
      const log = storage.text(verificationLogOf(RUN_DIR)).trim().split("\n").map((l) => JSON.parse(l))
      expect(log.map((e) => [e.sample, e.attempt, e.purpose, e.record?.status ?? e.failure.status])).toEqual([
        [0, 1, "task", "verified"],
        [0, 1, "task", "tool-error"]
      ])
    }))

  it.effect("an answer judged again (resume, rebuild) takes its recorded outcome; unfinished or unrecorded ones run", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const rows = [rowOf("AAPL"), rowOf("BAD"), rowOf("SLOW"), rowOf("MSFT", 1), rowOf("MSFT", 1, true)]
      const first = scriptedVerifier()
      yield* judgeAll(rows.slice(0, 4)).pipe(Effect.provide(Layer.merge(storage.layer, first.layer)))
      expect(first.runs).toEqual(["AAPL", "BAD", "SLOW", "MSFT"])
      // A new session on the same run directory: MSFT's cassette line is gone (another --cassettes).
      const second = scriptedVerifier(new Set(["key-AAPL"]))
      const again = yield* judgeAll(rows).pipe(Effect.provide(Layer.merge(storage.layer, second.layer)))
      // SLOW timed out (not final); MSFT's results are missing; the repair of sample 1 is another answer.
      expect(second.runs).toEqual(["SLOW", "MSFT", "MSFT"])
      expect(again[1]).toMatchObject({ ok: false, repair: expect.stringContaining("Unknown symbol BAD") })
      // rebuild: recorded outcomes only, never a call.
      const recorded = yield* Effect.flatMap(
        recordedVerifyHook(RUN_DIR),
        (hook) => Effect.forEach([rows[0]!, rows[2]!], (row) => hook(row, undefined))
      ).pipe(Effect.provide(storage.layer))
      expect(recorded[0]).toMatchObject({ ok: true })
      expect(recorded[1]).toEqual({
        ok: false,
        reason: expect.stringContaining("no verification of this answer recorded")
      })
    }))

  it.effect("log lines that are not readable: the run and rebuild name them and say what becomes of their answers", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const rows = [rowOf("AAPL"), rowOf("MSFT", 1)]
      yield* judgeAll(rows).pipe(Effect.provide(Layer.merge(storage.layer, scriptedVerifier().layer)))
      const file = verificationLogOf(RUN_DIR)
      const [aapl, msft] = storage.text(file).split("\n")
      storage.files.set(file, [aapl!.slice(0, 30), msft, ""].join("\n"))
      const logs: Array<string> = []
      const logger = loggingInto(logs)
      const again = scriptedVerifier()
      yield* judgeAll(rows).pipe(Effect.provide(Layer.mergeAll(storage.layer, again.layer, logger)))
      expect(again.runs).toEqual(["AAPL"]) // its outcome's line is not readable: verified again
      const named = (what: string) =>
        expect.stringMatching(
          new RegExp(
            `^WARN: ${file}: 1 line\\(s\\) are not readable, skipped \\(line 1: not JSON .*\\): ${what}`
          )
        )
      expect(logs.filter((l) => l.includes("not readable"))).toEqual([
        named("the answers whose outcome they held are verified again when judged")
      ])
      // rebuild: AAPL's new line holds its outcome (the damaged line is named all the same).
      logs.length = 0
      const rebuilt = yield* Effect.flatMap(recordedVerifyHook(RUN_DIR), (hook) => hook(rows[0]!, undefined)).pipe(
        Effect.provide(Layer.merge(storage.layer, logger))
      )
      expect(rebuilt).toMatchObject({ ok: true })
      expect(logs.filter((l) => l.includes("not readable"))).toEqual([
        named("the answers whose outcome they held have none here")
      ])
    }))

  it.effect("a timeout or lost server after a side effect ran is recorded: judged again, it is rejected, never run twice", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const rows = [rowOf("ACTED"), rowOf("ACTEDDOWN", 1)]
      const first = scriptedVerifier()
      const live = yield* judgeAll(rows).pipe(Effect.provide(Layer.merge(storage.layer, first.layer)))
      expect(live).toEqual([
        { ok: false, reason: expect.stringContaining("timeout"), stop: false },
        { ok: false, reason: expect.stringContaining("server-unavailable"), stop: true }
      ])
      // --resume replays both answers: before, neither was recorded and both plans ran (and acted) again.
      const second = scriptedVerifier()
      const again = yield* judgeAll(rows).pipe(Effect.provide(Layer.merge(storage.layer, second.layer)))
      expect(second.runs).toEqual([])
      // Recorded, the lost server rejects its answer only: the resumed run makes the sample again.
      expect(again).toEqual([
        { ok: false, reason: expect.stringContaining("timeout"), stop: false },
        { ok: false, reason: expect.stringContaining("server-unavailable"), stop: false }
      ])
      const rebuilt = yield* Effect.flatMap(
        recordedVerifyHook(RUN_DIR),
        (hook) => Effect.forEach(rows, (row) => hook(row, undefined))
      ).pipe(Effect.provide(storage.layer))
      expect(rebuilt).toEqual(again)
    }))

  it.effect("Ctrl-C while a plan with side effects runs: it runs to its outcome and is recorded; judged again, never run twice", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const first = scriptedVerifier()
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      // Its first step (a side effect) has run when `started` is done; the plan ends when `release` is.
      const acting: VerifierApi = {
        ...first.api,
        sideEffect: () => true,
        verify: (steps, options) =>
          Effect.zipRight(
            Effect.zipRight(Deferred.succeed(started, undefined), Deferred.await(release)),
            first.api.verify(steps, options)
          )
      }
      const judging = yield* Effect.fork(
        judgeAll([rowOf("AAPL")]).pipe(Effect.provide(Layer.merge(storage.layer, Layer.succeed(Verifier, acting))))
      )
      yield* Deferred.await(started)
      const interrupted = yield* Effect.fork(Fiber.interrupt(judging))
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(interrupted)
      expect(first.runs).toEqual(["AAPL"])
      // --resume replays the answer: before, nothing was recorded and the plan ran (and acted) again.
      const second = scriptedVerifier()
      const again = yield* judgeAll([rowOf("AAPL")]).pipe(Effect.provide(Layer.merge(storage.layer, second.layer)))
      expect(second.runs).toEqual([])
      expect(again).toEqual([expect.objectContaining({ ok: true })])
    }))

  it.effect("killed once a plan's first step with side effects is being sent: --resume never verifies the answer again", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const first = scriptedVerifier()
      const log = path.resolve(verificationLogOf(RUN_DIR))
      let killedAt: string | Uint8Array | undefined
      // The plan's first step has side effects: the hook's `beforeSideEffect` is done before it is sent, and
      // what is on disk then is what a kill -9 leaves.
      const acting: VerifierApi = {
        ...first.api,
        sideEffect: () => true,
        verify: (steps, options) =>
          Effect.zipRight(
            options?.beforeSideEffect?.(steps[0]!) ?? Effect.void,
            Effect.suspend(() => {
              killedAt = storage.files.get(log)
              return first.api.verify(steps, options)
            })
          )
      }
      const done = yield* judgeAll([rowOf("AAPL")]).pipe(
        Effect.provide(Layer.merge(storage.layer, Layer.succeed(Verifier, acting)))
      )
      expect(done).toEqual([expect.objectContaining({ ok: true })])
      expect(typeof killedAt === "string" ? killedAt : "").toContain("\"status\":\"interrupted\"")
      // --resume from the log as the kill left it: the answer is rejected (its sample made again), not verified
      // again; before, the log held nothing of it and the plan ran (and acted) again.
      const second = scriptedVerifier()
      const again = yield* judgeAll([rowOf("AAPL")]).pipe(
        Effect.provide(Layer.merge(makeMemoryStorage({ [log]: killedAt as string }).layer, second.layer))
      )
      expect(second.runs).toEqual([])
      expect(again).toEqual([
        expect.objectContaining({
          ok: false,
          reason: expect.stringContaining("it may have acted, so the plan is not run again")
        })
      ])
    }))

  it.effect("a verification that cannot be recorded stops the run", () =>
    Effect.gen(function*() {
      const storage = storageWithoutRoomForTheLog()
      const [outcome] = yield* judgeAll([rowOf("AAPL")]).pipe(
        Effect.provide(Layer.merge(storage.layer, scriptedVerifier().layer))
      )
      expect(outcome).toEqual({ ok: false, reason: expect.stringContaining("no space left on device"), stop: true })
    }))

  it.effect("a plan whose tools/call request is over 10 MiB is rejected unsent, as verify's contract stage; the run goes on", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const verifier = scriptedVerifier()
      const huge = rowOf("x".repeat(10 * 1024 * 1024), 0, false, "XXL")
      const [long, ok] = yield* judgeAll([huge, rowOf("AAPL", 1)]).pipe(
        Effect.provide(Layer.merge(storage.layer, verifier.layer))
      )
      // {"jsonrpc":"2.0","id":1000000000,"method":"tools/call","params":{"name":"fmp_get_quote","arguments":{"symbol":"..."}}}\n
      const bytes = 10 * 1_048_576 + 116
      // Rejected, not stopped, not repaired: the sample is made again and the run goes on.
      expect(long).toEqual({
        ok: false,
        reason:
          "verification not run: reward_spec.ground_truth.tool_sequence[0].params: step 1: its tools/call request " +
          `is ${bytes} bytes long, over the 10485760 bytes (10 MiB) an MCP message may take over stdio: too long to send ` +
          "(the server would refuse it and exit)"
      })
      expect(ok).toMatchObject({ ok: true })
      expect(verifier.runs).toEqual(["AAPL"]) // never sent
      const log = storage.text(verificationLogOf(RUN_DIR)).trim().split("\n").map((l) => JSON.parse(l))
      expect(log.map((e) => e.sample)).toEqual([1]) // nothing logged for it
      // rebuild's hook refuses it with the same reason (not "no verification recorded").
      const rebuilt = yield* Effect.flatMap(recordedVerifyHook(RUN_DIR), (hook) => hook(huge, undefined)).pipe(
        Effect.provide(storage.layer)
      )
      expect(rebuilt).toEqual(long)
    }))
})

layer(EngineTest, { excludeTestServices: true })("a verification failure that concerns every sample", (it) => {
  it.effect("stops the run: no new call starts, what was made is kept, the reason is the run's", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { calls, llm } = scripted((call) => reply(JSON.parse(validTaskText(requestOf(call).k))))
      const verify = (row: SkyRLRow) =>
        Effect.succeed<VerifyOutcome>(
          row.extra_info.task_metadata.sample_index === 0
            ? { ok: true }
            : { ok: false, reason: "verification server-unavailable: fmp is down", stop: true }
        )
      const failed = yield* Effect.flip(runGenerate(storage, llm, { ...generateOptions(settingsFor(4)), verify }))
      expect(failed).toMatchObject({
        _tag: "IncompleteRun",
        made: 1,
        reason: "verification server-unavailable: fmp is down"
      })
      expect(calls).toHaveLength(2) // sample 1, then sample 2 stopped the run
      expect(storage.text(OUT).trim().split("\n")).toHaveLength(1)
    }))
})

describe("the plan of a run with --verify", () => {
  // The catalogue with read-only annotations on fmp's tools only: the others are side effects.
  const annotated: Inventory = {
    ...catalogue,
    servers: catalogue.servers.map((s) =>
      s.name !== "fmp" ? s : { ...s, tools: s.tools.map((t) => ({ ...t, annotations: { readOnlyHint: true } })) }
    )
  }
  const diversity = { domains_from: "flag", personas: null, subjects: "none", near_dup: 0.8 } as const
  const focusServers = (verify: RunSettings["verify"], inventory: Inventory = annotated) =>
    new Set(generatePlan(settingsFor(40, { diversity, verify }), inventory).map((j) => j.focus?.server))

  it("hands out only focus tools verification may run (read-only, or allowed); every tool when none may", () => {
    expect(focusServers(undefined).size).toBeGreaterThan(1)
    expect(focusServers({ allow_side_effects: [] })).toEqual(new Set(["fmp"]))
    const other = annotated.servers.find((s) => s.name !== "fmp")!
    const allowed = focusServers({ allow_side_effects: [`${other.name}.${other.tools[0]!.name}`] })
    expect(allowed).toEqual(new Set(["fmp", other.name]))
    expect(focusServers({ allow_side_effects: ["all"] })).toEqual(focusServers(undefined))
    // Nothing annotated read-only: the plan is not narrowed (each verification names the side effect).
    expect(focusServers({ allow_side_effects: [] }, catalogue)).toEqual(focusServers(undefined, catalogue))
  })
})

describe("the same plan in two answers", () => {
  /** A row of sample `sample` quoting AAPL then MSFT, then a quote whose symbol is derived from step `from`. */
  const derivedRow = (sample: number, from: number): SkyRLRow =>
    Either.getOrThrow(convertTask({
      task_id: `t-derived-${sample}`,
      user_prompt: `Quote AAPL and MSFT, then the stock named by result ${from} (sample ${sample}).`,
      tool_sequence: [
        { server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } },
        { server: "fmp", tool: "fmp_get_quote", params: { symbol: "MSFT" } },
        {
          server: "fmp",
          tool: "fmp_get_quote",
          params: { symbol: "AAPL" },
          depends_on: [from],
          derived_params: ["symbol"]
        }
      ],
      evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
    }, { inventory: catalogue, metadata: { sample_index: sample, attempt: 1, repaired: false } }))

  /** The scripted Verifier, each plan held until `release` is done; `calls` counts the plans sent to it. */
  const gated = () =>
    Effect.gen(function*() {
      const base = scriptedVerifier()
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const counted = { calls: 0 }
      const api: VerifierApi = {
        ...base.api,
        verify: (steps, options) =>
          Effect.suspend(() => {
            counted.calls++
            return Effect.zipRight(
              Effect.zipRight(Deferred.succeed(started, undefined), Deferred.await(release)),
              base.api.verify(steps, options)
            )
          })
      }
      return { counted, started, release, layer: Layer.succeed(Verifier, api) }
    })

  const logOf = (storage: ReturnType<typeof makeMemoryStorage>) =>
    storage.text(verificationLogOf(RUN_DIR)).trim().split("\n").map((l) => JSON.parse(l))

  it.effect("verified at the same time: the plan runs once; the second answer waits for it, takes its record, and its log line says whose it is", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const verifier = yield* gated()
      const judging = yield* Effect.fork(
        Effect.scoped(Effect.gen(function*() {
          const hook = yield* makeVerifyHook(RUN_DIR)
          return yield* Effect.forEach([rowOf("AAPL", 0), rowOf("AAPL", 1)], (row) => hook(row, undefined), {
            concurrency: "unbounded"
          })
        })).pipe(Effect.provide(Layer.merge(storage.layer, verifier.layer)))
      )
      yield* Deferred.await(verifier.started)
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      expect(verifier.counted.calls).toBe(1) // before: 2, both answers ran the plan at once
      yield* Deferred.succeed(verifier.release, undefined)
      const [first, second] = yield* Fiber.join(judging)
      expect(verifier.counted.calls).toBe(1)
      const recordOf = (o: VerifyOutcome | undefined) =>
        (o as Extract<VerifyOutcome, { ok: true }>).row!.extra_info.task_metadata.verification
      expect(recordOf(second)).toEqual(recordOf(first))
      const log = logOf(storage)
      expect(log.map((e) => [e.sample, e.record?.status, e.outcome_of])).toEqual([
        [0, "verified", undefined],
        [1, "verified", { sample: 0, attempt: 1, purpose: "task" }]
      ])
      expect(log[1].outcome_key).toBe(log[0].outcome_key)
      // rebuild gives the second answer its line, as for any answer.
      const rebuilt = yield* Effect.flatMap(recordedVerifyHook(RUN_DIR), (hook) => hook(rowOf("AAPL", 1), undefined))
        .pipe(Effect.provide(storage.layer))
      expect(recordOf(rebuilt)).toEqual(recordOf(first))
    }))

  it.effect("a tool error is taken too: each answer gets its own repair with the tool's text, its reason says whose outcome it is; a timeout is not kept", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const verifier = scriptedVerifier()
      const outcomes = yield* judgeAll([rowOf("BAD", 0), rowOf("BAD", 1), rowOf("SLOW", 2), rowOf("SLOW", 3)]).pipe(
        Effect.provide(Layer.merge(storage.layer, verifier.layer))
      )
      // Before: ["BAD", "BAD", "SLOW", "SLOW"]. A timeout is not final: the same plan later runs again.
      expect(verifier.runs).toEqual(["BAD", "SLOW", "SLOW"])
      const [first, second] = outcomes as Array<Extract<VerifyOutcome, { ok: false }>>
      expect(second!.repair).toBe(first!.repair)
      expect(second!.repair).toContain("Unknown symbol BAD")
      expect(first!.reason).not.toContain("not run again")
      expect(second!.reason).toBe(
        `${first!.reason} (not run again: the outcome of the same plan in sample 1, attempt 1)`
      )
      expect(logOf(storage).map((e) => [e.sample, e.failure.status, e.outcome_of?.sample])).toEqual([
        [0, "tool-error", undefined],
        [1, "tool-error", 0]
      ])
    }))

  it.effect("--resume: a new answer takes its plan's logged outcome; plans that differ in depends_on only run each", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const first = scriptedVerifier()
      yield* judgeAll([rowOf("AAPL", 0)]).pipe(Effect.provide(Layer.merge(storage.layer, first.layer)))
      const second = scriptedVerifier()
      const [again] = yield* judgeAll([rowOf("AAPL", 1)]).pipe(Effect.provide(Layer.merge(storage.layer, second.layer)))
      expect(second.runs).toEqual([])
      expect(again).toMatchObject({ ok: true })
      expect(logOf(storage).at(-1)).toMatchObject({ sample: 1, outcome_of: { sample: 0, attempt: 1, purpose: "task" } })
      // The same calls, the third one's symbol derived from step 1 or from step 2: derived_values_found may differ.
      const third = scriptedVerifier()
      yield* judgeAll([derivedRow(2, 1), derivedRow(3, 2), derivedRow(4, 1)]).pipe(
        Effect.provide(Layer.merge(storage.layer, third.layer))
      )
      expect(third.runs).toEqual(["AAPL", "AAPL"])
    }))

  it.effect("the waiting answer is never left waiting: the run's result cannot be recorded, or the run is interrupted", () =>
    Effect.gen(function*() {
      const storage = storageWithoutRoomForTheLog()
      const failing = yield* gated()
      const both = yield* Effect.scoped(Effect.gen(function*() {
        const hook = yield* makeVerifyHook(RUN_DIR)
        const judging = yield* Effect.fork(
          Effect.forEach([rowOf("AAPL", 0), rowOf("AAPL", 1)], (row) => hook(row, undefined), {
            concurrency: "unbounded"
          })
        )
        yield* Deferred.await(failing.started)
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
        yield* Deferred.succeed(failing.release, undefined)
        return yield* Fiber.join(judging)
      })).pipe(Effect.provide(Layer.merge(storage.layer, failing.layer)))
      expect(both).toEqual([0, 1].map(() => ({
        ok: false,
        reason: expect.stringContaining("no space left on device"),
        stop: true
      })))
      expect(failing.counted.calls).toBe(1)
      // The first answer's run is interrupted (read-only: it stops): the waiting answer runs the plan itself.
      const verifier = yield* gated()
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const hook = yield* makeVerifyHook(RUN_DIR)
        const firstRun = yield* Effect.fork(hook(rowOf("AAPL", 0), undefined))
        yield* Deferred.await(verifier.started)
        const waiting = yield* Effect.fork(hook(rowOf("AAPL", 1), undefined))
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
        expect(verifier.counted.calls).toBe(1)
        yield* Fiber.interrupt(firstRun)
        yield* Deferred.succeed(verifier.release, undefined)
        return yield* Fiber.join(waiting)
      })).pipe(Effect.provide(Layer.merge(makeMemoryStorage().layer, verifier.layer)))
      expect(verifier.counted.calls).toBe(2)
      expect(outcome).toMatchObject({ ok: true })
    }))
})
