/**
 * The duplicate rules of the checks (duplicate/prompt, duplicate/near-prompt, duplicate/task-id) for a
 * pass over files, with their keys spilled (spill.ts) instead of kept in tables: each row's 64-bit keys
 * are appended as it is kept, and `resolve` finds, one partition of the key space at a time, every row
 * whose key an earlier row had. Memory: one bit per row (the rows with an identical prompt) and the
 * examples; the findings are the ones the in-memory tables of checks.ts give (the same rows, each
 * pointing to the first row with its key, in row order), up to 64-bit hash collisions.
 */
import type { Spill, SpillFile } from "./spill.js"
import { appendWords, FirstBy, forEachGroup, RowBits } from "./spill.js"

/** A row with the key of an earlier one: its Loc, the first row's, and what its message needs. */
export interface KeyDuplicate {
  readonly loc: number
  readonly first: number
  /** Index of the last prompt message (near-prompt), or where the task id's text was spilled (task-id). */
  readonly extra: number
  readonly extra2: number
}

export interface ResolvedDuplicates {
  readonly prompt: FirstBy<KeyDuplicate>
  readonly nearPrompt: FirstBy<KeyDuplicate>
  readonly taskId: FirstBy<KeyDuplicate>
}

export class DeferredKeys {
  /** [prompt hash hi, lo, loc] */
  private readonly prompts: SpillFile
  /** [normalized user text hash hi, lo, loc, index of the last message] */
  private readonly nearPrompts: SpillFile
  /** [task id hash hi, lo, loc, first word of its text in `texts`, its length] */
  private readonly taskIds: SpillFile
  /** Task id texts, two UTF-16 code units a word (only examples' are read back). */
  private readonly texts: SpillFile

  constructor(private readonly spill: Spill, private readonly partitionRecords?: number) {
    this.prompts = spill.file(3)
    this.nearPrompts = spill.file(4)
    this.taskIds = spill.file(5)
    this.texts = spill.file(1)
  }

  prompt(loc: number, e1: number, e2: number): void {
    appendWords(this.prompts, e1, e2, loc)
  }

  nearPrompt(loc: number, n1: number, n2: number, lastMessage: number): void {
    appendWords(this.nearPrompts, n1, n2, loc, lastMessage)
  }

  taskId(loc: number, h1: number, h2: number, id: string): void {
    const at = this.texts.count
    for (let i = 0; i < id.length; i += 2) {
      appendWords(this.texts, id.charCodeAt(i) | ((i + 1 < id.length ? id.charCodeAt(i + 1) : 0) << 16))
    }
    appendWords(this.taskIds, h1, h2, loc, at, id.length)
  }

  /** A task id spilled by `taskId` (`extra`, `extra2` of its duplicate). */
  taskIdText(at: number, length: number): string {
    const word = new Uint32Array(1)
    let out = ""
    for (let i = 0; i < length; i += 2) {
      this.texts.read(at + i / 2, word)
      out += String.fromCharCode(word[0]! & 0xffff)
      if (i + 1 < length) out += String.fromCharCode(word[0]! >>> 16)
    }
    return out
  }

  /**
   * Every row whose key an earlier row had (an identical prompt is not also a near-duplicate), counted,
   * with the first `maxExamples` in row order.
   */
  resolve(maxExamples: number): ResolvedDuplicates {
    const byLoc = (d: KeyDuplicate) => d.loc
    const out = {
      prompt: new FirstBy(maxExamples, byLoc),
      nearPrompt: new FirstBy(maxExamples, byLoc),
      taskId: new FirstBy(maxExamples, byLoc)
    }
    const identical = new RowBits()
    this.laterOfEachKey(this.prompts, (records, at, first) => {
      identical.add(records[at + 2]!)
      out.prompt.add({ loc: records[at + 2]!, first, extra: 0, extra2: 0 })
    })
    this.laterOfEachKey(this.nearPrompts, (records, at, first) => {
      if (identical.has(records[at + 2]!)) return
      out.nearPrompt.add({ loc: records[at + 2]!, first, extra: records[at + 3]!, extra2: 0 })
    })
    this.laterOfEachKey(this.taskIds, (records, at, first) => {
      out.taskId.add({ loc: records[at + 2]!, first, extra: records[at + 3]!, extra2: records[at + 4]! })
    })
    return out
  }

  private laterOfEachKey(file: SpillFile, each: (records: Uint32Array, at: number, first: number) => void): void {
    const w = file.width
    forEachGroup(
      this.spill,
      file,
      { keyWords: 2, partitionRecords: this.partitionRecords },
      (records, order, from, to) => {
        if (to - from < 2) return
        const first = records[order[from]! * w + 2]!
        for (let i = from + 1; i < to; i++) each(records, order[i]! * w, first)
      }
    )
  }
}
