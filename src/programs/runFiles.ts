/**
 * Small pure helpers of runs (shared by generate, enrich, rebuild and batch): run ids, the plan checks
 * beyond the schema, turn clamping. Run-directory names live with the run journal (services/RunJournal.ts).
 */
import type { StepIssue } from "../domain/inventory.js"
import type { ModelTask } from "../domain/task.js"
import type { PlanStep } from "../skyrl/planValidation.js"
import { placeholdersOf } from "../skyrl/planValidation.js"

/** A run id from the start time: sortable, unique enough with a random suffix. */
export const makeRunId = (now: Date, random: string): string =>
  `${now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}-${random}`

export interface PlanProblem {
  readonly text: string
  readonly issue: StepIssue
}

/**
 * Plan checks beyond the schema: the inventory validation, the call budget, placeholder values (in literal
 * params only: a derived param's value is illustrative).
 */
export const planIssues = (
  steps: ReadonlyArray<PlanStep>,
  limits: { readonly maxTools: number },
  validate: (steps: ReadonlyArray<PlanStep>) => ReadonlyArray<StepIssue>
): ReadonlyArray<PlanProblem> => {
  const issues: Array<StepIssue> = [...validate(steps)]
  if (steps.length > limits.maxTools) {
    issues.push({
      step: steps.length,
      server: "",
      tool: "",
      path: "tool_sequence",
      message: `the plan has ${steps.length} calls; at most ${limits.maxTools} are allowed`
    })
  }
  for (const step of steps) {
    for (const { path: at } of placeholdersOf(step)) {
      issues.push({
        step: step.step,
        server: step.server,
        tool: step.tool,
        path: at,
        message: "is a placeholder; use a concrete, realistic value"
      })
    }
  }
  return issues.map((issue) => ({
    issue,
    text: `step ${issue.step}${issue.tool === "" ? "" : ` (${issue.tool})`} ${issue.path}: ${issue.message}`
  }))
}

/** A task's turns: at least one more than its plan has calls, at most what the run allows. */
export const clampTurns = (modelTurns: number, steps: number, maxTurns: number): number =>
  Math.min(Math.max(modelTurns, steps + 1), maxTurns)

/** The fields of a model's task that conversion takes as they are (turns clamped to the plan and the run). */
export const modelTaskFields = (
  task: ModelTask,
  steps: ReadonlyArray<PlanStep>,
  maxTurns: number
) => ({
  complexity: task.complexity,
  max_turns: clampTurns(task.max_turns, steps.length, maxTurns),
  domain: task.domain,
  assumptions: task.assumptions,
  tool_sequence: steps,
  evaluation_rubric: task.evaluation_rubric
})
