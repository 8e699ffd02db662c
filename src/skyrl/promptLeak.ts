/**
 * Does a row's prompt give its plan away? (`prompt/plan-leak` in checks.ts.) Pure.
 *
 * The tools a prompt offers are read from the row's `available_tools`, or, for rows written before that
 * field existed, from the system message (the inventory tools it names, in the order it first names
 * them). A prompt leaks its plan when it lacks a plan tool, lists tools out of the inventory's order (the
 * old rows listed them in plan order), or offers fewer than min(3, available) distractors (the tools a
 * `<tools>` block shows beyond those offered count too: the policy sees them).
 */
import type { Inventory } from "../domain/inventory.js"
import { isObject } from "../domain/json.js"
import { plural } from "../domain/words.js"
import { remember, rememberWith } from "./memo.js"
import { isAsciiAlnum } from "./piecewise.js"
import type { PromptReading } from "./promptReading.js"
import { readsAsOf } from "./promptReading.js"
import { MIN_DISTRACTORS } from "./promptTools.js"
import { findToolsBlock, toolNamesOf } from "./sources.js"

interface ToolRef {
  readonly server: string
  readonly tool: string
}

/** A tool as a row's `available_tools` or plan names it: its call name when it has one. */
export interface OfferedTool extends ToolRef {
  readonly call_name?: string | undefined
}

const IDENTIFIER = /[A-Za-z0-9_]/

/** Index of the first whole-word occurrence of `name` in `text`, or -1. */
export const wordIndex = (text: string, name: string): number => {
  for (let i = text.indexOf(name); i >= 0; i = text.indexOf(name, i + 1)) {
    const before = text[i - 1]
    const after = text[i + name.length]
    if ((before === undefined || !IDENTIFIER.test(before)) && (after === undefined || !IDENTIFIER.test(after))) {
      return i
    }
  }
  return -1
}

/** The inventory tools a system message names, in the order it first names them. */
export const toolsNamedIn = (system: string, inventory: Inventory): ReadonlyArray<ToolRef> =>
  inventory.servers
    .flatMap((s) => s.tools.map((t) => ({ server: s.name, tool: t.name, at: wordIndex(system, t.name) })))
    .filter((t) => t.at >= 0)
    .sort((a, b) => a.at - b.at)
    .map(({ server, tool }) => ({ server, tool }))

export interface LeakInput {
  /** The row's system message (undefined when it has none). */
  readonly system: string | undefined
  /** The row's `available_tools` (undefined or empty when unknown). */
  readonly availableTools: ReadonlyArray<ToolRef> | undefined
  /** The plan's steps, in plan order. */
  readonly plan: ReadonlyArray<ToolRef>
}

/** Each inventory tool's place in the inventory's order, by server and tool (made once per inventory). */
const ranks = new WeakMap<Inventory, { readonly of: Map<string, Map<string, number>>; readonly size: number }>()
const ranksOf = (inventory: Inventory) => {
  let r = ranks.get(inventory)
  if (r === undefined) {
    const of = new Map<string, Map<string, number>>()
    let size = 0
    for (const s of inventory.servers) {
      const tools = of.get(s.name) ?? new Map<string, number>()
      for (const t of s.tools) if (!tools.has(t.name)) tools.set(t.name, size++)
      of.set(s.name, tools)
    }
    r = { of, size }
    ranks.set(inventory, r)
  }
  return r
}

const same = (a: ToolRef, b: ToolRef) => a.server === b.server && a.tool === b.tool

/**
 * Tools a system message's `<tools>` block shows that are neither offered nor in the plan (a chat log's
 * tools the inventory lacks, or shows otherwise): distractors the policy sees, though not plannable.
 */
const shownOnly = (
  system: string | undefined,
  offered: ReadonlyArray<ToolRef>,
  plan: ReadonlyArray<ToolRef>
): number => {
  const block = system?.includes("<tools>") === true ? findToolsBlock(system) : undefined
  if (block === undefined) return 0
  const known = new Set([...offered, ...plan].map((t) => t.tool))
  return new Set(toolNamesOf(block).filter((name) => !known.has(name))).size
}

/** What gives the plan away, or undefined when nothing does. */
export const planLeak = (inventory: Inventory, input: LeakInput): string | undefined => {
  const known = input.availableTools !== undefined && input.availableTools.length > 0
  if (!known && input.system === undefined) return undefined
  const offered = known ? input.availableTools! : toolsNamedIn(input.system!, inventory)
  const rank = ranksOf(inventory)
  const rankOf = (t: ToolRef) => rank.of.get(t.server)?.get(t.tool)
  // The plan's tools, each once, in plan order.
  const planTools: Array<ToolRef> = []
  for (const t of input.plan) if (!planTools.some((p) => same(p, t))) planTools.push(t)
  const inPlan = (t: ToolRef) => planTools.some((p) => same(p, t))
  const problems: Array<string> = []
  const missing = planTools.filter((p) => !offered.some((o) => same(o, p)))
  if (missing.length > 0) {
    problems.push(
      `the plan's ${missing.map((t) => t.tool).join(", ")} ${missing.length === 1 ? "is" : "are"} not offered`
    )
  }
  let previous = -1
  let ordered = true
  for (const t of offered) {
    const r = rankOf(t)
    if (r === undefined) continue
    if (r < previous) ordered = false
    previous = r
  }
  if (!ordered) {
    const offeredPlan = offered.filter(inPlan)
    const inPlanOrder = offeredPlan.length === planTools.length && offeredPlan.every((t, i) => same(t, planTools[i]!))
    problems.push(
      `the tools are not in the inventory's order${inPlanOrder ? " (the plan's tools come in plan order)" : ""}`
    )
  }
  const inInventory = planTools.filter((t) => rankOf(t) !== undefined).length
  const available = rank.size - inInventory
  const needed = Math.min(MIN_DISTRACTORS, available)
  let distractors = offered.filter((t) => rankOf(t) !== undefined && !inPlan(t)).length
  if (distractors < needed) distractors += shownOnly(input.system, offered, planTools)
  if (distractors < needed) {
    problems.push(
      distractors === 0
        ? `only the plan's ${plural(planTools.length, "tool")} ${planTools.length === 1 ? "is" : "are"} offered ` +
          `(the inventory has ${available} more)`
        : `${plural(distractors, "distractor")} offered, at least ${needed} needed`
    )
  }
  return problems.length === 0
    ? undefined
    : `${problems.join("; ")}${known ? "" : " (tools read from the system message: the row has no available_tools)"}`
}

/** Format characters (zero-width spaces and joiners, bidi marks): invisible, so they can hide a name. */
const INVISIBLE = /\p{Cf}/gu
/** Identifier-like runs of a text: letters, digits, the separators of tool names (and invisible characters). */
const IDENTIFIER_RUN = /[\p{L}\p{N}_.\p{Cf}-]+/gu
/** A name of several parts: a separator, or a lower-case letter followed by a capital (`GetQuote`). */
const MULTI_PART = /[_.-]|\p{Ll}\p{Lu}/u
/** The same in the current reading: an invisible character between two parts separates them too. */
const MULTI_PART_INVISIBLE = /[_.\p{Cf}-]|\p{Ll}\p{Lu}/u
/** The dots and dashes a run starts or ends with (a sentence's `.`, a list's `-`): no part of a name. */
const LEADING_DOTS = /^[.-]*/
const TRAILING_DOTS = /[.-]*$/
/** Invisible characters at either end of a run (no separator there). */
const INVISIBLE_ENDS = /^\p{Cf}+|\p{Cf}+$/gu
/** Text without invisible characters, NFKC (an ASCII text is its own NFKC: most prompts skip the call). */
const visibleText = (text: string): string =>
  NON_ASCII.test(text) ? text.normalize("NFKC").replace(INVISIBLE, "") : text
const NON_ASCII = /[^\x00-\x7f]/
/** A name as compared: NFKC, lower-cased, without separators and invisible characters. */
const squash = (name: string): string => visibleText(name).toLowerCase().replace(/[_.-]+/g, "")
/** `squash` of the tool names of plans (few, the same on every row of a run). */
const squashedNames = new Map<string, string>()

/** Cyrillic and Greek letters that look like Latin ones (NFKC keeps them apart), and the Latin letter of each. */
const LOOKALIKE_FROM = "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u051b\u051d\u04bb\u0501" +
  "\u04cf\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0406\u0408" +
  "\u0405\u03bf\u03bd\u03c1\u03b9\u03ba\u03c5\u0391\u0392\u0395\u0396\u0397\u0399\u039a" +
  "\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7"
const LOOKALIKE_TO = "aeopcyxijsqwhdlABEKMHOPCTXIJSovpikuABEZHIKMNOPTYX"
const LOOKALIKES: ReadonlyMap<string, string> = new Map([...LOOKALIKE_FROM].map((c, i) => [c, LOOKALIKE_TO[i]!]))
const LOOKALIKE = new RegExp(`[${LOOKALIKE_FROM}]`, "g")
/** Dashes (en dash, em dash, hyphen, minus-like dashes): a tool name's `-` to the eye. */
const DASH = /\p{Pd}/gu

/**
 * A text as the current reading looks for names in it: look-alike letters as the Latin ones and every dash as
 * `-`, one UTF-16 unit for one (so a run's offsets are the original's).
 */
const folded = (text: string): string =>
  NON_ASCII.test(text)
    ? text.replace(DASH, (c) => "-".repeat(c.length)).replace(LOOKALIKE, (c) => LOOKALIKES.get(c) ?? c)
    : text

/** Where a namespace before a tool name ends: `functions.`, `fmp.` (skyrl's `server.tool`), `mcp__fmp__`. */
const NAMESPACE_END = /\.|__/

/**
 * The tool (its shown name, from `names`: squashed name -> shown) a run of a message names: the whole run,
 * or what follows a namespace in it (`functions.fmp_get_quote`, `mcp__fmp__get_quote`); only names of several
 * parts count.
 */
const nameIn = (run: string, names: ReadonlyMap<string, string>, reading: PromptReading): string | undefined => {
  const namespaces = readsAsOf(reading, "until-2026-12-03")
  const invisibleSeparates = readsAsOf(reading, "until-2026-12-03b")
  for (let rest = run;;) {
    const multiPart = invisibleSeparates
      ? MULTI_PART_INVISIBLE.test(rest.replace(INVISIBLE_ENDS, ""))
      : MULTI_PART.test(rest.replace(INVISIBLE, ""))
    const tool = multiPart ? names.get(squash(rest)) : undefined
    if (tool !== undefined) return tool
    const end = namespaces ? NAMESPACE_END.exec(rest) : null
    if (end === null) return undefined
    rest = rest.slice(end.index + end[0].length)
  }
}

/**
 * Whether `a` and `b` are at most one edit apart (Damerau: a letter changed, added or left out, or two
 * neighbours swapped).
 */
const withinOneEdit = (a: string, b: string): boolean => {
  if (Math.abs(a.length - b.length) > 1) return false
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  if (a.length > b.length) return a.slice(i + 1) === b.slice(i)
  if (a.length < b.length) return a.slice(i) === b.slice(i + 1)
  return i === a.length || a.slice(i + 1) === b.slice(i + 1) ||
    (a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2))
}

/**
 * The tool a run of a message names with one edit (`fmp_get_qoute`, `fmp_get_quot`: `ToolNames.typos`), whole
 * or after a namespace; only runs of several parts, as `nameIn`.
 */
const typoIn = (run: string, typos: ReadonlyArray<TypoName>): string | undefined => {
  for (let rest = run;;) {
    if (MULTI_PART_INVISIBLE.test(rest.replace(INVISIBLE_ENDS, ""))) {
      const key = squash(rest)
      const typo = typos.find((t) => withinOneEdit(key, t.key))
      if (typo !== undefined) return typo.call
    }
    const end = NAMESPACE_END.exec(rest)
    if (end === null) return undefined
    rest = rest.slice(end.index + end[0].length)
  }
}

const INVISIBLE_IN = /\p{Cf}/u

const isLower = (c: number): boolean => c >= 0x61 && c <= 0x7a
const isUpper = (c: number): boolean => c >= 0x41 && c <= 0x5a
/** A name's separator: `_`, `.` or `-`. */
const isNameSeparator = (c: number): boolean => c === 0x5f || c === 0x2e || c === 0x2d

/**
 * Whether a text (without invisible characters) has a run `typoIn` reads as a name: a cheap test before the
 * text's runs are read (most texts' runs are words shorter than any such name).
 *
 * A run: Latin letters, digits and a name's separators, from a letter or digit, five characters or more (where a
 * typo of a name, six letters or more squashed, `TypoName`, may be), as long as the shortest typo's key less one,
 * and of several parts (a separator, or a lower-case letter then a capital). Read with a scan of the text's
 * characters that cuts out only such runs: a regex's match for every word of a 20 MB prompt was ~270 MB of garbage.
 */
const typoRunIn = (text: string, typos: ReadonlyArray<TypoName>): boolean => {
  let shortest = Infinity
  for (const t of typos) shortest = Math.min(shortest, t.key.length - 1)
  const least = Math.max(5, shortest)
  for (let i = 0; i < text.length;) {
    if (!isAsciiAlnum(text.charCodeAt(i))) {
      i++
      continue
    }
    let end = i + 1
    let parts = false
    for (; end < text.length; end++) {
      const c = text.charCodeAt(end)
      if (isNameSeparator(c) || (isUpper(c) && isLower(text.charCodeAt(end - 1)))) parts = true
      else if (!isAsciiAlnum(c)) break
    }
    if (parts && end - i >= least && typoIn(text.slice(i, end), typos) !== undefined) return true
    i = end
  }
  return false
}

/** A `<tool_call>` tag, opening or closing: with spaces or attributes in it, or HTML-escaped (`&lt;tool_call&gt;`). */
const TOOL_CALL_TAG = /(?:<|&lt;)\s*\/?\s*tool_call\b/i
/** The tag as it was looked for until 2026-12-02 04:00 UTC: `<tool_call>` or `</tool_call>` only. */
const TOOL_CALL_TAG_BEFORE = /<\/?tool_call>/i

/** A JSON object key followed by its colon (`"symbol":`), as a params dump holds. */
const JSON_KEY = /"([^"\\]{1,64})"\s*:/g
/** The same in the current reading: a Python dict's `'symbol':` or typographic quotes (`“symbol”:`) too. */
const QUOTED_KEY =
  /["'\u2018\u2019\u201c\u201d]([^"'\u2018\u2019\u201c\u201d\\]{1,64})["'\u2018\u2019\u201c\u201d]\s*:/g
/** A closing quote before a colon: what every quoted key has (most texts have none, and skip the search). */
const QUOTE_COLON = /["'\u2018\u2019\u201c\u201d]\s*:/
/** A key written as a call's keyword argument or a query string's (`symbol=AAPL`, not `a == b` nor `x = 1`). */
const KEY_VALUE = /(?<![\w.])([A-Za-z_]\w{0,63})=(?![=\s])/g

interface UserLeakStep extends OfferedTool {
  readonly step: number
  readonly params: unknown
}

/**
 * A server-prefixed tool name of three parts or more as words (`fmp get quote`), the same after its server's
 * name and a colon, slash or arrow (`prefixed`: `FMP: get quote`, the current reading), and the call name it
 * names.
 */
interface SpacedName {
  readonly words: RegExp
  readonly prefixed: RegExp
  /** The same with the server's name possessive (`FMP's get quote`, `fmp’s get quote`: the current reading). */
  readonly possessive: RegExp
  readonly call: string
}

/**
 * A name long and specific enough that a run one edit off it names it too (`fmp_get_qoute`): `key` squashed, and
 * the halves of `key` around its middle letter, one of which any run one edit off holds (a cheap test first).
 */
interface TypoName {
  readonly key: string
  readonly call: string
  readonly halves: readonly [string, string]
}
/**
 * The names a typo of counts for: with a separator and 10 characters or more (`fmp_get_quote`, `tavily_search`;
 * not `get_quote`, whose one-edit neighbours are too near other words and names).
 */
const TYPO_MIN_LENGTH = 10
/** The `TypoName`s of the tool names of plans (few, the same on every row of a run). */
const typoNames = new Map<string, TypoName>()
const SEPARATED = /[_.-]/

/**
 * The names a text may give some tools (`tools`): `squashed` (squashed name -> call name: call name, tool name,
 * tool name without its server's prefix); the current reading also reads `spacedNames` of the tools and a run
 * one edit off a long one (`typos`).
 */
interface ToolNames {
  readonly squashed: ReadonlyMap<string, string>
  readonly typos: ReadonlyArray<TypoName>
  readonly tools: ReadonlyArray<OfferedTool>
}

/** `namesOf` of a plan (a row's checks ask it of the user message and the system message). */
const namesOfPlan = new WeakMap<ReadonlyArray<unknown>, ToolNames>()
/** A server-prefixed tool name's separators (`fmp_get_quote`: three parts). */
const NAME_SEPARATORS = /[_.-]+/
/** A name's parts as a regex's words: any run of spaces, separators or invisible characters between them. */
const escapedWords = (parts: ReadonlyArray<string>): string =>
  parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("[\\s_.\\p{Cf}-]+")
/**
 * A tool name's parts as words: any run of spaces, separators or invisible characters between them (global: the
 * current reading passes over a match with a sentence's end in it, `SENTENCE_END`, and reads the next).
 */
const spacedWords = (parts: ReadonlyArray<string>): RegExp =>
  new RegExp(
    `(?<![\\p{L}\\p{N}_])${escapedWords(parts)}(?![\\p{L}\\p{N}_])`,
    "giu"
  )
/**
 * The same with the server's name first, then a colon, slash, backslash, bar or arrow (`FMP: get quote`,
 * `fmp/get quote`, `fmp -> get quote`; not a comma or a sentence's full stop).
 */
const prefixedWords = (server: ReadonlyArray<string>, rest: ReadonlyArray<string>): RegExp =>
  new RegExp(
    `(?<![\\p{L}\\p{N}_])${escapedWords(server)}\\s*-?[:/\\\\|>\u2192\u00bb]+\\s*${escapedWords(rest)}` +
      "(?![\\p{L}\\p{N}_])",
    "giu"
  )
/** The same with the server's name possessive: `'s` (or `’s`, `ʼs`) after it, then the words (`FMP's get quote`). */
const possessiveWords = (server: ReadonlyArray<string>, rest: ReadonlyArray<string>): RegExp =>
  new RegExp(
    `(?<![\\p{L}\\p{N}_])${escapedWords(server)}['\u2019\u02bc]s[\\s_.\\p{Cf}-]+${escapedWords(rest)}` +
      "(?![\\p{L}\\p{N}_])",
    "giu"
  )
/** What `possessiveWords` needs after the server's name (most texts have none). */
const POSSESSIVE_MARK = /['\u2019\u02bc]s/
/**
 * A sentence's end inside a match of `spacedWords` or `prefixedWords`: a full stop, then spaces (or invisible
 * characters), then a capital (`Use FMP. Get quote for AAPL`: two sentences, not `fmp_get_quote`). A full stop
 * with no space after it (`FMP.Get quote`, `fmp.get_quote`) or before a small letter (`fmp. get quote`) still
 * joins. (`!` and `?` join no words.) Case-sensitive: the words' regexes ignore case, which `\p{Lu}` would too.
 */
const SENTENCE_END = /\.[\s\p{Cf}]+\p{Lu}/u
/**
 * The first match of `words` (`spacedWords`, `prefixedWords`, global) in `text`: in the current reading the first
 * with no sentence's end in it; "until-2026-12-03d" and before, the first.
 */
const wordsIn = (words: RegExp, text: string, sentences: boolean): RegExpExecArray | undefined => {
  // exec from the start (not matchAll, which copies the regex on every call): the regexes are shared, so lastIndex
  // is set here before each search.
  words.lastIndex = 0
  for (let match = words.exec(text); match !== null; match = words.exec(text)) {
    if (!sentences || !SENTENCE_END.test(match[0])) return match
  }
  return undefined
}
/** What `prefixedWords` needs between the server's name and the rest (most texts have none of them). */
const PREFIX_MARK = /[:/\\|>\u2192\u00bb]/
/** `spacedWords` (and `prefixedWords`) of the tool names of plans (few, the same on every row of a run). */
const spacedWordsOf = new Map<string, RegExp>()
const prefixedWordsOf = new Map<string, RegExp>()
const possessiveWordsOf = new Map<string, RegExp>()
/** `spacedNames` of a plan (made when a text first holds a server's name: most rows never ask). */
const spacedOfPlan = new WeakMap<ReadonlyArray<unknown>, ReadonlyArray<SpacedName>>()
/** Whether a tool's name starts with its server's (`fmp_get_quote` on server `fmp`). */
const serverPrefixed = (t: OfferedTool): boolean => t.tool.toLowerCase().startsWith(`${t.server.toLowerCase()}_`)

/**
 * The server-prefixed names of three parts or more of `tools`, written as words (`fmp get quote`: no phrase of
 * English starts with the server's name), each with the call name it names.
 */
const spacedNames = (tools: ReadonlyArray<OfferedTool>): ReadonlyArray<SpacedName> => {
  const known = spacedOfPlan.get(tools)
  if (known !== undefined) return known
  const spaced: Array<SpacedName> = []
  for (const t of tools) {
    const parts = t.tool.split(NAME_SEPARATORS)
    const call = t.call_name ?? t.tool
    if (!serverPrefixed(t) || parts.length < 3 || spaced.some((n) => n.call === call)) continue
    const server = t.server.split(NAME_SEPARATORS)
    spaced.push({
      words: remember(spacedWordsOf, t.tool, () => spacedWords(parts)),
      prefixed: remember(prefixedWordsOf, t.tool, () => prefixedWords(server, parts.slice(server.length))),
      possessive: remember(possessiveWordsOf, t.tool, () => possessiveWords(server, parts.slice(server.length))),
      call
    })
  }
  spacedOfPlan.set(tools, spaced)
  return spaced
}

/** The names a text may give a plan's tools (`ToolNames`). */
const namesOf = (plan: ReadonlyArray<OfferedTool>): ToolNames => {
  const known = namesOfPlan.get(plan)
  if (known !== undefined) return known
  const squashed = new Map<string, string>()
  const typos: Array<TypoName> = []
  for (const s of plan) {
    const display = s.call_name ?? s.tool
    const prefix = `${s.server}_`
    const bare = s.tool.toLowerCase().startsWith(prefix.toLowerCase()) ? s.tool.slice(prefix.length) : undefined
    for (const name of [display, s.tool, bare]) {
      if (name === undefined || !MULTI_PART.test(name)) continue
      const key = rememberWith(squashedNames, name, squash, undefined)
      if (!squashed.has(key)) squashed.set(key, display)
      if (
        name.length >= TYPO_MIN_LENGTH && key.length >= 6 && SEPARATED.test(name) && !typos.some((t) => t.key === key)
      ) {
        typos.push(remember(typoNames, `${display}\n${key}`, () => {
          const middle = Math.floor(key.length / 2)
          return { key, call: display, halves: [key.slice(0, middle), key.slice(middle + 1)] }
        }))
      }
    }
  }
  const names = { squashed, typos, tools: plan }
  namesOfPlan.set(plan, names)
  return names
}

/**
 * Letters (or digits) one at a time with one to three other characters between them, five or more
 * (`f m p _ g e t _ q u o t e`, `f*m*p*g*e*t`): a name spelled out so that no run of the text holds it.
 */
const SPELLED = /(?<![\p{L}\p{N}])[\p{L}\p{N}](?:[^\p{L}\p{N}\r\n]{1,3}[\p{L}\p{N}](?![\p{L}\p{N}])){4,}/gu
/**
 * `SPELLED` of Latin letters and digits, in a text lower-cased and folded (a cheap test first: most texts have
 * none; tool names are ASCII, and letters with only invisible characters between them are a run `nameIn` reads).
 */
const SPELLED_LATIN = /(?:^|[^a-z0-9])[a-z0-9](?:[^a-z0-9\r\n]{1,3}[a-z0-9](?![a-z0-9])){4,}/
const LETTER = /[\p{L}\p{N}]/gu
/** A percent-encoded byte (`%5F`). */
const PERCENT = /%[0-9A-Fa-f]{2}/
const PERCENT_BYTES = /(?:%[0-9A-Fa-f]{2})+/g
const utf8 = new TextDecoder()
/** A run's percent-encoded bytes decoded (UTF-8). */
const bytesDecoded = (text: string): string =>
  text.replace(
    PERCENT_BYTES,
    (bytes) => utf8.decode(Uint8Array.from(bytes.slice(1).split("%"), (b) => parseInt(b, 16)))
  )
/** A Markdown backslash escape (`\_`: a backslash before ASCII punctuation). */
const BACKSLASH_ESCAPE = /\\([!-/:-@[-`{-~])/g
/** An HTML character reference: decimal, hexadecimal or named (`&#95;`, `&#x5F;`, `&lowbar;`). */
const CHARACTER_REFERENCE = /&(?:#([0-9]{1,7})|#[xX]([0-9A-Fa-f]{1,6})|([A-Za-z][A-Za-z0-9]{1,31}));/g
/** The named references of the characters a name or its markup holds (HTML's names; others are left as written). */
const NAMED_CHARACTERS: Readonly<Record<string, string>> = {
  lowbar: "_",
  UnderBar: "_",
  hyphen: "-",
  dash: "-",
  period: ".",
  amp: "&",
  lt: "<",
  gt: ">",
  quot: "\"",
  apos: "'",
  colon: ":",
  sol: "/",
  bsol: "\\",
  ast: "*",
  num: "#",
  percnt: "%",
  nbsp: "\u00a0",
  ZeroWidthSpace: "\u200b",
  zwnj: "\u200c",
  zwj: "\u200d",
  shy: "\u00ad"
}
/** A run's character references decoded (one that names no character, or an unknown name, as written). */
const referencesDecoded = (text: string): string =>
  text.replace(CHARACTER_REFERENCE, (whole, decimal?: string, hex?: string, name?: string) => {
    if (name !== undefined) return Object.hasOwn(NAMED_CHARACTERS, name) ? NAMED_CHARACTERS[name]! : whole
    const code = decimal !== undefined ? parseInt(decimal, 10) : parseInt(hex!, 16)
    return code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff) ? whole : String.fromCodePoint(code)
  })

/**
 * How a reading reads a name written encoded: `mark`, what an encoded run holds (`marks`: the same, global);
 * `runChar`, what the run around a mark is made of besides marks (letters, digits, a name's separators, `%`, `+`,
 * invisible characters); `decoded`, the run decoded (up to three times over: `%255F`).
 * "until-2026-12-05" and before read percent-encoded bytes (`fmp%5Fget%5Fquote`, `+` a space); the current reading
 * also a Markdown backslash escape (`fmp\_get\_quote`, which Markdown renders as the name) and an HTML character
 * reference (`fmp&#95;get&lowbar;quote`).
 */
interface Encoding {
  readonly mark: RegExp
  readonly marks: RegExp
  /** `mark` where it is tried (sticky: a run grows over a mark after it, `a\_b&#95;c`, and not over a bare `&`). */
  readonly markAt: RegExp
  readonly runChar: RegExp
  readonly decoded: (run: string) => string
  /** Whether a run ends before the dots and dashes it ends with (a sentence's full stop; the current reading). */
  readonly trimsEnd: boolean
}
const PERCENT_ENCODING: Encoding = {
  mark: PERCENT,
  marks: /%[0-9A-Fa-f]{2}/g,
  markAt: /%[0-9A-Fa-f]{2}/y,
  runChar: /[\p{L}\p{N}_.%+\p{Cf}-]/u,
  decoded: (run) => {
    let text = run.replace(/\+/g, " ")
    for (let i = 0; i < 3 && PERCENT.test(text); i++) text = bytesDecoded(text)
    return text
  },
  trimsEnd: false
}
const ESCAPE_MARK = /%[0-9A-Fa-f]{2}|\\[!-/:-@[-`{-~]|&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});/
const ESCAPE_ENCODING: Encoding = {
  mark: ESCAPE_MARK,
  marks: new RegExp(ESCAPE_MARK.source, "g"),
  markAt: new RegExp(ESCAPE_MARK.source, "y"),
  runChar: PERCENT_ENCODING.runChar,
  decoded: (run) => {
    let text = run.replace(/\+/g, " ")
    for (let i = 0; i < 3 && ESCAPE_MARK.test(text); i++) {
      text = referencesDecoded(bytesDecoded(text).replace(BACKSLASH_ESCAPE, "$1"))
    }
    return text
  },
  trimsEnd: true
}
/** The runs of a text with an encoded character in them: [start, end) (grown from each mark to its run). */
const encodedRuns = (text: string, encoding: Encoding): Array<readonly [number, number]> => {
  const runs: Array<readonly [number, number]> = []
  for (const mark of text.matchAll(encoding.marks)) {
    if (runs.length > 0 && mark.index < runs[runs.length - 1]![1]) continue
    let [start, end] = [mark.index, mark.index + mark[0].length]
    while (start > 0 && encoding.runChar.test(text[start - 1]!)) start--
    for (let more = 1; more > 0; end += more) {
      encoding.markAt.lastIndex = end
      more = end >= text.length
        ? 0
        : encoding.runChar.test(text[end]!)
        ? 1
        : encoding.markAt.exec(text)?.[0].length ?? 0
    }
    if (encoding.trimsEnd) end -= TRAILING_DOTS.exec(text.slice(start, end))![0].length
    runs.push([start, end])
  }
  return runs
}

/**
 * Adds to `named` the plan tools `seen` (the text as read) spells letter by letter (`SPELLED`), each shown as
 * `written` has it from the name's first letter to its last.
 */
const spelledNamed = (seen: string, written: string, names: ToolNames, named: Map<string, string>): void => {
  for (const run of seen.matchAll(SPELLED)) {
    // The run's letters lower-cased, each with where the text has it.
    let letters = ""
    const [starts, ends]: [Array<number>, Array<number>] = [[], []]
    for (const letter of run[0].matchAll(LETTER)) {
      const lower = letter[0].toLowerCase()
      letters += lower
      for (let i = 0; i < lower.length; i++) {
        starts.push(run.index + letter.index)
        ends.push(run.index + letter.index + letter[0].length)
      }
    }
    for (const [name, tool] of names.squashed) {
      const i = named.has(tool) ? -1 : letters.indexOf(name)
      if (i >= 0) named.set(tool, written.slice(starts[i], ends[i + name.length - 1]))
    }
  }
}

/**
 * The plan tools a text names (call name -> the text as written), in the order it names them. `encoded`: also
 * read the text's encoded runs decoded (`Encoding`; from "until-2026-12-03d"; not again inside a decoded run).
 */
const toolsNamed = (
  text: string,
  names: ToolNames,
  reading: PromptReading,
  encoded = true
): ReadonlyMap<string, string> => {
  const fold = readsAsOf(reading, "until-2026-12-03b")
  const wide = readsAsOf(reading, "until-2026-12-03d")
  // From "until-2026-12-05": a sentence's end between a name's words parts them; invisible characters in a run do
  // not hide a name one edit off (the run is read as `squash` makes it, without them). The current reading: a
  // name Markdown-escaped or written with character references, or after its server's name possessive.
  const current = readsAsOf(reading, "until-2026-12-05")
  const escapes = readsAsOf(reading, "current")
  const named = new Map<string, string>()
  // A name a run of the message squashes to is in the whole message squashed (the separators and invisible
  // characters between its parts are all that squashing drops): look at the runs only when one is, or when it
  // holds half of a name a typo of counts. A name written as words starts with its server's name: look for the
  // words only when the message has that.
  const visible = visibleText(text)
  const shown = fold ? folded(visible) : visible
  const lower = shown.toLowerCase()
  const squashed = lower.replace(/[_.-]+/g, "")
  // The current reading looks for a typo's run with invisible characters as separators (`fmp\u200bget\u200bqoute`,
  // several parts as `typoIn` reads the run itself); before, without them (one part there). Most texts have none.
  const typos = wide && names.typos.some((t) => squashed.includes(t.halves[0]) || squashed.includes(t.halves[1])) &&
    typoRunIn(
      current && INVISIBLE_IN.test(text) ? folded(text.normalize("NFKC").replace(INVISIBLE, "-")) : shown,
      names.typos
    )
  const inRuns = typos || [...names.squashed.keys()].some((name) => squashed.includes(name))
  const inWords = readsAsOf(reading, "until-2026-12-03c") &&
    names.tools.some((t) => lower.includes(t.server.toLowerCase()))
  const encoding = escapes ? ESCAPE_ENCODING : PERCENT_ENCODING
  const inEncoded = wide && encoded && encoding.mark.test(visible)
  const prefixed = wide && inWords && PREFIX_MARK.test(visible)
  const possessive = escapes && inWords && POSSESSIVE_MARK.test(visible)
  const spelled = wide && names.squashed.size > 0 && SPELLED_LATIN.test(lower)
  if (!inRuns && !inWords && !inEncoded && !spelled) return named
  // Runs are read on the text without invisible characters, and shown as the message writes them.
  const written = text.normalize("NFKC")
  const seen = fold ? folded(written) : written
  for (const match of inRuns ? seen.matchAll(IDENTIFIER_RUN) : []) {
    const lead = LEADING_DOTS.exec(match[0])![0].length
    const trail = TRAILING_DOTS.exec(match[0])![0].length
    const [start, end] = [match.index + lead, match.index + match[0].length - trail]
    if (start >= end) continue
    const run = seen.slice(start, end)
    const tool = nameIn(run, names.squashed, reading) ??
      (typos && (current || !INVISIBLE_IN.test(run)) ? typoIn(run, names.typos) : undefined)
    if (tool !== undefined && !named.has(tool)) named.set(tool, written.slice(start, end))
  }
  for (const n of inWords ? spacedNames(names.tools) : []) {
    const match = named.has(n.call)
      ? undefined
      : wordsIn(n.words, seen, current) ?? (prefixed ? wordsIn(n.prefixed, seen, current) : undefined) ??
        (possessive ? wordsIn(n.possessive, seen, current) : undefined)
    if (match !== undefined) named.set(n.call, written.slice(match.index, match.index + match[0].length))
  }
  if (spelled) spelledNamed(seen, written, names, named)
  for (const [start, end] of inEncoded ? encodedRuns(seen, encoding) : []) {
    for (const [tool] of toolsNamed(encoding.decoded(seen.slice(start, end)), names, reading, false)) {
      if (!named.has(tool)) named.set(tool, written.slice(start, end))
    }
  }
  return named
}

/**
 * Whether a place of `text` lies inside a JSON object the text pastes as data (the current reading): one that
 * parses and holds, at any depth, a key no step's params hold at any depth (`{"symbol": "AAPL", "shares": 10}`
 * beside `fmp_get_quote`'s `{symbol}`: a portfolio, not a call's params). An object of the params' keys alone
 * (`{"symbol": "AAPL", "limit": 5}`) is a dump still, and so is any text that is no JSON (`'symbol': ...`).
 */
const inDataObject = (text: string, plan: ReadonlyArray<UserLeakStep>): (at: number) => boolean => {
  const planKeys = new Set<string>()
  const keysOf = (v: unknown, into: Set<string>): Set<string> => {
    if (Array.isArray(v)) { for (const x of v) keysOf(x, into) }
    else if (isObject(v)) { for (const [k, x] of Object.entries(v)) keysOf(x, into.add(k.toLowerCase())) }
    return into
  }
  for (const s of plan) keysOf(s.params, planKeys)
  const objects: Array<readonly [number, number]> = []
  // The first MAX_DATA_OBJECTS braces only: each is a scan to its close (a text of many unclosed braces would
  // cost its length times theirs); a key past them reads as before.
  let tries = 0
  for (let i = text.indexOf("{"); i >= 0 && tries++ < MAX_DATA_OBJECTS; i = text.indexOf("{", i + 1)) {
    const end = balancedEnd(text, i)
    if (end === undefined) continue
    let value: unknown
    try {
      value = JSON.parse(text.slice(i, end))
    } catch {
      continue
    }
    if ([...keysOf(value, new Set())].some((k) => !planKeys.has(k))) objects.push([i, end])
    i = end - 1
  }
  return (at) => objects.some(([start, end]) => start < at && at < end)
}

const MAX_DATA_OBJECTS = 32

/** Where the JSON object or array opened at `start` closes (after its bracket), strings read; undefined if never. */
const balancedEnd = (text: string, start: number): number | undefined => {
  let depth = 0
  for (let i = start; i < text.length; i++) {
    const c = text[i]
    if (c === "\"") {
      for (i++; i < text.length && text[i] !== "\""; i++) if (text[i] === "\\") i++
    } else if (c === "{" || c === "[") depth++
    else if ((c === "}" || c === "]") && --depth === 0) return i + 1
  }
  return undefined
}

/** The first of a step's param keys that a message writes as a params dump would: `"symbol":`, or `symbol=`. */
const paramsDump = (
  visible: string,
  plan: ReadonlyArray<UserLeakStep>,
  reading: PromptReading
): string | undefined => {
  const wider = readsAsOf(reading, "until-2026-12-03b")
  const stepWith = (key: string) =>
    plan.find((s) =>
      isObject(s.params) &&
      (wider
        ? Object.keys(s.params).some((k) => k.toLowerCase() === key.trim().toLowerCase())
        : Object.hasOwn(s.params, key))
    )
  const keys = wider ? QUOTED_KEY : JSON_KEY
  const quoted = wider ? QUOTE_COLON.test(visible) : visible.includes("\"")
  let data: ((at: number) => boolean) | undefined
  for (const key of quoted ? visible.matchAll(keys) : []) {
    const step = stepWith(key[1]!)
    if (step === undefined) continue
    data ??= readsAsOf(reading, "current") ? inDataObject(visible, plan) : () => false
    if (!data(key.index)) return `holds step ${step.step}'s params as JSON (${JSON.stringify(key[1])})`
  }
  for (const key of wider && visible.includes("=") ? visible.matchAll(KEY_VALUE) : []) {
    const step = stepWith(key[1]!)
    if (step !== undefined) return `holds step ${step.step}'s params as key=value (${JSON.stringify(key[1])})`
  }
  return undefined
}

/**
 * Whether a user message gives the plan away (`prompt/user-names-tool` in checks.ts, a warning): it names a
 * plan tool (its call name or tool name, or the tool name without its server's prefix, in any casing, with any
 * of `_`, `-` (or another dash), `.`, an invisible character or none between its parts, look-alike Cyrillic or
 * Greek letters read as Latin, alone or behind a namespace such as `functions.` or `mcp__fmp__`; only names of
 * several parts, so `echo` or `search` used as a word is none), holds the `<tool_call>` syntax (a tag: also with
 * spaces or attributes in it, or HTML-escaped), or holds a step's params as a dump (a quoted key of a step's
 * params followed by a colon, in double, single or typographic quotes and any casing, or the key followed by
 * `=` and a value: `symbol=AAPL`). A name spelled out as words ("list slack channels") is not looked for:
 * descriptive tool names are ordinary phrases; but a server-prefixed name of three parts or more is (`fmp get
 * quote`, `FMP get quote`: `spacedNames`), also after its server's name and a colon, slash or arrow (`FMP: get
 * quote`, `fmp/get quote`), though not across a sentence's end (`Use FMP. Get quote`: `SENTENCE_END`); nor is
 * `key: value` prose (`Ticker: TSLA`). A name also counts spelled letter by
 * letter (`f m p _ g e t _ q u o t e`, `F-M-P-G-E-T...`: `SPELLED`), percent-encoded (`fmp%5Fget%5Fquote`,
 * `%66%6D%70...`, twice over), Markdown-escaped or with HTML character references (`fmp\_get\_quote`,
 * `fmp&#95;get_quote`: `Encoding`), after its server's name possessive (`FMP's get quote`: `possessiveWords`),
 * and, for a name with a separator and 10 characters or more, one edit off in a
 * run of several parts (`fmp_get_qoute`, `fmp_get_quot`, `fmp_get_quotes`: `typoIn`; `get_qoute` is none),
 * invisible characters in it or not (`fmp_get_\u200bqoute`). Undefined when none.
 * A param key inside a JSON object pasted as data is no dump (`inDataObject`).
 * Older readings (the generate runs they judged keep them: `promptReadingOf`): "until-2026-12-05" reads no
 * Markdown escape, character reference nor possessive server's name, and reads a key in pasted JSON as a dump;
 * "until-2026-12-03d" besides joins the words across a sentence's end and reads no one-edit-off name with an
 * invisible character in it;
 * "until-2026-12-03c" besides reads no
 * spelled, percent-encoded or one-edit-off name, nor the server's name and a colon before words;
 * "until-2026-12-03b" besides no spaced server-prefixed name; "until-2026-12-03" besides no look-alike letter,
 * other dash nor invisible
 * separator, and only double-quoted keys as they are;
 * "until-2026-12-02" besides: no namespace before a name, and the tag only as `<tool_call>` or `</tool_call>`.
 */
export const userLeak = (
  user: string,
  plan: ReadonlyArray<UserLeakStep>,
  reading: PromptReading = "current"
): string | undefined => {
  const problems: Array<string> = []
  for (const [tool, text] of toolsNamed(user, namesOf(plan), reading)) {
    problems.push(`names the plan's ${tool} (${JSON.stringify(text)})`)
  }
  const visible = visibleText(user)
  if ((readsAsOf(reading, "until-2026-12-03") ? TOOL_CALL_TAG : TOOL_CALL_TAG_BEFORE).test(visible)) {
    problems.push("holds the tool-call syntax (<tool_call>)")
  }
  const dump = paramsDump(visible, plan, reading)
  if (dump !== undefined) problems.push(dump)
  return problems.length === 0
    ? undefined
    : `${problems.join("; ")}: the policy is told the plan instead of choosing it`
}

/**
 * Whether a system message's own text (`ownText`: without its tool list, which names every tool) singles out
 * the plan's tools (`prompt/user-names-tool`, the current reading): it names a plan tool as `userLeak` reads
 * names, and no other tool the prompt offers (`offered`, asked only then). A text that names other tools too is general guidance
 * ("prices: fmp_get_quote; profiles: fmp_get_company_profile"), as a catalogue in prose is. Undefined when not.
 * `reading`: the names as that reading reads them ("current" unless told; a run judged by an older reading may
 * pass its own, as `userLeak` takes it).
 */
export const systemLeak = (
  ownText: string,
  plan: ReadonlyArray<UserLeakStep>,
  offered: () => ReadonlyArray<OfferedTool>,
  reading: PromptReading = "current"
): string | undefined => {
  const names = namesOf(plan)
  const inPlan = toolsNamed(ownText, names, reading)
  if (inPlan.size === 0) return undefined
  const planCalls = new Set(plan.map((s) => s.call_name ?? s.tool))
  const others = namesOf(offered().filter((t) => !planCalls.has(t.call_name ?? t.tool)))
  if (toolsNamed(ownText, others, reading).size > 0) return undefined
  const shown = [...inPlan].map(([tool, text]) => `${tool} (${JSON.stringify(text)})`).join(", ")
  return `the system message's own text (outside its tool list) names the plan's ${shown} and no other tool: ` +
    "the policy is told the plan instead of choosing it"
}
