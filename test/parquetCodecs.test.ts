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
