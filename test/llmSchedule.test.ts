/**
 * The retry schedule and per-attempt timeout, proven with the scripted Llm (real engine, no network)
 * under TestClock: waits follow Retry-After, backoff grows and is capped, non-retryable errors fail at
 * once, a hung attempt times out.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Logger, Schema, TestClock } from "effect"
import type { AttemptRecord, LlmError } from "../src/domain/llm.js"
import {
  Authentication,
  BadRequest,
  failureScope,
  NotFound,
  QuotaExceeded,
  RateLimited,
  Refusal,
  Transient
} from "../src/domain/llm.js"
import type { LlmRequest } from "../src/services/Llm.js"
import { paceTokens } from "../src/services/llm/engine.js"
import {
  logRetry,
  parseRateLimitReset,
  parseResetDuration,
  parseRetryAfter,
  retryDelayMs,
  retrySchedule,
  withRetry
} from "../src/services/llm/retry.js"
import type { ScriptedReply } from "./support/scripted.js"
import { makeScriptedLlm } from "./support/scripted.js"

const Answer = Schema.Struct({ ok: Schema.Boolean })

const request = (
  onAttempt?: (r: AttemptRecord) => Effect.Effect<void>
): LlmRequest<{ ok: boolean }, { ok: boolean }> => ({
  name: "answer",
  instructions: "Answer with ok.",
  input: [{ role: "user", content: "go" }],
  schema: Answer,
  key: "sample-0001",
  onAttempt
})

const realistic = { baseDelayMs: 1_000, maxDelayMs: 8_000, maxRetryAfterMs: 300_000, timeoutMs: 600_000 }

/** Runs `complete` in a fiber, advancing the TestClock until it finishes; returns the exit and call times. */
const runScripted = (
  replies: ReadonlyArray<ScriptedReply>,
  settings: Record<string, number>,
  records?: Array<AttemptRecord>
) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    const { calls, llm } = makeScriptedLlm(
      (call) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          times.push(now)
          return replies[call.index]
        }),
      settings
    )
    const start = yield* Clock.currentTimeMillis
    const fiber = yield* Effect.fork(
      llm.complete(request(records === undefined ? undefined : (r) => Effect.sync(() => void records.push(r))))
    )
    for (let i = 0; i < 200 && fiber.unsafePoll() === null; i++) yield* TestClock.adjust("1 second")
    const exit = yield* Fiber.await(fiber)
    return { exit, times: times.map((t) => t - start), calls }
  })

const waits = (times: ReadonlyArray<number>) => times.slice(1).map((t, i) => t - times[i])

describe("retry schedule (scripted Llm, TestClock)", () => {
  it.effect("waits what Retry-After says, then succeeds", () =>
    Effect.gen(function*() {
      const { exit, times } = yield* runScripted(
        [
          new RateLimited({ reason: "slow down", retryAfterMs: 7_000 }),
          new RateLimited({ reason: "slow down", retryAfterMs: 2_500 }),
          { json: { ok: true } }
        ],
        realistic
      )
      expect(times).toEqual([0, 7_000, 9_500])
      expect(Exit.isSuccess(exit)).toBe(true)
      if (Exit.isSuccess(exit)) {
        expect(exit.value.value).toEqual({ ok: true })
        expect(exit.value.attempts).toBe(3)
        expect(exit.value.durationMs).toBe(9_500)
      }
    }))

  it.effect("a server-requested wait is capped by maxRetryAfterMs", () =>
    Effect.gen(function*() {
      const { times } = yield* runScripted(
        [new RateLimited({ reason: "slow down", retryAfterMs: 3_600_000 }), { json: { ok: true } }],
        { ...realistic, maxRetryAfterMs: 30_000 }
      )
      expect(times).toEqual([0, 30_000])
    }))

  it.effect("backoff grows exponentially (jittered ±20%) and is capped", () =>
    Effect.gen(function*() {
      const failures = Array.from({ length: 6 }, () => new Transient({ reason: "HTTP 503", httpStatus: 503 }))
      const { exit, times } = yield* runScripted([...failures, { json: { ok: true } }], {
        ...realistic,
        maxRetries: 6
      })
      expect(Exit.isSuccess(exit)).toBe(true)
      const w = waits(times)
      expect(w).toHaveLength(6) // base 1 s doubling: 1, 2, 4 s within ±20%, then the 8 s cap
      ;[1_000, 2_000, 4_000].forEach((nominal, i) => {
        expect(w[i]).toBeGreaterThanOrEqual(nominal * 0.8)
        expect(w[i]).toBeLessThanOrEqual(nominal * 1.2)
      })
      for (let i = 1; i < w.length; i++) expect(w[i]).toBeGreaterThanOrEqual(w[i - 1])
      expect(w.every((x) => x <= 8_000)).toBe(true)
      expect(w.slice(4)).toEqual([8_000, 8_000])
    }))

  it.effect("stops after maxRetries and fails with the last error", () =>
    Effect.gen(function*() {
      const failures = Array.from({ length: 10 }, (_, i) => new Transient({ reason: `reset ${i + 1}` }))
      const { calls, exit } = yield* runScripted(failures, { ...realistic, maxRetries: 2 })
      expect(calls).toHaveLength(3)
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        expect(error).toBeInstanceOf(Transient)
        expect((error as Transient).reason).toBe("reset 3")
      }
    }))

  const nonRetryable: ReadonlyArray<[string, ScriptedReply]> = [
    ["BadRequest", new BadRequest({ reason: "bad", param: "model", code: null })],
    ["Authentication", new Authentication({ reason: "Incorrect API key", httpStatus: 401 })],
    ["QuotaExceeded", new QuotaExceeded({ reason: "You exceeded your current quota" })],
    ["InvalidOutput", { text: "{\"ok\": \"yes\"}" }],
    ["InvalidOutput", { text: "{\"ok\": tru" }],
    ["Refusal", { refusal: "I can't help with that." }],
    ["Truncated", { truncated: "{\"ok\": tr" }]
  ]
  for (const [tag, reply] of nonRetryable) {
    it.effect(`${tag} fails at once, without waiting or retrying`, () =>
      Effect.gen(function*() {
        const records: Array<AttemptRecord> = []
        const { calls, exit, times } = yield* runScripted([reply, { json: { ok: true } }], realistic, records)
        expect(calls).toHaveLength(1)
        expect(times).toEqual([0])
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit) && exit.cause._tag === "Fail") expect((exit.cause.error as LlmError)._tag).toBe(tag)
        expect(records.map((r) => r.status)).toEqual([tag])
      }))
  }

  it.effect("a hung attempt is interrupted at the per-attempt timeout, then retried", () =>
    Effect.gen(function*() {
      const records: Array<AttemptRecord> = []
      const { exit, times } = yield* runScripted(
        [{ hang: true }, { json: { ok: true } }],
        { ...realistic, timeoutMs: 200, baseDelayMs: 1_000 },
        records
      )
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(records.map((r) => r.status)).toEqual(["Timeout", "ok"])
      expect(records[0].durationMs).toBe(200)
      expect(records[0].error).toMatch(/did not answer within 0\.2 s/)
      // timeout at 200 ms, then a backoff of 1 s ± 20%
      expect(times[1] - 200).toBeGreaterThanOrEqual(800)
      expect(times[1] - 200).toBeLessThanOrEqual(1_200)
    }))

  it.effect("every attempt is reported, failures included, with usage of answers that were paid for", () =>
    Effect.gen(function*() {
      const records: Array<AttemptRecord> = []
      yield* runScripted(
        [new Transient({ reason: "HTTP 502", httpStatus: 502 }), {
          json: { ok: true },
          usage: { input: 10, output: 5 }
        }],
        realistic,
        records
      )
      expect(records.map((r) => [r.attempt, r.status])).toEqual([[1, "Transient"], [2, "ok"]])
      expect(records[1].usage).toMatchObject({ input: 10, output: 5 })
      expect(records[1].request).toMatchObject({ model: "gpt-5-mini", reasoning: { effort: "high" } })
    }))
})

describe("retry-after parsing and delay choice", () => {
  it("reads retry-after-ms first, then retry-after seconds or an HTTP date", () => {
    const headers = (h: Record<string, string>) => (name: string) => h[name]
    expect(parseRetryAfter(headers({ "retry-after-ms": "250", "retry-after": "9" }))).toBe(250)
    expect(parseRetryAfter(headers({ "retry-after": "1.5" }))).toBe(1_500)
    const now = Date.parse("2026-01-01T00:00:00Z")
    expect(parseRetryAfter(headers({ "retry-after": "Thu, 01 Jan 2026 00:00:30 GMT" }), now)).toBe(30_000)
    expect(parseRetryAfter(headers({}))).toBeUndefined()
    expect(parseRetryAfter(headers({ "retry-after": "soon" }))).toBeUndefined()
  })

  it("uses the server's wait for rate limits and the capped backoff otherwise", () => {
    const policy = { maxRetries: 4, baseDelayMs: 1_000, maxDelayMs: 8_000, maxRetryAfterMs: 60_000 }
    expect(retryDelayMs(new RateLimited({ reason: "", retryAfterMs: 20_000 }), 1_000, policy)).toBe(20_000)
    expect(retryDelayMs(new RateLimited({ reason: "", retryAfterMs: 90_000 }), 1_000, policy)).toBe(60_000)
    expect(retryDelayMs(new RateLimited({ reason: "" }), 3_000, policy)).toBe(3_000)
    expect(retryDelayMs(new Transient({ reason: "" }), 50_000, policy)).toBe(8_000)
    // A 503 (any retried status) with a server-named wait follows it too.
    expect(retryDelayMs(new Transient({ reason: "", httpStatus: 503, retryAfterMs: 12_000 }), 1_000, policy)).toBe(
      12_000
    )
  })

  it("reads x-ratelimit-reset-* durations and picks the limit that ran out", () => {
    expect(parseResetDuration("1s")).toBe(1_000)
    expect(parseResetDuration("6m0s")).toBe(360_000)
    expect(parseResetDuration("20ms")).toBe(20)
    expect(parseResetDuration("1h2m3.5s")).toBe(3_723_500)
    expect(parseResetDuration("soon")).toBeUndefined()
    const headers = (h: Record<string, string>) => (name: string) => h[name]
    const reset = { "x-ratelimit-reset-requests": "2s", "x-ratelimit-reset-tokens": "30s" }
    expect(parseRateLimitReset(headers({ ...reset, "x-ratelimit-remaining-requests": "0" }))).toBe(2_000)
    expect(parseRateLimitReset(headers({ ...reset, "x-ratelimit-remaining-tokens": "0" }))).toBe(30_000)
    expect(parseRateLimitReset(headers(reset))).toBe(30_000)
    expect(parseRateLimitReset(headers({}))).toBeUndefined()
  })
})

describe("pacing inside the Llm layer", () => {
  it.live("every HTTP attempt waits for the limiter, retries included, counting schema and max_output_tokens", () =>
    Effect.gen(function*() {
      const acquired: Array<number> = []
      const limiter = { acquire: (tokens: number) => Effect.sync(() => void acquired.push(tokens)) }
      const { llm } = makeScriptedLlm(
        [new Transient({ reason: "HTTP 500", httpStatus: 500 }), new RateLimited({ reason: "slow" }), {
          json: { ok: true }
        }],
        { maxOutputTokens: 4_000 },
        limiter
      )
      yield* Effect.either(llm.complete(request()))
      expect(acquired).toHaveLength(3)
      const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] }
      const expected = paceTokens(request(), schema, 4_000)
      expect(acquired[0]).toBeGreaterThan(4_000)
      expect(new Set(acquired).size).toBe(1)
      // The schema's own tokens are in the count: a larger schema counts more.
      const big = { ...schema, description: "x ".repeat(2_000) }
      expect(paceTokens(request(), big, 4_000)).toBeGreaterThan(expected)
    }))
})

describe("what a failed call means for the run (failureScope)", () => {
  const bad = (reason: string, code: string | null = null, param: string | null = null) =>
    new BadRequest({ reason, code, param, httpStatus: 400 })
  it("per-request 400s (context length, content policy, flagged prompt) concern one sample", () => {
    expect(failureScope(bad("This model's maximum context length is 128000 tokens.", "context_length_exceeded")))
      .toBe("sample")
    expect(
      failureScope(
        bad("Invalid prompt: your prompt was flagged as potentially violating our usage policy.", "invalid_prompt")
      )
    ).toBe("sample")
    expect(failureScope(bad("Your request was rejected as a result of our safety system."))).toBe("sample")
    expect(failureScope(new Refusal({ refusal: "no", raw: {} }))).toBe("sample")
    expect(failureScope(new Transient({ reason: "HTTP 500" }))).toBe("sample")
  })
  it("credentials, quota, unknown model and a refused output schema stop the run", () => {
    expect(failureScope(new Authentication({ reason: "Incorrect API key", httpStatus: 401 }))).toBe("run")
    expect(failureScope(new QuotaExceeded({ reason: "quota" }))).toBe("run")
    expect(failureScope(new NotFound({ reason: "The model `gpt-9` does not exist", code: "model_not_found" })))
      .toBe("run")
    expect(
      failureScope(
        bad("Invalid schema for response_format 'skyrl_task': ...", "invalid_json_schema", "text.format.schema")
      )
    ).toBe("run")
    expect(failureScope(bad("Unsupported parameter: 'temperature'", "unsupported_parameter", "temperature")))
      .toBe("run")
  })
})

describe("logRetry", () => {
  it.effect("names a sample's call as the run's other lines do (1-based, attempt, repair), not by its key", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const logger = Logger.make(({ message }) => void lines.push(String(message)))
      const log = (key: string | undefined) =>
        logRetry(key, 3)(new Transient({ reason: "HTTP 500" }), 2000, 1).pipe(
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
      yield* log("sample-000000")
      yield* log("sample-000006-a2-repair")
      yield* log("stage-domains")
      expect(lines).toEqual([
        "sample 1 attempt 1: temporary failure of the model API: HTTP 500; retry 1/3 in 2.0 s",
        "sample 7 attempt 2 repair: temporary failure of the model API: HTTP 500; retry 1/3 in 2.0 s",
        "temporary failure of the model API: HTTP 500; retry 1/3 in 2.0 s"
      ])
    }))
})

describe("withRetry", () => {
  const policy = { maxRetries: 3, baseDelayMs: 1_000, maxDelayMs: 8_000, maxRetryAfterMs: 300_000 }
  const limited = (ms: number) => new RateLimited({ reason: "slow down", retryAfterMs: ms })
  /** Each run's outcome in turn (then success), with the clock time of each run and what ended it. */
  const scripted = (
    outcomes: ReadonlyArray<LlmError>,
    retried: (attempt: Effect.Effect<number, LlmError>) => Effect.Effect<number, LlmError>
  ) =>
    Effect.gen(function*() {
      const times: Array<number> = []
      const attempt = Effect.flatMap(Clock.currentTimeMillis, (now) => {
        times.push(now)
        const outcome = outcomes[times.length - 1]
        return outcome === undefined ? Effect.succeed(times.length) : Effect.fail(outcome)
      })
      const fiber = yield* Effect.fork(retried(attempt))
      for (let i = 0; i < 100 && fiber.unsafePoll() === null; i++) yield* TestClock.adjust("1 second")
      return { exit: yield* Fiber.await(fiber), times }
    })

  it.effect("runs and waits as Effect.retry with the retry schedule does (the schedule made on the first failure)", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<ReadonlyArray<LlmError>> = [
        [],
        [limited(2_000)],
        [limited(3_000), limited(5_000), limited(1_000)],
        [limited(1_000), limited(1_000), limited(1_000), limited(1_000)],
        [new Authentication({ reason: "bad key", httpStatus: 401 })],
        [limited(2_000), new BadRequest({ reason: "no", param: null, code: null, httpStatus: 400 })]
      ]
      for (const outcomes of cases) {
        const ours = yield* scripted(outcomes, (a) => withRetry(a, policy))
        const theirs = yield* scripted(outcomes, (a) => Effect.retry(a, retrySchedule(policy)))
        expect(waits(ours.times)).toEqual(waits(theirs.times))
        expect(ours.exit).toEqual(theirs.exit)
      }
    }))
})
