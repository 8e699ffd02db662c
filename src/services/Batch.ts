/**
 * The `BatchClient` port: OpenAI's Files + Batches endpoints, as the batch programs need them.
 * Live layer over the openai SDK in src/services/llm/batch.ts (loaded lazily by the CLI); tests run it
 * against the fake server in test/support/fakeBatch.ts. Errors are the Llm layer's typed errors
 * (rate limits and 5xx are retried by the live layer's schedule before they surface).
 */
import type { Effect } from "effect"
import { Context } from "effect"
import type { BatchInfo } from "../domain/batch.js"
import type { LlmError } from "../domain/llm.js"

export interface UploadedFile {
  readonly id: string
  readonly bytes: number
}

export interface BatchClientApi {
  /** Uploads a JSONL file with purpose `batch`. */
  readonly uploadFile: (name: string, content: string) => Effect.Effect<UploadedFile, LlmError>
  /** Creates a batch over an uploaded file (completion window 24h). */
  readonly createBatch: (params: {
    readonly inputFileId: string
    readonly endpoint: "/v1/responses" | "/v1/chat/completions"
    readonly metadata: Readonly<Record<string, string>>
  }) => Effect.Effect<BatchInfo, LlmError>
  readonly retrieveBatch: (id: string) => Effect.Effect<BatchInfo, LlmError>
  /** The content of a file (a batch's output or error file). */
  readonly fileContent: (id: string) => Effect.Effect<string, LlmError>
}

export class BatchClient extends Context.Tag("skyrl/BatchClient")<BatchClient, BatchClientApi>() {}
