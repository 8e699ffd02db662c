/**
 * Replay Llm (recorded answers, offline) and the CLI's LLM selection (`--llm auto|openai|replay`).
 */
import { Command } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { ConfigProvider, Effect, Either, Layer, Logger, LogLevel, Schema } from "effect"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { describe, expect, it } from "vitest"
import type { LlmOptions } from "../src/cli/llmOptions.js"
import { llmLayer, llmOptions } from "../src/cli/llmOptions.js"
import type { AttemptRecord } from "../src/domain/llm.js"
import { makeLlmSettings } from "../src/domain/llm.js"
import type { LlmApi, LlmRequest } from "../src/services/Llm.js"
import { Llm } from "../src/services/Llm.js"
import { indexForKey, LlmReplay } from "../src/services/llm/replay.js"
import { rateLimiterLayer } from "../src/services/RateLimiter.js"
import { chatCompletionBody, responsesBody } from "./support/apiBodies.js"
import { loggingInto } from "./support/logs.js"
import { makeScriptedLlm } from "./support/scripted.js"

const CHAT_FIXTURES = join(import.meta.dirname, "fixtures", "openai", "chat")
const tmp = () => mkdtempSync(join(tmpdir(), "skyrl-replay-"))

/** Lenient shape of the historical fixture answers. */
const FixtureTask = Schema.Struct({
  task_id: Schema.String,
  tool_sequence: Schema.Array(Schema.Struct({ tool: Schema.String }))
})

const Note = Schema.Struct({ title: Schema.String, score: Schema.Number })

const req = <A, I>(
  schema: Schema.Schema<A, I>,
  key: string | undefined,
  extra: Partial<LlmRequest<A, I>> = {}
): LlmRequest<A, I> => ({
  name: "note",
  instructions: "Write a note as JSON.",
  input: [{ role: "user", content: "about AAPL" }],
  schema,
  key,
  ...extra
})

const replay = (paths: ReadonlyArray<string>, settings = makeLlmSettings()) =>
  Effect.runPromise(Effect.provide(Llm, LlmReplay(paths, settings)))

const run = <A>(llm: LlmApi, request: LlmRequest<A, any>) => Effect.runPromise(Effect.either(llm.complete(request)))

describe("replay of recorded Chat Completions bodies", () => {
  const files = readdirSync(CHAT_FIXTURES).filter((f) => f.endsWith(".json")).sort()

  it("picks by the key's trailing number modulo the count, in sorted file order, with the recorded usage", async () => {
    expect(files).toHaveLength(7)
    const llm = await replay([CHAT_FIXTURES])
    const records: Array<AttemptRecord> = []
    const r = await run(
      llm,
      req(FixtureTask, "sample-0003", { onAttempt: (x) => Effect.sync(() => void records.push(x)) })
    )
    if (Either.isLeft(r)) throw new Error(r.left.message)
    // 3 mod 7 = 3 → the 4th file: 20251005T171558480806Z_task_0004.json
    expect(files[3]).toBe("20251005T171558480806Z_task_0004.json")
    const recorded = JSON.parse(readFileSync(join(CHAT_FIXTURES, files[3]), "utf8"))
    expect(r.right.text).toBe(recorded.choices[0].message.content)
    expect(r.right.usage).toEqual({ input: 1565, cached: 1408, output: 3181, reasoning: 2496 })
    expect(r.right.backend).toBe("replay")
    expect(r.right.model).toBe(recorded.model)
    expect(r.right.value.task_id).toBe(JSON.parse(recorded.choices[0].message.content).task_id)
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({ backend: "replay", status: "ok", attempt: 1, usage: r.right.usage })
    expect(records[0].response).toEqual(recorded)

    const again = await run(llm, req(FixtureTask, "sample-0003"))
    expect(Either.getOrThrow(again).text).toBe(r.right.text)
    const other = await run(llm, req(FixtureTask, "sample-0004"))
    expect(Either.getOrThrow(other).text).not.toBe(r.right.text)
  })

  it("keys without a number are hashed; all choices stay within the recordings", () => {
    expect(indexForKey("sample-0010", 7)).toBe(3)
    expect(indexForKey("alpha", 7)).toBe(indexForKey("alpha", 7))
    const spread = new Set(["a", "b", "c", "d", "e", "f", "g", "h"].map((k) => indexForKey(k, 7)))
    expect(spread.size).toBeGreaterThan(1)
    expect([...spread].every((i) => i >= 0 && i < 7)).toBe(true)
  })

  it("replayed answers are validated like live ones (schema mismatch → InvalidOutput with paths)", async () => {
    const llm = await replay([CHAT_FIXTURES])
    const r = await run(llm, req(Note, "sample-0001"))
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r) && r.left._tag === "InvalidOutput") {
      expect(r.left.issues.map((i) => i.path)).toEqual(["title", "score"])
      expect(r.left.usage?.output).toBeGreaterThan(0)
    } else throw new Error("expected InvalidOutput")
  })
})

describe("replay of skyrl archives, Responses bodies and batch output", () => {
  it("matches the recorded request exactly (whatever the backend), and goes through the same checks", async () => {
    const dir = tmp()
    // record two calls the way generate archives them: one file per attempt record
    const texts = [JSON.stringify({ title: "first", score: 1 }), JSON.stringify({ title: "second", score: 2 })]
    const { llm: recorder } = makeScriptedLlm([{ text: texts[0] }, { text: texts[1] }], { backend: "chat" })
    let n = 0
    const archive = (r: AttemptRecord) =>
      Effect.sync(() => writeFileSync(join(dir, `task_${++n}.json`), JSON.stringify({ ...r, sample: n })))
    await run(recorder, req(Note, "k", { input: [{ role: "user", content: "one" }], onAttempt: archive }))
    await run(recorder, req(Note, "k", { input: [{ role: "user", content: "two" }], onAttempt: archive }))
    writeFileSync(join(dir, "manifest.json"), JSON.stringify({ run_id: "x", counts: {} }))

    // replay with the Responses backend and another model: same instructions, messages and schema → same answer
    const llm = await replay([dir], makeLlmSettings({ backend: "responses", model: "other-model" }))
    for (const [content, expected] of [["two", "second"], ["one", "first"]] as const) {
      for (const key of ["sample-0000", "sample-0001"]) {
        const r = await run(llm, req(Note, key, { input: [{ role: "user", content }] }))
        expect(Either.getOrThrow(r).value.title).toBe(expected)
      }
    }
  })

  it("reads gzipped recordings as the plain ones: a --raw-gzip log (a gzip member per line) and .json.gz files", async () => {
    const dir = tmp()
    const line = (title: string, score: number) =>
      JSON.stringify({ name: "t", response: chatCompletionBody(JSON.stringify({ title, score })) }) + "\n"
    // Two members, as the archive log appends them: one per record.
    writeFileSync(join(dir, "archive_01.jsonl.gz"), Buffer.concat([gzipSync(line("one", 1)), gzipSync(line("two", 2))]))
    writeFileSync(
      join(dir, "b.json.gz"),
      gzipSync(JSON.stringify(responsesBody(JSON.stringify({ title: "three", score: 3 }))))
    )
    const llm = await replay([dir])
    const results = await Promise.all([0, 1, 2].map((i) => run(llm, req(Note, `sample-${i}`))))
    // sorted order: archive_01.jsonl.gz:1, :2, b.json.gz
    expect(results.map((r) => Either.getOrThrow(r).value.title)).toEqual(["one", "two", "three"])
  })

  it("reads Responses bodies, JSONL batch output and arrays; truncated and refused recordings keep their errors", async () => {
    const dir = tmp()
    mkdirSync(join(dir, "nested"))
    writeFileSync(join(dir, "a.json"), JSON.stringify(responsesBody(JSON.stringify({ title: "resp", score: 3 }))))
    writeFileSync(
      join(dir, "nested", "b.jsonl"),
      [
        {
          custom_id: "s1",
          response: {
            status_code: 200,
            request_id: "req_b1",
            body: chatCompletionBody("{\"title\": \"batch\", \"score\": 4}")
          }
        },
        { custom_id: "s2", response: null, error: { message: "failed" } }
      ].map((l) => JSON.stringify(l)).join("\n") + "\n"
    )
    writeFileSync(
      join(dir, "c.json"),
      JSON.stringify([
        chatCompletionBody("{\"title\": \"cut", { truncated: "length" }),
        chatCompletionBody("", { refusal: "no" })
      ])
    )
    const llm = await replay([dir])
    const results = await Promise.all([0, 1, 2, 3].map((i) => run(llm, req(Note, `sample-${i}`))))
    // sorted order: a.json, c.json[0], c.json[1], nested/b.jsonl:1
    expect(Either.getOrThrow(results[0]).value).toEqual({ title: "resp", score: 3 })
    expect(Either.isLeft(results[1]) && results[1].left._tag).toBe("Truncated")
    expect(Either.isLeft(results[2]) && results[2].left._tag).toBe("Refusal")
    const batch = Either.getOrThrow(results[3])
    expect(batch.value).toEqual({ title: "batch", score: 4 })
    expect(batch.requestId).toBe("req_b1")
  })

  it("a missing or empty replay directory is a clear error", async () => {
    const missing = await Effect.runPromise(
      Effect.either(Effect.provide(Llm, LlmReplay(["/nonexistent/replay"], makeLlmSettings())))
    )
    expect(Either.isLeft(missing) && missing.left.message).toMatch(/\/nonexistent\/replay: no such file or directory/)
    const empty = await Effect.runPromise(Effect.either(Effect.provide(Llm, LlmReplay([tmp()], makeLlmSettings()))))
    expect(Either.isLeft(empty) && empty.left.message).toMatch(/no recorded answers found/)
  })
})

describe("--llm selection (src/cli/llmOptions.ts)", () => {
  const options = (o: Partial<LlmOptions>): LlmOptions => ({
    llm: "auto",
    replayDir: CHAT_FIXTURES,
    model: "gpt-5-mini",
    backend: "responses",
    reasoningEffort: "high",
    maxOutputTokens: 32_000,
    timeout: 600,
    retries: 4,
    ...o
  })

  const build = (o: Partial<LlmOptions>, env: Record<string, string>) => {
    const logs: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => void logs.push(`${logLevel.label} ${String(message)}`))
    return Effect.runPromise(
      Effect.either(Effect.provide(Llm, llmLayer(options(o)).pipe(Layer.provide(rateLimiterLayer({}))))).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.All),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
      )
    ).then((r) => ({ r, logs }))
  }

  it("auto without OPENAI_API_KEY replays from --replay-dir with one offline warning", async () => {
    const { logs, r } = await build({}, {})
    expect(Either.getOrThrow(r).describe).toMatch(/^replay of 7 recorded answers/)
    expect(logs.filter((l) => l.startsWith("WARN"))).toEqual([
      `WARN OPENAI_API_KEY is not set: running offline, answering from recorded answers in ${CHAT_FIXTURES}`
    ])
  })

  it("auto with a key uses OpenAI; openai without a key fails with MissingApiKey", async () => {
    const live = await build({}, { OPENAI_API_KEY: "sk-test-x", OPENAI_BASE_URL: "http://127.0.0.1:9/v1" })
    expect(Either.getOrThrow(live.r).describe).toBe("openai responses gpt-5-mini at http://127.0.0.1:9/v1")
    expect(live.logs).toEqual([])
    const missing = await build({ llm: "openai" }, {})
    expect(Either.isLeft(missing.r) && missing.r.left._tag).toBe("MissingApiKey")
    expect(Either.isLeft(missing.r) && missing.r.left.message).toMatch(/OPENAI_API_KEY is not set/)
  })

  it("replay ignores the key; auto offline with no recordings says how to get going", async () => {
    const replayed = await build({ llm: "replay" }, { OPENAI_API_KEY: "sk-test-x" })
    expect(Either.getOrThrow(replayed.r).describe).toMatch(/^replay/)
    const empty = tmp()
    const none = await build({ replayDir: empty }, {})
    // The --replay-dir given is not what to pass again.
    expect(Either.isLeft(none.r) && none.r.left.message).toBe(
      `cannot replay recorded answers from ${empty}: no recorded answers found (expected Chat/Responses bodies or ` +
        "skyrl archive files); set OPENAI_API_KEY to call OpenAI"
    )
  })

  it("a --replay-dir that does not exist is a usage error (exit 2) naming the flag and the path", async () => {
    const missing = join(tmp(), "nope")
    for (const llm of ["auto", "replay"] as const) {
      const { logs, r } = await build({ llm, replayDir: missing }, {})
      if (Either.isRight(r)) throw new Error("expected a failure")
      // Was: exit 1, `cannot replay recorded answers from nope: no such file or directory; set OPENAI_API_KEY to
      // call OpenAI, or pass --replay-dir` (the flag just passed), after the offline warning.
      expect(r.left.message).toBe(
        `--replay-dir (SKYRL_REPLAY_DIR): ${missing} does not exist (looked for ${missing}): give a directory or ` +
          `file of recorded answers${llm === "auto" ? ", or set OPENAI_API_KEY to call OpenAI" : ""}`
      )
      expect((r.left as { exitCode?: number }).exitCode).toBe(2)
      expect(logs).toEqual([])
    }
  })

  it("flags parse with environment fallbacks; the flag wins", async () => {
    let parsed: LlmOptions | undefined
    const cmd = Command.make("t", llmOptions, (o) => Effect.sync(() => void (parsed = o)))
    const parse = (args: ReadonlyArray<string>, env: Record<string, string>) =>
      Effect.runPromise(
        Effect.either(Command.run(cmd, { name: "t", version: "0" })(["node", "t", ...args])).pipe(
          Effect.provide(NodeContext.layer),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
        )
      )
    await parse([], {})
    expect(parsed).toEqual({
      llm: "auto",
      replayDir: "data/replay",
      model: "gpt-5-mini",
      backend: "responses",
      reasoningEffort: "high",
      maxOutputTokens: 32_000,
      timeout: 600,
      retries: 4
    })
    await parse(["--model", "gpt-5", "--timeout", "1.5", "--retries", "0"], {
      OPENAI_MODEL: "env-model",
      OPENAI_BACKEND: "chat",
      OPENAI_REASONING_EFFORT: "low",
      SKYRL_LLM: "replay",
      SKYRL_REPLAY_DIR: "/r"
    })
    expect(parsed).toMatchObject({
      llm: "replay",
      replayDir: "/r",
      model: "gpt-5",
      backend: "chat",
      reasoningEffort: "low",
      timeout: 1.5,
      retries: 0
    })
    parsed = undefined
    const bad = await parse(["--timeout", "0"], {})
    expect(Either.isLeft(bad)).toBe(true)
    expect(parsed).toBeUndefined()
  })
})

describe("replay files that are not JSON", () => {
  it("are named in a warning each (before: passed over without a word), and the other files still answer", async () => {
    const dir = tmp()
    const files = readdirSync(CHAT_FIXTURES).filter((f) => f.endsWith(".json")).sort()
    const good = readFileSync(join(CHAT_FIXTURES, files[0]!), "utf8")
    writeFileSync(join(dir, "a.json"), good)
    writeFileSync(join(dir, "b.json"), good.slice(0, 300))
    writeFileSync(join(dir, "c.json"), "")
    writeFileSync(join(dir, "d.json"), Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff, 0x00]))
    writeFileSync(join(dir, "e.jsonl"), `${JSON.stringify(JSON.parse(good))}\n{"cut": \n`)
    writeFileSync(join(dir, "f.json"), JSON.stringify({ other: "a run's file, not an answer" }))
    const logs: Array<string> = []
    const llm = await Effect.runPromise(
      Effect.provide(Llm, LlmReplay([dir], makeLlmSettings())).pipe(Effect.provide(loggingInto(logs)))
    )
    expect(logs).toEqual([
      `WARN: replay: ${
        join(dir, "b.json")
      }: not JSON (Unterminated string in JSON at position 300); its answers are not read`,
      `WARN: replay: ${join(dir, "c.json")}: empty; its answers are not read`,
      `WARN: replay: ${join(dir, "d.json")}: not JSON: binary, or not UTF-8 text; its answers are not read`,
      `WARN: replay: ${join(dir, "e.jsonl")}: 1 line(s) that are not JSON, the first: line 2: not JSON ` +
      `(Unexpected end of JSON input); its answers are not read`
    ])
    const r = await run(llm, req(FixtureTask, "sample-0001"))
    expect(Either.isRight(r)).toBe(true)
  })
})
