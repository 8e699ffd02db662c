/**
 * scripts/test.sh (`npm test`'s last step): vitest and pytest at once. Run on a copy of the script beside a
 * stand-in scripts/test-python.sh and a stand-in `npx` (first on PATH), so that what each "suite" prints and
 * exits with is the test's choice.
 */
import { spawnSync } from "node:child_process"
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runChild } from "./support/child.js"
import { tempDir } from "./support/fakeRun.js"
import { ROOT } from "./support/python.js"

const SCRIPT = join(ROOT, "scripts", "test.sh")

/** Runs a copy of scripts/test.sh whose vitest and pytest print their name and exit with the given codes. */
const runWith = async (vitest: number, pytest: number) => {
  const dir = tempDir("skyrl-test-sh-")
  mkdirSync(join(dir, "scripts"))
  mkdirSync(join(dir, "bin"))
  copyFileSync(SCRIPT, join(dir, "scripts", "test.sh"))
  // pytest marks that it runs; vitest waits for the mark (5 s at most: run one after the other, it never comes),
  // then takes longer, so that pytest's output would come first if the script did not hold it until vitest ends.
  writeFileSync(
    join(dir, "scripts", "test-python.sh"),
    `touch "${dir}/pytest-ran"; echo pytest-output; exit ${pytest}\n`
  )
  writeFileSync(
    join(dir, "bin", "npx"),
    `#!/bin/sh\nfor _ in $(seq 50); do [ -e "${dir}/pytest-ran" ] && break; sleep 0.1; done\n` +
      `[ -e "${dir}/pytest-ran" ] || { echo "pytest has not started"; exit 9; }\n` +
      `sleep 0.2\necho "vitest-output $*"\nexit ${vitest}\n`
  )
  chmodSync(join(dir, "bin", "npx"), 0o755)
  return runChild("bash", [join(dir, "scripts", "test.sh")], {
    env: { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH}` }
  })
}

describe("scripts/test.sh: vitest and pytest at once", () => {
  it("both pass: exit 0, vitest's output, then pytest's (pytest ran while vitest did)", async () => {
    const r = await runWith(0, 0)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^vitest-output vitest run\n== pytest \(.*\): exit 0\npytest-output\n$/)
    expect(r.stderr).toBe("")
  })

  it("vitest fails: exit 1 once pytest has ended, naming vitest", async () => {
    const r = await runWith(3, 0)
    expect(r.status).toBe(1)
    expect(r.stdout).toContain("pytest-output")
    expect(r.stderr).toBe("vitest failed (exit 3)\n")
  })

  it("pytest fails: exit 1, its output printed, naming pytest", async () => {
    const r = await runWith(0, 4)
    expect(r.status).toBe(1)
    expect(r.stdout).toContain("): exit 4\npytest-output\n")
    expect(r.stderr).toBe("pytest failed (exit 4)\n")
  })

  const haveShellcheck = spawnSync("shellcheck", ["--version"]).status === 0
  it.skipIf(!haveShellcheck && process.env.CI !== "true")("shellcheck passes (required in CI)", async () => {
    expect(haveShellcheck, "shellcheck is not installed (.ci/run installs it from Debian's packages)").toBe(true)
    const r = await runChild("shellcheck", ["--shell=bash", "--severity=style", SCRIPT])
    expect(r.stdout + r.stderr).toBe("")
    expect(r.status).toBe(0)
  })
})
