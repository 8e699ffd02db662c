/**
 * Input formats of `enrich` (src/skyrl/sources.ts): detection, prompt extraction exactly as written,
 * observed tool calls, the `<tools>` block, and the row problems with their field paths.
 */
import { Either } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import type { SourcePrompt, SourceRow } from "../src/skyrl/sources.js"
import { detectFormat, extractSource, findToolsBlock, parseToolCallBlocks, toolNamesOf } from "../src/skyrl/sources.js"

const FIXTURES = join(__dirname, "fixtures")
const sharegpt: Array<Array<{ from: string; value: string }>> = JSON.parse(
  readFileSync(join(FIXTURES, "sharegpt", "sample_data.json"), "utf8")
)
const jsonl = (name: string): Array<unknown> =>
  readFileSync(join(FIXTURES, "enrich", name), "utf8").split("\n").filter((l) => l.trim() !== "").map((l) =>
    JSON.parse(l)
  )

const prompt = (row: SourceRow): SourcePrompt => {
  if (row._tag !== "Prompt") throw new Error(`expected a prompt, got ${row.field}: ${row.reason}`)
  return row
}
const problem = (row: SourceRow) => {
  if (row._tag !== "Invalid") throw new Error("expected a problem")
  return { field: row.field, reason: row.reason }
}

describe("detectFormat", () => {
  it("tells the three formats apart, bare or wrapped", () => {
    expect(detectFormat(sharegpt[0])).toBe("sharegpt")
    expect(detectFormat({ id: "x", conversations: sharegpt[0] })).toBe("sharegpt")
    expect(detectFormat([{ role: "user", content: "hi" }])).toBe("openai")
    expect(detectFormat({ messages: [{ role: "user", content: "hi" }] })).toBe("openai")
    expect(detectFormat({ prompt: [{ role: "user", content: "hi" }] })).toBe("skyrl")
    expect(detectFormat({ question: "?" })).toBeUndefined()
    expect(detectFormat([])).toBeUndefined()
    expect(detectFormat("text")).toBeUndefined()
  })
})

describe("ShareGPT conversations (the repo copy of sample_data.json)", () => {
  it("takes the system message and the first human message exactly as written", () => {
    for (const conversation of sharegpt) {
      const p = prompt(extractSource(conversation))
      expect(p.format).toBe("sharegpt")
      expect(p.system).toBe(conversation[0].value)
      expect(p.user).toBe(conversation[1].value)
      expect(p.systemField).toBe("[0].value")
      expect(p.hasPlan).toBe(false)
    }
  })

  it("keeps every <tool_call> of the gpt turns in order, name and arguments", () => {
    // Expected calls written out from the fixture (conversation 3 has three calls, one per gpt turn).
    const p = prompt(extractSource(sharegpt[3]))
    expect(p.observedToolCalls.map(({ arguments: a, name }) => ({ name, arguments: a }))).toEqual([
      {
        name: "send_slack_message",
        arguments: { channel: "direct", user: "@requestor", message: "INTC market update ready." }
      },
      { name: "get_yfinance_ticker_news", arguments: { symbol: "INTC" } },
      { name: "get_yfinance_price_history", arguments: { symbol: "INTC", period: "5d", interval: "1d" } }
    ])
    expect(p.observedToolCalls.map((c) => c.message)).toEqual([2, 4, 7])
    expect(p.unreadableToolCalls).toEqual([])
  })

  it("finds the JSON <tools> block, passing over the prose that mentions <tools> </tools>", () => {
    const block = findToolsBlock(sharegpt[1][0].value)
    expect(block).toBeDefined()
    expect(toolNamesOf(block!)).toEqual([
      "list_slack_channels",
      "send_slack_message",
      "get_slack_channel_history",
      "get_slack_user_info",
      "tavily_search",
      "tavily_search_news",
      "tavily_extract"
    ])
    const text = sharegpt[1][0].value
    expect(text.slice(block!.start, block!.start + 7)).toBe("<tools>")
    expect(text.slice(block!.end - 8, block!.end)).toBe("</tools>")
    expect(text.indexOf("<tools>")).toBeLessThan(block!.start)
  })

  it("reads a <tools> block with one JSON tool per line, and none in plain text", () => {
    const text = "Tools:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"a\", \"parameters\": {}}}\n" +
      "{\"name\": \"b\"}\n</tools>"
    expect(toolNamesOf(findToolsBlock(text)!)).toEqual(["a", "b"])
    expect(findToolsBlock("You may use <tools> </tools> tags.")).toBeUndefined()
    expect(findToolsBlock("<tools>not json</tools>")).toBeUndefined()
  })

  it("accepts function_call / observation roles and wrapped conversations with an id", () => {
    const p = prompt(extractSource({
      id: "conv-9",
      conversations: [
        { from: "human", value: "Quote for KO?" },
        { from: "function_call", value: "{\"name\": \"fmp_get_quote\", \"arguments\": {\"symbol\": \"KO\"}}" },
        { from: "observation", value: "{\"price\": 60}" },
        { from: "gpt", value: "KO is at 60." }
      ]
    }))
    expect(p.id).toBe("conv-9")
    expect(p.system).toBeUndefined()
    expect(p.observedToolCalls).toEqual([{ message: 1, name: "fmp_get_quote", arguments: { symbol: "KO" } }])
  })
})

describe("OpenAI message lists", () => {
  it("extracts the prompt and the tool_calls (string arguments decoded)", () => {
    const [wrapped, bare] = jsonl("openai_messages.jsonl")
    const p = prompt(extractSource(wrapped))
    expect(p.format).toBe("openai")
    expect(p.id).toBe("oa-1")
    expect(p.system).toBe("You are a helpful research agent.\n")
    expect(p.user).toBe("Compare the current quotes of AMD and INTC.")
    expect(p.observedToolCalls).toEqual([
      { message: 2, name: "fmp_get_quote", arguments: { symbol: "AMD" } },
      { message: 2, name: "fmp_get_quote", arguments: { symbol: "INTC" } }
    ])
    const q = prompt(extractSource(bare))
    expect(q.id).toBeUndefined()
    expect(q.system).toBeUndefined()
    expect(q.observedToolCalls).toEqual([
      { message: 1, name: "tavily_search", arguments: { query: "Federal Reserve meeting" } }
    ])
  })

  it("reads an assistant turn given as text parts for its tool calls, as a prompt message is read", () => {
    // Before: only string content was read, so these calls were not observed and the image part passed.
    const call = (symbol: string) =>
      `<tool_call>{"name": "fmp_get_quote", "arguments": {"symbol": "${symbol}"}}</tool_call>`
    const p = prompt(extractSource({
      messages: [
        { role: "user", content: "q" },
        { role: "assistant", content: [{ type: "text", text: "first" }, { type: "text", text: call("AMD") }] },
        { role: "assistant", content: [{ type: "output_text", text: call("INTC") }] },
        { role: "assistant", content: null, tool_calls: [{ function: { name: "fmp_get_profile", arguments: "{}" } }] }
      ]
    }))
    expect(p.observedToolCalls).toEqual([
      { message: 1, name: "fmp_get_quote", arguments: { symbol: "AMD" } },
      { message: 2, name: "fmp_get_quote", arguments: { symbol: "INTC" } },
      { message: 3, name: "fmp_get_profile", arguments: {} }
    ])
    // A ShareGPT function_call turn given as parts is read as its text (a JSON call).
    const f = prompt(extractSource([
      { from: "human", value: "q" },
      { from: "function_call", value: [{ type: "text", text: "{\"name\": \"a\", \"arguments\": {\"k\": 1}}" }] }
    ]))
    expect(f.observedToolCalls).toEqual([{ message: 1, name: "a", arguments: { k: 1 } }])
    expect(problem(extractSource({
      messages: [{ role: "user", content: "q" }, { role: "assistant", content: [{ type: "image_url", image_url: {} }] }]
    }))).toEqual({
      field: "messages[1].content[0]",
      reason: "must be a text part ({\"type\": \"text\", \"text\": \"...\"}), got a part of type \"image_url\" " +
        "(the tool calls of an assistant turn are read from its text)"
    })
  })

  it("reads past a refusal part of an assistant turn (it holds no call), and rejects other non-text parts", () => {
    // OpenAI's assistant content parts are "text" and "refusal": a refusal beside a call rejected the whole row.
    const p = prompt(extractSource({
      messages: [
        { role: "user", content: "q" },
        {
          role: "assistant",
          content: [
            { type: "refusal", refusal: "I cannot give advice." },
            { type: "text", text: `<tool_call>{"name": "fmp_get_quote", "arguments": {"symbol": "AMD"}}</tool_call>` }
          ]
        }
      ]
    }))
    expect(p.observedToolCalls).toEqual([{ message: 1, name: "fmp_get_quote", arguments: { symbol: "AMD" } }])
    // In a prompt message it is still a problem: the prompt's text would lose it.
    expect(
      problem(extractSource({
        messages: [{ role: "user", content: [{ type: "refusal", refusal: "no" }] }]
      }))?.field
    ).toBe("messages[0].content[0]")
  })

  it("accepts the developer role as the system message", () => {
    const p = prompt(extractSource([{ role: "developer", content: "Be brief." }, { role: "user", content: "Hi" }]))
    expect(p.system).toBe("Be brief.")
  })
})

describe("SkyRL rows", () => {
  it("extracts prompts and tells rows with a plan from rows without", () => {
    const rows = jsonl("skyrl_rows.jsonl").map((r) => prompt(extractSource(r)))
    expect(rows.map((r) => r.hasPlan)).toEqual([false, true, false, true])
    expect(rows.map((r) => r.id)).toEqual([undefined, "has-plan-1", "no-plan-2", "has-plan-3"])
    expect(rows[0].user).toBe("  What is NVDA trading at right now?\n")
    expect(rows[2].system).toBeUndefined()
    expect(rows.every((r) => r.observedToolCalls.length === 0)).toBe(true)
  })

  it("rejects an assistant message inside a SkyRL prompt", () => {
    expect(
      problem(extractSource({
        prompt: [{ role: "user", content: "q" }, { role: "assistant", content: "a" }]
      }))
    ).toEqual({
      field: "prompt[1].role",
      reason: "a SkyRL prompt ends with its user message; found a \"assistant\" message after it"
    })
  })
})

describe("row problems name the field", () => {
  it("no user message", () => {
    expect(problem(extractSource({ conversations: [{ from: "system", value: "s" }] }))).toEqual({
      field: "conversations",
      reason: "has no user message"
    })
    expect(problem(extractSource({ messages: [] })).reason).toBe("has no messages")
  })

  it("an assistant (or tool) message where the prompt should be", () => {
    const p = problem(extractSource([{ from: "system", value: "s" }, { from: "gpt", value: "Hi" }, {
      from: "human",
      value: "q"
    }]))
    expect(p.field).toBe("[1].from")
    expect(p.reason).toMatch(/^assistant message \("gpt"\) where the prompt should be/)
    expect(problem(extractSource({ messages: [{ role: "tool", content: "x" }, { role: "user", content: "q" }] })).field)
      .toBe("messages[0].role")
  })

  it("empty, missing or non-string content", () => {
    expect(problem(extractSource({ messages: [{ role: "user", content: "  \n" }] }))).toEqual({
      field: "messages[0].content",
      reason: "is empty"
    })
    expect(problem(extractSource([{ from: "system", value: "" }, { from: "human", value: "q" }]))).toEqual({
      field: "[0].value",
      reason: "is empty"
    })
    expect(problem(extractSource({ messages: [{ role: "user" }] }))).toEqual({
      field: "messages[0].content",
      reason: "is missing"
    })
    expect(problem(extractSource({ messages: [{ role: "user", content: 7 }] })).reason)
      .toBe("must be a string or a list of text parts, got number")
    // A list of parts: the text parts joined by a line break; any other part is named.
    const parts = extractSource({
      messages: [{ role: "user", content: [{ type: "text", text: "q" }, { type: "input_text", text: "r" }] }]
    })
    expect(parts._tag === "Invalid" ? parts.reason : parts.user).toBe("q\nr")
    expect(problem(extractSource({ messages: [{ role: "user", content: [{ type: "text", text: "q" }, "r"] }] })))
      .toEqual({
        field: "messages[0].content[1]",
        reason:
          "must be a text part ({\"type\": \"text\", \"text\": \"...\"}), got string (only text goes into a prompt)"
      })
  })

  it("two system messages, unknown roles, non-objects and unknown shapes", () => {
    expect(
      problem(extractSource({
        messages: [{ role: "system", content: "a" }, { role: "system", content: "b" }, { role: "user", content: "q" }]
      })).field
    ).toBe("messages[1].role")
    expect(problem(extractSource([{ from: "narrator", value: "x" }]))).toEqual({
      field: "[0].from",
      reason: "unknown role \"narrator\""
    })
    // Before: looked up on the roles' prototype ("[object Object] message", "function Object() ..."), and a
    // "constructor" message after the prompt was taken.
    for (const role of ["__proto__", "constructor", "toString"]) {
      expect(problem(extractSource(JSON.parse(`{"messages": [{"role": "${role}", "content": "x"}]}`)))).toEqual({
        field: "messages[0].role",
        reason: `unknown role "${role}"`
      })
      expect(
        problem(extractSource({ messages: [{ role: "user", content: "Get the TSLA quote." }, { role, content: "x" }] }))
      ).toEqual({ field: "messages[1].role", reason: `unknown role "${role}"` })
    }
    expect(problem(extractSource({ messages: [{ role: "user", content: "q" }, "oops"] })).field).toBe("messages[1]")
    expect(problem(extractSource({ question: "?" })).reason).toMatch(/not a SkyRL row, ShareGPT conversation/)
    // Before: "not a SkyRL row, ShareGPT conversation or OpenAI message list (got an object with keys id,
    // conversations)", with no field.
    expect(problem(extractSource({ id: "a", conversations: "hello" }))).toEqual({
      field: "conversations",
      reason: "must be a list of messages, got string"
    })
    expect(problem(extractSource({ messages: null })).field).toBe("messages")
    expect(problem(extractSource({ prompt: { role: "user", content: "q" } }))).toEqual({
      field: "prompt",
      reason: "must be a list of messages, got an object"
    })
  })

  it("half a surrogate pair in the prompt or the id (no UTF-8: no dataset reader takes the row)", () => {
    // Before: taken as a prompt; each attempt's row was refused (contract/json) after the model call.
    const cut = "Get the quote \ud83d for AAPL"
    expect(problem(extractSource({ messages: [{ role: "user", content: cut }] }))).toEqual({
      field: "messages[0].content",
      reason: expect.stringMatching(/^holds a lone surrogate \(U\+D83D at character 14\)/)
    })
    expect(problem(extractSource([{ from: "system", value: cut }, { from: "human", value: "q" }])).field).toBe(
      "[0].value"
    )
    const badId = extractSource({ id: "row-\udc00", messages: [{ role: "user", content: "q" }] })
    expect(problem(badId).field).toBe("id")
    expect(badId._tag === "Invalid" && badId.id).toBeUndefined()
    expect(
      problem(
        extractSource({
          prompt: [{ role: "user", content: "q" }],
          reward_spec: { ground_truth: { task_id: "\ud800" } }
        })
      )
        .field
    ).toBe("reward_spec.ground_truth.task_id")
    // A whole pair (an emoji) is text like any other; so are assistant turns after the prompt.
    expect(prompt(extractSource({ messages: [{ role: "user", content: "Get \ud83d\ude00 AAPL" }] })).user).toBe(
      "Get \ud83d\ude00 AAPL"
    )
    expect(
      prompt(extractSource({ messages: [{ role: "user", content: "q" }, { role: "assistant", content: cut }] })).user
    ).toBe("q")
  })

  it("--input-format forces a format and names the mismatch", () => {
    const row = { messages: [{ role: "user", content: "q" }] }
    expect(prompt(extractSource(row, "openai")).format).toBe("openai")
    expect(problem(extractSource(row, "sharegpt")).reason).toBe(
      "not a ShareGPT conversation (--input-format sharegpt); it looks like an OpenAI message list"
    )
    // Was "not a OpenAI message list".
    expect(problem(extractSource({ conversations: [{ from: "human", value: "q" }] }, "openai")).reason).toBe(
      "not an OpenAI message list (--input-format openai); it looks like a ShareGPT conversation"
    )
  })
})

describe("parseToolCallBlocks", () => {
  it("reads blocks in order, arrays of calls, string arguments, and an unclosed last block", () => {
    const text = "<think>x</think><tool_call>{\"name\": \"a\", \"arguments\": {\"k\": 1}}</tool_call> then " +
      "<tool_call>[{\"name\": \"b\", \"arguments\": \"{\\\"q\\\": 2}\"}, {\"name\": \"c\"}]</tool_call>" +
      "<tool_call>{\"name\": \"d\", \"arguments\": {}}"
    const calls = parseToolCallBlocks(text).map((r) => Either.getOrThrow(r))
    expect(calls).toEqual([
      { name: "a", arguments: { k: 1 } },
      { name: "b", arguments: { q: 2 } },
      { name: "c", arguments: {} },
      { name: "d", arguments: {} }
    ])
  })

  it("keeps an unreadable block with its error instead of dropping it", () => {
    const [bad, noName] = parseToolCallBlocks(
      "<tool_call>{name: a}</tool_call><tool_call>{\"arguments\": {}}</tool_call>"
    )
    expect(Either.isLeft(bad) && bad.left.error).toMatch(/^not valid JSON/)
    expect(Either.isLeft(noName) && noName.left.error).toBe("has no \"name\"")
  })
})

describe("extractSource: a record's own system and tools fields (LLaMA-Factory, OpenAI fine-tuning files)", () => {
  const quote = { name: "get_quote", description: "A quote", parameters: { type: "object", properties: {} } }
  const openaiQuote = { type: "function", function: quote }
  const user = { from: "human", value: "Quote AAPL" }

  it("shows `tools` (a list or its JSON text) in the system message as a <tools> block, after `system`", () => {
    const fromText = prompt(
      extractSource({ conversations: [user], system: "You help traders.", tools: JSON.stringify([quote]) })
    )
    expect(fromText.system).toBe(
      `You help traders.\n\n<tools>\n${JSON.stringify(quote)}\n</tools>\n` +
        "To call a tool, reply with exactly: <tool_call>{\"name\": \"TOOL\", \"arguments\": {...}}</tool_call>"
    )
    expect(fromText.systemField).toBe("tools")
    expect(fromText.user).toBe("Quote AAPL")
    expect(toolNamesOf(findToolsBlock(fromText.system!)!)).toEqual(["get_quote"])
    const openai = prompt(extractSource({ messages: [{ role: "user", content: "Quote AAPL" }], tools: [openaiQuote] }))
    expect(openai.system!.startsWith("You are an agent that solves the user's task with tools.")).toBe(true)
    expect(toolNamesOf(findToolsBlock(openai.system!)!)).toEqual(["get_quote"])
  })

  it("keeps a record's other fields (not its messages, id, system or tools) as otherFields, in order", () => {
    const source = prompt(extractSource({ id: "r1", conversations: [user], tools: [quote], category: "q", n: 2 }))
    expect(source.otherFields).toEqual({ category: "q", n: 2 })
    expect(Object.keys(source.otherFields!)).toEqual(["category", "n"])
    expect(prompt(extractSource({ id: "r1", conversations: [user] })).otherFields).toBeUndefined()
    expect(prompt(extractSource([user])).otherFields).toBeUndefined()
  })

  it("takes `system` where the conversation has none; empty fields change nothing", () => {
    expect(prompt(extractSource({ conversations: [user], system: "Be brief." }))).toMatchObject({
      system: "Be brief.",
      systemField: "system"
    })
    const plain = prompt(extractSource({ conversations: [user] }))
    expect(prompt(extractSource({ conversations: [user], system: "", tools: "" }))).toEqual(plain)
    expect(prompt(extractSource({ conversations: [user], tools: "[]" }))).toEqual(plain)
  })

  it("refuses a record that gives either twice, or tools that are not a list of named functions", () => {
    const withSystem = [{ from: "system", value: "Sys" }, user]
    expect(problem(extractSource({ conversations: withSystem, system: "Other" }))).toMatchObject({
      field: "system",
      reason: expect.stringContaining("gives its system message twice")
    })
    const hermes = [{ from: "system", value: `<tools>${JSON.stringify([quote])}</tools>` }, user]
    expect(problem(extractSource({ conversations: hermes, tools: [quote] }))).toMatchObject({
      field: "tools",
      reason: expect.stringContaining("lists its tools twice")
    })
    expect(problem(extractSource({ conversations: [user], tools: "get_quote" }))).toEqual({
      field: "tools",
      reason: "must be a list of tools (OpenAI or Hermes functions) or its JSON text, got text that is not JSON"
    })
    expect(problem(extractSource({ conversations: [user], tools: { quote } }))).toMatchObject({ field: "tools" })
    expect(problem(extractSource({ conversations: [user], system: ["Sys"] }))).toEqual({
      field: "system",
      reason: "must be text, got an array"
    })
    expect(problem(extractSource({ conversations: [user], tools: [quote, { description: "x" }] }))).toMatchObject({
      field: "tools[1]"
    })
  })
})
