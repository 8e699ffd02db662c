/** `skyrl enrich INPUT --out FILE`: plan tool calls for existing prompts (options; wiring is lazy). */
import { Args, Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { batchFlags } from "./batch.js"
import { runOptions } from "./generate.js"
import { llmOptions } from "./llmOptions.js"
import {
  dataSourceOption,
  flagWithDefault,
  inventoryOption,
  outOption,
  planLimitOptions,
  switchFlag
} from "./shared.js"
import { runVerifyFlags } from "./verifyFlags.js"

export const enrichCommand = Command.make(
  "enrich",
  {
    input: Args.file({ name: "INPUT", exists: "yes" }).pipe(
      Args.withDescription(
        "Prompts to plan: SkyRL rows (.json/.jsonl/.parquet), ShareGPT conversations or OpenAI message lists (JSON or JSONL)"
      )
    ),
    out: outOption,
    inputFormat: flagWithDefault(
      Options.choice("input-format", ["auto", "skyrl", "sharegpt", "openai"] as const),
      "Input format: skyrl, sharegpt, openai, or auto (detected per row)",
      undefined,
      "auto" as const
    ),
    limit: Options.integer("limit").pipe(
      Options.withDescription("Stop after this many rows planned (rows kept as is and rejected rows do not count)"),
      Options.optional
    ),
    overwrite: switchFlag("overwrite", "Plan again SkyRL rows that already have a plan (default: copy them unchanged)"),
    inventoryFromPrompt: switchFlag(
      "inventory-from-prompt",
      "Use each prompt's own <tools> block (in its system message) as its inventory, all tools on server \"prompt\""
    ),
    keepSystemMessage: switchFlag(
      "keep-system-message",
      "Keep a source system message that lists no tools byte for byte (default: add the tools the plan may use " +
        "after its text, as skyrl's prompts list them, so the policy is shown the tools it is trained to call)"
    ),
    allowSchemaMismatch: switchFlag(
      "allow-schema-mismatch",
      "Plan with a tool a <tools> block lists under the inventory's schema even when the block shows other params, " +
        "types, defaults or allowed values (default: such a tool is not offered to plan with, so no plan teaches " +
        "params the prompt never shows)"
    ),
    allowPlanLeak: switchFlag(
      "allow-plan-leak",
      "Plan and keep rows whose prompt gives the plan away (prompt/plan-leak: e.g. a <tools> block listing fewer " +
        "than 3 tools besides the plan's), with a warning, as runs before 2026-12-05 did (default: reject them, " +
        "since `skyrl validate` fails them)"
    ),
    debug: switchFlag(
      "debug",
      "Debug logs for this run (per-row inventory and request size); the archive always keeps each full request and answer"
    ),
    ...planLimitOptions,
    inventory: inventoryOption,
    dataSource: dataSourceOption,
    ...runOptions,
    ...llmOptions,
    ...batchFlags,
    ...runVerifyFlags
  },
  (options) => Effect.flatMap(Effect.promise(() => import("./enrich.live.js")), (m) => m.runEnrich(options))
).pipe(
  Command.withDescription(
    "Add ground-truth tool plans to existing prompts (SkyRL rows, ShareGPT or OpenAI chat logs); their text is kept (a " +
      "system message that lists no tools gets the offered tools added after it, unless --keep-system-message)"
  )
)
