/**
 * The near-duplicate gate of a run's acceptance (src/programs/acceptance.ts): rows accepted so far in a
 * `DuplicateIndex` (MinHash over user prompts, plus plan signatures), and for each the note a rejected
 * sample's next request names to avoid. Pure and synchronous: the caller tests and keeps inside its
 * own atomic claim step.
 *
 * Determinism: a match is reported against the earliest accepted row it matches (smallest id), so a
 * run replayed in claim order (`--resume`, `rebuild`) finds the same match even when more rows were
 * accepted by then, and builds the same next request.
 */
import type { AvoidNote } from "../domain/run.js"
import { planSubjects, readRow } from "./diversity.js"
import type { DuplicateMatch } from "./nearDup.js"
import { DuplicateIndex, wordHashes } from "./nearDup.js"

export const SIMILAR_PROMPT_RULE = "duplicate/similar-prompt"
export const SAME_PLAN_RULE = "duplicate/same-plan"

export interface GateMatch {
  readonly rule: typeof SIMILAR_PROMPT_RULE | typeof SAME_PLAN_RULE
  /** `duplicate/similar-prompt prompt: ...`, as acceptance reasons read. */
  readonly reason: string
  readonly avoid: AvoidNote
}

/** Characters of a prompt kept per accepted row (the note shows 160). */
const NOTE_PROMPT_CHARS = 200
/** Enough verified matches per query that the earliest matching row is among them. */
const MAX_MATCHES = 64

export class DuplicateGate {
  private readonly index: DuplicateIndex
  /** Per index id: the sample it was accepted for (0-based) and its note. */
  private readonly samples: Array<number> = []
  private readonly notes: Array<AvoidNote> = []

  constructor(
    threshold: number,
    private readonly schemaOf: (server: string, tool: string) => unknown = () => undefined
  ) {
    this.index = new DuplicateIndex({ threshold, maxMatches: MAX_MATCHES })
  }

  /**
   * The accepted rows an encoded row duplicates (at most one per kind: the earliest), and `keep`, which
   * adds the row. A row without a readable prompt and plan matches nothing and is not kept.
   */
  test(encoded: unknown): { readonly matches: ReadonlyArray<GateMatch>; readonly keep: (sample: number) => void } {
    const read = readRow(encoded)
    if (read === undefined) return { matches: [], keep: () => undefined }
    const candidate = { prompt: read.prompt, wordHashes: wordHashes(read.prompt), plan: read.steps }
    const probe = this.index.probe(candidate)
    const found = probe.matches
    const earliest = (kind: DuplicateMatch["kind"]) =>
      found.filter((m) => m.kind === kind).sort((a, b) => a.id - b.id)[0]
    const matches = [earliest("near-prompt"), earliest("plan")].flatMap((
      m
    ) => (m === undefined ? [] : [this.describe(m)]))
    return {
      matches,
      keep: (sample) => {
        const { id } = probe.insert()
        this.samples[id] = sample
        this.notes[id] = {
          prompt: read.prompt.replace(/\s+/g, " ").trim().slice(0, NOTE_PROMPT_CHARS),
          tools: read.steps.map((s) => s.tool),
          subjects: planSubjects(read.steps, this.schemaOf).slice(0, 4),
          kind: "near-prompt"
        }
      }
    }
  }

  get threshold(): number {
    return this.index.threshold
  }

  private describe(m: DuplicateMatch): GateMatch {
    const sample = this.samples[m.id] + 1
    const avoid: AvoidNote = { ...this.notes[m.id], kind: m.kind }
    return m.kind === "near-prompt"
      ? {
        rule: SIMILAR_PROMPT_RULE,
        reason: `${SIMILAR_PROMPT_RULE} prompt: ${m.similarity.toFixed(2)} similar to the prompt of sample ${sample} ` +
          `(MinHash over 3-word shingles; --near-dup ${this.threshold})`,
        avoid
      }
      : {
        rule: SAME_PLAN_RULE,
        reason: `${SAME_PLAN_RULE} tool_sequence: the same calls with the same literal params as sample ${sample}`,
        avoid
      }
  }
}
