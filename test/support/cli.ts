/** Runs the built CLI (bin/skyrl.js → dist/) as a child process. `npm test` builds first. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
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
  options: { env?: Record<string, string>; cwd?: string; nodeArgs?: ReadonlyArray<string> } = {}
): Promise<CliResult> => {
  const { status, stderr, stdout } = await runChild(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], {
    env: cleanEnv(options.env),
    cwd: options.cwd ?? ROOT,
    timeoutMs: CLI_TIMEOUT_MS
  })
  return { status, stdout, stderr }
}

const sharedRuns = new Map<string, Promise<CliResult>>()

/**
 * `runCli` for a command that reads and writes no file (help, a usage error, `schema`), run once for the same
 * arguments and environment: several tests check the same output, and each CLI start costs ~1 s of CPU. Kept for
 * the worker (test files share workers), as the output depends on neither the test nor the file.
 */
export const runCliShared = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<CliResult> => {
  const key = JSON.stringify([args, env])
  let run = sharedRuns.get(key)
  if (run === undefined) sharedRuns.set(key, run = runCli(args, { env }))
  return run
}

/**
 * Runs the CLI as `runCli` does, with its CPU time (user + system, seconds; scripts/cpu-on-exit.mjs,
 * preloaded). A time bound on CPU time holds on a loaded machine, where wall time can be several times longer.
 */
export const runCliCpu = async (
  args: ReadonlyArray<string>,
  options: { env?: Record<string, string>; cwd?: string } = {}
): Promise<CliResult & { readonly cpuSeconds: number }> => {
  const dir = mkdtempSync(join(tmpdir(), "skyrl-cpu-"))
  const cpuFile = join(dir, "cpu.json")
  try {
    const preload = pathToFileURL(join(ROOT, "scripts", "cpu-on-exit.mjs")).href
    const result = await runCli(args, {
      ...options,
      env: { ...options.env, SKYRL_BENCH_CPU_FILE: cpuFile },
      nodeArgs: ["--import", preload]
    })
    const cpu = JSON.parse(readFileSync(cpuFile, "utf8")) as { user: number; system: number }
    return { ...result, cpuSeconds: (cpu.user + cpu.system) / 1e6 }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
