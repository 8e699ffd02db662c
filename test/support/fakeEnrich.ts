/**
 * A fake model for `enrich` tests: it plans with the tools the request offers, read from the strict output
 * schema sent with the request (one `anyOf` branch per offered tool, server and tool as `const`s), and fills
 * params the way a strict-mode model would (required values concrete, optional ones null). It puts the
 * user request between the markers into `user_prompt` with a suffix, so tests show that field is ignored.
 */
import type { FakeContext } from "./fakeOpenAI.js"

type Json = Record<string, any>

export interface OfferedTool {
  readonly server: string
  readonly tool: string
  /** The strict params schema (or `{ type: "string" }` for tools whose params are a JSON string). */
  readonly params: Json
}

/** The output schema of a Responses or Chat request body. */
export const schemaOf = (body: any): Json | undefined =>
  body?.text?.format?.schema ?? body?.response_format?.json_schema?.schema

const resolve = (schema: Json, root: Json): Json =>
  typeof schema?.$ref === "string" ? resolve(root.$defs[schema.$ref.replace("#/$defs/", "")], root) : schema

/** The tools a request offers (from its output schema). */
export const offeredTools = (body: any): Array<OfferedTool> => {
  const root = schemaOf(body)
  if (root === undefined) return []
  const items = resolve(root.properties.tool_sequence.items, root)
  const branches: Array<Json> = Array.isArray(items.anyOf) ? items.anyOf : [items]
  return branches.map((b) => {
    const branch = resolve(b, root)
    return {
      server: branch.properties.server.const,
      tool: branch.properties.tool.const,
      params: resolve(branch.properties.params, root)
    }
  })
}

/** The messages of a request body (Responses `input` or Chat `messages`). */
const messagesOf = (body: any): Array<any> => body?.input ?? body?.messages ?? []

/** The first user message: the enrich request (repairs append to it). */
export const requestTextOf = (body: any): string => {
  const first = messagesOf(body).find((m) => m.role === "user")
  return typeof first?.content === "string" ? first.content : ""
}

/** The user request quoted between the markers of the enrich request. */
export const quotedUserRequest = (body: any): string => {
  const text = requestTextOf(body)
  const match = /<<<USER_REQUEST\n([\s\S]*?)\nUSER_REQUEST>>>/.exec(text)
  return match?.[1] ?? ""
}

/** "Plan the request of source row 3" → 3. */
export const sourceRowOf = (body: any): number | undefined => {
  const match = /Plan the request of source row (\d+)/.exec(requestTextOf(body))
  return match === null ? undefined : Number(match[1])
}

export const isRepair = (body: any): boolean => messagesOf(body).some((m) => m.role === "assistant")

const tickerIn = (text: string): string => /\b(?:for|of)\s+([A-Z]{1,5})\b/.exec(text)?.[1] ?? "AAPL"

/** A concrete value for a strict schema; nullable values are null (optional params left out). */
const valueFor = (name: string, schema: Json, context: string): unknown => {
  if (Array.isArray(schema.anyOf)) {
    if (schema.anyOf.some((b: Json) => b.type === "null")) return null
    return valueFor(name, schema.anyOf[0], context)
  }
  const types: Array<string> = Array.isArray(schema.type) ? schema.type : [schema.type]
  if (types.includes("null")) return null
  if (Array.isArray(schema.enum)) return schema.enum.find((v: unknown) => v !== null)
  switch (types[0]) {
    case "string":
      if (schema.format === "date") return "2025-06-02"
      if (schema.format === "date-time") return "2025-06-02T14:30:00Z"
      if (/symbol|ticker/i.test(name)) return tickerIn(context)
      if (/channel/i.test(name)) return "general"
      if (/query|q$/i.test(name)) return `${tickerIn(context)} stock news`
      return `value for ${name}`
    case "integer":
    case "number":
      return Math.min(Math.max(typeof schema.minimum === "number" ? schema.minimum : 3, 1), schema.maximum ?? 10)
    case "boolean":
      return false
    case "array":
      return (schema.minItems ?? 0) > 0 ? [valueFor(name, schema.items ?? { type: "string" }, context)] : []
    case "object": {
      const out: Json = {}
      for (const [key, sub] of Object.entries<Json>(schema.properties ?? {})) out[key] = valueFor(key, sub, context)
      return out
    }
    default:
      return null
  }
}

/** Params for an offered tool: an object for strict tools, a JSON string for JSON-string tools. */
export const paramsFor = (tool: OfferedTool, context: string): unknown =>
  tool.params.type === "string" ? "{}" : valueFor("", tool.params, context)

export interface PlanChoice {
  /** Pick these tools (by name) when offered; default: the first two strict tools with the fewest required params. */
  readonly prefer?: ReadonlyArray<string>
  /** Use this tool name even if it is not offered (for repair tests). */
  readonly force?: { readonly server: string; readonly tool: string; readonly params: unknown }
}

/** A valid plan answer (the model's JSON text) for an enrich request. */
export const planAnswer = (ctx: FakeContext, choice: PlanChoice = {}): string => {
  const body = ctx.body
  const user = quotedUserRequest(body)
  const offered = offeredTools(body)
  const strict = offered.filter((t) => t.params.type === "object")
  const preferred = (choice.prefer ?? []).flatMap((name) => strict.filter((t) => t.tool === name))
  const byRequired = [...strict].sort((a, b) => (a.params.required?.length ?? 0) - (b.params.required?.length ?? 0))
  const picked = (preferred.length > 0 ? preferred : byRequired).slice(0, 2)
  const steps = picked.map((t) => ({ server: t.server, tool: t.tool, params: paramsFor(t, user) }))
  if (choice.force !== undefined) steps.unshift(choice.force)
  const row = sourceRowOf(body) ?? ctx.index
  return JSON.stringify({
    task_id: `enriched-${row}`,
    // Not quite verbatim, on purpose: the row's prompt must come from the source, never from this field.
    user_prompt: `${user} (copied by the fake model)`,
    complexity: steps.length > 2 ? "moderate" : "simple",
    domain: "market research",
    assumptions: [],
    max_turns: steps.length + 1,
    tool_sequence: steps,
    evaluation_rubric: {
      name: "plan followed",
      criteria: [{ name: "tools", description: "calls the planned tools with the planned params", scoring: "0-1" }]
    }
  })
}
