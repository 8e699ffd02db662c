/**
 * Ajv's `uniqueItems` for arrays whose items may be of any type, in linear time. Ajv's own code compares every
 * pair of items (`equal(data[i], data[j])` for each j < i): the draft-07 meta-schema's `enum` is such an array, so
 * checking a tool schema whose enum had 40,000 values cost ~3 s of CPU at every start of a command that loads the
 * inventory (100,000: ~20 s, 200,000: ~90 s). scripts/gen-draft7-meta.ts puts a call of this function in place of
 * that loop in the meta-schema's validator it generates.
 */
import { canonicalJson } from "./canonical.js"

/** The latest index in `group` (ascending) whose item is equal to `item`. */
const latestEqual = (
  items: ReadonlyArray<unknown>,
  group: ReadonlyArray<number>,
  item: unknown,
  equal: (a: unknown, b: unknown) => boolean
): number | undefined => {
  for (let k = group.length - 1; k >= 0; k--) {
    if (equal(item, items[group[k]!])) return group[k]
  }
  return undefined
}

/**
 * The pair of equal items Ajv's pairwise loop reports, `[i, j]` with j < i, or undefined when the items are
 * unique: the last item equal to an earlier one, and the latest of those earlier ones. Items are grouped by a key
 * that equal items share (a string stands for itself, any other value for its canonical JSON), and `equal` (Ajv's
 * own deep equality) is asked only within a group, so a key two unequal items share cannot make a duplicate.
 */
export const duplicatePair = (
  items: ReadonlyArray<unknown>,
  equal: (a: unknown, b: unknown) => boolean
): readonly [number, number] | undefined => {
  const groups = new Map<string, Array<number>>()
  let pair: readonly [number, number] | undefined
  items.forEach((item, i) => {
    const key = typeof item === "string" ? item : `\u0000${canonicalJson(item)}`
    const group = groups.get(key)
    if (group === undefined) {
      groups.set(key, [i])
      return
    }
    const j = latestEqual(items, group, item, equal)
    if (j !== undefined) pair = [i, j]
    group.push(i)
  })
  return pair
}
