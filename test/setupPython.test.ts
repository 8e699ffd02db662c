/**
 * scripts/setup-python.sh with a stand-in `.venv/bin/python` (the system python3 over a fake
 * site-packages; `-m pip` is logged, not run): an installed skyrl_mcp_env that is not this checkout's
 * python/ is reinstalled, a current one is left.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { runChild } from "./support/child.js"
import { ROOT } from "./support/python.js"

const dirs: Array<string> = []
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

/** A project with python/skyrl_mcp_env/tools.py holding `source`, and a venv whose installed copy holds `installed`. */
const project = (source: string, installed: string) => {
  const dir = mkdtempSync(join(tmpdir(), "skyrl-setup-py-"))
  dirs.push(dir)
  mkdirSync(join(dir, "scripts"))
  copyFileSync(join(ROOT, "scripts", "setup-python.sh"), join(dir, "scripts", "setup-python.sh"))
  const site = join(dir, ".venv", "site")
  for (const pkg of ["datasets", "mcp", "pytest", "skyrl_mcp_env"]) {
    mkdirSync(join(site, pkg), { recursive: true })
    writeFileSync(join(site, pkg, "__init__.py"), "")
  }
  writeFileSync(join(site, "skyrl_mcp_env", "tools.py"), installed)
  mkdirSync(join(dir, "python", "skyrl_mcp_env"), { recursive: true })
  writeFileSync(join(dir, "python", "skyrl_mcp_env", "__init__.py"), "")
  writeFileSync(join(dir, "python", "skyrl_mcp_env", "tools.py"), source)
  mkdirSync(join(dir, ".venv", "bin"))
  const python = join(dir, ".venv", "bin", "python")
  writeFileSync(
    python,
    `#!/usr/bin/env bash\nif [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "$*" >> "${dir}/pip.log"; exit 0; fi\n` +
      `PYTHONPATH="${site}" exec python3 "$@"\n`
  )
  chmodSync(python, 0o755)
  return dir
}

const setup = (dir: string) => runChild("bash", [join(dir, "scripts", "setup-python.sh")])

describe("scripts/setup-python.sh", () => {
  it("reinstalls skyrl_mcp_env when the installed copy is not this checkout's python/ (it kept the old one)", async () => {
    const dir = project("NEW = 2\n", "OLD = 1\n")
    const r = await setup(dir)
    expect(r.status).toBe(0)
    expect(r.stderr).toContain("skyrl_mcp_env in .venv is not this checkout's python/: reinstalling it")
    expect(readFileSync(join(dir, "pip.log"), "utf8")).toContain("install")
    expect(readFileSync(join(dir, "pip.log"), "utf8")).toContain("--force-reinstall ./python")
  })

  it("leaves a current install alone (no pip run)", async () => {
    const dir = project("SAME = 1\n", "SAME = 1\n")
    const r = await setup(dir)
    expect(r.status).toBe(0)
    expect(existsSync(join(dir, "pip.log"))).toBe(false)
  })
})
