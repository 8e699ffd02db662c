/**
 * scripts/generate_llm_dataset.sh: the environment-driven wrapper around `skyrl generate`, run with
 * bash as a child process (against the OpenAI-compatible fake on 127.0.0.1 where a model is called).
 */
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runChild } from "./support/child.js"
import { BIN, cleanEnv } from "./support/cli.js"
import type { FakeHandler } from "./support/fakeOpenAI.js"
import { answer, httpError } from "./support/fakeOpenAI.js"
import { fakes, readJsonl } from "./support/fakeRun.js"
import { isTaskRequest, validTaskFor } from "./support/fakeTasks.js"
import { ROOT } from "./support/python.js"

const SCRIPT = join(ROOT, "scripts", "generate_llm_dataset.sh")
const KEY = "sk-test-wrapper-0123456789"

/** Every variable the wrapper reads; the tests start from an environment without any of them. */
const KNOBS = [
  "OPENAI_API_KEY",
  "OPENAI_BASE_URL",
  "N_SAMPLES",
  "OPENAI_MODEL",
  "OPENAI_BACKEND",
  "OPENAI_REASONING_EFFORT",
  "DOMAINS",
  "COMPLEXITIES",
  "MAX_TURNS",
  "MAX_TOOLS",
  "SEED",
  "CONCURRENCY",
  "MAX_ATTEMPTS",
  "OPENAI_RPM",
  "OPENAI_TPM",
  "MAX_COST_USD",
  "OPENAI_MAX_OUTPUT_TOKENS",
  "OPENAI_TIMEOUT",
  "OPENAI_MAX_RETRIES",
  "SKYRL_INVENTORY",
  "SERVERS",
  "DATA_SOURCE",
  "RAW_DIR",
  "RESUME",
  "SKYRL_LLM",
  "SKYRL_REPLAY_DIR",
  "SKYRL_LOG_FORMAT"
]

const baseEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env = cleanEnv()
  for (const k of KNOBS) delete env[k]
  return { ...env, ...extra }
}

interface Result {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

const spawnAsync = (
  command: string,
  args: ReadonlyArray<string>,
  options: { env?: Record<string, string>; cwd?: string }
): Promise<Result> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: baseEnv(options.env ?? {}), cwd: options.cwd ?? tmp("cwd-") })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })

/** Runs the wrapper with bash (cwd: a fresh temp dir unless given). */
const run = (
  args: ReadonlyArray<string>,
  options: { env?: Record<string, string>; cwd?: string; script?: string } = {}
): Promise<Result> => spawnAsync("bash", [options.script ?? SCRIPT, ...args], options)

/** Runs `skyrl generate` directly (async: the in-process fake server must keep answering). */
const runGenerate = (args: ReadonlyArray<string>, options: { env?: Record<string, string>; cwd: string }) =>
  spawnAsync(process.execPath, [BIN, "generate", ...args], options)

const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), `skyrl-wrap-${prefix}`))

const servers = fakes()
afterEach(servers.closeAll)
const fake = (handler: FakeHandler) => servers.start(handler)
const validFake = () => fake((ctx) => answer(validTaskFor(ctx), { input: 1000, output: 500 }))

describe("generate_llm_dataset.sh: usage (exit 0 / 64)", () => {
  it("--help prints usage with every variable and its default, the fixed env class and the exit codes", async () => {
    for (const flag of ["--help", "-h"]) {
      const r = await run([flag])
      expect(r.status, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/^Usage: generate_llm_dataset\.sh \[--dry-run\] \[--verbose\] \[--help\] OUTPUT_PATH/)
      for (const name of KNOBS) {
        const line = r.stdout.split("\n").find((l) => l.trimStart().startsWith(`${name} `))
        expect(line, name).toBeDefined()
        if (name !== "OPENAI_API_KEY") expect(line, name).toMatch(/\(default: [^)]+\)/)
      }
      // Defaults shown are the values (not unexpanded variables).
      expect(r.stdout).toMatch(/N_SAMPLES .*\(default: 10\)/)
      expect(r.stdout).toMatch(/OPENAI_BACKEND .*responses \| chat .*\(default: responses\)/)
      expect(r.stdout).not.toContain("$D_")
      expect(r.stdout).toContain("always MCPToolEnv")
      for (const code of ["64", "78"]) expect(r.stdout).toMatch(new RegExp(`^  ${code}  `, "m"))
    }
  })

  it("exits 64 on a usage error, before looking at the configuration", async () => {
    const cases: Array<[Array<string>, RegExp]> = [
      [[], /missing OUTPUT_PATH/],
      [["--bogus", "out.jsonl"], /unknown option: --bogus/],
      [["a.jsonl", "b.jsonl"], /more than one OUTPUT_PATH/],
      [["out.csv"], /must end in \.json, \.jsonl or \.parquet/],
      [[""], /OUTPUT_PATH is empty/]
    ]
    for (const [args, message] of cases) {
      // No key and a bad N_SAMPLES too: usage errors win (64, not 78).
      const r = await run(args, { env: { N_SAMPLES: "x" } })
      expect(r.status, `${args.join(" ")}: ${r.stderr}`).toBe(64)
      expect(r.stderr).toMatch(message)
      expect(r.stderr).toContain("Usage:")
      expect(r.stdout).toBe("")
    }
  })
})

describe("generate_llm_dataset.sh: configuration (exit 78, nothing started)", () => {
  const expect78 = async (env: Record<string, string>, message: RegExp, args = ["out.jsonl"]) => {
    const server = await validFake()
    const cwd = tmp("cfg-")
    const r = await run(args, { env: { OPENAI_BASE_URL: server.baseUrl, ...env }, cwd })
    expect(r.status, r.stderr).toBe(78)
    expect(r.stderr).toMatch(message)
    expect(r.stderr).toMatch(/nothing was started/)
    expect(server.requests).toHaveLength(0)
    expect(existsSync(join(cwd, "out.jsonl"))).toBe(false)
    expect(existsSync(join(cwd, "raw_llm"))).toBe(false)
    return r
  }

  it("a missing, empty or blank OPENAI_API_KEY is rejected", async () => {
    await expect78({}, /OPENAI_API_KEY is not set/)
    await expect78({ OPENAI_API_KEY: "" }, /OPENAI_API_KEY is not set/)
    await expect78({ OPENAI_API_KEY: "   " }, /OPENAI_API_KEY is not set/)
    const r = await expect78({ OPENAI_API_KEY: "sk-abc def" }, /OPENAI_API_KEY contains whitespace/)
    expect(r.stderr).not.toContain("sk-abc")
  })

  it("OPENAI_BASE_URL, when set, must be an http(s) URL", async () => {
    for (const url of ["ftp://example.com/v1", "localhost:8080/v1", "http://", "https:///v1", "http://a b/v1"]) {
      const r = await run(["out.jsonl"], { env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: url } })
      expect(r.status, url).toBe(78)
      expect(r.stderr).toMatch(/OPENAI_BASE_URL must be an http\(s\) URL/)
      expect(r.stderr).toContain(url)
    }
  })

  it("a non-integer or non-positive N_SAMPLES is rejected with a message naming it", async () => {
    for (const n of ["abc", "2.5", "0", "-1", "1e3", " 3"]) {
      const r = await expect78({ OPENAI_API_KEY: KEY, N_SAMPLES: n }, /N_SAMPLES must be an integer >= 1/)
      expect(r.stderr).toContain(`got '${n}'`)
    }
  })

  it("every invalid knob is named, all in one go", async () => {
    const r = await expect78(
      {
        OPENAI_API_KEY: KEY,
        OPENAI_BACKEND: "completions",
        OPENAI_REASONING_EFFORT: "max",
        COMPLEXITIES: "simple:2,hard:1",
        MAX_TURNS: "1",
        MAX_TOOLS: "many",
        SEED: "-3",
        CONCURRENCY: "0",
        OPENAI_RPM: "fast",
        MAX_COST_USD: "0",
        OPENAI_TIMEOUT: "1.2.3",
        OPENAI_MAX_RETRIES: "-1",
        SKYRL_INVENTORY: "/nonexistent/inventory.json",
        RESUME: "maybe",
        SKYRL_LLM: "auto",
        SKYRL_LOG_FORMAT: "xml",
        DOMAINS: " , ,"
      },
      /16 configuration problem\(s\)/
    )
    for (
      const name of [
        "OPENAI_BACKEND",
        "OPENAI_REASONING_EFFORT",
        "COMPLEXITIES",
        "MAX_TURNS",
        "MAX_TOOLS",
        "SEED",
        "CONCURRENCY",
        "OPENAI_RPM",
        "MAX_COST_USD",
        "OPENAI_TIMEOUT",
        "OPENAI_MAX_RETRIES",
        "SKYRL_INVENTORY",
        "RESUME",
        "SKYRL_LLM",
        "SKYRL_LOG_FORMAT",
        "DOMAINS"
      ]
    ) expect(r.stderr).toMatch(new RegExp(`^generate_llm_dataset\\.sh: ${name} `, "m"))
    expect(r.stderr).toMatch(/OPENAI_BACKEND must be one of: responses chat; got 'completions'/)
  })

  it("COMPLEXITIES with weights of zero for all is rejected; valid weighted lists pass", async () => {
    await expect78({ OPENAI_API_KEY: KEY, COMPLEXITIES: "simple:0,complex:0" }, /COMPLEXITIES must look like/)
    await expect78({ OPENAI_API_KEY: KEY, COMPLEXITIES: "simple:1:2" }, /COMPLEXITIES must look like/)
    const r = await run(["--dry-run", "out.jsonl"], {
      env: { COMPLEXITIES: " complex : 1.5 , simple:0", N_SAMPLES: "3" }
    })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout.match(/^ +\d+ {2}complex /gm)).toHaveLength(3)
  })
})

describe("generate_llm_dataset.sh: runs", () => {
  it("--dry-run needs no key, calls no model and writes nothing", async () => {
    const server = await validFake()
    const cwd = tmp("dry-")
    const r = await run(["--dry-run", "ds.jsonl"], {
      env: { OPENAI_BASE_URL: server.baseUrl, N_SAMPLES: "3", SEED: "11" },
      cwd
    })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain("work plan (3 samples, seed 11)")
    expect(r.stdout).toContain("OPENAI_API_KEY is not set")
    expect(r.stdout).toContain(`OPENAI_BASE_URL: ${server.baseUrl}`)
    expect(server.requests).toHaveLength(0)
    expect(existsSync(join(cwd, "ds.jsonl"))).toBe(false)
  }, 30_000)

  it(
    "its defaults are generate's defaults: dry-run output equals `skyrl generate --dry-run --llm openai`",
    async () => {
      const cwd = tmp("defaults-")
      const viaWrapper = await run(["--dry-run", "ds.jsonl"], { cwd })
      const direct = await runGenerate(["--out", "ds.jsonl", "--dry-run", "--llm", "openai"], { cwd })
      expect(viaWrapper.status, viaWrapper.stderr).toBe(0)
      expect(direct.status, direct.stderr).toBe(0)
      expect(viaWrapper.stdout).toContain("work plan (10 samples")
      expect(viaWrapper.stdout).toBe(direct.stdout)
    },
    30_000
  )

  it(
    "a real run of N_SAMPLES=2 against the fake server writes 2 MCPToolEnv rows with the configured model and backend",
    async () => {
      const server = await validFake()
      const cwd = tmp("run-")
      const r = await run(["ds.jsonl"], {
        env: {
          OPENAI_API_KEY: KEY,
          OPENAI_BASE_URL: server.baseUrl,
          N_SAMPLES: "2",
          OPENAI_MODEL: "gpt-5-nano",
          OPENAI_BACKEND: "chat",
          OPENAI_REASONING_EFFORT: "low",
          MAX_TOOLS: "4",
          MAX_TURNS: "6",
          CONCURRENCY: "2",
          DATA_SOURCE: "wrapper/test",
          // Empty counts as unset: generate itself would reject DOMAINS="" ("needs at least one domain").
          DOMAINS: ""
        },
        cwd
      })
      expect(r.status, r.stderr).toBe(0)
      const rows = readJsonl(join(cwd, "ds.jsonl"))
      expect(rows).toHaveLength(2)
      for (const row of rows) {
        expect(row.env_class).toBe("MCPToolEnv")
        expect(row.data_source).toBe("wrapper/test")
        expect(row.reward_spec.ground_truth.tool_sequence.length).toBeGreaterThan(0)
        expect(row.reward_spec.ground_truth.tool_sequence.length).toBeLessThanOrEqual(4)
        expect(JSON.parse(row.extra_info.task_metadata).model).toBe("gpt-5-nano")
      }
      // The two tasks, after the subjects stage (same model and backend).
      const calls = server.requests.filter((q) => q.endpoint !== "other")
      expect(calls.filter((q) => isTaskRequest(q.body))).toHaveLength(2)
      expect(calls).toHaveLength(3)
      for (const q of calls) {
        expect(q.endpoint).toBe("chat")
        expect(q.body.model).toBe("gpt-5-nano")
        expect(q.body.reasoning_effort).toBe("low")
      }
      expect(r.stdout + r.stderr).not.toContain(KEY)
      expect(existsSync(join(cwd, "raw_llm"))).toBe(true)
    },
    60_000
  )

  it("--verbose turns on debug logs and shows the command, never the key", async () => {
    const server = await validFake()
    const cwd = tmp("verbose-")
    const r = await run(["--verbose", "ds.jsonl"], {
      env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseUrl, N_SAMPLES: "1" },
      cwd
    })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(
      /running: node .*skyrl\.js --log-level debug --log-format pretty generate --out ds\.jsonl -n 1 /
    )
    expect(r.stderr).toMatch(/ DEBUG /)
    expect(r.stderr).not.toContain(KEY)
    expect(readJsonl(join(cwd, "ds.jsonl"))).toHaveLength(1)
    // Without --verbose there are no debug lines.
    const quiet = await run(["ds2.jsonl"], {
      env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseUrl, N_SAMPLES: "1" },
      cwd
    })
    expect(quiet.status, quiet.stderr).toBe(0)
    expect(quiet.stderr).not.toMatch(/ DEBUG |running:/)
  }, 60_000)

  it("works from any working directory, when the project path and the output path contain spaces", async () => {
    const server = await validFake()
    const base = tmp("spaces-")
    // The project reached through a directory whose name has spaces (a symlink to the real project).
    const linkParent = join(base, "my projects")
    mkdirSync(linkParent)
    const project = join(linkParent, "sky rl")
    symlinkSync(ROOT, project)
    const cwd = join(base, "work dir")
    mkdirSync(join(cwd, "out dir"), { recursive: true })
    const r = await run(["--verbose", "out dir/my data.jsonl"], {
      script: join(project, "scripts", "generate_llm_dataset.sh"),
      env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseUrl, N_SAMPLES: "2" },
      cwd
    })
    expect(r.status, r.stderr).toBe(0)
    // The project was found by the script's own (spaced) path, not by the working directory.
    expect(r.stderr).toContain(`running: node ${project.replace(/ /g, "\\ ")}/bin/skyrl.js`)
    const rows = readJsonl(join(cwd, "out dir", "my data.jsonl"))
    expect(rows).toHaveLength(2)
    expect(existsSync(join(cwd, "out dir", "raw_llm"))).toBe(true)
    expect(server.requests.filter((q) => isTaskRequest(q.body))).toHaveLength(2)

    // A symlink to the script itself, in a directory with spaces elsewhere, still finds the project.
    const binDir = join(base, "my bin")
    mkdirSync(binDir)
    symlinkSync(join(project, "scripts", "generate_llm_dataset.sh"), join(binDir, "gen data"))
    const dry = await run(["--dry-run", "x.jsonl"], { script: join(binDir, "gen data"), env: { N_SAMPLES: "1" } })
    expect(dry.status, dry.stderr).toBe(0)
    expect(dry.stdout).toContain("work plan (1 samples")
  }, 60_000)

  it("SKYRL_LLM=replay runs offline from the bundled recorded answers with no key", async () => {
    const cwd = tmp("replay-")
    const r = await run(["ds.json"], { env: { SKYRL_LLM: "replay", N_SAMPLES: "2" }, cwd })
    expect(r.status, r.stderr).toBe(0)
    const rows = JSON.parse(readFileSync(join(cwd, "ds.json"), "utf8"))
    expect(rows).toHaveLength(2)
    expect(rows[0].env_class).toBe("MCPToolEnv")
  }, 60_000)

  it("passes the generator's own non-zero exit code through (a 401 from the API)", async () => {
    const server = await fake(() => httpError(401, "Incorrect API key provided", { code: "invalid_api_key" }))
    const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseUrl, N_SAMPLES: "2" }
    const cwd = tmp("fail-")
    const r = await run(["ds.jsonl"], { env, cwd })
    // The same run made directly: the wrapper's code is the generator's, whatever it is.
    const direct = await runGenerate(["--out", "direct.jsonl", "-n", "2", "--llm", "openai"], { env, cwd })
    expect(direct.status).not.toBe(0)
    expect(r.status, r.stderr).toBe(direct.status)
    expect([0, 64, 78]).not.toContain(r.status)
    expect(r.stderr).toMatch(/401|API key/i)
    expect(r.stderr).not.toContain(KEY)
    expect(server.requests.length).toBeGreaterThan(0)
  }, 60_000)
})

describe("generate_llm_dataset.sh: portability", () => {
  const text = readFileSync(SCRIPT, "utf8")
  const code = text.split("\n").filter((l) => !l.trimStart().startsWith("#")).join("\n")

  it("uses no bash-4 features (so it runs on macOS's bash 3.2)", () => {
    const banned: Array<[string, RegExp]> = [
      ["associative arrays", /\b(declare|local|typeset)\s+-[a-zA-Z]*A/],
      ["mapfile/readarray", /\b(mapfile|readarray)\b/],
      ["case conversion expansions", /\$\{[^}]*(,,|\^\^|,\}|\^\})/],
      ["[[ -v ]]", /\[\[\s+-v\b/],
      ["negative array indices", /\[\s*-\d+\s*\]|\$\{[^}]*:\s+-\d/],
      ["&>>", /&>>/],
      ["|& pipes", /\|&/],
      ["coproc", /\bcoproc\b/],
      ["${var@Q} transformations", /\$\{[^}]*@[QEPAa]\}/],
      ["globstar", /shopt\s+-s\s+globstar/]
    ]
    for (const [what, re] of banned) expect(code, what).not.toMatch(re)
    // Arrays that may be empty are expanded with the set -u-safe idiom.
    expect(code).toContain("\"${global[@]+\"${global[@]}\"}\"")
    expect(code).toMatch(/^set -u$/m)
  })

  const shellcheck = spawnSync("shellcheck", ["--version"], { encoding: "utf8" })
  const haveShellcheck = shellcheck.status === 0
  it.skipIf(!haveShellcheck && process.env.CI !== "true")("shellcheck passes (required in CI)", async () => {
    expect(haveShellcheck, "shellcheck is not installed (.ci/run installs it from Debian's packages)").toBe(true)
    const r = await runChild("shellcheck", ["--shell=bash", "--severity=style", SCRIPT])
    expect(r.stdout + r.stderr).toBe("")
    expect(r.status).toBe(0)
  })
})
