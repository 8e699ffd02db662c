/**
 * Secrets: `generate` and `enrich` run with a distinctive API key against the fake server (with faults, repairs and
 * rejects so every kind of file is written), with --log-level debug in both log formats, gzipped and
 * plain archives, a resumed run and a dry run. Every file written (dataset, rejects, manifest, journal,
 * archive files, gzipped ones decompressed) and every line on stdout and stderr is searched for the key:
 * it must never appear. The fake checks that the key was really sent, so the test cannot pass vacuously.
 */
import { readdirSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runCli } from "../support/cli.js"
import { planAnswer, sourceRowOf } from "../support/fakeEnrich.js"
import type { FakeContext } from "../support/fakeOpenAI.js"
import { answer, rateLimited, refusal, serverError } from "../support/fakeOpenAI.js"
import { invalidTaskText, isRepairRequest, sampleNumberOf, validTaskFor } from "../support/fakeTasks.js"
import { fakes, llmEnv, readMaybeGz, tempDir, USAGE } from "./helpers.js"

const KEY = "sk-test-DISTINCTIVE-7q2Wz9KpL4xN8vR3"
/** Parts that must not appear either (a key cut or masked around them is still a leak). */
const FRAGMENTS = [KEY, "DISTINCTIVE-7q2Wz9KpL4xN8vR3", "7q2Wz9KpL4xN8vR3"]

const servers = fakes()
afterEach(servers.closeAll)

/** Every file under `dir`, recursively (gzipped files decompressed). */
const allFiles = (dir: string): Array<{ file: string; text: string }> =>
  readdirSync(dir).flatMap((name) => {
    const full = join(dir, name)
    if (statSync(full).isDirectory()) return allFiles(full)
    return [{ file: full, text: readMaybeGz(full) }]
  })

/** A fake that checks the key it receives and answers with a mix of faults, invalid plans and refusals. */
const keyCheckingFake = async () => {
  const seen = new Map<number, number>()
  let wrongKey = 0
  const server = await servers.start((ctx: FakeContext) => {
    if (ctx.authorization !== `Bearer ${KEY}`) wrongKey++
    const k = sampleNumberOf(ctx.body) ?? 0
    const nth = (seen.get(k) ?? 0) + 1
    seen.set(k, nth)
    if (isRepairRequest(ctx.body)) return answer(validTaskFor(ctx), USAGE)
    if (nth === 1 && k % 4 === 1) return rateLimited({ ms: 20 })
    if (nth === 1 && k % 4 === 2) return serverError(500)
    if (nth === 1 && k % 4 === 3) return answer(invalidTaskText(k), USAGE)
    if (nth === 1 && k % 4 === 0) return refusal("I can't help with that.")
    return answer(validTaskFor(ctx), USAGE)
  })
  return { server, wrongKey: () => wrongKey }
}

const expectNoKey = (where: string, text: string) => {
  for (const fragment of FRAGMENTS) expect(text.includes(fragment), `${where} contains the key`).toBe(false)
}

describe("the API key never reaches a file or a log line", () => {
  for (const format of ["pretty", "json"] as const) {
    it(
      `generate (--log-format ${format}, --log-level debug): outputs, archive, manifest, journal, rejects, logs`,
      async () => {
        const { server, wrongKey } = await keyCheckingFake()
        const dir = tempDir("skyrl-secrets-")
        const out = join(dir, "ds.jsonl")
        const outputs: Array<{ where: string; text: string }> = []
        const run = async (extra: ReadonlyArray<string>) => {
          const r = await runCli(
            [
              // (@effect/cli takes its built-in --log-level only as the first argument)
              "--log-level",
              "debug",
              "--log-format",
              format,
              "generate",
              "-n",
              "4",
              "--out",
              out,
              "--llm",
              "openai",
              "--concurrency",
              "2",
              ...extra
            ],
            { env: llmEnv(server, KEY) }
          )
          outputs.push({ where: `stdout of ${extra.join(" ")}`, text: r.stdout }, {
            where: `stderr of ${extra.join(" ")}`,
            text: r.stderr
          })
          return r
        }
        const first = await run(format === "json" ? ["--raw-gzip"] : [])
        expect(first.status, first.stderr).toBe(0)
        // Debug logging really ran (so the log lines searched are the most verbose ones).
        expect(first.stderr).toMatch(format === "json" ? /"level":\s*"DEBUG"|"logLevel":\s*"DEBUG"/i : /DEBUG/)
        const resumed = await run(["--resume"])
        expect(resumed.status, resumed.stderr).toBe(0)
        const dry = await run(["--dry-run"])
        expect(dry.status, dry.stderr).toBe(0)
        expect(dry.stdout).toMatch(/is set \(not shown\)/)

        expect(server.requests.length).toBeGreaterThan(4)
        expect(wrongKey()).toBe(0)
        const files = allFiles(dir)
        const names = files.map((f) => f.file.slice(dir.length + 1))
        // Every kind of file was written and is searched.
        expect(names).toContain("ds.jsonl")
        expect(names).toContain("ds.jsonl.rejects.jsonl")
        expect(names.some((n) => n.endsWith("manifest.json"))).toBe(true)
        expect(names.some((n) => n.endsWith("journal.jsonl"))).toBe(true)
        expect(names.some((n) => /archive_\d+\.jsonl(\.gz)?$/.test(n))).toBe(true)
        if (format === "json") expect(names.some((n) => n.endsWith(".jsonl.gz"))).toBe(true)
        for (const f of files) expectNoKey(f.file, f.text)
        for (const o of outputs) expectNoKey(o.where, o.text)
      },
      60_000
    )
  }

  it(
    "enrich (--debug archives, --raw-gzip, --log-level debug, json logs): no file or log line has the key",
    async () => {
      let wrongKey = 0
      const server = await servers.start((ctx: FakeContext) => {
        if (ctx.authorization !== `Bearer ${KEY}`) wrongKey++
        const row = sourceRowOf(ctx.body) ?? 0
        if (!isRepairRequest(ctx.body) && row === 1 && ctx.index < 3) return serverError(500)
        if (!isRepairRequest(ctx.body) && row === 2) {
          return answer(planAnswer(ctx, { force: { server: "fmp", tool: "no_such_tool", params: {} } }), USAGE)
        }
        return answer(planAnswer(ctx), USAGE)
      })
      const dir = tempDir("skyrl-secrets-")
      const input = join(dir, "prompts.jsonl")
      writeFileSync(
        input,
        ["AAPL", "MSFT", "NVDA"].map((t, i) =>
          JSON.stringify({ id: `p${i}`, messages: [{ role: "user", content: `Get the ${t} quote.` }] })
        ).join("\n") + "\n" + JSON.stringify({ id: "bad", messages: [{ role: "user", content: "" }] }) + "\n"
      )
      const out = join(dir, "rows.jsonl")
      const outputs: Array<{ where: string; text: string }> = []
      for (const extra of [["--debug", "--raw-gzip"], ["--resume"], ["--dry-run"]]) {
        const r = await runCli(
          [
            "--log-level",
            "debug",
            "--log-format",
            "json",
            "enrich",
            input,
            "--out",
            out,
            "--llm",
            "openai",
            "--concurrency",
            "2",
            ...extra
          ],
          { env: llmEnv(server, KEY) }
        )
        expect(r.status, r.stderr).toBe(0)
        outputs.push({ where: `stdout of enrich ${extra.join(" ")}`, text: r.stdout }, {
          where: `stderr of enrich ${extra.join(" ")}`,
          text: r.stderr
        })
      }
      expect(server.requests.length).toBeGreaterThanOrEqual(4)
      expect(wrongKey).toBe(0)
      const files = allFiles(dir)
      const names = files.map((f) => f.file.slice(dir.length + 1))
      expect(names).toContain("rows.jsonl")
      expect(names).toContain("rows.jsonl.rejects.jsonl")
      expect(names.some((n) => n.endsWith(".jsonl.gz"))).toBe(true)
      expect(names.some((n) => n.endsWith("journal.jsonl"))).toBe(true)
      for (const f of files) expectNoKey(f.file, f.text)
      for (const o of outputs) expectNoKey(o.where, o.text)
    },
    60_000
  )
})
