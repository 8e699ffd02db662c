/**
 * A JSON Lines file whose first line is not JSON (a stray header or log line, `garbage{`) is JSON Lines with
 * one bad line: that line is a rejected record and the rest is read, in every command that reads records
 * (convert, enrich, verify, validate), as a bad line anywhere else is. Before, convert, enrich and verify
 * refused the whole file ("not JSON or JSON Lines: the first line is not a JSON value, ...") while validate
 * read it. A text none of whose first 8 non-blank lines is JSON (a CSV, a text file) keeps the whole-file
 * error; a pretty-printed JSON array is still one document (src/skyrl/records.ts, `recordsFormatOf`).
 */
import { existsSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { planAnswer } from "./support/fakeEnrich.js"
import { answer } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, readJsonl, tempDir } from "./support/fakeRun.js"
import { validTaskText } from "./support/fakeTasks.js"

const servers = fakes()
afterEach(servers.closeAll)

const tmp = () => tempDir("skyrl-first-line-")

const task = (k: number) => validTaskText(k, 0).replace("\"limit\":null", "\"limit\":3")

/** Line 1 as JSON.parse refuses it, as a bad line's reject says it. */
const GARBAGE = "garbage{"
const GARBAGE_REASON = `line 1 is not valid JSON: Unexpected token 'g', "garbage{" is not valid JSON`

const NOT_JSON = "not JSON or JSON Lines: the first line is not a JSON value"

describe("a JSON Lines file whose first line is not JSON", () => {
  it("convert: the tasks of lines 2..n are converted, line 1 is in the rejects file with its reason", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.jsonl")
    writeFileSync(input, [GARBAGE, task(1), task(2), task(3)].join("\n") + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["convert", input, "--out", out])
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out).map((x) => x.reward_spec.ground_truth.task_id)).toEqual(["fake-1-0", "fake-2-0", "fake-3-0"])
    expect(readJsonl(`${out}.rejects.jsonl`)).toEqual([
      { file: input, index: 0, line: 1, field: "(record)", reason: GARBAGE_REASON }
    ])
  })

  it("a first line starting with '[' that is no JSON (a log line's time): convert and enrich read the lines after it", async () => {
    const dir = tmp()
    const log = "[2026-01-02 10:00:00] export started"
    const reason = "line 1 is not valid JSON: Expected ',' or ']' after array element in JSON at position 5"
    const tasks = join(dir, "tasks.jsonl")
    writeFileSync(tasks, [log, task(1), task(2)].join("\n") + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["convert", tasks, "--out", out])
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out).map((x) => x.reward_spec.ground_truth.task_id)).toEqual(["fake-1-0", "fake-2-0"])
    expect(readJsonl(`${out}.rejects.jsonl`)).toEqual([{ file: tasks, index: 0, line: 1, field: "(record)", reason }])
    const prompts = join(dir, "prompts.jsonl")
    const users = ["Get the latest quote for AMD.", "Get the latest quote for INTC."]
    const rows = users.map((content, i) => JSON.stringify({ id: `r${i}`, messages: [{ role: "user", content }] }))
    writeFileSync(prompts, [log, ...rows].join("\n") + "\n")
    const dry = await runCli(["enrich", prompts, "--out", join(dir, "e.jsonl"), "--dry-run"])
    expect(dry.status, dry.stderr).toBe(0)
    expect(dry.stdout).toContain(`row 0: reject, ${prompts}, row 0, (record): ${reason}`)
    expect(dry.stdout).toContain("planned 2, kept as is 0, rejected 1")
  })

  it("convert: up to 7 lines that are not JSON before the first task; 8 are a file that is not JSON", async () => {
    const dir = tmp()
    const seven = join(dir, "seven.jsonl")
    const junk = (n: number) => Array.from({ length: n }, (_, i) => `log line ${i + 1}: starting`)
    // Blank lines are not counted.
    const lines = junk(7)
    writeFileSync(seven, [...lines.slice(0, 3), "", ...lines.slice(3), task(1)].join("\n") + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["convert", seven, "--out", out])
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out)).toHaveLength(1)
    expect(readJsonl(`${out}.rejects.jsonl`).map((x) => [x.index, x.line])).toEqual([
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 5],
      [4, 6],
      [5, 7],
      [6, 8]
    ])
    const eight = join(dir, "eight.jsonl")
    writeFileSync(eight, [...junk(8), task(1)].join("\n") + "\n")
    const refused = await runCli(["convert", eight, "--out", join(dir, "eight-rows.jsonl")])
    expect(refused.status).toBe(1)
    expect(refused.stderr).toContain(
      `skyrl: ${eight}: ${NOT_JSON}, nor is any of the 7 non-blank lines after it a JSON object or array`
    )
  })

  it(
    "enrich: the rows of lines 2..n are planned and written, line 1 is in the rejects file with its reason",
    async () => {
      const server = await servers.start((ctx) => answer(planAnswer(ctx, { prefer: ["fmp_get_quote"] })))
      const dir = tmp()
      const input = join(dir, "prompts.jsonl")
      const users = ["Get the latest quote for AMD.", "Get the latest quote for INTC."]
      const rows = users.map((content, i) => JSON.stringify({ id: `r${i}`, messages: [{ role: "user", content }] }))
      writeFileSync(input, [GARBAGE, ...rows].join("\n") + "\n")
      const out = join(dir, "rows.jsonl")
      const r = await runCli(["enrich", input, "--out", out, "--llm", "openai", "--concurrency", "1"], {
        env: llmEnv(server)
      })
      expect(r.status, r.stderr).toBe(0)
      const written = readJsonl(out)
      expect(written.map((x) => x.prompt[1].content)).toEqual(users)
      expect(written.map((x) => JSON.parse(x.extra_info.task_metadata).source_row)).toEqual([1, 2])
      const rejects = readJsonl(`${out}.rejects.jsonl`)
      expect(rejects.map((x) => [x.row, x.field, x.reason, x.stage])).toEqual([[
        0,
        "(record)",
        GARBAGE_REASON,
        "input"
      ]])
    },
    60_000
  )

  it("verify and validate read the same file the same way: line 1 rejected, the rows after it read", async () => {
    const dir = tmp()
    const tasks = join(dir, "tasks.jsonl")
    writeFileSync(tasks, [task(1), task(2)].join("\n") + "\n")
    const rows = join(dir, "rows.jsonl")
    expect((await runCli(["convert", tasks, "--out", rows])).status).toBe(0)
    const input = join(dir, "first-bad.jsonl")
    writeFileSync(input, `${GARBAGE}\n${readJsonl(rows).map((x) => JSON.stringify(x)).join("\n")}\n`)
    const v = await runCli(["verify", input, "--out", join(dir, "v.jsonl"), "--dry-run"])
    // The rows' tools have side effects: a run would verify none and exit 1, and so does its dry run.
    expect(v.status, v.stderr).toBe(1)
    expect(v.stderr).toContain("none of the 3 rows would be verified (1 rejected, 2 skipped for side effects)")
    expect(v.stdout).toContain(`${input} row 0: reject: read: ${GARBAGE_REASON}`)
    expect(v.stdout).toContain("rows: 3 → read 2 →")
    const checked = await runCli(["validate", input, "--json"])
    expect(checked.status).toBe(1)
    const report = JSON.parse(checked.stdout)
    const json = report.rules.find((x: any) => x.id === "contract/json")
    expect(json.count).toBe(1)
    expect(json.examples[0].row).toBe(0)
    expect(report.violations).toBe(1)
  }, 60_000)
})

describe("text that is no JSON Lines keeps the whole-file error; a pretty-printed JSON array is one document", () => {
  it("UTF-16 text (a byte order mark) is refused whole, named so, by convert and validate", async () => {
    // before: each line rejected as "not valid UTF-8: byte 0xFF" or "not valid JSON", its NUL bytes echoed
    const dir = tmp()
    const input = join(dir, "tasks.jsonl")
    const bom = Buffer.from([0xff, 0xfe])
    writeFileSync(input, Buffer.concat([bom, Buffer.from([task(1), task(2)].join("\n") + "\n", "utf16le")]))
    const reason = `${input}: not JSON or JSON Lines: it is UTF-16 text (it starts with a UTF-16 byte order mark): ` +
      "re-encode it as UTF-8 (iconv -f UTF-16 -t UTF-8)"
    const out = join(dir, "rows.jsonl")
    const converted = await runCli(["convert", input, "--out", out])
    expect(converted.status).toBe(1)
    expect(converted.stderr).toContain(`skyrl: ${reason}`)
    expect(converted.stderr).not.toContain("\u0000")
    expect(existsSync(out)).toBe(false)
    const checked = await runCli(["validate", input])
    expect(checked.status).toBe(2)
    expect(checked.stderr).toContain(reason)
  }, 60_000)

  it("a CSV (and a one-column CSV of numbers) is refused whole by convert and enrich, nothing written", async () => {
    const dir = tmp()
    for (const [name, text] of [["t.jsonl", "id,name\n1,AAPL\n2,TSLA\n"], ["n.jsonl", "id\n1\n2\n3\n"]] as const) {
      const input = join(dir, name)
      writeFileSync(input, text)
      const out = join(dir, `${name}.rows.jsonl`)
      for (const args of [["convert", input, "--out", out], ["enrich", input, "--out", out, "--dry-run"]]) {
        const r = await runCli(args)
        expect(r.status, args.join(" ")).toBe(1)
        expect(r.stderr).toContain(`skyrl: ${input}: ${NOT_JSON}`)
      }
      expect(existsSync(out)).toBe(false)
      expect(existsSync(`${out}.rejects.jsonl`)).toBe(false)
    }
  })

  it("a pretty-printed JSON array converts whole (no lines); a broken one is a whole-file error", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.json")
    const tasks = [1, 2].map((k) => JSON.parse(task(k)))
    tasks[1].tool_sequence = []
    // Its last line but one (`  ]`) and lines like `"fmp",`... are no records; `[`, `{` open the document.
    writeFileSync(input, JSON.stringify(tasks, null, 2) + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["convert", input, "--out", out])
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out).map((x) => x.reward_spec.ground_truth.task_id)).toEqual(["fake-1-0"])
    expect(readJsonl(`${out}.rejects.jsonl`).map((x) => [x.index, x.line, x.field])).toEqual([
      [1, undefined, "tool_sequence"]
    ])
    // A pretty-printed array of lists holds lines that are JSON arrays of their own: still one document.
    const lists = join(dir, "lists.json")
    writeFileSync(lists, "[\n  [\n    {\"role\": \"user\", \"content\": \"Get the AMD quote.\"}\n  ]\n]\n")
    const dry = await runCli(["enrich", lists, "--out", join(dir, "e.jsonl"), "--dry-run"])
    expect(dry.status, dry.stderr).toBe(0)
    expect(dry.stdout).toContain("planned 1, kept as is 0, rejected 0")
    const broken = join(dir, "broken.json")
    writeFileSync(broken, JSON.stringify(tasks, null, 2).replace("\"fake-1-0\",", "\"fake-1-0\",,") + "\n")
    const bad = await runCli(["convert", broken, "--out", join(dir, "b.jsonl")])
    expect(bad.status).toBe(1)
    expect(bad.stderr).toMatch(new RegExp(`skyrl: ${broken}: not valid JSON: .* at line 3, column \\d+`))
  })
})
