/**
 * Built-in axes of variety for the work plan: task styles (what kind of request) and personas (who
 * asks). Both are domain-free, so they fit any inventory; `--personas FILE` replaces the personas.
 */
import { utf8FaultOf } from "./utf8.js"

export interface TaskStyle {
  readonly name: string
  /** One line for the request: what a task of this style asks for. */
  readonly description: string
}

export const TASK_STYLES: ReadonlyArray<TaskStyle> = [
  { name: "lookup", description: "find specific facts or records and report them exactly" },
  { name: "comparison", description: "gather the same kind of information for two or more items and compare them" },
  { name: "monitoring", description: "check the current state of something against a condition or threshold" },
  { name: "report", description: "collect information from several sources and assemble a short structured report" },
  { name: "action", description: "find what is needed, then change or send something based on it" },
  { name: "troubleshooting", description: "investigate why something looks wrong and pin down the cause" },
  { name: "planning", description: "gather inputs to decide what to do next and recommend it" },
  { name: "summary", description: "condense what the tools return into a few key points for a reader" }
]

/** Who writes the request: their role shapes the wording, the goal and the constraints. */
export const DEFAULT_PERSONAS: ReadonlyArray<string> = [
  "a new team member who asks for step-by-step clarity",
  "a busy manager who wants a two-line answer",
  "an analyst preparing a weekly review",
  "a student working on a class project",
  "an engineer on call during an incident",
  "a consultant preparing a client meeting",
  "a journalist checking facts before publishing",
  "a small-business owner with little time and no jargon",
  "an operations lead tracking a recurring process",
  "a researcher who needs precise, sourced numbers",
  "a product manager weighing two options",
  "a support agent answering a customer's question",
  "an auditor who wants every figure traceable",
  "a teacher preparing material for a lesson",
  "a data scientist validating an assumption",
  "an executive assistant compiling a briefing",
  "a hobbyist exploring out of curiosity",
  "a compliance officer looking for anything unusual",
  "a project coordinator sharing an update with the team",
  "a skeptical reviewer double-checking someone else's claim",
  "a non-native English speaker writing short, plain sentences",
  "a freelancer juggling several clients",
  "a team lead delegating a chore they do every Monday",
  "a newcomer to the field who does not know the terminology"
]

/** Longest accepted line of a personas or subjects file. */
export const MAX_LINE_CHARS = 300

/**
 * A one-entry-per-line file (personas, subjects): lines trimmed, blank lines and `#` comments skipped,
 * repeats (ignoring case) dropped keeping the first. Returns the entries, or an error naming the
 * source and line (1-based).
 */
export const parseLineList = (text: string, source: string): ReadonlyArray<string> | string => {
  const out: Array<string> = []
  const seen = new Set<string>()
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    // A line that is not UTF-8 (`decodeUtf8`'s fault line) is refused, not taken as an entry.
    const fault = utf8FaultOf(lines[i], i + 1)
    if (fault !== undefined) return `${source}: ${fault}`
    const line = lines[i].trim()
    if (line === "" || line.startsWith("#")) continue
    if (line.length > MAX_LINE_CHARS) return `${source}:${i + 1}: longer than ${MAX_LINE_CHARS} characters`

    if (/[\u0000-\u001f\u007f]/.test(line)) return `${source}:${i + 1}: contains a control character`
    const key = line.toLowerCase()
    if (seen.has(key)) continue
    seen.add(key)
    out.push(line)
  }
  return out.length === 0 ? `${source}: no entries (one per line; blank lines and # comments are skipped)` : out
}
