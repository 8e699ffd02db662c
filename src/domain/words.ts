/** Counted words in messages: `plural(1, "server")` is "1 server", `plural(2, "entry", "entries")` "2 entries". */
export const noun = (n: number, one: string, many = `${one}s`): string => (n === 1 ? one : many)

export const plural = (n: number, one: string, many?: string): string => `${n} ${noun(n, one, many)}`
