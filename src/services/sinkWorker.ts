/**
 * The disk side of a large `ByteSink` (./Storage.ts) on a worker thread: the appends to the file, their
 * CRC-32, the periodic data sync and the read-back (and CRC-32) of each synced region. Writing the hundreds
 * of megabytes of a large dataset cost the main thread two CRC-32 passes over every byte (what is written,
 * and what is read back) besides the calls themselves: ~10% of `convert`'s time. The main thread only fills
 * byte buffers (shared memory) and hands them over; the worker gives each back once written.
 *
 * The worker is a few lines of plain JavaScript (no bundle to load: it starts in a few tens of ms), run with
 * `eval`. Protocol (messages, in order):
 *   main → worker  { start: { bytes, crc, unsynced, readBack } }   the state of what the main thread wrote
 *                  { write: id, buffer, offset, length }          buffer: an ArrayBuffer moved here (or a copy)
 *                  { finish: true } | { close: true }             then the worker ends (finish: after a
                                                                 last sync and read-back of the rest)
 *   worker → main  { ready: true }   { done: id, buffer }             buffer: the memory moved back
 *                  { error: { message, code, wrote?, of? } }      wrote / of: where a write stopped in the file
 *                  { result: { bytes, crc, readBack } }           after finish, once everything settled
 */
import { Worker } from "node:worker_threads"
import { writeStopped } from "./diskWrites.js"

/** The worker's program (CommonJS, run with `eval`: it cannot import skyrl's modules). */
const SOURCE = String.raw`"use strict"
const { parentPort, workerData } = require("node:worker_threads")
const fs = require("node:fs")
const { crc32 } = require("node:zlib")
const { fd, syncEvery } = workerData
const readBuffer = Buffer.allocUnsafe(1 << 20)
let bytes = 0
let crc = 0
let unsynced = 0
let readBack = { bytes: 0, crc: 0 }
let writing = Promise.resolve()
let syncing = Promise.resolve()
let reading = Promise.resolve()
let failure
const fail = (e) => {
  if (failure !== undefined) return
  failure = e
  const where = e && typeof e.wrote === "number" ? { wrote: e.wrote, of: e.of } : {}
  parentPort.postMessage({ error: { message: String(e && e.message || e), code: e && e.code, ...where } })
}
const call = (f, ...args) => new Promise((resolve, reject) => f(...args, (e, r) => (e ? reject(e) : resolve(r))))
// Every byte (a short write is followed by more); a write that stops says where in the file (before: its length
// before view), for the main thread's message (writeStopped in ./diskWrites.ts).
const writeAll = async (view, before) => {
  for (let done = 0; done < view.length;) {
    const where = { wrote: before + done, of: before + view.length }
    let n
    try {
      n = await call(fs.write, fd, view, done, view.length - done, null)
    } catch (e) {
      throw Object.assign(e, where)
    }
    if (n === 0) throw Object.assign(new Error("a write wrote nothing"), where)
    done += n
  }
}
const readBackTo = (end) => (reading = reading.then(async () => {
  if (failure !== undefined) return
  let at = readBack.bytes
  let c = readBack.crc
  while (at < end) {
    const n = await call(fs.read, fd, readBuffer, 0, Math.min(readBuffer.length, end - at), at)
    if (n === 0) break
    c = crc32(readBuffer.subarray(0, n), c)
    at += n
  }
  readBack = { bytes: at, crc: c }
  if (at < end) throw new Error("the file read back ends at byte " + at + ", before the " + end + " bytes written")
}))
const write = (m) => {
  const view = m.buffer instanceof ArrayBuffer ? new Uint8Array(m.buffer, m.offset, m.length) : m.buffer
  const owned = m.buffer instanceof ArrayBuffer ? [m.buffer] : []
  crc = crc32(view, crc)
  bytes += view.length
  unsynced += view.length
  const sync = unsynced >= syncEvery
  if (sync) unsynced = 0
  const end = bytes
  writing = writing.then(async () => {
    if (failure === undefined) await writeAll(view, end - view.length)
    parentPort.postMessage({ done: m.write, buffer: owned[0] }, owned)
    if (sync && failure === undefined) {
      const synced = call(fs.fdatasync, fd).then(() => readBackTo(end)).catch(fail)
      syncing = Promise.all([syncing, synced])
    }
  }).catch((e) => {
    fail(e)
    parentPort.postMessage({ done: m.write, buffer: owned[0] }, owned)
  })
}
const settle = async () => {
  await writing
  await syncing
  await reading.catch(fail)
}
parentPort.on("message", (m) => {
  if (m.start !== undefined) {
    ;({ bytes, crc, unsynced, readBack } = m.start)
  } else if (m.write !== undefined) write(m)
  else if (m.finish !== undefined) {
    // The rest synced and read back here too: the caller's own read-back after its fsync finds nothing left.
    settle().then(() => failure === undefined && call(fs.fdatasync, fd).then(() => readBackTo(bytes))).catch(fail).then(() => {
      if (failure === undefined) parentPort.postMessage({ result: { bytes, crc, readBack } })
      parentPort.close()
    })
  } else if (m.close !== undefined) settle().then(() => parentPort.close())
})
parentPort.postMessage({ ready: true })
`

/** The worker's error as the main thread reports it: a write that stopped says its cause and where. */
const workerError = (e: { message: string; code?: unknown; wrote?: unknown; of?: unknown }): Error => {
  const error = Object.assign(new Error(e.message), { code: e.code })
  return typeof e.wrote === "number" && typeof e.of === "number" ? writeStopped(error, e.wrote, e.of) : error
}

/** What the worker reports at the end: the bytes written, their CRC-32, and the prefix read back. */
export interface OffloadResult {
  readonly bytes: number
  readonly crc: number
  readonly readBack: { readonly bytes: number; readonly crc: number }
}

interface Handlers {
  /** The worker has started: buffers may go to it. */
  readonly ready: () => void
  /** Buffer `id` is written (or will never be): its memory comes back when it was handed over. */
  readonly done: (id: number, buffer: ArrayBuffer | undefined) => void
  readonly failed: (error: Error) => void
}

/** The main thread's side of the worker. */
export class SinkWorker {
  private readonly worker: Worker
  private readonly exited: Promise<void>
  private result: ((r: OffloadResult) => void) | undefined
  private ended = false
  /** Messages held while the state to start from is not known yet (`start`). */
  private held: Array<object> | undefined

  constructor(fd: number, syncEvery: number, private readonly on: Handlers) {
    this.worker = new Worker(SOURCE, { eval: true, workerData: { fd, syncEvery } })
    this.exited = new Promise((resolve) => this.worker.once("exit", () => resolve()))
    this.worker.on("message", (m: Record<string, any>) => {
      if (m.done !== undefined) this.on.done(m.done as number, m.buffer as ArrayBuffer | undefined)
      else if (m.ready !== undefined) this.on.ready()
      else if (m.result !== undefined) this.result?.(m.result as OffloadResult)
      else if (m.error !== undefined) this.on.failed(workerError(m.error))
    })
    this.worker.on("error", (e) => this.on.failed(e))
  }

  /** The state the worker continues from (posted once `state` resolves: writes posted meanwhile wait). */
  start(state: Promise<OffloadResult & { readonly unsynced: number }>): void {
    const held: Array<object> = []
    this.held = held
    const release = (first: Array<object>) => {
      this.held = undefined
      for (const m of [...first, ...held]) {
        const memory = (m as { readonly buffer?: unknown }).buffer
        this.worker.postMessage(m, memory instanceof ArrayBuffer ? [memory] : [])
      }
    }
    state.then((s) => release([{ start: s }]), (e: unknown) => {
      this.on.failed(e as Error)
      held.splice(0, held.length, ...held.filter((m) => !("write" in m)))
      release([])
    })
  }

  private post(message: object): void {
    if (this.held !== undefined) this.held.push(message)
    else this.worker.postMessage(message)
  }

  /**
   * Writes `bytes` after those before. With `handOver`, the memory of `bytes` (the whole ArrayBuffer) moves to
   * the worker, which gives it back with `done`; without, the bytes are copied.
   */
  write(id: number, bytes: Uint8Array, handOver: boolean): void {
    if (!handOver) return this.post({ write: id, buffer: bytes })
    const message = { write: id, buffer: bytes.buffer, offset: bytes.byteOffset, length: bytes.length }
    if (this.held !== undefined) this.held.push(message)
    else this.worker.postMessage(message, [bytes.buffer as ArrayBuffer])
  }

  /** Everything written, synced and read back: the totals (undefined after a failure, reported apart). */
  async finish(): Promise<OffloadResult | undefined> {
    let result: OffloadResult | undefined
    this.result = (r) => void (result = r)
    this.end({ finish: true })
    await this.exited
    return result
  }

  /** Stops a worker that was never given the file (`start`): nothing of it to wait for. */
  stop(): Promise<void> {
    this.ended = true
    return this.worker.terminate().then(() => undefined)
  }

  /** Ends the worker once what it was given is settled (no result). */
  close(): Promise<void> {
    this.end({ close: true })
    return this.exited
  }

  private end(message: object): void {
    if (this.ended) return
    this.ended = true
    this.post(message)
  }
}
