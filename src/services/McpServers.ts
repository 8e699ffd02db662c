/**
 * McpServers: the live servers of a run, one connection per server reused by every call.
 *
 * - A server is started on its first call (so a dataset that never uses it never starts it), and its
 *   connection lives until the layer's scope closes.
 * - A connection that dies (the server exited or was killed) is restarted on the next call; after
 *   `maxRestarts` deaths in a row without a successful call in between, the server is given up.
 * - A server that cannot start (no launch spec, command not found, no answer to `initialize` or to the
 *   `tools/list` after it, an environment variable not set) is unavailable for the rest of the run: it is tried once, and every
 *   later call fails at once with the same reason.
 * - At most `maxInFlight` calls are in flight per server when it is given (without it, the callers
 *   bound them: `verify` runs each row's steps one after another, so at most `--concurrency` calls).
 */
import {
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  ExecutionStrategy,
  Exit,
  FiberId,
  Layer,
  Schema,
  Scope
} from "effect"
import type { ServerInfo } from "../domain/inventory.js"
import { isReadOnly, serverVersionLabel } from "../domain/inventory.js"
import type {
  ListedTool,
  McpCallError,
  McpServerError,
  McpServerSpec,
  McpSession,
  TimedCallResult,
  ToolCallResult
} from "./McpClient.js"
import { McpClient } from "./McpClient.js"

/** The server cannot be used (it could not start, or died too often). */
export class ServerUnavailableError extends Schema.TaggedError<ServerUnavailableError>()("ServerUnavailableError", {
  server: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `MCP server "${this.server}" is unavailable: ${this.reason}`
  }
}

export interface CallAnswer {
  readonly result: ToolCallResult
  readonly durationMs: number
  /** `name@version` of the server that answered (null when its initialize gave none). */
  readonly serverVersion: string | null
}

export interface ServerState {
  readonly server: string
  readonly serverInfo: ServerInfo | undefined
  /** Connections opened (1 = never restarted). */
  readonly starts: number
  readonly unavailable: string | undefined
}

export interface McpServersApi {
  /**
   * One tool call, on the server's connection (started, or restarted, when needed). Sent now when the
   * server is up and calls are not bounded here (the request goes out before this returns, so the
   * caller's work overlaps the server's); otherwise when the Effect returned runs. Run it once.
   */
  readonly begin: (
    server: string,
    tool: string,
    params: Readonly<Record<string, unknown>>,
    options?: BeginOptions
  ) => Effect.Effect<CallAnswer, McpCallError | ServerUnavailableError | NotListedReadOnly>
  /**
   * The tools the server lists with `readOnlyHint: true` (its tools/list, asked once per start: the latest
   * start's), or why the listing failed; undefined when it never started (`start` lists it).
   */
  readonly liveReadOnly: (server: string) => LiveReadOnly | undefined
  /** Starts the server now unless it is up (a later call finds it running). */
  readonly start: (server: string) => Effect.Effect<void, ServerUnavailableError>
  /** Each server that was used: its version, how often it was started, why it is unavailable. */
  readonly states: Effect.Effect<ReadonlyArray<ServerState>>
}

export interface BeginOptions {
  /**
   * The call is the only one on the server while it is in flight: sent once the calls in flight have ended,
   * the calls begun meanwhile waiting until it has. A server that exits during it exits for it, not for a call
   * beside it (a plan run again after its server went away runs so, so that a row whose call makes the server
   * exit does not take the rows in flight beside it down with it, over and over).
   */
  readonly alone?: boolean
  /**
   * The call is sent only on a session whose own tools/list marks the tool read-only, checked as it is sent (after
   * any restart): else it fails with `NotListedReadOnly`, not sent. For a tool no --allow-side-effects names: a
   * server may list otherwise after it restarts, and a check made before the plan ran saw the listing before.
   */
  readonly readOnly?: boolean
}

/** A call `BeginOptions.readOnly` did not send: the session's tools/list does not mark the tool read-only. */
export class NotListedReadOnly extends Schema.TaggedError<NotListedReadOnly>()("NotListedReadOnly", {
  server: Schema.String,
  tool: Schema.String,
  /** Why that tools/list failed, when it did. */
  listError: Schema.optional(Schema.String)
}) {}

/** What a server's own tools/list marks read-only. */
export interface LiveReadOnly {
  readonly tools: ReadonlySet<string>
  /** Every tool it lists, read-only or not (empty when tools/list failed). */
  readonly listed: ReadonlySet<string>
  /** Why tools/list failed (then `tools` is empty). */
  readonly error?: string
}

export interface McpServersOptions {
  /** How to start each server, by name. */
  readonly specs: ReadonlyArray<McpServerSpec>
  /** Servers known to be unusable before anything starts (e.g. no launch spec), with the reason. */
  readonly unavailable?: Readonly<Record<string, string>>
  /** Time for one tools/call. */
  readonly timeout: Duration.DurationInput
  /**
   * Time for a server's start: initialize, then tools/list. A start is not a call: a node server takes ~1 s to
   * start on a quiet machine and 5-7 s on a loaded one, and `npx -y` may download first.
   */
  readonly startTimeout: Duration.DurationInput
  /** Calls in flight per server (default: not bounded here). */
  readonly maxInFlight?: number | undefined
  /** Deaths in a row after which a server is given up (default 3). */
  readonly maxRestarts?: number
}

export class McpServers extends Context.Tag("skyrl/McpServers")<McpServers, McpServersApi>() {
  static layer = (options: McpServersOptions): Layer.Layer<McpServers, never, McpClient> =>
    Layer.scoped(McpServers, make(options))
}

interface Slot {
  readonly spec: McpServerSpec | undefined
  readonly lock: Effect.Semaphore
  readonly inFlight: Effect.Semaphore | undefined
  current: { readonly session: McpSession; readonly scope: Scope.CloseableScope } | undefined
  /** What the latest start's tools/list marks read-only (kept when the connection dies). */
  listed: LiveReadOnly | undefined
  info: ServerInfo | undefined
  unavailable: string | undefined
  starts: number
  deaths: number
  used: boolean
  /** Set while a call alone waits for the calls in flight to end and runs: other calls wait until it is done. */
  gate: Deferred.Deferred<void> | undefined
  /** One call alone at a time. */
  readonly alone: Effect.Semaphore
}

const make = (options: McpServersOptions) =>
  Effect.gen(function*() {
    const client = yield* McpClient
    const scope = yield* Effect.scope
    const timeout = Duration.decode(options.timeout)
    const startTimeout = Duration.decode(options.startTimeout)
    const maxRestarts = options.maxRestarts ?? 3
    const slots = new Map<string, Slot>()
    const slotOf = (server: string): Effect.Effect<Slot> =>
      Effect.suspend(() => {
        const existing = slots.get(server)
        return existing !== undefined ? Effect.succeed(existing) : newSlot(server)
      })
    const newSlot = (server: string): Effect.Effect<Slot> =>
      Effect.gen(function*() {
        const slot: Slot = {
          spec: options.specs.find((s) => s.name === server),
          lock: yield* Effect.makeSemaphore(1),
          inFlight: options.maxInFlight === undefined
            ? undefined
            : yield* Effect.makeSemaphore(Math.max(1, options.maxInFlight)),
          current: undefined,
          listed: undefined,
          info: undefined,
          unavailable: options.unavailable?.[server],
          starts: 0,
          deaths: 0,
          used: false,
          gate: undefined,
          alone: yield* Effect.makeSemaphore(1)
        }
        // Another fiber may have made it meanwhile (makeSemaphore yields).
        const raced = slots.get(server)
        if (raced !== undefined) return raced
        slots.set(server, slot)
        return slot
      })

    const unavailable = (server: string, reason: string) => new ServerUnavailableError({ server, reason })

    /** The slot's open session: starts or restarts the server when needed. */
    const sessionOf = (server: string, slot: Slot): Effect.Effect<McpSession, ServerUnavailableError> =>
      Effect.suspend(() => {
        // The common case, without taking the lock: a connection that is up.
        const current = slot.current
        return current !== undefined && current.session.isOpenNow()
          ? Effect.succeed(current.session)
          : openSession(server, slot)
      })

    const openSession = (server: string, slot: Slot) =>
      slot.lock.withPermits(1)(Effect.gen(function*() {
        slot.used = true
        if (slot.unavailable !== undefined) return yield* unavailable(server, slot.unavailable)
        if (slot.current !== undefined) {
          if (slot.current.session.isOpenNow()) return slot.current.session
          yield* retire(slot)
        }
        if (slot.spec === undefined) {
          slot.unavailable = "not in the inventory nor the servers config"
          return yield* unavailable(server, slot.unavailable)
        }
        if (slot.deaths > maxRestarts) {
          slot.unavailable = `the server exited ${slot.deaths} times in a row; given up`
          return yield* unavailable(server, slot.unavailable)
        }
        const child = yield* Scope.fork(scope, ExecutionStrategy.sequential)
        const opened = yield* Effect.exit(Scope.extend(client.connect(slot.spec, { timeout: startTimeout }), child))
        if (Exit.isFailure(opened)) {
          yield* Scope.close(child, Exit.void)
          const error = opened.cause._tag === "Fail" ? opened.cause.error : undefined
          slot.unavailable = error === undefined ? "could not start" : error.message
          return yield* unavailable(server, slot.unavailable)
        }
        // A tools/list the server does not answer (in time, or at all: it exited) fails the start, as an
        // initialize would; one it refuses (a JSON-RPC error) leaves no tool marked read-only by it.
        const listed = yield* Effect.either(opened.value.listToolsOnly(startTimeout))
        if (Either.isLeft(listed) && (listed.left.timedOut === true || !opened.value.isOpenNow())) {
          yield* Scope.close(child, Exit.void)
          slot.unavailable = listed.left.message
          return yield* unavailable(server, slot.unavailable)
        }
        slot.listed = readOnlyOf(listed)
        slot.current = { session: opened.value, scope: child }
        slot.info = opened.value.serverInfo
        slot.starts++
        const info = serverVersionLabel(opened.value.serverInfo) ?? "no server info"
        yield* (slot.starts === 1
          ? Effect.logInfo(`MCP server "${server}" started (${info})`)
          : Effect.logWarning(`MCP server "${server}" restarted after it went away (start ${slot.starts}, ${info})`))
        return opened.value
      }))

    /**
     * The tools a new session lists with `readOnlyHint: true` (one tools/list per start), or why it did not list. A
     * tool listed twice is read-only only when every listing says so: one listing without the hint, then one with it,
     * ran the tool without --allow-side-effects (`tools import` keeps the first listing).
     */
    const listErrorOf = (listed: LiveReadOnly | undefined) =>
      listed?.error === undefined ? {} : { listError: listed.error }

    const readOnlyOf = (listed: Either.Either<ReadonlyArray<ListedTool>, McpServerError>): LiveReadOnly => {
      if (Either.isLeft(listed)) return { tools: new Set(), listed: new Set(), error: listed.left.reason }
      const notReadOnly = new Set(listed.right.filter((t) => !isReadOnly(t)).map((t) => t.name))
      return {
        tools: new Set(listed.right.filter((t) => isReadOnly(t) && !notReadOnly.has(t.name)).map((t) => t.name)),
        listed: new Set(listed.right.map((t) => t.name))
      }
    }

    /**
     * Ends a dead connection, counted as a death (toward giving the server up) unless `blamed`: lost during a call
     * alone on it (that call made it exit, a server sound otherwise), or held (`McpSession.stalled`: restarted
     * for a call it did not answer within --timeout).
     */
    const retire = (slot: Slot, blamed = false) =>
      Effect.gen(function*() {
        const current = slot.current
        if (current === undefined) return
        slot.current = undefined
        if (!blamed && !current.session.stalled()) slot.deaths++
        yield* Scope.close(current.scope, Exit.void)
      })

    /** The answer of a call made on `session`. */
    /**
     * The call sent on `session` (`alone`: the only one on it), unless `readOnly` and the session's tools/list
     * (`slot.listed`: the latest start's, which is the session's) does not mark the tool read-only.
     */
    const sendOn = (
      server: string,
      slot: Slot,
      session: McpSession,
      tool: string,
      params: Readonly<Record<string, unknown>>,
      options: BeginOptions | undefined,
      alone = false
    ): Effect.Effect<CallAnswer, McpCallError | NotListedReadOnly> =>
      options?.readOnly === true && slot.listed?.tools.has(tool) !== true
        ? Effect.fail(new NotListedReadOnly({ server, tool, ...listErrorOf(slot.listed) }))
        : answerOf(slot, session, session.startCall(tool, params, timeout), alone)

    const answerOf = (
      slot: Slot,
      session: McpSession,
      called: Effect.Effect<TimedCallResult, McpCallError>,
      alone = false
    ) =>
      Effect.matchEffect(called, {
        onFailure: (e) =>
          e.kind === "connection" || session.stalled()
            ? Effect.zipRight(
              slot.lock.withPermits(1)(slot.current?.session === session ? retire(slot, alone) : Effect.void),
              Effect.fail(e)
            )
            : Effect.fail(e),
        onSuccess: (answer): Effect.Effect<CallAnswer> => {
          slot.deaths = 0
          return Effect.succeed({
            result: answer.result,
            durationMs: answer.durationMs,
            serverVersion: serverVersionLabel(session.serverInfo) ?? null
          })
        }
      })

    /**
     * One call on the server's session (started or restarted when needed; a lost connection retires it), sent
     * once no call alone holds the server (checked when it is sent: nothing comes between).
     */
    const callVia = (
      server: string,
      slot: Slot,
      tool: string,
      params: Readonly<Record<string, unknown>>,
      options: BeginOptions | undefined
    ): Effect.Effect<CallAnswer, McpCallError | ServerUnavailableError | NotListedReadOnly> =>
      Effect.suspend(() =>
        slot.gate !== undefined
          ? Effect.zipRight(Deferred.await(slot.gate), callVia(server, slot, tool, params, options))
          : Effect.flatMap(sessionOf(server, slot), (session) =>
            Effect.suspend(() =>
              slot.gate !== undefined
                ? callVia(server, slot, tool, params, options)
                : sendOn(server, slot, session, tool, params, options)
            ))
      )

    /**
     * One call alone on the server (`BeginOptions.alone`): the gate set, so no other call is sent; sent once the
     * session (started or restarted when needed) has no call in flight. A session that died meanwhile (a call
     * before the gate made it exit) is restarted first.
     */
    const callAlone = (
      server: string,
      slot: Slot,
      tool: string,
      params: Readonly<Record<string, unknown>>,
      options: BeginOptions | undefined
    ) => {
      const onIdle: Effect.Effect<CallAnswer, McpCallError | ServerUnavailableError | NotListedReadOnly> = Effect
        .flatMap(
          sessionOf(server, slot),
          (session) =>
            Effect.zipRight(
              session.idle,
              Effect.suspend(() =>
                session.isOpenNow() ? sendOn(server, slot, session, tool, params, options, true) : onIdle
              )
            )
        )
      return slot.alone.withPermits(1)(Effect.acquireUseRelease(
        Effect.sync(() => (slot.gate = Deferred.unsafeMake<void>(FiberId.none))),
        () => onIdle,
        (gate) =>
          Effect.sync(() => {
            slot.gate = undefined
            Deferred.unsafeDone(gate, Exit.void)
          })
      ))
    }

    const begin = (
      server: string,
      tool: string,
      params: Readonly<Record<string, unknown>>,
      options?: BeginOptions
    ) => {
      // The common case, sent now: a server that is up, calls in flight not bounded here, no call alone on it.
      const known = slots.get(server)
      const session = known?.current?.session
      if (
        known !== undefined && known.inFlight === undefined && known.gate === undefined && options?.alone !== true &&
        session !== undefined && session.isOpenNow()
      ) {
        return sendOn(server, known, session, tool, params, options)
      }
      return Effect.flatMap(slotOf(server), (slot) =>
        options?.alone === true
          ? callAlone(server, slot, tool, params, options)
          : slot.inFlight === undefined
          ? callVia(server, slot, tool, params, options)
          : slot.inFlight.withPermits(1)(callVia(server, slot, tool, params, options)))
    }

    const states = Effect.sync(() =>
      [...slots.entries()].filter(([, s]) => s.used).map(([server, s]) => ({
        server,
        serverInfo: s.info,
        starts: s.starts,
        unavailable: s.unavailable
      }))
    )
    const liveReadOnly = (server: string) => slots.get(server)?.listed
    const start = (server: string) => Effect.flatMap(slotOf(server), (slot) => Effect.asVoid(sessionOf(server, slot)))
    return { begin, liveReadOnly, start, states } satisfies McpServersApi
  })
