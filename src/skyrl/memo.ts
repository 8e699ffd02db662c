/** A small bounded memo for answers that repeat across rows (a run's system message, its tool names). */

/** `ask()`, remembered under `key` in `answers` when there is a map (at most 256 keys: then it starts again). */
export const remember = <K, V>(answers: Map<K, V> | undefined, key: K, ask: () => V): V => {
  if (answers === undefined) return ask()
  let answer = answers.get(key)
  if (answer === undefined) rememberAnswer(answers, key, answer = ask())
  return answer
}

/** Keeps `answer` under `key` in `answers`, as `remember` does (for callers that asked without a closure). */
export const rememberAnswer = <K, V>(answers: Map<K, V>, key: K, answer: V): void => {
  if (answers.size >= 256) answers.clear()
  answers.set(key, answer)
}
