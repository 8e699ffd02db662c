/**
 * The Arrow types datasets.load_dataset gives a Parquet file's columns, set against skyrl's row skeleton
 * (`ROW_FIELDS` in ./parquet.ts): the columns at a path of the skeleton whose type is another than the one skyrl
 * writes and JSON Lines files give (string, int64, struct, list). hyparquet reads values, not types (a
 * `large_string` or `binary` value comes back as the same JS string as a `string` one, an int32 as the same
 * number), so the row checks cannot see them; `skyrl validate` reports them as arrow/parquet-type
 * (src/skyrl/checks.ts).
 *
 * The types are pyarrow's, which datasets reads Parquet with: those of the Arrow schema pyarrow stored in the
 * file (./arrowSchema.ts) when there is one, else those pyarrow derives from the Parquet schema
 * (cpp/src/parquet/arrow/schema_internal.cc in apache/arrow, with Arrow extensions on, pyarrow's default).
 */
import type { FileMetaData, SchemaElement } from "hyparquet"
import type { ColumnTypeIssue } from "../domain/row.js"
import type { ArrowField } from "./arrowSchema.js"
import { readArrowSchema } from "./arrowSchema.js"
import type { Field } from "./parquet.js"

// ---------------------------------------------------------------------------------------------
// The Parquet schema as pyarrow reads it (a file without a stored Arrow schema)

const CONVERTED_TYPES: Readonly<Record<string, string>> = {
  UTF8: "string",
  ENUM: "binary",
  BSON: "binary",
  JSON: "extension<arrow.json>",
  INT_8: "int8",
  INT_16: "int16",
  INT_32: "int32",
  INT_64: "int64",
  UINT_8: "uint8",
  UINT_16: "uint16",
  UINT_32: "uint32",
  UINT_64: "uint64",
  DECIMAL: "decimal",
  DATE: "date",
  TIME_MILLIS: "time",
  TIME_MICROS: "time",
  TIMESTAMP_MILLIS: "timestamp",
  TIMESTAMP_MICROS: "timestamp"
}

const LOGICAL_TYPES: Readonly<Record<string, string>> = {
  STRING: "string",
  ENUM: "binary",
  BSON: "binary",
  JSON: "extension<arrow.json>",
  DECIMAL: "decimal",
  DATE: "date",
  TIME: "time",
  TIMESTAMP: "timestamp",
  FLOAT16: "halffloat",
  UUID: "extension<arrow.uuid>"
}

const PHYSICAL_TYPES: Readonly<Record<string, string>> = {
  BOOLEAN: "bool",
  INT32: "int32",
  INT64: "int64",
  INT96: "timestamp",
  FLOAT: "float",
  DOUBLE: "double",
  BYTE_ARRAY: "binary",
  FIXED_LEN_BYTE_ARRAY: "fixed_size_binary"
}

/** A leaf column's type: its logical type, else its converted type, else its physical type. */
const leafType = (e: SchemaElement): string => {
  const logical = e.logical_type
  if (logical?.type === "INTEGER") return `${logical.isSigned ? "int" : "uint"}${logical.bitWidth}`
  return (logical === undefined ? undefined : LOGICAL_TYPES[logical.type]) ??
    (e.converted_type === undefined ? undefined : CONVERTED_TYPES[e.converted_type]) ??
    PHYSICAL_TYPES[e.type ?? ""] ?? "unknown"
}

interface Node {
  readonly element: SchemaElement
  readonly children: ReadonlyArray<Node>
}

/** The flat, depth-first schema elements as a tree (`num_children` says how many follow as children). */
const schemaTree = (elements: ReadonlyArray<SchemaElement>): Node => {
  let next = 0
  const take = (depth: number): Node => {
    const element = elements[next++]
    if (element === undefined || depth > 64) throw new RangeError("the Parquet schema is damaged")
    return { element, children: Array.from({ length: element.num_children ?? 0 }, () => take(depth + 1)) }
  }
  return take(0)
}

const annotation = (e: SchemaElement): string | undefined => e.logical_type?.type ?? e.converted_type

/**
 * A LIST's element (the backward-compatibility rules of the Parquet format's LogicalTypes.md): the repeated
 * group's one child, unless the repeated field is itself the element (a primitive, a group of several fields,
 * or a group named `array` or `<list>_tuple`).
 */
const listElement = (list: Node): Node | undefined => {
  const repeated = list.children[0]
  if (repeated === undefined) return undefined
  const own = repeated.children.length !== 1 || repeated.element.name === "array" ||
    repeated.element.name === `${list.element.name}_tuple`
  return own ? { element: { ...repeated.element, repetition_type: "REQUIRED" }, children: repeated.children } : repeated
    .children[0]
}

const arrowOf = (node: Node): ArrowField => {
  const e = node.element
  const field = (type: string, children: ReadonlyArray<ArrowField>): ArrowField => ({
    name: e.name,
    type,
    dictionary: false,
    children
  })
  // A repeated field outside a LIST is a list of it (the format's oldest lists).
  if (e.repetition_type === "REPEATED") {
    return field("list", [arrowOf({ element: { ...e, repetition_type: "REQUIRED" }, children: node.children })])
  }
  if (e.type !== undefined) return field(leafType(e), [])
  const kind = annotation(e)
  if (kind === "LIST") {
    const element = listElement(node)
    return field("list", element === undefined ? [] : [arrowOf(element)])
  }
  if (kind === "MAP" || kind === "MAP_KEY_VALUE") {
    // The repeated key_value group is the map's entries: a struct of key and value.
    const entries = node.children[0]
    const fields = entries?.children.map(arrowOf) ?? []
    return field("map", [{ name: "entries", type: "struct", dictionary: false, children: fields }])
  }
  return field("struct", node.children.map(arrowOf))
}

/** The top-level fields pyarrow reads from a Parquet schema (its first element is the root). */
export const parquetSchemaFields = (elements: ReadonlyArray<SchemaElement>): ReadonlyArray<ArrowField> =>
  schemaTree(elements).children.map(arrowOf)

/** The file's fields as pyarrow reads them: the stored Arrow schema's, when it can be read, else the Parquet's. */
export const arrowFieldsOf = (metadata: FileMetaData): ReadonlyArray<ArrowField> => {
  const stored = metadata.key_value_metadata?.find((kv) => kv.key === "ARROW:schema")?.value
  return (stored === undefined ? undefined : readArrowSchema(stored)) ?? parquetSchemaFields(metadata.schema)
}

// ---------------------------------------------------------------------------------------------
// Against the skeleton

const WIDE = new Set(["large_string", "string_view", "extension<arrow.json>"])
const BYTES = new Set(["binary", "large_binary", "binary_view", "fixed_size_binary"])
const NUMBERS = /^(u?int(8|16|32|64)|halffloat|float|double|decimal)$/
const LISTS = new Set(["large_list", "list_view", "large_list_view", "fixed_size_list"])

/** `map<string, int64>`: a map named with its key and value types; other types by their names. */
const describe = (f: ArrowField): string => {
  const [key, value] = f.type === "map" ? f.children[0]?.children ?? [] : []
  const type = key === undefined || value === undefined ? f.type : `map<${describe(key)}, ${describe(value)}>`
  return f.dictionary ? `dictionary<values=${type}>` : type
}

/**
 * The issue of a column the skeleton types `want`, if any. A type of another kind of value (a struct where
 * skyrl writes JSON text, a string where it writes an int) is left to the row checks, which see those values
 * as they see them in JSON Lines.
 */
const issueOf = (f: ArrowField, want: Field, path: string): ColumnTypeIssue | undefined => {
  const found = describe(f)
  const at = (needed: ColumnTypeIssue["needed"], effect: ColumnTypeIssue["effect"]) => ({
    path,
    found,
    needed,
    effect
  })
  if (f.type === "map") return at(want.kind === "int" ? "int64" : want.kind, "load")
  switch (want.kind) {
    case "string":
      return WIDE.has(f.type) ? at("string", "concat") : BYTES.has(f.type) ? at("string", "bytes") : undefined
    case "int":
      return f.type !== "int64" && NUMBERS.test(f.type) ? at("int64", "concat") : undefined
    case "list":
      return LISTS.has(f.type) ? at("list", "concat") : undefined
    case "struct":
      return undefined
  }
}

/** The issues of `fields` against the skeleton's `want`, nested fields too (`at`: the path so far). */
const issuesAt = (
  fields: ReadonlyArray<ArrowField>,
  want: ReadonlyArray<Field>,
  at: string,
  out: Array<ColumnTypeIssue>
): void => {
  for (const w of want) {
    const f = fields.find((x) => x.name === w.name)
    if (f === undefined) continue
    const issue = issueOf(f, w, at + w.name)
    if (issue !== undefined) out.push(issue)
    if (w.kind === "struct" && f.type === "struct") issuesAt(f.children, w.fields, `${at}${w.name}.`, out)
    const element = w.kind === "list" && (f.type === "list" || LISTS.has(f.type)) ? f.children[0] : undefined
    if (w.kind === "list" && element?.type === "struct") issuesAt(element.children, w.element, `${at}${w.name}[].`, out)
  }
}

/** The columns of `skeleton` the file types otherwise than skyrl and JSON Lines do, in the skeleton's order. */
export const columnTypeIssues = (
  metadata: FileMetaData,
  skeleton: ReadonlyArray<Field>
): ReadonlyArray<ColumnTypeIssue> => {
  const out: Array<ColumnTypeIssue> = []
  issuesAt(arrowFieldsOf(metadata), skeleton, "", out)
  return out
}
