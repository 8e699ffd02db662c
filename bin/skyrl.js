#!/usr/bin/env node
// Entry point: the bundled CLI (built by `npm ci`/`npm run build` into dist/).
import "../dist/bin.js"
