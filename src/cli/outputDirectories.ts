/**
 * A command's output directories can be made, found before anything runs (before a model or MCP server is paid
 * for or started): a directory that cannot be (`--out /proc/x/out.jsonl`: ENOENT; a read-only or foreign
 * directory: EROFS, EACCES) is a usage error naming the flag and the path as given, in the words of the other
 * path errors (`--out: /proc/x/out.jsonl: ENOENT: no such file or directory, mkdir '/proc/x'`).
 *
 * The check makes the missing levels as the run would (Storage's makeDirectories: nothing else tells that mkdir
 * will fail under /proc, where `access` says writable) and removes those it made, so a run that stops at a later
 * check leaves no empty directory behind. A directory that is there must take a new file: one that cannot (mode
 * 0555, another user's, a read-only mount, /proc itself) was found only when the dataset was written, after every
 * model call was paid for (`--out: rodir/o.jsonl: cannot write in rodir (EACCES: permission denied)`). It is
 * tried as the run would write (`access` says writable to root, and under /proc): a hidden file made and removed
 * at once; nothing else there is touched.
 */
import { Effect, Option } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { SettingsError } from "../domain/run.js"
import { makeDirectories } from "../services/Storage.js"
import { cassettesDirOf } from "./verifyFlags.js"

export interface OutputDirectory {
  /** The flag that gave the path (`--out`, `--cassettes`, ...): a default next to --out is --out's. */
  readonly setting: string
  /** The flag's value as given, for the message. */
  readonly given: string
  /** The directory the command creates (and writes into). */
  readonly dir: string
}

/** The directory an output file goes in, named by the flag that gave the file. */
export const fileDirectory = (setting: string, file: string): OutputDirectory => ({
  setting,
  given: file,
  dir: path.dirname(path.resolve(file))
})

/** A directory given by a flag (`--cassettes`, `--raw-dir`), else the default next to `--out`. */
const flagDirectory = (setting: string, flag: Option.Option<string>, out: string, dir: string): OutputDirectory =>
  Option.match(flag, {
    onNone: () => ({ setting: "--out", given: out, dir }),
    onSome: (given) => ({ setting, given, dir: given })
  })

/**
 * A run's (generate, enrich; verify's with `rawDir` absent): --out's directory, the archive root (--raw-dir, else
 * raw_llm/ next to --out) and, with --verify, the cassette store (--cassettes, else cassettes/ next to --out).
 */
export const runDirectories = (options: {
  readonly out: string
  readonly rawDir?: Option.Option<string> | undefined
  readonly verify: boolean
  readonly cassettes: Option.Option<string>
}): ReadonlyArray<OutputDirectory> => {
  const out = fileDirectory("--out", options.out)
  return [
    out,
    ...(options.rawDir === undefined
      ? []
      : [flagDirectory("--raw-dir", options.rawDir, options.out, path.join(out.dir, "raw_llm"))]),
    ...(options.verify
      ? [flagDirectory("--cassettes", options.cassettes, options.out, cassettesDirOf(options, options.out))]
      : [])
  ]
}

/** Why a new file cannot be made in `dir` (`EACCES: permission denied`), or undefined when one can. */
const unwritable = async (dir: string): Promise<string | undefined> => {
  const file = path.join(dir, `.skyrl-write-check-${process.pid}-${randomBytes(4).toString("hex")}`)
  try {
    await (await fs.open(file, "wx")).close()
  } catch (e) {
    const error = e as NodeJS.ErrnoException
    // Node's text without the probe file's name: `EACCES: permission denied, open '...'`.
    return error.message.replace(/, open '.*'$/s, "")
  }
  await fs.rm(file, { force: true }).catch(() => undefined)
  return undefined
}

const probe = async (dir: string): Promise<string | undefined> => {
  const made = await makeDirectories(dir)
  try {
    const why = await unwritable(dir)
    return why === undefined ? undefined : `cannot write in ${dir} (${why})`
  } finally {
    for (const level of made.reverse()) await fs.rmdir(level).catch(() => undefined)
  }
}

/**
 * Why the part of `given` before a `..` is no directory (`./nosub does not exist` of `./nosub/../o.jsonl`), or
 * undefined. The system walks a path as written, so the run could not open it, though the path shortened
 * (`./o.jsonl`, what the other checks see) is fine: the lock was refused, "cannot create lock
 * ./nosub/../o.jsonl.lock", naming no flag.
 */
const missingBeforeUp = async (given: string): Promise<string | undefined> => {
  const parts = given.split(path.sep)
  for (let i = 1; i < parts.length; i++) {
    if (parts[i] !== "..") continue
    const before = parts.slice(0, i).join(path.sep) || path.sep
    const why = await fs.stat(before).then(
      (s) => (s.isDirectory() ? undefined : "is not a directory"),
      (e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? "does not exist" : e.code ?? "cannot be read")
    )
    if (why !== undefined) return `${before} ${why}`
  }
  return undefined
}

export const outputDirectoriesMakeable = (
  directories: ReadonlyArray<OutputDirectory | undefined>
): Effect.Effect<void, SettingsError> =>
  Effect.gen(function*() {
    const seen = new Set<string>()
    for (const d of directories) {
      if (d === undefined) continue
      const before = yield* Effect.promise(() => missingBeforeUp(d.given))
      if (before !== undefined) {
        const reason = `${d.given}: ${before} (the path goes through it before '..')`
        return yield* new SettingsError({ setting: d.setting, reason })
      }
      const dir = path.resolve(d.dir)
      if (seen.has(dir)) continue
      seen.add(dir)
      const failure = yield* Effect.promise(() =>
        probe(dir).catch((e: unknown) => e instanceof Error ? e.message : String(e))
      )
      if (failure !== undefined) {
        return yield* new SettingsError({ setting: d.setting, reason: `${d.given}: ${failure}` })
      }
    }
  })
