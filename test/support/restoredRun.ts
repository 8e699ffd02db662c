/**
 * State made once per test file (e.g. an offline `generate` run, one CLI start of ~1 s of CPU) and put back, for
 * each test, at the very path it was made in: a run's manifest records the absolute paths of its --out and its run
 * directory, so a copy elsewhere would be a moved project, which skyrl treats differently. Each test gets the state
 * as the run left it (file contents and times; whatever the previous test changed is gone). The tests of a file
 * run one after the other (vitest's default), so they can take turns at the one path.
 */
import { cpSync, rmSync } from "node:fs"
import { tempDir } from "./fakeRun.js"

/**
 * `make(dir)` fills a fresh directory once (on the first call); every call (the first too) then empties that
 * directory, copies the state as made back into it and resolves its path.
 */
export const restoredRun = (prefix: string, make: (dir: string) => Promise<void>) => {
  const dir = tempDir(prefix)
  let made: Promise<string> | undefined
  return async (): Promise<string> => {
    made ??= make(dir).then(() => {
      const pristine = tempDir(`${prefix}made-`)
      cpSync(dir, pristine, { recursive: true, preserveTimestamps: true })
      return pristine
    })
    const pristine = await made
    rmSync(dir, { recursive: true, force: true })
    cpSync(pristine, dir, { recursive: true, preserveTimestamps: true })
    return dir
  }
}
