/**
 * `skyrl validate FILE... [--inventory INV] [--max-prompt-tokens 512] [--json]`: checks datasets
 * against the SkyRL contract, the inventory, Arrow hazards, the prompt budget and duplicates, and
 * prints a report with a coverage table on stdout (logs go to stderr). Exit 0 clean, 1 violations,
 * 2 unreadable file. The checks load lazily from ./validate.live.js.
 */
import { Args, Command, Options } from "@effect/cli"
import { Config, Effect } from "effect"
import { inventoryOption } from "./shared.js"

export const validateCommand = Command.make(
  "validate",
  {
    files: Args.file({ name: "FILE", exists: "yes" }).pipe(
      Args.withDescription("Dataset files (.json, .jsonl, .parquet); checked together, as SkyRL concatenates them"),
      Args.atLeast(1)
    ),
    inventory: inventoryOption,
    maxPromptTokens: Options.integer("max-prompt-tokens").pipe(
      Options.withDescription(
        "Prompt budget in tokens (SkyRL's trainer.max_prompt_length; longer prompts are dropped)"
      ),
      Options.withFallbackConfig(Config.integer("MAX_PROMPT_TOKENS")),
      Options.withDefault(512)
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print the report as one JSON object"))
  },
  (options) => Effect.flatMap(Effect.promise(() => import("./validate.live.js")), (m) => m.runValidate(options))
).pipe(
  Command.withDescription(
    "Check datasets: SkyRL row contract, plans against the inventory, Arrow hazards, prompt tokens, duplicates; " +
      "prints a report and a coverage table"
  )
)
