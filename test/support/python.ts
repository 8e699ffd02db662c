/** Finds a Python with HuggingFace `datasets` (created by scripts/setup-python.sh into .venv). */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"

export const ROOT = join(import.meta.dirname, "..", "..")

export const datasetsPython = (): string | undefined => {
  const candidates = [process.env.SKYRL_PYTHON, join(ROOT, ".venv", "bin", "python")].filter(
    (p): p is string => p !== undefined && p !== "" && existsSync(p)
  )
  return candidates.find((p) => spawnSync(p, ["-c", "import datasets"], { stdio: "ignore" }).status === 0)
}

/**
 * Loads files as SkyRL does (scripts/load_with_datasets.py) and returns the rows as loaded, or with
 * `decode` as the README's `plan_from_extras` decodes them.
 */
export const loadWithDatasets = (python: string, files: ReadonlyArray<string>, decode = false): Array<any> => {
  const r = spawnSync(python, [
    join(ROOT, "scripts", "load_with_datasets.py"),
    ...(decode ? ["--decode"] : []),
    ...files
  ], {
    encoding: "utf8",
    maxBuffer: 1 << 28
  })
  if (r.status !== 0) throw new Error(`datasets failed to load ${files.join(", ")}:\n${r.stderr}`)
  return r.stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
}
