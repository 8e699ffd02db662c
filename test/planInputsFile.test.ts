/**
 * A run's plan_inputs.json that does not decode: the error names the file, the field and what is wrong in one line,
 * as a bad manifest.json is named (`FILE, FIELD: REASON`), and is bad input (exit 2; it was exit 1, and said
 * `FILE: not a plan inputs file: FIELD: REASON`).
 */
import { Effect, Exit } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { readPlanInputs } from "../src/programs/planStages.js"
import { StorageLive } from "../src/services/Storage.js"

const failureOf = async (text: string) => {
  const dir = mkdtempSync(join(tmpdir(), "skyrl-plan-inputs-"))
  writeFileSync(join(dir, "plan_inputs.json"), text)
  const exit = await Effect.runPromiseExit(Effect.provide(readPlanInputs(dir, "RUN_DIR"), StorageLive))
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail" || exit.cause.error._tag !== "SettingsError") {
    throw new Error("expected a SettingsError")
  }
  return { file: join(dir, "plan_inputs.json"), error: exit.cause.error }
}

describe("readPlanInputs on a damaged file", () => {
  it("names the file, the field and the problem in one line, not a Schema tree; exit 2", async () => {
    const { error, file } = await failureOf(JSON.stringify({ domains: 5 }))
    expect(error.message).toBe(
      `RUN_DIR: ${file}, domains: must be an array, got 5: not a readable plan inputs file (the run's domains, ` +
        "subjects and list files: its work plan is made from them); mend the file"
    )
    expect(error.exitCode).toBe(2)
  })
  it("says where a file that is not JSON breaks", async () => {
    const { error, file } = await failureOf("{\n  \"domains\": [x]\n}\n")
    expect(error.message).toMatch(
      new RegExp(`^RUN_DIR: ${file}: not valid JSON: Unexpected token .* line 2, column 15\\)?: not a readable plan`)
    )
    expect(error.message).not.toContain("\n")
  })
})
