/**
 * Writing every byte, and saying why a write stopped. One `write` call may write less than asked without an
 * error (a disk filling up, the process's file size limit): the rest goes in further calls, and the call after
 * a short one is the one that fails with the cause (ENOSPC, EFBIG, EDQUOT). Taking a short write as done left a
 * file shorter than what was written, found later by a read-back that could not say why (`the file read back
 * (8192 bytes, ...) is not what was written (268340 bytes, ...)`), or not at all (a Parquet file without its
 * footer). Shared by Storage's writers, the Parquet writer and the message of the sink's worker
 * (./sinkWorker.ts, whose program cannot import this module: it sends the error's code and where it stopped).
 */

/** The causes a write into a file meets when the file cannot grow, as a person would say them. */
const CAUSES: Readonly<Record<string, string>> = {
  ENOSPC: "no space left on device",
  EFBIG: "file too large for the process's file size limit (ulimit -f) or the file system",
  EDQUOT: "disk quota exceeded"
}

/**
 * The error of a write that stopped after `wrote` of the `of` bytes of the file it was writing: its cause (an
 * errno's text; `cause` undefined: a write that wrote nothing), and where it stopped, e.g. `no space left on
 * device (wrote 8192 of 268340 bytes)`. Keeps the cause's `code`.
 */
export const writeStopped = (cause: unknown, wrote: number, of: number): Error => {
  const code = (cause as { readonly code?: unknown } | undefined)?.code
  const text = typeof code === "string" && CAUSES[code] !== undefined
    ? CAUSES[code]
    : cause === undefined
    ? "a write wrote nothing"
    : cause instanceof Error
    ? cause.message
    : String(cause)
  return Object.assign(new Error(`${text} (wrote ${wrote} of ${of} bytes)`), { code })
}

/** What one write call reports having written: `bytesWritten` (a file handle's), else all of it. */
const writtenBy = (result: unknown, asked: number): number => {
  const n = (result as { readonly bytesWritten?: unknown } | null | undefined)?.bytesWritten
  return typeof n === "number" ? n : asked
}

/**
 * Writes all of `data` through `target.write` (appends: each call writes at the file's position), the rest of
 * a short write as a view of the same bytes (no copy). `before` is the file's length before `data`, so a write
 * that stops says where in the file (`writeStopped`).
 */
export const writeAll = async (
  target: { readonly write: (bytes: Uint8Array) => Promise<unknown> },
  data: string | Uint8Array,
  before = 0
): Promise<void> => {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data
  let done = 0
  while (done < bytes.length) {
    let n: number
    try {
      n = writtenBy(await target.write(done === 0 ? bytes : bytes.subarray(done)), bytes.length - done)
    } catch (e) {
      throw writeStopped(e, before + done, before + bytes.length)
    }
    if (n === 0) throw writeStopped(undefined, before + done, before + bytes.length)
    done += n
  }
}
