/**
 * `skyrl split DATASET... --train FILE --val FILE [--val-fraction F | --val-rows N] [--seed S] [--group-by G]`:
 * a train/validation split in which no group of near-copies (the same plan, by default) straddles the two. The
 * work loads lazily from ./split.live.js.
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { flagWithDefault, optionalFlag } from "./shared.js"

const outputFile = (name: string, what: string) =>
  Options.file(name).pipe(Options.withDescription(`The ${what} rows (.json, .jsonl or .parquet), written atomically`))

export const splitCommand = Command.make(
  "split",
  {
    files: Args.file({ name: "DATASET", exists: "yes" }).pipe(
      Args.withDescription("Dataset files (.json, .jsonl, .parquet), split as one, rows kept in input order"),
      Args.atLeast(1)
    ),
    train: outputFile("train", "training"),
    val: outputFile("val", "validation"),
    valFraction: optionalFlag(
      Options.float("val-fraction"),
      "Share of the groups that go to validation (above 0, below 1): those whose hash of seed and key falls " +
        "under it, so rows added later do not move the groups already split",
      undefined,
      "0.1"
    ),
    valRows: optionalFlag(
      Options.integer("val-rows"),
      "Rows for validation instead of a fraction: the groups with the smallest hashes until that many (a group " +
        "is never cut)",
      undefined
    ),
    seed: flagWithDefault(Options.integer("seed"), "Seed of the group hash", undefined, 0),
    groupBy: flagWithDefault(
      Options.choice("group-by", ["plan", "prompt", "none"] as const),
      "What makes rows one group: the same plan (tools and literal params), the same user prompt as " +
        "near-duplicate detection normalizes it, or none (each row alone)",
      undefined,
      "plan"
    )
  },
  (options) => Effect.flatMap(Effect.promise(() => import("./split.live.js")), (m) => m.runSplit(options))
).pipe(
  Command.withDescription(
    "Split datasets into training and validation files, keeping each group of near-copies (the same plan by " +
      "default) on one side: no validation reward measured on a copy of a training row"
  )
)
