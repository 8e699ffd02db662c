// Preloaded by scripts/bench.ts (node --import): on exit, writes the process's CPU time (user and
// system, µs) as JSON to the file named by SKYRL_BENCH_CPU_FILE.
import { writeFileSync } from "node:fs"

const file = process.env.SKYRL_BENCH_CPU_FILE
if (file !== undefined) process.on("exit", () => writeFileSync(file, JSON.stringify(process.cpuUsage())))
