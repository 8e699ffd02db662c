/** A small bounded memo for answers that repeat across rows (a run's system message, its tool names). */

/** `ask()`, remembered under `key` in `answers` when there is a map (at most 256 keys: then it starts again). */
export const remember = <K, V>(answers: Map<K, V> | undefined, key: K, ask: () => V): V =>
  rememberWith(answers, key, ask, undefined)

/**
 * `ask(key, arg)`, remembered as `remember` does. For questions asked for every row: with an `ask` made once (a
 * module-level function), no closure is made per question.
 */
export const rememberWith = <K, V, A>(
  answers: Map<K, V> | undefined,
  key: K,
  ask: (key: K, arg: A) => V,
  arg: A
): V => {
  if (answers === undefined) return ask(key, arg)
  let answer = answers.get(key)
  if (answer === undefined) {
    if (answers.size >= 256) answers.clear()
    answers.set(key, answer = ask(key, arg))
  }
  return answer
}
