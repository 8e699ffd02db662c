/**
 * Is a derived param's value held by the results a call could read? The reading MCPToolEnv's
 * `ground_derived` scores with (python/skyrl_mcp_env/reward.py `Evidence`; both held to
 * test/fixtures/grounding/vectors.json): each non-empty string of the value occurs in a result's text, as
 * written or JSON-escaped (with or without `\u` escapes of non-ASCII characters), as a whole token (`occursAsToken`);
 * each number equals a
 * number a text writes (`1,234.5`, `-3`, `1e3`; the `05` of a date is 5); booleans and nulls hold nothing
 * to find. A text that is JSON (`jsonLeaves`) or a Python repr (`pythonLeaves`), or a line of JSON
 * (`textPieces`), is read a string or number of it at a time for a string with a
 * letter or a digit: it must lie inside one of them, so a stretch of the JSON itself (the whole result pasted, or
 * most of it) holds nothing; a string of neither (`","`) is looked for in the texts as they are. Pure.
 */

const NUMBER = /-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+-]?\d+)?/g

/** A string's JSON text without its quotes, every character outside printable ASCII as a `\u` escape (Python's `ensure_ascii`). */
const asciiEscaped = (s: string): string =>
  JSON.stringify(s).slice(1, -1).replace(/[^ -~]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

/**
 * A character's kind for token edges: a letter (or `_`, or a combining mark: a vowel sign of Devanagari or Thai,
 * the accent of a decomposed `é`, which are inside a word, not its edge), a digit, or anything else.
 */
const kindOf = (c: string): "letter" | "digit" | "other" =>
  /[\p{L}\p{M}_]/u.test(c) ? "letter" : /\p{N}/u.test(c) ? "digit" : "other"

/** The code point of `t` just before index `i` (undefined at 0), a surrogate pair read as one. */
const charBefore = (t: string, i: number): string | undefined => {
  if (i === 0) return undefined
  const low = t.charCodeAt(i - 1)
  return i >= 2 && low >= 0xdc00 && low <= 0xdfff && (t.charCodeAt(i - 2) & 0xfc00) === 0xd800
    ? t.slice(i - 2, i)
    : t[i - 1]
}

/** The code point of `t` at index `i` (undefined at its end). */
const charAt = (t: string, i: number): string | undefined =>
  i >= t.length ? undefined : String.fromCodePoint(t.codePointAt(i)!)

/** No run of letters or of digits goes on across index `i` of `t`: the edge of a token. */
const tokenEdge = (t: string, i: number): boolean => {
  const [before, after] = [charBefore(t, i), charAt(t, i)]
  if (before === undefined || after === undefined) return true
  const kind = kindOf(before)
  return kind === "other" || kind !== kindOf(after)
}

/**
 * Whether `form` occurs in `t` as a whole token: not cut out of a run of letters or of digits (`P` is not
 * in `PLTR`, nor `42` in `420`; `2026-12-05` is in `2026-12-05T10:00`, `PLTR` in `"PLTR"`). Without it a
 * policy sending one letter grounded nearly any value.
 */
const occursAsToken = (t: string, form: string): boolean => {
  for (let i = t.indexOf(form); i >= 0; i = t.indexOf(form, i + 1)) {
    if (tokenEdge(t, i) && tokenEdge(t, i + form.length)) return true
  }
  return false
}

/** A string or number of a JSON text (a string decoded), and whether it is an object's key. */
type Leaf = readonly [text: string, key: boolean]

const JSON_START = /^\ufeff?[ \t\n\r]*[[{"]/
/**
 * A string, a number (NaN and Infinity too: Python's json.dumps writes them) or a literal, each followed by what may
 * follow it in JSON (so `[2026-12-05]` is no JSON), or a mark.
 */
const JSON_TOKEN =
  /[ \t\n\r]*(?:(?:"([^"\\]*(?:\\.[^"\\]*)*)"|(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null|NaN|-?Infinity))(?=[ \t\n\r,:\]}]|$)|([[\]{},:]))/y
const CUT_STRING = /^"([^"\\]*(?:\\.[^"\\]*)*)\\?$/
/** A `\u` escape cut short at the end of a string. */
const CUT_ESCAPE = /\\u[0-9a-fA-F]{0,3}$/
const CUT_SCALAR =
  /^(?:-?[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?|t(?:r(?:u)?)?|f(?:a(?:l(?:s)?)?)?|n(?:u(?:l)?)?|Na?|-?I(?:n(?:f(?:i(?:n(?:i(?:ty?)?)?)?)?)?)?)$/

/** A JSON string's characters from its text between the quotes, or undefined when JSON would not read it. */
const decoded = (body: string): string | undefined => {
  try {
    return JSON.parse(`"${body}"`) as string
  } catch {
    return undefined
  }
}

/**
 * The strings (decoded) and numbers of a text made of JSON tokens (one or more JSON texts, perhaps cut short, as
 * MCPToolEnv's `max_response_chars` cuts them, unless `cut` is false), each with whether it is an object's key;
 * undefined for any other text. Only the tokens are read, not the structure. A string that is itself JSON (a result
 * encoded twice: `{"result": "[{\"symbol\": ...}]"}`) gives its own strings and numbers instead. MCPToolEnv reads
 * it alike (reward.py `json_leaves`).
 */
export const jsonLeaves = (text: string, cut = true): Array<Leaf> | undefined =>
  jsonTokens(text, cut)?.flatMap(([leaf, key]) =>
    (key || !JSON_START.test(leaf) ? undefined : jsonLeaves(leaf, false)) ?? [[leaf, key] as const]
  )

/** `jsonLeaves` without looking into its strings. */
const jsonTokens = (text: string, cut: boolean): Array<Leaf> | undefined => tokens(text, cut, JSON_DIALECT)

/**
 * How `tokens` reads a text of JSON, or of a Python repr: where it may start, a token (`parts` gives its string's
 * text between the quotes, its scalar, its mark), a string's characters from that text, a string (its text after
 * the quote in a group, perhaps a last backslash; an escape cut short at the end of that text) and a scalar cut
 * short at the end.
 */
interface Dialect {
  readonly start: RegExp
  readonly token: RegExp
  readonly parts: (m: RegExpExecArray) => readonly [string | undefined, string | undefined, string | undefined]
  readonly decoded: (body: string) => string | undefined
  readonly cutString: RegExp
  readonly cutEscape: RegExp
  readonly cutScalar: RegExp
}

/**
 * The strings (decoded) and scalars of a text made of `dialect`'s tokens, perhaps cut short (unless `cut` is false),
 * each with whether it is an object's key (a string followed by a colon); undefined for any other text.
 */
const tokens = (text: string, cut: boolean, dialect: Dialect): Array<Leaf> | undefined => {
  if (!dialect.start.test(text)) return undefined
  const leaves: Array<Leaf> = []
  const token = dialect.token
  let [pos, afterString] = [text.startsWith("\ufeff") ? 1 : 0, false]
  token.lastIndex = pos
  for (let m = token.exec(text); m !== null; m = token.exec(text)) {
    pos = token.lastIndex
    const [string, scalar, mark] = dialect.parts(m)
    if (mark === ":" && afterString) leaves[leaves.length - 1] = [leaves[leaves.length - 1]![0], true]
    const leaf = string === undefined ? scalar : dialect.decoded(string)
    if (string !== undefined && leaf === undefined) return undefined
    if (leaf !== undefined) leaves.push([leaf, false])
    afterString = string !== undefined
  }
  const rest = text.slice(pos).replace(/^[ \t\n\r]+/, "")
  if (rest === "") return leaves
  if (!cut) return undefined
  const cutText = cutString(rest, dialect)
  if (cutText !== undefined) return [...leaves, [cutText, false]]
  return dialect.cutScalar.test(rest) ? [...leaves, [rest, false]] : undefined
}

/** The characters of a string cut short at the end of a text (perhaps inside an escape), or undefined. */
const cutString = (rest: string, dialect: Dialect): string | undefined => {
  const cut = dialect.cutString.exec(rest)
  if (cut === null) return undefined
  const body = cut.slice(1).find((g) => g !== undefined) ?? ""
  return dialect.decoded(body) ?? dialect.decoded(body.replace(dialect.cutEscape, ""))
}

const JSON_DIALECT: Dialect = {
  start: JSON_START,
  token: JSON_TOKEN,
  parts: (m) => [m[1], m[2], m[3]],
  decoded,
  cutString: CUT_STRING,
  cutEscape: CUT_ESCAPE,
  cutScalar: CUT_SCALAR
}

const PY_START = /^\ufeff?[ \t\n\r]*[[{(]/
/**
 * A string in single or double quotes (as repr writes them), a number, True, False, None, nan or inf (as repr writes
 * floats), each followed by what may follow it in a repr, or a mark.
 */
const PY_TOKEN =
  /[ \t\n\r]*(?:(?:'((?:[^'\\\n]|\\[^\n])*)'|"((?:[^"\\\n]|\\[^\n])*)"|(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|True|False|None|nan|-?inf))(?=[ \t\n\r,:\])}]|$)|([[\](){},:]))/y
const PY_CUT_STRING = /^(?:'((?:[^'\\\n]|\\[^\n])*)\\?|"((?:[^"\\\n]|\\[^\n])*)\\?)$/
/** An escape cut short at the end of a repr's string. */
const PY_CUT_ESCAPE = /\\(?:x[0-9a-fA-F]?|u[0-9a-fA-F]{0,3}|U[0-9a-fA-F]{0,7})$/
const PY_CUT_SCALAR = /^(?:-?[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?|T(?:ru?)?|F(?:a(?:ls?)?)?|N(?:on?)?|na?|-?in?)$/
const PY_ESCAPE = /\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([\\'"nrt]))|\\/g
const PY_SIMPLE: Readonly<Record<string, string>> = { "\\": "\\", "'": "'", "\"": "\"", n: "\n", r: "\r", t: "\t" }

/**
 * `jsonLeaves` for a text that is a Python repr of a container (`{'symbol': 'PLTR', 'ok': True}`, a list, a tuple;
 * what `str()` of a tool's dict gives): its strings (in either quotes, with the escapes repr writes: `\\`, `\'`,
 * `\"`, `\n`, `\r`, `\t`, `\xhh`, `\uhhhh`, `\Uhhhhhhhh`) and numbers, each with whether it is a dict's key;
 * undefined for any other text (another escape, a byte string, a call such as `datetime(...)`). A string that is
 * itself JSON or a repr gives its own strings and numbers. MCPToolEnv reads it alike (reward.py `python_leaves`).
 */
export const pythonLeaves = (text: string, cut = true): Array<Leaf> | undefined => {
  const leaves = tokens(text, cut, PYTHON_DIALECT)
  if (leaves === undefined) return undefined
  return leaves.flatMap(([leaf, key]) => {
    if (key) return [[leaf, key] as const]
    const inner = (JSON_START.test(leaf) ? jsonLeaves(leaf, false) : undefined) ??
      (PY_START.test(leaf) ? pythonLeaves(leaf, false) : undefined)
    return inner ?? [[leaf, key] as const]
  })
}

/** A repr's string's characters from its text between the quotes, or undefined for an escape repr does not write. */
const pyDecoded = (body: string): string | undefined => {
  let bad = false
  const text = body.replace(PY_ESCAPE, (_, x?: string, u?: string, big?: string, simple?: string) => {
    if (simple !== undefined) return PY_SIMPLE[simple]!
    const code = parseInt(x ?? u ?? big ?? "", 16)
    if (Number.isNaN(code) || code > 0x10ffff) {
      bad = true
      return ""
    }
    return String.fromCodePoint(code)
  })
  return bad ? undefined : text
}

const PYTHON_DIALECT: Dialect = {
  start: PY_START,
  token: PY_TOKEN,
  parts: (m) => [m[1] ?? m[2], m[3], m[4]],
  decoded: pyDecoded,
  cutString: PY_CUT_STRING,
  cutEscape: PY_CUT_ESCAPE,
  cutScalar: PY_CUT_SCALAR
}

/** A piece of a text grounding searches: a JSON string or number (with whether it is a key), or plain lines (null). */
type Piece = readonly [text: string, key: boolean | null]

/**
 * What grounding searches in a text, or undefined to search it as it is: a JSON text's strings and numbers
 * (`jsonLeaves`); else, in a text of several lines of which some are JSON (a line of prose, then JSON; JSON, then an
 * image's placeholder; a fenced code block; a line that goes on in JSON from its first bracket), those lines' strings
 * and numbers, and each run of the other lines (and words before, between and after such JSON) as one piece (key
 * null). A line may hold several JSON texts with words between them (`{...} and {...} done`, since
 * "json-leaves-3"). Lines, as JSON writes no line break inside a token. A text that is a Python repr (`pythonLeaves`,
 * since "json-leaves-4") is read as a JSON text is. MCPToolEnv reads it alike (reward.py `text_pieces`).
 */
export const textPieces = (text: string): Array<Piece> | undefined => {
  const whole = jsonLeaves(text) ?? pythonLeaves(text)
  if (whole !== undefined) return whole
  const pieces: Array<Piece> = []
  let plain: Array<string> = []
  const lines = text.split("\n")
  let found = false
  lines.forEach((line, n) => {
    const cut = n === lines.length - 1 // only the last line may have been cut
    let [before, leaves, after] = lineRead(line, cut)
    if (leaves === undefined) return void plain.push(line)
    found = true
    // The words after a line's JSON are read again: more JSON may follow them (`{...} and {...} done`).
    while (leaves !== undefined) {
      if (before !== "") plain.push(before)
      if (plain.length > 0) pieces.push([plain.join("\n"), null])
      plain = []
      pieces.push(...leaves)
      const rest = after
      ;[before, leaves, after] = rest === "" ? ["", undefined, ""] : lineRead(rest, cut)
      if (leaves === undefined) after = rest
    }
    if (after !== "") plain.push(after)
  })
  if (!found) return undefined
  return plain.length > 0 ? [...pieces, [plain.join("\n"), null]] : pieces
}

/**
 * A line's prose and JSON: the line's strings and numbers when it is JSON; else the JSON in it and the words before
 * and after it, where the line goes on in JSON from its first bracket (`Found 2 results: [{...}]`), or is JSON up to
 * a closing bracket and words after it (`[{...}] // 2 rows`; `closedJsonEnd`), from its start, else from its first
 * bracket; else the line as prose (undefined).
 */
const lineRead = (line: string, cut: boolean): readonly [string, Array<Leaf> | undefined, string] => {
  const leaves = jsonLeaves(line, cut)
  if (leaves !== undefined) return ["", leaves, ""]
  const bracket = Math.min(...[line.indexOf("["), line.indexOf("{")].filter((i) => i > 0), Infinity)
  const fromBracket = bracket === Infinity ? undefined : jsonLeaves(line.slice(bracket), cut)
  if (fromBracket !== undefined) return [line.slice(0, bracket), fromBracket, ""]
  for (const start of bracket === Infinity ? [0] : [0, bracket]) {
    const end = closedJsonEnd(line.slice(start))
    if (end !== undefined) {
      return [line.slice(0, start), jsonLeaves(line.slice(start, start + end), false)!, line.slice(start + end)]
    }
  }
  return [line, undefined, ""]
}

/**
 * Where a text that begins in JSON tokens stops being JSON, if a closing bracket came before with a JSON string
 * before it: the end of the last `]` or `}` read before the first character that is no JSON token (the structure
 * is not read, as in `jsonTokens`). Without a string it is prose: `[10:00, 11:30] free`, `[::1]:8080`, `[1] Apple`.
 */
const closedJsonEnd = (text: string): number | undefined => {
  if (!JSON_START.test(text)) return undefined
  let [end, string] = [undefined as number | undefined, false]
  JSON_TOKEN.lastIndex = text.startsWith("\ufeff") ? 1 : 0
  for (let m = JSON_TOKEN.exec(text); m !== null; m = JSON_TOKEN.exec(text)) {
    if (m[1] !== undefined && decoded(m[1]) === undefined) break
    string ||= m[1] !== undefined
    if (string && (m[3] === "]" || m[3] === "}")) end = JSON_TOKEN.lastIndex
  }
  return end
}

/** The string holds a letter or a digit (what a JSON text's strings and numbers are searched for). */
const findable = (s: string): boolean => [...s].some((c) => kindOf(c) !== "other")

export class Evidence {
  private numbers: Set<number> | undefined
  private leaves: ReadonlyArray<string> | undefined

  constructor(readonly texts: ReadonlyArray<string>) {}

  /** Plain texts as they are, and the pieces of the others (`textPieces`). */
  private get read(): ReadonlyArray<string> {
    return (this.leaves ??= this.texts.flatMap((t) => textPieces(t)?.map(([piece]) => piece) ?? [t]))
  }

  holds(value: unknown): boolean {
    if (Array.isArray(value)) return value.every((v) => this.holds(v))
    if (typeof value === "object" && value !== null) return Object.values(value).every((v) => this.holds(v))
    if (typeof value === "string") {
      if (value === "") return true
      const forms = new Set([value, JSON.stringify(value).slice(1, -1), asciiEscaped(value)])
      const searched = findable(value) ? this.read : this.texts
      return searched.some((t) => [...forms].some((f) => occursAsToken(t, f)))
    }
    if (typeof value === "number") return this.numbersWritten().has(value)
    return true
  }

  /** Every number the texts write, signed and unsigned. */
  private numbersWritten(): Set<number> {
    if (this.numbers === undefined) {
      this.numbers = new Set()
      for (const t of this.read) {
        for (const m of t.matchAll(NUMBER)) {
          const n = Number(m[0].replaceAll(",", ""))
          this.numbers.add(n).add(Math.abs(n))
        }
      }
    }
    return this.numbers
  }
}

/**
 * A result's text as MCPToolEnv shows it to a policy (`result_text` in python/skyrl_mcp_env/tools.py), for an
 * ok result; blocks other than text are JSON without the spaces Python puts after `,` and `:`.
 */
export const policyText = (result: { readonly content?: unknown; readonly structuredContent?: unknown }): string => {
  const blocks = Array.isArray(result.content) ? result.content : []
  const parts = blocks.map(blockText)
  if (parts.length === 0 && result.structuredContent !== undefined && result.structuredContent !== null) {
    parts.push(JSON.stringify(result.structuredContent))
  }
  return parts.join("\n")
}

const blockText = (block: unknown): string => {
  if (typeof block !== "object" || block === null) return String(block)
  const b = block as { type?: unknown; text?: unknown; mimeType?: unknown; data?: unknown }
  if (b.type === "text") return String(b.text ?? "")
  if (b.type === "image" || b.type === "audio") {
    return `[${b.type} ${String(b.mimeType ?? "")}, ${typeof b.data === "string" ? b.data.length : 0} base64 chars]`
  }
  return JSON.stringify(block)
}

interface StepOfPlan {
  readonly step: number
  readonly params: Readonly<Record<string, unknown>>
  readonly derivedParams: ReadonlyArray<string>
  readonly dependsOn?: ReadonlyArray<number> | undefined
}

/**
 * For each step, whether every derived param of it holds a value the results of its `depends_on` steps give
 * (of every step before it, for a step without `depends_on`), as MCPToolEnv's `ground_derived` reads a policy
 * playing the plan one call per turn; undefined for a step without derived params. `texts[i]`: step i's result
 * as `policyText` gives it (for the steps before the last).
 */
export const derivedValuesFoundBySteps = (
  steps: ReadonlyArray<StepOfPlan>,
  texts: ReadonlyArray<string>
): ReadonlyArray<boolean | undefined> =>
  steps.map((s, i) => {
    if (s.derivedParams.length === 0) return undefined
    const deps = s.dependsOn ?? []
    const read = texts.slice(0, i).filter((_, j) => deps.length === 0 || deps.includes(steps[j]!.step))
    const evidence = new Evidence(read)
    return s.derivedParams.every((p) => evidence.holds(s.params[p]))
  })

/** The row's `derived_values_found` from its steps': undefined when no step has derived params. */
export const rowFound = (bySteps: ReadonlyArray<boolean | undefined>): boolean | undefined =>
  bySteps.every((f) => f === undefined) ? undefined : bySteps.every((f) => f !== false)
