/**
 * Parquet files compressed with each codec pyarrow writes (ZSTD — Polars' default —, GZIP, BROTLI, LZ4_RAW,
 * and ZSTD in version 2 data pages) read to the rows of the JSON Lines file they were made from. The files
 * are made by pyarrow (test/fixtures/parquet-codecs/README.md), not by skyrl. Before the codecs were given
 * to hyparquet each failed: "not a readable Parquet file: parquet unsupported compression codec: ZSTD".
 */
import { Chunk, Effect, Either, Stream } from "effect"
import { asyncBufferFromFile, parquetMetadataAsync } from "hyparquet"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { compressors } from "../src/services/parquetCodecs.js"
import { Storage, StorageLive } from "../src/services/Storage.js"

const FIXTURES = join(import.meta.dirname, "fixtures")
const source = readFileSync(join(FIXTURES, "old-way", "generate-replay.jsonl"), "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line))

const readRows = (file: string) =>
  Effect.runPromise(
    Effect.provide(
      Effect.flatMap(Storage, (s) => Stream.runCollect(s.readRows(file)).pipe(Effect.map(Chunk.toArray))),
      StorageLive
    )
  )

describe("Parquet compression codecs", () => {
  for (const codec of ["zstd", "zstd-v2", "gzip", "brotli", "lz4"]) {
    it(`a pyarrow ${codec} file reads to the rows of its JSON Lines source`, async () => {
      const rows = await readRows(join(FIXTURES, "parquet-codecs", `rows.${codec}.parquet`))
      expect(rows.map((r) => r.index)).toEqual(source.map((_, i) => i))
      expect(rows.map((r) => r.value)).toEqual(source)
    })
  }

  it("a damaged ZSTD page is an input error naming the codec, not the decoder's own error", async () => {
    const file = join(FIXTURES, "parquet-codecs", "rows.zstd.parquet")
    const metadata = await parquetMetadataAsync(await asyncBufferFromFile(file))
    const column = metadata.row_groups[0].columns.find((c) =>
      c.meta_data!.path_in_schema.join(".") === "prompt.list.element.content"
    )!.meta_data!
    // Bytes near the end of the column's last page: compressed data, not its page header.
    const bytes = readFileSync(file)
    const end = Number(column.data_page_offset) + Number(column.total_compressed_size) - 1
    for (let i = end - 40; i < end - 20; i++) bytes[i] ^= 0x5a
    const damaged = join(mkdtempSync(join(tmpdir(), "skyrl-pq-codec-")), "damaged.parquet")
    writeFileSync(damaged, bytes)
    const read = await Effect.runPromise(Effect.either(Effect.provide(
      Effect.flatMap(Storage, (s) => Stream.runDrain(s.readRows(damaged))),
      StorageLive
    )))
    expect(Either.isLeft(read) && read.left.reason).toMatch(
      /^not a readable Parquet file: a ZSTD data page is damaged \(/
    )
  })

  it("an empty .parquet file is said to be empty (it was 'damaged ... Offset is outside the bounds of the DataView')", async () => {
    const empty = join(mkdtempSync(join(tmpdir(), "skyrl-pq-codec-")), "empty.parquet")
    writeFileSync(empty, "")
    const read = await Effect.runPromise(Effect.either(Effect.provide(
      Effect.flatMap(Storage, (s) => Stream.runDrain(s.readRows(empty))),
      StorageLive
    )))
    expect(Either.isLeft(read) && [read.left.file, read.left.reason]).toEqual([
      empty,
      "not a Parquet file: it is empty"
    ])
  })

  it("ZSTD: a page that decompresses to far more than its size is refused at once, not built first", () => {
    // A zstd frame built by hand (RFC 8878) of RLE blocks of 128 KiB of zeros, as the zstd CLI writes zeros:
    // 512 blocks are 64 MiB from 2 KB (`zstd -dc | wc -c` says 67108864), with or without a declared size.
    const frame = (blocks: number, declared?: number) => {
      const header = declared === undefined
        ? [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58] // magic, no content size, a 2 MiB window
        : [0x28, 0xb5, 0x2f, 0xfd, 0x80, 0x58, ...[0, 8, 16, 24].map((s) => (declared >>> s) & 255)]
      const bytes = new Uint8Array(header.length + blocks * 4)
      bytes.set(header)
      for (let b = 0; b < blocks; b++) {
        // Block header: last-block bit, type 1 (RLE), size 128 KiB; then the byte repeated.
        const h = (131072 << 3) | (1 << 1) | (b === blocks - 1 ? 1 : 0)
        bytes.set([h & 255, (h >>> 8) & 255, (h >>> 16) & 255, 0], header.length + b * 4)
      }
      return bytes
    }
    // Before, fzstd built all 64 MiB (0.7 s, 130 MiB of ArrayBuffers) before its size was checked; a 48 KB
    // frame of 1.5 GB took 23 s and 3 GB.
    for (
      const [bomb, why] of [
        [
          frame(512),
          /^a ZSTD data page is damaged \(it decompresses to more than 100 bytes, where its header says 100\)$/
        ],
        [
          frame(512, 64 * 2 ** 20),
          /^a ZSTD data page is damaged \(its frame says it decompresses to 67108864 bytes, where/
        ]
      ] as const
    ) {
      const arrayBuffers = process.memoryUsage().arrayBuffers
      const start = performance.now()
      expect(() => compressors.ZSTD!(bomb, 100)).toThrow(why)
      expect(performance.now() - start).toBeLessThan(1000) // ~5 ms here; the bound leaves room for a loaded machine (the memory bound below is the sharp one)
      expect(process.memoryUsage().arrayBuffers - arrayBuffers).toBeLessThan(16 * 2 ** 20)
    }
    // Such a frame is read when the page's size says what it decompresses to (1 MiB here), declared or not.
    for (const good of [frame(8), frame(8, 2 ** 20)]) {
      expect(Buffer.from(compressors.ZSTD!(good, 2 ** 20)).equals(Buffer.alloc(2 ** 20))).toBe(true)
      expect(() => compressors.ZSTD!(good, 2 ** 20 + 1)).toThrow(
        /it decompresses to 1048576 bytes, where its header says 1048577/
      )
    }
  })

  it("LZ4: a bare block and Hadoop-framed blocks, with a match overlapping what it copies", () => {
    // "abcabcabcabcX": literals "abc", a match of 9 at offset 3, then the last literals "X".
    const block = Uint8Array.of(0x35, 0x61, 0x62, 0x63, 3, 0, 0x10, 0x58)
    const text = "abcabcabcabcX"
    const decoded = (bytes: Uint8Array) => new TextDecoder().decode(bytes)
    expect(decoded(compressors.LZ4_RAW!(block, 13))).toBe(text)
    expect(decoded(compressors.LZ4!(block, 13))).toBe(text)
    // Hadoop framing: two frames, each (uncompressed size, compressed size) big-endian, then the block.
    const frame = (b: Uint8Array, size: number) => Uint8Array.of(0, 0, 0, size, 0, 0, 0, b.length, ...b)
    expect(decoded(compressors.LZ4!(Uint8Array.of(...frame(block, 13), ...frame(block, 13)), 26))).toBe(text + text)
    expect(() => compressors.LZ4_RAW!(Uint8Array.of(0x10, 0x61, 9, 0), 5)).toThrow(/LZ4_RAW data page is damaged/)
  })
})
