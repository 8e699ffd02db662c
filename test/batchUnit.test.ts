/**
 * The pieces of the batch backend without the CLI: splitting into parts, reading output/error lines,
 * joining on custom_id + body hash, the batch-replay Llm (answer, online repair, deferral), the
 * polling schedule, batch pricing, and the live BatchClient (openai SDK, maxRetries 0) against the
 * fake Files/Batches server with faults retried by the Effect schedule.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Exit, Fiber, Redacted, Schedule, Schema } from "effect"
import { afterEach } from "vitest"
import type { AttemptRecord } from "../src/domain/llm.js"
import { makeLlmSettings } from "../src/domain/llm.js"
import type { Usage } from "../src/domain/llm.js"
import type { LedgerEntry } from "../src/domain/run.js"
import { pollSchedule, splitLines } from "../src/programs/batch.js"
import { sampleKey } from "../src/programs/sampling.js"
import { makeCostLedger } from "../src/services/CostLedger.js"
import type { LlmApi, LlmRequest } from "../src/services/Llm.js"
import { buildBody } from "../src/services/llm/answer.js"
import { makeBatchClient } from "../src/services/llm/batch.js"
import type { DeferredRequest } from "../src/services/llm/batchReplay.js"
import {
  BatchAnswers,
  bodyHash,
  isFirstAttemptKey,
  lineError,
  makeBatchLlm,
  makeGate,
  parseBatchLines
} from "../src/services/llm/batchReplay.js"
import { answerBody } from "./support/apiBodies.js"
import type { BatchFake } from "./support/fakeBatch.js"
import { lineAnswer, startBatchFake } from "./support/fakeBatch.js"

const Answer = Schema.Struct({ ok: Schema.Boolean })
const bodySettings = { model: "gpt-5-mini", reasoningEffort: "high" as const, maxOutputTokens: 1000 }
const request = (key: string, onAttempt?: (r: AttemptRecord) => Effect.Effect<void>): LlmRequest<any, any> => ({
  name: "answer",
  instructions: "Answer with ok.",
  input: [{ role: "user", content: `go ${key}` }],
  schema: Answer,
  jsonSchema: {
    type: "object",
    properties: { ok: { type: "boolean" } },
    required: ["ok"],
    additionalProperties: false
  },
  key,
  onAttempt
})
const bodyOf = (key: string) => buildBody("responses", bodySettings, request(key), request(key).jsonSchema!)

const outputLine = (customId: string, text: string, status = 200) =>
  JSON.stringify({
    id: "batch_req_1",
    custom_id: customId,
    response: {
      status_code: status,
      request_id: "req_1",
      body: status === 200 ? answerBody("responses", text) : {
        error: { message: text, type: "invalid_request_error", param: "input", code: null }
      }
    },
    error: null
  })

describe("splitLines", () => {
  it("cuts at the request limit", () => {
    const lines = Array.from({ length: 10 }, (_, i) => `{"n":${i}}`)
    expect(splitLines(lines, { maxRequests: 4, maxBytes: 1e9 }).map((c) => c.length)).toEqual([4, 4, 2])
  })
  it("cuts at the byte limit (newlines counted) and refuses a line larger than a file may be", () => {
    const line = "x".repeat(99) // 100 bytes with its newline
    expect(splitLines([line, line, line, line, line], { maxRequests: 100, maxBytes: 250 }).map((c) => c.length))
      .toEqual([2, 2, 1])
    expect(splitLines([line, line], { maxRequests: 100, maxBytes: 200 }).map((c) => c.length)).toEqual([2])
    expect(() => splitLines(["y".repeat(300)], { maxRequests: 100, maxBytes: 250 })).toThrow(/more than the 250-byte/)
  })
})

describe("batch output lines", () => {
  it("reads answers, error responses, line errors; counts unreadable lines", () => {
    const text = [
      outputLine("r:sample-000000", "{\"ok\":true}"),
      outputLine("r:sample-000001", "bad param", 400),
      JSON.stringify({
        id: "b3",
        custom_id: "r:sample-000002",
        response: null,
        error: { code: "batch_expired", message: "not run in time" }
      }),
      "{not json",
      JSON.stringify({ id: "no custom id" }),
      ""
    ].join("\n")
    const { lines, unreadable } = parseBatchLines(text, 1, "batch_a", "2025-01-01T00:00:00.000Z")
    expect(unreadable).toBe(2)
    expect(lines.map((l) => l.customId)).toEqual(["r:sample-000000", "r:sample-000001", "r:sample-000002"])
    // The answer's own creation time (responsesBody: created_at 1_760_000_000), else the fallback.
    expect(lines[0].answeredAt).toBe(new Date(1_760_000_000_000).toISOString())
    expect(lines[2].answeredAt).toBe("2025-01-01T00:00:00.000Z")
    const bad = lineError(lines[1])
    expect(bad._tag).toBe("BadRequest")
    expect(bad.message).toMatch(/param input.*bad param/)
    expect(lineError(lines[2])._tag).toBe("Transient")
    expect(lineError(lines[2]).message).toMatch(/batch_expired: not run in time/)
    expect(lineError({ ...lines[1], statusCode: 429 })._tag).toBe("RateLimited")
    expect(lineError({ ...lines[1], statusCode: 503 })._tag).toBe("Transient")
  })

  it("a line whose creation time is no date (microseconds: 1.76e15) keeps the fallback time, the other lines read", () => {
    const line = (id: string, created: number) => {
      const value = JSON.parse(outputLine(id, "{\"ok\":true}"))
      value.response.body.created_at = created
      return JSON.stringify(value)
    }
    const text = [line("r:sample-000000", 1_760_000_000_000_000), line("r:sample-000001", 1_760_000_000)].join("\n")
    const { lines } = parseBatchLines(text, 1, "batch_a", "2025-01-01T00:00:00.000Z")
    expect(lines.map((l) => l.answeredAt)).toEqual(["2025-01-01T00:00:00.000Z", "2025-10-09T08:53:20.000Z"])
  })

  it("joins on custom_id and the submitted body: newest answer wins, errors next, stale bodies never", () => {
    const answers = new BatchAnswers()
    const h = bodyHash(bodyOf("sample-000000"))
    answers.addSubmitted("r:sample-000000", 1, h)
    answers.addSubmitted("r:sample-000000", 3, h)
    for (const l of parseBatchLines(outputLine("r:sample-000000", "{\"ok\":false}"), 1, "b1", "t").lines) {
      answers.addLine(l)
    }
    for (const l of parseBatchLines(outputLine("r:sample-000000", "{\"ok\":true}"), 3, "b3", "t").lines) {
      answers.addLine(l)
    }
    const found = answers.lookup("r:sample-000000", h)
    expect(found.kind).toBe("answer")
    expect(found.kind === "answer" && found.line.batchId).toBe("b3")
    expect(answers.lookup("r:sample-000000", "another-hash").kind).toBe("mismatch")
    expect(answers.lookup("r:sample-000009", h).kind).toBe("none")
    answers.addSubmitted("r:sample-000001", 1, bodyHash(bodyOf("sample-000001")))
    for (const l of parseBatchLines(outputLine("r:sample-000001", "nope", 500), 1, "b1", "t").lines) answers.addLine(l)
    expect(answers.lookup("r:sample-000001", bodyHash(bodyOf("sample-000001"))).kind).toBe("error")
  })

  it("tells first attempts from repairs and retries, on the keys the sampling engine makes", () => {
    expect(isFirstAttemptKey(sampleKey(7, 1, "task"))).toBe(true)
    expect(isFirstAttemptKey(sampleKey(7, 1, "repair"))).toBe(false)
    expect(isFirstAttemptKey(sampleKey(7, 2, "task"))).toBe(false)
    expect(isFirstAttemptKey(sampleKey(7, 3, "repair"))).toBe(false)
    expect(isFirstAttemptKey(sampleKey(123456, 1, "task"))).toBe(true)
  })
})

/** A batch-replay Llm over one line for the first attempt of sample 0 (and its body's hash). */
const over = (line: string, repairs: "online" | "batch", online?: LlmApi, maxRetries = 2) => {
  const answers = new BatchAnswers()
  const key = sampleKey(0, 1, "task")
  answers.addSubmitted(`run1:${key}`, 1, bodyHash(bodyOf(key)))
  for (const l of parseBatchLines(line, 1, "batch_x", "t").lines) answers.addLine(l)
  const deferred = new Map<string, DeferredRequest>()
  const llm = makeBatchLlm({
    runId: "run1",
    endpoint: "responses",
    body: bodySettings,
    answers,
    repairs,
    online,
    onlineConcurrency: 1,
    maxRetries,
    deferred,
    describe: "test"
  })
  return { answers, deferred, llm }
}

describe("the batch-replay Llm", () => {
  const setup = (repairs: "online" | "batch", online?: LlmApi) =>
    over(outputLine(`run1:${sampleKey(0, 1, "task")}`, "{\"ok\":true}"), repairs, online)

  it.effect("answers from the batch line, decoded like a live answer, and reports the line as the attempt", () =>
    Effect.gen(function*() {
      const { llm } = setup("online")
      const records: Array<any> = []
      const api = yield* llm
      const result = yield* api.complete(request(sampleKey(0, 1, "task"), (r) => Effect.sync(() => records.push(r))))
      expect(result.value).toEqual({ ok: true })
      expect(result.backend).toBe("responses")
      expect(records).toHaveLength(1)
      expect(records[0]).toMatchObject({ status: "ok", batch_id: "batch_x", custom_id: "run1:sample-000000" })
      expect(records[0].request).toEqual(bodyOf("sample-000000"))
    }))

  it.effect("sends a repair online when repairs are online; its attempts carry no batch_id (full price)", () =>
    Effect.gen(function*() {
      const asked: Array<string | undefined> = []
      const records: Array<any> = []
      const online: LlmApi = {
        describe: "fake online",
        complete: (req) =>
          Effect.gen(function*() {
            asked.push(req.key)
            yield* req.onAttempt!({
              attempt: 1,
              backend: "responses",
              model: "m",
              request: {},
              status: "ok",
              usage: { input: 10, cached: 0, output: 5, reasoning: 0 },
              durationMs: 1,
              startedAt: "t"
            })
            return { value: { ok: true } } as any
          })
      }
      const { llm } = setup("online", online)
      const api = yield* llm
      yield* api.complete(request(sampleKey(0, 1, "repair"), (r) => Effect.sync(() => records.push(r))))
      expect(asked).toEqual(["sample-000000-repair"])
      expect(records).toHaveLength(1)
      expect("batch_id" in records[0]).toBe(false)
    }))

  it.live(
    "holds a repair for a follow-up batch when repairs go by batch (the call waits)",
    () =>
      Effect.gen(function*() {
        const { deferred, llm } = setup("batch")
        const api = yield* llm
        const fiber = yield* Effect.fork(api.complete(request(sampleKey(0, 1, "repair"))))
        yield* Effect.sleep(Duration.millis(20))
        expect(fiber.unsafePoll()).toBeNull()
        expect([...deferred.keys()]).toEqual(["run1:sample-000000-repair"])
        expect(deferred.get("run1:sample-000000-repair")!.body).toEqual(bodyOf("sample-000000-repair"))
        const exit = yield* Fiber.interrupt(fiber)
        expect(Exit.isInterrupted(exit)).toBe(true)
      }),
    { timeout: 5_000 }
  )
})

describe("lines that failed", () => {
  const errorLine = (customId: string, code: string) =>
    JSON.stringify({ id: "b", custom_id: customId, response: null, error: { code, message: `${code} happened` } })
  const answersOf = (texts: ReadonlyArray<readonly [part: number, text: string]>) => {
    const answers = new BatchAnswers()
    for (const [part, text] of texts) {
      for (const l of parseBatchLines(text, part, `b${part}`, "t").lines) {
        answers.addSubmitted(l.customId, part, "h")
        answers.addLine(l)
      }
    }
    return answers
  }

  it("are classified as the same answer online would be: transient, refused for the request, or lost", () => {
    const answers = answersOf([
      [1, outputLine("r:sample-000000", "{\"ok\":true}")],
      [1, outputLine("r:sample-000001", "boom", 500)],
      [1, outputLine("r:sample-000002", "slow down", 429)],
      [1, outputLine("r:sample-000003", "bad input", 400)],
      [1, errorLine("r:sample-000004", "batch_expired")],
      [1, errorLine("r:sample-000005", "request_timeout")],
      [2, errorLine("r:sample-000006", "batch_expired")],
      [1, errorLine("r:sample-000007", "batch_cancelled")]
    ])
    const failureOf = (id: string) => {
      const found = answers.lookup(id, "h")
      return found.kind === "error" ? answers.failureOf(found.line) : found.kind
    }
    expect(failureOf("r:sample-000000")).toBe("answer")
    expect(failureOf("r:sample-000001")).toBe("retry")
    expect(failureOf("r:sample-000002")).toBe("retry")
    expect(failureOf("r:sample-000003")).toBe("fail")
    // Expired beside answers of its batch: transient; in a batch that answered nothing: lost (--resubmit).
    expect(failureOf("r:sample-000004")).toBe("retry")
    expect(failureOf("r:sample-000005")).toBe("retry")
    expect(failureOf("r:sample-000006")).toBe("lost")
    expect(failureOf("r:sample-000007")).toBe("lost")
    expect(answers.failures("r:sample-000001", "h")).toBe(1)
    expect(answers.anyAnswered).toBe(true)
  })

  const onlineOk = (asked: Array<string | undefined>): LlmApi => ({
    describe: "fake online",
    complete: (req) => Effect.sync(() => void asked.push(req.key)).pipe(Effect.as({ value: { ok: true } } as any))
  })

  it.effect("a transient line goes online (repairs online), reported first as the failed attempt it was", () =>
    Effect.gen(function*() {
      const asked: Array<string | undefined> = []
      const records: Array<any> = []
      const api = yield* over(outputLine("run1:sample-000000", "boom", 500), "online", onlineOk(asked)).llm
      const result = yield* api.complete(request(sampleKey(0, 1, "task"), (r) => Effect.sync(() => records.push(r))))
      expect(result.value).toEqual({ ok: true })
      expect(asked).toEqual(["sample-000000"])
      expect(records).toHaveLength(1)
      expect(records[0]).toMatchObject({ status: "Transient", batch_id: "batch_x", httpStatus: 500 })
      // The error's own fields, so a replay from the archive fails the same way.
      expect(records[0].errorDetail).toMatchObject({ _tag: "Transient", httpStatus: 500 })
    }))

  it.live(
    "a transient line is held for a follow-up batch (repairs batch) until it failed more than maxRetries times",
    () =>
      Effect.gen(function*() {
        const line = outputLine("run1:sample-000000", "boom", 503)
        const once = over(line, "batch", undefined, 1)
        const fiber = yield* Effect.fork(
          once.llm.pipe(Effect.flatMap((api) => api.complete(request(sampleKey(0, 1, "task")))))
        )
        yield* Effect.sleep(Duration.millis(20))
        expect(fiber.unsafePoll()).toBeNull()
        expect(once.deferred.get("run1:sample-000000")!.body).toEqual(bodyOf("sample-000000"))
        yield* Fiber.interrupt(fiber)
        // The same request failed in a second batch too: with maxRetries 1, the attempt fails with the line's error.
        const twice = over(line, "batch", undefined, 1)
        for (const l of parseBatchLines(line, 2, "batch_y", "t").lines) {
          twice.answers.addSubmitted("run1:sample-000000", 2, bodyHash(bodyOf("sample-000000")))
          twice.answers.addLine(l)
        }
        const exit = yield* twice.llm.pipe(
          Effect.flatMap((api) => api.complete(request(sampleKey(0, 1, "task")))),
          Effect.exit
        )
        expect(JSON.stringify(exit)).toMatch(/Transient/)
        expect(twice.deferred.size).toBe(0)
      }),
    { timeout: 5_000 }
  )

  it.effect("a line refused for its request fails the call with the API's message: nothing online, nothing held", () =>
    Effect.gen(function*() {
      const asked: Array<string | undefined> = []
      const { deferred, llm } = over(outputLine("run1:sample-000000", "input too odd", 400), "online", onlineOk(asked))
      const api = yield* llm
      const error = yield* api.complete(request(sampleKey(0, 1, "task"))).pipe(Effect.flip)
      expect(error._tag).toBe("BadRequest")
      expect(error.message).toMatch(/the model API rejected the request \(param input\): input too odd/)
      expect(asked).toEqual([])
      expect(deferred.size).toBe(0)
    }))
})

describe("makeGate", () => {
  it.live(
    "lets at most n through, in arrival order, with thousands waiting; an interrupted waiter leaves",
    () =>
      Effect.gen(function*() {
        const gate = makeGate(3)
        let running = 0
        let most = 0
        const order: Array<number> = []
        const work = (i: number) =>
          gate(Effect.gen(function*() {
            running++
            most = Math.max(most, running)
            order.push(i)
            yield* Effect.yieldNow()
            running--
          }))
        const started = Date.now()
        yield* Effect.forEach(Array.from({ length: 5000 }, (_, i) => i), work, {
          concurrency: "unbounded",
          discard: true
        })
        expect(most).toBe(3)
        expect(order).toEqual(Array.from({ length: 5000 }, (_, i) => i))
        expect(Date.now() - started).toBeLessThan(5_000)
        // A waiter interrupted before its turn does not take a permit.
        const blocker = yield* Effect.fork(gate(Effect.never))
        const blockers = yield* Effect.forEach([1, 2], () => Effect.fork(gate(Effect.never)))
        const waiter = yield* Effect.fork(gate(Effect.succeed("ran")))
        yield* Effect.sleep(Duration.millis(5))
        yield* Fiber.interrupt(waiter)
        yield* Fiber.interrupt(blocker)
        const after = yield* gate(Effect.succeed("next"))
        expect(after).toBe("next")
        yield* Effect.forEach(blockers, Fiber.interrupt)
      }),
    { timeout: 20_000 }
  )
})

describe("polling and prices", () => {
  it.effect("the poll interval grows ×1.5 from --poll-interval and stops growing at the cap", () =>
    Effect.gen(function*() {
      const delays = yield* Schedule.run(
        Schedule.delays(pollSchedule({ intervalMs: 1000, maxIntervalMs: 4000 })),
        0,
        [1, 2, 3, 4, 5, 6]
      )
      expect(Chunk.toReadonlyArray(delays).map(Duration.toMillis)).toEqual([1000, 1500, 2250, 3375, 4000, 4000])
    }))

  it.effect("the cost ledger prices batch answers at half and online calls in full, each counted once", () =>
    Effect.gen(function*() {
      const lines: Array<LedgerEntry> = []
      const call = (key: string, batch: boolean, usage: Usage) => ({
        key,
        sample: 0,
        attempt: 1,
        purpose: "task",
        status: "ok",
        model: "gpt-5-mini",
        batch,
        usage,
        at: "t"
      })
      const ledger = yield* makeCostLedger("gpt-5-mini", [], (e) => Effect.sync(() => (lines.push(e), Effect.void)))
      yield* ledger.record(
        call("task_0001_c01.json", true, { input: 2_000_000, cached: 1_000_000, output: 500_000, reasoning: 500_000 })
      )
      yield* ledger.record(
        call("task_0001_c02.json", false, { input: 1_000_000, cached: 0, output: 500_000, reasoning: 0 })
      )
      // The same call again (replayed from the archive): not counted twice.
      yield* ledger.record(
        call("task_0001_c02.json", false, { input: 1_000_000, cached: 0, output: 500_000, reasoning: 0 })
      )
      const totals = yield* ledger.totals
      // gpt-5-mini: batch 2M in (1M cached) 0.5M out = (0.25 + 0.025 + 1.0) / 2; online 1M in, 0.5M out = 0.25 + 1.0
      expect(totals.costUsd).toBeCloseTo(1.275 / 2 + 1.25, 10)
      expect(totals.calls).toBe(2)
      expect(lines).toHaveLength(2)
      expect(totals.onlineUsage).toEqual({ input: 1_000_000, cached: 0, output: 500_000, reasoning: 0 })
      const unpriced = yield* makeCostLedger("unknown-model", [], () => Effect.succeed(Effect.void))
      yield* unpriced.record(call("task_0001_c01.json", true, { input: 10, cached: 0, output: 5, reasoning: 0 }))
      expect((yield* unpriced.totals).costUsd).toBeUndefined()
    }))

  it.effect("a batch output line is counted once under any call name; online calls and old lines each count", () =>
    Effect.gen(function*() {
      const usage = { input: 1_000_000, cached: 0, output: 500_000, reasoning: 0 }
      const entry = (key: string, batchId: string | undefined) => ({
        key,
        sample: 3,
        attempt: 1,
        purpose: "task",
        status: "ok",
        model: "gpt-5-mini",
        batch: batchId !== undefined,
        ...(batchId === undefined ? {} : { batch_id: batchId }),
        usage,
        at: "t"
      })
      // gpt-5-mini: 1M in, 0.5M out = 0.25 + 1.0 online, half that as a batch answer.
      const written: Array<LedgerEntry> = []
      const ledger = yield* makeCostLedger("gpt-5-mini", [], (e) => Effect.sync(() => (written.push(e), Effect.void)))
      yield* ledger.record(entry("task_0004_c01.json", "batch_1"))
      // The same line archived again under a new name (archive and journal deleted, collected again).
      yield* ledger.record(entry("task_0004_c02.json", "batch_1"))
      // The same request answered by a follow-up batch: another line, another charge.
      yield* ledger.record(entry("task_0004_c03.json", "batch_2"))
      // Online attempts of the same request: each HTTP attempt is paid.
      yield* ledger.record(entry("task_0004_c04.json", undefined))
      yield* ledger.record(entry("task_0004_c05.json", undefined))
      expect(written.map((e) => e.key)).toEqual([
        "task_0004_c01.json",
        "task_0004_c03.json",
        "task_0004_c04.json",
        "task_0004_c05.json"
      ])
      expect(written[0].batch_id).toBe("batch_1")
      const totals = yield* ledger.totals
      expect(totals.calls).toBe(4)
      expect(totals.costUsd).toBeCloseTo(2 * 0.625 + 2 * 1.25, 10)
      // Read back from a file holding the line twice: once. Lines without batch_id (older ledgers) read as before.
      const withId = yield* makeCostLedger("gpt-5-mini", [
        { ...entry("task_0004_c01.json", "batch_1"), cost_usd: 0.625 },
        { ...entry("task_0004_c02.json", "batch_1"), cost_usd: 0.625 }
      ], () => Effect.succeed(Effect.void))
      expect((yield* withId.totals).calls).toBe(1)
      expect((yield* withId.totals).costUsd).toBeCloseTo(0.625, 10)
      const old = (key: string) => {
        const { batch_id: _, ...e } = { ...entry(key, "batch_1"), cost_usd: 0.625 }
        return e
      }
      const older = yield* makeCostLedger(
        "gpt-5-mini",
        [old("task_0004_c01.json"), old("task_0004_c02.json")],
        () => Effect.succeed(Effect.void)
      )
      expect((yield* older.totals).calls).toBe(2)
      expect((yield* older.totals).costUsd).toBeCloseTo(1.25, 10)
    }))
})

describe("the live BatchClient (openai SDK) against the fake Files/Batches API", () => {
  let fake: BatchFake | undefined
  afterEach(async () => {
    await fake?.close()
    fake = undefined
  })
  const settings = (baseUrl: string) =>
    makeLlmSettings({ baseUrl, baseDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 50, maxRetries: 3, timeoutMs: 10_000 })

  it("uploads, creates, retrieves and downloads; 429 and 500 are retried by the schedule, one HTTP call per attempt", async () => {
    const faults = new Map<number, { status: number; body: unknown; headers?: Record<string, string> }>([
      [2, {
        status: 429,
        body: { error: { message: "slow down", code: "rate_limit_exceeded" } },
        headers: { "retry-after-ms": "20" }
      }],
      [3, { status: 500, body: { error: { message: "oops" } } }]
    ])
    fake = await startBatchFake({ lines: () => lineAnswer("{\"ok\":true}"), fault: ({ index }) => faults.get(index) })
    const client = makeBatchClient(settings(fake.baseUrl), Redacted.make("sk-unit"))
    const line = JSON.stringify({
      custom_id: "r:sample-000000",
      method: "POST",
      url: "/v1/responses",
      body: bodyOf("sample-000000")
    })
    const program = Effect.gen(function*() {
      const file = yield* client.uploadFile("in.jsonl", line + "\n")
      const created = yield* client.createBatch({
        inputFileId: file.id,
        endpoint: "/v1/responses",
        metadata: { a: "b" }
      })
      let info = yield* client.retrieveBatch(created.id) // 429, 500, then in_progress
      while (info.status !== "completed") info = yield* client.retrieveBatch(created.id)
      return { file, created, info, output: yield* client.fileContent(info.outputFileId!) }
    })
    const { created, file, info, output } = await Effect.runPromise(program)
    expect(fake.files.get(file.id)!.content).toBe(line + "\n")
    expect(fake.files.get(file.id)!.purpose).toBe("batch")
    expect(created.status).toBe("validating")
    expect(fake.batches[0].metadata).toEqual({ a: "b" })
    expect(info.requestCounts).toEqual({ total: 1, completed: 1, failed: 0 })
    expect(JSON.parse(output.trim()).custom_id).toBe("r:sample-000000")
    const retrieves = fake.requests.filter((q) => q.method === "GET" && /\/batches\//.test(q.path))
    // 2 failed attempts + 4 successful steps (validating → in_progress → in_progress → finalizing → completed).
    expect(retrieves).toHaveLength(2 + 4)
    expect(retrieves[1].time - retrieves[0].time).toBeGreaterThanOrEqual(18)
  })

  it("lists files (purpose batch) and batches newest first, with each batch's metadata", async () => {
    fake = await startBatchFake({ lines: () => lineAnswer("{\"ok\":true}") })
    const client = makeBatchClient(settings(fake.baseUrl), Redacted.make("sk-unit"))
    const program = Effect.gen(function*() {
      const a = yield* client.uploadFile("run_batch_001_input.jsonl", "{}\n")
      const b = yield* client.uploadFile("run_batch_002_input.jsonl", "{}\n{}\n")
      const first = yield* client.createBatch({
        inputFileId: a.id,
        endpoint: "/v1/responses",
        metadata: { skyrl_run_id: "run", skyrl_part: "1" }
      })
      const second = yield* client.createBatch({
        inputFileId: b.id,
        endpoint: "/v1/responses",
        metadata: { skyrl_run_id: "run", skyrl_part: "2" }
      })
      return { files: yield* client.listFiles(undefined), batches: yield* client.listBatches(undefined), first, second }
    })
    const { batches, files, first, second } = await Effect.runPromise(program)
    expect(files.items.map((f) => [f.filename, f.bytes])).toEqual([
      ["run_batch_002_input.jsonl", 6],
      ["run_batch_001_input.jsonl", 3]
    ])
    expect(files.after).toBeUndefined()
    expect(batches.items.map((x) => [x.id, x.metadata.skyrl_part])).toEqual([[second.id, "2"], [first.id, "1"]])
    expect(fake.requests.find((q) => q.method === "GET" && q.path.endsWith("/files"))).toBeDefined()
  })

  it("a 400 fails at once with the API's message", async () => {
    fake = await startBatchFake({
      lines: () => lineAnswer("{}"),
      fault: ({ method }) =>
        method === "POST"
          ? { status: 400, body: { error: { message: "purpose must be batch", param: "purpose", code: null } } }
          : undefined
    })
    const client = makeBatchClient(settings(fake.baseUrl), Redacted.make("sk-unit"))
    const exit = await Effect.runPromiseExit(client.uploadFile("in.jsonl", "{}\n"))
    expect(Exit.isFailure(exit)).toBe(true)
    expect(JSON.stringify(exit)).toMatch(/purpose must be batch/)
    expect(fake.requests).toHaveLength(1)
  })
})
