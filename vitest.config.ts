import { defineConfig } from "vitest/config"
import type { TestSpecification } from "vitest/node"
import { BaseSequencer } from "vitest/node"

/**
 * Test files that run in a worker whose modules are reset before each of them (vitest's isolation inside a worker:
 * its mocks and src modules made again): they mock modules (`vi.mock`, `vi.spyOn` of a module), or set
 * `process.env` or process listeners that the other files must not see; or they drive Effect's TestClock, which
 * fails in a worker where a file using @effect/vitest's `layer(..., { excludeTestServices: true })` ran before
 * (engine.test or verifyHook.test, then llmSchedule.test: "testClock.adjust is not a function", 14 tests).
 * test/isolatedList.test.ts fails when a file that does any of these is missing here.
 */
export const ISOLATED = [
  "test/dryRunLazy.test.ts",
  "test/llmSchedule.test.ts",
  "test/lockRace.test.ts",
  "test/mcp-cli.test.ts",
  "test/mcp.test.ts",
  "test/stdioTransport.test.ts",
  "test/storageCommitInterrupt.test.ts",
  "test/storageLinkFallback.test.ts",
  "test/storageLogs.test.ts",
  "test/verify.test.ts"
]

/**
 * vitest's order (failed, then slowest or largest first), with the ISOLATED project's files first: with workers
 * reused, the pool runs one project's files, then the other's, and the isolated files (verify.test.ts among them,
 * ~1.5 minutes) would otherwise start last and end the run alone.
 */
class IsolatedFirst extends BaseSequencer {
  override async sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const sorted = await super.sort(files)
    const isolated = (spec: TestSpecification) => spec.project.name === "isolated"
    return [...sorted.filter(isolated), ...sorted.filter((spec) => !isolated(spec))]
  }
}

const maxForks = Number(process.env.VITEST_MAX_FORKS ?? "") || 3

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default"],
    sequence: { sequencer: IsolatedFirst },
    pool: "forks",
    // 3 workers, not the default (CPUs - 1: 1 on a 2-CPU machine). Tests mostly wait on child processes (the
    // built CLI, MCP servers, Python), which the workers run asynchronously (test/support/child.ts).
    // VITEST_MAX_FORKS overrides it.
    // Workers are not started again for each test file (`isolate: false` here, read by the pool): a fork's start,
    // vitest's set-up in it and the packages the tests import (Effect alone ~0.6 s of CPU) cost ~0.8 s of CPU a
    // file, ~100 s for the suite on 2 CPUs. The ISOLATED project's files still reset modules and mocks before each
    // file, and its workers are not reused for the others. minForks = maxForks: a worker left idle and ended
    // (minForks below maxForks) made tinypool reject with "Terminating worker thread" at the end of the run.
    poolOptions: { forks: { maxForks, minForks: maxForks, isolate: false } },
    projects: [
      { extends: true, test: { name: "isolated", include: ISOLATED, poolOptions: { forks: { isolate: true } } } },
      {
        extends: true,
        test: {
          name: "shared",
          include: ["test/**/*.test.ts"],
          exclude: ISOLATED,
          poolOptions: { forks: { isolate: false } }
        }
      }
    ]
  }
})
