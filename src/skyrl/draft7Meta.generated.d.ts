import type { ErrorObject } from "ajv"

/** Ajv's validator of its draft-07 meta-schema (generated: scripts/gen-draft7-meta.ts). */
export declare const validate: ((schema: unknown) => boolean) & { errors: Array<ErrorObject> | null }
