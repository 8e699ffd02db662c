/** `--servers` (env SKYRL_SERVERS) read as server names, for the commands that take it. */
import { Effect, Option } from "effect"
import { parseServerList } from "../domain/inventory.js"
import { SettingsError } from "../domain/run.js"

/**
 * The names `--servers` gives, none when it is not given. A value that names no server (`""`, `","`) is a usage
 * error: it was taken for every server, and `generate` then asked for --domains as for another inventory.
 */
export const serverListOf = (
  value: Option.Option<string>
): Effect.Effect<Option.Option<ReadonlyArray<string>>, SettingsError> => {
  if (Option.isNone(value)) return Effect.succeed(Option.none())
  const names = parseServerList(value.value)
  return names.length > 0 ? Effect.succeed(Option.some(names)) : Effect.fail(
    new SettingsError({
      setting: "--servers (SKYRL_SERVERS)",
      reason: `names no server (${JSON.stringify(value.value)}): give a comma-separated list of the inventory's ` +
        "servers, or leave it out for all of them"
    })
  )
}
