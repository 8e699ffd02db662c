/**
 * A replay of recorded answers (`--llm replay`, offline) makes at most as many rows as it holds answers: each
 * sample's answer is chosen by its key modulo the count, so a sample past the count could only get an answer
 * an earlier sample got (a duplicate at best). In-process: the real replay Llm over some bundled answers, memory
 * storage. And a run stopped by a signal (its calls in flight answered first) is `interrupted` in its manifest.
 */
import { layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { copyFileSync, mkdtempSync, readdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect } from "vitest"
import { resolveRun } from "../src/cli/runShared.js"
import { makeLlmSettings } from "../src/domain/llm.js"
import type { LlmApi } from "../src/services/Llm.js"
import { makeReplayLlm, readRecordings } from "../src/services/llm/replay.js"
import { makeStopRequests, StopRequests } from "../src/services/StopRequests.js"
import {
  EngineTest,
  generateOptions,
  OUT,
  RAW_DIR,
  readJsonl,
  reply,
  requestOf,
  runGenerate,
  scripted,
  settingsFor
} from "./support/engine.js"
import { validTaskText } from "./support/fakeTasks.js"
import { loggingInto } from "./support/logs.js"
import { makeMemoryStorage } from "./support/memoryStorage.js"

const RUN_DIR = `${RAW_DIR}/run-1`
const BUNDLED = join(import.meta.dirname, "..", "data", "replay")

/** The first `n` bundled recorded answers, in a directory of their own. */
const someAnswers = (n: number) => {
  const dir = mkdtempSync(join(tmpdir(), "skyrl-replay-limit-"))
  for (const f of readdirSync(BUNDLED).filter((f) => f.endsWith(".json")).sort().slice(0, n)) {
    copyFileSync(join(BUNDLED, f), join(dir, f))
  }
  return dir
}

/** The replay Llm over `dir`, and the keys it was asked (none of an archived call). */
const replayOf = (dir: string) =>
  Effect.map(readRecordings([dir]), (recordings) => {
    const replay = makeReplayLlm(recordings, makeLlmSettings(), `replay of ${recordings.length} recorded answers`)
    const keys: Array<string> = []
    const llm: LlmApi = {
      ...replay,
      complete: (request) => Effect.suspend(() => (keys.push(request.key ?? ""), replay.complete(request)))
    }
    return { keys, llm }
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error(`expected a failure, got ${String(exit)}`)
  return exit.cause.error
}

layer(EngineTest, { excludeTestServices: true })("a replay's recorded answers bound the run", (it) => {
  it.effect("-n 5 over 3 recorded answers: samples 1-3 asked, said at the start and at the end; --resume asks none", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { keys, llm } = yield* replayOf(someAnswers(3))
      const settings = settingsFor(5, { answers: "recorded" })
      const logs: Array<string> = []
      const run = () =>
        runGenerate(storage, llm, generateOptions(settings)).pipe(Effect.provide(loggingInto(logs)), Effect.exit)
      const error = failureOf(yield* run())
      // Was: samples 4 and 5 asked too, each attempt given sample 1's, 2's or 3's answer again and rejected as a
      // duplicate (a 200-sample run: 564 rejected attempts, a 16 MB archive; -n 1000000 went on until killed).
      expect(keys).toEqual(["sample-000000", "sample-000001", "sample-000002"])
      expect(readJsonl(storage.text(OUT))).toHaveLength(3)
      expect(storage.files.has(`${OUT}.rejects.jsonl`)).toBe(false)
      const limit = "the replay holds 3 recorded answers, one for each of samples 1-3, so it makes at most 3 rows: " +
        "the other 2 samples"
      expect(logs.filter((l) => l.startsWith("WARN"))).toEqual([
        `WARN: 5 samples asked, more than the replay can make: ${limit} are not asked (any answer they could get ` +
        "is one of those again, a duplicate at best); set OPENAI_API_KEY to make more rows"
      ])
      expect(error._tag).toBe("IncompleteRun")
      expect(error.message).toBe(
        `made 3 of 5 valid rows (kept in ${OUT}): ${limit} were not asked (any answer they could get is one of ` +
          "those again, a duplicate at best); set OPENAI_API_KEY to make more rows"
      )
      expect((error as { exitCode?: number }).exitCode).toBe(1)
      const manifest = JSON.parse(storage.text(`${RUN_DIR}/manifest.json`))
      expect([manifest.status, manifest.counts.valid, manifest.counts.requested]).toEqual(["incomplete", 3, 5])
      // The journal holds the 3 rows only: the samples not asked are no failed samples.
      expect(readJsonl(storage.text(`${RUN_DIR}/journal.jsonl`)).map((e) => [e.index, e.status])).toEqual([
        [0, "row"],
        [1, "row"],
        [2, "row"]
      ])

      // The same run again (--resume): nothing to ask, the same end.
      logs.length = 0
      const again = failureOf(yield* run())
      expect(keys).toHaveLength(3)
      expect(again.message).toBe(error.message)
      expect(readJsonl(storage.text(OUT))).toHaveLength(3)
    }))

  it.effect("recorded answers that fail a sample: its attempts of every session counted, no --resume advice", () =>
    Effect.gen(function*() {
      // (Was covered by the CLI's 14-sample replay, whose samples 13 and 14 are no longer asked.)
      const storage = makeMemoryStorage()
      const { llm } = scripted((call) => {
        const { attempt, k } = requestOf(call)
        // Sample 2 is only ever given sample 1's answer again: a duplicate each time.
        return reply(JSON.parse(k === 2 ? validTaskText(1, 1) : validTaskText(k, attempt)))
      })
      const run = () =>
        runGenerate(storage, llm, generateOptions(settingsFor(3, { answers: "recorded" }))).pipe(Effect.exit)
      const reason = (attempts: number) =>
        `made 2 of 3 valid rows (kept in ${OUT}): 1 samples failed after ${attempts} attempts each; the recorded ` +
        "answers cannot make more of these rows (set OPENAI_API_KEY to ask a model)"
      expect(failureOf(yield* run()).message).toBe(reason(3))
      expect(failureOf(yield* run()).message).toBe(reason(6))
    }))

  it.effect("a run stopped by Ctrl-C while it made samples is `interrupted` in its manifest, and the next run says so", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const stops = makeStopRequests()
      const asked = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const { llm } = scripted((call) =>
        Effect.gen(function*() {
          const { attempt, k } = requestOf(call)
          // Sample 3's call is in flight when the signal comes; it is answered and kept.
          if (k === 3) {
            yield* Deferred.succeed(asked, undefined)
            yield* Deferred.await(release)
          }
          return reply(JSON.parse(validTaskText(k, attempt)))
        })
      )
      const fiber = yield* Effect.fork(
        runGenerate(storage, llm, generateOptions(settingsFor(6))).pipe(
          Effect.provide(Layer.succeed(StopRequests, stops)),
          Effect.exit
        )
      )
      yield* Deferred.await(asked)
      expect(stops.request("SIGINT")).toBe(true)
      yield* Deferred.succeed(release, undefined)
      const error = failureOf(yield* Fiber.join(fiber))
      expect(error._tag).toBe("IncompleteRun")
      expect((error as { exitCode?: number }).exitCode).toBe(130)
      expect(readJsonl(storage.text(OUT))).toHaveLength(3)
      const manifest = JSON.parse(storage.text(`${RUN_DIR}/manifest.json`))
      // Was: "incomplete", as a run whose samples failed (README: `interrupted`).
      expect([manifest.status, manifest.counts.valid, manifest.counts.requested]).toEqual(["interrupted", 3, 6])
      const logs: Array<string> = []
      yield* resolveRun({
        rawDir: RAW_DIR,
        out: OUT,
        command: "generate",
        fresh: settingsFor(6),
        resume: false,
        force: false,
        keepAsOf: true
      }).pipe(Effect.provide(storage.layer), Effect.provide(loggingInto(logs)))
      expect(logs).toContainEqual(
        `WARN: run run-1 for ${OUT} did not complete (interrupted: 3 of 6 rows); this starts a new run, which ` +
          "makes every sample again: add --resume to continue it"
      )
    }))
})
