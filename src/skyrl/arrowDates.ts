/**
 * Which strings pyarrow's JSON reader (what `datasets.load_dataset("json", ...)` reads with) types as a timestamp
 * instead of a string: its ISO 8601 grammar, held to pyarrow's own answers in test/fixtures/arrow-dates/vectors.json.
 * A date `YYYY-MM-DD` that exists (`2025-02-30` and `2023-02-29` stay strings), then optionally `T` or a space and
 * `hh`, `hh:mm` or `hh:mm:ss` (no fraction: `10:00:00.123Z` stays a string), then optionally `Z` or an offset
 * `±hh`, `±hhmm` or `±hh:mm`. Pure.
 */

const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2}))?)?(?:Z|[+-](\d{2})(?::?(\d{2}))?)?)?$/

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

const daysIn = (year: number, month: number): number =>
  month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : DAYS[month - 1]!

/** A part of the time (absent, or at most `max`). */
const upTo = (part: string | undefined, max: number): boolean => part === undefined || Number(part) <= max

/** Whether pyarrow's JSON reader reads `text` as a timestamp (a cheap look at its first and fifth characters first). */
export const readsAsTimestamp = (text: string): boolean => {
  if (text.length < 10 || text.length > 25 || text.charCodeAt(4) !== 45) return false
  const c = text.charCodeAt(0)
  if (c < 48 || c > 57) return false
  const m = ISO_TIMESTAMP.exec(text)
  if (m === null) return false
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return false
  return upTo(m[4], 23) && upTo(m[5], 59) && upTo(m[6], 59) && upTo(m[7], 23) && upTo(m[8], 59)
}
