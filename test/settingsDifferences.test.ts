/**
 * `settingsDifferences`: why `--resume` refuses a run, field by field, and for a run made before a setting
 * existed, the flag that resumes it.
 */
import { describe, expect, it } from "vitest"
import { settingsDifferences } from "../src/services/RunJournal.js"
import { settingsFor } from "./support/engine.js"

const input = {
  path: "/data/chats.json",
  sha256: "0".repeat(64),
  format: "auto",
  limit: null,
  overwrite: false,
  inventory_from_prompt: false
}

describe("settingsDifferences", () => {
  it("names the field of an object setting that differs, not the whole object", () => {
    const run = settingsFor(5, { command: "enrich", input: { ...input, list_offered_tools: true } })
    const now = settingsFor(5, { command: "enrich", input })
    expect(settingsDifferences(run, now)).toEqual(["input.list_offered_tools: true in the run, (none) now"])
    expect(settingsDifferences(settingsFor(20), settingsFor(10))).toEqual(["n: 20 in the run, 10 now"])
  })

  it("a setting the run lacks (made before it existed): the flag that resumes it", () => {
    const before = settingsFor(5, { command: "enrich", input: { ...input, list_offered_tools: true } })
    const now = settingsFor(5, {
      command: "enrich",
      input: { ...input, list_offered_tools: true, shown_schemas: "checked", plan_leak: "rejected" },
      literals: "stated-v4",
      user_leaks: "repaired-v4"
    })
    expect(settingsDifferences(before, now)).toEqual([
      "input.shown_schemas: (none) in the run, checked now (resume with --allow-schema-mismatch)",
      "input.plan_leak: (none) in the run, rejected now (resume with --allow-plan-leak)",
      "literals: (none) in the run, stated-v4 now (resume with --allow-unstated-literals)",
      "user_leaks: (none) in the run, repaired-v4 now (resume with --allow-tool-names-in-prompt)"
    ])
  })

  it("a setting whose value the run recorded under an older rule: how to resume it with that rule", () => {
    const before = settingsFor(5, { literals: "stated" })
    const now = settingsFor(5, { literals: "stated-v4", user_leaks: "repaired-v4" })
    expect(settingsDifferences(before, settingsFor(5, { literals: "stated-v4" }))).toEqual([
      "literals: stated in the run, stated-v4 now (a run made before 2026-12-02: resume with " +
      "--force, which keeps its rule)"
    ])
    const earlierToday = settingsFor(5, { literals: "stated-outside-tool-lists", user_leaks: "repaired" })
    expect(settingsDifferences(earlierToday, now)).toEqual([
      "literals: stated-outside-tool-lists in the run, stated-v4 now (a run made before 2026-12-02 04:00 UTC: " +
      "resume with --force, which keeps its rule)",
      "user_leaks: repaired in the run, repaired-v4 now (a run made before 2026-12-02 04:00 UTC: resume with " +
      "--force, which keeps its rule)"
    ])
    // A run made on 2026-12-02 after 04:00 UTC, before number words past twelve and the wider leak reading.
    expect(settingsDifferences(settingsFor(5, { literals: "stated-v3", user_leaks: "repaired-v2" }), now)).toEqual([
      "literals: stated-v3 in the run, stated-v4 now (a run made before 2026-12-02 20:30 UTC: resume with --force, which " +
      "keeps its rule)",
      "user_leaks: repaired-v2 in the run, repaired-v4 now (a run made before 2026-12-02 20:30 UTC: resume with --force, " +
      "which keeps its rule)"
    ])
    // A run made before a server-prefixed tool name written as words counted (its literals read as now).
    expect(settingsDifferences(settingsFor(5, { literals: "stated-v4", user_leaks: "repaired-v3" }), now)).toEqual([
      "user_leaks: repaired-v3 in the run, repaired-v4 now (a run made before 2026-12-03 03:45 UTC: resume with --force, " +
      "which keeps its rule)"
    ])
    // A run made before spelled-out, percent-encoded, one-edit and `server: words` names counted.
    const v5 = settingsFor(5, { literals: "stated-v4", user_leaks: "repaired-v5" })
    expect(settingsDifferences(settingsFor(5, { literals: "stated-v4", user_leaks: "repaired-v4" }), v5)).toEqual([
      "user_leaks: repaired-v4 in the run, repaired-v5 now (a run made before 2026-12-03 07:05 UTC: resume with --force, " +
      "which keeps its rule)"
    ])
  })
})
