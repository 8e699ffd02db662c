/**
 * `enrich` whose every input row is rejected makes no run and writes no dataset (an empty one is never written),
 * but writes its rejects file, as a run writes it (`run_id` null: no run was made), so every row's reason is
 * kept; before, only the first row's reason was printed and no rejects file was written. An --out an earlier
 * run left is kept as it was, and the error says it is an earlier run's and does not match these rejects, in
 * the words `convert` uses (src/programs/noDataset.ts).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"

const tmp = () => mkdtempSync(join(tmpdir(), "skyrl-enrich-all-rejected-"))

/** Three rows none of which is a prompt: an object of no known shape, a line that is not JSON, a bare list. */
const BAD = "{\"foo\":1}\nnot json\n[1,2]\n"

const NO_SHAPE = "not a SkyRL row, ShareGPT conversation or OpenAI message list"
const NOT_JSON = `line 2 is not valid JSON: Unexpected token 'o', "not json" is not valid JSON`

const expectedRejects = (input: string) => [
  {
    run_id: null,
    index: 0,
    attempt: 0,
    reasons: [`${input}, row 0: ${NO_SHAPE} (got an object with keys foo)`],
    raw_output_path: null,
    stage: "input",
    file: input,
    row: 0,
    field: "",
    reason: `${NO_SHAPE} (got an object with keys foo)`
  },
  {
    run_id: null,
    index: 1,
    attempt: 0,
    reasons: [`${input}, row 1, (record): ${NOT_JSON}`],
    raw_output_path: null,
    stage: "input",
    file: input,
    row: 1,
    field: "(record)",
    reason: NOT_JSON
  },
  {
    run_id: null,
    index: 2,
    attempt: 0,
    reasons: [`${input}, row 2, (record): ${NO_SHAPE} (got an array)`],
    raw_output_path: null,
    stage: "input",
    file: input,
    row: 2,
    field: "(record)",
    reason: `${NO_SHAPE} (got an array)`
  }
]

const readJsonl = (file: string) => readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l))

describe("enrich with every input row rejected", () => {
  it("no earlier --out: the rejects file holds every row's reason, no dataset is made, the error says so", async () => {
    const dir = tmp()
    const input = join(dir, "bad.jsonl")
    const out = join(dir, "rows.jsonl")
    writeFileSync(input, BAD)
    const r = await runCli(["enrich", input, "--out", out])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(
      `skyrl: ${input}, row 0: ${NO_SHAPE} (got an object with keys foo) (no usable row: all 3 rows read were ` +
        `rejected); reasons in ${out}.rejects.jsonl; nothing to enrich, so ${out} was not written (an empty dataset is never written: ` +
        `SkyRL's loader fails on one)\n`
    )
    expect(readJsonl(`${out}.rejects.jsonl`)).toEqual(expectedRejects(input))
    expect(existsSync(out)).toBe(false)
    expect(existsSync(join(dir, "raw_llm"))).toBe(false)
  })

  it("an earlier run's --out and rejects: --out left as it was, the rejects replaced, the error says so", async () => {
    const dir = tmp()
    const input = join(dir, "bad.jsonl")
    const out = join(dir, "rows.jsonl")
    writeFileSync(input, BAD)
    const earlier = "{\"an earlier run's row\": true}\n"
    writeFileSync(out, earlier)
    writeFileSync(`${out}.rejects.jsonl`, "{\"run_id\": \"an earlier run\"}\n")
    const r = await runCli(["enrich", input, "--out", out])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(
      `skyrl: ${input}, row 0: ${NO_SHAPE} (got an object with keys foo) (no usable row: all 3 rows read were ` +
        `rejected); reasons in ${out}.rejects.jsonl; nothing to enrich, so no dataset was written: the ${out} there is an earlier run's, ` +
        `left as it was, and does not match these rejects (an empty dataset is never written: SkyRL's loader fails ` +
        `on one)\n`
    )
    expect(readFileSync(out, "utf8")).toBe(earlier)
    expect(readJsonl(`${out}.rejects.jsonl`)).toEqual(expectedRejects(input))
  })
})
