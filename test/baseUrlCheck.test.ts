/**
 * OPENAI_BASE_URL is checked before a run calls anything, as `--dry-run` (and the wrapper) checked it already. A URL
 * without its scheme (`localhost:8000/v1`, as vLLM's docs show the host) made every request fail with "temporary
 * failure of the model API: Invalid URL", retried: 45 calls and ~46 s for 3 samples, exit 1, OPENAI_BASE_URL never
 * named. A URL holding a user and password (which Node's fetch refuses the same way) was besides printed in the run's
 * log line, `--dry-run` and the manifest.
 */
import { mkdtempSync, readdirSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { ROOT } from "./support/python.js"

const dir = () => mkdtempSync(join(tmpdir(), "skyrl-base-url-"))
const env = (url: string) => ({ OPENAI_API_KEY: "sk-test-base-url", OPENAI_BASE_URL: url })

describe("OPENAI_BASE_URL", () => {
  it("without a scheme stops generate and enrich at once (exit 2), naming the variable", async () => {
    const out = join(dir(), "x.jsonl")
    const g = await runCli(["generate", "-n", "3", "--subjects", "none", "--out", out], {
      env: env("localhost:8000/v1")
    })
    expect(g.status, g.stderr).toBe(2)
    expect(g.stderr).toContain("skyrl: OPENAI_BASE_URL: must be an http(s) URL, got \"localhost:8000/v1\"")
    expect(g.stderr).not.toContain("Invalid URL")
    const input = join(ROOT, "test", "fixtures", "enrich", "openai_messages.jsonl")
    const e = await runCli(["enrich", input, "--out", join(dir(), "e.jsonl")], { env: env("localhost:8000/v1") })
    expect(e.status, e.stderr).toBe(2)
    expect(e.stderr).toContain("OPENAI_BASE_URL: must be an http(s) URL")
  })
  it("without a scheme stops a --backend batch run before its stages and submission (exit 2)", async () => {
    const out = join(dir(), "x.jsonl")
    const g = await runCli([
      "generate",
      "--backend",
      "batch",
      "-n",
      "2",
      "--subjects",
      "none",
      "--domains",
      "a",
      "--out",
      out
    ], {
      env: env("localhost:8000/v1")
    })
    expect(g.status, g.stderr).toBe(2)
    expect(g.stderr).toContain("skyrl: OPENAI_BASE_URL: must be an http(s) URL, got \"localhost:8000/v1\"")
  })
  it("with a user and password: refused, the password never shown (dry run, log, manifest)", async () => {
    const d = dir()
    const url = "http://user:hunter2@127.0.0.1:9/v1"
    const dry = await runCli(["generate", "-n", "1", "--out", join(d, "x.jsonl"), "--dry-run"], { env: env(url) })
    expect(dry.status).toBe(2)
    expect(dry.stdout + dry.stderr).not.toContain("hunter2")
    expect(dry.stdout).toContain("OPENAI_BASE_URL: http://user:***@127.0.0.1:9/v1")
    const run = await runCli(["generate", "-n", "1", "--subjects", "none", "--out", join(d, "x.jsonl")], {
      env: env(url)
    })
    expect(run.status, run.stderr).toBe(2)
    expect(run.stderr).toContain("OPENAI_BASE_URL: holds a user name or password")
    expect(run.stderr).not.toContain("hunter2")
    const runs = join(d, "raw_llm")
    for (
      const r of (() => {
        try {
          return readdirSync(runs)
        } catch {
          return []
        }
      })()
    ) {
      expect(readFileSync(join(runs, r, "manifest.json"), "utf8")).not.toContain("hunter2")
    }
  })
})
