/** Finds a Python with HuggingFace `datasets` (created by scripts/setup-python.sh into .venv). */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { runChild } from "./child.js"

export const ROOT = join(import.meta.dirname, "..", "..")

export const datasetsPython = async (): Promise<string | undefined> => {
  const candidates = [process.env.SKYRL_PYTHON, join(ROOT, ".venv", "bin", "python")].filter(
    (p): p is string => p !== undefined && p !== "" && existsSync(p)
  )
  // Asynchronous: importing datasets takes seconds.
  for (const p of candidates) if ((await runChild(p, ["-c", "import datasets"])).status === 0) return p
  return undefined
}

/**
 * Loads files as SkyRL does (scripts/load_with_datasets.py) and returns the rows as loaded, or with
 * `decode` as the README's `plan_from_extras` decodes them. Asynchronous: each load takes seconds, and a
 * test worker blocked that long in a row misses vitest's RPC deadline (60 s), an unhandled error.
 */
export const loadWithDatasets = (python: string, files: ReadonlyArray<string>, decode = false): Promise<Array<any>> =>
  new Promise((resolve, reject) => {
    const args = [join(ROOT, "scripts", "load_with_datasets.py"), ...(decode ? ["--decode"] : []), ...files]
    const child = spawn(python, args, { stdio: ["ignore", "pipe", "pipe"] })
    const out: Array<Buffer> = []
    const err: Array<Buffer> = []
    child.stdout.on("data", (b: Buffer) => out.push(b))
    child.stderr.on("data", (b: Buffer) => err.push(b))
    child.on("error", reject)
    child.on("close", (status) => {
      if (status !== 0) {
        return reject(new Error(`datasets failed to load ${files.join(", ")}:\n${Buffer.concat(err).toString("utf8")}`))
      }
      const text = Buffer.concat(out).toString("utf8")
      resolve(text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l)))
    })
  })
