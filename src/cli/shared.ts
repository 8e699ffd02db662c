/** Options shared by several commands, so the same flag means the same thing everywhere. */
import { Options } from "@effect/cli"
import { Config, ConfigError, Effect, Either, Option } from "effect"
import { existsSync } from "node:fs"
import { DEFAULT_MAX_PROMPT_TOKENS } from "../domain/row.js"
import { SettingsError } from "../domain/run.js"
import { isIsoDay } from "../domain/task.js"

/** A flag with an environment fallback and a default (the flag wins, then the variable). */
export const flagWithDefault = <A>(
  option: Options.Options<A>,
  description: string,
  env: Config.Config<A>,
  fallback: A
): Options.Options<A> =>
  option.pipe(Options.withDescription(description), Options.withFallbackConfig(env), Options.withDefault(fallback))

/** A flag with an environment fallback, absent when neither is given. */
export const optionalFlag = <A>(option: Options.Options<A>, description: string, env: Config.Config<A>) =>
  option.pipe(Options.withDescription(description), Options.withFallbackConfig(env), Options.optional)

/** A yes/no flag (off unless given). */
export const switchFlag = (name: string, description: string) =>
  Options.boolean(name).pipe(Options.withDescription(description))

/** An integer flag with an environment fallback and a default. */
export const intFlag = (name: string, env: string, fallback: number, description: string) =>
  flagWithDefault(Options.integer(name), description, Config.integer(env), fallback)

/** `--indent N` of .json output, 0 to 10: JSON.stringify indents nested levels by at most 10 spaces. */
export const indentOption = (description: string) =>
  Options.integer("indent").pipe(
    Options.withDescription(description),
    Options.filterMap(
      (n) => (n >= 0 && n <= 10 ? Option.some(n) : Option.none<number>()),
      "--indent must be an integer from 0 to 10"
    ),
    Options.optional
  )

/** Limits of a plan, the same for every command that asks for plans. */
export const planLimitOptions = {
  maxTools: intFlag("max-tools", "MAX_TOOLS", 5, "Most tool calls a plan may have"),
  maxTurns: intFlag("max-turns", "MAX_TURNS", 8, "Most agent turns a task may take")
}

export const logFormatOption = Options.choice("log-format", ["pretty", "json"]).pipe(
  Options.withDescription("Log format on stderr: readable lines (default) or one JSON object per line"),
  Options.withFallbackConfig(Config.literal("pretty", "json")("SKYRL_LOG_FORMAT")),
  Options.withDefault("pretty" as const)
)

export const outOption = Options.file("out").pipe(
  Options.withAlias("o"),
  Options.withDescription("Output dataset path; the format follows the extension (.json, .jsonl, .parquet)")
)

export const inventoryOption = Options.file("inventory", { exists: "yes" }).pipe(
  Options.withDescription("Tool inventory file (default: the bundled finance MCP inventory in data/)"),
  // The variable's file must exist as the flag's must (a usage error, exit 2, before anything runs).
  Options.withFallbackConfig(
    Config.string("SKYRL_INVENTORY").pipe(
      Config.mapOrFail((file) =>
        existsSync(file) ? Either.right(file) : Either.left(ConfigError.InvalidData([], `no such file: ${file}`))
      )
    )
  ),
  Options.optional
)

export const dataSourceOption = Options.text("data-source").pipe(
  Options.withDescription("Value of each row's data_source column"),
  Options.withFallbackConfig(Config.string("DATA_SOURCE")),
  Options.withDefault("synthetic/llm")
)

export const maxPromptTokensOption = Options.integer("max-prompt-tokens").pipe(
  Options.withDescription(
    "Prompt budget in BPE tokens, chat template included; SkyRL's trainer.max_prompt_length must be at least this " +
      "(longer prompts are dropped silently)"
  ),
  Options.withFallbackConfig(Config.integer("MAX_PROMPT_TOKENS")),
  Options.withDefault(DEFAULT_MAX_PROMPT_TOKENS)
)

/** `--as-of` (env AS_OF) described for a command (withDescription on a made option appends, it does not replace). */
export const asOfOptionDescribed = (description: string) =>
  Options.text("as-of").pipe(
    Options.withDescription(description),
    Options.withFallbackConfig(Config.string("AS_OF")),
    Options.optional
  )

export const asOfOption = asOfOptionDescribed(
  "The date of the prompts' `Today is YYYY-MM-DD.` line, recorded as metadata as_of (default: the run's start date)"
)

/** The `--as-of` date: the one given (checked), else the UTC date of `now`. */
export const resolveAsOf = (given: Option.Option<string>, now: Date): Effect.Effect<string, SettingsError> =>
  Option.match(given, {
    onNone: () => Effect.succeed(now.toISOString().slice(0, 10)),
    onSome: (text) =>
      isIsoDay(text.trim())
        ? Effect.succeed(text.trim())
        : Effect.fail(
          new SettingsError({ setting: "--as-of (AS_OF)", reason: `must be a date YYYY-MM-DD, got "${text}"` })
        )
  })

export const serversOption = Options.text("servers").pipe(
  Options.withDescription(
    "Comma-separated MCP server names: only their tools are offered/used (default: every server of the inventory)"
  ),
  Options.withFallbackConfig(Config.string("SKYRL_SERVERS")),
  Options.optional
)

export const serversConfigOption = Options.file("servers-config").pipe(
  Options.withDescription(
    "MCP servers config (the `mcpServers` JSON of MCP clients: {\"mcpServers\": {\"name\": {\"command\", \"args\", " +
      "\"env\", \"cwd\"} | {\"url\", \"headers\"}}}; comments and trailing commas allowed): how to start servers; " +
      "wins over an inventory's launch specs"
  ),
  Options.optional
)

/** setTimeout's limit in whole seconds (2^31 - 1 ms, ~24.8 days): a longer delay fires at once. */
export const MAX_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000)

/**
 * Why `seconds` cannot be a `--timeout`, or undefined; `slack`: seconds the caller's own timer adds (the LLM
 * client's HTTP timer runs 1 s past the attempt's).
 */
export const timeoutProblem = (seconds: number, slack = 0): string | undefined =>
  seconds > 0 && seconds <= MAX_TIMEOUT_SECONDS - slack
    ? undefined
    : `--timeout must be a positive number of seconds, at most ${
      MAX_TIMEOUT_SECONDS - slack
    } (setTimeout's limit, ~24.8 days)`
