/** What the end-to-end batch tests share: fakes closed after each test, the CLI's environment, readers. */
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach } from "vitest"
import type { BatchFake, BatchFakeOptions } from "./fakeBatch.js"
import { startBatchFake } from "./fakeBatch.js"
import type { FakeServer } from "./fakeOpenAI.js"
import { costOfCalls, USAGE } from "./usage.js"

/** Starts fakes that are closed after each test of the file that calls this at its top. */
export const batchFakes = () => {
  const fakes: Array<BatchFake | FakeServer> = []
  afterEach(async () => {
    while (fakes.length > 0) await fakes.pop()!.close()
  })
  return {
    fake: async (options: BatchFakeOptions) => {
      const f = await startBatchFake(options)
      fakes.push(f)
      return f
    },
    keep: <F extends BatchFake | FakeServer>(f: F): F => {
      fakes.push(f)
      return f
    }
  }
}

export { USAGE }

/** The online price of `n` calls of usage `u` (gpt-5-mini, as support/usage.ts prices it). */
export const onlineCost = (u: typeof USAGE, n: number) => costOfCalls(n, u)

export const env = (server: { baseUrl: string }) => ({
  OPENAI_API_KEY: "sk-test-batch",
  OPENAI_BASE_URL: server.baseUrl
})

export const readJsonl = (file: string): Array<any> =>
  readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l))

export const tmpOut = () => join(mkdtempSync(join(tmpdir(), "skyrl-batch-")), "ds.jsonl")

export const FAST = ["--poll-interval", "0.02"]

/** The 1-based sample number a row was made for (the fake writes it into the prompt). */
export const sampleOfRow = (row: any): number => Number(/Sample (\d+) /.exec(row.prompt[1].content)![1])

/** A row without what names its run (the run id, when it was made, where its answer is archived). */
export const withoutRun = (row: any) => {
  const { generated_at: _at, raw_output_path: _raw, run_id: _id, ...meta } = JSON.parse(row.extra_info.task_metadata)
  return { ...row, extra_info: { ...row.extra_info, task_metadata: meta } }
}
