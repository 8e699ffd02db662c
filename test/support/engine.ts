/**
 * In-process runs of the run engine (no child process, no HTTP): memory Storage, a scripted model
 * through the real Llm engine, the finance inventory inline, silent progress. A crash is an interrupted
 * fiber: `blockJournalWrite(n)` makes the n-th journal append wait forever (so n - 1 samples are
 * journaled), then the test interrupts the run and starts it again on the same storage.
 */
import { Deferred, Effect, Either, Layer } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { Inventory as Catalogue } from "../../src/domain/inventory.js"
import { parseInventoryText } from "../../src/domain/inventory.js"
import type { LlmSettings } from "../../src/domain/llm.js"
import { RunSettings } from "../../src/domain/run.js"
import type { GenerateOptions } from "../../src/programs/generate.js"
import { generatePlan, generateProgram } from "../../src/programs/generate.js"
import { Inventory } from "../../src/services/Inventory.js"
import type { LlmApi } from "../../src/services/Llm.js"
import { Llm } from "../../src/services/Llm.js"
import { progressSilent } from "../../src/services/Progress.js"
import { inventoryFingerprint } from "../../src/services/RunJournal.js"
import { DEFAULT_MAX_PROMPT_TOKENS } from "../../src/skyrl/checks.js"
import { isRepairRequest, sampleNumberOf } from "./fakeTasks.js"
import type { MemoryStorage } from "./memoryStorage.js"
import type { ScriptedCall, ScriptedHandler, ScriptedReply } from "./scripted.js"
import { makeScriptedLlm } from "./scripted.js"
import { USAGE } from "./usage.js"

const INVENTORY_FILE = join(import.meta.dirname, "..", "fixtures", "inventory", "finance-mcp.json")
export const catalogue: Catalogue = Either.getOrThrow(
  parseInventoryText(readFileSync(INVENTORY_FILE, "utf8"), INVENTORY_FILE)
)
/** The inline inventory layer (shared by every in-process run). */
export const InventoryTest = Inventory.fromValue(catalogue)

export { costOfCalls, USAGE } from "./usage.js"

export const RAW_DIR = "/mem/raw_llm"
export const OUT = "/mem/ds.jsonl"

/** The settings of a test run (what the CLI derives from flags). */
export const settingsFor = (n: number, overrides: Partial<RunSettings> = {}): RunSettings =>
  new RunSettings({
    command: "generate",
    model: "gpt-5-mini",
    backend: "responses",
    reasoning_effort: "high",
    answers: "model",
    max_output_tokens: 32_000,
    seed: 7,
    n,
    domains: ["equity research", "market monitoring"],
    // The scripted answers are simple tasks (2 calls), which is what generate then asks for.
    complexities: [{ complexity: "simple", weight: 1 }],
    inventory_sha256: inventoryFingerprint(catalogue),
    max_tools: 5,
    max_turns: 8,
    max_prompt_tokens: DEFAULT_MAX_PROMPT_TOKENS,
    as_of: "2026-11-30",
    data_source: "synthetic/llm",
    input: null,
    ...overrides
  })

export const generateOptions = (
  settings: RunSettings,
  overrides: Partial<GenerateOptions> = {}
): GenerateOptions => ({
  out: OUT,
  plan: generatePlan(settings, catalogue),
  seed: settings.seed ?? 7,
  maxTools: settings.max_tools,
  maxTurns: settings.max_turns,
  concurrency: 1,
  maxCostUsd: undefined,
  maxAttemptsPerSample: 3,
  rawDir: RAW_DIR,
  runId: "run-1",
  rawGzip: false,
  indent: undefined,
  ascii: false,
  dataSource: settings.data_source,
  rejectsFile: `${OUT}.rejects.jsonl`,
  model: settings.model,
  backend: settings.backend,
  settings: { n: settings.n },
  runSettings: settings,
  ...overrides
})

/** A scripted model (the real Llm engine over a script) and the log of its calls. */
export const scripted = (handler: ScriptedHandler, settings: Partial<LlmSettings> = {}) =>
  makeScriptedLlm(handler, settings)

/** The services every in-process run shares (for `it.layer`): the inline inventory, silent progress. */
export const EngineTest = Layer.mergeAll(InventoryTest, progressSilent)

/** `generate` in-process over the given storage and model (Inventory and Progress from `EngineTest`). */
export const runGenerate = (storage: MemoryStorage, llm: LlmApi, options: GenerateOptions) =>
  generateProgram(options).pipe(Effect.provide(Layer.merge(storage.layer, Layer.succeed(Llm, llm))))

/** Makes the n-th append to the run's journal wait forever; the Deferred completes when it is reached. */
export const blockJournalWrite = (storage: MemoryStorage, n: number) =>
  Effect.gen(function*() {
    const reached = yield* Deferred.make<void>()
    let appends = 0
    storage.onWrite = (file, kind) =>
      file.endsWith("journal.jsonl") && kind === "append" && ++appends === n
        ? Effect.zipRight(Deferred.succeed(reached, undefined), Effect.never)
        : Effect.void
    return reached
  })

/** The sample number (1-based) and attempt a scripted call is for, and whether it is a repair. */
export const requestOf = (call: ScriptedCall) => {
  const body = call.body as { input?: Array<{ role: string; content: string }>; messages?: typeof body.input }
  const messages = body.input ?? body.messages ?? []
  const first = messages.find((m) => m.role === "user")?.content ?? ""
  const attempt = /attempt (\d+)/.exec(first)
  return {
    k: sampleNumberOf(call.body) ?? 0,
    attempt: attempt === null ? 1 : Number(attempt[1]),
    repair: isRepairRequest(call.body)
  }
}

export const reply = (json: unknown): ScriptedReply => ({ json, usage: USAGE })

export const readJsonl = (text: string): Array<any> =>
  text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l))
