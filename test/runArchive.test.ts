/**
 * The run archive's logs (src/services/runArchive.ts): records found by sample with their byte spans, a
 * record cut by a crash (the last line, or the last gzip member) is not one, each record read back alone.
 */
import { Effect } from "effect"
import { gunzipSync, gzipSync } from "node:zlib"
import { describe, expect, it } from "vitest"
import { callRefInRunDir, encodeLogRecord, readArchivedRecord, readArchiveIndex } from "../src/services/runArchive.js"
import { Storage } from "../src/services/Storage.js"
import { makeMemoryStorage } from "./support/memoryStorage.js"

const DIR = "/runs/raw_llm/run-1"
const record = (sample: number, call: number) => ({
  key: `sample-${String(sample).padStart(6, "0")}`,
  status: "ok",
  request: { input: [{ role: "user", content: `Sample ${sample + 1}: café ✓` }] },
  sample,
  call
})
const name = (sample: number, call: number) => `task_${String(sample + 1).padStart(4, "0")}_c0${call}.json`

const indexOf = (files: Record<string, string | Uint8Array>) => {
  const storage = makeMemoryStorage()
  for (const [f, v] of Object.entries(files)) storage.files.set(`${DIR}/${f}`, v)
  return Effect.runPromise(
    Effect.gen(function*() {
      const index = yield* readArchiveIndex(DIR)
      const read = new Map<string, unknown>()
      for (const calls of index.bySample.values()) {
        for (const c of calls) read.set(c.file.slice(DIR.length + 1), yield* readArchivedRecord(c))
      }
      return { index, read }
    }).pipe(Effect.provideService(Storage, storage.api))
  )
}

describe("archive logs", () => {
  for (const gzip of [false, true]) {
    it(`${gzip ? "gzip" : "plain"}: every whole record by sample, read back alone; a record cut at the end is not one`, async () => {
      const parts = [[0, 1], [1, 1], [0, 2], [2, 1]].map(([s, c]) => encodeLogRecord(name(s, c), record(s, c), gzip))
      const bytes = Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : p)))
      const last = parts.at(-1)!
      const cut = bytes.subarray(
        0,
        bytes.length - Math.floor((typeof last === "string" ? Buffer.byteLength(last) : last.length) / 2)
      )
      const log = `archive_01.jsonl${gzip ? ".gz" : ""}`
      if (gzip) expect(gunzipSync(bytes).toString("utf8").split("\n")).toHaveLength(5) // one gzip stream
      const { index, read } = await indexOf({
        [log]: cut,
        "archive_02.jsonl": "",
        "task_0009_c01.json": JSON.stringify(record(8, 1)),
        "task_0010_c02.json.gz": gzipSync(JSON.stringify(record(9, 2)))
      })
      expect(index.lastLog).toBe(2)
      expect([...index.bySample.keys()].sort((a, b) => a - b)).toEqual([0, 1, 8, 9])
      expect(index.bySample.get(0)!.map((c) => [c.call, c.file, c.key])).toEqual([
        [1, `${DIR}/${log}#${name(0, 1)}`, "sample-000000"],
        [2, `${DIR}/${log}#${name(0, 2)}`, "sample-000000"]
      ])
      expect(read.get(`${log}#${name(0, 2)}`)).toEqual({ name: name(0, 2), ...record(0, 2) })
      expect(read.get(`${log}#${name(1, 1)}`)).toEqual({ name: name(1, 1), ...record(1, 1) })
      expect(read.get("task_0009_c01.json")).toEqual(record(8, 1))
      // A per-call file of older versions, gzipped (`--raw-gzip`): its call number from the name.
      expect(index.bySample.get(9)!.map((c) => [c.call, c.file])).toEqual([[2, `${DIR}/task_0010_c02.json.gz`]])
      expect(read.get("task_0010_c02.json.gz")).toEqual(record(9, 2))
    })
  }
})

describe("callRefInRunDir: a raw_output_path relative to its run directory (the writer re-bases it on the directory now)", () => {
  it("keeps the log and call name, or the per-call file, and drops the directories before them", () => {
    expect(callRefInRunDir("raw_llm/run-1/archive_01.jsonl#task_0007_c02.json")).toBe(
      "archive_01.jsonl#task_0007_c02.json"
    )
    expect(callRefInRunDir("../elsewhere/run-1/archive_12.jsonl.gz#task_0001_c01.json")).toBe(
      "archive_12.jsonl.gz#task_0001_c01.json"
    )
    expect(callRefInRunDir("archive_01.jsonl#task_0003_c04.json")).toBe("archive_01.jsonl#task_0003_c04.json")
    expect(callRefInRunDir("raw_llm/run-1/task_0007_c02.json.gz")).toBe("task_0007_c02.json.gz")
  })

  it("names no call: a text of another form is undefined (kept as it is)", () => {
    for (
      const ref of [
        "raw_llm/run-1/stage_subjects_c01.json",
        "raw_llm/run-1/journal.jsonl#task_0007_c02.json",
        "raw_llm/run-1/archive_01.jsonl#notes.json",
        "raw_llm/run-1/archive_01.jsonl",
        ""
      ]
    ) expect(callRefInRunDir(ref), ref).toBeUndefined()
  })
})
