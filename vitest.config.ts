import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default"],
    pool: "forks",
    // 3 workers, not the default (CPUs - 1: 1 on a 2-CPU machine). Tests mostly wait on child processes (the
    // built CLI, MCP servers, Python), which the workers run asynchronously (test/support/child.ts).
    // VITEST_MAX_FORKS overrides it.
    poolOptions: { forks: { maxForks: 3, minForks: 1 } }
  }
})
