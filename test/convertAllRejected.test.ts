/**
 * `convert` whose every task is rejected writes no dataset (an empty one is never written: SkyRL's loader fails on
 * it, and `validate` reports such a file as contract/empty-file), writes its rejects file (the reasons), and leaves
 * an --out an earlier run left as it was. The error says that --out is an earlier run's and does not match these
 * rejects; before, it said only "<out> not written" while the earlier dataset stood beside the new rejects.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"

const tmp = () => mkdtempSync(join(tmpdir(), "skyrl-all-rejected-"))
const task = (i: number) => ({
  task_id: `t${i}`,
  user_prompt: `Quote for ticker number ${i}`,
  tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }],
  evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
})
const BAD = [{ user_prompt: "x", tool_sequence: [] }, { user_prompt: "y", tool_sequence: [] }]

describe("convert with every task rejected", () => {
  it("an earlier run's --out: left as it was, and the error says it is an earlier run's", async () => {
    const dir = tmp()
    const out = join(dir, "rows.jsonl")
    const rejects = `${out}.rejects.jsonl`
    const good = join(dir, "good.jsonl")
    writeFileSync(good, JSON.stringify(task(1)) + "\n")
    expect((await runCli(["convert", good, "--out", out])).status).toBe(0)
    const before = readFileSync(out, "utf8")
    const bad = join(dir, "bad.jsonl")
    writeFileSync(bad, BAD.map((t) => JSON.stringify(t)).join("\n") + "\n")
    const r = await runCli(["convert", bad, "--out", out])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(
      `skyrl: ${bad}: all 2 tasks were rejected (reasons in ${rejects}); nothing to convert, so no dataset was ` +
        `written: the ${out} there is an earlier run's, left as it was, and does not match these rejects (an empty ` +
        `dataset is never written: SkyRL's loader fails on one)\n`
    )
    expect(readFileSync(out, "utf8")).toBe(before)
    expect(readFileSync(rejects, "utf8").trim().split("\n").map((l) => JSON.parse(l).file)).toEqual([bad, bad])
  })

  it("no earlier --out: none is made, and the error says it was not written", async () => {
    const dir = tmp()
    const out = join(dir, "rows.json")
    const bad = join(dir, "bad.jsonl")
    writeFileSync(bad, BAD.map((t) => JSON.stringify(t)).join("\n") + "\n")
    const r = await runCli(["convert", bad, "--out", out])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(
      `skyrl: ${bad}: all 2 tasks were rejected (reasons in ${out}.rejects.jsonl); nothing to convert, so ${out} ` +
        `was not written (an empty dataset is never written: SkyRL's loader fails on one)\n`
    )
    expect(existsSync(out)).toBe(false)
    expect(readFileSync(`${out}.rejects.jsonl`, "utf8").trim().split("\n")).toHaveLength(2)
  })
})
