/**
 * Shared helpers of the reliability suite (fake-server set-up re-exported from test/support/fakeRun.ts):
 * reading archive files (gzipped or not), an independent row check (row contract + plan against the
 * inventory), a seeded PRNG, and a file snapshot (bytes + mtime) to prove inputs stay untouched.
 */
import { Either } from "effect"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { existsSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { expect } from "vitest"
import { parseInventoryText } from "../../src/domain/inventory.js"
import { decodeRow } from "../../src/skyrl/layout.js"
import { validatePlan } from "../../src/skyrl/planValidation.js"
import { BIN, cleanEnv } from "../support/cli.js"
import { ROOT } from "../support/python.js"

export const INVENTORY = join(ROOT, "data", "inventory", "finance-mcp.json")

export { fakes, llmEnv, readJsonl, runDirIn, tempDir, USAGE } from "../support/fakeRun.js"

/** Every archived call of a run (its logs, or per-call files of older versions), in name order; a file's text. */
export { archiveRecords, readMaybeGz } from "../support/archive.js"

const inventory = Either.getOrThrow(parseInventoryText(readFileSync(INVENTORY, "utf8"), INVENTORY))

/**
 * Checks rows independently of the command that wrote them: the row contract (decode), a system and a
 * user message, and a plan valid against the finance inventory. Returns one string per problem.
 */
export const rowProblems = (rows: ReadonlyArray<unknown>): Array<string> => {
  const problems: Array<string> = []
  rows.forEach((raw, i) => {
    const decoded = decodeRow(raw)
    if (Either.isLeft(decoded)) {
      problems.push(`row ${i}: ${decoded.left.path}: ${decoded.left.message}`)
      return
    }
    const row = decoded.right
    if (row.prompt.length !== 2 || row.prompt[0].role !== "system" || row.prompt[1].role !== "user") {
      problems.push(`row ${i}: prompt is not [system, user]`)
    }
    const onDisk = (raw as any).reward_spec.ground_truth.tool_sequence as Array<any>
    if (!onDisk.every((s) => typeof s.params === "string")) problems.push(`row ${i}: params are not JSON strings`)
    const steps = row.reward_spec.ground_truth.tool_sequence.map((s) => ({
      step: s.step,
      server: s.server,
      tool: s.tool,
      params: s.params as unknown
    }))
    for (const issue of validatePlan(inventory, steps)) {
      problems.push(`row ${i}: step ${issue.step} ${issue.tool} ${issue.path}: ${issue.message}`)
    }
  })
  return problems
}

export { mulberry32 as prng } from "../../src/skyrl/workPlan.js"

/** Bytes and mtime of a file or directory entry, to show an input was not modified. */
export const snapshot = (file: string) => {
  const st = statSync(file)
  return {
    mtimeMs: st.mtimeMs,
    size: st.size,
    bytes: st.isFile() ? readFileSync(file) : undefined
  }
}

export const expectUnchanged = (file: string, before: ReturnType<typeof snapshot>) => {
  const after = snapshot(file)
  expect(after.mtimeMs, `${file} mtime`).toBe(before.mtimeMs)
  expect(after.size, `${file} size`).toBe(before.size)
  if (before.bytes !== undefined) expect(after.bytes!.equals(before.bytes), `${file} bytes`).toBe(true)
}

/** Spawns the built CLI; resolves `done` with status/signal and the collected output. */
export const spawnCli = (args: ReadonlyArray<string>, env: Record<string, string>) => {
  const child: ChildProcess = spawn(process.execPath, [BIN, ...args], {
    env: cleanEnv(env),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (d) => (stdout += d))
  child.stderr!.on("data", (d) => (stderr += d))
  const done = new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) => child.on("close", (status, signal) => resolve({ status, signal, stdout, stderr }))
  )
  return { child, done }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const exists = existsSync
