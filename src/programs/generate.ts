/**
 * `generate`: ask the model for tasks across domains and complexities, each sample with its own focus
 * tool, task style, persona and subject (the work plan from the seed), through the run engine
 * (src/programs/sampling.ts).
 */
import { Effect } from "effect"
import type { Inventory as Catalogue } from "../domain/inventory.js"
import type { PlanInputs, RejectRecord, RunSettings } from "../domain/run.js"
import type { Complexity, ModelTask } from "../domain/task.js"
import { COMPLEXITY_CALLS, complexityOf } from "../domain/task.js"
import { Inventory } from "../services/Inventory.js"
import type { FocusTool } from "../skyrl/focusTools.js"
import { focusToolMissing, focusTools } from "../skyrl/focusTools.js"
import { renderInstructions, renderSampleRequest } from "../skyrl/generationPrompt.js"
import { DEFAULT_PERSONAS, TASK_STYLES } from "../skyrl/personas.js"
import type { TaskStyle } from "../skyrl/personas.js"
import type { PlanStep } from "../skyrl/planValidation.js"
import type { PromptReading } from "../skyrl/promptReading.js"
import { allocateSubjectsOf } from "../skyrl/subjects.js"
import { mayRun, parseAllowList } from "../skyrl/verification.js"
import type { PlannedSample } from "../skyrl/workPlan.js"
import { diverseWorkPlan, planDiverseSample, planSample } from "../skyrl/workPlan.js"
import { modelTaskFields } from "./runFiles.js"
import type { SamplingOptions } from "./sampling.js"
import { runSampling } from "./sampling.js"
import { checksAsWritten } from "./validate.js"

/**
 * One sample of a generate run. Runs made before issue 18 plan domain and complexity only; a diverse
 * plan adds the focus tool, style, persona and the subjects of its first attempts.
 */
export interface GenerateJob extends PlannedSample {
  readonly focus?: FocusTool
  readonly style?: TaskStyle
  readonly persona?: string
  /** Attempt a's subject is `subjects[(a - 1) % subjects.length]` (no subject when empty). */
  readonly subjects?: ReadonlyArray<string>
}

/** Subjects kept per sample: its first attempts get distinct ones (spares of the pool), later ones cycle. */
export const SUBJECT_ATTEMPTS = 4

export interface GenerateOptions extends
  Omit<
    SamplingOptions<GenerateJob>,
    "command" | "jobs" | "instructions" | "requestText" | "taskInput" | "jobMetadata" | "seed"
  >
{
  readonly plan: ReadonlyArray<GenerateJob>
  readonly seed: number
}

/** The domains a run plans with: its settings', or the domains stage's answer (undefined: not answered yet). */
export const planDomains = (settings: RunSettings, inputs: PlanInputs): ReadonlyArray<string> | undefined =>
  settings.diversity?.domains_from === "model" ? inputs.domains : settings.domains

/**
 * A work plan made sample by sample: `at(i)` is sample i (0 ≤ i < length), made when asked for and not
 * kept, and `jobs()` goes through all of them in index order. A dry run of a million samples holds none.
 */
export interface LazyPlan {
  readonly length: number
  readonly at: (index: number) => GenerateJob
  readonly jobs: () => IterableIterator<GenerateJob>
}

const lazyPlanOf = (length: number, at: (index: number) => GenerateJob): LazyPlan => ({
  length,
  at,
  jobs: function*() {
    for (let i = 0; i < length; i++) yield at(i)
  }
})

/**
 * The work plan a generate run's settings describe, over the catalogue it plans with and its plan
 * inputs (plan_inputs.json: file entries, stage answers): same inputs, same samples, each made when asked
 * for (`generatePlan` holds them all). Throws when the domains stage has not answered yet (callers run
 * the stages first).
 */
export const lazyGeneratePlan = (
  settings: RunSettings,
  catalogue: Catalogue,
  inputs: PlanInputs = {}
): LazyPlan => {
  const seed = settings.seed ?? 0
  const n = settings.n
  const complexities = settings.complexities.map((c) => ({
    complexity: c.complexity as Complexity,
    weight: c.weight
  }))
  if (settings.diversity === undefined) {
    return lazyPlanOf(n, (i) => planSample(seed, i, settings.domains, complexities))
  }
  const domains = planDomains(settings, inputs)
  if (domains === undefined || domains.length === 0) throw new Error("generatePlan: the domains stage has not answered")
  const axes = {
    tools: focusToolsOf(settings, catalogue),
    styles: TASK_STYLES,
    personas: inputs.personas ?? DEFAULT_PERSONAS
  }
  // The axes checked as diverseWorkPlan checks them (throws on an empty one).
  diverseWorkPlan(seed, 0, domains, complexities, axes)
  const subjects = allocateSubjectsOf(
    seed,
    n,
    (i) => planSample(seed, i, domains, complexities).domain,
    { byDomain: inputs.subjects, shared: inputs.subjects_file }
  )
  return lazyPlanOf(n, (i) => ({
    ...planDiverseSample(seed, i, domains, complexities, axes),
    subjects: Array.from({ length: SUBJECT_ATTEMPTS }, (_, a) => subjects.subjectFor(i, a + 1))
      .filter((x): x is string => x !== undefined)
  }))
}

/** The whole work plan of `lazyGeneratePlan`, every sample held (what the run engine plans with). */
export const generatePlan = (
  settings: RunSettings,
  catalogue: Catalogue,
  inputs: PlanInputs = {}
): ReadonlyArray<GenerateJob> => {
  const plan = lazyGeneratePlan(settings, catalogue, inputs)
  return Array.from({ length: plan.length }, (_, i) => plan.at(i))
}

/**
 * The tools the plan hands out as focus tools: every tool of the catalogue; with --verify only those
 * verification may run (annotated read-only, or allowed by --allow-side-effects), since a plan built
 * around any other is never executed and so never accepted. Every tool when none may run (the
 * verification then names the reason).
 */
export const focusToolsOf = (settings: RunSettings, catalogue: Catalogue): ReadonlyArray<FocusTool> => {
  const all = focusTools(catalogue)
  if (settings.verify === undefined) return all
  const allow = parseAllowList(settings.verify.allow_side_effects.join(","))
  const runnable = all.filter((t) => mayRun(catalogue, t.server, t.tool, allow))
  return runnable.length > 0 ? runnable : all
}

/** The subject a job's attempt is about (none without subjects). */
export const subjectOf = (job: GenerateJob, attempt: number): string | undefined =>
  job.subjects === undefined || job.subjects.length === 0
    ? undefined
    : job.subjects[(attempt - 1) % job.subjects.length]

/**
 * The user message of a job's attempt: domain, complexity and the job's brief, and after rejections
 * that duplicated accepted tasks, what to avoid (from the sample's own rejects in this session, which
 * the engine rebuilds the same way when it replays a run).
 */
export const generateRequest =
  (total: number) => (job: GenerateJob, attempt: number, history: ReadonlyArray<RejectRecord> = []): string =>
    renderSampleRequest({
      index: job.index,
      total,
      domain: job.domain,
      complexity: job.complexity,
      attempt,
      brief: {
        focus: job.focus,
        style: job.style,
        persona: job.persona,
        subject: subjectOf(job, attempt),
        avoid: history.flatMap((r) => (r.avoid === undefined ? [] : [r.avoid]))
      }
    })

/**
 * The task handed to conversion: the model's fields, turns clamped to what the plan and the run allow,
 * and the task id made unique within the run by the sample number (models reuse slugs).
 */
export const generatedTaskInput =
  (maxTurns: number) => (job: GenerateJob, task: ModelTask, steps: ReadonlyArray<PlanStep>) => ({
    task_id: `${task.task_id.trim() || "task"}-${String(job.index + 1).padStart(4, "0")}`,
    user_prompt: task.user_prompt,
    ...modelTaskFields(task, steps, maxTurns)
  })

/** The plan must have the calls its requested complexity stands for (a recorded answer cannot follow this). */
export const requestedComplexityIssues = (job: PlannedSample, steps: ReadonlyArray<PlanStep>): ReadonlyArray<string> =>
  complexityOf(steps.length) === job.complexity ? [] : [
    `the request asked for a ${job.complexity} task (${COMPLEXITY_CALLS[job.complexity]}) but the plan has ` +
    `${steps.length} call${steps.length === 1 ? "" : "s"}: write a ${job.complexity} task and label it so`
  ]

/** What a job's request asks of its plan: the requested complexity, and a call of its focus tool. */
export const requestedPlanIssues = (job: GenerateJob, steps: ReadonlyArray<PlanStep>): ReadonlyArray<string> => {
  const focus = job.focus === undefined ? undefined : focusToolMissing(steps, job.focus)
  return [...requestedComplexityIssues(job, steps), ...(focus === undefined ? [] : [focus])]
}

/** What a row records of its request (besides the sample index and attempt). */
export const generateMetadata = (job: GenerateJob, attempt: number): Readonly<Record<string, unknown>> => {
  const subject = subjectOf(job, attempt)
  return {
    requested_complexity: job.complexity,
    requested_domain: job.domain,
    ...(job.focus === undefined ? {} : { requested_focus_tool: `${job.focus.server}/${job.focus.tool}` }),
    ...(job.style === undefined ? {} : { requested_style: job.style.name }),
    ...(job.persona === undefined ? {} : { requested_persona: job.persona }),
    ...(subject === undefined ? {} : { requested_subject: subject })
  }
}

/** The engine options of a generate run (shared by the online run, `--backend batch` and rebuild). */
export const generateSampling = (options: GenerateOptions, catalogue: Catalogue): SamplingOptions<GenerateJob> => ({
  ...options,
  command: "generate",
  jobs: options.plan,
  instructions: renderInstructions(catalogue, {
    maxTools: options.maxTools,
    maxTurns: options.maxTurns,
    asOf: options.runSettings.as_of
  }),
  requestText: generateRequest(options.plan.length),
  taskInput: generatedTaskInput(options.maxTurns),
  // A model reads the request; recorded answers (--llm replay) cannot follow it.
  jobPlanIssues: options.runSettings.answers === "model" ? requestedPlanIssues : undefined,
  jobMetadata: generateMetadata,
  maxPromptTokens: options.runSettings.max_prompt_tokens,
  nearDuplicates: nearDuplicatesOf(options.runSettings),
  // The model wrote the prompt: it can state a value its plan fixes (or mark the param derived), and ask
  // for the result without naming the tools.
  errorRules: [
    ...(options.runSettings.literals === undefined ? [] : ["prompt/literal-not-shown"]),
    ...(options.runSettings.user_leaks === undefined ? [] : ["prompt/user-names-tool"])
  ],
  promptReading: promptReadingOf(options.runSettings)
})

/**
 * How a generate run reads the values its prompts state and the leaks of its user messages: a run keeps the
 * reading it was judged by (so `rebuild` and `--resume --force` judge its answers as it did): recorded with
 * `literals: "stated"`, made before 2026-12-02; with `literals: "stated-outside-tool-lists"` or `user_leaks:
 * "repaired"`, made on 2026-12-02 before 04:00 UTC; with `literals: "stated-v3"` or `user_leaks: "repaired-v2"`,
 * made before number words past twelve, months with their year and the wider leak reading; with `user_leaks:
 * "repaired-v3"`, made before a server-prefixed tool name written as words counted; with `user_leaks:
 * "repaired-v4"`, made before a name spelled letter by letter, percent-encoded, one edit off or after its server's
 * name and a colon counted; with `user_leaks: "repaired-v5"`, made while a sentence's full stop joined a server's
 * name to the words and an invisible character hid a name one edit off; with `user_leaks: "repaired-v6"`, made
 * before a Markdown-escaped name, character references and a possessive server's name counted
 * (src/skyrl/promptReading.ts). A setting
 * that is absent only warns: its reading changes no row.
 */
export const promptReadingOf = (settings: RunSettings): PromptReading =>
  settings.literals === "stated"
    ? "until-2026-12-01"
    : settings.literals === "stated-outside-tool-lists" || settings.user_leaks === "repaired"
    ? "until-2026-12-02"
    : settings.literals === "stated-v3" || settings.user_leaks === "repaired-v2"
    ? "until-2026-12-03"
    : settings.user_leaks === "repaired-v3"
    ? "until-2026-12-03b"
    : settings.user_leaks === "repaired-v4"
    ? "until-2026-12-03c"
    : settings.user_leaks === "repaired-v5"
    ? "until-2026-12-03d"
    : settings.user_leaks === "repaired-v6"
    ? "until-2026-12-05"
    : "current"

/**
 * Near-duplicate control of a run: `--near-dup` of a diverse run (null: off); runs made before it had
 * none (so `rebuild` makes their rows as they were).
 */
export const nearDuplicatesOf = (settings: RunSettings): { readonly threshold: number } | undefined => {
  const t = settings.diversity?.near_dup
  return t === undefined || t === null ? undefined : { threshold: t }
}

export const generateProgram = (options: GenerateOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const inventory = yield* Inventory
    const catalogue = yield* inventory.get
    // The same checks as `skyrl validate` on what was written, made as the file is written (Storage reads
    // it back and compares its bytes; a .parquet file is read back and checked): violations fail the run
    // (the file is kept).
    const checks = yield* checksAsWritten(options.out, catalogue, {
      maxPromptTokens: options.runSettings.max_prompt_tokens
    })
    const summary = yield* runSampling({ ...generateSampling(options, catalogue), inspectWritten: checks.inspect })
    yield* checks.settle
    return summary
  }))
