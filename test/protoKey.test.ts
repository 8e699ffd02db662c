/**
 * `__proto__` is a JSON key like any other (`JSON.parse` makes it an own key), in a step's params, a row's
 * `tool_schemas` and `task_metadata`, a task's params, a model's answer. Copies made key by key with
 * `out[key] = value` (the Schema's Record and Struct decoding, hand-written copies) made it the copy's
 * prototype instead: `{"__proto__":{"message":"hi"}}` passed verify's schema stage (`message` read through the
 * prototype), the server received `{}` and the row was a tool-error; `{"message":"hi","__proto__":{"x":1}}`
 * was rejected as `params.x: unknown param`, or with a schema that allows more params ran and was written
 * without the key; a convert task read by the Schema was written with `"params":"{}"`. Now the key is data
 * everywhere: the plan is judged and run as written, and written back as read.
 */
import { Either, Schema } from "effect"
import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { normalizeJsonSchema } from "../src/domain/inventory.js"
import { TaskMetadata } from "../src/domain/row.js"
import { ModelTask, Task } from "../src/domain/task.js"
import { callKey, canonicalJson } from "../src/skyrl/canonical.js"
import { dropOptionalNulls } from "../src/skyrl/outputSchema.js"
import { makeStrict } from "../src/skyrl/strictSchema.js"
import { runCli } from "./support/cli.js"
import { rowFor, serverBin, writeJsonl } from "./support/verifyRows.js"

const dir = mkdtempSync(join(tmpdir(), "skyrl-proto-key-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const at = (name: string) => join(dir, name)
const jsonl = (file: string): Array<any> =>
  readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))

/** An own, enumerable `__proto__` key, and the object's prototype Object's. */
const expectOwnProtoKey = (o: object, value: unknown) => {
  expect(Object.keys(o)).toContain("__proto__")
  expect(Object.getOwnPropertyDescriptor(o, "__proto__")?.value).toEqual(value)
  expect(Object.getPrototypeOf(o)).toBe(Object.prototype)
}

const echo = (extra: Record<string, unknown> = {}) => ({
  name: "echo",
  description: "Echoes",
  inputSchema: {
    type: "object",
    properties: { message: { type: "string" } },
    required: ["message"],
    ...extra
  },
  annotations: { readOnlyHint: true }
})
const inventory = (file: string, extra: Record<string, unknown> = {}) => {
  writeFileSync(at(file), JSON.stringify({ servers: [{ name: "everything", tools: [echo(extra)] }] }))
  return at(file)
}
writeFileSync(
  at("mcp.json"),
  JSON.stringify({
    mcpServers: { everything: { command: process.execPath, args: [serverBin("server-everything"), "stdio"] } }
  })
)

/** An echo row whose params text (and metadata text, when given) is exactly this JSON. */
/** `skyrl verify` of `rows` on server-everything (mcp.json), its output and cassettes in `dir`. */
const verify = (rows: string, inv: string, out: string, tapes: string) =>
  runCli([
    "verify",
    rows,
    "--inventory",
    inv,
    "--servers-config",
    at("mcp.json"),
    "--out",
    at(out),
    "--cassettes",
    at(tapes)
  ])

const echoRow = (id: string, params: string, metadata?: string) => {
  const row = rowFor(id, [{ server: "everything", tool: "echo", params: { message: id } }])
  row.reward_spec.ground_truth.tool_sequence[0].params = params
  if (metadata !== undefined) row.extra_info.task_metadata = metadata
  return row
}

describe("__proto__ as a key of params (built CLI)", () => {
  it("validate and verify judge the params as written: no field seen through a prototype", async () => {
    const inv = inventory("inv.json")
    const rows = writeJsonl(at("rows.jsonl"), [
      echoRow("only-proto", "{\"__proto__\":{\"message\":\"hi\"}}"),
      echoRow("proto-too", "{\"message\":\"hi\",\"__proto__\":{\"x\":1}}")
    ])
    const validated = await runCli(["validate", rows, "--inventory", inv])
    expect(validated.status).toBe(1)
    expect(validated.stdout).toContain(
      "row 0 reward_spec.ground_truth.tool_sequence[0].params: step 1 everything/echo: params.message: missing " +
        "required param; params.__proto__: unknown param (declared: message)"
    )
    expect(validated.stdout).toContain(
      "row 1 reward_spec.ground_truth.tool_sequence[0].params: step 1 everything/echo: params.__proto__: unknown " +
        "param (declared: message)"
    )

    const verified = await verify(rows, inv, "v.jsonl", "tapes")
    expect(verified.status).toBe(1)
    const rejects = jsonl(at("v.jsonl.rejects.jsonl"))
    // Before: row 0 ran (the server got {} and answered an error: tool-error), row 1 named `params.x`.
    expect(rejects.map((r) => [r.row, r.stage, r.field, r.reason])).toEqual([
      [
        0,
        "schema",
        "reward_spec.ground_truth.tool_sequence[0].params.message",
        "step 1 everything/echo params/message: missing required param; step 1 everything/echo params/__proto__: " +
        "unknown param (declared: message)"
      ],
      [
        1,
        "schema",
        "reward_spec.ground_truth.tool_sequence[0].params.__proto__",
        "step 1 everything/echo params/__proto__: unknown param (declared: message)"
      ]
    ])
    expect(verified.stdout).toContain("statuses: verified 0, tool-error 0,")
  })

  it("verify runs, records and writes a __proto__ key a schema allows, metadata's too, as read", async () => {
    const inv = inventory("open.json", { additionalProperties: true })
    const params = "{\"message\":\"hi\",\"__proto__\":{\"x\":1}}"
    const metadata = "{\"source\":\"convert\",\"__proto__\":{\"source\":\"other\",\"a\":1},\"z\":2}"
    const rows = writeJsonl(at("open.jsonl"), [echoRow("open", params, metadata)])
    const r = await verify(rows, inv, "ov.jsonl", "otapes")
    expect(r.stderr).not.toContain("skyrl:")
    expect(r.status).toBe(0)
    const [row] = jsonl(at("ov.jsonl"))
    // Before: "{\"message\":\"hi\"}", and the metadata without its __proto__ key.
    expect(row.reward_spec.ground_truth.tool_sequence[0].params).toBe(params)
    expect(row.extra_info.task_metadata.startsWith(metadata.slice(0, -1) + ",\"verification\":")).toBe(true)
    const [tape] = jsonl(at("otapes/cassettes.jsonl"))
    expect(JSON.stringify(tape.params)).toBe(params)
    // The key of the call as sent (RFC 8785: "__proto__" sorts before "message"), as MCPToolEnv computes it.
    const canonical = "{\"__proto__\":{\"x\":1},\"message\":\"hi\"}"
    expect(tape.key).toBe(createHash("sha256").update(`everything\necho\n${canonical}`).digest("hex"))
    expect(row.extra_info.task_metadata).toContain(`"key":"${tape.key}"`)
  })

  it("convert keeps the key of a task the Schema decodes (one with messages): judged, not written as {}", async () => {
    const inv = inventory("inv2.json")
    const task = "{\"task_id\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Echo hi.\"}],\"tool_sequence\":" +
      "[{\"server\":\"everything\",\"tool\":\"echo\",\"params\":{\"__proto__\":{\"message\":\"hi\"}}}]}"
    writeFileSync(at("tasks.jsonl"), `${task}\n`)
    const r = await runCli(["convert", at("tasks.jsonl"), "--inventory", inv, "--out", at("c.jsonl")])
    // Before: written with "params":"{}" (and then found to miss `message`).
    expect(r.status).toBe(1)
    expect(jsonl(at("c.jsonl.rejects.jsonl")).map((x) => [x.field, x.reason])).toEqual([[
      "tool_sequence[0].params.message",
      "step 1 everything/echo params/message: missing required param; step 1 everything/echo params/__proto__: " +
      "unknown param (declared: message)"
    ]])
  })
})

describe("__proto__ as a key (decoders and copies)", () => {
  const proto = () => JSON.parse("{\"message\":\"hi\",\"__proto__\":{\"x\":1}}") as Record<string, unknown>

  it("the Task and ModelTask Schemas keep it in params", () => {
    const step = { server: "s", tool: "t", params: proto() }
    const task = Schema.decodeUnknownSync(Task)({ tool_sequence: [{ ...step, step: 1 }] })
    expectOwnProtoKey(task.tool_sequence[0]!.params, { x: 1 })
    const model = Schema.decodeUnknownSync(ModelTask)({
      task_id: "t",
      user_prompt: "p",
      complexity: "simple",
      domain: "d",
      assumptions: [],
      max_turns: 2,
      tool_sequence: [step],
      evaluation_rubric: { name: "r", criteria: [] }
    })
    expectOwnProtoKey(model.tool_sequence[0]!.params as object, { x: 1 })
    // What the Schema refuses is unchanged.
    const refused = Schema.decodeUnknownEither(Task)({ tool_sequence: [{ ...step, step: 1, params: [1] }] })
    expect(Either.isLeft(refused) && refused.left.message).toContain(
      "Expected { readonly [x: string]: unknown }, actual [1]"
    )
  })

  it("task metadata keeps it, decoded and encoded, in its place", () => {
    const text = "{\"z\":1,\"__proto__\":{\"source\":\"other\"},\"source\":\"mine\"}"
    const decoded = Schema.decodeUnknownSync(Schema.parseJson(TaskMetadata))(text)
    expectOwnProtoKey(decoded, { source: "other" })
    expect(decoded.source).toBe("mine")
    expect(Schema.encodeSync(Schema.parseJson(TaskMetadata))(decoded)).toBe(
      "{\"source\":\"mine\",\"z\":1,\"__proto__\":{\"source\":\"other\"}}"
    )
  })

  it("a model's params lose optional nulls, not the key; a param named like Object's is not declared", () => {
    const schema = { type: "object", properties: { message: { type: "string" }, n: { type: "number" } } }
    const params = JSON.parse("{\"message\":\"hi\",\"n\":null,\"__proto__\":{\"x\":1},\"constructor\":null}")
    const out = dropOptionalNulls(params, schema, schema) as Record<string, unknown>
    expect(JSON.stringify(out)).toBe("{\"message\":\"hi\",\"__proto__\":{\"x\":1},\"constructor\":null}")
    expectOwnProtoKey(out, { x: 1 })
  })

  it("a tool schema's property named __proto__ stays a property (inventory, strict output schema)", () => {
    const schema = JSON.parse(
      "{\"type\":\"object\",\"properties\":{\"__proto__\":{\"type\":\"string\",\"required\":true}}}"
    )
    const normalized = normalizeJsonSchema(schema) as { properties: object; required: Array<string> }
    expectOwnProtoKey(normalized.properties, { type: "string" })
    expect(normalized.required).toEqual(["__proto__"])
    const strict = Either.getOrThrow(makeStrict(normalized)) as { properties: object }
    expectOwnProtoKey(strict.properties, { type: "string" })
  })

  it("the cassette key is of the key as data (the shared vector MCPToolEnv checks too)", () => {
    expect(canonicalJson(proto())).toBe("{\"__proto__\":{\"x\":1},\"message\":\"hi\"}")
    expect(callKey("srv", "tool", proto())).toBe(
      createHash("sha256").update("srv\ntool\n{\"__proto__\":{\"x\":1},\"message\":\"hi\"}").digest("hex")
    )
  })
})
