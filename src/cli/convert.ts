/** `skyrl convert TASKS_FILE --out FILE`: task objects (JSON/JSONL) → SkyRL rows. */
import { Args, Command, Options } from "@effect/cli"
import { Effect } from "effect"
import {
  asOfOptionDescribed,
  dataSourceOption,
  inventoryOption,
  maxPromptTokensOption,
  optionalFlag,
  outOption
} from "./shared.js"

export const convertCommand = Command.make(
  "convert",
  {
    tasks: Args.file({ name: "TASKS_FILE", exists: "yes" }).pipe(
      Args.withDescription("JSON array, JSON object or JSONL of task objects (the model's output shape)")
    ),
    out: outOption,
    inventory: inventoryOption,
    dataSource: dataSourceOption,
    maxPromptTokens: maxPromptTokensOption,
    asOf: asOfOptionDescribed(
      "The date of every row's `Today is` line",
      "per task, its as_of, else the date of its generated_at, else today"
    ),
    rejects: optionalFlag(
      Options.file("rejects"),
      "Where rejected tasks go (JSON Lines: the name must end in .jsonl)",
      undefined,
      "<out>.rejects.jsonl"
    )
  },
  (options) => Effect.flatMap(Effect.promise(() => import("./convert.live.js")), (m) => m.runConvert(options))
).pipe(Command.withDescription("Convert task objects (the model's output shape) into SkyRL rows"))
