/**
 * `readsAsTimestamp` against pyarrow's own answers (test/fixtures/arrow-dates/vectors.json, written by pyarrow:
 * make-vectors.py there). Before, `arrow/date-string` missed `2025-09-06T10` and `2025-09-06T12:00+02` (timestamps
 * to pyarrow: the task id came back a datetime, and a second file of plain ids failed to concatenate) and refused
 * `2025-02-30` and `...T10:00:00.123Z`, which pyarrow keeps as strings.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { readsAsTimestamp } from "../src/skyrl/arrowDates.js"

const VECTORS = join(import.meta.dirname, "fixtures", "arrow-dates", "vectors.json")
const { cases } = JSON.parse(readFileSync(VECTORS, "utf8")) as { cases: Array<[string, boolean]> }

describe("readsAsTimestamp", () => {
  it("the vectors hold verdicts of both kinds", () => {
    expect(cases.filter(([, t]) => t).length).toBeGreaterThan(20)
    expect(cases.filter(([, t]) => !t).length).toBeGreaterThan(30)
  })
  it.each(cases)("%j: a timestamp to pyarrow is %s", (text, timestamp) => {
    expect(readsAsTimestamp(text)).toBe(timestamp)
  })
})
