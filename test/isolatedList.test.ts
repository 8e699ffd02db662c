import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { ISOLATED } from "../vitest.config.js"

/**
 * What makes a test file need the isolated project (vitest.config.ts `ISOLATED`): module mocks and spies, changes to
 * `process.env` or process listeners, Effect's TestClock. With workers reused across files, a file that does one of
 * these outside the list leaks it into the files after it in its worker (or, for TestClock, breaks), and nothing
 * else would say so.
 */
const NEEDS_ISOLATION: ReadonlyArray<readonly [string, RegExp]> = [
  ["vi.mock", /\bvi\.(mock|doMock)\(/],
  ["vi.spyOn", /\bvi\.spyOn\(/],
  ["vi.stubEnv / vi.stubGlobal", /\bvi\.stub(Env|Global)\(/],
  ["process.env assigned", /\bprocess\.env(\.\w+|\[[^\]]+\])\s*=(?!=)/],
  ["process.env deleted", /\bdelete\s+process\.env\b/],
  ["process.env replaced", /\bObject\.assign\(\s*process\.env\b/],
  ["process listener", /\bprocess\.(on|once|prependListener|addListener)\(/],
  ["TestClock", /\bTestClock\b/]
]

const testFiles = (): Array<string> =>
  (fs.readdirSync("test", { recursive: true }) as Array<string>)
    .filter((name) => name.endsWith(".test.ts"))
    .map((name) => path.posix.join("test", name.split(path.sep).join("/")))
    .sort()

/** The patterns of NEEDS_ISOLATION that `text` matches, by name. */
const isolationReasons = (text: string): Array<string> =>
  NEEDS_ISOLATION.filter(([, re]) => re.test(text)).map(([name]) => name)

describe("vitest.config.ts ISOLATED", () => {
  it("lists every test file that mocks modules, changes process state or drives TestClock", () => {
    const missing = testFiles()
      .filter((file) => file !== "test/isolatedList.test.ts") // its own samples below
      .map((file) => ({ file, reasons: isolationReasons(fs.readFileSync(file, "utf8")) }))
      .filter(({ file, reasons }) => reasons.length > 0 && !ISOLATED.includes(file))
      .map(({ file, reasons }) => `${file} (${reasons.join(", ")})`)
    expect(missing).toEqual([])
  })

  it("names files that are there", () => {
    const files = new Set(testFiles())
    expect(ISOLATED.filter((file) => !files.has(file))).toEqual([])
  })

  it("tells each kind of change apart from reads", () => {
    expect(isolationReasons("vi.mock(\"node:fs\")")).toEqual(["vi.mock"])
    expect(isolationReasons("process.env.SKYRL_X = \"1\"")).toEqual(["process.env assigned"])
    expect(isolationReasons("process.env[\"A\"] = b")).toEqual(["process.env assigned"])
    expect(isolationReasons("delete process.env.A")).toEqual(["process.env deleted"])
    expect(isolationReasons("process.on(\"exit\", f)")).toEqual(["process listener"])
    expect(isolationReasons("TestClock.adjust(\"1 second\")")).toEqual(["TestClock"])
    expect(isolationReasons("if (process.env.CI === \"true\") run({ env: { ...process.env } })")).toEqual([])
  })
})
