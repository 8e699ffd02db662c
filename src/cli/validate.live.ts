/** Live wiring of `skyrl validate` (loaded lazily by src/cli/validate.ts). */
import { Console, Effect, Option } from "effect"
import { SettingsError } from "../domain/run.js"
import { DatasetViolationsError, validateDatasets } from "../programs/validate.js"
import { defaultInventoryPath, loadInventoryFile } from "../services/Inventory.js"
import { ScratchLive } from "../services/Scratch.js"
import { StorageLive } from "../services/Storage.js"
import { formatReport } from "../skyrl/checks.js"
import { renderDiversityText } from "../skyrl/diversity.js"
import { parseNearDupThreshold } from "../skyrl/nearDup.js"
import { positiveInt } from "./runShared.js"

export const runValidate = (options: {
  readonly files: ReadonlyArray<string>
  readonly inventory: Option.Option<string>
  readonly maxPromptTokens: number
  readonly nearDup: string
  readonly json: boolean
}) =>
  Effect.gen(function*() {
    const nearDup = parseNearDupThreshold(options.nearDup)
    if (typeof nearDup === "string") {
      // No "off" here (generate has it): validate's near-duplicate findings are warnings that never change the
      // exit code, so there is nothing to turn off; --near-dup 1 keeps only prompts with the same shingles.
      const off = options.nearDup.trim().toLowerCase() === "off"
        ? "; validate reports near-duplicates as warnings only (the exit code ignores them): --near-dup 1 keeps only the closest"
        : ""
      return yield* new SettingsError({ setting: "--near-dup", reason: `${nearDup}${off}` })
    }
    const maxPromptTokens = yield* positiveInt(options.maxPromptTokens, "--max-prompt-tokens (MAX_PROMPT_TOKENS)")
    const inventory = yield* loadInventoryFile(Option.getOrElse(options.inventory, defaultInventoryPath))
    const report = yield* validateDatasets({
      files: options.files,
      inventory,
      maxPromptTokens,
      nearDup
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
        written: false
      })
    }
  }).pipe(Effect.provide(StorageLive), Effect.provide(ScratchLive))
