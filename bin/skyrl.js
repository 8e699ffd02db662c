#!/usr/bin/env node
// Entry point: the bundled CLI (built by `npm ci`/`npm run build` into dist/), loaded with its code cache.
import { runBundle } from "./bundle.js"

runBundle()
