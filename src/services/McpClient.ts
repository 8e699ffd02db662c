/**
 * McpClient: asks a live MCP server for its tools with the official @modelcontextprotocol/sdk client.
 * stdio servers are spawned (no shell; the child inherits this process's environment so the servers'
 * API keys reach it — all but OPENAI_API_KEY), asked `tools/list` (following pagination cursors) and closed; HTTP servers are reached
 * over streamable HTTP. A server that fails gives a McpImportError with the tail of its stderr.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Context, Duration, Effect, Layer, Schema } from "effect"

export interface StdioServerSpec {
  readonly _tag: "stdio"
  readonly name: string
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd?: string
  readonly env?: Readonly<Record<string, string>>
}

export interface HttpServerSpec {
  readonly _tag: "http"
  readonly name: string
  readonly url: string
  readonly headers?: Readonly<Record<string, string>>
}

export type McpServerSpec = StdioServerSpec | HttpServerSpec

/** A tool as the server lists it (the inventory normalizes it). */
export interface ListedTool {
  readonly name: string
  readonly description?: string | undefined
  readonly inputSchema: unknown
}

/** How a server is shown in messages: the command line or the URL. */
export const describeTarget = (spec: McpServerSpec): string =>
  spec._tag === "http" ? spec.url : [spec.command, ...spec.args].join(" ")

export class McpImportError extends Schema.TaggedError<McpImportError>()("McpImportError", {
  server: Schema.String,
  target: Schema.String,
  reason: Schema.String,
  stderrTail: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const tail = this.stderrTail === undefined || this.stderrTail.trim() === ""
      ? ""
      : `\n  stderr (last lines):\n${this.stderrTail.trimEnd().split("\n").map((l) => `    ${l}`).join("\n")}`
    return `MCP server "${this.server}" (${this.target}): ${this.reason}${tail}`
  }
}

export interface ListToolsOptions {
  /** Time allowed for starting, listing every page and closing (default 30 s). */
  readonly timeout?: Duration.DurationInput
  /** Safety bound on tools/list pages (default 1000). */
  readonly maxPages?: number
}

export interface McpClientApi {
  readonly listTools: (
    spec: McpServerSpec,
    options?: ListToolsOptions
  ) => Effect.Effect<ReadonlyArray<ListedTool>, McpImportError>
}

export class McpClient extends Context.Tag("skyrl/McpClient")<McpClient, McpClientApi>() {}

const STDERR_TAIL_LINES = 15
const STDERR_BUFFER = 16_384

const errorText = (e: unknown): string => {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === "ENOENT") return `cannot start: command not found (${e.message})`
    if (code === "EACCES") return `cannot start: permission denied (${e.message})`
    if (/Connection closed/i.test(e.message)) {
      return `the server closed the connection before answering; it probably exited (${e.message})`
    }
    return e.message
  }
  return String(e)
}

/** This process's environment for a spawned server, less skyrl's own OpenAI key (servers have their own). */
const childEnvironment = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "OPENAI_API_KEY") env[k] = v
  return env
}

const tailOf = (text: string): string => text.trimEnd().split("\n").slice(-STDERR_TAIL_LINES).join("\n")

const listAllPages = async (client: Client, maxPages: number): Promise<Array<ListedTool>> => {
  const tools: Array<ListedTool> = []
  const cursors = new Set<string>()
  let cursor: string | undefined
  for (let page = 0; page < maxPages; page++) {
    const result = await client.listTools(cursor === undefined ? {} : { cursor })
    for (const t of result.tools) tools.push({ name: t.name, description: t.description, inputSchema: t.inputSchema })
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

const listTools = (
  spec: McpServerSpec,
  options?: ListToolsOptions
): Effect.Effect<ReadonlyArray<ListedTool>, McpImportError> => {
  const timeout = Duration.decode(options?.timeout ?? "30 seconds")
  const maxPages = options?.maxPages ?? 1000
  let stderr = ""
  let stderrEnded: Promise<void> = Promise.resolve()
  const open = Effect.sync(() => {
    const client = new Client({ name: "skyrl", version: "0.1.0" })
    if (spec._tag === "http") {
      const transport = new StreamableHTTPClientTransport(new URL(spec.url), {
        requestInit: { headers: { ...spec.headers } }
      })
      return { client, transport }
    }
    const transport = new StdioClientTransport({
      command: spec.command,
      args: [...spec.args],
      env: { ...childEnvironment(), ...spec.env },
      stderr: "pipe",
      ...(spec.cwd === undefined ? {} : { cwd: spec.cwd })
    })
    const stream = transport.stderr
    if (stream !== null) {
      stream.on("data", (chunk: Buffer | string) => {
        stderr = (stderr + chunk.toString()).slice(-STDERR_BUFFER)
      })
      stderrEnded = new Promise((resolve) => {
        stream.once("end", () => resolve())
        stream.once("close", () => resolve())
      })
    }
    return { client, transport }
  })
  const close = ({ client, transport }: Effect.Effect.Success<typeof open>) =>
    Effect.promise(() => Promise.allSettled([client.close(), transport.close()]))
  const session = Effect.scoped(
    Effect.gen(function*() {
      const { client, transport } = yield* Effect.acquireRelease(open, close)
      yield* Effect.tryPromise({
        try: () => client.connect(transport),
        catch: (e) => new Failure(errorText(e))
      })
      return yield* Effect.tryPromise({
        try: () => listAllPages(client, maxPages),
        catch: (e) => new Failure(`tools/list failed: ${errorText(e)}`)
      })
    })
  ).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => new Failure(`no answer within ${Duration.format(timeout)}`)
    })
  )
  // On failure, give the child's stderr a moment to arrive (it is the most useful part of the message).
  return Effect.catchAll(
    session,
    (failure) =>
      Effect.promise(() =>
        Promise.race([stderrEnded, new Promise<void>((resolve) => setTimeout(resolve, 300).unref())])
      ).pipe(
        Effect.zipRight(
          Effect.fail(
            new McpImportError({
              server: spec.name,
              target: describeTarget(spec),
              reason: failure.reason,
              ...(stderr.trim() === "" ? {} : { stderrTail: tailOf(stderr) })
            })
          )
        )
      )
  )
}

export const McpClientLive: Layer.Layer<McpClient> = Layer.succeed(McpClient, { listTools })
