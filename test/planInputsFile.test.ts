/** A run's plan_inputs.json that does not decode: the error names the file, the field and what is wrong. */
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
  const exit = await Effect.runPromiseExit(Effect.provide(readPlanInputs(dir), StorageLive))
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail" || exit.cause.error._tag !== "InputError") {
    throw new Error("expected an InputError")
  }
  return { dir, error: exit.cause.error }
}

describe("readPlanInputs on a damaged file", () => {
  it("names the field and the problem in one line, not a Schema tree", async () => {
    const { dir, error } = await failureOf(JSON.stringify({ domains: 5 }))
    expect(error.file).toBe(join(dir, "plan_inputs.json"))
    expect(error.reason).toMatch(/^not a plan inputs file: domains: must be an array, got 5$/)
    expect(error.reason).not.toContain("\n")
  })
  it("says where a file that is not JSON breaks", async () => {
    const { error } = await failureOf("{\"domains\": [\n")
    expect(error.reason).toMatch(/^not a plan inputs file: not valid JSON/)
    expect(error.reason).not.toContain("\n")
  })
})
