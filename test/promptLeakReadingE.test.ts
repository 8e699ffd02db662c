/**
 * prompt/user-names-tool (promptLeak.ts `userLeak`, `systemLeak`) as the current reading reads three forms the
 * "until-2026-12-05" reading (runs that recorded `user_leaks: "repaired-v6"`) passed: a tool name Markdown-escaped
 * (`fmp\_get\_quote`, which Markdown renders as `fmp_get_quote`: models escape underscores in Markdown), one written
 * with HTML character references (`fmp&#95;get&lowbar;quote`), and a server-prefixed name written as words after its
 * server's name possessive (`FMP's get quote`); and one it reads otherwise: a JSON object pasted as data (a key no
 * step's params have beside a param's key) is no params dump. Older runs keep their reading: `promptReadingOf`, and a plain
 * `--resume` names `--force` (`settingsDifferences`).
 */
import { describe, expect, it } from "vitest"
import { promptReadingOf } from "../src/programs/generate.js"
import { settingsDifferences } from "../src/services/RunJournal.js"
import { systemLeak, userLeak } from "../src/skyrl/promptLeak.js"
import type { PromptReading } from "../src/skyrl/promptReading.js"
import { settingsFor } from "./support/engine.js"
import { named, plan } from "./support/userLeak.js"

/** Each text, and the tool and text `named` answers with in the current reading (none in "until-2026-12-05"). */
const NEW_FORMS: ReadonlyArray<readonly [string, string]> = [
  ["Call fmp\\_get\\_quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"fmp\\\\_get\\\\_quote\")"],
  ["Call get\\_quote on FMP for AAPL, then the 3 latest news.", "fmp_get_quote (\"get\\\\_quote\")"],
  ["Call fmp\\-get\\-quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"fmp\\\\-get\\\\-quote\")"],
  ["Call fmp&#95;get&#95;quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"fmp&#95;get&#95;quote\")"],
  ["Call fmp&#x5F;get&#x5f;quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"fmp&#x5F;get&#x5f;quote\")"],
  [
    "Call fmp&lowbar;get&UnderBar;quote for AAPL, then the 3 latest news.",
    "fmp_get_quote (\"fmp&lowbar;get&UnderBar;quote\")"
  ],
  // Both at once.
  ["Call fmp\\_get&#95;quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"fmp\\\\_get&#95;quote\")"],
  ["Use FMP's get quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"FMP's get quote\")"],
  ["Use FMP\u2019s get quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"FMP\u2019s get quote\")"],
  ["Use fmp\u2019s  get   quote for AAPL, then the 3 latest news.", "fmp_get_quote (\"fmp\u2019s  get   quote\")"],
  ["Get AAPL's price, then polygon's get news for it, 3 items.", "polygon_get_news (\"polygon's get news\")"]
]

describe("prompt/user-names-tool: Markdown escapes, character references, a possessive server's name", () => {
  it("names the plan's tool in the current reading, and none in the reading of runs that recorded repaired-v6", () => {
    for (const [user, shown] of NEW_FORMS) {
      expect(named(user), user).toBe(`names the plan's ${shown}`)
      expect(named(user, "until-2026-12-05"), user).toBeUndefined()
    }
  })

  it("prose with escapes, references or a possessive server's name names no tool", () => {
    for (
      const user of [
        "Compare AT&amp;T with FMP's quote for AAPL and summarise it.",
        "Read FMP's data for AAPL: quote and the 3 latest news.",
        "Use FMP's quote for AAPL, then polygon's news, 3 items.",
        "Save it under C:\\\\reports\\\\fmp\\\\aapl.txt after getting the quote.",
        "Price \\* 3 and the 3 latest news \\_ AAPL &lt;quote&gt; &#128512; &#xD800; &bogus;",
        "Get FMP's quote, get news for AAPL (3 items).",
        // A query string's `&` is no reference: the percent-encoded run ends before it.
        "Get the AAPL quote, then GET /news?q=polygon&n=3 &amp; more."
      ]
    ) expect(named(user), user).toBeUndefined()
  })

  it("a JSON object pasted as data, with keys no step's params have, is no params dump; one of params keys is", () => {
    const dump = (user: string, reading?: PromptReading) =>
      userLeak(user, plan, reading)?.split("; ").find((p) => p.startsWith("holds step"))
        ?.replace(/: the policy is told the plan instead of choosing it$/, "")
    const data = [
      "My position: {\"symbol\": \"AAPL\", \"shares\": 10, \"cost_basis\": 150.5}. How is it doing, with 3 news items?",
      "Watchlist: {\"watchlist\": [{\"symbol\": \"AAPL\"}], \"owner\": \"me\"}. Quote it, and 3 news items.",
      "Row: {\"Symbol\": \"AAPL\", \"note\": \"a } in a string\", \"limit\": 3}. Quote and news, please."
    ]
    for (const user of data) {
      expect(dump(user), user).toBeUndefined()
      expect(dump(user, "until-2026-12-05"), user).toMatch(/^holds step [12]'s params as JSON/)
    }
    const dumps: ReadonlyArray<readonly [string, string]> = [
      ["Params: {\"symbol\": \"AAPL\", \"limit\": 3}", "holds step 1's params as JSON (\"symbol\")"],
      [
        "Use {\"symbol\": \"AAPL\"}, then {\"ticker\": \"AAPL\", \"limit\": 3}.",
        "holds step 1's params as JSON (\"symbol\")"
      ],
      // A Python dict, and JSON cut short, are read as before: no JSON to call data.
      ["Use {'symbol': 'AAPL', 'shares': 10}.", "holds step 1's params as JSON (\"symbol\")"],
      ["Use {\"symbol\": \"AAPL\", \"shares\": 10 and the news.", "holds step 1's params as JSON (\"symbol\")"],
      // A key outside the data object is a dump still.
      [
        "Data {\"symbol\": \"AAPL\", \"shares\": 10}, then \"limit\": 3 news.",
        "holds step 2's params as JSON (\"limit\")"
      ]
    ]
    for (const [user, shown] of dumps) expect(dump(user), user).toBe(shown)
  })

  it("a system message's own text is read the same way", () => {
    expect(systemLeak("Start with fmp\\_get\\_quote.", plan, () => []))
      .toContain(`names the plan's fmp_get_quote ("fmp\\\\_get\\\\_quote")`)
    expect(systemLeak("Start with FMP's get quote.", plan, () => [], "until-2026-12-05")).toBeUndefined()
  })

  it("runs that recorded repaired-v6 keep their reading; new runs record repaired-v7", () => {
    expect(promptReadingOf(settingsFor(1, { literals: "stated-v4", user_leaks: "repaired-v6" })))
      .toBe("until-2026-12-05")
    expect(promptReadingOf(settingsFor(1, { literals: "stated-v4", user_leaks: "repaired-v7" }))).toBe("current")
    // The rules that reading had before still hold there.
    expect(named("Use FMP. Get quote for AAPL and summarise it.", "until-2026-12-05")).toBeUndefined()
    expect(named("Call fmp%5Fget%5Fquote for AAPL.", "until-2026-12-05"))
      .toBe(`names the plan's fmp_get_quote ("fmp%5Fget%5Fquote")`)
    expect(named("Call fmp_get_\u200bqoute for AAPL.", "until-2026-12-05"))
      .toBe(`names the plan's fmp_get_quote ("fmp_get_\u200bqoute")`)
    // A plain --resume of such a run names --force and the time the new reading landed.
    const now = settingsFor(5, { literals: "stated-v4", user_leaks: "repaired-v7" })
    expect(settingsDifferences(settingsFor(5, { literals: "stated-v4", user_leaks: "repaired-v6" }), now)).toEqual([
      "user_leaks: repaired-v6 in the run, repaired-v7 now (a run made before 2026-12-05 10:00 UTC: resume with --force, " +
      "which keeps its rule)"
    ])
  })
})
