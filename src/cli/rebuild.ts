/** `skyrl rebuild RUN_DIR --out FILE`: the dataset of a generate run, re-derived from its run directory. */
import { Args, Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { indentOption, inventoryOption, outOption } from "./shared.js"

export const rebuildCommand = Command.make(
  "rebuild",
  {
    runDir: Args.directory({ name: "RUN_DIR", exists: "yes" }).pipe(
      Args.withDescription("A run directory: raw_llm/<run_id>/ with manifest.json and the archived answers")
    ),
    out: outOption,
    inventory: inventoryOption,
    indent: indentOption,
    ascii: Options.boolean("ascii").pipe(Options.withDescription("Escape non-ASCII characters in JSON output"))
  },
  (options) => Effect.flatMap(Effect.promise(() => import("./rebuild.live.js")), (m) => m.runRebuild(options))
).pipe(Command.withDescription(
  "Re-derive a generate run's dataset from its run directory (its archived answers, judged again in the order the run accepted them), calling no model"
))
