/**
 * The cost ledger of a run: one entry per HTTP attempt (or batch answer), with its usage and price, kept
 * across sessions and batch rounds (`ledger.jsonl` in the run directory, appended and flushed as each
 * call ends). Every summary — the progress line, the final log line, the manifest, the `--max-cost`
 * check — reads its totals. An entry's key is its archived call's name (`task_0007_c02.json`), so an
 * answer replayed from the archive (resume, rebuild, another collect round) is never counted twice. A batch
 * answer is also known by its output line (`batchLineOf`: batch id and request key), so the same line
 * recorded again under a new call name (its archive and journal deleted, then collected again) is not
 * counted or written again either: the Batch API billed it once. Online calls have no such name: each
 * HTTP attempt is a charge of its own.
 */
import { Context, Effect, Ref } from "effect"
import type { StorageError } from "../domain/errors.js"
import type { Usage } from "../domain/llm.js"
import { addUsage, emptyUsage } from "../domain/llm.js"
import { costOf } from "../domain/pricing.js"
import type { LedgerEntry } from "../domain/run.js"
import type { StopSignal } from "./StopRequests.js"

export interface LedgerTotals {
  readonly calls: number
  readonly repairs: number
  readonly usage: Usage
  /** undefined when the model has no price. */
  readonly costUsd: number | undefined
  /** Usage of calls made online (not answered by the Batch API). */
  readonly onlineUsage: Usage
}

/** Why `--max-cost` stops new calls once `totals` are spent (undefined: under it, no budget, or no price). */
export const budgetReached = (maxCostUsd: number | undefined, totals: LedgerTotals): string | undefined =>
  maxCostUsd === undefined || totals.costUsd === undefined || totals.costUsd < maxCostUsd
    ? undefined
    : `--max-cost $${maxCostUsd} reached ($${totals.costUsd.toFixed(4)} spent)`

/** Why a run stopped starting calls: its reason, and whether it was `--max-cost` (`budgetReached`). */
export interface RunStop {
  readonly reason: string
  readonly budget: boolean
  /** A stop asked by a signal (the first Ctrl-C or SIGTERM): the run ends with that signal's exit code. */
  readonly signal?: StopSignal | undefined
}

/**
 * A run's stop reason as its final line gives it: a budget stop says what was spent in all (the calls in
 * flight when it stopped new ones end and are paid for), as the summary does, not what was spent then.
 */
export const finalStopReason = (stop: RunStop, maxCostUsd: number | undefined, totals: LedgerTotals): string =>
  stop.budget ? budgetReached(maxCostUsd, totals) ?? stop.reason : stop.reason

/**
 * An attempt as the engine reports it; the ledger prices it. `replayed`: a recorded answer (`--llm replay`)
 * that this run did not pay for: its line says $0.
 */
export type LedgerCall = Omit<LedgerEntry, "cost_usd"> & { readonly replayed?: boolean | undefined }

export interface CostLedgerApi {
  /** Records a call once (by key): appends its line and adds it to the totals. */
  readonly record: (call: LedgerCall) => Effect.Effect<void, StorageError>
  /**
   * `record` in two parts: adds the call to the totals and queues its line now, and returns the wait for the
   * line to be on disk (so `totals` counts the call before the caller waits).
   */
  readonly enqueue: (call: LedgerCall) => Effect.Effect<Effect.Effect<void, StorageError>>
  readonly totals: Effect.Effect<LedgerTotals>
}

export class CostLedger extends Context.Tag("skyrl/CostLedger")<CostLedger, CostLedgerApi>() {}

const emptyTotals: LedgerTotals = { calls: 0, repairs: 0, usage: emptyUsage, costUsd: 0, onlineUsage: emptyUsage }

const addEntry = (t: LedgerTotals, e: LedgerEntry): LedgerTotals => ({
  calls: t.calls + 1,
  repairs: t.repairs + (e.purpose === "repair" ? 1 : 0),
  usage: addUsage(t.usage, e.usage),
  costUsd: t.costUsd === undefined || e.cost_usd === null ? undefined : t.costUsd + e.cost_usd,
  onlineUsage: e.batch ? t.onlineUsage : addUsage(t.onlineUsage, e.usage)
})

/**
 * The Batch API output line an entry records (undefined: an online call, or a line written before ledger
 * lines had `batch_id`): its batch and its request (`custom_id` is the run id and the request key, which
 * sample, attempt and purpose make; one batch holds a custom_id once).
 */
const batchLineOf = (e: Pick<LedgerEntry, "batch_id" | "sample" | "attempt" | "purpose">): string | undefined =>
  e.batch_id === undefined ? undefined : `${e.batch_id}|${e.sample}|${e.attempt}|${e.purpose}`

/**
 * A ledger holding `prior` entries (read from the run directory) that prices new calls at `priceModel`'s
 * rates (batch answers at half) and queues each new line with `queue`, which returns the wait for it to be
 * on disk (`record` runs that wait; `enqueue` hands it back).
 */
export const makeCostLedger = (
  priceModel: string,
  prior: ReadonlyArray<LedgerEntry>,
  queue: (entry: LedgerEntry) => Effect.Effect<Effect.Effect<void, StorageError>>
): Effect.Effect<CostLedgerApi> =>
  Effect.gen(function*() {
    const keys = new Set<string>()
    const batchLines = new Set<string>()
    /** Whether the entry was counted already (by its key, or as its batch line); else takes both. */
    const seen = (e: LedgerCall | LedgerEntry): boolean => {
      const line = batchLineOf(e)
      if (keys.has(e.key) || (line !== undefined && batchLines.has(line))) return true
      keys.add(e.key)
      if (line !== undefined) batchLines.add(line)
      return false
    }
    let start = emptyTotals
    for (const e of prior) if (!seen(e)) start = addEntry(start, e)
    const totals = yield* Ref.make(start)
    // No lock: the key is checked and taken in one synchronous step, and lines of calls ending together
    // share one write of the ledger (its appender groups them).
    const entryOf = (call: LedgerCall): LedgerEntry | undefined => {
      if (seen(call)) return undefined
      const { replayed, ...entry } = call
      return {
        ...entry,
        cost_usd: replayed === true ? 0 : costOf(priceModel, call.usage, { batch: call.batch }) ?? null
      }
    }
    const enqueue = (call: LedgerCall): Effect.Effect<Effect.Effect<void, StorageError>> =>
      Effect.suspend(() => {
        const entry = entryOf(call)
        if (entry === undefined) return Effect.succeed(Effect.void)
        return Effect.zipRight(Ref.update(totals, (t) => addEntry(t, entry)), queue(entry))
      })
    return {
      record: (call) => Effect.flatten(enqueue(call)),
      enqueue,
      totals: Ref.get(totals)
    }
  })
