/**
 * Run contracts: the manifest of a generation run, its journal entries, and the run-level errors.
 * Run directory: raw_llm/<run_id>/{manifest.json, journal.jsonl, task_0001_c01.json, ...}.
 */
import { Schema } from "effect"
import { Usage } from "./llm.js"

export const RunStatus = Schema.Literal("running", "completed", "incomplete", "failed")

export class RunManifest extends Schema.Class<RunManifest>("RunManifest")({
  run_id: Schema.String,
  command: Schema.String,
  status: RunStatus,
  output: Schema.String,
  started_at: Schema.String,
  finished_at: Schema.NullOr(Schema.String),
  settings: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  seed: Schema.NullOr(Schema.Number),
  model: Schema.String,
  backend: Schema.String,
  llm: Schema.String,
  counts: Schema.Struct({
    requested: Schema.Number,
    valid: Schema.Number,
    rejected_attempts: Schema.Number,
    failed_samples: Schema.Number,
    calls: Schema.Number,
    repairs: Schema.Number
  }),
  tokens: Usage,
  cost_usd: Schema.NullOr(Schema.Number),
  elapsed_ms: Schema.Number
}) {}

/** One rejected attempt of a sample (also written to the rejects file). */
export const RejectRecord = Schema.Struct({
  index: Schema.Number,
  attempt: Schema.Number,
  reasons: Schema.Array(Schema.String),
  raw_output_path: Schema.NullOr(Schema.String)
})
export type RejectRecord = typeof RejectRecord.Type

/** A journal line: written (append + fsync) as soon as a sample is finished. */
export const JournalEntry = Schema.Struct({
  index: Schema.Number,
  status: Schema.Literal("row", "failed"),
  /** The encoded (on-disk) row when status is "row". */
  row: Schema.optional(Schema.Unknown),
  attempts: Schema.Number,
  calls: Schema.Number,
  usage: Usage,
  rejects: Schema.Array(RejectRecord)
})
export type JournalEntry = typeof JournalEntry.Type

/** The run stopped before N valid rows: what was made is kept. */
export class IncompleteRun extends Schema.TaggedError<IncompleteRun>()("IncompleteRun", {
  made: Schema.Number,
  requested: Schema.Number,
  reason: Schema.String,
  output: Schema.String
}) {
  get exitCode(): number {
    return 1
  }
  override get message(): string {
    return `made ${this.made} of ${this.requested} valid rows (kept in ${this.output}): ${this.reason}`
  }
}

/** A setting is unusable (bad value or flag combination): a usage error, exit 2. */
export class SettingsError extends Schema.TaggedError<SettingsError>()("SettingsError", {
  setting: Schema.String,
  reason: Schema.String
}) {
  get exitCode(): number {
    return 2
  }
  override get message(): string {
    return `${this.setting}: ${this.reason}`
  }
}
