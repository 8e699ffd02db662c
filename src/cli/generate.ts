/** `skyrl generate`: synthesize tasks with a model and write SkyRL rows (options; wiring is lazy). */
import { Command, Options } from "@effect/cli"
import { Config, Effect } from "effect"
import { batchFlags } from "./batch.js"
import { llmOptions } from "./llmOptions.js"
import {
  asOfOption,
  dataSourceOption,
  flagWithDefault,
  indentOption,
  intFlag as int,
  inventoryOption,
  maxPromptTokensOption,
  optionalFlag,
  outOption,
  planLimitOptions,
  switchFlag
} from "./shared.js"
import { runVerifyFlags } from "./verifyFlags.js"

export const runOptions = {
  concurrency: int("concurrency", "CONCURRENCY", 4, "Samples in flight at once"),
  rawDir: optionalFlag(
    Options.directory("raw-dir"),
    "Archive root; one directory per run",
    Config.string("RAW_DIR"),
    "raw_llm/ next to the output"
  ),
  rawGzip: switchFlag("raw-gzip", "Gzip the archived model answers"),
  resume: switchFlag(
    "resume",
    "Continue the last run for this output; finished samples are not requested again. Refused when the settings that make the rows differ from the run's (see --force)"
  ),
  force: switchFlag(
    "force",
    "With --resume: continue the run with the settings it was made with, even where the flags now differ"
  ),
  dryRun: switchFlag(
    "dry-run",
    "Call no model: print the work plan, one full request, the output schema and the cost estimate"
  ),
  indent: indentOption,
  ascii: switchFlag("ascii", "Escape non-ASCII characters in JSON output"),
  servers: optionalFlag(
    Options.text("servers"),
    "Comma list of inventory servers to offer the model",
    // SKYRL_SERVERS as every other command reads it; SERVERS as the wrapper script passes it.
    Config.string("SKYRL_SERVERS").pipe(Config.orElse(() => Config.string("SERVERS"))),
    "all"
  ),
  maxAttempts: int("max-attempts", "MAX_ATTEMPTS", 3, "Attempts per sample before it counts as failed"),
  rpm: optionalFlag(
    Options.integer("rpm"),
    "Requests per minute allowed (client-side pacing)",
    Config.integer("OPENAI_RPM"),
    "no limit"
  ),
  tpm: optionalFlag(
    Options.integer("tpm"),
    "Tokens per minute allowed (client-side pacing; a request counts its input, output schema and --max-output-tokens)",
    Config.integer("OPENAI_TPM"),
    "no limit"
  ),
  maxCost: optionalFlag(
    Options.float("max-cost"),
    "Stop starting calls (repairs included) once this many USD are spent; what was made is kept",
    Config.number("MAX_COST_USD"),
    "no limit"
  ),
  maxPromptTokens: maxPromptTokensOption,
  asOf: asOfOption
}

export const generateCommand = Command.make(
  "generate",
  {
    out: outOption,
    n: int("n", "N_SAMPLES", 10, "Number of valid rows to make"),
    domains: optionalFlag(
      Options.text("domains"),
      "Comma list of task domains",
      Config.string("DOMAINS"),
      "six domains fitting the bundled inventory's finance catalogue, or for any other inventory the domains a " +
        "first stage asks the model for"
    ),
    personas: optionalFlag(
      Options.file("personas"),
      "File of personas, one per line (who writes each request)",
      Config.string("PERSONAS"),
      "a built-in list of 24"
    ),
    subjects: optionalFlag(
      Options.text("subjects"),
      "File of subjects, one per line (companies, topics, places, files...), handed out without repetition; " +
        "`none` for no subjects",
      Config.string("SUBJECTS"),
      "a first stage asks the model for subjects per domain"
    ),
    nearDup: flagWithDefault(
      Options.text("near-dup"),
      "Reject a task whose user prompt is at least this similar (MinHash over 3-word shingles, 0-1) to an accepted " +
        "one, or whose plan repeats one (same calls, same literal params); `off` to allow both",
      Config.string("NEAR_DUP"),
      "0.8"
    ),
    complexities: flagWithDefault(
      Options.text("complexities"),
      "Comma list with optional weights, e.g. simple:2,moderate:1,complex:1",
      Config.string("COMPLEXITIES"),
      "simple:1,moderate:2,complex:1"
    ),
    ...planLimitOptions,
    seed: int(
      "seed",
      "SEED",
      7,
      "Seed of the work plan (domain, complexity, focus tool, style, persona and subject per sample)"
    ),
    allowUnstatedLiterals: switchFlag(
      "allow-unstated-literals",
      "Accept a task whose plan has a literal param value its prompt never states (a warning, " +
        "prompt/literal-not-shown) instead of sending it back to the model to state the value or mark it derived"
    ),
    allowToolNamesInPrompt: switchFlag(
      "allow-tool-names-in-prompt",
      "Accept a task whose user message names a plan tool, holds <tool_call> syntax or a step's params as JSON " +
        "(a warning, prompt/user-names-tool) instead of sending it back to the model to rewrite the request"
    ),
    inventory: inventoryOption,
    dataSource: dataSourceOption,
    ...runOptions,
    ...llmOptions,
    ...batchFlags,
    ...runVerifyFlags
  },
  (options) => Effect.flatMap(Effect.promise(() => import("./generate.live.js")), (m) => m.runGenerate(options))
).pipe(Command.withDescription("Ask a model for tasks with tool plans, validate them, and write SkyRL rows"))
