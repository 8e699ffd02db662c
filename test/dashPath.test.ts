/**
 * A bare `-` (stdin or stdout by the usual convention) given as a path: no command reads a dataset from stdin
 * or writes one to stdout, so it is a usage error (exit 2) saying so and naming the argument or option. Before,
 * `verify - --inventory I --out O` said "Expected to find option: '--out'" although --out was given
 * (@effect/cli read the `-` before a required option as an option), and elsewhere "Path '-' must exist".
 */
import { describe, expect, it } from "vitest"
import { dashPath } from "../src/cli/commandLine.js"
import { skyrl } from "../src/cli/main.js"
import { runCli } from "./support/cli.js"

const usageError = async (args: ReadonlyArray<string>, message: string) => {
  const r = await runCli(args)
  expect(r.stderr.trim().split("\n").at(-1), args.join(" ")).toBe(`skyrl: ${message}`)
  expect(r.status, args.join(" ")).toBe(2)
}

describe("'-' as a path (built CLI)", () => {
  it("as a command's file or directory argument, wherever it stands", async () => {
    const stdin = (name: string) => `'-' (stdin) is not supported: give ${name} as a path (one named '-' is ./-).`
    await usageError(["verify", "-", "--inventory", "inv.json", "--out", "o.jsonl"], `verify: ${stdin("DATASET")}`)
    await usageError(["verify", "a.jsonl", "-", "--out", "o.jsonl"], `verify: ${stdin("DATASET")}`)
    await usageError(["convert", "-", "--out", "o.jsonl"], `convert: ${stdin("TASKS_FILE")}`)
    await usageError(["validate", "a.jsonl", "-"], `validate: ${stdin("FILE")}`)
    await usageError(["enrich", "-", "--out", "o.jsonl"], `enrich: ${stdin("INPUT")}`)
    await usageError(["rebuild", "-", "--out", "o.jsonl"], `rebuild: ${stdin("RUN_DIR")}`)
    await usageError(["cassettes", "stats", "-"], `cassettes stats: ${stdin("DIR")}`)
  })

  it("as a path option's value: stdin for what is read, stdout for what is written", async () => {
    await usageError(
      ["verify", "a.jsonl", "--inventory=-", "--out", "o.jsonl"],
      "verify: --inventory: '-' (stdin) is not supported: give a file path (one named '-' is ./-)."
    )
    await usageError(
      ["convert", "a.json", "-o", "-"],
      "convert: --out: '-' (stdout) is not supported: give a file path."
    )
    await usageError(
      ["convert", "a.json", "--out", "o.jsonl", "--rejects", "-"],
      "convert: --rejects: '-' (stdout) is not supported: give a file path."
    )
    await usageError(
      ["verify", "a.jsonl", "--out", "o.jsonl", "--cassettes", "-"],
      "verify: --cassettes: '-' is not supported: give a directory path (one named '-' is ./-)."
    )
  })
})

describe("dashPath", () => {
  it("leaves a '-' that is no path: after --, a text option's value, a command without arguments", () => {
    expect(dashPath(skyrl, ["validate", "--", "-"])).toBeUndefined()
    expect(dashPath(skyrl, ["convert", "a.json", "--out", "o.jsonl", "--data-source", "-"])).toBeUndefined()
    expect(dashPath(skyrl, ["verify", "a.jsonl", "--out", "o.jsonl", "--allow-side-effects", "-"])).toBeUndefined()
    expect(dashPath(skyrl, ["tools", "list", "-"])).toBeUndefined()
    expect(dashPath(skyrl, ["schema", "-"])).toBeUndefined()
    expect(dashPath(skyrl, ["verify", "a.jsonl", "--out", "o.jsonl", "--resume"])).toBeUndefined()
  })
})
