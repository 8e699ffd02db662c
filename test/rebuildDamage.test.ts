/**
 * `skyrl rebuild` on run directories as a user finds them after trouble: a run killed (its manifest still the
 * `running` one written at the start), archive and journal lines damaged by hand or by the disk, an --out that
 * is the run's own dataset, an inventory that is not the run's. Offline runs (`--llm replay`), the built CLI.
 */
import { Effect, Option } from "effect"
import { spawnSync } from "node:child_process"
import { readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { gunzipSync, gzipSync } from "node:zlib"
import { describe, expect, it } from "vitest"
import { runRebuild } from "../src/cli/rebuild.live.js"
import { SettingsError } from "../src/domain/run.js"
import { runCli } from "./support/cli.js"
import { readJsonl, runDirOf } from "./support/fakeRun.js"
import { restoredRun } from "./support/restoredRun.js"

/** The offline runs made, by their extra flags: each made once, and put back where it was made for each test. */
const made = new Map<string, () => Promise<string>>()

/** A 4-sample offline run, as made, in its directory (no other file there): its output and run directory. */
const offlineRun = async (extra: ReadonlyArray<string> = []) => {
  const key = extra.join(" ")
  if (!made.has(key)) {
    made.set(
      key,
      restoredRun("skyrl-rebuild-damage-", async (dir) => {
        const r = await runCli(["generate", "-n", "4", "--out", join(dir, "ds.jsonl"), "--llm", "replay", ...extra])
        expect(r.status, r.stderr).toBe(0)
      })
    )
  }
  const dir = await made.get(key)!()
  const out = join(dir, "ds.jsonl")
  return { dir, out, runDir: runDirOf(out) }
}

const lines = (file: string) => readFileSync(file, "utf8").split("\n").filter((l) => l !== "")

describe("rebuild of a damaged or killed run", () => {
  it("a killed run (manifest still `running`, 0 valid): rows missing from the archive are an error, not exit 0", async () => {
    const { dir, runDir } = await offlineRun()
    // What `kill -9` leaves: the manifest written when the run started (no row counted yet).
    const manifestFile = join(runDir, "manifest.json")
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8"))
    writeFileSync(
      manifestFile,
      JSON.stringify({ ...manifest, status: "running", finished_at: null, counts: { ...manifest.counts, valid: 0 } })
    )
    const archive = join(runDir, "archive_01.jsonl")
    writeFileSync(archive, lines(archive).slice(0, 2).join("\n") + "\n") // the last two answers lost
    const out = join(dir, "rebuilt.jsonl")
    const r = await runCli(["rebuild", runDir, "--out", out])
    expect(r.status, r.stderr).toBe(1) // was 0: "rebuilt 2 rows of run ... (manifest counts 0 valid)"
    expect(r.stderr).toMatch(/rebuilt 2 of the 4 rows run \S+ made into \S*rebuilt\.jsonl \(kept as it is\)/)
    expect(readJsonl(out)).toHaveLength(2)
  })

  it("an --out through a symbolic link to the run directory that names one of its files is refused", async () => {
    const { dir, runDir } = await offlineRun()
    const journal = join(runDir, "journal.jsonl")
    const before = readFileSync(journal, "utf8")
    symlinkSync(runDir, join(dir, "link"))
    const r = await runCli(["rebuild", runDir, "--out", join(dir, "link", "journal.jsonl")])
    expect(r.status).toBe(2) // was 0, and the journal replaced by the rows
    expect(r.stderr).toContain(`--out: ${join(dir, "link", "journal.jsonl")} is inside the run directory`)
    expect(r.stderr).toContain("(as journal.jsonl), which rebuild only reads")
    expect(readFileSync(journal, "utf8")).toBe(before)
  })

  it(
    "an --out naming a new file inside the run directory is refused too (exit 2, nothing written), whatever the path's way there",
    async () => {
      const { dir, runDir } = await offlineRun()
      const before = readdirSync(runDir).sort()
      symlinkSync(runDir, join(dir, "link"))
      const named = [
        join(runDir, "plan_inputs.json"), // a name the run reads (a generate run of no list file has none)
        join(runDir, "archive_02.jsonl"), // read as the run's next archive log
        join(runDir, "sub", "rebuilt.jsonl"), // a directory not there yet
        `${runDir}/sub/../rebuilt.jsonl`, // `..`
        join(dir, "link", "rebuilt.jsonl") // a symbolic link to the run directory
      ]
      // The first through the CLI (its exit status and line), the others in this process (one CLI start each cost
      // ~1 s of the suite's time).
      const r = await runCli(["rebuild", runDir, "--out", named[0]!])
      expect(r.status, r.stderr).toBe(2) // was 0 (the run's --resume and rebuild then failed)
      expect(r.stderr).toContain(`skyrl: --out: ${named[0]} is inside the run directory`)
      for (const given of named.slice(1)) {
        const refused = await Effect.runPromise(Effect.flip(runRebuild({
          runDir,
          out: given,
          inventory: Option.none(),
          indent: Option.none(),
          ascii: false
        })))
        expect(refused).toBeInstanceOf(SettingsError)
        expect(refused.message, given).toContain(`--out: ${given} is inside the run directory`)
        expect(readdirSync(runDir).sort()).toEqual(before)
      }
      // The run is as it was: nothing was added to its directory (above), and it rebuilds elsewhere.
      const rebuilt = await runCli(["rebuild", runDir, "--out", join(dir, "rebuilt.jsonl")])
      expect(rebuilt.status, rebuilt.stderr).toBe(0)
      expect(readJsonl(join(dir, "rebuilt.jsonl"))).toHaveLength(4)
    },
    90_000
  )

  it("a journaled row not rebuilt is an error even when other samples make up the count, and is named", async () => {
    const { dir, runDir } = await offlineRun()
    // A run killed with sample 4 answered and archived but not journaled (its manifest counting 0 rows) ...
    const journal = join(runDir, "journal.jsonl")
    writeFileSync(journal, lines(journal).filter((l) => JSON.parse(l).index !== 3).join("\n") + "\n")
    const manifestFile = join(runDir, "manifest.json")
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8"))
    writeFileSync(manifestFile, JSON.stringify({ ...manifest, counts: { ...manifest.counts, valid: 0 } }))
    // ... and sample 2's answer lost since: 3 rows are rebuilt (1, 3, 4), as many as the journal holds.
    const archive = join(runDir, "archive_01.jsonl")
    writeFileSync(archive, lines(archive).filter((l) => JSON.parse(l).sample !== 1).join("\n") + "\n")
    const r = await runCli(["rebuild", runDir, "--out", join(dir, "rebuilt.jsonl")])
    expect(r.status).toBe(1) // was 0
    expect(r.stderr).toMatch(
      /rebuilt 3 rows, not the 3 rows run \S+ made \(rows it never journaled among them\) into \S*rebuilt\.jsonl \(kept as it is\): .*; not rebuilt: sample 2 \(archive_01\.jsonl#task_0002_c01\.json\)\n/
    )
  })

  it("--out the run's own dataset: a rebuild that falls short leaves it as it was; a complete one replaces it", async () => {
    const { dir, out, runDir } = await offlineRun()
    const before = readFileSync(out, "utf8")
    const archive = join(runDir, "archive_01.jsonl")
    const whole = readFileSync(archive, "utf8")
    writeFileSync(archive, lines(archive).slice(0, 3).join("\n") + "\n")
    const short = await runCli(["rebuild", runDir, "--out", out])
    expect(short.status).toBe(1)
    expect(short.stderr).toMatch(
      /rebuilt 3 of the 4 rows run \S+ made; they were not written: the \S*ds\.jsonl there is left as it was/
    )
    expect(readFileSync(out, "utf8")).toBe(before) // was: replaced by the 3 rows rebuilt
    // No line says otherwise (was: "wrote 3 rows to .../ds.jsonl"; then the engine's "made 3 rows, not written over
    // the file there", which rebuild's error says; rebuild logs no engine summary line).
    expect(short.stderr).not.toContain("wrote 3 rows")
    expect(readdirSync(dir).sort()).toEqual(["ds.jsonl", "raw_llm"]) // nothing left beside it
    writeFileSync(archive, whole)
    // A row deleted from the dataset by hand: the complete rebuild gives it back, byte for byte.
    writeFileSync(out, before.split("\n").slice(1).join("\n"))
    const full = await runCli(["rebuild", runDir, "--out", out])
    expect(full.status, full.stderr).toBe(0)
    // The logs name the --out given, never the hidden file renamed over it (was: "wrote 4 rows to
    // .../.ds.rebuild-PID.jsonl", and the diversity report's "complexity mismatches: .../.ds.rebuild-PID.jsonl:2").
    expect(full.stderr).toMatch(/rebuilt 4 rows of run \S+ \(it made 4\) into \S*ds\.jsonl, calling no model: /)
    expect(full.stderr).toContain(`into ${out}, calling no model: `)
    expect(full.stderr).not.toContain(".rebuild-")
    expect(readFileSync(out, "utf8")).toBe(before)
    expect(readdirSync(dir).sort()).toEqual(["ds.jsonl", "raw_llm"])
  })

  it("the hidden file a rebuild killed before its rename left beside --out is swept by the next rebuild of it", async () => {
    const { dir, out, runDir } = await offlineRun()
    const before = readFileSync(out, "utf8")
    // What `kill -9` of a rebuild over ds.jsonl leaves: its rows in Storage's temp file beside it,
    // .ds.jsonl.PID.HEX.tmp (until the rename waiting for the rebuild's check), the pid gone.
    const gone = spawnSync(process.execPath, ["-e", ""]).pid
    const running = process.pid // this test's: a rebuild still at work
    writeFileSync(join(dir, `.ds.jsonl.${gone}.0a1b2c3d.tmp`), "partial")
    writeFileSync(join(dir, `.ds.jsonl.${running}.0a1b2c3d.tmp`), "partial")
    writeFileSync(join(dir, `.other.jsonl.${gone}.0a1b2c3d.tmp`), "not ds.jsonl's")
    const r = await runCli(["rebuild", runDir, "--out", out])
    expect(r.status, r.stderr).toBe(0)
    expect(readFileSync(out, "utf8")).toBe(before)
    // Was: all three left, forever.
    expect(readdirSync(dir).sort()).toEqual(
      [`.ds.jsonl.${running}.0a1b2c3d.tmp`, `.other.jsonl.${gone}.0a1b2c3d.tmp`, "ds.jsonl", "raw_llm"].sort()
    )
  })

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

  it("an archive record without its response is named in the error (it said only 'an archive file missing or cut short')", async () => {
    const { dir, runDir } = await offlineRun()
    const archive = join(runDir, "archive_01.jsonl")
    const kept = lines(archive)
    const { response: _response, ...record } = JSON.parse(kept[1])
    writeFileSync(archive, [kept[0], JSON.stringify(record), ...kept.slice(2)].join("\n") + "\n")
    const r = await runCli(["rebuild", runDir, "--out", join(dir, "rebuilt.jsonl")])
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/rebuilt 3 of the 4 rows/)
    expect(r.stderr).toContain(
      `(1 sample with no answer: no recorded answer for sample-000001: ${archive}#${record.name} holds an "ok" record ` +
        "without its response)\n"
    )
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

  it("--raw-gzip: a member that inflates but fails its CRC check is named, not used", async () => {
    const { dir, runDir } = await offlineRun(["--raw-gzip"])
    const archive = join(runDir, "archive_01.jsonl.gz")
    // The log written again member by member (as the run writes it), so where each ends is known here.
    const members = gunzipSync(readFileSync(archive)).toString("utf8").split("\n").filter((l) => l !== "")
      .map((l) => gzipSync(Buffer.from(l + "\n", "utf8")))
    expect(members).toHaveLength(4)
    const second = members[1]
    second[second.length - 8] ^= 0xff // the CRC-32 in its trailer
    writeFileSync(archive, Buffer.concat(members))
    const out = join(dir, "rebuilt.jsonl")
    const r = await runCli(["rebuild", runDir, "--out", out])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(
      `1 archive record(s) are not readable, skipped (${archive} byte ${members[0].length}: fails its CRC check`
    )
    expect(r.stderr).toMatch(
      /rebuilt 3 of the 4 rows .*; not rebuilt: sample 2 \(archive_01\.jsonl\.gz#task_0002_c01\.json\)\n/
    )
  })

  it("a journal line that is not readable is named (file, line, field), as --resume names it", async () => {
    const { dir, out, runDir } = await offlineRun()
    const journal = join(runDir, "journal.jsonl")
    const entries = lines(journal)
    entries[1] = JSON.stringify({ ...JSON.parse(entries[1]), index: "one" })
    writeFileSync(journal, entries.join("\n") + "\n")
    const again = join(dir, "rebuilt.jsonl")
    const r = await runCli(["rebuild", runDir, "--out", again])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toContain(
      `${journal}: 1 line(s) are not readable, skipped (line 2: index: must be a number, got "one"): rebuild judges`
    )
    expect(readFileSync(again, "utf8")).toBe(readFileSync(out, "utf8"))
  })

  it("a manifest.json that does not decode is a usage error (exit 2) naming file and field, as --resume says", async () => {
    const { dir, out, runDir } = await offlineRun()
    const manifestFile = join(runDir, "manifest.json")
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8"))
    writeFileSync(manifestFile, JSON.stringify({ ...manifest, counts: { ...manifest.counts, valid: "x" } }))
    const where = `${manifestFile}, counts.valid: must be a number, got "x"`
    const r = await runCli(["rebuild", runDir, "--out", join(dir, "rebuilt.jsonl")])
    expect(r.status, r.stderr).toBe(2) // was 1
    expect(r.stderr).toContain(`skyrl: RUN_DIR: ${where}: `)
    const resumed = await runCli(["generate", "-n", "4", "--out", out, "--llm", "replay", "--resume"])
    expect(resumed.status, resumed.stderr).toBe(2)
    expect(resumed.stderr).toContain(`skyrl: --resume: ${where}: `)
    // An emptied manifest says so (it was JSON's "Unexpected end of JSON input").
    writeFileSync(manifestFile, "")
    const emptied = await runCli(["rebuild", runDir, "--out", join(dir, "rebuilt.jsonl")])
    expect([emptied.status, emptied.stderr]).toEqual([
      2,
      expect.stringContaining(`skyrl: RUN_DIR: ${manifestFile}: is empty: `)
    ])
  })

  it("an inventory that is not the run's is said at the start and named as the cause", async () => {
    const { dir, runDir } = await offlineRun()
    const plain = await runCli(["rebuild", runDir, "--out", join(dir, "same.jsonl")])
    expect(plain.status, plain.stderr).toBe(0)
    expect(plain.stderr).not.toContain("is not the inventory") // the run's own: no word
    const inventory = JSON.parse(readFileSync(join(runDir, "inventory.json"), "utf8"))
    const other = join(dir, "other-inventory.json")
    writeFileSync(
      other,
      JSON.stringify({ ...inventory, servers: inventory.servers.filter((s: { name: string }) => s.name !== "slack") })
    )
    const r = await runCli(["rebuild", runDir, "--out", join(dir, "rebuilt.jsonl"), "--inventory", other])
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(
      new RegExp(
        `--inventory ${other} is not the inventory run \\S+ planned with \\(inventory_sha256: [0-9a-f]{64} in the run, [0-9a-f]{64} now\\)`
      )
    )
    expect(r.stderr).toContain("): the inventory is not the one the run planned with (see the warning above)")
  })
})
