/**
 * `skyrl split` end to end, two runs of the built CLI: the outputs of two inputs (JSON Lines and a JSON array)
 * with the summary on stderr and nothing on stdout; a bad row, exit 1 naming file, row and field, nothing written.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { rowFor } from "./support/verifyRows.js"

const rowOf = (n: number) => rowFor(`${n}`, [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: `S${n}` } }])
const promptsOf = (rows: ReadonlyArray<any>) => rows.map((r) => r.prompt.at(-1).content)

describe("skyrl split (CLI)", () => {
  it("splits two inputs by row, the lowest hashes to val, order kept; the summary on stderr", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-split-cli-"))
    writeFileSync(join(dir, "a.jsonl"), [0, 1, 2].map((n) => JSON.stringify(rowOf(n)) + "\n").join(""))
    writeFileSync(join(dir, "b.json"), JSON.stringify([3, 4].map(rowOf)))
    const [train, val] = [join(dir, "t.json"), join(dir, "v.jsonl")]
    const args = ["split", join(dir, "a.jsonl"), join(dir, "b.json"), "--train", train, "--val", val]
    const r = await runCli([...args, "--val-rows", "2", "--group-by", "none"])
    expect(r.status).toBe(0)
    expect(r.stdout).toBe("")
    // sha256("0\nrow N") scores: row 3 0.216, row 2 0.448, row 0 0.607, row 4 0.622, row 1 0.860.
    expect(promptsOf(readFileSync(val, "utf8").trim().split("\n").map((l) => JSON.parse(l)))).toEqual(
      promptsOf([rowOf(2), rowOf(3)])
    )
    expect(promptsOf(JSON.parse(readFileSync(train, "utf8")))).toEqual(promptsOf([rowOf(0), rowOf(1), rowOf(4)]))
    expect(r.stderr).toContain(`split 5 rows by none: ${train} 3 rows in 3 groups, ${val} 2 rows in 2 groups`)
    expect(r.stderr).not.toContain("WARN")
  })

  it("a file given twice (by another spelling too): exit 2, nothing written (before: every row split twice)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-split-cli-"))
    const input = join(dir, "a.jsonl")
    writeFileSync(input, [0, 1, 2].map((n) => JSON.stringify(rowOf(n)) + "\n").join(""))
    const [train, val] = [join(dir, "t.jsonl"), join(dir, "v.jsonl")]
    const twice = `${dir}/./a.jsonl`
    const r = await runCli(["split", input, twice, "--train", train, "--val", val, "--val-rows", "1"])
    expect(r.status, r.stderr).toBe(2)
    expect(r.stderr).toContain(`${twice}: is given twice (files 1 and 2): each of its rows would be split twice`)
    expect([existsSync(train), existsSync(val)]).toEqual([false, false])
  })

  it("a bad row: exit 1 naming file, row and field, no output written", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-split-cli-"))
    const input = join(dir, "in.jsonl")
    const bad = { ...rowOf(1), reward_spec: { method: "rule" } }
    writeFileSync(input, [rowOf(0), bad].map((r) => JSON.stringify(r) + "\n").join(""))
    const r = await runCli(["split", input, "--train", join(dir, "t.jsonl"), "--val", join(dir, "v.jsonl")])
    expect(r.status).toBe(1)
    expect(r.stdout).toBe("")
    expect(r.stderr).toContain(`skyrl: ${input}, row 1, reward_spec.ground_truth:`)
    expect([existsSync(join(dir, "t.jsonl")), existsSync(join(dir, "v.jsonl"))]).toEqual([false, false])
  })
})
