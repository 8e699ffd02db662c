/** How a failed run is reported: one readable line and an exit code. */
import { ValidationError } from "@effect/cli"
import { Cause, Option } from "effect"

export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2
export const EXIT_INTERRUPTED = 130

export const exitCodeOf = (cause: Cause.Cause<unknown>): number => {
  if (Cause.isInterruptedOnly(cause)) return EXIT_INTERRUPTED
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    if (ValidationError.isValidationError(failure.value)) return EXIT_USAGE
    const code = (failure.value as { exitCode?: unknown } | null)?.exitCode
    if (typeof code === "number") return code
  }
  return EXIT_FAILURE
}

/** The message of the first failure (typed errors carry readable messages); defects show their stack with --log-level debug. */
export const describeCause = (cause: Cause.Cause<unknown>, verbose: boolean): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const e = failure.value
    if (e instanceof Error || (typeof e === "object" && e !== null && "message" in e)) {
      return String((e as { message: unknown }).message)
    }
    return String(e)
  }
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect)) {
    const d = defect.value
    if (d instanceof Error) return verbose && d.stack ? d.stack : `internal error: ${d.message}`
    return `internal error: ${String(d)}`
  }
  return Cause.pretty(cause)
}
