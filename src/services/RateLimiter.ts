/**
 * Client-side pacing under the account's limits: requests per minute and tokens per minute.
 * A virtual-clock scheduler (GCRA): each request reserves the earliest slot at which both budgets
 * allow it, so a long run proceeds at exactly min(RPM/60, TPM/(60·tokens)) requests a second with no
 * bursts that would only earn 429s. Uses Effect's Clock, so TestClock drives it in tests.
 */
import { Clock, Context, Effect, Layer, Ref } from "effect"

export interface RateLimits {
  readonly rpm?: number | undefined
  readonly tpm?: number | undefined
}

export interface RateLimiterApi {
  /** Waits until a request of about `tokens` tokens may start. */
  readonly acquire: (tokens: number) => Effect.Effect<void>
}

export class RateLimiter extends Context.Tag("skyrl/RateLimiter")<RateLimiter, RateLimiterApi>() {}

export const makeRateLimiter = (limits: RateLimits): Effect.Effect<RateLimiterApi> =>
  Effect.gen(function*() {
    const rpm = limits.rpm !== undefined && limits.rpm > 0 ? limits.rpm : undefined
    const tpm = limits.tpm !== undefined && limits.tpm > 0 ? limits.tpm : undefined
    if (rpm === undefined && tpm === undefined) return { acquire: () => Effect.void }
    const next = yield* Ref.make({ request: 0, tokens: 0 })
    return {
      acquire: (tokens) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const wait = yield* Ref.modify(next, (s) => {
            const start = Math.max(now, s.request, s.tokens)
            return [start - now, {
              request: rpm === undefined ? 0 : start + 60_000 / rpm,
              tokens: tpm === undefined ? 0 : start + (Math.max(1, tokens) * 60_000) / tpm
            }]
          })
          if (wait > 0) yield* Effect.sleep(wait)
        })
    }
  })

export const rateLimiterLayer = (limits: RateLimits): Layer.Layer<RateLimiter> =>
  Layer.effect(RateLimiter, makeRateLimiter(limits))
