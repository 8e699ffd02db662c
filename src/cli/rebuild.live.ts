/** Live wiring of `rebuild` (loaded lazily by src/cli/rebuild.ts). */
import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { StorageError } from "../domain/errors.js"
import { SettingsError } from "../domain/run.js"
import { rebuildProgram } from "../programs/rebuild.js"
import { Inventory } from "../services/Inventory.js"
import { readManifest } from "../services/RunJournal.js"
import { removeFilesOfDeadProcesses, Storage, StorageLive, syncDirectory } from "../services/Storage.js"
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
    // An --out already there (the run's own dataset, an earlier rebuild) is replaced only by a complete
    // rebuild: the rows go to a file beside it, renamed over it when none is missing.
    const there = yield* storage.exists(out)
    const staged = there ? besideOut(out) : undefined
    const rebuilt = rebuildProgram({
      runDir: options.runDir,
      out: options.out,
      indent: Option.getOrUndefined(options.indent),
      ascii: options.ascii,
      inventoryFrom,
      stagedAt: staged
    }).pipe(Effect.provide(inventory.pipe(Layer.provide(StorageLive))))
    // A rebuild that wrote the --out sweeps the files beside it that rebuilds killed (`kill -9`) left.
    if (staged === undefined) return yield* Effect.tap(rebuilt, () => sweepBesideOut(out))
    return yield* rebuilt.pipe(
      Effect.tap(() => replaceWith(staged, out)),
      Effect.tap(() => sweepBesideOut(out)),
      Effect.ensuring(Effect.promise(() => fs.rm(staged, { force: true })))
    )
  }).pipe(Effect.provide(StorageLive))

/** The file a rebuild writes beside an --out already there: hidden, the same extension (its format). */
const besideOut = (out: string): string => {
  const { prefix, suffix } = besideOutName(out)
  return path.join(path.dirname(out), `${prefix}${process.pid}${suffix}`)
}

/** The name of `besideOut` around its pid: `.NAME.rebuild-` and `.EXT`. */
const besideOutName = (out: string) => {
  const ext = path.extname(out)
  return { prefix: `.${path.basename(out, ext)}.rebuild-`, suffix: ext }
}

/** Removes the files `besideOut` names for `out` whose process is gone (a rebuild killed before its rename). */
const sweepBesideOut = (out: string) =>
  Effect.promise(() => {
    const { prefix, suffix } = besideOutName(out)
    return removeFilesOfDeadProcesses(
      path.dirname(out),
      (name) =>
        name.startsWith(prefix) && name.endsWith(suffix)
          ? name.slice(prefix.length, name.length - suffix.length)
          : undefined
    )
  })

/** Renames the rebuilt file over the --out (one directory: atomic), and syncs the directory. */
const replaceWith = (file: string, out: string) =>
  Effect.tryPromise({
    try: async () => {
      await fs.rename(file, out)
      await syncDirectory(path.dirname(out))
    },
    catch: (e) => new StorageError({ path: out, operation: "replace", reason: `with ${file}: ${String(e)}` })
  })
