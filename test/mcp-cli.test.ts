/**
 * `skyrl tools import` / `skyrl tools list` run in-process through @effect/cli (the documented
 * argument forms), against real MCP servers from node_modules.
 */
import { Command } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Effect, Either, Exit, Logger } from "effect"
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it, vi } from "vitest"
import { describeCause, exitCodeOf } from "../src/cli/exit.js"
import { toolsCommand } from "../src/cli/tools.js"
import { parseInventoryText } from "../src/domain/inventory.js"
import { pairServerArgs, splitCommandLine } from "../src/skyrl/serverSpecs.js"

const ROOT = join(__dirname, "..")
const serverBin = (pkg: string) => join(ROOT, "node_modules", "@modelcontextprotocol", pkg, "dist", "index.js")
const FINANCE_FILE = join(ROOT, "test", "fixtures", "inventory", "finance-mcp.json")
const PAGED_SERVER = join(ROOT, "test", "fixtures", "mcp", "paged-server.mjs")
/** A command line for --stdio (quoted so that paths with spaces survive the word splitting). */
const cmd = (...words: Array<string>) => words.map((w) => `'${w}'`).join(" ")

const cli = Command.run(Command.make("skyrl").pipe(Command.withSubcommands([toolsCommand])), {
  name: "skyrl",
  version: "0.0.0"
})

const runTools = async (args: ReadonlyArray<string>) => {
  const stdout: Array<string> = []
  const spy = vi.spyOn(console, "log").mockImplementation((...parts: Array<unknown>) => {
    stdout.push(parts.map(String).join(" "))
  })
  const logs: Array<string> = []
  const logger = Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ message }) => logs.push(Array.isArray(message) ? message.join(" ") : String(message)))
  )
  try {
    const exit = await Effect.runPromiseExit(
      cli(["node", "skyrl", "tools", ...args]).pipe(Effect.provide(NodeContext.layer), Effect.provide(logger))
    )
    return {
      exit,
      code: Exit.isSuccess(exit) ? 0 : exitCodeOf(exit.cause),
      error: Exit.isFailure(exit) ? describeCause(exit.cause, false) : "",
      stdout,
      logs
    }
  } finally {
    spy.mockRestore()
  }
}

afterEach(() => vi.restoreAllMocks())

describe("tools import arguments", () => {
  it("splits command lines like a shell, without a shell", () => {
    expect(Either.getOrThrow(splitCommandLine(`node "/a b/server.js" '$HOME' x\\ y --flag="1 2"`))).toEqual([
      "node",
      "/a b/server.js",
      "$HOME",
      "x y",
      "--flag=1 2"
    ])
    expect(Either.isLeft(splitCommandLine("node 'unterminated"))).toBe(true)
  })

  it("pairs NAME= forms and --name values; rejects ambiguity and mismatches", () => {
    expect(Either.getOrThrow(pairServerArgs(["fs=node a.js /tmp", "node b.js"], ["web=http://h:1/mcp"], ["mem"])))
      .toEqual([
        { _tag: "stdio", name: "fs", command: "node", args: ["a.js", "/tmp"] },
        { _tag: "stdio", name: "mem", command: "node", args: ["b.js"] },
        { _tag: "http", name: "web", url: "http://h:1/mcp" }
      ])
    expect(Either.getOrThrow(pairServerArgs([], ["http://h:1/a", "http://h:2/b"], ["one", "two"])).map((s) => s.name))
      .toEqual(["one", "two"])
    const errors = [
      pairServerArgs(["node a.js"], ["http://h/mcp"], ["a", "b"]),
      pairServerArgs(["node a.js", "node b.js"], [], ["a"]),
      pairServerArgs(["a=node a.js", "a=node b.js"], [], []),
      pairServerArgs([], [], []),
      pairServerArgs([], ["ftp://h/"], ["y"]),
      pairServerArgs(["bad name=echo"], [], [])
    ].map((e) => Either.isLeft(e) ? e.left : "accepted")
    expect(errors[0]).toContain("pairing form")
    expect(errors[1]).toContain("2 servers given without NAME= but 1 --name value")
    expect(errors[2]).toContain("\"a\" is given twice")
    expect(errors[3]).toContain("at least one server")
    expect(errors[4]).toContain("not an http(s) URL")
    // Not "1 server given without NAME=": a NAME= was given, but not a valid one.
    expect(errors[5]).toBe(
      "invalid server name \"bad name\" in --stdio \"bad name=echo\" (a NAME= may hold letters, digits, _ . - only)"
    )
  })

  it("--http NAME=URL whose URL is not http(s) says so, not that the name is bad", () => {
    for (const url of ["localhost:3000/mcp", "ftp://x/mcp", "127.0.0.1:3000/mcp", ""]) {
      expect(Either.flip(pairServerArgs([], [`docs=${url}`], [])).pipe(Either.getOrThrow)).toBe(
        `--http for "docs": not an http(s) URL: ${JSON.stringify(url)} (e.g. http://127.0.0.1:3000/mcp)`
      )
    }
    expect(Either.getOrThrow(pairServerArgs([], ["docs=HTTPS://h/mcp?a=b"], []))).toEqual([
      { _tag: "http", name: "docs", url: "https://h/mcp?a=b" }
    ])
  })
})

describe("skyrl tools import / list (in-process CLI)", () => {
  it("imports with the pairing form and --name, writes the file, and lists it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-tools-cli-"))
    const out = join(dir, "inventory.json")
    const r = await runTools([
      "import",
      "--stdio",
      `fs=${cmd(process.execPath, serverBin("server-filesystem"), dir)}`,
      "--stdio",
      cmd(process.execPath, serverBin("server-memory")),
      "--name",
      "memory",
      "--out",
      out
    ])
    expect(r.error).toBe("")
    expect(r.code).toBe(0)
    expect(r.stdout).toEqual([])
    expect(r.logs).toContain("MCP server \"fs\": 14 tools")
    expect(r.logs).toContain("MCP server \"memory\": 9 tools")
    const written = Either.getOrThrow(parseInventoryText(readFileSync(out, "utf8"), out))
    expect(written.servers.map((s) => [s.name, s.tools.length])).toEqual([["fs", 14], ["memory", 9]])

    const list = await runTools(["list", "--inventory", out])
    expect(list.code).toBe(0)
    expect(list.stdout).toHaveLength(23)
    const writeFile = list.stdout.find((l) => /^fs\s+write_file\(/.test(l))
    expect(writeFile).toMatch(/^fs {6}write_file\(path: string, content: string\) {2}\S/)
    expect(list.stdout).toContainEqual(
      expect.stringMatching(
        /^memory\s+create_entities\(entities: \{name: string, entityType: string, observations: string\[\]\}\[\]\)/
      )
    )
  })

  it("writes the servers that worked and exits 1 naming the failed one with its stderr", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-tools-cli-"))
    const out = join(dir, "inventory.json")
    const r = await runTools([
      "import",
      "--stdio",
      `memory=${cmd(process.execPath, serverBin("server-memory"))}`,
      "--stdio",
      `bad=${cmd(process.execPath, "-e", "console.error('cannot connect to upstream'); process.exit(1)")}`,
      "--out",
      out
    ])
    expect(r.code).toBe(1)
    expect(r.error).toContain(`imported 1 of 2 MCP servers into ${out}; failed:`)
    expect(r.error).toContain("MCP server \"bad\"")
    expect(r.error).toContain("cannot connect to upstream")
    const written = Either.getOrThrow(parseInventoryText(readFileSync(out, "utf8"), out))
    expect(written.servers.map((s) => s.name)).toEqual(["memory"])
  })

  it("a listed tool whose name an inventory refuses is left out with a warning naming it; the file written loads", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-tools-cli-"))
    const out = join(dir, "inventory.json")
    const names = ["get_quote", "fmp_get\nquote", "get_profile", "tab\there", "get,news"]
    const r = await runTools([
      "import",
      "--stdio",
      `named=${cmd(process.execPath, PAGED_SERVER, JSON.stringify(names))}`,
      "--out",
      out
    ])
    expect(r.error).toBe("")
    expect(r.code).toBe(0)
    expect(r.logs).toContain("MCP server \"named\": 2 tools")
    expect(r.logs).toContainEqual(
      "MCP server \"named\": tool \"fmp_get\\nquote\" left out: name: holds a line feed (U+000A at character 7): " +
        "a tool name is written as one line (the prompt's tool listing, tools list, cassettes stats) and is a field " +
        "of the cassette key (server \\n tool \\n params)"
    )
    expect(r.logs).toContainEqual(
      expect.stringMatching(/^MCP server "named": tool "tab\\there" left out: name: holds a tab/)
    )
    expect(r.logs).toContainEqual(
      expect.stringMatching(/^MCP server "named": tool "get,news" left out: name: holds a comma/)
    )
    // Before: the file held every tool listed, said nothing, and `tools list` split "fmp_get\nquote"'s line in two.
    // With the name rule on load alone, one such tool would have failed the whole server's import.
    const written = Either.getOrThrow(parseInventoryText(readFileSync(out, "utf8"), out))
    expect(written.servers[0]!.tools.map((t) => t.name)).toEqual(["get_quote", "get_profile"])
    const list = await runTools(["list", "--inventory", out])
    expect(list.code).toBe(0)
    expect(list.stdout).toEqual([
      expect.stringMatching(/^named {2}get_quote\(n: integer\) {2}Tool number 1$/),
      expect.stringMatching(/^named {2}get_profile\(n: integer\) {2}Tool number 3$/)
    ])
    // --check lists the server again: nothing changed, and the tools it cannot compare are named (before: silent).
    const check = await runTools(["import", "--check", out])
    expect(check.error).toBe("")
    expect(check.code).toBe(0)
    expect(check.logs).toContainEqual(
      expect.stringMatching(/^MCP server "named": tool "fmp_get\\nquote" left out: name:/)
    )
  })

  it("writes nothing when every server fails, and exits 2 on ambiguous arguments", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-tools-cli-"))
    const out = join(dir, "inventory.json")
    writeFileSync(join(dir, "keep.json"), "{}")
    const failed = await runTools(["import", "--stdio", "bad=/nonexistent/server", "--out", out])
    expect(failed.code).toBe(1)
    expect(failed.error).toContain("no MCP server could be imported")
    expect(existsSync(out)).toBe(false)

    const ambiguous = await runTools([
      "import",
      "--stdio",
      "node a.js",
      "--name",
      "a",
      "--http",
      "http://127.0.0.1:9/mcp",
      "--name",
      "b",
      "--out",
      out
    ])
    expect(ambiguous.code).toBe(2)
    expect(ambiguous.error).toContain("pairing form")
  })

  it("--check with --out is a usage error: --check writes nothing (was: --out ignored, no file written, exit 0 or 1)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-tools-cli-"))
    const out = join(dir, "refreshed.json")
    const r = await runTools(["import", "--check", FINANCE_FILE, "--out", out])
    expect(r.code).toBe(2)
    expect(r.error).toContain(
      "--check writes nothing, so --out is not used: check, then import again with --out to refresh the inventory"
    )
    expect(existsSync(out)).toBe(false)
  })

  it("list --servers filters, and a malformed inventory names the file and the entry", async () => {
    const r = await runTools(["list", "--inventory", FINANCE_FILE, "--servers", "tavily"])
    expect(r.code).toBe(0)
    expect(r.stdout).toEqual([
      expect.stringMatching(
        /^tavily {2}tavily_search\(query: string, max_results\?: integer, search_depth\?: "basic"\|"advanced"\) {2}Perform/
      ),
      expect.stringMatching(/^tavily {2}tavily_qna_search\(query: string\) {2}Get direct answers/)
    ])
    // Was "1 servers, 2 tools".
    expect(r.logs).toContain(`${FINANCE_FILE}: 1 server, 2 tools`)
    const dir = mkdtempSync(join(tmpdir(), "skyrl-tools-cli-"))
    const bad = join(dir, "bad.json")
    writeFileSync(bad, JSON.stringify({ servers: [{ name: "a", tools: [{ name: "t", inputSchema: 7 }] }] }))
    const broken = await runTools(["list", "--inventory", bad])
    expect(broken.code).toBe(1)
    expect(broken.error).toContain(`${bad}: servers[0].tools[0].inputSchema:`)
  })

  it("--http with a URL that is not http(s) is a usage error about the URL (exit 2)", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "skyrl-tools-cli-")), "h.json")
    const r = await runTools(["import", "--http", "docs=localhost:3000/mcp", "--out", out])
    expect(r.code).toBe(2)
    expect(r.error).toContain("--http for \"docs\": not an http(s) URL: \"localhost:3000/mcp\"")
    expect(r.error).not.toContain("invalid server name")
  })

  it("--out must end in .json: another extension is a usage error (exit 2), nothing is written", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-tools-cli-"))
    for (const name of ["inv.parquet", "inv.txt"]) {
      const out = join(dir, name)
      const r = await runTools([
        "import",
        "--stdio",
        `memory=${cmd(process.execPath, serverBin("server-memory"))}`,
        "-o",
        out
      ])
      expect(r.code).toBe(2)
      expect(r.error).toContain(`--out ${JSON.stringify(out)} must end in .json (an inventory is JSON)`)
      expect(existsSync(out)).toBe(false)
    }
  })

  it("warns that a literal env value of --servers-config is not recorded and must be set later; ${VAR} is not warned", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-tools-cli-"))
    const config = join(dir, "mcp.json")
    const memory = { command: process.execPath, args: [serverBin("server-memory")] }
    writeFileSync(
      config,
      JSON.stringify({
        mcpServers: {
          mem: { ...memory, env: { MEMORY_FILE_PATH: join(dir, "mem.jsonl") } },
          ref: { ...memory, env: { HOME: "${HOME}" } }
        }
      })
    )
    const r = await runTools(["import", "--servers-config", config, "--out", join(dir, "inv.json")])
    expect(r.code).toBe(0)
    const warnings = r.logs.filter((l) => l.includes("not recorded"))
    expect(warnings).toEqual([
      "MCP server \"mem\": the value of env MEMORY_FILE_PATH is not recorded in the inventory (only its name is); " +
      "set $MEMORY_FILE_PATH in the environment of later runs (verify, tools import --check) or give --servers-config"
    ])
    expect(readFileSync(join(dir, "inv.json"), "utf8")).not.toContain("mem.jsonl")
  })

  it("--servers-config accepts JSONC (VS Code's mcp.json: comments, trailing commas); errors name the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skyrl-tools-cli-"))
    const config = join(dir, "mcp.json")
    writeFileSync(
      config,
      [
        "// VS Code MCP servers",
        "{",
        "  \"servers\": {",
        "    /* the memory server */",
        `    "mem": { "command": ${JSON.stringify(process.execPath)}, "args": [${
          JSON.stringify(serverBin("server-memory"))
        },], },`,
        "  },",
        "}"
      ].join("\n")
    )
    const r = await runTools(["import", "--servers-config", config, "--out", join(dir, "inv.json")])
    expect(r.error).toBe("")
    expect(r.code).toBe(0)
    expect(r.logs).toContain("MCP server \"mem\": 9 tools")
    writeFileSync(config, "{ // broken\n \"servers\": { \"mem\": } }")
    const broken = await runTools(["import", "--servers-config", config, "--out", join(dir, "inv.json")])
    expect(broken.code).not.toBe(0)
    expect(broken.error).toContain(`${config}: not valid JSON (comments and trailing commas allowed)`)
  })
})
