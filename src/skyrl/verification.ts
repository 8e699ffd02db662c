/**
 * Plan verification (pure parts): which steps may run (side effects are opt-in), how a run of a plan is
 * classified and recorded, the text a model gets back to repair a plan that failed, and the summary of
 * a `skyrl verify` run.
 *
 * Statuses: `verified` (every step answered without `isError` or a protocol error), `tool-error` (a step
 * answered with `isError`, or the server answered the call with a protocol error), `timeout`,
 * `server-unavailable`, `skipped-side-effect` (a step's tool is not annotated `readOnlyHint: true` and was
 * not allowed: nothing of the plan ran).
 */
import { Either, Schema } from "effect"
import type { Inventory } from "../domain/inventory.js"
import { findTool, isReadOnly } from "../domain/inventory.js"

export const STATUSES = [
  "verified",
  "tool-error",
  "timeout",
  "server-unavailable",
  "skipped-side-effect",
  "interrupted"
] as const
export type VerifyStatus = typeof STATUSES[number]
export type FailureStatus = Exclude<VerifyStatus, "verified">

/** One plan step as it runs: params as in the plan (derived params hold their illustrative values). */
export interface VerifyStep {
  readonly step: number
  readonly server: string
  readonly tool: string
  readonly params: Readonly<Record<string, unknown>>
  /** Names of params whose values come from earlier results (row field `derived_params`). */
  readonly derivedParams: ReadonlyArray<string>
  /** The steps whose results those come from (row field `depends_on`; none when not given). */
  readonly dependsOn?: ReadonlyArray<number> | undefined
}

/**
 * Plan steps as they run: decoded row steps, or a validated plan (`PlanStep`s) from the engine.
 * `derived_params` may be missing (rows made before the field existed): none then.
 */
export const toVerifySteps = (
  steps: ReadonlyArray<{
    readonly step: number
    readonly server: string
    readonly tool: string
    readonly params: unknown
    readonly derived_params?: ReadonlyArray<string> | undefined
    readonly depends_on?: ReadonlyArray<number> | undefined
  }>
): ReadonlyArray<VerifyStep> =>
  steps.map((s) => ({
    step: s.step,
    server: s.server,
    tool: s.tool,
    params: typeof s.params === "object" && s.params !== null ? s.params as Record<string, unknown> : {},
    derivedParams: s.derived_params ?? [],
    dependsOn: s.depends_on ?? []
  }))

/**
 * How deep a step's params may nest (objects and arrays). Deeper values overflow the stack of the
 * recursive code that hashes and sends them (canonical JSON, JSON.stringify: ~3,000 levels here;
 * MCPToolEnv's Python json and canonical_json fail beyond ~500); tool params need a few levels.
 */
export const MAX_PARAMS_DEPTH = 100

/**
 * A verified record's `derived_reading`: how its `derived_values_found` read the results (grounding.ts `Evidence`):
 * "json-leaves-4" since 2026-12-04 (late night), when a text that is a Python repr (`{'symbol': 'PLTR'}`) began to be
 * read a string or number at a time as JSON is; "json-leaves-3" an hour before, when the words after a line's JSON
 * began to be read again for more JSON (`{...} and {...} done`: both read apart); "json-leaves-2" that evening, when
 * a line of JSON up to a closing bracket with words after it began to be read apart; "json-leaves" that afternoon.
 * MCPToolEnv reads the older ones as they were.
 */
export const DERIVED_READING = "json-leaves-4"

/** What a verified plan keeps (in a row: `task_metadata.verification`). */
export const VerificationRecord = Schema.Struct({
  status: Schema.Literal("verified"),
  verified_at: Schema.String,
  /** Server name → `name@version` from its initialize answer (null when it gave none). */
  servers: Schema.Record({ key: Schema.String, value: Schema.NullOr(Schema.String) }),
  steps: Schema.Array(Schema.Struct({
    step: Schema.Number,
    server: Schema.String,
    tool: Schema.String,
    /** The cassette key of the call (callKey(server, tool, params)). */
    key: Schema.String,
    /** The call ran with derived params' illustrative values. */
    illustrative: Schema.Boolean,
    /**
     * Present on a step with derived params (records written since 2026-12-03): whether each of its derived
     * values occurs in the results of its `depends_on` steps (`derivedValuesFoundBySteps`). MCPToolEnv's
     * `ground_derived: "auto"` grounds the steps where it is true: on a row with a computed value on one step
     * and copied ones (ids, tickers) on others, the copied ones are held to the results.
     */
    derived_values_found: Schema.optional(Schema.Boolean),
    /**
     * Present (true) when the cassette store held this call's key already with another answer (records since
     * 2026-12-05): a stateful tool (server-memory's `open_nodes` after this row's `create_entities`, where an earlier
     * row read it empty) or a server that changed. Replay gives the stored answer, not the one this row verified
     * with; verify such rows into a store of their own (`--cassettes`) to keep theirs.
     */
    stored_answer_differs: Schema.optional(Schema.Literal(true))
  })),
  /**
   * Present when a step has derived params: whether each derived value occurs in the results of the step's
   * `depends_on` steps (`rowFound` of `derivedValuesFoundBySteps`): false when it is composed or computed from them, or an
   * illustration the tools did not give. The steps' own fields say which step; this one is every step's
   * (kept for readers of records written before those).
   */
  derived_values_found: Schema.optional(Schema.Boolean),
  /**
   * How the results were read for `derived_values_found` (records since 2026-12-04, beside it): "json-leaves-2" (or
   * "json-leaves", that afternoon's), a JSON result a string or number at a time (`Evidence` in grounding.ts).
   * MCPToolEnv grounds a record without it as it was found then: each result's text as a whole.
   */
  derived_reading: Schema.optional(Schema.Literal("json-leaves", DERIVED_READING))
})
export type VerificationRecord = typeof VerificationRecord.Type

/** A verified record, its fields in the order they are written. */
export const verifiedRecord = (
  verifiedAt: string,
  servers: VerificationRecord["servers"],
  steps: VerificationRecord["steps"],
  derivedFound?: boolean
): VerificationRecord =>
  derivedFound === undefined
    ? { status: "verified", verified_at: verifiedAt, servers, steps }
    : {
      status: "verified",
      verified_at: verifiedAt,
      servers,
      steps,
      derived_values_found: derivedFound,
      derived_reading: DERIVED_READING
    }

/**
 * A step's entry in a verified record: the cassette key of its call, whether it ran with illustrative values,
 * and (`found`, for a step with derived params) whether the results of its dependencies hold them.
 */
export const recordStep = (
  step: VerifyStep,
  key: string,
  found?: boolean,
  storedAnswerDiffers = false
): VerificationRecord["steps"][number] => ({
  step: step.step,
  server: step.server,
  tool: step.tool,
  key,
  illustrative: step.derivedParams.length > 0,
  ...(found === undefined ? {} : { derived_values_found: found }),
  ...(storedAnswerDiffers ? { stored_answer_differs: true } : {})
})

/** The entries of a verified record's steps with each one's `derived_values_found` (`found[i]`; none when undefined). */
export const withDerivedFound = (
  steps: VerificationRecord["steps"],
  found: ReadonlyArray<boolean | undefined>
): VerificationRecord["steps"] =>
  steps.map((s, i) => found[i] === undefined ? s : { ...s, derived_values_found: found[i]! })

/** Why a plan did not verify: the status, the step at fault (when one is), and the reason. */
export const FailureFields = Schema.Struct({
  status: Schema.Literal("tool-error", "timeout", "server-unavailable", "skipped-side-effect", "interrupted"),
  step: Schema.optional(Schema.Number),
  server: Schema.optional(Schema.String),
  tool: Schema.optional(Schema.String),
  reason: Schema.String,
  /**
   * A timeout or unavailable server after a step with side effects ran (or was in flight): that step's
   * number. Such an outcome is final: running the plan again would act twice.
   */
  sideEffectRan: Schema.optional(Schema.Number)
})
export type FailureFields = typeof FailureFields.Type

/** A plan that did not verify: the status, the step at fault (when one is), and the reason. */
export class VerificationFailed extends Schema.TaggedError<VerificationFailed>()(
  "VerificationFailed",
  FailureFields.fields
) {
  override get message(): string {
    const where = this.step === undefined ? "" : `step ${this.step} ${this.server}/${this.tool}: `
    return `${this.status}: ${where}${this.reason}`
  }
}

// ---------------------------------------------------------------------------------------------
// Side effects

/** `--allow-side-effects`: `all`, or tool names (`tool` or `server.tool`). */
export type AllowList = { readonly all: true } | { readonly all: false; readonly names: ReadonlySet<string> }

export const parseAllowList = (text: string | undefined): AllowList => {
  const names = (text ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")
  return names.includes("all") ? { all: true } : { all: false, names: new Set(names) }
}

/** The names of an allow list that match no tool of the inventory (`allowNamesOf`): typos. */
export const unknownAllowNames = (inventory: Inventory, allow: AllowList): ReadonlyArray<string> => {
  if (allow.all) return []
  const known = new Set(inventory.servers.flatMap((s) => s.tools.flatMap((t) => allowNamesOf(s.name, t.name))))
  return [...allow.names].filter((name) => !known.has(name))
}

/**
 * How `--allow-side-effects` names a tool: `server.tool`, and `tool` for a name without a dot. A plain
 * `mem.create_entities` named both server mem's create_entities and a tool so named on another server, which then
 * ran (MCPToolEnv's `allow_side_effects` reads names alike).
 */
const allowNamesOf = (server: string, tool: string): ReadonlyArray<string> =>
  tool.includes(".") ? [`${server}.${tool}`] : [tool, `${server}.${tool}`]

/** The name of a tool a message suggests for `--allow-side-effects` (`tool`, or `server.tool` for a dotted one). */
const allowNameOf = (step: VerifyStep): string => allowNamesOf(step.server, step.tool)[0]!

/** Whether `--allow-side-effects` names the tool (`allowNamesOf`, or `all`). */
export const allowed = (allow: AllowList, server: string, tool: string) =>
  allow.all || allow.names.has(`${server}.${tool}`) || (!tool.includes(".") && allow.names.has(tool))

/** Whether verification may run a tool: it is annotated read-only, or it was allowed. */
export const mayRun = (inventory: Inventory, server: string, tool: string, allow: AllowList): boolean => {
  const found = findTool(inventory, tool, server)
  return (found !== undefined && isReadOnly(found.tool)) || allowed(allow, server, tool)
}

/** Steps that may not run: their tool is not annotated read-only (or is unknown) and was not allowed. */
/**
 * Whether a step's tool has side effects by the inventory's annotations (not `readOnlyHint: true`); the set of
 * read-only tools is made once per call of this.
 */
export const sideEffectByInventory = (inventory: Inventory) => {
  const readOnly = new Set(
    inventory.servers.flatMap((server) => server.tools.filter(isReadOnly).map((t) => `${server.name}\u0000${t.name}`))
  )
  return (step: { readonly server: string; readonly tool: string }): boolean =>
    !readOnly.has(`${step.server}\u0000${step.tool}`)
}

export const blockedSteps = (
  inventory: Inventory,
  steps: ReadonlyArray<VerifyStep>,
  allow: AllowList
): ReadonlyArray<VerifyStep> => steps.filter((s) => !mayRun(inventory, s.server, s.tool, allow))

export const sideEffectFailure = (blocked: ReadonlyArray<VerifyStep>): VerificationFailed => {
  const [first, ...others] = blocked as readonly [VerifyStep, ...Array<VerifyStep>]
  // The message names the first step already (`step N server/tool: ...`): the reason names the others.
  const also = others.map((s) => `step ${s.step} ${s.server}/${s.tool}`).join(", ")
  const names = [...new Set(blocked.map(allowNameOf))].join(",")
  return new VerificationFailed({
    status: "skipped-side-effect",
    step: first.step,
    server: first.server,
    tool: first.tool,
    reason: `${also === "" ? "" : `(and ${also}) `}not annotated readOnlyHint: true, so ${
      others.length === 0 ? "it" : "they"
    } may change something; nothing of this plan ran (allow ${
      others.length === 0 ? "it" : "them"
    } with --allow-side-effects ${names})`
  })
}

/**
 * Steps whose tool the inventory annotates read-only but the live server's own tools/list does not (a stale
 * or hand-edited inventory): nothing of the plan runs. `listError`: why the server's tools/list failed.
 */
export const liveSideEffectFailure = (blocked: ReadonlyArray<VerifyStep>, listError?: string): VerificationFailed => {
  const [first, ...others] = blocked as readonly [VerifyStep, ...Array<VerifyStep>]
  const also = others.map((s) => `step ${s.step} ${s.server}/${s.tool}`).join(", ")
  const names = [...new Set(blocked.map(allowNameOf))].join(",")
  const [it, they] = others.length === 0 ? ["it", "it"] : ["them", "they"]
  const live = listError === undefined ? "does not" : `failed (${listError})`
  return new VerificationFailed({
    status: "skipped-side-effect",
    step: first.step,
    server: first.server,
    tool: first.tool,
    reason: `${also === "" ? "" : `(and ${also}) `}the inventory annotates ${it} readOnlyHint: true but the live ` +
      `server's tools/list ${live}, so ${they} may change something; nothing of this plan ran (allow ${it} with ` +
      `--allow-side-effects ${names})`
  })
}

/**
 * A step not sent because the session it was to go on does not list its tool read-only (`NotListedReadOnly`: the
 * server restarted during the plan and lists otherwise now, or its tools/list failed), though the listing the
 * plan was checked against did: `skipped-side-effect`; only the read-only steps before it ran.
 */
export const notListedNowFailure = (step: VerifyStep, listError?: string): VerificationFailed =>
  new VerificationFailed({
    status: "skipped-side-effect",
    step: step.step,
    server: step.server,
    tool: step.tool,
    reason:
      `the live server's tools/list ${
        listError === undefined ? "does not annotate it" : `failed (${listError}) to annotate it`
      } readOnlyHint: true since the server restarted during the plan, so it may change something; it was not sent ` +
      `(allow it with --allow-side-effects ${allowNameOf(step)})`
  })

/**
 * A step whose tool the live server does not list at all (a stale inventory: renamed or removed since it was
 * imported): `tool-error`, as running it would be (the server answers that it has no such tool); nothing ran.
 */
export const liveMissingToolFailure = (step: VerifyStep): VerificationFailed =>
  new VerificationFailed({
    status: "tool-error",
    step: step.step,
    server: step.server,
    tool: step.tool,
    reason: `the live server's tools/list has no tool ${JSON.stringify(step.tool)}: the inventory is stale (see ` +
      "`skyrl tools import --check INV`); nothing of this plan ran"
  })

/**
 * What a journal records before a plan's first step with side effects is sent (`VerifyOptions.beforeSideEffect`):
 * the outcome the plan has if the run stops (killed, crashed) before the plan's own outcome is recorded after
 * it. Final (`sideEffectRan`): the step may have acted, and running the plan again would act twice.
 */
export const interruptedAt = (step: VerifyStep): FailureFields => ({
  status: "interrupted",
  step: step.step,
  server: step.server,
  tool: step.tool,
  reason: "the run stopped (killed or crashed) when this step, which has side effects, was being sent, before " +
    "the plan's outcome was recorded: it may have acted, so the plan is not run again (it would act twice); a " +
    "run without --resume runs it",
  sideEffectRan: step.step
})

// ---------------------------------------------------------------------------------------------
// Results

const MAX_ERROR_TEXT = 2000

/** The text of a result's content blocks (what a tool says when it fails), shortened. */
export const resultText = (content: ReadonlyArray<unknown>): string => {
  const text = content
    .map((b) =>
      typeof b === "object" && b !== null && (b as { type?: unknown }).type === "text"
        ? String((b as { text?: unknown }).text ?? "")
        : `[${String((b as { type?: unknown } | null)?.type ?? "content")}]`
    )
    .join("\n")
    .trim()
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}…` : text === "" ? "(no text)" : text
}

/**
 * The message sent back to a model whose plan failed when it ran: the step, the tool's own error text,
 * and what to change. Only `tool-error` is the model's to fix; the other statuses are not repairable.
 */
export const verificationRepairMessage = (failure: VerificationFailed): string =>
  [
    `Your plan is valid against the tools' schemas, but step ${
      failure.step ?? "?"
    } (${failure.server}/${failure.tool}) ` +
    "failed when it ran on the live server. The tool answered:",
    failure.reason,
    "Fix the plan so that every step runs: use values that exist (identifiers, paths, names, dates the tool " +
    "accepts), or create what a step reads in an earlier step. Reply with the whole corrected task."
  ].join("\n\n")

export const isRepairable = (failure: VerificationFailed): boolean => failure.status === "tool-error"

/** The fields of a failure, as journals keep them. */
export const failureFields = (f: VerificationFailed): FailureFields => ({
  status: f.status,
  ...(f.step === undefined ? {} : { step: f.step }),
  ...(f.server === undefined ? {} : { server: f.server }),
  ...(f.tool === undefined ? {} : { tool: f.tool }),
  reason: f.reason,
  ...(f.sideEffectRan === undefined ? {} : { sideEffectRan: f.sideEffectRan })
})

/**
 * Whether a run's outcome is final, so journals keep it and never run its plan again: verified, or a
 * tool error (timeouts, unavailable servers and skipped plans are tried again).
 */
export const isFinal = (outcome: Either.Either<VerificationRecord, VerificationFailed>): boolean =>
  Either.isRight(outcome) || outcome.left.status === "tool-error"

/**
 * `skyrl verify`'s journal also keeps a timeout or unavailable server after a step with side effects ran
 * (`sideEffectRan`): `--resume` does not run such a plan again, which would act twice.
 */
export const isFinalForResume = (outcome: Either.Either<VerificationRecord, VerificationFailed>): boolean =>
  Either.isRight(outcome) || failureStands(outcome.left)

/** A failure kept as it is: a tool error, or one after a step with side effects ran (`sideEffectRan`). */
const failureStands = (f: Pick<FailureFields, "status" | "sideEffectRan">): boolean =>
  f.status === "tool-error" || f.sideEffectRan !== undefined

type JournaledOutcome = {
  readonly record?: VerificationRecord | undefined
  readonly failure?: FailureFields | undefined
}

/** A verified record some of whose results the cassettes (`hasResult`) do not hold. */
const resultsMissing = (entry: JournaledOutcome, hasResult: (key: string) => boolean): boolean =>
  entry.record !== undefined && !entry.record.steps.every((s) => hasResult(s.key))

/**
 * Whether a journal's outcome stands without a new run: a tool error, a failure after a step with side
 * effects ran (`sideEffectRan`: running it again would act twice), or a verified record whose results
 * are all in the cassettes (`hasResult`). One whose results are missing (another cassette store, lines
 * lost in a crash) runs again, unless a step of it has side effects (`sideEffect`): running it again
 * would repeat them (a crash cannot lose its lines: such a plan waits for them before it counts), so it
 * stands, its results in the store it was verified with.
 */
export const outcomeStands = (
  entry: JournaledOutcome,
  hasResult: (key: string) => boolean,
  sideEffect: (step: { readonly server: string; readonly tool: string }) => boolean
): boolean =>
  entry.record !== undefined
    ? !resultsMissing(entry, hasResult) || entry.record.steps.some(sideEffect)
    : entry.failure !== undefined && failureStands(entry.failure)

/** How many of `entries` stand without their results in the cassettes: for their side effects only. */
export const standingElsewhere = (
  entries: Iterable<JournaledOutcome>,
  hasResult: (key: string) => boolean,
  sideEffect: (step: { readonly server: string; readonly tool: string }) => boolean
): number => {
  let n = 0
  for (const e of entries) if (resultsMissing(e, hasResult) && outcomeStands(e, hasResult, sideEffect)) n++
  return n
}

/** The warning for verified plans with side effects whose results another cassette store holds. */
export const resultsElsewhereWarning = (rows: number, store: string): string => {
  const [plans, have, their, they, were] = rows === 1
    ? ["plan", "has", "its", "it", "was"]
    : ["plans", "have", "their", "they", "were"]
  return `${rows} verified ${plans} with side effects ${have} results that the cassette store ${store} does not ` +
    `hold (verified with another --cassettes?): not run again, since ${their} tools would act twice; ${their} ` +
    `results are in the store ${they} ${were} verified with`
}

// ---------------------------------------------------------------------------------------------
// Summary of a `skyrl verify` run

export type Stage = "read" | "contract" | "schema" | "execution"

export interface VerifySummary {
  /** Rows that passed each stage: read (parsed) → contract (a row with a plan) → schema (plan valid) → execution. */
  readonly stages: Readonly<Record<"rows" | Stage, number>>
  readonly statuses: Readonly<Record<VerifyStatus, number>>
  /** `server/tool` → failure status → count. */
  readonly toolErrors: Readonly<Record<string, Readonly<Partial<Record<FailureStatus, number>>>>>
  /** Rows whose outcome came from the journal of an earlier run (--resume). */
  readonly resumed: number
  /** Rows the same as an earlier row of the run, whose outcome they took (their plan not run again). */
  readonly copies: number
  /**
   * Verified rows with a derived value no result before its step holds (`derived_values_found: false`): a
   * policy that copies the real value gets no cassette for its call, and MCPToolEnv's ground_derived does not
   * match the plan's value.
   */
  readonly derivedNotFound: number
}

/** Where a row's outcome came from: its plan ran, the journal of an earlier run, or an earlier copy of the row. */
export type OutcomeSource = "run" | "journal" | "copy"

export class SummaryCounter {
  private readonly stages = { rows: 0, read: 0, contract: 0, schema: 0, execution: 0 }
  private readonly statuses = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<VerifyStatus, number>
  private readonly toolErrors = new Map<string, Partial<Record<FailureStatus, number>>>()
  private resumed = 0
  private copies = 0
  private derivedNotFound = 0

  /** A row that stopped at `stage` (failed it), or passed every stage with a status. */
  add(
    outcome: {
      readonly passed: Stage | "none"
      readonly status?: VerifyStatus
      readonly failure?: VerificationFailed
      /** A verified row whose record says `derived_values_found: false`. */
      readonly derivedNotFound?: boolean
    },
    from: OutcomeSource = "run"
  ): void {
    this.stages.rows++
    const order: ReadonlyArray<Stage> = ["read", "contract", "schema", "execution"]
    const upTo = outcome.passed === "none" ? -1 : order.indexOf(outcome.passed)
    for (let i = 0; i <= upTo; i++) this.stages[order[i]!]++
    if (outcome.status !== undefined) this.statuses[outcome.status]++
    const f = outcome.failure
    if (f !== undefined && f.server !== undefined && f.tool !== undefined) {
      const id = `${f.server}/${f.tool}`
      const counts = this.toolErrors.get(id) ?? {}
      counts[f.status] = (counts[f.status] ?? 0) + 1
      this.toolErrors.set(id, counts)
    }
    if (from === "journal") this.resumed++
    if (from === "copy") this.copies++
    if (outcome.derivedNotFound === true) this.derivedNotFound++
  }

  summary(): VerifySummary {
    return {
      stages: { ...this.stages },
      statuses: { ...this.statuses },
      toolErrors: Object.fromEntries([...this.toolErrors].sort((a, b) => a[0].localeCompare(b[0]))),
      resumed: this.resumed,
      copies: this.copies,
      derivedNotFound: this.derivedNotFound
    }
  }
}

/**
 * The summary as text: the stage funnel, the statuses, the errors per tool. A dry run runs nothing: its execution
 * count is the rows the journal holds as verified (`--resume`), and says so.
 */
/**
 * The rows among the statuses whose outcome came from elsewhere, after a `;`: in parentheses after the last count
 * they read as that status's (`interrupted 0 (4 from the journal of an earlier run)`).
 */
const elsewhere = (s: VerifySummary): string => {
  const parts = [
    ...(s.resumed > 0 ? [`${s.resumed} from the journal of an earlier run`] : []),
    ...(s.copies > 0 ? [`${s.copies} the same as an earlier row of the run, not run again`] : [])
  ]
  return parts.length === 0 ? "" : `; of these rows, ${parts.join(", ")}`
}

export const formatSummary = (s: VerifySummary, dryRun = false): string => {
  const st = s.stages
  const lines = [
    `rows: ${st.rows} → read ${st.read} → contract ${st.contract} → schema ${st.schema} → execution ` +
    `(${dryRun ? "dry run: verified in the journal" : "verified"}) ${st.execution}`,
    `statuses: ${STATUSES.map((k) => `${k} ${s.statuses[k]}`).join(", ")}` + elsewhere(s)
  ]
  if (s.derivedNotFound > 0) {
    lines.push(
      `derived values: ${s.derivedNotFound} verified row(s) with a derived value no earlier result of the plan ` +
        "writes (derived_values_found: false): composed or computed from the results, or an illustration the " +
        "tools did not give"
    )
  }
  const tools = Object.entries(s.toolErrors)
  if (tools.length > 0) {
    lines.push("errors by tool:")
    const width = Math.max(...tools.map(([t]) => t.length))
    for (const [tool, counts] of tools) {
      lines.push(`  ${tool.padEnd(width)}  ${Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(", ")}`)
    }
  }
  return lines.join("\n")
}
