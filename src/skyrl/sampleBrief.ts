/**
 * The per-sample part of a generate request that makes samples differ: focus tool, task style,
 * persona, subject, and after a near-duplicate what to avoid. Lines to add to the short per-sample
 * user message (after domain and complexity, before the closing "Answer with the JSON object only."),
 * so the shared prefix of the run stays byte-identical. Domain-free. Pure.
 */
import type { AvoidNote } from "../domain/run.js"
import type { FocusTool } from "./focusTools.js"
import type { TaskStyle } from "./personas.js"

/**
 * An accepted task too close to a rejected answer of this sample: what the next request steers off (the
 * accepted task's prompt, shortened here; its plan's tools in order; the literal values that name what
 * it is about; "near-prompt" for similar text, "plan" for the same calls with the same values). Its
 * schema lives with the reject records that carry it (src/domain/run.ts).
 */
export type { AvoidNote }

export interface SampleBrief {
  readonly focus?: FocusTool | undefined
  readonly style?: TaskStyle | undefined
  readonly persona?: string | undefined
  readonly subject?: string | undefined
  /** Most recent last; only the last `MAX_AVOID` are shown. */
  readonly avoid?: ReadonlyArray<AvoidNote> | undefined
}

export const MAX_AVOID = 3
const PROMPT_EXCERPT_CHARS = 160

const excerpt = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length <= PROMPT_EXCERPT_CHARS ? flat : `${flat.slice(0, PROMPT_EXCERPT_CHARS - 1).trimEnd()}…`
}

const focusLine = (focus: FocusTool): string =>
  focus.needs.length === 0
    ? `Focus tool: the plan must call ${focus.tool} (server "${focus.server}").`
    : `Focus tool: the plan must call ${focus.tool} (server "${focus.server}") as a later step, after a call whose ` +
      `result provides its ${focus.needs.join(", ")}.`

const avoidLine = (note: AvoidNote): string => {
  const about = note.subjects !== undefined && note.subjects.length > 0
    ? `; about ${note.subjects.slice(0, 4).map((s) => JSON.stringify(s)).join(", ")}`
    : ""
  const why = note.kind === "plan" ? "same calls with the same values" : "a very similar request"
  return `- "${excerpt(note.prompt)}" (${why}${about}; tools ${note.tools.join(" > ")})`
}

/** The lines, in a fixed order; an absent field gives no line. */
export const renderSampleBrief = (brief: SampleBrief): ReadonlyArray<string> => {
  const lines: Array<string> = []
  if (brief.focus !== undefined) lines.push(focusLine(brief.focus))
  if (brief.style !== undefined) lines.push(`Task style: ${brief.style.name}: ${brief.style.description}.`)
  if (brief.persona !== undefined) {
    lines.push(`The user is ${brief.persona}; write the request in their voice, with their goal and constraints.`)
  }
  if (brief.subject !== undefined) lines.push(`Subject: build the task around ${JSON.stringify(brief.subject)}.`)
  const avoid = (brief.avoid ?? []).slice(-MAX_AVOID)
  if (avoid.length > 0) {
    lines.push(
      "Your previous answer duplicated a task already in the dataset. Write one that differs in subject and request from:",
      ...avoid.map(avoidLine)
    )
  }
  return lines
}
