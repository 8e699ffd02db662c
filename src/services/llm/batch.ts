/**
 * The live `BatchClient` on the official `openai` SDK: files upload/content/list, batches
 * create/retrieve/list. Loaded lazily (src/cli/batch.live.ts), so `skyrl --help` never loads the SDK.
 *
 * As in the live Llm layer (./live.ts): the SDK is built with `maxRetries: 0`, each attempt gets a
 * timeout whose AbortSignal aborts the HTTP request, errors are classified into the typed `LlmError`s,
 * and the Effect schedule of ./retry.ts retries reads that can succeed later (429 honoring retry-after,
 * 5xx, connection errors, timeouts). Upload and create are one attempt each: the program looks the file
 * or batch up before it tries again (see src/services/Batch.ts). The key is never logged; bodies coming
 * back are scrubbed of it.
 */
import { Duration, Effect, Layer, Redacted } from "effect"
import OpenAI, { toFile } from "openai"
import type { BatchInfo, BatchStatus, FileInfo, Page } from "../../domain/batch.js"
import type { LlmError, LlmSettings } from "../../domain/llm.js"
import { MissingApiKey, NotFound, Timeout } from "../../domain/llm.js"
import type { BatchClientApi } from "../Batch.js"
import { BatchClient } from "../Batch.js"
import { apiKeyConfig, classifyError, resolveBaseUrl, scrub } from "./live.js"
import { logRetry, withRetry } from "./retry.js"

const num = (u: unknown): number | null => (typeof u === "number" && Number.isFinite(u) ? u : null)
const str = (u: unknown): string | null => (typeof u === "string" && u !== "" ? u : null)

/** The SDK's Batch object → BatchInfo. */
export const batchInfoOf = (b: any): BatchInfo => ({
  id: String(b.id),
  status: b.status as BatchStatus,
  inputFileId: String(b.input_file_id ?? ""),
  outputFileId: str(b.output_file_id),
  errorFileId: str(b.error_file_id),
  requestCounts: b.request_counts === undefined || b.request_counts === null
    ? null
    : {
      total: num(b.request_counts.total) ?? 0,
      completed: num(b.request_counts.completed) ?? 0,
      failed: num(b.request_counts.failed) ?? 0
    },
  errors: Array.isArray(b.errors?.data)
    ? b.errors.data.map((e: any) =>
      `${e.line === undefined || e.line === null ? "" : `line ${e.line}: `}${String(e.message ?? e.code ?? "error")}${
        e.param === undefined || e.param === null ? "" : ` (param ${e.param})`
      }`
    )
    : [],
  createdAt: num(b.created_at),
  completedAt: num(b.completed_at) ?? num(b.expired_at) ?? num(b.failed_at) ?? num(b.cancelled_at),
  metadata: typeof b.metadata === "object" && b.metadata !== null
    ? Object.fromEntries(
      Object.entries(b.metadata as Record<string, unknown>).filter((e): e is [string, string] =>
        typeof e[1] === "string"
      )
    )
    : {}
})

/** The SDK's FileObject → FileInfo. */
export const fileInfoOf = (f: any): FileInfo => ({
  id: String(f.id),
  filename: String(f.filename ?? ""),
  bytes: num(f.bytes) ?? 0,
  createdAt: num(f.created_at)
})

/** A cursor page of the SDK → Page (the next cursor is the last id when the API says there is more). */
const pageOf = <A extends { readonly id: string }>(page: any, item: (x: any) => A): Page<A> => {
  const items: Array<A> = Array.isArray(page?.data) ? page.data.map(item) : []
  return { items, after: page?.has_more === true && items.length > 0 ? items[items.length - 1].id : undefined }
}

/** Listing page size. */
const PAGE = 100

export const makeBatchClient = (settings: LlmSettings, apiKey: Redacted.Redacted<string>): BatchClientApi => {
  const secret = Redacted.value(apiKey)
  const client = new OpenAI({
    apiKey: secret,
    ...(settings.baseUrl === undefined ? {} : { baseURL: settings.baseUrl }),
    maxRetries: 0,
    timeout: settings.timeoutMs + 1_000
  })
  /** One SDK call with the per-attempt timeout. */
  const once = <A>(f: (signal: AbortSignal) => Promise<A>): Effect.Effect<A, LlmError> =>
    Effect.tryPromise({
      try: f,
      catch: (e) => scrub(classifyError(e, settings), secret).error
    }).pipe(
      Effect.timeoutFail({
        duration: Duration.millis(settings.timeoutMs),
        onTimeout: (): LlmError => new Timeout({ timeoutMs: settings.timeoutMs })
      })
    )
  /** A read: one SDK call with the per-attempt timeout and the retry schedule. */
  const call = <A>(what: string, f: (signal: AbortSignal) => Promise<A>): Effect.Effect<A, LlmError> =>
    withRetry(once(f), settings, logRetry(what, settings.maxRetries))
  const options = (signal: AbortSignal) => ({ signal, timeout: settings.timeoutMs + 1_000 })
  /** A 404 for a batch or file the run recorded: which one, and why the API may not know it. */
  const recorded = (what: string) => (e: LlmError): LlmError =>
    e._tag === "NotFound"
      ? new NotFound({
        code: e.code,
        reason: `${what}: ${e.reason} (the run recorded it; a batch and its files belong to the OpenAI project ` +
          "of the key that made them: is OPENAI_API_KEY a key of that project, and OPENAI_BASE_URL the same API?)"
      })
      : e
  return {
    uploadFile: (name, content) =>
      once(async (signal) => {
        const file = await client.files.create(
          { file: await toFile(Buffer.from(content, "utf8"), name), purpose: "batch" },
          options(signal)
        )
        return { id: file.id, bytes: file.bytes }
      }),
    createBatch: ({ endpoint, inputFileId, metadata }) =>
      once(async (signal) =>
        batchInfoOf(
          scrub(
            await client.batches.create(
              { input_file_id: inputFileId, endpoint, completion_window: "24h", metadata: { ...metadata } },
              options(signal)
            ),
            secret
          )
        )
      ),
    retrieveBatch: (id) =>
      call(
        `batch ${id}`,
        async (signal) => batchInfoOf(scrub(await client.batches.retrieve(id, options(signal)), secret))
      ).pipe(Effect.mapError(recorded(`batch ${id}`))),
    fileContent: (id) =>
      call(`file ${id}`, async (signal) => {
        const response = await client.files.content(id, options(signal))
        return scrub(await response.text(), secret)
      }).pipe(Effect.mapError(recorded(`file ${id}`))),
    listBatches: (after) =>
      call("list batches", async (signal) =>
        pageOf(
          scrub(
            await client.batches.list({ limit: PAGE, ...(after === undefined ? {} : { after }) }, options(signal)),
            secret
          ),
          batchInfoOf
        )),
    listFiles: (after) =>
      call("list files", async (signal) =>
        pageOf(
          await client.files.list(
            { purpose: "batch", order: "desc", limit: PAGE, ...(after === undefined ? {} : { after }) },
            options(signal)
          ),
          fileInfoOf
        )),
    retryPolicy: settings
  }
}

export const BatchClientLive = (settings: LlmSettings) =>
  Layer.effect(
    BatchClient,
    Effect.gen(function*() {
      const key = yield* Effect.mapError(apiKeyConfig, (e) => new MissingApiKey({ use: "batch", unusable: e.unusable }))
      const resolved = yield* resolveBaseUrl(settings)
      return makeBatchClient(resolved, key)
    })
  )
