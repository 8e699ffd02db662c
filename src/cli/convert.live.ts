/** Live wiring of `convert` (loaded lazily by src/cli/convert.ts). */
import { Clock, Effect, Option } from "effect"
import * as path from "node:path"
import { SettingsError } from "../domain/run.js"
import { convertProgram } from "../programs/convert.js"
import { lockOutput } from "../programs/outputLock.js"
import { loadInventoryFile } from "../services/Inventory.js"
import { ScratchLive } from "../services/Scratch.js"
import { StorageLive } from "../services/Storage.js"
import { checkOutFormat } from "./outFormat.js"
import { fileDirectory, outputDirectoriesMakeable } from "./outputDirectories.js"
import { outputsApart } from "./outputsApart.js"
import { DEFAULT_INVENTORY } from "./paths.js"
import { positiveInt } from "./runShared.js"
import { resolveAsOf } from "./shared.js"

export const runConvert = (options: {
  readonly tasks: string
  readonly out: string
  readonly inventory: Option.Option<string>
  readonly dataSource: string
  readonly rejects: Option.Option<string>
  readonly maxPromptTokens: number
  readonly asOf: Option.Option<string>
}) =>
  Effect.gen(function*() {
    const rejectsFile = Option.getOrElse(options.rejects, () => `${options.out}.rejects.jsonl`)
    yield* checkOutFormat(options.out)
    const inventoryFile = Option.getOrElse(options.inventory, () => DEFAULT_INVENTORY)
    // The rejects file by default is --out's (`<out>.rejects.jsonl`), named as generate and enrich name it.
    const rejectsSetting = Option.isSome(options.rejects) ? "--rejects" : "--out's rejects file"
    yield* outputsApart("convert", [{ setting: "--out", file: options.out }, {
      setting: rejectsSetting,
      file: rejectsFile
    }], [
      { what: "tasks file", file: options.tasks },
      { what: "--inventory file", file: inventoryFile }
    ])
    if (Option.isSome(options.rejects) && !/\.jsonl$/i.test(rejectsFile)) {
      // Always JSON Lines: a .parquet or .json name would hold text of another format.
      return yield* new SettingsError({
        setting: "--rejects",
        reason: `"${rejectsFile}" must end in .jsonl (the rejects are written as JSON Lines)`
      })
    }
    if (path.resolve(rejectsFile) === path.resolve(options.out)) {
      // Written after the rows, the rejects would replace them.
      return yield* new SettingsError({
        setting: "--rejects",
        reason: "is the --out file; give the rejects a file of their own"
      })
    }
    yield* outputDirectoriesMakeable([
      fileDirectory("--out", options.out),
      fileDirectory(Option.isSome(options.rejects) ? "--rejects" : "--out", rejectsFile)
    ])
    const inventory = yield* loadInventoryFile(inventoryFile)
    const maxPromptTokens = yield* positiveInt(options.maxPromptTokens, "--max-prompt-tokens (MAX_PROMPT_TOKENS)")
    const now = new Date(yield* Clock.currentTimeMillis)
    // One command writes an --out at a time (its rows and rejects), taken once the flags are judged: beside a run
    // writing the same --out, the last rename won, and the dataset could be one command's and its rejects another's.
    yield* lockOutput(options.out, "convert")
    yield* convertProgram({
      tasksFile: options.tasks,
      out: options.out,
      rejectsFile,
      dataSource: options.dataSource,
      inventory,
      maxPromptTokens,
      today: now.toISOString().slice(0, 10),
      ...(Option.isSome(options.asOf) ? { asOf: yield* resolveAsOf(options.asOf, now) } : {})
    })
  }).pipe(Effect.scoped, Effect.provide(StorageLive), Effect.provide(ScratchLive))
