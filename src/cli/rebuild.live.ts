/** Live wiring of `rebuild` (loaded lazily by src/cli/rebuild.ts). */
import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs/promises"
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
    // Compared as real paths: through a symbolic link to the run directory, a complete rebuild replaced its journal.
    const real = (p: string) => Effect.promise(() => fs.realpath(p).catch(() => path.resolve(p)))
    if ((yield* real(path.dirname(out))) === (yield* real(options.runDir)) && (yield* storage.exists(out))) {
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
      inventoryFrom
    }).pipe(Effect.provide(inventory.pipe(Layer.provide(StorageLive))))
  }).pipe(Effect.provide(StorageLive))
