/**
 * A graceful stop asked from outside the program: the first Ctrl-C (SIGINT) or SIGTERM (src/bin.ts). A run
 * that listens (the generate / enrich engine while it makes samples) stops starting model calls and lets
 * the calls in flight end, their answers archived, priced and judged, so that nothing paid for is lost or
 * paid again on `--resume`; a second signal interrupts at once. With nobody listening, the signal
 * interrupts at once, as before.
 */
import { Context, Effect } from "effect"
import type { Scope } from "effect"

/** The signal that asked the stop (runMain takes either to interrupt a program). */
export type StopSignal = "SIGINT" | "SIGTERM"

export interface StopRequestsApi {
  /** Asks the listening runs to stop; false when none listens (the caller then interrupts). */
  readonly request: (signal: StopSignal) => boolean
  /** `onStop` hears a request while the scope is open. */
  readonly listen: (onStop: (signal: StopSignal) => void) => Effect.Effect<void, never, Scope.Scope>
}

export const makeStopRequests = (): StopRequestsApi => {
  const listeners = new Set<(signal: StopSignal) => void>()
  return {
    request: (signal) => {
      if (listeners.size === 0) return false
      for (const onStop of [...listeners]) onStop(signal)
      return true
    },
    listen: (onStop) =>
      Effect.acquireRelease(
        Effect.sync(() => void listeners.add(onStop)),
        () => Effect.sync(() => void listeners.delete(onStop))
      )
  }
}

/** The process's own: src/bin.ts asks it on a signal; tests provide one of their own. */
export const processStopRequests: StopRequestsApi = makeStopRequests()

export class StopRequests extends Context.Reference<StopRequests>()("skyrl/StopRequests", {
  defaultValue: () => processStopRequests
}) {}
