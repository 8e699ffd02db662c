/** Pieces of the live wiring that `generate` and `enrich` share (loaded lazily with them). */
import type { Option } from "effect"
import { Effect, Schema } from "effect"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { RunManifest, SettingsError } from "../domain/run.js"
import type { BatchFlags } from "./batch.js"
import type { LlmOptions } from "./llmOptions.js"
import { resolveAsOf } from "./shared.js"

/** The parsed options every model-calling command shares (`runOptions`, shared.ts and the LLM/batch flags). */
export interface RunCliOptions extends LlmOptions, BatchFlags {
  readonly out: string
  readonly maxTools: number
  readonly maxTurns: number
  readonly inventory: Option.Option<string>
  readonly dataSource: string
  readonly concurrency: number
  readonly rawDir: Option.Option<string>
  readonly rawGzip: boolean
  readonly resume: boolean
  readonly dryRun: boolean
  readonly indent: Option.Option<number>
  readonly ascii: boolean
  readonly servers: Option.Option<string>
  readonly maxAttempts: number
  readonly rpm: Option.Option<number>
  readonly tpm: Option.Option<number>
  readonly maxCost: Option.Option<number>
  readonly maxPromptTokens: number
  readonly asOf: Option.Option<string>
}

/** Expected output tokens per call by effort (one gpt-5-mini task at high took 8,106). */
export const EXPECTED_OUTPUT: Readonly<Record<string, number>> = { minimal: 1500, low: 3000, medium: 5000, high: 8000 }

/**
 * The prompt settings of a run (`--max-prompt-tokens`, `--as-of`), checked. `--as-of` defaults to the run's
 * start date, read from its id (`makeRunId`), so a resumed run keeps the date it started with.
 */
export const rowSettingsOf = (options: Pick<RunCliOptions, "maxPromptTokens" | "asOf">, runId: string) => {
  const m = /^(\d{4})(\d{2})(\d{2})T/.exec(runId)
  const started = m === null ? new Date() : new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`)
  return Effect.all({
    maxPromptTokens: positiveInt(options.maxPromptTokens, "--max-prompt-tokens (MAX_PROMPT_TOKENS)"),
    asOf: resolveAsOf(options.asOf, started)
  })
}

export const positiveInt = (value: number, setting: string) =>
  Number.isInteger(value) && value > 0
    ? Effect.succeed(value)
    : Effect.fail(new SettingsError({ setting, reason: `must be a positive integer, got ${value}` }))

/** The most recent run of `command` in rawDir for this output (for --resume). */
export const latestRunFor = (rawDir: string, out: string, command: string): string | undefined => {
  if (!existsSync(rawDir)) return undefined
  const candidates: Array<{ id: string; started: string }> = []
  for (const id of readdirSync(rawDir)) {
    const file = path.join(rawDir, id, "manifest.json")
    if (!existsSync(file)) continue
    try {
      const m = Schema.decodeUnknownSync(RunManifest)(JSON.parse(readFileSync(file, "utf8")))
      if (m.output === out && m.command === command) candidates.push({ id, started: m.started_at })
    } catch {
      // An unreadable manifest is not a run to resume.
    }
  }
  return candidates.sort((a, b) => a.started.localeCompare(b.started)).at(-1)?.id
}
