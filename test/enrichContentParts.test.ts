/**
 * enrich reads OpenAI messages whose content is a list of text parts (`[{"type": "text", "text": ...}]`, as
 * chat logs often hold it): the parts' text joined by a line break is the prompt; a part that is not text
 * (an image) rejects its row, naming the part. Assistant turns given so are read through the same helper for the
 * tool calls the logged agent made (task_metadata.observed_tool_calls).
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

  it("an assistant turn given as text parts: its <tool_call> blocks are observed calls", async () => {
    // Before: the assistant turn's parts were not read (string content only), so row 0 had no observed call
    // and row 1 was planned as if its assistant turn were fine.
    const server = await servers.start((ctx) => answer(planAnswer(ctx, { prefer: ["fmp_get_quote"] })))
    const dir = tempDir("skyrl-parts-")
    const input = join(dir, "chats.jsonl")
    const call = "<tool_call>{\"name\": \"fmp_get_quote\", \"arguments\": {\"symbol\": \"AAPL\"}}</tool_call>"
    const chats = [
      {
        id: "assistant-parts",
        messages: [
          { role: "user", content: "Get the quote for AAPL." },
          { role: "assistant", content: [{ type: "text", text: "Looking it up." }, { type: "text", text: call }] },
          { role: "tool", content: [{ type: "text", text: "{\"price\": 1}" }] },
          { role: "assistant", content: [{ type: "output_text", text: "AAPL is at 1." }] }
        ]
      },
      {
        id: "assistant-image",
        messages: [
          { role: "user", content: "Get the quote for MSFT." },
          { role: "assistant", content: [{ type: "text", text: call }, { type: "image_url", image_url: { url: "x" } }] }
        ]
      }
    ]
    writeFileSync(input, chats.map((l) => JSON.stringify(l)).join("\n") + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["enrich", input, "--out", out, "--llm", "openai"], { env: llmEnv(server, "sk-test-parts") })
    expect(r.status, r.stderr).toBe(0)
    const rows = readJsonl(out)
    expect(rows).toHaveLength(1)
    expect(JSON.parse(rows[0].extra_info.task_metadata).observed_tool_calls).toEqual([
      { name: "fmp_get_quote", arguments: { symbol: "AAPL" }, message: 1 }
    ])
    const rejects = readFileSync(`${out}.rejects.jsonl`, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    expect(rejects.map((x) => [x.row, x.field])).toEqual([[1, "messages[1].content[1]"]])
    expect(rejects[0].reason).toContain("a part of type \"image_url\"")
  }, 60_000)
})
