/**
 * The row layout's hand-written readers against the row Schema: `decodeRow` (decoded by hand for rows of
 * the usual shape) gives what the Schema's decoding gives, `matchesRowSchema` never accepts a row the Schema
 * rejects, and `rowJsonWithMetadata` (verify's output made from the text read) gives the bytes encoding the
 * row again gives.
 */
import { Either, Schema } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Inventory } from "../src/domain/inventory.js"
import { SkyRLRow } from "../src/domain/row.js"
import { convertTask } from "../src/skyrl/convert.js"
import {
  decodeRow,
  decodeRowWithSchema,
  encodedRowJson,
  encodeRow,
  matchesRowSchema,
  RowJson,
  rowJsonWithMetadata,
  withOwnColumns
} from "../src/skyrl/layout.js"
import { rowFor } from "./support/verifyRows.js"

const FIXTURES = join(import.meta.dirname, "fixtures")
const inventory = Schema.decodeUnknownSync(Inventory)(
  JSON.parse(readFileSync(join(FIXTURES, "inventory", "finance-mcp.json"), "utf8"))
)

/** On-disk rows as skyrl writes them: the recorded answers converted (long tool_schemas), and verify's test rows. */
const writtenRows = (): Array<Record<string, any>> => {
  const dir = join(FIXTURES, "openai", "chat")
  const converted = readdirSync(dir).sort().flatMap((f) => {
    const task = JSON.parse(JSON.parse(readFileSync(join(dir, f), "utf8")).choices[0].message.content)
    const r = convertTask(task, {
      inventory,
      metadata: { model: "m", run_id: "r", seed: 1, extra_key: { nested: [1, 2] }, assumptions: ["a", "b"] }
    })
    return Either.isRight(r) ? [JSON.parse(encodedRowJson(encodeRow(r.right)))] : []
  })
  const plain = rowFor("r1", [
    { server: "everything", tool: "echo", params: { message: "é \u2028 \"quoted\"" } },
    { server: "everything", tool: "get-sum", params: { a: 1, b: 2 }, depends_on: [1], derived_params: ["a"] }
  ])
  return [...converted, JSON.parse(JSON.stringify(plain))]
}

type Row = Record<string, any>
const copy = (u: Row): Row => JSON.parse(JSON.stringify(u))
const gt = (u: Row) => u.reward_spec.ground_truth
const edit = (f: (u: Row) => void) => (u: Row): Row => {
  const c = copy(u)
  f(c)
  return c
}
const withMetadata = (f: (m: Row) => Row) =>
  edit((u) => void (u.extra_info.task_metadata = JSON.stringify(f(JSON.parse(u.extra_info.task_metadata)))))

/** Variants of a written row: legacy layouts, odd but valid values, and invalid ones. */
const VARIANTS: ReadonlyArray<readonly [string, (u: Row) => Row]> = [
  ["as written", copy],
  ["the same row read twice (shared tool_schemas)", copy],
  ["params with spaces", edit((u) => void (gt(u).tool_sequence[0].params = " { \"k\" : 1 } "))],
  ["params with __proto__", edit((u) => void (gt(u).tool_sequence[0].params = "{\"__proto__\":{\"x\":1},\"a\":1}"))],
  ["params with integer-like keys", edit((u) => void (gt(u).tool_sequence[0].params = "{\"b\":1,\"10\":2,\"9\":3}"))],
  ["tool_schemas with __proto__", edit((u) => void (gt(u).tool_schemas = "{\"__proto__\":{\"x\":1}}"))],
  ["metadata with __proto__", edit((u) => void (u.extra_info.task_metadata = "{\"__proto__\":{\"x\":1},\"a\":1}"))],
  [
    "metadata keys named like Object's",
    withMetadata((m) => ({ ...m, toString: "t", constructor: 1, hasOwnProperty: [] }))
  ],
  ["metadata out of the Schema's order", withMetadata((m) => ({ zzz: 1, ...m, source: "x" }))],
  ["metadata empty", withMetadata(() => ({}))],
  ["metadata with a verification already", withMetadata((m) => ({ ...m, verification: { old: true } }))],
  ["metadata with spaces", edit((u) => void (u.extra_info.task_metadata = " { \"source\" : \"s\" } "))],
  ["an extra top-level key", edit((u) => void (u.extra = 1))],
  ["an extra step key", edit((u) => void (gt(u).tool_sequence[0].extra = 1))],
  [
    "keys in another order",
    edit((u) => {
      const { data_source, ...rest } = u
      for (const k of Object.keys(u)) delete u[k]
      Object.assign(u, rest, { data_source })
    })
  ],
  ["depends_on as a typed list (legacy)", edit((u) => void (gt(u).tool_sequence[0].depends_on = []))],
  ["no call_name (legacy)", edit((u) => void delete gt(u).tool_sequence[0].call_name)],
  ["no available_tools (legacy)", edit((u) => void delete gt(u).available_tools)],
  ["no tool_schemas (legacy)", edit((u) => void delete gt(u).tool_schemas)],
  ["depends_on with spaces", edit((u) => void (gt(u).tool_sequence[0].depends_on = "[ ]"))],
  ["step as a string", edit((u) => void (gt(u).tool_sequence[0].step = "1"))],
  ["max_turns not an integer", edit((u) => void (gt(u).max_turns = 1.5))],
  ["unknown complexity", edit((u) => void (gt(u).complexity = "hard"))],
  ["assistant message", edit((u) => void (u.prompt[0].role = "assistant"))],
  ["available_tools empty", edit((u) => void (gt(u).available_tools = []))],
  ["tool_schemas a list", edit((u) => void (gt(u).tool_schemas = "[]"))],
  ["params a list", edit((u) => void (gt(u).tool_sequence[0].params = "[1]"))],
  ["params not JSON", edit((u) => void (gt(u).tool_sequence[0].params = "{"))],
  ["depends_on with a fraction", edit((u) => void (gt(u).tool_sequence[0].depends_on = "[1.5]"))],
  ["derived_params with a number", edit((u) => void (gt(u).tool_sequence[0].derived_params = "[1]"))],
  ["metadata seed a string", withMetadata((m) => ({ ...m, seed: "x" }))],
  ["metadata not JSON", edit((u) => void (u.extra_info.task_metadata = "{"))],
  ["a criterion without scoring", edit((u) => void delete gt(u).rubric.criteria[0].scoring)],
  ["no reward_spec", edit((u) => void delete u.reward_spec)]
]

const cases = () => writtenRows().flatMap((u) => VARIANTS.map(([name, f]) => [name, f(u)] as const))

describe("decodeRow (by hand for rows of the usual shape)", () => {
  it("decodes every row as the row Schema does: same classes, fields, key order and errors", () => {
    let byHand = 0
    for (const [name, u] of cases()) {
      const expected = decodeRowWithSchema(copy(u))
      const got = decodeRow(u)
      expect(got, name).toStrictEqual(expected)
      if (Either.isRight(got) && Either.isRight(expected)) {
        expect(JSON.stringify(got.right), name).toBe(JSON.stringify(expected.right))
        expect(encodedRowJson(encodeRow(got.right)), name).toBe(encodedRowJson(encodeRow(expected.right)))
        if (matchesRowSchema(u)) byHand++
      }
    }
    expect(byHand).toBeGreaterThan(20)
  })

  it("a row that is not an object is named as such (verify said \"Expected SkyRLRow (Encoded side), actual 5\")", () => {
    for (const [u, kind] of [[5, "number"], [[], "an array"], [null, "null"], ["row", "string"]] as const) {
      expect(decodeRow(u)).toStrictEqual(Either.left({ path: "(row)", message: `must be an object, got ${kind}` }))
    }
  })

  it("matchesRowSchema accepts no row the Schema rejects", () => {
    for (const [name, u] of cases()) {
      if (matchesRowSchema(u)) expect(Either.isRight(Schema.decodeUnknownEither(SkyRLRow)(u)), name).toBe(true)
    }
  })
})

describe("rowJsonWithMetadata (verify's output from the text read)", () => {
  const record = { status: "verified", servers: { s: null }, steps: [{ step: 1, key: "k", illustrative: false }] }
  const encodedWith = (row: SkyRLRow) =>
    encodedRowJson(encodeRow(
      new SkyRLRow({
        ...row,
        extra_info: { task_metadata: { ...row.extra_info.task_metadata, verification: record } }
      }, { disableValidation: true })
    ))

  it("is the row encoded again with the field added, or undefined (then the row is encoded)", () => {
    const spliced = new Set<string>()
    for (const [name, u] of cases()) {
      const row = decodeRow(u)
      if (Either.isLeft(row)) continue
      const text = rowJsonWithMetadata(u, JSON.stringify(u), row.right, "verification", record)
      if (text !== undefined) {
        expect(text, name).toBe(encodedWith(row.right))
        spliced.add(name)
      }
    }
    expect([...spliced].sort()).toEqual(
      [
        "as written",
        "the same row read twice (shared tool_schemas)",
        "metadata keys named like Object's",
        "metadata empty",
        // `__proto__` is a key like any other: such rows decode to their own keys and are written as read.
        "params with __proto__",
        "tool_schemas with __proto__",
        "metadata with __proto__"
      ].sort()
    )
  })

  it("declines a key the metadata declares", () => {
    const u = writtenRows()[0]!
    const row = Either.getOrThrow(decodeRow(u))
    expect(rowJsonWithMetadata(u, JSON.stringify(u), row, "source", {})).toBeUndefined()
  })
})

describe("withOwnColumns", () => {
  const asRead = rowFor("own", [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }])
  const row = Either.getOrThrow(decodeRow(asRead))

  it("is the row itself when the row as read holds no column of the user's own", () => {
    expect(withOwnColumns(row, asRead)).toBe(row)
    // Unknown keys inside skyrl's own fields are not columns of the user's.
    const inner = { ...asRead, reward_spec: { ...asRead.reward_spec, note: "x" } }
    expect(withOwnColumns(row, inner)).toBe(row)
  })

  it("puts top-level and extra_info keys back after skyrl's own, in the order read, as plain data", () => {
    const text = JSON.stringify(asRead).slice(0, -2) +
      `,"index":3,"__proto__":{"polluted":true}},"ability":"finance","__proto__":{"polluted":true}}`
    const written = withOwnColumns(row, JSON.parse(text))
    expect(written).toBeInstanceOf(RowJson)
    const back = JSON.parse((written as RowJson).text)
    expect(Object.keys(back)).toEqual([...Object.keys(encodeRow(row)), "ability", "__proto__"])
    expect(Object.keys(back.extra_info)).toEqual(["task_metadata", "index", "__proto__"])
    const { __proto__: _a, ability, ...known } = back
    expect(ability).toBe("finance")
    const { __proto__: _b, index, ...info } = known.extra_info
    expect(index).toBe(3)
    expect({ ...known, extra_info: info }).toEqual(encodeRow(row))
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })
})
