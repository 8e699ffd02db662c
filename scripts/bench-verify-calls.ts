/**
 * The calls of bench section 6, row by row: what the coordinator (scripts/bench-verify.ts) writes into the
 * verify side's datasets and what the other sides (scripts/bench-verify-run.ts) send. A module of its own, so
 * that the coordinator does not load the sides' program to know them.
 */

/** The bench's calls of row k: two steps, params distinct per row. */
export const benchCalls = (k: number) => [
  { tool: "echo", params: { message: `row ${k}` } },
  { tool: "get-sum", params: { a: k, b: 1 } }
]
