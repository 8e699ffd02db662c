/**
 * Wire tests: the real openai SDK (through the live Llm layer) against the OpenAI-compatible fake
 * server on 127.0.0.1. Both backends, each error class, truncation, refusal, malformed JSON, a hung
 * request hitting the timeout, the reasoning and 404 fallbacks, and the API key never leaking.
 */
import { ConfigProvider, Effect, Either, Layer, Logger, LogLevel, Redacted, Schema } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import type { AttemptRecord, LlmError, LlmSettings } from "../src/domain/llm.js"
import { makeLlmSettings } from "../src/domain/llm.js"
import type { LlmApi, LlmRequest, LlmResult } from "../src/services/Llm.js"
import { Llm } from "../src/services/Llm.js"
import { LlmLive, makeLiveLlm } from "../src/services/llm/live.js"
import { rateLimiterLayer } from "../src/services/RateLimiter.js"
import { responsesBody } from "./support/apiBodies.js"
import type { FakeHandler, FakeReply, FakeServer } from "./support/fakeOpenAI.js"
import {
  answer,
  connectionReset,
  hang,
  httpError,
  malformedBody,
  rateLimited,
  refusal,
  serverError,
  start,
  truncated
} from "./support/fakeOpenAI.js"

const KEY = "sk-test-SKYRL-distinctive-7f3c9a1e5b2d4c6f"

const Step = Schema.Struct({
  server: Schema.String,
  tool: Schema.String,
  note: Schema.optional(Schema.String)
})
const Plan = Schema.Struct({ task_id: Schema.String, steps: Schema.Array(Step) })
type Plan = typeof Plan.Type
const PLAN = { task_id: "t-1", steps: [{ server: "fmp", tool: "fmp_get_quote", note: null }] }
const PLAN_TEXT = JSON.stringify(PLAN)

let fake: FakeServer | undefined
afterEach(async () => {
  await fake?.close()
  fake = undefined
})

const serve = async (handler: FakeHandler | ReadonlyArray<FakeReply>) => {
  fake = await start(handler)
  return fake
}

const settingsFor = (server: FakeServer, overrides: Partial<LlmSettings> = {}): LlmSettings =>
  makeLlmSettings({
    baseUrl: server.baseUrl,
    baseDelayMs: 5,
    maxDelayMs: 20,
    maxRetryAfterMs: 2_000,
    timeoutMs: 5_000,
    maxRetries: 2,
    ...overrides
  })

const liveFor = (server: FakeServer, overrides: Partial<LlmSettings> = {}) =>
  makeLiveLlm(settingsFor(server, overrides), Redacted.make(KEY))

interface Captured {
  readonly logs: Array<{ level: string; message: string }>
  readonly records: Array<AttemptRecord>
}

const request = (captured?: Captured): LlmRequest<Plan, typeof Plan.Encoded> => ({
  name: "skyrl plan",
  instructions: "You plan tool calls. Answer with JSON only.",
  input: [{ role: "user", content: "Quote AAPL." }],
  schema: Plan,
  key: "sample-0003",
  onAttempt: captured === undefined ? undefined : (r) => Effect.sync(() => void captured.records.push(r))
})

const capture = (): Captured => ({ logs: [], records: [] })

const complete = (
  llm: LlmApi,
  captured: Captured = capture()
): Promise<Either.Either<LlmResult<Plan>, LlmError>> => {
  const logger = Logger.make(({ logLevel, message }) => {
    captured.logs.push({
      level: logLevel.label,
      message: (Array.isArray(message) ? message : [message]).map(String).join(" ")
    })
  })
  return Effect.runPromise(
    Effect.either(llm.complete(request(captured))).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.All)
    )
  )
}

const ok = <A, E>(r: Either.Either<A, E>): A => {
  if (Either.isLeft(r)) throw new Error(`expected success, got ${String((r.left as any)?.message ?? r.left)}`)
  return r.right
}
const err = <A, E>(r: Either.Either<A, E>): E => {
  if (Either.isRight(r)) throw new Error("expected a failure")
  return r.left
}

describe("live Llm over the openai SDK: Responses backend", () => {
  it("sends the documented body and decodes the message item (not output[0])", async () => {
    const server = await serve([answer(PLAN_TEXT, { input: 1500, cached: 1024, output: 800, reasoning: 512 })])
    const captured = capture()
    const result = ok(await complete(liveFor(server), captured))

    expect(server.requests).toHaveLength(1)
    const sent = server.requests[0]
    expect(sent.path).toBe("/v1/responses")
    expect(sent.authorized).toBe(true)
    expect(sent.headers["x-stainless-retry-count"]).toBe("0")
    expect(sent.body).toMatchObject({
      model: "gpt-5-mini",
      instructions: "You plan tool calls. Answer with JSON only.",
      input: [{ role: "user", content: "Quote AAPL." }],
      reasoning: { effort: "high" },
      max_output_tokens: 32_000,
      store: false,
      text: { format: { type: "json_schema", name: "skyrl_plan", strict: true } }
    })
    expect(sent.body.reasoning_effort).toBeUndefined()
    const schema = sent.body.text.format.schema
    expect(schema.type).toBe("object")
    expect(schema.additionalProperties).toBe(false)
    expect(schema.required).toEqual(["task_id", "steps"])
    expect(schema.properties.steps.items.required).toEqual(["server", "tool", "note"])
    expect(schema.properties.steps.items.properties.note).toEqual({ type: ["string", "null"] })

    // the fake's answer puts a reasoning item first: output[0] has no text
    expect((result.raw as any).output[0].type).toBe("reasoning")
    expect(result.value).toEqual({ task_id: "t-1", steps: [{ server: "fmp", tool: "fmp_get_quote" }] })
    expect(result.text).toBe(PLAN_TEXT)
    expect(result.usage).toEqual({ input: 1500, cached: 1024, output: 800, reasoning: 512 })
    expect(result.requestId).toBe("req_fake_1")
    expect(result.backend).toBe("responses")
    expect(result.attempts).toBe(1)
    expect(result.request).toEqual(sent.body)
    expect(captured.records).toHaveLength(1)
    expect(captured.records[0]).toMatchObject({
      attempt: 1,
      backend: "responses",
      status: "ok",
      httpStatus: 200,
      requestId: "req_fake_1",
      usage: { input: 1500, cached: 1024, output: 800, reasoning: 512 }
    })
    expect(captured.records[0].request).toEqual(sent.body)
  })

  it("status incomplete → Truncated with the partial text and usage", async () => {
    const server = await serve([truncated("{\"task_id\": \"t-1\", \"st", "max_output_tokens")])
    const e = err(await complete(liveFor(server)))
    expect(e._tag).toBe("Truncated")
    if (e._tag !== "Truncated") return
    expect(e.reason).toBe("max_output_tokens")
    expect(e.text).toBe("{\"task_id\": \"t-1\", \"st")
    expect(e.usage?.output).toBeGreaterThan(0)
    expect(e.message).toMatch(/--max-output-tokens/)
    expect(server.requests).toHaveLength(1)
  })

  it("a refusal part → Refusal with the refusal text", async () => {
    const server = await serve([refusal("I can't help with that request.")])
    const e = err(await complete(liveFor(server)))
    expect(e._tag).toBe("Refusal")
    if (e._tag === "Refusal") expect(e.refusal).toBe("I can't help with that request.")
    expect(server.requests).toHaveLength(1)
  })
})

describe("live Llm over the openai SDK: Chat backend", () => {
  it("sends messages, reasoning_effort, response_format strict and max_completion_tokens", async () => {
    const server = await serve([answer(PLAN_TEXT, { input: 377, cached: 0, output: 8106, reasoning: 6272 })])
    const result = ok(await complete(liveFor(server, { backend: "chat", reasoningEffort: "medium" })))
    const sent = server.requests[0]
    expect(sent.path).toBe("/v1/chat/completions")
    expect(sent.body).toMatchObject({
      model: "gpt-5-mini",
      messages: [
        { role: "system", content: "You plan tool calls. Answer with JSON only." },
        { role: "user", content: "Quote AAPL." }
      ],
      reasoning_effort: "medium",
      max_completion_tokens: 32_000,
      response_format: { type: "json_schema", json_schema: { name: "skyrl_plan", strict: true } }
    })
    for (const absent of ["max_tokens", "temperature", "top_p", "reasoning", "store"]) {
      expect(sent.body[absent]).toBeUndefined()
    }
    expect(sent.body.response_format.json_schema.schema.additionalProperties).toBe(false)
    expect(result.value.steps[0].tool).toBe("fmp_get_quote")
    expect(result.usage).toEqual({ input: 377, cached: 0, output: 8106, reasoning: 6272 })
    expect(result.backend).toBe("chat")
  })

  it("finish_reason length → Truncated", async () => {
    const server = await serve([truncated("{\"task_id\"", "length")])
    const e = err(await complete(liveFor(server, { backend: "chat" })))
    expect(e._tag).toBe("Truncated")
    if (e._tag === "Truncated") expect([e.reason, e.text]).toEqual(["length", "{\"task_id\""])
  })

  it("message.refusal → Refusal", async () => {
    const server = await serve([refusal("No.")])
    const e = err(await complete(liveFor(server, { backend: "chat" })))
    expect(e._tag).toBe("Refusal")
  })
})

describe("live Llm: invalid answers are typed, never retried", () => {
  for (const backend of ["responses", "chat"] as const) {
    it(`${backend}: malformed JSON text → InvalidOutput with the text and a readable issue`, async () => {
      const server = await serve([answer("{\"task_id\": \"t-1\", \"steps\": [")])
      const e = err(await complete(liveFor(server, { backend })))
      expect(e._tag).toBe("InvalidOutput")
      if (e._tag !== "InvalidOutput") return
      expect(e.text).toBe("{\"task_id\": \"t-1\", \"steps\": [")
      expect(e.issues[0].message).toMatch(/^not valid JSON/)
      expect(server.requests).toHaveLength(1)
    })
  }

  it("JSON of the wrong shape → InvalidOutput with field paths", async () => {
    const server = await serve([answer(JSON.stringify({ task_id: 7, steps: [{ server: "fmp" }] }))])
    const e = err(await complete(liveFor(server)))
    expect(e._tag).toBe("InvalidOutput")
    if (e._tag !== "InvalidOutput") return
    const paths = e.issues.map((i) => i.path)
    expect(paths).toContain("task_id")
    expect(paths).toContain("steps[0].tool")
    expect(e.message).toMatch(/steps\[0\]\.tool: is missing/)
    expect((e.raw as any).object).toBe("response")
  })

  it("an HTTP body that is not JSON → Transient (retried), archived as the raw text", async () => {
    const server = await serve([malformedBody("<html>502 Bad Gateway</html>"), answer(PLAN_TEXT)])
    const captured = capture()
    const result = ok(await complete(liveFor(server), captured))
    expect(result.attempts).toBe(2)
    expect(captured.records[0]).toMatchObject({
      status: "Transient",
      httpStatus: 200,
      response: "<html>502 Bad Gateway</html>"
    })
  })
})

describe("live Llm: HTTP errors → typed errors, retried only when they can succeed", () => {
  it("429 with retry-after-ms is retried after that wait", async () => {
    const server = await serve([rateLimited({ ms: 300 }), answer(PLAN_TEXT)])
    const captured = capture()
    const result = ok(await complete(liveFor(server), captured))
    expect(server.requests).toHaveLength(2)
    expect(server.requests[1].time - server.requests[0].time).toBeGreaterThanOrEqual(280)
    expect(result.attempts).toBe(2)
    expect(captured.records.map((r) => [r.status, r.httpStatus])).toEqual([["RateLimited", 429], ["ok", 200]])
    expect(captured.logs.some((l) => l.level === "WARN" && /rate limited.*retry 1\/2/.test(l.message))).toBe(true)
  })

  it("429 with retry-after (seconds) is honored; exhausted retries end in RateLimited", async () => {
    const server = await serve([rateLimited({ seconds: 0.2 }), rateLimited({ seconds: 0.2 })])
    const e = err(await complete(liveFor(server, { maxRetries: 1 })))
    expect(server.requests).toHaveLength(2)
    expect(server.requests[1].time - server.requests[0].time).toBeGreaterThanOrEqual(180)
    expect(e._tag).toBe("RateLimited")
    if (e._tag === "RateLimited") expect(e.retryAfterMs).toBe(200)
  })

  it("429 insufficient_quota → QuotaExceeded at once", async () => {
    const server = await serve([
      httpError(429, "You exceeded your current quota, please check your plan and billing details.", {
        code: "insufficient_quota",
        type: "insufficient_quota"
      })
    ])
    const e = err(await complete(liveFor(server)))
    expect(e._tag).toBe("QuotaExceeded")
    expect(server.requests).toHaveLength(1)
  })

  it("500 and 503 → Transient, retried, then success", async () => {
    const server = await serve([serverError(500), serverError(503), answer(PLAN_TEXT)])
    const captured = capture()
    const result = ok(await complete(liveFor(server), captured))
    expect(result.attempts).toBe(3)
    expect(captured.records.map((r) => r.status)).toEqual(["Transient", "Transient", "ok"])
    expect(captured.records[1].httpStatus).toBe(503)
  })

  it("503 with retry-after: the retry waits what the server asked (any retried status, not only 429)", async () => {
    const server = await serve([
      httpError(503, "overloaded", { headers: { "retry-after-ms": "400" } }),
      answer(PLAN_TEXT)
    ])
    const captured = capture()
    ok(await complete(liveFor(server, { baseDelayMs: 1, maxDelayMs: 5 }), captured))
    expect(server.requests[1].time - server.requests[0].time).toBeGreaterThanOrEqual(380)
    expect(captured.records[0].errorDetail).toMatchObject({ _tag: "Transient", httpStatus: 503, retryAfterMs: 400 })
  })

  it("429 without retry-after: waits the x-ratelimit-reset of the limit that ran out", async () => {
    const server = await serve([
      httpError(429, "Rate limit reached for tokens per min", {
        code: "rate_limit_exceeded",
        headers: {
          "x-ratelimit-remaining-requests": "99",
          "x-ratelimit-reset-requests": "20ms",
          "x-ratelimit-remaining-tokens": "0",
          "x-ratelimit-reset-tokens": "0.45s"
        }
      }),
      answer(PLAN_TEXT)
    ])
    ok(await complete(liveFor(server, { baseDelayMs: 1, maxDelayMs: 5 })))
    expect(server.requests[1].time - server.requests[0].time).toBeGreaterThanOrEqual(430)
  })

  it("a Responses answer with status failed keeps its usage (error and attempt record) and is retried", async () => {
    const failed = {
      ...responsesBody("", { usage: { input: 900, cached: 0, output: 50, reasoning: 40 } }),
      status: "failed",
      error: { code: "server_error", message: "The model failed to generate a response." }
    }
    const server = await serve([{ kind: "json", body: failed }, { kind: "json", body: failed }])
    const captured = capture()
    const e = err(await complete(liveFor(server, { maxRetries: 1 }), captured))
    expect(e._tag).toBe("Transient")
    if (e._tag === "Transient") expect(e.usage).toEqual({ input: 900, cached: 0, output: 50, reasoning: 40 })
    expect(captured.records.map((r) => r.usage?.input)).toEqual([900, 900])
  })

  it("5xx until retries run out → Transient with the status", async () => {
    const server = await serve([serverError(502), serverError(502), serverError(502)])
    const e = err(await complete(liveFor(server)))
    expect(server.requests).toHaveLength(3)
    expect(e._tag).toBe("Transient")
    if (e._tag === "Transient") expect(e.httpStatus).toBe(502)
  })

  it("a connection reset → Transient, retried", async () => {
    const server = await serve([connectionReset(), answer(PLAN_TEXT)])
    const captured = capture()
    const result = ok(await complete(liveFor(server), captured))
    expect(result.attempts).toBe(2)
    expect(captured.records[0].status).toBe("Transient")
    expect(captured.records[0].error).toMatch(/connection error/)
  })

  it("a hung request is aborted at the per-attempt timeout (200 ms) and retried", async () => {
    const server = await serve([hang(), hang()])
    const captured = capture()
    const t0 = Date.now()
    const e = err(await complete(liveFor(server, { timeoutMs: 200, maxRetries: 1 }), captured))
    const elapsed = Date.now() - t0
    expect(e._tag).toBe("Timeout")
    expect(server.requests).toHaveLength(2)
    expect(elapsed).toBeGreaterThanOrEqual(400)
    expect(elapsed).toBeLessThan(2_000)
    expect(captured.records.map((r) => r.status)).toEqual(["Timeout", "Timeout"])
    expect(captured.records[0].durationMs).toBeGreaterThanOrEqual(195)
    // the timeout aborted the HTTP request itself (the client closed the connection)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(server.requests.map((r) => r.abortedByClient)).toEqual([true, true])
  })

  it("401 → Authentication, not retried", async () => {
    const server = await serve([
      httpError(401, "Incorrect API key provided: sk-test-****4c6f.", { code: "invalid_api_key" })
    ])
    const e = err(await complete(liveFor(server)))
    expect(e._tag).toBe("Authentication")
    expect(e.message).toMatch(/OPENAI_API_KEY/)
    expect(server.requests).toHaveLength(1)
  })

  it("403 → Authentication", async () => {
    const server = await serve([
      httpError(403, "Country, region, or territory not supported", { code: "unsupported_country_region_territory" })
    ])
    expect(err(await complete(liveFor(server)))._tag).toBe("Authentication")
  })

  it("400 with a param → BadRequest carrying param and code, not retried", async () => {
    const server = await serve([
      httpError(400, "Invalid schema for response_format 'skyrl_plan': In context=(), 'required' is required.", {
        param: "text.format.schema",
        code: "invalid_json_schema"
      })
    ])
    const e = err(await complete(liveFor(server)))
    expect(e._tag).toBe("BadRequest")
    if (e._tag !== "BadRequest") return
    expect([e.param, e.code, e.httpStatus]).toEqual(["text.format.schema", "invalid_json_schema", 400])
    expect(server.requests).toHaveLength(1)
  })

  it("404 model_not_found → NotFound, no fallback to Chat", async () => {
    const server = await serve([
      httpError(404, "The model `gpt-9` does not exist or you do not have access to it.", { code: "model_not_found" })
    ])
    const e = err(await complete(liveFor(server, { model: "gpt-9" })))
    expect(e._tag).toBe("NotFound")
    expect(server.requests.map((r) => r.endpoint)).toEqual(["responses"])
  })
})

describe("live Llm: fallbacks", () => {
  it("Responses: a 400 naming reasoning.effort → resent once without it, remembered, one warning", async () => {
    const server = await serve(({ body }) =>
      body.reasoning !== undefined
        ? httpError(400, "Unsupported parameter: 'reasoning.effort' is not supported with this model.", {
          param: "reasoning.effort",
          code: "unsupported_parameter"
        })
        : answer(PLAN_TEXT)
    )
    const llm = liveFor(server, { model: "gpt-4.1-mini" })
    const captured = capture()
    const first = ok(await complete(llm, captured))
    expect(first.attempts).toBe(2)
    expect(server.requests[0].body.reasoning).toEqual({ effort: "high" })
    expect(server.requests[1].body.reasoning).toBeUndefined()
    expect(server.requests[1].body.text.format.strict).toBe(true)
    expect(captured.records.map((r) => r.status)).toEqual(["BadRequest", "ok"])

    const second = ok(await complete(llm, captured))
    expect(second.attempts).toBe(1)
    expect(server.requests).toHaveLength(3)
    expect(server.requests[2].body.reasoning).toBeUndefined()
    const warnings = captured.logs.filter((l) => l.level === "WARN")
    expect(warnings).toHaveLength(1)
    expect(warnings[0].message).toMatch(/gpt-4\.1-mini rejects the reasoning effort parameter/)
  })

  it("Chat: a 400 with param null and 'Unrecognized request argument supplied: reasoning_effort' → resent without it", async () => {
    const server = await serve(({ body }) =>
      body.reasoning_effort !== undefined
        ? httpError(400, "Unrecognized request argument supplied: reasoning_effort")
        : answer(PLAN_TEXT)
    )
    const captured = capture()
    const result = ok(await complete(liveFor(server, { backend: "chat", model: "gpt-4o-mini" }), captured))
    expect(result.attempts).toBe(2)
    expect(server.requests[0].body.reasoning_effort).toBe("high")
    expect("reasoning_effort" in server.requests[1].body).toBe(false)
    expect(server.requests[1].body.response_format.json_schema.strict).toBe(true)
  })

  it("a 400 about something else is not mistaken for a reasoning rejection", async () => {
    const server = await serve([httpError(400, "Invalid value for 'input': expected an array.", { param: "input" })])
    const e = err(await complete(liveFor(server)))
    expect(e._tag).toBe("BadRequest")
    expect(server.requests).toHaveLength(1)
  })

  it("404 on /responses → Chat Completions, remembered for later calls", async () => {
    const server = await serve(({ endpoint }) =>
      endpoint === "responses" ? httpError(404, "Not Found", { code: null }) : answer(PLAN_TEXT)
    )
    const llm = liveFor(server)
    expect(llm.describe).toMatch(/^openai responses /)
    const captured = capture()
    const first = ok(await complete(llm, captured))
    expect(first.backend).toBe("chat")
    // What a run's summary and manifest name: the backend that answered.
    expect(llm.describe).toMatch(/^openai chat /)
    expect(server.requests.map((r) => r.endpoint)).toEqual(["responses", "chat"])
    expect(server.requests[1].body.reasoning_effort).toBe("high")
    const second = ok(await complete(llm, captured))
    expect(second.backend).toBe("chat")
    expect(server.requests.map((r) => r.endpoint)).toEqual(["responses", "chat", "chat"])
    expect(captured.logs.filter((l) => l.level === "WARN" && /no \/responses endpoint/.test(l.message))).toHaveLength(1)
    // Another client of the same server and model (a run's next stage) knows it too: no second probe.
    const third = ok(await complete(liveFor(server), captured))
    expect(third.backend).toBe("chat")
    expect(server.requests.map((r) => r.endpoint)).toEqual(["responses", "chat", "chat", "chat"])
    expect(captured.logs.filter((l) => l.level === "WARN" && /no \/responses endpoint/.test(l.message))).toHaveLength(1)
  })

  it("404 fallback and reasoning fallback combine (a local server without /responses nor thinking)", async () => {
    const server = await serve(({ body, endpoint }) =>
      endpoint === "responses"
        ? httpError(404, "404 page not found")
        : body.reasoning_effort !== undefined
        ? httpError(400, "\"llama3\" does not support thinking")
        : answer(PLAN_TEXT)
    )
    const result = ok(await complete(liveFor(server, { model: "llama3" })))
    expect(result.attempts).toBe(3)
    expect(server.requests.map((r) => [r.endpoint, r.body.reasoning_effort ?? r.body.reasoning ?? null])).toEqual([
      ["responses", { effort: "high" }],
      ["chat", "high"],
      ["chat", null]
    ])
  })
})

describe("live Llm: the API key", () => {
  it("never appears in logs, errors or attempt records, even when the server echoes it", async () => {
    const echoed: Array<string> = []
    const server = await serve((ctx) => {
      const auth = ctx.authorization ?? ""
      echoed.push(auth)
      return ctx.index === 0
        ? { ...rateLimited({ ms: 1 }), body: { error: { message: `Rate limit for ${auth}`, type: "requests" } } }
        : ctx.index === 1
        ? answer(JSON.stringify({ task_id: `echo ${auth}`, steps: `bad ${auth}` }))
        : httpError(401, `Incorrect API key provided: ${auth}`, { code: "invalid_api_key" })
    })
    const captured = capture()
    const llm = liveFor(server, { maxRetries: 3 })
    const r1 = await complete(llm, captured)
    const r2 = await complete(llm, captured)
    // the key really went over the wire and came back in bodies and messages
    expect(echoed).toEqual([`Bearer ${KEY}`, `Bearer ${KEY}`, `Bearer ${KEY}`])
    const errors = [r1, r2].filter(Either.isLeft).map((r) => r.left)
    expect(errors.map((e) => e._tag)).toEqual(["InvalidOutput", "Authentication"])
    const everything = JSON.stringify({
      logs: captured.logs,
      records: captured.records,
      errors: errors.map((e) => ({ ...e, message: e.message, string: String(e) }))
    })
    expect(captured.records).toHaveLength(3)
    expect(everything).toContain("Bearer [redacted]")
    expect(everything).not.toContain(KEY)
    expect(everything).not.toContain(KEY.slice(8))
  })
})

describe("LlmLive layer", () => {
  const plan = Effect.flatMap(Llm, (llm) => llm.complete(request()))

  it("fails with MissingApiKey naming OPENAI_API_KEY when the key is absent or empty", async () => {
    for (const env of [new Map<string, string>(), new Map([["OPENAI_API_KEY", "  "]])]) {
      const exit = await Effect.runPromise(
        Effect.either(plan.pipe(Effect.provide(LlmLive(makeLlmSettings()).pipe(Layer.provide(rateLimiterLayer({}))))))
          .pipe(
            Effect.withConfigProvider(ConfigProvider.fromMap(env))
          )
      )
      const e = err(exit)
      expect(e._tag).toBe("MissingApiKey")
      expect(e.message).toMatch(/OPENAI_API_KEY is not set/)
      expect(e.message).toMatch(/--llm replay/)
    }
  })

  it("a key pasted with spaces or a tab around it is sent without them, and scrubbed as sent", async () => {
    // HTTP drops a header value's padding: a server that echoes the key quotes it without the space, which a
    // scrub of the key as written (with it) did not find, so the key reached the log, the rejects and the archive.
    const sent: Array<string | undefined> = []
    const server = await serve((ctx) => {
      sent.push(ctx.authorization)
      return httpError(401, `Incorrect API key provided: ${ctx.authorization?.slice(7)}.`)
    })
    const captured = capture()
    const exit = await Effect.runPromise(
      Effect.either(
        Effect.flatMap(Llm, (llm) => llm.complete(request(captured))).pipe(
          Effect.provide(LlmLive(makeLlmSettings({ maxRetries: 0 })).pipe(Layer.provide(rateLimiterLayer({}))))
        )
      ).pipe(
        Effect.withConfigProvider(
          ConfigProvider.fromMap(new Map([["OPENAI_API_KEY", ` ${KEY} \t`], ["OPENAI_BASE_URL", server.baseUrl]]))
        )
      )
    )
    const e = err(exit)
    expect(e._tag).toBe("Authentication")
    const everything = JSON.stringify({ e: { ...e, message: e.message, string: String(e) }, ...captured })
    expect(everything).toContain("[redacted]")
    expect(everything).not.toContain(KEY.slice(8))
    expect(sent).toEqual([`Bearer ${KEY}`])
  })

  it("reads OPENAI_API_KEY and OPENAI_BASE_URL from the configuration", async () => {
    const server = await serve([answer(PLAN_TEXT)])
    const result = await Effect.runPromise(
      plan.pipe(
        Effect.provide(LlmLive(makeLlmSettings({ timeoutMs: 5_000 })).pipe(Layer.provide(rateLimiterLayer({})))),
        Effect.withConfigProvider(
          ConfigProvider.fromMap(new Map([["OPENAI_API_KEY", KEY], ["OPENAI_BASE_URL", server.baseUrl]]))
        )
      )
    )
    expect(result.value.task_id).toBe("t-1")
    expect(server.requests[0].authorized).toBe(true)
  })
})
