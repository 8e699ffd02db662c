/**
 * The token usage every fake answer reports, and its online price: in a module of their own (no import of src/),
 * so that a test file that runs only the built CLI does not load the run engine for them (support/engine.ts,
 * which re-exports them, imports most of src/ and ~1-2 s of CPU per test file that loads it).
 */
export const USAGE = { input: 1500, cached: 1024, output: 700, reasoning: 400 }
/** gpt-5-mini prices: $0.25 / 1M input, $0.025 cached, $2.00 output. */
export const costOfCalls = (calls: number, u = USAGE) =>
  (calls * ((u.input - u.cached) * 0.25 + u.cached * 0.025 + u.output * 2)) / 1e6
