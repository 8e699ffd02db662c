/**
 * How deep JSON values may nest (objects and arrays) anywhere skyrl reads them. JSON.parse reads any depth,
 * but much of the code that walks values after it is recursive (the stack overflows seen: canonical JSON in
 * `convert`, the literal-values check's walk of params in `validate`): a record ~3,000 levels deep ended a whole
 * `convert`, `validate` or `verify` run with "Maximum call stack size exceeded" and no file or row named. A record (a task, a row, a
 * model answer's task) or a JSON text inside a row (a step's params, task_metadata, tool_schemas) nested
 * deeper is refused as that record's fault; an inventory, as the file's. MCPToolEnv's Python reading fails
 * beyond ~500 levels too, and tool params need a few (`verify` allows 100: MAX_PARAMS_DEPTH).
 */
export const MAX_JSON_DEPTH = 512

/**
 * Whether a value nests more than `max` levels of objects and arrays (a primitive is 0 levels, `{}` and `[]` 1).
 * Recursive, but never deeper than `max` calls: any depth of `value` is safe for the `max` values used here.
 */
export const nestsDeeperThan = (value: unknown, max: number): boolean => {
  if (typeof value !== "object" || value === null) return false
  if (max <= 0) return true
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (nestsDeeperThan(value[i], max - 1)) return true
    return false
  }
  for (const key in value) if (nestsDeeperThan((value as Record<string, unknown>)[key], max - 1)) return true
  return false
}

/** The reason a value nested too deep is refused, naming what it is (`what`). */
export const tooDeepReason = (what: string): string =>
  `${what} nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep: too deep to read (skyrl's checks and ` +
  "MCPToolEnv walk values recursively)"

/**
 * Whether JSON text nests more than `max` levels of objects and arrays, from its brackets outside strings (for
 * valid JSON the same as `nestsDeeperThan` of its parse; a text of at most 2 × `max` characters cannot, and is
 * not scanned): for the JSON texts a row holds, which the checks parse and walk at more than one place.
 */
export const jsonTextNestsDeeperThan = (text: string, max: number): boolean => {
  if (text.length <= 2 * max) return false
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // a backslash escapes the next character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}
