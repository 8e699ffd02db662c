/** The built CLI as a child process to send signals to (graceful-stop tests). */
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { BIN, cleanEnv } from "./cli.js"

/** Waits until `what()` holds (polling every 20 ms), failing after `ms`. */
export const until = async (what: () => boolean, ms = 30_000) => {
  const t0 = Date.now()
  while (!what()) {
    if (Date.now() - t0 > ms) throw new Error("timed out waiting")
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export interface StartedCli {
  readonly child: ChildProcess
  stderr: string
  readonly code: Promise<number | null>
  /** The signal that ended the process, when one did (no handler left for it). */
  readonly signal: Promise<NodeJS.Signals | null>
}

/** The CLI as a child process, its stderr collected, and its exit code once it closes. */
export const started = (
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  options: { readonly group?: boolean } = {}
): StartedCli => {
  // group: the CLI leads a process group of its own, as a terminal's foreground job (`ctrlC` signals all of it).
  const child: ChildProcess = spawn(process.execPath, [BIN, ...args], {
    env: cleanEnv(env),
    stdio: "pipe",
    detached: options.group === true
  })
  return watched(child)
}

/** A spawned child as a `StartedCli`: its stderr collected, its exit code and ending signal once it closes. */
export const watched = (child: ChildProcess): StartedCli => {
  const closed = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on("close", (code, signal) => resolve([code, signal]))
  )
  const run: StartedCli = {
    child,
    stderr: "",
    code: closed.then(([code]) => code),
    signal: closed.then(([, signal]) => signal)
  }
  child.stderr!.on("data", (d) => (run.stderr += d))
  return run
}

/** A gate a fake's handler awaits; `release()` lets every waiting answer go. */
export const gate = () => {
  let release!: () => void
  const opened = new Promise<void>((resolve) => (release = resolve))
  return { opened, release }
}

/** The run's exit code, or a failure with its stderr when it has not ended within `ms` (then it is killed). */
export const ended = async (run: StartedCli, ms = 40_000): Promise<number | null> => {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), ms)))
  const code = await Promise.race([run.code, late])
  clearTimeout(timer)
  if (code === "late") {
    run.child.kill("SIGKILL")
    throw new Error(`the run did not end within ${ms} ms; stderr:\n${run.stderr}`)
  }
  return code
}

/** Ctrl-C at a terminal: SIGINT to the CLI's whole process group (its MCP servers too); `started` with `group`. */
export const ctrlC = (run: StartedCli) => process.kill(-run.child.pid!, "SIGINT")

/** Sends `signal` and waits for the graceful stop's warning (`SIGINT: stopping: ...`). */
export const askStop = async (run: StartedCli, signal: NodeJS.Signals = "SIGINT") => {
  run.child.kill(signal)
  await until(() => run.stderr.includes(`${signal}: stopping`))
}

/**
 * Sends `signal` twice, `gapMs` apart, as a wrapper forwarding a terminal's Ctrl-C does. The gap is waited for
 * synchronously: a timer in a loaded test worker can fire hundreds of ms late, past the 0.25 s in which src/bin.ts
 * takes the repeat for the same press (CI of 21f8dd1 failed so).
 */
export const signalTwice = (run: StartedCli, signal: NodeJS.Signals, gapMs: number) => {
  run.child.kill(signal)
  const from = performance.now()
  while (performance.now() - from < gapMs) {
    // the gap, with no await in which the worker could be held up
  }
  run.child.kill(signal)
}

/**
 * Sends `signal` as a press of its own: after the 0.25 s in which src/bin.ts takes a repeat of the last signal for
 * the same press (a wrapper's forward of a terminal's Ctrl-C).
 */
export const pressAgain = async (run: StartedCli, signal: NodeJS.Signals = "SIGINT") => {
  await pause(300)
  run.child.kill(signal)
}
