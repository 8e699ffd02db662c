/**
 * What `verify` writes with: Storage.writeRowStream (a dataset written as rows are made, the same bytes
 * as writeRows), Storage.openAppend (a log kept open), and the group-commit log over it
 * (services/durableLog.ts): lines that keep coming go out in batches, `wait` and `flush` return once the
 * lines are on disk, a failure is reported, the scope's end writes what is left.
 */
import { Chunk, Effect, Either, Exit, Fiber, Layer, Stream, TestClock, TestContext } from "effect"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { StorageError } from "../src/domain/errors.js"
import type { SkyRLRow } from "../src/domain/row.js"
import type { DurableLog } from "../src/services/durableLog.js"
import { makeDurableLog } from "../src/services/durableLog.js"
import type { StorageApi } from "../src/services/Storage.js"
import { Storage, StorageLive, writeAll } from "../src/services/Storage.js"
import { convertTask } from "../src/skyrl/convert.js"
import { encodeRow } from "../src/skyrl/layout.js"
import type { MemoryStorage } from "./support/memoryStorage.js"
import { makeMemoryStorage } from "./support/memoryStorage.js"

const tmp = () => mkdtempSync(join(tmpdir(), "skyrl-storage-logs-"))
const run = <A, E>(effect: Effect.Effect<A, E, Storage>) => Effect.runPromise(Effect.provide(effect, StorageLive))

const rows: ReadonlyArray<SkyRLRow> = [0, 1, 2, 3].map((i) =>
  Either.getOrThrow(convertTask({
    task_id: `t${i}`,
    user_prompt: `Quote ${i} for Zürich — “café”`,
    tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }],
    evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
  }))
)

describe("Storage.writeRowStream", () => {
  it("writes the bytes writeRows writes, for each format and option: JSON.stringify's (ascii: \\u escapes)", async () => {
    const dir = tmp()
    const encoded = rows.map(encodeRow)
    const ascii = (t: string) =>
      t.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    // Written out here from JSON.stringify (writeRows shares writeRowStream's code, so it is not a reference).
    const expected = {
      "a.json": JSON.stringify(encoded, null, 2) + "\n",
      "b.json": ascii(JSON.stringify(encoded)) + "\n",
      "c.jsonl": encoded.map((r) => JSON.stringify(r) + "\n").join("")
    }
    for (const [name, options] of [["a.json", {}], ["b.json", { indent: 0, ascii: true }], ["c.jsonl", {}]] as const) {
      await run(Effect.flatMap(Storage, (s) => s.writeRows(join(dir, `rows-${name}`), rows, options)))
      const n = await run(
        Effect.flatMap(Storage, (s) => s.writeRowStream(join(dir, name), Stream.fromIterable(rows), options))
      )
      expect(n).toBe(rows.length)
      expect(readFileSync(join(dir, name), "utf8")).toBe(expected[name])
      expect(readFileSync(join(dir, name), "utf8")).toBe(readFileSync(join(dir, `rows-${name}`), "utf8"))
    }
    const parquet = join(dir, "d.parquet")
    expect(await run(Effect.flatMap(Storage, (s) => s.writeRowStream(parquet, Stream.fromIterable(rows))))).toBe(4)
    const back = await run(Effect.flatMap(Storage, (s) => Stream.runCollect(s.readRows(parquet))))
    expect(Chunk.toArray(back).map((r) => r.value)).toEqual(rows.map(encodeRow))
  })

  it("a stream that fails leaves the old file as it was and no temp file", async () => {
    const dir = tmp()
    const file = join(dir, "out.jsonl")
    writeFileSync(file, "old\n")
    const failing = Stream.concat(Stream.fromIterable(rows.slice(0, 2)), Stream.fail("the producer failed"))
    const exit = await Effect.runPromiseExit(
      Effect.provide(Effect.flatMap(Storage, (s) => s.writeRowStream(file, failing)), StorageLive)
    )
    expect(Exit.isFailure(exit)).toBe(true)
    expect(readFileSync(file, "utf8")).toBe("old\n")
    expect(readdirSync(dir)).toEqual(["out.jsonl"])
  })

  it("a companion file is replaced with the dataset, never without it (.jsonl and .parquet)", async () => {
    for (const name of ["out.jsonl", "out.parquet"]) {
      const dir = tmp()
      const file = join(dir, name)
      const companion = join(dir, "rejects.jsonl")
      writeFileSync(file, "old\n")
      writeFileSync(companion, "old rejects\n")
      let asked = 0
      const text = () => (asked++, "new rejects\n")
      const failing = Stream.concat(Stream.fromIterable(rows.slice(0, 2)), Stream.fail("the producer failed"))
      const exit = await Effect.runPromiseExit(
        Effect.provide(
          Effect.flatMap(Storage, (s) => s.writeRowStream(file, failing, { companion: { file: companion, text } })),
          StorageLive
        )
      )
      expect(Exit.isFailure(exit)).toBe(true)
      expect([readFileSync(file, "utf8"), readFileSync(companion, "utf8"), asked]).toEqual([
        "old\n",
        "old rejects\n",
        0
      ])
      expect(readdirSync(dir).sort()).toEqual([name, "rejects.jsonl"].sort())
      const n = await run(
        Effect.flatMap(
          Storage,
          (s) => s.writeRowStream(file, Stream.fromIterable(rows), { companion: { file: companion, text } })
        )
      )
      expect(n).toBe(4)
      expect([readFileSync(companion, "utf8"), asked]).toEqual(["new rejects\n", 1])
      expect(readFileSync(file).subarray(0, 4).toString()).not.toBe("old\n")
      expect(readdirSync(dir).sort()).toEqual([name, "rejects.jsonl"].sort())
    }
  })

  it("an interruption while the stream waits for rows leaves the old file as it was and no temp file", async () => {
    const dir = tmp()
    const file = join(dir, "out.jsonl")
    writeFileSync(file, "old\n")
    // Two rows, then a producer that never ends (a verify run stopped while rows are in flight).
    const stalled = Stream.concat(Stream.fromIterable(rows.slice(0, 2)), Stream.never)
    await run(Effect.gen(function*() {
      const writer = yield* Effect.fork(Effect.flatMap(Storage, (s) => s.writeRowStream(file, stalled)))
      yield* Effect.sleep("100 millis")
      yield* Fiber.interrupt(writer)
    }))
    for (let i = 0; i < 50 && readdirSync(dir).length > 1; i++) await new Promise((r) => setTimeout(r, 20))
    expect(readFileSync(file, "utf8")).toBe("old\n")
    expect(readdirSync(dir)).toEqual(["out.jsonl"])
  })
})

describe("Storage.openAppend", () => {
  it("creates the file and its directory, appends in order, and keeps the handle until the scope ends", async () => {
    const file = join(tmp(), "deep", "log.jsonl")
    await run(Effect.scoped(Effect.gen(function*() {
      const log = yield* (yield* Storage).openAppend(file)
      yield* log.append("one\n")
      expect(readFileSync(file, "utf8")).toBe("one\n")
      yield* log.append("two\nthree\n")
    })))
    expect(readFileSync(file, "utf8")).toBe("one\ntwo\nthree\n")
    await run(
      Effect.scoped(Effect.flatMap(Effect.flatMap(Storage, (s) => s.openAppend(file)), (l) => l.append("four\n")))
    )
    expect(readFileSync(file, "utf8")).toBe("one\ntwo\nthree\nfour\n")
  })

  it("cutPartialLine: a last line without its line end is cut off before appending, however long; nothing else", async () => {
    const dir = tmp()
    const append = (file: string, text: string) =>
      run(Effect.scoped(Effect.flatMap(
        Effect.flatMap(Storage, (s) => s.openAppend(file, { cutPartialLine: true })),
        (l) => l.append(text)
      )))
    const long = join(dir, "long.jsonl") // the piece is longer than one read from the end (64 KiB)
    writeFileSync(long, "one\n" + "x".repeat(200_000))
    await append(long, "two\n")
    expect(readFileSync(long, "utf8")).toBe("one\ntwo\n")
    const whole = join(dir, "whole.jsonl")
    writeFileSync(whole, "one\n")
    await append(whole, "two\n")
    expect(readFileSync(whole, "utf8")).toBe("one\ntwo\n")
    const noLineEnd = join(dir, "piece.jsonl")
    writeFileSync(noLineEnd, "{\"in")
    await append(noLineEnd, "two\n")
    expect(readFileSync(noLineEnd, "utf8")).toBe("two\n")
    const missing = join(dir, "new", "log.jsonl")
    await append(missing, "one\n")
    expect(readFileSync(missing, "utf8")).toBe("one\n")
  })
})

const memFile = "/mem/log.jsonl"
/** A write to the memory Storage that fails as a full disk would. */
const diskFull = () => Effect.fail(new StorageError({ path: memFile, operation: "append to", reason: "disk full" }))
/** Runs `body` with a group-commit log (50 ms window) on memFile in a memory Storage, under the test clock. */
const withMemoryLog = <E>(body: (log: DurableLog, storage: MemoryStorage) => Effect.Effect<void, E>) => {
  const storage = makeMemoryStorage()
  return Effect.scoped(Effect.flatMap(makeDurableLog(memFile, 50), (log) => body(log, storage))).pipe(
    Effect.provide(storage.layer),
    Effect.provide(TestContext.TestContext),
    Effect.runPromise
  )
}

describe("the group-commit log (durableLog)", () => {
  it("lines that keep coming are written in batches, a window before each write; flush and the scope's end write the rest", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const file = "/mem/log.jsonl"
      // Each write takes 30 ms (an fsync): lines keep arriving meanwhile.
      storage.onWrite = () => Effect.sleep("30 millis")
      const appends = () => storage.writes.filter((w) => w.file === file && w.kind === "append").length
      yield* Effect.scoped(Effect.gen(function*() {
        const log = yield* makeDurableLog(file, 50)
        for (let i = 0; i < 40; i++) {
          yield* log.append(`line ${i}\n`)
          yield* TestClock.adjust("10 millis") // 40 lines over 400 ms
        }
        // A write every 80 ms (window + write), not one right after the other (that would be 12 or more).
        expect(appends()).toBeGreaterThanOrEqual(4)
        expect(appends()).toBeLessThanOrEqual(5)
        yield* log.append("last\n")
        yield* Effect.fork(log.flush).pipe(
          Effect.tap(() => TestClock.adjust("100 millis")),
          Effect.flatMap((f) => f.await)
        )
        expect(storage.text(file).endsWith("line 39\nlast\n")).toBe(true)
        yield* log.append("after the flush\n")
        storage.onWrite = () => Effect.void
      })).pipe(Effect.provide(storage.layer))
      const lines = storage.text(file).split("\n").filter((l) => l !== "")
      expect(lines).toEqual([...Array.from({ length: 40 }, (_, i) => `line ${i}`), "last", "after the flush"])
    }).pipe(Effect.provide(TestContext.TestContext), Effect.runPromise))

  it("append with wait returns once the line is on disk; a write failure is reported by the next wait and by flush", () =>
    withMemoryLog((log, storage) =>
      Effect.gen(function*() {
        yield* log.append("durable\n", { wait: true })
        expect(storage.text(memFile)).toBe("durable\n")
        storage.onWrite = diskFull
        const failed = yield* Effect.flip(log.append("lost\n", { wait: true }))
        expect(failed.reason).toBe("disk full")
        expect((yield* Effect.flip(log.flush)).reason).toBe("disk full")
      })
    ))

  it("appendNow queues the line when called, in order with append; what it returns starts the writer only when idle", () =>
    withMemoryLog((log, storage) =>
      Effect.gen(function*() {
        const kick = log.appendNow("a\n")
        expect(kick).not.toBe(Effect.void)
        // Queued before anything ran: the next line goes after it, and it counts as unwritten.
        yield* log.append("b\n")
        expect(yield* log.unwritten).toBe(2)
        yield* kick
        expect(log.appendNow("c\n")).toBe(Effect.void) // the writer is running: nothing more to start
        yield* TestClock.adjust("50 millis")
        expect(storage.text(memFile)).toBe("a\nb\nc\n")
        // Written by the background writer alone, after its window (no flush asked for).
        yield* log.appendNow("d\n")
        yield* TestClock.adjust("50 millis")
        expect(storage.text(memFile)).toBe("a\nb\nc\nd\n")
      })
    ))
})

describe("the group-commit log on a file a crash cut mid-line (torn)", () => {
  it("a piece of a line (fragment) is cut off at the first write, so no reader meets it again; nothing before it", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage({ [memFile]: "{\"index\":1}\n{\"ind" })
      yield* Effect.scoped(Effect.gen(function*() {
        const log = yield* makeDurableLog(memFile, 50, { torn: true, fragment: true })
        expect(storage.text(memFile)).toBe("{\"index\":1}\n{\"ind") // not before the first write
        yield* log.append("{\"index\":2}\n", { wait: true })
        yield* log.append("{\"index\":3}\n", { wait: true })
      })).pipe(Effect.provide(storage.layer))
      expect(storage.text(memFile)).toBe("{\"index\":1}\n{\"index\":2}\n{\"index\":3}\n")
    }).pipe(Effect.provide(TestContext.TestContext), Effect.runPromise))

  it("its first write starts a new line, so the cut line stays apart; later writes do not", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage({ [memFile]: "{\"index\":1}\n{\"ind" })
      yield* Effect.scoped(Effect.gen(function*() {
        const log = yield* makeDurableLog(memFile, 50, { torn: true })
        yield* log.append("{\"index\":2}\n", { wait: true })
        yield* log.append("{\"index\":3}\n", { wait: true })
      })).pipe(Effect.provide(storage.layer))
      expect(storage.text(memFile)).toBe("{\"index\":1}\n{\"ind\n{\"index\":2}\n{\"index\":3}\n")
    }).pipe(Effect.provide(TestContext.TestContext), Effect.runPromise))
})

describe("the group-commit log: a wait whose lines an earlier write put on disk", () => {
  it("succeeds even when a later write failed before the wait ran", () =>
    withMemoryLog((log, storage) =>
      Effect.gen(function*() {
        const waitA = yield* log.enqueue("A\n") // queued; its wait runs only later
        yield* log.append("B\n", { wait: true }) // this write carries A and B
        expect(storage.text(memFile)).toBe("A\nB\n")
        storage.onWrite = diskFull
        expect((yield* Effect.flip(log.append("C\n", { wait: true }))).reason).toBe("disk full")
        yield* waitA // A is on disk: its wait succeeds
        expect((yield* Effect.flip(log.flush)).reason).toBe("disk full") // C is not
      })
    ))
})

describe("the group-commit log when the fiber writing a batch is interrupted", () => {
  /** A Storage whose append handle opens after `openMs` and appends through `append`. */
  const stub = (openMs: number, append: (data: string | Uint8Array) => Effect.Effect<void, StorageError>) =>
    Layer.succeed(Storage, {
      openAppend: () =>
        Effect.as(Effect.sleep(openMs), { append: (d: string | Uint8Array) => Effect.uninterruptible(append(d)) })
    } as unknown as StorageApi)

  it("while the log is being opened: the batch is still written, and the other waiters' lines are on disk", async () => {
    const written: Array<string> = []
    const outcome = await Effect.runPromise(
      Effect.scoped(Effect.gen(function*() {
        const log = yield* makeDurableLog("/stub/log.jsonl")
        const waitA = log.queue("A\n")
        const waitB = log.queue("B\n")
        const a = yield* Effect.fork(waitA)
        yield* Effect.sleep("2 millis") // A holds the lock and is opening the log
        const b = yield* Effect.fork(waitB)
        yield* Effect.sleep("2 millis")
        yield* Fiber.interrupt(a)
        const onDisk = yield* Effect.either(Fiber.join(b))
        return { onDisk, written: [...written] }
      })).pipe(Effect.provide(stub(20, (d) => Effect.sync(() => void written.push(String(d))))))
    )
    expect(Either.isRight(outcome.onDisk)).toBe(true)
    expect(outcome.written.join("")).toBe("A\nB\n")
  })

  it("while the log is being opened, with lines queued after its batch was taken: the batch goes back first", async () => {
    const written: Array<string> = []
    const outcome = await Effect.runPromise(
      Effect.scoped(Effect.gen(function*() {
        const log = yield* makeDurableLog("/stub/log.jsonl")
        const a = yield* Effect.fork(log.queue("A\n"))
        yield* Effect.sleep("2 millis") // A's batch was taken; the log is being opened
        const c = yield* Effect.fork(log.queue("C\u00e9\n"))
        yield* Effect.sleep("2 millis")
        yield* Fiber.interrupt(a)
        const onDisk = yield* Effect.either(Fiber.join(c))
        return { onDisk, written: [...written] }
      })).pipe(Effect.provide(stub(20, (d) => Effect.sync(() => void written.push(Buffer.from(d).toString("utf8"))))))
    )
    expect(Either.isRight(outcome.onDisk)).toBe(true)
    expect(outcome.written).toEqual(["A\nC\u00e9\n"])
  })

  it("while its write fails: the failure is kept, so no later line is appended after the cut one", async () => {
    const written: Array<string> = []
    let calls = 0
    const append = (d: string | Uint8Array) =>
      Effect.gen(function*() {
        yield* Effect.sleep("10 millis")
        if (calls++ === 0) {
          written.push(String(d).slice(0, 3)) // part of the batch reached the file
          return yield* Effect.fail(
            new StorageError({ path: "/stub/log.jsonl", operation: "append to", reason: "ENOSPC" })
          )
        }
        written.push(String(d))
      })
    const outcome = await Effect.runPromise(
      Effect.scoped(Effect.gen(function*() {
        const log = yield* makeDurableLog("/stub/log.jsonl")
        const waitA = log.queue("A-record\n")
        const waitB = log.queue("B-record\n")
        const a = yield* Effect.fork(waitA)
        yield* Effect.sleep("1 millis")
        const b = yield* Effect.fork(waitB)
        yield* Effect.sleep("1 millis")
        yield* Effect.fork(Fiber.interrupt(a)) // interrupted while its (failing) write is in flight
        yield* Effect.sleep("30 millis")
        const bOnDisk = yield* Effect.either(Fiber.join(b))
        const cOnDisk = yield* Effect.either(log.queue("C-record\n"))
        return { bOnDisk, cOnDisk }
      })).pipe(Effect.catchAll(() => Effect.succeed(undefined)), Effect.provide(stub(0, append)))
    )
    expect(outcome).toBeDefined()
    expect(Either.isLeft(outcome!.bOnDisk)).toBe(true)
    expect(Either.isLeft(outcome!.cOnDisk)).toBe(true)
    expect(written).toEqual(["A-r"])
  })
})

describe("Storage's append writes every byte", () => {
  it("a write that writes part of the data is followed by more writes; one that writes nothing is an error", async () => {
    const got: Array<number> = []
    const partial = {
      write: async (b: Uint8Array) => {
        const n = Math.min(b.length, 3)
        for (let i = 0; i < n; i++) got.push(b[i]!)
        return { bytesWritten: n, buffer: b }
      }
    }
    await writeAll(partial, "héllo, world")
    expect(Buffer.from(got).toString("utf8")).toBe("héllo, world")
    const stuck = { write: async (b: Uint8Array) => ({ bytesWritten: 0, buffer: b }) }
    await expect(writeAll(stuck, "x")).rejects.toThrow(/^a write wrote nothing \(wrote 0 of 1 bytes\)$/)
    // The write after a short one fails with the cause: named as such, with where the file stopped.
    let calls = 0
    const full = {
      write: async (b: Uint8Array) => {
        if (calls++ === 0) return { bytesWritten: 4, buffer: b }
        throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" })
      }
    }
    const error = await writeAll(full, "héllo, world", 100).catch((e: unknown) => e as Error & { code?: string })
    expect(error).toMatchObject({ message: "no space left on device (wrote 104 of 113 bytes)", code: "ENOSPC" })
  })
})
