/** Live wiring of `skyrl verify` (loaded lazily by src/cli/verify.ts). */
import { Console, Duration, Effect, Layer, Option, Schema } from "effect"
import type { Inventory } from "../domain/inventory.js"
import { noDatasetWritten } from "../domain/noDataset.js"
import { lockOutput } from "../programs/outputLock.js"
import { readServersConfig } from "../programs/toolsImport.js"
import type { VerifyResult } from "../programs/verify.js"
import { dryRunDatasets, formatServerLines, journalFileOf, rejectsFileOf, verifyDatasets } from "../programs/verify.js"
import { formatStoreCounts } from "../services/Cassettes.js"
import { defaultInventoryPath, loadInventoryFile } from "../services/Inventory.js"
import { describeTarget, launchProblem, McpClientLive } from "../services/McpClient.js"
import type { McpServerSpec } from "../services/McpClient.js"
import { Storage, StorageLive } from "../services/Storage.js"
import type { VerifierReport } from "../services/Verifier.js"
import { Verifier } from "../services/Verifier.js"
import { specsForInventory } from "../skyrl/serverSpecs.js"
import type { VerifySummary } from "../skyrl/verification.js"
import { blockedSteps, formatSummary, parseAllowList, STATUSES } from "../skyrl/verification.js"
import { outFormatProblem } from "./outFormat.js"
import { outputDirectoriesMakeable, runDirectories } from "./outputDirectories.js"
import { filesGivenTwice, outputsApart } from "./outputsApart.js"
import { timeoutProblem } from "./shared.js"
import {
  cassettesDirOf,
  cassetteStoreOutput,
  startTimeoutSetting,
  warnUnknownAllowNames,
  warnUnusedConfigured
} from "./verifyFlags.js"

/** Bad arguments found after parsing (exit 2). */
export class VerifyUsageError extends Schema.TaggedError<VerifyUsageError>()("VerifyUsageError", {
  reason: Schema.String
}) {
  get exitCode(): number {
    return 2
  }
  override get message(): string {
    return `verify: ${this.reason}`
  }
}

/** Every row was rejected (exit 1); the rejects file says why. */
export class NothingVerifiedError extends Schema.TaggedError<NothingVerifiedError>()("NothingVerifiedError", {
  rows: Schema.Number,
  rejectsFile: Schema.String,
  out: Schema.String,
  /** An --out already there: an earlier run's, left as it was (`noDatasetWritten`). */
  earlierOut: Schema.Boolean
}) {
  override get message(): string {
    return `none of the ${this.rows} rows verified, so ${noDatasetWritten(this.out, this.earlierOut)}; the reasons ` +
      `are in ${this.rejectsFile}`
  }
}

/**
 * `--dry-run` found no row the run could write (exit 1, the run's code): every row rejected, skipped for its
 * side effects, failed in the journal, or on servers that cannot start. Counts of each, as the report gives them.
 */
export class DryRunNothingVerified extends Schema.TaggedError<DryRunNothingVerified>()("DryRunNothingVerified", {
  rows: Schema.Number,
  rejected: Schema.Number,
  skipped: Schema.Number,
  failedInJournal: Schema.Number,
  unstartable: Schema.Number
}) {
  override get message(): string {
    const why = [
      [this.rejected, "rejected"],
      [this.skipped, "skipped for side effects"],
      [this.failedInJournal, "failed in the journal"],
      [this.unstartable, "on servers that cannot start"]
    ].filter(([n]) => (n as number) > 0).map(([n, what]) => `${n} ${what}`).join(", ")
    return `--dry-run: none of the ${this.rows} rows would be verified (${why}), so a run would write no dataset ` +
      "and exit 1 (nothing was run or written)"
  }
}

export interface VerifyCliOptions {
  readonly files: ReadonlyArray<string>
  readonly out: string
  readonly inventory: Option.Option<string>
  readonly serversConfig: Option.Option<string>
  readonly cassettes: Option.Option<string>
  readonly concurrency: number
  readonly timeout: number
  readonly startTimeout: Option.Option<number>
  readonly allowSideEffects: Option.Option<string>
  readonly limit: Option.Option<number>
  readonly resume: boolean
  readonly dryRun: boolean
}

const checkUsage = (options: VerifyCliOptions) => {
  const format = outFormatProblem(options.out)
  if (format !== undefined) return `--out: ${format}`
  if (options.concurrency < 1) return "--concurrency must be at least 1"
  const badTimeout = timeoutProblem(options.timeout) ??
    Option.match(options.startTimeout, {
      onNone: () => undefined,
      onSome: (s) => timeoutProblem(s, 0, "--start-timeout")
    })
  if (badTimeout !== undefined) return badTimeout
  if (Option.isSome(options.limit) && options.limit.value < 1) return "--limit must be at least 1"
  return undefined
}

/**
 * A dataset given twice (the same path, or a link to it) is read twice: its rows are copies of themselves, and
 * each verified one is written twice to --out. Allowed (as any repeated row is), but said.
 */
const warnInputsTwice = (files: ReadonlyArray<string>) =>
  Effect.forEach(filesGivenTwice(files), ([first, i]) =>
    Effect.logWarning(
      `verify: ${files[i]} is given twice (datasets ${first + 1} and ${i + 1}): its rows are read twice, and each ` +
        "of them that verifies is written twice to --out (the second time as a copy of the first, not run again)"
    ), { discard: true })

/** How to start each server: --servers-config entries first, then the inventory's launch specs. */
export const launchPlan = (inventory: Inventory, configured: ReadonlyArray<McpServerSpec>) => {
  const { missing, specs } = specsForInventory(inventory.servers, configured)
  const unavailable = Object.fromEntries(missing.map((name) => [
    name,
    "no launch spec: the inventory has none for this server (record one with `skyrl tools import`) and " +
    "--servers-config gives none"
  ]))
  return { specs, unavailable }
}

export const runVerify = (options: VerifyCliOptions) =>
  Effect.gen(function*() {
    const usage = checkUsage(options)
    if (usage !== undefined) return yield* new VerifyUsageError({ reason: usage })
    const inventoryFile = Option.getOrElse(options.inventory, defaultInventoryPath)
    const read = [
      ...options.files.map((file) => ({ what: "input dataset", file })),
      { what: "--inventory file", file: inventoryFile },
      Option.isSome(options.serversConfig)
        ? { what: "--servers-config file", file: options.serversConfig.value }
        : undefined
    ]
    yield* outputsApart(
      "verify",
      [
        { setting: "--out", file: options.out },
        { setting: "--out's rejects file", file: rejectsFileOf(options.out) },
        { setting: "--out's journal", file: journalFileOf(options.out) }
      ],
      [
        ...read,
        Option.isSome(options.cassettes)
          ? { what: "cassette store", file: options.cassettes.value, directory: true }
          : undefined
      ]
    )
    // The store itself is appended to (inside its own directory, as meant): it must be none of the files read.
    if (!options.dryRun) yield* outputsApart("verify", [cassetteStoreOutput(options, options.out)], read)
    // A dry run writes nothing (it makes no directory either).
    if (!options.dryRun) yield* outputDirectoriesMakeable(runDirectories({ ...options, verify: true }))
    yield* warnInputsTwice(options.files)
    const inventory = yield* loadInventoryFile(inventoryFile)
    const configured = Option.isSome(options.serversConfig) ? yield* readServersConfig(options.serversConfig.value) : []
    const { specs, unavailable } = launchPlan(inventory, configured)
    yield* warnUnusedConfigured(inventory, configured)
    const allow = parseAllowList(Option.getOrUndefined(options.allowSideEffects))
    yield* warnUnknownAllowNames(inventory, allow)
    const common = {
      files: options.files,
      out: options.out,
      inventory,
      concurrency: options.concurrency,
      limit: Option.getOrUndefined(options.limit),
      resume: options.resume
    }
    if (options.dryRun) {
      const plan = yield* dryRunDatasets({
        ...common,
        blocked: (steps) => blockedSteps(inventory, steps, allow),
        cassettesDir: cassettesDirOf(options, options.out),
        // Printed as each row is read, not kept (issue 19: a dry run's memory does not grow with the rows).
        onLine: (l) => Console.log(`${l.file} row ${l.row}: ${l.action}: ${l.text}`)
      })
      for (const name of plan.servers) {
        const spec = specs.find((s) => s.name === name)
        yield* Console.log(`server ${name}: ${spec === undefined ? unavailable[name] ?? "unknown" : wouldStart(spec)}`)
      }
      yield* Console.log(formatSummary(plan.summary, true))
      // A preflight: the run's exit code for these rows (1 when it would verify none of them).
      const startable = plan.servers.filter((name) => {
        const spec = specs.find((s) => s.name === name)
        return spec !== undefined && launchProblem(spec) === undefined
      })
      const nothing = nothingToVerify(plan.summary, plan.servers.length > 0 && startable.length === 0)
      if (nothing !== undefined) return yield* nothing
      return
    }
    const cassettesDir = cassettesDirOf(options, options.out)
    const verifier = Verifier.live({
      inventory,
      allowSideEffects: allow,
      specs,
      unavailable,
      cassettesDir,
      timeout: Duration.seconds(options.timeout),
      ...startTimeoutSetting(options.startTimeout)
    })
    const { report, result } = yield* Effect.scoped(Effect.gen(function*() {
      // `--out`'s lock before the cassette store opens (its own lock, then every key read): a second verify of this
      // --out fails naming it, having opened nothing (before, a shared --cassettes failed it naming the store).
      yield* lockOutput(options.out, "verify")
      return yield* Effect.gen(function*() {
        const result = yield* verifyDatasets({ ...common, outLocked: true })
        return { result, report: yield* (yield* Verifier).report }
      }).pipe(Effect.provide(verifier))
    }))
    const earlierOut = result.written === 0 && (yield* (yield* Storage).exists(options.out))
    yield* Console.log(formatResult(options.out, earlierOut, result, report))
    if (result.written === 0 && result.summary.stages.rows > 0) {
      return yield* new NothingVerifiedError({
        rows: result.summary.stages.rows,
        rejectsFile: result.rejectsFile,
        out: options.out,
        earlierOut
      })
    }
  }).pipe(Effect.provide(Layer.merge(McpClientLive, StorageLive)))

/**
 * The dry run's failure when no row could be written by the run, from its summary: rows that passed the checks
 * and have no outcome yet would run (and their copies take their outcome); when `noServerStarts` (every server
 * they need cannot start) they would all be server-unavailable. Undefined when a row could be verified, or
 * none was read (the run writes nothing then and exits 0).
 */
const nothingToVerify = (s: VerifySummary, noServerStarts: boolean): DryRunNothingVerified | undefined => {
  const withOutcome = STATUSES.reduce((n, k) => n + s.statuses[k], 0)
  const toRun = s.stages.schema - withOutcome
  const failedInJournal = withOutcome - s.statuses.verified - s.statuses["skipped-side-effect"]
  if (s.stages.rows === 0 || s.statuses.verified > 0 || (toRun > 0 && !noServerStarts)) return undefined
  return new DryRunNothingVerified({
    rows: s.stages.rows,
    rejected: s.stages.rows - s.stages.schema,
    skipped: s.statuses["skipped-side-effect"],
    failedInJournal,
    unstartable: toRun
  })
}

/**
 * What a dry run says of a server it would start (a stdio server: the command, and the directory it starts in
 * when not this one) or connect to (an HTTP server: its URL), and what would keep it from doing so (a variable
 * not set, a cwd that is not there), as the run would find.
 */
const wouldStart = (spec: McpServerSpec): string => {
  const problem = launchProblem(spec)
  const where = spec._tag === "stdio" && spec.cwd !== undefined ? ` (in ${spec.cwd})` : ""
  return `would ${spec._tag === "stdio" ? "start" : "connect to"} ${describeTarget(spec)}${where}` +
    (problem === undefined ? "" : `, but cannot: ${problem} (its rows would be server-unavailable)`)
}

const formatResult = (out: string, earlierOut: boolean, result: VerifyResult, report: VerifierReport): string => {
  const servers = formatServerLines(report.servers, result.earlierServers)
  const c = report.cassettes
  return [
    formatSummary(result.summary),
    ...(servers.length === 0 ? [] : ["servers:", ...servers]),
    `${
      result.written === 0
        ? `no verified row, so ${noDatasetWritten(out, earlierOut)}`
        : `wrote ${result.written} verified rows to ${out}`
    }; ${result.rejects} rejects in ${result.rejectsFile}`,
    formatStoreCounts(c.file, c)
  ].join("\n")
}
