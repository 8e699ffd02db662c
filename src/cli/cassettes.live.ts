/** Live wiring of `skyrl cassettes stats` (loaded lazily by src/cli/cassettes.ts). */
import { Console, Effect } from "effect"
import { statSync } from "node:fs"
import * as path from "node:path"
import { InputError } from "../domain/errors.js"
import { SettingsError } from "../domain/run.js"
import { forEachLine, Storage, StorageLive } from "../services/Storage.js"
import { CASSETTE_FILE, cassetteReader, cassetteStatsCollector, formatCassetteStats } from "../skyrl/cassettes.js"

/** What the path is: a directory, a regular file, or something else (a FIFO, a device, a socket). */
const kindOf = (p: string): "directory" | "file" | "other" => {
  const st = statSync(p, { throwIfNoEntry: false })
  return st?.isDirectory() === true ? "directory" : st?.isFile() === true ? "file" : "other"
}

export const runCassetteStats = (
  options: { readonly dir: string; readonly json: boolean; readonly trustKeys: boolean }
) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    // The store's directory, or any other path as the store's file itself (as MCPToolEnv's `cassettes`
    // setting takes it: a file named otherwise is read, not taken for a directory without a store).
    const kind = yield* Effect.sync(() => kindOf(options.dir))
    // A FIFO or a device was read as an empty store (0 entries, exit 0).
    if (kind === "other") {
      return yield* new SettingsError({
        setting: "DIR",
        reason: `${options.dir} is neither a cassette directory nor a regular file (a FIFO, a device or a socket)`
      })
    }
    const byFile = kind === "file"
    const file = byFile ? options.dir : path.join(options.dir, CASSETTE_FILE)
    // A store directory without its file is an empty store: verify makes the directory before its first call,
    // and the file comes with the first line recorded.
    const collector = cassetteStatsCollector()
    const keys = options.trustKeys ? "trusted" : "checked"
    const reader = cassetteReader(collector.add, undefined, undefined, keys)
    const missing = !byFile && !(yield* storage.exists(file))
    // Said on stderr, so that a mistyped directory is not taken for an empty store without a word.
    if (missing) {
      yield* Effect.logWarning(
        `${options.dir} holds no ${CASSETTE_FILE}: nothing recorded there yet (a verify run that recorded no call ` +
          `leaves none), or not a cassette directory`
      )
    }
    const read = missing ? { size: 0, endsOpen: false } : yield* forEachLine(storage, file, reader.line)
    const stats = collector.stats(file, read.size, reader.done(read.endsOpen))
    yield* Console.log(options.json ? JSON.stringify(stats, null, 2) : formatCassetteStats(stats))
    // MCPToolEnv refuses a store with such a line (only a torn last one is a crash's trace), so exit 1 says so.
    if (stats.invalid.length > 0) {
      return yield* new InputError({
        file,
        field: `line ${stats.invalid.slice(0, 10).join(", ")}`,
        reason: `${stats.invalid.length} line(s) are not cassette entries (JSON with key, server and tool strings, ` +
          `${options.trustKeys ? "" : "a params object, "}a result object and duration_ms a number ≥ 0${
            options.trustKeys ? "" : ", the key that of the server, tool and params"
          }), the first: ${stats.reasons[0]}; MCPToolEnv refuses this store`
      })
    }
  }).pipe(Effect.provide(StorageLive))
