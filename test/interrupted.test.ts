/** The line an interrupted command ends with (src/cli/exit.ts): how to go on, found in the raw command line. */
import { describe, expect, it } from "vitest"
import { interruptedMessage } from "../src/cli/exit.js"

const argv = (...args: Array<string>) => ["node", "skyrl", ...args]
const RESUME = "interrupted; the work done so far is kept: rerun the same command with --resume to continue"

describe("interruptedMessage", () => {
  it("names --resume for generate, enrich and verify, wherever the global options stand", () => {
    expect(interruptedMessage(argv("enrich", "in.json", "--out", "o.jsonl"))).toBe(RESUME)
    // Before: the value of a global option given first (`debug`, `json`) was taken for the command, and the
    // line said only "interrupted".
    expect(interruptedMessage(argv("--log-level", "debug", "enrich", "in.json", "--out", "o.jsonl"))).toBe(RESUME)
    expect(interruptedMessage(argv("--log-format", "json", "generate", "-n", "3", "--out", "o.jsonl"))).toBe(RESUME)
    expect(interruptedMessage(argv("--log-level", "info", "enrich", "in.json", "--backend", "batch"))).toMatch(
      /^interrupted; what was submitted is kept: `skyrl batch collect RUN_DIR`/
    )
  })

  it("says to collect again for an interrupted `batch collect`; other commands only say interrupted", () => {
    expect(interruptedMessage(argv("batch", "collect", "raw_llm/run", "--wait"))).toMatch(
      /^interrupted; what was collected is kept: run `skyrl batch collect RUN_DIR` again/
    )
    expect(interruptedMessage(argv("--log-level", "debug", "batch", "collect", "raw_llm/run"))).toMatch(
      /batch collect RUN_DIR` again/
    )
    expect(interruptedMessage(argv("batch", "status", "raw_llm/run", "--wait"))).toBe("interrupted")
    expect(interruptedMessage(argv("validate", "a.jsonl"))).toBe("interrupted")
    expect(interruptedMessage(argv())).toBe("interrupted")
  })
})
