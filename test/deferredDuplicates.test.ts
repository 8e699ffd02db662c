/**
 * The spilled (deferred) duplicate passes give what the in-memory ones give: the checks' duplicate rules
 * (src/skyrl/deferredKeys.ts) and the diversity report's near-duplicates (src/skyrl/deferredNearDup.ts),
 * on rows with exact, normalized and MinHash near-duplicates, identical plans and task ids across two
 * files, with partitions small enough that every group-by runs over many of them.
 */
import { Effect, Exit, Layer } from "effect"
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { validateDatasets } from "../src/programs/validate.js"
import { Scratch, scratchIn, ScratchLive } from "../src/services/Scratch.js"
import { StorageLive } from "../src/services/Storage.js"
import type { CheckOptions } from "../src/skyrl/checks.js"
import { DatasetChecker } from "../src/skyrl/checks.js"
import type { DiversityOptions } from "../src/skyrl/diversity.js"
import { DiversityAccumulator } from "../src/skyrl/diversity.js"
import type { Spill } from "../src/skyrl/spill.js"
import { mulberry32 } from "../src/skyrl/workPlan.js"

const TOOLS = ["fmp_get_quote", "polygon_get_news", "fmp_get_company_profile"]

const makeRow = (
  k: number,
  user: string,
  opts: { system?: string; taskId?: string; plan?: number; userFirst?: boolean }
) => {
  const system = { role: "system", content: opts.system ?? "You are an agent." }
  const message = { role: "user", content: user }
  const tool = TOOLS[(opts.plan ?? k) % TOOLS.length]!
  return {
    data_source: "synthetic/llm",
    prompt: opts.userFirst === true ? [message, system] : [system, message],
    env_class: "MCPToolEnv",
    reward_spec: {
      method: "rule",
      ground_truth: {
        task_id: opts.taskId ?? `task-${k}`,
        complexity: "simple",
        max_turns: 3,
        success: { must_call_tool: tool },
        tool_sequence: [{ step: 1, server: "fmp", tool, params: JSON.stringify({ n: opts.plan ?? k }) }]
      }
    },
    extra_info: { task_metadata: JSON.stringify({ source: "llm" }) }
  }
}

/**
 * `n` rows: templated prompts (a few templates filling the same LSH buckets by the hundred), random
 * prompts, and among them exact copies, case/punctuation variants, one-word edits (MinHash matches),
 * repeated task ids and plans, user messages that are not last, and the same user text under another
 * system message.
 */
const dataset = (n: number, seed: number): Array<unknown> => {
  const rand = mulberry32(seed)
  const vocabulary = Array.from({ length: 400 }, (_, i) => `w${i}`)
  const pick = () => vocabulary[Math.floor(rand() * vocabulary.length)]!
  const templates = Array.from({ length: 4 }, () => Array.from({ length: 14 }, pick))
  const rows: Array<unknown> = []
  const users: Array<string> = []
  for (let k = 0; k < n; k++) {
    const r = rand()
    let user: string
    const opts: { system?: string; taskId?: string; plan?: number; userFirst?: boolean } = {}
    if (k > 10 && r < 0.08) user = users[Math.floor(rand() * k)]! // exact copy of the user text
    else if (k > 10 && r < 0.14) user = `${users[Math.floor(rand() * k)]!.toUpperCase()}!` // normalized copy
    else if (k > 10 && r < 0.3) {
      const words = users[Math.floor(rand() * k)]!.split(" ")
      words[Math.floor(rand() * words.length)] = pick()
      user = words.join(" ") // one word changed: similar
    } else if (r < 0.65) {
      const t = templates[Math.floor(rand() * templates.length)]!
      user = [...t, `item${k % 50}`, pick(), pick()].join(" ") // templated
    } else user = Array.from({ length: 8 + Math.floor(rand() * 30) }, pick).join(" ")
    if (rand() < 0.05) opts.system = "You are another agent."
    if (rand() < 0.05) opts.userFirst = true
    if (rand() < 0.05) opts.taskId = `task-${Math.floor(rand() * (k + 1))}`
    if (rand() < 0.5) opts.plan = Math.floor(rand() * 40)
    users.push(user)
    rows.push(makeRow(k, user, opts))
  }
  return rows
}

const FILES = ["a.jsonl", "b.jsonl"]
const split = (
  rows: ReadonlyArray<unknown>
) => [rows.slice(0, Math.floor(rows.length * 0.4)), rows.slice(Math.floor(rows.length * 0.4))]

/** Runs `f` with a spill of the live Scratch service (removed afterwards). */
const withSpill = <A>(f: (spill: Spill) => A): Promise<A> =>
  Effect.runPromise(
    Effect.scoped(Effect.flatMap(Scratch, (s) => Effect.map(s.open("test"), f))).pipe(Effect.provide(ScratchLive))
  )

const checkAll = (rows: ReadonlyArray<unknown>, options: CheckOptions) => {
  const checker = new DatasetChecker({ countPromptTokens: () => 10, ...options })
  split(rows).forEach((part, f) => {
    checker.beginFile(FILES[f]!)
    part.forEach((row, i) => checker.add(i, row))
  })
  return checker.report()
}

const diversityAll = (rows: ReadonlyArray<unknown>, options: DiversityOptions) => {
  const accumulator = new DiversityAccumulator(options)
  split(rows).forEach((part, f) => part.forEach((row, i) => accumulator.add(row, { file: FILES[f]!, row: i })))
  return { report: accumulator.report(), findings: accumulator.duplicateFindings() }
}

const count = (report: ReturnType<typeof checkAll>, id: string) => report.rules.find((r) => r.id === id)!.count

describe("duplicate rules of the checks: spilled = in memory", () => {
  for (const [n, partition, maxExamples] of [[3000, 97, 5], [3000, 1000, 100_000], [200, 7, 5]] as const) {
    it(`${n} rows in two files, partitions of ${partition} records, ${maxExamples} examples`, async () => {
      const rows = dataset(n, n + partition)
      const memory = checkAll(rows, { maxExamples })
      const spilled = await withSpill((spill) => checkAll(rows, { maxExamples, spill, partitionRecords: partition }))
      expect(spilled).toEqual(memory)
      // The data has every kind of duplicate, across the files too.
      for (const id of ["duplicate/prompt", "duplicate/near-prompt", "duplicate/task-id"]) {
        expect(count(memory, id)).toBeGreaterThan(3)
      }
      if (maxExamples > n) {
        // Every finding listed: some point from the second file to the first.
        const examples = memory.rules.filter((r) => r.id.startsWith("duplicate/")).flatMap((r) => r.examples)
        expect(examples.filter((e) => e.file === "b.jsonl" && e.message.includes("a.jsonl row")).length)
          .toBeGreaterThan(10)
      }
    })
  }

  it("a row not kept (acceptance, in memory) leaves no key; the spilled mode keeps every added row's", async () => {
    const rows = dataset(50, 3)
    const memory = new DatasetChecker({ countPromptTokens: () => 10 })
    const duplicates = (findings: ReadonlyArray<{ rule: string }>) =>
      findings.map((f) => f.rule).filter((r) => r.startsWith("duplicate/"))
    expect(duplicates(memory.check(0, rows[0], { keep: false }))).toEqual([])
    expect(duplicates(memory.check(1, rows[0], { keep: true }))).toEqual([])
    // In memory the answer is immediate.
    expect(duplicates(memory.check(2, rows[0], { keep: false }))).toEqual(["duplicate/prompt", "duplicate/task-id"])
    const spilled = await withSpill((spill) => {
      const checker = new DatasetChecker({ countPromptTokens: () => 10, spill })
      checker.add(0, rows[0])
      // Deferred: nothing per row, everything in the report.
      expect(duplicates(checker.add(1, rows[0]))).toEqual([])
      return checker.report()
    })
    expect(spilled.rules.find((r) => r.id === "duplicate/prompt")!.count).toBe(1)
  })
})

describe("near-duplicates of the diversity report: spilled = in memory", () => {
  const cases: ReadonlyArray<[string, number, DiversityOptions]> = [
    ["validate's walk (32), partitions of 500", 4000, { maxWalk: 32, partitionRecords: 500 }],
    ["a short walk and few matches, partitions of 61", 3000, { maxWalk: 3, maxMatches: 2, partitionRecords: 61 }],
    ["threshold 0.5, 3 pairs and 4 clusters shown", 2000, { maxWalk: 8, threshold: 0.5, maxPairs: 3, maxClusters: 4 }],
    ["a few rows, one partition", 60, { maxWalk: 32 }]
  ]
  for (const [name, n, options] of cases) {
    it(`${name}: ${n} rows in two files`, async () => {
      const rows = dataset(n, n + 7)
      const { partitionRecords, ...memoryOptions } = options
      const memory = diversityAll(rows, memoryOptions)
      const spilled = await withSpill((spill) => diversityAll(rows, { ...options, spill, partitionRecords }))
      expect(spilled.report).toEqual(memory.report)
      expect(spilled.findings).toEqual(memory.findings)
      if (n >= 2000) {
        const nd = memory.report.nearDuplicates
        expect(nd.prompt.clusters).toBeGreaterThan(5)
        expect(nd.plan.clusters).toBeGreaterThan(5)
        expect(memory.findings["near-prompt"].count).toBeGreaterThan(100)
        expect(memory.report.nearDuplicates.clusters.some((c) => c.kind === "near-prompt" && c.size > 3)).toBe(true)
      }
    })
  }
})

describe("validate with a scratch directory", () => {
  it("reports what it reports without one, across files, and leaves no scratch files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-deferred-test-"))
    try {
      const rows = dataset(1500, 11)
      const files = split(rows).map((part, f) => {
        const file = join(dir, FILES[f]!)
        writeFileSync(file, part.map((r) => JSON.stringify(r)).join("\n") + "\n")
        return file
      })
      const options = { files, maxPromptTokens: 4096, partitionRecords: 113 }
      const memory = await Effect.runPromise(validateDatasets(options).pipe(Effect.provide(StorageLive)))
      const scratch = join(dir, "scratch")
      mkdirSync(scratch)
      // The scratch directories the pass opens, each made in `scratch`.
      const opened: Array<string> = []
      const recording = Layer.effect(
        Scratch,
        Effect.map(Scratch, (s) => ({ open: (label: string) => (opened.push(label), s.open(label)) }))
      ).pipe(Layer.provide(scratchIn(() => scratch)))
      const spilled = await Effect.runPromise(
        validateDatasets(options).pipe(Effect.provide(Layer.merge(StorageLive, recording)))
      )
      expect(opened.sort()).toEqual(["checks", "diversity"])
      expect(spilled).toEqual(memory)
      expect(memory.rules.find((r) => r.id === "duplicate/similar-prompt")!.count).toBeGreaterThan(10)
      expect(readdirSync(scratch)).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("removes the scratch directory when the pass is interrupted", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-deferred-test-"))
    try {
      let seen: Array<string> = []
      const exit = await Effect.runPromiseExit(
        Effect.scoped(Effect.gen(function*() {
          const spill = yield* (yield* Scratch).open("interrupted")
          spill.file(1).append([1])
          seen = readdirSync(dir)
          return yield* Effect.interrupt
        })).pipe(Effect.provide(scratchIn(() => dir)))
      )
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(seen.length).toBe(1)
      expect(seen[0]).toMatch(/^skyrl-interrupted-/)
      expect(readdirSync(dir)).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
