// Bundles src/bin.ts into dist/ (ESM, code-split so heavy modules load only in the commands that use them).
import { build } from "esbuild"
import { rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
rmSync(join(root, "dist"), { recursive: true, force: true })
await build({
  absWorkingDir: root,
  entryPoints: { bin: "src/bin.ts" },
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: true,
  packages: "bundle",
  external: ["@modelcontextprotocol/server-*"],
  banner: {
    js:
      "import { createRequire as __skyrlCreateRequire } from 'node:module'; const require = __skyrlCreateRequire(import.meta.url);"
  },
  logLevel: "warning"
})
