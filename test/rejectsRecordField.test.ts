/**
 * A record that is not usable as a whole (a line that is not JSON, a value that is not an object) is named the
 * same in convert's and enrich's rejects files: field "(record)". Before, convert wrote "(record)" for a line that
 * is not JSON and "(task)" for one that is not an object, enrich "" for both.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { planAnswer } from "./support/fakeEnrich.js"
import { answer } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, readJsonl, tempDir } from "./support/fakeRun.js"
import { validTaskText } from "./support/fakeTasks.js"

const servers = fakes()
afterEach(servers.closeAll)

/** Lines 2..5 of each input: not JSON, then three JSON values that are not objects. */
const WHOLE_LINE_BAD = ["{\"id\": \"broken\", \"messages\": [", "42", "[1, 2]", "null"]
/** Field and reason of each of them, as both commands' rejects files give them. */
const expected = (reasonOfValue: (got: string) => string) => [
  ["(record)", "line 2 is not valid JSON: Unexpected end of JSON input"],
  ["(record)", reasonOfValue("number")],
  ["(record)", reasonOfValue("an array")],
  ["(record)", reasonOfValue("null")]
]

describe("a record unusable as a whole is field \"(record)\" in the rejects file", () => {
  it("convert", async () => {
    const dir = tempDir("skyrl-record-field-")
    const input = join(dir, "tasks.jsonl")
    const task = validTaskText(1, 0).replace("\"limit\":null", "\"limit\":3")
    writeFileSync(input, [task, ...WHOLE_LINE_BAD].join("\n") + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["convert", input, "--out", out])
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out)).toHaveLength(1)
    const rejects = readJsonl(`${out}.rejects.jsonl`)
    expect(rejects.map((x) => [x.index, x.line])).toEqual([[1, 2], [2, 3], [3, 4], [4, 5]])
    expect(rejects.map((x) => [x.field, x.reason])).toEqual(expected((got) => `expected an object, got ${got}`))
    expect(r.stderr).toContain("task 2 rejected: (record): expected an object, got number")
  }, 60_000)

  it("enrich (an object of no known shape keeps field \"\": the row, not the line, is unusable)", async () => {
    const server = await servers.start((ctx) =>
      answer(planAnswer(ctx, {}), { input: 2000, cached: 1024, output: 600, reasoning: 300 })
    )
    const dir = tempDir("skyrl-record-field-")
    const input = join(dir, "chats.jsonl")
    const good = { id: "good-0", messages: [{ role: "user", content: "Get the TSLA quote." }] }
    writeFileSync(input, [JSON.stringify(good), ...WHOLE_LINE_BAD, "{\"question\": \"not a chat\"}"].join("\n") + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["enrich", input, "--out", out, "--llm", "openai"], { env: llmEnv(server, "sk-test-x") })
    expect(r.status, r.stderr).toBe(0)
    expect(readJsonl(out)).toHaveLength(1)
    const rejects = readJsonl(`${out}.rejects.jsonl`)
    expect(rejects.map((x) => x.row)).toEqual([1, 2, 3, 4, 5])
    expect(rejects.map((x) => [x.field, x.reason])).toEqual([
      ...expected((got) => `not a SkyRL row, ShareGPT conversation or OpenAI message list (got ${got})`),
      ["", "not a SkyRL row, ShareGPT conversation or OpenAI message list (got an object with keys question)"]
    ])
    expect(rejects[0].reasons).toEqual([
      `${input}, row 1, (record): line 2 is not valid JSON: Unexpected end of JSON input`
    ])
  }, 60_000)
})
