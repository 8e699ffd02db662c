/** Live wiring of `rebuild` (loaded lazily by src/cli/rebuild.ts). */
import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { SettingsError } from "../domain/run.js"
import { rebuildProgram } from "../programs/rebuild.js"
import { Inventory } from "../services/Inventory.js"
import { readManifest } from "../services/RunJournal.js"
import { Storage, StorageLive } from "../services/Storage.js"
import { checkOutFormat } from "./outFormat.js"
import { warnIndentIgnored } from "./shared.js"

/**
 * Where a path leads once symbolic links are followed, as a write would find it: the real path of its nearest
 * existing ancestor (of the path resolved as Storage resolves it) with the levels not there yet after it.
 */
const realPathOf = async (file: string): Promise<string> => {
  const rest: Array<string> = []
  let at = path.resolve(file)
  for (;;) {
    const real = await fs.realpath(at).catch(() => undefined)
    if (real !== undefined) return path.join(real, ...rest)
    const parent = path.dirname(at)
    if (parent === at) return path.resolve(file)
    rest.unshift(path.basename(at))
    at = parent
  }
}

export const runRebuild = (options: {
  readonly runDir: string
  readonly out: string
  readonly inventory: Option.Option<string>
  readonly indent: Option.Option<number>
  readonly ascii: boolean
}) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    // Before: found when the rows were written ("cannot write r.txt: unknown dataset format ... once DIR can be
    // written, run the rebuild again"), and "r.jsonl/" made a directory there.
    yield* checkOutFormat(options.out)
    // Compared as real paths (symbolic links, `..`): nothing is written inside the run directory, not even a new
    // file: a name the run reads (plan_inputs.json, archive_02.jsonl) broke its --resume and rebuild. Checked once
    // RUN_DIR is known to be a generate run's (rebuildProgram), which is the error to report first.
    const outApart = Effect.gen(function*() {
      const runDir = yield* Effect.promise(() => realPathOf(options.runDir))
      const out = yield* Effect.promise(() => realPathOf(options.out))
      const within = path.relative(runDir, out)
      if (within === "" || !(within === ".." || within.startsWith(`..${path.sep}`) || path.isAbsolute(within))) {
        return yield* new SettingsError({
          setting: "--out",
          reason: `${options.out} is inside the run directory ${runDir} (as ${within === "" ? "." : within}), which ` +
            "rebuild only reads (a file written there is taken for one of the run's, or replaces it); write elsewhere"
        })
      }
    })
    // The inventory the run kept (inventory.json in its directory), unless --inventory overrides it; runs of
    // older versions: the inventory settings of their manifest. Either is the run's own (`keptByRun`).
    const kept = path.join(options.runDir, "inventory.json")
    const manifest = yield* readManifest(path.join(options.runDir, "manifest.json"))
    const settings = Option.match(manifest, {
      onNone: () => ({}) as { inventory?: string | null; servers?: Array<string> | null },
      onSome: (m) => m.settings as { inventory?: string | null; servers?: Array<string> | null }
    })
    const keptThere = yield* storage.exists(kept)
    const inventory = Option.isSome(options.inventory)
      ? Inventory.fromFile(options.inventory.value)
      : keptThere
      ? Inventory.fromFile(kept, { keptByRun: true })
      : Inventory.fromFile(settings.inventory ?? undefined, {
        ...(settings.servers ? { servers: settings.servers } : {}),
        keptByRun: true
      })
    const inventoryFrom = Option.isSome(options.inventory)
      ? `--inventory ${options.inventory.value}`
      : keptThere
      ? kept
      : "the inventory of the run's settings"
    yield* warnIndentIgnored(options.out, options.indent)
    // An --out already there is replaced only by a complete rebuild (rebuildProgram asks Storage for that).
    return yield* rebuildProgram({
      runDir: options.runDir,
      out: options.out,
      indent: Option.getOrUndefined(options.indent),
      ascii: options.ascii,
      inventoryFrom,
      outApart
    }).pipe(Effect.provide(inventory.pipe(Layer.provide(StorageLive))))
  }).pipe(Effect.provide(StorageLive))
