/**
 * Rows and servers for `skyrl verify` tests: on-disk SkyRL rows made by the product's converter from
 * plain plans, and stdio specs of the MCP servers in node_modules.
 */
import { Either } from "effect"
import { convertTask } from "../../src/skyrl/convert.js"
import { encodeRow } from "../../src/skyrl/layout.js"

export { nodeServer, ROOT, serverBin, writeJsonl } from "./mcpServers.js"

export interface PlanStepInput {
  readonly server: string
  readonly tool: string
  readonly params: Record<string, unknown>
  readonly depends_on?: ReadonlyArray<number>
  readonly derived_params?: ReadonlyArray<string>
}

/** The on-disk row (as `skyrl convert` writes it) for a plan, provenance (`depends_on`, `derived_params`) included. */
export const rowFor = (id: string, steps: ReadonlyArray<PlanStepInput>): Record<string, any> => {
  const row = Either.getOrThrowWith(
    convertTask({
      task_id: id,
      user_prompt: `Task ${id}: use ${steps.map((s) => s.tool).join(" then ")}.`,
      tool_sequence: steps.map((s) => ({
        server: s.server,
        tool: s.tool,
        params: s.params,
        depends_on: s.depends_on ?? [],
        derived_params: s.derived_params ?? []
      })),
      evaluation_rubric: {
        name: "Runs the plan",
        criteria: [{ name: "calls", description: "Calls the plan's tools in order", scoring: "1 if all, else 0" }]
      }
    }),
    (e) => new Error(`rowFor ${id}: ${e.message}`)
  )
  return encodeRow(row) as Record<string, any>
}
