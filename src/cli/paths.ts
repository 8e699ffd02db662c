/** Paths of files that ship with skyrl (resolved from the installed package, not the working directory). */
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
/** The project root: src/cli/ in development, dist/ when bundled. */
export const PROJECT_ROOT = here.endsWith(join("src", "cli")) ? join(here, "..", "..") : join(here, "..")
export const DATA_DIR = join(PROJECT_ROOT, "data")
export const DEFAULT_INVENTORY = join(DATA_DIR, "inventory", "finance-mcp.json")
export const DEFAULT_REPLAY_DIR = join(DATA_DIR, "replay")
