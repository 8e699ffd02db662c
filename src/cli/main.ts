/** The `skyrl` command tree. Subcommands load their heavy modules lazily (see each command file). */
import { Command } from "@effect/cli"
import { Effect } from "effect"
import { loggerLayer } from "../services/Logging.js"
import { batchCommand } from "./batch.js"
import { cassettesCommand } from "./cassettes.js"
import { convertCommand } from "./convert.js"
import { enrichCommand } from "./enrich.js"
import { generateCommand } from "./generate.js"
import { rebuildCommand } from "./rebuild.js"
import { schemaCommand } from "./schema.js"
import { logFormatOption } from "./shared.js"
import { splitCommand } from "./split.js"
import { toolsCommand } from "./tools.js"
import { validateCommand } from "./validate.js"
import { verifyCommand } from "./verify.js"

export const VERSION = "0.1.0"

const root = Command.make(
  "skyrl",
  { logFormat: logFormatOption },
  () => Effect.logInfo("skyrl makes SkyRL datasets of MCP tool plans; run `skyrl --help` for the commands")
).pipe(
  Command.withDescription(
    "Make reinforcement-learning datasets for SkyRL (MCPToolEnv): prompts plus ground-truth MCP tool plans"
  )
)

export const skyrl = root.pipe(
  Command.withSubcommands([
    generateCommand,
    enrichCommand,
    rebuildCommand,
    convertCommand,
    validateCommand,
    splitCommand,
    schemaCommand,
    toolsCommand,
    verifyCommand,
    cassettesCommand,
    batchCommand
  ]),
  Command.provide((config) => loggerLayer(config.logFormat))
)

export const cli = Command.run(skyrl, { name: "skyrl", version: VERSION })
