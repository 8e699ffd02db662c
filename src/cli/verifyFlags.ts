/**
 * Flags of execution verification: `skyrl verify`'s, and `--verify` with the same meaning for the commands
 * that make rows with a model (`generate`, `enrich`).
 */
import { Options } from "@effect/cli"
import { Duration, Effect, Option } from "effect"
import * as path from "node:path"
import type { Inventory } from "../domain/inventory.js"
import type { RunSettings } from "../domain/run.js"
import { SettingsError } from "../domain/run.js"
import type { VerifyHook } from "../programs/acceptance.js"
import type { McpServerSpec } from "../services/McpClient.js"
import { CASSETTE_FILE } from "../skyrl/cassettes.js"
import type { AllowList } from "../skyrl/verification.js"
import { parseAllowList, unknownAllowNames } from "../skyrl/verification.js"
import type { Output } from "./outputsApart.js"
import {
  flagWithDefault,
  MAX_TIMEOUT_SECONDS,
  optionalFlag,
  serversConfigOption,
  switchFlag,
  timeoutProblem
} from "./shared.js"

export const cassettesOption = optionalFlag(
  Options.directory("cassettes"),
  "Directory of the tool-result cassettes (cassettes.jsonl)",
  undefined,
  "cassettes/ next to --out"
)

export const allowSideEffectsOption = Options.text("allow-side-effects").pipe(
  Options.withDescription(
    "Tools that may run although they are not annotated readOnlyHint: true: TOOL or SERVER.TOOL, comma-separated, " +
      "or `all`. Without it a plan using such a tool is skipped-side-effect and nothing of it runs"
  ),
  Options.optional
)

/** Seconds for a server's start (initialize, tools/list); absent: 30, or the call timeout when longer. */
export const startTimeoutOption = (name: string) =>
  optionalFlag(
    Options.integer(name),
    "Seconds allowed for an MCP server to start (initialize and tools/list; `npx -y` may download first)",
    undefined,
    "30, or the call timeout when longer"
  )

/** The Verifier's `startTimeout` from such a flag: absent leaves its default. */
export const startTimeoutSetting = (seconds: Option.Option<number>): { readonly startTimeout?: Duration.Duration } =>
  Option.match(seconds, { onNone: () => ({}), onSome: (s) => ({ startTimeout: Duration.seconds(s) }) })

/** `generate` / `enrich`: verify each accepted task on the live servers. */
export const runVerifyFlags = {
  verify: switchFlag(
    "verify",
    "Run each accepted task's plan on the live MCP servers before it counts (as `skyrl verify`): a tool error goes " +
      "back to the model once as a repair, then the sample is made again; rows keep task_metadata.verification, " +
      "tool results go to the cassettes. The servers come from the inventory's launch specs or --servers-config"
  ),
  serversConfig: serversConfigOption,
  cassettes: cassettesOption,
  allowSideEffects: allowSideEffectsOption,
  verifyTimeout: flagWithDefault(
    Options.integer("verify-timeout"),
    "With --verify: seconds allowed for one tool call",
    undefined,
    30
  ),
  verifyStartTimeout: startTimeoutOption("verify-start-timeout")
}

export interface RunVerifyFlags {
  readonly verify: boolean
  readonly serversConfig: Option.Option<string>
  readonly cassettes: Option.Option<string>
  readonly allowSideEffects: Option.Option<string>
  readonly verifyTimeout: number
  readonly verifyStartTimeout: Option.Option<number>
}

/** The `verify` run setting from the flags (absent without --verify): what changes which rows are accepted. */
export const verifySettingOf = (flags: RunVerifyFlags): Pick<RunSettings, "verify"> => {
  if (!flags.verify) return {}
  const allow = parseAllowList(Option.getOrUndefined(flags.allowSideEffects))
  return { verify: { allow_side_effects: allow.all ? ["all"] : [...allow.names].sort() } }
}

/**
 * A run's engine with the run's `--verify` (its own setting with --resume --force): the servers started first
 * (src/cli/verifyRun.live.ts, loaded only then: it loads the MCP SDK); without one, or with no inventory
 * (enrich --inventory-from-prompt), the engine alone.
 */
export const withRunVerification = <A, E, R>(
  run: {
    readonly flags: RunVerifyFlags
    readonly setting: RunSettings["verify"]
    readonly inventory: Inventory | undefined
    readonly runDir: string
    readonly out: string
  },
  engine: (verify: VerifyHook<unknown> | undefined) => Effect.Effect<A, E, R>
) => {
  const { inventory, setting } = run
  if (setting === undefined || inventory === undefined) return engine(undefined)
  return Effect.flatMap(
    Effect.promise(() => import("./verifyRun.live.js")),
    (m) => m.withVerification({ ...run, setting, inventory }, engine)
  )
}

/** Where the cassettes go: --cassettes, else cassettes/ next to the output (as `skyrl verify`). */
export const cassettesDirOf = (flags: { readonly cassettes: Option.Option<string> }, out: string): string =>
  Option.getOrElse(flags.cassettes, () => path.join(path.dirname(out), "cassettes"))

/**
 * The cassette store a verifying run appends to, as an output `outputsApart` keeps off the inputs: a dataset or an
 * inventory at `--cassettes DIR/cassettes.jsonl` was appended to (its lines "not cassette entries", with a warning).
 */
export const cassetteStoreOutput = (flags: { readonly cassettes: Option.Option<string> }, out: string): Output => {
  const file = path.join(cassettesDirOf(flags, out), CASSETTE_FILE)
  return { setting: `--cassettes' store ${file}`, file }
}

/** The session's verification flags for the manifest (not compared on --resume). */
export const verifyDetailsOf = (flags: RunVerifyFlags, setting: RunSettings["verify"], out: string) =>
  setting === undefined ? {} : {
    verify: {
      ...setting,
      servers_config: Option.getOrNull(flags.serversConfig),
      cassettes: path.resolve(cassettesDirOf(flags, out)),
      timeout_s: flags.verifyTimeout,
      start_timeout_s: Option.getOrNull(flags.verifyStartTimeout)
    }
  }

/** The flags checked before anything starts: a usage error for what cannot work, a warning for what does nothing. */
export const checkVerifyFlags = (flags: RunVerifyFlags & { readonly backend: string }) =>
  Effect.gen(function*() {
    if (!flags.verify) {
      const unused = [
        ["--servers-config", flags.serversConfig],
        ["--cassettes", flags.cassettes],
        ["--allow-side-effects", flags.allowSideEffects]
      ].flatMap(([name, value]) => Option.isSome(value as Option.Option<string>) ? [name as string] : [])
      if (unused.length > 0) yield* Effect.logWarning(`${unused.join(", ")}: no effect without --verify`)
      return
    }
    if (flags.backend === "batch") {
      return yield* new SettingsError({
        setting: "--verify",
        reason: "cannot be combined with --backend batch (`skyrl batch collect` starts no MCP servers): collect the " +
          "batch, then run `skyrl verify` on the dataset"
      })
    }
    const bad = [
      ["--verify-timeout", flags.verifyTimeout],
      ["--verify-start-timeout", Option.getOrUndefined(flags.verifyStartTimeout)]
    ].find(([, s]) => s !== undefined && timeoutProblem(s as number) !== undefined)
    if (bad !== undefined) {
      return yield* new SettingsError({
        setting: bad[0] as string,
        reason: `must be a positive number of seconds, at most ${MAX_TIMEOUT_SECONDS}, got ${bad[1]}`
      })
    }
  })

/** Warns about `--allow-side-effects` names that match no tool of the inventory (a typo allows nothing). */
export const warnUnknownAllowNames = (inventory: Inventory, allow: AllowList) => {
  const unknown = unknownAllowNames(inventory, allow)
  return unknown.length === 0 ? Effect.void : Effect.logWarning(
    `--allow-side-effects: ${unknown.join(", ")} ${unknown.length === 1 ? "names" : "name"} no tool of the ` +
      `inventory (TOOL or SERVER.TOOL); ${unknown.length === 1 ? "it allows" : "they allow"} nothing`
  )
}

/**
 * Warns about `--servers-config` entries that name no server of the inventory: not used (a typo there starts the
 * server from the inventory's launch spec, without the entry's env, cwd or args).
 */
export const warnUnusedConfigured = (inventory: Inventory, configured: ReadonlyArray<McpServerSpec>) => {
  const known = inventory.servers.map((s) => s.name)
  const unused = configured.map((s) => s.name).filter((name) => !known.includes(name))
  return unused.length === 0 ? Effect.void : Effect.logWarning(
    `--servers-config: ${unused.join(", ")} ${unused.length === 1 ? "names" : "name"} no server of the inventory ` +
      `(${known.join(", ")}); ${unused.length === 1 ? "its entry is" : "their entries are"} not used`
  )
}
