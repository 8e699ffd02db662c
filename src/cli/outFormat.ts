/**
 * The one check of `--out`'s dataset format for the commands that write a dataset (generate, enrich,
 * convert, verify). A module of its own, loaded only by their live wiring: `--help` does not load Storage.
 */
import { Effect } from "effect"
import { SettingsError } from "../domain/run.js"
import { rowFormatOf } from "../services/Storage.js"

/**
 * Why `--out` names no dataset format skyrl writes (undefined: it does), for every command that writes one. A path
 * ending in "/" names a directory: `convert` made one there for its lock and failed, `generate` wrote the file.
 */
export const outFormatProblem = (out: string): string | undefined =>
  /[\\/]$/.test(out)
    ? `"${out}" ends with "/", which names a directory: a dataset is a file ("${out.replace(/[\\/]+$/, "")}")`
    : rowFormatOf(out) === undefined
    ? `"${out}" must end in .json, .jsonl or .parquet`
    : undefined

/** `--out`'s format, checked before anything is read or paid for: a usage error (exit 2). */
export const checkOutFormat = (out: string): Effect.Effect<void, SettingsError> => {
  const reason = outFormatProblem(out)
  return reason === undefined ? Effect.void : Effect.fail(new SettingsError({ setting: "--out", reason }))
}
