/**
 * A pretty-printed JSON object with a syntax error is one broken document, not JSON Lines: convert,
 * enrich, verify and validate refuse it whole, naming the file and the line and column where it breaks
 * (before, each of its lines was a rejected record: 5 rejects, or 5 contract/json violations in
 * validate). And validate takes the whole-file decision the other commands take (src/skyrl/records.ts,
 * `recordsFormatOf`, `documentFaultOf`): a CSV named .jsonl is one unreadable file (exit 2, as a
 * gzip-compressed or broken JSON array file), not one contract/json violation a line. JSON Lines whose
 * first row is broken but whose later rows are objects stay JSON Lines (test/firstLineNotJson.test.ts).
 */
import { Chunk, Effect, Either, Stream } from "effect"
import { existsSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { readRecords } from "../src/programs/readRecords.js"
import { StorageLive } from "../src/services/Storage.js"
import { Storage } from "../src/services/Storage.js"
import { recordsOf } from "../src/skyrl/records.js"
import { runCli } from "./support/cli.js"
import { readJsonl, tempDir } from "./support/fakeRun.js"
import { validTaskText } from "./support/fakeTasks.js"

const tmp = () => tempDir("skyrl-broken-doc-")

/** The brief's file: line 4 is `  oops`, where a property name was expected at its 3rd character. */
const BROKEN = "{\n  \"task_id\": \"x\",\n  \"user_prompt\": \"hi\",\n  oops\n}\n"
const WHERE = "at line 4, column 3"

/** Every line of stderr that is an error of skyrl's (`skyrl: ...`). */
const errorLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("skyrl: "))

const NOT_JSON = "not JSON or JSON Lines: the first line is not a JSON value"

/** The four commands that read records from a file, each with an output of its own in `dir`. */
const commands = (dir: string, input: string) => [
  ["convert", input, "--out", join(dir, "c.jsonl")],
  ["enrich", input, "--out", join(dir, "e.jsonl"), "--dry-run"],
  ["verify", input, "--out", join(dir, "v.jsonl"), "--dry-run"],
  ["validate", input]
]

describe("a broken pretty-printed JSON object is one error naming the file, its line and column", () => {
  for (const name of ["b.json", "b.jsonl"]) {
    it(`${name}: convert, enrich --dry-run, verify --dry-run and validate refuse it whole`, async () => {
      const dir = tmp()
      const input = join(dir, name)
      writeFileSync(input, BROKEN)
      for (const args of commands(dir, input)) {
        const r = await runCli(args)
        // validate's unreadable file is exit 2 (a broken JSON array, a gzip file), the others' input error 1.
        expect(r.status, `${args[0]}: ${r.stdout}${r.stderr}`).toBe(args[0] === "validate" ? 2 : 1)
        const errors = errorLines(r.stderr)
        expect(errors, args[0]).toHaveLength(1)
        expect(errors[0]).toContain(`skyrl: ${input}: not valid JSON: `)
        expect(errors[0]).toContain(WHERE)
        expect(r.stdout + r.stderr, args[0]).not.toContain("line 5 is not valid JSON")
        expect(r.stdout, args[0]).not.toContain("reject")
      }
      for (const out of ["c.jsonl", "e.jsonl", "v.jsonl"]) {
        expect(existsSync(join(dir, out))).toBe(false)
        expect(existsSync(join(dir, `${out}.rejects.jsonl`))).toBe(false)
      }
    }, 60_000)
  }

  it("two pretty-printed objects one after the other (jq's output without -c): the error is where the 2nd starts", async () => {
    const dir = tmp()
    const input = join(dir, "two.jsonl")
    writeFileSync(input, "{\n  \"a\": 1\n}\n{\n  \"a\": 2\n}\n")
    const r = await runCli(["convert", input, "--out", join(dir, "c.jsonl")])
    expect(r.status).toBe(1)
    expect(errorLines(r.stderr)).toHaveLength(1)
    expect(r.stderr).toContain(`skyrl: ${input}: not valid JSON: `)
    expect(r.stderr).toContain("at line 4, column 1")
  })

  it("recordsOf (enrich's reader) and readRecords (convert's and verify's, streamed) give the same error", async () => {
    const dir = tmp()
    const input = join(dir, "b.jsonl")
    writeFileSync(input, BROKEN)
    const whole = recordsOf(BROKEN, input)
    expect(Either.isLeft(whole)).toBe(true)
    const reason = Either.isLeft(whole) ? whole.left.reason : ""
    expect(reason).toMatch(/^not valid JSON: .* at line 4, column 3$/)
    const streamed = await Effect.runPromise(
      Effect.flatMap(Storage, (storage) => readRecords(storage, input).pipe(Stream.runCollect, Effect.either)).pipe(
        Effect.provide(StorageLive)
      )
    )
    expect(Either.isLeft(streamed) ? streamed.left.reason : Chunk.toReadonlyArray(streamed.right)).toBe(reason)
  })
})

describe("validate takes the whole-file decision convert, enrich and verify take", () => {
  it("a CSV named .jsonl: one unreadable-file error naming it (exit 2), no report, as convert refuses it", async () => {
    const dir = tmp()
    const input = join(dir, "t.jsonl")
    writeFileSync(input, "id,name\n1,AAPL\n2,TSLA\n")
    const r = await runCli(["validate", input])
    expect(r.status).toBe(2)
    expect(r.stdout).toBe("")
    expect(errorLines(r.stderr)).toEqual([
      `skyrl: ${input}: ${NOT_JSON}, nor is any of the 2 non-blank lines after it a JSON object or array, ` +
      "and a JSON document starts with '[' or '{'"
    ])
    expect(r.stderr).not.toContain("contract/json")
    for (const args of commands(dir, input).slice(0, 3)) {
      const c = await runCli(args)
      expect(c.status, args[0]).toBe(1)
      expect(c.stderr, args[0]).toContain(`skyrl: ${input}: ${NOT_JSON}`)
    }
  }, 60_000)

  it("the first of several files is no JSON: validate names it and reads no further", async () => {
    const dir = tmp()
    const csv = join(dir, "t.jsonl")
    writeFileSync(csv, "id,name\n1,AAPL\n")
    const broken = join(dir, "b.json")
    writeFileSync(broken, BROKEN)
    const r = await runCli(["validate", broken, csv])
    expect(r.status).toBe(2)
    expect(errorLines(r.stderr)).toHaveLength(1)
    expect(r.stderr).toContain(`skyrl: ${broken}: not valid JSON: `)
    expect(r.stderr).toContain(WHERE)
  })

  it("JSON Lines some of whose lines are not JSON keep one contract/json violation a line", async () => {
    const dir = tmp()
    const texts = [1, 2].map((k) => validTaskText(k, 0).replace("\"limit\":null", "\"limit\":3"))
    const tasks = join(dir, "tasks.jsonl")
    writeFileSync(tasks, texts.join("\n") + "\n")
    const rows = join(dir, "rows.jsonl")
    expect((await runCli(["convert", tasks, "--out", rows])).status).toBe(0)
    // A broken first row starting with '{' (a later line is an object: JSON Lines), and a stray line.
    const mixed = (lines: ReadonlyArray<string>) =>
      ["{\"data_source\": \"x\",", lines[0], "id,name", lines[1]].join("\n") + "\n"
    const input = join(dir, "mixed.jsonl")
    writeFileSync(input, mixed(readJsonl(rows).map((x) => JSON.stringify(x))))
    const r = await runCli(["validate", input, "--json"])
    expect(r.status, r.stderr).toBe(1)
    const json = JSON.parse(r.stdout).rules.find((x: any) => x.id === "contract/json")
    expect(json.count).toBe(2)
    expect(json.examples.map((e: any) => e.row)).toEqual([0, 2])
    const mixedTasks = join(dir, "mixed-tasks.jsonl")
    writeFileSync(mixedTasks, mixed(texts))
    const out = join(dir, "again.jsonl")
    const converted = await runCli(["convert", mixedTasks, "--out", out])
    expect(converted.status, converted.stderr).toBe(0)
    expect(readJsonl(out)).toHaveLength(2)
    expect(readJsonl(`${out}.rejects.jsonl`).map((x) => x.line)).toEqual([1, 3])
  }, 60_000)
})
