/**
 * Parquet output: read back by an independent reader (hyparquet's own parquetReadObjects, not skyrl's
 * reader) it equals the written rows; the fixed schema matches the row contract; no empty struct.
 */
import { Chunk, Effect, Either, JSONSchema, Logger, Schema, Stream } from "effect"
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from "hyparquet"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Inventory } from "../src/domain/inventory.js"
import { SkyRLRow } from "../src/domain/row.js"
import { ROW_FIELDS, ROW_GROUP_SIZE } from "../src/services/parquet.js"
import { Storage, StorageLive } from "../src/services/Storage.js"
import { convertTask } from "../src/skyrl/convert.js"
import { encodeRow, RowJson } from "../src/skyrl/layout.js"

const inventory = Schema.decodeUnknownSync(Inventory)(
  JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", "inventory", "finance-mcp.json"), "utf8"))
)

const task = (i: number, params: Record<string, unknown>) => ({
  task_id: `t${i}`,
  user_prompt: `Task ${i}: ünïcödé ✓ and an emoji 😀`,
  domain: i % 2 === 0 ? "equities" : "macro",
  complexity: (["simple", "moderate", "complex"] as const)[i % 3],
  tool_sequence: [
    { server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } },
    // Half the rows carry provenance (typed lists with values), half have empty lists.
    { server: "polygon", tool: "polygon_get_news", params, ...(i % 2 === 0 ? {} : { depends_on: [1] }) }
  ],
  evaluation_rubric: {
    name: "r",
    criteria: Array.from({ length: 1 + (i % 3) }, (_, k) => ({ name: `c${k}`, description: "d", scoring: "0-1" }))
  }
})

const variants = Array.from({ length: 6 }, (_, i) =>
  Either.getOrThrow(
    convertTask(task(i, i % 3 === 0 ? {} : i % 3 === 1 ? { ticker: "MSFT", limit: 3 } : { ticker: "X", limit: 2.5 }), {
      inventory
    })
  ))
/** n rows cycling through six distinct ones (converting is the slow part; the writer sees n rows). */
const rowsOf = (n: number) => Array.from({ length: n }, (_, i) => variants[i % variants.length])

const run = <A, E>(effect: Effect.Effect<A, E, Storage>) => Effect.runPromise(Effect.provide(effect, StorageLive))

const plain = (u: unknown): unknown =>
  typeof u === "bigint"
    ? Number(u)
    : Array.isArray(u)
    ? u.map(plain)
    : typeof u === "object" && u !== null
    ? Object.fromEntries(Object.entries(u).map(([k, v]) => [k, plain(v)]))
    : u

describe("parquet output", () => {
  it("hyparquet (an independent reader) reads back exactly the written rows, over several row groups", async () => {
    const rows = rowsOf(ROW_GROUP_SIZE + 7)
    const file = join(mkdtempSync(join(tmpdir(), "skyrl-pq-")), "rows.parquet")
    const n = await run(Effect.flatMap(Storage, (s) => s.writeRows(file, rows)))
    expect(n).toBe(rows.length)
    const buffer = await asyncBufferFromFile(file)
    const metadata = await parquetMetadataAsync(buffer)
    expect(metadata.row_groups.length).toBe(2)
    const read = await parquetReadObjects({ file: buffer })
    expect(read.map(plain)).toEqual(rows.map(encodeRow))
  })

  it("skyrl's streaming reader returns the same rows, indexed", async () => {
    const rows = rowsOf(12)
    const file = join(mkdtempSync(join(tmpdir(), "skyrl-pq-")), "rows.parquet")
    const back = await run(
      Effect.flatMap(
        Storage,
        (s) =>
          Effect.zipRight(s.writeRows(file, rows), Stream.runCollect(s.readRows(file)).pipe(Effect.map(Chunk.toArray)))
      )
    )
    expect(back.map((r) => r.index)).toEqual(rows.map((_, i) => i))
    expect(back.map((r) => r.value)).toEqual(rows.map(encodeRow))
  })

  it("fields the layout has no column for are left out with one warning naming them; skyrl's own rows warn of none", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-pq-"))
    const warnings: Array<unknown> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning") warnings.push(message)
    })
    const write = (file: string, rows: Array<RowJson>) =>
      Effect.runPromise(
        Effect.flatMap(Storage, (s) => s.writeRows(file, rows)).pipe(
          Effect.provide(StorageLive),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
      )
    const own = rowsOf(3).map((r) => new RowJson(JSON.stringify(encodeRow(r))))
    await write(join(dir, "own.parquet"), own)
    expect(warnings).toEqual([])
    const extra = own.map((r, i) => {
      const row = JSON.parse(r.text)
      row.ability = "finance"
      row.extra_info.index = i
      if (i === 0) row.reward_spec.ground_truth.tool_sequence[0].note = "x"
      return new RowJson(JSON.stringify(row))
    })
    const file = join(dir, "extra.parquet")
    await write(file, extra)
    expect(warnings.flat()).toEqual([
      `${file}: 3 fields the rows hold are not written: skyrl's Parquet layout has no column for them: ` +
      "ability (3 rows), reward_spec.ground_truth.tool_sequence[].note (1 row), extra_info.index (3 rows); " +
      "a .json or .jsonl output keeps every field as read"
    ])
    const read = await parquetReadObjects({ file: await asyncBufferFromFile(file) })
    expect(read.map(plain)).toEqual(own.map((r) => JSON.parse(r.text)))
  })

  it("an empty dataset is a valid Parquet file with zero rows", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "skyrl-pq-")), "empty.parquet")
    await run(Effect.flatMap(Storage, (s) => s.writeRows(file, [])))
    const metadata = await parquetMetadataAsync(await asyncBufferFromFile(file))
    expect(Number(metadata.num_rows)).toBe(0)
  })

  it("the fixed Parquet schema has exactly the fields of the on-disk row contract, and no empty struct", () => {
    // Walk the JSON Schema of SkyRLRow's encoded form and the Parquet field list side by side.
    const root = JSONSchema.make(SkyRLRow) as unknown as { $defs: Record<string, any>; $ref: string }
    const resolve = (s: any): any => (s?.$ref ? resolve(root.$defs[s.$ref.split("/").pop()]) : s)
    const shape = (s: any): unknown => {
      const r = resolve(s)
      if (r.type === "object") return Object.fromEntries(Object.entries(r.properties).map(([k, v]) => [k, shape(v)]))
      if (r.type === "array") return [shape(r.items)]
      return r.type === "integer" ? "int" : r.type
    }
    const fromFields = (fields: ReadonlyArray<any>): unknown =>
      Object.fromEntries(
        fields.map((f) => [
          f.name,
          f.kind === "struct"
            ? fromFields(f.fields)
            : f.kind === "list"
            ? [fromFields(f.element)]
            : f.kind === "values"
            ? [f.element === "int" ? "int" : "string"]
            : f.kind === "int"
            ? "int"
            : "string"
        ])
      )
    expect(fromFields(ROW_FIELDS)).toEqual(shape(root))
    const noEmpty = (fields: ReadonlyArray<any>): boolean =>
      fields.every((f) =>
        f.kind === "struct" ? f.fields.length > 0 && noEmpty(f.fields) : f.kind === "list" ? noEmpty(f.element) : true
      )
    expect(noEmpty(ROW_FIELDS)).toBe(true)
  })
})
