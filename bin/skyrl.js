#!/usr/bin/env node
// Entry point: the bundled CLI (built by `npm ci`/`npm run build` into dist/), loaded with its code cache.
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { rebuildIfStale, runBundle } from "./bundle.js"

// `npm run skyrl -- ...` runs this project's script in the project root, whatever directory it was typed in (npm's
// rule; `--prefix DIR` likewise): the paths given are the user's, relative to that directory, which npm passes as
// INIT_CWD. Only for this project's own `skyrl` script: any other caller keeps its working directory. That script
// also builds dist/ first when the sources changed since it was built (`rebuildIfStale`: after a `git pull` it
// ran the old build).
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const { INIT_CWD, npm_lifecycle_event: script, npm_package_json: packageJson } = process.env
if (script === "skyrl" && INIT_CWD && packageJson && resolve(dirname(packageJson)) === root) {
  rebuildIfStale(root)
  process.chdir(INIT_CWD)
}

runBundle()
