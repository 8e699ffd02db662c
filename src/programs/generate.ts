/**
 * `generate`: ask the model for tasks across domains and complexities (the work plan from the seed),
 * through the run engine (src/programs/sampling.ts).
 */
import { Effect } from "effect"
import type { Inventory as Catalogue } from "../domain/inventory.js"
import type { RunSettings } from "../domain/run.js"
import type { Complexity, ModelTask } from "../domain/task.js"
import { COMPLEXITY_CALLS, complexityOf } from "../domain/task.js"
import { Inventory } from "../services/Inventory.js"
import { renderInstructions, renderSampleRequest } from "../skyrl/generationPrompt.js"
import type { PlanStep } from "../skyrl/planValidation.js"
import type { PlannedSample } from "../skyrl/workPlan.js"
import { workPlan } from "../skyrl/workPlan.js"
import { modelTaskFields } from "./runFiles.js"
import type { SamplingOptions } from "./sampling.js"
import { runSampling } from "./sampling.js"
import { checkWrittenDataset } from "./validate.js"

export interface GenerateOptions extends
  Omit<
    SamplingOptions<PlannedSample>,
    "command" | "jobs" | "instructions" | "requestText" | "taskInput" | "jobMetadata" | "seed"
  >
{
  readonly plan: ReadonlyArray<PlannedSample>
  readonly seed: number
}

/** The work plan a generate run's settings describe (same settings, same samples). */
export const generatePlan = (settings: RunSettings): ReadonlyArray<PlannedSample> =>
  workPlan(
    settings.seed ?? 0,
    settings.n,
    settings.domains,
    settings.complexities.map((c) => ({ complexity: c.complexity as Complexity, weight: c.weight }))
  )

/**
 * The task handed to conversion: the model's fields, turns clamped to what the plan and the run allow,
 * and the task id made unique within the run by the sample number (models reuse slugs).
 */
export const generatedTaskInput =
  (maxTurns: number) => (job: PlannedSample, task: ModelTask, steps: ReadonlyArray<PlanStep>) => ({
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

/** The engine options of a generate run (shared by the online run, `--backend batch` and rebuild). */
export const generateSampling = (options: GenerateOptions, catalogue: Catalogue): SamplingOptions<PlannedSample> => ({
  ...options,
  command: "generate",
  jobs: options.plan,
  instructions: renderInstructions(catalogue, {
    maxTools: options.maxTools,
    maxTurns: options.maxTurns,
    asOf: options.runSettings.as_of
  }),
  requestText: (job, attempt) =>
    renderSampleRequest({
      index: job.index,
      total: options.plan.length,
      domain: job.domain,
      complexity: job.complexity,
      attempt
    }),
  taskInput: generatedTaskInput(options.maxTurns),
  jobPlanIssues: options.runSettings.answers === "model" ? requestedComplexityIssues : undefined,
  jobMetadata: (job) => ({ requested_complexity: job.complexity, requested_domain: job.domain }),
  maxPromptTokens: options.runSettings.max_prompt_tokens
})

export const generateProgram = (options: GenerateOptions) =>
  Effect.gen(function*() {
    const inventory = yield* Inventory
    const catalogue = yield* inventory.get
    const summary = yield* runSampling(generateSampling(options, catalogue))
    // The same checks as `skyrl validate` on what was written: violations fail the run (the file is kept).
    yield* checkWrittenDataset(options.out, catalogue, { maxPromptTokens: options.runSettings.max_prompt_tokens })
    return summary
  })
