/**
 * `--backend batch` flags that cannot work are refused before a run is resolved: no run directory is
 * made, no "starting a new run" is logged, nothing is requested (the base URL is a closed port).
 */
import { existsSync, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"

const SHAREGPT = join(__dirname, "fixtures", "sharegpt", "sample_data.json")
const ENV = { OPENAI_API_KEY: "sk-test-batch-flags", OPENAI_BASE_URL: "http://127.0.0.1:9/v1" }

const commands = (out: string) => ({
  generate: ["generate", "-n", "2", "--out", out, "--backend", "batch"],
  enrich: ["enrich", SHAREGPT, "--out", out, "--limit", "2", "--inventory-from-prompt", "--backend", "batch"]
})

const cases: ReadonlyArray<{ flags: Array<string>; error: RegExp; env?: Record<string, string> }> = [
  { flags: ["--resume"], error: /--backend batch --resume: .*skyrl batch collect RUN_DIR/ },
  { flags: ["--llm", "replay"], error: /--backend batch: .*cannot replay recorded answers/ },
  // No key and the default --llm auto: not the offline replay (which failed in the subjects stage with
  // "invalid model output: domains: is missing") but the missing key, named.
  { flags: [], env: { OPENAI_BASE_URL: ENV.OPENAI_BASE_URL }, error: /--backend batch: .*OPENAI_API_KEY is not set/ }
]

describe("--backend batch with flags it cannot honour", () => {
  for (const name of ["generate", "enrich"] as const) {
    for (const c of cases) {
      it(
        `${name} ${c.flags.join(" ") || "(no key)"}: exit 2, the reason, no run directory, no new-run log`,
        async () => {
          const dir = mkdtempSync(join(tmpdir(), "skyrl-batch-flags-"))
          const out = join(dir, "ds.jsonl")
          const r = await runCli([...commands(out)[name], ...c.flags], { env: c.env ?? ENV })
          expect(r.status, r.stderr).toBe(2)
          expect(r.stderr).toMatch(c.error)
          expect(r.stderr).not.toMatch(/starting a new run/)
          expect(existsSync(join(dir, "raw_llm"))).toBe(false)
          expect(existsSync(out)).toBe(false)
        },
        30_000
      )
    }
  }
})
