/**
 * An output directory that is there but takes no new file (mode 0555, another user's, a read-only mount): each
 * run found it only when it wrote the dataset, after every model call was paid for (`enrich`, `generate`) or
 * every answer fetched and judged (`batch collect`), and exited 1 with `cannot write .../o.jsonl: permission
 * denied`. Now it is a usage error (exit 2) before anything is asked for.
 *
 * The directory is /proc: it is there, `access(W_OK)` says writable to root, and no file can be made in it, as
 * root or not (mode bits do not stop root, so a 0555 directory would not do where tests run as root). The
 * archive goes elsewhere (`--raw-dir`), which can be made.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { batchFakes, env as batchEnv, FAST, readJsonl, tmpOut, USAGE as BATCH_USAGE } from "./support/batchCli.js"
import { runCli } from "./support/cli.js"
import { lineAnswer } from "./support/fakeBatch.js"
import { planAnswer } from "./support/fakeEnrich.js"
import type { FakeServer } from "./support/fakeOpenAI.js"
import { answer } from "./support/fakeOpenAI.js"
import { fakes, llmEnv, tempDir, USAGE } from "./support/fakeRun.js"
import { isStageRequest, stageAnswerText, validTaskFor } from "./support/fakeTasks.js"

const SHAREGPT = join(__dirname, "fixtures", "sharegpt", "sample_data.json")
/** A directory that is there and takes no new file. */
const READ_ONLY = "/proc"
const OUT = `${READ_ONLY}/skyrl-o-${process.pid}.jsonl`
const REFUSED = `skyrl: --out: ${OUT}: cannot write in ${READ_ONLY} (ENOENT: no such file or directory)\n`

const servers = fakes()
afterEach(servers.closeAll)
const { fake: batchFake } = batchFakes()

const model = () =>
  servers.start((ctx) =>
    answer(
      isStageRequest(ctx.body)
        ? stageAnswerText(ctx.body)
        : ctx.body?.text?.format?.name === "skyrl_task" || ctx.body?.response_format?.json_schema?.name === "skyrl_task"
        ? validTaskFor(ctx)
        : planAnswer(ctx),
      USAGE
    )
  )
const calls = (server: FakeServer) => server.requests.filter((q) => q.endpoint !== "other")

// /proc is there wherever Linux is; in CI the test must run (an environment that skips it fails there).
describe.skipIf(!existsSync("/proc/self") && process.env.CI !== "true")("an --out directory that takes no file", () => {
  it("enrich: exit 2 naming --out and the directory, before any model call (it made them all, then failed)", async () => {
    const server = await model()
    const raw = join(tempDir("skyrl-ro-"), "raw")
    const r = await runCli(["enrich", SHAREGPT, "--out", OUT, "--raw-dir", raw, "--llm", "openai"], {
      env: llmEnv(server)
    })
    expect(r.status, r.stderr).toBe(2)
    expect(r.stderr).toBe(REFUSED)
    expect(calls(server)).toHaveLength(0)
    expect(existsSync(raw)).toBe(false)
  })

  it("generate: exit 2 naming --out and the directory, before any model call", async () => {
    const server = await model()
    const raw = join(tempDir("skyrl-ro-"), "raw")
    const r = await runCli(["generate", "-n", "2", "--out", OUT, "--raw-dir", raw, "--llm", "openai"], {
      env: llmEnv(server)
    })
    expect(r.status, r.stderr).toBe(2)
    expect(r.stderr).toBe(REFUSED)
    expect(calls(server)).toHaveLength(0)
  })

  it(
    "batch collect of a run whose recorded --out takes no file: exit 2 before anything is fetched; collected once it can",
    async () => {
      const f = await batchFake({ lines: (ctx) => lineAnswer(validTaskFor(ctx), BATCH_USAGE) })
      const out = tmpOut()
      const s = await runCli(["generate", "-n", "2", "--out", out, "--backend", "batch"], { env: batchEnv(f) })
      expect(s.status, s.stderr).toBe(0)
      const runDir = s.stdout.trim()
      const file = join(runDir, "batch.json")
      const state = JSON.parse(readFileSync(file, "utf8"))
      const mine = { out: state.options.out, rejectsFile: state.options.rejectsFile }
      writeFileSync(file, JSON.stringify({ ...state, options: { ...state.options, out: OUT } }))
      const requests = f.requests.length
      const c = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: batchEnv(f) })
      expect(c.status, c.stderr).toBe(2)
      expect(c.stderr).toBe(
        `skyrl: the run's --out: ${OUT}: cannot write in ${READ_ONLY} (ENOENT: no such file or directory); ` +
          "nothing was collected: make it writable, then collect again\n"
      )
      expect(f.requests.length).toBe(requests) // nothing fetched
      writeFileSync(file, JSON.stringify({ ...state, options: { ...state.options, ...mine } }))
      const again = await runCli(["batch", "collect", runDir, "--wait", ...FAST], { env: batchEnv(f) })
      expect(again.status, again.stderr).toBe(0)
      expect(readJsonl(out)).toHaveLength(2)
    },
    60_000
  )
})
