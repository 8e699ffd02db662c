/**
 * `skyrl batch status RUN_DIR` and `skyrl batch collect RUN_DIR` (runs submitted with
 * `generate --backend batch` or `enrich --backend batch`), plus the batch flags both take. The openai SDK loads lazily from
 * ./batch.live.js.
 */
import { Args, Command, Options } from "@effect/cli"
import { Config, Effect, Option } from "effect"

const positive = (n: number) => (n > 0 ? Option.some(n) : Option.none<number>())

const wait = Options.boolean("wait").pipe(
  Options.withDescription("Poll the batches until they are done (interval growing from --poll-interval), then go on")
)
const pollInterval = Options.float("poll-interval").pipe(
  Options.withDescription(
    "Seconds before the first poll of a batch; grows ×1.5 per poll up to 10 minutes (default 30)"
  ),
  Options.withFallbackConfig(Config.number("SKYRL_BATCH_POLL_INTERVAL")),
  Options.withDefault(30),
  Options.filterMap(positive, "--poll-interval must be a positive number of seconds")
)
const repairs = Options.choice("repairs", ["online", "batch"] as const).pipe(
  Options.withDescription(
    "Where repairs and retries of batch answers go: online (default: the live API now, normal price) or batch " +
      "(a follow-up batch at batch price; collect again when it is done, or use --wait)"
  ),
  Options.withFallbackConfig(Config.literal("online", "batch")("SKYRL_BATCH_REPAIRS")),
  Options.withDefault("online" as const)
)
const batchMaxRequests = Options.integer("batch-max-requests").pipe(
  Options.withDescription(
    "Most requests in one batch (default and API maximum 50000); a run with more is split into several batches"
  ),
  Options.withFallbackConfig(Config.integer("SKYRL_BATCH_MAX_REQUESTS")),
  Options.withDefault(50_000),
  Options.filterMap(positive, "--batch-max-requests must be a positive integer")
)

/** Flags `generate` and `enrich` take for `--backend batch`. */
export const batchFlags = {
  batchEndpoint: Options.choice("batch-endpoint", ["responses", "chat"] as const).pipe(
    Options.withDescription(
      "With --backend batch: the API the request bodies are for, responses (default, /v1/responses) or chat (/v1/chat/completions)"
    ),
    Options.withFallbackConfig(Config.literal("responses", "chat")("SKYRL_BATCH_ENDPOINT")),
    Options.withDefault("responses" as const)
  ),
  wait,
  pollInterval,
  repairs,
  batchMaxRequests
}

export interface BatchFlags {
  readonly batchEndpoint: "responses" | "chat"
  readonly wait: boolean
  /** Seconds. */
  readonly pollInterval: number
  readonly repairs: "online" | "batch"
  readonly batchMaxRequests: number
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
    repairs,
    resubmit: Options.boolean("resubmit").pipe(
      Options.withDescription(
        "Send the samples the batches did not answer (expired, failed lines) again, as a follow-up batch"
      )
    ),
    concurrency: Options.integer("concurrency").pipe(
      Options.withDescription("Online calls at once for repairs (default: the run's --concurrency)"),
      Options.optional
    ),
    batchMaxRequests
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
    "Runs through OpenAI's Batch API (half price): status and collect of `generate --backend batch`"
  ),
  Command.withSubcommands([statusCommand, collectCommand])
)
