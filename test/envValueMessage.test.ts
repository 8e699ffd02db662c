/**
 * A bad value in an environment fallback (`N_SAMPLES=abc`) read as @effect/config's raw text, in parentheses with
 * nested quotes: `skyrl: (Invalid data at N_SAMPLES: "Expected an integer value but received "abc"")`, where the
 * same value given as a flag reads `skyrl: --seed: 'abc' is not an integer`.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"

const out = () => join(mkdtempSync(join(tmpdir(), "skyrl-env-value-")), "x.jsonl")

describe("a bad environment value", () => {
  it.each([
    ["N_SAMPLES", "abc", "skyrl: N_SAMPLES: 'abc' is not an integer\n"],
    ["CONCURRENCY", "1.5", "skyrl: CONCURRENCY: '1.5' is not an integer\n"],
    ["MAX_COST_USD", "lots", "skyrl: MAX_COST_USD: 'lots' is not a number\n"],
    ["SKYRL_LOG_FORMAT", "xml", "skyrl: SKYRL_LOG_FORMAT: 'xml' is not one of pretty, json\n"]
  ])("%s=%s is named with its value, exit 2", async (name, value, expected) => {
    const r = await runCli(["generate", "--out", out(), "--dry-run"], { env: { [name]: value } })
    expect(r.status, r.stderr).toBe(2)
    expect(r.stderr).toBe(expected)
  })
})
