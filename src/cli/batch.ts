/**
 * `skyrl batch status RUN_DIR` and `skyrl batch collect RUN_DIR` (runs submitted with
 * `generate --backend batch` or `enrich --backend batch`), plus the batch flags both take. The openai SDK loads lazily from
 * ./batch.live.js.
 */
import { Args, Command, Options } from "@effect/cli"
import { Config, Effect, Option } from "effect"
import { flagWithDefault, optionalFlag, switchFlag } from "./shared.js"

/**
 * The run directory of the batch run this process submits or collects (absolute), once known: the line an
 * interrupted command ends with names it (src/cli/exit.ts), rather than `RUN_DIR` (the command line cannot
 * tell it: option values may stand between its words, and a submission prints the directory it makes).
 */
let runDirOfThisProcess: string | undefined
export const noteBatchRunDir = (runDir: string): void => {
  runDirOfThisProcess = runDir
}
export const batchRunDir = (): string | undefined => runDirOfThisProcess

const positive = (n: number) => (n > 0 ? Option.some(n) : Option.none<number>())

const wait = switchFlag(
  "wait",
  "Poll the batches until they are done (interval growing from --poll-interval), then go on"
)
const pollInterval = flagWithDefault(
  Options.float("poll-interval"),
  "Seconds before the first poll of a batch; grows ×1.5 per poll up to 10 minutes",
  Config.number("SKYRL_BATCH_POLL_INTERVAL"),
  30
).pipe(Options.filterMap(positive, "--poll-interval must be a positive number of seconds"))
const repairs = flagWithDefault(
  Options.choice("repairs", ["online", "batch"] as const),
  "Where repairs, new attempts and retries of lines that failed transiently go: online (the live API " +
    "now, normal price) or batch (a follow-up batch at batch price; collect again when it is done, or use --wait)",
  Config.literal("online", "batch")("SKYRL_BATCH_REPAIRS"),
  "online" as const
)
/** `batch collect --repairs`: absent, the submission's choice. */
const collectRepairs = optionalFlag(
  Options.choice("repairs", ["online", "batch"] as const),
  "Where repairs, new attempts and retries of lines that failed transiently go: online (the live API now, " +
    "normal price) or batch (a follow-up batch at batch price); default: what the run was submitted with",
  Config.literal("online", "batch")("SKYRL_BATCH_REPAIRS")
)
const batchMaxRequests = flagWithDefault(
  Options.integer("batch-max-requests"),
  "Most requests in one batch (API maximum 50000); a run with more is split into several batches",
  Config.integer("SKYRL_BATCH_MAX_REQUESTS"),
  50_000
).pipe(Options.filterMap(positive, "--batch-max-requests must be a positive integer"))

const batchMaxTokens = optionalFlag(
  Options.integer("batch-max-tokens"),
  "Most tokens one batch may enqueue (input with the output schema, plus --max-output-tokens per request, " +
    "estimated): set it to your account's enqueued-token limit for the model; larger runs are split and " +
    "their batches submitted as room in the queue frees up",
  Config.integer("SKYRL_BATCH_MAX_TOKENS"),
  "no limit; collect: the run's"
)

/** Flags `generate` and `enrich` take for `--backend batch`. */
export const batchFlags = {
  batchEndpoint: flagWithDefault(
    Options.choice("batch-endpoint", ["responses", "chat"] as const),
    "With --backend batch: the API the request bodies are for, responses (/v1/responses) or chat (/v1/chat/completions)",
    Config.literal("responses", "chat")("SKYRL_BATCH_ENDPOINT"),
    "responses" as const
  ),
  wait,
  pollInterval,
  repairs,
  batchMaxRequests,
  batchMaxTokens
}

export interface BatchFlags {
  readonly batchEndpoint: "responses" | "chat"
  readonly wait: boolean
  /** Seconds. */
  readonly pollInterval: number
  readonly repairs: "online" | "batch"
  readonly batchMaxRequests: number
  readonly batchMaxTokens: Option.Option<number>
}

const runDir = Args.directory({ name: "RUN_DIR", exists: "yes" }).pipe(
  Args.withDescription("The run directory printed by `generate --backend batch` (raw_llm/<run_id>/)")
)

const statusCommand = Command.make(
  "status",
  { runDir, wait, pollInterval },
  (options) => Effect.flatMap(Effect.promise(() => import("./batch.live.js")), (m) => m.runBatchStatus(options))
).pipe(
  Command.withDescription(
    "Print the state of a batch run on stdout: each batch with its request counts, then the totals " +
      "(with --wait: once every batch is done)"
  )
)

const collectCommand = Command.make(
  "collect",
  {
    runDir,
    wait,
    pollInterval,
    repairs: collectRepairs,
    resubmit: switchFlag(
      "resubmit",
      "Send the samples that have no line at all (a failed or cancelled batch, one that expired without " +
        "answering anything) again, as a follow-up batch (lines that failed are retried without it)"
    ),
    retryFailed: switchFlag(
      "retry-failed",
      "Give the samples that failed (every attempt rejected) --max-attempts more attempts; without it a " +
        "collect makes no new attempt for them"
    ),
    maxCost: optionalFlag(
      Options.float("max-cost").pipe(Options.filterMap(positive, "--max-cost must be a positive number of USD")),
      "Budget in USD of the whole run (its cost ledger): once reached, no online call or follow-up batch is " +
        "made; batch answers, paid for as their batch ran, are always used",
      undefined,
      "the run's --max-cost"
    ),
    concurrency: optionalFlag(
      Options.integer("concurrency"),
      "Online calls at once for repairs",
      undefined,
      "the run's --concurrency"
    ),
    batchMaxRequests,
    batchMaxTokens
  },
  (options) => Effect.flatMap(Effect.promise(() => import("./batch.live.js")), (m) => m.runBatchCollect(options))
).pipe(
  Command.withDescription(
    "Download the results of a batch run, validate and repair them, and write the dataset (rows, archive, " +
      "rejects, manifest as an online run). Collecting again never duplicates rows. Exit 75 while batches are running"
  )
)

export const batchCommand = Command.make("batch").pipe(
  Command.withDescription(
    "Runs through OpenAI's Batch API (half price): status and collect of `generate --backend batch` and " +
      "`enrich --backend batch`"
  ),
  Command.withSubcommands([statusCommand, collectCommand])
)
