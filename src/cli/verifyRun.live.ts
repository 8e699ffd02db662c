/**
 * `--verify` for the commands that make rows with a model (`generate`, `enrich`): the Verifier over the
 * run's inventory (launch specs from the inventory and `--servers-config`), every server started before
 * anything is asked of the model, and the engine's verify hook (src/programs/verifyHook.ts). Loaded only
 * with `--verify` (it loads the MCP SDK).
 */
import { Duration, Effect, Layer, Option, Schema } from "effect"
import type { Inventory } from "../domain/inventory.js"
import type { RunSettings } from "../domain/run.js"
import type { VerifyHook } from "../programs/acceptance.js"
import { readServersConfig } from "../programs/toolsImport.js"
import { makeVerifyHook, verificationLogOf } from "../programs/verifyHook.js"
import { McpClientLive } from "../services/McpClient.js"
import { StorageLive } from "../services/Storage.js"
import { Verifier } from "../services/Verifier.js"
import { parseAllowList } from "../skyrl/verification.js"
import { launchPlan } from "./verify.live.js"
import type { RunVerifyFlags } from "./verifyFlags.js"
import { cassettesDirOf, startTimeoutSetting, warnUnknownAllowNames, warnUnusedConfigured } from "./verifyFlags.js"

/** Servers of the inventory that cannot start: no plan could be verified, so nothing is asked of the model. */
export class VerifyServersUnavailable extends Schema.TaggedError<VerifyServersUnavailable>()(
  "VerifyServersUnavailable",
  { failures: Schema.Array(Schema.Struct({ server: Schema.String, reason: Schema.String })) }
) {
  override get message(): string {
    return `--verify: ${this.failures.length} MCP server${this.failures.length === 1 ? "" : "s"} of the inventory ` +
      "cannot start, so no plan could be verified (nothing was asked of the model):\n" +
      this.failures.map((f) => `  ${f.server}: ${f.reason}`).join("\n")
  }
}

export interface RunVerification {
  readonly flags: RunVerifyFlags
  /** The run's verify setting (its own with --resume --force). */
  readonly setting: NonNullable<RunSettings["verify"]>
  /** The catalogue the run plans with (annotations decide what may run; launch specs how to start). */
  readonly inventory: Inventory
  readonly runDir: string
  readonly out: string
}

/** Runs `program` with the run's verify hook; the servers close when it ends. */
export const withVerification = <A, E, R>(
  v: RunVerification,
  program: (verify: VerifyHook<unknown>) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function*() {
    const configured = Option.isSome(v.flags.serversConfig) ? yield* readServersConfig(v.flags.serversConfig.value) : []
    const { specs, unavailable } = launchPlan(v.inventory, configured)
    yield* warnUnusedConfigured(v.inventory, configured)
    const cassettesDir = cassettesDirOf(v.flags, v.out)
    const allowSideEffects = parseAllowList(v.setting.allow_side_effects.join(","))
    yield* warnUnknownAllowNames(v.inventory, allowSideEffects)
    const verifier = Verifier.live({
      inventory: v.inventory,
      allowSideEffects,
      specs,
      unavailable,
      cassettesDir,
      timeout: Duration.seconds(v.flags.verifyTimeout),
      ...startTimeoutSetting(v.flags.verifyStartTimeout)
    })
    return yield* Effect.scoped(Effect.gen(function*() {
      const failures = yield* (yield* Verifier).start(v.inventory.servers.map((s) => s.name))
      if (failures.length > 0) {
        return yield* new VerifyServersUnavailable({
          failures: failures.map((f) => ({ server: f.server, reason: f.reason }))
        })
      }
      yield* Effect.logInfo(
        `--verify: ${v.inventory.servers.length} MCP servers up; tool results go to ${cassettesDir}, ` +
          `outcomes to ${verificationLogOf(v.runDir)}`
      )
      return yield* program(yield* makeVerifyHook(v.runDir))
    })).pipe(Effect.provide(Layer.provideMerge(verifier, Layer.merge(McpClientLive, StorageLive))))
  }).pipe(Effect.provide(StorageLive))
