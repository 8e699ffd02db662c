/** Live wiring of `skyrl validate` (loaded lazily by src/cli/validate.ts). */
import { Console, Effect, Option } from "effect"
import * as Inv from "../domain/inventory.js"
import { SettingsError } from "../domain/run.js"
import { DatasetViolationsError, validateDatasets } from "../programs/validate.js"
import { defaultInventoryPath, loadInventoryFile } from "../services/Inventory.js"
import { ScratchLive } from "../services/Scratch.js"
import { StorageLive } from "../services/Storage.js"
import type { RuleId } from "../skyrl/checks.js"
import { defaultSeverity, formatReport, RULES } from "../skyrl/checks.js"
import { renderDiversityText } from "../skyrl/diversity.js"
import { parseNearDupThreshold } from "../skyrl/nearDup.js"
import { positiveInt } from "./runShared.js"

/** The warning rules a run may make fail it (`--fail-on`). */
const WARNING_RULES: ReadonlyArray<RuleId> = RULES.filter((r) => defaultSeverity(r.id) === "warning").map((r) => r.id)

/** `--fail-on`: warning rule ids, comma-separated, `warnings` among them for all of them. */
const parseFailOn = (text: string): Effect.Effect<ReadonlyArray<RuleId>, SettingsError> => {
  const names = text.split(",").map((n) => n.trim()).filter((n) => n !== "")
  // `warnings` is every warning rule, alone or beside some (`warnings,plan/complexity`: the same).
  const unknown = names.filter((n) => n !== "warnings" && !(WARNING_RULES as ReadonlyArray<string>).includes(n))
  if (names.length === 0 || unknown.length > 0) {
    return Effect.fail(
      new SettingsError({
        setting: "--fail-on",
        reason: `${names.length === 0 ? "no rule given" : `not a warning rule: ${unknown.join(", ")}`}; ` +
          `the warning rules are ${WARNING_RULES.join(", ")} (or \`warnings\` for all; errors always fail)`
      })
    )
  }
  return Effect.succeed(names.includes("warnings") ? WARNING_RULES : names as ReadonlyArray<RuleId>)
}

/**
 * The hint for rows none of whose plan servers the inventory has (rows made with an imported inventory, checked
 * against the bundled one): every plan then fails `plan/tool`, and the plan-leak check counts no distractor.
 * Server `prompt` (rows of `enrich --inventory-from-prompt`, whose tools are their own prompt's `<tools>` block)
 * is left out when the inventory lacks it: such rows are not checked against it, and no file is there to give.
 */
const otherInventory = (
  planServers: ReadonlyArray<string>,
  inventory: Inv.Inventory,
  given: Option.Option<string>
): string | undefined => {
  const known = inventory.servers.map((s) => s.name)
  const servers = planServers.filter((s) => s !== Inv.PROMPT_SERVER || known.includes(s))
  if (servers.length === 0 || servers.some((s) => known.includes(s))) return undefined
  const some = (names: ReadonlyArray<string>) =>
    names.length <= 6 ? names.join(", ") : `${names.slice(0, 5).join(", ")} and ${names.length - 5} more`
  const which = Option.match(given, {
    onNone: () => `the bundled inventory (no --inventory given: ${some(known)})`,
    onSome: (file) => `${file} (${some(known)})`
  })
  return `no server of the plans (${some(servers)}) is in ${which}: give --inventory the inventory the rows ` +
    "were made with"
}

export const runValidate = (options: {
  readonly files: ReadonlyArray<string>
  readonly inventory: Option.Option<string>
  readonly maxPromptTokens: number
  readonly nearDup: string
  readonly json: boolean
  readonly failOn: Option.Option<string>
}) =>
  Effect.gen(function*() {
    const nearDup = parseNearDupThreshold(options.nearDup)
    if (typeof nearDup === "string") {
      // No "off" here (generate has it): validate's near-duplicate findings are warnings that change the exit
      // code only when --fail-on asks, so there is nothing to turn off; --near-dup 1 keeps only prompts with
      // the same shingles.
      const off = options.nearDup.trim().toLowerCase() === "off"
        ? "; validate reports near-duplicates as warnings (the exit code ignores them unless --fail-on " +
          "duplicate/similar-prompt): --near-dup 1 keeps only the closest"
        : ""
      return yield* new SettingsError({ setting: "--near-dup", reason: `${nearDup}${off}` })
    }
    const failOn = yield* Option.match(options.failOn, { onNone: () => Effect.succeed([]), onSome: parseFailOn })
    const maxPromptTokens = yield* positiveInt(options.maxPromptTokens, "--max-prompt-tokens (MAX_PROMPT_TOKENS)")
    const inventory = yield* loadInventoryFile(Option.getOrElse(options.inventory, defaultInventoryPath))
    const report = yield* validateDatasets({
      files: options.files,
      inventory,
      maxPromptTokens,
      nearDup,
      severity: Object.fromEntries(failOn.map((id) => [id, "error"]))
    })
    const { diversity, ...checks } = report
    yield* Console.log(
      options.json
        ? JSON.stringify(report, null, 2)
        : `${formatReport(checks).trimEnd()}\n\n${renderDiversityText(diversity)}`
    )
    if (!report.ok) {
      return yield* new DatasetViolationsError({
        files: options.files,
        violations: report.violations,
        rules: report.rules.filter((r) => r.count > 0 && r.severity === "error").map((r) => r.id),
        written: false,
        hint: otherInventory(Object.keys(report.coverage.server), inventory, options.inventory)
      })
    }
  }).pipe(Effect.provide(StorageLive), Effect.provide(ScratchLive))
