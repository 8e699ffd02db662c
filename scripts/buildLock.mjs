// The build's lock: one build of dist/ at a time (scripts/build.mjs takes it before it hashes its inputs). Plain
// JavaScript beside the build, not in bin/bundle.js, which every start of the CLI loads. src/services/Storage.ts has
// the CLI's own pid locks (holdLock); the build cannot load the bundle it is about to replace.
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"

/** Whether process `pid` is alive (a signal 0 it may not receive still says it exists). */
const alive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return e?.code === "EPERM"
  }
}

/** A build lock older than this is taken over even if its pid is alive (a pid used again after a restart). */
const BUILD_LOCK_STALE_MS = 10 * 60_000

/**
 * Waits until this process holds the build's lock (`<root>/.build.lock`, its pid), taking over the lock of a process
 * that is gone (or one older than 10 minutes: a build takes well under one), and releases it when the process exits:
 * one build at a time, as each removes dist/ first (two `npm run skyrl` started after a `git pull` each built, one
 * removing dist/ under the other).
 */
export const holdBuildLock = async (root) => {
  const lock = join(root, ".build.lock")
  let said = false
  for (;;) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: "wx" })
      process.on("exit", () => rmSync(lock, { force: true }))
      return
    } catch (e) {
      if (e?.code !== "EEXIST") throw e
    }
    let holder, since
    try {
      holder = Number(readFileSync(lock, "utf8").trim())
      since = statSync(lock).mtimeMs
    } catch {
      continue // released meanwhile
    }
    // A lock without a pid is being written, or was left by a builder that died between creating and writing it.
    const gone = Number.isInteger(holder) && holder > 0 ? !alive(holder) : Date.now() - since > 2_000
    if (gone || Date.now() - since > BUILD_LOCK_STALE_MS) {
      rmSync(lock, { force: true })
      continue
    }
    if (!said) process.stderr.write(`waiting for the build of process ${holder} to end (${lock})\n`)
    said = true
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}
