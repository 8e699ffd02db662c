/**
 * Acceptance pieces: the row checker judging a candidate without keeping it (every checks.ts rule, so
 * cross-row ones too), and the verify hook's place in the pipeline.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either } from "effect"
import type { EncodedRow } from "../src/domain/row.js"
import { makeAcceptance } from "../src/programs/acceptance.js"
import type { VerifyOutcome } from "../src/programs/acceptance.js"
import { generatedTaskInput } from "../src/programs/generate.js"
import { Inventory } from "../src/services/Inventory.js"
import { DatasetChecker, DEFAULT_MAX_PROMPT_TOKENS } from "../src/skyrl/checks.js"
import { convertTask } from "../src/skyrl/convert.js"
import { encodeRow } from "../src/skyrl/layout.js"
import {
  catalogue,
  EngineTest,
  generateOptions,
  OUT,
  readJsonl,
  reply,
  requestOf,
  runGenerate,
  scripted,
  settingsFor
} from "./support/engine.js"
import { validTaskText } from "./support/fakeTasks.js"
import { makeMemoryStorage } from "./support/memoryStorage.js"

const rowFor = (i: number, overrides: Record<string, unknown> = {}): EncodedRow =>
  encodeRow(Either.getOrThrow(convertTask({
    task_id: `t${i}`,
    user_prompt: `Get the quote for ticker number ${i}, then the latest news.`,
    tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }],
    evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] },
    ...overrides
  }, { inventory: catalogue })))

describe("DatasetChecker.check: a candidate judged against the kept rows", () => {
  it("a candidate not kept leaves no trace: same report, its prompt and paths are not claimed", () => {
    const checker = new DatasetChecker({ inventory: catalogue })
    checker.add(0, rowFor(0))
    const before = JSON.stringify(checker.report())
    // A duplicate of row 0, and a row whose task id turns a typed field into an ISO date.
    const duplicate = checker.check(1, rowFor(0), { keep: false })
    expect(duplicate.map((f) => f.rule)).toContain("duplicate/prompt")
    const dated = checker.check(2, rowFor(2, { task_id: "2026-01-01" }), { keep: false })
    expect(dated.map((f) => f.rule)).toContain("arrow/date-string")
    expect(JSON.stringify(checker.report())).toBe(before)
    // Row 3 after a rejected candidate with its prompt: not a duplicate of something never kept.
    const candidate = rowFor(3)
    expect(checker.check(3, candidate, { keep: false })).toEqual([])
    expect(checker.check(4, candidate, { keep: true })).toEqual([])
    expect(checker.check(5, candidate, { keep: false }).map((f) => f.rule)).toContain("duplicate/prompt")
  })

  it("a keep predicate keeps a clean row and drops one with findings", () => {
    const checker = new DatasetChecker({})
    const clean = (found: ReadonlyArray<unknown>) => found.length === 0
    expect(checker.check(0, rowFor(0), { keep: clean })).toEqual([])
    expect(checker.check(1, rowFor(0), { keep: clean }).length).toBeGreaterThan(0)
    expect(checker.report().rows).toBe(1)
  })

  it("Arrow type changes are judged against kept rows only", () => {
    const checker = new DatasetChecker({})
    const odd = { ...rowFor(1), extra: { flag: true } } as unknown as EncodedRow
    expect(checker.check(1, odd, { keep: false }).map((f) => f.rule)).toEqual([])
    const other = { ...rowFor(2), extra: { flag: "yes" } } as unknown as EncodedRow
    // `extra.flag` was never kept as a boolean, so a string there is no type change.
    expect(checker.check(2, other, { keep: false }).map((f) => f.rule)).not.toContain("arrow/type-change")
    checker.add(3, odd)
    expect(checker.check(4, other, { keep: false }).map((f) => f.rule)).toContain("arrow/type-change")
  })
})

layer(EngineTest, { excludeTestServices: true })("the verify hook (execution verification, issue 14)", (it) => {
  it.effect("a failed verification with a repair message is sent back to the model; without one it is a reject", () =>
    Effect.gen(function*() {
      const inventory = yield* Inventory
      const seen: Array<string> = []
      const verify = (row: { readonly prompt: ReadonlyArray<{ readonly content: string }> }) =>
        Effect.sync((): VerifyOutcome => {
          seen.push(row.prompt[1].content)
          if (row.prompt[1].content.includes("variant 0")) {
            return { ok: false, reason: "fmp_get_quote returned an error for MSFT", repair: "Use a listed ticker." }
          }
          return { ok: true }
        })
      const acceptance = yield* makeAcceptance({
        taskInput: generatedTaskInput(8),
        inventoryOf: () => inventory,
        rowSettings: { maxPromptTokens: DEFAULT_MAX_PROMPT_TOKENS, asOf: "2026-11-30" },
        dataSource: "synthetic/llm",
        maxTools: 5,
        checks: { inventory: catalogue },
        warnOnly: [],
        verify
      })
      const job = { index: 0, domain: "equity research", complexity: "simple" as const }
      const first = yield* acceptance.judge(job, 0, JSON.parse(validTaskText(1, 0)), {})
      expect(first).toMatchObject({ _tag: "Repair", message: "Use a listed ticker." })
      const second = yield* acceptance.judge(job, 0, JSON.parse(validTaskText(1, 1)), {})
      expect(second._tag).toBe("Accepted")
      // A task whose plan is invalid never reaches verification.
      const invalid = JSON.parse(validTaskText(1, 2))
      invalid.tool_sequence[0].tool = "no_such_tool"
      expect((yield* acceptance.judge(job, 0, invalid, {}))._tag).toBe("Repair")
      expect(seen).toHaveLength(2)
    }))

  it.effect("in a run: the repair message reaches the model and the row is made", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { calls, llm } = scripted((call) =>
        reply(JSON.parse(validTaskText(requestOf(call).k, requestOf(call).repair ? 1 : 0)))
      )
      const verify = (row: { readonly prompt: ReadonlyArray<{ readonly content: string }> }) =>
        Effect.succeed<VerifyOutcome>(
          row.prompt[1].content.includes("variant 0")
            ? { ok: false, reason: "the plan's first call failed", repair: "Pick another ticker." }
            : { ok: true }
        )
      yield* runGenerate(storage, llm, { ...generateOptions(settingsFor(2)), verify })
      expect(readJsonl(storage.text(OUT))).toHaveLength(2)
      expect(calls.filter((c) => requestOf(c).repair)).toHaveLength(2)
      expect(JSON.stringify(calls[1].body.input)).toContain("Pick another ticker.")
    }))
})
