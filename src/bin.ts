/**
 * Runtime wiring only: run the CLI on Node, print the final error once on stderr, map exit codes
 * (0 ok, 1 failure, 2 usage error, 130 interrupted by SIGINT, 143 by SIGTERM).
 */
import { ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Exit } from "effect"
import { batchRunDir } from "./cli/batch.js"
import {
  dashPath,
  envValueMessage,
  fullUsage,
  givenTwice,
  globalOptionsFirst,
  globalOptionWithoutValue,
  leftoverArgument,
  namingFlag,
  repeatedOptionsSplit,
  unknownOption
} from "./cli/commandLine.js"
import { describeCause, exitCodeOf, finalErrorLine, interruptedMessage, jsonLogsRequested } from "./cli/exit.js"
import { cli, skyrl } from "./cli/main.js"
import type { StopSignal } from "./services/StopRequests.js"
import { processStopRequests } from "./services/StopRequests.js"

// A reader that went away (`skyrl generate --dry-run | head`, a pager quit early) makes the next write fail with
// EPIPE, an unhandled 'error' event otherwise (a Node stack trace, exit 1). stdout carries the command's output:
// stop as a process killed by SIGPIPE would (141), quietly; another failure (`> /dev/full`: ENOSPC) lost output,
// said in one line (it was a 25 KB stack trace of the bundle). stderr carries only logs: a run whose logs cannot be
// written (a reader gone, `2>&1 | head`; a full disk, `2>/dev/full`) goes on to its own exit code, its rows and
// archive being in files (a full disk there ended the run at once, exit 1, nothing said, its lock left behind).
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(141)
  process.stderr.write(`skyrl: cannot write to stdout: ${error.message} (the output is lost)\n`)
  process.exit(1)
})
process.stderr.on("error", () => undefined)

// The first signal that stopped the program: the exit code tells SIGINT and SIGTERM apart (130, 143).
let stopSignal: StopSignal | undefined

/**
 * `--n 5` as the docs spell it: @effect/cli names one-letter options `-n`, so accept both. A one-letter option with
 * `=` (`-n=2`, `--n=2`, `-o=out.jsonl`), which @effect/cli does not read (it said `skyrl: ` and nothing else), is
 * given as the option and its value.
 */
const dashN = (args: ReadonlyArray<string>): ReadonlyArray<string> => {
  const end = args.includes("--") ? args.indexOf("--") : args.length
  const spelled = (arg: string): ReadonlyArray<string> => {
    if (arg === "--n") return ["-n"]
    const short = /^--?([A-Za-z])=([\s\S]*)$/.exec(arg)
    if (short === null || (arg.startsWith("--") && short[1] !== "n")) return [arg]
    return [`-${short[1]}`, short[2]!]
  }
  return args.flatMap((arg, i) => (i < end ? spelled(arg) : [arg]))
}

const argv = [
  ...process.argv.slice(0, 2),
  ...repeatedOptionsSplit(skyrl, globalOptionsFirst(dashN(process.argv.slice(2))))
]

/** @effect/cli writes its help and usage errors in ANSI colours: plain text under NO_COLOR or into a pipe or file. */
// @effect/printer-ansi's codes all start by resetting (0): other text on stdout (a report quoting a row) stays as it is.
const ANSI = /\x1b\[0(?:;\d+)*m/g
const plainOn = (stream: NodeJS.WriteStream) => (process.env.NO_COLOR ?? "") !== "" || stream.isTTY !== true
const plain = <R>(on: boolean, write: (...args: ReadonlyArray<unknown>) => R) => (...args: ReadonlyArray<unknown>) =>
  write(...(on ? args.map((a) => (typeof a === "string" ? a.replace(ANSI, "") : a)) : args))
const args = argv.slice(2)
const help = args.slice(0, args.includes("--") ? args.indexOf("--") : undefined).some((a) =>
  a === "--help" || a === "-h"
)
/** A subcommand's help gives its usage as `$ skyrl convert ...`, not @effect/cli's `$ convert ...`. */
const usage = help ? fullUsage(skyrl, args) : (text: string) => text
const plainConsole = (console: Console.Console): Console.Console => ({
  ...console,
  log: plain(
    plainOn(process.stdout),
    (...lines) => console.log(...lines.map((l) => typeof l === "string" ? usage(l) : l))
  ),
  // @effect/cli's usage errors (its only use of it), as every other failure's final line: `skyrl: ...`,
  // a JSON line with --log-format json.
  error: (...parts) =>
    Effect.sync(() =>
      void finalError(
        namingFlag(
          args,
          leftoverArgument(skyrl, args, parts.map((p) => String(p).replace(ANSI, "")).join(" ").trimEnd()),
          undefined,
          skyrl
        )
      )
    )
})
const finalError = (message: string) =>
  process.stderr.write(
    finalErrorLine(envValueMessage(message), jsonLogsRequested(process.argv, process.env), new Date())
  )

// An option the command lacks is a usage error named as such (@effect/cli's message names another option), and so
// is a `-` given as a path (it read as an option before a required one), and an option given twice.
const unknown = unknownOption(skyrl, args) ?? globalOptionWithoutValue(args) ?? dashPath(skyrl, args) ??
  givenTwice(skyrl, args)
const run = unknown === undefined ? cli(argv) : Effect.sync(() => {
  finalError(unknown)
  process.exit(2)
})

Effect.consoleWith((console) => Effect.withConsole(run, plainConsole(console))).pipe(
  Effect.tapErrorCause((cause) =>
    Effect.sync(() => {
      if (Cause.isInterruptedOnly(cause)) return
      const failure = Cause.failureOption(cause)
      // @effect/cli has already printed usage errors with the help text.
      if (failure._tag === "Some" && ValidationError.isValidationError(failure.value)) return
      // A path check that failed (`--cassettes file/sub`: ENOTDIR) names the flag given that path.
      finalError(namingFlag(args, describeCause(cause, process.argv.includes("debug")), undefined, skyrl))
    })
  ),
  // Ctrl-C interrupts the program from outside (no error to tap): say so, and how to continue.
  Effect.onInterrupt(() =>
    Effect.sync(() =>
      process.stderr.write(
        finalErrorLine(
          interruptedMessage(process.argv, process.env, batchRunDir()),
          jsonLogsRequested(process.argv, process.env),
          new Date()
        )
      )
    )
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    disablePrettyLogger: true,
    teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) ? 0 : exitCodeOf(exit.cause, stopSignal))
  })
)

// runMain interrupts the program on the first SIGINT or SIGTERM (its listener, added just now). A run that can stop
// gracefully (generate and enrich while they make samples: StopRequests) is asked first: it makes no new model call
// and keeps the answers of those in flight, then ends with the signal's code; the next signal, or the first when
// no run listens, goes to runMain's listener and interrupts at once; the one after ends the process (the signal's
// default action, raised again with no listener left).
const interruptNow = process.listeners("SIGINT")
for (const listener of interruptNow) {
  process.removeListener("SIGINT", listener)
  process.removeListener("SIGTERM", listener)
}
// One Ctrl-C can arrive twice: at a terminal it signals the whole foreground process group, and a wrapper in it
// that forwards the signal to its child (`npm run skyrl -- ...`, `npx`: npm forwards SIGINT and SIGTERM; with a
// shell that execs the command, as bash does, skyrl is npm's child) sends it again a few milliseconds later. The
// same signal within SAME_PRESS_MS of the last one that took effect is taken for that one.
const SAME_PRESS_MS = 250
let stage: "running" | "stopping" | "interrupting" = "running"
let last: { readonly signal: StopSignal; readonly at: number } | undefined
const onSignal = (signal: StopSignal) => {
  const now = Date.now()
  if (last !== undefined && signal === last.signal && now - last.at < SAME_PRESS_MS) return
  stopSignal ??= signal
  last = { signal, at: now }
  if (stage === "running" && processStopRequests.request(signal)) {
    stage = "stopping"
    return
  }
  if (stage !== "interrupting") {
    stage = "interrupting"
    for (const listener of interruptNow) listener(signal)
    return
  }
  process.removeListener("SIGINT", onSignal)
  process.removeListener("SIGTERM", onSignal)
  process.kill(process.pid, signal)
}
process.on("SIGINT", onSignal)
process.on("SIGTERM", onSignal)
