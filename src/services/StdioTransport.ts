/**
 * The stdio transport of McpClient: the SDK's StdioClientTransport (same spawn, environment, stderr pipe,
 * close sequence and errors; see node_modules/@modelcontextprotocol/sdk/dist/esm/client/stdio.js), plus a
 * direct lane for tools/call (`call`).
 *
 * The SDK's path for one call parses the answer's line with zod (JSONRPCMessageSchema), tells responses
 * from requests with three more zod parses, keeps the request in four maps with a timer, and parses the
 * result with zod (CallToolResultSchema): most of a bare client's CPU per call and ~18 KB of allocation.
 * The direct lane sends the request itself (ids from DIRECT_IDS up, apart from the SDK's, which count
 * from 0), and takes its answer off the line before the SDK sees it: JSON.parse, a response of the usual
 * shape checked by hand, and a result given as is when it is in a subset that CallToolResultSchema
 * gives back unchanged (`plainCallResult`, held equal to the schema by test/stdioTransport.test.ts);
 * anything else goes through the SDK's own parsing, so the outcome is what `Client.callTool` gives
 * (for a client that never listed tools: no output-schema or task checks apply). Timeouts (each call's from
 * when the call sent before it ended, see `call`) and a closed connection fail the call with the SDK's
 * McpErrors (RequestTimeout, after sending notifications/cancelled as the SDK does; ConnectionClosed). Every
 * other message (initialize, tools/list, the server's own requests and notifications) goes to the SDK's
 * Protocol as before.
 *
 * Where the SDK would wait for the call's timeout, the direct lane fails the call at once with an
 * InvalidAnswer: an answer to it that is no JSON-RPC response (`"result": null`, an error without its
 * message: the SDK drops such a line), and an answer longer than `maxBufferSize` (10 MiB by default: the SDK
 * closes the connection, failing every call on it). Such a line is skipped as it comes (memory holds its
 * first and last bytes, where its id is), and the connection goes on; one whose call cannot be told (no id
 * of a direct call at either end) closes the connection as the SDK's would, the calls failing with
 * MessageTooLong.
 *
 * A call that waited out its timeout may be held by a server that answers nothing more (a loop, a deadlock):
 * the transport asks the server for a `ping`, and when nothing comes from it, neither the ping's answer nor any
 * other message, closes the connection (ServerStalled), so that the calls after it do not each wait out their
 * timeout. Any message counts, as a sign that the server works on: a server that takes its requests one at a time
 * answers the ping only after the calls sent before it (see `startProbe`).
 */
import type { StdioServerParameters } from "@modelcontextprotocol/sdk/client/stdio.js"
import { getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js"
import { CallToolResultSchema, ErrorCode, JSONRPCMessageSchema, McpError } from "@modelcontextprotocol/sdk/types.js"
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { PassThrough } from "node:stream"
import { isObject } from "../domain/json.js"
import { callRequestLine, DIRECT_IDS, limitText, MCP_MESSAGE_LIMIT } from "../skyrl/callSize.js"

/**
 * An error the server answered a request with (a JSON-RPC `error` response): its code is the server's, so a server's
 * own -32000 ("backend busy") or -32001 is not the connection closing or the request timing out, which the SDK and
 * this transport report with those codes (McpClient's `callError` tells them apart by this class).
 */
export class ServerErrorAnswer extends McpError {}

/** `pid` and its descendants, from /proc (just `pid` where there is no /proc). */
export const processTree = (pid: number | undefined): Array<number> => {
  if (pid === undefined) return []
  const children = new Map<number, Array<number>>()
  let entries: Array<string>
  try {
    entries = readdirSync("/proc")
  } catch {
    return [pid]
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "latin1")
    } catch {
      continue // exited meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
    const siblings = children.get(ppid)
    if (siblings === undefined) children.set(ppid, [Number(entry)])
    else siblings.push(Number(entry))
  }
  const tree = [pid]
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []))
  return tree
}

const signalAll = (pids: ReadonlyArray<number>, signal: NodeJS.Signals) => {
  for (const pid of new Set(pids)) {
    try {
      process.kill(pid, signal)
    } catch {
      // already gone
    }
  }
}

// The direct lane's first id, its request line and the message limit live with the size check of a step's request.
export { DIRECT_IDS } from "../skyrl/callSize.js"

/** The server answered a direct call with something that is no answer to it: the call fails with it (a protocol error). */
export class InvalidAnswer extends Error {
  override readonly name = "InvalidAnswer"
}

/** The server sent a line over `maxBufferSize` that answers no call we can tell: the connection was closed. */
export class MessageTooLong extends Error {
  override readonly name = "MessageTooLong"
}

/**
 * The server sent nothing, not even the answer to a `ping`, after a call timed out: it is held (a loop, a deadlock)
 * and would hold every later call too, so the connection was closed (the call failing with this one did not hold it).
 */
export class ServerStalled extends Error {
  override readonly name = "ServerStalled"
}

/** What a JSON value is, for a message: `null`, `none` (absent), `an array`, `a string`... */
const kindOf = (v: unknown): string =>
  v === undefined
    ? "none"
    : v === null
    ? "null"
    : Array.isArray(v)
    ? "an array"
    : typeof v === "object"
    ? "an object"
    : `a ${typeof v}`

/**
 * Why a message with the id of a call (and no method) is no JSON-RPC response, as JSONRPCMessageSchema judges
 * it (`issues`: its first issue, when none of these checks says why).
 */
const responseProblem = (m: Record<string, unknown>, issues: () => string): string => {
  if (m.jsonrpc !== "2.0") return `jsonrpc: expected "2.0", got ${kindOf(m.jsonrpc)}`
  const extra = Object.keys(m).find((k) => k !== "jsonrpc" && k !== "id" && k !== "result" && k !== "error")
  if (extra !== undefined) return `the key ${JSON.stringify(extra)}, which a response does not have`
  if ("result" in m && "error" in m) return "both a result and an error"
  if ("result" in m) return isObject(m.result) ? issues() : `result: expected an object, got ${kindOf(m.result)}`
  if (!("error" in m)) return "neither a result nor an error"
  const e = m.error
  if (!isObject(e)) return `error: expected an object, got ${kindOf(e)}`
  if (!Number.isInteger(e.code)) return `error.code: expected an integer, got ${kindOf(e.code)}`
  if (typeof e.message !== "string") return `error.message: expected a string, got ${kindOf(e.message)}`
  return issues()
}

/** The first issues of a zod error, as `path: message; ...` (a result or a message the schema refused). */
export const issuesText = (error: unknown): string => {
  const issues = (error as { issues?: unknown }).issues
  if (!Array.isArray(issues) || issues.length === 0) return String(error)
  const shown = issues.slice(0, 3).map((i: { path?: ReadonlyArray<PropertyKey>; message?: unknown }) => {
    const at = (i.path ?? []).map(String).join(".")
    return `${at === "" ? "" : `${at}: `}${String(i.message)}`
  })
  return shown.join("; ") + (issues.length > 3 ? `; and ${issues.length - 3} more` : "")
}

/**
 * The wait for the answer to the `ping` that learns whether a server is held (StdioTransport.probe): the call's
 * timeout, within these bounds.
 */
const PROBE_MS = 5_000
const PROBE_MIN_MS = 1_000

/** Bytes kept of each end of a line too long to read (its id is at one end: `{"jsonrpc":"2.0","id":N,` or `,"id":N}`). */
const END_BYTES = 256

/**
 * The id of a JSON-RPC message from its first and last bytes: a member `"id": N` right after its opening brace
 * (or after `"jsonrpc": "2.0"`), or right before its closing brace (the last character of the line: no nested
 * object closes after it). Undefined when neither end shows one.
 */
export const idAtEnds = (head: string, tail: string): number | undefined => {
  const first = /^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(\d+)\s*[,}]/.exec(head)
  const last = first === null ? /[{,]\s*"id"\s*:\s*(\d+)\s*\}\s*$/.exec(tail) : null
  const digits = first?.[1] ?? last?.[1]
  return digits === undefined ? undefined : Number(digits)
}

/** Who waits for a direct call: told once, with the raw tools/call result (as CallToolResultSchema gives it) or why not. */
export interface CallWaiter {
  done(error: unknown, result?: Record<string, unknown>): void
}

interface Pending {
  readonly waiter: CallWaiter
  /**
   * When the call times out (performance.now() ms): its timeout after its clock started (`call`); until then its
   * bound, its timeout once for itself and once for each call in flight when it was sent.
   */
  deadline: number
  readonly timeoutMs: number
  /** Its clock started (or it ended before that): the end of the call before it no longer moves its deadline. */
  started: boolean
  /** The call sent next on the connection, while this one is in flight (its clock starts when this one ends). */
  next: Pending | undefined
}

/**
 * A text block of `type` then `text` and no other keys: the schema gives back a block's keys in its own
 * order, without the keys it does not know (those blocks go to it).
 */
const isPlainTextBlock = (b: unknown): boolean => {
  if (!isObject(b) || b.type !== "text" || typeof b.text !== "string") return false
  let keys = 0
  for (const key in b) {
    if (key !== (keys === 0 ? "type" : "text")) return false
    keys++
  }
  return keys === 2
}

/**
 * `result` itself when CallToolResultSchema would give it back with the same content, structuredContent
 * and isError (content absent or text blocks of `type` and `text` only, structuredContent an object,
 * isError a boolean, no `_meta`); undefined when the schema must judge it.
 */
export const plainCallResult = (result: unknown): Record<string, unknown> | undefined => {
  if (!isObject(result) || result._meta !== undefined) return undefined
  const { content, isError, structuredContent } = result
  if (content !== undefined) {
    if (!Array.isArray(content)) return undefined
    for (let i = 0; i < content.length; i++) if (!isPlainTextBlock(content[i])) return undefined
  }
  if (isError !== undefined && typeof isError !== "boolean") return undefined
  if (structuredContent !== undefined) {
    if (!isObject(structuredContent) || Object.hasOwn(structuredContent, "__proto__")) return undefined
  }
  return result
}

/** The result as `Client.callTool` gives it (for a client without listed tools), or its parse error. */
const checkedResult = (
  result: unknown
): { ok: true; value: Record<string, unknown> } | { ok: false; error: unknown } => {
  const plain = plainCallResult(result)
  if (plain !== undefined) return { ok: true, value: plain }
  const parsed = CallToolResultSchema.safeParse(result)
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, error: parsed.error }
}

export class StdioTransport implements Transport {
  onclose?: (() => void) | undefined
  onerror?: ((error: Error) => void) | undefined
  /** How the server's process ended, once it has ("exited with code 3", "was ended by SIGKILL"), for messages. */
  exitedHow: string | undefined
  onmessage?: Transport["onmessage"]

  private process: ChildProcess | undefined
  /** The line being read: its parts so far (no line end in them) and their length. */
  private parts: Array<Buffer> = []
  private partsLength = 0
  /** A line longer than `maxBufferSize` being skipped: its length so far and its first and last bytes. */
  private skipping: { length: number; head: Buffer; tail: Buffer } | undefined
  /** Why the connection was closed from this side (the calls in flight fail with it). */
  private dropped: Error | undefined
  /** The shutdown, once begun (`close`). */
  private closing: Promise<void> | undefined
  /** Direct calls that timed out and were never answered (their ids): the server may still work on them. */
  private readonly expired = new Set<number>()
  /**
   * When the server last sent something (performance.now() ms) while a probe was out or a call that timed out was not
   * answered (`heard`): it began the call it works on no earlier (`startProbe`). Not kept up otherwise.
   */
  private heardAt = -Infinity
  /** The `ping` sent to learn whether the server is held (`startProbe`), and the calls that wait for it. */
  private probe:
    | { readonly id: number; readonly deadline: number; readonly waiting: Array<[number, Pending]> }
    | undefined
  private readonly stderrStream: PassThrough | null
  private readonly maxBufferSize: number
  private readonly pending = new Map<number, Pending>()
  /** The direct call sent last, while it is in flight (`call`: the next call's clock starts when it ends). */
  private last: Pending | undefined
  private nextId = DIRECT_IDS
  /** Requests of direct calls not written yet (see `flushOutgoing`). */
  private outgoing = ""
  /**
   * One timer for every direct call (not one per call): set for the earliest deadline it was armed for
   * (`armedFor`); when it fires, the calls past their deadline time out and it is set for the next one.
   * Cleared when the connection closes.
   */
  private timer: NodeJS.Timeout | undefined
  private armedFor = Infinity

  constructor(private readonly params: StdioServerParameters) {
    this.maxBufferSize = params.maxBufferSize ?? MCP_MESSAGE_LIMIT
    this.stderrStream = params.stderr === "pipe" || params.stderr === "overlapped" ? new PassThrough() : null
  }

  start(): Promise<void> {
    if (this.process !== undefined) {
      return Promise.reject(new Error("StdioTransport already started"))
    }
    return new Promise((resolve, reject) => {
      const child = spawn(this.params.command, this.params.args ?? [], {
        env: { ...getDefaultEnvironment(), ...this.params.env },
        stdio: ["pipe", "pipe", this.params.stderr ?? "inherit"],
        shell: false,
        // A process group of its own (POSIX): Ctrl-C at a terminal signals the whole foreground group, and a
        // server in skyrl's died with it, failing the plans that skyrl lets finish (the graceful stop's, and
        // those with side effects). skyrl ends it itself (close); killed outright, it leaves it its stdin's EOF.
        detached: process.platform !== "win32",
        ...(this.params.cwd === undefined ? {} : { cwd: this.params.cwd })
      })
      this.process = child
      child.on("error", (error) => {
        reject(error)
        this.onerror?.(error)
      })
      child.on("spawn", () => resolve())
      child.on("close", (code: number | null, signal: NodeJS.Signals | null) => {
        this.exitedHow = signal !== null
          ? `was ended by ${signal}`
          : code !== null
          ? `exited with code ${code}`
          : undefined
        this.process = undefined
        this.onclose?.()
        this.failPending(this.dropped ?? McpError.fromError(ErrorCode.ConnectionClosed, "Connection closed"))
      })
      child.stdin?.on("error", (error) => this.onerror?.(error))
      child.stdout?.on("data", (chunk: Buffer) => {
        if (this.probe !== undefined || this.expired.size > 0) this.heard()
        try {
          this.append(chunk)
        } catch (error) {
          this.onerror?.(error as Error)
          this.close().catch(() => {})
        }
      })
      child.stdout?.on("error", (error) => this.onerror?.(error))
      if (this.stderrStream !== null && child.stderr !== null) child.stderr.pipe(this.stderrStream)
    })
  }

  /** The child's stderr (a PassThrough made at once when it is piped, so nothing it writes early is lost). */
  get stderr(): PassThrough | null {
    return this.stderrStream ?? (this.process?.stderr as PassThrough | null | undefined) ?? null
  }

  get pid(): number | null {
    return this.process?.pid ?? null
  }

  /**
   * As the SDK's: stdin ended, then SIGTERM after 2 s and SIGKILL after 2 s more while the child's pipes
   * are open. Unlike the SDK's, the signals go to the child's descendants too: a server started through a
   * launcher (`npx -y ...`, a shell) is the launcher's child, and signalling the launcher alone left it
   * running, holding the pipes (and so skyrl) open until it finished on its own.
   */
  close(): Promise<void> {
    // One shutdown, however many ask for it: a close this transport began itself (a line too long, a server held)
    // is awaited by the caller that closes the session, so that the server is ended before skyrl exits.
    this.closing ??= this.shutDown()
    return this.closing
  }

  private async shutDown(): Promise<void> {
    this.disarm()
    const child = this.process
    if (child !== undefined) {
      this.process = undefined
      let gone = false
      const closed = new Promise<void>((resolve) => child.once("close", () => resolve())).then(() => void (gone = true))
      const wait = () => Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, 2000).unref())])
      // Found before stdin ends: a launcher that exits then leaves its server to init, out of reach.
      const tree = processTree(child.pid)
      try {
        child.stdin?.end()
      } catch {
        // already gone
      }
      // A held server reads nothing more: it is signalled at once.
      if (!this.isStalled) await wait()
      if (!gone) {
        signalAll(tree, "SIGTERM")
        await wait()
      }
      if (!gone) signalAll([...tree, ...processTree(child.pid)], "SIGKILL")
    }
    this.parts = []
    this.partsLength = 0
    this.skipping = undefined
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve) => {
      const stdin = this.process?.stdin
      if (stdin === undefined || stdin === null) throw new Error("Not connected")
      this.flushOutgoing() // the direct calls queued before it go first
      if (stdin.write(JSON.stringify(message) + "\n")) resolve()
      else stdin.once("drain", resolve)
    })
  }

  /**
   * Sends tools/call now; `waiter.done` is called once with its result or its error.
   *
   * The call's `timeoutMs` runs from when it is sent or when the call sent before it on the connection ended
   * (answered, or past its own deadline), whichever is later: the time the server could have spent on it. A server
   * that takes its calls one at a time gets each call's timeout for that call alone, not for the calls queued
   * before it (at concurrency 8, a call behind 7 slow ones waited for them within its own timeout); on a server
   * that takes them together, a call may wait longer than its timeout by at most the calls sent before it.
   */
  call(name: string, args: Readonly<Record<string, unknown>>, timeoutMs: number, waiter: CallWaiter): void {
    const stdin = this.process?.stdin
    if (stdin === undefined || stdin === null) {
      waiter.done(new Error("Not connected"))
      return
    }
    const id = this.nextId++
    const idle = this.pending.size === 0 && this.outgoing === ""
    const before = this.last
    // Sent behind others, it waits for its clock (`ended`) within a bound: whatever happens to the calls before
    // it, it cannot wait more than its timeout once for itself and once for each of them.
    const bound = performance.now() + timeoutMs * (before === undefined ? 1 : this.pending.size + 1)
    const p: Pending = { waiter, deadline: bound, timeoutMs, started: before === undefined, next: undefined }
    this.pending.set(id, p)
    this.last = p
    if (before !== undefined) before.next = p
    if (bound < this.armedFor) this.arm(bound)
    const request = callRequestLine(id, name, args)
    // A server with nothing to do gets the call at once: waiting for the end of the microtasks would leave
    // it idle while the caller finishes its own work (at concurrency 1, the whole of it: the caller's work
    // and the server's then add up instead of overlapping).
    if (idle) stdin.write(request)
    else {
      if (this.outgoing === "") queueMicrotask(this.flushOutgoing)
      this.outgoing += request
    }
  }

  /**
   * Writes the requests queued since the last flush (`call`) in one write. While the server has calls in
   * flight, the calls made in one run of microtasks (e.g. the next calls of all the answers one read
   * brought) reach it together: one syscall and one wake-up of the server for all of them, and the server
   * reads them in one read, instead of one each (bench section 6: ~15 µs of client and ~20 µs of server CPU
   * a row at concurrency 8).
   */
  private readonly flushOutgoing = (): void => {
    const text = this.outgoing
    this.outgoing = ""
    if (text !== "") this.process?.stdin?.write(text)
  }

  /** The call's timeout starts now (`call`), within the bound it was sent with. */
  private startClock(p: Pending, now: number): void {
    p.started = true
    p.deadline = Math.min(p.deadline, now + p.timeoutMs)
    if (p.deadline < this.armedFor) this.arm(p.deadline)
  }

  /**
   * The call `p` was answered, failed or went past its deadline: the clock of the call sent after it starts, when
   * that one is in flight still and its clock has not started.
   */
  private ended(p: Pending): void {
    p.started = true // ended before its clock started: it is not to start now
    const next = p.next
    if (next === undefined) {
      if (this.last === p) this.last = undefined
      return
    }
    p.next = undefined
    if (!next.started) this.startClock(next, performance.now())
  }

  private arm(deadline: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.armedFor = deadline
    this.timer = setTimeout(this.expire, Math.max(0, deadline - performance.now()))
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.armedFor = Infinity
  }

  /**
   * The calls past their deadline wait for the `probe` (started for the first of them), then time out; sets the
   * timer for the earliest deadline left (a call's or the probe's).
   */
  private readonly expire = (): void => {
    this.timer = undefined
    this.armedFor = Infinity
    const now = performance.now()
    if (this.probe !== undefined && this.probe.deadline <= now) return this.stalled()
    let next = this.probe?.deadline ?? Infinity
    for (const [id, p] of [...this.pending]) {
      if (p.deadline > now) {
        if (p.deadline < next) next = p.deadline
        continue
      }
      this.pending.delete(id)
      this.ended(p)
      if (this.probe === undefined) next = Math.min(next, this.startProbe(p.timeoutMs))
      this.probe!.waiting.push([id, p])
    }
    if (next < Infinity) this.arm(next)
  }

  /**
   * Asks the server for a `ping` (MCP's liveness request, which every server answers) once a call has waited
   * out its timeout: when anything comes from the server (`heard`) within the call's timeout, from 1 s to 5 s, the
   * server is alive and the calls waiting for the probe time out as usual; when nothing does, it is held
   * (`stalled`). Its deadline.
   *
   * Not only the ping's answer counts: a server that takes its requests one at a time answers the ping after the
   * calls sent before it, and while those were slow it was found held as it worked on them (4 calls of 1.4 s at a
   * timeout of 1 s: the first ping waited 4.6 s). An answer to any of them, even one that timed out, shows it works;
   * so does one already on its way when the ping was sent (the server was not held then: a call that holds it after
   * that is found by the probe after its own timeout).
   *
   * The wait runs from now, or from the call's timeout after the server last sent something (`heardAt`), whichever
   * is later: a call sent behind one that timed out had its clock started then, but such a server begins it only
   * once it has answered that one, and without this each probe came the more time after the last answer (the time
   * each such call took over its timeout, added up) until one found the server silent for a whole call. A server
   * that sent nothing after the clock of the call it holds started is found held as before, at most one timeout
   * later in any case.
   */
  private startProbe(timeoutMs: number): number {
    const id = this.nextId++
    const start = Math.max(performance.now(), this.heardAt + timeoutMs)
    const deadline = start + Math.max(PROBE_MIN_MS, Math.min(timeoutMs, PROBE_MS))
    this.probe = { id, deadline, waiting: [] }
    this.flushOutgoing()
    this.process?.stdin?.write(`{"jsonrpc":"2.0","id":${id},"method":"ping"}\n`)
    return deadline
  }

  /**
   * Something came from the server while a call that timed out was not answered or a probe was out (before its lines
   * are read): the server works on. A probe ends (`alive`).
   */
  private heard(): void {
    this.heardAt = performance.now()
    if (this.probe !== undefined) this.alive()
  }

  /**
   * The server sent something since the probe's ping (its answer, or any other message): the calls that waited for
   * the probe time out as any call does (and are answered late, if at all: see `receive`).
   */
  private alive(): void {
    const waiting = this.probe!.waiting
    this.probe = undefined
    for (const [id, p] of waiting) this.timedOut(id, p)
  }

  /**
   * The server answered no call in time and sent nothing after the `ping` that followed: it is held (a loop, a
   * deadlock, a call it works on alone), and every later call would wait out its timeout too. The connection is
   * closed (the next call starts the server again). The first call that waited for the probe (the first sent: a
   * server takes its calls in order) holds it and times out (its error's `data.held`), unless a call sent before it
   * timed out and was never answered: that one holds it. The other calls fail with ServerStalled (not answered for
   * want of a server: run them again).
   */
  private stalled(): void {
    const { waiting } = this.probe!
    this.probe = undefined
    this.dropped = new ServerStalled(
      "the server answered no ping after a call before this one timed out (held by that call): it was restarted"
    )
    const [first] = waiting
    let held = false
    if (first !== undefined) {
      for (const id of this.expired) held ||= id < first[0] // ids count up: sent before it
    }
    for (const [, p] of waiting) {
      p.waiter.done(
        p === first?.[1] && !held
          ? McpError.fromError(ErrorCode.RequestTimeout, "Request timed out", { timeout: p.timeoutMs, held: true })
          : this.dropped
      )
    }
    this.close().catch(() => {})
  }

  /** The server was found held (`stalled`): the connection is closing, and no call is to be sent on it. */
  get isStalled(): boolean {
    return this.dropped instanceof ServerStalled
  }

  /** As the SDK's Protocol: the request is cancelled on the server and the call fails with RequestTimeout. */
  private timedOut(id: number, p: Pending): void {
    const timeoutMs = p.timeoutMs
    this.pending.delete(id)
    this.expired.add(id)
    const error = McpError.fromError(ErrorCode.RequestTimeout, "Request timed out", { timeout: timeoutMs })
    this.send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: id, reason: String(error) } })
      .catch((e) => this.onerror?.(new Error(`Failed to send cancellation: ${e}`)))
    p.waiter.done(error)
  }

  private failPending(error: Error): void {
    const pending = [...this.pending.values(), ...(this.probe?.waiting ?? []).map(([, p]) => p)]
    this.pending.clear()
    this.last = undefined
    this.probe = undefined
    this.disarm()
    for (const p of pending) p.waiter.done(error)
  }

  /**
   * Reads the lines of a chunk of the server's output: each whole line is received; the rest is kept for the
   * next chunk (its parts: a line is joined once, when its end comes). A line longer than `maxBufferSize` is
   * skipped as it comes (`tooLong`).
   */
  private append(chunk: Buffer): void {
    let from = 0
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, from)) {
      const start = from
      from = nl + 1
      // The common case: a whole line in the chunk, read where it is.
      if (this.partsLength === 0 && this.skipping === undefined && nl - start <= this.maxBufferSize) {
        this.receiveLine(chunk, start, nl)
        continue
      }
      const piece = chunk.subarray(start, nl)
      if (this.skipping !== undefined) {
        this.skip(piece)
        this.tooLong()
        continue
      }
      this.parts.push(piece)
      const line = Buffer.concat(this.parts, this.partsLength + piece.length)
      this.parts = []
      this.partsLength = 0
      if (line.length > this.maxBufferSize) {
        this.skipping = { length: 0, head: Buffer.alloc(0), tail: Buffer.alloc(0) }
        this.skip(line)
        this.tooLong()
      } else {
        this.receiveLine(line, 0, line.length)
      }
    }
    if (from >= chunk.length) return
    const rest = from === 0 ? chunk : chunk.subarray(from)
    if (this.skipping !== undefined) return this.skip(rest)
    this.parts.push(rest)
    this.partsLength += rest.length
    if (this.partsLength > this.maxBufferSize) {
      const parts = this.parts
      this.parts = []
      this.partsLength = 0
      this.skipping = { length: 0, head: Buffer.alloc(0), tail: Buffer.alloc(0) }
      for (const part of parts) this.skip(part)
    }
  }

  /** The line of `bytes` from `start` to its line end at `nl` (a `\r` before it left out). */
  private receiveLine(bytes: Buffer, start: number, nl: number): void {
    const end = nl > start && bytes[nl - 1] === 13 ? nl - 1 : nl
    try {
      this.receive(bytes.toString("utf8", start, end))
    } catch (error) {
      this.onerror?.(error as Error)
    }
  }

  /** The next bytes of a line too long to read: counted, the first and last END_BYTES kept. */
  private skip(bytes: Buffer): void {
    const s = this.skipping!
    s.length += bytes.length
    if (s.head.length < END_BYTES) s.head = Buffer.concat([s.head, bytes.subarray(0, END_BYTES - s.head.length)])
    s.tail = bytes.length >= END_BYTES
      ? Buffer.from(bytes.subarray(bytes.length - END_BYTES))
      : Buffer.concat([s.tail, bytes]).subarray(-END_BYTES)
  }

  /**
   * The end of a line too long to read: the direct call it answers (its id at either end) fails with an
   * InvalidAnswer, and the connection goes on. A line that answers no call we can tell closes the connection
   * (as the SDK's transport does), its calls failing with MessageTooLong.
   */
  private tooLong(): void {
    const { head, length, tail } = this.skipping!
    this.skipping = undefined
    const id = idAtEnds(head.toString("latin1"), tail.toString("latin1"))
    const limit = limitText(this.maxBufferSize)
    const p = id === undefined ? undefined : this.pending.get(id)
    if (p !== undefined) {
      this.pending.delete(id!)
      this.ended(p)
      p.waiter.done(new InvalidAnswer(`the answer is ${length} bytes long, over ${limit}`))
      return
    }
    this.dropped = new MessageTooLong(
      `the server sent a message of ${length} bytes, over ${limit}, that answers no call it was sent: ` +
        "the connection was closed"
    )
    this.onerror?.(this.dropped)
    this.close().catch(() => {})
  }

  /** One line from the server: a direct call's answer, or a message for the SDK. */
  private receive(line: string): void {
    const raw: unknown = JSON.parse(line)
    if (this.expired.size > 0 && isObject(raw) && typeof raw.id === "number") this.expired.delete(raw.id) // late
    // (A probe out when this line came ended before it was read: `heard`.)
    if (isObject(raw) && typeof raw.id === "number" && this.pending.has(raw.id)) {
      if (plainResponse(raw)) return this.answer(raw.id, raw)
      if (raw.method === undefined) {
        // An answer to the call, checked as the SDK checks it. One the SDK would drop fails the call now.
        const parsed = JSONRPCMessageSchema.safeParse(raw)
        if (!parsed.success) {
          const p = this.pending.get(raw.id)!
          this.pending.delete(raw.id)
          this.ended(p)
          const problem = responseProblem(raw, () => issuesText(parsed.error))
          p.waiter.done(new InvalidAnswer(`the answer is no JSON-RPC response: ${problem}`))
          return
        }
      }
    }
    // A late answer (to a call that timed out, or to a ping): no one waits for it, and the SDK's ids are below ours.
    if (isObject(raw) && typeof raw.id === "number" && raw.id >= DIRECT_IDS && raw.method === undefined) return
    const message = JSONRPCMessageSchema.parse(raw)
    if ("id" in message && typeof message.id === "number" && ("result" in message || "error" in message)) {
      if (this.pending.has(message.id)) {
        this.answer(message.id, message as Record<string, unknown>)
        return
      }
    }
    this.onmessage?.(message)
  }

  private answer(id: number, response: Record<string, unknown>): void {
    const p = this.pending.get(id)!
    this.pending.delete(id)
    this.ended(p)
    if (response.error !== undefined) {
      const e = response.error as { code: number; message: string; data?: unknown }
      p.waiter.done(new ServerErrorAnswer(e.code, e.message, e.data))
      return
    }
    const checked = checkedResult(response.result)
    if (checked.ok) p.waiter.done(undefined, checked.value)
    else p.waiter.done(checked.error)
  }
}

/**
 * A response JSONRPCMessageSchema accepts as it is: `jsonrpc`, `id` and either a result object without
 * `_meta` or an error of an integer code and a string message (and `data`), nothing else.
 */
const plainResponse = (m: Record<string, unknown>): boolean => {
  let keys = 0
  for (const _ in m) keys++
  if (keys !== 3 || m.jsonrpc !== "2.0") return false
  if (m.result !== undefined) return isObject(m.result) && m.result._meta === undefined
  const e = m.error
  if (!isObject(e) || !Number.isInteger(e.code) || typeof e.message !== "string") return false
  let errorKeys = 0
  for (const _ in e) errorKeys++
  return errorKeys === (e.data === undefined ? 2 : 3)
}
