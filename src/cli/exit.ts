/** How a failed run is reported: one readable line and an exit code. */
import { ValidationError } from "@effect/cli"
import { Cause, Option } from "effect"
import { shellWord } from "../domain/words.js"
import type { StopSignal } from "../services/StopRequests.js"

export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2
/** Interrupted by SIGINT (Ctrl-C): 128 + 2. */
export const EXIT_INTERRUPTED = 130
/** Interrupted by SIGTERM (kill, a container stop, a job scheduler): 128 + 15, as the shells report it. */
export const EXIT_TERMINATED = 143

export type { StopSignal } from "../services/StopRequests.js"

/**
 * A file-system error as a defect: @effect/cli checks path arguments with @effect/platform's FileSystem
 * and dies when the check itself fails (an --out under a file: ENOTDIR); skyrl uses no FileSystem of its
 * own. `PATH: DESCRIPTION`, or undefined for any other defect.
 */
const pathCheckFailure = (cause: Cause.Cause<unknown>): string | undefined => {
  const d = Option.getOrUndefined(Cause.dieOption(cause)) as
    | { _tag?: unknown; pathOrDescriptor?: unknown; description?: unknown }
    | undefined
  if (d?._tag !== "SystemError" || d.pathOrDescriptor === undefined) return undefined
  return `${String(d.pathOrDescriptor)}: ${String(d.description ?? "cannot be used")}`
}

/** The exit code of a failed run; an interruption's code depends on the signal that caused it (none: SIGINT's). */
export const exitCodeOf = (cause: Cause.Cause<unknown>, signal?: StopSignal): number => {
  if (Cause.isInterruptedOnly(cause)) return signal === "SIGTERM" ? EXIT_TERMINATED : EXIT_INTERRUPTED
  if (pathCheckFailure(cause) !== undefined) return EXIT_USAGE
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
  const pathProblem = pathCheckFailure(cause)
  if (pathProblem !== undefined && !verbose) return pathProblem
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect)) {
    const d = defect.value
    if (d instanceof Error) return verbose && d.stack ? d.stack : `internal error: ${d.message}`
    return `internal error: ${String(d)}`
  }
  return Cause.pretty(cause)
}

/**
 * Whether the command was asked for JSON logs (`--log-format json`, `--log-format=json`, else
 * SKYRL_LOG_FORMAT), read from the raw arguments: the final error is printed after @effect/cli is done.
 */
export const jsonLogsRequested = (argv: ReadonlyArray<string>, env: NodeJS.ProcessEnv): boolean => {
  const i = argv.indexOf("--log-format")
  const flag = i !== -1 ? argv[i + 1] : argv.find((a) => a.startsWith("--log-format="))?.slice("--log-format=".length)
  return (flag ?? env.SKYRL_LOG_FORMAT) === "json"
}

/** Commands a rerun with `--resume` continues (their journals keep the work done). */
const RESUMABLE = new Set(["generate", "enrich", "verify"])

/** Whether the command line (or OPENAI_BACKEND when it gives none) selects `--backend batch`. */
const batchBackend = (argv: ReadonlyArray<string>, env: NodeJS.ProcessEnv): boolean => {
  const i = argv.indexOf("--backend")
  const flag = i !== -1 ? argv[i + 1] : argv.find((a) => a.startsWith("--backend="))?.slice("--backend=".length)
  return (flag ?? env.OPENAI_BACKEND) === "batch"
}

/** Options that take a value and may come before the subcommand (`skyrl --log-level debug enrich ...`). */
const VALUED_GLOBALS = new Set(["--log-level", "--log-format"])

/** The words of the command line that are not options or their values: `["batch", "collect", RUN_DIR]`. */
const commandWords = (argv: ReadonlyArray<string>): Array<string> => {
  const words: Array<string> = []
  const args = argv.slice(2)
  for (let i = 0; i < args.length; i++) {
    if (VALUED_GLOBALS.has(args[i])) i++
    else if (!args[i].startsWith("-")) words.push(args[i])
  }
  return words
}

/**
 * What an interrupted run prints: how to continue it when the command can resume (a batch run: collect, naming
 * `runDir`, the batch run's directory once the command knows it).
 */
export const interruptedMessage = (
  argv: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv = {},
  runDir?: string
): string => {
  const [command, sub] = commandWords(argv)
  if (command === "batch" && sub === "collect") {
    const dir = runDir === undefined ? "RUN_DIR" : shellWord(runDir)
    return `interrupted; what was collected is kept: run \`skyrl batch collect ${dir}\` again to continue ` +
      "(collecting again never makes a sample twice)"
  }
  if (command === undefined || !RESUMABLE.has(command)) return "interrupted"
  if (!batchBackend(argv, env)) {
    return "interrupted; the work done so far is kept: rerun the same command with --resume to continue"
  }
  return runDir === undefined
    ? "interrupted; what was submitted is kept: `skyrl batch collect RUN_DIR` (the run directory printed on stdout) continues it"
    : `interrupted; what was submitted is kept: \`skyrl batch collect ${shellWord(runDir)}\` continues it`
}

/** The final error line on stderr: `skyrl: MESSAGE`, or with JSON logs one object like the log lines. */
export const finalErrorLine = (message: string, json: boolean, now: Date): string =>
  json
    ? JSON.stringify({ message: `skyrl: ${message}`, logLevel: "ERROR", timestamp: now.toISOString() }) + "\n"
    : `skyrl: ${message}\n`
