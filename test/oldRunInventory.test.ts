/**
 * A run made before 2026-12-02, whose inventory named a server with a `,` (refused in an inventory since then):
 * its paid-for batch answers are still collected, its dataset rebuilt and the run resumed (`--resume --force`)
 * from the inventory the run kept. The built CLI against the fake Files/Batches server (test/support/fakeBatch.ts),
 * which answers online calls too.
 *
 * No skyrl of today makes such a run (it refuses the inventory), so the test makes one as an older skyrl did:
 * it makes a run whose server is `python_execution` (the bundled inventory), then writes the run directory as it
 * would be with the server named `python,execution` (the name in every file, the inventory's hash where the run
 * records it, the hash of each request body), and has the fake answer with that name.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { describe, expect, it } from "vitest"
import { canonicalJson, sha256Hex } from "../src/skyrl/canonical.js"
import { batchFakes, env, FAST, readJsonl, tmpOut, USAGE } from "./support/batchCli.js"
import { runCli } from "./support/cli.js"
import { lineAnswer } from "./support/fakeBatch.js"
import { answer } from "./support/fakeOpenAI.js"
import { runDirIn } from "./support/fakeRun.js"
import { validTaskFor } from "./support/fakeTasks.js"

const { fake } = batchFakes()

const NOW = "python_execution"
const OLD = "python,execution"

const sha = (value: unknown) => sha256Hex(canonicalJson(value))

/** Every file of the run directory with `NOW` written as `OLD`, and the hashes that follow from it. */
const asMadeBefore = (runDir: string) => {
  const inventoryFile = join(runDir, "inventory.json")
  const shaThen = sha(JSON.parse(readFileSync(inventoryFile, "utf8")))
  const files = readdirSync(runDir).filter((f) => f.endsWith(".json") || f.endsWith(".jsonl"))
  for (const file of files) {
    const at = join(runDir, file)
    writeFileSync(at, readFileSync(at, "utf8").replaceAll(NOW, OLD))
  }
  const shaOld = sha(JSON.parse(readFileSync(inventoryFile, "utf8")))
  for (const file of files.filter((f) => readFileSync(join(runDir, f), "utf8").includes(shaThen))) {
    const at = join(runDir, file)
    writeFileSync(at, readFileSync(at, "utf8").replaceAll(shaThen, shaOld))
  }
  if (files.includes("requests.jsonl")) {
    const bodies = readJsonl(join(runDir, "batch_001_input.jsonl"))
    const requests = readJsonl(join(runDir, "requests.jsonl"))
    expect(requests.map((r) => r.custom_id)).toEqual(bodies.map((b) => b.custom_id))
    writeFileSync(
      join(runDir, "requests.jsonl"),
      requests.map((r, i) => JSON.stringify({ ...r, sha256: sha(bodies[i].body) }) + "\n").join("")
    )
  }
  // The run records the inventory's hash as the hash of the inventory it kept (checked here, by hand), and the
  // manifest's settings fingerprint (src/services/RunJournal.ts fingerprintOf: sha256 of the canonical settings)
  // follows it.
  const manifestFile = join(runDir, "manifest.json")
  const manifest = JSON.parse(readFileSync(manifestFile, "utf8"))
  expect(manifest.run_settings.inventory_sha256).toBe(shaOld)
  writeFileSync(manifestFile, JSON.stringify({ ...manifest, fingerprint: sha(manifest.run_settings) }))
  return { shaThen, shaOld }
}

/** The servers the rows' plans call. */
const serversOf = (file: string): Array<string> =>
  [...new Set(readJsonl(file).flatMap((row) => row.reward_spec.ground_truth.tool_sequence.map((s: any) => s.server)))]
    .sort()

describe("a run whose kept inventory names a server with a comma (made before 2026-12-02)", () => {
  it("batch collect writes its rows and rebuild re-derives them, each warning of the name", async () => {
    const f = await fake({ lines: (ctx) => lineAnswer(validTaskFor(ctx).replaceAll(NOW, OLD), USAGE) })
    const out = tmpOut()
    const r = await runCli(["generate", "-n", "3", "--seed", "3", "--out", out, "--backend", "batch"], {
      env: env(f)
    })
    expect(r.status, r.stderr).toBe(0)
    const runDir = r.stdout.trim()
    asMadeBefore(runDir)
    const c = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: env(f) })
    expect(c.status, c.stderr).toBe(0)
    expect(readJsonl(out)).toHaveLength(3)
    expect(serversOf(out)).toContain(OLD)
    expect(serversOf(out)).not.toContain(NOW)
    expect(f.online.requests).toHaveLength(0) // nothing asked again
    const again = `${out}.rebuilt.jsonl`
    const b = await runCli(["rebuild", runDir, "--out", again])
    expect(b.status, b.stderr).toBe(0)
    expect(readFileSync(again, "utf8")).toBe(readFileSync(out, "utf8"))
    for (const stderr of [c.stderr, b.stderr]) {
      expect(stderr).toContain(`${join(runDir, "inventory.json")}: servers[2].name "python,execution" holds a comma`)
    }
  }, 90_000)

  it("generate --resume --force goes on with it: the archived answers judged against it, rows written", async () => {
    // Before: `--resume --force` read the run's inventory.json as any inventory and stopped on the comma.
    const f = await fake({ lines: () => lineAnswer("", USAGE), online: (ctx) => answer(validTaskFor(ctx), USAGE) })
    const out = tmpOut()
    const args = ["generate", "-n", "3", "--seed", "3", "--out", out, "--llm", "openai"]
    const r = await runCli(args, { env: env(f) })
    expect(r.status, r.stderr).toBe(0)
    const runDir = runDirIn(dirname(out))
    const { shaOld, shaThen } = asMadeBefore(runDir)
    // The journal and dataset lost (a crash before either was written): the answers are in the archive.
    rmSync(join(runDir, "journal.jsonl"))
    rmSync(out)
    const asked = f.online.requests.length
    const plain = await runCli([...args, "--resume"], { env: env(f) })
    // A plain --resume with the bundled inventory (the one named otherwise): another inventory, refused.
    expect(plain.status).toBe(2)
    expect(plain.stderr).toContain(
      `made with other settings: inventory_sha256: ${shaOld} in the run, ${shaThen} now. Run without --resume to ` +
        "start a new run, or add --force to continue it with its own settings"
    )
    const forced = await runCli([...args, "--resume", "--force"], { env: env(f) })
    expect(forced.status, forced.stderr).toBe(0)
    expect(forced.stderr).toContain(
      `${join(runDir, "inventory.json")}: servers[2].name "python,execution" holds a comma`
    )
    expect(f.online.requests).toHaveLength(asked) // every answer replayed from the archive, none paid again
    expect(readJsonl(out)).toHaveLength(3)
    expect(serversOf(out)).toContain(OLD)
  }, 90_000)
})
