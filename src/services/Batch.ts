/**
 * The `BatchClient` port: OpenAI's Files + Batches endpoints, as the batch programs need them.
 * Live layer over the openai SDK in src/services/llm/batch.ts (loaded lazily by the CLI); tests run it
 * against the fake server in test/support/fakeBatch.ts. Errors are the Llm layer's typed errors.
 *
 * Reads (retrieve, content, listings) are retried by the live layer's schedule before they surface.
 * The two calls that make something on the account, `uploadFile` and `createBatch`, are single attempts:
 * one that failed may still have been done (a timeout after the API accepted it), so the caller looks
 * for the file or batch (`listFiles`, `listBatches`) before it tries again (src/programs/batch.ts).
 */
import type { Effect } from "effect"
import { Context } from "effect"
import type { BatchInfo, FileInfo, Page } from "../domain/batch.js"
import type { LlmError } from "../domain/llm.js"
import type { RetryPolicy } from "./llm/retry.js"

export interface UploadedFile {
  readonly id: string
  readonly bytes: number
}

export interface BatchClientApi {
  /** Uploads a JSONL file with purpose `batch`. One attempt. */
  readonly uploadFile: (name: string, content: string) => Effect.Effect<UploadedFile, LlmError>
  /** Creates a batch over an uploaded file (completion window 24h). One attempt. */
  readonly createBatch: (params: {
    readonly inputFileId: string
    readonly endpoint: "/v1/responses" | "/v1/chat/completions"
    readonly metadata: Readonly<Record<string, string>>
  }) => Effect.Effect<BatchInfo, LlmError>
  readonly retrieveBatch: (id: string) => Effect.Effect<BatchInfo, LlmError>
  /** The content of a file (a batch's output or error file). */
  readonly fileContent: (id: string) => Effect.Effect<string, LlmError>
  /** The account's batches, newest first, one page at a time. */
  readonly listBatches: (after: string | undefined) => Effect.Effect<Page<BatchInfo>, LlmError>
  /** The account's files of purpose `batch`, newest first, one page at a time. */
  readonly listFiles: (after: string | undefined) => Effect.Effect<Page<FileInfo>, LlmError>
  /** How the caller retries an upload or a create once the lookup found nothing. */
  readonly retryPolicy: RetryPolicy
}

export class BatchClient extends Context.Tag("skyrl/BatchClient")<BatchClient, BatchClientApi>() {}
