/**
 * Run contracts: the settings a run is made with (fingerprinted, checked on `--resume`), the manifest,
 * journal and cost-ledger lines, the request keys of a run's calls, and the run-level errors.
 * Run directory: raw_llm/<run_id>/{manifest.json, journal.jsonl, ledger.jsonl, lock, inventory.json,
 * task_0001_c01.json, ...}.
 */
import { Schema } from "effect"
import { Usage } from "./llm.js"
import { noDatasetWritten } from "./noDataset.js"

export const RunStatus = Schema.Literal("running", "completed", "incomplete", "interrupted", "failed")

/** A one-entry-per-line file given as a plan input (`--personas`, `--subjects`): its content's hash, not its path. */
export const ListFileSettings = Schema.Struct({
  /** sha256 hex of the file's bytes. */
  sha256: Schema.String,
  entries: Schema.Number
})
export type ListFileSettings = typeof ListFileSettings.Type

/**
 * The diverse work plan of a generate run (issue 18): focus tool, task style, persona and subject per
 * sample, and near-duplicate control. Absent in runs made before it (their plan is domain and
 * complexity only, and `rebuild` still makes it).
 */
export const DiversitySettings = Schema.Struct({
  /** Where the domains come from: `--domains`, the bundled inventory's defaults, or the model's domains stage. */
  domains_from: Schema.Literal("flag", "bundled", "model"),
  /** `--personas FILE`; null: the built-in personas. */
  personas: Schema.NullOr(ListFileSettings),
  /** Subject seeds: the model's subjects stage, none, or `--subjects FILE`. */
  subjects: Schema.Union(Schema.Literal("model", "none"), ListFileSettings),
  /** `--near-dup`: the MinHash similarity at which a prompt counts as a near-duplicate (and identical plans); null: off. */
  near_dup: Schema.NullOr(Schema.Number)
})
export type DiversitySettings = typeof DiversitySettings.Type

/**
 * What makes a run's rows what they are: the settings `--resume` must find unchanged (a mismatch is a
 * usage error naming each differing setting; `--resume --force` continues with these, never a mix).
 * Settings that only change how fast or how far a session goes (concurrency, rate limits, budget,
 * attempts, timeouts) are not part of it.
 */
export class RunSettings extends Schema.Class<RunSettings>("RunSettings")({
  command: Schema.Literal("generate", "enrich"),
  model: Schema.String,
  /** responses | chat | batch (the Batch API, with its endpoint). */
  backend: Schema.String,
  reasoning_effort: Schema.String,
  /**
   * Where answers come from: "model" reads this run's requests (live or Batch API), "recorded" replays
   * answers recorded elsewhere (`--llm replay`), which cannot follow a request's asks (e.g. complexity).
   */
  answers: Schema.Literal("model", "recorded"),
  max_output_tokens: Schema.Number,
  seed: Schema.NullOr(Schema.Number),
  /** Samples planned: generate's N; enrich's rows to plan. */
  n: Schema.Number,
  domains: Schema.Array(Schema.String),
  complexities: Schema.Array(Schema.Struct({ complexity: Schema.String, weight: Schema.Number })),
  /** sha256 of the canonical JSON of the inventory the run plans with (after --servers); null: per-prompt tools. */
  inventory_sha256: Schema.NullOr(Schema.String),
  max_tools: Schema.Number,
  max_turns: Schema.Number,
  max_prompt_tokens: Schema.Number,
  /** The date of the prompts' `Today is` line (`--as-of`, default the run's start date). */
  as_of: Schema.String,
  data_source: Schema.String,
  /** generate: the diverse work plan's inputs (absent in runs made before issue 18, and for enrich). */
  diversity: Schema.optional(DiversitySettings),
  /** enrich: the input file and how it is read. */
  input: Schema.NullOr(Schema.Struct({
    path: Schema.String,
    sha256: Schema.String,
    format: Schema.String,
    limit: Schema.NullOr(Schema.Number),
    overwrite: Schema.Boolean,
    inventory_from_prompt: Schema.Boolean,
    /**
     * true: a source system message that lists no tool gets the offered tools added after its text (the
     * default). Absent: it is kept as it is (`--keep-system-message`, and runs made before the field
     * existed, whose fingerprint is unchanged).
     */
    list_offered_tools: Schema.optional(Schema.Literal(true)),
    /**
     * "checked": a tool a `<tools>` block lists with a schema other than the inventory's (params, required,
     * types, defaults, allowed values) is not offered to plan with (the default). Absent: listed tools are
     * matched by name only (`--allow-schema-mismatch`, and runs made before the field existed).
     */
    shown_schemas: Schema.optional(Schema.Literal("checked")),
    /**
     * "rejected": a row whose prompt would give its plan away (`prompt/plan-leak` against the inventory file,
     * e.g. a `<tools>` block that lists fewer than 3 tools besides the plan's) is not written: rejected before
     * planning when no plan could avoid it, its sample failed when the plan made does not, and a row with a plan
     * not copied (the default). Absent: such rows are written with a warning (`--allow-plan-leak`, and runs made
     * before the field existed, whose fingerprint is unchanged).
     */
    plan_leak: Schema.optional(Schema.Literal("rejected"))
  })),
  /**
   * `--verify`: each accepted task's plan runs on the live MCP servers before it counts, and the tools
   * allowed to run although not annotated read-only (`--allow-side-effects`: names sorted, or ["all"]).
   * Absent: no verification (and the fingerprint of such runs is what it was before the field existed).
   */
  verify: Schema.optional(Schema.Struct({ allow_side_effects: Schema.Array(Schema.String) })),
  /**
   * generate: a literal param value no prompt message states is sent back to the model as a repair
   * (`prompt/literal-not-shown` is an error at acceptance): a policy could only guess it.
   * "stated-v4": read as `PromptReading` "current" says (number words past twelve and a month with its year
   * state values). "stated-v3": a run made before those (the values a message's tool list shows state nothing),
   * judged again as it was ("until-2026-12-03"). "stated-outside-tool-lists": a run made on 2026-12-02 before
   * 04:00 UTC, and "stated": one made before 2026-12-02 (when the tool list stated values too), each judged
   * again as it was (`promptReadingOf`). Absent: a warning (`--allow-unstated-literals`, and runs made before
   * the field existed, which `rebuild` makes as they were).
   */
  literals: Schema.optional(Schema.Literal("stated", "stated-outside-tool-lists", "stated-v3", "stated-v4")),
  /**
   * generate: "repaired-v7", a user message that names a plan tool, holds the `<tool_call>` syntax or a step's
   * params as a dump (or a system message that singles out plan tools) is sent back to the model as a repair
   * (`prompt/user-names-tool` is an error at acceptance): it tells the policy the plan. "repaired-v6": a run made
   * before a Markdown-escaped name (`fmp\_get\_quote`), one written with HTML character references and a server's
   * name possessive before the words (`FMP's get quote`) counted and while JSON pasted as data was a params dump,
   * judged again as it was ("until-2026-12-05").
   * "repaired-v5": a run
   * made while a sentence's full stop joined a server's name to the words (`Use FMP. Get quote` named
   * `fmp_get_quote`) and a name one edit off with an invisible character in it (`fmp_get_\u200bqoute`) was none,
   * judged again as it was ("until-2026-12-03d"). "repaired-v4": a run
   * made before a name spelled letter by letter (`f m p _ g e t _ q u o t e`), percent-encoded
   * (`fmp%5Fget%5Fquote`), one edit off a long name (`fmp_get_qoute`) or written as its server's name, a colon
   * or slash and words (`FMP: get quote`) counted, judged again as it was ("until-2026-12-03c"). "repaired-v3": a run
   * made before a server-prefixed tool name written as words (`fmp get quote`) counted, judged again as it was
   * ("until-2026-12-03b"). "repaired-v2": a run made before look-alike letters, other dashes, invisible
   * separators, quoted dict keys and `key=value` counted, judged again as it was ("until-2026-12-03").
   * "repaired": a run made on 2026-12-02 before 04:00 UTC, judged again as it was (no namespace before a name,
   * the tag only as written: `promptReadingOf`). Absent: a
   * warning (`--allow-tool-names-in-prompt`, and runs made before 2026-12-02, which `rebuild` makes as they were).
   */
  user_leaks: Schema.optional(
    Schema.Literal(
      "repaired",
      "repaired-v2",
      "repaired-v3",
      "repaired-v4",
      "repaired-v5",
      "repaired-v6",
      "repaired-v7"
    )
  )
}) {}

/**
 * `plan_inputs.json` in a generate run's directory: the plan inputs that are not settings themselves —
 * the entries of `--personas` / `--subjects` files (the settings keep their hashes) and the answers of
 * the domains and subjects stages (cached: a resumed run, `rebuild` and `batch collect` reuse them).
 */
export const PlanInputs = Schema.Struct({
  personas: Schema.optional(Schema.Array(Schema.String)),
  subjects_file: Schema.optional(Schema.Array(Schema.String)),
  /** The domains stage's answer. */
  domains: Schema.optional(Schema.Array(Schema.String)),
  /** The subjects stage's answer, by domain. */
  subjects: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Array(Schema.String) })),
  /** Archive file of each stage's answer (relative to the run directory). */
  stages: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
})
export type PlanInputs = typeof PlanInputs.Type

export class RunManifest extends Schema.Class<RunManifest>("RunManifest")({
  run_id: Schema.String,
  command: Schema.String,
  status: RunStatus,
  output: Schema.String,
  /**
   * The run directory when the manifest was written (absent in manifests written before 2026-12-02): with
   * `output`, where the two lay relative to each other, so `--resume` knows the run after both moved.
   */
  run_dir: Schema.optional(Schema.String),
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
  elapsed_ms: Schema.Number,
  /** The settings that make the rows, and their hash (absent in manifests of older versions). */
  run_settings: Schema.optional(RunSettings),
  fingerprint: Schema.optional(Schema.String),
  /** The diversity report of the rows written (src/skyrl/diversity.ts), once the dataset is written. */
  diversity: Schema.optional(Schema.Unknown)
}) {}

/**
 * What a sample's next request steers off after its answer duplicated an accepted task (src/skyrl/
 * sampleBrief.ts renders it): the accepted task's prompt (an excerpt), tools and subjects.
 */
export const AvoidNote = Schema.Struct({
  prompt: Schema.String,
  tools: Schema.Array(Schema.String),
  subjects: Schema.optional(Schema.Array(Schema.String)),
  kind: Schema.Literal("near-prompt", "plan")
})
export type AvoidNote = typeof AvoidNote.Type

/** One rejected attempt of a sample (also written to the rejects file). */
export const RejectRecord = Schema.Struct({
  index: Schema.Number,
  attempt: Schema.Number,
  reasons: Schema.Array(Schema.String),
  raw_output_path: Schema.NullOr(Schema.String),
  /** Rejected as a duplicate of an accepted task: what the sample's next request names to avoid. */
  avoid: Schema.optional(AvoidNote)
})
export type RejectRecord = typeof RejectRecord.Type

/**
 * A journal line: written (append + fsync) as soon as a sample is finished — `row` (accepted), `failed`
 * (its attempts used up) or `stopped` (the run stopped before it was done: budget, a run-level error, an
 * archive write that failed). The latest line of a sample is what counts; a row line is never followed by
 * another line of the same sample.
 */
export const JournalEntry = Schema.Struct({
  index: Schema.Number,
  status: Schema.Literal("row", "failed", "stopped"),
  /** The encoded (on-disk) row when status is "row". */
  row: Schema.optional(Schema.Unknown),
  attempts: Schema.Number,
  calls: Schema.Number,
  usage: Usage,
  rejects: Schema.Array(RejectRecord)
})
export type JournalEntry = typeof JournalEntry.Type

/**
 * A cost-ledger line: one per HTTP attempt (or batch answer) with its usage and price, appended as it
 * happens, across sessions and batch rounds; every summary and the manifest are computed from these.
 * `key` identifies the attempt (its archive file name), so a replayed answer is never counted twice.
 */
export const LedgerEntry = Schema.Struct({
  key: Schema.String,
  sample: Schema.Number,
  attempt: Schema.Number,
  purpose: Schema.String,
  status: Schema.String,
  model: Schema.String,
  /** Answered by the Batch API (half price). */
  batch: Schema.Boolean,
  /**
   * The batch whose output line this is (a batch answer's; absent for online calls and in ledgers written
   * before 2026-12-02): with the request key it names the line, so one line is counted once (CostLedger).
   */
  batch_id: Schema.optional(Schema.String),
  usage: Usage,
  cost_usd: Schema.NullOr(Schema.Number),
  at: Schema.String
})
export type LedgerEntry = typeof LedgerEntry.Type

/** The request key of a sample's call (replay, archive and batch answers join on it): `sample-000007[-a2][-repair]`. */
export const sampleKey = (index: number, attempt: number, purpose: "task" | "repair"): string =>
  `sample-${String(index).padStart(6, "0")}${attempt > 1 ? `-a${attempt}` : ""}${purpose === "repair" ? "-repair" : ""}`

/** The parts of a `sampleKey` (undefined for other keys). */
export const parseSampleKey = (
  key: string
): { readonly index: number; readonly attempt: number; readonly purpose: "task" | "repair" } | undefined => {
  const m = /^sample-(\d+)(?:-a(\d+))?(-repair)?$/.exec(key)
  return m === null
    ? undefined
    : {
      index: Number(m[1]),
      attempt: m[2] === undefined ? 1 : Number(m[2]),
      purpose: m[3] === undefined ? "task" : "repair"
    }
}

/** Another process holds the run directory's lock: nothing was spent (exit 1). */
export class RunLocked extends Schema.TaggedError<RunLocked>()("RunLocked", {
  runDir: Schema.String,
  holder: Schema.String
}) {
  override get message(): string {
    return `${this.runDir} is in use by another skyrl process (${this.holder}); ` +
      `wait for it to finish (if no such process runs, delete ${this.runDir}/lock)`
  }
}

/**
 * The run stopped before N valid rows: what was made is kept. With no row, no dataset is written (an empty one
 * never is) and an --out there is left as it was: `earlierOut` says whether one is there, and the message then says
 * it is an earlier run's, in the words `convert` and `enrich` use (src/programs/noDataset.ts). Without `earlierOut`
 * (not looked at), a run of no row says only that --out was not written.
 */
export class IncompleteRun extends Schema.TaggedError<IncompleteRun>()("IncompleteRun", {
  made: Schema.Number,
  requested: Schema.Number,
  reason: Schema.String,
  output: Schema.String,
  earlierOut: Schema.optional(Schema.Boolean),
  /** The run stopped on a signal (its calls in flight ended first): exit 130 (SIGINT) or 143 (SIGTERM). */
  signal: Schema.optional(Schema.Literal("SIGINT", "SIGTERM"))
}) {
  get exitCode(): number {
    return this.signal === "SIGINT" ? 130 : this.signal === "SIGTERM" ? 143 : 1
  }
  override get message(): string {
    if (this.made === 0 && this.earlierOut !== undefined) {
      return `made 0 of ${this.requested} valid rows: ${this.reason}; ` +
        noDatasetWritten(this.output, this.earlierOut, "this run")
    }
    const where = this.made === 0 ? `${this.output} not written` : `kept in ${this.output}`
    return `made ${this.made} of ${this.requested} valid rows (${where}): ${this.reason}`
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
