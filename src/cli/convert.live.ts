/** Live wiring of `convert` (loaded lazily by src/cli/convert.ts). */
import { Clock, Effect, Option, Schema } from "effect"
import * as path from "node:path"
import { InputError } from "../domain/errors.js"
import { commaNamed, Inventory, nameFault } from "../domain/inventory.js"
import { SettingsError } from "../domain/run.js"
import { convertProgram } from "../programs/convert.js"
import { ScratchLive } from "../services/Scratch.js"
import { Storage, StorageLive } from "../services/Storage.js"
import { parseIssues } from "../skyrl/parseIssues.js"
import { schemaProblems } from "../skyrl/planValidation.js"
import { wholeJsonFault } from "../skyrl/utf8.js"
import { checkOutFormat } from "./outFormat.js"
import { outputsApart } from "./outputsApart.js"
import { DEFAULT_INVENTORY } from "./paths.js"
import { positiveInt } from "./runShared.js"
import { resolveAsOf } from "./shared.js"

export const loadInventoryFile = (file: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const text = yield* storage.readText(file).pipe(Effect.mapError((e) => new InputError({ file, reason: e.reason })))
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => new InputError({ file, reason: wholeJsonFault(text, e) })
    })
    const inventory = yield* Schema.decodeUnknown(Inventory)(json).pipe(
      Effect.mapError((e) => {
        const issue = parseIssues(e)[0]
        return new InputError({ file, field: issue?.path ?? "", reason: issue?.message ?? "invalid inventory" })
      })
    )
    // The schema leaves the comma to decodeInventory (an inventory a run kept may hold one); one given here may not.
    const comma = commaNamed(inventory)[0]
    if (comma !== undefined) {
      return yield* new InputError({ file, field: comma.entry, reason: nameFault(comma.name, comma.kind) ?? "" })
    }
    // A tool whose input schema does not compile would make every plan using it unverifiable.
    const problem = schemaProblems(inventory)[0]
    if (problem !== undefined) return yield* new InputError({ file, field: problem.entry, reason: problem.reason })
    return inventory
  })

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
    yield* outputsApart("convert", [{ setting: "--out", file: options.out }, {
      setting: "--rejects",
      file: rejectsFile
    }], [
      { what: "tasks file", file: options.tasks },
      { what: "--inventory file", file: inventoryFile }
    ])
    if (path.resolve(rejectsFile) === path.resolve(options.out)) {
      // Written after the rows, the rejects would replace them.
      return yield* new SettingsError({
        setting: "--rejects",
        reason: "is the --out file; give the rejects a file of their own"
      })
    }
    const inventory = yield* loadInventoryFile(inventoryFile)
    const maxPromptTokens = yield* positiveInt(options.maxPromptTokens, "--max-prompt-tokens (MAX_PROMPT_TOKENS)")
    const now = new Date(yield* Clock.currentTimeMillis)
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
  }).pipe(Effect.provide(StorageLive), Effect.provide(ScratchLive))
