/**
 * prompt/user-names-tool (promptLeak.ts `userLeak`, `systemLeak`) as the current reading reads two forms the
 * "until-2026-12-03d" reading (runs that recorded `user_leaks: "repaired-v5"`) read otherwise: a sentence's end
 * between a server's name and the rest of a tool name's words does not join them ("Use FMP. Get quote ..." is
 * prose), and a name one edit off with invisible characters in it is a name ("fmp_get_\u200bqoute"). Older runs
 * keep their reading: `promptReadingOf`, and a plain `--resume` names `--force` (`settingsDifferences`).
 */
import { describe, expect, it } from "vitest"
import { promptReadingOf } from "../src/programs/generate.js"
import { settingsDifferences } from "../src/services/RunJournal.js"
import { systemLeak } from "../src/skyrl/promptLeak.js"
import { settingsFor } from "./support/engine.js"
import { named, plan } from "./support/userLeak.js"

describe("prompt/user-names-tool: sentence ends and invisible characters in a typo", () => {
  it("a sentence's end between the server's name and the words does not join them", () => {
    for (
      const user of [
        "Use FMP. Get quote for AAPL and summarise it.",
        "Use FMP.  Get quote for AAPL and summarise it.",
        "Use FMP.\nGet quote for AAPL and summarise it.",
        "Use FMP. \u200bGet quote for AAPL and summarise it.",
        "Use FMP! Get quote for AAPL and summarise it.",
        "Use FMP? Get quote for AAPL and summarise it.",
        "Ask polygon. Get news about AAPL, 3 items."
      ]
    ) expect(named(user), user).toBeUndefined()
  })

  it("the server's name and the words with a colon, slash, arrow or a dot inside a name still count", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["FMP: get quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"FMP: get quote\")"],
      ["Use FMP/get quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"FMP/get quote\")"],
      ["Use FMP -> get quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"FMP -> get quote\")"],
      ["Use fmp.get_quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"fmp.get_quote\")"],
      ["Use FMP.Get quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"FMP.Get quote\")"],
      ["Use FMP get quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"FMP get quote\")"],
      // A full stop not followed by a capital is no sentence's end: the words still join.
      ["Use fmp. get quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"fmp. get quote\")"],
      // A sentence that ends before the name does not hide a name written after it.
      ["Use FMP. FMP get quote for AAPL, please.", "fmp_get_quote (\"FMP get quote\")"]
    ]
    for (const [user, shown] of cases) expect(named(user), user).toBe(`names the plan's ${shown}`)
  })

  it("a name one edit off with invisible characters in it is a name", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["Call fmp_get_\u200bqoute for AAPL, then the 3 latest news.", "fmp_get_\u200bqoute"],
      ["Call fmp\u200b_get_qoute for AAPL, then the 3 latest news.", "fmp\u200b_get_qoute"],
      ["Call fmp_get_qo\u2060ute for AAPL, then the 3 latest news.", "fmp_get_qo\u2060ute"],
      ["Call fmp\u200bget\u200bqoute for AAPL, then the 3 latest news.", "fmp\u200bget\u200bqoute"],
      ["Get the AAPL quote, then polygon_get_\u00adnwes, 3 of them.", "polygon_get_\u00adnwes"]
    ]
    for (const [user, shown] of cases) {
      const tool = shown.startsWith("polygon") ? "polygon_get_news" : "fmp_get_quote"
      expect(named(user), user).toBe(`names the plan's ${tool} (${JSON.stringify(shown)})`)
    }
    // Each alone was a name already.
    expect(named("Call fmp_get_qoute for AAPL.")).toBe(`names the plan's fmp_get_quote ("fmp_get_qoute")`)
    expect(named("Call fmp_get_\u200bquote for AAPL.")).toBe(`names the plan's fmp_get_quote ("fmp_get_\u200bquote")`)
    // Still none: two edits off, a short name one edit off (get_quote: 9 characters), one part.
    for (
      const user of [
        "Use fmp_get_\u200bqoutes on AAPL, then the 3 latest news.",
        "Use get_\u200bqoute on AAPL, then the 3 latest news.",
        "Use fmpgetqoute on AAPL, then the 3 latest news."
      ]
    ) expect(named(user), user).toBeUndefined()
  })

  it("a system message's own text is read the same way", () => {
    expect(systemLeak("Use FMP. Get quote data where it helps.", plan, () => [])).toBeUndefined()
    expect(systemLeak("Start with fmp_get_\u200bqoute.", plan, () => []))
      .toContain(`names the plan's fmp_get_quote ("fmp_get_\u200bqoute")`)
  })

  it("runs that recorded repaired-v5 keep their reading; new runs record a later setting", () => {
    expect(promptReadingOf(settingsFor(1, { literals: "stated-v4", user_leaks: "repaired-v5" })))
      .toBe("until-2026-12-03d")
    expect(promptReadingOf(settingsFor(1, { literals: "stated-v4", user_leaks: "repaired-v7" }))).toBe("current")
    // Read as then: the full stop joined the words, and an invisible character hid a typo.
    expect(named("Use FMP. Get quote for AAPL and summarise it.", "until-2026-12-03d"))
      .toBe(`names the plan's fmp_get_quote ("FMP. Get quote")`)
    expect(named("Call fmp_get_\u200bqoute for AAPL, then the 3 latest news.", "until-2026-12-03d")).toBeUndefined()
    expect(systemLeak("Use FMP. Get quote data where it helps.", plan, () => [], "until-2026-12-03d"))
      .toContain(`fmp_get_quote ("FMP. Get quote")`)
    // The rules that reading had before still hold there.
    expect(named("Call fmp_get_qoute for AAPL.", "until-2026-12-03d")).toBe(
      `names the plan's fmp_get_quote ("fmp_get_qoute")`
    )
    expect(named("FMP: get quote for AAPL.", "until-2026-12-03d")).toBe(
      `names the plan's fmp_get_quote ("FMP: get quote")`
    )
    // A plain --resume of such a run names --force and the time the new reading landed.
    const now = settingsFor(5, { literals: "stated-v4", user_leaks: "repaired-v6" })
    expect(settingsDifferences(settingsFor(5, { literals: "stated-v4", user_leaks: "repaired-v5" }), now)).toEqual([
      "user_leaks: repaired-v5 in the run, repaired-v6 now (a run made before 2026-12-03 09:45 UTC: resume with --force, " +
      "which keeps its rule)"
    ])
  })
})
