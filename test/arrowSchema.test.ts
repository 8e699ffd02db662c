/**
 * The Arrow schema pyarrow stores in a Parquet file (`ARROW:schema`), read by src/services/arrowSchema.ts's own
 * flatbuffer reader, on real files made by pyarrow (test/fixtures/parquet-types/README.md); and the types read
 * from the Parquet schema, for a file without one.
 */
import { asyncBufferFromFile, parquetMetadataAsync } from "hyparquet"
import type { FileMetaData } from "hyparquet"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import type { ArrowField } from "../src/services/arrowSchema.js"
import { readArrowSchema } from "../src/services/arrowSchema.js"
import type { Field } from "../src/services/parquet.js"
import { ROW_FIELDS } from "../src/services/parquet.js"
import { arrowFieldsOf, parquetSchemaFields } from "../src/services/parquetTypes.js"

const FIXTURES = join(import.meta.dirname, "fixtures", "parquet-types")

const metadataOf = async (name: string): Promise<FileMetaData> =>
  parquetMetadataAsync(await asyncBufferFromFile(join(FIXTURES, name)))

const storedSchema = (metadata: FileMetaData): string =>
  metadata.key_value_metadata!.find((kv) => kv.key === "ARROW:schema")!.value!

/** The fields as `name: type` lines, children indented (a dictionary's values type after `dictionary of`). */
const outline = (fields: ReadonlyArray<ArrowField>, indent = ""): Array<string> =>
  fields.flatMap((f) => [
    `${indent}${f.name}: ${f.dictionary ? "dictionary of " : ""}${f.type}`,
    ...outline(f.children, `${indent}  `)
  ])

/** What pyarrow makes of skyrl's skeleton: `leaf` maps string and int64, `item` names a list's element. */
const skeleton = (
  fields: ReadonlyArray<Field>,
  item: string,
  leaf: (type: string) => string = (t) => t
): Array<ArrowField> =>
  fields.map((f): ArrowField => {
    const field = (type: string, children: Array<ArrowField>) => ({ name: f.name, type, dictionary: false, children })
    switch (f.kind) {
      case "string":
        return field(leaf("string"), [])
      case "int":
        return field(leaf("int64"), [])
      case "struct":
        return field("struct", skeleton(f.fields, item, leaf))
      case "list":
        return field("list", [
          { name: item, type: "struct", dictionary: false, children: skeleton(f.element, item, leaf) }
        ])
    }
  })

describe("ARROW:schema, read by the flatbuffer reader", () => {
  it("pyarrow's schema of skyrl's rows is the skeleton: string, int64, struct, list<item: struct>", async () => {
    const fields = readArrowSchema(storedSchema(await metadataOf("standard.parquet")))
    expect(fields).toEqual(skeleton(ROW_FIELDS, "item"))
    expect(outline(fields!).slice(0, 5)).toEqual([
      "data_source: string",
      "prompt: list",
      "  item: struct",
      "    role: string",
      "    content: string"
    ])
  })

  it("reads Int's width and sign, FloatingPoint's precision, LargeUtf8, dictionaries and a map's entries", async () => {
    const typeOf = async (file: string, path: ReadonlyArray<string>) => {
      let field: ArrowField | undefined
      let fields = readArrowSchema(storedSchema(await metadataOf(file)))!
      for (const name of path) {
        field = fields.find((f) => f.name === name)
        fields = field!.children
      }
      return outline([field!])
    }
    const maxTurns = ["reward_spec", "ground_truth", "max_turns"]
    expect(await typeOf("int32.parquet", maxTurns)).toEqual(["max_turns: int32"])
    expect(await typeOf("uint64.parquet", maxTurns)).toEqual(["max_turns: uint64"])
    expect(await typeOf("float64.parquet", maxTurns)).toEqual(["max_turns: double"])
    expect(await typeOf("large-string.parquet", ["data_source"])).toEqual(["data_source: large_string"])
    expect(await typeOf("large-list.parquet", ["prompt"])).toEqual([
      "prompt: large_list",
      "  item: struct",
      "    role: string",
      "    content: string"
    ])
    expect(await typeOf("dictionary.parquet", ["data_source"])).toEqual(["data_source: dictionary of string"])
    expect(await typeOf("map.parquet", ["reward_spec", "ground_truth", "limits"])).toEqual([
      "limits: map",
      "  entries: struct",
      "    key: string",
      "    value: int64"
    ])
    const params = ["reward_spec", "ground_truth", "tool_sequence", "item", "params"]
    expect(await typeOf("binary-params.parquet", params)).toEqual(["params: binary"])
    // An extension type is its storage type (Utf8) plus the field's ARROW:extension:name.
    expect(await typeOf("json-params.parquet", params)).toEqual(["params: extension<arrow.json>"])
    // pandas 3 writes its str columns as large_string; the dicts and lists of object columns as pyarrow infers them.
    expect(outline(readArrowSchema(storedSchema(await metadataOf("pandas.parquet")))!).slice(0, 6)).toEqual([
      "data_source: large_string",
      "prompt: list",
      "  item: struct",
      "    role: string",
      "    content: string",
      "env_class: large_string"
    ])
  })

  it("a value that is not a Schema message it can read is undefined (the Parquet schema is read instead)", async () => {
    const bytes = Buffer.from(storedSchema(await metadataOf("standard.parquet")), "base64")
    expect(readArrowSchema(bytes.subarray(0, 40).toString("base64"))).toBeUndefined()
    expect(readArrowSchema("")).toBeUndefined()
    // The same message with its header type changed from Schema (1) to RecordBatch (3).
    const flatbuffer = bytes.subarray(8)
    const view = new DataView(flatbuffer.buffer, flatbuffer.byteOffset, flatbuffer.byteLength)
    const message = view.getUint32(0, true)
    const vtable = message - view.getInt32(message, true)
    const headerType = message + view.getUint16(vtable + 4 + 2 * 1, true)
    const other = Buffer.from(bytes)
    other[8 + headerType] = 3
    expect(readArrowSchema(other.toString("base64"))).toBeUndefined()
  })
})

describe("the Parquet schema, for a file without ARROW:schema", () => {
  it("reads pyarrow's file as the stored schema says, but a list's element is `element` and large types are lost", async () => {
    const metadata = await metadataOf("standard.parquet")
    expect(parquetSchemaFields(metadata.schema)).toEqual(skeleton(ROW_FIELDS, "element"))
    const large = await metadataOf("large-string.parquet")
    expect(parquetSchemaFields(large.schema)).toEqual(skeleton(ROW_FIELDS, "element"))
    expect(arrowFieldsOf(large)).toEqual(skeleton(ROW_FIELDS, "item", (t) => t === "string" ? "large_string" : t))
    // Without the stored schema, pyarrow reads the same UTF8 columns as string.
    expect(arrowFieldsOf({ ...large, key_value_metadata: [] })).toEqual(skeleton(ROW_FIELDS, "element"))
  })

  it("reads unsigned and 32-bit ints, doubles, binary, JSON and maps from the Parquet types and annotations", async () => {
    const read = async (file: string) => outline(parquetSchemaFields((await metadataOf(file)).schema))
    expect(await read("uint64.parquet")).toEqual(
      outline(skeleton(ROW_FIELDS, "element", (t) => t === "int64" ? "uint64" : t))
    )
    expect(await read("int32.parquet")).toEqual(
      outline(skeleton(ROW_FIELDS, "element", (t) => t === "int64" ? "int32" : t))
    )
    expect(await read("float64.parquet")).toEqual(
      outline(skeleton(ROW_FIELDS, "element", (t) => t === "int64" ? "double" : t))
    )
    expect(await read("binary-params.parquet")).toContain("        params: binary")
    expect(await read("json-params.parquet")).toContain("        params: extension<arrow.json>")
    const map = await read("map.parquet")
    expect(map.slice(map.indexOf("    limits: map"), map.indexOf("    limits: map") + 4)).toEqual([
      "    limits: map",
      "      entries: struct",
      "        key: string",
      "        value: int64"
    ])
  })
})
