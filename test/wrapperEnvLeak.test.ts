/**
 * The wrapper passes every setting to `generate` as a flag and drops the generator's environment fallbacks, "so
 * what was checked is what runs". It dropped only those it has a variable for: generate's other fallbacks
 * (NEAR_DUP, PERSONAS, SUBJECTS, AS_OF, MAX_PROMPT_TOKENS) reached it unchecked, so a stale `NEAR_DUP=off` in the
 * shell turned the near-duplicate gate off unseen, and a bad one failed with generate's exit 2, not the wrapper's 78.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runChild } from "./support/child.js"
import { cleanEnv } from "./support/cli.js"
import { ROOT } from "./support/python.js"

const SCRIPT = join(ROOT, "scripts", "generate_llm_dataset.sh")

describe("generate_llm_dataset.sh and generate's other environment fallbacks", () => {
  it("leaves them out of generate's environment", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "skyrl-wrapper-env-")), "x.jsonl")
    const env = cleanEnv({
      NEAR_DUP: "off",
      PERSONAS: "/nonexistent/personas.txt",
      SUBJECTS: "/nonexistent/subjects.txt",
      AS_OF: "not-a-date",
      MAX_PROMPT_TOKENS: "abc"
    })
    const r = await runChild("bash", [SCRIPT, "--dry-run", out], { env, cwd: ROOT, timeoutMs: 120_000 })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain("near-duplicates: rejected at similarity 0.8")
  })
})
