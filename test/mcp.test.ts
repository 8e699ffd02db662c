/**
 * Import from real MCP servers started from node_modules over stdio (no npx, no network), from a
 * paginating fixture server, and from an in-process streamable-HTTP server.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { Effect } from "effect"
import { mkdtempSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ImportOutcome, ImportResult } from "../src/programs/toolsImport.js"
import { importInventory } from "../src/programs/toolsImport.js"
import type { McpServerSpec } from "../src/services/McpClient.js"
import { McpClientLive } from "../src/services/McpClient.js"
import { buildOutputSchema } from "../src/skyrl/outputSchema.js"
import { validatePlan } from "../src/skyrl/planValidation.js"
import { checkStrict } from "./support/openaiStrict.js"

const ROOT = join(__dirname, "..")
const serverBin = (pkg: string) => join(ROOT, "node_modules", "@modelcontextprotocol", pkg, "dist", "index.js")
const node = (name: string, ...args: Array<string>): McpServerSpec => ({
  _tag: "stdio",
  name,
  command: process.execPath,
  args
})

const run = (specs: ReadonlyArray<McpServerSpec>, timeoutSeconds = 20) =>
  Effect.runPromise(
    importInventory(specs, { timeout: `${timeoutSeconds} seconds` }).pipe(Effect.provide(McpClientLive))
  )

const outcome = (result: ImportResult, name: string): ImportOutcome => result.outcomes.find((o) => o.server === name)!
const toolsOf = (result: ImportResult, name: string) => result.inventory!.servers.find((s) => s.name === name)!.tools
const schemaOf = (result: ImportResult, server: string, tool: string) =>
  toolsOf(result, server).find((t) => t.name === tool)!.inputSchema

describe("tools import from real MCP servers over stdio", () => {
  let result: ImportResult
  let elapsed = 0
  const fsRoot = mkdtempSync(join(tmpdir(), "skyrl-mcp-fs-"))

  beforeAll(async () => {
    const start = Date.now()
    result = await run([
      node("fs", serverBin("server-filesystem"), fsRoot),
      node("memory", serverBin("server-memory")),
      node("everything", serverBin("server-everything"), "stdio"),
      node(
        "broken",
        "-e",
        "console.error('starting broken server'); console.error('fatal: FMP_API_KEY is not set'); process.exit(3)"
      )
    ])
    elapsed = Date.now() - start
  }, 30_000)

  it("imports the filesystem server's tools with their schemas ($schema removed)", () => {
    expect(outcome(result, "fs")).toMatchObject({ _tag: "imported", tools: 14, skipped: [] })
    expect(toolsOf(result, "fs").map((t) => t.name).sort()).toEqual([
      "create_directory",
      "directory_tree",
      "edit_file",
      "get_file_info",
      "list_allowed_directories",
      "list_directory",
      "list_directory_with_sizes",
      "move_file",
      "read_file",
      "read_media_file",
      "read_multiple_files",
      "read_text_file",
      "search_files",
      "write_file"
    ])
    expect(schemaOf(result, "fs", "write_file")).toEqual({
      type: "object",
      properties: { path: { type: "string" }, content: { type: "string" } },
      required: ["path", "content"]
    })
    expect(schemaOf(result, "fs", "edit_file")).toMatchObject({
      properties: {
        edits: {
          type: "array",
          items: { type: "object", required: ["oldText", "newText"] }
        },
        dryRun: { type: "boolean", default: false }
      },
      required: ["path", "edits"]
    })
    for (const tool of toolsOf(result, "fs")) expect(JSON.stringify(tool.inputSchema)).not.toContain("$schema")
    expect(toolsOf(result, "fs").find((t) => t.name === "read_text_file")!.description).toMatch(/read/i)
  })

  it("imports the memory and everything servers", () => {
    expect(toolsOf(result, "memory").map((t) => t.name).sort()).toEqual([
      "add_observations",
      "create_entities",
      "create_relations",
      "delete_entities",
      "delete_observations",
      "delete_relations",
      "open_nodes",
      "read_graph",
      "search_nodes"
    ])
    expect(schemaOf(result, "memory", "create_entities")).toMatchObject({
      properties: {
        entities: {
          type: "array",
          items: { type: "object", required: ["name", "entityType", "observations"] }
        }
      },
      required: ["entities"]
    })
    const everything = toolsOf(result, "everything").map((t) => t.name)
    expect(everything).toEqual(expect.arrayContaining(["echo", "get-sum", "get-env", "get-tiny-image"]))
    expect(schemaOf(result, "everything", "get-sum")).toMatchObject({
      type: "object",
      properties: { a: { type: "number" }, b: { type: "number" } },
      required: ["a", "b"]
    })
    // The imported catalogue validates plans like the bundled one.
    const inventory = result.inventory!
    expect(validatePlan(inventory, [{ step: 1, server: "everything", tool: "get-sum", params: { a: 1, b: 2 } }]))
      .toEqual([])
    expect(
      validatePlan(inventory, [{ step: 1, server: "everything", tool: "get-sum", params: { a: 1, b: "2" } }])
        .map((i) => i.path)
    ).toEqual(["params/b"])
  })

  it("a server that fails to start gives a clear error with its stderr tail; the others still import", () => {
    const broken = outcome(result, "broken")
    expect(broken._tag).toBe("failed")
    if (broken._tag !== "failed") return
    expect(broken.message).toContain("MCP server \"broken\"")
    expect(broken.message).toContain("closed the connection before answering")
    expect(broken.message).toContain("stderr (last lines):")
    expect(broken.message).toContain("fatal: FMP_API_KEY is not set")
    expect(result.inventory!.servers.map((s) => s.name)).toEqual(["fs", "memory", "everything"])
    expect(elapsed).toBeLessThan(15_000)
  })

  it("the strict output schema for the imported filesystem inventory passes OpenAI's rules", () => {
    const fsOnly = { servers: result.inventory!.servers.filter((s) => s.name === "fs") }
    const built = buildOutputSchema(fsOnly as never, { maxSteps: 10 })
    expect(built.violations).toEqual([])
    expect(checkStrict(built.schema).violations).toEqual([])
    expect(built.choices.filter((c) => c.mode === "json-string")).toEqual([])
    // All three imported servers together fit as well.
    const all = buildOutputSchema(result.inventory!)
    expect(checkStrict(all.schema).violations).toEqual([])
    expect(all.choices).toHaveLength(result.inventory!.servers.reduce((n, s) => n + s.tools.length, 0))
  })
})

describe("tools import: other transports and failures", () => {
  it("follows tools/list pagination cursors", async () => {
    const result = await run([node("paged", join(ROOT, "test", "fixtures", "mcp", "paged-server.mjs"), "5")])
    expect(toolsOf(result, "paged").map((t) => t.name)).toEqual(["tool_1", "tool_2", "tool_3", "tool_4", "tool_5"])
    expect(schemaOf(result, "paged", "tool_5")).toEqual({
      type: "object",
      properties: { n: { type: "integer", description: "a number" } },
      required: ["n"]
    })
  })

  it("a missing command and a server that never answers fail within bounds", async () => {
    const start = Date.now()
    const result = await run([
      { _tag: "stdio", name: "nope", command: "/nonexistent/mcp-server", args: [] },
      node("silent", "-e", "console.error('waiting forever'); setInterval(() => {}, 1000)")
    ], 1)
    expect(result.inventory).toBeUndefined()
    const [nope, silent] = result.outcomes
    expect(nope).toMatchObject({ _tag: "failed", message: expect.stringContaining("command not found") })
    expect(silent).toMatchObject({ _tag: "failed", message: expect.stringContaining("no answer within 1s") })
    expect((silent as { message: string }).message).toContain("waiting forever")
    expect(Date.now() - start).toBeLessThan(10_000)
  })

  it("spawned servers inherit the environment, except OPENAI_API_KEY", async () => {
    const saved = { key: process.env.OPENAI_API_KEY, other: process.env.SKYRL_TEST_SERVER_KEY }
    process.env.OPENAI_API_KEY = "sk-test-not-for-servers"
    process.env.SKYRL_TEST_SERVER_KEY = "server-key"
    try {
      const script = "console.error('openai=' + (process.env.OPENAI_API_KEY ?? 'absent') + " +
        "' server=' + (process.env.SKYRL_TEST_SERVER_KEY ?? 'absent')); process.exit(1)"
      const result = await run([node("env", "-e", script)], 5)
      expect(result.outcomes[0]).toMatchObject({ message: expect.stringContaining("openai=absent server=server-key") })
    } finally {
      if (saved.key === undefined) delete process.env.OPENAI_API_KEY
      else process.env.OPENAI_API_KEY = saved.key
      if (saved.other === undefined) delete process.env.SKYRL_TEST_SERVER_KEY
      else process.env.SKYRL_TEST_SERVER_KEY = saved.other
    }
  })

  describe("streamable HTTP", () => {
    const http = createServer(async (req, res) => {
      // A URL with a token (as hosted MCP servers take keys in the query) must carry the right one.
      const token = new URL(req.url ?? "/", "http://x").searchParams.get("token")
      if (token !== null && token !== "t0k3n") return void res.writeHead(401).end("bad token")
      const server = new Server({ name: "web", version: "1.0.0" }, { capabilities: { tools: {} } })
      server.setRequestHandler(ListToolsRequestSchema, async () => ({
        tools: [{
          name: "lookup",
          description: "Look a word up",
          inputSchema: { type: "object", properties: { word: { type: "string" } }, required: ["word"] }
        }]
      }))
      const transport = new StreamableHTTPServerTransport({})
      res.on("close", () => {
        void transport.close()
        void server.close()
      })
      await server.connect(transport)
      await transport.handleRequest(req, res)
    })
    let url = ""
    beforeAll(async () => {
      await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve))
      url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
    })
    afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())))

    it("${VAR} in a server's URL is the variable's value when it starts; the inventory keeps the reference", async () => {
      process.env.SKYRL_TEST_URL_TOKEN = "t0k3n"
      const withToken = `${url}?token=\${SKYRL_TEST_URL_TOKEN}`
      const result = await run([{ _tag: "http", name: "web", url: withToken }], 5)
      delete process.env.SKYRL_TEST_URL_TOKEN
      // Was: failed, 401 "bad token": the server was sent the literal ${SKYRL_TEST_URL_TOKEN}.
      expect(toolsOf(result, "web").map((t) => t.name)).toEqual(["lookup"])
      expect(result.inventory!.servers[0]!.launch).toEqual({ transport: "http", url: withToken, headers_env: {} })
    })

    it("imports a server over streamable HTTP; a dead URL fails with its address", async () => {
      const result = await run([
        { _tag: "http", name: "web", url },
        { _tag: "http", name: "dead", url: "http://127.0.0.1:9/mcp" }
      ], 5)
      expect(toolsOf(result, "web")).toEqual([
        expect.objectContaining({
          name: "lookup",
          description: "Look a word up",
          inputSchema: { type: "object", properties: { word: { type: "string" } }, required: ["word"] }
        })
      ])
      expect(outcome(result, "dead")).toMatchObject({
        _tag: "failed",
        message: expect.stringContaining("MCP server \"dead\" (http://127.0.0.1:9/mcp)")
      })
      // Why: fetch's own "fetch failed" says nothing; its cause does (port 9 is one fetch refuses to use).
      expect(outcome(result, "dead")).toMatchObject({ message: expect.stringMatching(/fetch failed \(bad port\)/) })
    })
  })
})
