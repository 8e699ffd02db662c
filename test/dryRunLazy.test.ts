/**
 * Issue 19, dry runs: `generate --dry-run` makes each sample of its work plan as it prints it, a block of
 * lines at a time, instead of the whole plan (and the whole text) first: `-n 1000000` peaked at 1.3 GB.
 * The samples made are counted through the --personas entries (each sample reads one), a Proxy over them.
 */
import { Effect, Layer } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it, vi } from "vitest"
import type { GenerateCliOptions } from "../src/cli/generate.live.js"
import { dryRun } from "../src/cli/generatePlan.live.js"
import type { LlmSettings } from "../src/domain/llm.js"
import { lazyGeneratePlan } from "../src/programs/generate.js"
import { Inventory } from "../src/services/Inventory.js"
import { StorageLive } from "../src/services/Storage.js"
import { focusTools } from "../src/skyrl/focusTools.js"
import { TASK_STYLES } from "../src/skyrl/personas.js"
import { allocateSubjects } from "../src/skyrl/subjects.js"
import { diverseWorkPlan, workPlan } from "../src/skyrl/workPlan.js"
import { catalogue, settingsFor } from "./support/engine.js"

const PERSONAS = ["a night nurse", "a sailor", "a beekeeper"]

/** The personas, counting the reads of an entry (one per sample made). */
const countedPersonas = () => {
  const count = { reads: 0 }
  const entries = new Proxy([...PERSONAS], {
    get(target, key, receiver) {
      if (typeof key === "string" && /^\d+$/.test(key)) count.reads++
      return Reflect.get(target, key, receiver) as unknown
    }
  })
  return { count, entries }
}

const body: LlmSettings = {
  model: "gpt-5-mini",
  backend: "responses",
  reasoningEffort: "high",
  maxOutputTokens: 32_000,
  timeoutMs: 1000,
  maxRetries: 0,
  baseDelayMs: 1,
  maxDelayMs: 1,
  maxRetryAfterMs: 1
}

const diversity = { domains_from: "flag" as const, personas: null, subjects: "none" as const, near_dup: 0.8 }

afterEach(() => {
  vi.restoreAllMocks()
})

describe("generate --dry-run over a large plan", () => {
  it("prints the work plan as it makes it: a block of lines at a time, each sample made once", async () => {
    const n = 20_000
    const { count, entries } = countedPersonas()
    const dir = mkdtempSync(join(tmpdir(), "skyrl-dry-"))
    const writes: Array<{ readonly text: string; readonly made: number }> = []
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      writes.push({ text: String(chunk), made: count.reads })
      return true
    })
    await Effect.runPromise(
      dryRun({
        options: { llm: "replay", backend: "responses" } as GenerateCliOptions,
        settings: settingsFor(n, { answers: "recorded", diversity }),
        catalogue,
        plan: {
          domains: ["equity research", "market monitoring"],
          diversity,
          files: { personas: { path: "p.txt", sha256: "0", entries } }
        },
        rawDir: join(dir, "raw_llm"),
        out: join(dir, "x.jsonl"),
        body
      }).pipe(Effect.provide(Layer.mergeAll(Inventory.fromValue(catalogue), StorageLive)))
    )
    vi.restoreAllMocks()
    const text = writes.map((w) => w.text).join("")
    const lines = text.split("\n")
    // The whole plan is printed, sample 1 to sample 20000, once each.
    const planLines = lines.filter((l) => /^ *\d+ {2}simple {4}/.test(l))
    expect(planLines).toHaveLength(n)
    expect(planLines[0]).toMatch(/^ {4}1 {2}simple {4}(equity research|market monitoring) {2}\| {2}focus /)
    expect(planLines[n - 1]).toMatch(/^20000 {2}simple /)
    expect(text).toContain(`## work plan (${n} samples, seed 7)\n`)
    expect(text.endsWith(" without (the stages, repairs and retries add to it)\n")).toBe(true)
    // Printed in blocks of about 64 KB (20,000 lines are ~2.5 MB) ...
    expect(writes.length).toBeGreaterThan(20)
    expect(Math.max(...writes.map((w) => w.text.length))).toBeLessThan(80 * 1024)
    // ... each made from the samples just made: when the first block went out, at most ~1000 samples
    // had been made (before: all 20,000, and then the text of all of them, then one write).
    expect(writes[0].made).toBeLessThan(1000)
    // Each sample made once for its line (and sample 1 once more, for the first request body).
    expect(count.reads).toBe(n + 1)
  })

  it("the lazy plan is the plan generate made before: the work plan's samples with their subjects", () => {
    const settings = settingsFor(50, { diversity: { ...diversity, subjects: "model" } })
    const subjects = {
      "equity research": ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K"],
      "market monitoring": ["Z"]
    }
    const lazy = lazyGeneratePlan(settings, catalogue, { personas: PERSONAS, subjects })
    // What generatePlan was: the whole diverse plan, then the subjects allocated over its array.
    const complexities = [{ complexity: "simple" as const, weight: 1 }]
    const whole = diverseWorkPlan(7, 50, settings.domains, complexities, {
      tools: focusTools(catalogue),
      styles: TASK_STYLES,
      personas: PERSONAS
    })
    const allocation = allocateSubjects(7, [...whole].reverse(), { byDomain: subjects })
    const expected = whole.map((s) => ({
      ...s,
      subjects: [1, 2, 3, 4].map((a) => allocation.subjectFor(s.index, a)).filter((x) => x !== undefined)
    }))
    expect(lazy.length).toBe(50)
    expect([...lazy.jobs()]).toEqual(expected)
    expect(lazy.at(37)).toEqual(expected[37])
    expect(expected.filter((j) => j.domain === "market monitoring").every((j) => j.subjects.join() === "Z,Z,Z,Z"))
      .toBe(true)
    // A run made before issue 18: domain and complexity only.
    expect([...lazyGeneratePlan(settingsFor(5), catalogue).jobs()]).toEqual(
      workPlan(7, 5, settings.domains, complexities)
    )
  })
})
