/**
 * enrich reads OpenAI messages whose content is a list of text parts (`[{"type": "text", "text": ...}]`, as
 * chat logs often hold it): the parts' text joined by a line break is the prompt; a part that is not text
 * (an image) rejects its row, naming the part.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"
import { planAnswer } from "./support/fakeEnrich.js"
import { answer } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, readJsonl, tempDir } from "./support/fakeRun.js"

const servers = fakes()
afterEach(servers.closeAll)

const lines = [
  {
    id: "parts-1",
    messages: [
      { role: "system", content: [{ type: "text", text: "You help with stocks." }] },
      {
        role: "user",
        content: [{ type: "text", text: "Get the quote for MSFT." }, { type: "input_text", text: "Then its profile." }]
      }
    ]
  },
  { id: "parts-2", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] },
  { id: "parts-3", messages: [{ role: "user", content: [{ type: "text", text: "  " }] }] },
  {}
]

describe("enrich: content given as a list of parts", () => {
  it("text parts are joined into the prompt; an image part or no text rejects the row, named", async () => {
    const server = await servers.start((ctx) => answer(planAnswer(ctx, { prefer: ["fmp_get_quote"] })))
    const dir = tempDir("skyrl-parts-")
    const input = join(dir, "chats.jsonl")
    writeFileSync(input, lines.map((l) => JSON.stringify(l)).join("\n") + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["enrich", input, "--out", out, "--llm", "openai"], { env: llmEnv(server, "sk-test-parts") })
    expect(r.status, r.stderr).toBe(0)
    const rows = readJsonl(out)
    expect(rows).toHaveLength(1)
    expect(rows[0].prompt[1]).toEqual({ role: "user", content: "Get the quote for MSFT.\nThen its profile." })
    expect(rows[0].prompt[0].content.startsWith("You help with stocks.")).toBe(true)
    const rejects = readFileSync(`${out}.rejects.jsonl`, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    expect(rejects.map((x) => [x.row, x.field])).toEqual([
      [1, "messages[0].content[0]"],
      [2, "messages[0].content"],
      [3, ""]
    ])
    expect(rejects[0].reason).toContain("a part of type \"image_url\"")
    expect(rejects[1].reason).toBe("is empty")
    expect(rejects[2].reason).toContain("got an object with no key")
  }, 60_000)
})
