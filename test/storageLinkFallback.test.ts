/**
 * Storage's pair commit (`renameAllOrNone`) on a file system without hard links: the old first file is kept by a copy
 * instead, and put back as it was when the second rename fails. `fs.link` is mocked to fail as such file systems
 * fail it (EPERM); the failed second rename is real (its target made a directory before the commit).
 */
import { Effect, Either, Stream } from "effect"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it, vi } from "vitest"
import { Storage, StorageLive } from "../src/services/Storage.js"
import { RowJson } from "../src/skyrl/layout.js"

const links = vi.hoisted(() => ({ tried: 0 }))

vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs/promises")>()
  const link = async () => {
    links.tried++
    throw Object.assign(new Error("EPERM: operation not permitted, link"), { code: "EPERM" })
  }
  return { ...real, default: { ...real, link }, link }
})

const rowsOf = (text: string) => Stream.make(new RowJson(JSON.stringify({ text })))

const write = (train: string, val: string, beforeCommit: () => void) =>
  Effect.runPromise(Effect.either(Effect.provide(
    Effect.flatMap(Storage, (s) =>
      s.writeRowStreams([{ file: train, rows: rowsOf("new train") }, { file: val, rows: rowsOf("new val") }], {
        beforeCommit: Effect.sync(beforeCommit)
      })),
    StorageLive
  )))

describe("pair commit without hard links", () => {
  it("keeps the old first file by a copy and puts it back when the second rename fails", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-nolink-"))
    const [train, val] = [join(dir, "t.jsonl"), join(dir, "v.jsonl")]
    writeFileSync(train, "old train\n")
    const result = await write(train, val, () => {
      mkdirSync(val)
      writeFileSync(join(val, "inside"), "x")
    })
    expect(links.tried).toBe(1)
    expect(Either.isLeft(result)).toBe(true)
    expect(readFileSync(train, "utf8")).toBe("old train\n")
    expect(readdirSync(dir).sort()).toEqual(["t.jsonl", "v.jsonl"])
  })

  it("leaves both new and no copy behind when both renames succeed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-nolink-"))
    const [train, val] = [join(dir, "t.jsonl"), join(dir, "v.jsonl")]
    writeFileSync(train, "old train\n")
    expect(Either.isRight(await write(train, val, () => {}))).toBe(true)
    expect(readFileSync(train, "utf8")).toBe(JSON.stringify({ text: "new train" }) + "\n")
    expect(readdirSync(dir).sort()).toEqual(["t.jsonl", "v.jsonl"])
  })
})
