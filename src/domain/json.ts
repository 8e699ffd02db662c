/** JSON values as skyrl reads them. Pure. */

/**
 * A JSON object (not null, not an array): the one definition. `isObject<any>(u)` where the caller reads
 * fields of a raw API body loosely.
 */
export const isObject = <V = unknown>(u: unknown): u is Record<string, V> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * `o[key] = value` as JSON means it: an own key, also when the key is `__proto__` (a JSON key like any other,
 * which `JSON.parse` makes an own key), where assignment would set `o`'s prototype instead and the value would
 * vanish from `Object.keys` and `JSON.stringify`. For copies of objects read from JSON.
 */
/** The entries of `o` whose keys `known` lacks, in the object's order (an own `__proto__` too, as data). */
export const entriesOtherThan = (o: Record<string, unknown>, known: ReadonlySet<string>): Array<[string, unknown]> => {
  const other: Array<[string, unknown]> = []
  for (const key in o) if (!known.has(key)) other.push([key, o[key]])
  return other
}

/** The fields of `value` (an object) whose keys `known` lacks, as given, in order; undefined when there are none. */
export const fieldsOtherThan = (value: unknown, known: ReadonlySet<string>): Record<string, unknown> | undefined => {
  if (!isObject(value)) return undefined
  const other = entriesOtherThan(value, known)
  return other.length === 0 ? undefined : Object.fromEntries(other)
}

export const setOwn = (o: Record<string, unknown>, key: string, value: unknown): void => {
  if (key === "__proto__") {
    Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })
  } else o[key] = value
}

/** The index just past the JSON string that starts (with its `"`) at `start`. */
const stringEnd = (text: string, start: number): number => {
  let i = start + 1
  while (i < text.length && text[i] !== "\"") i += text[i] === "\\" ? 2 : 1
  return i + 1
}

/** The index just past the `//` or `/* *\/` comment that starts at `start` (undefined: none starts there). */
const commentEnd = (text: string, start: number): number | undefined => {
  if (text[start] !== "/") return undefined
  const close = text[start + 1] === "/" ? "\n" : text[start + 1] === "*" ? "*/" : undefined
  if (close === undefined) return undefined
  const at = text.indexOf(close, start + 2)
  // An unterminated `/*` is left as it is, for the JSON parser to refuse (it hid the rest of the file).
  if (at === -1) return close === "\n" ? text.length : undefined
  return close === "\n" ? at : at + 2
}

/**
 * JSON with comments (JSONC, as VS Code reads its settings and `mcp.json`) → JSON: `//` and `/* *\/`
 * comments outside strings, and a comma before `}` or `]`, become spaces (line breaks stay, so the
 * positions in a parse error still hold).
 */
export const stripJsonc = (text: string): string => {
  const out = text.split("")
  let comma = -1 // a comma after a value, not yet followed by anything but blanks and comments
  let previous = "" // the last character outside blanks and comments
  for (let i = 0; i < text.length;) {
    const end = commentEnd(text, i)
    if (end !== undefined) {
      for (let j = i; j < end; j++) if (out[j] !== "\n") out[j] = " "
      i = end
      continue
    }
    const c = text[i]!
    if ((c === "}" || c === "]") && comma !== -1) out[comma] = " "
    // Only a comma after a value trails (`[,]` and `{,}` stay for the parser to refuse).
    if (c === ",") comma = previous === "[" || previous === "{" || previous === "," ? -1 : i
    else if (!/\s/.test(c)) comma = -1
    if (!/\s/.test(c)) previous = c
    i = c === "\"" ? stringEnd(text, i) : i + 1
  }
  return out.join("")
}

/** What a JSON value is, for messages such as `expected an object, got null`: null, an array, an object or its typeof. */
export const describeType = (u: unknown): string =>
  u === null ? "null" : Array.isArray(u) ? "an array" : typeof u === "object" ? "an object" : typeof u
