/**
 * Parquet for skyrl's row layout (loaded lazily by Storage: only `.parquet` paths pay for it).
 *
 * The on-disk row (`SkyRLRow.Encoded`) has the same typed skeleton in every row — the parts whose
 * shape varies (`params`, `depends_on`, `derived_params`, `tool_schemas`, `task_metadata`) are JSON
 * strings — so the Parquet schema is fixed and
 * written explicitly: nested structs and standard 3-level `LIST`s of structs, the layout pyarrow
 * writes (every field optional, as pyarrow's defaults), integers as INT64 (what Arrow infers from
 * JSON, so a .parquet and a .json file concatenate). The skeleton has no empty struct by
 * construction. Writing goes through hyparquet-writer row group by row group; reading through
 * hyparquet one row group at a time, so memory stays bounded by the row-group size. Read: uncompressed,
 * SNAPPY (hyparquet), GZIP, BROTLI, ZSTD, LZ4_RAW and LZ4 (./parquetCodecs.ts); written: SNAPPY.
 */
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from "hyparquet"
import type { SchemaElement } from "hyparquet"
import { ByteWriter, parquetWriteRows } from "hyparquet-writer"
import type * as fs from "node:fs/promises"
import type { EncodedRow } from "../domain/row.js"
import type { ColumnTypeIssue } from "../domain/row.js"
import { writeAll } from "./diskWrites.js"
import { compressors } from "./parquetCodecs.js"
import { columnTypeIssues } from "./parquetTypes.js"

/** Rows per row group: bounds the memory of writer and reader. */
export const ROW_GROUP_SIZE = 1_000

/** A field of the skeleton: its name and kind, a struct's fields, a list's element's fields. */
export type Field =
  | { readonly name: string; readonly kind: "string" | "int" }
  | { readonly name: string; readonly kind: "struct"; readonly fields: ReadonlyArray<Field> }
  | { readonly name: string; readonly kind: "list"; readonly element: ReadonlyArray<Field> }

const str = (name: string): Field => ({ name, kind: "string" })
const int = (name: string): Field => ({ name, kind: "int" })
const struct = (name: string, fields: ReadonlyArray<Field>): Field => ({ name, kind: "struct", fields })
const list = (name: string, element: ReadonlyArray<Field>): Field => ({ name, kind: "list", element })

/** The row skeleton (keep in step with `SkyRLRow` in src/domain/row.ts; test/parquet.test.ts checks it). */
export const ROW_FIELDS: ReadonlyArray<Field> = [
  str("data_source"),
  list("prompt", [str("role"), str("content")]),
  str("env_class"),
  struct("reward_spec", [
    str("method"),
    struct("ground_truth", [
      str("task_id"),
      str("complexity"),
      int("max_turns"),
      struct("success", [str("must_call_tool")]),
      list("tool_sequence", [
        int("step"),
        str("server"),
        str("tool"),
        str("call_name"),
        str("params"),
        str("depends_on"),
        str("derived_params"),
        str("schema_hash")
      ]),
      struct("limits", [int("max_tools"), int("max_servers")]),
      struct("rubric", [str("name"), list("criteria", [str("name"), str("description"), str("scoring")])]),
      list("available_tools", [str("call_name"), str("server"), str("tool")]),
      str("tool_schemas")
    ])
  ]),
  struct("extra_info", [str("task_metadata")])
]

const toElements = (field: Field): Array<SchemaElement> => {
  switch (field.kind) {
    case "string":
      return [{ name: field.name, type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" }]
    case "int":
      return [{ name: field.name, type: "INT64", repetition_type: "OPTIONAL" }]
    case "struct":
      return [
        { name: field.name, repetition_type: "OPTIONAL", num_children: field.fields.length },
        ...field.fields.flatMap(toElements)
      ]
    case "list":
      return [
        { name: field.name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        { name: "element", repetition_type: "OPTIONAL", num_children: field.element.length },
        ...field.element.flatMap(toElements)
      ]
  }
}

export const ROW_PARQUET_SCHEMA: ReadonlyArray<SchemaElement> = [
  { name: "root", num_children: ROW_FIELDS.length },
  ...ROW_FIELDS.flatMap(toElements)
]

/**
 * A hyparquet-writer sink that appends each finished row group to an open file: every byte, or an error naming
 * why not (a short write was taken as done: on a full disk the file lost its end, footer and all, and was kept).
 */
class FileSink extends ByteWriter {
  private pending: Promise<void> = Promise.resolve()
  private written = 0
  constructor(private readonly handle: fs.FileHandle) {
    super(1 << 20)
  }
  private drain(): Promise<void> {
    const bytes = new Uint8Array(this.buffer.slice(0, this.index))
    this.index = 0
    const before = this.written
    this.written += bytes.length
    this.pending = this.pending.then(() => writeAll(this.handle, bytes, before))
    return this.pending
  }
  flush(): Promise<void> {
    return this.drain()
  }
  override finish(): Promise<void> {
    return this.drain()
  }
}

/** The names of each field list's fields, to tell the keys a row holds beyond the skeleton. */
const namesOf = new WeakMap<ReadonlyArray<Field>, ReadonlySet<string>>()
const fieldNames = (fields: ReadonlyArray<Field>): ReadonlySet<string> => {
  let names = namesOf.get(fields)
  if (names === undefined) namesOf.set(fields, names = new Set(fields.map((f) => f.name)))
  return names
}

/** Fields a row holds that the skeleton has no column for, by path (`ability`, `extra_info.index`): rows each. */
export type LeftOut = Map<string, number>

/**
 * A row shaped for the writer: exactly the skeleton's fields, INT64 values as bigint. Each key of `value` the
 * skeleton does not have is counted in `leftOut` under its path (`at`: the path of `value`, "" at the root).
 */
const shape = (
  fields: ReadonlyArray<Field>,
  value: unknown,
  leftOut: LeftOut,
  at: string
): Record<string, unknown> | null => {
  if (typeof value !== "object" || value === null) return null
  const source = value as Record<string, unknown>
  const names = fieldNames(fields)
  for (const key in source) if (!names.has(key)) leftOut.set(at + key, (leftOut.get(at + key) ?? 0) + 1)
  const out: Record<string, unknown> = {}
  for (const field of fields) {
    const v = source[field.name]
    if (v === undefined || v === null) out[field.name] = null
    else if (field.kind === "int") out[field.name] = typeof v === "number" ? BigInt(v) : v
    else if (field.kind === "struct") out[field.name] = shape(field.fields, v, leftOut, `${at}${field.name}.`)
    else if (field.kind === "list") {
      const inner = `${at}${field.name}[].`
      out[field.name] = Array.isArray(v) ? v.map((e) => shape(field.element, e, leftOut, inner)) : null
    } else out[field.name] = v
  }
  return out
}

/**
 * Writes encoded rows as Parquet into an open (temp) file, a row group at a time. Returns the row count and the
 * fields left out (`LeftOut`: keys the fixed skeleton has no column for, such as a column of the user's own).
 */
export const writeParquetRows = async (
  handle: fs.FileHandle,
  rows: Iterable<EncodedRow> | AsyncIterable<EncodedRow>
): Promise<{ readonly n: number; readonly leftOut: LeftOut }> => {
  let n = 0
  const leftOut: LeftOut = new Map()
  // `for await` takes a plain iterable as well.
  const counted = (async function*() {
    for await (const row of rows) {
      n++
      yield shape(ROW_FIELDS, row, leftOut, "")!
    }
  })()
  await parquetWriteRows({
    writer: new FileSink(handle),
    rows: counted,
    columns: ROW_FIELDS.map((f) => ({ name: f.name })),
    schema: [...ROW_PARQUET_SCHEMA],
    rowGroupSize: ROW_GROUP_SIZE,
    createdBy: "skyrl"
  })
  return { n, leftOut }
}

const toNumber = (value: bigint): number | string =>
  value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value.toString()

/**
 * INT64 columns come back as bigint: plain numbers again (row values are small integers). The rows are
 * fresh objects from the reader, so they are fixed in place.
 */
const plain = (value: unknown): unknown => {
  if (typeof value === "bigint") return toNumber(value)
  if (typeof value !== "object" || value === null) return value
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = plain(value[i])
    return value
  }
  const obj = value as Record<string, unknown>
  for (const k in obj) obj[k] = plain(obj[k])
  return obj
}

/**
 * Reads any Parquet file's rows as plain JSON values, one row group at a time. `columnTypes`, when given, is
 * called first with the columns of the skeleton typed otherwise than skyrl types them (./parquetTypes.ts), from
 * the metadata the rows are read with.
 */
export async function* readParquetRows(
  file: string,
  columnTypes?: (issues: ReadonlyArray<ColumnTypeIssue>) => void
): AsyncGenerator<unknown> {
  const buffer = await asyncBufferFromFile(file)
  const metadata = await parquetMetadataAsync(buffer)
  columnTypes?.(columnTypeIssues(metadata, ROW_FIELDS))
  let start = 0
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows)
    const rows = await parquetReadObjects({ file: buffer, metadata, rowStart: start, rowEnd: end, compressors })
    for (const row of rows) yield plain(row)
    start = end
  }
}
