/**
 * The Inventory service: the tool catalogue of a run (after the `--servers` filter), plan validation
 * against the tools' input schemas, the strict output schema constrained to the catalogue, and the
 * decoding of the model's steps. The work itself is pure (src/skyrl/planValidation.ts,
 * src/skyrl/outputSchema.ts); this service binds it to one loaded inventory and logs the params mode
 * chosen per tool once, when the layer is built.
 *
 * Layers: `Inventory.fromFile(path?, { servers })` (default: the bundled data/inventory/finance-mcp.json)
 * and `Inventory.fromValue(inventory, { servers })` (tests, inline catalogues).
 */
import { Context, Effect, Either, Layer } from "effect"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Inv from "../domain/inventory.js"
import type { ModelStepInput, OutputSchemaOptions, ToolChoice } from "../skyrl/outputSchema.js"
import { buildOutputSchema, decodeSteps } from "../skyrl/outputSchema.js"
import type { PlanStep, ValidateOptions } from "../skyrl/planValidation.js"
import { repairMessage, schemaProblems, validatePlan } from "../skyrl/planValidation.js"
import { Storage } from "./Storage.js"

export interface InventoryOptions {
  /** Keep only these servers (the `--servers a,b` filter); unknown names are an error. */
  readonly servers?: ReadonlyArray<string> | undefined
  readonly validation?: ValidateOptions
  /**
   * The inventory a run kept (its `inventory.json`, or the file its records name), read back to go on with the
   * run: a comma in a name is accepted with a warning (`Inv.DecodeOptions`), as the run was made with it.
   */
  readonly keptByRun?: boolean
}

export interface InventoryApi {
  /** The loaded catalogue, after the servers filter. */
  readonly get: Effect.Effect<Inv.Inventory>
  readonly inventory: Inv.Inventory
  /** Where the catalogue came from (file path, or "inventory" for inline values). */
  readonly source: string
  /** Issues of a plan against the catalogue (empty = valid). */
  readonly validatePlan: (steps: ReadonlyArray<PlanStep>) => ReadonlyArray<Inv.StepIssue>
  /** The strict JSON Schema for a ModelTask whose tool_sequence is constrained to the catalogue. */
  readonly outputJsonSchema: (options?: OutputSchemaOptions) => Record<string, unknown>
  /** Params mode per tool in the output schema (strict object or JSON string). */
  readonly toolModes: ReadonlyArray<ToolChoice>
  /** Model steps → plain steps numbered 1..n (JSON-string params parsed, optional nulls dropped). */
  readonly decodeSteps: (
    modelSteps: ReadonlyArray<ModelStepInput>
  ) => Either.Either<ReadonlyArray<PlanStep>, ReadonlyArray<Inv.StepIssue>>
  /** decodeSteps, then validatePlan: the plan if it is valid, else every issue. */
  readonly checkModelSteps: (
    modelSteps: ReadonlyArray<ModelStepInput>
  ) => Either.Either<ReadonlyArray<PlanStep>, ReadonlyArray<Inv.StepIssue>>
  /** The text sent back to the model to repair an invalid plan. */
  readonly repairMessage: (issues: ReadonlyArray<Inv.StepIssue>) => string
}

/** The bundled finance inventory, found from this module's location (src/services/ or dist/). */
export const defaultInventoryPath = (): string => {
  const relative = join("data", "inventory", "finance-mcp.json")
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, relative)
    if (existsSync(candidate)) return candidate
    const parent = dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  return relative
}

/** Builds the service for an already decoded inventory: checks its schemas compile, applies the filter. */
export const makeInventory = (
  full: Inv.Inventory,
  source: string,
  options?: InventoryOptions
): Effect.Effect<InventoryApi, Inv.InventoryError> =>
  Effect.gen(function*() {
    const problem = schemaProblems(full)[0]
    if (problem !== undefined) {
      return yield* new Inv.InventoryError({ source, entry: problem.entry, reason: problem.reason })
    }
    const inventory = yield* Inv.selectServers(full, options?.servers, source)
    if (Inv.toolCount(inventory) === 0) {
      return yield* new Inv.InventoryError({ source, entry: "", reason: "the inventory has no tools" })
    }
    const built = buildOutputSchema(inventory)
    const fallbacks = built.choices.filter((c) => c.mode === "json-string")
    yield* Effect.logDebug(
      `inventory ${source}: ${inventory.servers.length} servers, ${built.choices.length} tools; ` +
        `params strict for ${built.choices.length - fallbacks.length}, JSON string for ${fallbacks.length}`
    )
    for (const c of built.choices) {
      if (c.mode === "strict") yield* Effect.logDebug(`tool ${c.server}/${c.tool}: params constrained (strict schema)`)
      else {yield* Effect.logInfo(
          `tool ${c.server}/${c.tool}: params as a JSON string, validated after decoding (${c.reason})`
        )}
    }
    if (built.violations.length > 0) {
      yield* Effect.logWarning(
        `inventory ${source}: the output schema exceeds OpenAI's strict limits (${built.violations.join("; ")}); ` +
          "narrow it with --servers"
      )
    }
    const schemas = new Map<string, Record<string, unknown>>([["", built.schema]])
    const validate = (steps: ReadonlyArray<PlanStep>) => validatePlan(inventory, steps, options?.validation)
    const decode = (modelSteps: ReadonlyArray<ModelStepInput>) => decodeSteps(inventory, modelSteps)
    return {
      get: Effect.succeed(inventory),
      inventory,
      source,
      validatePlan: validate,
      outputJsonSchema: (schemaOptions) => {
        const key = schemaOptions?.maxSteps === undefined ? "" : String(schemaOptions.maxSteps)
        let schema = schemas.get(key)
        if (schema === undefined) {
          schema = buildOutputSchema(inventory, schemaOptions).schema
          schemas.set(key, schema)
        }
        return schema
      },
      toolModes: built.choices,
      decodeSteps: decode,
      checkModelSteps: (modelSteps) =>
        Either.flatMap(decode(modelSteps), (steps) => {
          const issues = validate(steps)
          return issues.length === 0 ? Either.right(steps) : Either.left(issues)
        }),
      repairMessage
    } satisfies InventoryApi
  })

/**
 * Reads, normalizes and decodes an inventory file, and checks every tool's input schema compiles (errors
 * name the path and the entry). `keptByRun`: see `InventoryOptions`.
 */
export const loadInventoryFile = (
  path: string,
  options?: Pick<InventoryOptions, "keptByRun">
): Effect.Effect<Inv.Inventory, Inv.InventoryError, Storage> =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const text = yield* storage.readText(path).pipe(
      Effect.mapError((e) => new Inv.InventoryError({ source: path, entry: "", reason: `cannot read: ${e.reason}` }))
    )
    const kept = options?.keptByRun === true
    const inventory = yield* Inv.parseInventoryText(text, path, kept ? { commas: "accepted" } : undefined)
    const problem = schemaProblems(inventory)[0]
    if (problem !== undefined) {
      return yield* new Inv.InventoryError({ source: path, entry: problem.entry, reason: problem.reason })
    }
    if (kept) yield* warnCommaNames(path, inventory)
    return inventory
  })

/** The warning for the names holding a comma in an inventory a run kept (none: nothing). */
const warnCommaNames = (path: string, inventory: Inv.Inventory) => {
  const named = Inv.commaNamed(inventory)
  if (named.length === 0) return Effect.void
  const names = named.map((n) => `${n.entry} ${JSON.stringify(n.name)}`).join(", ")
  return Effect.logWarning(
    `${path}: ${names} ${named.length === 1 ? "holds" : "hold"} a comma, which an inventory may not since ` +
      "2026-12-02; read as the run kept it, since the run was made with it. --servers and --allow-side-effects " +
      "are comma-separated lists and cannot name it: leave --servers out to keep every server; --allow-side-effects " +
      "takes such a server's tool by the tool's name alone, a tool whose name holds a comma only as `all`"
  )
}

export class Inventory extends Context.Tag("skyrl/Inventory")<Inventory, InventoryApi>() {
  /** The catalogue in a file (default: the bundled finance inventory). */
  static fromFile = (
    path?: string,
    options?: InventoryOptions
  ): Layer.Layer<Inventory, Inv.InventoryError, Storage> =>
    Layer.effect(
      Inventory,
      Effect.gen(function*() {
        const file = path ?? defaultInventoryPath()
        const inventory = yield* loadInventoryFile(file, options)
        return yield* makeInventory(inventory, file, options)
      })
    )

  /** An inline catalogue (a decoded Inventory, or a raw value in any accepted catalogue shape). */
  static fromValue = (value: unknown, options?: InventoryOptions): Layer.Layer<Inventory, Inv.InventoryError> =>
    Layer.effect(
      Inventory,
      Effect.flatMap(
        value instanceof Inv.Inventory ? Effect.succeed(value) : Inv.decodeInventory(value, "inventory"),
        (inventory) => makeInventory(inventory, "inventory", options)
      )
    )
}
