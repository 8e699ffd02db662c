/**
 * The run engine in-process (src/programs/sampling.ts and its steps): memory storage, a scripted model
 * through the real Llm engine, the finance inventory inline. Crashes are interrupted fibers followed by
 * a run on the same storage; the wire and `kill -9` are covered by the subprocess tests
 * (generate.test.ts, reliability/).
 */
import { layer } from "@effect/vitest"
import { Deferred, Effect, Either, Exit, Fiber } from "effect"
import { expect } from "vitest"
import { resolveRun } from "../src/cli/runShared.js"
import { StorageError } from "../src/domain/errors.js"
import { Authentication, BadRequest, NotFound, Transient } from "../src/domain/llm.js"
import { rebuildProgram } from "../src/programs/rebuild.js"
import { decodeRow, encodedRowJson, encodeRow } from "../src/skyrl/layout.js"
import { mulberry32 } from "../src/skyrl/workPlan.js"
import { responsesBody } from "./support/apiBodies.js"
import {
  blockJournalWrite,
  costOfCalls,
  EngineTest,
  generateOptions,
  OUT,
  RAW_DIR,
  readJsonl,
  reply,
  requestOf,
  runGenerate,
  scripted,
  settingsFor,
  USAGE
} from "./support/engine.js"
import { invalidTaskText, validTaskText } from "./support/fakeTasks.js"
import { loggingInto } from "./support/logs.js"
import { makeMemoryStorage } from "./support/memoryStorage.js"

const task = (k: number, variant = 0) => JSON.parse(validTaskText(k, variant)) as Record<string, unknown>
const invalid = (k: number) => JSON.parse(invalidTaskText(k)) as Record<string, unknown>
const RUN_DIR = `${RAW_DIR}/run-1`
const manifestOf = (storage: ReturnType<typeof makeMemoryStorage>) =>
  JSON.parse(storage.text(`${RUN_DIR}/manifest.json`))
const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error(`expected a failure, got ${String(exit)}`)
  return exit.cause.error
}

layer(EngineTest, { excludeTestServices: true })("the run engine, in-process", (it) => {
  it.effect("one over-long prompt and one duplicate: N valid rows, both attempts rejected with their reasons", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const long = `Sample 2: ${"compare every quote with every headline of the week in detail, ".repeat(120)}`
      const { calls, llm } = scripted((call) => {
        const { attempt, k } = requestOf(call)
        if (k === 2 && attempt === 1) return reply({ ...task(2), user_prompt: long }) // and so is its repair
        if (k === 4 && attempt === 1) return reply(task(1, 1)) // sample 1's prompt again
        return reply(task(k, attempt))
      })
      yield* runGenerate(storage, llm, generateOptions(settingsFor(5)))
      const rows = readJsonl(storage.text(OUT))
      expect(rows).toHaveLength(5)
      expect(new Set(rows.map((r) => r.prompt[1].content)).size).toBe(5)
      const rejects = readJsonl(storage.text(`${OUT}.rejects.jsonl`))
      expect(rejects.map((r) => [r.index, r.attempt])).toEqual([[1, 1], [3, 1]])
      expect(rejects[0].reasons.join(" ")).toMatch(/prompt.* over the budget of 1024 prompt tokens/)
      expect(rejects[1].reasons.join(" ")).toMatch(/duplicate\/prompt prompt: identical to accepted row 0/)
      // The over-long prompt was sent back once (the model can shorten it); the duplicate was not.
      expect(calls.filter((c) => requestOf(c).repair).map((c) => requestOf(c).k)).toEqual([2])
      expect(JSON.stringify(calls.find((c) => requestOf(c).repair)!.body.input)).toContain("over the budget of 1024")
    }))

  it.effect("two samples racing with one prompt: exactly one is kept, the other is made again", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const bothAsked = yield* Deferred.make<void>()
      let firstAttempts = 0
      const { calls, llm } = scripted((call) => {
        const { attempt, k } = requestOf(call)
        if (attempt > 1) return reply(task(k, attempt))
        // Both answers leave the model together, with the same prompt: the checks race the claims.
        return Effect.gen(function*() {
          if (++firstAttempts === 2) yield* Deferred.succeed(bothAsked, undefined)
          yield* Deferred.await(bothAsked)
          return reply(task(1))
        })
      })
      yield* runGenerate(storage, llm, generateOptions(settingsFor(2), { concurrency: 2 }))
      const rows = readJsonl(storage.text(OUT))
      expect(rows).toHaveLength(2)
      expect(rows.filter((r) => r.prompt[1].content === task(1).user_prompt)).toHaveLength(1)
      const rejects = readJsonl(storage.text(`${OUT}.rejects.jsonl`))
      expect(rejects).toHaveLength(1)
      expect(rejects[0].reasons.join(" ")).toMatch(/duplicate\/prompt/)
      expect(calls).toHaveLength(3)
    }))

  it.effect("a call's permit goes back when its HTTP attempt ends: the next request goes out while its archive write waits", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const release = yield* Deferred.make<void>()
      const thirdAsked = yield* Deferred.make<void>()
      // Every archive write waits for `release`: with the permits held until the records were on disk, the
      // two calls of --concurrency 2 would hold both permits and no third request could go out.
      storage.onWrite = (file, kind) =>
        /archive_\d+\.jsonl$/.test(file) && kind === "append" ? Deferred.await(release) : Effect.void
      const { calls, llm } = scripted((call) =>
        Effect.gen(function*() {
          const { attempt, k } = requestOf(call)
          if (calls.length === 3) yield* Deferred.succeed(thirdAsked, undefined)
          return reply(task(k, attempt))
        })
      )
      const fiber = yield* Effect.fork(runGenerate(storage, llm, generateOptions(settingsFor(4), { concurrency: 2 })))
      yield* Deferred.await(thirdAsked)
      // Nothing was journaled yet: no answer is used before its archive record is on disk.
      const journal = `${RUN_DIR}/journal.jsonl`
      expect(storage.files.has(journal) ? storage.text(journal) : "").toBe("")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(fiber)
      expect(readJsonl(storage.text(OUT))).toHaveLength(4)
      expect(calls).toHaveLength(4)
    }))

  it.effect("the dataset written from the session's rows is what decoding their journal lines gives", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { llm } = scripted((call) => reply(task(requestOf(call).k, (requestOf(call).k % 7) as number)))
      yield* runGenerate(storage, llm, generateOptions(settingsFor(12), { concurrency: 3 }))
      const journaled = readJsonl(storage.text(`${RUN_DIR}/journal.jsonl`))
        .filter((e) => e.status === "row")
        .sort((a, b) => a.index - b.index)
        .map((e) => encodedRowJson(encodeRow(Either.getOrThrow(decodeRow(e.row)))) + "\n")
      expect(journaled).toHaveLength(12)
      expect(storage.text(OUT)).toBe(journaled.join(""))
    }))

  it.effect("-n 20 interrupted, then --resume -n 10 is refused naming n; --force makes the run's 20", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { calls, llm } = scripted((call) => reply(task(requestOf(call).k, requestOf(call).attempt)))
      const s20 = settingsFor(20)
      const reached = yield* blockJournalWrite(storage, 6) // 5 samples journaled, the 6th archived only
      const fiber = yield* Effect.fork(runGenerate(storage, llm, generateOptions(s20)))
      yield* Deferred.await(reached)
      yield* Fiber.interrupt(fiber)
      storage.onWrite = () => Effect.void
      expect(manifestOf(storage).status).toBe("interrupted")
      expect(storage.files.has(`${RUN_DIR}/lock`)).toBe(false)

      const resume = (n: number, force: boolean) =>
        resolveRun({
          rawDir: RAW_DIR,
          out: OUT,
          command: "generate",
          fresh: settingsFor(n),
          resume: true,
          force,
          keepAsOf: true
        })
          .pipe(Effect.provide(storage.layer), Effect.exit)
      const refused = failureOf(yield* resume(10, false))
      expect(refused.message).toMatch(/--resume: run run-1 was made with other settings: n: 20 in the run, 10 now/)
      expect(refused.message).toMatch(/--force/)
      const forced = yield* resume(10, true)
      if (Exit.isFailure(forced)) throw new Error("--force was refused")
      expect(forced.value.settings.n).toBe(20)
      expect(forced.value.runId).toBe("run-1")

      const before = calls.length
      yield* runGenerate(storage, llm, generateOptions(forced.value.settings, { runId: forced.value.runId }))
      const rows = readJsonl(storage.text(OUT))
      expect(rows).toHaveLength(20)
      expect(new Set(rows.map((r) => r.prompt[1].content)).size).toBe(20)
      // Samples 1-5 (journaled) and 6 (archived, not journaled) are not asked again.
      const again = calls.slice(before).map((c) => requestOf(c).k)
      expect(again.filter((k) => k <= 6)).toEqual([])
      expect(again).toHaveLength(14)
      expect(manifestOf(storage)).toMatchObject({ status: "completed", counts: { valid: 20, calls: 20 } })
    }))

  it.effect("a sample repaired in session 1 and finished in session 2 has both calls in the cost", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const repairAsked = yield* Deferred.make<void>()
      const first = scripted((call) =>
        requestOf(call).repair
          ? Effect.zipRight(Deferred.succeed(repairAsked, undefined), Effect.never)
          : reply(invalid(1))
      )
      const fiber = yield* Effect.fork(runGenerate(storage, first.llm, generateOptions(settingsFor(1))))
      yield* Deferred.await(repairAsked)
      yield* Fiber.interrupt(fiber)
      const second = scripted(() => reply(task(1)))
      yield* runGenerate(storage, second.llm, generateOptions(settingsFor(1)))
      // Session 2 asked only for the repair: the first answer came from the archive.
      expect(second.calls.map((c) => requestOf(c).repair)).toEqual([true])
      const rows = readJsonl(storage.text(OUT))
      expect(JSON.parse(rows[0].extra_info.task_metadata).repaired).toBe(true)
      const manifest = manifestOf(storage)
      expect(manifest.counts.calls).toBe(2)
      expect(manifest.tokens).toEqual({
        input: 2 * USAGE.input,
        cached: 2 * USAGE.cached,
        output: 2 * USAGE.output,
        reasoning: 2 * USAGE.reasoning
      })
      expect(manifest.cost_usd).toBeCloseTo(costOfCalls(2), 10)
      expect(readJsonl(storage.text(`${RUN_DIR}/ledger.jsonl`)).map((l) => l.purpose)).toEqual(["task", "repair"])
    }))

  it.effect("--max-cost at concurrency 8 with repairs: stops, and overshoots by at most the calls in flight", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const perCall = costOfCalls(1)
      const maxCost = 10.5 * perCall
      const { calls, llm } = scripted((call) => {
        const { attempt, k, repair } = requestOf(call)
        // Every first answer needs a repair: the budget must be checked before repairs too.
        return Effect.as(Effect.sleep("3 millis"), repair ? reply(task(k, attempt)) : reply(invalid(k)))
      })
      const exit = yield* Effect.exit(
        runGenerate(storage, llm, generateOptions(settingsFor(40), { concurrency: 8, maxCostUsd: maxCost }))
      )
      expect(failureOf(exit)).toMatchObject({ _tag: "IncompleteRun" })
      expect(failureOf(exit).message).toMatch(/--max-cost \$[\d.]+ reached/)
      const spent = manifestOf(storage).cost_usd as number
      expect(spent).toBeGreaterThanOrEqual(maxCost)
      expect(spent).toBeLessThanOrEqual(maxCost + 8 * perCall + 1e-12)
      expect(calls.length).toBeLessThan(80)
    }))

  it.effect("per-request 400s (context length, flagged prompt) on 2 of 10 samples: 10 valid rows, the 400s rejected", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { llm } = scripted((call) => {
        const { attempt, k } = requestOf(call)
        if (k === 3 && attempt === 1) {
          return new BadRequest({
            reason:
              "This model's maximum context length is 128000 tokens. However, your messages resulted in 131000 tokens.",
            code: "context_length_exceeded",
            param: "input",
            httpStatus: 400
          })
        }
        if (k === 7 && attempt === 1) {
          return new BadRequest({
            reason: "Invalid prompt: your prompt was flagged as potentially violating our usage policy.",
            code: "invalid_prompt",
            param: null,
            httpStatus: 400
          })
        }
        return reply(task(k, attempt))
      })
      yield* runGenerate(storage, llm, generateOptions(settingsFor(10), { concurrency: 3 }))
      expect(readJsonl(storage.text(OUT))).toHaveLength(10)
      const rejects = readJsonl(storage.text(`${OUT}.rejects.jsonl`))
      expect(rejects.map((r) => r.index)).toEqual([2, 6])
      expect(rejects[0].reasons[0]).toMatch(/maximum context length is 128000 tokens/)
      expect(rejects[1].reasons[0]).toMatch(/flagged as potentially violating our usage policy/)
    }))

  for (
    const [name, error, message] of [
      ["401", new Authentication({ reason: "Incorrect API key provided", httpStatus: 401 }), /refused the credentials/],
      ["unknown model", new NotFound({ reason: "The model `gpt-9` does not exist", code: "model_not_found" }), /gpt-9/],
      [
        "output schema refused",
        new BadRequest({
          reason: "Invalid schema for response_format 'skyrl_task': 'additionalProperties' is required",
          code: "invalid_json_schema",
          param: "text.format.schema",
          httpStatus: 400
        }),
        /Invalid schema for response_format/
      ]
    ] as const
  ) {
    it.effect(`${name}: the run stops at once with the API's message and keeps nothing half-done`, () =>
      Effect.gen(function*() {
        const storage = makeMemoryStorage()
        const { calls, llm } = scripted(() => error)
        const exit = yield* Effect.exit(runGenerate(storage, llm, generateOptions(settingsFor(5))))
        expect(failureOf(exit).message).toMatch(message)
        expect(calls).toHaveLength(1)
        expect(manifestOf(storage).status).toBe("incomplete")
        // Samples never started are not journaled as failed.
        expect(readJsonl(storage.text(`${RUN_DIR}/journal.jsonl`)).map((e) => [e.index, e.status])).toEqual([
          [0, "stopped"]
        ])
      }))
  }

  it.effect("a 400 of no known kind: once answers came, it rejects its sample; on every first request, it stops the run", () =>
    Effect.gen(function*() {
      const odd = new BadRequest({
        reason: "Something about this request is off.",
        code: null,
        param: null,
        httpStatus: 400
      })
      const storage = makeMemoryStorage()
      const some = scripted((call) => {
        const { attempt, k } = requestOf(call)
        return (k === 4 || k === 6) && attempt === 1 ? odd : reply(task(k, attempt))
      })
      yield* runGenerate(storage, some.llm, generateOptions(settingsFor(6)))
      expect(readJsonl(storage.text(OUT))).toHaveLength(6)
      expect(readJsonl(storage.text(`${OUT}.rejects.jsonl`)).map((r) => r.index)).toEqual([3, 5])

      const again = makeMemoryStorage()
      const all = scripted(() => odd)
      const exit = yield* Effect.exit(runGenerate(again, all.llm, generateOptions(settingsFor(6), { concurrency: 1 })))
      expect(failureOf(exit).message).toMatch(/the first 3 requests were all refused.*Something about this request/)
      expect(all.calls).toHaveLength(3)
    }))

  it.effect("no HTTP answer at all (connection refused) on the first requests stops the run; once answers came, it rejects its sample", () =>
    Effect.gen(function*() {
      const refused = new Transient({ reason: "connection error: connect ECONNREFUSED 127.0.0.1:9" })
      // Before: every sample spent its attempts and their retries on it (46 s each with the live schedule).
      const storage = makeMemoryStorage()
      const down = scripted(() => refused)
      const exit = yield* Effect.exit(
        runGenerate(storage, down.llm, generateOptions(settingsFor(6), { concurrency: 1 }))
      )
      expect(failureOf(exit).message).toMatch(
        /the first 3 requests got no answer from the model API after their retries \(temporary failure.*ECONNREFUSED.*check OPENAI_BASE_URL/
      )
      const perRequest = down.calls.length / 3
      expect(Number.isInteger(perRequest) && perRequest >= 1).toBe(true)
      expect(readJsonl(storage.text(`${RUN_DIR}/journal.jsonl`)).map((e) => e.index)).not.toContain(5)

      // A 503 is an answer of the API (a server that is there): not counted.
      const busy = scripted(() => new Transient({ reason: "overloaded", httpStatus: 503 }))
      const busyExit = yield* Effect.exit(
        runGenerate(makeMemoryStorage(), busy.llm, generateOptions(settingsFor(4), { concurrency: 1 }))
      )
      expect(failureOf(busyExit).message).not.toMatch(/no answer from the model API/)

      // After an answer, the same failures count for their samples only.
      const flaky = scripted((call) => {
        const { attempt, k } = requestOf(call)
        return k > 1 && k < 6 && attempt === 1 ? refused : reply(task(k, attempt))
      })
      yield* runGenerate(makeMemoryStorage(), flaky.llm, generateOptions(settingsFor(6), { concurrency: 1 }))
    }))

  it.effect("a run directory locked by another process: RunLocked naming the holder, nothing spent or written", () =>
    Effect.gen(function*() {
      const holder = JSON.stringify({ pid: 4242, host: "other-host", command: "generate" })
      const storage = makeMemoryStorage({ [`${RUN_DIR}/lock`]: holder })
      const { calls, llm } = scripted(() => reply(task(1)))
      const exit = yield* Effect.exit(runGenerate(storage, llm, generateOptions(settingsFor(3))))
      const e = failureOf(exit)
      expect(e._tag).toBe("RunLocked")
      expect(e.message).toMatch(/in use by another skyrl process .*"pid":4242/)
      expect(calls).toHaveLength(0)
      expect(storage.writes).toEqual([])
    }))

  it.effect("an archive write that fails stops its sample (no row without its archive); --resume makes it", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { calls, llm } = scripted((call) => reply(task(requestOf(call).k, requestOf(call).attempt)))
      // The append of sample 2's first call to the archive log (a record names its call first; its bytes).
      storage.onWrite = (file, _kind, data) =>
        data !== undefined && Buffer.from(data).toString("utf8").startsWith("{\"name\":\"task_0002_c01.json\"")
          ? Effect.fail(new StorageError({ path: file, operation: "write", reason: "no space left on device" }))
          : Effect.void
      const exit = yield* Effect.exit(runGenerate(storage, llm, generateOptions(settingsFor(3))))
      expect(failureOf(exit).message).toMatch(/made 2 of 3 .*could not archive the answer/)
      const archived = (rows: Array<any>) =>
        rows.map((r) => JSON.parse(r.extra_info.task_metadata).raw_output_path as string)
      const first = readJsonl(storage.text(OUT))
      expect(first.map((r) => JSON.parse(r.extra_info.task_metadata).sample_index)).toEqual([0, 2])
      // Each row names its call in a log that holds it (`<log>#<name>`); the log that failed is not used again.
      const holds = (rel: string) => {
        const [log, name] = rel.split("#")
        return storage.text(`/mem/${log}`).split("\n").some((l) => l.startsWith(`{"name":"${name}"`))
      }
      expect(archived(first).map((rel) => rel.split("#")[0])).toEqual([
        "raw_llm/run-1/archive_01.jsonl",
        "raw_llm/run-1/archive_02.jsonl"
      ])
      for (const rel of archived(first)) expect(holds(rel)).toBe(true)
      storage.onWrite = () => Effect.void
      yield* runGenerate(storage, llm, generateOptions(settingsFor(3)))
      const rows = readJsonl(storage.text(OUT))
      expect(rows).toHaveLength(3)
      for (const rel of archived(rows)) expect(holds(rel)).toBe(true)
      // The lost answer was paid for and is counted; it had to be asked again.
      expect(calls).toHaveLength(4)
      expect(manifestOf(storage).counts.calls).toBe(4)
    }))

  it.effect("a dataset that cannot be written: the error says its rows are kept and --resume writes them; --resume asks the model nothing", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { calls, llm } = scripted((call) => reply(task(requestOf(call).k, requestOf(call).attempt)))
      // --out's directory made read-only while the run made its rows: only the dataset's write fails.
      storage.onWrite = (file, kind) =>
        kind === "rows" && file === OUT
          ? Effect.fail(new StorageError({ path: file, operation: "write", reason: "permission denied" }))
          : Effect.void
      const exit = yield* Effect.exit(runGenerate(storage, llm, generateOptions(settingsFor(3))))
      const message = failureOf(exit).message
      expect(message).toContain(`cannot write ${OUT}: permission denied; the 3 rows made are kept in the run`)
      expect(message).toContain(
        `directory ${RUN_DIR} (its journal and archive): once /mem can be written, rerun the same command with ` +
          "--resume to write them (a row made is not asked for again)"
      )
      expect(storage.files.has(OUT)).toBe(false)
      expect(calls).toHaveLength(3)
      storage.onWrite = () => Effect.void
      yield* runGenerate(storage, llm, generateOptions(settingsFor(3)))
      expect(readJsonl(storage.text(OUT))).toHaveLength(3)
      expect(calls).toHaveLength(3) // nothing asked again
    }))

  it.effect("rebuild equals the run's output byte for byte after duplicates and repairs at concurrency 4", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const random = mulberry32(99)
      const { calls, llm } = scripted((call) => {
        const { attempt, k, repair } = requestOf(call)
        const answer = repair || attempt > 1
          ? task(k, attempt)
          : k % 3 === 0
          ? invalid(k) // repaired
          : k === 5 || k === 8
          ? task(2) // a duplicate of sample 2 (whoever claims first wins)
          : task(k)
        // Random latencies, so claims happen out of sample order; sample 2 answers only once sample 5 has
        // claimed that prompt, so sample 2 itself is rejected (rebuilding in sample order would differ).
        const journal = `${RUN_DIR}/journal.jsonl`
        const claimedBy5 = () =>
          storage.files.has(journal) && storage.text(journal).includes("{\"index\":4,\"status\":\"row\"")
        const wait = k === 2 && attempt === 1
          ? Effect.repeat(Effect.sleep("2 millis"), { until: claimedBy5 })
          : Effect.sleep(`${Math.floor(random() * 8)} millis`)
        return Effect.as(wait, reply(answer))
      })
      yield* runGenerate(storage, llm, generateOptions(settingsFor(9), { concurrency: 4 }))
      const asked = calls.length
      const duplicates = readJsonl(storage.text(`${OUT}.rejects.jsonl`)).filter((r) =>
        /duplicate/.test(r.reasons.join(" "))
      )
      expect(duplicates.map((r) => r.index)).toContain(1)
      yield* rebuildProgram({ runDir: RUN_DIR, out: "/mem/rebuilt.jsonl", indent: undefined, ascii: false }).pipe(
        Effect.provide(storage.layer)
      )
      expect(calls).toHaveLength(asked)
      expect(storage.text("/mem/rebuilt.jsonl")).toBe(storage.text(OUT))
    }))

  it.effect("a run archived by earlier versions (a file per call) resumes without paying twice and rebuilds", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { calls, llm } = scripted((call) => reply(task(requestOf(call).k, requestOf(call).attempt)))
      const reached = yield* blockJournalWrite(storage, 4) // 3 samples journaled, the 4th archived only
      const fiber = yield* Effect.fork(runGenerate(storage, llm, generateOptions(settingsFor(6))))
      yield* Deferred.await(reached)
      yield* Fiber.interrupt(fiber)
      storage.onWrite = () => Effect.void
      // The run directory as an earlier version left it: `task_0004_c01.json` per call, rows naming those files.
      const log = `${RUN_DIR}/archive_01.jsonl`
      for (const line of storage.text(log).split("\n").filter((l) => l !== "")) {
        const { name, ...record } = JSON.parse(line)
        storage.files.set(`${RUN_DIR}/${name}`, JSON.stringify(record, null, 2) + "\n")
      }
      storage.files.delete(log)
      const journal = `${RUN_DIR}/journal.jsonl`
      storage.files.set(journal, storage.text(journal).replaceAll("archive_01.jsonl#", ""))
      expect(calls).toHaveLength(4)
      yield* runGenerate(storage, llm, generateOptions(settingsFor(6)))
      expect(calls).toHaveLength(6) // sample 4's archived answer was used, not asked again
      const rows = readJsonl(storage.text(OUT))
      expect(rows.map((r) => JSON.parse(r.extra_info.task_metadata).raw_output_path)).toEqual([
        "raw_llm/run-1/task_0001_c01.json",
        "raw_llm/run-1/task_0002_c01.json",
        "raw_llm/run-1/task_0003_c01.json",
        "raw_llm/run-1/task_0004_c01.json",
        "raw_llm/run-1/archive_01.jsonl#task_0005_c01.json",
        "raw_llm/run-1/archive_01.jsonl#task_0006_c01.json"
      ])
      yield* rebuildProgram({ runDir: RUN_DIR, out: "/mem/rebuilt.jsonl", indent: undefined, ascii: false }).pipe(
        Effect.provide(storage.layer)
      )
      expect(calls).toHaveLength(6)
      expect(storage.text("/mem/rebuilt.jsonl")).toBe(storage.text(OUT))
    }))

  it.effect("a journal line cut by a crash is not an entry; the next line starts on its own", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { calls, llm } = scripted((call) => reply(task(requestOf(call).k, requestOf(call).attempt)))
      yield* runGenerate(storage, llm, generateOptions(settingsFor(3)))
      const done = storage.text(OUT)
      const journal = storage.text(`${RUN_DIR}/journal.jsonl`)
      const lastStart = journal.lastIndexOf("\n", journal.length - 2) + 1
      for (const cut of [lastStart + 1, lastStart + 40, journal.length - 2, journal.length - 1]) {
        storage.files.set(`${RUN_DIR}/journal.jsonl`, journal.slice(0, cut))
        storage.files.delete(OUT)
        yield* runGenerate(storage, llm, generateOptions(settingsFor(3)))
        expect(storage.text(OUT)).toBe(done)
        const lines = storage.text(`${RUN_DIR}/journal.jsonl`).split("\n").filter((l) => l !== "")
        // The torn line stays (it is never an entry); the re-journaled sample is on a line of its own.
        expect(JSON.parse(lines.at(-1)!).index).toBe(2)
      }
      expect(calls).toHaveLength(3) // the cut sample's answer came back from the archive each time
    }))

  it.effect("journal lines that are not readable before the last: a warning names them; their samples come back from the archive", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { calls, llm } = scripted((call) => reply(task(requestOf(call).k, requestOf(call).attempt)))
      yield* runGenerate(storage, llm, generateOptions(settingsFor(3)))
      const done = storage.text(OUT)
      const file = `${RUN_DIR}/journal.jsonl`
      const [first, second, third] = storage.text(file).split("\n")
      storage.files.set(
        file,
        [first!.slice(0, 25), second!.replace(/"index":\d+/, "\"index\":\"one\""), third, ""].join("\n")
      )
      storage.files.delete(OUT)
      const logs: Array<string> = []
      const logger = loggingInto(logs)
      yield* runGenerate(storage, llm, generateOptions(settingsFor(3))).pipe(Effect.provide(logger))
      expect(logs.filter((l) => l.includes("not readable"))).toEqual([
        `WARN: ${file}: 2 line(s) are not readable, skipped (line 1: not JSON (Expected ',' or '}' after property ` +
        "value in JSON at position 25); line 2: index: must be a number, got \"one\"): the samples whose lines they were are made " +
        "again, unless a later line holds them: the answers the run archived for them are judged again first, not " +
        "paid again"
      ])
      expect(storage.text(OUT)).toBe(done)
      expect(calls).toHaveLength(3) // their answers came back from the archive: nothing paid twice
    }))

  it.effect("a ledger line that is not readable: a warning says its cost is missing from the totals", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { llm } = scripted((call) => reply(task(requestOf(call).k, requestOf(call).attempt)))
      yield* runGenerate(storage, llm, generateOptions(settingsFor(2)))
      const file = `${RUN_DIR}/ledger.jsonl`
      const [first, ...rest] = storage.text(file).split("\n")
      storage.files.set(file, [first!.slice(0, 25), ...rest].join("\n"))
      const logs: Array<string> = []
      const logger = loggingInto(logs)
      yield* runGenerate(storage, llm, generateOptions(settingsFor(2))).pipe(Effect.provide(logger))
      expect(logs.filter((l) => l.includes("not readable"))).toEqual([
        expect.stringMatching(
          new RegExp(
            `^WARN: ${file}: 1 line\\(s\\) are not readable, skipped \\(line 1: not JSON .*\\): the cost of the calls ` +
              "they recorded is missing from the run's totals and from what --max-cost counts as spent$"
          )
        )
      ])
    }))

  it.effect("a Responses answer with status failed: its tokens are in the run's cost", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const failedUsage = { input: 900, cached: 0, output: 50, reasoning: 40 }
      const { llm } = scripted((call) =>
        call.index === 0
          ? { body: { ...responsesBody("", { usage: failedUsage }), status: "failed", error: { message: "oops" } } }
          : reply(task(1))
      )
      yield* runGenerate(storage, llm, generateOptions(settingsFor(1)))
      expect(manifestOf(storage).tokens.input).toBe(USAGE.input + failedUsage.input)
      expect(manifestOf(storage).counts.calls).toBe(2)
    }))
})
