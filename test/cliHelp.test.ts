/** What `--help` of the built CLI says of each option (runs bin/skyrl.js: `npm run build` first). */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runChild } from "./support/child.js"
import { cleanEnv, type CliResult, runCliShared } from "./support/cli.js"
import { ROOT } from "./support/python.js"

const COMMANDS = [
  [],
  ["generate"],
  ["enrich"],
  ["rebuild"],
  ["convert"],
  ["validate"],
  ["schema"],
  ["tools", "import"],
  ["tools", "list"],
  ["verify"],
  ["cassettes", "stats"],
  ["batch", "status"],
  ["batch", "collect"]
]

/** `args --help`, run once per command (`runCliShared`). */
const help = (args: ReadonlyArray<string>): Promise<CliResult> => runCliShared([...args, "--help"])

/** The help text of each option of `args --help`, by its long name (`-n` for generate's only short one). */
const optionsHelp = async (args: ReadonlyArray<string>): Promise<Map<string, string>> => {
  const r = await help(args)
  expect(r.status, r.stderr).toBe(0)
  const lines = r.stdout.split("\n")
  const options = new Map<string, string>()
  let current: string | undefined
  for (const line of lines.slice(lines.indexOf("OPTIONS") + 1)) {
    if (line === "COMMANDS") break
    if (line.startsWith("  ")) {
      if (current !== undefined) options.set(current, `${options.get(current)}\n${line.trim()}`)
    } else if (line !== "") {
      current = /--[\w-]+/.exec(line)?.[0] ?? /-\w\b/.exec(line)?.[0]
      if (current !== undefined) options.set(current, line)
    }
  }
  return options
}

describe("--help states each option's default and environment variable", () => {
  it("names them (before: no default, and only 'This option can be set from environment variables.')", async () => {
    const generate = await optionsHelp(["generate"])
    const verify = await optionsHelp(["verify"])
    const expected: ReadonlyArray<readonly [Map<string, string>, string, string]> = [
      [generate, "-n", "(default: 10; env: N_SAMPLES)"],
      [generate, "--concurrency", "(default: 4; env: CONCURRENCY)"],
      [generate, "--seed", "(default: 7; env: SEED)"],
      [generate, "--max-tools", "(default: 5; env: MAX_TOOLS)"],
      [generate, "--max-turns", "(default: 8; env: MAX_TURNS)"],
      [generate, "--max-prompt-tokens", "(default: 1024; env: MAX_PROMPT_TOKENS)"],
      [generate, "--near-dup", "(default: 0.8; env: NEAR_DUP)"],
      [generate, "--max-attempts", "(default: 3; env: MAX_ATTEMPTS)"],
      [generate, "--model", "(default: gpt-5-mini; env: OPENAI_MODEL)"],
      [generate, "--timeout", "(default: 600; env: OPENAI_TIMEOUT)"],
      [generate, "--servers", "(default: all; env: SKYRL_SERVERS or SERVERS)"],
      [generate, "--inventory", "(default: the bundled finance MCP inventory in data/; env: SKYRL_INVENTORY)"],
      [generate, "--indent", "(default: 2)"],
      [verify, "--concurrency", "(default: 4)"],
      [verify, "--timeout", "(default: 30)"],
      [await optionsHelp(["tools", "import"]), "--timeout", "(default: 30)"],
      [await optionsHelp(["validate"]), "--near-dup", "(default: 0.8)"],
      [await optionsHelp([]), "--log-format", "(default: pretty; env: SKYRL_LOG_FORMAT)"]
    ]
    for (const [options, flag, note] of expected) expect(options.get(flag), flag).toContain(note)
  })

  it("every option that reads an environment variable names it, in every command", async () => {
    const helps = await Promise.all(COMMANDS.map(async (args) => [args.join(" "), await optionsHelp(args)] as const))
    const unnamed = helps.flatMap(([command, options]) =>
      [...options].filter(([, text]) => text.includes("environment variables") && !/\benv: [A-Z]/.test(text))
        .map(([flag]) => `${command} ${flag}`)
    )
    expect(unnamed).toEqual([])
    expect(helps.every(([, options]) => options.size > 0)).toBe(true)
  })
})

describe("tools import --help", () => {
  it("shows the repeatable --stdio, --http and --name as optional (they read as required: `--stdio text...`)", async () => {
    const r = await help(["tools", "import"])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain("$ skyrl tools import [--stdio text...] [--http text...] [--name text...] [")
  })
})

describe("a checkout never built", () => {
  it("says the CLI is not built and how to build it, exit 1 (was a stack trace of the missing dist/bin.js)", async () => {
    const root = mkdtempSync(join(tmpdir(), "skyrl-unbuilt-"))
    mkdirSync(join(root, "bin"))
    for (const file of ["skyrl.js", "bundle.js"]) copyFileSync(join(ROOT, "bin", file), join(root, "bin", file))
    writeFileSync(join(root, "package.json"), JSON.stringify({ type: "module" }))
    const r = await runChild(process.execPath, [join(root, "bin", "skyrl.js"), "--help"], { env: cleanEnv() })
    expect(r.status).toBe(1)
    expect(r.stderr).toBe(
      `skyrl: ${
        join(root, "dist", "bin.js")
      } is missing: the CLI is not built; run \`npm run build\` (or \`npm ci\`) in ${root}\n`
    )
    expect(r.stdout).toBe("")
  })
})

describe("npm run skyrl after the sources changed", () => {
  // A checkout of bin/ with a stand-in build (scripts/build.mjs): it says how it was run, then writes a bundle
  // that prints "bundle ran" and the stamp, or fails with exit 3 when the checkout has a file `fail`.
  const checkout = () => {
    const root = mkdtempSync(join(tmpdir(), "skyrl-stale-"))
    for (const dir of ["bin", "scripts", "src"]) mkdirSync(join(root, dir))
    for (const file of ["skyrl.js", "bundle.js"]) copyFileSync(join(ROOT, "bin", file), join(root, "bin", file))
    writeFileSync(join(root, "package.json"), JSON.stringify({ type: "module" }))
    writeFileSync(join(root, "src", "bin.ts"), "")
    writeFileSync(
      join(root, "scripts", "build.mjs"),
      `import { existsSync, mkdirSync, writeFileSync } from "node:fs"
console.log("build ran as " + (process.env.npm_lifecycle_event ?? "no script") + " in " + process.cwd())
if (existsSync("fail")) process.exit(3)
mkdirSync("dist", { recursive: true })
writeFileSync("dist/bin.js", 'console.log("bundle ran")')
writeFileSync("dist/.inputs.sha256", "x")
`
    )
    return root
  }
  const npmRun = (root: string) =>
    runChild(process.execPath, [join(root, "bin", "skyrl.js"), "--version"], {
      env: {
        ...cleanEnv(),
        npm_lifecycle_event: "skyrl",
        INIT_CWD: tmpdir(),
        npm_package_json: join(root, "package.json")
      }
    })
  const BUILDING = "skyrl: the sources changed since dist/ was built: building it first (npm run build)\n"

  it("builds dist/ first when a source is newer than the last build, then runs it; not when none is", async () => {
    const root = checkout()
    const first = await npmRun(root)
    expect(first.status, first.stderr).toBe(0)
    // The build's output on stderr, and run not as the script (its code-cache runs would build again, for ever).
    expect(first.stderr).toBe(`${BUILDING}build ran as no script in ${root}\n`)
    expect(first.stdout).toBe("bundle ran\n")
    const again = await npmRun(root)
    expect(again.stderr).toBe("")
    expect(again.stdout).toBe("bundle ran\n")
    // A `git pull`: a source newer than the stamp.
    const later = new Date(Date.now() + 60_000)
    utimesSync(join(root, "src", "bin.ts"), later, later)
    expect((await npmRun(root)).stderr).toBe(`${BUILDING}build ran as no script in ${root}\n`)
  })

  it("a file added to a source folder is a change too, a file outside the build's inputs is not", async () => {
    const root = checkout()
    await npmRun(root)
    const later = new Date(Date.now() + 60_000)
    writeFileSync(join(root, "notes.txt"), "")
    utimesSync(join(root, "notes.txt"), later, later)
    expect((await npmRun(root)).stderr).toBe("")
    mkdirSync(join(root, "src", "new"))
    writeFileSync(join(root, "src", "new", "a.ts"), "")
    utimesSync(join(root, "src", "new"), later, later)
    utimesSync(join(root, "src", "new", "a.ts"), new Date(0), new Date(0))
    expect((await npmRun(root)).stderr).toBe(`${BUILDING}build ran as no script in ${root}\n`)
  })

  it("a failed build runs nothing and exits with the build's status", async () => {
    const root = checkout()
    writeFileSync(join(root, "fail"), "")
    const r = await npmRun(root)
    expect(r.status).toBe(3)
    expect(r.stderr).toBe(
      `${BUILDING}build ran as no script in ${root}\nskyrl: the build failed (exit 3); nothing was run\n`
    )
    expect(r.stdout).toBe("")
  })

  it("run directly (not as the npm script), the CLI never builds", async () => {
    const root = checkout()
    const r = await runChild(process.execPath, [join(root, "bin", "skyrl.js"), "--version"], { env: cleanEnv() })
    expect(r.status).toBe(1)
    expect(r.stderr).toContain("is missing: the CLI is not built")
  })
})

describe("one build at a time (scripts/buildLock.mjs, taken by scripts/build.mjs)", () => {
  // A process that takes the build's lock, notes when it held it, and holds it 300 ms.
  const holder = (root: string, log: string) =>
    runChild(process.execPath, [
      "--input-type=module",
      "-e",
      `import { appendFileSync } from "node:fs"
import { holdBuildLock } from ${JSON.stringify(join(ROOT, "scripts", "buildLock.mjs"))}
await holdBuildLock(process.argv[1])
appendFileSync(process.argv[2], "start\\n")
await new Promise((resolve) => setTimeout(resolve, 300))
appendFileSync(process.argv[2], "end\\n")`,
      root,
      log
    ], { env: cleanEnv(), timeoutMs: 20_000 }) // a holder that never gets the lock is ended

  it("three builders at once hold it one after the other, and leave no lock behind", async () => {
    const root = mkdtempSync(join(tmpdir(), "skyrl-buildlock-"))
    const log = join(root, "log")
    const runs = await Promise.all([holder(root, log), holder(root, log), holder(root, log)])
    for (const r of runs) expect(r.status, r.stderr).toBe(0)
    // Before: each removed dist/ and built at once, one under the other.
    expect(readFileSync(log, "utf8")).toBe("start\nend\n".repeat(3))
    expect(existsSync(join(root, ".build.lock"))).toBe(false)
  })

  it("waits for a live holder, saying for whom, until it ends", async () => {
    const root = mkdtempSync(join(tmpdir(), "skyrl-buildlock-"))
    const lock = join(root, ".build.lock")
    writeFileSync(lock, `${process.pid}\n`) // alive: this test's own process
    const waiting = holder(root, join(root, "log"))
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(existsSync(join(root, "log"))).toBe(false)
    rmSync(lock)
    const r = await waiting
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toBe(`waiting for the build of process ${process.pid} to end (${lock})\n`)
    expect(readFileSync(join(root, "log"), "utf8")).toBe("start\nend\n")
  })

  it("takes over the lock of a process that is gone, one older than 10 minutes (its pid perhaps used again), an empty one", async () => {
    const root = mkdtempSync(join(tmpdir(), "skyrl-buildlock-"))
    const lock = join(root, ".build.lock")
    const gone = (await runChild(process.execPath, ["-e", ""])).pid!
    writeFileSync(lock, `${gone}\n`)
    const r = await holder(root, join(root, "log"))
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toBe("")
    writeFileSync(lock, `${process.pid}\n`) // alive: this test's own process
    const old = new Date(Date.now() - 11 * 60_000)
    utimesSync(lock, old, old)
    const again = await holder(root, join(root, "log"))
    expect(again.status, again.stderr).toBe(0)
    // Empty (its builder died between making and writing it; pid 0 would name this process group, alive), 3 s old.
    writeFileSync(lock, "")
    const seconds = new Date(Date.now() - 3_000)
    utimesSync(lock, seconds, seconds)
    const third = await holder(root, join(root, "log"))
    expect(third.status, third.stderr).toBe(0)
    expect(readFileSync(join(root, "log"), "utf8")).toBe("start\nend\n".repeat(3))
  })
})
