/**
 * The first stages of a generate run, before any task is asked for (pure: texts, answer schemas, and
 * the cleaning of answers; src/programs/planStages.ts runs them):
 * - domains: when `--domains` is not given and the inventory is not the bundled one, the model proposes
 *   use-case domains that fit the catalogue;
 * - subjects: without `--subjects FILE`, the model proposes subjects per domain (what tasks are about:
 *   names, places, topics, files...), handed out to samples without repetition (subjects.ts).
 * Both texts are domain-free: everything specific comes from the catalogue.
 */
import { Schema } from "effect"
import type { Inventory } from "../domain/inventory.js"
import { renderCatalogue } from "./generationPrompt.js"
import { MAX_LINE_CHARS } from "./personas.js"

export const DOMAINS_SCHEMA_NAME = "skyrl_domains"
export const SUBJECTS_SCHEMA_NAME = "skyrl_subjects"
/** Request keys of the stages' calls (archive files `stage_domains_c01.json`, ...). */
export const DOMAINS_KEY = "stage-domains"
export const SUBJECTS_KEY = "stage-subjects"

/** Domains the domains stage asks for. */
export const DOMAIN_COUNT = 6
/** Most subjects asked for per domain: larger runs hand subjects out again (subjects.ts `reuse`). */
export const MAX_SUBJECTS_PER_DOMAIN = 60
const MAX_DOMAIN_CHARS = 80

export const DomainsAnswer = Schema.Struct({ domains: Schema.Array(Schema.String) })
export type DomainsAnswer = typeof DomainsAnswer.Type

export const SubjectsAnswer = Schema.Struct({
  domains: Schema.Array(Schema.Struct({ domain: Schema.String, subjects: Schema.Array(Schema.String) }))
})
export type SubjectsAnswer = typeof SubjectsAnswer.Type

/** The shared instructions of both stages: the job, then the catalogue. */
export const renderStageInstructions = (inventory: Inventory): string =>
  [
    "You help plan a dataset of training tasks for an AI agent that solves user requests by calling tools on",
    "MCP servers. Each task will be a realistic request a user sends, solved with the tools below. Before the",
    "tasks are written, you describe who would use these tools and what their requests would be about.",
    "Base every answer on the catalogue: what its tools can do, and the kinds of values their params take.",
    "",
    "Tool catalogue:",
    renderCatalogue(inventory)
  ].join("\n")

/** The domains stage's request. */
export const renderDomainsRequest = (count = DOMAIN_COUNT): string =>
  [
    `Propose ${count} distinct use-case domains for tasks with these tools: in each, a kind of user needs the`,
    "tools for a kind of work. Each domain is a short noun phrase of 2-6 words. Together they cover every",
    "server of the catalogue; do not name tools in them.",
    "Answer with the JSON object only."
  ].join("\n")

/** Subjects wanted for a domain that `demand` samples draw from: every sample one, plus spares for retries. */
export const subjectsWanted = (demand: number): number =>
  Math.min(MAX_SUBJECTS_PER_DOMAIN, demand + Math.ceil(demand / 4) + 2)

/** The subjects stage's request: how many subjects for each domain. */
export const renderSubjectsRequest = (demand: Readonly<Record<string, number>>): string =>
  [
    "For each domain below, propose the given number of distinct subjects: concrete things one task in that",
    "domain could be about, of the kind the tools' params take (names, places, topics, files, records, ...),",
    "realistic and specific enough to look up or act on with the tools. A subject is a short phrase",
    "(1-8 words); never repeat one, within a domain or across domains. Answer with each domain exactly as",
    "written here.",
    ...Object.entries(demand).map(([domain, n]) => `- ${domain}: ${subjectsWanted(n)} subjects`),
    "Answer with the JSON object only."
  ].join("\n")

/** Trimmed single-line entries of at most `max` characters, repeats (ignoring case) dropped. */
const cleanList = (items: ReadonlyArray<string>, max: number, seen = new Set<string>()): Array<string> => {
  const out: Array<string> = []
  for (const raw of items) {
    const item = raw.replace(/\s+/g, " ").trim()
    const key = item.toLowerCase()
    if (item === "" || item.length > max || seen.has(key)) continue
    seen.add(key)
    out.push(item)
  }
  return out
}

/** The domains of an answer (at most `count`), or why none is usable. */
export const cleanDomains = (answer: DomainsAnswer, count = DOMAIN_COUNT): ReadonlyArray<string> | string => {
  const domains = cleanList(answer.domains, MAX_DOMAIN_CHARS).slice(0, count)
  return domains.length === 0 ? "the answer lists no usable domain" : domains
}

/**
 * Subject pools by domain from an answer: entries matched to the requested domains ignoring case,
 * each domain's list cut to what was asked, a subject given to two domains kept in the first. Domains
 * the answer leaves out get no pool (their samples get no subject).
 */
export const cleanSubjects = (
  answer: SubjectsAnswer,
  demand: Readonly<Record<string, number>>
): Readonly<Record<string, ReadonlyArray<string>>> => {
  const byKey = new Map(Object.keys(demand).map((d) => [d.trim().toLowerCase(), d]))
  const seen = new Set<string>()
  const out: Record<string, ReadonlyArray<string>> = {}
  for (const entry of answer.domains) {
    const domain = byKey.get(entry.domain.trim().toLowerCase())
    if (domain === undefined || out[domain] !== undefined) continue
    const subjects = cleanList(entry.subjects, MAX_LINE_CHARS, seen).slice(0, subjectsWanted(demand[domain]))
    if (subjects.length > 0) out[domain] = subjects
  }
  return out
}
