import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import {
  derivedValuesFoundBySteps,
  Evidence,
  jsonLeaves,
  policyText,
  rowFound,
  textPieces
} from "../src/skyrl/grounding.js"

interface Case {
  readonly texts: ReadonlyArray<string>
  readonly value: unknown
  readonly held: boolean
  readonly why: string
}

const vectors = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", "grounding", "vectors.json"), "utf8"))
const cases: ReadonlyArray<Case> = vectors.cases
const leaves: ReadonlyArray<{ text: string; leaves: Array<[string, boolean]> | null }> = vectors.leaves
const pieces: ReadonlyArray<{ text: string; pieces: Array<[string, boolean | null]> | null }> = vectors.pieces

describe("derived-value grounding, shared with the Python MCPToolEnv (ground_derived)", () => {
  it("reads every case of test/fixtures/grounding/vectors.json as the Python tests do", () => {
    expect(cases.length).toBeGreaterThan(15)
    for (const c of cases) expect([c.why, new Evidence(c.texts).holds(c.value)]).toEqual([c.why, c.held])
  })
  it("reads a JSON text's strings and numbers as the vectors' leaves say (a JSON result is read a string at a time)", () => {
    expect(leaves.length).toBeGreaterThan(10)
    for (const c of leaves) expect([c.text, jsonLeaves(c.text) ?? null]).toEqual([c.text, c.leaves])
  })
  it("reads a text of prose and JSON lines as the vectors' pieces say (the JSON lines a string at a time)", () => {
    expect(pieces.length).toBeGreaterThan(5)
    for (const c of pieces) expect([c.text, textPieces(c.text) ?? null]).toEqual([c.text, c.pieces])
  })
  it("finds a string written with Python's ensure_ascii escapes and as JSON.stringify writes it", () => {
    expect(new Evidence(["caf\\u00e9 \\u007f"]).holds("café \u007f")).toBe(true)
    expect(new Evidence(["line\\nbreak"]).holds("line\nbreak")).toBe(true)
    expect(new Evidence(["caf\\u00e9"]).holds("cafe")).toBe(false)
  })
})

/** The row's derived_values_found, as Verifier records it: every step's, from the per-step findings. */
const derivedValuesFound = (...args: Parameters<typeof derivedValuesFoundBySteps>) =>
  rowFound(derivedValuesFoundBySteps(...args))

describe("policyText and derivedValuesFound (skyrl verify's derived_values_found)", () => {
  /** A plan step as the grounding functions read it. */
  const step = (
    n: number,
    params: Record<string, unknown>,
    derivedParams: ReadonlyArray<string> = [],
    dependsOn: ReadonlyArray<number> = []
  ) => ({ step: n, params, derivedParams, dependsOn })
  it("reads a result as MCPToolEnv shows it: text blocks, other blocks as JSON, structured content when there are none", () => {
    const image = { type: "image", mimeType: "image/png", data: "AAAA" }
    expect(policyText({ content: [{ type: "text", text: "a" }, image] })).toBe("a\n[image image/png, 4 base64 chars]")
    expect(policyText({ content: [{ type: "resource_link", uri: "x://1" }] })).toBe(
      "{\"type\":\"resource_link\",\"uri\":\"x://1\"}"
    )
    expect(policyText({ content: [], structuredContent: { id: 7 } })).toBe("{\"id\":7}")
  })
  it("holds a plan's derived values to the results of their depends_on steps, and says nothing of a plan without", () => {
    const plan = [step(1, { q: "x" }), step(2, { id: "u-7" }, ["id"], [1]), step(3, { n: 3 }, ["n"], [2])]
    expect(derivedValuesFound(plan, ["user u-7", "count: 3"])).toBe(true)
    expect(derivedValuesFound(plan, ["count: 3", "user u-7"])).toBe(false) // u-7 came after step 2 needed it
    // step 3's 3 is in step 1's result only, and step 3 depends on step 2
    expect(derivedValuesFound(plan, ["user u-7, 3 found", "none"])).toBe(false)
    // without depends_on every step before counts
    const loose = [step(1, { q: "x" }), step(2, { id: "u-7" }), step(3, { n: 3 }, ["n"])]
    expect(derivedValuesFound(loose, ["user u-7, 3 found", "none"])).toBe(true)
    expect(derivedValuesFound([step(1, { q: "x" })], [])).toBeUndefined()
  })
  it("says per step whether its own derived values are in its dependencies' results (undefined for a step without)", () => {
    // step 2 copies the id step 1 gave; step 3 sends a total no result writes (computed): the row is false
    const plan = [step(1, { q: "x" }), step(2, { id: "u-7" }, ["id"], [1]), step(3, { total: 10 }, ["total"], [2])]
    const texts = ["user u-7", "items 3 and 7"]
    expect(derivedValuesFoundBySteps(plan, texts)).toEqual([undefined, true, false])
    expect(derivedValuesFound(plan, texts)).toBe(false)
    expect(derivedValuesFoundBySteps(plan, ["user u-7", "total 10"])).toEqual([undefined, true, true])
    expect(derivedValuesFoundBySteps([step(1, { q: "x" })], [])).toEqual([undefined])
  })
})
