/**
 * `skyrl split`'s grouping and assignment, pure: rows are put in groups (`groupKeyOf`), and a whole group goes
 * to validation or to training, never both, so that no validation row is a near-copy of a training row.
 *
 * - plan: `planKeyOf` (nearDup.ts), the key of validate's `duplicate/same-plan` and of generate's duplicate
 *   gate: the same calls in the same order with the same literal params (canonical JSON; the values of
 *   `derived_params`, illustrative, left out);
 * - prompt: the user message as near-duplicate detection normalizes it (`normalizeForDuplicates`);
 * - none: the row's position over all inputs, so each row is a group of its own.
 *
 * A group's score is `groupScore(seed, key)`, in [0, 1): it depends on the seed and the key alone, so rows
 * added later do not move a group already assigned under `--val-fraction`.
 */
import type { SkyRLRow } from "../domain/row.js"
import { plural } from "../domain/words.js"
import { sha256Hex } from "./canonical.js"
import { normalizeForDuplicates } from "./checks.js"
import { planKeyOf } from "./nearDup.js"

export const GROUP_BYS = ["plan", "prompt", "none"] as const
export type GroupBy = typeof GROUP_BYS[number]

/** How much goes to validation: the groups scoring under a fraction, or the lowest-scoring until so many rows. */
export type ValRule =
  | { readonly _tag: "fraction"; readonly fraction: number }
  | { readonly _tag: "rows"; readonly rows: number }

/** The last user message (the row contract has one, last). */
const userMessage = (row: SkyRLRow): string => {
  const users = row.prompt.filter((m) => m.role === "user")
  return users[users.length - 1]?.content ?? ""
}

/**
 * The group of a row (`position`: its 0-based place over all inputs, the key of `none`); of `plan` and `prompt`,
 * 64 bits of the text's sha256, so that the keys a split holds take a few bytes a row whatever the plans' size.
 */
export const groupKeyOf = (row: SkyRLRow, by: GroupBy, position: number): string => {
  if (by === "none") return `row ${position}`
  const text = by === "prompt"
    ? normalizeForDuplicates(userMessage(row))
    : planKeyOf(row.reward_spec.ground_truth.tool_sequence) ?? "(no plan)"
  return sha256Hex(text).slice(0, 16)
}

/** The first 13 hex digits (52 bits) of sha256("<seed>\n<key>"), over 2^52: in [0, 1). */
export const groupScore = (seed: number, key: string): number =>
  parseInt(sha256Hex(`${seed}\n${key}`).slice(0, 13), 16) / 2 ** 52

interface Group {
  readonly score: number
  /** Position of its first row. */
  readonly first: number
  rows: number
  val: boolean
}

export interface SideCount {
  readonly rows: number
  readonly groups: number
}

export interface SplitAssignment {
  /** 1 where the row at that position goes to validation, 0 to training. */
  readonly inVal: Uint8Array
  readonly train: SideCount
  readonly val: SideCount
  /** The group with the most rows (the first of them on a tie): its size and the position of its first row. */
  readonly largest: { readonly rows: number; readonly first: number }
}

const markVal = (groups: ReadonlyArray<Group>, rule: ValRule): void => {
  if (rule._tag === "fraction") {
    for (const g of groups) g.val = g.score < rule.fraction
    return
  }
  let rows = 0
  for (const g of [...groups].sort((a, b) => a.score - b.score)) {
    if (rows >= rule.rows) return
    g.val = true
    rows += g.rows
  }
}

const countSide = (groups: ReadonlyArray<Group>, val: boolean): SideCount => {
  const side = groups.filter((g) => g.val === val)
  return { rows: side.reduce((n, g) => n + g.rows, 0), groups: side.length }
}

/** Assigns each row (by its group key, in input order) to training or validation. */
export const assignSplit = (keys: ReadonlyArray<string>, rule: ValRule, seed: number): SplitAssignment => {
  const byKey = new Map<string, Group>()
  const rowGroups = keys.map((key, position) => {
    let g = byKey.get(key)
    if (g === undefined) byKey.set(key, g = { score: groupScore(seed, key), first: position, rows: 0, val: false })
    g.rows++
    return g
  })
  const groups = [...byKey.values()]
  markVal(groups, rule)
  const largest = groups.reduce<Group | undefined>((a, g) => a === undefined || g.rows > a.rows ? g : a, undefined)
  return {
    inVal: Uint8Array.from(rowGroups, (g) => g.val ? 1 : 0),
    train: countSide(groups, false),
    val: countSide(groups, true),
    largest: { rows: largest?.rows ?? 0, first: largest?.first ?? 0 }
  }
}

/**
 * Why the split cannot be written, when one side would hold no row (SkyRL's loader, datasets.load_dataset, fails on
 * an empty file): the rows and groups there are and what to give instead; undefined when both sides hold rows.
 */
export const emptySideProblem = (split: SplitAssignment, rule: ValRule): string | undefined => {
  const rows = split.train.rows + split.val.rows
  const groups = split.train.groups + split.val.groups
  const empty = split.val.rows === 0 ? "val" : split.train.rows === 0 ? "train" : undefined
  if (empty === undefined) return undefined
  const there = `the inputs hold ${rows === 0 ? "no row" : `${plural(rows, "row")} in ${plural(groups, "group")}`}`
  const loader = "(SkyRL's loader, datasets.load_dataset, fails on an empty file)"
  const more = rule._tag === "fraction" ? ", or another --seed" : ""
  const advice = rows === 0
    ? "give datasets with rows"
    : groups === 1
    ? `the group goes whole to one side; ${
      rows > 1 ? "give another --group-by (none: each row alone) or " : "give "
    }more rows`
    : empty === "val"
    ? `give --val-rows N (1 to ${rows - 1}) or a larger --val-fraction${more}`
    : `give a smaller --val-rows or --val-fraction${more}`
  return `the ${empty} split would hold no row ${loader}: ${there}; ${advice}; nothing written`
}

/**
 * What a practitioner should hear about a split that can be written: one group of more than half the rows (no
 * split can balance it). `where` names a row by its position.
 */
export const splitWarnings = (split: SplitAssignment, where: (position: number) => string): Array<string> => {
  const total = split.train.rows + split.val.rows
  const warnings: Array<string> = []
  if (split.largest.rows * 2 > total) {
    warnings.push(
      `one group holds ${split.largest.rows} of the ${total} rows (the group of ${where(split.largest.first)}): ` +
        "it goes whole to one split, so the split cannot have the sizes asked"
    )
  }
  return warnings
}
