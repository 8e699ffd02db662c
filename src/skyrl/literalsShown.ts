/**
 * Does a row's prompt state the literal values of its plan? (`prompt/literal-not-shown` in checks.ts, a
 * warning.) Pure.
 *
 * The reward matches a step's literal params (every param not in its `derived_params`) exactly, because
 * they "come from the user prompt or the task, so a correct policy reproduces them" (docs/reward.md). A
 * literal the prompt never states can only be guessed: the row rewards memorizing it, not reading the task.
 * The test is a heuristic that errs on the side of passing:
 * - a string is shown when the prompt's text (every message) contains it, both compared lowercased with
 *   runs of spaces, `_` and `-` read as one space ("New York" shows `new_york`) and typographic quotes as
 *   straight ones;
 * - a number is shown when a message holds it as a whole number (`1,000` shows 1000, `1.5 million` or `$1.5M`
 *   1500000, `5%` or `5 percent` shows 0.05, `3.0` shows 3; the
 *   3 of `Q3`, `2023` or `3.5`, and the 11 or 30 of `2026-11-30`, do not count) or as a word (one to ninety-nine,
 *   `a dozen`, `a hundred`: `statesAsWord`); 0 and 1 (pages, offsets, flags) always pass;
 * - a day (`2025-03-01`) is shown when a message writes it with its month's name or in digits, and a month's
 *   first or last day when the month stands with its year (`March 2025`) (`dayStatement`);
 * - booleans and null always pass, and so does a value equal to the tool's declared `default` for that
 *   param (what the tool does unasked); another of its `enum` values is a choice the prompt must state
 *   (`search_depth: "advanced"` with no word of it in the prompt is a guess the reward would require);
 * - a code (capitals and digits with a capital, up to 10 characters with `.`, `-`, `^` or `:`, e.g. `NVDA`,
 *   `BRK.B`, `USD`, or a comma-separated list of them; not a date) always passes: the prompt names the
 *   entity ("NVIDIA") and its code is knowledge a policy is expected to bring;
 * - arrays and objects are judged leaf by leaf;
 * - a message's tool list (skyrl's, from its protocol line on, or a chat log's `<tools>` block) states
 *   nothing: it shows every enum member and describes every tool, whatever the task asks (`withoutToolList`).
 */
import { isObject } from "../domain/json.js"
import { remember, rememberWith } from "./memo.js"
import { piecewise } from "./piecewise.js"
import type { PlanStep } from "./planValidation.js"
import { isLiteralParam } from "./planValidation.js"
import { TOOL_CALL_LINE } from "./prompt.js"
import { wordIndex } from "./promptLeak.js"
import type { PromptReading } from "./promptReading.js"
import { readsAsOf } from "./promptReading.js"
import { findToolsBlock } from "./sources.js"

export interface UnshownLiteral {
  readonly step: number
  readonly tool: string
  /** The param's path in the step's params, e.g. `symbol` or `filters.region`. */
  readonly path: string
  readonly value: string | number
}

// `split(re).join(" ")`: `replace(re, " ")` at a quarter of its CPU where matches are every few characters (see
// normalizeForDuplicates).
const spacedPiece = (piece: string): string => piece.toLowerCase().split(/[\s_-]+/).join(" ")
const comparablePiece = (piece: string): string =>
  spacedPiece(piece).replace(/[\u2018\u2019]/g, "'").replace(/[\u201c\u201d]/g, "\"")

/**
 * The prompt's text as the test compares it (lowercased; spaces, `_` and `-` runs read as one space; in the
 * current reading typographic quotes and apostrophes as straight ones: `McDonald’s` states `McDonald's`). A long
 * text is done in pieces (`piecewise`).
 */
const comparableText = (text: string, reading: PromptReading): string =>
  piecewise(text, since1202b(reading) ? comparablePiece : spacedPiece)

/**
 * A prompt message without its tool list: skyrl's own (the protocol line and the tool lines after it, the
 * end of the message `renderSystemPrompt` makes) or a chat log's `<tools>` block. The list shows every enum
 * member (`period?: "annual"|"quarterly"`) and every tool's description, so it would state values the task
 * never asks for; the text around it (the date line, a chat log's own instructions) still counts.
 */
export const withoutToolList = (text: string): string => {
  const protocol = text.indexOf(TOOL_CALL_LINE)
  if (protocol >= 0) return text.slice(0, protocol)
  const block = text.includes("<tools>") ? findToolsBlock(text) : undefined
  return block === undefined ? text : text.slice(0, block.start) + text.slice(block.end)
}

/** Codes an entity's name implies (tickers, currencies, country codes), one or a comma-separated list. */
const CODE = "(?=[A-Z0-9.:^-]*[A-Z])[A-Z0-9^][A-Z0-9.:^-]{0,9}"
const CODES = new RegExp(`^${CODE}(?:, ?${CODE})*$`)

const WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
const WORD_OF = WORDS.map((w) => new RegExp(`\\b${w}\\b`, "i"))
const TEENS = ["thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
const TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
const UNIT = `(?:${WORDS.slice(0, 9).join("|")})`

/**
 * How a word writes `n` from 13 to 100 (the current reading): `fifteen`, `twenty` (not the tens of
 * `twenty-five`), `twenty-five` or `twenty five`, `a dozen` or `one dozen` (12), `a hundred` or `one hundred`.
 */
const wordPattern = (n: number): string | undefined => {
  if (n === 12) return "(?:a|one)\\s+dozen"
  if (n === 100) return "(?:a|one)\\s+hundred"
  if (n >= 13 && n <= 19) return TEENS[n - 13]
  if (n < 20 || n > 99) return undefined
  const tens = TENS[Math.floor(n / 10) - 2]!
  return n % 10 === 0 ? `${tens}(?![-\\s]+${UNIT}\\b)` : `${tens}[-\\s]+${WORDS[(n % 10) - 1]}`
}
const wordsPast12 = new Map<number, RegExp | undefined>()

/** Whether `text` writes the integer `n` as a word: one to twelve, and in the current reading 13 to 100. */
const statesAsWord = (text: string, n: number, reading: PromptReading): boolean => {
  if (!Number.isInteger(n) || n < 1) return false
  if (n <= 12 && WORD_OF[n - 1]!.test(text)) return true
  if (!since1202c(reading)) return false
  const pattern = remember(wordsPast12, n, () => {
    const p = wordPattern(n)
    return p === undefined ? undefined : new RegExp(`\\b${p}\\b`, "i")
  })
  return pattern?.test(text) === true
}

/** `n` with thousands separators (`1,000`), for an integer of 1000 or more; undefined otherwise. */
const withSeparators = (n: number): string | undefined =>
  Number.isInteger(n) && Math.abs(n) >= 1000 ? String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",") : undefined

/** Scales a large number is written with, and their words and letters (`1.5 million`, `$1.5M`, `$2bn`). */
const SCALES: ReadonlyArray<readonly [number, ReadonlyArray<string>]> = [
  [1e3, [" thousand", "K", "k"]],
  [1e6, [" million", "M", "mn"]],
  [1e9, [" billion", "B", "bn"]],
  [1e12, [" trillion", "T", "tn"]]
]

/** `n` written with each scale it is at least one of, with up to three decimals (`1.5 million`, `250K`). */
const scaledForms = (n: number): ReadonlyArray<string> =>
  SCALES.flatMap(([scale, names]) => {
    const q = n / scale
    return Math.abs(q) >= 1 && Number.isInteger(q * 1000) ? names.map((name) => `${q}${name}`) : []
  })

/**
 * The ways a prompt may write `n`: its digits, with separators, and a fraction below 1 as a percentage (`5%`);
 * in the current reading (`current`) also with its scale (`1.5 million`, `$2B`) and as `5 %` or `5 percent`.
 */
const numberForms = (n: number, current: boolean): ReadonlyArray<string> => {
  const forms = [String(n)]
  const separated = withSeparators(n)
  if (separated !== undefined) forms.push(separated)
  if (current && Math.abs(n) >= 1000) forms.push(...scaledForms(n))
  if (Math.abs(n) < 1) {
    const percent = Number((n * 100).toPrecision(12))
    forms.push(`${percent}%`)
    if (current) forms.push(`${percent} %`, `${percent} percent`, `${percent} per cent`)
  }
  return forms
}

const DIGIT = /[0-9]/
const BEFORE_NUMBER = /[\w.]/
/** What comes before the month (`2026-`) or the day (`2026-11-`) of an ISO date. */
const ISO_MONTH_BEFORE = /\d{4}-$/
const ISO_DAY_BEFORE = /\d{4}-\d{1,2}-$/

/**
 * Whether the number at `start..end` of `text` is the month or day of an ISO date (`2026-11-30`): a date's part,
 * not a count (every skyrl prompt's date line has one).
 */
const inIsoDate = (text: string, start: number, end: number): boolean => {
  if (text[start - 1] !== "-") return false
  const before = text.slice(Math.max(0, start - 8), start)
  return ISO_DAY_BEFORE.test(before) ||
    (ISO_MONTH_BEFORE.test(before) && text[end] === "-" && DIGIT.test(text[end + 1] ?? ""))
}

/** Whether `reading` has the rules of 2026-12-02 (the tool list states nothing, `3.0` states 3, written days). */
const since1202 = (reading: PromptReading): boolean => readsAsOf(reading, "until-2026-12-02")

/** Whether `reading` has the rules of 2026-12-02 04:00 UTC (scales, `percent`, ISO dates no count, `Sept.`). */
const since1202b = (reading: PromptReading): boolean => readsAsOf(reading, "until-2026-12-03")

/** Whether `reading` has the rules of 2026-12-02 20:30 UTC (number words past twelve, `March 2025`). */
const since1202c = (reading: PromptReading): boolean => readsAsOf(reading, "until-2026-12-03b")

/** A message's text as `reading` looks for stated values in it. */
export const statedTextOf = (text: string, reading: PromptReading): string =>
  since1202(reading) ? withoutToolList(text) : text

/**
 * Where a number written at `start..end` of `text` ends once zeros after its decimal point (`3.0`, `2.50`) are
 * read (`zeros`; else where the form ends).
 */
const afterZeros = (text: string, form: string, start: number, zeros: boolean): number => {
  let end = start + form.length
  if (!zeros) return end
  const point = form.includes(".") ? end : text[end] === "." && text[end + 1] === "0" ? end + 1 : -1
  if (point < 0) return end
  for (end = point; text[end] === "0"; end++);
  return end
}

/**
 * Whether `text` holds `form` as a whole number: not inside another number or word (`Q3`, `2023`, `3.5`). Since
 * 2026-12-02 zeros after its decimal point write the same number (`3.0` holds 3); in the current reading the
 * month or day of an ISO date is none.
 */
const holdsNumber = (text: string, form: string, reading: PromptReading): boolean => {
  const current = since1202b(reading)
  for (let i = text.indexOf(form); i >= 0; i = text.indexOf(form, i + 1)) {
    const before = text[i - 1]
    const end = afterZeros(text, form, i, since1202(reading))
    const after = text[end]
    const next = text[end + 1]
    if (before !== undefined && BEFORE_NUMBER.test(before)) continue
    if (current && inIsoDate(text, i, end)) continue
    if (
      after !== undefined &&
      (DIGIT.test(after) || ((after === "." || after === ",") && next !== undefined && DIGIT.test(next)))
    ) continue
    return true
  }
  return false
}

/** Whether `text` states `n`: as a whole number in one of its forms, or as a word (`statesAsWord`). */
export const statesNumber = (text: string, n: number, reading: PromptReading = "current"): boolean =>
  numberForms(n, since1202b(reading)).some((form) => holdsNumber(text, form, reading)) ||
  statesAsWord(text, n, reading)

const ISO_DAY = /^(\d{4})-(\d{2})-(\d{2})$/
const MONTHS = [
  "january",
  "february",
  "march",
  "april",
  "may",
  "june",
  "july",
  "august",
  "september",
  "october",
  "november",
  "december"
]

/** How far (characters, on one line) the year may stand from a day written with its month's name. */
const YEAR_REACH = 40

/** Whether `text` holds `year` as a whole number within `YEAR_REACH` characters of `start..end`, on that line. */
const yearNear = (text: string, year: RegExp, start: number, end: number): boolean => {
  const lineEnd = text.indexOf("\n", end)
  const from = Math.max(start - YEAR_REACH, text.lastIndexOf("\n", start) + 1)
  const to = Math.min(end + YEAR_REACH, lineEnd < 0 ? text.length : lineEnd)
  return year.test(text.slice(from, to))
}

/** A day's number after a month's name (`March 5`, `March 5th`), not a year's first digits (`March 2025`). */
const DAY_NUMBER = "\\d{1,2}(?:st|nd|rd|th)?(?![\\w/])"

/** The last day of month `m` (1-12) of `year`. */
const lastDayOf = (year: number, m: number): number => new Date(Date.UTC(year, m, 0)).getUTCDate()

/**
 * Whether a message writes the day `iso` (YYYY-MM-DD), undefined for another string: with the month's name or
 * its first three letters (`Sept` too) and the year up to `YEAR_REACH` characters after or before it on its
 * line (`March 1, 2025`, `1st of Mar 2025`, `March 1 to May 31, 2025`, `In 2025, since March 1`), or in digits
 * with `/` or `.` (`2025/03/01`, `03/01/2025`, `01.03.2025`: both orders of day and month pass, as the test
 * errs on passing). The month's first and last day also when the month stands with its year and no day number
 * (`March 2025`: the month as a range; the current reading). Reading "until-2026-12-02": the year right after
 * the day (`, 2025`), no `Sept`.
 */
const dayStatement = (iso: string, reading: PromptReading): ((text: string) => boolean) | undefined => {
  const parts = ISO_DAY.exec(iso)
  if (parts === null) return undefined
  const [y, m, d] = [parts[1]!, Number(parts[2]), Number(parts[3])]
  if (m < 1 || m > 12 || d < 1 || d > 31) return undefined
  const current = since1202b(reading)
  const month = `(?:${MONTHS[m - 1]}|${m === 9 && current ? "sept?" : MONTHS[m - 1]!.slice(0, 3)}\\.?)`
  const day = `0?${d}(?:st|nd|rd|th)?`
  const [mm, dd] = [`0?${m}`, `0?${d}`]
  const named = new RegExp(`(?<![\\w/.])(?:${month}\\s+${day}|${day}\\s+(?:of\\s+)?${month})(?![\\w/])`, "gi")
  const digits = new RegExp(`(?<![\\w/.])(?:${y}/${mm}/${dd}|${mm}/${dd}/${y}|${dd}[/.]${mm}[/.]${y})(?![\\w/])`)
  const year = new RegExp(`(?<!\\d)${y}(?!\\d)`)
  const yearAfter = new RegExp(`^,?\\s+${y}(?![\\w/])`)
  const wholeMonth = since1202c(reading) && (d === 1 || d === lastDayOf(Number(y), m))
    ? new RegExp(`(?<![\\w/.])(?<!\\d(?:st|nd|rd|th)?\\s+(?:of\\s+)?)${month}(?!\\s*${DAY_NUMBER})(?![\\w/])`, "gi")
    : undefined
  // The year near a day or month written with its name (reading "until-2026-12-02": right after the day).
  const withYear = (text: string, match: RegExpExecArray) => {
    const end = match.index + match[0].length
    return current ? yearNear(text, year, match.index, end) : yearAfter.test(text.slice(end, end + 16))
  }
  return (text) =>
    digits.test(text) ||
    [named, wholeMonth].some((re) => re !== undefined && [...text.matchAll(re)].some((match) => withYear(text, match)))
}

/** Whether `text` names `name` as a whole word (`MessageFacts.namesWord`). */
const namesWordIn = (name: string, text: string): boolean => wordIndex(text, name) !== -1

/** Messages this long (a run's system message, shared by its rows) have their answers remembered. */
export const LONG_MESSAGE = 512

/**
 * What one prompt message states: its comparable text, made on first need, and, for a long message (a run's
 * rows ask their shared system message the same questions), the numbers and tool names asked so far.
 */
export class MessageFacts {
  private comparableMade: string | undefined
  private readonly answers: { readonly numbers: Map<number, boolean>; readonly names: Map<string, boolean> } | undefined

  constructor(readonly text: string, private readonly reading: PromptReading = "current") {
    this.answers = text.length < LONG_MESSAGE ? undefined : { numbers: new Map(), names: new Map() }
  }

  /** `statesNumber` of this message. */
  statesNumber(n: number): boolean {
    return remember(this.answers?.numbers, n, () => statesNumber(this.text, n, this.reading))
  }

  /**
   * Whether this message names `name` as a whole word (not inside a longer identifier). Asked for every offered
   * tool of every row: no closure per question (`rememberWith`).
   */
  namesWord(name: string): boolean {
    return rememberWith(this.answers?.names, name, namesWordIn, this.text)
  }

  get comparable(): string {
    return this.comparableMade ??= comparableText(this.text, this.reading)
  }
}

/**
 * What a prompt states, asked value by value, message by message: a string found as it is in a message
 * passes at once; only one that is not is looked for in the messages' comparable text. `factsOf` gives a
 * message's facts (a caller may remember them for a message its rows share, such as a run's system message).
 */
export class PromptFacts {
  private messagesMade: ReadonlyArray<MessageFacts> | undefined

  constructor(
    readonly texts: ReadonlyArray<string>,
    private readonly factsOf?: ((text: string) => MessageFacts) | undefined,
    private readonly reading: PromptReading = "current"
  ) {}

  private get messages(): ReadonlyArray<MessageFacts> {
    return this.messagesMade ??= this.texts.map(this.factsOf ?? ((text) => new MessageFacts(text, this.reading)))
  }

  /** Whether a message names `name` as a whole word (a tool's call name, e.g.). */
  namesWord(name: string): boolean {
    for (const m of this.messages) if (m.namesWord(name)) return true
    return false
  }

  states(v: string | number): boolean {
    if (typeof v === "number") {
      return v === 0 || v === 1 || this.messages.some((m) => m.statesNumber(v))
    }
    if (CODES.test(v)) return true
    for (const text of this.texts) if (text.includes(v)) return true
    const wanted = comparableText(v, this.reading).trim()
    if (wanted === "" || this.messages.some((m) => m.comparable.includes(wanted))) return true
    const day = since1202(this.reading) ? dayStatement(v, this.reading) : undefined
    return day !== undefined && this.texts.some(day)
  }
}

/** Whether `v` is the `default` an input schema declares for a top-level param. */
const isDefault = (schema: unknown, param: string, v: unknown): boolean => {
  if (!isObject(schema) || !isObject(schema.properties)) return false
  const p = schema.properties[param]
  return isObject(p) && p.default === v
}

/**
 * The literal values of `steps` the prompt does not state, in plan order. `inputSchemaOf` gives a step's
 * tool's input schema (for its params' `default`), or undefined without an inventory; it is
 * asked only about a value the prompt does not state.
 */
export const unshownLiterals = (
  facts: PromptFacts,
  steps: ReadonlyArray<PlanStep>,
  inputSchemaOf: (step: PlanStep) => unknown = () => undefined
): ReadonlyArray<UnshownLiteral> => {
  const unshown: Array<UnshownLiteral> = []
  for (const step of steps) {
    const params = step.params
    if (!isObject(params)) continue
    for (const param in params) {
      if (!Object.hasOwn(params, param) || !isLiteralParam(step, param)) continue
      const visit = (v: unknown, path: string): void => {
        if (isStated(facts, v)) return
        if (typeof v === "string" || typeof v === "number") {
          if (!isDefault(inputSchemaOf(step), param, v)) {
            unshown.push({ step: step.step, tool: step.tool, path, value: v })
          }
        } else if (Array.isArray(v)) {
          v.forEach((x, i) => visit(x, `${path}[${i}]`))
        } else if (isObject(v)) {
          for (const [k, x] of Object.entries(v)) visit(x, `${path}.${k}`)
        }
      }
      visit(params[param], param)
    }
  }
  return unshown
}

/** A value the test passes as it is: a boolean, null, or a string or number the prompt states. */
const isStated = (facts: PromptFacts, v: unknown): boolean =>
  typeof v === "boolean" || v === null || ((typeof v === "string" || typeof v === "number") && facts.states(v))

/**
 * A derived value a user message could state only on purpose: a code (`AAPL`), or a text with a digit, one of
 * `_ @ / :` or several words (`C024BE91L`, `2025-03-31`, `ops_alerts`, `Palantir Technologies`). A plain
 * word (`general`, `Apple`) may be prose that happens to spell it.
 */
const DISTINCT = /\d|[_@/:]|\S\s+\S/

export interface StatedDerived {
  readonly step: number
  readonly tool: string
  readonly param: string
  readonly value: string | number
}

/**
 * Whether the user message states a derived value: a distinct string as a whole word, as written; a day
 * (`2025-03-31`) also as `literal-not-shown` reads it (`March 31, 2025`: `dayStatement`); a number other than 0
 * and 1 as a whole number or a word (`the 25 latest`: `statesNumber`).
 */
const statesDerivedValue = (user: string, v: unknown): boolean => {
  if (typeof v === "number") return Number.isFinite(v) && Math.abs(v) >= 2 && statesNumber(user, v)
  if (typeof v !== "string" || v.trim().length < 2) return false
  return ((CODES.test(v) || DISTINCT.test(v)) && wordIndex(user, v) >= 0) || dayStatement(v, "current")?.(user) === true
}

/**
 * The derived params of `steps` whose value the user message states (`statesDerivedValue`): the reward never
 * compares a derived param (docs/reward.md), so a value the policy is told should be literal; marked derived it
 * lets any schema-valid value score.
 */
export const statedDerived = (user: string, steps: ReadonlyArray<PlanStep>): ReadonlyArray<StatedDerived> => {
  const found: Array<StatedDerived> = []
  for (const step of steps) {
    if (!isObject(step.params)) continue
    for (const param of step.derived_params ?? []) {
      const v = step.params[param]
      if (statesDerivedValue(user, v)) {
        found.push({ step: step.step, tool: step.tool, param, value: v as string | number })
      }
    }
  }
  return found
}

/** A finding's text: the first few unshown values, each with its step and tool. */
export const describeUnshown = (unshown: ReadonlyArray<UnshownLiteral>): string => {
  const shown = unshown.slice(0, 3).map((u) => `step ${u.step} ${u.tool} ${u.path} = ${JSON.stringify(u.value)}`)
  const more = unshown.length > 3 ? ` and ${unshown.length - 3} more` : ""
  return `the prompt never states ${shown.join("; ")}${more}: the reward matches literal params exactly, ` +
    "so the policy could only guess them (state them in the user message; a value an earlier result gives belongs in derived_params)"
}
