/**
 * A command never writes over what it reads: an output (`--out`, `--rejects`, the rejects file next to
 * `--out`) naming one of its inputs (the dataset or tasks, `--inventory`, `--servers-config`, ...) or lying in
 * an input directory (the cassette store) is a usage error, found before anything runs; so is an output that is
 * a directory.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { SettingsError } from "../domain/run.js"

export interface Output {
  readonly setting: string
  readonly file: string
}

export interface Input {
  /** What the file is, for the message: "tasks file", "--inventory file", ... */
  readonly what: string
  readonly file: string
  /** A directory the command reads (and may append to): nothing else is written inside it. */
  readonly directory?: boolean
  /** Why nothing may be written inside a `directory` (default: it holds the command's own files only). */
  readonly why?: string
}

/** One file: the same path, or (both existing) the same inode, as a symlink or hard link gives. */
export const sameFile = (a: string, b: string): boolean => {
  if (path.resolve(a) === path.resolve(b)) return true
  try {
    const x = fs.statSync(a)
    const y = fs.statSync(b)
    return x.ino === y.ino && x.dev === y.dev
  } catch {
    return false
  }
}

/**
 * The files of `files` given again (the same path, or a link to it), each with the index of its first mention:
 * `[first, again]` pairs, in order.
 */
export const filesGivenTwice = (files: ReadonlyArray<string>): ReadonlyArray<readonly [number, number]> =>
  files.flatMap((file, i) => {
    const first = files.findIndex((f) => sameFile(f, file))
    return first < i ? [[first, i] as const] : []
  })

const inside = (file: string, dir: string): boolean => {
  const relative = path.relative(path.resolve(dir), path.resolve(file))
  return relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative)
}

/** Whether `file` is a directory now (a rejects file's path, made by mkdir by mistake). */
const isDirectory = (file: string): boolean => {
  try {
    return fs.statSync(file).isDirectory()
  } catch {
    return false
  }
}

export const outputsApart = (
  command: string,
  outputs: ReadonlyArray<Output>,
  inputs: ReadonlyArray<Input | undefined>
): Effect.Effect<void, SettingsError> => {
  for (const output of outputs) {
    // Found at the end before: generate and enrich had made (and paid for) their rows, then failed to write them.
    if (isDirectory(output.file)) {
      const reason = `${output.file} is a directory, where ${command} writes a file: move it, or write elsewhere`
      return Effect.fail(new SettingsError({ setting: output.setting, reason }))
    }
    for (const input of inputs) {
      if (input === undefined) continue
      const within = input.directory === true && inside(output.file, input.file)
      if (!within && !sameFile(output.file, input.file)) continue
      const reason = within
        ? `is inside the ${input.what} (${input.file}), ${
          input.why ?? `which holds ${command}'s own files only`
        }; write elsewhere`
        : `is the ${input.what}; ${command} never modifies its input, write to another file`
      return Effect.fail(new SettingsError({ setting: output.setting, reason }))
    }
  }
  return Effect.void
}
