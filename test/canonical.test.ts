import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { callKey, canonicalJson, schemaHash } from "../src/skyrl/canonical.js"

const vectors = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", "canonical", "vectors.json"), "utf8"))

describe("canonical JSON (RFC 8785), shared with the Python MCPToolEnv", () => {
  it("sorts keys by UTF-16 code units, integer-like keys included, with no whitespace", () => {
    expect(canonicalJson({ b: 1, a: [3, { d: null, c: true }] })).toBe("{\"a\":[3,{\"c\":true,\"d\":null}],\"b\":1}")
    expect(canonicalJson({ "9": 1, "10": 2, a: 3 })).toBe("{\"10\":2,\"9\":1,\"a\":3}")
    expect(canonicalJson({ "\uff5e": 1, "😀": 2 })).toBe("{\"😀\":2,\"～\":1}")
  })
  it("writes numbers and strings as ECMAScript does", () => {
    expect(canonicalJson([1.0, 0.1, 1e21, 1e-7, -0])).toBe("[1,0.1,1e+21,1e-7,0]")
    expect(canonicalJson("a\nb\u0001é")).toBe("\"a\\nb\\u0001é\"")
    expect(canonicalJson({ a: undefined, b: [undefined] })).toBe("{\"b\":[null]}")
  })
  it("keys calls and schemas by sha256 of the documented text", () => {
    const expected = createHash("sha256").update("fs\nread_file\n{\"path\":\"/tmp/a\"}").digest("hex")
    expect(callKey("fs", "read_file", { path: "/tmp/a" })).toBe(expected)
    expect(schemaHash({ type: "object" })).toBe(createHash("sha256").update("{\"type\":\"object\"}").digest("hex"))
  })
  it("matches every case of test/fixtures/canonical/vectors.json (the file the Python tests read)", () => {
    expect(vectors.cases.length).toBeGreaterThan(8)
    for (const c of vectors.cases) {
      expect(canonicalJson(c.value)).toBe(c.canonical)
      expect(callKey("srv", "tool", c.value)).toBe(c.call_key)
      expect(schemaHash(c.value)).toBe(c.schema_hash)
    }
  })
})
