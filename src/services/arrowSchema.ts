/**
 * The Arrow schema pyarrow stores in a Parquet file's key-value metadata (`ARROW:schema`), read as far as the
 * Parquet type check needs it (./parquetTypes.ts): each field's name, type and children. pyarrow reads a
 * file's columns as the types this schema gives where the Parquet schema cannot tell them apart (a BYTE_ARRAY
 * UTF8 column is `large_string` when the stored schema says so, `string` otherwise), so these are the types
 * datasets.load_dataset sees.
 *
 * The value is base64 of an Arrow IPC message (format/Message.fbs and format/Schema.fbs in apache/arrow): a
 * continuation marker 0xFFFFFFFF (absent in files of pyarrow < 0.15), a little-endian int32 length, then a
 * flatbuffer whose root table is a `Message` with a `Schema` header. Only the tables and fields named below
 * are read, by their field ids (a field's place in its table's declaration), with no flatbuffers library.
 */

/** A field as Arrow types it: pyarrow's name of the type, whether dictionary-encoded, and its children. */
export interface ArrowField {
  readonly name: string
  /**
   * pyarrow's name of the type: `string`, `large_string`, `int32`, `uint64`, `double`; `list`, `struct`, `map`
   * without their parameters (see `children`); an extension type as `extension<arrow.json>`.
   */
  readonly type: string
  /** Dictionary-encoded: `type` is the type of its values (datasets reads such a column as its values' type). */
  readonly dictionary: boolean
  /** A struct's fields; a list's element; a map's one `entries` struct of `key` and `value`. */
  readonly children: ReadonlyArray<ArrowField>
}

/** The `Type` union's members (Schema.fbs `union Type`; 0 is NONE) as pyarrow names them, Int and float aside. */
const TYPE_NAMES: Readonly<Record<number, string>> = {
  1: "null",
  4: "binary",
  5: "string",
  6: "bool",
  7: "decimal",
  8: "date",
  9: "time",
  10: "timestamp",
  11: "interval",
  12: "list",
  13: "struct",
  14: "union",
  15: "fixed_size_binary",
  16: "fixed_size_list",
  17: "map",
  18: "duration",
  19: "large_binary",
  20: "large_string",
  21: "large_list",
  22: "run_end_encoded",
  23: "binary_view",
  24: "string_view",
  25: "list_view",
  26: "large_list_view"
}
const TYPE_INT = 2
const TYPE_FLOATING_POINT = 3
/** FloatingPoint.precision (Schema.fbs `enum Precision`: HALF, SINGLE, DOUBLE). */
const FLOAT_NAMES = ["halffloat", "float", "double"]
/** MessageHeader's Schema member (Message.fbs `union MessageHeader`). */
const HEADER_SCHEMA = 1
/** Fields read at most, and nesting: a damaged or hostile schema whose offsets loop or fan out stops there. */
const MAX_FIELDS = 100_000
const MAX_DEPTH = 64

/**
 * A flatbuffer's tables. A table starts with an int32 that, subtracted from its position, gives its vtable:
 * uint16 vtable size, uint16 table size, then a uint16 offset per field id (0 or beyond the vtable: the field
 * is absent and has its default). Offsets to tables, strings and vectors are uint32s relative to where they
 * are stored. DataView's bounds checks turn an offset past the end into a RangeError.
 */
class FlatBuffer {
  private readonly view: DataView
  constructor(bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }
  root(): number {
    return this.view.getUint32(0, true)
  }
  /** Where field `id` of the table at `table` is stored, or undefined when absent. */
  field(table: number, id: number): number | undefined {
    const vtable = table - this.view.getInt32(table, true)
    const at = 4 + 2 * id
    if (at >= this.view.getUint16(vtable, true)) return undefined
    const offset = this.view.getUint16(vtable + at, true)
    return offset === 0 ? undefined : table + offset
  }
  /** The table, string or vector an offset stored at `at` points to. */
  target(at: number): number {
    return at + this.view.getUint32(at, true)
  }
  uint8(table: number, id: number, otherwise: number): number {
    const at = this.field(table, id)
    return at === undefined ? otherwise : this.view.getUint8(at)
  }
  int16(table: number, id: number, otherwise: number): number {
    const at = this.field(table, id)
    return at === undefined ? otherwise : this.view.getInt16(at, true)
  }
  int32(table: number, id: number, otherwise: number): number {
    const at = this.field(table, id)
    return at === undefined ? otherwise : this.view.getInt32(at, true)
  }
  table(table: number, id: number): number | undefined {
    const at = this.field(table, id)
    return at === undefined ? undefined : this.target(at)
  }
  string(table: number, id: number): string {
    const at = this.field(table, id)
    if (at === undefined) return ""
    const start = this.target(at)
    const length = this.view.getUint32(start, true)
    return new TextDecoder().decode(new Uint8Array(this.view.buffer, this.view.byteOffset + start + 4, length))
  }
  /** The tables of a vector of tables: uint32 length, then an offset per element. */
  tables(table: number, id: number): Array<number> {
    const at = this.field(table, id)
    if (at === undefined) return []
    const start = this.target(at)
    const length = this.view.getUint32(start, true)
    if (length > MAX_FIELDS) throw new RangeError(`a vector of ${length} tables`)
    return Array.from({ length }, (_, i) => this.target(start + 4 + 4 * i))
  }
}

/** The type of a Field table: `type_type` (id 2) says the union member, `type` (id 3) is its table. */
const typeName = (fb: FlatBuffer, field: number): string => {
  const member = fb.uint8(field, 2, 0)
  const type = fb.table(field, 3)
  if (member === TYPE_INT) {
    // Int { bitWidth: int; is_signed: bool }
    const width = type === undefined ? 0 : fb.int32(type, 0, 0)
    const signed = type !== undefined && fb.uint8(type, 1, 0) !== 0
    return `${signed ? "int" : "uint"}${width}`
  }
  if (member === TYPE_FLOATING_POINT) {
    // FloatingPoint { precision: Precision } (HALF by default)
    return FLOAT_NAMES[type === undefined ? 0 : fb.int16(type, 0, 0)] ?? "float?"
  }
  return TYPE_NAMES[member] ?? `arrow type ${member}`
}

/**
 * A Field's extension type, from its custom_metadata (id 6: KeyValue { key (id 0), value (id 1) }): an extension
 * type is stored as its storage type plus this key, and pyarrow reads the column as the extension (a string
 * column of `arrow.json` is Json to datasets, which decodes its values).
 */
const extensionOf = (fb: FlatBuffer, field: number): string | undefined => {
  for (const kv of fb.tables(field, 6)) {
    if (fb.string(kv, 0) === "ARROW:extension:name") return `extension<${fb.string(kv, 1)}>`
  }
  return undefined
}

/** Reads Field tables: name (id 0), the type (ids 2, 3), dictionary (id 4), children (id 5). */
const readFields = (fb: FlatBuffer, tables: ReadonlyArray<number>, depth: number, budget: { n: number }) => {
  if (depth > MAX_DEPTH) throw new RangeError("fields nested too deep")
  return tables.map((field): ArrowField => {
    if (--budget.n < 0) throw new RangeError("too many fields")
    return {
      name: fb.string(field, 0),
      type: extensionOf(fb, field) ?? typeName(fb, field),
      dictionary: fb.field(field, 4) !== undefined,
      children: readFields(fb, fb.tables(field, 5), depth + 1, budget)
    }
  })
}

/** The flatbuffer of an IPC message: after the continuation marker (if any) and the int32 length. */
const messageBytes = (ipc: Uint8Array): Uint8Array => {
  const view = new DataView(ipc.buffer, ipc.byteOffset, ipc.byteLength)
  const start = view.getUint32(0, true) === 0xffffffff ? 8 : 4
  const length = view.getInt32(start - 4, true)
  if (length <= 0 || start + length > ipc.length) throw new RangeError(`a message of ${length} bytes`)
  return ipc.subarray(start, start + length)
}

/**
 * The top-level fields of the Arrow schema in `ARROW:schema`'s value (base64), or undefined when it is not
 * an Arrow schema message this reader can read (the caller then reads the Parquet schema instead).
 */
export const readArrowSchema = (base64: string): ReadonlyArray<ArrowField> | undefined => {
  try {
    const fb = new FlatBuffer(messageBytes(Buffer.from(base64, "base64")))
    const message = fb.root()
    // Message { version: short (id 0); header_type (id 1); header (id 2); ... }
    if (fb.uint8(message, 1, 0) !== HEADER_SCHEMA) return undefined
    const schema = fb.table(message, 2)
    // Schema { endianness (id 0); fields: [Field] (id 1); ... }
    return schema === undefined ? undefined : readFields(fb, fb.tables(schema, 1), 0, { n: MAX_FIELDS })
  } catch (e) {
    if (e instanceof RangeError) return undefined
    throw e
  }
}
