/** `skyrl generate`: synthesize tasks with a model and write SkyRL rows (options; wiring is lazy). */
import { Command, Options } from "@effect/cli"
import { Config, Effect } from "effect"
import { batchFlags } from "./batch.js"
import { llmOptions } from "./llmOptions.js"
import { dataSourceOption, inventoryOption, outOption } from "./shared.js"

const int = (name: string, env: string, fallback: number, description: string) =>
  Options.integer(name).pipe(
    Options.withDescription(description),
    Options.withFallbackConfig(Config.integer(env)),
    Options.withDefault(fallback)
  )

export const runOptions = {
  concurrency: int("concurrency", "CONCURRENCY", 4, "Samples in flight at once"),
  rawDir: Options.directory("raw-dir").pipe(
    Options.withDescription("Archive root (default: raw_llm/ next to the output); one directory per run"),
    Options.withFallbackConfig(Config.string("RAW_DIR")),
    Options.optional
  ),
  rawGzip: Options.boolean("raw-gzip").pipe(Options.withDescription("Gzip the archived model answers")),
  resume: Options.boolean("resume").pipe(
    Options.withDescription(
      "Continue the last run for this output; finished samples are not requested again. Refused when the settings that make the rows differ from the run's (see --force)"
    )
  ),
  force: Options.boolean("force").pipe(
    Options.withDescription(
      "With --resume: continue the run with the settings it was made with, even where the flags now differ"
    )
  ),
  dryRun: Options.boolean("dry-run").pipe(
    Options.withDescription(
      "Call no model: print the work plan, one full request, the output schema and the cost estimate"
    )
  ),
  indent: Options.integer("indent").pipe(
    Options.withDescription("Indentation of .json output (default 2)"),
    Options.optional
  ),
  ascii: Options.boolean("ascii").pipe(Options.withDescription("Escape non-ASCII characters in JSON output")),
  servers: Options.text("servers").pipe(
    Options.withDescription("Comma list of inventory servers to offer the model (default: all)"),
    Options.withFallbackConfig(Config.string("SERVERS")),
    Options.optional
  ),
  maxAttempts: int("max-attempts", "MAX_ATTEMPTS", 3, "Attempts per sample before it counts as failed"),
  rpm: Options.integer("rpm").pipe(
    Options.withDescription("Requests per minute allowed (client-side pacing)"),
    Options.withFallbackConfig(Config.integer("OPENAI_RPM")),
    Options.optional
  ),
  tpm: Options.integer("tpm").pipe(
    Options.withDescription("Tokens per minute allowed (client-side pacing)"),
    Options.withFallbackConfig(Config.integer("OPENAI_TPM")),
    Options.optional
  ),
  maxCost: Options.float("max-cost").pipe(
    Options.withDescription("Stop starting new calls once this many USD are spent (what was made is kept)"),
    Options.withFallbackConfig(Config.number("MAX_COST_USD")),
    Options.optional
  )
}

export const generateCommand = Command.make(
  "generate",
  {
    out: outOption,
    n: int("n", "N_SAMPLES", 10, "Number of valid rows to make"),
    domains: Options.text("domains").pipe(
      Options.withDescription("Comma list of task domains (default: six domains fitting the finance catalogue)"),
      Options.withFallbackConfig(Config.string("DOMAINS")),
      Options.optional
    ),
    complexities: Options.text("complexities").pipe(
      Options.withDescription("Comma list with optional weights, e.g. simple:2,moderate:1,complex:1"),
      Options.withFallbackConfig(Config.string("COMPLEXITIES")),
      Options.withDefault("simple:1,moderate:2,complex:1")
    ),
    maxTools: int("max-tools", "MAX_TOOLS", 5, "Most tool calls a plan may have"),
    maxTurns: int("max-turns", "MAX_TURNS", 8, "Most agent turns a task may take"),
    seed: int("seed", "SEED", 7, "Seed of the work plan (domain and complexity per sample)"),
    inventory: inventoryOption,
    dataSource: dataSourceOption,
    ...runOptions,
    ...llmOptions,
    ...batchFlags
  },
  (options) => Effect.flatMap(Effect.promise(() => import("./generate.live.js")), (m) => m.runGenerate(options))
).pipe(Command.withDescription("Ask a model for tasks with tool plans, validate them, and write SkyRL rows"))
