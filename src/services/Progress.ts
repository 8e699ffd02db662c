/**
 * Progress of a long run on stderr: on a terminal one live line (rewritten in place), otherwise a log
 * line every `intervalMs`. The program reports counts; this service decides how to show them.
 */
import { Context, Duration, Effect, Layer } from "effect"

export interface ProgressSnapshot {
  readonly done: number
  readonly total: number
  readonly valid: number
  readonly rejected: number
  readonly failed: number
  readonly tokens: number
  readonly costUsd: number | undefined
  readonly elapsedMs: number
}

export interface ProgressApi {
  /** Runs `work` while showing `snapshot()` periodically; clears the live line afterwards. */
  readonly track: <A, E, R>(
    snapshot: Effect.Effect<ProgressSnapshot>,
    work: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E, R>
}

export class Progress extends Context.Tag("skyrl/Progress")<Progress, ProgressApi>() {}

export const formatProgress = (s: ProgressSnapshot): string => {
  const rate = s.elapsedMs > 0 ? (s.done / s.elapsedMs) * 60_000 : 0
  const remaining = s.total - s.done
  const eta = rate > 0 ? Math.round((remaining / rate) * 60) : undefined
  const etaText = eta === undefined ? "?" : eta >= 3600 ? `${(eta / 3600).toFixed(1)}h` : eta >= 60
    ? `${Math.round(eta / 60)}m`
    : `${eta}s`
  const cost = s.costUsd === undefined ? "" : ` $${s.costUsd.toFixed(4)}`
  return `${s.done}/${s.total} valid ${s.valid} rejected ${s.rejected} failed ${s.failed} ` +
    `${rate.toFixed(1)}/min ETA ${etaText} tokens ${s.tokens}${cost}`
}

const tty = (intervalMs: number): ProgressApi => ({
  track: (snapshot, work) => {
    const draw = Effect.flatMap(snapshot, (s) =>
      Effect.sync(() => {
        process.stderr.write(`\r\x1b[2K${formatProgress(s)}`)
      }))
    return Effect.scoped(
      Effect.gen(function*() {
        yield* Effect.forkScoped(Effect.forever(Effect.zipRight(draw, Effect.sleep(Duration.millis(intervalMs)))))
        return yield* work
      })
    ).pipe(Effect.ensuring(Effect.sync(() => process.stderr.write("\r\x1b[2K"))))
  }
})

const lines = (intervalMs: number): ProgressApi => ({
  track: (snapshot, work) =>
    Effect.scoped(
      Effect.gen(function*() {
        yield* Effect.forkScoped(
          Effect.forever(
            Effect.zipRight(
              Effect.sleep(Duration.millis(intervalMs)),
              Effect.flatMap(snapshot, (s) => Effect.logInfo(`progress ${formatProgress(s)}`))
            )
          )
        )
        return yield* work
      })
    )
})

/** Live line on a TTY stderr, periodic log lines elsewhere (CI, pipes, files). */
export const progressLayer = (options: { intervalMs?: number } = {}): Layer.Layer<Progress> =>
  Layer.succeed(
    Progress,
    process.stderr.isTTY === true ? tty(options.intervalMs ?? 500) : lines(options.intervalMs ?? 10_000)
  )

/** No progress output (tests). */
export const progressSilent: Layer.Layer<Progress> = Layer.succeed(Progress, { track: (_s, work) => work })
