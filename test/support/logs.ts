/** Log capture for in-process tests. */
import { Logger } from "effect"

/** A logger layer that keeps each message in `logs` as `LEVEL: message` (e.g. `WARN: ...`). */
export const loggingInto = (logs: Array<string>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => void logs.push(`${logLevel.label}: ${String(message)}`))
  )
