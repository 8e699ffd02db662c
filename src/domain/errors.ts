/**
 * Errors shared by several programs. Service-specific errors live beside their service.
 * Every error has a readable `message`; the CLI prints it once on stderr.
 */
import { Schema } from "effect"

/** A task that cannot become a SkyRL row. `field` is a readable path such as `tool_sequence[2].server`. */
export class ConversionError extends Schema.TaggedError<ConversionError>()("ConversionError", {
  field: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.field}: ${this.reason}`
  }
}

/** Bad input data: names the file, the row (0-based index) and the field where known. */
export class InputError extends Schema.TaggedError<InputError>()("InputError", {
  file: Schema.String,
  row: Schema.optional(Schema.Number),
  field: Schema.optional(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    const where = [this.file, this.row === undefined ? undefined : `row ${this.row}`, this.field]
      .filter((x) => x !== undefined && x !== "")
      .join(", ")
    return `${where}: ${this.reason}`
  }
}

/** A file could not be read or written. */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  path: Schema.String,
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot ${this.operation} ${this.path}: ${this.reason}`
  }
}

/** An exclusive lock file is held by another process (`holder` says who, as the lock file records it). */
export class LockHeld extends Schema.TaggedError<LockHeld>()("LockHeld", {
  path: Schema.String,
  holder: Schema.String
}) {
  override get message(): string {
    return `${this.path} is held by ${this.holder}`
  }
}
