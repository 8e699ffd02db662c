/**
 * The built CLI: `tools import --servers-config` (launch specs with variable names only), `verify`
 * from an inventory's launch specs or a servers config, `--dry-run`, exit codes, `cassettes stats`,
 * `validate` schema drift and `tools import --check`.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { callKey } from "../src/skyrl/canonical.js"
import { runChild } from "./support/child.js"
import type { CliResult } from "./support/cli.js"
import { BIN, cleanEnv, CLI_TIMEOUT_MS, runCli } from "./support/cli.js"
import { rowFor, serverBin, writeJsonl } from "./support/verifyRows.js"

const dir = mkdtempSync(join(tmpdir(), "skyrl-verify-cli-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const at = (name: string) => join(dir, name)
const json = (file: string) => JSON.parse(readFileSync(file, "utf8"))
const jsonl = (file: string) => readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))

const memoryFile = at("memory.jsonl")
const config = {
  mcpServers: {
    everything: { command: process.execPath, args: [serverBin("server-everything"), "stdio"] },
    memory: { command: process.execPath, args: [serverBin("server-memory")], env: { MEMORY_FILE_PATH: memoryFile } },
    off: { command: "/nonexistent", disabled: true }
  }
}

/**
 * `tools import --servers-config mcp.json --out inv.json`, run once for the file: the first test checks it; the
 * last tests take its everything server alone (what an import of that server alone writes, the same JSON).
 */
let imported: Promise<CliResult> | undefined
const importConfig = () =>
  imported ??= (async () => {
    writeFileSync(at("mcp.json"), JSON.stringify(config))
    return runCli(["tools", "import", "--servers-config", at("mcp.json"), "--out", at("inv.json")])
  })()

const rows = [
  rowFor("sum", [{ server: "everything", tool: "get-sum", params: { a: 1, b: 2 } }]),
  rowFor("graph", [{ server: "memory", tool: "read_graph", params: {} }])
]

describe("skyrl tools import / verify / cassettes (built CLI)", () => {
  beforeAll(() => {
    writeFileSync(at("mcp.json"), JSON.stringify(config))
    writeJsonl(at("rows.jsonl"), rows)
  })

  it("tools import --servers-config records launch specs with variable names, never values", async () => {
    const r = await importConfig()
    expect(r.stderr).not.toMatch(/ERROR/)
    expect(r.status).toBe(0)
    const inv = json(at("inv.json"))
    expect(inv.servers.map((s: any) => s.name)).toEqual(["everything", "memory"])
    const memory = inv.servers[1]
    expect(memory.launch).toEqual({
      transport: "stdio",
      command: process.execPath,
      args: [serverBin("server-memory")],
      env: ["MEMORY_FILE_PATH"],
      cwd: null
    })
    expect(memory.server_info).toMatchObject({ name: "memory-server" })
    expect(readFileSync(at("inv.json"), "utf8")).not.toContain(memoryFile)
    const open = memory.tools.find((t: any) => t.name === "open_nodes")
    expect(open).toMatchObject({
      title: "Open Nodes",
      annotations: { readOnlyHint: true },
      outputSchema: { type: "object" }
    })
    expect(open.schema_hash).toMatch(/^[0-9a-f]{64}$/)
  })

  it("verify starts servers from the inventory; a variable it needs that is not set is a clear reason", async () => {
    const r = await runCli(["verify", at("rows.jsonl"), "--inventory", at("inv.json"), "--out", at("a.jsonl")])
    expect(r.status).toBe(0)
    expect(jsonl(at("a.jsonl")).map((x) => x.reward_spec.ground_truth.task_id)).toEqual(["sum"])
    expect(jsonl(at("a.jsonl.rejects.jsonl"))).toEqual([
      expect.objectContaining({
        status: "server-unavailable",
        server: "memory",
        reason: expect.stringContaining("environment variable $MEMORY_FILE_PATH not set")
      })
    ])
    expect(r.stdout).toContain("rows: 2 → read 2 → contract 2 → schema 2 → execution (verified) 1")
    expect(r.stdout).toContain("everything: mcp-servers/everything@2.0.0")
    expect(existsSync(join(dir, "cassettes", "cassettes.jsonl"))).toBe(true) // default: next to --out
  })

  it("verify with --servers-config (the inventory has no launch specs) verifies both; cassettes stats summarises", async () => {
    const inv = json(at("inv.json"))
    for (const s of inv.servers) delete s.launch
    writeFileSync(at("bare.json"), JSON.stringify(inv))
    // An earlier run's output is left as it was when no row verifies (it is not replaced by an empty file).
    writeFileSync(at("b.jsonl"), "{\"earlier\":1}\n")
    const without = await runCli(["verify", at("rows.jsonl"), "--inventory", at("bare.json"), "--out", at("b.jsonl")])
    expect(without.status).toBe(1)
    const earlier = `no dataset was written: the ${at("b.jsonl")} there is an earlier run's, left as it was, and ` +
      "does not match these rejects (an empty dataset is never written: SkyRL's loader fails on one)"
    expect(without.stderr).toContain(`none of the 2 rows verified, so ${earlier}; the reasons are in`)
    expect(without.stdout).toContain(`no verified row, so ${earlier}; 2 rejects in`)
    expect(without.stdout).not.toContain("wrote 0 verified rows")
    expect(readFileSync(at("b.jsonl"), "utf8")).toBe("{\"earlier\":1}\n")
    expect(jsonl(at("b.jsonl.rejects.jsonl"))[0].reason).toContain("no launch spec")

    const r = await runCli([
      "verify",
      at("rows.jsonl"),
      "--inventory",
      at("bare.json"),
      "--servers-config",
      at("mcp.json"),
      "--out",
      at("c.parquet"),
      "--cassettes",
      at("tapes")
    ])
    expect(r.status).toBe(0)
    expect(r.stdout).toContain("statuses: verified 2")
    const stats = await runCli(["cassettes", "stats", at("tapes")])
    expect(stats.status).toBe(0)
    expect(stats.stdout).toContain("2 entries (distinct calls) in 2 lines")
    expect(stats.stdout).toMatch(/everything\/get-sum\s+1\s+0\s+0/)
    expect(stats.stdout).toContain("memory-server@0.6.3")
    const asJson = JSON.parse((await runCli(["cassettes", "stats", at("tapes"), "--json"])).stdout)
    expect(asJson).toMatchObject({ entries: 2, errors: 0, torn: false })
    // The store's file itself, as MCPToolEnv's `cassettes` setting takes it.
    const byFile = await runCli(["cassettes", "stats", join(at("tapes"), "cassettes.jsonl")])
    expect(byFile.status).toBe(0)
    expect(byFile.stdout).toContain("2 entries (distinct calls) in 2 lines")
  })

  it("a Parquet input, read whole (no --limit), verifies like its JSON Lines source", async () => {
    // c.parquet: the rows the test before verified (failed before with "internal error: Infinity must be an integer").
    const args = ["--inventory", at("bare.json"), "--servers-config", at("mcp.json"), "--cassettes", at("tapes")]
    const r = await runCli(["verify", at("c.parquet"), ...args, "--out", at("from-parquet.jsonl")])
    expect(r.stderr).not.toMatch(/internal error/)
    expect(r.status).toBe(0)
    expect(r.stdout).toContain("rows: 2 → read 2 → contract 2 → schema 2 → execution (verified) 2")
    expect(jsonl(at("from-parquet.jsonl")).map((x) => x.reward_spec.ground_truth.task_id)).toEqual(["sum", "graph"])
  })

  it("--dry-run lists what would run and starts nothing; bad usage exits 2", async () => {
    const r = await runCli([
      "verify",
      at("rows.jsonl"),
      "--inventory",
      at("inv.json"),
      "--out",
      at("d.jsonl"),
      "--dry-run",
      "--cassettes",
      at("dry-tapes")
    ])
    expect(r.status).toBe(0)
    expect(r.stdout).toContain("row 0: run: 1 steps: everything/get-sum")
    expect(r.stdout).toContain(`server everything: would start ${process.execPath}`)
    expect(existsSync(at("d.jsonl"))).toBe(false)
    expect(existsSync(at("dry-tapes"))).toBe(false)
    const limited = await runCli([
      "verify",
      at("rows.jsonl"),
      "--inventory",
      at("inv.json"),
      "--out",
      at("d.jsonl"),
      "--dry-run",
      "--limit",
      "1"
    ])
    expect(limited.stdout).toContain("row 0: run")
    expect(limited.stdout).not.toContain("row 1:")
    expect(limited.stdout).toContain("rows: 1 → read 1")
    // A row the run would skip for its side effect is counted as skipped (the summary said 0).
    const create = { entities: [{ name: "A", entityType: "t", observations: [] }] }
    writeJsonl(at("side.jsonl"), [
      ...rows,
      rowFor("make", [{ server: "memory", tool: "create_entities", params: create }])
    ])
    const side = await runCli([
      "verify",
      at("side.jsonl"),
      "--inventory",
      at("inv.json"),
      "--out",
      at("d.jsonl"),
      "--dry-run"
    ])
    expect(side.stdout).toContain("row 2: skip-side-effect: step 1 memory/create_entities")
    expect(side.stdout).toContain("skipped-side-effect 1")
    const same = await runCli(["verify", at("rows.jsonl"), "--out", at("rows.jsonl")])
    expect(same.status).toBe(2)
    expect(same.stderr).toContain("--out: is the input dataset; verify never modifies its input")
    // The journal is an output too: a dataset named as --out's journal was emptied, then held the run's journal.
    const journalNamed = at("j.jsonl.verify-journal.jsonl")
    writeFileSync(journalNamed, readFileSync(at("rows.jsonl")))
    const overJournal = await runCli(["verify", journalNamed, "--inventory", at("inv.json"), "--out", at("j.jsonl")])
    expect(overJournal.stderr).toContain("--out's journal: is the input dataset; verify never modifies its input")
    expect(overJournal.status).toBe(2)
    expect(readFileSync(journalNamed, "utf8")).toBe(readFileSync(at("rows.jsonl"), "utf8"))
    // The cassette store too: a dataset (or an inventory) at --cassettes DIR/cassettes.jsonl was appended to, with a
    // warning that its lines "are not cassette entries", and exit 0.
    const storeDir = at("store")
    mkdirSync(storeDir, { recursive: true })
    const asStore = join(storeDir, "cassettes.jsonl")
    writeFileSync(asStore, readFileSync(at("rows.jsonl")))
    for (const args of [[asStore, "--inventory", at("inv.json")], [at("rows.jsonl"), "--inventory", asStore]]) {
      const overStore = await runCli(["verify", ...args, "--out", at("s.jsonl"), "--cassettes", storeDir])
      expect(overStore.status, overStore.stderr).toBe(2)
      expect(overStore.stderr).toContain(`--cassettes' store ${asStore}: is the `)
      expect(readFileSync(asStore, "utf8")).toBe(readFileSync(at("rows.jsonl"), "utf8"))
    }
    // generate --verify and enrich --verify alike, before anything runs.
    const inventoryStore = join(at("inv-store"), "cassettes.jsonl")
    mkdirSync(at("inv-store"), { recursive: true })
    writeFileSync(inventoryStore, readFileSync(at("inv.json")))
    for (const command of [["generate", "-n", "1"], ["enrich", at("rows.jsonl")]]) {
      const flags = ["--verify", "--inventory", inventoryStore, "--cassettes", at("inv-store"), "--out", at("g.jsonl")]
      const run = await runCli([...command, ...flags])
      expect(run.status, run.stderr).toBe(2)
      expect(run.stderr).toContain(`--cassettes' store ${inventoryStore}: is the --inventory file; ${command[0]} never`)
    }
    expect(readFileSync(inventoryStore, "utf8")).toBe(readFileSync(at("inv.json"), "utf8"))
    // An output format it cannot write is a usage error before anything starts (as in generate and convert).
    for (const command of [["verify", at("rows.jsonl")], ["convert", "data/examples/recorded-tasks.jsonl"]]) {
      const csv = await runCli([...command, "--out", at("rows.csv")])
      expect(csv.status).toBe(2)
      expect(csv.stderr).toContain(`"${at("rows.csv")}" must end in .json, .jsonl or .parquet`)
    }
  })

  it("--dry-run lists a copy of an earlier row (the same JSON text) as not run again, and counts it as the run does", async () => {
    const create = { entities: [{ name: "A", entityType: "t", observations: [] }] }
    const make = rowFor("make", [{ server: "memory", tool: "create_entities", params: create }])
    const other = rowFor("sum", [{ server: "everything", tool: "get-sum", params: { a: 5, b: 6 } }])
    const unknown = rowFor("ghost", [{ server: "everything", tool: "no-such-tool", params: {} }])
    // Rows 2 and 4 are copies (of rows 0 and 3); row 5 has other params; row 7 is rejected, as row 6 is.
    const file = writeJsonl(at("copies.jsonl"), [...rows, rows[0], make, make, other, unknown, unknown])
    const r = await runCli(["verify", file, "--inventory", at("inv.json"), "--out", at("d.jsonl"), "--dry-run"])
    expect(r.status).toBe(0)
    const lines = r.stdout.split("\n").filter((l) => l.startsWith(`${file} row `))
    expect(lines.map((l) => l.slice(file.length + 1))).toEqual([
      "row 0: run: 1 steps: everything/get-sum",
      "row 1: run: 1 steps: memory/read_graph",
      // Was "row 2: run: 1 steps: everything/get-sum": the run gives it row 0's outcome, without a call.
      `row 2: copy: the same row as ${file}:row 0, not run again`,
      "row 3: skip-side-effect: step 1 memory/create_entities",
      `row 4: copy: the same row as ${file}:row 3, not run again (skip-side-effect)`,
      "row 5: run: 1 steps: everything/get-sum",
      expect.stringMatching(/^row 6: reject: schema /),
      expect.stringMatching(/^row 7: reject: schema /)
    ])
    // As the run counts them: row 4 skipped as row 3 is, and both among the copies (the summary said neither).
    expect(r.stdout).toContain(
      "rows: 8 → read 8 → contract 8 → schema 6 → execution (dry run: verified in the journal) 0"
    )
    expect(r.stdout).toContain(
      "skipped-side-effect 2, interrupted 0; of these rows, 2 the same as an earlier row of the run, not run again"
    )
  })

  it("--dry-run --resume lists a row whose outcome the journal holds as resumed, as the run takes it", async () => {
    const done = rowFor("done", [{ server: "everything", tool: "get-sum", params: { a: 7, b: 8 } }])
    const fresh = rowFor("fresh", [{ server: "everything", tool: "get-sum", params: { a: 9, b: 10 } }])
    const out = ["--inventory", at("inv.json"), "--out", at("r.jsonl")]
    expect((await runCli(["verify", writeJsonl(at("first.jsonl"), [done]), ...out])).status).toBe(0)
    const file = writeJsonl(at("again.jsonl"), [done, done, fresh])
    const dry = await runCli(["verify", file, ...out, "--resume", "--dry-run"])
    expect(dry.status).toBe(0)
    const lines = dry.stdout.split("\n").filter((l) => l.startsWith(`${file} row `))
    // Before: rows 0 and 2 "run: 1 steps: everything/get-sum", row 1 a copy of row 0.
    expect(lines.map((l) => l.slice(file.length + 1))).toEqual([
      "row 0: resume: the journal's outcome, not run again: verified",
      "row 1: resume: the journal's outcome, not run again: verified",
      "row 2: run: 1 steps: everything/get-sum"
    ])
    const counts = "verified 2, tool-error 0, timeout 0, server-unavailable 0, skipped-side-effect 0, interrupted 0" +
      "; of these rows, 2 from the journal of an earlier run"
    expect(dry.stdout).toContain(counts)
    // Was "execution (verified) 2", as if the dry run had verified them.
    expect(dry.stdout).toContain(
      "rows: 3 → read 3 → contract 3 → schema 3 → execution (dry run: verified in the journal) 2"
    )
    const run = await runCli(["verify", file, ...out, "--resume"])
    expect(run.status).toBe(0)
    expect(run.stdout).toContain(counts.replace("verified 2", "verified 3"))
    // Without --resume nothing comes from the journal.
    const plain = await runCli(["verify", file, ...out, "--dry-run"])
    expect(plain.stdout).toContain(`${file} row 0: run: 1 steps: everything/get-sum`)
  })

  it("--resume: the summary's servers cover the journal's rows too, an earlier session's other version beside this one's", async () => {
    const graph = rowFor("graph-again", [{ server: "memory", tool: "read_graph", params: {} }])
    const sum = rowFor("sum-again", [{ server: "everything", tool: "get-sum", params: { a: 11, b: 12 } }])
    const fresh = rowFor("sum-fresh", [{ server: "everything", tool: "get-sum", params: { a: 13, b: 14 } }])
    const out = ["--inventory", at("inv.json"), "--servers-config", at("mcp.json"), "--out", at("sv.jsonl")]
    expect((await runCli(["verify", writeJsonl(at("sv-first.jsonl"), [graph, sum]), ...out])).status).toBe(0)
    // The earlier session's everything answered with another version (as after an upgrade between sessions).
    const journal = at("sv.jsonl.verify-journal.jsonl")
    const lines = jsonl(journal).map((e) =>
      e.record?.servers.everything === undefined
        ? e
        : { ...e, record: { ...e.record, servers: { everything: "mcp-servers/everything@1.9.0" } } }
    )
    writeJsonl(journal, lines)
    const run = await runCli(["verify", writeJsonl(at("sv-again.jsonl"), [graph, sum, fresh]), ...out, "--resume"])
    expect(run.status).toBe(0)
    expect(run.stdout).toContain("; of these rows, 2 from the journal of an earlier run")
    // Was "servers:\n  everything: mcp-servers/everything@2.0.0" alone: memory's row came from the journal.
    expect(run.stdout).toContain(
      "servers:\n" +
        "  everything: mcp-servers/everything@2.0.0 (this session); mcp-servers/everything@1.9.0 (an earlier " +
        "session's rows)\n" +
        "  memory: memory-server@0.6.3 (an earlier session's rows; not started in this session)\n"
    )
  })

  it("--resume with a journal line that is not readable before its last: stderr names file, line and reason; that row runs again", async () => {
    const plans = [3, 4, 5].map((a) =>
      rowFor(`sum-${a}`, [{ server: "everything", tool: "get-sum", params: { a, b: 1 } }])
    )
    const file = writeJsonl(at("three.jsonl"), plans)
    const out = ["--inventory", at("inv.json"), "--out", at("three-out.jsonl"), "--concurrency", "1"]
    expect((await runCli(["verify", file, ...out])).status).toBe(0)
    const journal = at("three-out.jsonl.verify-journal.jsonl")
    const [first, second, third] = readFileSync(journal, "utf8").split("\n")
    writeFileSync(journal, [first, second!.slice(0, 10), third, ""].join("\n"))
    const warning = `${journal}: 1 line(s) are not readable, skipped (line 2: not JSON (`
    const dry = await runCli(["verify", file, ...out, "--resume", "--dry-run"])
    expect(dry.stderr).toContain(warning)
    expect(dry.stdout.split("\n").filter((l) => l.startsWith(`${file} row `)).map((l) => l.split(": ")[1])).toEqual(
      ["resume", "run", "resume"]
    )
    const run = await runCli(["verify", file, ...out, "--resume"])
    expect(run.status).toBe(0)
    expect(run.stderr).toContain(warning)
    expect(run.stderr).toContain("the rows whose outcome they held run again")
    expect(run.stdout).toContain("verified 3, tool-error 0")
    expect(run.stdout).toContain("; of these rows, 2 from the journal of an earlier run")
  })

  it("a run that recorded nothing leaves an empty store; cassettes stats reports it empty (exit 0), not unreadable", async () => {
    // Every row stops at the schema stage (an inventory without the rows' servers): no call, no cassette line.
    writeFileSync(at("other.json"), JSON.stringify({ servers: [{ name: "x", tools: [] }] }))
    const args = ["--inventory", at("other.json"), "--out", at("none.jsonl"), "--cassettes", at("empty-tapes")]
    const r = await runCli(["verify", at("rows.jsonl"), ...args])
    expect(r.status).toBe(1)
    expect(existsSync(at("empty-tapes"))).toBe(true)
    const stats = await runCli(["cassettes", "stats", at("empty-tapes")])
    expect(stats.stderr).not.toMatch(/cannot read/)
    // said on stderr, so that a mistyped directory is not taken for an empty store without a word
    expect(stats.stderr).toContain(`${at("empty-tapes")} holds no cassettes.jsonl: nothing recorded there yet`)
    expect(stats.status).toBe(0)
    expect(stats.stdout).toContain("0 entries (distinct calls) in 0 lines")
    expect(JSON.parse((await runCli(["cassettes", "stats", at("empty-tapes"), "--json"])).stdout)).toMatchObject({
      entries: 0
    })
  })

  it("cassettes stats on a FIFO or a device: exit 2 naming it (was: an empty store, exit 0)", async () => {
    const fifo = at("tapes.fifo")
    expect((await runChild("mkfifo", [fifo])).status).toBe(0)
    for (const path of [fifo, "/dev/null"]) {
      const r = await runCli(["cassettes", "stats", path])
      expect(r.stderr.trim(), path).toBe(
        `skyrl: DIR: ${path} is neither a cassette directory nor a regular file (a FIFO, a device or a socket)`
      )
      expect(r.status).toBe(2)
      expect(r.stdout).toBe("")
    }
  })

  it("cassettes stats on a store with a line that is not an entry (MCPToolEnv refuses it): the stats, then exit 1", async () => {
    const [first, second] = readFileSync(join(at("tapes"), "cassettes.jsonl"), "utf8").split("\n")
    writeFileSync(at("bad-tapes.jsonl"), `${first}\n{"note": "hand edit"}\n${second}\n`)
    const bad = await runCli(["cassettes", "stats", at("bad-tapes.jsonl")])
    expect(bad.stdout).toContain("2 entries (distinct calls) in 3 lines")
    expect(bad.stderr).toContain(`${at("bad-tapes.jsonl")}, line 2: 1 line(s) are not cassette entries`)
    expect(bad.status).toBe(1)
    // A torn last line (a crash mid-append) is what readers ignore: still exit 0.
    writeFileSync(at("torn-tapes.jsonl"), `${first}\n${second}\n{"key": "ab`)
    const torn = await runCli(["cassettes", "stats", at("torn-tapes.jsonl")])
    expect(torn.stdout).toContain("torn last line ignored")
    expect(torn.status).toBe(0)
  })

  it("cassettes stats on a recorded store whose line's params were edited since: exit 1 naming both keys", async () => {
    const lines = readFileSync(join(at("tapes"), "cassettes.jsonl"), "utf8").split("\n").filter((l) => l !== "")
    // everything/get-sum's line as verify recorded it (the other is memory/read_graph's), first in the copy.
    const sum = lines.find((l) => JSON.parse(l).tool === "get-sum")!
    expect(JSON.parse(sum).params).toEqual({ a: 1, b: 2 })
    // Before: exit 0, "2 entries", and MCPToolEnv answered get-sum(1, 5) with the sum of 1 and 2.
    const edited = sum.replace("\"b\":2", "\"b\":5")
    writeFileSync(at("edited-tapes.jsonl"), `${edited}\n${lines.find((l) => l !== sum)}\n`)
    const r = await runCli(["cassettes", "stats", at("edited-tapes.jsonl")])
    const recorded = JSON.parse(sum).key
    const asEdited = callKey("everything", "get-sum", { a: 1, b: 5 })
    const reason = `line 1: key: "${recorded}" is not the key of its server, tool and params ("${asEdited}")`
    expect(r.stdout).toContain("1 entry (distinct call) in 2 lines")
    expect(r.stdout).toContain(reason)
    expect(r.stderr).toContain(`${at("edited-tapes.jsonl")}, line 1: 1 line(s) are not cassette entries`)
    expect(r.stderr).toContain(`the key that of the server, tool and params), the first: ${reason}`)
    expect(r.status).toBe(1)
    // --trust-keys: the key as written, as before 2026-12-05 (a store another program wrote without params).
    const trusting = await runCli(["cassettes", "stats", at("edited-tapes.jsonl"), "--trust-keys"])
    expect(trusting.stdout).toContain("2 entries (distinct calls) in 2 lines")
    expect(trusting.status).toBe(0)
  })

  it("cassettes stats FILE reads any file it is given (as MCPToolEnv does), not only a name ending in .jsonl", async () => {
    writeFileSync(at("tapes.bak"), readFileSync(join(at("tapes"), "cassettes.jsonl")))
    const stats = await runCli(["cassettes", "stats", at("tapes.bak")])
    // Was "tapes.bak/cassettes.jsonl: 0 entries", exit 0: the file was taken for a directory without a store.
    expect(stats.stdout).toContain(`${at("tapes.bak")}: 2 entries (distinct calls) in 2 lines`)
    expect(stats.status).toBe(0)
  })

  it("--allow-side-effects naming no tool of the inventory (a typo) is warned about, each name once", async () => {
    const args = ["verify", at("rows.jsonl"), "--inventory", at("inv.json"), "--out", at("d.jsonl"), "--dry-run"]
    const r = await runCli([...args, "--allow-side-effects", "get-sum,memory.read_grap,create_entitie"])
    expect(r.status).toBe(0)
    expect(r.stderr).toContain(
      "--allow-side-effects: memory.read_grap, create_entitie name no tool of the inventory (TOOL or SERVER.TOOL)"
    )
    const fine = await runCli([...args, "--allow-side-effects", "get-sum,memory.create_entities,all"])
    expect(fine.stderr).not.toContain("name no tool")
  })

  it("validate --inventory reports plan/schema-drift for a step whose schema_hash is not the inventory's", async () => {
    const inv = json(at("inv.json"))
    const hash = inv.servers[0].tools.find((t: any) => t.name === "get-sum").schema_hash
    const fresh = rowFor("fresh", [{ server: "everything", tool: "get-sum", params: { a: 1, b: 2 } }])
    const stale = rowFor("stale", [{ server: "everything", tool: "get-sum", params: { a: 3, b: 4 } }])
    fresh.reward_spec.ground_truth.tool_sequence[0].schema_hash = hash
    stale.reward_spec.ground_truth.tool_sequence[0].schema_hash = "0".repeat(64)
    writeJsonl(at("drift.jsonl"), [fresh, stale])
    const r = await runCli(["validate", at("drift.jsonl"), "--inventory", at("inv.json"), "--json"])
    expect(r.status).toBe(1)
    const rule = JSON.parse(r.stdout).rules.find((x: any) => x.id === "plan/schema-drift")
    expect(rule.count).toBe(1)
    expect(rule.examples[0]).toMatchObject({
      row: 1,
      field: "reward_spec.ground_truth.tool_sequence[0].schema_hash",
      message: expect.stringContaining("step 1 everything/get-sum: the tool's input schema changed")
    })
  })

  it("tools import --check INV prints added, removed and changed tools (exit 1); unchanged exits 0", async () => {
    // memory's launch spec names MEMORY_FILE_PATH, which is not set here: that server cannot be checked.
    const unset = await runCli(["tools", "import", "--check", at("inv.json")])
    expect(unset.status).toBe(1)
    expect(unset.stderr).toContain("could not check every server")
    expect(unset.stderr).toContain("$MEMORY_FILE_PATH not set")
    const same = await runCli(["tools", "import", "--check", at("inv.json"), "--servers-config", at("mcp.json")])
    expect(same.status).toBe(0)
    expect(same.stdout).toBe("")
    const inv = json(at("inv.json"))
    const everything = inv.servers[0]
    everything.tools = everything.tools.filter((t: any) => t.name !== "echo")
    const sum = everything.tools.find((t: any) => t.name === "get-sum")
    sum.inputSchema.properties.c = { type: "number" }
    delete sum.schema_hash
    everything.tools.find((t: any) => t.name === "get-env").annotations.readOnlyHint = false
    everything.tools.push({ name: "retired", inputSchema: { type: "object" } })
    writeFileSync(at("old.json"), JSON.stringify(inv))
    const r = await runCli(["tools", "import", "--check", at("old.json"), "--servers-config", at("mcp.json")])
    expect(r.status).toBe(1)
    expect(r.stdout.split("\n").filter((l) => l !== "").sort()).toEqual([
      "+ everything/echo added",
      "- everything/retired removed",
      "~ everything/get-env: annotations changed",
      "~ everything/get-sum: input schema changed"
    ])
    expect(r.stderr).toContain("4 tools changed")
  })

  it("tools import --check lists a --servers-config server the inventory lacks: its tools are added (exit 1)", async () => {
    const inv = json(at("inv.json"))
    const everything = inv.servers.find((s: any) => s.name === "everything")
    writeFileSync(at("memory-only.json"), JSON.stringify({ servers: inv.servers.filter((s: any) => s !== everything) }))
    const r = await runCli(["tools", "import", "--check", at("memory-only.json"), "--servers-config", at("mcp.json")])
    expect(r.status).toBe(1)
    // Was exit 0 and nothing printed: the server not in the inventory was never listed.
    const added = everything.tools.map((t: any) => `+ everything/${t.name} added`)
    expect(r.stdout.split("\n").filter((l) => l !== "").sort()).toEqual(added.sort())
    expect(r.stderr).toContain(`${added.length} tools changed`)
    expect(r.stderr).toContain("and 1 MCP server not in it (everything)")
  })

  it("tools import records its directory as cwd when a launch holds a relative path; --check elsewhere starts there", async () => {
    const project = realpathSync(mkdtempSync(join(dir, "project-")))
    mkdirSync(join(project, "files"))
    const fs = `fs='${process.execPath}' '${serverBin("server-filesystem")}' ./files`
    const r = await runCli(["tools", "import", "--stdio", fs, "--out", "inv.json"], { cwd: project })
    expect(r.stderr).not.toMatch(/ERROR/)
    expect(r.status).toBe(0)
    const inv = json(join(project, "inv.json"))
    expect(inv.servers[0].launch).toMatchObject({ args: [serverBin("server-filesystem"), "./files"], cwd: project })
    const elsewhere = mkdtempSync(join(dir, "elsewhere-"))
    const check = await runCli(["tools", "import", "--check", join(project, "inv.json")], { cwd: elsewhere })
    expect(check.stderr).not.toMatch(/ERROR/)
    expect(check.status).toBe(0)
  })
})

describe("verify replaces its rejects file only with the dataset it belongs to (built CLI)", () => {
  it(
    "a dataset that cannot be written (the file size limit, as a full disk) leaves both files as they were",
    async () => {
      const own = mkdtempSync(join(dir, "pair-"))
      const out = join(own, "rows.jsonl")
      const rejectsFile = `${out}.rejects.jsonl`
      const everything = { mcpServers: { everything: config.mcpServers.everything } }
      writeFileSync(join(own, "mcp.json"), JSON.stringify(everything))
      const inv = join(own, "inv.json")
      // The file's import of mcp.json, its everything server alone (as `tools import` of own/mcp.json writes it).
      expect((await importConfig()).status).toBe(0)
      const all = json(at("inv.json"))
      writeFileSync(inv, JSON.stringify({ ...all, servers: all.servers.filter((s: any) => s.name === "everything") }))
      // A verified row of ~8 KB (a note in its task_metadata, kept as read); a row whose tool the server lacks.
      const big = (i: number) => {
        const row = rowFor(`sum-${i}`, [{ server: "everything", tool: "get-sum", params: { a: i, b: 2 } }])
        const metadata = JSON.parse(row.extra_info.task_metadata)
        row.extra_info.task_metadata = JSON.stringify({ ...metadata, note: "x".repeat(8000) })
        return row
      }
      const bad = (id: string) => rowFor(id, [{ server: "everything", tool: "no-such-tool", params: {} }])
      const args = ["--inventory", inv, "--servers-config", join(own, "mcp.json"), "--out", out]
      const first = writeJsonl(join(own, "first.jsonl"), [big(1), bad("bad-first")])
      expect((await runCli(["verify", first, ...args])).status).toBe(0)
      const [rowsText, rejects] = [readFileSync(out, "utf8"), readFileSync(rejectsFile, "utf8")]
      expect(jsonl(rejectsFile)).toEqual([expect.objectContaining({ file: first, row: 1, stage: "schema" })])
      // 20 verified rows of ~8 KB against a limit of 64 KB: the rows' file cannot be written, the rejects (and
      // the journal and cassette lines, a few KB) could be.
      const second = writeJsonl(join(own, "second.jsonl"), [
        bad("bad-a"),
        ...Array.from({ length: 20 }, (_, i) => big(i + 2)),
        bad("bad-b")
      ])
      const limited = await runChild(
        "bash",
        ["-c", "ulimit -f 64 && exec \"$0\" \"$@\"", process.execPath, BIN, "verify", second, ...args],
        { env: cleanEnv(), cwd: own, timeoutMs: CLI_TIMEOUT_MS }
      )
      expect(limited.status).toBe(1)
      expect(limited.stderr).toContain(`cannot write ${out}`)
      expect(readFileSync(out, "utf8")).toBe(rowsText)
      // Before: the rejects of the run whose rows were not written (rows 0 and 21 of second.jsonl), beside the
      // first run's rows.
      expect(readFileSync(rejectsFile, "utf8")).toBe(rejects)
      expect(readdirSync(own).filter((f) => f.endsWith(".tmp"))).toEqual([])
      // Written, both are replaced.
      const r = await runCli(["verify", second, ...args])
      expect(r.status).toBe(0)
      expect(readFileSync(out, "utf8").trim().split("\n")).toHaveLength(20)
      expect(jsonl(rejectsFile).map((x) => [x.file, x.row])).toEqual([[second, 0], [second, 21]])
    },
    90_000
  )
})

describe("verify --servers-config entries the inventory lacks (built CLI)", () => {
  it("are warned about by name (a typo started the server from the inventory's launch spec, without the entry's env)", async () => {
    const own = mkdtempSync(join(dir, "unused-"))
    const sum = { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] }
    const inv = join(own, "inv.json")
    writeFileSync(
      inv,
      JSON.stringify({
        servers: [{
          name: "everything",
          tools: [{ name: "get-sum", inputSchema: sum, annotations: { readOnlyHint: true } }]
        }]
      })
    )
    const mcp = join(own, "mcp.json")
    const everything = config.mcpServers.everything
    writeFileSync(mcp, JSON.stringify({ mcpServers: { everything, everythign: everything, memroy: everything } }))
    const rows = writeJsonl(join(own, "rows.jsonl"), [
      rowFor("sum", [{ server: "everything", tool: "get-sum", params: { a: 1, b: 2 } }])
    ])
    const args = [
      "verify",
      rows,
      "--inventory",
      inv,
      "--servers-config",
      mcp,
      "--out",
      join(own, "v.jsonl"),
      "--dry-run"
    ]
    const r = await runCli(args)
    expect(r.status).toBe(0)
    expect(r.stdout).toContain("row 0: run: 1 steps: everything/get-sum")
    // Before: nothing said; the entries were silently left out.
    expect(r.stderr).toContain(
      "--servers-config: everythign, memroy name no server of the inventory (everything); their entries are not used"
    )
  })
})
