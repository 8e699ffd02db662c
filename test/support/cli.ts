/** Runs the built CLI (bin/skyrl.js → dist/) as a child process. `npm test` builds first. */
import { join } from "node:path"
import { runChild } from "./child.js"
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

/** How long one CLI run may take: past it the CLI is killed, and the result has status null and a note on stderr. */
export const CLI_TIMEOUT_MS = 120_000

/**
 * Runs the CLI and resolves when it has exited. Asynchronous (tests await it), so the test worker stays
 * free to answer vitest while the CLI runs, and in-process fake servers can answer the CLI.
 */
export const runCli = async (
  args: ReadonlyArray<string>,
  options: { env?: Record<string, string>; cwd?: string } = {}
): Promise<CliResult> => {
  const { status, stderr, stdout } = await runChild(process.execPath, [BIN, ...args], {
    env: cleanEnv(options.env),
    cwd: options.cwd ?? ROOT,
    timeoutMs: CLI_TIMEOUT_MS
  })
  return { status, stdout, stderr }
}
