/**
 * `skyrl schema [row|task|model-task|inventory]`: prints the JSON Schema of a contract, derived from
 * its Effect Schema (src/domain/*). `row` is the on-disk form (params, depends_on, derived_params,
 * tool_schemas and task_metadata are JSON strings); `task` is what `convert` reads; `model-task` what a model returns for one task;
 * `inventory` the tool catalogue file.
 */
import { Args, Command } from "@effect/cli"
import { Console, Effect } from "effect"

const CONTRACTS = ["row", "task", "model-task", "inventory"] as const
type Contract = typeof CONTRACTS[number]

const DESCRIPTIONS: Record<Contract, string> = {
  row: "A SkyRL row as skyrl writes it (.json/.jsonl/.parquet): params, depends_on, derived_params, tool_schemas " +
    "and task_metadata are JSON-encoded strings; available_tools is never empty",
  task: "A task object as `skyrl convert` reads it (the model's output shape, after normalization)",
  "model-task": "What a model returns for one task (before the inventory constrains tool_sequence)",
  inventory: "A tool inventory: MCP servers, their tools and each tool's inputSchema"
}

export const jsonSchemaOf = (contract: Contract) =>
  Effect.promise(async () => {
    const { JSONSchema } = await import("effect")
    const schema = contract === "row"
      ? (await import("../domain/row.js")).SkyRLRow
      : contract === "task"
      ? (await import("../domain/task.js")).Task
      : contract === "model-task"
      ? (await import("../domain/task.js")).ModelTask
      : (await import("../domain/inventory.js")).Inventory
    const { $schema, ...rest } = JSONSchema.make(schema as never) as unknown as Record<string, unknown>
    return withoutUnknownIds({ $schema, title: `skyrl ${contract}`, description: DESCRIPTIONS[contract], ...rest })
  })

/**
 * `schema` without the `"$id": "/schemas/unknown"` Effect gives every Schema.Unknown (any value): two of
 * them in one document made ajv refuse `skyrl schema task` ("resolves to more than one schema").
 */
const withoutUnknownIds = <A>(schema: A): A =>
  JSON.parse(
    JSON.stringify(schema),
    (key, value) => (key === "$id" && value === "/schemas/unknown" ? undefined : value)
  )

export const schemaCommand = Command.make(
  "schema",
  {
    contract: Args.choice(CONTRACTS.map((c) => [c, c] as const), { name: "CONTRACT" }).pipe(
      Args.withDescription("row (default), task, model-task or inventory"),
      Args.withDefault("row" as Contract)
    )
  },
  ({ contract }) => Effect.flatMap(jsonSchemaOf(contract), (schema) => Console.log(JSON.stringify(schema, null, 2)))
).pipe(Command.withDescription("Print the JSON Schema of a contract (row = the on-disk layout)"))
