/**
 * `skyrl rebuild` on run directories as a user finds them after trouble: a run killed (its manifest still the
 * `running` one written at the start), archive and journal lines damaged by hand or by the disk, an --out that
 * is the run's own dataset, an inventory that is not the run's. Offline runs (`--llm replay`), the built CLI.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { gunzipSync } from "node:zlib"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { readJsonl, runDirOf, tempDir } from "./support/fakeRun.js"

/** A 4-sample offline run in a fresh directory: its output and run directory. */
const offlineRun = async (extra: ReadonlyArray<string> = []) => {
  const dir = tempDir("skyrl-rebuild-damage-")
  const out = join(dir, "ds.jsonl")
  const r = await runCli(["generate", "-n", "4", "--out", out, "--llm", "replay", ...extra])
  expect(r.status, r.stderr).toBe(0)
  return { dir, out, runDir: runDirOf(out) }
}

const lines = (file: string) => readFileSync(file, "utf8").split("\n").filter((l) => l !== "")

describe("rebuild of a damaged or killed run", () => {
  it("an archive line that is not a record is named (file and line); a last line cut by a crash is not", async () => {
    const { dir, runDir } = await offlineRun()
    const archive = join(runDir, "archive_01.jsonl")
    const kept = lines(archive)
    // Line 2 edited by hand (no longer JSON), line 3's name made a number; the last line cut by a crash.
    const named = JSON.parse(kept[2])
    writeFileSync(
      archive,
      [kept[0], kept[1].slice(0, 40) + kept[1].slice(41), JSON.stringify({ ...named, name: 7 }), kept[3].slice(0, 99)]
        .join("\n")
    )
    const r = await runCli(["rebuild", runDir, "--out", join(dir, "rebuilt.jsonl")])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(
      `2 archive record(s) are not readable, skipped (${archive} line 2: not JSON; ${archive} line 3: name: expected ` +
        "a call's name (task_0007_c02.json), got 7): the answers they held are not the run's"
    )
    expect(r.stderr).toMatch(/rebuilt 1 of the 4 rows/)
  })

  it("--raw-gzip: a damaged gzip member costs its own record only, and is named by its byte offset", async () => {
    const { dir, runDir } = await offlineRun(["--raw-gzip"])
    const archive = join(runDir, "archive_01.jsonl.gz")
    const bytes = readFileSync(archive)
    expect(gunzipSync(bytes).toString("utf8").split("\n").filter((l) => l !== "")).toHaveLength(4)
    bytes[40] ^= 0xff // inside the first member's deflate data
    writeFileSync(archive, bytes)
    const out = join(dir, "rebuilt.jsonl")
    const r = await runCli(["rebuild", runDir, "--out", out])
    expect(r.status).toBe(1)
    // Was: the walk stopped at the first member, so no record of the log was found (0 of 4 rows).
    expect(r.stderr).toContain(`1 archive record(s) are not readable, skipped (${archive} byte 0: not a gzip member`)
    expect(r.stderr).toMatch(/rebuilt 3 of the 4 rows/)
    expect(readJsonl(out)).toHaveLength(3)
  })
})
