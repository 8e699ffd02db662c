/**
 * The work-plan flags of `generate` (issue 18: domains stage, personas, subjects, near-duplicates), the
 * plan inputs of a run (files and model stages, run in the run's directory before any task), and the
 * dry run that shows them. Loaded lazily with generate.live.ts.
 */
import { Effect, Either, Layer, Option, Schema } from "effect"
import * as path from "node:path"
import type { Inventory as Catalogue } from "../domain/inventory.js"
import type { LlmSettings } from "../domain/llm.js"
import { baseUrlProblem, shownUrl } from "../domain/llm.js"
import { expectedOutputOf, priceOf } from "../domain/pricing.js"
import type { DiversitySettings, PlanInputs } from "../domain/run.js"
import { RunSettings, SettingsError } from "../domain/run.js"
import type { GenerateJob, GenerateOptions, LazyPlan } from "../programs/generate.js"
import { generateRequest, lazyGeneratePlan, planDomains } from "../programs/generate.js"
import type { ListFile } from "../programs/planStages.js"
import {
  completePlanInputs,
  keptPlanInputs,
  missingPlanInputs,
  readPlanInputs,
  stageRequest
} from "../programs/planStages.js"
import { runLayer, runSpecOf } from "../programs/sampling.js"
import { defaultInventoryPath, Inventory } from "../services/Inventory.js"
import type { Llm } from "../services/Llm.js"
import { buildBody, resolveJsonSchema } from "../services/llm/answer.js"
import { findLatestRun, settingsDifferences } from "../services/RunJournal.js"
import { Storage, StorageLive } from "../services/Storage.js"
import { sha256Hex } from "../skyrl/canonical.js"
import { renderInstructions } from "../skyrl/generationPrompt.js"
import { parseNearDupThreshold } from "../skyrl/nearDup.js"
import { parseLineList } from "../skyrl/personas.js"
import {
  DOMAINS_KEY,
  DOMAINS_SCHEMA_NAME,
  DomainsAnswer,
  renderDomainsRequest,
  renderSubjectsRequest,
  SUBJECTS_KEY,
  SUBJECTS_SCHEMA_NAME,
  SubjectsAnswer
} from "../skyrl/planStages.js"
import { estimateTokens } from "../skyrl/prompt.js"
import { subjectDemand } from "../skyrl/subjects.js"
import { DEFAULT_DOMAINS, parseDomains } from "../skyrl/workPlan.js"
import type { GenerateCliOptions } from "./generate.live.js"
import { hasApiKey } from "./llmOptions.js"
import * as Run from "./runShared.js"

export interface PlanFlags {
  /** The settings' domains (empty when the domains stage gives them). */
  readonly domains: ReadonlyArray<string>
  readonly diversity: DiversitySettings
  readonly files: { readonly personas?: ListFile | undefined; readonly subjects?: ListFile | undefined }
}

/** A one-entry-per-line file (`--personas`, `--subjects`), read and checked. */
const readListFile = (file: string, setting: string) =>
  Effect.gen(function*() {
    // Was: "cannot read : no such file or directory".
    if (file.trim() === "") {
      return yield* new SettingsError({ setting, reason: "is empty: give a file, one entry a line" })
    }
    const storage = yield* Storage
    const text = yield* storage.readText(file).pipe(
      Effect.mapError((e) => new SettingsError({ setting, reason: e.message }))
    )
    const entries = parseLineList(text, file)
    if (typeof entries === "string") return yield* new SettingsError({ setting, reason: entries })
    return { path: path.resolve(file), sha256: sha256Hex(text), entries } satisfies ListFile
  })

/** The bundled inventory, all of it: the one DEFAULT_DOMAINS were written for. */
const isBundledInventory = (options: GenerateCliOptions): boolean =>
  Option.isNone(options.servers) &&
  Option.match(options.inventory, {
    onNone: () => true,
    onSome: (file) => path.resolve(file) === path.resolve(defaultInventoryPath())
  })

/** The work-plan flags, checked: where domains come from, personas, subjects, near-duplicates. */
export const planFlags = (options: GenerateCliOptions, answers: RunSettings["answers"]) =>
  Effect.gen(function*() {
    const nearDupText = options.nearDup.trim().toLowerCase()
    const nearDup = nearDupText === "off" ? null : parseNearDupThreshold(nearDupText)
    if (typeof nearDup === "string") {
      return yield* new SettingsError({ setting: "--near-dup (NEAR_DUP)", reason: `${nearDup}, or "off"` })
    }
    const domainsFrom = Option.isSome(options.domains) ? "flag" : isBundledInventory(options) ? "bundled" : "model"
    const domains = domainsFrom === "flag"
      ? parseDomains(Option.getOrThrow(options.domains))
      : domainsFrom === "bundled"
      ? DEFAULT_DOMAINS
      : []
    if (domainsFrom === "flag" && domains.length === 0) {
      return yield* new SettingsError({ setting: "--domains (DOMAINS)", reason: "needs at least one domain" })
    }
    if (domainsFrom === "model" && answers === "recorded") {
      return yield* new SettingsError({
        setting: "--domains (DOMAINS)",
        reason: "the inventory is not the bundled one, so a first stage asks the model for domains that fit it; " +
          "recorded answers (--llm replay) cannot answer it: give --domains"
      })
    }
    const personas = Option.isSome(options.personas)
      ? yield* readListFile(options.personas.value, "--personas (PERSONAS)")
      : undefined
    const subjectsFlag = Option.getOrUndefined(options.subjects)
    const subjects = subjectsFlag === undefined || subjectsFlag.trim().toLowerCase() === "none"
      ? undefined
      : yield* readListFile(subjectsFlag, "--subjects (SUBJECTS)")
    const subjectSource = subjects !== undefined
      ? { sha256: subjects.sha256, entries: subjects.entries.length }
      // Recorded answers cannot follow a subject: no stage to pay for.
      : subjectsFlag === undefined && answers === "model"
      ? "model" as const
      : "none" as const
    return {
      domains,
      diversity: {
        domains_from: domainsFrom,
        personas: personas === undefined ? null : { sha256: personas.sha256, entries: personas.entries.length },
        subjects: subjectSource,
        near_dup: nearDup
      },
      files: { personas, subjects }
    } satisfies PlanFlags
  })

/**
 * The plan inputs of a run: those its directory keeps, completed (files copied, model stages asked)
 * inside the run's directory when anything is missing.
 */
export const planInputsOf = (input: {
  readonly base: Omit<GenerateOptions, "plan">
  readonly catalogue: Catalogue
  readonly files: PlanFlags["files"]
  readonly llm: Layer.Layer<Llm, unknown>
}) =>
  Effect.gen(function*() {
    const settings = input.base.runSettings
    const runDir = path.join(input.base.rawDir, input.base.runId)
    const kept = yield* readPlanInputs(runDir, "--resume")
    if (missingPlanInputs(settings, kept).length === 0) return kept
    const jobs = Array.from({ length: settings.n }, (_, index) => ({ index }))
    const spec = runSpecOf({ ...input.base, command: "generate", jobs }, input.catalogue)
    const run = {
      runDir,
      settings,
      catalogue: input.catalogue,
      files: input.files,
      maxCostUsd: input.base.maxCostUsd
    }
    return yield* completePlanInputs(run, kept).pipe(
      Effect.provide(runLayer(spec).pipe(Layer.provide(input.llm)))
    )
  }).pipe(Effect.provide(StorageLive))

const planLine = (job: GenerateJob): string => {
  const brief = [
    ...(job.focus === undefined ? [] : [`focus ${job.focus.tool}`]),
    ...(job.style === undefined ? [] : [`style ${job.style.name}`]),
    ...(job.persona === undefined ? [] : [`persona: ${job.persona}`]),
    ...(job.subjects === undefined || job.subjects.length === 0 ? [] : [`subject: ${job.subjects[0]}`])
  ]
  return `${String(job.index + 1).padStart(5)}  ${job.complexity.padEnd(8)}  ${job.domain}` +
    (brief.length === 0 ? "" : `  |  ${brief.join("  |  ")}`)
}

const bodyOf = <A, I>(settings: LlmSettings, request: Parameters<typeof buildBody<A, I>>[2], jsonSchema: object) =>
  JSON.stringify(buildBody(settings.backend, settings, request, jsonSchema), null, 2)

/** The stage sections of a dry run: each stage's request, or the answer a run for this output keeps. */
const stageSections = (
  settings: RunSettings,
  catalogue: Catalogue,
  kept: PlanInputs,
  keptRun: string | undefined,
  plan: LazyPlan,
  body: LlmSettings
): ReadonlyArray<string> => {
  const d = settings.diversity
  const lines: Array<string> = []
  const request = <A, I>(key: string, name: string, schema: Schema.Schema<A, I>, text: string) => {
    const r = stageRequest(catalogue, key, name, schema, text)
    return bodyOf(body, r, Either.getOrThrow(resolveJsonSchema(r)))
  }
  if (d?.domains_from === "model") {
    lines.push("", "## domains stage (the inventory is not the bundled one and --domains is not given)")
    if (kept.domains !== undefined) {
      lines.push(`cached in run ${keptRun} (reused with --resume): ${kept.domains.join("; ")}`)
    } else lines.push(request(DOMAINS_KEY, DOMAINS_SCHEMA_NAME, DomainsAnswer, renderDomainsRequest()))
  }
  if (d?.subjects === "model") {
    lines.push("", "## subjects stage (no --subjects FILE)")
    if (kept.subjects !== undefined) {
      const counts = Object.entries(kept.subjects).map(([domain, l]) => `${domain} ${l.length}`)
      lines.push(`cached in run ${keptRun} (reused with --resume): ${counts.join("; ")}`)
    } else if (d.domains_from === "model" && kept.domains === undefined) {
      lines.push("asked after the domains stage: one request naming each domain and how many subjects it needs")
    } else {
      lines.push(
        request(SUBJECTS_KEY, SUBJECTS_SCHEMA_NAME, SubjectsAnswer, renderSubjectsRequest(subjectDemand(plan.jobs())))
      )
    }
  }
  return lines
}

/** `--dry-run`: the work plan, the stages, one full request body, the output schema and the cost; calls nothing. */
export const dryRun = (input: {
  readonly options: GenerateCliOptions
  readonly settings: RunSettings
  readonly catalogue: Catalogue
  readonly plan: PlanFlags
  readonly rawDir: string
  readonly out: string
  readonly body: LlmSettings
}) =>
  Effect.gen(function*() {
    const { options, settings, catalogue } = input
    const inventory = yield* Inventory
    // A run for this output made with these settings (its date aside): what --resume would reuse.
    const latest = Option.filter(
      (yield* findLatestRun(input.rawDir, input.out, "generate")).latest,
      (m) =>
        m.run_settings !== undefined &&
        settingsDifferences(m.run_settings, new RunSettings({ ...settings, as_of: m.run_settings.as_of }))
            .length === 0
    )
    const keptRun = Option.getOrUndefined(latest)?.run_id
    const kept = yield* keptPlanInputs(Option.map(latest, (m) => path.join(input.rawDir, m.run_id)))
    const inputs: PlanInputs = {
      ...(input.plan.files.personas === undefined ? {} : { personas: input.plan.files.personas.entries }),
      ...(input.plan.files.subjects === undefined ? {} : { subjects_file: input.plan.files.subjects.entries }),
      ...(kept.subjects === undefined ? {} : { subjects: kept.subjects }),
      domains: kept.domains ?? ["(from the domains stage)"]
    }
    const shownDomains = planDomains(settings, inputs)
    // Made sample by sample as it is printed (and counted for the stages and batches), never held whole.
    const plan = lazyGeneratePlan(settings, catalogue, { ...inputs, domains: shownDomains ?? [] })
    const first = plan.at(0)
    const instructions = renderInstructions(catalogue, {
      maxTools: settings.max_tools,
      maxTurns: settings.max_turns,
      asOf: settings.as_of
    })
    const jsonSchema = inventory.outputJsonSchema({ maxSteps: settings.max_tools })
    const request = generateRequest(plan.length)(first, 1)
    const keySet = yield* hasApiKey
    const baseUrl = process.env.OPENAI_BASE_URL
    const urlProblem = baseUrl === undefined || baseUrl === "" ? undefined : baseUrlProblem(baseUrl)
    const shared = estimateTokens(instructions) + estimateTokens(JSON.stringify(jsonSchema))
    const perCall = shared + estimateTokens(request)
    const b = input.body
    const output = expectedOutputOf(b.reasoningEffort)
    const price = priceOf(b.model)
    const head: Array<string> = [
      `# skyrl generate --dry-run (no model is called)`,
      `model ${b.model}, backend ${b.backend}, reasoning effort ${b.reasoningEffort}`,
      `llm: ${options.llm}; OPENAI_API_KEY ${keySet ? "is set (not shown)" : "is not set"}` +
      (options.llm === "auto" && !keySet ? " -> would run offline from recorded answers" : ""),
      `OPENAI_BASE_URL: ${baseUrl === undefined || baseUrl === "" ? "(default)" : shownUrl(baseUrl)}` +
      (urlProblem === undefined ? "" : `  <- ${urlProblem}`),
      `near-duplicates: ${
        settings.diversity?.near_dup == null ? "off" : `rejected at similarity ${settings.diversity.near_dup}`
      }`,
      "",
      `## work plan (${plan.length} samples, seed ${settings.seed})`
    ]
    // Everything after the plan's lines is made first (what can fail fails before anything is printed).
    const tail: Array<string> = [
      ...stageSections(settings, catalogue, kept, keptRun, plan, b),
      "",
      "## first request body",
      bodyOf(b, {
        name: "skyrl_task",
        instructions,
        input: [{ role: "user", content: request }],
        schema: Schema.Unknown
      }, jsonSchema),
      "",
      "## estimate",
      `input per call ~${perCall} tokens (shared prefix ~${shared}), output per call ~${output} (effort ${b.reasoningEffort})`
    ]
    if (price === undefined) tail.push(`no price known for ${b.model}`)
    else {
      const cold = (plan.length * (perCall * price.input + output * price.output)) / 1e6
      const warm =
        (plan.length * ((perCall - shared) * price.input + shared * price.cachedInput + output * price.output)) /
        1e6
      tail.push(
        `cost for ${plan.length} samples: ~$${warm.toFixed(4)} with the prompt cache, ~$${
          cold.toFixed(4)
        } without (the stages, repairs and retries add to it)`
      )
    }
    if (options.backend === "batch") {
      const { batchDryRun } = yield* Effect.promise(() => import("./batch.live.js"))
      const user = generateRequest(plan.length)
      const requests = function*() {
        for (const s of plan.jobs()) yield { index: s.index, instructions, jsonSchema, user: user(s, 1) }
      }
      tail.push(
        ...yield* batchDryRun({
          settings: b,
          flags: options,
          expectedOutput: output,
          requests: requests()
        })
      )
    }
    yield* Run.printLines(
      (function*() {
        yield* head
        for (const job of plan.jobs()) yield planLine(job)
        yield* tail
      })()
    )
    if (urlProblem !== undefined) {
      return yield* new SettingsError({ setting: "OPENAI_BASE_URL", reason: urlProblem })
    }
  })
