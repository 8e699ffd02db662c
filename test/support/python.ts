/** Finds a Python with HuggingFace `datasets` (created by scripts/setup-python.sh into .venv). */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { createInterface } from "node:readline"

export const ROOT = join(import.meta.dirname, "..", "..")

type Answer = { readonly rows: Array<any> } | { readonly error: string }
type Loader = (files: ReadonlyArray<string>, decode: boolean) => Promise<Answer>

/**
 * Starts test/support/datasets_loader.py: one Python process per test worker imports `datasets` once
 * (~2 s of CPU) and loads every request with scripts/load_with_datasets.py's own function, one at a time,
 * in order. Undefined when this Python has no `datasets` (or does not run). It exits when the worker does
 * (its input closes).
 */
const startLoader = (python: string): Promise<Loader | undefined> =>
  new Promise((resolve) => {
    const child = spawn(python, [join(ROOT, "test", "support", "datasets_loader.py")], {
      stdio: ["pipe", "pipe", "pipe"]
    })
    const waiting: Array<(answer: Answer) => void> = []
    let stderr = ""
    let ready = false
    let gone: string | undefined
    const send: Loader = (files, decode) =>
      new Promise((answer) => {
        if (gone !== undefined) return answer({ error: gone })
        waiting.push(answer)
        child.stdin.write(JSON.stringify({ files, decode }) + "\n")
      })
    child.stdin.on("error", () => {}) // a loader that exited: its "close" answers what waits
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-20_000)))
    let missing = false
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (ready) return waiting.shift()?.(JSON.parse(line))
      missing = "missing" in JSON.parse(line)
      ready = !missing
      if (ready) resolve(send)
    })
    const exited = (status: number | null) => `the datasets loader exited (${status}):\n${stderr}`
    child.on("error", () => resolve(undefined))
    child.on("close", (status) => {
      gone = exited(status)
      // A Python without `datasets` is not this one; a loader that fails otherwise fails every load.
      if (!ready) return resolve(missing ? undefined : send)
      for (const answer of waiting.splice(0)) answer({ error: gone })
    })
    // Neither the loader nor its pipes keep the worker alive.
    child.unref()
    for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref(): void }).unref()
  })

const loaders = new Map<string, Promise<Loader | undefined>>()
const loaderOf = (python: string) => {
  if (!loaders.has(python)) loaders.set(python, startLoader(python))
  return loaders.get(python)!
}

/** The first Python (SKYRL_PYTHON, then .venv's) that imports `datasets`; its loader is then running. */
export const datasetsPython = async (): Promise<string | undefined> => {
  const candidates = [process.env.SKYRL_PYTHON, join(ROOT, ".venv", "bin", "python")].filter(
    (p): p is string => p !== undefined && p !== "" && existsSync(p)
  )
  for (const p of candidates) if ((await loaderOf(p)) !== undefined) return p
  return undefined
}

/**
 * Loads files as SkyRL does (scripts/load_with_datasets.py's `loaded`, in the worker's loader process) and
 * returns the rows as loaded, or with `decode` as the README's `plan_from_extras` decodes them. Rejects
 * with the Python traceback when `datasets` fails. Asynchronous: a load takes a moment, and a test worker
 * blocked in a row misses vitest's RPC deadline (60 s), an unhandled error.
 */
export const loadWithDatasets = async (
  python: string,
  files: ReadonlyArray<string>,
  decode = false
): Promise<Array<any>> => {
  const load = await loaderOf(python)
  if (load === undefined) throw new Error(`${python} cannot import datasets`)
  const answer = await load(files, decode)
  if ("error" in answer) throw new Error(`datasets failed to load ${files.join(", ")}:\n${answer.error}`)
  return answer.rows
}

/**
 * The same load as `loadWithDatasets`, by running scripts/load_with_datasets.py as its own process (its
 * command line and output, one JSON row per line): seconds per call, for the test of the script itself.
 */
export const loadWithDatasetsScript = (
  python: string,
  files: ReadonlyArray<string>,
  decode = false
): Promise<Array<any>> =>
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
