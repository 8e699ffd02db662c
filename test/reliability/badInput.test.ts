/**
 * The bad-input corpus (test/reliability/badInput/, plus large and binary cases generated here) through
 * every command that reads such input: `convert`, `validate`, `enrich`, and `--inventory` of generate,
 * enrich, convert and validate. Each case must give a clear error naming the file, and the row and field where
 * there is one; a non-zero exit where the problem is fatal (row-level problems in `convert` go to the
 * rejects file and the good rows are still written); the input unchanged (bytes and mtime); and no
 * model call for a bad inventory.
 *
 * Row-level cases put one good row first, so the bad one is row 1: the index in the error must be 1.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, beforeAll, describe, expect, it } from "vitest"
import { runCli, runCliCpu } from "../support/cli.js"
import { planAnswer } from "../support/fakeEnrich.js"
import { answer } from "../support/fakeOpenAI.js"
import { validTaskFor } from "../support/fakeTasks.js"
import { expectUnchanged, fakes, llmEnv, prng, readJsonl, snapshot, tempDir, USAGE } from "./helpers.js"

const CORPUS = join(import.meta.dirname, "badInput")
const corpus = (name: string) => join(CORPUS, name)

const servers = fakes()
afterEach(servers.closeAll)

// Generated at test time (too big or too odd to commit).
let generated = ""
const gen = (name: string) => join(generated, name)
beforeAll(() => {
  generated = tempDir("skyrl-badinput-")
  const random = prng(4242)
  const garbage = Buffer.alloc(64 * 1024)
  for (let i = 0; i < garbage.length; i++) garbage[i] = Math.floor(random() * 256)
  garbage[0] = 0x89 // never '[' or '{': binary from the first byte
  writeFileSync(gen("garbage.jsonl"), garbage)
  writeFileSync(gen("garbage.json"), garbage)
  writeFileSync(gen("empty.jsonl"), "")
  mkdirSync(gen("a-directory.jsonl"))
  // A 20 MB line: one good row/task, then one whose user message is 20 MB of prose.
  const huge = "Get the AAPL quote. " + "lorem ipsum dolor sit amet ".repeat(Math.ceil(20e6 / 27)).slice(0, 20e6)
  const [goodRow] = readJsonl(corpus("good.rows.jsonl"))
  const bigRow = structuredClone(goodRow)
  bigRow.prompt[1].content = huge
  bigRow.reward_spec.ground_truth.task_id = "huge-1"
  writeFileSync(gen("huge-line.rows.jsonl"), JSON.stringify(goodRow) + "\n" + JSON.stringify(bigRow) + "\n")
  // The same at 1/20 of the size: validate's time for it is the measure of the 20 MB line's.
  const smallRow = structuredClone(bigRow)
  smallRow.prompt[1].content = huge.slice(0, 1e6)
  writeFileSync(gen("1mb-line.rows.jsonl"), JSON.stringify(goodRow) + "\n" + JSON.stringify(smallRow) + "\n")
  const [goodTask] = readJsonl(corpus("good.tasks.jsonl"))
  writeFileSync(
    gen("huge-line.tasks.jsonl"),
    JSON.stringify(goodTask) + "\n" + JSON.stringify({ ...goodTask, task_id: "huge-1", user_prompt: huge }) + "\n"
  )
}, 30_000)

/** Runs a command on `input` and checks it is left as it was. */
const runOn = async (input: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const before = snapshot(input)
  const r = await runCli(args, { env })
  expectUnchanged(input, before)
  return r
}

interface FileCase {
  readonly name: string
  readonly file: () => string
  /** What the message must say besides the file name. */
  readonly reason: RegExp
}

/** Whole-file problems: fatal for every command that reads the file. */
const FILE_CASES: ReadonlyArray<FileCase> = [
  { name: "not JSON", file: () => corpus("not-json.jsonl"), reason: /not (valid )?JSON/ },
  { name: "truncated JSON", file: () => corpus("truncated.json"), reason: /not valid JSON|Unterminated|end of JSON/ },
  // One JSON Lines line that is no object: the file's only row, rejected (so no usable row).
  {
    name: "wrong top-level type (a JSON string)",
    file: () => corpus("wrong-top-level.json"),
    reason: /must be an object|expected an object|list \(got string\)/
  },
  // Not UTF-8 from its first byte: each line is a row that is not UTF-8, named so (src/skyrl/utf8.ts).
  { name: "binary garbage", file: () => gen("garbage.jsonl"), reason: /not (valid )?(JSON|UTF-8)/ },
  { name: "a directory instead of a file", file: () => gen("a-directory.jsonl"), reason: /regular file|directory/ }
]

interface RowCase {
  readonly name: string
  readonly tasks: () => string
  readonly rows: () => string
  /** The field convert names (task objects) and the field validate names (rows). */
  readonly taskField: string
  readonly rowField: string
  readonly reason: RegExp
}

/** Row-level problems: row 1 of a file whose row 0 is good. */
const ROW_CASES: ReadonlyArray<RowCase> = [
  {
    name: "a row missing its user message",
    tasks: () => corpus("missing-user.tasks.jsonl"),
    rows: () => corpus("missing-user.rows.jsonl"),
    taskField: "messages",
    rowField: "prompt",
    reason: /user message/
  },
  {
    name: "an assistant-only prompt",
    tasks: () => corpus("assistant-only.tasks.jsonl"),
    rows: () => corpus("assistant-only.rows.jsonl"),
    taskField: "messages[0].role",
    rowField: "prompt[0].role",
    reason: /assistant/
  },
  {
    name: "an empty (whitespace-only) string",
    tasks: () => corpus("empty-strings.tasks.jsonl"),
    rows: () => corpus("empty-strings.rows.jsonl"),
    taskField: "user_prompt",
    rowField: "prompt[1].content",
    reason: /empty/
  },
  {
    name: "non-string content",
    tasks: () => corpus("non-string-content.tasks.jsonl"),
    rows: () => corpus("non-string-content.rows.jsonl"),
    taskField: "user_prompt",
    rowField: "prompt[1].content",
    reason: /string/
  },
  {
    name: "an unknown tool in an existing plan",
    tasks: () => corpus("unknown-tool.tasks.jsonl"),
    rows: () => corpus("unknown-tool.rows.jsonl"),
    taskField: "tool_sequence[0].tool",
    rowField: "tool_sequence[0].tool",
    reason: /fmp_get_quote_v9/
  }
]

describe("convert: the bad-input corpus", () => {
  for (const c of FILE_CASES) {
    it(`${c.name}: non-zero exit, names the file, writes nothing, input unchanged`, async () => {
      const input = c.file()
      const out = join(tempDir(), "out.jsonl")
      const r = await runOn(input, ["convert", input, "--out", out])
      expect(r.status).not.toBe(0)
      expect(r.stderr).toContain(input)
      expect(r.stderr).toMatch(c.reason)
      expect(existsSync(out)).toBe(false)
    })
  }

  it("an empty file: non-zero exit, names the file", async () => {
    const input = gen("empty.jsonl")
    const out = join(tempDir(), "out.jsonl")
    const r = await runOn(input, ["convert", input, "--out", out])
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain(input)
    expect(r.stderr).toMatch(/empty/)
  })

  for (const c of ROW_CASES) {
    it(`${c.name}: row 1 rejected with its field, row 0 still written, input unchanged`, async () => {
      const input = c.tasks()
      const out = join(tempDir(), "out.jsonl")
      const r = await runOn(input, ["convert", input, "--out", out])
      expect(r.status, r.stderr).toBe(0)
      expect(readJsonl(out)).toHaveLength(1)
      const rejects = readJsonl(`${out}.rejects.jsonl`)
      expect(rejects).toHaveLength(1)
      expect(rejects[0].file).toBe(input)
      expect(rejects[0].index).toBe(1)
      expect(rejects[0].field).toBe(c.taskField)
      expect(rejects[0].reason).toMatch(c.reason)
      // The log line says the same, with the file, the task index and the field.
      expect(r.stderr).toContain(`${input}: task 1 rejected: ${c.taskField}`)
    })
  }

  it(
    "a 20 MB line: no crash; the task whose prompt cannot fit is rejected with its reason, row 0 written",
    async () => {
      const input = gen("huge-line.tasks.jsonl")
      const out = join(tempDir(), "out.jsonl")
      const r = await runOn(input, ["convert", input, "--out", out])
      expect(r.status, r.stderr).toBe(0)
      expect(readJsonl(out)).toHaveLength(1)
      const rejects = readJsonl(`${out}.rejects.jsonl`)
      expect(rejects.map((x) => [x.index, x.field])).toEqual([[1, "prompt"]])
      expect(rejects[0].reason).toMatch(/with the user message \(\d+\) that is over the budget of 1024 prompt tokens/)
    },
    60_000
  )
})

describe("validate: the bad-input corpus", () => {
  for (const c of FILE_CASES) {
    it(`${c.name}: non-zero exit, names the file, input unchanged`, async () => {
      const input = c.file()
      const r = await runOn(input, ["validate", input])
      expect(r.status).not.toBe(0)
      expect(r.stderr).toContain(input)
      expect(`${r.stderr}\n${r.stdout}`).toMatch(c.reason)
    })
  }

  for (const c of ROW_CASES) {
    it(`${c.name}: exit 1, the report names the file, row 1 and the field, input unchanged`, async () => {
      const input = c.rows()
      const r = await runOn(input, ["validate", input])
      expect(r.status).toBe(1)
      expect(r.stderr).toContain(input)
      const lines = r.stdout.split("\n").filter((l) => l.includes(`${input} row 1 `))
      const named = lines.filter((l) => l.includes(c.rowField) && c.reason.test(l))
      expect(named.length, r.stdout).toBeGreaterThanOrEqual(1)
      // The good row 0 is never the one blamed (it may be cited as the other side of a conflict).
      expect(r.stdout.split("\n").filter((l) => l.trimStart().startsWith(`${input} row 0 `))).toEqual([])
    })
  }

  it("a 20 MB line: exit 1, row 1's prompt named as over the token budget, in bounded time", async () => {
    // Bounded: validate's CPU time for the line is at most 25 times its time for the same line at 1 MB
    // (~11 times when linear, start-up included; a cost quadratic in the line's length is hundreds of
    // times). CPU time, not wall time: a loaded machine (CI shares it) made a fixed 45 s bound fail.
    const small = await runCliCpu(["validate", gen("1mb-line.rows.jsonl")])
    expect(small.stdout).toMatch(/row 1 prompt: \d+ tokens .*over the budget of 1024/)
    const input = gen("huge-line.rows.jsonl")
    const before = snapshot(input)
    const r = await runCliCpu(["validate", input])
    expectUnchanged(input, before)
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/row 1 prompt: \d+ tokens .*over the budget of 1024/)
    expect(r.cpuSeconds, `${r.cpuSeconds} s of CPU at 20 MB, ${small.cpuSeconds} s at 1 MB`).toBeLessThan(
      25 * small.cpuSeconds
    )
  }, 120_000)
})

describe("enrich: the bad-input corpus", () => {
  const enrich = async (input: string, out: string, extra: ReadonlyArray<string> = []) => {
    const server = await servers.start((ctx) => answer(planAnswer(ctx), USAGE))
    const r = await runOn(input, ["enrich", input, "--out", out, "--llm", "openai", ...extra], llmEnv(server))
    return { ...r, calls: server.requests.length }
  }

  for (const c of FILE_CASES) {
    it(`${c.name}: non-zero exit, names the file, no model call, writes nothing, input unchanged`, async () => {
      const input = c.file()
      const out = join(tempDir(), "out.jsonl")
      const r = await enrich(input, out)
      expect(r.status).not.toBe(0)
      expect(r.stderr).toContain(input)
      expect(r.stderr).toMatch(c.reason)
      expect(r.calls).toBe(0)
      expect(existsSync(out)).toBe(false)
    })
  }

  // (An unknown tool in a row's existing plan is not among them: enrich copies rows that already have a
  // plan unchanged unless --overwrite, and with --overwrite plans them again.)
  for (const c of ROW_CASES.filter((x) => x.rowField !== "tool_sequence[0].tool")) {
    it(`${c.name}: row 1 rejected with file, row and field, the run goes on, no call for it`, async () => {
      const input = c.rows()
      const out = join(tempDir(), "out.jsonl")
      const r = await enrich(input, out)
      expect(r.status, r.stderr).toBe(0)
      // Row 0 already has a plan: copied as is; row 1 is rejected before any model call.
      expect(readJsonl(out)).toHaveLength(1)
      expect(r.calls).toBe(0)
      const rejects = readJsonl(`${out}.rejects.jsonl`)
      expect(rejects).toHaveLength(1)
      expect(rejects[0].file).toBe(input)
      expect(rejects[0].row).toBe(1)
      expect(rejects[0].field).toBe(c.rowField)
      expect(rejects[0].reason).toMatch(c.reason)
      expect(r.stderr).toContain(`${input}, row 1, ${c.rowField}`)
    })
  }

  it("an unknown tool in an existing plan, with --overwrite: planned again, and the new plan is valid", async () => {
    const input = corpus("unknown-tool.rows.jsonl")
    const out = join(tempDir(), "out.jsonl")
    const r = await enrich(input, out, ["--overwrite"])
    expect(r.status, r.stderr).toBe(0)
    const rows = readJsonl(out)
    expect(rows).toHaveLength(2)
    expect(r.calls).toBe(2)
    expect(JSON.stringify(rows)).not.toContain("fmp_get_quote_v9")
  })
})

describe("an inventory with problems, for every command that takes --inventory", () => {
  const INVENTORY_CASES: ReadonlyArray<{ name: string; file: () => string; field: string; reason: RegExp }> = [
    {
      name: "a tool whose input schema is not a valid JSON Schema",
      file: () => corpus("bad-schema.inventory.json"),
      field: "servers[0].tools[1].inputSchema",
      reason: /JSON Schema/
    },
    { name: "not JSON", file: () => corpus("not-json.jsonl"), field: "", reason: /not valid JSON/ },
    { name: "truncated JSON", file: () => corpus("truncated.json"), field: "", reason: /not valid JSON/ },
    {
      name: "binary garbage",
      file: () => gen("garbage.json"),
      field: "",
      reason: /line 1 is not valid UTF-8: byte 0x[0-9A-F]{2} at byte offset/
    },
    { name: "a directory", file: () => gen("a-directory.jsonl"), field: "", reason: /regular file|directory/ }
  ]
  for (const c of INVENTORY_CASES) {
    it(`${c.name}: generate and enrich fail before any model call, naming the file${c.field === "" ? "" : " and entry"}`, async () => {
      const inventory = c.file()
      const server = await servers.start((ctx) => answer(validTaskFor(ctx), USAGE))
      const prompts = join(tempDir(), "prompts.jsonl")
      writeFileSync(prompts, JSON.stringify({ messages: [{ role: "user", content: "Get the AAPL quote." }] }) + "\n")
      for (
        const args of [
          ["generate", "-n", "2"],
          ["enrich", prompts]
        ]
      ) {
        const out = join(tempDir(), "out.jsonl")
        const r = await runOn(
          inventory,
          [...args, "--out", out, "--llm", "openai", "--inventory", inventory],
          llmEnv(server)
        )
        expect(r.status, `${args[0]}: ${r.stderr}`).not.toBe(0)
        expect(r.stderr).toContain(inventory)
        expect(r.stderr).toContain(c.field)
        expect(r.stderr).toMatch(c.reason)
        expect(existsSync(out)).toBe(false)
      }
      expect(server.requests).toHaveLength(0)
    })

    it(`${c.name}: convert and validate fail, naming the file${c.field === "" ? "" : " and entry"}`, async () => {
      const inventory = c.file()
      const out = join(tempDir(), "out.jsonl")
      const tasks = corpus("good.tasks.jsonl")
      const rows = corpus("good.rows.jsonl")
      for (
        const [input, args] of [
          [tasks, ["convert", tasks, "--out", out, "--inventory", inventory]],
          [rows, ["validate", rows, "--inventory", inventory]]
        ] as const
      ) {
        const before = snapshot(input)
        const r = await runOn(inventory, args)
        expectUnchanged(input, before)
        expect(r.status, `${args[0]}: ${r.stderr}`).not.toBe(0)
        expect(r.stderr).toContain(inventory)
        expect(r.stderr).toContain(c.field)
        expect(r.stderr).toMatch(c.reason)
      }
      expect(existsSync(out)).toBe(false)
    })
  }
})
