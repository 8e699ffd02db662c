/** Runs the built CLI (bin/skyrl.js → dist/) as a child process. `npm test` builds first. */
import { spawn, spawnSync } from "node:child_process"
import { join } from "node:path"
import { ROOT } from "./python.js"

export const BIN = join(ROOT, "bin", "skyrl.js")

export interface CliResult {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Environment without OpenAI variables, plus overrides. */
export const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const k of Object.keys(env)) if (k.startsWith("OPENAI_") || k.startsWith("SKYRL_")) delete env[k]
  return { ...env, NO_COLOR: "1", ...extra }
}

export const runCli = (args: ReadonlyArray<string>, options: { env?: Record<string, string>; cwd?: string } = {}) =>
  spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: cleanEnv(options.env),
    cwd: options.cwd ?? ROOT,
    timeout: 120_000
  }) as CliResult

/** Async variant (for tests that talk to an in-process fake server while the CLI runs). */
export const runCliAsync = (
  args: ReadonlyArray<string>,
  options: { env?: Record<string, string>; cwd?: string } = {}
): Promise<CliResult> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(options.env), cwd: options.cwd ?? ROOT })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })
