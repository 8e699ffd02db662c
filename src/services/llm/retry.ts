/**
 * The retry schedule of the Llm layers: only errors that can succeed on retry (rate limit, 5xx,
 * connection errors, timeouts), at most `maxRetries` times, waiting what the server asked on any retried
 * status (`retry-after-ms` / `retry-after`, else on a 429 the `x-ratelimit-reset-*` of the exhausted
 * limit; capped at `maxRetryAfterMs`) or else an exponential backoff (base × 2^n, jittered ±20%, capped
 * at `maxDelayMs`).
 */
import { Duration, Effect, Schedule } from "effect"
import type { LlmError } from "../../domain/llm.js"
import { isRetryable } from "../../domain/llm.js"
import { parseSampleKey } from "../../domain/run.js"

export interface RetryPolicy {
  readonly maxRetries: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  readonly maxRetryAfterMs: number
}

const serverWait = (error: LlmError): number | undefined =>
  error._tag === "RateLimited" || error._tag === "Transient" ? error.retryAfterMs : undefined

/** The wait before the next attempt: the server's wait when it named one, else the capped backoff. */
export const retryDelayMs = (error: LlmError, backoffMs: number, policy: RetryPolicy): number => {
  const asked = serverWait(error)
  return asked !== undefined
    ? Math.round(Math.min(Math.max(0, asked), policy.maxRetryAfterMs))
    : Math.round(Math.min(backoffMs, policy.maxDelayMs))
}

export type OnRetry = (error: LlmError, delayMs: number, retry: number) => Effect.Effect<void>

/** Logs a retry; a sample's call is named as the run's other lines name it ("sample 3 attempt 2 repair: ..."). */
export const logRetry = (key: string | undefined, maxRetries: number): OnRetry => (error, delayMs, retry) => {
  const sample = key === undefined ? undefined : parseSampleKey(key)
  const message = `${error.message}; retry ${retry}/${maxRetries} in ${(delayMs / 1000).toFixed(1)} s`
  if (sample !== undefined) {
    const repair = sample.purpose === "repair" ? " repair" : ""
    return Effect.logWarning(`sample ${sample.index + 1} attempt ${sample.attempt}${repair}: ${message}`)
  }
  return Effect.logWarning(message).pipe(key === undefined ? (x) => x : Effect.annotateLogs("call", key))
}

/** The schedule (input: the error of the failed attempt). */
export const retrySchedule = (policy: RetryPolicy, onRetry: OnRetry = () => Effect.void) =>
  Schedule.recurWhile<LlmError>(isRetryable).pipe(
    Schedule.intersect(Schedule.recurs(policy.maxRetries)),
    Schedule.intersect(Schedule.jittered(Schedule.exponential(Duration.millis(policy.baseDelayMs), 2))),
    Schedule.modifyDelayEffect(([[error, n]], backoff) => {
      const ms = retryDelayMs(error, Duration.toMillis(backoff), policy)
      return Effect.as(onRetry(error, ms, n + 1), Duration.millis(ms))
    })
  )

/**
 * Runs `attempt` again on retryable errors, following `retrySchedule`: `Effect.retry(attempt, schedule)`,
 * with the schedule made only when the first run fails (then fed that failure first, as `Effect.retry`
 * would), so that a call answered at once does not build a schedule and its driver.
 */
export const withRetry = <A, R>(
  attempt: Effect.Effect<A, LlmError, R>,
  policy: RetryPolicy,
  onRetry?: OnRetry
): Effect.Effect<A, LlmError, R> =>
  Effect.catchAll(attempt, (first) => {
    let replayed = false
    const again = Effect.suspend(() => replayed ? attempt : ((replayed = true), Effect.fail(first)))
    return Effect.retry(again, retrySchedule(policy, onRetry))
  })

/** `x-ratelimit-reset-*` durations as OpenAI writes them: `1s`, `6m0s`, `20ms`, `1h2m3.5s`. */
export const parseResetDuration = (text: string): number | undefined => {
  const trimmed = text.trim()
  if (trimmed === "") return undefined
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 }
  let total = 0
  let rest = trimmed
  while (rest !== "") {
    const m = /^(\d+(?:\.\d+)?)(ms|h|m|s)/.exec(rest)
    if (m === null) return undefined
    total += Number(m[1]) * units[m[2]]
    rest = rest.slice(m[0].length)
  }
  return total
}

/**
 * On a 429 without retry-after: when the limit that ran out is known (`x-ratelimit-remaining-*` is 0),
 * its reset; otherwise the later of the two resets.
 */
export const parseRateLimitReset = (get: (name: string) => string | null | undefined): number | undefined => {
  const limits = ["requests", "tokens"].map((kind) => ({
    reset: parseResetDuration(get(`x-ratelimit-reset-${kind}`) ?? ""),
    exhausted: (get(`x-ratelimit-remaining-${kind}`) ?? "").trim() === "0"
  })).filter((l) => l.reset !== undefined)
  const exhausted = limits.filter((l) => l.exhausted)
  const relevant = exhausted.length > 0 ? exhausted : limits
  return relevant.length === 0 ? undefined : Math.max(...relevant.map((l) => l.reset!))
}

/** Milliseconds to wait from `retry-after-ms` (ms) or `retry-after` (seconds or an HTTP date). */
export const parseRetryAfter = (
  get: (name: string) => string | null | undefined,
  nowMs: number = Date.now()
): number | undefined => {
  const ms = get("retry-after-ms")
  if (ms !== null && ms !== undefined && ms.trim() !== "") {
    const n = Number(ms)
    if (Number.isFinite(n) && n >= 0) return n
  }
  const after = get("retry-after")
  if (after === null || after === undefined || after.trim() === "") return undefined
  const seconds = Number(after)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  const date = Date.parse(after)
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs)
}
