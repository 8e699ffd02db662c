/** Options shared by several commands, so the same flag means the same thing everywhere. */
import { Options } from "@effect/cli"
import { Config } from "effect"

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

export const serversConfigOption = Options.file("servers-config").pipe(
  Options.withDescription(
    "MCP servers config (the `mcpServers` JSON of MCP clients: {\"mcpServers\": {\"name\": {\"command\", \"args\", " +
      "\"env\", \"cwd\"} | {\"url\", \"headers\"}}}): how to start servers; wins over an inventory's launch specs"
  ),
  Options.optional
)
