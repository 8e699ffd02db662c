/**
 * How the prompt rules read a prompt (what states a literal in literalsShown.ts; what names a plan tool in
 * promptLeak.ts's `userLeak`), for the generate runs each reading judged (`rebuild` and `--resume --force`
 * make their rows as they were; `promptReadingOf` in programs/generate.ts). Each reading is named for the
 * time its rules stopped applying to new runs:
 * - "current": as literalsShown.ts and promptLeak.ts say.
 * - "until-2026-12-05": runs that recorded `user_leaks: "repaired-v6"` (made from 2026-12-03 09:45 UTC until the
 *   rules here changed on 2026-12-05): a tool name Markdown-escaped (`fmp\_get\_quote`) or written with HTML
 *   character references (`fmp&#95;get&lowbar;quote`), and a server-prefixed name written as words after its
 *   server's name possessive (`FMP's get quote`), were no leak, and a step's param key inside a JSON object pasted as
 *   data (`{"symbol": "AAPL", "shares": 10}`) was a params dump. Values are stated as in "current"
 *   (`literals: "stated-v4"` reads the same in both).
 * - "until-2026-12-03d": runs that recorded `user_leaks: "repaired-v5"` (made from 2026-12-03 07:05 UTC until the
 *   rules here changed that day; the fourth reading to stop on it, hence the `d`): a sentence's full stop joined a
 *   server's name to the rest of a tool name's words (`Use FMP. Get quote for AAPL` named `fmp_get_quote`), and a
 *   name one edit off with an invisible character in it (`fmp_get_\u200bqoute`) was no leak. Values are stated
 *   as in "current" (`literals: "stated-v4"` reads the same in both).
 * - "until-2026-12-03c": runs that recorded `user_leaks: "repaired-v4"` (made from the rule of
 *   "until-2026-12-03b" below on 2026-12-03 until the rules here were added that day; the third reading to stop
 *   on it, hence the `c`): a tool name spelled letter by letter (`f m p _ g e t _ q u o t e`), percent-encoded
 *   (`fmp%5Fget%5Fquote`), one edit off a long name (`fmp_get_qoute`), or a server-prefixed name written as its
 *   server's name, a colon, slash or arrow and the rest as words (`FMP: get quote`) was no leak. Values are
 *   stated as in "current" (`literals: "stated-v4"` reads the same in both).
 * - "until-2026-12-03b": runs that recorded `user_leaks: "repaired-v3"` (made from 2026-12-02 20:30 UTC until
 *   the rule below was added on 2026-12-03; the second reading to stop on that day, hence the `b`): a
 *   server-prefixed tool name of three parts or more written as words (`fmp get quote`, `FMP get quote`) was
 *   no leak. Values are stated as in "current" (`literals: "stated-v4"` reads the same in both).
 * - "until-2026-12-03": runs that recorded `literals: "stated-v3"` or `user_leaks: "repaired-v2"` (made on
 *   2026-12-02 from 04:00 UTC until the rules below were added): number words above twelve (`fifteen`,
 *   `twenty-five`, `a dozen`) and a month with its year (`March 2025` for its first and last day) stated
 *   nothing; a tool name with look-alike letters (Cyrillic `о`), a dash other than `-` or an invisible
 *   character between its parts, params as a single- or typographic-quoted dict (`{'symbol': ...}`) or as
 *   `key=value`, and a system message that singles out plan tools outside its tool list, were no leak.
 * - "until-2026-12-02": as the rules read on 2026-12-02 until 04:00 UTC, besides: the month and day of an ISO
 *   date stated numbers, a day written with its month's name needed its year right after it (`March 1, 2025`;
 *   not `Sept.`), scales (`1.5 million`, `$2B`) and `5 percent` stated nothing, typographic quotes were not
 *   straight ones, and no namespace before a tool name (`functions.`) nor a tag variant counted.
 * - "until-2026-12-01": as before 2026-12-02, besides: a message's tool list stated values too, `3.0` did
 *   not state 3, and no written-out day stated its ISO date.
 */
export type PromptReading =
  | "current"
  | "until-2026-12-05"
  | "until-2026-12-03d"
  | "until-2026-12-03c"
  | "until-2026-12-03b"
  | "until-2026-12-03"
  | "until-2026-12-02"
  | "until-2026-12-01"

const ORDER: Readonly<Record<PromptReading, number>> = {
  "until-2026-12-01": 0,
  "until-2026-12-02": 1,
  "until-2026-12-03": 2,
  "until-2026-12-03b": 3,
  "until-2026-12-03c": 4,
  "until-2026-12-03d": 5,
  "until-2026-12-05": 6,
  current: 7
}

/** Whether `reading` has the rules that `reading` `since` has (readings only add or change rules over time). */
export const readsAsOf = (reading: PromptReading, since: PromptReading): boolean => ORDER[reading] >= ORDER[since]
