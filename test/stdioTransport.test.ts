/**
 * The stdio transport's direct lane for tools/call (src/services/StdioTransport.ts): its results are
 * what the SDK's CallToolResultSchema gives, its errors the SDK's McpErrors, and what is not a direct
 * answer goes to the SDK's Protocol. Real MCP servers over stdio are in test/verify.test.ts.
 */
import { CallToolResultSchema, ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import {
  DIRECT_IDS,
  idAtEnds,
  InvalidAnswer,
  MessageTooLong,
  plainCallResult,
  ServerStalled,
  StdioTransport
} from "../src/services/StdioTransport.js"

const fields = (r: Record<string, unknown>) =>
  JSON.stringify([r.content ?? [], r.structuredContent ?? null, r.isError === true])

describe("plainCallResult", () => {
  const plain: Array<unknown> = [
    { content: [{ type: "text", text: "Echo: hi" }] },
    { content: [{ type: "text", text: "a" }, { type: "text", text: "b" }], isError: true },
    { content: [], structuredContent: { sum: 3, nested: { a: [1, { b: null }] } }, isError: false },
    { structuredContent: {} },
    { content: [{ type: "text", text: "x" }], other: 1 },
    {}
  ]
  const judgedBySchema: Array<unknown> = [
    { content: [{ type: "text", text: "x", annotations: { priority: 0.5 } }] },
    { content: [{ type: "text", text: "x", extra: 1 }] },
    { content: [{ text: "x", type: "text" }] },
    { content: [{ type: "image", data: "aGk=", mimeType: "image/png" }] },
    { content: [{ type: "text", text: 3 }] },
    { content: "x" },
    { content: [null] },
    { structuredContent: [1, 2] },
    { structuredContent: null },
    { isError: "yes" },
    { _meta: { progressToken: 1 }, content: [] },
    JSON.parse(`{"structuredContent": {"__proto__": {"a": 1}}}`),
    [],
    null
  ]

  it("gives back, unchanged, results the schema gives back with the same content, structuredContent and isError", () => {
    for (const r of plain) {
      const parsed = CallToolResultSchema.parse(r)
      expect(plainCallResult(r)).toBe(r)
      expect(fields(r as Record<string, unknown>)).toBe(fields(parsed))
    }
  })

  it("leaves to the schema every result it would change or refuse", () => {
    for (const r of judgedBySchema) expect(plainCallResult(r)).toBeUndefined()
    // Two of them the schema changes: the unknown key dropped, the keys put in its order.
    expect(CallToolResultSchema.parse(judgedBySchema[1]).content).toEqual([{ type: "text", text: "x" }])
    expect(JSON.stringify(CallToolResultSchema.parse(judgedBySchema[2]).content)).toBe(`[{"type":"text","text":"x"}]`)
  })
})

describe("idAtEnds", () => {
  it("finds the id of a message at its first or last member, never a nested one's", () => {
    expect(idAtEnds(`{"jsonrpc":"2.0","id":7,"result":{"content":`, `"}]}}`)).toBe(7)
    expect(idAtEnds(`{ "id" : 8 , "jsonrpc": "2.0"`, "")).toBe(8)
    expect(idAtEnds(`{"result":{"content":[`, `yy"}]},"jsonrpc":"2.0","id":1000000003}\r`)).toBe(1000000003)
    // An "id" in the result, closed by the braces after it, or in a string, is none.
    expect(idAtEnds(`{"result":{"id":5,`, `{"id":6}}}`)).toBeUndefined()
    expect(idAtEnds(`{"jsonrpc":"2.0","method":"x","params":{"text":"`, `\\"id\\":4}"}}`)).toBeUndefined()
    expect(idAtEnds(`{"jsonrpc":"2.0","method":"notifications/message",`, `"data":"yy"}}`)).toBeUndefined()
  })
})

/**
 * A fake server: answers each tools/call by the tool's name, and logs every line it receives. `queued` calls are
 * answered one at a time, each `ms` after the one before it (as a server that takes its calls in turn), to the end
 * even when cancelled; one with `hold` holds the server when its turn comes (it answers nothing more). Started with
 * "queue-pings", the server queues its pings behind those calls too (as one that reads a request only once it has
 * answered the one before does).
 */
const SERVER = String.raw`
const fs = require("node:fs")
const log = process.argv[1]
const queuePings = process.argv[2] === "queue-pings"
let rest = ""
let held = false
let queue = Promise.resolve()
const out = (s) => held ? undefined : process.stdout.write(s)
process.stdin.on("data", (chunk) => {
  rest += chunk
  let nl
  while ((nl = rest.indexOf("\n")) !== -1) {
    const line = rest.slice(0, nl)
    rest = rest.slice(nl + 1)
    fs.appendFileSync(log, line + "\n")
    const m = JSON.parse(line)
    // A server that is held answers nothing from then on, not even a ping.
    const pong = () => out(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: {} }) + "\n")
    if (m.method === "ping") queuePings ? (queue = queue.then(pong)) : pong()
    if (m.method !== "tools/call") continue
    const id = m.id
    const tool = m.params.name
    if (tool === "plain") out(JSON.stringify({ jsonrpc: "2.0", id, result: { content: [{ type: "text", text: "ok " + m.params.arguments.n }] } }) + "\n")
    if (tool === "split") {
      const text = JSON.stringify({ jsonrpc: "2.0", id, result: { content: [{ type: "text", text: "é split" }] } }) + "\r\n"
      const bytes = Buffer.from(text)
      out(bytes.subarray(0, 50)); setTimeout(() => out(bytes.subarray(50)), 20)
    }
    if (tool === "annotated") out(JSON.stringify({ jsonrpc: "2.0", id, result: { content: [{ type: "text", text: "a", annotations: { priority: 1 }, x: 1 }] } }) + "\n")
    if (tool === "bad") out(JSON.stringify({ jsonrpc: "2.0", id, result: { content: "nope" } }) + "\n")
    if (tool === "error") out(JSON.stringify({ jsonrpc: "2.0", id, error: { code: -32602, message: "bad params" } }) + "\n")
    if (tool === "notify") out(JSON.stringify({ jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: "hi" } }) + "\n" + JSON.stringify({ jsonrpc: "2.0", id, result: {} }) + "\n")
    if (tool === "exit") process.exit(0)
    if (tool === "hold") held = true // as a loop or a deadlock would: nothing more is answered
    // A text of n bytes: the SDK's server writes the result first and the id last, others the id first.
    const long = "y".repeat(m.params.arguments?.n ?? 0)
    if (tool === "long") out(JSON.stringify({ result: { content: [{ type: "text", text: long }] }, jsonrpc: "2.0", id }) + "\n")
    if (tool === "longFirst") out(JSON.stringify({ jsonrpc: "2.0", id, result: { content: [{ type: "text", text: long }] } }) + "\r\n")
    if (tool === "longNote") out(JSON.stringify({ jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: long } }) + "\n")
    if (tool === "null") out(JSON.stringify({ jsonrpc: "2.0", id, result: null }) + "\n")
    if (tool === "queued") {
      const { hold, ms, n } = m.params.arguments
      const answer = () =>
        hold ? (held = true) : out(JSON.stringify({ jsonrpc: "2.0", id, result: { content: [{ type: "text", text: "ok " + n }] } }) + "\n")
      queue = queue.then(() => new Promise((done) => setTimeout(() => done(answer()), ms)))
    }
    if (tool === "extraKey") out(JSON.stringify({ jsonrpc: "2.0", id, result: {}, extra: 1 }) + "\n")
  }
})
`

describe("StdioTransport's direct lane", () => {
  const transports: Array<StdioTransport> = []
  afterEach(async () => {
    await Promise.all(transports.map((t) => t.close()))
  })
  const started = async (maxBufferSize?: number, mode?: "queue-pings") => {
    const log = join(mkdtempSync(join(tmpdir(), "skyrl-stdio-")), "received.jsonl")
    const t = new StdioTransport({
      command: process.execPath,
      args: ["-e", SERVER, log, ...(mode === undefined ? [] : [mode])],
      stderr: "pipe",
      ...(maxBufferSize === undefined ? {} : { maxBufferSize })
    })
    transports.push(t)
    await t.start()
    return { t, log }
  }
  const call = (t: StdioTransport, name: string, args: Record<string, unknown> = {}, timeoutMs = 5_000) =>
    new Promise<{ error: unknown; result: Record<string, unknown> | undefined }>((resolve) =>
      t.call(name, args, timeoutMs, { done: (error, result) => resolve({ error, result }) })
    )

  it("answers calls in flight together, lines split across chunks with \\r\\n endings included", async () => {
    const { log, t } = await started()
    const answers = await Promise.all([call(t, "plain", { n: 1 }), call(t, "plain", { n: 2 })])
    expect(answers.map((a) => a.result)).toEqual([
      { content: [{ type: "text", text: "ok 1" }] },
      { content: [{ type: "text", text: "ok 2" }] }
    ])
    expect((await call(t, "split")).result).toEqual({ content: [{ type: "text", text: "é split" }] })
    const sent = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    expect(sent[0]).toEqual({
      jsonrpc: "2.0",
      id: DIRECT_IDS,
      method: "tools/call",
      params: { name: "plain", arguments: { n: 1 } }
    })
  })

  it("a call to an idle server is written at once; the calls made in one tick after it go in one write, in order", async () => {
    const { log, t } = await started()
    const stdin = (t as unknown as { process: { stdin: { write: (text: string) => boolean } } }).process.stdin
    const writes: Array<string> = []
    const write = stdin.write.bind(stdin)
    stdin.write = (text: string) => (writes.push(text), write(text))
    const first = call(t, "plain", { n: 0 })
    expect(writes).toHaveLength(1) // before `call` returned, not at the end of the tick
    const answers = await Promise.all([first, ...Array.from({ length: 7 }, (_, n) => call(t, "plain", { n: n + 1 }))])
    expect(answers.map((a) => a.result)).toEqual(
      Array.from({ length: 8 }, (_, n) => ({ content: [{ type: "text", text: `ok ${n}` }] }))
    )
    expect(writes.map((w) => w.trim().split("\n").length)).toEqual([1, 7])
    const sent = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    expect(sent.map((m) => [m.id, m.params.arguments.n])).toEqual(
      Array.from({ length: 8 }, (_, n) => [DIRECT_IDS + n, n])
    )
  })

  it("a result it does not take as is is the schema's: parsed, or its error", async () => {
    const { t } = await started()
    const annotated = await call(t, "annotated")
    expect(annotated.result).toEqual(CallToolResultSchema.parse({
      content: [{ type: "text", text: "a", annotations: { priority: 1 }, x: 1 }]
    }))
    expect(annotated.result).toEqual({ content: [{ type: "text", text: "a", annotations: { priority: 1 } }] })
    const bad = await call(t, "bad")
    expect(bad.result).toBeUndefined()
    expect(bad.error).toEqual(CallToolResultSchema.safeParse({ content: "nope" }).error)
  })

  it("an error response is the SDK's McpError; other messages go to onmessage", async () => {
    const { t } = await started()
    const messages: Array<unknown> = []
    t.onmessage = (m) => messages.push(m)
    const error = await call(t, "error")
    expect(error.error).toBeInstanceOf(McpError)
    expect(error.error).toMatchObject({ code: -32602, message: "MCP error -32602: bad params" })
    expect((await call(t, "notify")).result).toEqual({})
    expect(messages).toEqual([
      { jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: "hi" } }
    ])
  })

  it("an answer that is no JSON-RPC response fails its call at once (the SDK drops it, and the call times out)", async () => {
    const { t } = await started()
    const errors: Array<Error> = []
    t.onerror = (e) => errors.push(e)
    const t0 = performance.now()
    const [nul, extra] = await Promise.all([call(t, "null"), call(t, "extraKey")])
    expect(performance.now() - t0).toBeLessThan(2_000)
    expect(nul.error).toBeInstanceOf(InvalidAnswer)
    expect(nul.error).toMatchObject({
      message: "the answer is no JSON-RPC response: result: expected an object, got null"
    })
    expect(extra.error).toMatchObject({
      message: "the answer is no JSON-RPC response: the key \"extra\", which a response does not have"
    })
    expect(errors).toEqual([])
    expect((await call(t, "plain", { n: 1 })).result).toEqual({ content: [{ type: "text", text: "ok 1" }] })
  })

  it("a line over maxBufferSize fails the call it answers (its id at either end), and the connection goes on", async () => {
    const { t } = await started(100_000)
    const closed: Array<string> = []
    t.onclose = () => closed.push("closed")
    // Over the limit in one chunk or in many (64 KiB each), with the id last (the SDK's servers) or first.
    const answers = await Promise.all([
      call(t, "long", { n: 150_000 }),
      call(t, "longFirst", { n: 2_000_000 }),
      call(t, "long", { n: 99_000 }),
      call(t, "plain", { n: 1 })
    ])
    const text = (n: number) => ({ content: [{ type: "text", text: "y".repeat(n) }] })
    const last = JSON.stringify({ result: text(150_000), jsonrpc: "2.0", id: DIRECT_IDS }).length
    const first = JSON.stringify({ jsonrpc: "2.0", id: DIRECT_IDS + 1, result: text(2_000_000) }).length + 1 // \r
    expect(answers[0]!.error).toBeInstanceOf(InvalidAnswer)
    expect(answers[0]!.error).toMatchObject({
      message: `the answer is ${last} bytes long, over the 100000 bytes an MCP message may take`
    })
    expect(answers[1]!.error).toMatchObject({
      message: `the answer is ${first} bytes long, over the 100000 bytes an MCP message may take`
    })
    expect(answers[2]!.result).toEqual({ content: [{ type: "text", text: "y".repeat(99_000) }] })
    expect(answers[3]!.result).toEqual({ content: [{ type: "text", text: "ok 1" }] })
    expect(closed).toEqual([])
  })

  it("a line over maxBufferSize that answers no call closes the connection; its calls say why", async () => {
    const { t } = await started(100_000)
    const pending = call(t, "silent")
    await call(t, "longNote", { n: 200_000 })
    const lost = await pending
    expect(lost.error).toBeInstanceOf(MessageTooLong)
    const note = {
      jsonrpc: "2.0",
      method: "notifications/message",
      params: { level: "info", data: "y".repeat(200_000) }
    }
    expect(lost.error).toMatchObject({
      message: `the server sent a message of ${JSON.stringify(note).length} bytes, over the 100000 bytes an MCP ` +
        "message may take, " +
        "that answers no call it was sent: the connection was closed"
    })
  })

  it("no answer in time: RequestTimeout, and the request is cancelled on the server as the SDK does", async () => {
    const { log, t } = await started()
    const late = await call(t, "silent", {}, 100)
    expect(late.error).toMatchObject({ code: ErrorCode.RequestTimeout, data: { timeout: 100 } })
    expect((late.error as McpError).data).toEqual({ timeout: 100 }) // not held: it answered the ping
    expect((await call(t, "plain", { n: 3 })).result).toEqual({ content: [{ type: "text", text: "ok 3" }] })
    const sent = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    // Nothing came from the server while the call waited: it was asked for a ping (and answered it).
    expect(sent[1]).toEqual({ jsonrpc: "2.0", id: DIRECT_IDS + 1, method: "ping" })
    expect(sent[2]).toEqual({
      jsonrpc: "2.0",
      method: "notifications/cancelled",
      params: { requestId: DIRECT_IDS, reason: "McpError: MCP error -32001: Request timed out" }
    })
  })

  it("a server that answers nothing, not even a ping, while a call waits is held: the connection closes", async () => {
    const { t } = await started()
    const closed: Array<string> = []
    t.onclose = () => closed.push("closed")
    expect((await call(t, "plain", { n: 1 })).result).toBeDefined()
    const held = call(t, "hold", {}, 300)
    const after = call(t, "plain", { n: 2 }, 5_000)
    const t0 = performance.now()
    const [holding, waiting] = await Promise.all([held, after])
    // The held call times out (saying so), the call after it fails at once rather than after its 5 s.
    expect(holding.error).toMatchObject({ code: ErrorCode.RequestTimeout, data: { timeout: 300, held: true } })
    expect(waiting.error).toBeInstanceOf(ServerStalled)
    expect(performance.now() - t0).toBeLessThan(4_000)
    expect(closed).toEqual(["closed"])
  })

  it("each call times out at its own deadline, whatever the timeouts of the calls before it; answered calls never do", async () => {
    const { t } = await started()
    const t0 = performance.now()
    const long = call(t, "silent", {}, 1_500)
    const answered = await call(t, "plain", { n: 4 }, 1_000)
    const short = await call(t, "silent", {}, 200)
    const shortMs = performance.now() - t0
    expect(answered.result).toEqual({ content: [{ type: "text", text: "ok 4" }] })
    expect(short.error).toMatchObject({ code: ErrorCode.RequestTimeout, data: { timeout: 200 } })
    expect(shortMs).toBeGreaterThanOrEqual(200)
    expect(shortMs).toBeLessThan(1_400)
    expect((await long).error).toMatchObject({ code: ErrorCode.RequestTimeout, data: { timeout: 1_500 } })
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1_500)
    // The plain call's deadline went by before the long one's: it had answered, so nothing came of it.
    expect((await call(t, "plain", { n: 5 })).result).toEqual({ content: [{ type: "text", text: "ok 5" }] })
  })

  it("a server that takes its calls one at a time: each call's timeout runs from when the call before it was answered", async () => {
    const { t } = await started()
    const t0 = performance.now()
    // 8 calls of 200 ms in turn (1,600 ms in all), each with a timeout of 1,000 ms: 800 ms to spare per call on a
    // loaded machine (400 ms at 150 / 400 failed once under the full suite with helpers' tests beside it).
    const answers = await Promise.all(Array.from({ length: 8 }, (_, n) => call(t, "queued", { n, ms: 200 }, 1_000)))
    // Was: the calls from the fifth on (answered 1,000 ms and more after they were sent) timed out.
    expect(answers.map((a) => a.error)).toEqual(Array.from({ length: 8 }, () => undefined))
    expect(answers.map((a) => a.result)).toEqual(
      Array.from({ length: 8 }, (_, n) => ({ content: [{ type: "text", text: `ok ${n}` }] }))
    )
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1_600)
  })

  it("a call never answered times out its timeout after the call before it ended; the calls after it go on", async () => {
    const { t } = await started()
    const t0 = performance.now()
    const timed = (name: string, args: Record<string, unknown>, timeoutMs: number) =>
      call(t, name, args, timeoutMs).then((a) => ({ ...a, ms: performance.now() - t0 }))
    const queued = [0, 1, 2].map((n) => timed("queued", { n, ms: 150 }, 1_000)) // answered at 150, 300, 450 ms
    const first = timed("silent", {}, 300) // its clock starts at 450 ms: it times out at 750 ms
    const second = timed("silent", {}, 300) // its clock starts when the first timed out: 1,050 ms
    const after = timed("queued", { n: 3, ms: 150 }, 1_000) // answered at 600 ms
    const [, , , one, two, three] = await Promise.all([...queued, first, second, after])
    for (const silent of [one, two]) {
      expect(silent.error).toMatchObject({ code: ErrorCode.RequestTimeout, data: { timeout: 300 } })
      expect((silent.error as McpError).data).toEqual({ timeout: 300 }) // not held: the server answered the ping
    }
    // Was: both at 300 ms, while the server was busy with the calls before them.
    // The upper bounds only show that neither waits without end (generous: the suite loads the machine).
    expect(one.ms).toBeGreaterThanOrEqual(750)
    expect(one.ms).toBeLessThan(3_000)
    expect(two.ms).toBeGreaterThanOrEqual(1_050)
    expect(two.ms).toBeLessThan(4_000)
    expect(three.result).toEqual({ content: [{ type: "text", text: "ok 3" }] })
    expect((await call(t, "plain", { n: 5 }, 300)).result).toEqual({ content: [{ type: "text", text: "ok 5" }] })
  })

  it(
    "a server that takes its calls and pings in turn, each call slower than its timeout, is not held: its answers show it works",
    async () => {
      const { log, t } = await started(undefined, "queue-pings")
      const closed: Array<string> = []
      t.onclose = () => closed.push("closed")
      const pid = t.pid
      const messages: Array<unknown> = []
      t.onmessage = (m) => messages.push(m)
      await call(t, "plain", { n: 0 }) // the server has started: the calls' clocks and its work begin together
      // 4 calls of 1,400 ms in turn (answered at 1.4, 2.8, 4.2 and 5.6 s), each with a timeout of 1,000 ms (the
      // ping's wait too): each times out, and the ping after it waits behind the calls still queued (the first one
      // 4.6 s), but an answer comes every 1.4 s.
      const answers = await Promise.all([0, 1, 2, 3].map((n) => call(t, "queued", { n, ms: 1_400 }, 1_000)))
      // Was: no answer to the ping 1 s after the first call timed out: the server was found held and ended while
      // it worked (the first call "held", the 3 after it ServerStalled, to run again on a new server).
      // Each times out as any call does (not held), or, on a loaded machine, is answered before its timer fires.
      const timedOut = { code: ErrorCode.RequestTimeout, data: { timeout: 1_000 } }
      answers.forEach((a, n) => {
        const error = a.error as McpError | undefined
        const outcome = error === undefined ? a.result : { code: error.code, data: error.data }
        expect([timedOut, { content: [{ type: "text", text: `ok ${n}` }] }]).toContainEqual(outcome)
      })
      expect(answers.filter((a) => a.error !== undefined).length).toBeGreaterThan(0)
      const sent = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l))
      expect(sent.filter((m) => m.method === "ping").length).toBeGreaterThan(0)
      expect(closed).toEqual([])
      expect(t.pid).toBe(pid)
      // Answered after the late answers and the pings: no one waited for those, and none went to the SDK.
      expect((await call(t, "queued", { n: 5, ms: 0 }, 5_000)).result).toEqual({
        content: [{ type: "text", text: "ok 5" }]
      })
      expect(messages).toEqual([])
    },
    20_000
  )

  it(
    "a call that holds the server after another was answered late is the one held, its timeout after the server began it",
    async () => {
      const { t } = await started(undefined, "queue-pings")
      await call(t, "plain", { n: 0 }) // the server has started: the calls' clocks and its work begin together
      const t0 = performance.now()
      const timed = (args: Record<string, unknown>, timeoutMs: number) =>
        call(t, "queued", args, timeoutMs).then((a) => ({ ...a, ms: performance.now() - t0 }))
      const [late, holding, after] = await Promise.all([
        timed({ n: 0, ms: 1_400 }, 1_000), // times out at 1 s, answered at 1.4 s
        timed({ n: 1, ms: 0, hold: true }, 1_000), // its turn comes at 1.4 s: the server answers nothing more
        timed({ n: 2, ms: 100 }, 5_000)
      ])
      // Was: the late call was found "held" at 2 s (its answer did not count, the ping waited behind the held one),
      // and the call that held the server failed as one that had waited in vain.
      expect((late.error as McpError).data).toEqual({ timeout: 1_000 })
      expect(holding.error).toMatchObject({ code: ErrorCode.RequestTimeout, data: { timeout: 1_000, held: true } })
      expect(after.error).toBeInstanceOf(ServerStalled)
      // Found held its timeout and the ping's wait after the server began it (1.4 + 1 + 1 s), not later (a loose bound
      // above: the suite loads the machine).
      expect(holding.ms).toBeGreaterThanOrEqual(3_300)
      expect(holding.ms).toBeLessThan(6_000)
      expect(after.ms).toBeLessThan(6_000)
    },
    20_000
  )

  it("the server exiting fails the calls in flight with ConnectionClosed after onclose; later calls: Not connected", async () => {
    const { t } = await started()
    const order: Array<string> = []
    t.onclose = () => order.push("onclose")
    const pending = call(t, "silent").then((a) => {
      order.push("call failed")
      return a
    })
    const exited = await call(t, "exit")
    expect(exited.error).toMatchObject({ code: ErrorCode.ConnectionClosed })
    expect((await pending).error).toMatchObject({
      code: ErrorCode.ConnectionClosed,
      message: "MCP error -32000: Connection closed"
    })
    expect(order).toEqual(["onclose", "call failed"])
    expect((await call(t, "plain")).error).toEqual(new Error("Not connected"))
  })
})

/** A launcher (as `npx -y server` is) whose server outlives stdin's end and the launcher itself. */
const LAUNCHER = String.raw`
const { spawn } = require("node:child_process")
const server = spawn(process.execPath, ["-e", "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { stdio: "inherit" })
require("node:fs").writeFileSync(process.argv[1], String(server.pid))
setInterval(() => {}, 1000)
`

/** Whether `pid` runs (a zombie, killed and waiting for init to reap it, does not). */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

describe("StdioTransport.close", () => {
  it("ends the server a launcher started too (it held the pipes, and skyrl, open until it finished)", async () => {
    const pidFile = join(mkdtempSync(join(tmpdir(), "skyrl-launcher-")), "server.pid")
    const t = new StdioTransport({ command: process.execPath, args: ["-e", LAUNCHER, pidFile], stderr: "pipe" })
    await t.start()
    let server = 0
    for (let i = 0; i < 100 && server === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      server = Number(readFileSync(pidFile, { encoding: "utf8", flag: "a+" }) || 0)
    }
    expect(alive(server)).toBe(true)
    const started = Date.now()
    await t.close()
    // The server ignores SIGTERM and stdin's end: only the SIGKILL that follows ends it.
    for (let i = 0; i < 20 && alive(server); i++) await new Promise((resolve) => setTimeout(resolve, 50))
    expect(alive(server)).toBe(false)
    expect(Date.now() - started).toBeLessThan(6_000)
  }, 15_000)
})
