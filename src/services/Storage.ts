/**
 * Storage: every file skyrl reads or writes goes through this service, so tests can swap it.
 * Outputs are written atomically (temp file in the same directory, fsync, rename): a reader sees the
 * old file or the new one, never half of one. Journals are append-only and flushed per line.
 */
import { Context, Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { StorageError } from "../domain/errors.js"
import type { SkyRLRow } from "../domain/row.js"
import type { JsonTextOptions } from "../skyrl/layout.js"
import { encodeRow, toJsonText } from "../skyrl/layout.js"

export type RowFormat = "json" | "jsonl" | "parquet"

export const rowFormatOf = (file: string): RowFormat | undefined => {
  const ext = path.extname(file).toLowerCase()
  return ext === ".json" ? "json" : ext === ".jsonl" ? "jsonl" : ext === ".parquet" ? "parquet" : undefined
}

export interface WriteRowsOptions extends JsonTextOptions {}

export interface StorageApi {
  readonly readText: (file: string) => Effect.Effect<string, StorageError>
  readonly exists: (file: string) => Effect.Effect<boolean>
  readonly makeDirectory: (dir: string) => Effect.Effect<void, StorageError>
  readonly readDirectory: (dir: string) => Effect.Effect<ReadonlyArray<string>, StorageError>
  /** Writes the whole file atomically (temp file + fsync + rename). */
  readonly writeFileAtomic: (file: string, data: string | Uint8Array) => Effect.Effect<void, StorageError>
  /** Appends text and flushes it to disk before succeeding (journals). */
  readonly appendDurable: (file: string, text: string) => Effect.Effect<void, StorageError>
  /** Writes a dataset in the format its extension names, atomically. Returns the row count. */
  readonly writeRows: (
    file: string,
    rows: Iterable<SkyRLRow>,
    options?: WriteRowsOptions
  ) => Effect.Effect<number, StorageError>
}

export class Storage extends Context.Tag("skyrl/Storage")<Storage, StorageApi>() {}

const reason = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException
  if (err?.code === "ENOENT") return "no such file or directory"
  if (err?.code === "EISDIR") return "is a directory, not a file"
  if (err?.code === "EACCES") return "permission denied"
  return err?.message ?? String(e)
}

const attempt = <A>(file: string, operation: string, f: () => Promise<A>): Effect.Effect<A, StorageError> =>
  Effect.tryPromise({ try: f, catch: (e) => new StorageError({ path: file, operation, reason: reason(e) }) })

const tempName = (file: string): string =>
  path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`)

/** Writes through a temp file and renames it over `file`; the temp file is removed on failure. */
const atomically = async (file: string, write: (handle: fs.FileHandle) => Promise<void>): Promise<void> => {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true })
  const tmp = tempName(path.resolve(file))
  const handle = await fs.open(tmp, "w")
  try {
    await write(handle)
    await handle.sync()
    await handle.close()
    await fs.rename(tmp, file)
  } catch (e) {
    await handle.close().catch(() => undefined)
    await fs.rm(tmp, { force: true }).catch(() => undefined)
    throw e
  }
}

/** Buffered writer over a file handle (rows are streamed, never joined into one string). */
const bufferedWriter = (handle: fs.FileHandle) => {
  let chunks: Array<string> = []
  let size = 0
  const flush = async () => {
    if (chunks.length === 0) return
    const text = chunks.join("")
    chunks = []
    size = 0
    await handle.write(text)
  }
  return {
    write: async (text: string) => {
      chunks.push(text)
      size += text.length
      if (size >= 1 << 20) await flush()
    },
    flush
  }
}

export const writeJsonRows = async (
  handle: fs.FileHandle,
  rows: Iterable<SkyRLRow>,
  format: "json" | "jsonl",
  options: WriteRowsOptions
): Promise<number> => {
  const out = bufferedWriter(handle)
  let n = 0
  if (format === "jsonl") {
    for (const row of rows) {
      await out.write(toJsonText(encodeRow(row), { ...options, indent: 0 }) + "\n")
      n++
    }
  } else {
    const indent = options.indent ?? 2
    const pad = " ".repeat(indent)
    await out.write("[")
    for (const row of rows) {
      const text = toJsonText(encodeRow(row), { ...options, indent })
      await out.write((n === 0 ? "" : ",") + (indent > 0 ? "\n" + text.replace(/^/gm, pad) : text))
      n++
    }
    await out.write(n === 0 ? "]\n" : indent > 0 ? "\n]\n" : "]\n")
  }
  await out.flush()
  return n
}

export const StorageLive: Layer.Layer<Storage> = Layer.succeed(Storage, {
  readText: (file) => attempt(file, "read", () => fs.readFile(file, "utf8")),
  exists: (file) => Effect.promise(() => fs.access(file).then(() => true, () => false)),
  makeDirectory: (dir) =>
    attempt(dir, "create directory", () => fs.mkdir(dir, { recursive: true }).then(() => undefined)),
  readDirectory: (dir) => attempt(dir, "list", () => fs.readdir(dir).then((names) => names.sort())),
  writeFileAtomic: (file, data) => attempt(file, "write", () => atomically(file, (h) => h.writeFile(data))),
  appendDurable: (file, text) =>
    attempt(file, "append to", async () => {
      await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true })
      const handle = await fs.open(file, "a")
      try {
        await handle.write(text)
        await handle.sync()
      } finally {
        await handle.close()
      }
    }),
  writeRows: (file, rows, options = {}) => {
    const format = rowFormatOf(file)
    if (format === undefined || format === "parquet") {
      return Effect.fail(
        new StorageError({
          path: file,
          operation: "write",
          reason: format === undefined
            ? "unknown dataset format: use a .json, .jsonl or .parquet extension"
            : "parquet output is not available yet"
        })
      )
    }
    return attempt(file, "write", async () => {
      let n = 0
      await atomically(file, async (h) => {
        n = await writeJsonRows(h, rows, format, options)
      })
      return n
    })
  }
})
