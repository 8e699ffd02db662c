/** Options shared by several commands, so the same flag means the same thing everywhere. */
import { Options } from "@effect/cli"
import { Config, ConfigError, Effect, Either, Option } from "effect"
import { existsSync } from "node:fs"
import { extname } from "node:path"
import { DEFAULT_MAX_PROMPT_TOKENS } from "../domain/row.js"
import { SettingsError } from "../domain/run.js"
import { isIsoDay } from "../domain/task.js"

/** A `Config`'s shape as effect ~3.22 builds it (its internal `_tag`s; not exported as a type). */
type ConfigNode =
  | { readonly _tag: "Nested"; readonly name: string; readonly config: ConfigNode }
  | { readonly _tag: "Fallback"; readonly first: ConfigNode; readonly second: ConfigNode }
  | { readonly _tag: "Lazy"; readonly config: () => ConfigNode }
  | { readonly _tag: "MapOrFail"; readonly original: ConfigNode }
  | { readonly _tag: "Described"; readonly config: ConfigNode }

/**
 * The environment variables `config` reads, in order (`SKYRL_SERVERS`, then `SERVERS`), so --help names the
 * variable the option reads. Read from the Config's shape, not by loading it: running an Effect per option
 * at start-up cost --help 10-170 ms (37 options). A shape not known here gives no name (test/cliHelp.test.ts fails then).
 */
const envNamesOf = (config: unknown): ReadonlyArray<string> => {
  const node = config as ConfigNode
  switch (node._tag) {
    case "Nested":
      return [node.name]
    case "Fallback":
      return [...envNamesOf(node.first), ...envNamesOf(node.second)]
    case "Lazy":
      return envNamesOf(node.config())
    case "MapOrFail":
      return envNamesOf(node.original)
    case "Described":
      return envNamesOf(node.config)
    default:
      return []
  }
}

/**
 * `description` with what --help should say of every option that has them, in one form: ` (default: SHOWN;
 * env: VAR)`. `shown`: the default value, or what leaving the option out means; `env`: the option's
 * environment fallback (the flag wins, then the variable, then the default).
 */
const describeSetting = (
  description: string,
  shown: string | undefined,
  env?: Config.Config<unknown>
): string => {
  const notes = [
    ...(shown === undefined ? [] : [`default: ${shown}`]),
    ...(env === undefined ? [] : [`env: ${envNamesOf(env).join(" or ")}`])
  ]
  return notes.length === 0 ? description : `${description} (${notes.join("; ")})`
}

const withEnv = <A>(env: Config.Config<A> | undefined) => (option: Options.Options<A>): Options.Options<A> =>
  env === undefined ? option : Options.withFallbackConfig(option, env)

/**
 * A flag with a default and, unless `env` is undefined, an environment fallback (the flag wins, then the
 * variable); --help gives both.
 */
export const flagWithDefault = <A>(
  option: Options.Options<A>,
  description: string,
  env: Config.Config<A> | undefined,
  fallback: A
): Options.Options<A> =>
  option.pipe(
    Options.withDescription(describeSetting(description, String(fallback), env)),
    withEnv(env),
    Options.withDefault(fallback)
  )

/**
 * A flag with an environment fallback (none when `env` is undefined), absent when neither is given; --help
 * gives the variable and `absent`, what leaving it out means.
 */
export const optionalFlag = <A>(
  option: Options.Options<A>,
  description: string,
  env: Config.Config<A> | undefined,
  absent?: string
) =>
  option.pipe(
    Options.withDescription(describeSetting(description, absent, env)),
    withEnv(env),
    Options.optional
  )

/** A yes/no flag (off unless given). */
export const switchFlag = (name: string, description: string) =>
  Options.boolean(name).pipe(Options.withDescription(description))

/** An integer flag with an environment fallback and a default. */
export const intFlag = (name: string, env: string, fallback: number, description: string) =>
  flagWithDefault(Options.integer(name), description, Config.integer(env), fallback)

/** `--indent N` of .json output, 0 to 10: JSON.stringify indents nested levels by at most 10 spaces. */
export const indentOption = Options.integer("indent").pipe(
  Options.withDescription(describeSetting("Indentation of .json output, 0 to 10", "2")),
  Options.filterMap(
    (n) => (n >= 0 && n <= 10 ? Option.some(n) : Option.none<number>()),
    "--indent must be an integer from 0 to 10"
  ),
  Options.optional
)

/**
 * `--indent` given for an output it does not apply to (.jsonl: one row per line; .parquet): said once, since
 * nothing else would show that the flag had no effect.
 */
export const warnIndentIgnored = (out: string, indent: Option.Option<number>): Effect.Effect<void> =>
  Option.isSome(indent) && extname(out).toLowerCase() !== ".json"
    ? Effect.logWarning(
      `--indent applies to .json output only: ${out} is not indented (its rows are written as they are)`
    )
    : Effect.void

/** Limits of a plan, the same for every command that asks for plans. */
export const planLimitOptions = {
  maxTools: intFlag("max-tools", "MAX_TOOLS", 5, "Most tool calls a plan may have"),
  maxTurns: intFlag("max-turns", "MAX_TURNS", 8, "Most agent turns a task may take")
}

export const logFormatOption = flagWithDefault(
  Options.choice("log-format", ["pretty", "json"] as const),
  "Log format on stderr: pretty (readable lines) or json (one JSON object per line)",
  Config.literal("pretty", "json")("SKYRL_LOG_FORMAT"),
  "pretty" as const
)

export const outOption = Options.file("out").pipe(
  Options.withAlias("o"),
  Options.withDescription("Output dataset path; the format follows the extension (.json, .jsonl, .parquet)")
)

export const inventoryOption = optionalFlag(
  Options.file("inventory", { exists: "yes" }),
  "Tool inventory file",
  // The variable's file must exist as the flag's must (a usage error, exit 2, before anything runs).
  Config.string("SKYRL_INVENTORY").pipe(
    Config.mapOrFail((file) =>
      existsSync(file)
        ? Either.right(file)
        : Either.left(
          ConfigError.InvalidData([], file === "" ? "is empty (unset it, or name a file)" : `no such file: ${file}`)
        )
    )
  ),
  "the bundled finance MCP inventory in data/"
)

/**
 * `--data-source` (env DATA_SOURCE): SkyRL routes a row's reward by its data_source, so an empty or blank one
 * (`--data-source ''`) is a usage error, for every command that takes it.
 */
export const dataSourceOption = flagWithDefault(
  Options.text("data-source"),
  "Value of each row's data_source column",
  Config.string("DATA_SOURCE"),
  "synthetic/llm"
).pipe(
  Options.filterMap(
    (s) => (s.trim() === "" ? Option.none<string>() : Option.some(s)),
    "--data-source (DATA_SOURCE) must not be empty or blank: SkyRL routes each row's reward by its data_source"
  )
)

export const maxPromptTokensOption = flagWithDefault(
  Options.integer("max-prompt-tokens"),
  "Prompt budget in BPE tokens, chat template included; SkyRL's trainer.max_prompt_length must be at least this " +
    "(longer prompts are dropped silently)",
  Config.integer("MAX_PROMPT_TOKENS"),
  DEFAULT_MAX_PROMPT_TOKENS
)

/**
 * `--as-of` (env AS_OF) described for a command, with what its absence means there (withDescription on a made
 * option appends, it does not replace).
 */
export const asOfOptionDescribed = (description: string, absent: string) =>
  optionalFlag(Options.text("as-of"), description, Config.string("AS_OF"), absent)

export const asOfOption = asOfOptionDescribed(
  "The date of the prompts' `Today is YYYY-MM-DD.` line, recorded as metadata as_of",
  "the run's start date"
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

export const serversOption = optionalFlag(
  Options.text("servers"),
  "Comma-separated MCP server names: only their tools are offered/used",
  Config.string("SKYRL_SERVERS"),
  "every server of the inventory"
)

export const serversConfigOption = Options.file("servers-config", { exists: "yes" }).pipe(
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
export const timeoutProblem = (seconds: number, slack = 0, flag = "--timeout"): string | undefined =>
  seconds > 0 && seconds <= MAX_TIMEOUT_SECONDS - slack
    ? undefined
    : `${flag} must be a positive number of seconds, at most ${
      MAX_TIMEOUT_SECONDS - slack
    } (setTimeout's limit, ~24.8 days)`
