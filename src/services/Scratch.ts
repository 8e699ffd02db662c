/**
 * Scratch: files of spilled records (src/skyrl/spill.ts) for passes whose memory must not grow with the
 * rows (`validate`, the checks of `convert`). `open` makes a directory in the OS temp dir that is
 * removed with its files when the scope closes, interruption included (and, should the process exit
 * without closing it, at exit). Appends are buffered (16 KB) and written synchronously, reads are
 * positioned: the records are this process's own, in the machine's byte order.
 *
 * An I/O failure (a full disk) is thrown as a `StorageError` from the synchronous methods; callers
 * running them inside an Effect turn it back into a failure (`failOnScratchError`).
 */
import { Context, Effect, Layer, Option } from "effect"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { StorageError } from "../domain/errors.js"
import type { Spill, SpillFile } from "../skyrl/spill.js"

export interface ScratchApi {
  /** A scratch directory for one pass (`label` names it), removed when the scope closes. */
  readonly open: (label: string) => Effect.Effect<Spill, StorageError, Scope.Scope>
}

export class Scratch extends Context.Tag("skyrl/Scratch")<Scratch, ScratchApi>() {}

const failure = (file: string, operation: string, e: unknown) =>
  new StorageError({ path: file, operation, reason: (e as Error)?.message ?? String(e) })

const BUFFER_WORDS = 1 << 12
const SCAN_BYTES = 1 << 20

class FileSpill implements SpillFile {
  count = 0
  private readonly fd: number
  private used = 0
  private written = 0
  private readonly buffer: Uint32Array
  constructor(private readonly file: string, readonly width: number, private readonly shared: Shared) {
    this.buffer = shared.buffers.pop() ?? new Uint32Array(BUFFER_WORDS)
    try {
      this.fd = fs.openSync(file, "w+")
    } catch (e) {
      throw failure(file, "create scratch file", e)
    }
  }

  append(record: ArrayLike<number>, at = 0): void {
    if (this.used + this.width > BUFFER_WORDS) this.flush()
    const b = this.buffer
    for (let i = 0; i < this.width; i++) b[this.used + i] = record[at + i] ?? 0
    this.used += this.width
    this.count++
  }

  scan(each: (records: Uint32Array, first: number) => void): void {
    this.flush()
    const records = Math.max(1, Math.floor(SCAN_BYTES / (4 * this.width)))
    // One buffer for the spill's scans (a scan inside another gets its own).
    const shared = !this.shared.scanning
    const buffer = shared ? this.shared.scanBuffer : new Uint8Array(SCAN_BYTES + 4 * this.width)
    this.shared.scanning = true
    try {
      const chunk = new Uint32Array(buffer.buffer, 0, records * this.width)
      const bytes = new Uint8Array(buffer.buffer, 0, records * this.width * 4)
      for (let first = 0; first < this.count; first += records) {
        const n = Math.min(records, this.count - first)
        this.readInto(bytes, n * this.width * 4, first * this.width * 4)
        each(n === records ? chunk : chunk.subarray(0, n * this.width), first)
      }
    } finally {
      if (shared) this.shared.scanning = false
    }
  }

  read(index: number, out: Uint32Array): void {
    this.flush()
    this.readInto(new Uint8Array(out.buffer, out.byteOffset, this.width * 4), this.width * 4, index * this.width * 4)
  }

  dispose(): void {
    this.shared.buffers.push(this.buffer)
    try {
      fs.closeSync(this.fd)
      fs.rmSync(this.file, { force: true })
    } catch (e) {
      throw failure(this.file, "remove scratch file", e)
    }
  }

  private readInto(bytes: Uint8Array, length: number, position: number): void {
    try {
      let done = 0
      while (done < length) {
        const n = fs.readSync(this.fd, bytes, done, length - done, position + done)
        if (n === 0) throw new Error("unexpected end of file")
        done += n
      }
    } catch (e) {
      throw failure(this.file, "read scratch file", e)
    }
  }

  private flush(): void {
    if (this.used === 0) return
    const bytes = new Uint8Array(this.buffer.buffer, 0, this.used * 4)
    try {
      let done = 0
      while (done < bytes.length) {
        const n = fs.writeSync(this.fd, bytes, done, bytes.length - done, this.written + done)
        // A write that writes nothing would loop forever (as Storage's writeAll, it is an error).
        if (n === 0) throw new Error("wrote 0 bytes")
        done += n
      }
    } catch (e) {
      throw failure(this.file, "write scratch file", e)
    }
    this.written += bytes.length
    this.used = 0
  }
}

/** Directories not yet removed: removed at exit if their scope never closed. */
const open = new Set<string>()
let exitHook = false
const removeAll = () => {
  for (const dir of open) fs.rmSync(dir, { recursive: true, force: true })
}

/**
 * What the files of one spill share: the append buffers of disposed files (partition files come and go by
 * the hundred) and one scan buffer. Reused, as buffers freed only at V8's next GC would add up.
 */
interface Shared {
  readonly buffers: Array<Uint32Array>
  readonly scanBuffer: Uint8Array
  scanning: boolean
}

const makeSpill = (dir: string): Spill => {
  let files = 0
  const shared: Shared = { buffers: [], scanBuffer: new Uint8Array(SCAN_BYTES + 4 * 1024), scanning: false }
  return { file: (width) => new FileSpill(path.join(dir, `spill-${files++}.bin`), width, shared) }
}

/** Scratch directories made in `parent()` (the OS temp dir for the CLI; a test's own directory in tests). */
export const scratchIn = (parent: () => string): Layer.Layer<Scratch> =>
  Layer.succeed(Scratch, {
    open: (label) =>
      Effect.acquireRelease(
        Effect.try({
          try: () => fs.mkdtempSync(path.join(parent(), `skyrl-${label}-`)),
          catch: (e) => failure(parent(), "create a scratch directory in", e)
        }).pipe(Effect.tap((dir) => {
          open.add(dir)
          if (!exitHook) process.once("exit", removeAll)
          exitHook = true
        })),
        (dir) =>
          Effect.sync(() => {
            fs.rmSync(dir, { recursive: true, force: true })
            open.delete(dir)
          })
      ).pipe(Effect.map(makeSpill))
  })

export const ScratchLive: Layer.Layer<Scratch> = scratchIn(tmpdir)

/** A spill for this scope when a Scratch service is provided (the file passes), else none (in memory). */
export const optionalSpill = (label: string): Effect.Effect<Spill | undefined, StorageError, Scope.Scope> =>
  Effect.serviceOption(Scratch).pipe(
    Effect.flatMap(Option.match({ onNone: () => Effect.succeed(undefined), onSome: (s) => s.open(label) }))
  )

/** Turns a `StorageError` thrown by a spill inside `effect` (a defect) into its failure. */
export const failOnScratchError = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StorageError, R> =>
  effect.pipe(
    Effect.catchSomeDefect((d) => d instanceof StorageError ? Option.some(Effect.fail(d)) : Option.none())
  )
