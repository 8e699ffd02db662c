/** Live wiring of `rebuild` (loaded lazily by src/cli/rebuild.ts). */
import { Effect, Layer, Option } from "effect"
import { readFileSync } from "node:fs"
import * as path from "node:path"
import { rebuildProgram } from "../programs/rebuild.js"
import { Inventory } from "../services/Inventory.js"
import { StorageLive } from "../services/Storage.js"

export const runRebuild = (options: {
  readonly runDir: string
  readonly out: string
  readonly inventory: Option.Option<string>
  readonly indent: Option.Option<number>
  readonly ascii: boolean
}) =>
  Effect.gen(function*() {
    // The run's own inventory settings unless --inventory overrides them.
    let settings: { inventory?: string | null; servers?: Array<string> | null } = {}
    try {
      settings = JSON.parse(readFileSync(path.join(options.runDir, "manifest.json"), "utf8")).settings ?? {}
    } catch {
      // rebuildProgram reports an unreadable manifest with its path.
    }
    const file = Option.getOrElse(options.inventory, () => settings.inventory ?? undefined)
    const inventory = Inventory.fromFile(file, settings.servers ? { servers: settings.servers } : undefined)
    return yield* rebuildProgram({
      runDir: options.runDir,
      out: options.out,
      indent: Option.getOrUndefined(options.indent),
      ascii: options.ascii
    }).pipe(Effect.provide(Layer.merge(StorageLive, inventory.pipe(Layer.provide(StorageLive)))))
  })
