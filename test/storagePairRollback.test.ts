/**
 * Storage's writes of two files together (split's train and val, convert's dataset and rejects file): when the
 * second rename fails, the first file is put back as it was, so the pair is never the new first file beside the old
 * second. The failure here is real: the second target becomes a directory with a file in it between staging and
 * commit, so its rename fails with EISDIR.
 */
import { Effect, Either, Stream } from "effect"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Storage, StorageLive } from "../src/services/Storage.js"
import { RowJson } from "../src/skyrl/layout.js"

const rowsOf = (text: string) => Stream.make(new RowJson(JSON.stringify({ text })))

/** Makes `file` a directory holding a file, so that a rename over it fails. */
const blockRename = (file: string) => {
  mkdirSync(file)
  writeFileSync(join(file, "inside"), "x")
}

const run = <A, E>(effect: Effect.Effect<A, E, Storage>) =>
  Effect.runPromise(Effect.either(Effect.provide(effect, StorageLive)))

/** The directory's entries besides the ones named. */
const others = (dir: string, ...names: Array<string>) => readdirSync(dir).filter((n) => !names.includes(n)).sort()

/** writeRowStreams of a new train and val whose val becomes a directory before the commit. */
const writeBlocked = (train: string, val: string) =>
  run(
    Effect.flatMap(Storage, (s) =>
      s.writeRowStreams([{ file: train, rows: rowsOf("new train") }, { file: val, rows: rowsOf("new val") }], {
        beforeCommit: Effect.sync(() =>
          blockRename(val)
        )
      }))
  )

describe("two files written together: a failed second rename", () => {
  it("writeRowStreams puts the first file back byte for byte and names the file whose rename failed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-pair-"))
    const [train, val] = [join(dir, "t.jsonl"), join(dir, "v.jsonl")]
    writeFileSync(train, "old train\n")
    const result = await writeBlocked(train, val)
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left).toMatchObject({ _tag: "StorageError", path: val })
      expect(String((result.left as { reason: string }).reason)).toMatch(/directory/)
      expect(String((result.left as { reason: string }).reason)).not.toMatch(/not put back/)
    }
    expect(readFileSync(train, "utf8")).toBe("old train\n")
    expect(others(dir, "t.jsonl", "v.jsonl")).toEqual([])
  })

  it("writeRowStreams removes a first file that was not there before", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-pair-"))
    const [train, val] = [join(dir, "t.jsonl"), join(dir, "v.jsonl")]
    const result = await writeBlocked(train, val)
    expect(Either.isLeft(result)).toBe(true)
    expect(others(dir, "v.jsonl")).toEqual([])
  })

  it("writeRows with a companion (convert's rejects file) puts the dataset back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-pair-"))
    const [out, rejects] = [join(dir, "out.jsonl"), join(dir, "out.rejects.jsonl")]
    writeFileSync(out, "old dataset\n")
    const result = await run(
      Effect.flatMap(Storage, (s) =>
        s.writeRows(out, [new RowJson(JSON.stringify({ text: "new" }))], {
          companion: {
            file: rejects,
            text: () => {
              blockRename(rejects)
              return "new rejects\n"
            }
          }
        }))
    )
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left).toMatchObject({ _tag: "StorageError", path: rejects })
    expect(readFileSync(out, "utf8")).toBe("old dataset\n")
    expect(others(dir, "out.jsonl", "out.rejects.jsonl")).toEqual([])
  })

  it("both renames succeeding leave both new and no link of the old file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-pair-"))
    const [train, val] = [join(dir, "t.jsonl"), join(dir, "v.jsonl")]
    writeFileSync(train, "old train\n")
    writeFileSync(val, "old val\n")
    const result = await run(
      Effect.flatMap(
        Storage,
        (s) => s.writeRowStreams([{ file: train, rows: rowsOf("new train") }, { file: val, rows: rowsOf("new val") }])
      )
    )
    expect(result).toEqual(Either.right([1, 1]))
    expect([readFileSync(train, "utf8"), readFileSync(val, "utf8")]).toEqual([
      JSON.stringify({ text: "new train" }) + "\n",
      JSON.stringify({ text: "new val" }) + "\n"
    ])
    expect(others(dir, "t.jsonl", "v.jsonl")).toEqual([])
  })
})
