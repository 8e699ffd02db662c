/**
 * The recorded answers a run replays (`--replay-dir`, default data/replay) are read, recursively: an `--out` inside
 * that directory overwrote a recorded answer (`--out rr/example_0001.json`), and a dataset or archive left there
 * became recordings of the next replay ("replay of 14 recorded answers" from a directory of 12). Refused before
 * anything runs, as for every other input.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { ROOT } from "./support/python.js"

const replayCopy = () => {
  const dir = mkdtempSync(join(tmpdir(), "skyrl-replay-apart-"))
  const replay = join(dir, "rr")
  cpSync(join(ROOT, "data", "replay"), replay, { recursive: true })
  return { dir, replay }
}

describe("--out inside the --replay-dir", () => {
  it("generate --llm replay: a usage error (exit 2), the recorded answer left as it was", async () => {
    const { replay } = replayCopy()
    const recorded = join(replay, "example_0001.json")
    const before = readFileSync(recorded, "utf8")
    const r = await runCli(["generate", "-n", "2", "--llm", "replay", "--replay-dir", replay, "--out", recorded])
    expect(r.status, r.stderr).toBe(2)
    expect(r.stderr).toContain("--out: is inside the --replay-dir")
    expect(readFileSync(recorded, "utf8")).toBe(before)
    const other = await runCli([
      "generate",
      "-n",
      "2",
      "--llm",
      "replay",
      "--replay-dir",
      replay,
      "--out",
      join(replay, "new.jsonl")
    ])
    expect(other.status, other.stderr).toBe(2)
    expect(readdirSync(replay).sort()).toEqual(readdirSync(join(ROOT, "data", "replay")).sort())
  })
  it("enrich offline: a usage error (exit 2)", async () => {
    const { dir, replay } = replayCopy()
    const input = join(dir, "in.jsonl")
    cpSync(join(ROOT, "test", "fixtures", "enrich", "openai_messages.jsonl"), input)
    const r = await runCli([
      "enrich",
      input,
      "--llm",
      "replay",
      "--replay-dir",
      replay,
      "--out",
      join(replay, "x.jsonl")
    ])
    expect(r.status, r.stderr).toBe(2)
    expect(r.stderr).toContain("--out: is inside the --replay-dir")
  })
  it("is allowed when the run calls the model (the replay dir is not read)", async () => {
    const { replay } = replayCopy()
    const r = await runCli([
      "generate",
      "-n",
      "2",
      "--llm",
      "openai",
      "--replay-dir",
      replay,
      "--out",
      join(replay, "x.jsonl"),
      "--dry-run"
    ])
    expect(r.status, r.stderr).toBe(0)
  })
})
