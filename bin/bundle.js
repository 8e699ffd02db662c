// Loads the bundled CLI (dist/bin.js, one CommonJS file built by scripts/build.mjs) with V8's code cache
// for its command (dist/bin.js.<family>.cache, made at build time): compiling the bundle from source cost
// ~0.25 s of CPU per start; the cache gives V8 the bytecode of the functions a run uses instead, and one
// per command family keeps what a start deserializes to what its command runs. A cache V8 rejects
// (another Node version or V8 flags) or a missing one is ignored and the bundle compiled from source.
import { spawnSync } from "node:child_process"
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { setFlagsFromString } from "node:v8"
import vm from "node:vm"

export const BUNDLE = fileURLToPath(new URL("../dist/bin.js", import.meta.url))

/** What dist/ is made from (relative to the project root): scripts/build.mjs hashes them. */
export const BUILD_INPUTS = [
  "src",
  "bin",
  "scripts/build.mjs",
  "package.json",
  "package-lock.json",
  "data/replay",
  "data/examples"
]
/**
 * The build's stamp: the hash of the inputs dist/ was made from. Its time is when that hash was taken (a build, or
 * a build that found dist/ up to date).
 */
export const buildStamp = (root) => join(root, "dist", ".inputs.sha256")

/**
 * Whether a build input, or a folder of them (a file added or removed), was changed after the stamp's time, or
 * there is no stamp: a `git pull` or an edit since the last build. ~170 stats, ~2 ms.
 */
export const buildIsStale = (root) => {
  const stamp = statSync(buildStamp(root), { throwIfNoEntry: false })
  if (stamp === undefined) return true
  const changed = (path) => {
    const s = statSync(path, { throwIfNoEntry: false })
    if (s === undefined) return false
    if (s.mtimeMs > stamp.mtimeMs) return true
    return s.isDirectory() && readdirSync(path).some((name) => changed(join(path, name)))
  }
  return BUILD_INPUTS.some((rel) => changed(join(root, rel)))
}

/**
 * Builds dist/ first when `buildIsStale` (for `npm run skyrl`, which runs this checkout's CLI: after a `git pull`
 * it ran the build made before it). The build's output goes to stderr; a failed build exits with its status.
 */
export const rebuildIfStale = (root) => {
  if (!buildIsStale(root)) return
  process.stderr.write("skyrl: the sources changed since dist/ was built: building it first (npm run build)\n")
  const r = spawnSync(process.execPath, [join(root, "scripts", "build.mjs")], {
    cwd: root,
    // Not as the `skyrl` script: the build runs the CLI to make its code caches, which would build again.
    env: { ...process.env, npm_lifecycle_event: undefined },
    stdio: ["ignore", 2, 2]
  })
  if (r.status === 0) return
  process.stderr.write(
    `skyrl: the build failed (${r.error?.message ?? r.signal ?? `exit ${r.status}`}); nothing was run\n`
  )
  process.exit(r.signal === "SIGINT" ? 130 : r.status || 1)
}

/** The commands that have a code cache of their own; the others (and `--help`) use the default one. */
const FAMILIES = new Set(["generate", "convert", "validate"])
/** Every top-level command: the first argument naming one is the command (options may come before it). */
const COMMANDS = new Set([...FAMILIES, "verify", "enrich", "batch", "tools", "schema", "cassettes", "rebuild"])

/**
 * Set once the bundle's modules are initialized: the old generation grows by at most this share of its
 * live size before the next full GC (V8's default lets it grow up to 4× while GC is cheap). convert and
 * validate stream rows whose short-lived objects are partly promoted: with the default, the heap filled
 * with that garbage up to ~200 MB before a full GC (peak RSS ~300 MB for a ~45 MB live heap); at 50%,
 * ~180 MB at the same speed. generate's live heap grows with the run instead (the accepted rows, the
 * near-duplicate index): at 50% a 1000-answer run made 6 full GCs (~6% of its CPU), at 100% 3 and the
 * same CPU as V8's default, with a peak RSS of ~185 MB instead of ~220. Read by V8 at each GC, so setting
 * it after start-up takes effect.
 */
const heapGrowing = (family) => `--heap-growing-percent=${family === "generate" ? 100 : 50}`
/**
 * Set for generate before the bundle's modules run: the young generation grows 16× instead of 2× when
 * V8 grows it, so start-up (whose objects nearly all live on) is copied by 5 scavenges instead of 9 and
 * makes no full GC: `generate -n 10` ~50 ms less CPU. Not for the others: `--help` allocates too little to
 * gain (its CPU was the same or ~10 ms more).
 */
const YOUNG_GROWTH = "--semi-space-growth-factor=16"

/**
 * The V8 flags the CLI sets for a command family: `beforeInit` before the bundle's modules run, `afterInit`
 * once they are initialized (bench section 6 starts its `verify` lane with the same).
 */
export const runtimeFlags = (family) => ({
  beforeInit: family === "generate" ? [YOUNG_GROWTH] : [],
  afterInit: [heapGrowing(family)]
})

/** The code cache of a command family. */
export const cacheFile = (family) => `${BUNDLE}.${family}.cache`

/** The family of the command in `args` (the arguments after the script). */
export const familyOf = (args) => {
  const command = args.find((a) => COMMANDS.has(a))
  return command !== undefined && FAMILIES.has(command) ? command : "default"
}

const readCache = (file) => {
  try {
    return readFileSync(file)
  } catch {
    return undefined
  }
}

/**
 * The bundle as a script (the CommonJS wrapper around its text), with the code cache when there is one.
 * The bundle is ASCII (the build checks it), so it is read as latin1: ~20× cheaper than decoding UTF-8.
 */
export const compileBundle = (cache) => {
  const source = readFileSync(BUNDLE, "latin1")
  const cachedData = readCache(cache)
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: BUNDLE,
    cachedData,
    importModuleDynamically: vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER ?? ((specifier) => import(specifier))
  })
  return { script, cached: cachedData !== undefined && !script.cachedDataRejected }
}

/** `compile()`, or, when the bundle is not there (a checkout never built), exit 1 saying how to build it. */
const notBuilt = (compile) => {
  try {
    return compile()
  } catch (e) {
    if (e?.code !== "ENOENT" || e.path !== BUNDLE) throw e
    process.stderr.write(
      `skyrl: ${BUNDLE} is missing: the CLI is not built; run \`npm run build\` (or \`npm ci\`) in ` +
        `${dirname(dirname(BUNDLE))}\n`
    )
    process.exit(1)
  }
}

/**
 * Runs the CLI. With `SKYRL_CODE_CACHE_WRITE=<file>` (used by the build only) the code cache is written
 * there on exit: the bytecode of every function the run compiled or took from the cache it started with.
 */
export const runBundle = () => {
  const out = process.env.SKYRL_CODE_CACHE_WRITE
  const family = familyOf(process.argv.slice(2))
  const { script } = notBuilt(() => compileBundle(out === undefined || out === "" ? cacheFile(family) : out))
  if (out !== undefined && out !== "") {
    process.on("exit", () => {
      // V8 stamps a cache with its flags: undo the ones set below, so that a fresh process accepts it.
      setFlagsFromString("--heap-growing-percent=0")
      setFlagsFromString("--semi-space-growth-factor=2")
      writeFileSync(out, script.createCachedData())
    })
  }
  const flags = runtimeFlags(family)
  for (const flag of flags.beforeInit) setFlagsFromString(flag)
  const module = { exports: {} }
  script.runInThisContext()(module.exports, createRequire(BUNDLE), module, BUNDLE, dirname(BUNDLE))
  for (const flag of flags.afterInit) setFlagsFromString(flag)
}
