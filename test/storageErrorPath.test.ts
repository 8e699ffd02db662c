/**
 * A Storage error about another path than the file asked for (a directory level that could not be made for it)
 * names that path and the call, so the message says which folder failed.
 */
import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { Storage, StorageLive } from "../src/services/Storage.js"

const writeAt = (file: string) =>
  Effect.runPromise(
    Effect.either(Effect.flatMap(Storage, (s) => s.writeFileAtomic(file, "x\n"))).pipe(Effect.provide(StorageLive))
  )

describe("Storage errors name the path at fault", () => {
  it("a directory level that cannot be made is named with the call", async () => {
    const result = await writeAt("/proc/skyrl-no-such/sub/out.txt")
    expect(Either.isLeft(result)).toBe(true)
    const message = Either.isLeft(result) ? result.left.message : ""
    expect(message).toContain("/proc/skyrl-no-such/sub/out.txt")
    expect(message).toContain("no such file or directory (mkdir '/proc/skyrl-no-such')")
  })
})
