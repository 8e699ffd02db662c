/**
 * `generate --resume` with a larger -n than the run's is refused (a run's N is fixed), and the refusal says how
 * to get more rows: a second dataset, checked together with the first by `skyrl validate`.
 */
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { tempDir } from "./support/fakeRun.js"

describe("generate --resume with another -n", () => {
  it("a larger -n names the way to more rows; a smaller one does not", async () => {
    const out = join(tempDir("skyrl-more-"), "ds.jsonl")
    const first = await runCli(["generate", "-n", "2", "--out", out])
    expect(first.status, first.stderr).toBe(0)
    const more = await runCli(["generate", "-n", "3", "--out", out, "--resume"])
    expect(more.status).toBe(2)
    expect(more.stderr).toContain("n: 2 in the run, 3 now")
    expect(more.stderr).toContain(
      "For more rows than the run's N, make a second dataset (another --out, another --seed)"
    )
    expect(more.stderr).toContain("skyrl validate FIRST SECOND")
    const fewer = await runCli(["generate", "-n", "1", "--out", out, "--resume"])
    expect(fewer.status).toBe(2)
    expect(fewer.stderr).toContain("n: 2 in the run, 1 now")
    expect(fewer.stderr).not.toContain("For more rows")
  }, 60_000)
})
