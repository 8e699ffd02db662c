/**
 * The options of the Ajv instance that validates plans (src/skyrl/planValidation.ts). In a module of their own
 * because the draft-07 meta-schema's validator (draft7Meta.generated.js) is generated with the same options by
 * scripts/gen-draft7-meta.ts, which must not load the module that imports that validator.
 *
 * strict: false — real catalogues carry unknown keywords (x-*, examples in odd places); addUsedSchema: false —
 * two tools may use the same $id; logger: false — no console noise; verbose: errors carry their schema (to list
 * the declared params).
 */
export const AJV_OPTIONS = {
  allErrors: true,
  strict: false,
  addUsedSchema: false,
  logger: false,
  verbose: true
} as const

/** The meta-schema Ajv checks a schema against when its `$schema` names none (Ajv's default class: draft-07). */
export const DRAFT7 = "http://json-schema.org/draft-07/schema"
