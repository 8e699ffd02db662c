/**
 * McpClient: talks to live MCP servers with the official @modelcontextprotocol/sdk client.
 *
 * - `connect(spec)` opens a session (scoped: the server is closed, or the child process ended, when
 *   the scope closes): stdio servers are spawned (no shell; the child inherits this process's
 *   environment so the servers' API keys reach it — all but OPENAI_API_KEY — plus the spec's `env`) with
 *   the SDK's stdio transport behaviour (src/services/StdioTransport.ts), HTTP servers are reached over
 *   streamable HTTP. The session lists tools (following pagination
 *   cursors) and calls them.
 * - `listServer(spec)` = connect, `initialize` info, every page of `tools/list`, close (`tools import`).
 *
 * `${VAR}` / `${env:VAR}` in a spec's env values and header values are read from this process's
 * environment when the server starts (a variable that is not set fails the start, naming it).
 * A server that fails gives a McpServerError with the tail of its stderr; a call that fails gives a
 * McpCallError saying whether the server answered with a protocol error, took too long, or went away.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import { ErrorCode, ListToolsResultSchema, McpError } from "@modelcontextprotocol/sdk/types.js"
import { Context, Duration, Effect, Either, Layer, Schema } from "effect"
import type * as Scope from "effect/Scope"
import { statSync } from "node:fs"
import type { ServerInfo } from "../domain/inventory.js"
import { MAX_JSON_DEPTH, nestsDeeperThan, tooDeepReason } from "../skyrl/depth.js"
import { resolveReferences } from "../skyrl/serverSpecs.js"
import {
  InvalidAnswer,
  issuesText,
  MessageTooLong,
  ServerErrorAnswer,
  ServerStalled,
  StdioTransport
} from "./StdioTransport.js"

export interface StdioServerSpec {
  readonly _tag: "stdio"
  readonly name: string
  readonly command: string
  /** Values may hold `${VAR}` (replaced at start; messages show the reference, never the value). */
  readonly args: ReadonlyArray<string>
  readonly cwd?: string
  /** Variables set for the child on top of the inherited environment; values may hold `${VAR}`. */
  readonly env?: Readonly<Record<string, string>>
}

export interface HttpServerSpec {
  readonly _tag: "http"
  readonly name: string
  /** May hold `${VAR}` (replaced at start; messages show the reference, never the value). */
  readonly url: string
  /** Request headers; values may hold `${VAR}`. */
  readonly headers?: Readonly<Record<string, string>>
}

export type McpServerSpec = StdioServerSpec | HttpServerSpec

/** A tool as the server lists it (the inventory normalizes it). */
export interface ListedTool {
  readonly name: string
  readonly title?: string | undefined
  readonly description?: string | undefined
  readonly inputSchema: unknown
  readonly outputSchema?: unknown
  readonly annotations?: unknown
}

export interface ListedServer {
  readonly serverInfo: ServerInfo | undefined
  readonly tools: ReadonlyArray<ListedTool>
}

/** What a tool answered (a tool result, `isError` included; protocol errors are McpCallErrors). */
export interface ToolCallResult {
  readonly content: ReadonlyArray<unknown>
  readonly structuredContent: Readonly<Record<string, unknown>> | null
  readonly isError: boolean
}

/** How a server is shown in messages: the command line or the URL. */
export const describeTarget = (spec: McpServerSpec): string =>
  spec._tag === "http" ? spec.url : [spec.command, ...spec.args].join(" ")

/** A server that could not be started, initialized or listed. */
export class McpServerError extends Schema.TaggedError<McpServerError>()("McpServerError", {
  server: Schema.String,
  target: Schema.String,
  reason: Schema.String,
  stderrTail: Schema.optional(Schema.String),
  /** The server did not answer within the time allowed. */
  timedOut: Schema.optional(Schema.Boolean)
}) {
  override get message(): string {
    return `MCP server "${this.server}" (${this.target}): ${this.reason}${formatTail(this.stderrTail)}`
  }
}

/**
 * A tools/call that gave no tool result: `protocol` (the server answered with a JSON-RPC error),
 * `timeout` (no answer in time; the request is cancelled), `connection` (the server went away).
 */
export class McpCallError extends Schema.TaggedError<McpCallError>()("McpCallError", {
  server: Schema.String,
  tool: Schema.String,
  kind: Schema.Literal("protocol", "timeout", "connection"),
  reason: Schema.String
}) {
  override get message(): string {
    return `MCP server "${this.server}", tool "${this.tool}": ${this.reason}`
  }
}

const formatTail = (tail: string | undefined): string =>
  tail === undefined || tail.trim() === ""
    ? ""
    : `\n  stderr (last lines):\n${tail.trimEnd().split("\n").map((l) => `    ${l}`).join("\n")}`

export interface ConnectOptions {
  /** Time allowed for starting and `initialize` (default 30 s). */
  readonly timeout?: Duration.DurationInput
}

export interface ListToolsOptions extends ConnectOptions {
  /** Safety bound on tools/list pages (default 1000). */
  readonly maxPages?: number
}

export interface TimedCallResult {
  readonly result: ToolCallResult
  readonly durationMs: number
}

/** One open connection to a server. */
export interface McpSession {
  readonly server: string
  readonly serverInfo: ServerInfo | undefined
  /** Every page of tools/list. */
  readonly listTools: (maxPages?: number) => Effect.Effect<ReadonlyArray<ListedTool>, McpServerError>
  /**
   * Every page of tools/list, without the SDK keeping the tools' output schemas: later calls are sent and
   * checked as on a connection that never listed (over stdio, the direct lane), e.g. for the annotations.
   * `timeout` bounds the whole listing (a McpServerError with `timedOut` past it).
   */
  readonly listToolsOnly: (timeout: Duration.Duration) => Effect.Effect<ReadonlyArray<ListedTool>, McpServerError>
  /**
   * One tools/call and how long it took (ms), started now: the request is sent before this returns (so the
   * caller's next work overlaps the server's), and the Effect returned waits for its answer (run it once);
   * `timeout` bounds the wait (the request is then cancelled).
   */
  readonly startCall: (
    tool: string,
    params: Readonly<Record<string, unknown>>,
    timeout: Duration.Duration
  ) => Effect.Effect<TimedCallResult, McpCallError>
  /** False once the connection has closed (the server exited or was killed). */
  readonly isOpenNow: () => boolean
  /**
   * The server answered neither a call within its timeout nor the `ping` sent after it: it is held, and the
   * connection was closed (not open from then on). Not a server that went away by itself.
   */
  readonly stalled: () => boolean
  /** Done when no tools/call of this session is in flight (answered, failed or timed out). */
  readonly idle: Effect.Effect<void>
  /** The last lines the server wrote on stderr (stdio servers). */
  readonly stderrTail: Effect.Effect<string>
}

export interface McpClientApi {
  readonly connect: (spec: McpServerSpec, options?: ConnectOptions) => Effect.Effect<
    McpSession,
    McpServerError,
    Scope.Scope
  >
  readonly listServer: (spec: McpServerSpec, options?: ListToolsOptions) => Effect.Effect<ListedServer, McpServerError>
}

export class McpClient extends Context.Tag("skyrl/McpClient")<McpClient, McpClientApi>() {}

const STDERR_TAIL_LINES = 15
const STDERR_BUFFER = 16_384

/**
 * Why a stdio server's `cwd` cannot be started in, or undefined when it is a directory. Node's spawn fails with
 * ENOENT for a missing cwd (the code of a missing command) and ENOTDIR for a file: asked on that failure only.
 */
const cwdProblem = (cwd: string | undefined): string | undefined => {
  if (cwd === undefined) return undefined
  try {
    return statSync(cwd).isDirectory() ? undefined : `its working directory (cwd) ${cwd} is not a directory`
  } catch {
    return `its working directory (cwd) ${cwd} does not exist`
  }
}

/**
 * Why `spec` cannot start here, found without starting it (`verify --dry-run`): a variable its env, args, URL or
 * headers reference is not set (the reason a start gives), or its cwd is not a directory. Undefined: none found.
 */
export const launchProblem = (spec: McpServerSpec): string | undefined => {
  const refs = spec._tag === "http"
    ? [spec.headers ?? {}, { url: spec.url }]
    : [spec.env ?? {}, Object.fromEntries(spec.args.map((a, i) => [String(i), a]))]
  for (const values of refs) {
    const resolved = resolveReferences(values, process.env)
    if (Either.isLeft(resolved)) return resolved.left
  }
  return spec._tag === "stdio" ? cwdProblem(spec.cwd) : undefined
}

/** How a stdio server's process ended, when it has (StdioTransport.exitedHow). */
const endedOf = (wire: Wire): string | undefined =>
  wire.transport instanceof StdioTransport ? wire.transport.exitedHow : undefined

const errorText = (e: unknown, cwd?: string, ended?: string): string => {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === "ENOENT" || code === "ENOTDIR") {
      const problem = cwdProblem(cwd)
      if (problem !== undefined) return `cannot start: ${problem}`
    }
    if (code === "ENOENT") return `cannot start: command not found (${e.message})`
    // The SDK's zod schema refused an answer (initialize, tools/list): one line naming where, not zod's JSON.
    if (isZodError(e)) return `the answer is not valid MCP: ${issuesText(e)}`
    if (code === "EACCES") return `cannot start: permission denied (${e.message})`
    if (/Connection closed/i.test(e.message)) {
      return ended === undefined
        ? `the server closed the connection before answering; it probably exited (${e.message})`
        : `the server closed the connection before answering: it ${ended} (${e.message})`
    }
    // fetch's "fetch failed" (streamable HTTP) keeps the reason in its cause: ECONNREFUSED, ENOTFOUND, ...
    const cause = (e as { cause?: unknown }).cause
    return cause instanceof Error && !e.message.includes(cause.message) ? `${e.message} (${cause.message})` : e.message
  }
  return String(e)
}

/** This process's environment for a spawned server, less skyrl's own OpenAI key (servers have their own). */
const childEnvironment = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "OPENAI_API_KEY") env[k] = v
  return env
}

/** Characters kept of each line of a stderr tail (a server's log lines may be long: a JSON record, a flood). */
const STDERR_LINE_CHARS = 300

/** A line of a stderr tail, cut at STDERR_LINE_CHARS (never between the halves of a surrogate pair). */
const cutLine = (line: string): string => {
  if (line.length <= STDERR_LINE_CHARS) return line
  const high = line.charCodeAt(STDERR_LINE_CHARS - 1)
  const end = high >= 0xd800 && high <= 0xdbff ? STDERR_LINE_CHARS - 1 : STDERR_LINE_CHARS
  return `${line.slice(0, end)}... (${line.length - end} more characters)`
}

const tailOf = (text: string): string => text.trimEnd().split("\n").slice(-STDERR_TAIL_LINES).map(cutLine).join("\n")

const toListedTool = (t: Record<string, unknown>): ListedTool => ({
  name: String(t.name),
  ...(typeof t.title === "string" ? { title: t.title } : {}),
  ...(typeof t.description === "string" ? { description: t.description } : {}),
  inputSchema: t.inputSchema,
  ...(t.outputSchema === undefined ? {} : { outputSchema: t.outputSchema }),
  ...(t.annotations === undefined ? {} : { annotations: t.annotations })
})

/** One page of tools/list as a plain request (the SDK's `listTools` would keep the output schemas). */
const plainListPage = (client: Client, timeoutMs: number) => (params: { cursor?: string }) =>
  client.request({ method: "tools/list", params }, ListToolsResultSchema, { timeout: timeoutMs })

const listAllPages = async (
  client: Client,
  maxPages: number,
  listPage: (params: { cursor?: string }) => Promise<{ tools: Array<unknown>; nextCursor?: string | undefined }> = (
    params
  ) => client.listTools(params)
): Promise<Array<ListedTool>> => {
  const tools: Array<ListedTool> = []
  const cursors = new Set<string>()
  let cursor: string | undefined
  for (let page = 0; page < maxPages; page++) {
    const result = await listPage(cursor === undefined ? {} : { cursor })
    for (const t of result.tools) tools.push(toListedTool(t as Record<string, unknown>))
    cursor = result.nextCursor
    if (cursor === undefined || cursor === "") return tools
    if (cursors.has(cursor)) throw new Error(`tools/list returned the cursor ${JSON.stringify(cursor)} twice`)
    cursors.add(cursor)
  }
  throw new Error(`tools/list did not finish within ${maxPages} pages`)
}

class Failure {
  constructor(readonly reason: string) {}
}

interface Wire {
  readonly client: Client
  readonly transport: Transport
  /** tools/list was called on this client (the SDK then checks outputs against the tools' output schemas). */
  listed: boolean
  stderr: string
  stderrEnded: Promise<void>
  open: boolean
  /** tools/calls sent and not yet answered (or failed), and who waits for there to be none (`idle`). */
  inFlight: number
  idleWaiters: Array<() => void>
}

/** A new wire's state. */
const fresh = () => ({
  listed: false,
  stderr: "",
  stderrEnded: Promise.resolve(),
  open: true,
  inFlight: 0,
  idleWaiters: []
})

/** Builds the client and its transport (nothing is started yet). */
const makeWire = (spec: McpServerSpec): Either.Either<Wire, string> => {
  const client = new Client({ name: "skyrl", version: "0.1.0" })
  if (spec._tag === "http") {
    const headers = resolveReferences(spec.headers ?? {}, process.env)
    if (Either.isLeft(headers)) return Either.left(headers.left)
    const url = resolveReferences({ url: spec.url }, process.env)
    if (Either.isLeft(url)) return Either.left(url.left)
    const transport = new StreamableHTTPClientTransport(new URL(url.right.url!), {
      requestInit: { headers: headers.right }
    })
    return Either.right({ client, transport, ...fresh() })
  }
  const env = resolveReferences(spec.env ?? {}, process.env)
  if (Either.isLeft(env)) return Either.left(env.left)
  const args = resolveReferences(Object.fromEntries(spec.args.map((a, i) => [String(i), a])), process.env)
  if (Either.isLeft(args)) return Either.left(args.left)
  const transport = new StdioTransport({
    command: spec.command,
    args: Object.values(args.right),
    env: { ...childEnvironment(), ...env.right },
    stderr: "pipe",
    ...(spec.cwd === undefined ? {} : { cwd: spec.cwd })
  })
  const wire: Wire = { client, transport, ...fresh() }
  const stream = transport.stderr
  if (stream !== null) {
    stream.on("data", (chunk: Buffer | string) => {
      wire.stderr = (wire.stderr + chunk.toString()).slice(-STDERR_BUFFER)
    })
    wire.stderrEnded = new Promise((resolve) => {
      stream.once("end", () => resolve())
      stream.once("close", () => resolve())
    })
  }
  return Either.right(wire)
}

const closeWire = (wire: Wire) =>
  Effect.promise(() => Promise.allSettled([wire.client.close(), wire.transport.close()]))

/** Waits a moment for the child's stderr (the most useful part of a failure message), then fails. */
const failWithStderr = (spec: McpServerSpec, wire: Wire | undefined, reason: string) =>
  Effect.promise(() =>
    Promise.race([wire?.stderrEnded ?? Promise.resolve(), new Promise<void>((r) => setTimeout(r, 300).unref())])
  ).pipe(
    Effect.zipRight(
      Effect.fail(
        new McpServerError({
          server: spec.name,
          target: describeTarget(spec),
          reason,
          ...(wire === undefined || wire.stderr.trim() === "" ? {} : { stderrTail: tailOf(wire.stderr) })
        })
      )
    )
  )

const callError = (server: string, tool: string, e: unknown, timeout: Duration.Duration, wire: Wire): McpCallError => {
  const make = (kind: "protocol" | "timeout" | "connection", reason: string) =>
    new McpCallError({ server, tool, kind, reason })
  // The server's own error answer, whatever its code (-32000 and -32001 are the SDK's codes for a closed connection
  // and a timeout, too: a server's "backend busy" was taken for a lost server, restarted and its call sent again).
  if (e instanceof ServerErrorAnswer || (e instanceof McpError && !madeHere(e))) return make("protocol", e.message)
  if (e instanceof McpError) {
    if (e.code === ErrorCode.RequestTimeout) {
      // Nor was a ping answered after it: the server is held, and the transport closed the connection.
      const held = (e.data as { held?: unknown } | undefined)?.held === true
      return make(
        "timeout",
        `no answer within ${Duration.format(timeout)}` +
          (held ? ", nor to a ping after it: the server was held and restarted" : "")
      )
    }
    if (e.code === ErrorCode.ConnectionClosed) {
      return make("connection", `the server went away during the call (${e.message})${formatTail(tailOf(wire.stderr))}`)
    }
    return make("protocol", e.message)
  }
  // The server answered, with something that is no answer: its own fault, not a lost connection.
  if (e instanceof InvalidAnswer) return make("protocol", e.message)
  if (isZodError(e)) return make("protocol", `the result is no tool result: ${issuesText(e)}`)
  if (e instanceof MessageTooLong) return make("connection", `${e.message}${formatTail(tailOf(wire.stderr))}`)
  if (e instanceof ServerStalled) return make("connection", e.message)
  return make("connection", `the server went away during the call (${errorText(e)})`)
}

/**
 * An McpError the client side made (the SDK's Protocol over HTTP, or StdioTransport): a closed connection
 * ("Connection closed") or a request timed out (its data holds the `timeout`); any other with those codes is the
 * server's answer.
 */
const madeHere = (e: McpError): boolean =>
  e.code === ErrorCode.ConnectionClosed
    ? e.message === "MCP error -32000: Connection closed"
    : e.code === ErrorCode.RequestTimeout
    ? typeof (e.data as { timeout?: unknown } | undefined)?.timeout === "number"
    : true

/**
 * A zod error: a result CallToolResultSchema refused (the direct lane's and `Client.callTool`'s alike), or an
 * initialize or tools/list answer the SDK's schemas refused (zod 4's core names it `$ZodError`).
 */
const isZodError = (e: unknown): boolean =>
  e instanceof Error && (e.name === "ZodError" || e.name === "$ZodError") &&
  Array.isArray((e as { issues?: unknown }).issues)

const toCallResult = (r: Record<string, unknown>): ToolCallResult => ({
  content: Array.isArray(r.content) ? r.content : [],
  structuredContent: typeof r.structuredContent === "object" && r.structuredContent !== null
    ? r.structuredContent as Record<string, unknown>
    : null,
  isError: r.isError === true
})

/**
 * Sends one tools/call now and returns the wait for its answer, shaped and timed: over stdio through the
 * transport's direct lane (src/services/StdioTransport.ts: the SDK's checks without its zod parsing and
 * bookkeeping per message), over HTTP or once tools were listed on this connection through `Client.callTool`.
 * The transport's or the SDK's timer ends the wait (RequestTimeout) and cancels the request on the server. No AbortSignal per call (it costs more
 * than the rest of the call's bookkeeping): an interrupted wait drops the answer, and the connection closes
 * with the scope. One Effect.async per call (about half the runtime work of Effect.tryPromise), resumed with
 * the outcome when it came first.
 */
const startCall = (
  spec: McpServerSpec,
  wire: Wire,
  tool: string,
  params: Readonly<Record<string, unknown>>,
  timeout: Duration.Duration
): Effect.Effect<TimedCallResult, McpCallError> => {
  const call = new PendingCall(spec.name, tool, timeout, wire)
  wire.inFlight++
  // Over stdio, the transport's direct lane (over HTTP there is none).
  if (wire.transport instanceof StdioTransport && !wire.listed) {
    wire.transport.call(tool, params, Duration.toMillis(timeout), call)
  } else {
    try {
      wire.client.callTool({ name: tool, arguments: { ...params } }, undefined, { timeout: Duration.toMillis(timeout) })
        .then((r) => call.done(undefined, r), (e) => call.done(e))
    } catch (e) {
      call.done(e)
    }
  }
  return Effect.async<TimedCallResult, McpCallError>((resume) => call.wait(resume))
}

const tooDeep = (server: string, tool: string) =>
  new McpCallError({ server, tool, kind: "protocol", reason: tooDeepReason("the result") })

/** One call's outcome, kept until it is waited for (or handed to the waiter at once). */
class PendingCall {
  private outcome: Effect.Effect<TimedCallResult, McpCallError> | undefined
  private waiter: ((outcome: Effect.Effect<TimedCallResult, McpCallError>) => void) | undefined
  private readonly t0 = performance.now()

  constructor(
    readonly server: string,
    readonly tool: string,
    readonly timeout: Duration.Duration,
    readonly wire: Wire
  ) {}

  done(error: unknown, result?: Record<string, unknown>): void {
    if (--this.wire.inFlight === 0 && this.wire.idleWaiters.length > 0) {
      const waiters = this.wire.idleWaiters
      this.wire.idleWaiters = []
      for (const w of waiters) w()
    }
    const outcome = result === undefined
      ? Effect.fail(callError(this.server, this.tool, error, this.timeout, this.wire))
      : nestsDeeperThan(result, MAX_JSON_DEPTH)
      // Its row's tool-error: the cassette line, the policy's text and MCPToolEnv's reader walk it recursively (12,000
      // levels stopped the whole run: "internal error: Maximum call stack size exceeded", and again on --resume).
      ? Effect.fail(tooDeep(this.server, this.tool))
      : Effect.succeed({ result: toCallResult(result), durationMs: Math.round(performance.now() - this.t0) })
    if (this.waiter === undefined) this.outcome = outcome
    else this.waiter(outcome)
  }

  wait(resume: (outcome: Effect.Effect<TimedCallResult, McpCallError>) => void): void {
    if (this.outcome !== undefined) resume(this.outcome)
    else this.waiter = resume
  }
}

const listVia = (spec: McpServerSpec, wire: Wire, list: () => Promise<ReadonlyArray<ListedTool>>) =>
  Effect.tryPromise({
    try: list,
    catch: (e) =>
      new McpServerError({
        server: spec.name,
        target: describeTarget(spec),
        reason: `tools/list failed: ${errorText(e, undefined, endedOf(wire))}`,
        ...(wire.stderr.trim() === "" ? {} : { stderrTail: tailOf(wire.stderr) })
      })
  })

/** The stdio transport found the server held (ServerStalled). */
const stalled = (wire: Wire): boolean => wire.transport instanceof StdioTransport && wire.transport.isStalled

const session = (spec: McpServerSpec, wire: Wire): McpSession => ({
  server: spec.name,
  serverInfo: wire.client.getServerVersion() as ServerInfo | undefined,
  listTools: (maxPages = 1000) =>
    listVia(spec, wire, () => {
      wire.listed = true
      return listAllPages(wire.client, maxPages)
    }),
  listToolsOnly: (timeout) => {
    // Each page within `timeout` (the SDK's default is 60 s), and the whole listing too.
    const timedOut = () =>
      new McpServerError({
        server: spec.name,
        target: describeTarget(spec),
        reason: `no answer within ${Duration.format(timeout)} (tools/list)`,
        timedOut: true,
        ...(wire.stderr.trim() === "" ? {} : { stderrTail: tailOf(wire.stderr) })
      })
    return listVia(
      spec,
      wire,
      () => listAllPages(wire.client, 1000, plainListPage(wire.client, Duration.toMillis(timeout)))
    )
      .pipe(
        Effect.catchIf((e) => /Request timed out/.test(e.reason), () => Effect.fail(timedOut())),
        Effect.timeoutFail({ duration: timeout, onTimeout: timedOut })
      )
  },
  startCall: (tool, params, timeout) => startCall(spec, wire, tool, params, timeout),
  isOpenNow: () => wire.open && !stalled(wire),
  stalled: () => stalled(wire),
  idle: Effect.async<void>((resume) => {
    if (wire.inFlight === 0) resume(Effect.void)
    else wire.idleWaiters.push(() => resume(Effect.void))
  }),
  stderrTail: Effect.sync(() => tailOf(wire.stderr))
})

const connect = (
  spec: McpServerSpec,
  options?: ConnectOptions
): Effect.Effect<McpSession, McpServerError, Scope.Scope> => {
  const timeout = Duration.decode(options?.timeout ?? "30 seconds")
  const made = makeWire(spec)
  if (Either.isLeft(made)) return failWithStderr(spec, undefined, `cannot start: ${made.left}`)
  const wire = made.right
  const start = Effect.tryPromise({
    try: async () => {
      await wire.client.connect(wire.transport)
      wire.client.onclose = () => {
        wire.open = false
      }
    },
    catch: (e) => new Failure(errorText(e, spec._tag === "stdio" ? spec.cwd : undefined, endedOf(wire)))
  }).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => new Failure(`no answer within ${Duration.format(timeout)} (initialize)`)
    }),
    // A server that did not start is ended now, not when the caller's scope closes.
    Effect.catchAll((failure) => Effect.ensuring(failWithStderr(spec, wire, failure.reason), closeWire(wire)))
  )
  return Effect.addFinalizer(() => closeWire(wire)).pipe(
    Effect.zipRight(start),
    Effect.zipRight(Effect.sync(() => session(spec, wire)))
  )
}

const listServer = (spec: McpServerSpec, options?: ListToolsOptions): Effect.Effect<ListedServer, McpServerError> => {
  const timeout = Duration.decode(options?.timeout ?? "30 seconds")
  return Effect.scoped(
    Effect.gen(function*() {
      const s = yield* connect(spec, { timeout })
      const tools = yield* s.listTools(options?.maxPages).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new McpServerError({
              server: spec.name,
              target: describeTarget(spec),
              reason: `no answer within ${Duration.format(timeout)} (tools/list)`
            })
        })
      )
      return { serverInfo: s.serverInfo, tools }
    })
  )
}

export const McpClientLive: Layer.Layer<McpClient> = Layer.succeed(McpClient, { connect, listServer })
