/**
 * Stdio specs of the MCP servers in node_modules, and a JSON Lines writer: without an import of src/ (a test file
 * that runs only the built CLI need not load the converter that support/verifyRows.ts makes rows with, ~1 s of CPU
 * per file). verifyRows.ts re-exports them.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import type { McpServerSpec } from "../../src/services/McpClient.js"

export const ROOT = join(import.meta.dirname, "..", "..")
export const serverBin = (pkg: string) => join(ROOT, "node_modules", "@modelcontextprotocol", pkg, "dist", "index.js")

export const nodeServer = (name: string, args: ReadonlyArray<string>, env?: Record<string, string>): McpServerSpec => ({
  _tag: "stdio",
  name,
  command: process.execPath,
  args,
  ...(env === undefined ? {} : { env })
})

export const writeJsonl = (file: string, rows: ReadonlyArray<unknown>): string => {
  writeFileSync(file, rows.map((r) => typeof r === "string" ? r : JSON.stringify(r)).join("\n") + "\n")
  return file
}
