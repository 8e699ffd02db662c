/**
 * `validate`'s closing hint ("no server of the plans (...) is in <inventory>: give --inventory ...") is for rows
 * made with another inventory. Rows of `enrich --inventory-from-prompt` plan on server `prompt` (their tools are
 * their own prompt's `<tools>` block), which `validate` does not check against an inventory lacking that server:
 * no inventory file exists to give, so the hint must not name them.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"

const tmp = () => mkdtempSync(join(tmpdir(), "skyrl-validate-hint-"))

const inventoryWith = (server: string) => ({
  servers: [{
    name: server,
    tools: [
      {
        name: "echo",
        description: "Echoes back the input string",
        inputSchema: { type: "object", properties: { message: { type: "string" } }, required: ["message"] }
      },
      {
        name: "add",
        description: "Adds two numbers",
        inputSchema: {
          type: "object",
          properties: { a: { type: "number" }, b: { type: "number" } },
          required: ["a", "b"]
        }
      },
      { name: "ping", description: "Pings", inputSchema: { type: "object", properties: {} } },
      { name: "time", description: "Current time", inputSchema: { type: "object", properties: {} } }
    ]
  }]
})

/** Two identical rows (a duplicate/prompt violation) whose plans are on `server`. */
const duplicatedRows = async (dir: string, server: string): Promise<string> => {
  const inventory = join(dir, `${server}.json`)
  writeFileSync(inventory, JSON.stringify(inventoryWith(server)))
  const tasks = join(dir, "tasks.jsonl")
  const task = {
    task_id: "echo-hello",
    user_prompt: "Echo the word hello.",
    tool_sequence: [{ server, tool: "echo", params: { message: "hello" } }]
  }
  writeFileSync(tasks, JSON.stringify(task) + "\n")
  const once = join(dir, "once.jsonl")
  const converted = await runCli(["convert", tasks, "--inventory", inventory, "--out", once])
  expect(converted.status, converted.stderr).toBe(0)
  const rows = join(dir, "rows.jsonl")
  const line = readFileSync(once, "utf8")
  writeFileSync(rows, line + line)
  return rows
}

describe("validate's other-inventory hint", () => {
  it("is not given for rows planned on server `prompt` (enrich --inventory-from-prompt)", async () => {
    const rows = await duplicatedRows(tmp(), "prompt")
    const r = await runCli(["validate", rows])
    expect(r.status, r.stderr).toBe(1)
    expect(r.stderr).toContain("duplicate/prompt")
    expect(r.stderr).not.toContain("give --inventory")
  })
  it("is still given for rows made with another inventory", async () => {
    const rows = await duplicatedRows(tmp(), "everything")
    const r = await runCli(["validate", rows])
    expect(r.status, r.stderr).toBe(1)
    expect(r.stderr).toContain(
      "no server of the plans (everything) is in the bundled inventory (no --inventory given: fmp, polygon, " +
        "python_execution, slack, tavily): give --inventory the inventory the rows were made with"
    )
  })
})
