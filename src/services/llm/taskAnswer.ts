/**
 * A model's task answer (`ModelTask`, the output Schema every generate and enrich request sends) decoded
 * by hand: what `ParseResult.decodeUnknownEither(ModelTask)(value, { onExcessProperty: "ignore" })` makes
 * of an answer it accepts (new objects with the Schema's keys in its order, extra keys dropped, missing
 * provenance lists defaulted to `[]`), built directly, since it runs once per answer (~10× cheaper than the
 * Schema's walk). Anything unusual (a wrong type, a missing field, a `__proto__` key) is declined
 * (`undefined`) and decoded by the Schema, which names the problems. test/taskAnswer.test.ts holds the
 * two equal, key order included.
 */
import { isObject } from "../../domain/json.js"
import type { ModelStep, ModelTask } from "../../domain/task.js"

type Obj = Record<string, unknown>

const strings = (u: unknown): Array<string> | undefined => {
  if (!Array.isArray(u)) return undefined
  for (const s of u) if (typeof s !== "string") return undefined
  return u.slice()
}

const ints = (u: unknown): Array<number> | undefined => {
  if (!Array.isArray(u)) return undefined
  for (const n of u) if (typeof n !== "number" || !Number.isSafeInteger(n)) return undefined
  return u.slice()
}

/** An optional provenance list: absent or undefined → `[]`. */
const listOr = <T>(u: unknown, read: (u: unknown) => Array<T> | undefined): Array<T> | undefined =>
  u === undefined ? [] : read(u)

const step = (u: unknown): ModelStep | undefined => {
  if (!isObject(u) || typeof u.server !== "string" || typeof u.tool !== "string") return undefined
  let params: string | Obj
  if (typeof u.params === "string") params = u.params
  else if (isObject(u.params) && !Object.hasOwn(u.params, "__proto__")) params = { ...u.params }
  else return undefined
  const depends_on = listOr(u.depends_on, ints)
  const derived_params = listOr(u.derived_params, strings)
  if (depends_on === undefined || derived_params === undefined) return undefined
  return { server: u.server, tool: u.tool, params, depends_on, derived_params }
}

const criterion = (u: unknown) =>
  isObject(u) && typeof u.name === "string" && typeof u.description === "string" && typeof u.scoring === "string"
    ? { name: u.name, description: u.description, scoring: u.scoring }
    : undefined

/** `ModelTask` decoded by hand, or undefined when the Schema must judge it. */
export const decodeModelTaskByHand = (u: unknown): ModelTask | undefined => {
  if (!isObject(u)) return undefined
  const { complexity, max_turns: turns, tool_sequence: seq, evaluation_rubric: rubric } = u
  if (
    typeof u.task_id !== "string" || typeof u.user_prompt !== "string" || typeof u.domain !== "string" ||
    (complexity !== "simple" && complexity !== "moderate" && complexity !== "complex") ||
    typeof turns !== "number" || !Number.isSafeInteger(turns) || !Array.isArray(seq) || !isObject(rubric) ||
    typeof rubric.name !== "string" || !Array.isArray(rubric.criteria)
  ) return undefined
  const assumptions = strings(u.assumptions)
  if (assumptions === undefined) return undefined
  const steps: Array<ModelStep> = []
  for (const s of seq) {
    const decoded = step(s)
    if (decoded === undefined) return undefined
    steps.push(decoded)
  }
  const criteria: Array<{ name: string; description: string; scoring: string }> = []
  for (const c of rubric.criteria) {
    const decoded = criterion(c)
    if (decoded === undefined) return undefined
    criteria.push(decoded)
  }
  return {
    task_id: u.task_id,
    user_prompt: u.user_prompt,
    complexity,
    domain: u.domain,
    assumptions,
    max_turns: turns,
    tool_sequence: steps,
    evaluation_rubric: { name: rubric.name, criteria }
  }
}
