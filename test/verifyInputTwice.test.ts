/**
 * `skyrl verify A A` (or A and a link to it): a dataset given twice is warned about, naming it and what follows
 * (each of its verified rows is written twice to --out, the second as a copy, not run again). Before, the run
 * said nothing and --out held every verified row twice.
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { rowFor, writeJsonl } from "./support/verifyRows.js"

const dir = mkdtempSync(join(tmpdir(), "skyrl-input-twice-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("verify: the same dataset given twice", () => {
  it("is warned about by name, as the same path and through a link", async () => {
    const inventory = join(dir, "inv.json")
    writeFileSync(
      inventory,
      JSON.stringify({
        servers: [{
          name: "everything",
          tools: [{
            name: "echo",
            description: "Echoes",
            inputSchema: { type: "object", properties: { message: { type: "string" } }, required: ["message"] },
            annotations: { readOnlyHint: true }
          }]
        }]
      })
    )
    const rows = writeJsonl(join(dir, "rows.jsonl"), [
      rowFor("a", [{ server: "everything", tool: "echo", params: { message: "a" } }])
    ])
    const other = writeJsonl(join(dir, "other.jsonl"), [
      rowFor("b", [{ server: "everything", tool: "echo", params: { message: "b" } }])
    ])
    symlinkSync(rows, join(dir, "link.jsonl"))
    const dry = (...files: Array<string>) =>
      runCli(["verify", ...files, "--inventory", inventory, "--out", join(dir, "v.jsonl"), "--dry-run"])
    const warning = "is given twice (datasets 1 and 3): its rows are read twice, and each of them that verifies is " +
      "written twice to --out (the second time as a copy of the first, not run again)"
    const same = await dry(rows, other, rows)
    // The inventory has no launch spec: the run would verify no row and exit 1, and so does its dry run.
    expect(same.status).toBe(1)
    expect(same.stderr).toContain("none of the 3 rows would be verified (3 on servers that cannot start)")
    expect(same.stderr).toContain(`verify: ${rows} ${warning}`)
    const linked = await dry(rows, other, join(dir, "link.jsonl"))
    expect(linked.stderr).toContain(`verify: ${join(dir, "link.jsonl")} ${warning}`)
    const apart = await dry(rows, other)
    expect(apart.stderr).not.toContain("given twice")
  })
})
