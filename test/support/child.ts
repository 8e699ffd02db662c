/**
 * Runs a child process asynchronously. Tests use this rather than spawnSync/execFileSync for anything
 * that takes more than a moment: a test worker blocked in a synchronous child cannot answer vitest's
 * RPC, and past its fixed 60 s deadline the run fails ("Timeout calling onTaskUpdate") though every
 * test passed.
 */
import { spawn } from "node:child_process"

export interface ChildResult {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
  /** The child's pid (it has exited and been reaped when the promise resolves). */
  readonly pid: number | undefined
}

/**
 * Resolves when the child has exited and its output is closed (as spawnSync returns). With `timeoutMs`,
 * a child still running then is sent SIGTERM, and SIGKILL 5 s later if it is still there (or a process
 * it started still holds its output open); it resolves with status null and a note on stderr.
 */
export const runChild = (
  command: string,
  args: ReadonlyArray<string>,
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}
): Promise<ChildResult> =>
  new Promise((resolve) => {
    const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let note = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    const timers: Array<NodeJS.Timeout> = []
    const finish = (status: number | null) => {
      timers.forEach(clearTimeout)
      resolve({ status: note === "" ? status : null, stdout, stderr: stderr + note, pid: child.pid })
    }
    const { timeoutMs } = options
    if (timeoutMs !== undefined) {
      timers.push(setTimeout(() => {
        note = `\n[${command} ${args.join(" ")}: still running after ${timeoutMs / 1000} s; killed]\n`
        child.kill("SIGTERM")
        timers.push(setTimeout(() => {
          child.kill("SIGKILL")
          child.stdout.destroy()
          child.stderr.destroy()
          finish(null)
        }, 5_000))
      }, timeoutMs))
    }
    child.on("error", (e) => {
      note += `\n[${command}: ${e.message}]\n`
      finish(null)
    })
    child.on("close", (status) => finish(status))
  })
