/** Counted words in messages: `plural(1, "server")` is "1 server", `plural(2, "entry", "entries")` "2 entries". */
export const noun = (n: number, one: string, many = `${one}s`): string => (n === 1 ? one : many)

export const plural = (n: number, one: string, many?: string): string => `${n} ${noun(n, one, many)}`

/**
 * Characters a POSIX shell takes as part of a word wherever they stand: a word of only these is pasted as is (not
 * one starting with `=`, which zsh expands to a command's path).
 */
const PLAIN_WORD = /^[A-Za-z0-9/._\-+:@%,][A-Za-z0-9/._\-+:@%,=]*$/

/**
 * A path (or any word) as a command line shown in a message names it, so that the line pastes into a POSIX
 * shell: unchanged when it has only letters, digits and `/._-+:@%,=` (no `=` first); else in single quotes, a quote in it
 * written `'\''` (`it's` is `'it'\''s'`; the empty word is `''`).
 */
export const shellWord = (word: string): string => PLAIN_WORD.test(word) ? word : `'${word.split("'").join(`'\\''`)}'`
