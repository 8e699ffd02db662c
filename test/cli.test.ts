import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { describe, expect, it } from "vitest"
import { globalOptionsFirst } from "../src/cli/commandLine.js"
import { callKey } from "../src/skyrl/canonical.js"
import { runChild } from "./support/child.js"
import type { CliResult } from "./support/cli.js"
import { BIN, cleanEnv, CLI_TIMEOUT_MS, runCli, runCliShared } from "./support/cli.js"

const tmp = () => mkdtempSync(join(tmpdir(), "skyrl-cli-"))

const task = (i: number) => ({
  task_id: `t${i}`,
  user_prompt: `Quote for ticker number ${i}`,
  tool_sequence: [{ server: "fmp", tool: "fmp_get_quote", params: { symbol: "AAPL" } }],
  evaluation_rubric: { name: "r", criteria: [{ name: "c", description: "d", scoring: "s" }] }
})

/** A task every check rejects (its tool_sequence is empty). */
const rejected = { user_prompt: "x", tool_sequence: [] }

/**
 * A `convert` run several tests start from (each start costs ~0.6 s of CPU), made once per file in a directory of
 * its own holding its tasks file, never modified after: a test asserts on its result, then copies the directory
 * into its own (`cpSync`) before it goes on. Convert records no path but the tasks file's (in the rows' metadata
 * and the rejects), and no command reads it back: the copy is as the dataset made in place (it writes no manifest).
 */
const converted = new Map<string, Promise<{ readonly dir: string; readonly result: CliResult }>>()
const convertedOnce = (tasksFile: string, text: string) => {
  let made = converted.get(tasksFile)
  if (made === undefined) {
    const dir = tmp()
    writeFileSync(join(dir, tasksFile), text)
    const run = runCli(["convert", join(dir, tasksFile), "--out", join(dir, "rows.jsonl")])
    converted.set(tasksFile, made = run.then((result) => ({ dir, result })))
  }
  return made
}
/** [task(0)] converted (tasks.json → rows.jsonl, and an empty rows.jsonl.rejects.jsonl). */
const convertedTask0 = () => convertedOnce("tasks.json", JSON.stringify([task(0)]))
/** task(1) and a rejected task converted (first.jsonl → rows.jsonl, and rows.jsonl.rejects.jsonl with index 1). */
const convertedMixed = () =>
  convertedOnce("first.jsonl", [task(1), rejected].map((t) => JSON.stringify(t)).join("\n") + "\n")

describe("skyrl CLI", () => {
  it("--help exits 0 without OPENAI_API_KEY and lists the subcommands", async () => {
    const r = await runCliShared(["--help"])
    expect(r.status).toBe(0)
    expect(r.stdout).toContain("convert")
    expect(r.stderr).toBe("")
  })
  it("convert --help describes --as-of once, with convert's default (not generate's)", async () => {
    const r = await runCliShared(["convert", "--help"])
    expect(r.status).toBe(0)
    expect(r.stdout).toContain("default: per task, its as_of")
    expect(r.stdout).not.toContain("the run's start date")
  })
  it("verify --help describes --out once (verify's own description)", async () => {
    const r = await runCli(["verify", "--help"])
    expect(r.status).toBe(0)
    expect(r.stdout).toContain("Where the verified rows go")
    expect(r.stdout).not.toContain("Output dataset path")
  })
  it("validate --max-prompt-tokens 0 is a usage error, as in convert and generate (not a budget every row fails)", async () => {
    const dir = tmp()
    const input = join(dir, "rows.jsonl")
    writeFileSync(input, "")
    const r = await runCli(["validate", input, "--max-prompt-tokens", "0"])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain("--max-prompt-tokens (MAX_PROMPT_TOKENS): must be a positive integer, got 0")
  })
  it("generate and rebuild --indent outside 0..10 is a usage error before anything runs (generate made its rows, then failed writing them)", async () => {
    const dir = tmp()
    const out = join(dir, "x.json")
    const r = await runCli(["generate", "-n", "1", "--llm", "replay", "--out", out, "--indent", "-3"])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain("--indent must be an integer from 0 to 10")
    expect(existsSync(join(dir, "raw_llm"))).toBe(false)
    const rebuilt = await runCli(["rebuild", dir, "--out", join(dir, "y.json"), "--indent", "11"])
    expect(rebuilt.status).toBe(2)
    expect(rebuilt.stderr).toContain("--indent must be an integer from 0 to 10")
  })
  it("--data-source '' (or blank, or DATA_SOURCE='') is a usage error in convert, enrich and generate; the default and a given value still work", async () => {
    const dir = tmp()
    const tasks = join(dir, "tasks.json")
    writeFileSync(tasks, JSON.stringify([task(0)]))
    const message = "--data-source (DATA_SOURCE) must not be empty or blank"
    const refused = [
      { args: ["convert", tasks, "--out", join(dir, "c.jsonl"), "--data-source", ""], env: {} },
      { args: ["convert", tasks, "--out", join(dir, "c.jsonl"), "--data-source", " \t "], env: {} },
      { args: ["convert", tasks, "--out", join(dir, "c.jsonl")], env: { DATA_SOURCE: "" } },
      {
        args: ["enrich", "test/fixtures/enrich/skyrl_rows.jsonl", "--out", join(dir, "e.jsonl"), "--data-source", ""],
        env: {}
      },
      { args: ["generate", "-n", "1", "--llm", "replay", "--out", join(dir, "g.jsonl"), "--data-source", " "], env: {} }
    ]
    for (const { args, env } of refused) {
      const r = await runCli(args, { env })
      expect(r.status, args.join(" ")).toBe(2)
      expect(r.stderr, args.join(" ")).toContain(message)
    }
    expect(readdirSync(dir)).toEqual(["tasks.json"]) // nothing written, no raw_llm/ made
    const dataSources = (file: string) =>
      readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l).data_source)
    // The same command on the same task as `convertedTask0` (run once for this file).
    const byDefault = await convertedTask0()
    expect(byDefault.result.status, byDefault.result.stderr).toBe(0)
    expect(dataSources(join(byDefault.dir, "rows.jsonl"))).toEqual(["synthetic/llm"])
    const given = await runCli(["convert", tasks, "--out", join(dir, "m.jsonl"), "--data-source", "mine/v1"])
    expect(given.status, given.stderr).toBe(0)
    expect(dataSources(join(dir, "m.jsonl"))).toEqual(["mine/v1"])
    const help = await runCliShared(["convert", "--help"])
    expect(help.status).toBe(0)
    expect(help.stdout).toContain("--data-source")
  })
  it("generate and rebuild --indent on a .jsonl output say it is not indented (it was ignored without a word)", async () => {
    const dir = tmp()
    const out = join(dir, "x.jsonl")
    const r = await runCli(["generate", "-n", "1", "--llm", "replay", "--out", out, "--indent", "2"])
    expect(r.status).toBe(0)
    expect(r.stderr).toContain(`--indent applies to .json output only: ${out} is not indented`)
    expect(readFileSync(out, "utf8").split("\n").filter((l) => l !== "")).toHaveLength(1)
    const json = await runCli(["generate", "-n", "1", "--llm", "replay", "--out", join(dir, "y.json"), "--indent", "2"])
    expect(json.status).toBe(0)
    expect(json.stderr).not.toContain("--indent applies")
    const runDir = join(dir, "raw_llm", readdirSync(join(dir, "raw_llm")).sort()[0]!)
    const rebuilt = await runCli(["rebuild", runDir, "--out", join(dir, "z.jsonl"), "--indent", "2"])
    expect(rebuilt.status).toBe(0)
    expect(rebuilt.stderr).toContain("--indent applies to .json output only")
  })
  it("rebuild of an enrich run's directory is refused naming the command that made it (grammatical for every command)", async () => {
    const dir = tmp()
    const manifest = {
      run_id: "r1",
      command: "enrich",
      status: "completed",
      output: join(dir, "out.jsonl"),
      started_at: "2026-12-01T00:00:00.000Z",
      finished_at: "2026-12-01T00:00:01.000Z",
      settings: {},
      seed: null,
      model: "gpt-5-mini",
      backend: "responses",
      llm: "replay",
      counts: { requested: 1, valid: 1, rejected_attempts: 0, failed_samples: 0, calls: 1, repairs: 0 },
      tokens: { input: 0, cached: 0, output: 0, reasoning: 0 },
      cost_usd: null,
      elapsed_ms: 1
    }
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest))
    const r = await runCli(["rebuild", dir, "--out", join(dir, "y.jsonl")])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain("rebuild re-derives generate runs; this run was made by `enrich`")
    expect(existsSync(join(dir, "y.jsonl"))).toBe(false)
  })
  it("generate --rpm / --tpm below 1 and --max-cost 0 or less are usage errors naming the setting (they paced nothing or stopped the run at once)", async () => {
    const dir = tmp()
    const run = (flag: string, value: string) =>
      runCli(["generate", "-n", "1", "--llm", "replay", "--out", join(dir, "x.jsonl"), flag, value])
    const rpm = await run("--rpm", "0")
    expect(rpm.stderr).toContain("--rpm (OPENAI_RPM): must be a positive integer, got 0")
    expect(rpm.status).toBe(2)
    const tpm = await run("--tpm", "-5")
    expect(tpm.stderr).toContain("--tpm (OPENAI_TPM): must be a positive integer, got -5")
    expect(tpm.status).toBe(2)
    const cost = await run("--max-cost", "-1")
    expect(cost.stderr).toContain("--max-cost (MAX_COST_USD): must be a positive number of USD, got -1")
    expect(cost.status).toBe(2)
    expect(existsSync(join(dir, "raw_llm"))).toBe(false)
  })
  it("a run that makes no row leaves an existing --out as it was and says it is an earlier run's (an empty file replaced it)", async () => {
    const dir = tmp()
    const out = join(dir, "out.jsonl")
    writeFileSync(out, "{\"earlier\":1}\n")
    // Offline, the recorded answers plan for the finance servers, never for the prompt's own tools: every attempt fails.
    const input = "test/fixtures/sharegpt/sample_data.json"
    const r = await runCli([
      "enrich",
      input,
      "--out",
      out,
      "--inventory-from-prompt",
      "--limit",
      "1",
      "--llm",
      "replay"
    ])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain("made 0 of 1 valid rows: ")
    // Until 2026-12-03: `made 0 of 1 valid rows (${out} not written)`, beside the earlier run's --out.
    expect(r.stderr).toContain(
      `; no dataset was written: the ${out} there is an earlier run's, left as it was, and does not match this run`
    )
    expect(readFileSync(out, "utf8")).toBe("{\"earlier\":1}\n")
  })
  it("generate reads --servers from SKYRL_SERVERS as every command does (and SERVERS, the wrapper script's name)", async () => {
    const out = join(tmp(), "x.jsonl")
    for (const name of ["SKYRL_SERVERS", "SERVERS"]) {
      const r = await runCli([
        "generate",
        "-n",
        "2",
        "--out",
        out,
        "--dry-run",
        "--domains",
        "chat",
        "--subjects",
        "none"
      ], {
        env: { [name]: "slack" }
      })
      expect(r.status, r.stderr).toBe(0)
      expect(r.stdout).toContain("send_slack_message")
      expect(r.stdout).not.toContain("fmp_")
    }
  })
  it("offline, past the 12 recorded answers: samples 13-14 are not asked, the message says why and does not advise --resume", async () => {
    const out = join(tmp(), "g.jsonl")
    const first = await runCli(["generate", "-n", "14", "--out", out])
    expect(first.status).toBe(1)
    // Was: samples 13 and 14 asked, each attempt given an earlier sample's answer again and rejected as a
    // duplicate: "2 samples failed after 3 attempts each" (test/replayLimit.test.ts: the limit in-process).
    expect(first.stderr).toContain(
      "made 12 of 14 valid rows (kept in " + out + "): the replay holds 12 recorded answers, one for each of " +
        "samples 1-12, so it makes at most 12 rows: the other 2 samples were not asked"
    )
    expect(first.stderr).not.toContain("rerun with --resume")
    expect(existsSync(`${out}.rejects.jsonl`)).toBe(false)
    const again = await runCli(["generate", "-n", "14", "--out", out, "--resume", "--force"])
    expect(again.status).toBe(1)
    expect(again.stderr).toMatch(/: 0 of 14 samples to make with replay of 12 recorded answers .* \(12 already done\)/)
    expect(again.stderr).toContain("made 12 of 14 valid rows")
  })
  it("help and usage errors are plain text into a pipe, with or without NO_COLOR (@effect/cli writes ANSI colours)", async () => {
    for (const env of [{}, { NO_COLOR: "" }]) {
      const help = await runCliShared(["convert", "--help"], env)
      expect(help.status).toBe(0)
      expect(help.stdout).toContain("USAGE")
      expect(help.stdout).not.toContain("\x1b[")
      const usage = await runCliShared(["convert", "--no-such-flag"], env)
      expect(usage.status).toBe(2)
      expect(usage.stderr + usage.stdout).not.toContain("\x1b[")
    }
  })
  it("an unknown option is named as such wherever it stands (@effect/cli named a required option instead), with a close name", async () => {
    const dir = tmp()
    const tasks = join(dir, "tasks.json")
    writeFileSync(tasks, JSON.stringify([task(0)]))
    const cases = [
      [["convert", "--bogus", tasks, "--out", join(dir, "o.jsonl")], "skyrl: convert: unknown option '--bogus'."],
      [["convert", "--outt=x.jsonl", tasks], "skyrl: convert: unknown option '--outt'. Did you mean '--out'?"],
      [
        ["validate", "--fail-onn", "warnings", tasks],
        "skyrl: validate: unknown option '--fail-onn'. Did you mean '--fail-on'?"
      ],
      [["tools", "list", "--bogus"], "skyrl: tools list: unknown option '--bogus'."]
    ] as const
    for (const [args, message] of cases) {
      const r = await runCli([...args])
      expect(r.status, args.join(" ")).toBe(2)
      expect(r.stderr).toContain(message)
      expect(r.stderr).toContain(`Its options: \`skyrl ${args[0] === "tools" ? "tools list" : args[0]} --help\``)
      expect(r.stderr).not.toMatch(/Expected to find option|must exist/)
    }
    expect(existsSync(join(dir, "o.jsonl"))).toBe(false)
    // Options of the command, @effect/cli's own, values that start with '-' and anything after `--` are not flagged.
    const ok = await runCli([
      "--log-format",
      "json",
      "convert",
      "--log-level",
      "warning",
      "-o",
      join(dir, "p.jsonl"),
      tasks
    ])
    expect(ok.status, ok.stderr).toBe(0)
    expect((await runCli(["convert", "--as-of", "-1", tasks, "--out", join(dir, "q.jsonl")])).stderr).not.toContain(
      "unknown option"
    )
  })
  it("--http=NAME=URL and --stdio=... are read as --http NAME=URL (was: '--http is given more than once', exit 2)", async () => {
    const dir = tmp()
    const out = join(dir, "inv.json")
    // Port 9 (discard) refuses the connection: the server is tried and fails (exit 1), not a usage error.
    const r = await runCli(["tools", "import", "--http=docs=http://127.0.0.1:9/mcp", "--out", out, "--timeout", "5"])
    expect(r.status, r.stderr).toBe(1)
    expect(r.stderr).toContain("MCP server \"docs\"")
    expect(r.stderr).not.toContain("more than once")
  })
  it("a --stdio command line given unquoted says to quote it (was: only 'unknown option -y' or 'unexpected argument')", async () => {
    const hint = "A --stdio server's command line is one word: quote it, --stdio NAME=\"COMMAND ARGS\"."
    const cases = [
      ["tools", "import", "--stdio", "mem=npx", "-y", "@modelcontextprotocol/server-memory", "--out", "x.json"],
      ["tools", "import", "--stdio=mem=node", "server.js", "--out", "x.json"],
      ["tools", "import", "--stdio", "mem=node", "server.js", "--out", "x.json"]
    ]
    for (const args of cases) {
      const r = await runCli(args)
      expect(r.status, args.join(" ")).toBe(2)
      expect(r.stderr, args.join(" ")).toContain(hint)
    }
    // Not after a quoted one: a mistyped option keeps its own message.
    const typo = await runCli(["tools", "import", "--stdio", "mem=npx -y x", "--outt", "x.json"])
    expect(typo.stderr).toContain("Did you mean '--out'?")
    expect(typo.stderr).not.toContain(hint)
  })
  it("a mistyped command is named as such (it was blamed on the next option, or the top-level commands were listed)", async () => {
    const cases = [
      // Before: "skyrl: unknown option '-n'. Its options: `skyrl --help`."
      [
        ["genrate", "-n", "1"],
        "skyrl: unknown command 'genrate'. Did you mean 'generate'? Its commands: `skyrl --help`."
      ],
      // Before: "skyrl: tools: unknown option '--out'. ..."
      [
        ["tools", "imprt", "--out", "x.json"],
        "skyrl: tools: unknown command 'imprt'. Did you mean 'import'? Its commands: `skyrl tools --help`."
      ],
      // Before: "skyrl: Invalid subcommand for skyrl - use one of 'generate', 'enrich', ..."
      [
        ["cassettes", "stat", tmp()],
        "skyrl: cassettes: unknown command 'stat'. Did you mean 'stats'? Its commands: `skyrl cassettes --help`."
      ],
      [["--log-format", "json", "batch", "colect", "x"], "batch: unknown command 'colect'. Did you mean 'collect'?"]
    ] as const
    for (const [args, message] of cases) {
      const r = await runCli([...args])
      expect(r.status, args.join(" ")).toBe(2)
      expect(r.stderr, args.join(" ")).toContain(message)
    }
    // A global option's value is no command.
    const listed = await runCli(["--log-level", "warning", "tools", "list", "--log-format", "json"])
    expect(listed.status, listed.stderr).toBe(0)
  })
  it("a word past what the command takes names the command and what it takes (was: 'Received unknown argument')", async () => {
    const dir = tmp()
    const [a, b] = [join(dir, "a.json"), join(dir, "b.json")]
    for (const f of [a, b]) writeFileSync(f, JSON.stringify([task(0)]))
    const cases = [
      [
        ["convert", a, b, "--out", join(dir, "x.jsonl")],
        `skyrl: convert: unexpected argument '${b}': it takes one argument, TASKS_FILE. Its usage: \`skyrl convert --help\`.`
      ],
      [
        ["tools", "list", "extra"],
        "skyrl: tools list: unexpected argument 'extra': it takes no arguments. Its usage: `skyrl tools list --help`."
      ],
      [
        ["schema", "row", "task"],
        "skyrl: schema: unexpected argument 'task': it takes at most one argument, CONTRACT. Its usage: `skyrl schema --help`."
      ],
      [
        ["convert", a, "--out", join(dir, "x.jsonl"), "--out", join(dir, "y.jsonl")],
        "skyrl: convert: --out is given more than once. Its options: `skyrl convert --help`."
      ],
      // After `--` a word is an argument: it was "--out is given more than once".
      [
        ["convert", a, "--out", join(dir, "x.jsonl"), "--", "--out"],
        "skyrl: convert: unexpected argument '--out': it takes one argument, TASKS_FILE. Its usage: `skyrl convert --help`."
      ]
    ] as const
    for (const [args, message] of cases) {
      const r = await runCli([...args])
      expect([r.status, r.stderr.trim()], args.join(" ")).toEqual([2, message])
    }
    expect(existsSync(join(dir, "x.jsonl"))).toBe(false)
  })
  it("an option given twice before a positional argument, or given as `--opt=` with nothing after =, is a usage error naming it", async () => {
    const dir = tmp()
    const tasks = join(dir, "t.json")
    writeFileSync(tasks, JSON.stringify([task(0)]))
    const [x, y] = [join(dir, "x.jsonl"), join(dir, "y.jsonl")]
    const twice = (option: string) =>
      `skyrl: convert: ${option} is given more than once. Its options: \`skyrl convert --help\`.`
    const cases = [
      // @effect/cli read the second --out as TASKS_FILE: "TASKS_FILE: Path '--out' must exist".
      [["convert", "--out", x, "--out", y, tasks], twice("--out")],
      [["convert", "-o", x, `--out=${y}`, tasks], twice("--out")],
      [["convert", "--inventory", tasks, "--out", x, "--inventory", tasks, tasks], twice("--inventory")],
      [
        ["generate", "-n", "1", "--n", "2", "--out", x],
        "skyrl: generate: -n is given more than once. Its options: `skyrl generate --help`."
      ],
      [
        ["generate", "--dry-run", "-n", "1", "--dry-run", "--out", x],
        "skyrl: generate: --dry-run is given more than once. Its options: `skyrl generate --help`."
      ],
      // `--out=` was "Expected to find option: '--out'", `--servers=` "not recognized", `--n=` an empty message.
      [["convert", "--out=", tasks], `skyrl: --out: "" must end in .json, .jsonl or .parquet`],
      [["generate", "--n=", "--out", x], "skyrl: -n: '' is not an integer"],
      [["convert", "--log-format=", tasks, "--out", x], "skyrl: --log-format needs a value: pretty or json"],
      // `--model ""` was taken, and every request then refused by the API.
      [["generate", "-n", "1", "--model", "", "--out", x], "skyrl: --model must name a model"]
    ] as const
    for (const [args, message] of cases) {
      const r = await runCli([...args])
      expect([r.status, r.stderr.trim()], args.join(" ")).toEqual([2, message])
    }
    const servers = await runCli(["generate", "-n", "1", "--servers=", "--out", x])
    expect([servers.status, servers.stderr], "--servers=").toEqual([
      2,
      expect.stringMatching(/--servers .*names no server/)
    ])
    expect(existsSync(x) || existsSync(y)).toBe(false)
  })
  it("a flag's value @effect/cli refuses names the flag (it named only the value)", async () => {
    const dir = tmp()
    const rows = join(dir, "rows.jsonl")
    writeFileSync(rows, "{}\n")
    mkdirSync(join(dir, "adir"))
    const cases = [
      [
        ["verify", rows, "--out", join(dir, "adir")],
        `--out: Expected path '${join(dir, "adir")}' to be a regular file`
      ],
      [["verify", rows, "--out", join(dir, "v.jsonl"), "--limit=1.5"], "--limit: '1.5' is not an integer"],
      [
        ["verify", rows, "--out", join(dir, "v.jsonl"), "--cassettes", rows],
        `--cassettes: Expected path '${rows}' to be a directory`
      ],
      [["generate", "-n", "1.5", "--out", join(dir, "g.jsonl")], "-n: '1.5' is not an integer"],
      [
        ["convert", rows, "--out", join(dir, "c.jsonl"), "--inventory", join(dir, "no.json")],
        `--inventory: Path '${join(dir, "no.json")}' must exist`
      ],
      // A positional argument's value: its name (was: no name, read as if about any path of the command line).
      [
        ["verify", join(dir, "no.jsonl"), "--out", join(dir, "v.jsonl")],
        `DATASET: Path '${join(dir, "no.jsonl")}' must exist`
      ],
      [["convert", dir, "--out", join(dir, "c.jsonl")], `TASKS_FILE: Expected path '${dir}' to be a regular file`],
      // The same file given to two flags: the one whose kind it is not (it named --inventory, which took it).
      [
        ["verify", rows, "--inventory", rows, "--out", join(dir, "v.jsonl"), "--cassettes", rows],
        `--cassettes: Expected path '${rows}' to be a directory`
      ]
    ] as const
    for (const [args, message] of cases) {
      const r = await runCli([...args])
      expect([r.status, r.stderr.trim()], args.join(" ")).toEqual([2, `skyrl: ${message}`])
    }
    // A relative path: where it was looked for (was: only "Path 'no.jsonl' must exist", from any directory).
    const relative = await runCli(["validate", "no.jsonl", "--inventory", "inv.json"], { cwd: dir })
    expect([relative.status, relative.stderr.trim()]).toEqual([
      2,
      `skyrl: --inventory: Path 'inv.json' must exist (looked for ${join(dir, "inv.json")})`
    ])
    const positional = await runCli(["validate", "no.jsonl"], { cwd: dir })
    expect(positional.stderr.trim()).toBe(
      `skyrl: FILE: Path 'no.jsonl' must exist (looked for ${join(dir, "no.jsonl")})`
    )
  })
  it("SKYRL_INVENTORY naming no file is a usage error (exit 2), as --inventory is", async () => {
    for (const args of [["tools", "list"], ["generate", "-n", "1", "--out", join(tmp(), "g.jsonl")]]) {
      const r = await runCli(args, { env: { SKYRL_INVENTORY: "/no/such/inventory.json" } })
      expect(r.status, r.stderr).toBe(2)
      // Was Effect's own wrapping: `skyrl: (Invalid data at SKYRL_INVENTORY: "no such file: ...")`.
      expect(r.stderr.trim()).toBe("skyrl: SKYRL_INVENTORY: no such file: /no/such/inventory.json")
    }
    const empty = await runCli(["tools", "list"], { env: { SKYRL_INVENTORY: "" } })
    expect([empty.status, empty.stderr.trim()]).toEqual([
      2,
      "skyrl: SKYRL_INVENTORY: is empty (unset it, or name a file)"
    ])
  })
  it("a rejects file's path that is a directory is a usage error before anything runs (it failed at the end)", async () => {
    const dir = tmp()
    const out = join(dir, "o.jsonl")
    mkdirSync(`${out}.rejects.jsonl`)
    const tasks = "data/examples/recorded-tasks.jsonl"
    for (const args of [["convert", tasks, "--out", out], ["generate", "-n", "1", "--llm", "replay", "--out", out]]) {
      const r = await runCli(args)
      expect([r.status, r.stderr.trim()], args[0]).toEqual([
        2,
        `skyrl: --out's rejects file: ${out}.rejects.jsonl is a directory, where ${
          args[0]
        } writes a file: move it, or ` +
        "write elsewhere"
      ])
    }
    expect(readdirSync(dir)).toEqual(["o.jsonl.rejects.jsonl"]) // before: generate made its row and its run directory
  })
  it("a one-letter option with = (-n=2, --n=2, -o=FILE) is the option and its value (it said `skyrl: ` alone)", async () => {
    const out = join(tmp(), "g.jsonl")
    for (const args of [["-n=2", "--out", out], ["--n=2", "--out", out], ["-n", "2", `-o=${out}`]]) {
      const r = await runCli(["generate", ...args, "--dry-run"])
      expect(r.status, `${args.join(" ")}: ${r.stderr}`).toBe(0)
      expect(r.stdout, args.join(" ")).toContain("## work plan (2 samples,")
    }
  })
  it("--log-level anywhere before `--` (@effect/cli refused it after a subcommand's options)", async () => {
    expect(globalOptionsFirst(["generate", "-n", "1", "--out", "g.jsonl", "--log-level", "debug"])).toEqual([
      "--log-level",
      "debug",
      "generate",
      "-n",
      "1",
      "--out",
      "g.jsonl"
    ])
    // Without a value it stays (moved, it took the subcommand as its value).
    expect(globalOptionsFirst(["validate", "f.jsonl", "--log-level"])).toEqual(["validate", "f.jsonl", "--log-level"])
    expect(globalOptionsFirst(["tools", "list", "--log-level=debug", "--", "--log-level"])).toEqual([
      "--log-level=debug",
      "tools",
      "list",
      "--",
      "--log-level"
    ])
    const args = [["generate", "-n", "1", "--out", "OUT", "--log-level", "debug"], [
      "generate",
      "-n",
      "1",
      "--log-level",
      "debug",
      "--out",
      "OUT"
    ]]
    for (const line of args) {
      const out = join(tmp(), "g.jsonl")
      const r = await runCli(line.map((a) => (a === "OUT" ? out : a)))
      expect(r.status, r.stderr).toBe(0)
      expect(r.stderr).toMatch(/ DEBUG /)
    }
    const bare = await runCli(["tools", "list", "--log-level"])
    expect([bare.status, bare.stderr.trim()]).toEqual([
      2,
      "skyrl: --log-level needs a value: all, trace, debug, info, warning, error, fatal or none"
    ])
    const list = await runCli(["tools", "list", "--servers", "slack", "--log-level", "debug"])
    expect(list.status, list.stderr).toBe(0)
    expect(list.stderr).toMatch(/ DEBUG /)
  })
  it("a subcommand's help gives its usage with the whole command (@effect/cli printed `$ convert`)", async () => {
    expect((await runCliShared(["convert", "--help"])).stdout).toMatch(/^\$ skyrl convert \(-o, --out file\)/m)
    expect((await runCli(["tools", "list", "-h"])).stdout).toMatch(/^\$ skyrl tools list \[--inventory file\]/m)
    expect((await runCliShared(["--help"])).stdout).toMatch(/^\$ skyrl \[--log-format/m)
  })
  it("a flag value or directory of the wrong kind is a usage error (exit 2): --servers naming no server, a RUN_DIR that is not one", async () => {
    const dir = tmp()
    for (
      const args of [["generate", "-n", "1", "--servers", "nope", "--out", join(dir, "g.jsonl")], [
        "tools",
        "list",
        "--servers",
        "nope"
      ]]
    ) {
      const r = await runCli(args)
      expect(r.status, args.join(" ")).toBe(2)
      expect(r.stderr).toContain(`unknown server "nope" in --servers (known: fmp, polygon`)
    }
    // A value that names no server. Before: taken for every server (generate then asked for --domains, as for
    // another inventory, without naming --servers).
    const empty = [
      ["generate", "-n", "1", "--servers", "", "--out", join(dir, "g.jsonl")],
      ["enrich", join(dir, "p.jsonl"), "--servers", " , ", "--out", join(dir, "e.jsonl")],
      ["tools", "list", "--servers", ","]
    ]
    writeFileSync(join(dir, "p.jsonl"), JSON.stringify({ messages: [{ role: "user", content: "Quote AAPL." }] }) + "\n")
    for (const args of empty) {
      const r = await runCli(args)
      expect(r.status, args.join(" ")).toBe(2)
      const value = args[args.indexOf("--servers") + 1]!
      expect(r.stderr.trim()).toBe(
        `skyrl: --servers (SKYRL_SERVERS): names no server (${JSON.stringify(value)}): give a comma-separated list ` +
          "of the inventory's servers, or leave it out for all of them"
      )
    }
    // An empty file name. Before: "cannot read : no such file or directory".
    for (const [flag, setting] of [["--subjects", "--subjects (SUBJECTS)"], ["--personas", "--personas (PERSONAS)"]]) {
      const r = await runCli(["generate", "-n", "1", flag, " ", "--out", join(dir, "g.jsonl")])
      expect(r.status, r.stderr).toBe(2)
      expect(r.stderr.trim()).toBe(`skyrl: ${setting}: is empty: give a file, one entry a line`)
    }
    expect(readdirSync(dir)).toEqual(["p.jsonl"])
    for (const args of [["batch", "status", dir], ["batch", "collect", dir]]) {
      const r = await runCli(args)
      expect(r.status, args.join(" ")).toBe(2)
      expect(r.stderr).toContain("not the run directory of a `--backend batch` run")
    }
    const r = await runCli(["rebuild", dir, "--out", join(dir, "x.jsonl")])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain(`RUN_DIR: ${dir} is not a run directory: it has no manifest.json`)
    // A batch.json that does not decode: one line naming the file and the field, exit 2, as a bad manifest.json
    // (before: `not a skyrl batch run:` and Effect's 14-line decode tree, exit 1; a bad `options` field said only
    // `options: not the options of a generate run`).
    const batchJson = join(dir, "batch.json")
    const run = {
      format: "skyrl-batch/1",
      run_id: "r1",
      command: "generate",
      created_at: "2026-01-01T00:00:00.000Z",
      endpoint: "responses",
      llm: { model: "gpt-5-mini", reasoningEffort: "high", maxOutputTokens: 1000, timeoutMs: 5000, maxRetries: 2 },
      inventory: { path: null, servers: null },
      options: {},
      parts: [] as Array<unknown>,
      online_usage: { input: 0, cached: 0, output: 0, reasoning: 0 }
    }
    const why = "(batch status and collect read the run's parts and options from it); mend the file"
    writeFileSync(batchJson, JSON.stringify({ ...run, parts: [{ part: "one" }] }))
    const status = await runCli(["batch", "status", dir])
    expect([status.status, status.stderr]).toEqual([
      2,
      `skyrl: RUN_DIR: ${batchJson}, parts[0].part: must be a number, got "one": not a readable batch run ${why}\n`
    ])
    writeFileSync(batchJson, JSON.stringify(run))
    const collect = await runCli(["batch", "collect", dir])
    expect([collect.status, collect.stderr]).toEqual([
      2,
      `skyrl: RUN_DIR: ${batchJson}, options.out: is missing: not the options of a generate run ${why}\n`
    ])
  })
  it("generate -n over 1,000,000 is a usage error at once (it built its work plan for minutes, then 'Invalid array length')", async () => {
    const dir = tmp()
    for (const n of ["1000001", "4294967296"]) {
      const r = await runCli(["generate", "-n", n, "--out", join(dir, "g.jsonl")])
      expect(r.status, r.stderr).toBe(2)
      expect(r.stderr.trim()).toBe(
        `skyrl: --n (N_SAMPLES): ${n} is more than one run makes (at most 1,000,000: a run holds its work plan in ` +
          "memory); make several runs, each with its own --out and --seed, and concatenate them"
      )
    }
    expect(readdirSync(dir)).toEqual([])
  })
  it("a --servers-config that does not exist is a usage error (exit 2), as a missing --inventory is (was: exit 1)", async () => {
    const dir = tmp()
    const missing = join(dir, "nosuch.json")
    writeFileSync(join(dir, "ds.jsonl"), "")
    for (
      const args of [
        ["verify", join(dir, "ds.jsonl"), "--out", join(dir, "v.jsonl"), "--servers-config", missing],
        ["tools", "import", "--servers-config", missing, "--out", join(dir, "i.json")]
      ]
    ) {
      const r = await runCli(args)
      expect(r.status, r.stderr).toBe(2)
      expect(r.stderr.trim()).toBe(`skyrl: --servers-config: Path '${missing}' must exist`)
    }
    expect(readdirSync(dir)).toEqual(["ds.jsonl"])
  })
  it("rebuild of a run whose manifest.json does not decode names the field (it said only 'not a readable run manifest')", async () => {
    const dir = tmp()
    const manifest = join(dir, "manifest.json")
    const cases = [
      ["{", /RUN_DIR: \S*manifest\.json: .*JSON.*: not a readable run manifest/],
      [
        JSON.stringify({ run_id: "r", command: 7 }),
        /RUN_DIR: \S*manifest\.json, command: must be a string, got 7: not a readable run manifest/
      ]
    ] as const
    for (const [text, message] of cases) {
      writeFileSync(manifest, text)
      const r = await runCli(["rebuild", dir, "--out", join(tmp(), "x.jsonl")])
      expect(r.status, r.stderr).toBe(2) // bad input, as --resume says it (was 1)
      expect(r.stderr.trim()).toMatch(message)
    }
  })
  it("--version prints the version", async () => {
    const r = await runCli(["--version"])
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/\d+\.\d+\.\d+/)
  })
  it("exits 2 on a usage error, with the message on stderr as every final error: `skyrl: ...`, JSON with --log-format json", async () => {
    const r = await runCliShared(["convert", "--no-such-flag"])
    expect(r.status).toBe(2)
    expect(r.stdout).toBe("")
    expect(r.stderr).not.toBe("")
    const value = await runCli(["generate", "--timeout", "0", "--out", "x.jsonl"])
    expect([value.status, value.stderr]).toEqual([
      2,
      "skyrl: --timeout must be a positive number of seconds, at most 2147482 (setTimeout's limit, ~24.8 days)\n"
    ])
    const json = await runCli(["--log-format", "json", "convert", "data/examples/recorded-tasks.jsonl"])
    expect(json.status).toBe(2)
    expect(JSON.parse(json.stderr)).toMatchObject({
      message: "skyrl: Expected to find option: '--out'",
      logLevel: "ERROR"
    })
  })
  it("convert writes good rows, rejects bad ones with index and field, and leaves the input unchanged", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.jsonl")
    const bad = { ...task(2), tool_sequence: [{ server: "fmp", params: {} }] }
    const text = [task(0), task(1), bad].map((t) => JSON.stringify(t)).join("\n") + "\nnot json\n"
    writeFileSync(input, text)
    const before = statSync(input).mtimeMs
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["convert", input, "--out", out])
    expect(r.status).toBe(0)
    expect(r.stdout).toBe("")
    const rows = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    expect(rows.map((x) => x.reward_spec.ground_truth.task_id)).toEqual(["t0", "t1"])
    const rejects = readFileSync(`${out}.rejects.jsonl`, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    expect(rejects.map((x) => [x.index, x.field])).toEqual([[2, "tool_sequence[0].tool"], [3, "(record)"]])
    expect(r.stderr).toContain("task 2 rejected: tool_sequence[0].tool")
    expect(readFileSync(input, "utf8")).toBe(text)
    expect(statSync(input).mtimeMs).toBe(before)
  })
  it("a missing input file is a usage error (exit 2) naming the path", async () => {
    const r = await runCli(["convert", "/nonexistent/tasks.json", "--out", join(tmp(), "x.json")])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain("/nonexistent/tasks.json")
    expect(r.stderr).not.toMatch(/\n\s+at /) // no stack trace
  })
  it("an --out whose parent is a file is a usage error (exit 2) naming the flag and path, not an internal error", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.jsonl")
    writeFileSync(input, JSON.stringify(task(1)) + "\n")
    const out = join(input, "rows.jsonl")
    const r = await runCli(["convert", input, "--out", out])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain(`skyrl: --out: ${out}: `)
    expect(r.stderr).toContain("ENOTDIR")
    expect(r.stderr).not.toContain("internal error")
  })
  it("input that is not JSON names the file and exits 1", async () => {
    const dir = tmp()
    const input = join(dir, "garbage.json")
    writeFileSync(input, "\u0000\u0001binary")
    const r = await runCli(["convert", input, "--out", join(dir, "x.json")])
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/garbage\.json: not JSON/)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
  })
  it("an empty JSON array (convert, enrich) is an error like an empty file, not an empty dataset", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.json")
    writeFileSync(input, "[ ]\n")
    const out = join(dir, "rows.jsonl")
    for (const args of [["convert", input, "--out", out], ["enrich", input, "--out", out, "--dry-run"]]) {
      const r = await runCli(args)
      expect(r.status).toBe(1)
      expect(r.stderr).toContain(`skyrl: ${input}: the JSON array is empty: nothing to read`)
    }
    expect(existsSync(out)).toBe(false)
  })
  it("a gzip-compressed file (convert, validate): the error says it is gzip and to decompress it", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.jsonl")
    writeFileSync(input, gzipSync(JSON.stringify(task(1)) + "\n"))
    for (const args of [["convert", input, "--out", join(dir, "rows.jsonl")], ["validate", input]]) {
      const r = await runCli(args)
      expect(r.status).not.toBe(0)
      expect(r.stderr).toContain(`skyrl: ${input}`)
      expect(r.stderr).toContain("it is gzip-compressed; decompress it first")
    }
  })
  it("with a .parquet --out, input that is not JSON is the input's error, not a write failure", async () => {
    const dir = tmp()
    const input = join(dir, "garbage.json")
    writeFileSync(input, "\u0000\u0001binary")
    const out = join(dir, "x.parquet")
    const r = await runCli(["convert", input, "--out", out])
    expect(r.status).toBe(1)
    expect(r.stderr.trim()).toMatch(/^skyrl: \S*garbage\.json: not JSON/)
    expect(r.stderr).not.toContain("cannot write")
  })
  it("--log-format json writes one JSON object per log line on stderr", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.json")
    writeFileSync(input, JSON.stringify([task(0)]))
    const r = await runCli(["--log-format", "json", "convert", input, "--out", join(dir, "rows.json")])
    expect(r.status).toBe(0)
    const lines = r.stderr.trim().split("\n")
    expect(lines.length).toBeGreaterThan(0)
    for (const l of lines) expect(JSON.parse(l)).toHaveProperty("message")
  })
  it("--log-format after the subcommand, wherever it stands (it was read as a file of validate, or made @effect/cli miss --out)", async () => {
    const dir = tmp()
    const converted = await convertedTask0()
    expect(converted.result.status).toBe(0)
    cpSync(converted.dir, dir, { recursive: true }) // tasks.json, its rows.jsonl (and their empty rejects)
    const input = join(dir, "tasks.json")
    const rows = join(dir, "rows.jsonl")
    const lines = [
      ["validate", rows, "--log-format", "json"],
      ["validate", "--log-format=json", rows],
      ["validate", rows, "--log-format", "json", "--log-level", "warning"],
      ["convert", "--log-format", "json", input, "--out", join(dir, "again.jsonl")],
      ["tools", "list", "--log-format", "json", "--servers", "fmp"],
      ["schema", "--log-format", "json", "row"]
    ]
    for (const line of lines) {
      const r = await runCli(line)
      expect(r.status, `${line.join(" ")}: ${r.stderr}`).toBe(0)
      for (const l of r.stderr.trim().split("\n").filter((l) => l !== "")) {
        expect(JSON.parse(l)).toHaveProperty("message")
      }
    }
    const bare = await runCli(["validate", rows, "--log-format"])
    expect([bare.status, bare.stderr.trim()]).toEqual([2, "skyrl: --log-format needs a value: pretty or json"])
  })
  it("an inventory or --servers-config saved with a BOM (Notepad's UTF-8) is read, as a dataset is (it was 'not valid JSON: Unexpected token')", async () => {
    const dir = tmp()
    const bom = "\ufeff"
    const inventory = join(dir, "inv.json")
    writeFileSync(inventory, bom + readFileSync(join("data", "inventory", "finance-mcp.json"), "utf8"))
    const list = await runCli(["tools", "list", "--inventory", inventory, "--servers", "fmp"])
    expect(list.status, list.stderr).toBe(0)
    expect(list.stdout).toContain("fmp_get_quote(symbol: string)")
    // A server that cannot start: the config was read, so the failure is the server's, not the file's.
    const config = join(dir, "mcp.json")
    writeFileSync(config, bom + JSON.stringify({ mcpServers: { gone: { command: join(dir, "no-such-server") } } }))
    const imported = await runCli(["tools", "import", "--servers-config", config, "--out", join(dir, "out.json")])
    expect(imported.status).toBe(1)
    expect(imported.stderr).toContain("no MCP server could be imported")
    expect(imported.stderr).not.toContain("not valid JSON")
  })
  it("an MCP --timeout past setTimeout's limit (~24.8 days) is a usage error (it timed every server out at once)", async () => {
    const dir = tmp()
    const silent = join(dir, "silent.mjs")
    writeFileSync(silent, "setTimeout(() => {}, 60_000)\n")
    const out = join(dir, "inv.json")
    const imported = await runCli([
      "tools",
      "import",
      "--stdio",
      `m=node ${silent}`,
      "--out",
      out,
      "--timeout",
      "3000000"
    ])
    expect([imported.status, imported.stderr.trim()]).toEqual([
      2,
      "skyrl: tools import: --timeout must be a positive number of seconds, at most 2147483 (setTimeout's limit, ~24.8 days)"
    ])
    const rows = join(dir, "rows.jsonl")
    writeFileSync(rows, "{}\n")
    const verified = await runCli(["verify", rows, "--out", join(dir, "v.jsonl"), "--timeout", "2147484"])
    expect(verified.status, verified.stderr).toBe(2)
    expect(verified.stderr).toContain("--timeout must be a positive number of seconds, at most 2147483")
    const started = await runCli(["verify", rows, "--out", join(dir, "v.jsonl"), "--start-timeout", "0"])
    expect(started.status, started.stderr).toBe(2)
    expect(started.stderr).toContain("--start-timeout must be a positive number of seconds, at most 2147483")
    const withVerify = await runCli(
      ["generate", "-n", "1", "--out", join(dir, "g.jsonl"), "--verify", "--verify-start-timeout", "2147484"]
    )
    expect(withVerify.status, withVerify.stderr).toBe(2)
    expect(withVerify.stderr).toContain("--verify-start-timeout: must be a positive number of seconds, at most 2147483")
    // The model calls' --timeout too (their client's timer runs 1 s longer): it was taken, and every attempt
    // timed out at once.
    const generated = await runCli(["generate", "-n", "1", "--out", join(dir, "g.jsonl"), "--timeout", "2147483"])
    expect(generated.status, generated.stderr).toBe(2)
    expect(generated.stderr).toContain("--timeout must be a positive number of seconds, at most 2147482")
  })
  it("--log-format json (or SKYRL_LOG_FORMAT=json): a failure's final message is a JSON line too", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.jsonl")
    writeFileSync(input, JSON.stringify({ user_prompt: "x", tool_sequence: [] }) + "\n")
    const out = join(dir, "rows.jsonl")
    for (
      const r of [
        await runCli(["--log-format", "json", "convert", input, "--out", out]),
        await runCli(["--log-format=json", "convert", input, "--out", out]),
        await runCli(["convert", input, "--out", out], { env: { SKYRL_LOG_FORMAT: "json" } })
      ]
    ) {
      expect(r.status).toBe(1)
      const lines = r.stderr.trim().split("\n").map((l) => JSON.parse(l))
      const last = lines[lines.length - 1]
      expect(last.logLevel).toBe("ERROR")
      expect(last.message).toContain(`${input}: all 1 tasks were rejected`)
    }
  })
})

describe("convert keeps invalid plans out of the dataset", () => {
  it("rejects the recorded answers whose plans the finance inventory refuses, naming step, tool and param", async () => {
    const dir = tmp()
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["convert", "data/examples/recorded-tasks.jsonl", "--out", out])
    expect(r.status, r.stderr).toBe(0)
    const rejects = readFileSync(`${out}.rejects.jsonl`, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    // task 0: polygon_get_aggs called with symbol/from/to instead of ticker/start_date/end_date (step 3).
    const aggs = rejects.find((x) => x.index === 0)
    expect(aggs.field).toBe("tool_sequence[2].params.ticker")
    expect(aggs.reason).toContain("polygon_get_aggs")
    expect(aggs.reason).toContain("params/symbol: unknown param")
    // task 3: fmp_get_quote given a param it does not declare.
    expect(rejects.find((x) => x.index === 3).field).toBe("tool_sequence[1].params.profile_description")
    const rows = readFileSync(out, "utf8").trim().split("\n")
    expect(rows.length + rejects.length).toBe(7)
  })
})

describe("convert --inventory keeps the comma rule", () => {
  it("an inventory naming a server with a comma is refused, naming file and entry", async () => {
    const dir = tmp()
    const inventory = JSON.parse(readFileSync("test/fixtures/inventory/finance-mcp.json", "utf8"))
    inventory.servers[0].name = "fmp,x"
    const file = join(dir, "inv.json")
    writeFileSync(file, JSON.stringify(inventory))
    const r = await runCli([
      "convert",
      "data/examples/recorded-tasks.jsonl",
      "--inventory",
      file,
      "--out",
      join(dir, "o.jsonl")
    ])
    // Was: exit 0 (since 5cac1dd the Schema leaves the comma to decodeInventory, which convert did not use).
    expect(r.status, r.stderr).toBe(1)
    expect(r.stderr).toContain(`${file}: servers[0].name: holds a comma (at character 3)`)
    expect(existsSync(join(dir, "o.jsonl"))).toBe(false)
  })
})

describe("a new run beside an unfinished one", () => {
  it("generate without --resume warns that the last run of this --out did not complete and --resume continues it", async () => {
    const dir = tmp()
    const out = join(dir, "d.jsonl")
    // 14 samples from 12 recorded answers: the run ends incomplete (12 of 14 rows).
    const first = await runCli(["generate", "-n", "14", "--llm", "replay", "--max-attempts", "1", "--out", out])
    expect(first.status, first.stderr).toBe(1)
    const again = await runCli(["generate", "-n", "14", "--llm", "replay", "--max-attempts", "1", "--out", out])
    // Was: no word of the earlier run; a live run would make (and pay for) every sample again.
    expect(again.stderr).toMatch(
      /run \S+ for \S+d\.jsonl did not complete \(incomplete: 12 of 14 rows\); this starts a new run, which makes every sample again: add --resume to continue it/
    )
    const resumed = await runCli([
      "generate",
      "-n",
      "14",
      "--llm",
      "replay",
      "--max-attempts",
      "1",
      "--out",
      out,
      "--resume"
    ])
    expect(resumed.stderr).not.toContain("did not complete")
  })
})

describe("npm run skyrl from another directory", () => {
  it("reads and writes paths relative to the directory it was typed in (npm's INIT_CWD), not the project root", async () => {
    const dir = tmp()
    writeFileSync(join(dir, "tasks.json"), JSON.stringify([task(0)]))
    const r = await runChild(
      "npm",
      ["--prefix", join(BIN, "..", ".."), "run", "-s", "skyrl", "--", "convert", "tasks.json", "--out", "rows.jsonl"],
      { env: cleanEnv(), cwd: dir, timeoutMs: CLI_TIMEOUT_MS }
    )
    // Was: exit 2, "Path 'tasks.json' must exist" (npm runs a script in the project root).
    expect(r.status, r.stderr).toBe(0)
    expect(readFileSync(join(dir, "rows.jsonl"), "utf8")).toContain("t0")
  })
})

describe("convert --inventory reads an inventory as every other command does", () => {
  const recorded = "data/examples/recorded-tasks.jsonl"
  it("takes `parameters` (an alias of inputSchema) and Hermes `\"type\": \"dict\"`, as validate and generate do", async () => {
    const dir = tmp()
    const inventory = JSON.parse(readFileSync("data/inventory/finance-mcp.json", "utf8"))
    for (const server of inventory.servers) {
      for (const tool of server.tools) {
        tool.parameters = { ...tool.inputSchema, type: "dict" }
        delete tool.inputSchema
      }
    }
    const file = join(dir, "inv.json")
    writeFileSync(file, JSON.stringify(inventory))
    const out = join(dir, "o.jsonl")
    const r = await runCli(["convert", recorded, "--inventory", file, "--out", out])
    // Was: exit 1, every task rejected with "unknown param (none are declared)" (convert decoded without normalizing).
    expect(r.status, r.stderr).toBe(0)
    expect(readFileSync(out, "utf8").trim().split("\n")).toHaveLength(3)
  })
  it("refuses two servers of one name, naming file and entry", async () => {
    const dir = tmp()
    const inventory = JSON.parse(readFileSync("data/inventory/finance-mcp.json", "utf8"))
    inventory.servers.push(inventory.servers[0])
    const file = join(dir, "inv.json")
    writeFileSync(file, JSON.stringify(inventory))
    const out = join(dir, "o.jsonl")
    const r = await runCli(["convert", recorded, "--inventory", file, "--out", out])
    // Was: exit 0 (validate refused the same file).
    expect(r.status, r.stderr).toBe(1)
    expect(r.stderr).toContain(`${file}: servers[5].name: duplicate server name "fmp"`)
    expect(existsSync(out)).toBe(false)
  })
})

describe("convert with nothing convertible", () => {
  it("exits 1 naming the file when every task is rejected, and keeps the rejects", async () => {
    const dir = tmp()
    const input = join(dir, "bad.jsonl")
    writeFileSync(input, JSON.stringify({ user_prompt: "x", tool_sequence: [] }) + "\n")
    const out = join(dir, "rows.jsonl")
    const r = await runCli(["convert", input, "--out", out])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain("bad.jsonl: all 1 tasks were rejected")
    expect(readFileSync(`${out}.rejects.jsonl`, "utf8")).toContain("tool_sequence")
  })

  it("leaves an existing --out as it was when every task is rejected (no empty dataset in its place)", async () => {
    const dir = tmp()
    const converted = await convertedTask0()
    expect(converted.result.status).toBe(0)
    cpSync(converted.dir, dir, { recursive: true }) // a dataset convert wrote (rows.jsonl, and its empty rejects)
    const out = join(dir, "rows.jsonl")
    const before = readFileSync(out, "utf8")
    const bad = join(dir, "bad.jsonl")
    writeFileSync(bad, JSON.stringify({ user_prompt: "x", tool_sequence: [] }) + "\n")
    const r = await runCli(["convert", bad, "--out", out])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain("nothing to convert")
    expect(readFileSync(out, "utf8")).toBe(before)
    expect(readFileSync(`${out}.rejects.jsonl`, "utf8")).toContain("tool_sequence")
  })
})

describe("convert's rejects file is this run's", () => {
  it("a run without rejects empties the rejects file an earlier run left", async () => {
    const dir = tmp()
    const out = join(dir, "rows.jsonl")
    const mixed = await convertedMixed()
    expect(mixed.result.status).toBe(0)
    cpSync(mixed.dir, dir, { recursive: true }) // its rows.jsonl and rows.jsonl.rejects.jsonl
    expect(readFileSync(`${out}.rejects.jsonl`, "utf8")).toContain("tool_sequence")
    const good = join(dir, "good.jsonl")
    writeFileSync(good, JSON.stringify(task(2)) + "\n")
    expect((await runCli(["convert", good, "--out", out])).status).toBe(0)
    expect(readFileSync(`${out}.rejects.jsonl`, "utf8")).toBe("")
  })
})

describe("convert replaces its rejects file only with the dataset it belongs to", () => {
  it("a dataset that cannot be written (the file size limit, as a full disk) leaves both files as they were", async () => {
    const dir = tmp()
    const out = join(dir, "rows.jsonl")
    const rejectsFile = `${out}.rejects.jsonl`
    const bad = { user_prompt: "x", tool_sequence: [] }
    const mixed = await convertedMixed()
    expect(mixed.result.status).toBe(0)
    cpSync(mixed.dir, dir, { recursive: true }) // first.jsonl, its rows.jsonl and rows.jsonl.rejects.jsonl
    const [rows, rejects] = [readFileSync(out, "utf8"), readFileSync(rejectsFile, "utf8")]
    expect(JSON.parse(rejects)).toMatchObject({ file: join(mixed.dir, "first.jsonl"), index: 1 })
    // 40 rows of ~8 KB each against a limit of 64 KB: the rows' file cannot be written, the rejects could be.
    const second = join(dir, "second.jsonl")
    const tasks = [bad, ...Array.from({ length: 40 }, (_, i) => task(i + 2)), bad]
    writeFileSync(second, tasks.map((t) => JSON.stringify(t)).join("\n") + "\n")
    const limited = await runChild(
      "bash",
      ["-c", "ulimit -f 64 && exec \"$0\" \"$@\"", process.execPath, BIN, "convert", second, "--out", out],
      { env: cleanEnv(), cwd: dir, timeoutMs: CLI_TIMEOUT_MS }
    )
    expect(limited.status).toBe(1)
    expect(limited.stderr).toContain(`cannot write ${out}`)
    expect(readFileSync(out, "utf8")).toBe(rows)
    // Before: the rejects of the run whose rows were not written (indices 0 and 41), beside the first run's rows.
    expect(readFileSync(rejectsFile, "utf8")).toBe(rejects)
    expect(readdirSync(dir).sort()).toEqual(["first.jsonl", "rows.jsonl", "rows.jsonl.rejects.jsonl", "second.jsonl"])
    // Written, both are replaced.
    expect((await runCli(["convert", second, "--out", out])).status).toBe(0)
    expect(readFileSync(out, "utf8").trim().split("\n")).toHaveLength(40)
    expect(readFileSync(rejectsFile, "utf8").trim().split("\n").map((l) => JSON.parse(l).index)).toEqual([0, 41])
  })
})

describe("a dataset that cannot be written says why", () => {
  it("a short write (the file size limit, as a full disk) is reported with its cause and where it stopped", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.jsonl")
    writeFileSync(input, Array.from({ length: 40 }, (_, i) => JSON.stringify(task(i + 1))).join("\n") + "\n")
    const convertLimited = (out: string) =>
      runChild(
        "bash",
        ["-c", "ulimit -f 8 && exec \"$0\" \"$@\"", process.execPath, BIN, "convert", input, "--out", out],
        { env: cleanEnv(), cwd: dir, timeoutMs: CLI_TIMEOUT_MS }
      )
    // JSON Lines: before, `the file read back (8192 bytes, CRC-32 ...) is not what was written (... bytes, ...)`.
    const jsonl = join(dir, "rows.jsonl")
    const lines = await convertLimited(jsonl)
    expect(lines.status).toBe(1)
    expect(lines.stderr).toMatch(
      new RegExp(
        `cannot write ${jsonl.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: file too large for the process's file size ` +
          "limit \\(ulimit -f\\) or the file system \\(wrote 8192 of \\d+ bytes\\)"
      )
    )
    expect(lines.stderr).not.toContain("read back")
    expect(readdirSync(dir).sort()).toEqual(["tasks.jsonl"])
    // Parquet (no read-back): before, the file cut at 8192 bytes, footer and all, replaced the earlier dataset,
    // and convert's final check then failed on it as an unreadable file (exit 2).
    const parquet = join(dir, "rows.parquet")
    expect((await runCli(["convert", input, "--out", parquet], { cwd: dir })).status).toBe(0)
    const earlier = readFileSync(parquet)
    const columns = await convertLimited(parquet)
    expect(columns.status).toBe(1)
    expect(columns.stderr).toMatch(/cannot write \S+rows\.parquet: file too large .* \(wrote 8192 of \d+ bytes\)/)
    expect(readFileSync(parquet)).toEqual(earlier)
  })
})

describe("convert never writes over its input", () => {
  it("--out naming the tasks file (by another spelling too) is a usage error; the input is unchanged", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.jsonl")
    const text = JSON.stringify(task(1)) + "\n"
    writeFileSync(input, text)
    for (const out of [input, `${dir}/./tasks.jsonl`]) {
      const r = await runCli(["convert", input, "--out", out])
      expect(r.status).toBe(2)
      expect(r.stderr).toContain("--out: is the tasks file")
      expect(readFileSync(input, "utf8")).toBe(text)
    }
    const r = await runCli(["convert", input, "--out", join(dir, "rows.jsonl"), "--rejects", input])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain("--rejects: is the tasks file")
    expect(readFileSync(input, "utf8")).toBe(text)
    // The default rejects file (`<out>.rejects.jsonl`, here a symlink to the tasks) is --out's: no --rejects was given.
    symlinkSync(input, join(dir, "q.jsonl.rejects.jsonl"))
    const byDefault = await runCli(["convert", input, "--out", join(dir, "q.jsonl")])
    expect([byDefault.status, byDefault.stderr]).toEqual([
      2,
      "skyrl: --out's rejects file: is the tasks file; convert never modifies its input, write to another file\n"
    ])
    expect(readFileSync(input, "utf8")).toBe(text)
  })
  it("no command writes over another file it reads (--inventory, --servers-config, a list file, the cassette store, by a symlink too)", async () => {
    const dir = tmp()
    const at = (name: string) => join(dir, name)
    writeFileSync(at("tasks.jsonl"), JSON.stringify(task(1)) + "\n")
    const inventory = readFileSync(join(import.meta.dirname, "fixtures", "inventory", "finance-mcp.json"), "utf8")
    writeFileSync(at("inv.json"), inventory)
    symlinkSync(at("inv.json"), at("link.json"))
    const config = "{\"mcpServers\":{\"ev\":{\"command\":\"true\"}}}\n"
    writeFileSync(at("mcp.json"), config)
    writeFileSync(at("personas.jsonl"), "a trader\n")
    mkdirSync(at("cas"))
    const cases = [
      [
        ["convert", at("tasks.jsonl"), "--inventory", at("inv.json"), "--out", at("link.json")],
        "--out: is the --inventory file; convert"
      ],
      [[
        "convert",
        at("tasks.jsonl"),
        "--inventory",
        at("inv.json"),
        "--out",
        at("o.jsonl"),
        "--rejects",
        at("inv.json")
      ], "--rejects: is the --inventory file"],
      [
        ["generate", "-n", "1", "--inventory", at("inv.json"), "--out", at("inv.json")],
        "--out: is the --inventory file; generate"
      ],
      [
        ["generate", "-n", "1", "--personas", at("personas.jsonl"), "--out", at("personas.jsonl")],
        "--out: is the --personas file"
      ],
      [
        ["generate", "-n", "1", "--verify", "--servers-config", at("mcp.json"), "--out", at("mcp.json")],
        "--out: is the --servers-config file"
      ],
      [
        ["enrich", at("tasks.jsonl"), "--inventory", at("inv.json"), "--out", at("inv.json")],
        "--out: is the --inventory file; enrich"
      ],
      [
        ["verify", at("tasks.jsonl"), "--inventory", at("inv.json"), "--out", at("inv.json")],
        "--out: is the --inventory file; verify"
      ],
      [
        ["verify", at("tasks.jsonl"), "--servers-config", at("mcp.json"), "--out", at("mcp.json")],
        "--out: is the --servers-config file"
      ],
      [
        ["verify", at("tasks.jsonl"), "--cassettes", at("cas"), "--out", at("cas/cassettes.jsonl")],
        "--out: is inside the cassette store"
      ],
      [
        ["tools", "import", "--servers-config", at("mcp.json"), "--out", at("mcp.json")],
        "--out: is the --servers-config file"
      ]
    ] as const
    for (const [args, message] of cases) {
      const r = await runCli([...args])
      expect(r.status, args.join(" ")).toBe(2)
      expect(r.stderr).toContain(message)
    }
    expect(readFileSync(at("inv.json"), "utf8")).toBe(inventory)
    expect(readFileSync(at("mcp.json"), "utf8")).toBe(config)
    expect(readFileSync(at("personas.jsonl"), "utf8")).toBe("a trader\n")
    expect(readdirSync(at("cas"))).toEqual([])
  })
  it("--rejects naming the --out file is a usage error (the rejects would replace the rows); an existing file is kept", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.jsonl")
    writeFileSync(input, JSON.stringify(task(1)) + "\n")
    const out = join(dir, "rows.jsonl")
    writeFileSync(out, "{\"earlier\":1}\n")
    const r = await runCli(["convert", input, "--out", out, "--rejects", `${dir}/./rows.jsonl`])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain("--rejects: is the --out file")
    expect(readFileSync(out, "utf8")).toBe("{\"earlier\":1}\n")
  })
  it("--rejects not named .jsonl is a usage error (before: JSON Lines written under a .parquet name)", async () => {
    const dir = tmp()
    const input = join(dir, "tasks.jsonl")
    writeFileSync(input, JSON.stringify(task(1)) + "\n")
    for (const name of ["r.parquet", "r.json"]) {
      const rejects = join(dir, name)
      const r = await runCli(["convert", input, "--out", join(dir, "rows.jsonl"), "--rejects", rejects])
      expect(r.status).toBe(2)
      expect(r.stderr).toContain(`--rejects: "${rejects}" must end in .jsonl (the rejects are written as JSON Lines)`)
      expect(existsSync(rejects)).toBe(false)
    }
  })
})

describe("cassettes stats on a store with a line whose duration_ms is not a number", () => {
  it("reports the line as bad, naming the file, the line and the field, and exits 1; the rest is counted", async () => {
    const dir = tmp()
    const file = join(dir, "cassettes.jsonl")
    const entry = (key: string, duration: unknown) =>
      JSON.stringify({
        key: callKey("srv", "t", { q: key }),
        server: "srv",
        tool: "t",
        params: { q: key },
        result: { content: [{ type: "text", text: "ok" }], structuredContent: null, isError: false },
        duration_ms: duration,
        server_version: "srv@1",
        recorded_at: "2026-11-30T00:00:00.000Z",
        illustrative: false
      })
    const text = [entry("a", 40), entry("b", "12"), entry("c", null), entry("d", -5)].join("\n") + "\n"
    writeFileSync(file, text)
    const r = await runCli(["cassettes", "stats", dir])
    // Before: "4 entries (distinct calls) in 4 lines", mean 9 ms, exit 0: the three counted as 0 and -5 ms.
    expect(r.stdout).toContain("1 entry (distinct call) in 4 lines")
    expect(r.stdout).toContain("lines that are not entries: 3 (line 2, 3, 4)")
    expect(r.stdout).toContain("line 2: duration_ms: expected a number of milliseconds ≥ 0, got \"12\"")
    expect(r.stderr).toContain(`${file}, line 2, 3, 4: 3 line(s) are not cassette entries`)
    expect(r.stderr).toContain("the first: line 2: duration_ms: expected a number of milliseconds ≥ 0, got \"12\"")
    expect(r.status).toBe(1)
    const json = JSON.parse((await runCli(["cassettes", "stats", dir, "--json"])).stdout)
    expect(json).toMatchObject({ entries: 1, invalid: [2, 3, 4] })
    expect(json.reasons[2]).toBe("line 4: duration_ms: expected a number of milliseconds ≥ 0, got -5")
    expect(readFileSync(file, "utf8")).toBe(text)
  })
})
