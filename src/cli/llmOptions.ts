/**
 * LLM flags shared by every command that calls the model (generate, enrich, ...): spread
 * `llmOptions` into the command's options and turn the parsed values into the Llm layer with
 * `llmLayer`. The openai SDK and the replay reader are imported lazily, only when the layer is built,
 * so `skyrl --help` stays fast and works without a key.
 *
 * `--llm auto` (default): OpenAI when OPENAI_API_KEY is set, otherwise replay of recorded answers from
 * `--replay-dir` with one warning saying the run is offline.
 */
import { Options } from "@effect/cli"
import type { Layer } from "effect"
import { Config, Effect, Layer as L, Option, Redacted } from "effect"
import { existsSync } from "node:fs"
import * as path from "node:path"
import type { Backend, LlmChoice, LlmSettings, ReasoningEffort } from "../domain/llm.js"
import { baseUrlProblem, defaultLlmSettings, makeLlmSettings, MissingApiKey, ReplayUnavailable } from "../domain/llm.js"
import { SettingsError } from "../domain/run.js"
import type { Llm } from "../services/Llm.js"
import type { ExactOnly } from "../services/llm/replay.js"
import type { RateLimiter } from "../services/RateLimiter.js"
import { DEFAULT_REPLAY_DIR } from "./paths.js"
import { flagWithDefault, timeoutProblem } from "./shared.js"

const positive = (n: number) => (n > 0 ? Option.some(n) : Option.none<number>())
const nonNegative = (n: number) => (Number.isInteger(n) && n >= 0 ? Option.some(n) : Option.none<number>())

export const llmOptions = {
  llm: flagWithDefault(
    Options.choice("llm", ["auto", "openai", "replay"] as const),
    "Who answers: openai (needs OPENAI_API_KEY), replay (recorded answers from --replay-dir, offline), or auto: " +
      "openai when OPENAI_API_KEY is set, else replay",
    Config.literal("auto", "openai", "replay")("SKYRL_LLM"),
    "auto" as const
  ),
  replayDir: flagWithDefault(
    Options.text("replay-dir"),
    "Recorded answers for --llm replay: a directory (searched recursively) or a file of Chat/Responses bodies or " +
      "skyrl archive files",
    Config.string("SKYRL_REPLAY_DIR"),
    "data/replay"
  ),
  model: flagWithDefault(
    Options.text("model"),
    "Model name",
    Config.nonEmptyString("OPENAI_MODEL"),
    defaultLlmSettings.model
  ).pipe(
    // `--model ""` was taken, and every request then refused by the API (OPENAI_MODEL="" already was refused).
    Options.filterMap((m) => (m.trim() === "" ? Option.none() : Option.some(m)), "--model must name a model")
  ),
  backend: flagWithDefault(
    Options.choice("backend", ["responses", "chat", "batch"] as const),
    "OpenAI API: responses, chat (Chat Completions), or batch (generate, enrich: the Batch API at half price; " +
      "bodies for --batch-endpoint)",
    Config.literal("responses", "chat", "batch")("OPENAI_BACKEND"),
    defaultLlmSettings.backend as "responses" | "chat" | "batch"
  ),
  reasoningEffort: flagWithDefault(
    Options.choice("reasoning-effort", ["minimal", "low", "medium", "high"] as const),
    "Reasoning effort (dropped automatically for models that reject it)",
    Config.literal("minimal", "low", "medium", "high")("OPENAI_REASONING_EFFORT"),
    defaultLlmSettings.reasoningEffort
  ),
  maxOutputTokens: flagWithDefault(
    Options.integer("max-output-tokens"),
    "Output token limit per call, reasoning included",
    Config.integer("OPENAI_MAX_OUTPUT_TOKENS"),
    defaultLlmSettings.maxOutputTokens
  ).pipe(Options.filterMap(positive, "--max-output-tokens must be a positive integer")),
  timeout: flagWithDefault(
    Options.float("timeout"),
    "Seconds per HTTP attempt before it is aborted and retried",
    Config.number("OPENAI_TIMEOUT"),
    defaultLlmSettings.timeoutMs / 1000
  ).pipe(
    Options.filterMap(
      (s) => (timeoutProblem(s, 1) === undefined ? Option.some(s) : Option.none()),
      timeoutProblem(0, 1)!
    )
  ),
  retries: flagWithDefault(
    Options.integer("retries"),
    "Retries after a rate limit, server error, connection error or timeout",
    Config.integer("OPENAI_MAX_RETRIES"),
    defaultLlmSettings.maxRetries
  ).pipe(Options.filterMap(nonNegative, "--retries must be a non-negative integer"))
}

export interface LlmOptions {
  readonly llm: LlmChoice
  readonly replayDir: string
  readonly model: string
  /** "batch": the Batch API (generate and enrich); the request bodies are Responses bodies unless the command says otherwise. */
  readonly backend: Backend | "batch"
  readonly reasoningEffort: ReasoningEffort
  readonly maxOutputTokens: number
  /** Seconds. */
  readonly timeout: number
  readonly retries: number
}

export const llmSettingsFromOptions = (options: LlmOptions): LlmSettings =>
  makeLlmSettings({
    model: options.model,
    backend: options.backend === "batch" ? "responses" : options.backend,
    reasoningEffort: options.reasoningEffort,
    maxOutputTokens: options.maxOutputTokens,
    timeoutMs: Math.round(options.timeout * 1000),
    maxRetries: options.retries
  })

/** True when OPENAI_API_KEY is set to something non-empty (the value is never read out). */
export const hasApiKey: Effect.Effect<boolean> = Config.option(Config.redacted("OPENAI_API_KEY")).pipe(
  Effect.map((key) => Option.isSome(key) && Redacted.value(key.value).trim() !== ""),
  Effect.orElseSucceed(() => false)
)

/** Whether the options select the OpenAI API (`--llm openai`, or `auto` with a key) rather than replay. */
export const usesOpenAI = (options: Pick<LlmOptions, "llm">): Effect.Effect<boolean> =>
  options.llm === "openai" ? Effect.succeed(true) : options.llm === "auto" ? hasApiKey : Effect.succeed(false)

/** The directory of recorded answers: the default relative path means the bundled answers, from any working directory. */
export const replayDirOf = (options: Pick<LlmOptions, "replayDir">): string =>
  options.replayDir === "data/replay" && !existsSync(options.replayDir) ? DEFAULT_REPLAY_DIR : options.replayDir

/**
 * The --replay-dir as an input of a run that answers from it (`--llm replay`, or `auto` without a key): every
 * .json and .jsonl file under it is read as a recording, so nothing of the run may be written there (an `--out`
 * there overwrote a recorded answer, or became a recording of the next replay).
 */
export const replayInput = (
  options: Pick<LlmOptions, "llm" | "replayDir">
): Effect.Effect<{ what: string; file: string; directory: true; why: string } | undefined> =>
  Effect.map(usesOpenAI(options), (openai) =>
    openai ? undefined : {
      what: "--replay-dir",
      file: replayDirOf(options),
      directory: true,
      why: "whose every .json and .jsonl file a replay reads as a recorded answer"
    })

/**
 * OPENAI_BASE_URL checked (`baseUrlProblem`) before a run that calls OpenAI starts anything, whatever its backend
 * (the Batch API's client too, which `llmLayer` does not build): a SettingsError naming the variable.
 */
export const baseUrlChecked = (options: Pick<LlmOptions, "llm">): Effect.Effect<void, SettingsError> =>
  Effect.flatMap(usesOpenAI(options), (openai) => {
    const error = openai ? baseUrlError(process.env.OPENAI_BASE_URL) : undefined
    return error === undefined ? Effect.void : Effect.fail(error)
  })

/** The SettingsError of an unusable base URL (`baseUrlProblem`); undefined when it is unset or usable. */
const baseUrlError = (baseUrl: string | undefined): SettingsError | undefined => {
  const problem = baseUrl === undefined || baseUrl === "" ? undefined : baseUrlProblem(baseUrl)
  return problem === undefined ? undefined : new SettingsError({ setting: "OPENAI_BASE_URL", reason: problem })
}

/**
 * The Llm layer the options select (see the module comment). Provide it per subcommand, with the
 * `RateLimiter` that paces the live layer's HTTP attempts. `exactOnly`: replay answers only requests it
 * holds a recording of (see `LlmReplay`).
 */
export const llmLayer = (
  options: LlmOptions,
  exactOnly?: ExactOnly
): Layer.Layer<Llm, MissingApiKey | ReplayUnavailable | SettingsError, RateLimiter> =>
  L.unwrapEffect(
    Effect.gen(function*() {
      if (options.backend === "batch") {
        return L.fail(
          new SettingsError({
            setting: "--backend batch",
            reason:
              "this command cannot use the Batch API (only generate and enrich can); use --backend responses or chat"
          })
        )
      }
      const settings = llmSettingsFromOptions(options)
      const useOpenAI = yield* usesOpenAI(options)
      if (useOpenAI) {
        const error = baseUrlError(settings.baseUrl ?? process.env.OPENAI_BASE_URL)
        if (error !== undefined) return L.fail(error)
        const { LlmLive } = yield* Effect.promise(() => import("../services/llm/live.js"))
        return LlmLive(settings) as Layer.Layer<Llm, MissingApiKey | ReplayUnavailable | SettingsError, RateLimiter>
      }
      const { LlmReplay } = yield* Effect.promise(() => import("../services/llm/replay.js"))
      const replayDir = replayDirOf(options)
      // A --replay-dir (or SKYRL_REPLAY_DIR) that is not there is a missing input: a usage error, as for --inventory.
      if (!existsSync(replayDir)) {
        return L.fail(
          new SettingsError({
            setting: "--replay-dir (SKYRL_REPLAY_DIR)",
            reason: `${replayDir} does not exist (looked for ${path.resolve(replayDir)}): give a directory or file ` +
              `of recorded answers${options.llm === "auto" ? ", or set OPENAI_API_KEY to call OpenAI" : ""}`
          })
        )
      }
      if (options.llm === "auto") {
        yield* Effect.logWarning(
          `OPENAI_API_KEY is not set: running offline, answering from recorded answers in ${replayDir}`
        )
      }
      // The default directory, not one given, is what --replay-dir would replace.
      const given = options.replayDir !== "data/replay"
      return L.catchAll(LlmReplay([replayDir], settings, exactOnly), (e) =>
        L.fail(
          options.llm === "auto"
            ? new ReplayUnavailable({
              path: e.path,
              reason: `${e.reason}; set OPENAI_API_KEY to call OpenAI${given ? "" : ", or pass --replay-dir"}`
            })
            : e
        ))
    })
  )

export { MissingApiKey }
