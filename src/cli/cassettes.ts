/** `skyrl cassettes stats DIR|FILE`: summarises a tool-result cassette store (what `skyrl verify` recorded). */
import { Args, Command, Options } from "@effect/cli"
import { Effect } from "effect"

const statsCommand = Command.make(
  "stats",
  {
    dir: Args.path({ name: "DIR", exists: "yes" }).pipe(
      Args.withDescription("Cassette directory (holding cassettes.jsonl), or the store file itself (any name)")
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print the stats as one JSON object")),
    trustKeys: Options.boolean("trust-keys").pipe(
      Options.withDescription(
        "Take each line's key as written: a line without params, or whose key is not the key of its server, tool " +
          "and params, is counted as an entry (the rule before 2026-12-05; MCPToolEnv's cassette_keys: trusted), " +
          "for a store another program wrote without params"
      )
    )
  },
  (options) => Effect.flatMap(Effect.promise(() => import("./cassettes.live.js")), (m) => m.runCassetteStats(options))
).pipe(
  Command.withDescription(
    "Summarise a cassette store: entries (distinct calls) per server and tool, tool errors, illustrative results, " +
      "server versions, time range; duplicate keys and a torn last line are counted, not fatal; any other line " +
      "that is not an entry (a line whose key is not the key of its server, tool and params too) exits 1 after the " +
      "stats (MCPToolEnv refuses such a store)"
  )
)

export const cassettesCommand = Command.make("cassettes").pipe(
  Command.withDescription("Tool-result cassettes recorded by `skyrl verify` (replayed by MCPToolEnv)"),
  Command.withSubcommands([statsCommand])
)
