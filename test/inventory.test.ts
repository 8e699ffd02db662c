import { Ajv } from "ajv"
import { Effect, Either, Layer, Logger, LogLevel, Schema } from "effect"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { describe, expect, it } from "vitest"
import {
  commaNamed,
  decodeInventory,
  findTool,
  normalizeJsonSchema,
  normalizeToolInput,
  parseInventoryText
} from "../src/domain/inventory.js"
import { ModelTask } from "../src/domain/task.js"
import { Inventory } from "../src/services/Inventory.js"
import { inventoryFingerprint } from "../src/services/RunJournal.js"
import { StorageLive } from "../src/services/Storage.js"
import { buildOutputSchema, decodeSteps, toStrictParams } from "../src/skyrl/outputSchema.js"
import type { PlanStep } from "../src/skyrl/planValidation.js"
import { repairMessage, schemaProblems, validatePlan } from "../src/skyrl/planValidation.js"
import { checkStrict } from "./support/openaiStrict.js"
import { sampleSchema, seededRandom } from "./support/schemaSample.js"

const FIXTURES = join(__dirname, "fixtures")
const FINANCE_FILE = join(FIXTURES, "inventory", "finance-mcp.json")
const finance = Either.getOrThrow(parseInventoryText(readFileSync(FINANCE_FILE, "utf8"), FINANCE_FILE))

const tmp = () => mkdtempSync(join(tmpdir(), "skyrl-inventory-"))

const step = (n: number, server: string, tool: string, params: unknown): PlanStep => ({ step: n, server, tool, params })

const leftOf = <A, E>(e: Either.Either<A, E>): E => {
  if (Either.isRight(e)) throw new Error("expected a Left")
  return e.left
}

/** The tools of a Hermes-style system prompt (`<tools>[...]</tools>`) in the ShareGPT sample. */
const sharegptTools = (): ReadonlyArray<unknown> => {
  const data = JSON.parse(readFileSync(join(FIXTURES, "sharegpt", "sample_data.json"), "utf8")) as Array<
    Array<{ from: string; value: string }>
  >
  const system = data[1]![0]!.value
  const match = /<tools>\s*(\[[\s\S]*?\])\s*<\/tools>/.exec(system)
  return JSON.parse(match![1]!) as ReadonlyArray<unknown>
}

const typesIn = (schema: unknown): Array<unknown> => {
  const found: Array<unknown> = []
  const walk = (u: unknown): void => {
    if (Array.isArray(u)) u.forEach(walk)
    else if (typeof u === "object" && u !== null) {
      for (const [k, v] of Object.entries(u)) {
        if (k === "type") found.push(v)
        walk(v)
      }
    }
  }
  walk(schema)
  return found
}

describe("normalization of real catalogues", () => {
  it("turns the Hermes-style ShareGPT tools (type dict, parameters) into MCP tools", () => {
    const raw = sharegptTools()
    expect(JSON.stringify(raw)).toContain("\"dict\"")
    const inventory = Either.getOrThrow(decodeInventory({ servers: [{ name: "hermes", tools: raw }] }))
    const tools = inventory.servers[0]!.tools
    expect(tools.map((t) => t.name)).toEqual([
      "list_slack_channels",
      "send_slack_message",
      "get_slack_channel_history",
      "get_slack_user_info",
      "tavily_search",
      "tavily_search_news",
      "tavily_extract"
    ])
    for (const t of tools) {
      expect(t.inputSchema.type).toBe("object")
      expect(typesIn(t.inputSchema)).not.toContain("dict")
    }
    const extract = tools.find((t) => t.name === "tavily_extract")!
    expect(extract.inputSchema).toMatchObject({
      type: "object",
      properties: { urls: { type: "array", items: { type: "string" } } },
      required: ["urls"]
    })
    // Params written against it validate like any MCP tool.
    expect(validatePlan(inventory, [step(1, "hermes", "tavily_extract", { urls: ["https://x.test"] })])).toEqual([])
    expect(validatePlan(inventory, [step(1, "hermes", "tavily_extract", { urls: "https://x.test" })])).toEqual([
      expect.objectContaining({ path: "params/urls", message: expect.stringContaining("must be array") })
    ])
  })

  it("maps nested type aliases, fills a missing type, removes $schema everywhere, lifts required: true", () => {
    const schema = normalizeJsonSchema({
      $schema: "http://json-schema.org/draft-07/schema#",
      properties: {
        filters: {
          type: "dict",
          properties: { tags: { type: "list", items: { type: "str" } }, score: { type: "float", required: true } }
        },
        anything: { type: "any", description: "free" },
        pair: { anyOf: [{ type: "int" }, { type: "bool" }] },
        note: { type: "string", enum: ["dict", "list"], default: "dict" },
        nested: { $schema: "x", properties: { a: { type: "integer" } } }
      }
    })
    expect(schema).toEqual({
      type: "object",
      properties: {
        filters: {
          type: "object",
          properties: { tags: { type: "array", items: { type: "string" } }, score: { type: "number" } },
          required: ["score"]
        },
        anything: { description: "free" },
        pair: { anyOf: [{ type: "integer" }, { type: "boolean" }] },
        note: { type: "string", enum: ["dict", "list"], default: "dict" },
        nested: { type: "object", properties: { a: { type: "integer" } } }
      }
    })
  })

  it("accepts parameters / input_schema / OpenAI function wrappers as the input schema", () => {
    const schema = { type: "object", properties: { q: { type: "string" } }, required: ["q"] }
    const forms = [
      { name: "a", parameters: schema },
      { name: "a", input_schema: schema },
      { type: "function", function: { name: "a", description: "d", parameters: schema } },
      { name: "a", inputSchema: { ...schema, $schema: "http://json-schema.org/draft-07/schema#" }, title: "A" }
    ]
    for (const form of forms) expect((normalizeToolInput(form) as { inputSchema: unknown }).inputSchema).toEqual(schema)
  })
})

describe("loading inventory files", () => {
  const load = async (value: unknown, servers?: ReadonlyArray<string>) => {
    const dir = tmp()
    const file = join(dir, "inv.json")
    writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value))
    return {
      file,
      result: await Effect.runPromise(
        Effect.either(
          Effect.provide(Inventory, Inventory.fromFile(file, { servers }).pipe(Layer.provide(StorageLive)))
        )
      )
    }
  }
  const tool = (name: string, inputSchema: unknown = { type: "object", properties: {} }) => ({ name, inputSchema })

  it("a recursive input schema ($ref to the root) loads and validates params at every level", () => {
    // before: "inputSchema: invalid JSON Schema: can't resolve reference # from id #", the whole inventory refused
    const schema = { type: "object", properties: { message: { type: "string" }, child: { $ref: "#" } } }
    const inventory = Either.getOrThrow(
      parseInventoryText(JSON.stringify({ servers: [{ name: "s", tools: [{ name: "t", inputSchema: schema }] }] }), "x")
    )
    expect(schemaProblems(inventory)).toEqual([])
    expect(validatePlan(inventory, [step(1, "s", "t", { message: "a", child: { child: { message: "b" } } })])).toEqual(
      []
    )
    expect(validatePlan(inventory, [step(1, "s", "t", { child: { child: { message: 3 } } })])).toEqual([
      expect.objectContaining({
        path: "params/child/child/message",
        message: expect.stringContaining("must be string")
      })
    ])
    // closed as any object schema is (reject mode): an unknown key deep down is named
    expect(validatePlan(inventory, [step(1, "s", "t", { child: { mesage: "x" } })])).toEqual([
      expect.objectContaining({ path: "params/child/mesage" })
    ])
  })

  it("loads the bundled finance inventory by default (5 servers, 25 tools)", async () => {
    const service = await Effect.runPromise(
      Effect.provide(Inventory, Inventory.fromFile(undefined).pipe(Layer.provide(StorageLive)))
    )
    expect(service.inventory.servers.map((s) => s.name)).toEqual([
      "fmp",
      "polygon",
      "python_execution",
      "slack",
      "tavily"
    ])
    expect(service.toolModes.length).toBe(25)
  })

  it("names the path and the offending entry of a malformed file", async () => {
    const bad = {
      servers: [
        { name: "a", tools: [tool("t1")] },
        { name: "b", tools: [tool("t1"), tool("t2"), "not a tool"] }
      ]
    }
    const { file, result } = await load(bad)
    const error = leftOf(result)
    expect(error._tag).toBe("InventoryError")
    expect(error.message).toContain(file)
    expect(error.message).toContain("servers[1].tools[2]")

    const cases: ReadonlyArray<readonly [unknown, string]> = [
      [{ servers: [{ name: "a", tools: [tool("t"), tool("u", "oops")] }] }, "servers[0].tools[1].inputSchema"],
      // was: "Expected { readonly [x: string]: JsonValue }, actual true"
      [
        { servers: [{ name: "a", tools: [tool("t", true)] }] },
        "servers[0].tools[0].inputSchema: must be a JSON Schema object, got boolean"
      ],
      [{ servers: [{ name: "a", tools: [{ description: "no name" }] }] }, "servers[0].tools[0].name"],
      [{ servers: [{ name: "a", tools: [tool("t"), tool("t")] }] }, "servers[0].tools[1].name: duplicate tool name"],
      [{ servers: [{ name: "a", tools: [] }, { name: "a", tools: [] }] }, "servers[1].name: duplicate server name"],
      [{ servers: [{ name: "a", tools: [tool("t", { type: "string" })] }] }, "servers[0].tools[0].inputSchema.type"],
      [
        { servers: [{ name: "a", tools: [tool("t", { type: "object", properties: { x: { type: "strnig" } } })] }] },
        "servers[0].tools[0].inputSchema: invalid JSON Schema"
      ],
      [{ tools: [] }, "servers: must be an array"],
      ["{ not json", "not a readable inventory: not valid JSON"] // was "not valid JSON": read as the file given being broken
    ]
    for (const [value, expected] of cases) {
      const { file: f, result: r } = await load(value)
      const e = leftOf(r)
      expect(e.message).toContain(f)
      expect(e.message).toContain(expected)
    }
    const missing = await Effect.runPromise(
      Effect.either(
        Effect.provide(Inventory, Inventory.fromFile("/nonexistent/inv.json").pipe(Layer.provide(StorageLive)))
      )
    )
    expect(leftOf(missing).message).toMatch(/\/nonexistent\/inv\.json: cannot read: no such file/)
    // before: "line 2 is not valid UTF-8: byte 0x8b ..." (the gzip header read as text)
    const gzipped = join(tmp(), "inv.json")
    writeFileSync(gzipped, gzipSync(readFileSync(FINANCE_FILE)))
    const zipped = await Effect.runPromise(
      Effect.either(Effect.provide(Inventory, Inventory.fromFile(gzipped).pipe(Layer.provide(StorageLive))))
    )
    expect(leftOf(zipped).message).toBe(
      `${gzipped}: not a readable inventory: not valid JSON: it is gzip-compressed; decompress it first (gunzip)`
    )
  })

  it("a server name that breaks a line or the cassette key is refused naming the file and the name's path", async () => {
    // Before: each of these loaded; "fm\np" split the prompt's `server:` line in two and made the cassette
    // key of (fm\np, t) that of (fm, p\nt).
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["fm\np", "holds a line feed (U+000A at character 2)"],
      ["fm\rp", "holds a carriage return (U+000D at character 2)"],
      ["fm\tp", "holds a tab (U+0009 at character 2)"],
      ["fm\u0000p", "holds a NUL (U+0000 at character 2)"],
      ["fm\u001bp", "holds a control character (U+001B at character 2)"],
      ["fm\u007fp", "holds a control character (U+007F at character 2)"],
      ["fm\u0085p", "holds a next-line character (U+0085 at character 2)"],
      ["fm\u2028p", "holds a line separator (U+2028 at character 2)"],
      ["fm\ud800p", "holds a lone surrogate (U+D800 at character 2)"],
      ["", "servers[1].name: must be a non empty string, got \"\""],
      ["   ", "servers[1].name: must be a string with no leading or trailing whitespace, got \"   \""]
    ]
    for (const [name, expected] of cases) {
      const { file, result } = await load({
        servers: [{ name: "ok", tools: [tool("t")] }, { name, tools: [tool("t")] }]
      })
      const e = leftOf(result)
      expect(e._tag).toBe("InventoryError")
      expect(e.message).toContain(`${file}: servers[1].name: `)
      expect(e.message).toContain(expected)
      expect(e.exitCode).toBe(1)
    }
    // Unusual but harmless names still load: spaces, `/`, `:`, non-ASCII letters, a `.` that names no tool twice.
    for (const name of ["fm p", "org/fmp", "fmp:v2", "Börse", "fmp.v2"]) {
      const { result } = await load({ servers: [{ name: "ok", tools: [tool("t")] }, { name, tools: [tool("t")] }] })
      expect(Either.getOrThrow(result).inventory.servers[1]!.name).toBe(name)
    }
  })

  it("a tool name that breaks a line or the cassette key is refused as a server name is, naming servers[i].tools[j].name", async () => {
    // Before: each of these loaded; "fmp_get\nquote" split `tools list`'s line and the prompt's `- tool(...)`
    // line in two, and put a line feed into a field of the cassette key (server \n tool \n params).
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["fmp_get\nquote", "holds a line feed (U+000A at character 7): a tool name is written as one line"],
      ["fmp_get\rquote", "holds a carriage return (U+000D at character 7)"],
      ["fmp_get\tquote", "holds a tab (U+0009 at character 7)"],
      ["fmp\u0000", "holds a NUL (U+0000 at character 3)"],
      ["fmp\u007f", "holds a control character (U+007F at character 3)"],
      ["fmp\u0085", "holds a next-line character (U+0085 at character 3)"],
      ["fmp\u2029x", "holds a paragraph separator (U+2029 at character 3)"],
      ["fmp\udc00x", "holds a lone surrogate (U+DC00 at character 3)"]
    ]
    for (const [name, expected] of cases) {
      const { file, result } = await load({
        servers: [{ name: "ok", tools: [tool("t")] }, { name: "fmp", tools: [tool("fine"), tool(name)] }]
      })
      const e = leftOf(result)
      expect(e._tag).toBe("InventoryError")
      expect(e.message).toContain(`${file}: servers[1].tools[1].name: ${expected}`)
      expect(e.exitCode).toBe(1)
    }
    // Unusual but harmless tool names still load: a space, `/`, `.`, `:`, non-ASCII letters, a pair of surrogates.
    for (const name of ["get quote", "fmp/get", "fmp.get", "fmp:get", "Börse", "\ud83d\ude00"]) {
      const { result } = await load({ servers: [{ name: "fmp", tools: [tool(name)] }] })
      expect(Either.getOrThrow(result).inventory.servers[0]!.tools[0]!.name).toBe(name)
    }
  })

  it("a comma in a server or tool name is refused: the comma-separated --servers and --allow-side-effects could not name it", async () => {
    // Before: both loaded, and `--servers fmp,x` failed with `unknown servers "fmp", "x"`; nothing could name them.
    const server = await load({ servers: [{ name: "ok", tools: [tool("t")] }, { name: "fmp,x", tools: [tool("q")] }] })
    expect(leftOf(server.result).message).toBe(
      `${server.file}: servers[1].name: holds a comma (at character 3): --servers and --allow-side-effects take ` +
        "comma-separated names, so no list could name this server; name it otherwise in the inventory"
    )
    const toolName = await load({ servers: [{ name: "fmp", tools: [tool("q"), tool("get,quote")] }] })
    expect(leftOf(toolName.result).message).toBe(
      `${toolName.file}: servers[0].tools[1].name: holds a comma (at character 3): --allow-side-effects takes ` +
        "comma-separated names, so no list could name this tool (MCP asks tool names to hold none)"
    )
    // Named otherwise, --servers names it.
    const renamed = await load(
      { servers: [{ name: "ok", tools: [tool("t")] }, { name: "fmp_x", tools: [tool("q")] }] },
      [
        "fmp_x"
      ]
    )
    expect(Either.getOrThrow(renamed.result).inventory.servers.map((s) => s.name)).toEqual(["fmp_x"])
  })

  it("an inventory a run kept (commas accepted) loads a comma in a name and lists it; nothing else is eased", () => {
    // Before: refused like any inventory, so a run made with it before 2026-12-02 could not be collected or rebuilt.
    const raw = {
      servers: [{ name: "ok", tools: [tool("t")] }, { name: "fmp,x", tools: [tool("q"), tool("get,quote")] }]
    }
    const kept = Either.getOrThrow(decodeInventory(raw, "inv.json", { commas: "accepted" }))
    expect(kept.servers.map((s) => s.name)).toEqual(["ok", "fmp,x"])
    expect(commaNamed(kept)).toEqual([
      { entry: "servers[1].name", kind: "server", name: "fmp,x" },
      { entry: "servers[1].tools[1].name", kind: "tool", name: "get,quote" }
    ])
    // The run's hash of it can be taken (it encodes the inventory with the name schemas).
    expect(inventoryFingerprint(kept)).toMatch(/^[0-9a-f]{64}$/)
    expect(leftOf(decodeInventory(raw, "inv.json")).message).toBe(
      "inv.json: servers[1].name: holds a comma (at character 3): --servers and --allow-side-effects take " +
        "comma-separated names, so no list could name this server; name it otherwise in the inventory"
    )
    const lineFeed = { servers: [{ name: "fmp,x", tools: [tool("get\nquote")] }] }
    expect(leftOf(decodeInventory(lineFeed, "inv.json", { commas: "accepted" })).message).toMatch(
      /^inv\.json: servers\[0\]\.tools\[0\]\.name: holds a line feed/
    )
  })

  it("skyrl schema inventory carries the name pattern for tool names as for server names", async () => {
    const { jsonSchemaOf } = await import("../src/cli/schema.js")
    const schema = (await Effect.runPromise(jsonSchemaOf("inventory"))) as unknown as { $defs: Record<string, any> }
    const toolName = schema.$defs.InventoryServer.properties.tools.items.properties.name
    expect(toolName).toEqual({ $ref: "#/$defs/ToolName" })
    expect(schema.$defs.ToolName.pattern).toBe(schema.$defs.ServerName.pattern)
    const validate = new Ajv({ strict: false }).compile(schema)
    const inventoryWith = (server: string, tool: string) => ({ servers: [{ name: server, tools: [{ name: tool }] }] })
    expect(validate(inventoryWith("fmp", "get_quote"))).toBe(true)
    // Before: the tool's name was a NonEmptyTrimmedString: this validated.
    expect(validate(inventoryWith("fmp", "get\nquote"))).toBe(false)
    expect(validate(inventoryWith("fm\np", "get_quote"))).toBe(false)
    expect(validate(inventoryWith("fm,p", "get_quote"))).toBe(false)
    expect(validate(inventoryWith("fmp", "get,quote"))).toBe(false)
  })

  it("two tools whose server.tool names are the same text are refused (a call name or allow entry would name both)", async () => {
    // Before: this loaded, and a prompt offering both `b.c` tools and both `c` tools called two tools "a.b.c".
    const inv = {
      servers: [
        { name: "a", tools: [tool("b.c")] },
        { name: "a.b", tools: [tool("c")] },
        { name: "z", tools: [tool("b.c"), tool("c")] }
      ]
    }
    const { file, result } = await load(inv)
    const e = leftOf(result)
    expect(e.message).toContain(`${file}: servers[1].name: server "a.b" and its tool "c" (servers[1].tools[0]) make`)
    expect(e.message).toContain(`the name "a.b.c", as server "a" and its tool "b.c" (servers[0].tools[0]) do`)
  })

  it("--servers keeps only the named servers and rejects unknown names", async () => {
    const { result } = await load(JSON.parse(readFileSync(FINANCE_FILE, "utf8")), ["tavily", "fmp"])
    const service = Either.getOrThrow(result)
    expect(service.inventory.servers.map((s) => s.name)).toEqual(["fmp", "tavily"])
    expect(service.toolModes.map((c) => c.tool)).not.toContain("polygon_get_aggs")
    expect(service.validatePlan([step(1, "polygon", "polygon_get_news", { ticker: "AAPL" })])[0]).toMatchObject({
      path: "server"
    })
    const unknown = leftOf((await load(JSON.parse(readFileSync(FINANCE_FILE, "utf8")), ["fmp", "yahoo"])).result)
    expect(unknown.message).toContain("\"yahoo\"")
    expect(unknown.message).toContain("known: fmp, polygon, python_execution, slack, tavily")
  })
})

describe("plan validation", () => {
  it("refuses a param number beyond a double's range (1e400 reads as Infinity), which the schema took for an integer", () => {
    // Until 2026-12-02 only verify refused it: convert wrote the row with null in its place, validate passed it.
    const issues = validatePlan(finance, [
      step(1, "polygon", "polygon_get_news", { ticker: "AAPL", limit: JSON.parse("1e400") }),
      step(2, "fmp", "fmp_get_quote", { symbol: "AAPL", extra: [1, { deep: -Infinity }] })
    ])
    expect(issues.map((i) => `${i.step} ${i.path}`)).toEqual(["1 params/limit", "2 params/extra/1/deep"])
    expect(issues[0]!.message).toContain("a number beyond a double's range")
    expect(validatePlan(finance, [step(1, "polygon", "polygon_get_news", { ticker: "AAPL", limit: 1e308 })]))
      .toEqual([])
  })

  it("checks server, tool, params type, enum, required, unknown params and numbering", () => {
    const issues = validatePlan(finance, [
      step(1, "fmp", "fmp_get_quote", { symbol: "AAPL" }),
      step(2, "yahoo", "fmp_get_quote", { symbol: "AAPL" }),
      step(3, "fmp", "polygon_get_news", { ticker: "AAPL" }),
      step(4, "fmp", "fmp_get_qoute", { symbol: "AAPL" }),
      step(5, "fmp", "fmp_get_income_statement", { symbol: "AAPL", period: "quarter", limit: "2" }),
      step(6, "tavily", "tavily_search", ["query"]),
      step(8, "slack", "send_slack_message", { channel: "general" })
    ])
    const summary = issues.map((i) => `${i.step} ${i.tool} ${i.path}`)
    expect(summary).toEqual([
      "2 fmp_get_quote server",
      "3 polygon_get_news tool",
      "4 fmp_get_qoute tool",
      "5 fmp_get_income_statement params/period",
      "5 fmp_get_income_statement params/limit",
      "6 tavily_search params",
      "8 send_slack_message step",
      "8 send_slack_message params/message"
    ])
    const byPath = (p: string, s: number) => issues.find((i) => i.path === p && i.step === s)!.message
    expect(byPath("server", 2)).toContain("unknown server \"yahoo\"")
    expect(byPath("server", 2)).toContain("belongs to server \"fmp\"")
    expect(byPath("tool", 3)).toBe("tool \"polygon_get_news\" belongs to server \"polygon\", not \"fmp\"")
    expect(byPath("tool", 4)).toContain("did you mean \"fmp_get_quote\"")
    expect(byPath("params/period", 5)).toBe("must be one of \"annual\", \"quarterly\" (got \"quarter\")")
    expect(byPath("params/limit", 5)).toBe("must be integer (got string \"2\")")
    expect(byPath("params", 6)).toBe("must be an object (got array)")
    expect(byPath("params/message", 8)).toBe("missing required param")
  })

  it("reports nested paths and formats, and honours schemas that allow extra keys", () => {
    const inventory = Either.getOrThrow(decodeInventory({
      servers: [{
        name: "fs",
        tools: [{
          name: "edit_file",
          inputSchema: {
            type: "object",
            properties: {
              path: { type: "string" },
              edits: {
                type: "array",
                items: {
                  type: "object",
                  properties: { oldText: { type: "string" }, newText: { type: "string" } },
                  required: ["oldText", "newText"]
                }
              },
              when: { type: "string", format: "date" },
              meta: { type: "object", additionalProperties: true }
            },
            required: ["path", "edits"]
          }
        }]
      }]
    }))
    const issues = validatePlan(inventory, [
      step(1, "fs", "edit_file", {
        path: "/a",
        edits: [{ oldText: "x", newText: "y" }, { oldText: 1, new_text: "z" }],
        when: "tomorrow",
        meta: { anything: true }
      })
    ])
    expect(issues.map((i) => [i.path, i.message])).toEqual([
      ["params/edits/1/newText", "missing required field"],
      ["params/edits/1/new_text", "unknown field (declared: oldText, newText)"],
      ["params/edits/1/oldText", "must be string (got integer 1)"],
      ["params/when", "must be a valid date (got \"tomorrow\")"]
    ])
    expect(validatePlan(inventory, [step(1, "fs", "edit_file", { path: "/a", edits: [], extra: 1 })], {
      unknownParams: "allow"
    })).toEqual([])
  })

  it("an empty plan is invalid", () => {
    expect(validatePlan(finance, [])).toEqual([expect.objectContaining({ path: "tool_sequence" })])
  })

  it("repairMessage names every step, tool and path", () => {
    const issues = validatePlan(finance, [
      step(1, "polygon", "polygon_get_aggs", { symbol: "AAPL", from: "2025-01-01", to: "2025-02-01" })
    ])
    const text = repairMessage(issues)
    expect(text).toContain("step 1 polygon/polygon_get_aggs params/ticker: missing required param")
    expect(text).toContain("step 1 polygon/polygon_get_aggs params/symbol: unknown param (declared: ticker, start_date")
    expect(text.split("\n").filter((l) => l.startsWith("- "))).toHaveLength(issues.length)
  })
})

describe("replaying the 7 recorded answers against the finance inventory", () => {
  const dir = join(FIXTURES, "openai", "chat")
  const answers = readdirSync(dir).sort().map((file) => {
    const response = JSON.parse(readFileSync(join(dir, file), "utf8")) as {
      choices: Array<{ message: { content: string } }>
    }
    const task = JSON.parse(response.choices[0]!.message.content) as { tool_sequence: Array<PlanStep> }
    return { file, steps: task.tool_sequence }
  })

  // Expectations read off the fixtures and data/inventory/finance-mcp.json by hand:
  // - task_0001 of 2025-09-24 calls polygon_get_aggs with symbol/multiplier/timespan/from/to/adjusted
  //   (the server wants ticker/start_date/end_date[/frequency]), fmp_get_income_statement with
  //   period "quarter" (enum: annual|quarterly), and polygon_get_news with published_after (undeclared).
  // - task_0004 passes profile_description to fmp_get_quote (declares only symbol).
  // - task_0026 passes limit to tavily_search (declares query, max_results, search_depth).
  const expected: Record<string, ReadonlyArray<string>> = {
    "20250924T230511014009Z_task_0001.json": [
      "3 polygon_get_aggs params/ticker",
      "3 polygon_get_aggs params/start_date",
      "3 polygon_get_aggs params/end_date",
      "3 polygon_get_aggs params/symbol",
      "3 polygon_get_aggs params/multiplier",
      "3 polygon_get_aggs params/timespan",
      "3 polygon_get_aggs params/from",
      "3 polygon_get_aggs params/to",
      "3 polygon_get_aggs params/adjusted",
      "4 fmp_get_income_statement params/period",
      "5 polygon_get_news params/published_after"
    ],
    "20250930T002439632892Z_task_0001.json": [],
    "20251005T164858160796Z_task_0001.json": [],
    "20251005T171558480806Z_task_0004.json": ["2 fmp_get_quote params/profile_description"],
    "20251006T002110830407Z_task_0007.json": [],
    "20251006T010959218268Z_task_0006.json": [],
    "20251006T010959218268Z_task_0026.json": ["4 tavily_search params/limit"]
  }

  it("reports each invalid step with its tool and failing param path; the valid ones pass", () => {
    expect(answers.map((a) => a.file)).toEqual(Object.keys(expected).sort())
    for (const { file, steps } of answers) {
      const issues = validatePlan(finance, steps)
      expect(issues.map((i) => `${i.step} ${i.tool} ${i.path}`).sort(), file).toEqual([...expected[file]!].sort())
    }
    const valid = answers.filter((a) => validatePlan(finance, a.steps).length === 0)
    expect(valid).toHaveLength(4)
  })

  it("with plain JSON Schema semantics (extra keys allowed) only the wrong names and enum remain", () => {
    const invalid = answers.filter((a) => validatePlan(finance, a.steps, { unknownParams: "allow" }).length > 0)
    expect(invalid.map((a) => a.file)).toEqual(["20250924T230511014009Z_task_0001.json"])
    expect(validatePlan(finance, invalid[0]!.steps, { unknownParams: "allow" }).map((i) => i.path)).toEqual([
      "params/ticker",
      "params/start_date",
      "params/end_date",
      "params/period"
    ])
  })
})

describe("strict output schema", () => {
  it("passes OpenAI's strict rules for the finance inventory, every tool constrained", () => {
    const { choices, schema, violations } = buildOutputSchema(finance, { maxSteps: 8 })
    expect(violations).toEqual([])
    const report = checkStrict(schema)
    expect(report.violations).toEqual([])
    expect(report.maxDepth).toBeLessThanOrEqual(10)
    expect(choices.filter((c) => c.mode === "strict")).toHaveLength(25)
    expect(JSON.stringify(schema)).not.toMatch(/"(default|allOf|not|if|then|else|oneOf|\$schema)"\s*:/)
    // The rest of the schema is the ModelTask contract.
    const properties = schema.properties as Record<string, unknown>
    expect(Object.keys(properties).sort()).toEqual(Object.keys(ModelTask.fields).sort())
    expect((properties.tool_sequence as Record<string, unknown>).maxItems).toBe(8)
  })

  it("every branch pins server and tool to one inventory pair, and the pairs are exactly the inventory's", () => {
    const { schema } = buildOutputSchema(finance)
    const items = ((schema.properties as any).tool_sequence.items as { anyOf: Array<any> }).anyOf
    const fields = ["server", "tool", "params", "depends_on", "derived_params"]
    const pairs = items.map((b) => {
      expect(b.additionalProperties).toBe(false)
      expect(b.required).toEqual(fields)
      expect(Object.keys(b.properties)).toEqual(fields)
      expect(b.properties.server).toEqual({ type: "string", const: expect.any(String) })
      expect(b.properties.tool).toEqual({ type: "string", const: expect.any(String) })
      expect(b.properties.depends_on).toEqual({ type: "array", items: { type: "integer" } })
      // derived_params names only that tool's params (none for a tool without params).
      const declared = Object.keys(
        (findTool(finance, b.properties.tool.const, b.properties.server.const)!.tool.inputSchema as any).properties ??
          {}
      )
      expect(b.properties.derived_params).toEqual(
        declared.length === 0
          ? { type: "array", items: { type: "string" }, maxItems: 0 }
          : { type: "array", items: { type: "string", enum: declared } }
      )
      return `${b.properties.server.const}/${b.properties.tool.const}`
    })
    const inventoryPairs = finance.servers.flatMap((s) => s.tools.map((t) => `${s.name}/${t.name}`))
    expect(pairs).toEqual(inventoryPairs)
  })

  it("a schema-obeying fake model cannot produce an unknown tool or invalid params", () => {
    const { schema } = buildOutputSchema(finance, { maxSteps: 6 })
    const ajv = new Ajv({ strict: false })
    const conforms = ajv.compile(schema)
    const decodeTask = Schema.decodeUnknownSync(ModelTask)
    const random = seededRandom(42)
    const used = new Set<string>()
    for (let i = 0; i < 300; i++) {
      const answer = sampleSchema(schema, random)
      expect(conforms(answer)).toBe(true)
      const task = decodeTask(answer)
      const steps = Either.getOrThrow(decodeSteps(finance, task.tool_sequence))
      for (const s of steps) used.add(`${s.server}/${s.tool}`)
      // What a JSON Schema cannot say (depends_on naming earlier steps, derived params with a value) is
      // checked after decoding; everything else the schema guarantees.
      const provenance = (path: string) => path === "depends_on" || path.startsWith("derived_params/")
      expect(validatePlan(finance, steps).filter((i) => !provenance(i.path))).toEqual([])
    }
    expect(used.size).toBe(25)
    // What a model might try outside the schema is rejected by it.
    const good = sampleSchema(schema, seededRandom(1)) as { tool_sequence: Array<Record<string, unknown>> }
    const tamper = (stepValue: Record<string, unknown>) => ({
      ...good,
      tool_sequence: [{ depends_on: [], derived_params: [], ...stepValue }]
    })
    expect(conforms(tamper({ server: "fmp", tool: "fmp_get_stock_quote", params: { symbol: "A" } }))).toBe(false)
    expect(conforms(tamper({ server: "fmp", tool: "polygon_get_news", params: { ticker: "A", limit: null } }))).toBe(
      false
    )
    expect(conforms(tamper({ server: "fmp", tool: "fmp_get_quote", params: { symbol: "A", extra: 1 } }))).toBe(false)
    expect(conforms(tamper({ server: "fmp", tool: "fmp_get_quote", params: { symbol: "A" } }))).toBe(true)
    // derived_params may name only the tool's own params.
    expect(conforms(tamper({ server: "fmp", tool: "fmp_get_quote", params: { symbol: "A" }, derived_params: ["x"] })))
      .toBe(false)
    expect(
      conforms(
        tamper({
          server: "fmp",
          tool: "fmp_get_quote",
          params: { symbol: "A" },
          depends_on: [1],
          derived_params: ["symbol"]
        })
      )
    ).toBe(true)
  })

  it("stays within the size limits on a large catalogue by turning the biggest tools into JSON strings", () => {
    // 300 tools × 20 params = 6000 params (> 5000 properties), plus one tool with a 1200-value enum.
    const props = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`param_${i}`, { type: "string" }]))
    const big = {
      servers: [{
        name: "big",
        tools: [
          {
            name: "pick",
            inputSchema: {
              type: "object",
              properties: { code: { type: "string", enum: Array.from({ length: 1200 }, (_, i) => `c${i}`) } }
            }
          },
          ...Array.from(
            { length: 300 },
            (_, i) => ({ name: `tool_${i}`, inputSchema: { type: "object", properties: props(20) } })
          )
        ]
      }]
    }
    const inventory = Either.getOrThrow(decodeInventory(big))
    const { choices, schema, violations } = buildOutputSchema(inventory)
    expect(violations).toEqual([])
    const report = checkStrict(schema)
    expect(report.violations).toEqual([])
    expect(report.properties).toBeLessThanOrEqual(5000)
    const demoted = choices.filter((c) => c.mode === "json-string")
    expect(demoted[0]).toMatchObject({ tool: "pick", reason: expect.stringContaining("strict limits") })
    // The derived_params enums (6001 names) go first: plain strings. Then only as many tools as needed.
    // Properties: 13 of the task itself (8 fields, rubric 2, criterion 3), 5 per branch × 301, params
    // 6001 → 7519; "pick" saves 1, each tool_i saves 20, so 126 of them (2521 saved) bring it to
    // 4998 ≤ 5000: 127 demoted.
    expect(demoted.length).toBe(127)
    expect(report.properties).toBe(4998)
    const branches = ((schema.properties as any).tool_sequence.items as { anyOf: Array<any> }).anyOf
    expect(branches[1].properties.derived_params).toEqual({ type: "array", items: { type: "string" } })
    expect(choices).toHaveLength(301)
  })

  it("hoists $defs, and falls back to a JSON string for schemas that cannot be strict", () => {
    const strictOk = toStrictParams({
      type: "object",
      $defs: { Range: { type: "object", properties: { from: { type: "string" }, to: { type: "string" } } } },
      properties: { range: { $ref: "#/$defs/Range" }, note: { type: "string", minLength: 3, default: "x" } },
      required: ["range"]
    }, "srv.tool.")
    expect(strictOk).toEqual({
      ok: true,
      schema: {
        type: "object",
        properties: { range: { $ref: "#/$defs/srv.tool.Range" }, note: { type: ["string", "null"] } },
        required: ["range", "note"],
        additionalProperties: false
      },
      defs: {
        "srv.tool.Range": {
          type: "object",
          properties: { from: { type: ["string", "null"] }, to: { type: ["string", "null"] } },
          required: ["from", "to"],
          additionalProperties: false
        }
      }
    })
    const notStrict: ReadonlyArray<readonly [unknown, string]> = [
      [{ type: "object", properties: { m: { type: "object", additionalProperties: { type: "string" } } } }, "params/m"],
      [{ type: "object", properties: { m: { type: "object" } } }, "open object"],
      [{ type: "object", properties: { v: {} } }, "accepts any value"],
      [{ type: "object", properties: { v: { allOf: [{ type: "string" }, { minLength: 1 }] } } }, "allOf"],
      [{ type: "object", properties: { v: { type: "string", not: { enum: ["x"] } } } }, "not"],
      [{ type: "object", additionalProperties: true }, "open object"],
      [
        { type: "object", properties: { a: { type: "string" } }, required: ["a", "b"] },
        "requires undeclared properties (b)"
      ]
    ]
    for (const [input, reason] of notStrict) {
      const result = toStrictParams(input as Record<string, unknown>)
      expect(result.ok).toBe(false)
      if (!result.ok) expect(result.reason).toContain(reason)
    }
  })

  it("logs the params mode per tool once, and decodes JSON-string params after validation", async () => {
    const lines: Array<string> = []
    const capture = Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) => {
        lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
      })
    )
    const inventory = {
      servers: [{
        name: "kv",
        tools: [
          {
            name: "put",
            inputSchema: { type: "object", properties: { key: { type: "string" }, value: { type: "object" } } }
          },
          { name: "get", inputSchema: { type: "object", properties: { key: { type: "string" } }, required: ["key"] } }
        ]
      }]
    }
    const service = await Effect.runPromise(
      Effect.provide(
        Inventory,
        Inventory.fromValue(inventory).pipe(Layer.provide(Layer.merge(capture, Logger.minimumLogLevel(LogLevel.Debug))))
      )
    )
    expect(service.toolModes).toEqual([
      {
        server: "kv",
        tool: "put",
        mode: "json-string",
        reason: "params/value: is an object without declared properties (an open object)"
      },
      { server: "kv", tool: "get", mode: "strict" }
    ])
    expect(lines.filter((l) => l.includes("kv/put"))).toEqual([
      "INFO tool kv/put: params as a JSON string, validated after decoding " +
      "(params/value: is an object without declared properties (an open object))"
    ])
    expect(lines.filter((l) => l.includes("kv/get"))).toEqual(["DEBUG tool kv/get: params constrained (strict schema)"])
    expect(checkStrict(service.outputJsonSchema()).violations).toEqual([])

    const decoded = service.checkModelSteps([
      { server: "kv", tool: "put", params: "{\"key\":\"a\",\"value\":{\"n\":1}}" },
      { server: "kv", tool: "get", params: { key: "a" } }
    ])
    expect(Either.getOrThrow(decoded)).toEqual([
      { step: 1, server: "kv", tool: "put", params: { key: "a", value: { n: 1 } } },
      { step: 2, server: "kv", tool: "get", params: { key: "a" } }
    ])
    expect(leftOf(service.checkModelSteps([{ server: "kv", tool: "put", params: "{key: a}" }]))[0]).toMatchObject({
      step: 1,
      path: "params",
      message: expect.stringContaining("is not valid JSON")
    })
    expect(leftOf(service.checkModelSteps([{ server: "kv", tool: "put", params: "{\"key\": 3}" }]))[0]).toMatchObject({
      path: "params/key",
      message: "must be string (got integer 3)"
    })
  })

  it("decodeSteps drops the nulls the strict form introduced for optional params, nested too", () => {
    const inventory = Either.getOrThrow(decodeInventory({
      servers: [{
        name: "s",
        tools: [{
          name: "t",
          inputSchema: {
            type: "object",
            properties: {
              a: { type: "string" },
              b: { type: "integer" },
              items: {
                type: "array",
                items: { type: "object", properties: { x: { type: "string" }, y: { type: "string" } }, required: ["x"] }
              }
            },
            required: ["a"]
          }
        }]
      }]
    }))
    const steps = Either.getOrThrow(decodeSteps(inventory, [
      { server: "s", tool: "t", params: { a: "A", b: null, items: [{ x: "1", y: null }] } },
      { server: "s", tool: "t", params: { a: null, b: 2, items: null } }
    ]))
    expect(steps).toEqual([
      { step: 1, server: "s", tool: "t", params: { a: "A", items: [{ x: "1" }] } },
      { step: 2, server: "s", tool: "t", params: { a: null, b: 2 } }
    ])
    // A required param sent as null stays, so validation reports it.
    expect(validatePlan(inventory, steps).map((i) => `${i.step} ${i.path}`)).toEqual(["2 params/a"])
  })
})
