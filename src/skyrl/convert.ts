/**
 * The conversion from a model's task to a SkyRL row: pure, no Effect requirements.
 *
 * Rules (each tested in test/convert.test.ts):
 * - `user_prompt` (or `messages`) and a non-empty `tool_sequence` are required; a step needs `server`
 *   and `tool`, and `params` must be an object. Errors name the field.
 * - Prompt roles are normalized to `system` and `user` (`human` → user, `developer` → system, case and
 *   surrounding whitespace ignored); assistant/tool/other roles are an error, never dropped silently.
 *   Content is trimmed, empty content is rejected, exactly one user message, and it comes last.
 * - The generated system message offers the tools `selectPromptTools` picks (promptTools.ts: canonical
 *   inventory order, plan tools plus distractors within `maxPromptTokens`) under their call names, and a
 *   `Today is` line from `as_of`; steps are renumbered 1..n in plan order. A step's own `step` may be left out;
 *   given, it is a positive integer no other step carries (`stepNumberProblem`).
 * - A kept system message with its own `<tools>` block offers the inventory tools it names, with the plan's
 *   (`ownOffer`), as enrich narrows its inventory; without one, the whole inventory.
 * - Provenance: `depends_on` names earlier steps only, a step with derived params depends on something,
 *   derived params have a value in params (`provenanceIssues`).
 * - Defaults: complexity from the number of calls (`complexityOf`), `max_turns = max(steps + 2, 4)`,
 *   limits from the plan (distinct tools / servers), `success.must_call_tool` = the first step's call name.
 *   A given max_turns below steps + 1 (the prompt asks for one call per turn, and the answer takes a turn)
 *   is raised to steps + 1, the given value kept as metadata `max_turns_given`.
 * - The rubric goes to `reward_spec.ground_truth.rubric` (a task without one gets `derivedRubric`, metadata
 *   `rubric_source: "derived"`); metadata to `extra_info.task_metadata`.
 * - `env_class` is always MCPToolEnv; `data_source` is a setting (default synthetic/llm).
 */
import { Effect, Either, Schema } from "effect"
import { ConversionError } from "../domain/errors.js"
import type { InventoryTool } from "../domain/inventory.js"
import { findTool, Inventory, InventoryServer } from "../domain/inventory.js"
import { describeType, fieldsOtherThan, isObject, setOwn } from "../domain/json.js"
import type { TaskMetadata } from "../domain/row.js"
import type { AvailableTool, SystemPromptOrigin } from "../domain/row.js"
import {
  DEFAULT_DATA_SOURCE,
  ENV_CLASS,
  GroundTruth,
  REWARD_METHOD,
  RowCriterion,
  RowMessage,
  RowRubric,
  RowStep,
  SkyRLRow
} from "../domain/row.js"
import {
  COMPLEXITIES,
  complexityOf,
  isIsoDay,
  Limits,
  Rubric,
  RubricCriterion,
  Success,
  Task,
  ToolStep
} from "../domain/task.js"
import { canonicalJson, schemaHash } from "./canonical.js"
import { fnv1a32 } from "./hash32.js"
import { instance } from "./layout.js"
import { formatPath, parseIssues } from "./parseIssues.js"
import { literalParams, provenanceIssues } from "./planValidation.js"
import { renderSystemPrompt } from "./prompt.js"
import { chatPromptTokens, DEFAULT_MAX_PROMPT_TOKENS, textTokens } from "./promptTokens.js"
import { selectPromptTools } from "./promptTools.js"
import { findToolsBlock, listsTools, toolNamesOf } from "./sources.js"
import { loneSurrogateOf } from "./utf8.js"

export interface ConversionContext {
  /** `data_source` of the row (default synthetic/llm). */
  readonly dataSource?: string
  /**
   * The job's inventory: the tools a prompt may offer, in its canonical order, with their signatures and
   * schema hashes.
   */
  readonly inventory?: Inventory | undefined
  /** Provenance merged into `extra_info.task_metadata` (model, backend, run_id, seed, ...). */
  readonly metadata?: Partial<TaskMetadata> & Readonly<Record<string, unknown>>
  /** The task's fields skyrl does not read (`otherTaskFields`): kept as `task_metadata.task_fields`, last. */
  readonly taskFields?: Readonly<Record<string, unknown>> | undefined
  /** Token budget of the whole prompt (BPE, chat template; default DEFAULT_MAX_PROMPT_TOKENS). */
  readonly maxPromptTokens?: number | undefined
  /** The `as_of` date of every row (generate/enrich `--as-of`, convert `--as-of`), YYYY-MM-DD. */
  readonly asOf?: string | undefined
  /** The date of a task without `as_of` or `generated_at` (convert: the run's start date). */
  readonly today?: string | undefined
  /**
   * A given system message (`messages`) that lists no tool (`listsTools`): "keep" it byte for byte (the
   * default), or "add-tools": keep its text and add skyrl's protocol and tool lines after it (enrich).
   */
  readonly givenSystem?: GivenSystem | undefined
}

export type GivenSystem = "keep" | "add-tools"

/** The settings of a run that shape its rows' prompts (shared by generate, enrich, rebuild, batch). */
export interface RowSettings {
  readonly maxPromptTokens: number
  readonly asOf: string
  readonly givenSystem?: GivenSystem | undefined
}

/**
 * Row and task objects are built from values `decodeTask` already validated, so they skip re-validation
 * (it rebuilt the type side of every JSON-string field per call, ~250 µs a row): `trusted` is layout.ts's
 * `instance`, about 15 objects a row. Every command checks the rows it writes.
 */
const trusted = instance

const fail = (field: string, reason: string) => Either.left(new ConversionError({ field, reason }))

/**
 * Maps the historical answer shapes onto `Task` fields: `evaluation_rubric.rubric_name` → `name`,
 * `rubric` → `evaluation_rubric`, a `judge_rubric` of weights → one criterion per weight, a string
 * `assumptions` → a one-element list. Anything else is left for the Task schema to judge.
 */
export const normalizeTaskInput = (raw: Record<string, unknown>): Record<string, unknown> => {
  // Copied on the first change only: the usual shape has nothing to map (and is returned as it is).
  let out = raw
  const set = (key: string, value: unknown): void => {
    if (out === raw) out = { ...raw }
    out[key] = value
  }
  if (out.evaluation_rubric === undefined && isObject(out.rubric)) set("evaluation_rubric", out.rubric)
  if (isObject(out.evaluation_rubric)) {
    const r = out.evaluation_rubric
    if (r.name === undefined && typeof r.rubric_name === "string") {
      set("evaluation_rubric", { ...r, name: r.rubric_name })
    }
  }
  if (out.evaluation_rubric === undefined && isObject(out.judge_rubric) && isObject(out.judge_rubric.weights)) {
    const weights = Object.entries(out.judge_rubric.weights).filter(([, w]) => typeof w === "number" && w > 0)
    set("evaluation_rubric", {
      name: "judge_rubric",
      criteria: weights.map(([name, w]) => ({
        name,
        description: `Judge score for ${name.replace(/_/g, " ")}`,
        scoring: `0-1 scale, weight ${w}`
      }))
    })
  }
  if (typeof out.assumptions === "string") set("assumptions", out.assumptions.trim() === "" ? [] : [out.assumptions])
  return out
}

const decodeTaskSchema = Schema.decodeUnknownEither(Task)

const isString = (u: unknown): u is string => typeof u === "string"
const isTrimmedName = (u: unknown): u is string => typeof u === "string" && u !== "" && u.trim() === u
const isPositiveInt = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u) && u > 0
const optional = (u: unknown, ok: (u: unknown) => boolean) => u === undefined || ok(u)
const strings = (u: unknown): u is ReadonlyArray<string> => Array.isArray(u) && u.every(isString)
const COMPLEXITY_LABELS: ReadonlyArray<unknown> = COMPLEXITIES
const TASK_FIELDS = [
  "task_id",
  "user_prompt",
  "complexity",
  "max_turns",
  "limits",
  "domain",
  "assumptions",
  "tool_sequence",
  "success",
  "evaluation_rubric",
  "tools_available",
  "as_of",
  "generated_at"
] as const

const isStepInput = (s: unknown): s is Record<string, unknown> =>
  isObject(s) && isTrimmedName(s.server) && isTrimmedName(s.tool) && isObject(s.params) &&
  optional(s.depends_on, (d) => Array.isArray(d) && d.every((n) => typeof n === "number" && Number.isSafeInteger(n))) &&
  optional(s.derived_params, strings)

const isRubricInput = (r: unknown): r is { name: string; criteria: ReadonlyArray<Record<string, string>> } =>
  isObject(r) && isTrimmedName(r.name) && Array.isArray(r.criteria) && r.criteria.length > 0 &&
  r.criteria.every((c) => isObject(c) && isTrimmedName(c.name) && isString(c.description) && isString(c.scoring))

/**
 * The `Task` Schema's decoding (steps numbered in plan order), by hand, for tasks of the usual shape (no
 * `messages`, no undefined values): the same instances with the same values (test/convert.test.ts holds the
 * two equal); undefined when the task is of another shape or invalid, so the Schema decodes it and names
 * the problem. It copies no object it does not make (object spread here made V8 tenure a row's garbage).
 */
const decodeTaskByHand = (input: Record<string, unknown>): Task | undefined => {
  const t = input
  if (t.messages !== undefined || TASK_FIELDS.some((k) => k in t && t[k] === undefined)) return undefined
  const valid = optional(t.task_id, isString) && optional(t.user_prompt, isString) &&
    optional(t.complexity, (c) => COMPLEXITY_LABELS.includes(c)) && optional(t.max_turns, isPositiveInt) &&
    optional(t.limits, (l) => isObject(l) && isPositiveInt(l.max_tools) && isPositiveInt(l.max_servers)) &&
    optional(t.domain, isString) && optional(t.assumptions, strings) &&
    Array.isArray(t.tool_sequence) && t.tool_sequence.every(isStepInput) &&
    optional(t.success, (x) => isObject(x) && isTrimmedName(x.must_call_tool)) &&
    optional(t.evaluation_rubric, isRubricInput) && optional(t.tools_available, strings) &&
    optional(t.as_of, isString) && optional(t.generated_at, isString)
  if (!valid) return undefined
  const fields: Record<string, unknown> = {}
  for (const k of TASK_FIELDS) if (k in t) fields[k] = t[k]
  const limits = t.limits as Record<string, number> | undefined
  const success = t.success as Record<string, string> | undefined
  const rubric = t.evaluation_rubric as { name: string; criteria: ReadonlyArray<Record<string, string>> } | undefined
  if (limits !== undefined) {
    fields.limits = trusted(Limits, { max_tools: limits.max_tools!, max_servers: limits.max_servers! })
  }
  if (success !== undefined) fields.success = trusted(Success, { must_call_tool: success.must_call_tool! })
  if (rubric !== undefined) {
    fields.evaluation_rubric = trusted(Rubric, {
      name: rubric.name,
      criteria: rubric.criteria.map((c) =>
        trusted(RubricCriterion, { name: c.name!, description: c.description!, scoring: c.scoring! })
      ) as unknown as readonly [RubricCriterion, ...Array<RubricCriterion>]
    })
  }
  if (t.assumptions !== undefined) fields.assumptions = (t.assumptions as ReadonlyArray<string>).slice()
  if (t.tools_available !== undefined) fields.tools_available = (t.tools_available as ReadonlyArray<string>).slice()
  fields.tool_sequence = (t.tool_sequence as ReadonlyArray<Record<string, unknown>>).map((s, i) => {
    const step: { -readonly [K in keyof ToolStep]?: ToolStep[K] } = {
      step: i + 1,
      server: s.server as string,
      tool: s.tool as string,
      params: s.params as Record<string, unknown> // not copied: nothing changes a task's params
    }
    if (s.depends_on !== undefined) step.depends_on = (s.depends_on as ReadonlyArray<number>).slice()
    if (s.derived_params !== undefined) step.derived_params = (s.derived_params as ReadonlyArray<string>).slice()
    return trusted(ToolStep, step as ConstructorParameters<typeof ToolStep>[0])
  })
  return trusted(Task, fields as ConstructorParameters<typeof Task>[0])
}

/** A value as a message quotes it: a number or string as JSON writes it (a long string cut), else its type. */
const quoted = (u: unknown): string => {
  if (typeof u === "number" || typeof u === "boolean" || u === null) return String(u)
  if (typeof u !== "string") return describeType(u)
  return JSON.stringify(u.length > 40 ? `${u.slice(0, 40)}…` : u)
}

/**
 * A step's own `step` that is no step number, or a number two steps carry. A step may leave it out (steps are
 * renumbered 1..n in plan order), but one given names the step for `depends_on` (`renumberingConflict`), so a
 * number that is not a positive integer (`"abc"`, `0`, `1.5`), or one two steps share (which of them would a
 * `depends_on: [1]` mean?), is a mistake in the plan: before, it was passed over without a word.
 */
const stepNumberProblem = (steps: ReadonlyArray<Record<string, unknown>>) => {
  const seen = new Map<unknown, number>()
  for (const [i, s] of steps.entries()) {
    if (s.step === undefined) continue
    if (!isPositiveInt(s.step)) {
      return fail(
        `tool_sequence[${i}].step`,
        `must be a positive integer (the step's number: 1..n in plan order; or leave it out), got ${quoted(s.step)}`
      )
    }
    const first = seen.get(s.step)
    if (first !== undefined) {
      return fail(
        `tool_sequence[${i}].step`,
        `is ${s.step}, as is tool_sequence[${first}].step: each step has a number of its own (1..n in plan ` +
          "order), which depends_on names"
      )
    }
    seen.set(s.step, i)
  }
  return undefined
}

/**
 * A `depends_on` that renumbering the steps 1..n would point at another step: the steps carry distinct
 * numbers of their own, not 1..n in order (gaps, another order), and it names one of them that stands
 * elsewhere in the plan (steps 1, 3, 4, 5 with `depends_on: [3]`: the step numbered 3 is the plan's 2nd,
 * and step 3 after renumbering is the one numbered 4). Which step it means cannot be told, so the task is
 * refused; a `depends_on` that names no given number reads as plan positions, as before.
 */
const renumberingConflict = (steps: ReadonlyArray<Record<string, unknown>>) => {
  const numbers = steps.map((s) => s.step)
  if (numbers.every((n, i) => n === i + 1) || new Set(numbers).size !== numbers.length) return undefined
  // Numbered 1..n, but in another order than the list's (2, 1): the numbers say one order and the list, which
  // is the plan's, another. Renumbered, the plan ran in the list's order without a word.
  if (numbers.every((n) => typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= numbers.length)) {
    const i = numbers.findIndex((n, at) => n !== at + 1)
    return fail(
      `tool_sequence[${i}].step`,
      `is ${numbers[i]}, but the list holds it as step ${i + 1}: the steps' numbers (${
        numbers.join(", ")
      }) give another order than the list's, which is the plan's; list the steps in the order they run (or leave ` +
        "their `step` out)"
    )
  }
  for (const [i, s] of steps.entries()) {
    if (!Array.isArray(s.depends_on)) continue
    for (const d of s.depends_on) {
      const at = typeof d === "number" ? numbers.indexOf(d) : -1
      if (at === -1 || at + 1 === d) continue
      return fail(
        `tool_sequence[${i}].depends_on`,
        `names step ${d}, which is the plan's step ${at + 1} by the steps' own numbers (${
          numbers.join(", ")
        }) but step ${d} once they are renumbered 1..n in plan order: number the steps 1..n in the order they run`
      )
    }
  }
  return undefined
}

/**
 * The first string of a task that holds a lone surrogate (src/skyrl/utf8.ts), with its path: no row
 * `datasets` loads can hold it (a .parquet output would have U+FFFD in its place). Only a `\u` escape of
 * the JSON text makes one (`RecordResult.escapes`): a record without any need not be walked.
 */
export const loneSurrogateIn = (value: unknown, at: Array<PropertyKey> = []): ConversionError | undefined => {
  if (typeof value === "string") {
    const reason = loneSurrogateOf(value)
    return reason === undefined ? undefined : new ConversionError({ field: formatPath(at) || "(task)", reason })
  }
  if (typeof value !== "object" || value === null) return undefined
  const array = Array.isArray(value)
  for (const key in value) {
    at.push(array ? Number(key) : key)
    const found = loneSurrogateIn((value as Record<string, unknown>)[key], at)
    if (found !== undefined) return found
    at.pop()
  }
  return undefined
}

/** Why a SkyRL row (a file of rows given to `convert`) is no task, and what takes rows. */
const ROW_NOT_TASK =
  ": this is a SkyRL row (it has prompt and reward_spec), not a task; `skyrl validate` checks rows, " +
  "`skyrl enrich --overwrite` plans them again"

/** Decodes an unknown value (one element of a tasks file, or a model answer) into a `Task`. */
export const decodeTask = (raw: unknown): Either.Either<Task, ConversionError> => {
  if (!isObject(raw)) return fail("(task)", `expected an object, got ${describeType(raw)}`)
  const input = normalizeTaskInput(raw)
  if (input.messages === undefined) {
    if (input.user_prompt === undefined || input.user_prompt === null) {
      return fail("user_prompt", `is missing${"reward_spec" in raw && "prompt" in raw ? ROW_NOT_TASK : ""}`)
    }
    if (typeof input.user_prompt !== "string") return fail("user_prompt", "must be a string")
    if (input.user_prompt.trim() === "") return fail("user_prompt", "is empty")
  }
  if (input.tool_sequence === undefined || input.tool_sequence === null) return fail("tool_sequence", "is missing")
  if (!Array.isArray(input.tool_sequence)) return fail("tool_sequence", "must be an array of steps")
  if (input.tool_sequence.length === 0) return fail("tool_sequence", "is empty: a task needs at least one tool call")
  for (const [i, step] of input.tool_sequence.entries()) {
    const at = `tool_sequence[${i}]`
    if (!isObject(step)) return fail(at, "must be an object with server, tool and params")
    for (const key of ["server", "tool"] as const) {
      if (step[key] === undefined || step[key] === null) return fail(`${at}.${key}`, "is missing")
      if (typeof step[key] !== "string" || step[key].trim() === "") {
        return fail(`${at}.${key}`, "must be a non-empty string")
      }
    }
    if (step.params === undefined || step.params === null) return fail(`${at}.params`, "is missing (use {} for none)")
    if (!isObject(step.params)) {
      return fail(
        `${at}.params`,
        `must be an object, got ${describeType(step.params)}`
      )
    }
  }
  // Step numbers follow plan (array) order: a number given must be one, and say the same order as the list.
  const steps = input.tool_sequence as ReadonlyArray<Record<string, unknown>>
  const renumbered = stepNumberProblem(steps) ?? renumberingConflict(steps)
  if (renumbered !== undefined) return renumbered
  const fast = decodeTaskByHand(input)
  if (fast !== undefined) return Either.right(fast)
  const withSteps = {
    ...input,
    tool_sequence: input.tool_sequence.map((s, i) => ({ ...(s as object), step: i + 1 }))
  }
  const decoded = decodeTaskSchema(withSteps, { errors: "first" })
  if (Either.isLeft(decoded)) {
    const issue = parseIssues(decoded.left)[0]
    return fail(issue?.path || "(task)", issue?.message ?? "invalid task")
  }
  return Either.right(decoded.right)
}

const ROLE_ALIASES: Record<string, "system" | "user"> = {
  system: "system",
  developer: "system",
  user: "user",
  human: "user"
}

/** Normalizes an existing prompt (system and user messages only; see module rules). */
export const normalizePrompt = (
  messages: ReadonlyArray<{ readonly role: string; readonly content: unknown }>
): Either.Either<ReadonlyArray<RowMessage>, ConversionError> => {
  const out: Array<RowMessage> = []
  for (const [i, m] of messages.entries()) {
    const role = ROLE_ALIASES[String(m.role).trim().toLowerCase()]
    if (role === undefined) {
      return fail(
        `messages[${i}].role`,
        `"${m.role}" is not allowed in a prompt: only system and user messages (assistant and tool turns belong to the rollout)`
      )
    }
    if (typeof m.content !== "string") return fail(`messages[${i}].content`, "must be a string")
    const content = m.content.trim()
    if (content === "") return fail(`messages[${i}].content`, "is empty")
    out.push(trusted(RowMessage, { role, content }))
  }
  const users = out.filter((m) => m.role === "user").length
  if (users !== 1) return fail("messages", `needs exactly one user message, found ${users}`)
  if (out[out.length - 1]?.role !== "user") return fail("messages", "the user message must be the last message")
  const systems = out.filter((m) => m.role === "system").length
  if (systems > 1) return fail("messages", `at most one system message, found ${systems}`)
  return Either.right(out)
}

/** A deterministic id from the prompt text when the task has none (FNV-1a, 32 bit). */
const fallbackTaskId = (text: string): string => `task-${fnv1a32(text).toString(16).padStart(8, "0")}`

/** How many of `items` differ (by `same`) from every item before them: a plan's few steps, no set. */
const countDistinct = <A>(items: ReadonlyArray<A>, same: (a: A, b: A) => boolean): number => {
  let n = 0
  for (let i = 0; i < items.length; i++) {
    let j = 0
    while (j < i && !same(items[j]!, items[i]!)) j++
    if (j === i) n++
  }
  return n
}

/** Distinct values in first-use order. */
const distinct = <A>(values: ReadonlyArray<A>): ReadonlyArray<A> => [...new Set(values)]

/** The `as_of` date of a task: the context's, the task's own, the day it was made, else the context's today. */
const asOfFor = (task: Task, context: ConversionContext): Either.Either<string | undefined, ConversionError> => {
  if (context.asOf !== undefined) return Either.right(context.asOf)
  if (task.as_of !== undefined) {
    return isIsoDay(task.as_of)
      ? Either.right(task.as_of)
      : fail("as_of", `must be a date YYYY-MM-DD, got "${task.as_of}"`)
  }
  if (task.generated_at === undefined) return Either.right(context.today)
  // Read only here, for its date: one that gives none would date the row's prompt the day it was converted, as an
  // `as_of` that is no day would (before, "garbage" was passed over for today without a word).
  const made = /^(\d{4}-\d{2}-\d{2})/.exec(task.generated_at)?.[1]
  return made !== undefined && isIsoDay(made)
    ? Either.right(made)
    : fail(
      "generated_at",
      `must be an ISO date or timestamp starting with a real day YYYY-MM-DD (its date is the prompt's as_of), got ${
        quoted(task.generated_at)
      }`
    )
}

/**
 * A rubric made from the plan for tasks that come without one: one criterion per planned call (its literal
 * params, and where its derived params come from) plus a grounded-answer criterion. Deterministic.
 */
export const derivedRubric = (taskId: string, steps: ReadonlyArray<RowStep>): RowRubric =>
  trusted(RowRubric, {
    name: `${taskId} (derived from the plan)`,
    criteria: [
      ...steps.map((s) => {
        const literal = canonicalJson(literalParams(s))
        const derived = s.derived_params.length === 0
          ? ""
          : `; ${s.derived_params.join(", ")} from the result of step ${s.depends_on.join(", ")}`
        return trusted(RowCriterion, {
          name: `step ${s.step}: ${s.call_name}`,
          description: `Calls ${s.call_name} with ${literal === "{}" ? "no fixed params" : literal}${derived}.`,
          scoring: "1 if the call was made with these params, else 0"
        })
      }),
      trusted(RowCriterion, {
        name: "grounded answer",
        description: "The final answer covers every part of the request and uses only values the tool calls returned.",
        scoring: "1 complete and grounded, 0.5 partly, 0 otherwise"
      })
    ]
  })

/** Schema hashes by tool entry (every row of a run hashes the same schemas). */
const hashes = new WeakMap<InventoryTool, string>()
const hashOf = (tool: InventoryTool): string => {
  let hash = hashes.get(tool)
  if (hash === undefined) {
    hash = schemaHash(tool.inputSchema)
    hashes.set(tool, hash)
  }
  return hash
}

/** `available_tools` of a prompt's tools; rows offering the same tools share one (immutable) list. */
const availableLists = new WeakMap<ReadonlyArray<unknown>, ReadonlyArray<AvailableTool>>()
const availableTools = (
  tools: ReadonlyArray<{ readonly server: string; readonly tool: string; readonly callName: string }>
): ReadonlyArray<AvailableTool> => {
  let list = availableLists.get(tools)
  if (list === undefined) {
    list = tools.map((t) => ({ call_name: t.callName, server: t.server, tool: t.tool }))
    availableLists.set(tools, list)
  }
  return list
}

/** `tool_schemas` by offer and plan tools: rows offering the same tools with the same plan tools share one. */
const schemasByOffer = new WeakMap<ReadonlyArray<unknown>, Map<string, Readonly<Record<string, unknown>>>>()

/** `[...keys].sort().join(separator)`, by insertion (a plan has a few tools: no sort work arrays per row). */
const sortedJoin = (keys: ReadonlyArray<string>, separator: string): string => {
  if (keys.length === 1) return keys[0]!
  const sorted = keys.slice()
  for (let i = 1; i < sorted.length; i++) {
    const k = sorted[i]!
    let j = i - 1
    for (; j >= 0 && sorted[j]! > k; j--) sorted[j + 1] = sorted[j]!
    sorted[j + 1] = k
  }
  return sorted.join(separator)
}

/** The input schemas of the plan's tools by call name, in the offer's order (a shared, frozen object). */
const toolSchemasOf = (
  tools: ReadonlyArray<{ readonly server: string; readonly tool: string; readonly callName: string }>,
  steps: ReadonlyArray<{ readonly server: string; readonly tool: string }>,
  definition: (t: { readonly server: string; readonly tool: string }) => InventoryTool | undefined
): Readonly<Record<string, unknown>> => {
  const planKeys = distinct(steps.map((s) => `${s.server}\u0000${s.tool}`))
  const key = sortedJoin(planKeys, "\u0001")
  let byPlan = schemasByOffer.get(tools)
  if (byPlan === undefined) schemasByOffer.set(tools, byPlan = new Map())
  let schemas = byPlan.get(key)
  if (schemas === undefined) {
    const planTools = new Set(planKeys)
    const out: Record<string, unknown> = {}
    for (const t of tools) {
      const def = planTools.has(`${t.server}\u0000${t.tool}`) ? definition(t) : undefined
      if (def !== undefined) setOwn(out, t.callName, def.inputSchema)
    }
    schemas = Object.freeze(out)
    byPlan.set(key, schemas)
  }
  return schemas
}

/** The step numbers and names of a plan step's provenance, normalized (sorted, no repeats). */
const dependsOnOf = (s: ToolStep): Array<number> =>
  s.depends_on === undefined || s.depends_on.length === 0 ? [] : [...new Set(s.depends_on)].sort((a, b) => a - b)
const derivedOf = (s: ToolStep): ReadonlyArray<string> =>
  s.derived_params === undefined || s.derived_params.length === 0 ? [] : distinct(s.derived_params)

interface PromptParts {
  readonly prompt: ReadonlyArray<RowMessage>
  readonly tools: ReadonlyArray<{ readonly server: string; readonly tool: string; readonly callName: string }>
  /** Where a given prompt's system message comes from (undefined: a task without `messages`). */
  readonly origin?: SystemPromptOrigin | undefined
}

/** Inventories narrowed to a `<tools>` block's offer (`ownOffer`), by inventory, then by the tools they keep. */
const ownOffers = new WeakMap<Inventory, Map<string, Inventory>>()
const OWN_OFFERS_KEPT = 256

/**
 * The tools a kept system message offers when it lists its own (a `<tools>` block): the inventory's tools the
 * block names (by name, on any server, as `enrich` narrows its inventory), with the plan's tools the inventory
 * has (their call names must be among available_tools; `validate` warns when the prompt never shows one), in
 * the inventory's order. The inventory itself when that is every tool; undefined without a block. A message
 * without the text `<tools>` is not scanned further.
 */
const ownOffer = (
  inventory: Inventory,
  system: string,
  plan: ReadonlyArray<{ readonly server: string; readonly tool: string }>
): Inventory | undefined => {
  if (!system.includes("<tools>")) return undefined
  const block = findToolsBlock(system)
  if (block === undefined) return undefined
  const names = new Set(toolNamesOf(block))
  const inPlan = (server: string, tool: string) => plan.some((s) => s.server === server && s.tool === tool)
  const servers: Array<InventoryServer> = []
  const keys: Array<string> = []
  let all = true
  for (const server of inventory.servers) {
    const tools = server.tools.filter((t) => names.has(t.name) || inPlan(server.name, t.name))
    if (tools.length < server.tools.length) all = false
    if (tools.length === 0) continue
    for (const t of tools) keys.push(`${server.name}\u0000${t.name}`)
    servers.push(tools.length === server.tools.length ? server : trusted(InventoryServer, { ...server, tools }))
  }
  if (all) return inventory
  let byTools = ownOffers.get(inventory)
  if (byTools === undefined) ownOffers.set(inventory, byTools = new Map())
  const key = keys.join("\u0001")
  let narrowed = byTools.get(key)
  if (narrowed === undefined) {
    // The same narrowed inventory for rows that offer the same tools: selectPromptTools caches its offer by it.
    if (byTools.size >= OWN_OFFERS_KEPT) byTools.clear()
    narrowed = trusted(Inventory, { servers })
    byTools.set(key, narrowed)
  }
  return narrowed
}

/**
 * The prompt: an existing one kept (enrich), else a generated system message with the offered tools. A
 * kept system message that lists no tool gets the offered tools after its text when `givenSystem` is
 * "add-tools" (without them the policy would be trained to call tools it was never shown).
 */
const promptFor = (
  task: Task,
  taskId: (user: string) => string,
  asOf: string | undefined,
  context: ConversionContext
): Either.Either<PromptParts, ConversionError> => {
  let user: string
  let given: ReadonlyArray<RowMessage> | undefined
  if (task.messages !== undefined) {
    const normalized = normalizePrompt(task.messages)
    if (Either.isLeft(normalized)) return Either.left(normalized.left)
    given = normalized.right
    user = given[given.length - 1].content
  } else {
    user = (task.user_prompt ?? "").trim()
    if (user === "") return fail("user_prompt", task.user_prompt === undefined ? "is missing" : "is empty")
  }
  const userMessage = trusted(RowMessage, { role: "user", content: user })
  const maxTokens = context.maxPromptTokens ?? DEFAULT_MAX_PROMPT_TOKENS
  const givenSystem = given?.[0]?.role === "system" ? given[0].content : undefined
  const origin: SystemPromptOrigin | undefined = given === undefined
    ? undefined
    : givenSystem === undefined
    ? "generated"
    : context.givenSystem === "add-tools" && !listsTools(givenSystem)
    ? "source_with_tools"
    : "source"
  // A kept message that lists its own tools offers those (resolved against the inventory), not every tool.
  const own = origin === "source" && context.inventory !== undefined && givenSystem !== undefined
    ? ownOffer(context.inventory, givenSystem, task.tool_sequence)
    : undefined
  const selected = selectPromptTools({
    inventory: own ?? context.inventory,
    plan: task.tool_sequence,
    preferred: task.tools_available,
    taskId: taskId(user),
    // The source's text is kept as it is: no date line is added to it.
    asOf: origin === "source_with_tools" ? undefined : asOf,
    preamble: origin === "source_with_tools" ? givenSystem : undefined,
    // A kept system message is not re-rendered: every offered tool counts as listed.
    maxTokens: origin === "source" ? Number.POSITIVE_INFINITY : maxTokens,
    otherTokens: chatPromptTokens([{ role: "system", content: "" }, userMessage]),
    count: textTokens
  })
  if (Either.isLeft(selected)) return fail("prompt", selected.left)
  const { system, tools } = selected.right
  if (origin === "source") return Either.right({ prompt: given!, tools, origin })
  return Either.right({
    prompt: [trusted(RowMessage, { role: "system", content: system }), userMessage],
    tools,
    origin
  })
}

/**
 * BPE tokens of the prompt a kept system message that lists no tool makes under "add-tools" before any
 * tool line (its text, the protocol lines, the user message): more than the budget, and no plan can fit.
 */
export const toolFreePromptTokens = (system: string | undefined, user: string): number =>
  chatPromptTokens([
    { role: "system", content: renderSystemPrompt([], system === undefined ? {} : { preamble: system.trim() }) },
    { role: "user", content: user.trim() }
  ])

/**
 * A row's max_turns: the task's, raised to `steps + 1` when lower (one call per turn as the prompt asks,
 * then the answer: with fewer turns the plan itself cannot finish), else `max(steps + 2, 4)`.
 */
export const turnsFor = (given: number | undefined, steps: number): number =>
  given === undefined ? Math.max(steps + 2, 4) : Math.max(given, steps + 1)

export const toSkyRLSample = (
  task: Task,
  context: ConversionContext = {}
): Either.Either<SkyRLRow, ConversionError> => {
  const steps = task.tool_sequence
  if (steps.length === 0) return fail("tool_sequence", "is empty: a task needs at least one tool call")
  const numbered = steps.every((s, i) => s.step === i + 1) ? steps : steps.map((s, i) => ({ ...s, step: i + 1 }))
  const provenance = provenanceIssues(numbered, context.inventory)[0]
  if (provenance !== undefined) {
    return fail(`tool_sequence[${provenance.step - 1}].${provenance.path.replace(/\//g, ".")}`, provenance.message)
  }
  const asOf = asOfFor(task, context)
  if (Either.isLeft(asOf)) return Either.left(asOf.left)
  const taskId = (user: string) => task.task_id?.trim() || fallbackTaskId(user)
  const parts = promptFor(task, taskId, asOf.right, context)
  if (Either.isLeft(parts)) return Either.left(parts.left)
  const { origin, prompt, tools } = parts.right

  const distinctTools = countDistinct(steps, (a, b) => a.server === b.server && a.tool === b.tool)
  const distinctServers = countDistinct(steps, (a, b) => a.server === b.server)
  const maxTurns = turnsFor(task.max_turns, steps.length)
  const limits = task.limits ?? { max_tools: distinctTools, max_servers: distinctServers }
  if (limits.max_tools < distinctTools) {
    return fail(
      "limits.max_tools",
      `${limits.max_tools} is less than the ${distinctTools} distinct tools the plan uses`
    )
  }
  if (limits.max_servers < distinctServers) {
    return fail(
      "limits.max_servers",
      `${limits.max_servers} is less than the ${distinctServers} servers the plan uses`
    )
  }
  const callName = (s: { readonly server: string; readonly tool: string }) =>
    tools.find((t) => t.server === s.server && t.tool === s.tool)?.callName ?? s.tool
  const definition = (s: { readonly server: string; readonly tool: string }) =>
    context.inventory === undefined ? undefined : findTool(context.inventory, s.tool, s.server)?.tool
  const rowSteps = steps.map((s, i) => {
    const def = definition(s)
    return trusted(RowStep, {
      step: i + 1,
      server: s.server.trim(),
      tool: s.tool.trim(),
      call_name: callName(s),
      params: s.params,
      depends_on: dependsOnOf(s),
      derived_params: derivedOf(s),
      schema_hash: def === undefined ? "" : hashOf(def)
    })
  })
  const must = task.success?.must_call_tool
  const mustStep = must === undefined ? rowSteps[0] : rowSteps.find((s) => s.call_name === must || s.tool === must)
  if (mustStep === undefined) return fail("success.must_call_tool", `"${must}" is not called by the plan`)

  const userText = prompt[prompt.length - 1].content
  const id = taskId(userText)
  const rubric = task.evaluation_rubric === undefined
    ? derivedRubric(id, rowSteps)
    : trusted(RowRubric, {
      name: task.evaluation_rubric.name,
      criteria: task.evaluation_rubric.criteria.map((c) =>
        trusted(RowCriterion, { name: c.name, description: c.description, scoring: c.scoring })
      )
    })
  const toolSchemas = toolSchemasOf(tools, rowSteps, definition)
  const systemText = prompt[0].role === "system" ? prompt[0].content : ""
  // Assigned in this order (a key of context.metadata keeps its place): the on-disk key order.
  const metadata: { -readonly [K in keyof TaskMetadata]: TaskMetadata[K] } = { source: "llm", ...context.metadata }
  if (task.domain !== undefined) metadata.domain = task.domain
  if (task.assumptions !== undefined) metadata.assumptions = task.assumptions
  if (asOf.right !== undefined) metadata.as_of = asOf.right
  metadata.rubric_source = task.evaluation_rubric === undefined ? "derived" : "model"
  metadata.prompt_tools = tools.length
  if (origin !== undefined) metadata.system_prompt_origin = origin
  if (maxTurns !== task.max_turns && task.max_turns !== undefined) metadata.max_turns_given = task.max_turns
  metadata.system_prompt_chars = systemText.length
  metadata.system_prompt_tokens_est = textTokens(systemText)
  metadata.prompt_tokens_est = chatPromptTokens(prompt)
  if (context.taskFields !== undefined) setOwn(metadata, "task_fields", context.taskFields)

  return Either.right(
    trusted(SkyRLRow, {
      data_source: context.dataSource ?? DEFAULT_DATA_SOURCE,
      prompt,
      env_class: ENV_CLASS,
      reward_spec: {
        method: REWARD_METHOD,
        ground_truth: trusted(GroundTruth, {
          task_id: id,
          complexity: task.complexity ?? complexityOf(steps.length),
          max_turns: maxTurns,
          success: { must_call_tool: mustStep.call_name },
          tool_sequence: rowSteps,
          limits: { max_tools: limits.max_tools, max_servers: limits.max_servers },
          rubric,
          available_tools: availableTools(tools),
          tool_schemas: toolSchemas
        })
      },
      extra_info: { task_metadata: metadata }
    })
  )
}

/** The keys of a task skyrl reads: the Task schema's, and the other names `normalizeTaskInput` reads them under. */
const TASK_KEYS: ReadonlySet<string> = new Set([...Object.keys(Task.fields), "rubric", "judge_rubric"])

/**
 * The fields of a task (an object) that skyrl does not read (a `category`, a `difficulty` of the user's own), as
 * given, in their order; undefined when there are none.
 */
export const otherTaskFields = (raw: unknown): Record<string, unknown> | undefined => fieldsOtherThan(raw, TASK_KEYS)

/**
 * Decode + convert in one step (what `convert`, `generate` and `enrich` use). The task's fields skyrl does not read
 * are kept in the row's `task_metadata.task_fields` (`otherTaskFields`).
 */
export const convertTask = (raw: unknown, context: ConversionContext = {}): Either.Either<SkyRLRow, ConversionError> =>
  Either.flatMap(decodeTask(raw), (task) => {
    const other = otherTaskFields(raw)
    return toSkyRLSample(task, other === undefined ? context : { ...context, taskFields: other })
  })

/** The Effect form: fails with a typed `ConversionError`. */
export const toSkyRLSampleEffect = (
  task: Task,
  context: ConversionContext = {}
): Effect.Effect<SkyRLRow, ConversionError> =>
  Either.match(toSkyRLSample(task, context), { onLeft: Effect.fail, onRight: Effect.succeed })
