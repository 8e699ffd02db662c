/**
 * An in-memory Storage for in-process engine tests: files in a Map, the same dataset bytes as the live
 * layer (`writeJsonRows`), locks, and hooks to count or fail writes (an archive write that fails, a crash
 * after N journal appends). Parquet is not supported here (use StorageLive for it).
 */
import { Chunk, Effect, Layer, Stream } from "effect"
import * as path from "node:path"
import { InputError, LockHeld, StorageError } from "../../src/domain/errors.js"
import type { StorageApi } from "../../src/services/Storage.js"
import { lockHolderOf, rowFormatOf, Storage, StorageLive, writeJsonRows } from "../../src/services/Storage.js"
import type { WritableRow } from "../../src/skyrl/layout.js"
import { withoutBom } from "../../src/skyrl/utf8.js"

/**
 * The live storage, except that reading a file `refused` names as one string dies: a reader that must stream
 * a file (it may be larger than one string can be) is held to it.
 */
export const streamingOnly = (refused: (file: string) => boolean): Layer.Layer<Storage> =>
  Layer.effect(
    Storage,
    Effect.map(Storage, (s) => ({
      ...s,
      readText: (file: string) => refused(file) ? Effect.die(`${file} was read whole`) : s.readText(file)
    }))
  ).pipe(Layer.provide(StorageLive))

export type WriteKind = "atomic" | "append" | "rows"

export interface MemoryStorage {
  readonly api: StorageApi
  readonly layer: Layer.Layer<Storage>
  readonly files: Map<string, string | Uint8Array>
  /** Text of a file (throws when absent). */
  readonly text: (file: string) => string
  /** Every write, in order. */
  readonly writes: Array<{ readonly file: string; readonly kind: WriteKind }>
  /** Runs before each write (with the data of an append); a failure fails the write (nothing is written). */
  onWrite: (file: string, kind: WriteKind, data?: string | Uint8Array) => Effect.Effect<void, StorageError>
}

const decoder = new TextDecoder()
const encoder = new TextEncoder()
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
/** The bytes as text, or undefined when they are not UTF-8 (a gzip member: such a file is kept as bytes). */
const utf8Text = (bytes: Uint8Array): string | undefined => {
  try {
    return strictDecoder.decode(bytes)
  } catch {
    return undefined
  }
}

export const makeMemoryStorage = (initial: Record<string, string> = {}): MemoryStorage => {
  const files = new Map<string, string | Uint8Array>()
  for (const [k, v] of Object.entries(initial)) files.set(path.resolve(k), v)
  const dirs = new Set<string>()
  const writes: Array<{ file: string; kind: WriteKind }> = []
  const textOf = (v: string | Uint8Array) => (typeof v === "string" ? v : decoder.decode(v))
  const bytesOf = (v: string | Uint8Array) => (typeof v === "string" ? encoder.encode(v) : v)
  const missing = (file: string, operation: string) =>
    new StorageError({ path: file, operation, reason: "no such file or directory" })
  const get = (file: string, operation: string) => {
    const v = files.get(path.resolve(file))
    return v === undefined ? Effect.fail(missing(file, operation)) : Effect.succeed(v)
  }
  const write = (file: string, kind: WriteKind, apply: () => void, data?: string | Uint8Array) =>
    Effect.zipRight(
      storage.onWrite(path.resolve(file), kind, data),
      Effect.sync(() => {
        writes.push({ file: path.resolve(file), kind })
        apply()
      })
    )
  /** As the live layer's: the file truncated after its last line end (recorded as an atomic write). */
  const cutPartialLine = (file: string) =>
    Effect.suspend(() => {
      const v = files.get(path.resolve(file))
      if (v === undefined) return Effect.void
      const bytes = bytesOf(v)
      const end = bytes.lastIndexOf(10) + 1
      return end === bytes.length
        ? Effect.void
        : write(file, "atomic", () => files.set(path.resolve(file), bytes.slice(0, end)))
    })
  /** Per file, its value when last seen by `identity` and a version bumped whenever the value differs (`mtimeMs`). */
  const versions = new Map<string, { value: string | Uint8Array; version: number }>()
  /** The text of each output of `writeRowStreams`, rendered as `writeRows` renders it. */
  const rendered = (file: string, rows: Iterable<WritableRow>) => {
    const format = rowFormatOf(file)
    if (format === undefined || format === "parquet") {
      return Effect.fail(
        new StorageError({ path: file, operation: "write", reason: "memory storage: json/jsonl only" })
      )
    }
    return Effect.promise(async () => {
      const chunks: Array<Uint8Array> = []
      const handle = { write: async (bytes: Uint8Array) => void chunks.push(Uint8Array.from(bytes)) }
      const n = await writeJsonRows(handle, rows, format, {})
      return { file, n, text: Buffer.concat(chunks).toString("utf8") }
    })
  }
  const isDir = (dir: string) => dirs.has(dir) || [...files.keys()].some((f) => f.startsWith(dir + path.sep))

  const api: StorageApi = {
    readText: (file) => Effect.map(get(file, "read"), (v) => withoutBom(textOf(v))), // as the live one
    readBytes: (file) => Effect.map(get(file, "read"), bytesOf),
    readSlice: (file, offset, length) =>
      Effect.map(get(file, "read"), (v) => bytesOf(v).slice(offset, offset + length)),
    size: (file) => Effect.map(get(file, "read"), (v) => bytesOf(v).length),
    identity: (file) =>
      Effect.map(get(file, "read"), (value) => {
        const key = path.resolve(file)
        const seen = versions.get(key)
        const version = seen === undefined ? 0 : seen.value === value ? seen.version : seen.version + 1
        versions.set(key, { value, version })
        return { size: bytesOf(value).length, mtimeMs: version, ino: 1 }
      }),
    lockHolder: (file) =>
      Effect.sync(() => {
        const v = files.get(path.resolve(file))
        return v === undefined ? undefined : lockHolderOf(textOf(v))
      }),
    exists: (file) => Effect.sync(() => files.has(path.resolve(file)) || isDir(path.resolve(file))),
    makeDirectory: (dir) => Effect.sync(() => void dirs.add(path.resolve(dir))),
    readDirectory: (dir) =>
      Effect.sync(() => {
        const base = path.resolve(dir)
        const names = new Set<string>()
        for (const f of [...files.keys(), ...dirs]) {
          if (f.startsWith(base + path.sep)) names.add(f.slice(base.length + 1).split(path.sep)[0])
        }
        return [...names].sort()
      }),
    writeFileAtomic: (file, data) => write(file, "atomic", () => files.set(path.resolve(file), data)),
    appendDurable: (file, text) =>
      write(file, "append", () => {
        const before = files.get(path.resolve(file))
        files.set(path.resolve(file), (before === undefined ? "" : textOf(before)) + text)
      }, text),
    openAppend: (file, options) =>
      Effect.as(options?.cutPartialLine === true ? cutPartialLine(file) : Effect.void, {
        append: (data) =>
          typeof data === "string"
            ? api.appendDurable(file, data)
            : Effect.suspend(() =>
              files.get(path.resolve(file)) instanceof Uint8Array || utf8Text(data) === undefined
                ? write(file, "append", () => {
                  const before = files.get(path.resolve(file))
                  files.set(
                    path.resolve(file),
                    Buffer.concat([before === undefined ? new Uint8Array() : bytesOf(before), data])
                  )
                }, data)
                // UTF-8 text appended as bytes (the group-commit log writes its lines so) to a text file stays text.
                : api.appendDurable(file, utf8Text(data)!)
            )
      }),
    acquireLock: (file, owner) =>
      Effect.suspend(() => {
        const held = files.get(path.resolve(file))
        if (held !== undefined) return Effect.fail(new LockHeld({ path: file, holder: textOf(held).trim() }))
        files.set(path.resolve(file), JSON.stringify(owner) + "\n")
        return Effect.void
      }),
    releaseLock: (file) => Effect.sync(() => void files.delete(path.resolve(file))),
    writeRows: (file, rows, options = {}) => {
      const format = rowFormatOf(file)
      if (format === undefined || format === "parquet") {
        return Effect.fail(
          new StorageError({ path: file, operation: "write", reason: "memory storage: json/jsonl only" })
        )
      }
      return Effect.flatMap(
        Effect.promise(async () => {
          const chunks: Array<Uint8Array> = []
          const handle = { write: async (bytes: Uint8Array) => void chunks.push(Uint8Array.from(bytes)) }
          const n = await writeJsonRows(handle, rows, format, options)
          return { n, text: Buffer.concat(chunks).toString("utf8") }
        }),
        ({ n, text }) =>
          Effect.as(
            Effect.flatMap(
              // As the live one: a file there is replaced only when `replaceIf` says so (asked only then).
              options.replaceIf === undefined || !files.has(path.resolve(file))
                ? Effect.succeed(true)
                : options.replaceIf(n),
              (replace) =>
                replace
                  ? Effect.zipRight(
                    write(file, "rows", () => files.set(path.resolve(file), text)),
                    // As the live one: the companion is replaced with the rows, never without them.
                    options.companion === undefined
                      ? Effect.void
                      : api.writeFileAtomic(options.companion.file, options.companion.text())
                  )
                  : Effect.void
            ),
            n
          )
      )
    },
    writeRowStream: (file, rows, options) =>
      Effect.flatMap(Stream.runCollect(rows), (chunk) => api.writeRows(file, Chunk.toReadonlyArray(chunk), options)),
    // As the live one: every output rendered, then `beforeCommit`, then every write hook (a failure of any
    // writes none), then all written.
    writeRowStreams: (outputs, options = {}) =>
      Effect.gen(function*() {
        const texts: Array<{ readonly file: string; readonly n: number; readonly text: string }> = []
        for (const { file, rows } of outputs) {
          texts.push(yield* rendered(file, Chunk.toReadonlyArray(yield* Stream.runCollect(rows))))
        }
        if (options.beforeCommit !== undefined) yield* options.beforeCommit
        for (const { file, text } of texts) yield* storage.onWrite(path.resolve(file), "rows", text)
        for (const { file, text } of texts) {
          writes.push({ file: path.resolve(file), kind: "rows" })
          files.set(path.resolve(file), text)
        }
        return texts.map(({ n }) => n)
      }),
    readLines: (file) =>
      Stream.unwrap(
        Effect.map(api.readText(file), (text) => {
          const lines = text.replace(/^\uFEFF/, "").split(/\r\n|\n|\r/)
          if (lines.at(-1) === "") lines.pop()
          return Stream.fromIterable(lines)
        })
      ),
    readRows: (file) =>
      Stream.unwrap(Effect.gen(function*() {
        const text = yield* Effect.mapError(api.readText(file), (e) => new InputError({ file, reason: e.reason }))
        const values: Array<unknown> = text.trimStart().startsWith("[")
          ? JSON.parse(text) as Array<unknown>
          : text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as unknown)
        return Stream.fromIterable(values.map((value, index) => ({ index, value })))
      }))
  }
  const storage: MemoryStorage = {
    api,
    layer: Layer.succeed(Storage, api),
    files,
    text: (file) => {
      const v = files.get(path.resolve(file))
      if (v === undefined) throw new Error(`memory storage: no file ${file}`)
      return textOf(v)
    },
    writes,
    onWrite: () => Effect.void
  }
  return storage
}
