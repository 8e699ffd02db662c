/**
 * Storage.acquireLock when the holder lets go between the failed exclusive create and the read of the lock file: the
 * lock is free, so it is taken. The read is where the race lands here: a mock of `readFile` removes the lock file
 * (the holder releasing it) just before reading it.
 */
import { Effect, Either } from "effect"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it, vi } from "vitest"
import { Storage, StorageLive } from "../src/services/Storage.js"

const race = vi.hoisted(() => ({ lockFile: "" }))

vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs/promises")>()
  const readFile = ((file: string, ...rest: Array<unknown>) => {
    if (file === race.lockFile) rmSync(file, { force: true })
    return (real.readFile as (...args: Array<unknown>) => Promise<unknown>)(file, ...rest)
  }) as typeof real.readFile
  return { ...real, default: { ...real, readFile }, readFile }
})

describe("acquireLock: the holder releases while the lock is read", () => {
  it("takes the lock instead of naming a holder that is gone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-lockrace-"))
    race.lockFile = join(dir, "out.jsonl.lock")
    writeFileSync(race.lockFile, JSON.stringify({ pid: process.pid, host: hostname(), since: "then" }) + "\n")
    const owner = { pid: process.pid, host: hostname(), since: "now" }
    const result = await Effect.runPromise(
      Effect.either(Effect.provide(Effect.flatMap(Storage, (s) => s.acquireLock(race.lockFile, owner)), StorageLive))
    )
    expect(result).toEqual(Either.right(undefined))
    expect(existsSync(race.lockFile)).toBe(true)
    expect(JSON.parse(readFileSync(race.lockFile, "utf8"))).toEqual(owner)
  })
})
