/**
 * Logging: every log line goes to stderr (stdout is kept for data). Readable by default,
 * one JSON object per line with `--log-format json`.
 */
import { Layer, Logger, LogLevel, Schema } from "effect"

export const LogFormat = Schema.Literal("pretty", "json")
export type LogFormat = typeof LogFormat.Type

const jsonLine = Logger.map(Logger.jsonLogger, (line) => {
  process.stderr.write(line + "\n")
})

const readable = Logger.make(({ annotations, date, logLevel, message }) => {
  const text = (Array.isArray(message) ? message : [message])
    .map((m) => (typeof m === "string" ? m : JSON.stringify(m)))
    .join(" ")
  let extra = ""
  for (const [k, v] of annotations) extra += ` ${k}=${typeof v === "string" ? v : JSON.stringify(v)}`
  const time = date.toISOString().slice(11, 19)
  process.stderr.write(`${time} ${logLevel.label.padEnd(5)} ${text}${extra}\n`)
})

/** Replaces Effect's default (stdout) logger with a stderr logger of the given format. */
export const loggerLayer = (format: LogFormat): Layer.Layer<never> =>
  Logger.replace(Logger.defaultLogger, format === "json" ? jsonLine : readable)

/** Sets the minimum level (debug logs with --verbose / --log-level debug). */
export const minimumLevel = (level: LogLevel.LogLevel): Layer.Layer<never> => Logger.minimumLogLevel(level)
