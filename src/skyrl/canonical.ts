/**
 * Canonical JSON and the hashes built on it: the one definition shared by every file format skyrl
 * writes for other programs (tool-result cassettes, inventory schema hashes, batch body hashes) and by
 * the Python `MCPToolEnv` package, which implements the same rules (test/fixtures/canonical/vectors.json
 * holds cases both sides check).
 *
 * Canonical JSON (RFC 8785, JCS): object keys sorted by UTF-16 code units, no whitespace, strings and
 * numbers as ECMAScript `JSON.stringify` writes them (so 1.0 is `1`, 1e21 is `1e+21`). Pure.
 */
import { hash } from "node:crypto"
import { isObject } from "../domain/json.js"

/**
 * JSON with object keys sorted by UTF-16 code units (RFC 8785 for JSON values). Written by hand because
 * `JSON.stringify` puts integer-like keys ("9", "10") first whatever order they are given in. Values
 * JSON cannot hold are dropped as `JSON.stringify` drops them (`undefined` in objects, `null` in arrays).
 * The text is built by concatenation, not from arrays of parts joined: a quarter faster, and every line a cassette
 * reader checks goes through it (`entryFault`).
 */
export const canonicalJson = (value: unknown): string => {
  if (Array.isArray(value)) {
    let out = "["
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i]
      out += (i === 0 ? "" : ",") + (v === undefined ? "null" : canonicalJson(v))
    }
    return out + "]"
  }
  if (isObject(value)) {
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
      return canonicalJson(JSON.parse(JSON.stringify(value)))
    }
    let out = "{"
    for (const key of Object.keys(value).sort()) {
      const v = value[key]
      if (v === undefined || typeof v === "function") continue
      out += (out.length === 1 ? "" : ",") + JSON.stringify(key) + ":" + canonicalJson(v)
    }
    return out + "}"
  }
  return JSON.stringify(value) ?? "null"
}

/** sha256 hex of the UTF-8 text (one-shot `crypto.hash`: several times cheaper than a Hash object on short text). */
export const sha256Hex = (text: string): string => hash("sha256", text, "hex")

/** The cassette key of one tool call: sha256 of `server \n tool \n canonical(params)`. */
export const callKey = (server: string, tool: string, params: unknown): string =>
  sha256Hex(`${server}\n${tool}\n${canonicalJson(params)}`)

/** The hash of a tool's input schema (drift detection): sha256 of its canonical JSON. */
export const schemaHash = (inputSchema: unknown): string => sha256Hex(canonicalJson(inputSchema))
