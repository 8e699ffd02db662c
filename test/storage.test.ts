/** Storage: dataset writers by extension (atomic) and the streaming dataset readers with their errors. */
import { Chunk, Effect, Either, Exit, Schema, Stream } from "effect"
import { spawn } from "node:child_process"
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import * as fsp from "node:fs/promises"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { crc32 } from "node:zlib"
import { describe, expect, it } from "vitest"
import type { InputError } from "../src/domain/errors.js"
import type { SkyRLRow } from "../src/domain/row.js"
import { readLogEntries } from "../src/services/durableLog.js"
import { ByteSink, lineChunks, readBackFrom, Storage, StorageLive } from "../src/services/Storage.js"
import { convertTask } from "../src/skyrl/convert.js"
import { jsonLinesDecoder, NAMED_LINES } from "../src/skyrl/jsonLines.js"
import { encodeRow } from "../src/skyrl/layout.js"
import { utf8FaultOf } from "../src/skyrl/utf8.js"
import { runChild } from "./support/child.js"
import { ROOT } from "./support/python.js"
import { seededRandom } from "./support/schemaSample.js"

const tmp = () => mkdtempSync(join(tmpdir(), "skyrl-storage-"))
const run = <A, E>(effect: Effect.Effect<A, E, Storage>) => Effect.runPromise(Effect.provide(effect, StorageLive))
const runExit = <A, E>(effect: Effect.Effect<A, E, Storage>) =>
  Effect.runPromiseExit(Effect.provide(effect, StorageLive))

const rows: ReadonlyArray<SkyRLRow> = [0, 1, 2].map((i) =>
  Either.getOrThrow(convertTask({
    task_id: `t${i}`,
    user_prompt: `Quote ${i} for Zürich — “café”`,
    tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }],
    evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
  }))
)

const readAll = (file: string) =>
  Effect.flatMap(Storage, (s) => Stream.runCollect(s.readRows(file)).pipe(Effect.map(Chunk.toArray)))

const failureOf = async (file: string): Promise<InputError> => {
  const exit = await runExit(readAll(file))
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error("expected a failure")
  return exit.cause.error
}

describe("writeRows", () => {
  it(".json is an indented array by default; indent 0 is compact; ascii escapes every non-ASCII character", async () => {
    const dir = tmp()
    await run(Effect.flatMap(Storage, (s) => s.writeRows(join(dir, "a.json"), rows)))
    await run(Effect.flatMap(Storage, (s) => s.writeRows(join(dir, "b.json"), rows, { indent: 0, ascii: true })))
    const pretty = readFileSync(join(dir, "a.json"), "utf8")
    const compact = readFileSync(join(dir, "b.json"), "utf8")
    expect(pretty.startsWith("[\n  {\n    \"data_source\"")).toBe(true)
    expect(pretty).toContain("Zürich — “café”")
    expect(compact.split("\n").filter((l) => l !== "")).toHaveLength(1)
    expect(compact).not.toMatch(/[^\x00-\x7f]/)
    expect(compact).toContain("Z\\u00fcrich \\u2014 \\u201ccaf\\u00e9\\u201d")
    expect(JSON.parse(pretty)).toEqual(rows.map(encodeRow))
    expect(JSON.parse(compact)).toEqual(rows.map(encodeRow))
  })

  it("an indented .json keeps strings holding U+2028 / U+2029 as they are (they were indented like line ends)", async () => {
    const separated = [0, 1].map((i) =>
      Either.getOrThrow(convertTask({
        task_id: `s${i}`,
        user_prompt: `Echo this: alpha\u2028beta\u2029gamma ${i}`,
        tool_sequence: [{ server: "fmp", tool: "fmp_search_ticker", params: { query: "alpha\u2028beta" } }],
        evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
      }))
    )
    const dir = tmp()
    for (const indent of [2, 4]) {
      const file = join(dir, `rows-${indent}.json`)
      await run(Effect.flatMap(Storage, (s) => s.writeRows(file, separated, { indent })))
      expect(JSON.parse(readFileSync(file, "utf8"))).toEqual(separated.map(encodeRow))
    }
  })

  it(".jsonl has one encoded row per line", async () => {
    const file = join(tmp(), "a.jsonl")
    expect(await run(Effect.flatMap(Storage, (s) => s.writeRows(file, rows)))).toBe(3)
    const lines = readFileSync(file, "utf8").split("\n")
    expect(lines.at(-1)).toBe("")
    expect(lines.slice(0, -1).map((l) => JSON.parse(l))).toEqual(rows.map(encodeRow))
  })

  it("a write that fails midway leaves the previous file intact and no temp file behind", async () => {
    const dir = tmp()
    for (const name of ["a.jsonl", "a.parquet"]) {
      const file = join(dir, name)
      await run(Effect.flatMap(Storage, (s) => s.writeRows(file, rows)))
      const before = readFileSync(file)
      const failing = function*() {
        yield rows[0]
        throw new Error("generator broke")
      }
      const exit = await runExit(Effect.flatMap(Storage, (s) => s.writeRows(file, failing())))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(readFileSync(file)).toEqual(before)
    }
    expect(readdirSync(dir).sort()).toEqual(["a.jsonl", "a.parquet"])
  })

  it("an unknown extension is an error naming the supported formats", async () => {
    const exit = await runExit(Effect.flatMap(Storage, (s) => s.writeRows(join(tmp(), "rows.csv"), rows)))
    expect(Exit.isFailure(exit) && String(exit.cause)).toMatch(/\.json, \.jsonl or \.parquet/)
  })
})

describe("ByteSink read-back", () => {
  /** A file in memory: appends, a data sync, positioned reads; `damage` changes what a write stores. */
  const memoryFile = (damage: (bytes: Buffer, index: number) => Buffer = (b) => b) => {
    const chunks: Array<Buffer> = []
    let writes = 0
    const data = () => Buffer.concat(chunks)
    return {
      data,
      target: {
        write: async (bytes: Uint8Array) => void chunks.push(damage(Buffer.from(bytes), writes++)),
        datasync: async () => undefined,
        read: async (buffer: Buffer, offset: number, length: number, position: number) => {
          // Positioned read over the chunks (no copy of the whole file per read).
          let at = 0
          let n = 0
          for (const c of chunks) {
            if (n === length) break
            const from = Math.max(position + n - at, 0)
            if (from < c.length && at + from === position + n) n += c.copy(buffer, offset + n, from, from + length - n)
            at += c.length
          }
          return { bytesRead: n }
        }
      }
    }
  }
  // 70 MiB: more than one sync interval (64 MiB), so a prefix is read back while the rest is written.
  const writeAll = async (sink: ByteSink) => {
    const line = "x".repeat((1 << 20) - 1) + "\n"
    for (let i = 0; i < 70; i++) {
      sink.write(line)
      await sink.drained()
    }
    return sink.finish()
  }

  it("reads each synced region back while writing; the rest read after gives the whole file's CRC", async () => {
    const file = memoryFile()
    const written = await writeAll(new ByteSink(file.target))
    expect(written.bytes).toBe(70 << 20)
    expect(written.readBack.bytes).toBeGreaterThanOrEqual(64 << 20)
    expect(written.readBack.bytes).toBeLessThan(written.bytes)
    expect(written.readBack.crc).toBe(crc32(file.data().subarray(0, written.readBack.bytes)))
    expect(await readBackFrom(file.target.read, written.readBack)).toEqual({ bytes: written.bytes, crc: written.crc })
  })

  it("a byte changed on the way to the file makes the read-back differ from what was written", async () => {
    const file = memoryFile((
      b,
      i
    ) => (i === 3 ? Buffer.concat([b.subarray(0, 9), Buffer.from("y"), b.subarray(10)]) : b))
    const written = await writeAll(new ByteSink(file.target))
    const onDisk = await readBackFrom(file.target.read, written.readBack)
    expect(onDisk.bytes).toBe(written.bytes)
    expect(onDisk.crc).not.toBe(written.crc)
  })

  it("a file shorter than what was written: the read-back says so, while writing or after", async () => {
    const short = memoryFile((b, i) => (i === 5 ? b.subarray(1) : b))
    const written = await writeAll(new ByteSink(short.target))
    expect((await readBackFrom(short.target.read, written.readBack)).bytes).toBe(written.bytes - 1)
    // Writes lost before the first sync: the synced region itself is short.
    const lost = memoryFile((b, i) => (i >= 60 ? b.subarray(0, 0) : b))
    await expect(writeAll(new ByteSink(lost.target))).rejects.toThrow(/read back ends at byte/)
  })
})

describe("ByteSink on a worker thread (a target with an fd)", () => {
  const line = "y".repeat((1 << 19) - 1) + "\n"
  /** Writes half-MiB lines until the worker has taken over, then `after` more. */
  const writeUntilWorker = async (sink: ByteSink, after: number) => {
    for (let i = 0; i < 4000 && !sink.onWorker; i++) {
      sink.write(line)
      await sink.drained()
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    expect(sink.onWorker).toBe(true)
    for (let i = 0; i < after; i++) {
      sink.write(line)
      sink.writeShared(line)
      await sink.drained()
    }
  }
  const fileTarget = async (file: string) => {
    const handle = await fsp.open(file, "w+")
    return {
      handle,
      target: {
        write: (bytes: Uint8Array) => handle.write(bytes),
        datasync: () => handle.datasync(),
        read: (buffer: Buffer, offset: number, length: number, position: number) =>
          handle.read(buffer, offset, length, position),
        fd: handle.fd
      }
    }
  }

  it("the worker continues the appends, CRC and read-backs: the totals are the file's", async () => {
    const file = join(tmp(), "rows.jsonl")
    const { handle, target } = await fileTarget(file)
    const sink = new ByteSink(target, { offloadFrom: 1 << 20, syncEvery: 3 << 20 })
    await writeUntilWorker(sink, 12)
    const written = await sink.finish()
    await handle.close()
    const data = readFileSync(file)
    expect(written.bytes).toBe(data.length)
    expect(written.crc).toBe(crc32(data))
    // The worker synced and read back every region, the last one when it finished.
    expect(written.readBack.bytes).toBe(data.length)
    expect(written.readBack.crc).toBe(crc32(data.subarray(0, written.readBack.bytes)))
    expect(data.toString("utf8")).toBe(line.repeat(data.length / line.length))
  })

  it("a write failing on the worker fails the sink, with the error", async () => {
    const dir = tmp()
    const readOnly = join(dir, "read-only")
    writeFileSync(readOnly, "")
    const fd = openSync(readOnly, "r")
    try {
      const sink = new ByteSink({ write: async () => undefined, fd }, { offloadFrom: 1 << 20 })
      // The errno's text and where in the file the write stopped (the main thread wrote up to the hand-over).
      await expect(writeUntilWorker(sink, 8).then(() => sink.finish())).rejects.toThrow(
        /(EBADF|bad file descriptor).* \(wrote (\d+) of \d+ bytes\)$/i
      )
      await sink.close()
    } finally {
      closeSync(fd)
    }
  })

  it("a sink that finishes before its worker is ready writes everything itself, and stops the worker", async () => {
    const file = join(tmp(), "rows.jsonl")
    const { handle, target } = await fileTarget(file)
    const sink = new ByteSink(target, { offloadFrom: 1 << 20 })
    for (let i = 0; i < 6; i++) sink.write(line) // no turn of the event loop: the worker cannot be ready
    const written = await sink.finish()
    await handle.close()
    expect(sink.onWorker).toBe(false)
    expect(written).toMatchObject({ bytes: 6 * line.length, crc: crc32(readFileSync(file)) })
  })

  it("close ends the worker of a sink given up before its end", async () => {
    const file = join(tmp(), "rows.jsonl")
    const { handle, target } = await fileTarget(file)
    const sink = new ByteSink(target, { offloadFrom: 1 << 20 })
    await writeUntilWorker(sink, 2)
    await sink.close()
    await sink.close()
    await handle.close()
    // Everything handed to the worker before close is in the file; nothing after.
    expect(readFileSync(file).length % line.length).toBe(0)
  })
})

describe("readRows", () => {
  it("reads back what was written, in every format, with 0-based indexes (and lines for JSON Lines)", async () => {
    const dir = tmp()
    for (const name of ["a.json", "a.jsonl", "a.parquet"]) {
      const file = join(dir, name)
      await run(Effect.flatMap(Storage, (s) => s.writeRows(file, rows)))
      const back = await run(readAll(file))
      expect(back.map((r) => r.value)).toEqual(rows.map(encodeRow))
      expect(back.map((r) => r.index)).toEqual([0, 1, 2])
      if (name.endsWith(".jsonl")) expect(back.map((r) => r.line)).toEqual([1, 2, 3])
    }
  })

  it("skips blank lines in JSON Lines; a .json file holding JSON Lines is read as lines (as datasets does)", async () => {
    const dir = tmp()
    writeFileSync(join(dir, "a.jsonl"), "{\"a\":1}\n\n  \n{\"a\":2}\r\n")
    writeFileSync(join(dir, "b.json"), "{\"a\":1}\n{\"a\":2}\n")
    for (const f of ["a.jsonl", "b.json"]) {
      const back = await run(readAll(join(dir, f)))
      expect(back.map((r) => [r.index, r.value])).toEqual([[0, { a: 1 }], [1, { a: 2 }]])
    }
  })

  it("a bad JSON line names the file, the row and the line", async () => {
    const file = join(tmp(), "bad.jsonl")
    writeFileSync(file, "{\"a\":1}\n\n{\"a\":\n")
    const e = await failureOf(file)
    expect([e.file, e.row]).toEqual([file, 1])
    expect(e.message).toMatch(/bad\.jsonl, row 1: line 3 is not valid JSON/)
  })

  it("missing files, non-arrays, broken JSON and non-Parquet bytes are InputErrors naming the file", async () => {
    const dir = tmp()
    writeFileSync(join(dir, "object.json"), "[1,")
    writeFileSync(join(dir, "garbage.parquet"), "this is not parquet at all")
    // PAR1 at both ends, zeros between (a footer length of 0): the reader failed on it with a TypeError, which was
    // all the message said ("Cannot read properties of undefined (reading 'map')")
    const zeros = Buffer.concat([Buffer.from("PAR1"), Buffer.alloc(46), Buffer.from([0, 0, 0, 0]), Buffer.from("PAR1")])
    writeFileSync(join(dir, "zeros.parquet"), zeros)
    const cases: Array<[string, RegExp]> = [
      [join(dir, "zeros.parquet"), /not a readable Parquet file: its metadata or a data page is damaged \(the reader/],
      [join(dir, "missing.jsonl"), /no such file/],
      [join(dir, "missing.parquet"), /no such file/],
      [join(dir, "object.json"), /not valid JSON/],
      [join(dir, "garbage.parquet"), /not a readable Parquet file/],
      [join(dir, "rows.csv"), /unknown dataset format/]
    ]
    for (const [file, pattern] of cases) {
      const e = await failureOf(file)
      expect(e._tag).toBe("InputError")
      expect(e.file).toBe(file)
      expect(e.message).toMatch(pattern)
    }
  })

  it("a .json file that is not an array is read as convert reads it: one object, whole or pretty-printed", async () => {
    const file = join(tmp(), "one.json")
    writeFileSync(file, "{\"a\": 1}\n")
    expect((await run(readAll(file))).map((r) => r.value)).toEqual([{ a: 1 }])
    // Until 2026-12-03 read line by line: "row 0: line 1 is not valid JSON" (validate: one contract/json a line).
    writeFileSync(file, "{\n  \"a\": 1\n}\n")
    expect((await run(readAll(file))).map((r) => [r.index, r.value])).toEqual([[0, { a: 1 }]])
    // A broken one is refused whole, where it breaks.
    writeFileSync(file, "{\n  \"a\": 1,\n}\n")
    expect((await failureOf(file)).message).toMatch(/one\.json: not valid JSON: .* at line 3, column 1$/)
  })

  it("a .json file whose first line is a log line, then JSON Lines: read as the same .jsonl is (line 1 a bad row)", async () => {
    // Until 2026-12-03 a .json text starting with '[' was parsed whole: "not valid JSON ... (at line 1, column 2)".
    const dir = tmp()
    for (const name of ["logged.json", "logged.jsonl"]) {
      const file = join(dir, name)
      writeFileSync(file, "[INFO] started\n{\"a\":1}\n{\"a\":2}\n")
      const back = await run(
        Effect.flatMap(Storage, (s) => Stream.runCollect(s.readRows(file, { keepUnparsable: true }))).pipe(
          Effect.map(Chunk.toArray)
        )
      )
      expect(back.map((r) => [r.index, r.line, r.value, r.unparsable])).toEqual([
        [0, 1, undefined, "line 1 is not valid JSON: Unexpected token 'I', \"[INFO] started\" is not valid JSON"],
        [1, 2, { a: 1 }, undefined],
        [2, 3, { a: 2 }, undefined]
      ])
      const e = await failureOf(file)
      expect([e.file, e.row]).toEqual([file, 0])
    }
  })
})

describe("text that is not UTF-8 (a Latin-1 é, 0xE9)", () => {
  const latin1 = (text: string) => Buffer.from(text, "latin1")
  const utf8 = (text: string) => Buffer.from(text, "utf8")
  // BOM, then lines ending in \r\n, \r and \n, with 2- and 4-byte characters, a U+FFFD written as UTF-8
  // (EF BF BD: text like any other) and a line holding a raw 0xE9 at byte 10 + 8 + 9 + 8 + 8 + 7 = 50.
  const bytes = Buffer.concat([
    utf8("\uFEFFcafé\r\n"),
    utf8("😀 ok\r"),
    utf8("\uFFFD kept\n"),
    utf8("naïve\r\n"),
    utf8("Zürich\n"),
    latin1("the café\n"),
    utf8("{\"a\":1}")
  ])
  const good = ["café", "😀 ok", "\uFFFD kept", "naïve", "Zürich", undefined, "{\"a\":1}"]
  const fault = "line 6 is not valid UTF-8: byte 0xE9 at byte offset 50 of the file (re-encode it as UTF-8)"

  it("lineChunks gives such a line as a fault line with its offset, whatever the read size; the others as text", async () => {
    const file = join(tmp(), "mixed.txt")
    writeFileSync(file, bytes)
    for (const size of [1, 2, 3, 4, 5, 7, 64 * 1024]) {
      const lines: Array<string> = []
      for await (const chunk of lineChunks(file, size)) lines.push(...chunk)
      expect(lines.map((l, i) => utf8FaultOf(l, i + 1) ?? l), `read size ${size}`).toEqual(good.map((g) => g ?? fault))
    }
  })

  it("lineChunks cuts UTF-8 text into the lines a split of the decoded text gives, whatever the line ends and read size", async () => {
    // Each line is decoded alone (Latin-1 when a read is ASCII): held to the plain reading of the whole file.
    const random = seededRandom(19)
    const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(random() * xs.length)]!
    const pieces = ["a", "{\"k\": 1}", " ", "é", "€", "😀", "\uFFFD", "\u00FF", "z".repeat(40)]
    const ends = ["\n", "\r\n", "\r", "\n\n", "\r\r\n"]
    const dir = tmp()
    for (let round = 0; round < 60; round++) {
      const ascii = round % 3 === 0
      let text = round % 4 === 0 ? "\uFEFF" : ""
      const lines = 1 + Math.floor(random() * 30)
      for (let l = 0; l < lines; l++) {
        const n = Math.floor(random() * 6)
        for (let k = 0; k < n; k++) text += ascii ? pick(["a", " ", "{\"k\": 1}", "z".repeat(40)]) : pick(pieces)
        if (l < lines - 1 || random() < 0.5) text += pick(ends)
      }
      const file = join(dir, `t${round}.txt`)
      writeFileSync(file, text)
      const body = text.startsWith("\uFEFF") ? text.slice(1) : text
      const expected = body.split(/\r\n|\n|\r/)
      if (expected.at(-1) === "") expected.pop()
      for (const size of [1, 3, 8, 64, 64 * 1024]) {
        const got: Array<string> = []
        for await (const chunk of lineChunks(file, size)) got.push(...chunk)
        expect(got, `round ${round}, read size ${size}: ${JSON.stringify(text)}`).toEqual(expected)
      }
    }
  })

  it("readRows: in .jsonl and .json lines a row of its own naming the line and byte offset; a .json array fails", async () => {
    const dir = tmp()
    const lines = [utf8("{\"a\":\"\uFFFD\"}\n"), latin1("{\"a\":\"café\"}\n"), utf8("{\"a\":\"é\"}\n")]
    for (const name of ["a.jsonl", "a.json"]) {
      writeFileSync(join(dir, name), Buffer.concat(lines))
      const back = await run(
        Effect.flatMap(
          Storage,
          (s) =>
            Stream.runCollect(s.readRows(join(dir, name), { keepUnparsable: true })).pipe(Effect.map(Chunk.toArray))
        )
      )
      expect(back.map((r) => [r.index, r.value, r.unparsable])).toEqual([
        [0, { a: "\uFFFD" }, undefined],
        [1, undefined, "line 2 is not valid UTF-8: byte 0xE9 at byte offset 21 of the file (re-encode it as UTF-8)"],
        [2, { a: "é" }, undefined]
      ])
    }
    writeFileSync(join(dir, "array.json"), Buffer.concat([utf8("[\n"), latin1("{\"a\":\"café\"}\n"), utf8("]\n")]))
    expect((await failureOf(join(dir, "array.json"))).message).toMatch(
      /line 2 is not valid UTF-8: byte 0xE9 at byte offset 11/
    )
  })

  it("a .json array starting with a BOM is read, as .jsonl and the other readers read it", async () => {
    const file = join(tmp(), "bom.json")
    writeFileSync(file, "\uFEFF[{\"a\": 1}, {\"a\": 2}]\n")
    expect((await run(readAll(file))).map((r) => r.value)).toEqual([{ a: 1 }, { a: 2 }])
  })
})

describe("locks", () => {
  const owner = { pid: process.pid, host: hostname(), command: "test" }
  it("a second taker gets LockHeld naming the holder; released, it can be taken again", async () => {
    const file = join(tmp(), "run", "lock")
    await run(Effect.flatMap(Storage, (s) => s.acquireLock(file, owner)))
    const second = await runExit(Effect.flatMap(Storage, (s) => s.acquireLock(file, { ...owner, command: "other" })))
    expect(Exit.isFailure(second)).toBe(true)
    if (Exit.isFailure(second) && second.cause._tag === "Fail") {
      expect(second.cause.error._tag).toBe("LockHeld")
      expect(second.cause.error.message).toContain(`"pid":${process.pid}`)
    }
    await run(Effect.flatMap(Storage, (s) => s.releaseLock(file)))
    await run(Effect.flatMap(Storage, (s) => s.acquireLock(file, owner)))
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual(owner)
  })

  it("a lock left by a process that is gone (kill -9) is taken over", async () => {
    const dead = await runChild(process.execPath, ["-e", "process.stdout.write(String(process.pid))"])
    const file = join(tmp(), "lock")
    writeFileSync(file, JSON.stringify({ pid: Number(dead.stdout), host: hostname() }) + "\n")
    await run(Effect.flatMap(Storage, (s) => s.acquireLock(file, owner)))
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual(owner)
    // The dead process's lock was moved aside and removed, not left to pile up (lock.stale-*).
    expect(readdirSync(join(file, ".."))).toEqual(["lock"])
  })

  it(
    "a lock whose process died but is not yet reaped (a zombie, as right after a kill -9) is taken over",
    async () => {
      // Python forks a child that exits at once and never waits for it (SIGCHLD left at its default): a zombie
      // for 5 s. (bash, `sleep 0 & echo $!; exec sleep 5`, reaped the child itself when it exited before the exec,
      // as it did under load in CI: /proc/<pid> was gone.)
      const zombie =
        "import os, time\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nprint(pid, flush=True)\ntime.sleep(5)"
      const parent = spawn("python3", ["-c", zombie], { stdio: ["ignore", "pipe", "ignore"] })
      try {
        const pid = await new Promise<number>((resolve) => parent.stdout.once("data", (d) => resolve(Number(d))))
        while (!readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ")) await new Promise((r) => setTimeout(r, 10))
        expect(() => process.kill(pid, 0)).not.toThrow() // signal 0 still reaches it
        const file = join(tmp(), "lock")
        writeFileSync(file, JSON.stringify({ pid, host: hostname() }) + "\n")
        await run(Effect.flatMap(Storage, (s) => s.acquireLock(file, owner)))
        expect(JSON.parse(readFileSync(file, "utf8"))).toEqual(owner)
      } finally {
        parent.kill("SIGKILL")
      }
    }
  )

  it("a written file sweeps the temp and old files of it that killed writers left; a live writer's and other files' stay", async () => {
    const dead = Number((await runChild(process.execPath, ["-e", "process.stdout.write(String(process.pid))"])).stdout)
    const dir = tmp()
    const swept = [`.rows.jsonl.${dead}.0a1b2c3d.tmp`, `.rows.jsonl.${dead}.0a1b2c3d.old`]
    const kept = [
      `.rows.jsonl.${process.pid}.0a1b2c3d.tmp`,
      `.rows.jsonl.${process.pid}.0a1b2c3d.old`,
      `.other.jsonl.${dead}.aa.tmp`,
      `.other.jsonl.${dead}.aa.old`,
      `.rows.jsonl.${dead}.0a1b2c3d.bak`
    ]
    for (const name of [...swept, ...kept]) writeFileSync(join(dir, name), "partial")
    await run(Effect.flatMap(Storage, (s) => s.writeRows(join(dir, "rows.jsonl"), rows)))
    expect(readdirSync(dir).sort()).toEqual([...kept, "rows.jsonl"].sort())
  })
})

describe("writeRows with replaceIf (a file there is replaced only when the caller says so)", () => {
  const OLD = "the file there before\n\u00e9\n" // not rows: left byte for byte, or not
  const there = (name: string) => {
    const dir = tmp()
    const file = join(dir, name)
    writeFileSync(file, OLD)
    writeFileSync(`${file}.rejects.jsonl`, "old rejects\n")
    return { dir, file, companion: { file: `${file}.rejects.jsonl`, text: () => "new rejects\n" } }
  }
  const jsonl = rows.map((r) => JSON.stringify(encodeRow(r)) + "\n").join("")

  it("yes: the file and its companion are replaced, the count asked with; no temp file is left", async () => {
    const { dir, file, companion } = there("rows.jsonl")
    const asked: Array<number> = []
    const n = await run(
      Effect.flatMap(Storage, (s) =>
        s.writeRows(file, rows, {
          companion,
          replaceIf: (k) => Effect.sync(() => asked.push(k)).pipe(Effect.as(true))
        }))
    )
    expect(n).toBe(3)
    expect(asked).toEqual([3])
    expect(readFileSync(file, "utf8")).toBe(jsonl)
    expect(readFileSync(companion.file, "utf8")).toBe("new rejects\n")
    expect(readdirSync(dir).sort()).toEqual(["rows.jsonl", "rows.jsonl.rejects.jsonl"])
  })

  it("no: the file and its companion are left byte for byte and the temp files removed (.jsonl, .json, .parquet)", async () => {
    for (const name of ["rows.jsonl", "rows.json", "rows.parquet"]) {
      const { dir, file, companion } = there(name)
      const n = await run(
        Effect.flatMap(Storage, (s) => s.writeRows(file, rows, { companion, replaceIf: () => Effect.succeed(false) }))
      )
      expect(n).toBe(3)
      expect(readFileSync(file, "utf8")).toBe(OLD)
      expect(readFileSync(companion.file, "utf8")).toBe("old rejects\n")
      expect(readdirSync(dir).sort()).toEqual([name, `${name}.rejects.jsonl`].sort())
    }
  })

  it("no file there: the rows are written without asking", async () => {
    const dir = tmp()
    const file = join(dir, "rows.jsonl")
    const asked: Array<number> = []
    await run(
      Effect.flatMap(Storage, (s) =>
        s.writeRows(file, rows, {
          replaceIf: (k) => Effect.sync(() => asked.push(k)).pipe(Effect.as(false))
        }))
    )
    expect(asked).toEqual([])
    expect(readFileSync(file, "utf8")).toBe(jsonl)
  })

  it("rows that fail: not asked; the file there is left byte for byte, no temp file", async () => {
    const { dir, file } = there("rows.jsonl")
    let asked = false
    const failing = Stream.concat(Stream.fromIterable(rows), Stream.fail("no more rows" as const))
    const exit = await runExit(
      Effect.flatMap(Storage, (s) =>
        s.writeRowStream(file, failing, {
          replaceIf: () => Effect.sync(() => (asked = true))
        }))
    )
    expect(Exit.isFailure(exit)).toBe(true)
    expect(asked).toBe(false)
    expect(readFileSync(file, "utf8")).toBe(OLD)
    expect(readdirSync(dir).sort()).toEqual(["rows.jsonl", "rows.jsonl.rejects.jsonl"])
  })

  it(
    "a writer killed (kill -9) while it is asked leaves the file there as it was; the next write sweeps its temp file",
    async () => {
      const { dir, file } = there("rows.jsonl")
      // A writer that is asked and never answers (rebuild's check stands for it), killed then.
      const script = `
      const { Effect } = await import("effect")
      const { Storage, StorageLive } = await import(${JSON.stringify(join(ROOT, "src", "services", "Storage.ts"))})
      const { RowJson } = await import(${JSON.stringify(join(ROOT, "src", "skyrl", "layout.ts"))})
      const rows = ${JSON.stringify(rows.map((r) => JSON.stringify(encodeRow(r))))}.map((t) => new RowJson(t))
      await Effect.runPromise(Effect.provide(Effect.flatMap(Storage, (s) => s.writeRows(${JSON.stringify(file)}, rows,
        { replaceIf: () => Effect.zipRight(Effect.sync(() => process.stdout.write("asked\\n")), Effect.never) })),
        StorageLive))
    `
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"]
      })
      let err = ""
      child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d))
      await new Promise<void>((resolve, reject) => {
        child.stdout.once("data", () => resolve())
        child.once("exit", () => reject(new Error(`the writer ended before it was asked: ${err}`)))
      })
      const left = readdirSync(dir).filter((n) => n.startsWith(`.rows.jsonl.${child.pid}.`) && n.endsWith(".tmp"))
      expect(left).toHaveLength(1)
      expect(readFileSync(join(dir, left[0]!), "utf8")).toBe(jsonl) // the rows, written and synced, not renamed
      child.kill("SIGKILL")
      await new Promise((resolve) => child.once("close", resolve))
      expect(readFileSync(file, "utf8")).toBe(OLD)
      await run(Effect.flatMap(Storage, (s) => s.writeRows(file, rows, { replaceIf: () => Effect.succeed(true) })))
      expect(readFileSync(file, "utf8")).toBe(jsonl)
      expect(readdirSync(dir).sort()).toEqual(["rows.jsonl", "rows.jsonl.rejects.jsonl"]) // was left: swept
    },
    60_000
  )
})

describe("JSON Lines that a crash may have cut (journals, ledgers)", () => {
  const Entry = Schema.Struct({ i: Schema.Number, text: Schema.String })
  /** The decoder's rules over a text (as readLogEntries applies them to a file's lines). */
  const readJsonLines = <A, I>(schema: Schema.Schema<A, I>, text: string) => {
    const decoder = jsonLinesDecoder(schema)
    const entries = text.split("\n").flatMap((line) => {
      const entry = decoder.line(line)
      return entry === undefined ? [] : [entry]
    })
    const torn = text !== "" && !text.endsWith("\n")
    return { entries, skipped: decoder.skipped(torn), torn }
  }
  const entries = [0, 1, 2, 3].map((i) => ({ i, text: `entry ${i} — “ünïcode” ${"x".repeat(i * 7)}` }))
  const full = entries.map((e) => JSON.stringify(e) + "\n").join("")

  it("cut at any byte: exactly the lines written whole are read, and a torn tail is reported", () => {
    const bytes = Buffer.from(full, "utf8")
    for (let cut = 0; cut <= bytes.length; cut++) {
      const text = bytes.subarray(0, cut).toString("utf8")
      const read = readJsonLines(Entry, text)
      // Entries whose JSON is entirely within the first `cut` bytes (the newline may be missing).
      let end = 0
      const expected = entries.filter((e) => {
        end += Buffer.byteLength(JSON.stringify(e), "utf8")
        const ok = end <= cut
        end += 1
        return ok
      })
      expect(read.entries, `cut at byte ${cut}`).toEqual(expected)
      expect(read.skipped).toBe(0)
      expect(read.torn).toBe(text !== "" && !text.endsWith("\n"))
    }
  })

  it("a damaged line in the middle is skipped and counted; the lines after it are kept", () => {
    const text = JSON.stringify(entries[0]) + "\n{\"i\": 1, \"te\n" + JSON.stringify(entries[2]) + "\n{\"i\":\"x\"}\n"
    const read = readJsonLines(Entry, text)
    expect(read.entries).toEqual([entries[0], entries[2]])
    expect(read.skipped).toBe(2)
  })

  it("read from a file a few lines at a time (readLogEntries), cut at any byte: the lines written whole", async () => {
    const bytes = Buffer.from(JSON.stringify(entries[0]) + "\nnot json\n" + full, "utf8")
    const file = join(tmp(), "log.jsonl")
    for (let cut = 0; cut <= bytes.length; cut++) {
      writeFileSync(file, bytes.subarray(0, cut))
      const seen: Array<unknown> = []
      const read = await run(readLogEntries(file, Entry, (e) => seen.push(e)))
      const expected = [entries[0], ...entries].filter((e, k) => {
        // Entry k's JSON ends at this byte (k 0 is the first line; "not json\n" comes before the others).
        const before = k === 0 ? [] : [entries[0], "not json", ...entries.slice(0, k - 1)]
        const end = before.reduce((n: number, x) =>
          n + Buffer.byteLength(typeof x === "string" ? x : JSON.stringify(x)) + 1, 0) +
          Buffer.byteLength(JSON.stringify(e))
        return end <= cut
      })
      const notJsonEnd = Buffer.byteLength(JSON.stringify(entries[0])) + 1 + "not json".length
      expect(seen, `cut at byte ${cut}`).toEqual(expected)
      expect(read.torn, `cut at byte ${cut}`).toBe(cut > 0 && bytes[cut - 1] !== 0x0a)
      // The bad line counts once its line end is there (before, it may be a line cut short).
      expect(read.skipped, `cut at byte ${cut}`).toBe(cut > notJsonEnd ? 1 : 0)
      // A piece of a line: the file ends mid-line in a line that is no entry (a whole entry there is not one).
      const endsInEntry = expected.length > 0 && bytes.subarray(0, cut).toString("utf8").endsWith(
        JSON.stringify(expected.at(-1))
      )
      expect(read.fragment, `cut at byte ${cut}`).toBe(read.torn && !endsInEntry)
    }
    expect(await run(readLogEntries(join(tmp(), "none.jsonl"), Entry, () => undefined))).toEqual({
      skipped: 0,
      named: [],
      torn: false,
      fragment: false
    })
  })

  it("names the lines it skips, 1-based, with why (not JSON, a field refused); a torn last line is not named", async () => {
    const file = join(tmp(), "named.jsonl")
    const good = JSON.stringify(entries[0])
    const text = [good, "", "{\"i\": 1, \"te", good, "{\"i\":\"x\",\"text\":\"y\"}", good, "{\"i\": 2"].join("\n")
    writeFileSync(file, text)
    const read = await run(readLogEntries(file, Entry, () => undefined))
    expect(read).toEqual({
      skipped: 2,
      named: [
        { line: 3, reason: "not JSON (Unterminated string in JSON at position 12)" },
        { line: 5, reason: "i: must be a number, got \"x\"" }
      ],
      torn: true,
      fragment: true
    })
    // With its line end, the last line is damage like any other.
    writeFileSync(file, text + "\n")
    expect((await run(readLogEntries(file, Entry, () => undefined))).named.map((n) => n.line)).toEqual([3, 5, 7])
    // Past NAMED_LINES, the lines are counted, not named.
    writeFileSync(file, Array.from({ length: NAMED_LINES + 3 }, () => "x").join("\n") + "\n")
    const many = await run(readLogEntries(file, Entry, () => undefined))
    expect(many.skipped).toBe(NAMED_LINES + 3)
    expect(many.named.map((n) => n.line)).toEqual(Array.from({ length: NAMED_LINES }, (_, i) => i + 1))
  })
})
