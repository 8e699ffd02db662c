/** Live wiring of `rebuild` (loaded lazily by src/cli/rebuild.ts). */
import { Effect, Layer, Option } from "effect"
import * as path from "node:path"
import { SettingsError } from "../domain/run.js"
import { rebuildProgram } from "../programs/rebuild.js"
import { Inventory } from "../services/Inventory.js"
import { readManifest } from "../services/RunJournal.js"
import { Storage, StorageLive } from "../services/Storage.js"
import { warnIndentIgnored } from "./shared.js"

export const runRebuild = (options: {
  readonly runDir: string
  readonly out: string
  readonly inventory: Option.Option<string>
  readonly indent: Option.Option<number>
  readonly ascii: boolean
}) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const out = path.resolve(options.out)
    if (path.dirname(out) === path.resolve(options.runDir) && (yield* storage.exists(out))) {
      return yield* new SettingsError({
        setting: "--out",
        reason: `is a file of the run directory (${path.basename(out)}), which rebuild only reads; write elsewhere`
      })
    }
    // The inventory the run kept (inventory.json in its directory), unless --inventory overrides it; runs of
    // older versions: the inventory settings of their manifest. Either is the run's own (`keptByRun`).
    const kept = path.join(options.runDir, "inventory.json")
    const manifest = yield* readManifest(path.join(options.runDir, "manifest.json"))
    const settings = Option.match(manifest, {
      onNone: () => ({}) as { inventory?: string | null; servers?: Array<string> | null },
      onSome: (m) => m.settings as { inventory?: string | null; servers?: Array<string> | null }
    })
    const inventory = Option.isSome(options.inventory)
      ? Inventory.fromFile(options.inventory.value)
      : (yield* storage.exists(kept))
      ? Inventory.fromFile(kept, { keptByRun: true })
      : Inventory.fromFile(settings.inventory ?? undefined, {
        ...(settings.servers ? { servers: settings.servers } : {}),
        keptByRun: true
      })
    yield* warnIndentIgnored(options.out, options.indent)
    return yield* rebuildProgram({
      runDir: options.runDir,
      out: options.out,
      indent: Option.getOrUndefined(options.indent),
      ascii: options.ascii
    }).pipe(Effect.provide(inventory.pipe(Layer.provide(StorageLive))))
  }).pipe(Effect.provide(StorageLive))
