/**
 * Value hints drawn from the inventory itself: the examples of realistic param values the shared
 * instructions give come from the tools' own descriptions and schemas (examples, enums, formats,
 * defaults, ranges), never from a fixed domain. Pure.
 */
import type { Inventory } from "../domain/inventory.js"
import { isObject } from "../domain/json.js"

export type HintSource = "example" | "enum" | "format" | "default" | "range"

export interface ValueHint {
  readonly server: string
  readonly tool: string
  readonly param: string
  readonly source: HintSource
  /** Text for the instructions, e.g. `"AAPL"`, `a date as YYYY-MM-DD`, `one of "annual", "quarterly"`. */
  readonly text: string
}

const FORMAT_TEXT: Readonly<Record<string, string>> = {
  date: "a date as YYYY-MM-DD",
  "date-time": "a timestamp as YYYY-MM-DDTHH:MM:SSZ",
  time: "a time as HH:MM:SS",
  email: "an email address",
  uri: "a full URL",
  url: "a full URL",
  uuid: "a UUID",
  hostname: "a host name",
  ipv4: "an IPv4 address"
}

/** Date formats spelled out in descriptions ("Start date in YYYY-MM-DD format"). */
const DESCRIBED_FORMAT = /\b(YYYY-MM-DD(?:[T ]HH:MM(?::SS)?)?|HH:MM(?::SS)?)\b/

/** "e.g. 'AAPL'", "(e.g., AAPL)", "for example: /tmp/a.txt", "such as \"Chicago\"". */
const DESCRIBED_EXAMPLE =
  /\b(?:e\.g\.|eg\.|for example|for instance|such as)[,:]?\s*(?:(['"`])([^'"`]{1,60}?)\1|([^\s,;)]{1,60}))/i

/** Quoted words in a description ("Type of analysis: 'summary', 'trend', 'custom'"): choices when two or more. */
const QUOTED = /(?<![\p{L}\p{N}])(['"`])([^'"`\n]{1,40}?)\1(?![\p{L}\p{N}])/gu

const quote = (v: unknown): string => JSON.stringify(v)

const oneOf = (values: ReadonlyArray<unknown>): string =>
  `one of ${values.slice(0, 3).map(quote).join(", ")}${values.length > 3 ? ", ..." : ""}`

const describedExample = (description: string): string | undefined => {
  const m = DESCRIBED_EXAMPLE.exec(description)
  if (m === null) return undefined
  const value = (m[2] ?? m[3] ?? "").replace(/[.]$/, "").trim()
  return value === "" ? undefined : quote(value)
}

/** The best hint for one param schema, or undefined when it offers none. */
export const paramHint = (schema: unknown): { readonly source: HintSource; readonly text: string } | undefined => {
  if (!isObject(schema)) return undefined
  const description = typeof schema.description === "string" ? schema.description : ""
  const examples = Array.isArray(schema.examples)
    ? schema.examples
    : schema.example !== undefined
    ? [schema.example]
    : []
  if (examples.length > 0) return { source: "example", text: examples.slice(0, 2).map(quote).join(" or ") }
  const described = describedExample(description)
  if (described !== undefined) return { source: "example", text: described }
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return { source: "enum", text: oneOf(schema.enum) }
  const choices = [...description.matchAll(QUOTED)].map((m) => m[2])
  if (choices.length >= 2) return { source: "enum", text: oneOf(choices) }
  if (typeof schema.format === "string" && FORMAT_TEXT[schema.format] !== undefined) {
    return { source: "format", text: FORMAT_TEXT[schema.format] }
  }
  const spelled = DESCRIBED_FORMAT.exec(description)
  if (spelled !== null) return { source: "format", text: `formatted ${spelled[1]}` }
  if (schema.default !== undefined && typeof schema.default !== "object") {
    return { source: "default", text: `like ${quote(schema.default)}` }
  }
  if (typeof schema.minimum === "number" && typeof schema.maximum === "number") {
    return { source: "range", text: `between ${schema.minimum} and ${schema.maximum}` }
  }
  return undefined
}

/** Every hint the inventory offers, in catalogue order (one per param that has one). */
export const valueHints = (inventory: Inventory): ReadonlyArray<ValueHint> =>
  inventory.servers.flatMap((server) =>
    server.tools.flatMap((tool) => {
      const properties = (tool.inputSchema as { properties?: unknown }).properties
      return Object.entries(isObject(properties) ? properties : {}).flatMap(([param, schema]) => {
        const hint = paramHint(schema)
        return hint === undefined ? [] : [{ server: server.name, tool: tool.name, param, ...hint }]
      })
    })
  )

const SOURCE_ORDER: ReadonlyArray<HintSource> = ["example", "format", "enum", "range", "default"]

/**
 * Up to `max` hints for the instructions: the most telling sources first (examples, then formats,
 * enums, ranges, defaults), one per param name and per hint text, servers taken in turn so one server
 * does not fill the list. Deterministic: the same inventory gives the same selection.
 */
export const pickValueHints = (hints: ReadonlyArray<ValueHint>, max = 6): ReadonlyArray<ValueHint> => {
  const byServer = new Map<string, Array<ValueHint>>()
  const ranked = [...hints].sort((a, b) => SOURCE_ORDER.indexOf(a.source) - SOURCE_ORDER.indexOf(b.source))
  for (const h of ranked) byServer.set(h.server, [...(byServer.get(h.server) ?? []), h])
  const queues = [...byServer.values()]
  const out: Array<ValueHint> = []
  const seen = new Set<string>()
  const fresh = (h: ValueHint) => !seen.has(h.param) && !seen.has(h.text)
  while (out.length < max && queues.some((q) => q.length > 0)) {
    for (const q of queues) {
      let next = q.shift()
      while (next !== undefined && !fresh(next)) next = q.shift()
      if (next === undefined || out.length >= max) continue
      seen.add(next.param).add(next.text)
      out.push(next)
    }
  }
  return out
}

/**
 * The instructions' rule about values, with examples taken from the inventory: replaces the rule that
 * named tickers, company names and channel names.
 */
export const renderValueRule = (inventory: Inventory, max = 6): string => {
  const picked = pickValueHints(valueHints(inventory), max)
  const examples = picked.length === 0
    ? ""
    : ` As the tools' own descriptions show, e.g. ${picked.map((h) => `${h.param} ${h.text}`).join("; ")}.`
  return [
    "- Every param value is concrete and realistic, of the kind the tool's description and schema call for.",
    `  No placeholders ("<id>", "TBD", "\${...}", "from step 1").${examples}`
  ].join("\n")
}
