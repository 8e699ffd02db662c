/** Live wiring of `skyrl validate` (loaded lazily by src/cli/validate.ts). */
import { Console, Effect, Option } from "effect"
import { DatasetViolationsError, validateFiles } from "../programs/validate.js"
import { defaultInventoryPath, loadInventoryFile } from "../services/Inventory.js"
import { StorageLive } from "../services/Storage.js"
import { formatReport } from "../skyrl/checks.js"

export const runValidate = (options: {
  readonly files: ReadonlyArray<string>
  readonly inventory: Option.Option<string>
  readonly maxPromptTokens: number
  readonly json: boolean
}) =>
  Effect.gen(function*() {
    const inventory = yield* loadInventoryFile(Option.getOrElse(options.inventory, defaultInventoryPath))
    const report = yield* validateFiles({ files: options.files, inventory, maxPromptTokens: options.maxPromptTokens })
    yield* Console.log(options.json ? JSON.stringify(report, null, 2) : formatReport(report).trimEnd())
    if (!report.ok) {
      return yield* new DatasetViolationsError({
        files: options.files,
        violations: report.violations,
        rules: report.rules.filter((r) => r.count > 0 && r.severity === "error").map((r) => r.id),
        written: false
      })
    }
  }).pipe(Effect.provide(StorageLive))
