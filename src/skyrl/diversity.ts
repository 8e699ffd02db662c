/**
 * The diversity report of a dataset: pure and streaming (`add(row, ref)` for each on-disk row, then
 * `report()`), for `validate` and the run summary.
 *
 * - tools: rows per tool (a row counts a tool once however often its plan calls it), the inventory's
 *   tools no row uses, and plan tools the inventory does not have;
 * - toolSequences: distinct ordered tool sequences, and the most common;
 * - subjects: distinct literal param values that name what a task is about (tickers, paths, queries,
 *   places): string values of params not listed in the step's `derived_params` (a missing field means
 *   none), 1-100 characters on one line, not a number, date or boolean-like word, not a member of the
 *   param's `enum` (when the inventory is known), and not free text or code (params named like code,
 *   script, sql, data, json, message, text, body, content, description, prompt, comment, notes,
 *   steps, or described as code, script, JSON or SQL); compared ignoring case;
 * - prompts: distinct-2 of the user prompts (distinct word bigrams / all bigrams, over the words as
 *   near-duplicate detection sees them);
 * - nearDuplicates: clusters of near-duplicate prompts (MinHash, `nearDup.ts`) and of identical plans
 *   (same tools, same literal params), with the pairs that link them;
 * - complexity: requested (`task_metadata.requested_complexity`) against produced (from the plan's
 *   length: simple 1-2 calls, moderate 3-4, complex 5 or more), and the rows where they differ.
 *
 * Memory: fixed per row (a near-duplicate signature, a row reference) plus the distinct values counted
 * (tool sequences, subjects, bigram hashes); with `DiversityOptions.spill` (validate), the signatures,
 * row references and bigram hashes go to scratch files and the near-duplicates are found when the report
 * is made (deferredNearDup.ts), so only the distinct tool sequences and subjects stay in memory. Prompt
 * texts are not kept: the shared shingles of a pair are filled in afterwards by `explainClusters` from
 * texts the caller reads again (`refsToExplain`).
 */
import type { Inventory } from "../domain/inventory.js"
import { isObject } from "../domain/json.js"
import { COMPLEXITIES, complexityOf } from "../domain/task.js"
import type { ResolvedNearDuplicates } from "./deferredNearDup.js"
import { DeferredDuplicates } from "./deferredNearDup.js"
import { combine32, IntSet } from "./hash32.js"
import { stepListOnDisk } from "./layout.js"
import type { DuplicateCluster, DuplicateKind, NearDupOptions, SignatureStep } from "./nearDup.js"
import { DuplicateIndex, explainPair, wordHashes } from "./nearDup.js"
import type { Spill, SpillFile } from "./spill.js"
import { appendWords, countDistinct } from "./spill.js"

export interface RowRef {
  readonly file: string
  /** 0-based row index within the file. */
  readonly row: number
}

export interface ReportPair {
  readonly a: RowRef
  readonly b: RowRef
  /** Estimated (MinHash) prompt similarity; 1 for identical plans. */
  readonly similarity: number
  /** Exact shingle Jaccard and shared shingles, once `explainClusters` has the texts. */
  readonly jaccard?: number
  readonly sharedShingles?: ReadonlyArray<string>
}

export interface ReportCluster {
  readonly kind: DuplicateKind
  readonly size: number
  /** The first members (the first is the row kept). */
  readonly members: ReadonlyArray<RowRef>
  readonly pairs: ReadonlyArray<ReportPair>
}

export interface DuplicateSummary {
  readonly clusters: number
  /** Rows in some cluster. */
  readonly rows: number
  /** Rows that add nothing: rows in clusters minus one per cluster. */
  readonly redundant: number
}

/** A row that duplicates an earlier one (the earliest it matches), as validate's duplicate rules report it. */
export interface DuplicateFinding {
  readonly row: RowRef
  readonly earlier: RowRef
  readonly similarity: number
}

/** Per kind: rows that match an earlier row, and the first of them. */
export interface DuplicateFindings {
  readonly count: number
  readonly examples: ReadonlyArray<DuplicateFinding>
}

export interface DiversityReport {
  readonly rows: number
  /** Rows without a user prompt or a plan this report can read (the contract checks say why). */
  readonly unreadable: number
  readonly tools: {
    /** Tools in the inventory (null without one). */
    readonly inventory: number | null
    /** Distinct tools used by some plan. */
    readonly used: number
    readonly perTool: ReadonlyArray<{ readonly server: string; readonly tool: string; readonly rows: number }>
    readonly neverUsed: ReadonlyArray<string>
    readonly notInInventory: ReadonlyArray<string>
  }
  readonly toolSequences: {
    readonly distinct: number
    readonly top: ReadonlyArray<{ readonly tools: ReadonlyArray<string>; readonly rows: number }>
  }
  readonly subjects: {
    readonly distinct: number
    readonly top: ReadonlyArray<{ readonly value: string; readonly rows: number }>
  }
  readonly prompts: { readonly bigrams: number; readonly distinctBigrams: number; readonly distinct2: number }
  readonly nearDuplicates: {
    readonly threshold: number
    readonly prompt: DuplicateSummary
    readonly plan: DuplicateSummary
    /** The largest clusters (at most `maxClusters`), each with at most `maxPairs` pairs. */
    readonly clusters: ReadonlyArray<ReportCluster>
  }
  readonly complexity: {
    readonly requested: Readonly<Record<string, number>>
    readonly produced: Readonly<Record<string, number>>
    /** requested → produced → rows (rows without a requested complexity under "unknown"). */
    readonly matrix: Readonly<Record<string, Readonly<Record<string, number>>>>
    /** Rows whose requested complexity is known and differs from the produced one. */
    readonly mismatches: number
    readonly examples: ReadonlyArray<RowRef & { readonly requested: string; readonly produced: string }>
  }
}

export interface DiversityOptions extends NearDupOptions {
  readonly inventory?: Inventory | undefined
  /** Entries in each "top" list (default 10). */
  readonly top?: number
  readonly maxClusters?: number
  readonly maxPairs?: number
  /** Mismatch examples kept (default 5). */
  readonly maxExamples?: number
  /**
   * For a pass over files: near-duplicate signatures, plan keys, row references and bigram hashes are
   * spilled here and resolved when the report is made (deferredNearDup.ts; memory independent of the
   * rows, `maxWalk` finite: `VALIDATE_MAX_WALK` when not given). The report is the same.
   */
  readonly spill?: Spill | undefined
  /** Spilled records sorted in memory at once (spill.ts). */
  readonly partitionRecords?: number | undefined
}

type Json = Record<string, unknown>

const NOT_A_SUBJECT = /^(?:-?\d+(?:\.\d+)?|true|false|null|none|yes|no|\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+Z?)?)$/i
const FREE_TEXT_NAME =
  /(?:^|_)(?:code|script|expression|sql|data|json|message|text|body|content|description|prompt|comment|notes?|steps)$/i
const FREE_TEXT_DESCRIPTION = /\b(?:code|script|json|sql)\b/i

/** The subject values of one step (see the module comment for the rule). */
export const stepSubjects = (
  params: unknown,
  derived: ReadonlyArray<string>,
  schema?: unknown
): ReadonlyArray<string> => {
  if (!isObject(params)) return []
  const properties = isObject(schema) && isObject(schema.properties) ? schema.properties : {}
  const out: Array<string> = []
  for (const [name, value] of Object.entries(params)) {
    if (typeof value !== "string" || derived.includes(name) || FREE_TEXT_NAME.test(name)) continue
    const v = value.trim()
    if (v.length === 0 || v.length > 100 || v.includes("\n") || NOT_A_SUBJECT.test(v)) continue
    const p = isObject(properties[name]) ? properties[name] as Json : {}
    if (Array.isArray(p.enum) && p.enum.includes(value)) continue
    if (typeof p.description === "string" && FREE_TEXT_DESCRIPTION.test(p.description)) continue
    out.push(v)
  }
  return out
}

/**
 * The distinct subjects of a plan (ignoring case, first spelling kept), e.g. for the "what to avoid"
 * note of a sample whose answer duplicated this plan's task. `params` may be an object or its JSON text.
 */
export const planSubjects = (
  steps: ReadonlyArray<SignatureStep>,
  schemaOf: (server: string, tool: string) => unknown = () => undefined
): ReadonlyArray<string> => {
  const seen = new Map<string, string>()
  for (const s of steps) {
    for (const value of stepSubjects(parseJson(s.params), s.derived_params ?? [], schemaOf(s.server, s.tool))) {
      if (!seen.has(value.toLowerCase())) seen.set(value.toLowerCase(), value)
    }
  }
  return [...seen.values()]
}

/** What the report (and the duplicate gate) reads of a row: its user prompt, plan and requested complexity. */
export interface ReadRow {
  readonly prompt: string
  readonly steps: ReadonlyArray<SignatureStep & { readonly params: unknown }>
  readonly requested: string | undefined
}

const parseJson = (u: unknown): unknown => {
  if (typeof u !== "string") return u
  try {
    return JSON.parse(u)
  } catch {
    return undefined
  }
}

/** What the report needs from an on-disk row, or undefined when the row has no usable prompt or plan. */
export const readRow = (row: unknown): ReadRow | undefined => {
  if (!isObject(row) || !Array.isArray(row.prompt)) return undefined
  const user = [...row.prompt].reverse().find((m) => isObject(m) && m.role === "user")
  const gt = isObject(row.reward_spec) ? row.reward_spec.ground_truth : undefined
  const seq = isObject(gt) ? gt.tool_sequence : undefined
  if (!isObject(user) || typeof user.content !== "string" || !Array.isArray(seq) || seq.length === 0) return undefined
  const steps: Array<SignatureStep> = []
  for (const s of seq) {
    if (!isObject(s) || typeof s.server !== "string" || typeof s.tool !== "string") return undefined
    const derived = (stepListOnDisk(s.derived_params) ?? []).filter((d): d is string => typeof d === "string")
    steps.push({ server: s.server, tool: s.tool, params: parseJson(s.params), derived_params: derived })
  }
  const extra = isObject(row.extra_info) ? row.extra_info : {}
  const metadata = parseJson(extra.task_metadata)
  const requested = isObject(metadata) && typeof metadata.requested_complexity === "string"
    ? metadata.requested_complexity
    : undefined
  return { prompt: user.content, steps, requested }
}

const increment = (map: Map<string, number>, key: string, by = 1): void => {
  map.set(key, (map.get(key) ?? 0) + by)
}

const topOf = <A>(map: Map<string, A>, count: (a: A) => number, n: number): Array<[string, A]> =>
  [...map].sort((x, y) => count(y[1]) - count(x[1]) || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)).slice(0, n)

/** Chains start from a constant: combine32 of two raw word hashes alone would be symmetric. */
const BIGRAM_SEED = 0x3c6ef372

const toolKey = (server: string, tool: string): string => `${server}/${tool}`

export class DiversityAccumulator {
  private readonly options: DiversityOptions
  /** In memory (matches as rows come), or spilled (`options.spill`: matches when the report is made). */
  private readonly index: DuplicateIndex | undefined
  private readonly deferred: DeferredDuplicates | undefined
  private resolved: ResolvedNearDuplicates | undefined
  /** Spilled: [file index, row] of each inserted row; the bigram hashes. */
  private readonly refs: SpillFile | undefined
  private readonly bigramFile: SpillFile | undefined
  private distinctBigrams: number | undefined
  private readonly files: Array<string> = []
  /** Row reference of each inserted row, by insertion id: file index and row. */
  private readonly refFile: Array<number> = []
  private readonly refRow: Array<number> = []
  private readonly schemas = new Map<string, unknown>()
  private rows = 0
  private unreadable = 0
  private readonly perTool = new Map<string, number>()
  private readonly sequences = new Map<string, number>()
  private readonly subjects = new Map<string, { value: string; rows: number }>()
  private readonly bigramSet = new IntSet()
  private bigrams = 0
  private readonly requested = new Map<string, number>()
  private readonly produced = new Map<string, number>()
  private readonly matrix = new Map<string, Map<string, number>>()
  private mismatches = 0
  private readonly mismatchExamples: Array<RowRef & { requested: string; produced: string }> = []
  private readonly matched: Record<DuplicateKind, { count: number; examples: Array<DuplicateFinding> }> = {
    "near-prompt": { count: 0, examples: [] },
    plan: { count: 0, examples: [] }
  }

  constructor(options: DiversityOptions = {}) {
    this.options = options
    const spill = options.spill
    this.index = spill === undefined ? new DuplicateIndex(options) : undefined
    this.deferred = spill === undefined ? undefined : new DeferredDuplicates(spill, options)
    this.refs = spill?.file(2)
    this.bigramFile = spill?.file(1)
    for (const server of options.inventory?.servers ?? []) {
      for (const tool of server.tools) this.schemas.set(toolKey(server.name, tool.name), tool.inputSchema)
    }
  }

  add(row: unknown, ref: RowRef): void {
    this.rows++
    const read = readRow(row)
    if (read === undefined) {
      this.unreadable++
      return
    }
    this.countTools(read.steps)
    this.countSubjects(read.steps)
    const hashes = wordHashes(read.prompt)
    this.countBigrams(hashes)
    this.countComplexity(read, ref)
    let fileIndex = this.files.lastIndexOf(ref.file)
    if (fileIndex === -1) fileIndex = this.files.push(ref.file) - 1
    const candidate = { prompt: read.prompt, wordHashes: hashes, plan: read.steps }
    if (this.deferred !== undefined) {
      this.deferred.add(candidate)
      appendWords(this.refs!, fileIndex, ref.row)
      return
    }
    const { id, matches } = this.index!.insert(candidate)
    this.refFile[id] = fileIndex
    this.refRow[id] = ref.row
    this.countMatches(ref, matches)
  }

  /** Rows of each kind that match an earlier row (validate's `duplicate/similar-prompt`, `duplicate/same-plan`). */
  duplicateFindings(): Readonly<Record<DuplicateKind, DuplicateFindings>> {
    const resolved = this.resolve()
    if (resolved === undefined) return this.matched
    const of = (kind: DuplicateKind): DuplicateFindings => ({
      count: resolved.findings[kind].count,
      examples: resolved.findings[kind].examples.map((f) => ({
        row: this.refOf(f.id),
        earlier: this.refOf(f.earlier),
        similarity: f.similarity
      }))
    })
    return { "near-prompt": of("near-prompt"), plan: of("plan") }
  }

  /** The spilled pass's matches, found once. */
  private resolve(): ResolvedNearDuplicates | undefined {
    if (this.deferred === undefined) return undefined
    this.resolved ??= this.deferred.resolve({
      maxExamples: this.options.maxExamples ?? 5,
      maxClusters: this.options.maxClusters ?? 20,
      maxPairs: this.options.maxPairs ?? 10
    })
    return this.resolved
  }

  private countMatches(ref: RowRef, matches: ReadonlyArray<{ id: number; kind: DuplicateKind; similarity: number }>) {
    for (const kind of ["near-prompt", "plan"] as const) {
      const earliest = matches.filter((m) => m.kind === kind).sort((a, b) => a.id - b.id)[0]
      if (earliest === undefined) continue
      const m = this.matched[kind]
      m.count++
      if (m.examples.length < (this.options.maxExamples ?? 5)) {
        m.examples.push({ row: ref, earlier: this.refOf(earliest.id), similarity: earliest.similarity })
      }
    }
  }

  report(): DiversityReport {
    const top = this.options.top ?? 10
    return {
      rows: this.rows,
      unreadable: this.unreadable,
      tools: this.toolsReport(),
      toolSequences: {
        distinct: this.sequences.size,
        top: topOf(this.sequences, (n) => n, top).map(([k, rows]) => ({ tools: k.split("\n"), rows }))
      },
      subjects: {
        distinct: this.subjects.size,
        top: topOf(this.subjects, (s) => s.rows, top).map(([, s]) => ({ value: s.value, rows: s.rows }))
      },
      prompts: {
        bigrams: this.bigrams,
        distinctBigrams: this.bigramCount(),
        distinct2: this.bigrams === 0 ? 0 : this.bigramCount() / this.bigrams
      },
      nearDuplicates: this.duplicatesReport(),
      complexity: {
        requested: Object.fromEntries(this.requested),
        produced: Object.fromEntries(this.produced),
        matrix: Object.fromEntries([...this.matrix].map(([k, m]) => [k, Object.fromEntries(m)])),
        mismatches: this.mismatches,
        examples: this.mismatchExamples
      }
    }
  }

  private countTools(steps: ReadRow["steps"]): void {
    for (const key of new Set(steps.map((s) => toolKey(s.server, s.tool)))) increment(this.perTool, key)
    increment(this.sequences, steps.map((s) => toolKey(s.server, s.tool)).join("\n"))
  }

  private countSubjects(steps: ReadRow["steps"]): void {
    for (const value of planSubjects(steps, (server, tool) => this.schemas.get(toolKey(server, tool)))) {
      const key = value.toLowerCase()
      const entry = this.subjects.get(key)
      if (entry === undefined) this.subjects.set(key, { value, rows: 1 })
      else entry.rows++
    }
  }

  private countBigrams(hashes: ArrayLike<number>): void {
    const file = this.bigramFile
    for (let i = 0; i + 1 < hashes.length; i++) {
      const bigram = combine32(combine32(BIGRAM_SEED, hashes[i]), hashes[i + 1])
      if (file === undefined) this.bigramSet.add(bigram)
      else appendWords(file, bigram)
      this.bigrams++
    }
  }

  private bigramCount(): number {
    if (this.bigramFile === undefined) return this.bigramSet.size
    this.distinctBigrams ??= countDistinct(this.options.spill!, this.bigramFile, this.options.partitionRecords)
    return this.distinctBigrams
  }

  private countComplexity(read: ReadRow, ref: RowRef): void {
    const produced = complexityOf(read.steps.length)
    const requested = read.requested ?? "unknown"
    increment(this.produced, produced)
    increment(this.requested, requested)
    const row = this.matrix.get(requested) ?? new Map<string, number>()
    increment(row, produced)
    this.matrix.set(requested, row)
    if (read.requested === undefined || read.requested === produced) return
    this.mismatches++
    if (this.mismatchExamples.length < (this.options.maxExamples ?? 5)) {
      this.mismatchExamples.push({ ...ref, requested, produced })
    }
  }

  private toolsReport(): DiversityReport["tools"] {
    const inventoryKeys = [...this.schemas.keys()]
    const known = this.options.inventory === undefined ? undefined : new Set(inventoryKeys)
    const keys = [...new Set([...inventoryKeys, ...this.perTool.keys()])]
    const perTool = keys
      .map((key) => {
        const cut = key.indexOf("/")
        return { server: key.slice(0, cut), tool: key.slice(cut + 1), rows: this.perTool.get(key) ?? 0 }
      })
      .sort((a, b) => b.rows - a.rows || toolKey(a.server, a.tool).localeCompare(toolKey(b.server, b.tool)))
    return {
      inventory: known === undefined ? null : known.size,
      used: this.perTool.size,
      perTool,
      neverUsed: inventoryKeys.filter((k) => !this.perTool.has(k)),
      notInInventory: known === undefined ? [] : [...this.perTool.keys()].filter((k) => !known.has(k)).sort()
    }
  }

  private refOf(id: number): RowRef {
    if (this.refs === undefined) return { file: this.files[this.refFile[id]], row: this.refRow[id] }
    const ref = new Uint32Array(2)
    this.refs.read(id, ref)
    return { file: this.files[ref[0]], row: ref[1] }
  }

  private duplicatesReport(): DiversityReport["nearDuplicates"] {
    const resolved = this.resolve()
    const clusters: ReadonlyArray<DuplicateCluster & { readonly size?: number }> = resolved?.clusters ??
      this.index!.clusters()
    const summary = (kind: DuplicateKind): DuplicateSummary => {
      if (resolved !== undefined) {
        const { clusters, rows } = resolved.summary[kind]
        return { clusters, rows, redundant: rows - clusters }
      }
      const of = clusters.filter((c) => c.kind === kind)
      const rows = of.reduce((n, c) => n + c.members.length, 0)
      return { clusters: of.length, rows, redundant: rows - of.length }
    }
    const maxPairs = this.options.maxPairs ?? 10
    return {
      threshold: this.index?.threshold ?? this.deferred!.threshold,
      prompt: summary("near-prompt"),
      plan: summary("plan"),
      clusters: clusters.slice(0, this.options.maxClusters ?? 20).map((c) => ({
        kind: c.kind,
        size: c.size ?? c.members.length,
        members: c.members.slice(0, maxPairs + 1).map((id) => this.refOf(id)),
        pairs: c.pairs.slice(0, maxPairs).map((p) => ({
          a: this.refOf(p.a),
          b: this.refOf(p.b),
          similarity: p.similarity
        }))
      }))
    }
  }
}

/** The rows whose prompt text `explainClusters` needs (near-prompt pairs of the report). */
export const refsToExplain = (report: DiversityReport): ReadonlyArray<RowRef> => {
  const seen = new Map<string, RowRef>()
  for (const c of report.nearDuplicates.clusters) {
    if (c.kind !== "near-prompt") continue
    for (const p of c.pairs) for (const r of [p.a, p.b]) seen.set(`${r.file}\n${r.row}`, r)
  }
  return [...seen.values()]
}

/** Fills each near-prompt pair's exact Jaccard and shared shingles from the prompts' texts. */
export const explainClusters = (
  report: DiversityReport,
  textOf: (ref: RowRef) => string | undefined
): DiversityReport => ({
  ...report,
  nearDuplicates: {
    ...report.nearDuplicates,
    clusters: report.nearDuplicates.clusters.map((c) =>
      c.kind !== "near-prompt" ? c : {
        ...c,
        pairs: c.pairs.map((p) => {
          const [a, b] = [textOf(p.a), textOf(p.b)]
          if (a === undefined || b === undefined) return p
          const why = explainPair(a, b)
          return { ...p, jaccard: why.jaccard, sharedShingles: why.shared }
        })
      }
    )
  }
})

const COMPLEXITY_ORDER = [...COMPLEXITIES, "unknown"]
const pct = (x: number) => `${(100 * x).toFixed(1)}%`
const at = (r: RowRef) => `${r.file}:${r.row}`
/** A list joined with ", ", or `(none)`: a report of no rows printed `rows per tool: ` with nothing after it. */
const listed = (items: ReadonlyArray<string>) => (items.length === 0 ? "(none)" : items.join(", "))

/** The report as text (the JSON form is the report object itself). */
export const renderDiversityText = (report: DiversityReport): string => {
  const { tools, nearDuplicates: nd, complexity } = report
  const lines: Array<string> = [
    `Diversity (${report.rows} rows${report.unreadable > 0 ? `, ${report.unreadable} unreadable` : ""})`
  ]
  lines.push(
    `  tools: ${tools.used} used${tools.inventory === null ? "" : ` of ${tools.inventory} in the inventory`}` +
      (tools.neverUsed.length > 0 ? `; never used: ${tools.neverUsed.join(", ")}` : "") +
      (tools.notInInventory.length > 0 ? `; not in the inventory: ${tools.notInInventory.join(", ")}` : "")
  )
  lines.push(`  rows per tool: ${listed(tools.perTool.map((t) => `${t.tool} ${t.rows}`))}`)
  lines.push(
    `  tool sequences: ${report.toolSequences.distinct} distinct; most common: ${
      listed(
        report.toolSequences.top.slice(0, 3).map((s) =>
          `${s.tools.map((t) => t.split("/")[1]).join(" > ")} (${s.rows})`
        )
      )
    }`
  )
  lines.push(
    `  subjects: ${report.subjects.distinct} distinct; most common: ${
      listed(report.subjects.top.slice(0, 5).map((s) => `${JSON.stringify(s.value)} (${s.rows})`))
    }`
  )
  lines.push(`  distinct-2 of user prompts: ${report.prompts.distinct2.toFixed(3)}`)
  lines.push(
    `  near-duplicates (threshold ${nd.threshold}): ${nd.prompt.clusters} prompt clusters, ${nd.prompt.redundant} redundant rows; ` +
      `${nd.plan.clusters} identical-plan clusters, ${nd.plan.redundant} redundant rows`
  )
  for (const c of nd.clusters) {
    lines.push(
      `    ${c.kind} cluster of ${c.size}: ${c.members.map(at).join(", ")}${c.size > c.members.length ? ", ..." : ""}`
    )
    for (const p of c.pairs) {
      const exact = p.jaccard === undefined ? "" : `, exact ${p.jaccard.toFixed(2)}`
      const shared = p.sharedShingles === undefined
        ? ""
        : `; shared: ${p.sharedShingles.map((s) => `"${s}"`).join(", ")}`
      lines.push(`      ${at(p.a)} ~ ${at(p.b)} (similarity ${p.similarity.toFixed(2)}${exact}${shared})`)
    }
  }
  const mix = (m: Readonly<Record<string, number>>) =>
    listed(COMPLEXITY_ORDER.filter((k) => m[k] !== undefined).map((k) => `${k} ${m[k]}`))
  lines.push(`  complexity requested: ${mix(complexity.requested)}; produced: ${mix(complexity.produced)}`)
  lines.push(
    `  complexity mismatches: ${complexity.mismatches}` +
      (report.rows > 0 ? ` (${pct(complexity.mismatches / report.rows)})` : "") +
      (complexity.examples.length > 0
        ? `; e.g. ${complexity.examples.map((e) => `${at(e)} ${e.requested}→${e.produced}`).join(", ")}`
        : "")
  )
  return lines.join("\n")
}

/**
 * The report of rows held in memory (a run's written dataset, as `file`), with its near-duplicate pairs
 * explained from the rows' own prompts.
 */
export const diversityOfRows = (
  rows: ReadonlyArray<unknown>,
  file: string,
  options: DiversityOptions = {}
): DiversityReport => {
  const accumulator = new DiversityAccumulator(options)
  rows.forEach((row, i) => accumulator.add(row, { file, row: i }))
  return explainClusters(accumulator.report(), (ref) => readRow(rows[ref.row])?.prompt)
}
