/**
 * The retry schedule of the Llm layers: only errors that can succeed on retry (rate limit, 5xx,
 * connection errors, timeouts), at most `maxRetries` times, waiting what the server asked
 * (`retry-after-ms` / `retry-after`, capped at `maxRetryAfterMs`) or else an exponential backoff
 * (base × 2^n, jittered ±20%, capped at `maxDelayMs`).
 */
import { Duration, Effect, Schedule } from "effect"
import type { LlmError } from "../../domain/llm.js"
import { isRetryable } from "../../domain/llm.js"

export interface RetryPolicy {
  readonly maxRetries: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  readonly maxRetryAfterMs: number
}

/** The wait before the next attempt: the server's retry-after when given, else the capped backoff. */
export const retryDelayMs = (error: LlmError, backoffMs: number, policy: RetryPolicy): number =>
  error._tag === "RateLimited" && error.retryAfterMs !== undefined
    ? Math.round(Math.min(Math.max(0, error.retryAfterMs), policy.maxRetryAfterMs))
    : Math.round(Math.min(backoffMs, policy.maxDelayMs))

export type OnRetry = (error: LlmError, delayMs: number, retry: number) => Effect.Effect<void>

export const logRetry = (key: string | undefined, maxRetries: number): OnRetry => (error, delayMs, retry) =>
  Effect.logWarning(
    `${error.message}; retry ${retry}/${maxRetries} in ${(delayMs / 1000).toFixed(1)} s`
  ).pipe(key === undefined ? (x) => x : Effect.annotateLogs("sample", key))

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

/** Runs `attempt` again on retryable errors, following `retrySchedule`. */
export const withRetry = <A, R>(
  attempt: Effect.Effect<A, LlmError, R>,
  policy: RetryPolicy,
  onRetry?: OnRetry
): Effect.Effect<A, LlmError, R> => Effect.retry(attempt, retrySchedule(policy, onRetry))

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
