/**
 * Which tools a row's prompt offers, independent of the plan (README "Prompt policy"). Pure.
 *
 * - Order: one canonical order, the inventory's (servers, then tools, as the inventory lists them); never
 *   the plan's. Plan tools the inventory does not know come last, sorted by server and name.
 * - Default: every tool of the job's inventory when the prompt fits the token budget with all of them.
 * - Tight budget: the plan's tools, then the task's own `tools_available` (tools it asks to offer), then
 *   the other tools of the plan's servers (inventory order), then the remaining tools in an order shuffled
 *   by the task id (deterministic per task), each added while the prompt still fits.
 * - A prompt that cannot offer at least min(3, available) distractors (tools the plan does not use) is
 *   refused with the reason: the policy would have nothing to choose from.
 * - Call names: a tool name two offered servers share is shown and expected as `server.tool`.
 */
import { Either } from "effect"
import type { Inventory, InventoryTool } from "../domain/inventory.js"
import { fnv1a32 } from "./hash32.js"
import type { PromptTool } from "./prompt.js"
import { renderSystemPrompt, serverLine, toolLine } from "./prompt.js"
import { seededShuffle } from "./workPlan.js"

/** Distractors a prompt must offer: min(MIN_DISTRACTORS, tools the plan does not use). */
export const MIN_DISTRACTORS = 3

interface Candidate {
  readonly server: string
  readonly tool: string
  readonly definition: InventoryTool | undefined
  readonly paramNames: ReadonlyArray<string>
}

const keyOf = (t: { readonly server: string; readonly tool: string }) => `${t.server}\u0000${t.tool}`

/**
 * The call name of each tool in a set: the tool name, or `server.tool` when another server of the set
 * exposes the same name. Keyed by `server \0 tool`.
 */
export const callNames = (
  tools: ReadonlyArray<{ readonly server: string; readonly tool: string }>
): ReadonlyMap<string, string> => {
  const servers = new Map<string, Set<string>>()
  for (const t of tools) servers.set(t.tool, (servers.get(t.tool) ?? new Set()).add(t.server))
  return new Map(tools.map((t) => [keyOf(t), (servers.get(t.tool)?.size ?? 0) > 1 ? `${t.server}.${t.tool}` : t.tool]))
}

export interface PlanTool {
  readonly server: string
  readonly tool: string
  readonly params: Readonly<Record<string, unknown>>
}

export interface PromptToolsInput {
  /** The job's inventory: its order is the canonical order. */
  readonly inventory: Inventory | undefined
  readonly plan: ReadonlyArray<PlanTool>
  /** Tool names the task asks to offer: first among the distractors when the budget is tight. */
  readonly preferred?: ReadonlyArray<string> | undefined
  /** Seeds the choice of distractors under a tight budget. */
  readonly taskId: string
  readonly asOf?: string | undefined
  /** The prompt's own system text, kept before the tool listing (enrich; see prompt.ts). */
  readonly preamble?: string | undefined
  /** Tokens the prompt may take in all, and those taken outside the system message (user message, template). */
  readonly maxTokens: number
  readonly otherTokens: number
  /** BPE tokens of a text. */
  readonly count: (text: string) => number
}

export interface PromptTools {
  /** The offered tools in canonical order, with call names. */
  readonly tools: ReadonlyArray<PromptTool>
  readonly system: string
  /** BPE tokens of `system`. */
  readonly systemTokens: number
  /** Tools the inventory could have offered as distractors. */
  readonly distractorsAvailable: number
}

interface Rendered {
  readonly tools: ReadonlyArray<PromptTool>
  readonly system: string
  readonly systemTokens: number
}

/** The candidates in canonical order, their ranks, and the prompt offering all of them (by date). */
interface Offer {
  readonly candidates: ReadonlyArray<Candidate>
  readonly rank: ReadonlyMap<string, number>
  readonly full: Map<string, { readonly count: (text: string) => number; readonly rendered: Rendered }>
}

const offerOf = (candidates: ReadonlyArray<Candidate>): Offer => ({
  candidates,
  rank: new Map(candidates.map((c, i) => [keyOf(c), i])),
  full: new Map()
})

/** The inventory's own offer, made once per inventory: every row of a run offers from it. */
const inventoryOffers = new WeakMap<Inventory, Offer>()

const inventoryOffer = (inventory: Inventory): Offer => {
  let offer = inventoryOffers.get(inventory)
  if (offer === undefined) {
    offer = offerOf(
      inventory.servers.flatMap((server) =>
        server.tools.map((t) => ({ server: server.name, tool: t.name, definition: t, paramNames: [] }))
      )
    )
    inventoryOffers.set(inventory, offer)
  }
  return offer
}

/** The offer of a task: the inventory's, plus the plan tools it does not know (sorted by server and name). */
const offerFor = (input: PromptToolsInput): Offer => {
  const known = input.inventory === undefined ? offerOf([]) : inventoryOffer(input.inventory)
  const unknown = new Map<string, Set<string>>()
  for (const s of input.plan) {
    if (known.rank.has(keyOf(s))) continue
    const names = unknown.get(keyOf(s)) ?? new Set<string>()
    for (const k of Object.keys(s.params)) names.add(k)
    unknown.set(keyOf(s), names)
  }
  if (unknown.size === 0) return known
  return offerOf([
    ...known.candidates,
    ...[...unknown.keys()].sort().map((k) => {
      const [server, tool] = k.split("\u0000") as [string, string]
      return { server, tool, definition: undefined, paramNames: [...unknown.get(k)!] }
    })
  ])
}

/** The prompt tools of a subset, in canonical order (`rank`), with call names of that subset. */
const asPromptTools = (
  chosen: ReadonlyArray<Candidate>,
  rank: ReadonlyMap<string, number>
): ReadonlyArray<PromptTool> => {
  const ordered = [...chosen].sort((a, b) => rank.get(keyOf(a))! - rank.get(keyOf(b))!)
  const names = callNames(ordered)
  return ordered.map((c) => ({ ...c, callName: names.get(keyOf(c))! }))
}

/** The tools the prompt offers and its system message, or why no prompt within the rules exists. */
export const selectPromptTools = (input: PromptToolsInput): Either.Either<PromptTools, string> => {
  const offer = offerFor(input)
  const { candidates, rank } = offer
  const planKeys = new Set(input.plan.map(keyOf))
  const budget = input.maxTokens - input.otherTokens
  const render = (chosen: ReadonlyArray<Candidate>): Rendered => {
    const tools = asPromptTools(chosen, rank)
    const system = renderSystemPrompt(tools, { asOf: input.asOf, preamble: input.preamble })
    return { tools, system, systemTokens: input.count(system) }
  }
  const renderAll = (): Rendered => {
    // A prompt's own text is one row's: not cached with the inventory's offer.
    if (input.preamble !== undefined) return render(candidates)
    const cached = offer.full.get(input.asOf ?? "")
    if (cached !== undefined && cached.count === input.count) return cached.rendered
    const rendered = render(candidates)
    offer.full.set(input.asOf ?? "", { count: input.count, rendered })
    return rendered
  }
  const distractorsAvailable = candidates.length - planKeys.size
  const needed = Math.min(MIN_DISTRACTORS, distractorsAvailable)
  const done = (r: Rendered): Either.Either<PromptTools, string> => {
    const distractors = r.tools.length - planKeys.size
    return distractors >= needed
      ? Either.right({ tools: r.tools, system: r.system, systemTokens: r.systemTokens, distractorsAvailable })
      : Either.left(
        `the prompt can offer only ${distractors} tool${distractors === 1 ? "" : "s"} besides the plan's ` +
          `${planKeys.size} within ${input.maxTokens} prompt tokens; at least ${needed} distractors are needed ` +
          "(raise --max-prompt-tokens or shorten the user prompt)"
      )
  }

  const all = renderAll()
  if (all.systemTokens <= budget) return done(all)
  const required = candidates.filter((c) => planKeys.has(keyOf(c)))
  const base = render(required)
  if (base.systemTokens > budget) {
    return Either.left(
      `the system message with only the plan's ${required.length} tools takes ${base.systemTokens} tokens; with the ` +
        `user message (${input.otherTokens}) that is over the budget of ${input.maxTokens} prompt tokens`
    )
  }
  const planServers = new Set(required.map((c) => c.server))
  const others = candidates.filter((c) => !planKeys.has(keyOf(c)))
  const preferred = new Set(input.preferred ?? [])
  const priority = [
    ...others.filter((c) => preferred.has(c.tool)),
    ...others.filter((c) => !preferred.has(c.tool) && planServers.has(c.server)),
    // Fisher-Yates seeded by the task id.
    ...seededShuffle(others.filter((c) => !preferred.has(c.tool) && !planServers.has(c.server)), fnv1a32(input.taskId))
  ]
  // Greedy on each line's own count (BPE counts add up across lines; lines repeat across rows, so their
  // counts are cached), with the call names of the whole candidate set (never shorter than the final ones).
  const names = callNames(candidates)
  const lineTokens = (c: Candidate) => input.count(`\n${toolLine({ ...c, callName: names.get(keyOf(c))! })}`)
  const serverTokens = (server: string) => input.count(`\n${serverLine(server)}`)
  const servers = new Set(planServers)
  const chosen = [...required]
  let used = base.systemTokens
  for (const c of priority) {
    const extra = lineTokens(c) + (servers.has(c.server) ? 0 : serverTokens(c.server))
    if (used + extra > budget) continue
    chosen.push(c)
    servers.add(c.server)
    used += extra
  }
  // The real count decides: drop the last additions while the text is over the budget.
  let result = render(chosen)
  while (result.systemTokens > budget && chosen.length > required.length) {
    chosen.pop()
    result = render(chosen)
  }
  return done(result)
}
