/**
 * The near-duplicate gate of acceptance (src/skyrl/duplicateGate.ts) and the plan of a diverse run
 * (src/programs/generate.ts, src/skyrl/planStages.ts): unit tests, and runs of the engine in-process
 * (memory storage, a scripted model).
 */
import { layer } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import type { DiversitySettings, RejectRecord } from "../src/domain/run.js"
import { generatePlan, generateRequest, SUBJECT_ATTEMPTS } from "../src/programs/generate.js"
import { missingPlanInputs } from "../src/programs/planStages.js"
import { rebuildProgram } from "../src/programs/rebuild.js"
import { diversityOfRows } from "../src/skyrl/diversity.js"
import { DuplicateGate } from "../src/skyrl/duplicateGate.js"
import {
  cleanDomains,
  cleanSubjects,
  renderDomainsRequest,
  renderStageInstructions,
  renderSubjectsRequest,
  subjectsWanted
} from "../src/skyrl/planStages.js"
import {
  catalogue,
  EngineTest,
  generateOptions,
  OUT,
  RAW_DIR,
  readJsonl,
  reply,
  requestOf,
  runGenerate,
  scripted,
  settingsFor
} from "./support/engine.js"
import { validTaskText } from "./support/fakeTasks.js"
import { expectNoFinanceWords } from "./support/financeWords.js"
import { loadInventory } from "./support/inventories.js"
import { makeMemoryStorage } from "./support/memoryStorage.js"

const task = (k: number, variant = 0) => JSON.parse(validTaskText(k, variant)) as Record<string, unknown>
const diverse = (overrides: Partial<DiversitySettings> = {}): DiversitySettings => ({
  domains_from: "flag",
  personas: null,
  subjects: "none",
  near_dup: 0.8,
  ...overrides
})
/** A row in the on-disk layout, enough for the gate: a user prompt and a plan. */
const row = (prompt: string, steps: ReadonlyArray<{ tool: string; params: Record<string, unknown> }>) => ({
  prompt: [{ role: "user", content: prompt }],
  reward_spec: {
    ground_truth: {
      tool_sequence: steps.map((s, i) => ({
        step: i + 1,
        server: "srv",
        tool: s.tool,
        params: JSON.stringify(s.params),
        derived_params: "[]"
      }))
    }
  }
})
const words = (n: number, tail = "end") => `${Array.from({ length: n }, (_, i) => `w${i}`).join(" ")} ${tail}`

describe("the duplicate gate", () => {
  it("reports the earliest accepted row a candidate matches, by prompt and by plan, and keeps nothing until told", () => {
    const gate = new DuplicateGate(0.8)
    gate.test(row(words(30), [{ tool: "a", params: { q: 1 } }])).keep(4)
    gate.test(row(words(30, "other"), [{ tool: "b", params: { q: 2 } }])).keep(7)
    const candidate = row(words(30, "third"), [{ tool: "b", params: { q: 2 } }])
    const { keep, matches } = gate.test(candidate)
    expect(matches.map((m) => m.rule)).toEqual(["duplicate/similar-prompt", "duplicate/same-plan"])
    // Both earlier prompts are similar: the earliest (sample 5) is named; the plan is sample 8's.
    expect(matches[0].reason).toMatch(/^duplicate\/similar-prompt prompt: 0\.\d\d similar to the prompt of sample 5 /)
    expect(matches[0].avoid).toMatchObject({ tools: ["a"], kind: "near-prompt" })
    expect(matches[1].reason).toBe(
      "duplicate/same-plan tool_sequence: the same calls with the same literal params as sample 8"
    )
    expect(matches[1].avoid).toMatchObject({ tools: ["b"], kind: "plan" })
    // Tested, not kept: the same candidate again finds the same two, not itself.
    expect(gate.test(candidate).matches.map((m) => m.reason)).toEqual(matches.map((m) => m.reason))
    keep(9)
    expect(gate.test(row("something else entirely here", [{ tool: "c", params: {} }])).matches).toEqual([])
  })

  it("ignores derived params in plans and rows it cannot read", () => {
    const gate = new DuplicateGate(0.8)
    const derived = (value: string) => ({
      prompt: [{ role: "user", content: `ask ${value}` }],
      reward_spec: {
        ground_truth: {
          tool_sequence: [
            { step: 1, server: "s", tool: "t", params: "{\"x\":1}", derived_params: "[]" },
            {
              step: 2,
              server: "s",
              tool: "u",
              params: JSON.stringify({ id: value }),
              depends_on: "[1]",
              derived_params: "[\"id\"]"
            }
          ]
        }
      }
    })
    gate.test(derived("first value")).keep(0)
    expect(gate.test(derived("a completely different one")).matches.map((m) => m.rule)).toEqual(["duplicate/same-plan"])
    expect(gate.test({ not: "a row" }).matches).toEqual([])
  })
})

describe("the plan of a diverse run", () => {
  const finance = catalogue

  it("gives each sample a focus tool, style, persona and distinct subjects for its first attempts", () => {
    const settings = settingsFor(12, { diversity: diverse({ subjects: "model" }) })
    const inputs = {
      personas: ["a night nurse", "a sailor"],
      subjects: {
        "equity research": ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K"],
        "market monitoring": ["Z"]
      }
    }
    const plan = generatePlan(settings, finance, inputs)
    expect(plan).toHaveLength(12)
    for (const job of plan) {
      expect(job.focus?.server).toBeDefined()
      expect(["a night nurse", "a sailor"]).toContain(job.persona)
      expect(job.style?.name).toBeDefined()
    }
    const research = plan.filter((j) => j.domain === "equity research")
    expect(research).toHaveLength(6)
    // First attempts: six distinct subjects; the spares (five) go to later attempts, never a first one's.
    const firsts = research.map((j) => j.subjects![0])
    expect(new Set(firsts).size).toBe(6)
    for (const j of research) {
      expect(j.subjects).toHaveLength(SUBJECT_ATTEMPTS)
      expect(firsts.filter((s) => j.subjects!.slice(1).includes(s))).toEqual([])
    }
    // A pool of one: every attempt of every sample gets it.
    for (const j of plan.filter((x) => x.domain === "market monitoring")) {
      expect(new Set(j.subjects)).toEqual(new Set(["Z"]))
    }
    expect(generatePlan(settings, finance, inputs)).toEqual(plan)
    // Runs made before issue 18 (no diversity settings) keep their plan: domain and complexity only.
    expect(Object.keys(generatePlan(settingsFor(3), finance)[0])).toEqual(["index", "domain", "complexity"])
  })

  it("builds each attempt's request from the sample's brief and the avoid notes of its rejects", () => {
    const settings = settingsFor(4, { diversity: diverse() })
    const [job] = generatePlan(settings, finance, { subjects_file: ["Lisbon", "Porto", "Faro", "Braga", "Evora"] })
    const request = generateRequest(4)
    const first = request(job, 1)
    expect(first).toMatch(
      /^Write task 1 of 4\.\nDomain: .*\.\nComplexity: simple \(.*\)\.\nFocus tool: the plan must call /
    )
    expect(first).toContain(`Subject: build the task around "${job.subjects![0]}".`)
    expect(first).not.toContain("Pick a subject")
    const reject: RejectRecord = {
      index: 0,
      attempt: 1,
      reasons: ["duplicate/similar-prompt ..."],
      raw_output_path: null,
      avoid: { prompt: "Quote Apple now.", tools: ["fmp_get_quote"], subjects: ["AAPL"], kind: "near-prompt" }
    }
    const second = request(job, 2, [reject, { ...reject, attempt: 2, avoid: undefined } as RejectRecord])
    expect(second).toContain(`Subject: build the task around "${job.subjects![1]}".`)
    expect(second).toContain(
      "Your previous answer duplicated a task already in the dataset. Write one that differs in subject and request from:\n" +
        "- \"Quote Apple now.\" (a very similar request; about \"AAPL\"; tools fmp_get_quote)"
    )
    expect(second).toContain("This is attempt 2")
  })

  it("names the plan inputs a run still lacks", () => {
    const s = settingsFor(2, {
      domains: [],
      diversity: diverse({ domains_from: "model", subjects: "model", personas: { sha256: "x", entries: 1 } })
    })
    expect(missingPlanInputs(s, {})).toEqual(["personas", "domains", "subjects"])
    expect(missingPlanInputs(s, { personas: ["p"], domains: ["d"], subjects: {} })).toEqual([])
    expect(missingPlanInputs(settingsFor(2), {})).toEqual([])
  })
})

describe("the stages' texts and answers", () => {
  const everything = loadInventory("everything")

  it("are domain-free and ask for what the plan needs", () => {
    expectNoFinanceWords(
      [renderStageInstructions(everything), renderDomainsRequest(), renderSubjectsRequest({ "demo runs": 3 })].join(
        "\n"
      ),
      everything
    )
    expect(renderSubjectsRequest({ "demo runs": 3, triage: 40 })).toContain(
      "- demo runs: 6 subjects\n- triage: 52 subjects"
    )
    expect(subjectsWanted(1000)).toBe(60)
  })

  it("cleans answers: trimmed, no repeats (across domains too), unknown domains dropped", () => {
    expect(cleanDomains({ domains: [" File triage ", "file triage", "", "x".repeat(81), "Demo runs"] })).toEqual([
      "File triage",
      "Demo runs"
    ])
    expect(cleanDomains({ domains: ["  "] })).toBe("the answer lists no usable domain")
    expect(
      cleanSubjects(
        {
          domains: [
            { domain: "DEMO RUNS", subjects: ["a", "A ", "b"] },
            { domain: "triage", subjects: ["b", "c"] },
            { domain: "unknown", subjects: ["d"] }
          ]
        },
        { "demo runs": 1, triage: 1 }
      )
    ).toEqual({ "demo runs": ["a", "b"], triage: ["c"] })
  })
})

layer(EngineTest, { excludeTestServices: true })("near-duplicates in a run, in-process", (it) => {
  // Recorded answers (as with --llm replay): the focus tool is not asked of the plan, so a script can
  // answer any plan.
  const recorded = (nearDup: number | null) =>
    settingsFor(5, { answers: "recorded", diversity: diverse({ near_dup: nearDup }) })

  it.effect("a plan repeated with another prompt is rejected, the retry names it, and rebuild makes the same rows", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { calls, llm } = scripted((call) => {
        const { attempt, k } = requestOf(call)
        // Sample 4's first answer: sample 2's plan (same calls, same literal params) under a new prompt.
        if (k === 4 && attempt === 1) return reply({ ...task(2, 1), user_prompt: "A fresh wording of the same job." })
        return reply(task(k, attempt))
      })
      yield* runGenerate(storage, llm, generateOptions(recorded(0.8)))
      const rows = readJsonl(storage.text(OUT))
      expect(rows).toHaveLength(5)
      const rejects = readJsonl(storage.text(`${OUT}.rejects.jsonl`))
      expect(rejects.map((r) => [r.index, r.attempt])).toEqual([[3, 1]])
      expect(rejects[0].reasons).toEqual([
        "duplicate/same-plan tool_sequence: the same calls with the same literal params as sample 2"
      ])
      const retry = calls.find((c) => requestOf(c).k === 4 && requestOf(c).attempt === 2)!
      const text = (retry.body as { input: Array<{ content: string }> }).input[0].content
      expect(text).toContain(
        `- "${task(2, 1).user_prompt}" (same calls with the same values; about "AMZN"; ` +
          "tools fmp_get_quote > polygon_get_news)"
      )
      const report = diversityOfRows(rows, OUT, { inventory: catalogue })
      expect(report.nearDuplicates.plan.clusters).toBe(0)
      const asked = calls.length
      yield* rebuildProgram({ runDir: `${RAW_DIR}/run-1`, out: "/mem/rebuilt.jsonl", indent: undefined, ascii: false })
        .pipe(Effect.provide(storage.layer))
      expect(calls).toHaveLength(asked)
      expect(storage.text("/mem/rebuilt.jsonl")).toBe(storage.text(OUT))
    }))

  it.effect("--near-dup off accepts it (the lenient setting)", () =>
    Effect.gen(function*() {
      const storage = makeMemoryStorage()
      const { llm } = scripted((call) => {
        const { attempt, k } = requestOf(call)
        if (k === 4 && attempt === 1) return reply({ ...task(2, 1), user_prompt: "A fresh wording of the same job." })
        return reply(task(k, attempt))
      })
      yield* runGenerate(storage, llm, generateOptions(recorded(null)))
      expect(readJsonl(storage.text(OUT))).toHaveLength(5)
      expect(storage.files.has(`${OUT}.rejects.jsonl`)).toBe(false)
      const manifest = JSON.parse(storage.text(`${RAW_DIR}/run-1/manifest.json`))
      expect(manifest.diversity.nearDuplicates.plan).toEqual({ clusters: 1, rows: 2, redundant: 1 })
    }))
})
