/**
 * Request bodies and answer reading, shared by every Llm layer (live, replay, scripted): the same
 * extraction, decoding and validation whatever produced the answer.
 */
import type { Schema } from "effect"
import { Either, ParseResult } from "effect"
import { isObject } from "../../domain/json.js"
import type { Backend, OutputIssue, ReasoningEffort, Usage } from "../../domain/llm.js"
import { BadRequest, InvalidOutput, Refusal, Transient, Truncated } from "../../domain/llm.js"
import { ModelTask } from "../../domain/task.js"
import { formatPath } from "../../skyrl/parseIssues.js"
import { dropOptionalNulls, formatStrictProblem, strictJsonSchema } from "../../skyrl/strictSchema.js"
import type { LlmRequest } from "../Llm.js"
import { decodeModelTaskByHand } from "./taskAnswer.js"

/** OpenAI schema names: letters, digits, `_` and `-`, at most 64 characters. */
export const schemaName = (name: string): string => name.replace(/[^a-zA-Z0-9_-]/g, "_").slice(0, 64) || "output"

/** The strict JSON Schema to send: the caller's, or derived from the Effect Schema. */
export const resolveJsonSchema = <A, I>(request: LlmRequest<A, I>): Either.Either<object, BadRequest> =>
  request.jsonSchema !== undefined
    ? Either.right(request.jsonSchema)
    : Either.mapLeft(strictJsonSchema(request.schema), (p) =>
      new BadRequest({
        reason: `output schema "${request.name}" cannot be made strict: ${formatStrictProblem(p)}`,
        param: "schema",
        code: "schema_not_strict"
      }))

export interface BodySettings {
  readonly model: string
  /** undefined: no reasoning parameter (models that reject it). */
  readonly reasoningEffort: ReasoningEffort | undefined
  readonly maxOutputTokens: number
}

/** The JSON body for one backend. Shared prefix first (instructions, then messages). */
export const buildBody = <A, I>(
  backend: Backend,
  settings: BodySettings,
  request: LlmRequest<A, I>,
  jsonSchema: object
): Record<string, unknown> => {
  const name = schemaName(request.name)
  const input = request.input.map((m) => ({ role: m.role, content: m.content }))
  if (!sharedTexts.has(jsonSchema)) sharedTexts.set(jsonSchema, undefined)
  if (instructionsText?.value !== request.instructions) instructionsText = { value: request.instructions }
  if (backend === "responses") {
    return {
      model: settings.model,
      instructions: request.instructions,
      input,
      ...(settings.reasoningEffort === undefined ? {} : { reasoning: { effort: settings.reasoningEffort } }),
      text: { format: { type: "json_schema", name, schema: jsonSchema, strict: true } },
      max_output_tokens: settings.maxOutputTokens,
      store: false
    }
  }
  return {
    model: settings.model,
    messages: [{ role: "system", content: request.instructions }, ...input],
    ...(settings.reasoningEffort === undefined ? {} : { reasoning_effort: settings.reasoningEffort }),
    response_format: { type: "json_schema", json_schema: { name, schema: jsonSchema, strict: true } },
    max_completion_tokens: settings.maxOutputTokens
  }
}

/** Objects every request of a run shares (output schemas): their JSON is made once. */
const sharedTexts = new WeakMap<object, string | undefined>()
/**
 * The instructions of the last body built, and their JSON once made: every request starts with them (a
 * long message of a request, e.g. an enrich source conversation, does not take their place).
 */
let instructionsText: { readonly value: string; json?: string } | undefined
/** The JSON text of each body asked for (see `requestJson`). */
const bodyTexts = new WeakMap<object, string>()

/**
 * Appends the pieces of JSON.stringify(value) to `out`, with the JSON of shared objects and of the
 * instructions reused; false (nothing appended) where JSON.stringify gives undefined. The pieces are
 * joined once, so the ~27 KB text is made once, flat, instead of copied at each level of nesting.
 */
const writeJson = (value: unknown, out: Array<string>): boolean => {
  if (typeof value === "string") {
    out.push(
      instructionsText?.value !== value ? JSON.stringify(value) : (instructionsText.json ??= JSON.stringify(value))
    )
    return true
  }
  if (value === null || typeof value !== "object") return writeText(JSON.stringify(value), out)
  if (sharedTexts.has(value)) {
    let text = sharedTexts.get(value)
    if (text === undefined) sharedTexts.set(value, text = JSON.stringify(value))
    return writeText(text, out)
  }
  if (Array.isArray(value)) {
    out.push("[")
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(",")
      if (!writeJson(value[i], out)) out.push("null")
    }
    out.push("]")
    return true
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return writeText(JSON.stringify(value), out)
  out.push("{")
  let first = true
  for (const [k, v] of Object.entries(value)) {
    const mark = out.length
    out.push(first ? JSON.stringify(k) : `,${JSON.stringify(k)}`, ":")
    if (writeJson(v, out)) first = false
    else out.length = mark
  }
  out.push("}")
  return true
}

const writeText = (text: string | undefined, out: Array<string>): boolean => {
  if (text === undefined) return false
  out.push(text)
  return true
}

/**
 * `JSON.stringify(body)` of a request body (the text sent, and the `request` of its archive record), made
 * once per body and from the JSON of the output schema made once per run: a request is ~27 KB, nearly all
 * of it the schema and instructions every request shares.
 */
export const requestJson = (body: unknown): string => {
  if (!isObject<object>(body)) return JSON.stringify(body)
  let text = bodyTexts.get(body)
  if (text === undefined) {
    const out: Array<string> = []
    bodyTexts.set(body, text = writeJson(body, out) ? out.join("") : "null")
  }
  return text
}

const num = (u: unknown): number => (typeof u === "number" && Number.isFinite(u) ? u : 0)

/** Usage from a raw body of either backend (missing fields count 0). */
export const usageOf = (backend: Backend, body: unknown): Usage => {
  const u = isObject<any>(body) && isObject<any>(body.usage) ? body.usage : {}
  return backend === "responses"
    ? {
      input: num(u.input_tokens),
      cached: num(u.input_tokens_details?.cached_tokens),
      output: num(u.output_tokens),
      reasoning: num(u.output_tokens_details?.reasoning_tokens)
    }
    : {
      input: num(u.prompt_tokens),
      cached: num(u.prompt_tokens_details?.cached_tokens),
      output: num(u.completion_tokens),
      reasoning: num(u.completion_tokens_details?.reasoning_tokens)
    }
}

/** Which API produced a raw body (replay reads both kinds). */
export const backendOfBody = (body: unknown): Backend | undefined => {
  if (!isObject<any>(body)) return undefined
  if (Array.isArray(body.choices)) return "chat"
  if (Array.isArray(body.output) || body.object === "response") return "responses"
  return undefined
}

export type AnswerError = Truncated | Refusal | InvalidOutput | Transient

/** The answer text of a raw body, or why there is none (truncated, refused, failed). */
export const extractText = (backend: Backend, body: unknown): Either.Either<string, AnswerError> => {
  const usage = usageOf(backend, body)
  const none = (message: string) => new InvalidOutput({ text: "", issues: [{ path: "", message }], raw: body, usage })
  if (!isObject<any>(body)) return Either.left(none("the answer is not a JSON object"))
  if (backend === "responses") {
    const messages = Array.isArray(body.output)
      ? body.output.filter((item: unknown) => isObject<any>(item) && item.type === "message")
      : []
    const parts: Array<any> = messages.flatMap((m: any) => (Array.isArray(m.content) ? m.content : []))
    const text = parts.filter((p) => isObject<any>(p) && p.type === "output_text").map((p) => String(p.text ?? ""))
      .join("")
    const refusal = parts.find((p) => isObject<any>(p) && p.type === "refusal")
    if (body.status === "incomplete") {
      const reason = String(body.incomplete_details?.reason ?? "incomplete")
      return Either.left(new Truncated({ reason, text, raw: body, usage }))
    }
    if (body.status === "failed") {
      // A failed response may still have billed tokens: they travel with the error.
      return Either.left(
        new Transient({
          reason: `the response failed: ${String(body.error?.message ?? body.error?.code ?? "no detail")}`,
          usage
        })
      )
    }
    if (refusal !== undefined) {
      return Either.left(new Refusal({ refusal: String(refusal.refusal ?? ""), raw: body, usage }))
    }
    if (messages.length === 0) return Either.left(none("the answer has no message item"))
    return Either.right(text)
  }
  const choice = Array.isArray(body.choices) ? body.choices[0] : undefined
  if (!isObject<any>(choice)) return Either.left(none("the answer has no choices"))
  const message = isObject<any>(choice.message) ? choice.message : {}
  const text = typeof message.content === "string" ? message.content : ""
  if (choice.finish_reason === "length" || choice.finish_reason === "content_filter") {
    return Either.left(new Truncated({ reason: String(choice.finish_reason), text, raw: body, usage }))
  }
  if (typeof message.refusal === "string" && message.refusal !== "") {
    return Either.left(new Refusal({ refusal: message.refusal, raw: body, usage }))
  }
  if (typeof message.content !== "string") return Either.left(none("the answer has no message content"))
  return Either.right(text)
}

export const issuesOf = (issue: ParseResult.ParseIssue): ReadonlyArray<OutputIssue> =>
  ParseResult.ArrayFormatter.formatIssueSync(issue).map((i) => ({ path: formatPath(i.path), message: i.message }))

/** JSON text, tolerating a Markdown code fence around it (some local servers add one). */
const parseJson = (text: string): Either.Either<unknown, string> => {
  const attempt = (t: string) => Either.try({ try: () => JSON.parse(t) as unknown, catch: (e) => (e as Error).message })
  const first = attempt(text)
  if (Either.isRight(first)) return first
  const fenced = /^\s*```(?:json)?\s*\n([\s\S]*?)\n\s*```\s*$/.exec(text)
  return fenced === null ? first : Either.orElse(attempt(fenced[1]), () => first)
}

/**
 * Parses and decodes the answer text with the request's Schema; issues carry field paths. A task answer
 * (`ModelTask`) the hand decoder accepts is decoded by it (taskAnswer.ts: the Schema's result, cheaper).
 */
export const decodeText = <A, I>(
  schema: Schema.Schema<A, I>,
  text: string,
  raw: unknown,
  usage: Usage
): Either.Either<A, InvalidOutput> => {
  const json = parseJson(text)
  if (Either.isLeft(json)) {
    return Either.left(
      new InvalidOutput({ text, issues: [{ path: "", message: `not valid JSON: ${json.left}` }], raw, usage })
    )
  }
  if ((schema as unknown) === ModelTask) {
    const task = decodeModelTaskByHand(json.right)
    if (task !== undefined) return Either.right(task as A)
  }
  const value = dropOptionalNulls(schema, json.right)
  return Either.mapLeft(
    ParseResult.decodeUnknownEither(schema)(value, { errors: "all", onExcessProperty: "ignore" }),
    (issue) => new InvalidOutput({ text, issues: issuesOf(issue), raw, usage })
  )
}

export interface Interpreted<A> {
  readonly value: A
  readonly text: string
  readonly usage: Usage
}

/** Raw body → decoded value (or the typed reason why not). */
export const interpret = <A, I>(
  backend: Backend,
  schema: Schema.Schema<A, I>,
  body: unknown
): Either.Either<Interpreted<A>, AnswerError> => {
  const usage = usageOf(backend, body)
  return Either.flatMap(
    extractText(backend, body),
    (text) => Either.map(decodeText(schema, text, body, usage), (value) => ({ value, text, usage }))
  )
}

/**
 * What a request asks, independent of backend, model and reasoning settings: instructions, messages,
 * schema name and schema. Replay matches recorded requests on this.
 */
export const canonicalRequest = (body: unknown): unknown => {
  if (!isObject<any>(body)) return undefined
  if (Array.isArray(body.messages)) {
    const messages = body.messages as Array<any>
    const system = messages.filter((m) => m?.role === "system" || m?.role === "developer")
    const rest = messages.filter((m) => !(m?.role === "system" || m?.role === "developer"))
    const format = body.response_format?.json_schema ?? {}
    return {
      instructions: system.map((m) => String(m.content)).join("\n\n"),
      input: rest.map((m) => ({ role: m.role, content: m.content })),
      name: format.name ?? null,
      schema: format.schema ?? null
    }
  }
  if (body.input !== undefined || body.instructions !== undefined) {
    const input = typeof body.input === "string" ? [{ role: "user", content: body.input }] : (body.input ?? [])
    const format = body.text?.format ?? {}
    return {
      instructions: String(body.instructions ?? ""),
      input: (input as Array<any>).map((m) => ({ role: m.role, content: m.content })),
      name: format.name ?? null,
      schema: format.schema ?? null
    }
  }
  return undefined
}

/** JSON with sorted object keys (stable hashing): the one definition in src/skyrl/canonical.ts. */
export { canonicalJson } from "../../skyrl/canonical.js"
