/**
 * An output path that names a directory ("out.jsonl/"), and rebuild's --out format: usage errors (exit 2) found
 * before anything is made. Before: `convert`, `split` and `rebuild` made an empty directory out.jsonl/ (the lock
 * `out.jsonl/.lock`, or the rename) and exited 1; `generate` wrote out.jsonl; `rebuild --out r.txt` wrote nothing
 * and said "once DIR can be written, run the rebuild again".
 */
import { readdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { tempDir } from "./support/fakeRun.js"

const TASK = {
  task_id: "a1",
  user_prompt: "Get the current AAPL quote and summarize it in one sentence.",
  tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }],
  evaluation_rubric: { name: "q", criteria: [{ name: "g", description: "d", scoring: "0-1" }] }
}

let dir = ""
let runDir = ""
beforeAll(async () => {
  dir = tempDir("skyrl-out-slash-")
  writeFileSync(join(dir, "t.jsonl"), JSON.stringify(TASK) + "\n")
  const made = await runCli(["generate", "-n", "1", "--out", "run/ds.jsonl"], { cwd: dir })
  expect(made.status, made.stderr).toBe(0)
  runDir = join(dir, "run", "raw_llm", readdirSync(join(dir, "run", "raw_llm"))[0]!)
}, 60_000)

describe("an output path ending in /", () => {
  const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>, string]> = [
    ["convert", ["convert", "t.jsonl", "--out", "c.jsonl/"], "--out"],
    ["generate", ["generate", "-n", "1", "--out", "g.jsonl/"], "--out"],
    ["enrich", ["enrich", "t.jsonl", "--out", "e.jsonl/"], "--out"],
    ["split", ["split", "run/ds.jsonl", "--train", "tr.jsonl/", "--val", "v.jsonl"], "--train"],
    ["verify", ["verify", "run/ds.jsonl", "--out", "ver.parquet/"], "verify: --out"]
  ]
  for (const [name, args, flag] of cases) {
    it(`${name}: exit 2 naming ${flag}, nothing made`, async () => {
      const before = readdirSync(dir).sort()
      const r = await runCli(args, { cwd: dir })
      const out = args[args.indexOf(flag.replace("verify: ", "")) + 1]!
      expect(r.stderr.trim()).toBe(
        `skyrl: ${flag}: "${out}" ends with "/", which names a directory: a dataset is a file ("${out.slice(0, -1)}")`
      )
      expect(r.status).toBe(2)
      expect(readdirSync(dir).sort()).toEqual(before)
    }, 60_000)
  }

  it(
    "rebuild: a path ending in / and one without a dataset format are usage errors, before the run is read",
    async () => {
      const before = readdirSync(dir).sort()
      const slash = await runCli(["rebuild", runDir, "--out", "r.jsonl/"], { cwd: dir })
      expect(slash.stderr.trim()).toBe(
        `skyrl: --out: "r.jsonl/" ends with "/", which names a directory: a dataset is a file ("r.jsonl")`
      )
      expect(slash.status).toBe(2)
      const txt = await runCli(["rebuild", runDir, "--out", "r.txt"], { cwd: dir })
      expect(txt.stderr.trim()).toBe(`skyrl: --out: "r.txt" must end in .json, .jsonl or .parquet`)
      expect(txt.status).toBe(2)
      expect(readdirSync(dir).sort()).toEqual(before)
      const ok = await runCli(["rebuild", runDir, "--out", "r.jsonl"], { cwd: dir })
      expect(ok.status, ok.stderr).toBe(0)
    },
    60_000
  )
})
