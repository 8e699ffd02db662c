/**
 * The Parquet compression codecs hyparquet does not decode itself (it reads UNCOMPRESSED and SNAPPY): GZIP
 * and BROTLI with Node's zlib, ZSTD with fzstd (Node 20's zlib has no zstd), LZ4_RAW and the deprecated LZ4
 * (Hadoop-framed blocks, or one bare block) here. Polars writes ZSTD by default; pyarrow writes any of them
 * when asked (`compression="lz4"` is LZ4_RAW). LZO is not read. Part of the Parquet module, so loaded only
 * when a `.parquet` path is read or written.
 *
 * Each decoder is given a page's bytes and the page header's uncompressed size, and returns exactly that many
 * bytes or throws an Error saying which codec found the page damaged (zlib's and fzstd's own errors carry a
 * `code`, which Storage would take for a file-system error: they are rethrown as plain Errors). No decoder
 * builds more than the page's size: a page that decompresses to more is refused as soon as it does.
 */
import { Decompress as ZstdDecompress } from "fzstd"
import type { CompressionCodec, Compressors } from "hyparquet"
import { brotliDecompressSync, gunzipSync } from "node:zlib"

const damaged = (codec: CompressionCodec, why: string) => new Error(`a ${codec} data page is damaged (${why})`)

/** Runs a decoder; its result must be the page's size. */
const decoding =
  (codec: CompressionCodec, decode: (input: Uint8Array, length: number) => Uint8Array) =>
  (input: Uint8Array, length: number): Uint8Array => {
    let out: Uint8Array
    try {
      out = decode(input, length)
    } catch (e) {
      throw damaged(codec, e instanceof Error ? e.message : String(e))
    }
    if (out.length !== length) {
      throw damaged(codec, `it decompresses to ${out.length} bytes, where its header says ${length}`)
    }
    return out
  }

/**
 * Decodes one LZ4 block (https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md) into `output` from
 * `at`; returns the index after the last byte written. Throws on a block that reads or writes out of bounds.
 */
const lz4Block = (input: Uint8Array, output: Uint8Array, at: number): number => {
  let i = 0
  let o = at
  const length = (n: number): number => {
    if (n !== 15) return n
    let byte: number
    do {
      if (i >= input.length) throw new Error("a length runs past the block's end")
      byte = input[i++]
      n += byte
    } while (byte === 255)
    return n
  }
  while (i < input.length) {
    const token = input[i++]
    const literals = length(token >> 4)
    if (i + literals > input.length || o + literals > output.length) {
      throw new Error("literals run past the block's or the page's end")
    }
    output.set(input.subarray(i, i + literals), o)
    i += literals
    o += literals
    if (i === input.length) break // the last sequence has literals only
    if (i + 2 > input.length) throw new Error("a match offset runs past the block's end")
    const offset = input[i] | (input[i + 1] << 8)
    i += 2
    if (offset === 0 || offset > o - at) throw new Error(`a match offset (${offset}) points before the block's start`)
    const match = length(token & 15) + 4
    if (o + match > output.length) throw new Error("a match runs past the page's end")
    // Byte by byte: a match may overlap what it copies (offset < length repeats it).
    for (let from = o - offset, end = o + match; o < end;) output[o++] = output[from++]
  }
  return o
}

const lz4Raw = (input: Uint8Array, length: number): Uint8Array => {
  const output = new Uint8Array(length)
  return output.subarray(0, lz4Block(input, output, 0))
}

/**
 * The deprecated LZ4 codec: parquet-mr (and Arrow 1-7) wrote Hadoop framing (big-endian uncompressed size,
 * compressed size, then the block, repeated); older Arrow wrote a bare block. Read as Arrow does: Hadoop
 * framing when the sizes add up, else one bare block.
 */
const lz4Hadoop = (input: Uint8Array, length: number): Uint8Array => {
  const output = new Uint8Array(length)
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength)
  let i = 0
  let o = 0
  try {
    while (i + 8 <= input.length) {
      const size = view.getUint32(i)
      const compressed = view.getUint32(i + 4)
      i += 8
      if (compressed > input.length - i || size > length - o) throw new Error("not Hadoop-framed")
      if (lz4Block(input.subarray(i, i + compressed), output, o) !== o + size) throw new Error("not Hadoop-framed")
      i += compressed
      o += size
    }
    if (i === input.length && input.length > 0) return output.subarray(0, o)
  } catch {
    // A bare block, below.
  }
  return lz4Raw(input, length)
}

/**
 * The content size the first zstd frame's header declares (RFC 8878 3.1.1.1), when it declares one; fzstd
 * would allocate that much up front for a single-segment frame.
 */
const zstdContentSize = (input: Uint8Array): number | undefined => {
  if (input.length < 6 || input[0] !== 0x28 || input[1] !== 0xb5 || input[2] !== 0x2f || input[3] !== 0xfd) {
    return undefined
  }
  const descriptor = input[4]
  const flag = descriptor >> 6
  const singleSegment = (descriptor >> 5) & 1
  const bytes = flag ? 1 << flag : singleSegment
  if (bytes === 0) return undefined
  const at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 3]
  if (at + bytes > input.length) return undefined
  let size = 0
  for (let i = bytes - 1; i >= 0; i--) size = size * 256 + input[at + i]
  return flag === 1 ? size + 256 : size
}

/**
 * ZSTD through fzstd's stream decoder, block by block (at most 128 KiB each) into a page-sized buffer,
 * stopping at the first block past the page's size: a small frame can expand to gigabytes (a 48 KB frame
 * of 1.5 GB of zeros), which `decompress` would build in full before its size could be checked. The stream
 * decoder moves its window once a block: as fast for a 64 MiB page of zstd -3 (0.99 s), slower only for a
 * window as large as the page (64 MiB, `--ultra -22`: 4.7 s, `decompress` 1.9 s).
 */
const zstd = (input: Uint8Array, length: number): Uint8Array => {
  const declared = zstdContentSize(input)
  if (declared !== undefined && declared > length) {
    throw new Error(`its frame says it decompresses to ${declared} bytes, where its header says ${length}`)
  }
  const output = new Uint8Array(length)
  let written = 0
  const stream = new ZstdDecompress((chunk) => {
    if (chunk.length > length - written) {
      throw new Error(`it decompresses to more than ${length} bytes, where its header says ${length}`)
    }
    output.set(chunk, written)
    written += chunk.length
  })
  stream.push(input, true)
  return output.subarray(0, written)
}

/** What `parquetReadObjects` is given as `compressors`. */
export const compressors: Compressors = {
  GZIP: decoding("GZIP", (input, length) => gunzipSync(input, { maxOutputLength: Math.max(length, 1) })),
  BROTLI: decoding("BROTLI", (input, length) => brotliDecompressSync(input, { maxOutputLength: Math.max(length, 1) })),
  ZSTD: decoding("ZSTD", zstd),
  LZ4_RAW: decoding("LZ4_RAW", lz4Raw),
  LZ4: decoding("LZ4", lz4Hadoop)
}
