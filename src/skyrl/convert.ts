/**
 * The conversion from a model's task to a SkyRL row: pure, no Effect requirements.
 *
 * Rules (each tested in test/convert.test.ts):
 * - `user_prompt` (or `messages`) and a non-empty `tool_sequence` are required; a step needs `server`
 *   and `tool`, and `params` must be an object. Errors name the field.
 * - Prompt roles are normalized to `system` and `user` (`human` → user, `developer` → system, case and
 *   surrounding whitespace ignored); assistant/tool/other roles are an error, never dropped silently.
 *   Content is trimmed, empty content is rejected, exactly one user message, and it comes last.
 * - The generated system message lists the plan's tools de-duplicated in first-use order (then any
 *   `tools_available` extras); steps are renumbered 1..n in plan order.
 * - Defaults: complexity `moderate`, `max_turns = max(steps + 2, 4)`, limits from the plan (distinct
 *   tools / servers), `success.must_call_tool` = the first step's tool.
 * - The rubric goes to `reward_spec.ground_truth.rubric`; metadata to `extra_info.task_metadata`.
 * - `env_class` is always MCPToolEnv; `data_source` is a setting (default synthetic/llm).
 */
import { Effect, Either, Schema } from "effect"
import { ConversionError } from "../domain/errors.js"
import type { Inventory } from "../domain/inventory.js"
import { isObject } from "../domain/json.js"
import type { TaskMetadata } from "../domain/row.js"
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
import { Task } from "../domain/task.js"
import { parseIssues } from "./parseIssues.js"
import { estimateTokens, MESSAGE_OVERHEAD_TOKENS, renderSystemPrompt } from "./prompt.js"

export interface ConversionContext {
  /** `data_source` of the row (default synthetic/llm). */
  readonly dataSource?: string
  /** Used for tool signatures in the generated system message. */
  readonly inventory?: Inventory
  /** Provenance merged into `extra_info.task_metadata` (model, backend, run_id, seed, ...). */
  readonly metadata?: Partial<TaskMetadata> & Readonly<Record<string, unknown>>
  /**
   * Token budget of the prompt (SkyRL's `max_prompt_length`, default 512). Extra tools beyond the plan's
   * (`tools_available`) are listed only while the estimated prompt stays within it.
   */
  readonly promptBudgetTokens?: number
}

export const DEFAULT_PROMPT_BUDGET_TOKENS = 512

/**
 * Row classes are built from values `decodeTask` already validated, so their constructors skip
 * re-validation: it rebuilt the type side of every JSON-string field per call (~250 µs a row, most of a
 * 100k-task conversion). `encodeRow` still type-checks every field when the row is written.
 */
const TRUSTED = { disableValidation: true } as const

const fail = (field: string, reason: string) => Either.left(new ConversionError({ field, reason }))

/**
 * Maps the historical answer shapes onto `Task` fields: `evaluation_rubric.rubric_name` → `name`,
 * `rubric` → `evaluation_rubric`, a `judge_rubric` of weights → one criterion per weight, a string
 * `assumptions` → a one-element list. Anything else is left for the Task schema to judge.
 */
export const normalizeTaskInput = (raw: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...raw }
  if (out.evaluation_rubric === undefined && isObject(out.rubric)) out.evaluation_rubric = out.rubric
  if (isObject(out.evaluation_rubric)) {
    const r = out.evaluation_rubric
    if (r.name === undefined && typeof r.rubric_name === "string") out.evaluation_rubric = { ...r, name: r.rubric_name }
  }
  if (out.evaluation_rubric === undefined && isObject(out.judge_rubric) && isObject(out.judge_rubric.weights)) {
    const weights = Object.entries(out.judge_rubric.weights).filter(([, w]) => typeof w === "number" && w > 0)
    out.evaluation_rubric = {
      name: "judge_rubric",
      criteria: weights.map(([name, w]) => ({
        name,
        description: `Judge score for ${name.replace(/_/g, " ")}`,
        scoring: `0-1 scale, weight ${w}`
      }))
    }
  }
  if (typeof out.assumptions === "string") out.assumptions = out.assumptions.trim() === "" ? [] : [out.assumptions]
  return out
}

/** Decodes an unknown value (one element of a tasks file, or a model answer) into a `Task`. */
export const decodeTask = (raw: unknown): Either.Either<Task, ConversionError> => {
  if (!isObject(raw)) return fail("(task)", `expected an object, got ${Array.isArray(raw) ? "an array" : typeof raw}`)
  const input = normalizeTaskInput(raw)
  if (input.messages === undefined) {
    if (input.user_prompt === undefined || input.user_prompt === null) return fail("user_prompt", "is missing")
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
        `must be an object, got ${Array.isArray(step.params) ? "an array" : typeof step.params}`
      )
    }
  }
  // Step numbers follow plan (array) order; numbers the model wrote are not trusted.
  const withSteps = {
    ...input,
    tool_sequence: input.tool_sequence.map((s, i) => ({ ...(s as object), step: i + 1 }))
  }
  const decoded = Schema.decodeUnknownEither(Task)(withSteps, { errors: "first" })
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
    out.push(new RowMessage({ role, content }, TRUSTED))
  }
  const users = out.filter((m) => m.role === "user").length
  if (users !== 1) return fail("messages", `needs exactly one user message, found ${users}`)
  if (out[out.length - 1]?.role !== "user") return fail("messages", "the user message must be the last message")
  const systems = out.filter((m) => m.role === "system").length
  if (systems > 1) return fail("messages", `at most one system message, found ${systems}`)
  return Either.right(out)
}

/** A deterministic id from the prompt text when the task has none (FNV-1a, 32 bit). */
const fallbackTaskId = (text: string): string => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return `task-${h.toString(16).padStart(8, "0")}`
}

/** Distinct values in first-use order. */
const distinct = <A>(values: ReadonlyArray<A>): ReadonlyArray<A> => [...new Set(values)]

export const toSkyRLSample = (
  task: Task,
  context: ConversionContext = {}
): Either.Either<SkyRLRow, ConversionError> => {
  const steps = task.tool_sequence
  if (steps.length === 0) return fail("tool_sequence", "is empty: a task needs at least one tool call")

  // Tools named in the prompt: the plan's tools in first-use order, then any extras.
  const paramNames = new Map<string, Set<string>>()
  for (const s of steps) {
    const names = paramNames.get(s.tool) ?? new Set<string>()
    for (const k of Object.keys(s.params)) names.add(k)
    paramNames.set(s.tool, names)
  }
  const planTools = distinct(steps.map((s) => s.tool))
  const extras = distinct(task.tools_available ?? []).filter((name) =>
    !paramNames.has(name) && (context.inventory === undefined || hasTool(context.inventory, name))
  )
  const asPromptTools = (names: ReadonlyArray<string>) =>
    names.map((name) => ({ name, paramNames: [...(paramNames.get(name) ?? [])] }))
  const budget = context.promptBudgetTokens ?? DEFAULT_PROMPT_BUDGET_TOKENS
  const userTokens = estimateTokens(task.user_prompt ?? "") + 2 * MESSAGE_OVERHEAD_TOKENS
  let listed = planTools
  for (const extra of extras) {
    const candidate = [...listed, extra]
    if (estimateTokens(renderSystemPrompt(asPromptTools(candidate), context.inventory)) + userTokens > budget) break
    listed = candidate
  }
  const generatedSystem = renderSystemPrompt(asPromptTools(listed), context.inventory)

  let prompt: ReadonlyArray<RowMessage>
  if (task.messages !== undefined) {
    const normalized = normalizePrompt(task.messages)
    if (Either.isLeft(normalized)) return Either.left(normalized.left)
    prompt = normalized.right[0]?.role === "system"
      ? normalized.right
      : [new RowMessage({ role: "system", content: generatedSystem }, TRUSTED), ...normalized.right]
  } else {
    const user = (task.user_prompt ?? "").trim()
    if (user === "") return fail("user_prompt", task.user_prompt === undefined ? "is missing" : "is empty")
    prompt = [
      new RowMessage({ role: "system", content: generatedSystem }, TRUSTED),
      new RowMessage({ role: "user", content: user }, TRUSTED)
    ]
  }

  const distinctTools = distinct(steps.map((s) => s.tool)).length
  const distinctServers = distinct(steps.map((s) => s.server)).length
  const maxTurns = task.max_turns ?? Math.max(steps.length + 2, 4)
  if (maxTurns < steps.length) {
    return fail("max_turns", `${maxTurns} is less than the plan's ${steps.length} steps`)
  }
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
  const mustCall = task.success?.must_call_tool ?? steps[0].tool
  if (!steps.some((s) => s.tool === mustCall)) {
    return fail("success.must_call_tool", `"${mustCall}" is not called by the plan`)
  }
  const rubric = task.evaluation_rubric
  if (rubric === undefined) return fail("evaluation_rubric", "is missing: a row needs a rubric with criteria")

  const userText = prompt[prompt.length - 1].content
  const systemText = prompt[0].role === "system" ? prompt[0].content : ""
  const metadata: TaskMetadata = {
    source: "llm",
    ...context.metadata,
    ...(task.domain === undefined ? {} : { domain: task.domain }),
    ...(task.assumptions === undefined ? {} : { assumptions: task.assumptions }),
    system_prompt_chars: systemText.length,
    system_prompt_tokens_est: estimateTokens(systemText),
    prompt_tokens_est: prompt.reduce((n, m) => n + estimateTokens(m.content) + MESSAGE_OVERHEAD_TOKENS, 0)
  }

  return Either.right(
    new SkyRLRow({
      data_source: context.dataSource ?? DEFAULT_DATA_SOURCE,
      prompt,
      env_class: ENV_CLASS,
      reward_spec: {
        method: REWARD_METHOD,
        ground_truth: new GroundTruth({
          task_id: task.task_id?.trim() || fallbackTaskId(userText),
          complexity: task.complexity ?? "moderate",
          max_turns: maxTurns,
          success: { must_call_tool: mustCall },
          tool_sequence: steps.map((s, i) =>
            new RowStep({ step: i + 1, server: s.server.trim(), tool: s.tool.trim(), params: s.params }, TRUSTED)
          ),
          limits: { max_tools: limits.max_tools, max_servers: limits.max_servers },
          rubric: new RowRubric({
            name: rubric.name,
            criteria: rubric.criteria.map((c) => new RowCriterion({ ...c }, TRUSTED))
          }, TRUSTED)
        }, TRUSTED)
      },
      extra_info: { task_metadata: metadata }
    }, TRUSTED)
  )
}

const hasTool = (inventory: Inventory, name: string): boolean =>
  inventory.servers.some((s) => s.tools.some((t) => t.name === name))

/** Decode + convert in one step (what `convert`, `generate` and `enrich` use). */
export const convertTask = (raw: unknown, context: ConversionContext = {}): Either.Either<SkyRLRow, ConversionError> =>
  Either.flatMap(decodeTask(raw), (task) => toSkyRLSample(task, context))

/** The Effect form: fails with a typed `ConversionError`. */
export const toSkyRLSampleEffect = (
  task: Task,
  context: ConversionContext = {}
): Effect.Effect<SkyRLRow, ConversionError> =>
  Either.match(toSkyRLSample(task, context), { onLeft: Effect.fail, onRight: Effect.succeed })
