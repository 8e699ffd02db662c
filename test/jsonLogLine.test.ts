/**
 * A file named `.json` whose first line is a log line (`[INFO] started`) followed by JSON Lines rows is read as
 * the same text named `.jsonl` is, by every command that reads records: JSON Lines with one bad line, a rejected
 * record (convert, enrich, verify) or a `contract/json` violation (validate) naming line 1, the rows after it
 * read. Before, `validate` refused the whole `.json` file (Storage's reader parsed a `.json` text starting with
 * '[' as one JSON array: `not valid JSON: ... (at line 1, column 2)`) while `convert` read its rows. One reader
 * decides now (src/skyrl/records.ts `recordStream`, used by Storage's `readRows` and `readRecords`).
 */
import { copyFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { readJsonl, tempDir } from "./support/fakeRun.js"
import { validTaskText } from "./support/fakeTasks.js"

const LOG = "[INFO] started"
const REASON = "line 1 is not valid JSON: Unexpected token 'I', \"[INFO] started\" is not valid JSON"

const task = (k: number) => validTaskText(k, 0).replace("\"limit\":null", "\"limit\":3")

describe("a .json file whose first line is a log line, then JSON Lines", () => {
  it("convert, validate, verify --dry-run and enrich --dry-run read its rows and name line 1", async () => {
    const dir = tempDir("skyrl-json-log-")
    const tasks = join(dir, "tasks.json")
    writeFileSync(tasks, [LOG, task(1), task(2)].join("\n") + "\n")
    const out = join(dir, "rows.jsonl")
    const c = await runCli(["convert", tasks, "--out", out])
    expect(c.status, c.stderr).toBe(0)
    expect(readJsonl(out).map((x) => x.reward_spec.ground_truth.task_id)).toEqual(["fake-1-0", "fake-2-0"])
    expect(readJsonl(`${out}.rejects.jsonl`)).toEqual([
      { file: tasks, index: 0, line: 1, field: "(record)", reason: REASON }
    ])
    expect(c.stderr).toContain(`${tasks}: task 0 rejected: (record): ${REASON}`)

    // The rows with the log line before them, named .json and .jsonl: validate reads both the same way.
    const rows = readJsonl(out).map((x) => JSON.stringify(x))
    const asJson = join(dir, "logged.json")
    writeFileSync(asJson, [LOG, ...rows].join("\n") + "\n")
    const asJsonl = join(dir, "logged.jsonl")
    copyFileSync(asJson, asJsonl)
    const reports = []
    for (const file of [asJson, asJsonl]) {
      const v = await runCli(["validate", file, "--json"])
      expect(v.status, v.stderr).toBe(1)
      const report = JSON.parse(v.stdout)
      expect(report.rows).toBe(3)
      const json = report.rules.find((x: any) => x.id === "contract/json")
      expect(json.count).toBe(1)
      expect(json.examples[0]).toMatchObject({ file, row: 0 })
      expect(json.examples[0].message).toContain(REASON)
      expect(report.violations).toBe(1)
      expect(report.files).toEqual([{ file, rows: 3 }])
      reports.push({
        ...report,
        files: [],
        rules: report.rules.map((x: any) => ({ ...x, examples: x.examples.length }))
      })
    }
    expect(reports[0]).toEqual(reports[1])

    const d = await runCli(["verify", asJson, "--out", join(dir, "v.jsonl"), "--dry-run"])
    expect(d.stdout).toContain(`${asJson} row 0: reject: read: ${REASON}`)
    expect(d.stdout).toContain("rows: 3 → read 2 →")

    const prompts = join(dir, "prompts.json")
    const chat = (id: string) => JSON.stringify({ id, messages: [{ role: "user", content: `Quote ${id}.` }] })
    writeFileSync(prompts, [LOG, chat("AMD"), chat("INTC")].join("\n") + "\n")
    const e = await runCli(["enrich", prompts, "--out", join(dir, "e.jsonl"), "--dry-run"])
    expect(e.status, e.stderr).toBe(0)
    expect(e.stdout).toContain(`row 0: reject, ${prompts}, row 0, (record): ${REASON}`)
    expect(e.stdout).toContain("planned 2, kept as is 0, rejected 1")
  }, 60_000)
})
