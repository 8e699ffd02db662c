/**
 * An output path that goes through a missing directory before `..` (`--out ./nosub/../o.jsonl`): the path
 * shortened (`./o.jsonl`) is fine, so the directory checks passed, but the system walks the path as written and
 * the run could not open it: `cannot create lock ./nosub/../o.jsonl.lock: no such file or directory`, exit 1,
 * naming no flag. Now a usage error (exit 2) naming the flag, the path and the part that is missing, before
 * anything runs; a path through a directory that is there (`sub/../o.jsonl`) works as before.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"

const tmp = () => mkdtempSync(join(tmpdir(), "skyrl-updir-"))

const task = {
  task_id: "t0",
  user_prompt: "Quote for ticker number 0",
  tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }],
  evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
}

const through = (flag: string, given: string) =>
  `skyrl: ${flag}: ${given}: ./nosub does not exist (the path goes through it before '..')\n`

describe("an output path through a missing directory before '..'", () => {
  it(
    "convert --out, split --train, generate --raw-dir: exit 2 naming the flag; a path through a real directory works",
    async () => {
      const cwd = tmp()
      writeFileSync(join(cwd, "tasks.jsonl"), JSON.stringify(task) + "\n")
      const convert = await runCli(["convert", "tasks.jsonl", "--out", "./nosub/../o.jsonl"], { cwd })
      expect([convert.status, convert.stderr]).toEqual([2, through("--out", "./nosub/../o.jsonl")])

      mkdirSync(join(cwd, "sub"))
      const ok = await runCli(["convert", "tasks.jsonl", "--out", "sub/../rows.jsonl"], { cwd })
      expect(ok.status, ok.stderr).toBe(0)

      const split = await runCli(["split", "rows.jsonl", "--train", "./nosub/../t.jsonl", "--val", "v.jsonl"], { cwd })
      expect([split.status, split.stderr]).toEqual([2, through("--train", "./nosub/../t.jsonl")])

      const generate = await runCli(["generate", "-n", "1", "--out", "g.jsonl", "--raw-dir", "./nosub/../raw"], { cwd })
      expect([generate.status, generate.stderr]).toEqual([2, through("--raw-dir", "./nosub/../raw")])

      // Nothing written but the tasks, sub/, and the one dataset converted (with its rejects file).
      expect(readdirSync(cwd).sort()).toEqual(["rows.jsonl", "rows.jsonl.rejects.jsonl", "sub", "tasks.jsonl"])
      expect(existsSync(join(cwd, "nosub"))).toBe(false)
    },
    60_000
  )
})
