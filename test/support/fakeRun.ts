/**
 * Set-up shared by the tests that run the built CLI against the OpenAI-compatible fake: fake-server
 * bookkeeping, the LLM environment, temp directories, reading JSONL outputs and the run directory.
 */
import { mkdtempSync, readdirSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect } from "vitest"
import type { FakeHandler, FakeServer } from "./fakeOpenAI.js"
import { start } from "./fakeOpenAI.js"

export const USAGE = { input: 1500, cached: 1024, output: 700, reasoning: 400 }

/** Starts fakes and closes them all in `afterEach(closeAll)`. */
export const fakes = () => {
  const servers: Array<FakeServer> = []
  return {
    start: async (handler: FakeHandler, latencyMs = 0) => {
      const s = await start(handler, { latencyMs })
      servers.push(s)
      return s
    },
    closeAll: async () => {
      while (servers.length > 0) await servers.pop()!.close()
    }
  }
}

export const tempDir = (prefix = "skyrl-rel-") => mkdtempSync(join(tmpdir(), prefix))

export const llmEnv = (server: FakeServer, key = "sk-test-reliability", extra: Record<string, string> = {}) => ({
  OPENAI_API_KEY: key,
  OPENAI_BASE_URL: server.baseUrl,
  ...extra
})

export const readJsonl = (file: string): Array<any> =>
  readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l))

/** The only run directory under `<dir>/raw_llm`. */
export const runDirIn = (dir: string): string => {
  const raw = join(dir, "raw_llm")
  const runs = readdirSync(raw)
  expect(runs).toHaveLength(1)
  return join(raw, runs[0])
}

/** The only run directory beside the output file `out`. */
export const runDirOf = (out: string): string => runDirIn(join(out, ".."))
