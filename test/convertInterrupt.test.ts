/**
 * Ctrl-C (SIGINT) while `convert` writes its output (a large input, made as scripts/bench.ts section 2 makes
 * it): the earlier output and its rejects file are left as they were (or none is made), no temp file or
 * scratch directory is left behind, the exit code is 130 (not death by the signal) and stderr says
 * `interrupted`. The signal is sent once the output's temp file is there and holds rows: mid-write, well
 * before the end (the run is checked not to have got to its summary line).
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { tempDir } from "./support/fakeRun.js"
import { writeTasks } from "./support/fakeTasks.js"
import { ended, started, until } from "./support/signals.js"

/** Bytes of the output's temp file once it holds rows (~500 rows): the write is under way, far from its end. */
const MID_WRITE_BYTES = 4 * 2 ** 20

const tempsOf = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".tmp"))

describe("convert: SIGINT while the output is written", () => {
  it(
    "keeps the earlier output and rejects, leaves no temp file or scratch directory, exits 130 saying so",
    async () => {
      const dir = tempDir("skyrl-convert-int-")
      const tasks = join(dir, "tasks.jsonl")
      await writeTasks(tasks, 60_000)
      const scratch = join(dir, "scratch")
      mkdirSync(scratch)
      const outDir = join(dir, "out")
      mkdirSync(outDir)
      const out = join(outDir, "rows.jsonl")
      const earlier = "{\"earlier\": 1}\n"
      const earlierRejects = "{\"earlier\": \"rejects\"}\n"
      writeFileSync(out, earlier)
      writeFileSync(`${out}.rejects.jsonl`, earlierRejects)

      for (const previous of [true, false]) {
        const target = previous ? out : join(outDir, "new.jsonl")
        const run = started(["convert", tasks, "--out", target], { TMPDIR: scratch })
        let size = 0
        await until(() => {
          const temp = tempsOf(outDir)[0]
          if (temp !== undefined) {
            try {
              size = statSync(join(outDir, temp)).size
            } catch {
              size = 0 // renamed or removed between the listing and the stat
            }
          }
          return size >= MID_WRITE_BYTES
        }, 60_000)
        run.child.kill("SIGINT")
        const code = await ended(run, 60_000)
        expect(await run.signal, run.stderr).toBeNull()
        expect(code, run.stderr).toBe(130)
        expect(run.stderr).toContain("skyrl: interrupted")
        // Mid-write: the run did not get to its summary.
        expect(run.stderr).not.toMatch(/converted \d+ of \d+ tasks/)
        expect(tempsOf(outDir)).toEqual([])
        expect(readdirSync(scratch)).toEqual([])
        if (previous) {
          expect(readFileSync(out, "utf8")).toBe(earlier)
          expect(readFileSync(`${out}.rejects.jsonl`, "utf8")).toBe(earlierRejects)
        }
        expect(readdirSync(outDir).sort()).toEqual(["rows.jsonl", "rows.jsonl.rejects.jsonl"])
      }
    },
    180_000
  )
})
