/** Options shared by several commands, so the same flag means the same thing everywhere. */
import { Options } from "@effect/cli"
import { Config } from "effect"

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

export const inventoryOption = Options.file("inventory").pipe(
  Options.withDescription("Tool inventory file (default: the bundled finance MCP inventory in data/)"),
  Options.withFallbackConfig(Config.string("SKYRL_INVENTORY")),
  Options.optional
)

export const dataSourceOption = Options.text("data-source").pipe(
  Options.withDescription("Value of each row's data_source column"),
  Options.withFallbackConfig(Config.string("DATA_SOURCE")),
  Options.withDefault("synthetic/llm")
)

export const serversOption = Options.text("servers").pipe(
  Options.withDescription(
    "Comma-separated MCP server names: only their tools are offered/used (default: every server of the inventory)"
  ),
  Options.withFallbackConfig(Config.string("SKYRL_SERVERS")),
  Options.optional
)
