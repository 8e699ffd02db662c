/**
 * `skyrl validate FILE... [--inventory INV] [--max-prompt-tokens 1024] [--json] [--fail-on RULES]`: checks datasets
 * against the SkyRL contract, the inventory, Arrow hazards, the prompt budget and duplicates, and
 * prints a report with a coverage table on stdout (logs go to stderr). Exit 0 clean, 1 violations,
 * 2 unreadable file. The checks load lazily from ./validate.live.js.
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { flagWithDefault, inventoryOption, maxPromptTokensOption } from "./shared.js"

export const validateCommand = Command.make(
  "validate",
  {
    files: Args.file({ name: "FILE", exists: "yes" }).pipe(
      Args.withDescription("Dataset files (.json, .jsonl, .parquet); checked together, as SkyRL concatenates them"),
      Args.atLeast(1)
    ),
    inventory: inventoryOption,
    maxPromptTokens: maxPromptTokensOption,
    nearDup: flagWithDefault(
      Options.text("near-dup"),
      "MinHash similarity (0-1) at which two user prompts count as near-duplicates in the report " +
        "(duplicate/similar-prompt, a warning)",
      undefined,
      "0.8"
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print the report as one JSON object")),
    failOn: Options.text("fail-on").pipe(
      Options.withDescription(
        "Warning rules that fail the run (exit 1) as errors do, comma-separated (e.g. " +
          "prompt/literal-not-shown,prompt/tools-not-shown), or `warnings` for every one: to gate a pipeline on them"
      ),
      Options.optional
    )
  },
  (options) => Effect.flatMap(Effect.promise(() => import("./validate.live.js")), (m) => m.runValidate(options))
).pipe(
  Command.withDescription(
    "Check datasets: SkyRL row contract, param provenance, plans against the inventory, Arrow hazards, prompt tokens " +
      "and plan leaks, duplicates; " +
      "prints a report, a coverage table and a diversity report (tools, subjects, near-duplicate clusters)"
  )
)
