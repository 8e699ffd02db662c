/**
 * `validate`'s arrow/parquet-type: a Parquet file whose columns, at a path of skyrl's row skeleton, have another
 * Arrow type than skyrl writes and JSON Lines gives (string, int64, struct, list) is a violation per column. The
 * files are the same clean rows written by pyarrow and pandas with other types (test/fixtures/parquet-types/
 * README.md says how each was made, and what datasets does with it). Before the rule each validated clean
 * (exit 0, "OK: no violations"), while datasets could not concatenate them with JSON Lines files or skyrl's own
 * Parquet, loaded bytes params MCPToolEnv refused, or could not load the map file at all.
 */
import { Effect, Logger, Stream } from "effect"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import type { ColumnTypeIssue } from "../src/domain/row.js"
import { validateFiles } from "../src/programs/validate.js"
import type { Field } from "../src/services/parquet.js"
import { ROW_FIELDS } from "../src/services/parquet.js"
import { Storage, StorageLive } from "../src/services/Storage.js"
import type { Report } from "../src/skyrl/checks.js"
import { RowJson } from "../src/skyrl/layout.js"
import { runCli } from "./support/cli.js"

const FIXTURES = join(import.meta.dirname, "fixtures", "parquet-types")
const fixture = (name: string) => join(FIXTURES, name)

const run = <A, E>(effect: Effect.Effect<A, E, Storage>) =>
  Effect.runPromise(effect.pipe(Effect.provide(StorageLive), Effect.provide(Logger.remove(Logger.defaultLogger))))

const validate = (file: string): Promise<Report> => run(validateFiles({ files: [file] }))

/** The arrow/parquet-type findings of a file validated alone, as `field: found type`; the rules it fails. */
const typeFindings = async (file: string) => {
  const report = await run(validateFiles({ files: [file], maxExamples: 100 }))
  const rule = report.rules.find((r) => r.id === "arrow/parquet-type")!
  return {
    found: rule.examples.map((e) => `${e.field}: ${e.message.split(", not ")[0]}`),
    rows: new Set(rule.examples.map((e) => e.row)),
    messages: rule.examples.map((e) => e.message),
    failing: report.rules.filter((r) => r.count > 0 && r.severity === "error").map((r) => r.id)
  }
}

/** The skeleton's paths of one kind, in its order (`prompt[].role`). */
const pathsOf = (kind: Field["kind"], fields: ReadonlyArray<Field> = ROW_FIELDS, at = ""): Array<string> =>
  fields.flatMap((f) => [
    ...(f.kind === kind ? [at + f.name] : []),
    ...(f.kind === "struct" ? pathsOf(kind, f.fields, `${at}${f.name}.`) : []),
    ...(f.kind === "list" ? pathsOf(kind, f.element, `${at}${f.name}[].`) : [])
  ])

const CONCAT = "datasets cannot concatenate this file with JSON Lines files or skyrl-written Parquet"

describe("arrow/parquet-type: a column of skyrl's layout typed otherwise", () => {
  it("large_string (the stored Arrow schema's LargeUtf8): every string column, one violation each", async () => {
    const { failing, found, messages, rows } = await typeFindings(fixture("large-string.parquet"))
    expect(pathsOf("string").length).toBe(24)
    expect(found).toEqual(pathsOf("string").map((p) => `${p}: typed large_string`))
    expect(failing).toEqual(["arrow/parquet-type"])
    expect(rows).toEqual(new Set([0]))
    expect(messages[0]).toBe(
      `typed large_string, not string: ${CONCAT} (string there): "The features can't be aligned"; cast the column ` +
        "to string before writing (pandas 3 and Polars write large_string)"
    )
  })

  it("large_list: every list column", async () => {
    const { failing, found } = await typeFindings(fixture("large-list.parquet"))
    expect(found).toEqual(pathsOf("list").map((p) => `${p}: typed large_list`))
    expect(found).toContain("reward_spec.ground_truth.tool_sequence: typed large_list")
    expect(failing).toEqual(["arrow/parquet-type"])
  })

  for (const [file, type] of [["int32", "int32"], ["uint64", "uint64"], ["float64", "double"]]) {
    it(`${type} int columns (${file}.parquet): every int64 column of the skeleton`, async () => {
      const { failing, found, messages } = await typeFindings(fixture(`${file}.parquet`))
      expect(found).toEqual([
        `reward_spec.ground_truth.max_turns: typed ${type}`,
        `reward_spec.ground_truth.tool_sequence[].step: typed ${type}`,
        `reward_spec.ground_truth.limits.max_tools: typed ${type}`,
        `reward_spec.ground_truth.limits.max_servers: typed ${type}`
      ])
      expect(found.length).toBe(pathsOf("int").length)
      expect(failing).toEqual(["arrow/parquet-type"])
      expect(messages[0]).toBe(
        `typed ${type}, not int64: ${CONCAT} (int64 there): "The features can't be aligned"; cast the column to ` +
          "int64 before writing"
      )
    })
  }

  it("binary params (bytes, as orjson.dumps gives): MCPToolEnv refuses the rows", async () => {
    const { failing, found, messages } = await typeFindings(fixture("binary-params.parquet"))
    expect(found).toEqual(["reward_spec.ground_truth.tool_sequence[].params: typed binary"])
    expect(failing).toEqual(["arrow/parquet-type"])
    expect(messages[0]).toBe(
      "typed binary, not string: its values load as Python bytes, so MCPToolEnv refuses a row whose params are " +
        `bytes ("expected a JSON object, got bytes"), and ${CONCAT} (string there): "The features can't be ` +
        `aligned"; write str values (orjson.dumps(...).decode())`
    )
  })

  it("JSON-typed params (Arrow's arrow.json extension, which datasets decodes)", async () => {
    const { found } = await typeFindings(fixture("json-params.parquet"))
    expect(found).toEqual(["reward_spec.ground_truth.tool_sequence[].params: typed extension<arrow.json>"])
  })

  it("a map (limits as map<string, int64>): datasets cannot load the file", async () => {
    const { failing, found, messages } = await typeFindings(fixture("map.parquet"))
    expect(found).toEqual(["reward_spec.ground_truth.limits: typed map<string, int64>"])
    expect(failing).toEqual(["arrow/parquet-type"])
    expect(messages[0]).toBe(
      "typed map<string, int64>, not struct: datasets.load_dataset cannot load the file at all (\"Arrow type " +
        "map<string, int64> ... does not have a datasets dtype equivalent\"); write it as a struct (a dict in each row)"
    )
  })

  it("pandas 3's to_parquet: its str columns are large_string; `skyrl validate` prints them and exits 1", async () => {
    const { failing, found } = await typeFindings(fixture("pandas.parquet"))
    expect(found).toEqual(["data_source: typed large_string", "env_class: typed large_string"])
    expect(failing).toEqual(["arrow/parquet-type"])
    const cli = await runCli(["validate", fixture("rows.jsonl"), fixture("pandas.parquet")])
    expect(cli.status).toBe(1)
    expect(cli.stdout).toContain(
      `\n  ${fixture("pandas.parquet")} row 0 data_source: typed large_string, not string: ${CONCAT}`
    )
    expect(cli.stdout).toMatch(/\narrow\/parquet-type {2}2 {2}— /)
  })
})

describe("arrow/parquet-type: the types skyrl writes pass", () => {
  it("skyrl's Parquet, pyarrow's of the same rows and pyarrow's with dictionary strings: no finding", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-pq-types-"))
    const lines = readFileSync(fixture("rows.jsonl"), "utf8").split("\n").filter((l) => l !== "")
    const skyrls = join(dir, "skyrl.parquet")
    await run(Effect.flatMap(Storage, (s) => s.writeRows(skyrls, lines.map((l) => new RowJson(l)))))
    for (const file of [skyrls, fixture("standard.parquet"), fixture("dictionary.parquet"), fixture("rows.jsonl")]) {
      const report = await validate(file)
      expect([file, report.rows, report.violations]).toEqual([file, 3, 0])
      expect(report.rules.find((r) => r.id === "arrow/parquet-type")?.count).toBe(0)
    }
  })

  it("a JSON Lines file is never asked for column types; a Parquet file once, before its rows", async () => {
    const events: Array<string> = []
    let issues: ReadonlyArray<ColumnTypeIssue> = []
    for (const name of ["rows.jsonl", "int32.parquet"]) {
      const columnTypes = (found: ReadonlyArray<ColumnTypeIssue>) => {
        events.push(`${name}: ${found.length} columns`)
        issues = found
      }
      await run(
        Effect.flatMap(
          Storage,
          (s) =>
            Stream.runForEach(
              s.readRows(fixture(name), { columnTypes }),
              (r) => Effect.sync(() => void events.push(`${name} row ${r.index}`))
            )
        )
      )
    }
    expect(events).toEqual([
      ...[0, 1, 2].map((i) => `rows.jsonl row ${i}`),
      "int32.parquet: 4 columns",
      ...[0, 1, 2].map((i) => `int32.parquet row ${i}`)
    ])
    expect(issues[0]).toEqual({
      path: "reward_spec.ground_truth.max_turns",
      found: "int32",
      needed: "int64",
      effect: "concat"
    })
  })
})
