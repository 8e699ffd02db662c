// Bundles src/bin.ts into dist/bin.js: one CommonJS file, loaded by bin/bundle.js (not by Node's module
// loader), whose modules only some commands use are initialized when first imported; and makes V8's code
// caches for it (dist/bin.js.<family>.cache).
import { build } from "esbuild"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync
} from "node:fs"
import { createServer } from "node:http"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { BUILD_INPUTS, buildStamp, cacheFile, compileBundle } from "../bin/bundle.js"
import { holdBuildLock } from "./buildLock.mjs"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")

/**
 * Packages that modules every command imports import in turn, but that run only on some paths: effect's
 * Schema imports fast-check (for `Arbitrary`, which skyrl does not use) and @effect/cli imports yaml, toml and
 * ini (for configuration files, which skyrl does not read). Each is bundled behind a module of getters
 * that initializes it on first use instead of at every start (~240 modules, and their bytecode in every
 * code cache).
 */
const LAZY = ["fast-check", "yaml", "toml", "ini"]
const require = createRequire(join(root, "package.json"))
const lazyPackages = {
  name: "lazy-packages",
  setup(b) {
    const filter = new RegExp(`^(${LAZY.join("|")})$`)
    b.onResolve({ filter }, (args) => args.namespace === "lazy" ? undefined : { path: args.path, namespace: "lazy" })
    b.onLoad({ filter: /.*/, namespace: "lazy" }, (args) => ({
      // `require` of an ES module inside a function: esbuild initializes it when the function runs.
      contents: `let real
const load = () => (real ??= require(${JSON.stringify(args.path)}))
for (const name of ${JSON.stringify(Object.keys(require(args.path)))}) {
  Object.defineProperty(exports, name, { enumerable: true, get: () => load()[name] })
}
`,
      resolveDir: root,
      loader: "js"
    }))
  }
}
const bundle = join(root, "dist", "bin.js")

/**
 * What dist/ is made from: the sources, the loader, this script, the locked packages, the data the code caches
 * are made with, and Node itself (its V8 stamps the caches). `npm ci` builds (prepare) and `npm test` builds
 * again: when these are what the last build was made from, the second build is skipped (~12-20 s of CI).
 * `SKYRL_BUILD=always` builds anyway. The stamp's time is set to when the inputs were hashed, by a build and by a
 * check that skips one: `npm run skyrl` builds first when an input is newer (bin/bundle.js, `buildIsStale`).
 */
const filesUnder = (rel) => {
  const at = join(root, rel)
  if (!existsSync(at)) return []
  if (!statSync(at).isDirectory()) return [rel]
  return readdirSync(at, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) =>
    join(e.parentPath ?? e.path, e.name).slice(root.length + 1)
  )
}
const inputsHash = () => {
  const hash = createHash("sha256").update(`${process.version} ${process.arch}\n`)
  for (const file of BUILD_INPUTS.flatMap(filesUnder).sort()) {
    hash.update(`${file}\n`).update(readFileSync(join(root, file)))
  }
  return hash.digest("hex")
}
// One build at a time (a second waits, then finds dist/ up to date).
await holdBuildLock(root)
const stamp = buildStamp(root)
const hashedAt = new Date()
const inputs = inputsHash()
if (
  process.env.SKYRL_BUILD !== "always" && existsSync(bundle) && existsSync(stamp) &&
  readFileSync(stamp, "utf8") === inputs
) {
  utimesSync(stamp, hashedAt, hashedAt)
  console.log("dist/ is up to date (made from these sources, packages and Node); SKYRL_BUILD=always builds anyway")
  process.exit(0)
}
rmSync(join(root, "dist"), { recursive: true, force: true })
await build({
  absWorkingDir: root,
  entryPoints: ["src/bin.ts"],
  outfile: bundle,
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  sourcemap: true,
  packages: "bundle",
  external: ["@modelcontextprotocol/server-*"],
  // Modules find the files that ship with skyrl from their own location (dist/).
  define: { "import.meta.url": "__skyrlModuleUrl" },
  banner: { js: "const __skyrlModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [lazyPackages],
  // Whitespace and syntax minified, names kept (stack traces and profiles still name functions; the
  // source map gives files and lines: `node --enable-source-maps bin/skyrl.js`): 6.2 → 4.2 MB, which every
  // start reads, decodes and hands to V8 with its code cache (~35 ms less CPU a start, `--version` 0.44 →
  // 0.40 s on 2 CPUs).
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: "warning"
})

// bin/bundle.js reads the bundle as latin1 (cheaper than UTF-8): esbuild escapes strings and identifiers
// to ASCII, so what is left is in comments, which this escapes too.
const text = readFileSync(bundle, "utf8")
if (/[^\x00-\x7f]/.test(text)) {
  writeFileSync(bundle, text.replace(/[^\x00-\x7f]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`))
}

// o200k_base's vocabulary as the byte table the BPE count reads (src/skyrl/bpeTable.ts, o200k.ts), made
// from gpt-tokenizer's ranks: at run time a file read instead of building the library's encoder. Without
// it (or when the ranks do not fit a table) the count makes the table, or uses the library, at each start.
{
  const maker = await build({
    absWorkingDir: root,
    entryPoints: ["src/skyrl/bpeTable.ts"],
    bundle: true,
    format: "esm",
    platform: "node",
    write: false,
    logLevel: "warning"
  })
  const { makeTable, serializeTable } = await import(
    `data:text/javascript;base64,${Buffer.from(maker.outputFiles[0].contents).toString("base64")}`
  )
  const ranks = require("gpt-tokenizer/bpeRanks/o200k_base").default
  const table = makeTable(ranks)
  if (table === undefined) console.warn("warning: gpt-tokenizer's o200k_base ranks do not fit a byte table")
  else writeFileSync(join(root, "dist", "o200k_base.bpe"), serializeTable(table))
}

/**
 * The code caches, one per command family (bin/bundle.js picks one by the command in argv): a run
 * deserializes only the bytecode of what its kind of command runs, not every command's (one cache made
 * from all of them was 9 MB, ~90 ms of CPU to deserialize at each start, where `--help` needs 3 MB). Each
 * is made by running the CLI offline, each run starting from the cache the one before wrote and adding the
 * functions it compiled: `--help` (start-up; also the cache of the commands without their own);
 * `generate` with the bundled recorded answers, then with the openai SDK against a local server answering
 * every request with one of them; `convert` of the recorded tasks; `validate` of the generated rows.
 */
const work = mkdtempSync(join(tmpdir(), "skyrl-build-"))
const rows = join(work, "rows.jsonl")
const liveRows = join(work, "live.jsonl")
const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith("OPENAI_") && !k.startsWith("SKYRL_"))
)
const recorded = readFileSync(join(root, "data", "replay", "example_0001.json"))
const server = createServer((req, res) => {
  req.resume()
  req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(recorded))
})
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
const live = { OPENAI_API_KEY: "sk-build", OPENAI_BASE_URL: `http://127.0.0.1:${server.address().port}/v1` }
/** Family → its runs ([args, env, may it fail]), in the order they run (validate reads generate's rows). */
const families = {
  default: [[["--help"]]],
  generate: [
    [["generate", "-n", "12", "--llm", "replay", "--out", rows]],
    // Exit 1 (the one recorded answer does not fit what the samples ask for: every attempt is rejected);
    // what counts is the code it ran (the SDK, the live transport, answers read and judged).
    [
      ["generate", "-n", "2", "--llm", "openai", "--backend", "chat", "--subjects", "none", "--out", liveRows],
      live,
      true
    ]
  ],
  convert: [[[
    "convert",
    join(root, "data", "examples", "recorded-tasks.jsonl"),
    "--out",
    join(work, "converted.jsonl")
  ]]],
  validate: [[["validate", rows]]]
}
const run = (args, env, cache) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, "bin", "skyrl.js"), ...args], {
      cwd: work,
      env: { ...cleanEnv, ...env, SKYRL_CODE_CACHE_WRITE: cache, NO_COLOR: "1" },
      stdio: ["ignore", "ignore", "pipe"]
    })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, stderr }))
  })
// Without a cache the CLI works as well, compiling the bundle at each start (~0.25 s of CPU more): a
// failure here is a warning, not a failed build (nor a failed `npm ci`).
try {
  for (const [family, runs] of Object.entries(families)) {
    const cache = join(work, `${family}.cache`)
    for (const [args, env = {}, mayFail = false] of runs) {
      const r = await run(args, env, cache)
      if (r.status !== 0 && !mayFail) throw new Error(`skyrl ${args.join(" ")} exited with ${r.status}\n${r.stderr}`)
    }
    if (!compileBundle(cache).cached) throw new Error(`V8 rejects the code cache it made (${family})`)
    renameSync(cache, cacheFile(family))
  }
} catch (e) {
  console.warn(`warning: no code cache for dist/bin.js (the CLI compiles it at each start): ${e.message ?? e}`)
} finally {
  server.close()
  rmSync(work, { recursive: true, force: true })
}
writeFileSync(stamp, inputs)
utimesSync(stamp, hashedAt, hashedAt)
