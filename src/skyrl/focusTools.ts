/**
 * Focus tools: the tools of an inventory a work plan hands out, one per sample, and whether each can
 * start a plan.
 *
 * A tool cannot start a plan when one of its required params can only come from another tool's
 * result (a channel id from a channel listing, "JSON data from other MCP servers"). Such a tool is
 * still a focus tool, but the request asks for it as a later step, after the call that provides the
 * value. The rule, per required param, in this order:
 * 1. `"x-skyrl-derived": true | false` on the param's schema in the inventory decides (an annotation
 *    the user adds to an imported inventory; skyrl keeps unknown `x-` keywords and never sends them
 *    to the model);
 * 2. a param that offers its own values (`enum`, `const`, `default`, `examples`, or an example in its
 *    description: "e.g. ...") can start a plan;
 * 3. otherwise it needs an earlier result when its name is an identifier (`id`, `*_id`, `*Id`, `*_ids`,
 *    `*Ids`) or its description says the value comes from elsewhere ("returned by", "output of",
 *    "result of", "from other/another/previous/earlier ...").
 * Optional params never block a start.
 */
import type { Inventory } from "../domain/inventory.js"
import { isObject } from "../domain/json.js"

export interface FocusTool {
  readonly server: string
  readonly tool: string
  /** Required params whose value must come from an earlier call (empty: the tool can start a plan). */
  readonly needs: ReadonlyArray<string>
}

/** The annotation a user may put on a param schema to decide rule 1. */
export const DERIVED_ANNOTATION = "x-skyrl-derived"

const IDENTIFIER_NAME = /(?:^|_)ids?$|[a-z0-9]Ids?$/
const FROM_ELSEWHERE =
  /\b(?:returned|produced|obtained|provided) by\b|\b(?:output|result)s? (?:of|from)\b|\bfrom (?:an?other|other|previous|earlier|prior)\b/i
const DESCRIBED_EXAMPLE = /\b(?:e\.g\.|eg\.|for example|for instance|such as)/i

/** True when the required param `name` (schema `schema`) can only be filled from an earlier result. */
export const needsEarlierResult = (name: string, schema: unknown): boolean => {
  const s = isObject(schema) ? schema : {}
  const annotated = s[DERIVED_ANNOTATION]
  if (typeof annotated === "boolean") return annotated
  const description = typeof s.description === "string" ? s.description : ""
  const offersValues = Array.isArray(s.enum) || "const" in s || "default" in s ||
    (Array.isArray(s.examples) && s.examples.length > 0) || DESCRIBED_EXAMPLE.test(description)
  if (offersValues) return false
  return IDENTIFIER_NAME.test(name) || FROM_ELSEWHERE.test(description)
}

/** Every tool of the inventory in catalogue order, with the params that keep it from starting a plan. */
export const focusTools = (inventory: Inventory): ReadonlyArray<FocusTool> =>
  inventory.servers.flatMap((server) =>
    server.tools.map((tool) => {
      const schema = tool.inputSchema as { properties?: unknown; required?: unknown }
      const properties = isObject(schema.properties) ? schema.properties : {}
      const required = Array.isArray(schema.required) ? schema.required.filter((r) => typeof r === "string") : []
      return {
        server: server.name,
        tool: tool.name,
        needs: required.filter((name) => needsEarlierResult(name, properties[name]))
      }
    })
  )

/** The validation rule "the plan uses its focus tool": a message when it does not, else undefined. */
export const focusToolMissing = (
  steps: ReadonlyArray<{ readonly server: string; readonly tool: string }>,
  focus: { readonly server: string; readonly tool: string }
): string | undefined =>
  steps.some((s) => s.server === focus.server && s.tool === focus.tool)
    ? undefined
    : `the plan must call the focus tool ${focus.tool} (server ${focus.server}); it calls ${
      steps.map((s) => s.tool).join(", ") || "nothing"
    }`
