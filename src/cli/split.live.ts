/** Live wiring of `skyrl split` (loaded lazily by src/cli/split.ts). */
import { Effect, Option } from "effect"
import { SettingsError } from "../domain/run.js"
import { lockOutput } from "../programs/outputLock.js"
import { splitProgram } from "../programs/split.js"
import { StorageLive } from "../services/Storage.js"
import type { GroupBy, ValRule } from "../skyrl/split.js"
import { outFormatProblem } from "./outFormat.js"
import { fileDirectory, outputDirectoriesMakeable } from "./outputDirectories.js"
import { filesGivenTwice, outputsApart, sameFile } from "./outputsApart.js"
import { positiveInt } from "./runShared.js"

const DEFAULT_VAL_FRACTION = 0.1

/** `--val-fraction` or `--val-rows` (not both), checked. */
const valRuleOf = (
  fraction: Option.Option<number>,
  rows: Option.Option<number>
): Effect.Effect<ValRule, SettingsError> => {
  if (Option.isSome(rows)) {
    if (Option.isSome(fraction)) {
      return Effect.fail(
        new SettingsError({ setting: "--val-rows", reason: "give --val-fraction or --val-rows, not both" })
      )
    }
    return Effect.map(positiveInt(rows.value, "--val-rows"), (n) => ({ _tag: "rows", rows: n }))
  }
  const f = Option.getOrElse(fraction, () => DEFAULT_VAL_FRACTION)
  return f > 0 && f < 1
    ? Effect.succeed({ _tag: "fraction", fraction: f })
    : Effect.fail(new SettingsError({ setting: "--val-fraction", reason: `must be above 0 and below 1, got ${f}` }))
}

/**
 * No dataset file given twice (the same path, or one file by a symlink or hard link): its rows would each be split
 * twice, into --train and --val alike, or twice into one (before: exit 0, and validate failed the train file on
 * duplicate/prompt and duplicate/task-id).
 */
const inputsOnce = (files: ReadonlyArray<string>): Effect.Effect<void, SettingsError> => {
  const twice = filesGivenTwice(files)[0]
  if (twice === undefined) return Effect.void
  const [first, i] = twice
  const reason = `is given twice (files ${first + 1} and ${i + 1}): each of its rows would be split twice; give it once`
  return Effect.fail(new SettingsError({ setting: files[i]!, reason }))
}

/** Each output a dataset file of its own: a known format, not an input, not the other output. */
const outputsChecked = (files: ReadonlyArray<string>, train: string, val: string) =>
  Effect.gen(function*() {
    for (const [setting, file] of [["--train", train], ["--val", val]] as const) {
      const reason = outFormatProblem(file)
      if (reason !== undefined) return yield* new SettingsError({ setting, reason })
    }
    yield* outputsApart(
      "split",
      [{ setting: "--train", file: train }, { setting: "--val", file: val }],
      files.map(
        (file) => ({ what: "dataset file", file })
      )
    )
    if (sameFile(train, val)) {
      return yield* new SettingsError({ setting: "--val", reason: "is the --train file; give each split its own file" })
    }
    yield* outputDirectoriesMakeable([fileDirectory("--train", train), fileDirectory("--val", val)])
  })

export const runSplit = (options: {
  readonly files: ReadonlyArray<string>
  readonly train: string
  readonly val: string
  readonly valFraction: Option.Option<number>
  readonly valRows: Option.Option<number>
  readonly seed: number
  readonly groupBy: GroupBy
}) =>
  Effect.gen(function*() {
    const rule = yield* valRuleOf(options.valFraction, options.valRows)
    yield* inputsOnce(options.files)
    yield* outputsChecked(options.files, options.train, options.val)
    // Each output is written by one command at a time (`lockOutput`), as every dataset writer's --out.
    yield* lockOutput(options.train, "split")
    yield* lockOutput(options.val, "split")
    yield* splitProgram({ ...options, rule })
  }).pipe(Effect.scoped, Effect.provide(StorageLive))
