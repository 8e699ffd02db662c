/** Names and small pure helpers of a run directory (shared by generate, enrich and rebuild). */
import * as path from "node:path"
import { gzipSync } from "node:zlib"
import type { Inventory, StepIssue } from "../domain/inventory.js"
import type { PlanStep } from "../skyrl/planValidation.js"
import { literalParams } from "../skyrl/planValidation.js"

export interface RunPaths {
  readonly runDir: string
  readonly manifest: string
  readonly journal: string
}

export const runPaths = (rawDir: string, runId: string): RunPaths => {
  const runDir = path.join(rawDir, runId)
  return { runDir, manifest: path.join(runDir, "manifest.json"), journal: path.join(runDir, "journal.jsonl") }
}

/** `task_0007_c02.json`: sample 7 (1-based), its second model call. */
export const archiveFileName = (index: number, call: number, total: number, gzip: boolean): string => {
  const width = Math.max(4, String(total).length)
  return `task_${String(index + 1).padStart(width, "0")}_c${String(call).padStart(2, "0")}.json${gzip ? ".gz" : ""}`
}

export const encodeArchive = (record: Readonly<Record<string, unknown>>, gzip: boolean): string | Uint8Array => {
  const text = JSON.stringify(record, null, 2) + "\n"
  return gzip ? gzipSync(text) : text
}

/** A run id from the start time: sortable, unique enough with a random suffix. */
export const makeRunId = (now: Date, random: string): string =>
  `${now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}-${random}`

const PLACEHOLDER = /<[a-z_ -]+>|\$\{[^}]*\}|\{\{[^}]*\}\}|\bTBD\b|\bfrom (the )?(previous )?step \d+\b/i

/** Finds placeholder values ("<ticker>", "${x}", "TBD") anywhere in params. */
const placeholders = (value: unknown, at: string): Array<string> => {
  if (typeof value === "string") return PLACEHOLDER.test(value) ? [at] : []
  if (Array.isArray(value)) return value.flatMap((v, i) => placeholders(v, `${at}/${i}`))
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => placeholders(v, `${at}/${k}`))
  }
  return []
}

export interface PlanProblem {
  readonly text: string
  readonly issue: StepIssue
}

/**
 * Plan checks beyond the schema: the inventory validation, the call budget, placeholder values (in literal
 * params only: a derived param's value is illustrative).
 */
export const planIssues = (
  inventory: Inventory,
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
    for (const at of placeholders(literalParams(step), "params")) {
      issues.push({
        step: step.step,
        server: step.server,
        tool: step.tool,
        path: at,
        message: "is a placeholder; use a concrete, realistic value"
      })
    }
  }
  void inventory
  return issues.map((issue) => ({
    issue,
    text: `step ${issue.step}${issue.tool === "" ? "" : ` (${issue.tool})`} ${issue.path}: ${issue.message}`
  }))
}

/** A task's turns: at least one more than its plan has calls, at most what the run allows. */
export const clampTurns = (modelTurns: number, steps: number, maxTurns: number): number =>
  Math.min(Math.max(modelTurns, steps + 1), maxTurns)
