/**
 * `skyrl verify DATASET... --out FILE`: runs every row's plan on the live MCP servers, keeps the rows
 * that verify (with a `verification` record in their task metadata) and the tool results (cassettes).
 * The work loads lazily from ./verify.live.js (the MCP SDK is not loaded for --help).
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { flagWithDefault, inventoryOption, serversConfigOption } from "./shared.js"
import { allowSideEffectsOption, cassettesOption, startTimeoutOption } from "./verifyFlags.js"

export const verifyOptions = {
  files: Args.file({ name: "DATASET", exists: "yes" }).pipe(
    Args.withDescription("Datasets to verify (.json, .jsonl, .parquet); rows are read in order, file after file"),
    Args.atLeast(1)
  ),
  out: Options.file("out").pipe(
    Options.withAlias("o"),
    Options.withDescription(
      "Where the verified rows go (.json, .jsonl, .parquet); the others go to <out>.rejects.jsonl with their reason"
    )
  ),
  inventory: inventoryOption,
  serversConfig: serversConfigOption,
  cassettes: cassettesOption,
  concurrency: flagWithDefault(
    Options.integer("concurrency"),
    "Rows in flight at once (also the bound on calls in flight per server)",
    undefined,
    4
  ),
  timeout: flagWithDefault(Options.integer("timeout"), "Seconds allowed for one tool call", undefined, 30),
  startTimeout: startTimeoutOption("start-timeout"),
  allowSideEffects: allowSideEffectsOption,
  limit: Options.integer("limit").pipe(Options.withDescription("Verify only the first N rows"), Options.optional),
  resume: Options.boolean("resume").pipe(
    Options.withDescription(
      "Continue an interrupted run: rows the journal (<out>.verify-journal.jsonl) has as verified or tool-error are " +
        "not run again"
    )
  ),
  dryRun: Options.boolean("dry-run").pipe(
    Options.withDescription("List what would run for each row and which servers would start; starts nothing")
  )
}

export const verifyCommand = Command.make(
  "verify",
  verifyOptions,
  (options) => Effect.flatMap(Effect.promise(() => import("./verify.live.js")), (m) => m.runVerify(options))
).pipe(
  Command.withDescription(
    "Run every row's plan on the live MCP servers (one connection per server, restarted if it dies): verified rows " +
      "go to --out with task_metadata.verification, the others to <out>.rejects.jsonl (tool-error, timeout, " +
      "server-unavailable, skipped-side-effect), every tool result to the cassettes. Only read-only tools run " +
      "unless --allow-side-effects"
  )
)
