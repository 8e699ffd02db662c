/**
 * Dataset checks (`skyrl validate`, and what convert/generate/enrich run on what they write). Pure
 * and streaming: feed rows one at a time to a `DatasetChecker` (`add`), then read its `report()`.
 * Memory grows only with the number of distinct paths and the first offending rows kept per rule, plus
 * fixed-size hashes for the duplicate rules (keyTable.ts: about 35 bytes a row in all; no text is kept),
 * or, with `CheckOptions.spill` (the passes of `validate` and `convert` over a file), not even those: the
 * keys go to a scratch file and the duplicate findings are made with the report (deferredKeys.ts).
 *
 * The same checker judges a run's candidates one at a time before they are accepted (src/programs/
 * acceptance.ts): `check(index, row, { keep: false })` returns every finding of that row against the rows
 * kept before it and leaves no trace, so a rejected candidate never counts; with `keep: true` (what `add`
 * does) the row is kept. Every rule, including cross-row ones (duplicates, Arrow type and key-set
 * changes), therefore applies at acceptance time as soon as it is added here.
 *
 * Rules (ids are stable; the report lists every rule with its count and first offending rows):
 * - contract/*: the SkyRL row contract — prompt roles system/user only, at most one system message,
 *   exactly one user message and it is last, content trimmed and non-empty; env_class MCPToolEnv;
 *   reward_spec.method "rule"; tool_sequence steps numbered 1..n with server, tool and params (an
 *   object, or skyrl's JSON-encoded object); success.must_call_tool called by the plan; max_turns (a
 *   warning) at least the number of steps + 1 (the prompt asks for one call per turn, and the answer takes
 *   a turn); max_turns an integer ≥ 1 and anything else the row schema requires (contract/schema).
 * - contract/limits: limits.max_tools / max_servers at least the distinct tools / servers the plan uses (the
 *   env ends the episode at the call past a limit, so the plan itself could not finish).
 * - contract/provenance: each step's call_name, depends_on (earlier steps only), derived_params (params
 *   with a value; a step with derived params depends on something; with an inventory, params of the tool),
 *   both as JSON text or typed lists, schema_hash, and the row's available_tools (non-empty) and
 *   tool_schemas (with the schema of each step that has derived params; each an object valid against its draft's
 *   meta-schema, none whose $ref points into it at nothing, or loops: MCPToolEnv refuses the row). A row written
 *   before these fields existed gets one finding naming what it lacks (it is still read, with the defaults of
 *   `upgradeLegacyRow`).
 * - plan/*: each step against the inventory (tool exists on that server; params valid against its
 *   input schema), through `validatePlan`; plan/complexity (a warning): the label fits the number of calls;
 *   plan/derived-stated (a warning): a derived param whose value the user message states (literalsShown.ts
 *   `statedDerived`): the reward never compares it, so any schema-valid value scores; plan/derived-unproducible (a
 *   warning, needs an inventory): a derived param whose every source step's tool has an outputSchema that declares
 *   no field (planValidation.ts `unproducibleDerived`).
 * - prompt/plan-leak: the prompt's tools do not give the plan away: every plan tool offered, in the
 *   inventory's order, with at least min(3, available) distractors (needs an inventory; read from
 *   available_tools, or from the system message for rows whose offer is unknown: no available_tools, or
 *   the plan's tools filled in with `task_metadata.available_tools_source: "plan"`).
 * - arrow/*: what Arrow (HuggingFace `datasets`, which SkyRL loads with) would pad, retype or refuse,
 *   computed on the on-disk values across all rows of all files given: a type change at one path (the
 *   report names the values of the types with fewer values at the path, and gives every type's count: a
 *   first row of an odd type is the offender, not the rows after it), objects
 *   whose key sets differ at one path, ISO-date-looking strings, empty objects, ints and floats mixed
 *   at one path. skyrl's own JSON-string fields (params, task_metadata) are opaque strings to Arrow.
 *   arrow/empty-list (a warning): a list field empty in every row of a JSON file is typed list<null>, and
 *   such a file cannot be concatenated with one where the list has values (that case, across the files
 *   given, is an arrow/type-change).
 *   arrow/parquet-type: a Parquet file's column at a path of skyrl's row skeleton typed otherwise than skyrl writes
 *   it (large_string, int32, binary, a map: src/services/parquetTypes.ts), one finding of the file per column,
 *   reported through `columnTypes` before the file's rows (the values alone cannot tell).
 * - prompt/too-long: the chat-templated prompt over the token budget (SkyRL drops such rows silently).
 * - prompt/tools-not-shown (a warning): a tool of available_tools whose call name the prompt's text never
 *   names (a word match), e.g. a chat log's system message kept as it was while its tools went through an
 *   API field: the policy would be trained to call tools it was never shown.
 * - prompt/tools-shown-otherwise (a warning, needs an inventory): a plan tool that a system message's `<tools>` block
 *   shows with other params than the inventory's (shownSchemas.ts `shownConflicts`): the policy calls it as shown.
 * - prompt/tools-shown-unoffered (a warning): a tool a system message's `<tools>` block shows whose name is the call
 *   name of no tool of available_tools (nor of the plan; shownSchemas.ts `shownUnoffered`), e.g. a chat log's tool the
 *   inventory lacks: MCPToolEnv answers its call "unknown tool". Not for rows whose offer is unknown.
 * - prompt/literal-not-shown (a warning): a literal param value of the plan (not in the step's derived_params)
 *   that no prompt message states (src/skyrl/literalsShown.ts: a lenient text and number match; the tool's
 *   declared default passes): the reward matches it exactly, so the policy could only guess it.
 * - prompt/user-names-tool (a warning): the user message names a plan tool (any casing or separators), holds
 *   the <tool_call> syntax or a step's params as JSON or key=value (promptLeak.ts `userLeak`), or the system
 *   message's own text names plan tools and no other (`systemLeak`): it tells the policy the plan.
 * - prompt/special-token (a warning): a message holding a chat-template control token's text (`<|im_end|>`),
 *   which the model's tokenizer reads as that token.
 * - duplicate/*: identical prompts, near-duplicate user messages (same text after normalization),
 *   duplicate task ids. duplicate/similar-prompt and duplicate/same-plan (warnings) are listed here but
 *   found by `skyrl validate`'s diversity pass (MinHash, plan signatures), not by this checker.
 * Plus a coverage table (rows per domain, complexity, tool, server; steps per plan).
 *
 * Severity: rules are errors (they count as violations and fail a run) except the warnings
 * (contract/max_turns, plan/complexity, plan/placeholder, plan/derived-stated, plan/derived-unproducible, arrow/empty-list, prompt/tools-not-shown,
 * prompt/tools-shown-otherwise, prompt/tools-shown-unoffered, prompt/user-names-tool, prompt/special-token, prompt/literal-not-shown); `CheckOptions.severity` changes a rule's severity (generate and
 * enrich treat plan/complexity as a problem the model repairs).
 */
import { Either, Schema } from "effect"
import type { Inventory } from "../domain/inventory.js"
import { findTool, PROMPT_SERVER } from "../domain/inventory.js"
import { describeType, isObject } from "../domain/json.js"
import { ENV_CLASS, REWARD_METHOD, SkyRLRow } from "../domain/row.js"
import type { ColumnTypeIssue } from "../domain/row.js"
import type { Complexity } from "../domain/task.js"
import { COMPLEXITIES, complexityMismatch } from "../domain/task.js"
import { plural } from "../domain/words.js"
import { readsAsTimestamp } from "./arrowDates.js"
import { callRequestBytes, MCP_MESSAGE_LIMIT, tooLongReason, withinLimitByLength } from "./callSize.js"
import type { KeyDuplicate } from "./deferredKeys.js"
import { DeferredKeys } from "./deferredKeys.js"
import { schemaDrift } from "./drift.js"
import { combine32 } from "./hash32.js"
import type { JsonTextFacts } from "./jsonTextFacts.js"
import { hash64, KeyTable } from "./keyTable.js"
import { matchesRowSchema, objectOfText, stepListOnDisk, upgradeLegacyRow } from "./layout.js"
import {
  describeUnshown,
  LONG_MESSAGE,
  MessageFacts,
  PromptFacts,
  statedDerived,
  statedTextOf,
  unshownLiterals
} from "./literalsShown.js"
import { remember } from "./memo.js"
import { parseIssues } from "./parseIssues.js"
import { piecewise } from "./piecewise.js"
import type { PlanStep, StepIssue } from "./planValidation.js"
import {
  placeholdersOf,
  provenanceIssues,
  toolSchemaFault,
  unproducibleDerived,
  validatePlan
} from "./planValidation.js"
import type { OfferedTool } from "./promptLeak.js"
import { planLeak, systemLeak, userLeak } from "./promptLeak.js"
import type { PromptReading } from "./promptReading.js"
import { readsAsOf } from "./promptReading.js"
import { chatPromptTokens, DEFAULT_MAX_PROMPT_TOKENS } from "./promptTokens.js"
import { danglingRefOf, refLoopOf } from "./refLoop.js"
import { shownConflicts, shownUnoffered } from "./shownSchemas.js"
import type { ToolsBlock } from "./sources.js"
import { findToolsBlock, toolNamesOf } from "./sources.js"
import type { Spill } from "./spill.js"
import { loneSurrogateOf } from "./utf8.js"

export { DEFAULT_MAX_PROMPT_TOKENS } from "./promptTokens.js"
export const DEFAULT_MAX_EXAMPLES = 5

/** A number as `arrow/int-float` names it: an integer Arrow reads as a float says why. */
const numberShown = (value: number, numeric: "int" | "float"): string =>
  numeric === "int" || !Number.isInteger(value)
    ? String(value)
    : Math.abs(value) >= 2 ** 63
    ? `${value} (beyond int64)`
    : `${value} (written as a float)`

const REPEATED_KEY = "this key is given twice in one object: pyarrow refuses the whole file, and " +
  "datasets.load_dataset falls back to pandas, which fails or loads other values (the checks read the last, " +
  "as Python's json does); keep one"

export type Severity = "error" | "warning"

export const RULES = [
  {
    id: "contract/json",
    title:
      "each line of a JSON Lines file is one JSON value in UTF-8 (datasets.load_dataset fails on the file otherwise)"
  },
  { id: "contract/prompt", title: "prompt: system/user roles only, one user message last, trimmed non-empty content" },
  { id: "contract/env_class", title: `env_class is ${ENV_CLASS}` },
  { id: "contract/reward_method", title: `reward_spec.method is "${REWARD_METHOD}"` },
  { id: "contract/tool_sequence", title: "tool_sequence: steps 1..n, each with server, tool and object params" },
  { id: "contract/must_call_tool", title: "success.must_call_tool is a call name the plan calls" },
  {
    id: "contract/max_turns",
    title: "max_turns >= steps + 1 (one call per turn, then the answer; `convert` raises it)",
    severity: "warning"
  },
  {
    id: "contract/limits",
    title: "limits.max_tools / max_servers at least the distinct tools / servers the plan uses"
  },
  {
    id: "contract/call-size",
    title: "each step's tools/call request fits the 10 MiB an MCP message may take over stdio (as `verify` sends it)"
  },
  {
    id: "contract/provenance",
    title:
      "call_name, depends_on (earlier steps), derived_params (params of the step), schema_hash, available_tools, " +
      "tool_schemas"
  },
  { id: "contract/schema", title: "other fields of the row contract (`skyrl schema row`)" },
  { id: "plan/tool", title: "each step's tool exists on that server of the inventory" },
  { id: "plan/params", title: "each step's params are valid against the tool's input schema" },
  { id: "plan/schema-drift", title: "each step's schema_hash is its tool's schema hash in the inventory" },
  {
    id: "plan/complexity",
    title: "complexity fits the plan: simple 1-2 calls, moderate 3-4, complex 5+",
    severity: "warning"
  },
  {
    id: "plan/placeholder",
    title: "no placeholder (\"<ticker>\", \"${x}\", \"TBD\") in a literal param: the reward matches literals exactly",
    severity: "warning"
  },
  {
    id: "plan/derived-stated",
    title: "no derived param whose value the user message states (the reward never compares a derived param)",
    severity: "warning"
  },
  {
    id: "plan/derived-unproducible",
    title: "no derived param from steps whose tools' outputSchema declares no field (nothing to take it from)",
    severity: "warning"
  },
  { id: "arrow/type-change", title: "Arrow: one type per path across rows and files (else the load fails)" },
  { id: "arrow/key-sets", title: "Arrow: objects at one path have the same keys (else padded with nulls)" },
  {
    id: "arrow/date-string",
    title: "Arrow: strings pyarrow reads as timestamps (ISO dates and times) in typed fields (they load as datetime)"
  },
  { id: "arrow/empty-object", title: "Arrow: empty objects (an empty struct; Parquet cannot store it)" },
  {
    id: "arrow/int-float",
    title: "Arrow: ints and floats mixed at one path (ints come back as floats; across files the concatenation fails)"
  },
  {
    id: "arrow/repeated-key",
    title: "Arrow: no object of a JSON Lines row names a key twice (pyarrow refuses the file)"
  },
  {
    id: "arrow/parquet-type",
    title: "Arrow: a Parquet file's columns have the types skyrl writes and JSON Lines gives (string, int64, " +
      "struct, list), else the files cannot be concatenated"
  },
  {
    id: "arrow/empty-list",
    title: "Arrow: a list empty in every row of a JSON file is list<null> (no concatenation with typed files)",
    severity: "warning"
  },
  { id: "prompt/too-long", title: "prompt within the token budget (SkyRL drops longer prompts silently)" },
  {
    id: "prompt/plan-leak",
    title: "the prompt offers every plan tool in the inventory's order with min(3, available) distractors"
  },
  {
    id: "prompt/user-names-tool",
    title: "the user message names no plan tool, holds no <tool_call> syntax and no step's params as JSON or " +
      "key=value; the system message singles out no plan tool",
    severity: "warning"
  },
  {
    id: "prompt/tools-not-shown",
    title: "the prompt names every tool available_tools offers (SkyRL trains on the prompt messages only)",
    severity: "warning"
  },
  {
    id: "prompt/tools-shown-otherwise",
    title: "a plan tool a system message's <tools> block shows has the inventory's params there (with an inventory)",
    severity: "warning"
  },
  {
    id: "prompt/tools-shown-unoffered",
    title: "a system message's <tools> block shows only tools the row offers (MCPToolEnv serves available_tools only)",
    severity: "warning"
  },
  {
    id: "prompt/special-token",
    title: "no chat-template control token (`<|im_end|>`, `<|endoftext|>`) in a message: the tokenizer reads it as one",
    severity: "warning"
  },
  {
    id: "prompt/literal-not-shown",
    title: "the prompt states every literal param value of the plan (the reward matches them exactly)",
    severity: "warning"
  },
  { id: "duplicate/prompt", title: "no identical prompts" },
  { id: "duplicate/near-prompt", title: "no near-duplicate user messages (same text after normalization)" },
  { id: "duplicate/task-id", title: "no duplicate task ids" },
  // Computed by `skyrl validate` from its diversity pass (src/programs/validate.ts), never by this checker:
  // MinHash over every prompt is not among the checks a command runs on the file it wrote.
  {
    id: "duplicate/similar-prompt",
    title: "no user prompt at least --near-dup similar to an earlier one (MinHash, 3-word shingles)",
    severity: "warning"
  },
  {
    id: "duplicate/same-plan",
    title: "no plan with the same calls and literal params as an earlier one",
    severity: "warning"
  },
  // Also `skyrl validate`'s (src/programs/validate.ts), from the files' row counts.
  { id: "contract/empty-file", title: "each file holds a row (SkyRL's loader, datasets.load_dataset, fails on none)" }
] as const satisfies ReadonlyArray<{ readonly id: string; readonly title: string; readonly severity?: Severity }>

export type RuleId = typeof RULES[number]["id"]

/** A special token's form in chat templates and vocabularies: `<|im_start|>`, `<|endoftext|>`, `<|eot_id|>`. */
const SPECIAL_TOKEN = /<\|[A-Za-z0-9_]+\|>/

/** The text of each prompt message that has one (none when the prompt is not a list). */
const promptTexts = (prompt: unknown): ReadonlyArray<string> => {
  const texts: Array<string> = []
  if (Array.isArray(prompt)) {
    for (const m of prompt) if (isObject(m) && typeof m.content === "string") texts.push(m.content)
  }
  return texts
}

/** A rule's default severity (errors unless the rule says otherwise). */
export const defaultSeverity = (id: RuleId): Severity => {
  const rule = RULES.find((r) => r.id === id) as { readonly severity?: Severity } | undefined
  return rule?.severity ?? "error"
}

/** One offending place: file, 0-based row index, field path, what is wrong. */
export interface Finding {
  readonly rule: RuleId
  readonly file: string
  readonly row: number
  readonly field: string
  readonly message: string
}

export interface RuleReport {
  readonly id: RuleId
  readonly title: string
  readonly severity: Severity
  readonly count: number
  readonly examples: ReadonlyArray<Finding>
}

export interface Coverage {
  readonly domain: Readonly<Record<string, number>>
  readonly complexity: Readonly<Record<string, number>>
  readonly tool: Readonly<Record<string, number>>
  readonly server: Readonly<Record<string, number>>
  readonly steps: Readonly<Record<string, number>>
}

export interface Report {
  readonly files: ReadonlyArray<{ readonly file: string; readonly rows: number }>
  readonly rows: number
  /** Findings of the rules whose severity is "error". */
  readonly violations: number
  /** Findings of the rules whose severity is "warning" (they do not fail a run). */
  readonly warnings: number
  readonly ok: boolean
  readonly inventory: boolean
  readonly rules: ReadonlyArray<RuleReport>
  readonly promptTokens: {
    readonly tokenizer: string
    readonly budget: number
    readonly max: number
    readonly mean: number
    readonly overBudget: number
  }
  readonly coverage: Coverage
}

export interface CheckOptions {
  /** Plan checks run only with an inventory. */
  readonly inventory?: Inventory | undefined
  readonly maxPromptTokens?: number | undefined
  /** Offending rows kept per rule (default 5). */
  readonly maxExamples?: number
  /** Token counter of a prompt (default: o200k_base over a ChatML-like template). */
  readonly countPromptTokens?: (messages: ReadonlyArray<{ readonly role: string; readonly content: string }>) => number
  /** Severity per rule where it differs from the default (e.g. plan/complexity as an error in generate). */
  readonly severity?: Partial<Readonly<Record<RuleId, Severity>>>
  /**
   * For a pass over files: the duplicate rules' keys are spilled here and judged when the report is made
   * (deferredKeys.ts; memory independent of the rows), not looked up as each row comes. Their findings are
   * then missing from what `add`/`check` return (the report has them): runs that need an answer per row
   * (acceptance) leave this out.
   */
  readonly spill?: Spill | undefined
  /** Spilled records sorted in memory at once (see spill.ts; small in tests to exercise partitions). */
  readonly partitionRecords?: number | undefined
  /**
   * How prompt/literal-not-shown and prompt/user-names-tool read the prompt (default "current"; a generate
   * run's own: `promptReadingOf`).
   */
  readonly promptReading?: PromptReading | undefined
}

type Json = Record<string, unknown>

type Kind = "string" | "number" | "boolean" | "object" | "array"
const kindOf = (value: unknown): Kind | undefined =>
  typeof value === "string"
    ? "string"
    : typeof value === "number"
    ? "number"
    : typeof value === "boolean"
    ? "boolean"
    : Array.isArray(value)
    ? "array"
    : isObject(value)
    ? "object"
    : undefined

/** A kept row: its ordinal among the rows kept so far (`where` turns it back into a file and row). */
type Loc = number

/** Where a value was: for arrow/type-change's examples, named once the report knows which type is the odd one. */
interface Place {
  readonly file: string
  readonly row: number
  readonly field: string
}

/** The values of one type at a path that holds others (arrow/type-change): how many, and the first places. */
interface KindSeen {
  count: number
  readonly places: Array<Place>
}

/** A path of the on-disk values (abstract: `reward_spec.ground_truth.tool_sequence[]`), for the Arrow rules. */
interface PathNode {
  kind?: Kind | undefined
  kindAt?: string | undefined
  /** The values of `kind` here, and the first places of them (up to maxExamples). */
  kindCount?: number | undefined
  kindPlaces?: Array<Place> | undefined
  /** The values of the other types here, in the order they came (arrow/type-change). */
  otherKinds?: Map<Kind, KindSeen> | undefined
  numeric?: "int" | "float" | undefined
  numericAt?: string | undefined
  /** The sorted key names of the objects here (joined by NUL), and the last key order seen with that set. */
  keys?: string | undefined
  keysAt?: string | undefined
  lastNames?: ReadonlyArray<string> | undefined
  children?: Map<string, PathNode> | undefined
  /** The child paths of `childrenOf`'s keys, in its order (set by kept rows only: never undone). */
  childList?: ReadonlyArray<PathNode> | undefined
  childrenOf?: ReadonlyArray<string> | undefined
  item?: PathNode | undefined
  /**
   * The last list or object walked here without a finding, and the file it was in: the same (shared,
   * frozen) value again in that file changes nothing, so it is not walked again.
   */
  clean?: unknown
  cleanFile?: number | undefined
}

/**
 * A path's node with every field there from the start, in one order: one hidden class for all of them. With
 * fields added one at a time by `setStat`, in the order each path met them, `countKind`'s store still allocated
 * (2.2 KB a row of `convert`, measured).
 */
const newPathNode = (): PathNode => ({
  kind: undefined,
  kindAt: undefined,
  kindCount: undefined,
  kindPlaces: undefined,
  otherKinds: undefined,
  numeric: undefined,
  numericAt: undefined,
  keys: undefined,
  keysAt: undefined,
  lastNames: undefined,
  children: undefined,
  childList: undefined,
  childrenOf: undefined,
  item: undefined,
  clean: undefined,
  cleanFile: undefined
})

const GT = "reward_spec.ground_truth"

/**
 * A finding's message on a field that must be `expected`: `is missing (EXPECTED)` when the row lacks the field
 * (a message quoting the value would print "undefined"), else `wrong`, which may say what the field holds.
 */
const missingOr = (value: unknown, expected: string, wrong: string): string =>
  value === undefined ? `is missing (${expected})` : wrong

/** A value as a message quotes it: JSON, but a number beyond a double's range as JavaScript reads it (JSON: null). */
const quoted = (value: unknown): string =>
  typeof value === "number" && !Number.isFinite(value) ? String(value) : JSON.stringify(value)

/** Same names in the same order (property names are interned strings: mostly pointer compares). */
const sameNames = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** The first tool of `list` before index `end` offered under call name `name` (`checkOfferedNames`). */
const firstNamedBefore = (list: ReadonlyArray<unknown>, name: string, end: number): Json | undefined => {
  for (let j = 0; j < end; j++) {
    const t = list[j]
    if (isObject(t) && t.call_name === name) return t
  }
  return undefined
}

/** Two offered tools told apart by server and tool: `server.tool` would make server a.b's tool c server a's tool b.c. */
const sameTarget = (a: Json, b: Json): boolean =>
  String(a.server) === String(b.server) && String(a.tool) === String(b.tool)

const targetOf = (t: Json): string => `${String(t.server)}/${String(t.tool)}`

/** Whether a plain object's own keys are `names`, in that order (`Object.keys(obj)` equal to `names`). */
const hasKeysInOrder = (obj: Json, names: ReadonlyArray<string>): boolean => {
  if (Object.getPrototypeOf(obj) !== Object.prototype) return false
  let i = 0
  for (const key in obj) {
    if (key !== names[i]) return false
    i++
  }
  return i === names.length
}

/** Texts at least this long have their hash remembered (system messages repeat across rows). */
const MEMO_MIN_LENGTH = 256
const MEMO_LIMIT = 4096

// `split(re).join(" ")` is `replace(re, " ")` for a pattern that matches no empty text and captures nothing: ~4 times
// less CPU where most words are a match apart (V8's replace costs ~0.6 µs a match).
const normalizePiece = (piece: string): string =>
  piece.normalize("NFKC").toLowerCase().split(/[^\p{L}\p{N}]+/u).join(" ")

/** The last text `normalizeForDuplicates` was given, and its result. */
let lastText: string | undefined
let lastNormalized = ""

/**
 * Lower case, letters and digits only, single spaces: the text two near-duplicates share. A long text is done in
 * pieces (`piecewise`: the same result, without a whole-text replace's garbage). The last result is kept: the
 * checks' near-duplicate rule and the diversity report each normalize a row's user message, one after the other.
 */
export const normalizeForDuplicates = (text: string): string => {
  if (text === lastText) return lastNormalized
  lastNormalized = piecewise(text, normalizePiece).trim()
  lastText = text
  return lastNormalized
}

/** The most characters of a finding's message kept: a message quoting a huge value (a 10 MB param) is cut. */
const MESSAGE_LIMIT = 1000

/**
 * A finding's message (or field: a param's key can be as long) within MESSAGE_LIMIT, its cut said (`… (N more
 * characters)`), no surrogate pair split.
 */
const cappedMessage = (message: string): string => {
  if (message.length <= MESSAGE_LIMIT) return message
  const end = /[\uD800-\uDBFF]/.test(message[MESSAGE_LIMIT - 1]!) ? MESSAGE_LIMIT - 1 : MESSAGE_LIMIT
  return `${message.slice(0, end)}… (${message.length - end} more characters)`
}

const encodeForSchema = (row: Json, textOf: (params: Json) => string): Json => {
  // Accept params as objects (an older layout) for the schema check; Arrow hazards of that layout are
  // reported by the arrow/* rules. `task_metadata` must be JSON text, as `skyrl schema row` says.
  const rs = row.reward_spec
  const gt = isObject(rs) ? rs.ground_truth : undefined
  const steps = isObject(gt) ? gt.tool_sequence : undefined
  if (!(isObject(rs) && isObject(gt) && Array.isArray(steps))) return row
  const toolSequence = steps.map((s) => isObject(s) && isObject(s.params) ? { ...s, params: textOf(s.params) } : s)
  return { ...row, reward_spec: { ...rs, ground_truth: { ...gt, tool_sequence: toolSequence } } }
}

const decodeRowSchema = Schema.decodeUnknownEither(SkyRLRow)

/** `extra_info.task_metadata` decoded (JSON text, or an object in an older layout); undefined when unreadable. */
export const metadataOf = (row: Json): unknown => {
  const extra = row.extra_info
  const metadata = isObject(extra) ? extra.task_metadata : undefined
  if (typeof metadata !== "string") return metadata
  try {
    return JSON.parse(metadata)
  } catch {
    return undefined
  }
}

/** A schema issue's message; `task_metadata` as an object is named so, not printed whole. */
const schemaMessage = (row: Json, issue: { readonly path: string; readonly message: string }): string => {
  const metadata = isObject(row.extra_info) ? row.extra_info.task_metadata : undefined
  return issue.path === "extra_info.task_metadata" && typeof metadata === "object" && metadata !== null
    ? `must be JSON text (a string), got ${describeType(metadata)}: write it with JSON.stringify`
    : issue.message
}

/** Fields the contract/* rules already judge: schema issues under them are not repeated. */
const COVERED = [
  "prompt",
  "env_class",
  "reward_spec.method",
  `${GT}.tool_sequence`,
  `${GT}.success`,
  `${GT}.max_turns`
]

/** `a, b: unknown param (...)`: issues with the same message share one entry. */
const groupByMessage = (issues: ReadonlyArray<StepIssue>): ReadonlyArray<string> => {
  const groups = new Map<string, Array<string>>()
  for (const i of issues) {
    const paths = groups.get(i.message) ?? []
    paths.push(i.path.split("/").join("."))
    groups.set(i.message, paths)
  }
  return [...groups].map(([message, paths]) => `${paths.join(", ")}: ${message}`)
}

const STEP_NAMES = ["server", "tool"] as const
const isInteger = (d: unknown) => Number.isInteger(d)
const isString = (d: unknown) => typeof d === "string"

/** A tool as `available_tools` names it (its call name when it has one). */
const isToolRef = (t: unknown): t is OfferedTool =>
  isObject(t) && typeof t.server === "string" && typeof t.tool === "string" &&
  (t.call_name === undefined || typeof t.call_name === "string")

/**
 * What `prompt/plan-leak` reads of a row besides its plan (`planLeak`'s input): the system message, and the
 * tools the row offers (`available_tools`; undefined when unknown, so the system message is read instead:
 * none listed, or the plan's tools filled in for an older row, `available_tools_source: "plan"`). `metadata`
 * is the row's parsed task_metadata (`metadataOf`). Also enrich's, for a row it would copy as it is.
 */
export const leakInputOf = (
  prompt: unknown,
  gt: Json,
  metadata: unknown
): { readonly system: string | undefined; readonly availableTools: ReadonlyArray<OfferedTool> | undefined } => {
  const first = Array.isArray(prompt) ? prompt[0] : undefined
  const system = isObject(first) && first.role === "system" && typeof first.content === "string"
    ? first.content
    : undefined
  // The plan's tools filled in for an unknown offer say nothing about the prompt: read the system message.
  return { system, availableTools: offeredToolsOf(gt, metadata) }
}

/**
 * The tools a row offers (`available_tools`, its entries that are tool references), or undefined when the offer is
 * unknown: none listed, or the plan's tools filled in for an older row (`available_tools_source: "plan"`).
 */
const offeredToolsOf = (gt: Json, metadata: unknown): ReadonlyArray<OfferedTool> | undefined => {
  if (isObject(metadata) && metadata.available_tools_source === "plan") return undefined
  const listed: unknown = gt.available_tools
  if (!Array.isArray(listed)) return undefined
  return listed.every(isToolRef) ? listed as ReadonlyArray<OfferedTool> : listed.filter(isToolRef)
}

/**
 * arrow/parquet-type: what datasets does with a Parquet column typed otherwise than skyrl writes it (every
 * message checked with datasets 5 and pyarrow 25: test/fixtures/parquet-types/README.md).
 */
const parquetTypeMessage = ({ effect, found, needed }: ColumnTypeIssue): string => {
  if (effect === "load") {
    return `typed ${found}, not ${needed}: datasets.load_dataset cannot load the file at all ("Arrow type ` +
      `${found} ... does not have a datasets dtype equivalent"); write it as ${
        needed === "struct" ? "a struct (a dict in each row)" : needed
      }`
  }
  const concat = "datasets cannot concatenate this file with JSON Lines files or skyrl-written Parquet " +
    `(${needed} there): "The features can't be aligned"`
  if (effect === "bytes") {
    return `typed ${found}, not ${needed}: its values load as Python bytes, so MCPToolEnv refuses a row whose ` +
      `params are bytes ("expected a JSON object, got bytes"), and ${concat}; write str values ` +
      "(orjson.dumps(...).decode())"
  }
  const source = found.includes("large_string") ? " (pandas 3 and Polars write large_string)" : ""
  return `typed ${found}, not ${needed}: ${concat}; cast the column to ${needed} before writing${source}`
}

/** A step as the checks read it: the plan step and its call name when the row has one. */
type CheckedStep = PlanStep & { readonly call_name?: string }

/**
 * A system message's `<tools>` block as the prompt rules read it: the names it shows, and (with an inventory, when
 * first asked: the checker's inventory is one) the inventory tools it shows otherwise.
 */
interface ShownBlock {
  readonly block: ToolsBlock | undefined
  readonly names: ReadonlyArray<string>
  conflicts: ReturnType<typeof shownConflicts> | undefined
}

const isProvenancePath = (path: string) => path === "depends_on" || path.startsWith("derived_params")

/** `call_name, depends_on on steps 1-3; available_tools, tool_schemas`: what a legacy row lacks. */
const describeMissing = (missing: ReadonlyArray<string>): string => {
  const stepFields = new Map<string, Array<number>>()
  const rowFields: Array<string> = []
  for (const path of missing) {
    const m = /tool_sequence\[(\d+)\]\.(\w+)$/.exec(path)
    if (m === null) rowFields.push(path.split(".").at(-1)!)
    else stepFields.set(m[2]!, [...(stepFields.get(m[2]!) ?? []), Number(m[1]) + 1])
  }
  const steps = [...stepFields].map(([field, at]) => `${field} (step${at.length === 1 ? "" : "s"} ${at.join(", ")})`)
  return `lacks ${[...steps, ...rowFields].join(", ")}`
}

/**
 * The tool schemas of a row's `tool_schemas` MCPToolEnv refuses, each as [call name, why] (python/skyrl_mcp_env
 * plan.py `_schemas`): a value that is not an object (null aside: a tool another row offers, Arrow's filling), a
 * schema not valid against its draft's meta-schema (`toolSchemaFault`, the check skyrl's inventory loading makes;
 * metaschema.py `fault`), or, in a valid one, a `$ref` no validator can follow (`danglingRefOf`, `refLoopOf`;
 * refs.py `schema_fault`), looked for where the text may hold one (`mayRef`).
 */
const schemaFaultsOf = (schemas: Readonly<Json>, mayRef: boolean): ReadonlyArray<readonly [string, string]> => {
  const faults: Array<readonly [string, string]> = []
  for (const [name, schema] of Object.entries(schemas)) {
    if (schema === null) continue
    if (!isObject(schema)) {
      faults.push([name, `is not a JSON Schema object (got ${JSON.stringify(schema).slice(0, 60)})`])
      continue
    }
    const invalid = toolSchemaFault(schema)
    const dangling = invalid === undefined && mayRef ? danglingRefOf(schema) : undefined
    const loop = invalid === undefined && dangling === undefined && mayRef ? refLoopOf(schema) : undefined
    if (invalid !== undefined) faults.push([name, invalid])
    else if (dangling !== undefined) faults.push([name, dangling])
    else if (loop !== undefined) {
      faults.push([name, `a $ref loop that enters no property or item (${loop}): no value's validation would end`])
    }
  }
  return faults
}
/** `schemaFaultsOf` by parsed `tool_schemas` (objectOfText shares the object of a long text among rows). */
const toolSchemaFaults = new WeakMap<object, ReadonlyArray<readonly [string, string]>>()

const sortedRecord = (map: Map<string, number>): Record<string, number> =>
  Object.fromEntries([...map.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])))

export class DatasetChecker {
  private readonly files: Array<{ file: string; rows: number }> = []
  private readonly counts = new Map<RuleId, number>()
  private readonly examples = new Map<RuleId, Array<Finding>>()
  private readonly root: PathNode = newPathNode()
  /**
   * Prompts, as fixed-size hashes: the first row of each user message after normalization (its hash →
   * the first 32 bits of the whole prompt's hash, and the row), and the whole-prompt hashes that entry
   * cannot stand for (a near-duplicate's prompt, a prompt whose last message is not the user's).
   */
  private readonly nearPrompts = new KeyTable(2)
  private readonly otherPrompts = new KeyTable(1)
  private readonly taskIds = new KeyTable(1)
  private readonly found2 = new Uint32Array(2)
  private readonly textHash = new Uint32Array(2)
  private readonly textHashes = new Map<string, readonly [number, number]>()
  /** The duplicate keys, spilled (`CheckOptions.spill`), or undefined: the tables above answer as rows come. */
  private readonly deferred: DeferredKeys | undefined
  private deferredSettled = false
  /** Rows kept so far (the next row's Loc); where each file's rows start; rows not at their place in the file. */
  private kept = 0
  private readonly fileStarts: Array<number> = []
  private readonly rowIndexes = new Map<Loc, number>()
  /** Duplicate-table inserts of the row being checked, made once it is kept. */
  private pending: Array<() => void> = []
  /** The concrete path of the value being walked (field names and list indexes). */
  private readonly path: Array<string | number> = []
  private readonly coverage = {
    domain: new Map<string, number>(),
    complexity: new Map<string, number>(),
    tool: new Map<string, number>(),
    server: new Map<string, number>(),
    steps: new Map<string, number>()
  }
  /** List paths of the current file: whether any row had an element there, and the first row with the list. */
  private fileLists = new Map<PathNode, { hasElements: boolean; row: number; field: string }>()
  /** Lists empty in every row of a (JSON) file, and the list paths some file types (elements, or Parquet). */
  private readonly emptyLists: Array<{ file: string; row: number; field: string; key: PathNode }> = []
  private readonly typedLists = new Set<PathNode>()
  /** The paths that hold values of more than one type, in the order found (arrow/type-change: `typeChanges`). */
  private readonly mixedPaths: Array<PathNode> = []
  private readonly maxExamples: number
  private readonly budget: number
  private readonly countTokens: NonNullable<CheckOptions["countPromptTokens"]>
  private readonly leaks = new WeakMap<object, Map<string, string | undefined>>()
  /** The facts of long prompt messages (`factsOf`): what prompt/tools-not-shown and prompt/literal-not-shown asked them. */
  private readonly messageFacts = new Map<string, MessageFacts>()
  /** The JSON text of the row's params given as objects (`typedParamsText`). */
  private readonly typedParamsTexts = new WeakMap<object, string>()
  /** Long prompt messages without their tool lists (`statedText`). */
  private readonly statedTexts = new Map<string, string>()
  /** The inventory the row being checked is checked against (`inventoryFor`). */
  private inventory: Inventory | undefined
  /** The provenance issues of the row's plan, when validatePlan listed them with its other issues. */
  private provenance: ReadonlyArray<StepIssue> | undefined
  /** Findings so far (kept rows or not): tells whether a walk found anything. */
  private findings = 0
  private tokensMax = 0
  private tokensSum = 0
  private tokensRows = 0
  private rows = 0
  private fileIndex = -1
  private row = 0
  /** Findings of the row being checked. */
  private current: Array<Finding> | undefined
  /** While a row is checked without keeping it: how to undo each change it made. */
  private undo: Array<() => void> | undefined
  /** The fields of the row being checked whose whole numbers its text writes as floats (`JsonTextFacts`). */
  private wholeFloats: ReadonlySet<string> | undefined

  constructor(private readonly options: CheckOptions = {}) {
    this.maxExamples = options.maxExamples ?? DEFAULT_MAX_EXAMPLES
    this.budget = options.maxPromptTokens ?? DEFAULT_MAX_PROMPT_TOKENS
    this.countTokens = options.countPromptTokens ?? chatPromptTokens
    this.deferred = options.spill === undefined ? undefined : new DeferredKeys(options.spill, options.partitionRecords)
  }

  /** Starts a file: rows added next belong to it. */
  beginFile(file: string): void {
    this.endFile()
    this.files.push({ file, rows: 0 })
    this.fileStarts.push(this.kept)
    this.fileIndex = this.files.length - 1
  }

  /**
   * arrow/parquet-type: the columns of the file being read that datasets types otherwise than skyrl writes them
   * (Storage's `ReadRowsOptions.columnTypes`), each a finding of the file: row 0, the column's path as field.
   */
  columnTypes(issues: ReadonlyArray<ColumnTypeIssue>): void {
    const file = this.files[this.fileIndex]!.file
    for (const issue of issues) this.findAt("arrow/parquet-type", file, 0, issue.path, parquetTypeMessage(issue))
  }

  /** Settles the list paths of the file just read (see arrow/empty-list). */
  private endFile(): void {
    const file = this.files[this.fileIndex]?.file
    if (file === undefined) return
    const parquet = file.endsWith(".parquet") // skyrl's Parquet lists are typed whatever their values
    for (const [key, list] of this.fileLists) {
      if (list.hasElements || parquet) this.typedLists.add(key)
      else this.emptyLists.push({ file, row: list.row, field: list.field, key })
    }
    this.fileLists = new Map()
  }

  /** The Loc the row being checked gets if it is kept. */
  private loc(): Loc {
    return this.kept
  }

  /** The current file, row and field, for messages that point back to it. */
  private here(field: string): string {
    return `${this.files[this.fileIndex]!.file} row ${this.row} ${field}`
  }

  private where(loc: Loc): string {
    const { file, row } = this.locate(loc)
    return `${file} row ${row}`
  }

  private locate(loc: Loc): { readonly file: string; readonly row: number } {
    let f = this.fileStarts.length - 1
    while (f > 0 && this.fileStarts[f]! > loc) f--
    return { file: this.files[f]?.file ?? "?", row: this.rowIndexes.get(loc) ?? loc - (this.fileStarts[f] ?? 0) }
  }

  private find(rule: RuleId, field: string, message: string): void {
    this.findAt(rule, this.files[this.fileIndex]!.file, this.row, field, message)
  }

  private findAt(rule: RuleId, file: string, row: number, field: string, message: string): void {
    const finding: Finding = { rule, file, row, field: cappedMessage(field), message: cappedMessage(message) }
    this.findings++
    this.current?.push(finding)
    this.setIn(this.counts, rule, (this.counts.get(rule) ?? 0) + 1)
    let list = this.examples.get(rule)
    if (list === undefined) {
      list = []
      this.setIn(this.examples, rule, list)
    }
    if (list.length < this.maxExamples) {
      list.push(finding)
      const kept = list
      this.undo?.push(() => void kept.pop())
    }
  }

  /** `map.set`, undone when the row is not kept. */
  private setIn<K, V>(map: Map<K, V>, key: K, value: V): void {
    if (this.undo !== undefined) {
      const had = map.has(key)
      const before = map.get(key)
      this.undo.push(() => (had ? void map.set(key, before as V) : void map.delete(key)))
    }
    map.set(key, value)
  }

  /**
   * `kindCount` + 1 at every value walked, undone when the row is not kept: a named store (`setStat`'s keyed
   * store allocated ~48 bytes a call here).
   */
  private countKind(node: PathNode): void {
    if (this.undo !== undefined) this.undo.push(() => void node.kindCount!--)
    node.kindCount!++
  }

  /** A field of a path's statistics, undone when the row is not kept. */
  private setStat<K extends keyof PathNode>(stat: PathNode, field: K, value: PathNode[K]): void {
    if (this.undo !== undefined) {
      const before = stat[field]
      this.undo.push(() => void (stat[field] = before))
    }
    stat[field] = value
  }

  /**
   * A line of the current file that is not JSON (`index`: the row it stands in for): a row of the file
   * with a `contract/json` violation, and nothing else checked.
   */
  addUnparsable(index: number, reason: string): void {
    if (this.fileIndex < 0) this.beginFile("(rows)")
    this.row = index
    this.rows++
    this.files[this.fileIndex]!.rows++
    this.find("contract/json", "(row)", reason)
    // It takes a Loc as a row does, so the rows after it keep Locs in step with their index (no entry
    // of `rowIndexes` each).
    this.pending = []
    this.keepRow(index)
  }

  /**
   * The inventory a row's plan is checked against: none for a plan on the tools of its own prompt (every
   * step on server "prompt": `enrich --inventory-from-prompt`) when the inventory has no such server, as
   * enrich checks what it writes; the row's `tool_schemas` are then its tools (MCPToolEnv checks calls
   * against them).
   */
  private inventoryFor(gt: Json | undefined): Inventory | undefined {
    const inventory = this.options.inventory
    if (inventory === undefined || gt === undefined || !Array.isArray(gt.tool_sequence)) return inventory
    const own = gt.tool_sequence.length > 0 &&
      gt.tool_sequence.every((s: unknown) => isObject(s) && s.server === PROMPT_SERVER)
    return own && !inventory.servers.some((s) => s.name === PROMPT_SERVER) ? undefined : inventory
  }

  /** Checks one on-disk row (`index` is its 0-based position in the current file) and keeps it. */
  /** `check` of a row that is kept; `facts`: what its JSON Lines text says to Arrow that `value` does not. */
  add(index: number, value: unknown, facts?: JsonTextFacts): ReadonlyArray<Finding> {
    return this.check(index, value, { keep: true, facts })
  }

  /**
   * Checks one row against the rows kept so far and returns its findings. A row not kept (`keep: false`,
   * or a `keep` predicate that says no to its findings) leaves no trace: counts, duplicates, Arrow paths,
   * coverage and token statistics are as before the call.
   */
  check(
    index: number,
    value: unknown,
    options: {
      readonly keep: boolean | ((findings: ReadonlyArray<Finding>) => boolean)
      readonly facts?: JsonTextFacts | undefined
    }
  ): ReadonlyArray<Finding> {
    if (this.fileIndex < 0) this.beginFile("(rows)")
    const found: Array<Finding> = []
    const file = this.files[this.fileIndex]!
    const scalars = [this.tokensMax, this.tokensSum, this.tokensRows, this.rows, file.rows] as const
    this.current = found
    this.undo = options.keep === true ? undefined : []
    this.pending = []
    let keep = options.keep === true
    try {
      const facts = options.facts
      this.wholeFloats = facts?.wholeFloats === undefined ? undefined : new Set(facts.wholeFloats)
      this.addRow(index, value)
      if (facts?.repeatedKey !== undefined) this.find("arrow/repeated-key", facts.repeatedKey, REPEATED_KEY)
      if (typeof options.keep === "function") keep = options.keep(found)
      if (keep) this.keepRow(index)
    } finally {
      if (this.undo !== undefined && !keep) {
        for (const step of this.undo.reverse()) step()
        ;[this.tokensMax, this.tokensSum, this.tokensRows, this.rows, file.rows] = scalars
      }
      this.current = undefined
      this.undo = undefined
      this.wholeFloats = undefined
    }
    return found
  }

  /** The row checked last is kept: its duplicate keys go in, and it takes its Loc. */
  private keepRow(index: number): void {
    for (const insert of this.pending) insert()
    this.pending = []
    const loc = this.kept++
    if (index !== loc - this.fileStarts[this.fileIndex]!) this.rowIndexes.set(loc, index)
  }

  private addRow(index: number, value: unknown): void {
    this.row = index
    this.rows++
    this.files[this.fileIndex]!.rows++
    this.walk(value, this.root)
    if (!isObject(value)) {
      this.find("contract/schema", "(row)", `must be an object, got ${kindOf(value) ?? String(value)}`)
      return
    }
    this.checkPrompt(value.prompt)
    if (value.env_class !== ENV_CLASS) {
      const must = `must be "${ENV_CLASS}"`
      this.find(
        "contract/env_class",
        "env_class",
        missingOr(value.env_class, must, `${must} (got ${quoted(value.env_class)})`)
      )
    }
    const rs = value.reward_spec
    if (isObject(rs) && rs.method !== REWARD_METHOD) {
      this.find(
        "contract/reward_method",
        "reward_spec.method",
        missingOr(
          rs.method,
          `must be "${REWARD_METHOD}"`,
          `must be "${REWARD_METHOD}" (got ${quoted(rs.method)})`
        )
      )
    }
    const gt = isObject(rs) && isObject(rs.ground_truth) ? rs.ground_truth : undefined
    this.provenance = undefined
    this.inventory = this.inventoryFor(gt)
    const steps = gt === undefined ? undefined : this.checkSteps(gt)
    const upgraded = upgradeLegacyRow(value)
    const metadata = metadataOf(value)
    if (gt !== undefined) {
      this.checkGroundTruth(gt, steps)
      this.checkProvenance(gt, steps, upgraded.missing)
      this.checkComplexity(gt, steps)
      if (steps !== undefined) {
        this.checkPlanLeak(value.prompt, gt, steps, metadata)
        this.checkUserLeak(value.prompt, gt, steps)
      }
      // The prompt's messages as the prompt checks read them (long messages' facts are remembered): whole
      // for the tools they name, without their tool lists for the values they state.
      const texts = promptTexts(value.prompt)
      this.checkToolsShown(new PromptFacts(texts, this.factsOf), gt)
      // The system message's <tools> block, read once per message text (the rows of a chat log share one).
      const shown = this.shownBlockOf(value.prompt)
      if (shown !== undefined) this.checkShownOffered(shown, gt, steps, metadata)
      if (steps !== undefined) {
        const reading = this.options.promptReading ?? "current"
        this.checkLiteralsShown(new PromptFacts(texts.map(this.statedText), this.factsOf, reading), steps)
        this.checkPlaceholders(steps)
        this.checkDerivedStated(value.prompt, steps)
        if (this.inventory !== undefined) {
          this.checkDerivedProducible(this.inventory, steps)
          if (shown !== undefined) this.checkShownSchemas(this.inventory, shown, steps)
        }
      }
    }
    if (gt !== undefined && this.inventory !== undefined) {
      for (const d of schemaDrift(this.inventory, gt.tool_sequence)) {
        this.find("plan/schema-drift", d.field, d.message)
      }
    }
    const current = upgraded.value === value
    this.checkSchema(upgraded.value as Json, current ? metadata : undefined, current ? steps : undefined)
    this.collectCoverage(metadata, gt, steps)
  }

  private checkPrompt(prompt: unknown): void {
    const rule = "contract/prompt"
    if (!Array.isArray(prompt)) {
      this.find(rule, "prompt", missingOr(prompt, "must be a list of messages", "must be a list of messages"))
      return
    }
    let users = 0
    let systems = 0
    let wellFormed = true
    prompt.forEach((m, i) => {
      if (!isObject(m)) {
        this.find(rule, `prompt[${i}]`, "must be an object with role and content")
        wellFormed = false
        return
      }
      if (m.role === "user") users++
      else if (m.role === "system") systems++
      else {
        this.find(
          rule,
          `prompt[${i}].role`,
          missingOr(
            m.role,
            `must be "system" or "user"`,
            `${JSON.stringify(m.role)} is not allowed: only system and user messages`
          )
        )
      }
      if (typeof m.content !== "string") {
        this.find(rule, `prompt[${i}].content`, missingOr(m.content, "must be a string", "must be a string"))
        wellFormed = false
      } else if (m.content.trim() === "") this.find(rule, `prompt[${i}].content`, "is empty")
      else if (m.content.trim() !== m.content) {
        this.find(rule, `prompt[${i}].content`, "has leading or trailing whitespace")
      }
    })
    if (users !== 1) this.find(rule, "prompt", `needs exactly one user message, found ${users}`)
    else if (!isObject(prompt[prompt.length - 1]) || (prompt[prompt.length - 1] as Json).role !== "user") {
      this.find(rule, "prompt", "the user message must be the last message")
    }
    if (systems > 1) this.find(rule, "prompt", `at most one system message, found ${systems}`)
    if (!wellFormed) return

    const messages = prompt as ReadonlyArray<{ role: string; content: string }>
    messages.forEach((m, i) => {
      const token = m.content.includes("<|") ? SPECIAL_TOKEN.exec(m.content)?.[0] : undefined
      if (token !== undefined) {
        this.find(
          "prompt/special-token",
          `prompt[${i}].content`,
          `holds ${token}: the model's tokenizer reads it as its control token (a turn or text ends there), ` +
            "not as the text of the task"
        )
      }
    })
    const tokens = this.countTokens(messages)
    this.tokensRows++
    this.tokensSum += tokens
    if (tokens > this.tokensMax) this.tokensMax = tokens
    if (tokens > this.budget) {
      this.find(
        "prompt/too-long",
        "prompt",
        `${tokens} tokens (o200k_base, chat template) over the budget of ${this.budget}: SkyRL drops it silently`
      )
    }
    this.checkDuplicatePrompt(messages)
  }

  /** A text's 64-bit hash in `this.textHash` (remembered for long texts). */
  private hashText(text: string): Uint32Array {
    if (text.length < MEMO_MIN_LENGTH) return hash64(text, this.textHash)
    const known = this.textHashes.get(text)
    if (known !== undefined) {
      this.textHash[0] = known[0]
      this.textHash[1] = known[1]
      return this.textHash
    }
    hash64(text, this.textHash)
    if (this.textHashes.size >= MEMO_LIMIT) this.textHashes.clear()
    this.textHashes.set(text, [this.textHash[0]!, this.textHash[1]!])
    return this.textHash
  }

  /** duplicate/prompt (the same messages) and duplicate/near-prompt (the same user text after normalization). */
  private checkDuplicatePrompt(messages: ReadonlyArray<{ role: string; content: string }>): void {
    // The prompt's hash: every message's role and content, in order.
    let e1 = 0x2545f491
    let e2 = 0x6a09e667
    for (const m of messages) {
      const role = this.hashText(
        m.role === "user" ? "suser" : m.role === "system" ? "ssystem" : typeof m.role === "string"
          ? `s${m.role}`
          : `j${JSON.stringify(m.role)}`
      )
      e1 = combine32(e1, role[0]!)
      e2 = combine32(e2, role[1]!)
      const content = this.hashText(m.content)
      e1 = combine32(e1, content[0]!)
      e2 = combine32(e2, content[1]!)
    }
    e1 = combine32(e1, messages.length)
    e2 = combine32(e2, messages.length)
    const user = messages[messages.length - 1]
    const userLast = user?.role === "user"
    let n1 = 0
    let n2 = 0
    if (userLast) {
      const near = this.hashText(normalizeForDuplicates(user.content))
      n1 = near[0]!
      n2 = near[1]!
    }
    const deferred = this.deferred
    if (deferred !== undefined) {
      const loc = this.loc()
      this.pending.push(() => {
        deferred.prompt(loc, e1, e2)
        if (userLast) deferred.nearPrompt(loc, n1, n2, messages.length - 1)
      })
      return
    }
    let nearFirst = -1
    if (userLast && this.nearPrompts.get(n1, n2, this.found2)) nearFirst = this.found2[1]!
    // An identical prompt has the same user text: it is the near entry's row (same prompt hash) or an other.
    const identical = nearFirst >= 0 && this.found2[0] === e1
      ? nearFirst
      : this.otherPrompts.get(e1, e2, this.found2)
      ? this.found2[0]!
      : -1
    if (identical >= 0) {
      this.find("duplicate/prompt", "prompt", `identical to ${this.where(identical)}`)
      return
    }
    const loc = this.loc()
    if (nearFirst >= 0) {
      this.find(
        "duplicate/near-prompt",
        `prompt[${messages.length - 1}].content`,
        `same text as ${this.where(nearFirst)} after normalization`
      )
    }
    this.pending.push(
      userLast && nearFirst < 0
        ? () => this.nearPrompts.set(n1, n2, e1, loc)
        : () => this.otherPrompts.set(e1, e2, loc)
    )
  }

  /** Checks the plan's shape; returns the steps with decoded params when they are usable. */
  private checkSteps(gt: Json): ReadonlyArray<CheckedStep> | undefined {
    const rule = "contract/tool_sequence"
    const at = `${GT}.tool_sequence`
    const seq = gt.tool_sequence
    if (!Array.isArray(seq)) {
      this.find(rule, at, missingOr(seq, "must be a list of steps", "must be a list of steps"))
      return undefined
    }
    if (seq.length === 0) {
      this.find(rule, at, "is empty: a task needs at least one tool call")
      return undefined
    }
    const steps: Array<CheckedStep> = []
    let usable = true
    for (let i = 0; i < seq.length; i++) {
      const s: unknown = seq[i]
      const here = () => `${at}[${i}]`
      if (!isObject(s)) {
        this.find(rule, here(), "must be an object with step, server, tool and params")
        usable = false
        continue
      }
      if (s.step !== i + 1) {
        this.find(
          rule,
          `${here()}.step`,
          missingOr(
            s.step,
            `must be ${i + 1}: steps are numbered 1..n`,
            `must be ${i + 1} (steps are numbered 1..n), got ${quoted(s.step)}`
          )
        )
      }
      for (const key of STEP_NAMES) {
        if (typeof s[key] !== "string" || s[key].trim() === "") {
          this.find(
            rule,
            `${here()}.${key}`,
            missingOr(s[key], "must be a non-empty string", "must be a non-empty string")
          )
          usable = false
        }
      }
      let params: unknown = s.params
      if (typeof params === "string") {
        try {
          params = JSON.parse(params)
        } catch {
          this.find(rule, `${here()}.params`, "is a string but not JSON")
          usable = false
          continue
        }
      }
      if (!isObject(params)) {
        this.find(
          rule,
          `${here()}.params`,
          missingOr(params, "must be an object, or the JSON text of one", "must be an object (or the JSON text of one)")
        )
        usable = false
        continue
      }
      if (typeof s.tool === "string") this.checkCallSize(i, s.tool, s.params, params)
      const dependsOn = this.provenanceList(s, "depends_on", here, isInteger, "step numbers")
      const derived = this.provenanceList(s, "derived_params", here, isString, "param names")
      const step: { -readonly [K in keyof CheckedStep]: CheckedStep[K] } = {
        step: i + 1,
        server: String(s.server),
        tool: String(s.tool),
        params
      }
      if (typeof s.call_name === "string" && s.call_name !== "") step.call_name = s.call_name
      else if (s.call_name !== undefined) {
        this.find(
          "contract/provenance",
          `${here()}.call_name`,
          `must be the name the prompt shows the tool by, a non-empty string (got ${quoted(s.call_name)})`
        )
      }
      if (dependsOn !== undefined) step.depends_on = dependsOn as ReadonlyArray<number>
      if (derived !== undefined) step.derived_params = derived as ReadonlyArray<string>
      steps.push(step)
    }
    return usable ? steps : undefined
  }

  /**
   * contract/call-size: a step whose tools/call request is longer than an MCP message over stdio may be (as
   * `verify` would send it; src/skyrl/callSize.ts). `raw` is the params as on disk: JSON text (skyrl's layout)
   * bounds the request by its length, so only a step whose text is over ~1.7 million characters is measured;
   * params as an object (an older layout) are measured from their JSON text, which the schema check makes anyway
   * (`typedParamsText`: made once).
   */
  private checkCallSize(index: number, tool: string, raw: unknown, params: Json): void {
    if (typeof raw === "string" && withinLimitByLength(raw.length + tool.length)) return
    const bytes = callRequestBytes(
      tool,
      typeof raw === "string" ? JSON.stringify(params) : this.typedParamsText(params)
    )
    if (bytes <= MCP_MESSAGE_LIMIT) return
    // The longest part names the field: a param (its key and value as JSON text, `"key":value`), or the tool name.
    let part: string | undefined
    let longest = Buffer.byteLength(JSON.stringify(tool))
    for (const key of Object.keys(params)) {
      const size = Buffer.byteLength(JSON.stringify(key)) + 1 + Buffer.byteLength(JSON.stringify(params[key]) ?? "")
      if (size > longest) [part, longest] = [`params.${key}`, size]
    }
    this.find(
      "contract/call-size",
      `${GT}.tool_sequence[${index}].${part ?? "tool"}`,
      `${tooLongReason(index, bytes)}; ${part ?? "the tool name"} alone is ${longest} bytes (verify refuses the ` +
        "row, and no model writes a call that long)"
    )
  }

  /** JSON.stringify of params given as an object (an older layout), made once for the size and schema checks. */
  private readonly typedParamsText = (params: Json): string => {
    let text = this.typedParamsTexts.get(params)
    if (text === undefined) this.typedParamsTexts.set(params, text = JSON.stringify(params))
    return text
  }

  /**
   * A step's depends_on / derived_params (JSON text, or the typed list of older rows); undefined when it is
   * missing (the legacy finding names it) or unreadable (a contract/provenance finding here).
   */
  private provenanceList(
    step: Json,
    key: "depends_on" | "derived_params",
    here: () => string,
    valid: (item: unknown) => boolean,
    what: string
  ): ReadonlyArray<unknown> | undefined {
    if (step[key] === undefined) return undefined
    const list = stepListOnDisk(step[key])
    if (list !== undefined && list.every(valid)) return list
    const example = key === "depends_on" ? [1, 2] : ["symbol"]
    this.find(
      "contract/provenance",
      `${here()}.${key}`,
      `must be the JSON text of a list of ${what} (e.g. ${JSON.stringify(JSON.stringify(example))}), ` +
        `got ${quoted(step[key])}`
    )
    return undefined
  }

  private checkGroundTruth(gt: Json, steps: ReadonlyArray<CheckedStep> | undefined): void {
    const turns = gt.max_turns
    if (typeof turns !== "number" || !Number.isInteger(turns) || turns < 1) {
      this.find(
        "contract/schema",
        `${GT}.max_turns`,
        missingOr(turns, "must be an integer >= 1", `must be an integer >= 1 (got ${quoted(turns)})`)
      )
    } else if (steps !== undefined && turns < steps.length + 1) {
      this.find(
        "contract/max_turns",
        `${GT}.max_turns`,
        `${turns} turns for ${steps.length} steps: one call per turn (as the prompt asks) and the final answer ` +
          `need ${steps.length + 1}, so the plan itself cannot finish`
      )
    }
    if (steps !== undefined && isObject(gt.limits)) this.checkLimits(gt.limits, steps)
    if (isObject(gt.rubric) && Array.isArray(gt.rubric.criteria) && gt.rubric.criteria.length === 0) {
      // The row Schema takes an empty list (rows from elsewhere still decode); the contract does not.
      this.find(
        "contract/schema",
        `${GT}.rubric.criteria`,
        "is empty: a rubric needs at least one criterion, or a judge has nothing to score (convert refuses such a " +
          "task; a task without a rubric gets one derived from its plan)"
      )
    }
    const must = isObject(gt.success) ? gt.success.must_call_tool : undefined
    if (typeof must !== "string" || must.trim() === "") {
      this.find(
        "contract/must_call_tool",
        `${GT}.success.must_call_tool`,
        missingOr(must, "must be a tool name", "must be a tool name")
      )
    } else if (steps !== undefined && !steps.some((s) => (s.call_name ?? s.tool) === must)) {
      this.find(
        "contract/must_call_tool",
        `${GT}.success.must_call_tool`,
        `"${must}" is not the call name of a step of the plan`
      )
    }
    if (steps !== undefined && this.inventory !== undefined) {
      // One finding per invalid step, listing every problem of that step.
      const byStep = new Map<number, Array<StepIssue>>()
      const provenance: Array<StepIssue> = []
      this.provenance = provenance
      for (const issue of validatePlan(this.inventory, steps)) {
        if (issue.path === "step") continue // contract/tool_sequence says it
        if (isProvenancePath(issue.path)) {
          provenance.push(issue) // contract/provenance says it
          continue
        }
        const list = byStep.get(issue.step) ?? []
        list.push(issue)
        byStep.set(issue.step, list)
      }
      for (const [step, issues] of byStep) {
        const first = issues[0]!
        const paramsOnly = issues.every((i) => i.path.startsWith("params"))
        this.find(
          paramsOnly ? "plan/params" : "plan/tool",
          `${GT}.tool_sequence[${step - 1}]${paramsOnly ? ".params" : `.${first.path}`}`,
          `step ${step} ${first.server}/${first.tool}: ` +
            groupByMessage(issues).join("; ")
        )
      }
    }
  }

  /**
   * contract/limits: MCPToolEnv ends the episode at a call past `max_tools` distinct tools or `max_servers`
   * servers, so limits below what the plan uses make the plan itself fail (convert refuses such a task).
   * Limits that are not integers are contract/schema's.
   */
  private checkLimits(limits: Json, steps: ReadonlyArray<CheckedStep>): void {
    // Limits of at least the plan's length hold (nearly every row): its distinct tools are not counted.
    const low = (key: "max_tools" | "max_servers") => {
      const limit = limits[key]
      return typeof limit === "number" && limit < steps.length ? limit : undefined
    }
    if (low("max_tools") === undefined && low("max_servers") === undefined) return
    const used = {
      max_tools: new Set(steps.map((s) => `${s.server}\u0000${s.tool}`)).size,
      max_servers: new Set(steps.map((s) => s.server)).size
    }
    for (const key of ["max_tools", "max_servers"] as const) {
      const limit = low(key)
      if (limit === undefined || limit >= used[key]) continue
      this.find(
        "contract/limits",
        `${GT}.limits.${key}`,
        `${limit} is less than the ${used[key]} ${key === "max_tools" ? "distinct tools" : "servers"} the plan uses: ` +
          "the episode ends at the call past the limit, so the plan itself cannot finish"
      )
    }
  }

  /** Provenance fields: a legacy row gets one finding naming what it lacks; a current one, their meaning. */
  private checkProvenance(gt: Json, steps: ReadonlyArray<CheckedStep> | undefined, missing: ReadonlyArray<string>) {
    const rule = "contract/provenance"
    this.checkToolSchemas(gt.tool_schemas)
    const offerOnly = missing.length === 1 && missing[0] === `${GT}.available_tools`
    if (offerOnly && Array.isArray(gt.available_tools)) {
      this.find(
        rule,
        missing[0]!,
        "is empty: the tools the prompt offers are unknown (read as the plan's tools only), and a list empty in " +
          "every row is list<null> to Arrow; skyrl writes the plan's tools with task_metadata.available_tools_source " +
          "\"plan\" (enrich or verify this file again)"
      )
      return
    }
    if (missing.length > 0) {
      this.find(
        rule,
        missing[0]!,
        `${describeMissing(missing)}: a row made before param provenance (read with every ` +
          "param literal and the offered tools unknown); convert its tasks again to get them"
      )
      return
    }
    this.checkOfferedNames(gt.available_tools)
    if (steps === undefined) return
    // validatePlan (in checkGroundTruth, with an inventory) has listed them already.
    for (const issue of this.provenance ?? provenanceIssues(steps, this.inventory)) {
      this.find(
        rule,
        `${GT}.tool_sequence[${issue.step - 1}].${issue.path.split("/").join(".")}`,
        `step ${issue.step} ${issue.tool}: ${issue.message}`
      )
    }
    const available: ReadonlyArray<unknown> = Array.isArray(gt.available_tools) ? gt.available_tools : []
    const offers = (s: CheckedStep) =>
      available.some((t) => isObject(t) && t.call_name === s.call_name && t.server === s.server && t.tool === s.tool)
    const noneOffered = !available.some(isObject)
    for (const s of steps) {
      if (s.call_name === undefined) continue
      const expected = s.call_name === s.tool ||
        (s.call_name.length === s.server.length + 1 + s.tool.length && s.call_name === `${s.server}.${s.tool}`)
      const offered = noneOffered || offers(s)
      if (!expected || !offered) {
        this.find(
          rule,
          `${GT}.tool_sequence[${s.step - 1}].call_name`,
          `"${s.call_name}" ${
            expected
              ? "is not in available_tools with this server and tool"
              : `must be "${s.tool}" or "${s.server}.${s.tool}"`
          }`
        )
      }
    }
    this.checkDerivedSchemas(gt.tool_schemas, steps)
  }

  /** One call name for two offered tools: the policy cannot tell them apart, and MCPToolEnv runs the last. */
  private checkOfferedNames(available: unknown): void {
    if (!Array.isArray(available)) return
    // The first tool offered under each call name; targets are spelled out only when a name comes again. Rows
    // offer a few dozen tools: those are looked through without a map (one a row, for every row).
    const offered = available.length > 64 ? new Map<string, Json>() : undefined
    for (let i = 0; i < available.length; i++) {
      const t: unknown = available[i]
      if (!isObject(t) || typeof t.call_name !== "string") continue
      const first = offered === undefined ? firstNamedBefore(available, t.call_name, i) : offered.get(t.call_name)
      if (first === undefined) offered?.set(t.call_name, t)
      else if (!sameTarget(first, t)) {
        this.find(
          "contract/provenance",
          `${GT}.available_tools[${i}].call_name`,
          `"${t.call_name}" also names ${targetOf(first)}: a call by that name is ambiguous (MCPToolEnv would run ${
            targetOf(t)
          })`
        )
      }
    }
  }

  /**
   * MCPToolEnv scores a derived param by the tool's input schema in `tool_schemas` (under the step's
   * call_name): a step with derived params whose tool has none there takes any value of them.
   */
  private checkDerivedSchemas(text: unknown, steps: ReadonlyArray<CheckedStep>): void {
    if (typeof text !== "string") return // contract/schema's
    let schemas: Readonly<Json> | undefined
    for (const s of steps) {
      if (s.derived_params === undefined || s.derived_params.length === 0) continue
      // Parsed once per text (rows of one offer share one), as the row decoding does.
      schemas ??= objectOfText(text)
      if (schemas === undefined) return // not a JSON object: contract/schema's
      const name = s.call_name ?? s.tool
      if (Object.hasOwn(schemas, name) && isObject(schemas[name])) continue
      this.find(
        "contract/provenance",
        `${GT}.tool_schemas`,
        `has no input schema for "${name}", whose derived params (step ${s.step}: ${s.derived_params.join(", ")}) ` +
          "MCPToolEnv checks against it: without it any value of them scores"
      )
    }
  }

  /**
   * Each schema of `tool_schemas` MCPToolEnv refuses (`schemaFaultsOf`): not an object; not valid against its
   * draft's meta-schema (`{"type": "strng"}`, `{"required": "a"}`: until 2026-12-05 MCPToolEnv checked nothing of
   * it, and any arguments of the call passed); a `$ref` into the schema that points at nothing, or a loop that
   * enters no property or item (refLoop.ts: until 2026-12-05 any value of the call once its validation reached
   * it). skyrl refuses each in an inventory (Ajv: "schema is invalid: ...", "can't resolve reference ..."). Found
   * once per parsed text (rows of one offer share it).
   */
  private checkToolSchemas(text: unknown): void {
    const schemas = typeof text === "string" ? objectOfText(text) : isObject(text) ? text : undefined
    if (schemas === undefined) return // contract/schema's
    let faults = toolSchemaFaults.get(schemas)
    if (faults === undefined) {
      // A text without "ref" (nor a \u escape that could spell it) holds no $ref: nothing to walk (7 us a schema).
      const mayRef = typeof text !== "string" || text.includes("ref") || text.includes("\\u")
      toolSchemaFaults.set(schemas, faults = schemaFaultsOf(schemas, mayRef))
    }
    for (const [name, fault] of faults) {
      this.find(
        "contract/provenance",
        `${GT}.tool_schemas`,
        `"${name}": ${fault}; MCPToolEnv refuses the row, as skyrl refuses such a schema in an inventory`
      )
    }
  }

  private checkComplexity(gt: Json, steps: ReadonlyArray<CheckedStep> | undefined): void {
    if (steps === undefined || !COMPLEXITIES.includes(gt.complexity as Complexity)) return
    const mismatch = complexityMismatch(gt.complexity as Complexity, steps.length)
    if (mismatch !== undefined) this.find("plan/complexity", `${GT}.complexity`, mismatch)
  }

  private checkPlanLeak(prompt: unknown, gt: Json, steps: ReadonlyArray<CheckedStep>, metadata: unknown): void {
    if (this.inventory === undefined) return
    const { availableTools, system } = leakInputOf(prompt, gt, metadata)
    const leak = this.leakOf(this.inventory, system, availableTools, steps)
    if (leak !== undefined) {
      this.find(
        "prompt/plan-leak",
        availableTools !== undefined && availableTools.length > 0 ? `${GT}.available_tools` : "prompt[0].content",
        leak
      )
    }
  }

  /**
   * prompt/user-names-tool: a user message (the last message) that tells the policy which tool to call, or (the
   * current reading) a system message whose own text singles out the plan's tools.
   */
  private checkUserLeak(prompt: unknown, gt: Json, steps: ReadonlyArray<CheckedStep>): void {
    if (!Array.isArray(prompt) || prompt.length === 0) return
    const reading = this.options.promptReading ?? "current"
    const system: unknown = prompt[0]
    if (
      readsAsOf(reading, "until-2026-12-03b") && isObject(system) && system.role === "system" &&
      typeof system.content === "string"
    ) {
      // The tools the row offers, and the inventory's (a row whose offer is unknown lists only the plan's).
      const offered = () => [
        ...(Array.isArray(gt.available_tools) ? gt.available_tools.filter(isToolRef) : []),
        ...(this.inventory?.servers.flatMap((s) => s.tools.map((t) => ({ server: s.name, tool: t.name }))) ?? [])
      ]
      const leak = systemLeak(this.statedText(system.content), steps, offered, reading)
      if (leak !== undefined) this.find("prompt/user-names-tool", "prompt[0].content", leak)
    }
    const last = prompt.length - 1
    const user: unknown = prompt[last]
    if (!isObject(user) || user.role !== "user" || typeof user.content !== "string") return
    const leak = userLeak(user.content, steps, reading)
    if (leak !== undefined) this.find("prompt/user-names-tool", `prompt[${last}].content`, leak)
  }

  /** prompt/tools-not-shown: call names of available_tools that the prompt's text never names. */
  private checkToolsShown(prompt: PromptFacts, gt: Json): void {
    const listed: unknown = gt.available_tools
    if (prompt.texts.length === 0 || !Array.isArray(listed) || listed.length === 0) return
    // Tools are listed in the system message, which rows of one run share: its answers are remembered.
    const missing: Array<string> = []
    for (let i = 0; i < listed.length; i++) {
      const t: unknown = listed[i]
      if (!isObject(t) || typeof t.call_name !== "string" || t.call_name === "") continue
      if (!prompt.namesWord(t.call_name)) missing.push(t.call_name)
    }
    if (missing.length === 0) return
    this.find(
      "prompt/tools-not-shown",
      `${GT}.available_tools`,
      `the prompt never names ${missing.length} of the ${listed.length} tools it offers (${
        missing.slice(0, 5).join(", ")
      }${missing.length > 5 ? ", ..." : ""}): SkyRL trains on the prompt only, so the policy is never shown them`
    )
  }

  /**
   * prompt/tools-shown-otherwise: the plan's tools a system message's `<tools>` block (a chat log's, kept as it was)
   * shows with other params than the inventory's (`shownConflicts`): a policy calls them as shown, with params the
   * reward does not match (`fmp_get_quote(ticker)` shown, `{"symbol": ...}` planned: 0.0 for the call as shown).
   */
  private checkShownSchemas(inventory: Inventory, shown: ShownBlock, steps: ReadonlyArray<CheckedStep>): void {
    if (shown.block === undefined) return
    const conflicts = shown.conflicts ??= shownConflicts(shown.block, inventory)
    const named = new Set<string>()
    for (const s of steps) {
      const conflict = conflicts.get(`${s.server}/${s.tool}`)
      if (conflict === undefined || named.has(s.tool)) continue
      named.add(s.tool)
      this.find(
        "prompt/tools-shown-otherwise",
        "prompt[0].content",
        `its <tools> block shows the plan's ${s.tool} otherwise than the inventory (${conflict.diffs.join("; ")}): ` +
          "a policy calls it as shown, with params the reward does not match (enrich refuses such a plan; show the " +
          "inventory's schema, or plan with the prompt's own: enrich --inventory-from-prompt)"
      )
    }
  }

  /**
   * prompt/tools-shown-unoffered: the names a system message's `<tools>` block shows that no tool of the row's
   * available_tools (or plan) is called by (`shownUnoffered`): MCPToolEnv answers such a call "unknown tool", so the
   * row teaches the policy to call what its prompt offers and be marked down for it (an enrich or convert row of a
   * chat log whose tools the inventory lacks). Rows whose offer is unknown (no available_tools, or the plan's tools
   * filled in: `available_tools_source: "plan"`) are not judged: what they offer is not written down.
   */
  private checkShownOffered(
    shown: ShownBlock,
    gt: Json,
    steps: ReadonlyArray<CheckedStep> | undefined,
    metadata: unknown
  ): void {
    const names = shown.names
    if (names.length === 0) return
    const offered = offeredToolsOf(gt, metadata)
    if (offered === undefined || offered.length === 0) return
    const unoffered = shownUnoffered(names, offered, steps ?? [])
    if (unoffered.length === 0) return
    const listedNames = unoffered.slice(0, 5).map((u) =>
      u.offeredAs === undefined ? u.name : `${u.name}, offered as ${u.offeredAs}`
    )
    this.find(
      "prompt/tools-shown-unoffered",
      "prompt[0].content",
      `its <tools> block shows ${plural(unoffered.length, "tool")} the row does not offer (${listedNames.join("; ")}${
        unoffered.length > 5 ? "; ..." : ""
      }): MCPToolEnv serves available_tools by call name only, so a policy that calls ${
        unoffered.length === 1 ? "it" : "one"
      } as the prompt shows gets "unknown tool" and a lower reward (offer it: an inventory that has it as shown, or enrich ` +
        "--inventory-from-prompt, which plans with the block's own tools; or leave it out of the block)"
    )
  }

  /** What system messages' `<tools>` blocks show, by message text: the rows of a chat log share one message. */
  private readonly shownBySystem = new Map<string, ShownBlock>()

  /**
   * The `<tools>` block of a prompt's system message, read once per message text (64 texts kept): undefined when
   * the prompt has no system message or its text has no `<tools>` (most rows: skyrl's own listing).
   */
  private shownBlockOf(prompt: unknown): ShownBlock | undefined {
    const system: unknown = Array.isArray(prompt) ? prompt[0] : undefined
    if (!isObject(system) || system.role !== "system" || typeof system.content !== "string") return undefined
    const text = system.content
    if (!text.includes("<tools>")) return undefined
    let shown = this.shownBySystem.get(text)
    if (shown === undefined) {
      const block = findToolsBlock(text)
      shown = { block, names: block === undefined ? [] : toolNamesOf(block), conflicts: undefined }
      if (this.shownBySystem.size >= 64) this.shownBySystem.clear()
      this.shownBySystem.set(text, shown)
    }
    return shown
  }

  /** prompt/literal-not-shown: literal param values of the plan that no prompt message states. */
  private checkLiteralsShown(prompt: PromptFacts, steps: ReadonlyArray<CheckedStep>): void {
    if (prompt.texts.length === 0) return
    const unshown = unshownLiterals(prompt, steps, this.inputSchemaOf)
    if (unshown.length > 0) this.find("prompt/literal-not-shown", `${GT}.tool_sequence`, describeUnshown(unshown))
  }

  /** plan/derived-stated: derived params whose value the user message (the last message) states. */
  private checkDerivedStated(prompt: unknown, steps: ReadonlyArray<CheckedStep>): void {
    const user: unknown = Array.isArray(prompt) ? prompt[prompt.length - 1] : undefined
    if (!isObject(user) || user.role !== "user" || typeof user.content !== "string") return
    for (const d of statedDerived(user.content, steps)) {
      this.find(
        "plan/derived-stated",
        `${GT}.tool_sequence[${d.step - 1}].derived_params`,
        `step ${d.step} ${d.tool} ${d.param} = ${JSON.stringify(d.value)} is derived, yet the user message states ` +
          "it: the reward never compares a derived param, so any schema-valid value scores (mark it literal; " +
          "derived params are for values only an earlier result gives)"
      )
    }
  }

  /** plan/derived-unproducible: derived params whose sources' outputSchemas declare no field to take them from. */
  private checkDerivedProducible(inventory: Inventory, steps: ReadonlyArray<CheckedStep>): void {
    for (const d of unproducibleDerived(inventory, steps)) {
      const sources = d.sources.map((s) => `step ${s.step} (${s.tool})`).join(", ")
      this.find(
        "plan/derived-unproducible",
        `${GT}.tool_sequence[${d.step - 1}].derived_params`,
        `step ${d.step} ${d.tool} ${d.param} is derived from ${sources}, whose output schema${
          d.sources.length === 1 ? " declares" : "s declare"
        } no field: its result promises no value to take (mark the param literal, or name in depends_on the step ` +
          "whose result gives it)"
      )
    }
  }

  /** plan/placeholder: literal params holding a placeholder, which the policy could only copy. */
  private checkPlaceholders(steps: ReadonlyArray<CheckedStep>): void {
    for (const step of steps) {
      for (const { path, value } of placeholdersOf(step)) {
        this.find(
          "plan/placeholder",
          `${GT}.tool_sequence[${step.step - 1}].params`,
          `step ${step.step} ${step.tool} ${path.split("/").slice(1).join(".")} = ${
            JSON.stringify(value)
          } is a placeholder: the ` +
            "reward matches literal params exactly, so the policy would have to write it as it is (give the concrete " +
            "value and state it in the prompt; a value an earlier result gives belongs in derived_params)"
        )
      }
    }
  }

  /** A message as prompt/literal-not-shown reads it (`statedTextOf`), remembered for long ones (a system message). */
  private readonly statedText = (text: string): string =>
    remember(
      text.length < LONG_MESSAGE ? undefined : this.statedTexts,
      text,
      () => statedTextOf(text, this.options.promptReading ?? "current")
    )

  /** A message's facts, remembered for long ones (a run's system message, which its rows share). */
  private readonly factsOf = (text: string): MessageFacts =>
    remember(
      text.length < LONG_MESSAGE ? undefined : this.messageFacts,
      text,
      () => new MessageFacts(text, this.options.promptReading ?? "current")
    )

  /** A step's tool's input schema in the inventory (undefined without one, or for an unknown tool). */
  private readonly inputSchemaOf = (step: PlanStep): unknown =>
    this.inventory === undefined
      ? undefined
      : findTool(this.inventory, step.tool, step.server)?.tool.inputSchema

  /**
   * `planLeak`, remembered for a shared (frozen) list of offered tools: rows that offer the same list with the
   * same plan tools get the same answer (the system message only counts when no list is offered).
   */
  private leakOf(
    inventory: Inventory,
    system: string | undefined,
    availableTools: ReadonlyArray<{ server: string; tool: string }> | undefined,
    steps: ReadonlyArray<CheckedStep>
  ): string | undefined {
    if (availableTools === undefined || availableTools.length === 0 || !Object.isFrozen(availableTools)) {
      return planLeak(inventory, { system, availableTools, plan: steps })
    }
    let byPlan = this.leaks.get(availableTools)
    if (byPlan === undefined) this.leaks.set(availableTools, byPlan = new Map())
    let key = ""
    for (const s of steps) key += `${s.server}\u0000${s.tool}\u0001`
    if (byPlan.has(key)) return byPlan.get(key)
    const leak = planLeak(inventory, { system, availableTools, plan: steps })
    if (byPlan.size < 1024) byPlan.set(key, leak)
    return leak
  }

  private checkSchema(row: Json, metadata: unknown, steps: ReadonlyArray<CheckedStep> | undefined): void {
    if (matchesRowSchema(row, metadata, steps)) return
    const decoded = decodeRowSchema(encodeForSchema(row, this.typedParamsText), { errors: "all" })
    if (Either.isRight(decoded)) return
    for (const issue of parseIssues(decoded.left)) {
      if (COVERED.some((c) => issue.path === c || issue.path.startsWith(`${c}.`) || issue.path.startsWith(`${c}[`))) {
        continue
      }
      this.find("contract/schema", issue.path === "" ? "(row)" : issue.path, schemaMessage(row, issue))
    }
  }

  private collectCoverage(metadata: unknown, gt: Json | undefined, steps: ReadonlyArray<PlanStep> | undefined): void {
    const domain = isObject(metadata) && typeof metadata.domain === "string" && metadata.domain !== ""
      ? metadata.domain
      : "(none)"
    const bump = (map: Map<string, number>, key: string) => this.setIn(map, key, (map.get(key) ?? 0) + 1)
    bump(this.coverage.domain, domain)
    bump(this.coverage.complexity, typeof gt?.complexity === "string" ? gt.complexity : "(none)")
    if (steps !== undefined) {
      steps.forEach((s, i) => {
        if (!steps.some((t, j) => j < i && t.tool === s.tool)) bump(this.coverage.tool, s.tool)
        if (!steps.some((t, j) => j < i && t.server === s.server)) bump(this.coverage.server, s.server)
      })
      bump(this.coverage.steps, String(steps.length))
    }
    const id = gt?.task_id
    if (typeof id === "string") {
      const key = hash64(id, this.textHash)
      const h1 = key[0]!
      const h2 = key[1]!
      const deferred = this.deferred
      if (deferred !== undefined) {
        const loc = this.loc()
        this.pending.push(() => deferred.taskId(loc, h1, h2, id))
      } else if (this.taskIds.get(h1, h2, this.found2)) {
        this.find("duplicate/task-id", `${GT}.task_id`, `"${id}" is also the id of ${this.where(this.found2[0]!)}`)
      } else {
        const loc = this.loc()
        this.pending.push(() => this.taskIds.set(h1, h2, loc))
      }
    }
  }

  /** The concrete field of the value being walked (`reward_spec.ground_truth.tool_sequence[0].params`). */
  private field(): string {
    let out = ""
    for (const p of this.path) out = typeof p === "number" ? `${out}[${p}]` : out === "" ? p : `${out}.${p}`
    return out === "" ? "(row)" : out
  }

  /**
   * Whether Arrow reads a number of the row being walked, at the current field, as an int64: an integer within int64
   * (a larger one is a double) that the row's text does not write as a float (`3.0`).
   */
  private isArrowInt(value: number): boolean {
    if (!Number.isInteger(value) || Math.abs(value) >= 2 ** 63) return false
    return this.wholeFloats === undefined || !this.wholeFloats.has(this.field())
  }

  /** Whether `value` is the frozen list or object last walked at `node` in this file without a finding. */
  private walkedClean(value: unknown, node: PathNode): boolean {
    return node.clean === value && node.cleanFile === this.fileIndex
  }

  /** Remembers a frozen value walked without a finding (only for rows kept as they are checked). */
  private noteClean(value: unknown, node: PathNode, findingsBefore: number): void {
    if (this.undo !== undefined || !Object.isFrozen(value) || this.findings !== findingsBefore) return
    node.clean = value
    node.cleanFile = this.fileIndex
  }

  /** A string that is no Unicode text (a lone surrogate): no file `datasets` loads can hold it. */
  private checkUnicode(text: string): void {
    const lone = loneSurrogateOf(text)
    if (lone !== undefined) this.find("contract/json", this.field(), lone)
  }

  /** Arrow hazards: one pass over the on-disk value, along the abstract paths of `node`. */
  private walk(value: unknown, node: PathNode): void {
    const kind = kindOf(value)
    if (kind === undefined) return // null: Arrow columns are nullable
    const findings = this.findings
    if (node.kind === undefined) {
      this.setStat(node, "kind", kind)
      this.setStat(node, "kindAt", this.here(this.field()))
      this.setStat(node, "kindCount", 1)
      this.setStat(node, "kindPlaces", [this.place()])
    } else if (node.kind === kind) {
      this.countKind(node)
      if (node.kindPlaces!.length < this.maxExamples) this.pushUndone(node.kindPlaces!, this.place())
    } else this.typeChange(node, kind)
    switch (kind) {
      case "string":
        if (node !== this.root && readsAsTimestamp(value as string)) {
          this.find(
            "arrow/date-string",
            this.field(),
            `${JSON.stringify(value)} loads as a timestamp (pyarrow reads it as an ISO date)`
          )
        }
        this.checkUnicode(value as string)
        return
      case "number": {
        const numeric = this.isArrowInt(value as number) ? "int" : "float"
        if (node.numeric === undefined) {
          this.setStat(node, "numeric", numeric)
          this.setStat(node, "numericAt", this.here(this.field()))
        } else if (node.numeric !== numeric) {
          this.find(
            "arrow/int-float",
            this.field(),
            `${numeric} ${numberShown(value as number, numeric)} here, ${node.numeric} at ${node.numericAt}: ` +
              "ints come back as floats (across files, datasets.concatenate_datasets fails)"
          )
        }
        return
      }
      case "array": {
        if (this.walkedClean(value, node)) return
        const items = value as ReadonlyArray<unknown>
        const list = this.fileLists.get(node)
        if (list === undefined) {
          this.setIn(this.fileLists, node, { hasElements: items.length > 0, row: this.row, field: this.field() })
        } else if (items.length > 0 && !list.hasElements) {
          this.setIn(this.fileLists, node, { ...list, hasElements: true })
        }
        if (items.length === 0) return
        const item = node.item ?? this.newChild(node, undefined)
        const depth = this.path.length
        for (let i = 0; i < items.length; i++) {
          this.path[depth] = i
          this.walk(items[i], item)
        }
        this.path.length = depth
        this.noteClean(value, node, findings)
        return
      }
      case "object": {
        if (this.walkedClean(value, node)) return
        const obj = value as Json
        // The usual case: the key order of the last kept row here, whose child paths are remembered in order
        // (compared key by key, without a list of the keys).
        const last = node.childrenOf
        const known = last !== undefined && node.keys !== undefined && node.lastNames === last &&
            hasKeysInOrder(obj, last)
          ? node.childList
          : undefined
        const names = known === undefined ? Object.keys(obj) : last!
        if (names.length === 0) {
          this.find("arrow/empty-object", this.field(), "an empty object becomes an empty struct")
          return
        }
        if (known === undefined) this.checkKeySet(node, names)
        const list = known === undefined && this.undo === undefined ? new Array<PathNode>(names.length) : undefined
        const depth = this.path.length
        for (let i = 0; i < names.length; i++) {
          const name = names[i]!
          this.path[depth] = name
          const child = known?.[i] ?? node.children?.get(name) ?? this.newChild(node, name)
          if (list !== undefined) list[i] = child
          this.walk(obj[name], child)
        }
        if (list !== undefined && node.lastNames !== undefined && sameNames(node.lastNames, names)) {
          node.childList = list
          node.childrenOf = node.lastNames
        }
        this.path.length = depth
        this.noteClean(value, node, findings)
        return
      }
      default:
        return
    }
  }

  /**
   * A value whose type is not the type first seen at its path: a finding of the row at hand (what `check`
   * returns: acceptance refuses a candidate that would change a kept type), and counted at the path. The
   * report names the rows of the types with fewer values (`typeChanges`), not those after the first row.
   */
  private typeChange(node: PathNode, kind: Kind): void {
    const field = this.field()
    this.findings++
    this.current?.push({
      rule: "arrow/type-change",
      file: this.files[this.fileIndex]!.file,
      row: this.row,
      field,
      message: `${kind} here, ${node.kind} at ${node.kindAt}: the load fails`
    })
    let others = node.otherKinds
    if (others === undefined) {
      this.setStat(node, "otherKinds", others = new Map())
      this.pushUndone(this.mixedPaths, node)
    }
    const seen = others.get(kind)
    if (seen === undefined) this.setIn(others, kind, { count: 1, places: [this.place()] })
    else {
      seen.count++
      this.undo?.push(() => void seen.count--)
      if (seen.places.length < this.maxExamples) this.pushUndone(seen.places, this.place())
    }
  }

  /** The place of the value being walked. */
  private place(): Place {
    return { file: this.files[this.fileIndex]!.file, row: this.row, field: this.field() }
  }

  /** `list.push`, undone when the row is not kept. */
  private pushUndone<T>(list: Array<T>, item: T): void {
    list.push(item)
    this.undo?.push(() => void list.pop())
  }

  /**
   * arrow/type-change at the paths holding more than one type: the values of every type but the one with the
   * most values (the first seen on a tie) are the offenders, their first places the examples. A first row
   * of an odd type is named, not the many rows after it. The message gives every type's count. (A repeated
   * shared value, walked once per file (`walkedClean`), counts once there.)
   */
  private typeChanges(): { readonly count: number; readonly examples: ReadonlyArray<Finding> } {
    let count = 0
    const examples: Array<Finding> = []
    for (const node of this.mixedPaths) {
      const kinds: Array<KindSeen & { readonly kind: Kind }> = [
        { kind: node.kind!, count: node.kindCount!, places: node.kindPlaces! },
        ...[...node.otherKinds!].map(([kind, seen]) => ({ kind, ...seen }))
      ]
      const ranked = [...kinds].sort((a, b) => b.count - a.count) // stable: the first seen wins a tie
      const most = ranked[0]!
      const at = most.places[0]!
      const counts = ranked.map((k) => `${k.count} ${k.kind}`).join(", ")
      for (const k of kinds) {
        if (k === most) continue
        count += k.count
        for (const p of k.places) {
          if (examples.length >= this.maxExamples) break
          examples.push({
            rule: "arrow/type-change",
            file: p.file,
            row: p.row,
            field: p.field,
            message: `${k.kind} here, ${most.kind} at ${at.file} row ${at.row} ${at.field}: the load fails ` +
              `(values at this path: ${counts}; the rows of the types with fewer values are named)`
          })
        }
      }
    }
    return { count, examples }
  }

  /** arrow/key-sets: the objects at one path have one key set (the same order as last time needs no sort). */
  private checkKeySet(node: PathNode, names: ReadonlyArray<string>): void {
    if (node.keys !== undefined && node.lastNames !== undefined && sameNames(names, node.lastNames)) return
    const signature = [...names].sort().join("\u0000")
    if (node.keys === undefined) {
      this.setStat(node, "keys", signature)
      this.setStat(node, "keysAt", this.here(this.field()))
      node.lastNames = names
    } else if (node.keys !== signature) {
      this.find(
        "arrow/key-sets",
        this.field(),
        `keys {${names.join(", ")}} here, {${node.keys.split("\u0000").join(", ")}} at ${node.keysAt}: ` +
          "Arrow merges them and pads the missing keys with null"
      )
    } else node.lastNames = names
  }

  /** A new path under `node`: the field `name`, or the list's items (`name` undefined); undone with the row. */
  private newChild(node: PathNode, name: string | undefined): PathNode {
    const child = newPathNode()
    if (name === undefined) this.setStat(node, "item", child)
    else {
      if (node.children === undefined) this.setStat(node, "children", new Map())
      this.setIn(node.children!, name, child)
    }
    return child
  }

  /** Lists empty in every row of a JSON file: a load failure beside a file that types them, else a warning. */
  private settleLists(): void {
    this.endFile()
    for (const e of this.emptyLists.splice(0)) {
      if (this.typedLists.has(e.key)) {
        this.findAt(
          "arrow/type-change",
          e.file,
          e.row,
          e.field,
          `empty in every row of ${e.file} (list<null>) but typed in another file given: the concatenation fails`
        )
      } else {
        this.findAt(
          "arrow/empty-list",
          e.file,
          e.row,
          e.field,
          `empty in every row of the file: Arrow types it list<null>, so this file cannot be concatenated with ` +
            "one (or a Parquet file) where it has values"
        )
      }
    }
  }

  /** The duplicate findings of a spilled pass (`CheckOptions.spill`), in row order, once. */
  private settleDeferred(): void {
    const deferred = this.deferred
    if (deferred === undefined || this.deferredSettled) return
    this.deferredSettled = true
    const found = deferred.resolve(this.maxExamples)
    const report = (
      rule: RuleId,
      dups: typeof found.prompt,
      field: (d: KeyDuplicate) => string,
      message: (d: KeyDuplicate) => string
    ) => {
      for (const d of dups.items) {
        const at = this.locate(d.loc)
        this.findAt(rule, at.file, at.row, field(d), message(d))
      }
      // The findings past the examples only count.
      this.findings += dups.count - dups.items.length
      if (dups.count > dups.items.length) {
        this.counts.set(rule, (this.counts.get(rule) ?? 0) + dups.count - dups.items.length)
      }
    }
    report("duplicate/prompt", found.prompt, () => "prompt", (d) => `identical to ${this.where(d.first)}`)
    report(
      "duplicate/near-prompt",
      found.nearPrompt,
      (d) => `prompt[${d.extra}].content`,
      (d) => `same text as ${this.where(d.first)} after normalization`
    )
    report(
      "duplicate/task-id",
      found.taskId,
      () => `${GT}.task_id`,
      (d) => `"${deferred.taskIdText(d.extra, d.extra2)}" is also the id of ${this.where(d.first)}`
    )
  }

  report(): Report {
    this.settleLists()
    this.settleDeferred()
    const severityOf = (id: RuleId) => this.options.severity?.[id] ?? defaultSeverity(id)
    // arrow/type-change: the walk's (`typeChanges`) and the typed-list ones (`settleLists`, counted as found).
    const changes = this.typeChanges()
    const rules = RULES.map((r) => {
      const count = this.counts.get(r.id) ?? 0
      const examples = this.examples.get(r.id) ?? []
      return {
        id: r.id,
        title: r.title,
        severity: severityOf(r.id),
        ...(r.id === "arrow/type-change"
          ? { count: count + changes.count, examples: [...changes.examples, ...examples].slice(0, this.maxExamples) }
          : { count, examples })
      }
    })
    const violations = rules.reduce((n, r) => n + (r.severity === "error" ? r.count : 0), 0)
    const warnings = rules.reduce((n, r) => n + (r.severity === "warning" ? r.count : 0), 0)
    return {
      files: this.files.map((f) => ({ ...f })),
      rows: this.rows,
      violations,
      warnings,
      ok: violations === 0,
      inventory: this.options.inventory !== undefined,
      rules,
      promptTokens: {
        tokenizer: "o200k_base (gpt-tokenizer), ChatML-like template",
        budget: this.budget,
        max: this.tokensMax,
        mean: this.tokensRows === 0 ? 0 : Math.round(this.tokensSum / this.tokensRows),
        overBudget: this.counts.get("prompt/too-long") ?? 0
      },
      coverage: {
        domain: sortedRecord(this.coverage.domain),
        complexity: sortedRecord(this.coverage.complexity),
        tool: sortedRecord(this.coverage.tool),
        server: sortedRecord(this.coverage.server),
        steps: Object.fromEntries([...this.coverage.steps.entries()].sort((a, b) => Number(a[0]) - Number(b[0])))
      }
    }
  }
}

/** Checks rows held in memory (one "file"). */
export const checkRows = (
  rows: Iterable<unknown>,
  options: CheckOptions = {},
  file = "(rows)"
): Report => {
  const checker = new DatasetChecker(options)
  checker.beginFile(file)
  let i = 0
  for (const row of rows) checker.add(i++, row)
  return checker.report()
}

// ---------------------------------------------------------------------------------------------
// The readable report

const pad = (text: string, width: number) => text.length >= width ? text : text + " ".repeat(width - text.length)

const table = (title: string, counts: Readonly<Record<string, number>>, total: number): Array<string> => {
  const entries = Object.entries(counts)
  if (entries.length === 0) return [`  ${title}: (none)`]
  const width = Math.max(...entries.map(([k]) => k.length), 8)
  return [
    `  ${title}:`,
    ...entries.map(([k, n]) =>
      `    ${pad(k, width)}  ${String(n).padStart(6)}  ${total === 0 ? "" : `${((100 * n) / total).toFixed(1)}%`}`
    )
  ]
}

/** The report as text (what `skyrl validate` prints without --json). */
export const formatReport = (report: Report): string => {
  const lines: Array<string> = []
  const files = report.files.map((f) => `${f.file} (${f.rows} rows)`).join(", ")
  lines.push(`skyrl validate: ${report.rows} rows in ${report.files.length} file(s): ${files}`)
  if (!report.inventory) lines.push("  (no inventory: plan checks skipped)")
  lines.push("")
  const failing = report.rules.filter((r) => r.count > 0 && r.severity === "error")
  const warned = report.rules.filter((r) => r.count > 0 && r.severity === "warning")
  const describe = (r: RuleReport) => {
    lines.push("", `${r.id}  ${r.count}  — ${r.title}`)
    for (const e of r.examples) lines.push(`  ${e.file} row ${e.row} ${e.field}: ${e.message}`)
    if (r.count > r.examples.length) lines.push(`  ... and ${r.count - r.examples.length} more`)
  }
  if (failing.length === 0) lines.push("OK: no violations")
  else {
    lines.push(`VIOLATIONS: ${report.violations} in ${failing.length} rule(s)`)
    failing.forEach(describe)
  }
  if (warned.length > 0) {
    lines.push("", `WARNINGS: ${report.warnings} in ${warned.length} rule(s)`)
    warned.forEach(describe)
  }
  const t = report.promptTokens
  lines.push(
    "",
    `prompt tokens (${t.tokenizer}): max ${t.max}, mean ${t.mean}, budget ${t.budget}, over budget ${t.overBudget}`,
    "",
    "coverage (rows):"
  )
  lines.push(...table("domain", report.coverage.domain, report.rows))
  lines.push(...table("complexity", report.coverage.complexity, report.rows))
  lines.push(...table("server", report.coverage.server, report.rows))
  lines.push(...table("tool", report.coverage.tool, report.rows))
  lines.push(...table("steps per plan", report.coverage.steps, report.rows))
  return lines.join("\n") + "\n"
}
