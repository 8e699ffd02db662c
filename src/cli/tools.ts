/**
 * `skyrl tools import` (inventory from live MCP servers) and `skyrl tools list` (print an inventory).
 * Heavy modules (MCP SDK, ajv) load lazily from ./tools.live.js.
 */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { flagWithDefault, inventoryOption, serversConfigOption, serversOption } from "./shared.js"

/**
 * A text option given any number of times. The default (none) makes @effect/cli show it optional in the usage
 * line, `[--stdio text...]`; a bare `Options.repeated` showed `--stdio text...`, as if required.
 */
const repeatable = (name: string, description: string) =>
  Options.text(name).pipe(
    Options.withDescription(description),
    Options.repeated,
    Options.withDefault<ReadonlyArray<string>>([])
  )

const importCommand = Command.make(
  "import",
  {
    stdio: repeatable(
      "stdio",
      "A stdio MCP server to spawn: NAME=\"COMMAND ARGS...\" (or \"COMMAND ARGS...\" followed by --name NAME). " +
        "Words are split like a shell would (quotes, backslashes), without running a shell"
    ),
    http: repeatable("http", "A streamable-HTTP MCP server: NAME=URL (or URL followed by --name NAME)"),
    name: repeatable(
      "name",
      "Names the server given just before it without NAME=. Unnamed --stdio and --http servers cannot be mixed " +
        "in one call (the parser does not keep the order across options): use NAME=... then"
    ),
    serversConfig: serversConfigOption,
    out: Options.file("out").pipe(
      Options.withAlias("o"),
      Options.withDescription(
        "Inventory file to write (JSON: the name must end in .json); written atomically. Required unless --check, " +
          "which writes nothing and takes no --out"
      ),
      Options.optional
    ),
    check: Options.file("check", { exists: "yes" }).pipe(
      Options.withDescription(
        "Inventory to check: list its servers again (its launch specs, or the servers given) and print added (+), " +
          "removed (-) and changed (~) tools (a server given that it lacks: every tool added); writes nothing; " +
          "exit 1 when anything changed or a server failed"
      ),
      Options.optional
    ),
    timeout: flagWithDefault(
      Options.integer("timeout"),
      "Seconds allowed per server (start, tools/list, close)",
      undefined,
      30
    )
  },
  (options) => Effect.flatMap(Effect.promise(() => import("./tools.live.js")), (m) => m.runToolsImport(options))
).pipe(
  Command.withDescription(
    "Build an inventory file from live MCP servers (initialize, tools/list), recording how each is started. Every " +
      "server is tried; the ones that worked are written, and the command exits 1 if any failed. Example: skyrl tools " +
      "import --stdio fs=\"npx -y @modelcontextprotocol/server-filesystem /tmp\" --http docs=http://127.0.0.1:3000/mcp " +
      "--out inventory.json (or --servers-config mcp.json). With --check INV: report tools that changed since INV"
  )
)

const listCommand = Command.make(
  "list",
  { inventory: inventoryOption, servers: serversOption },
  (options) => Effect.flatMap(Effect.promise(() => import("./tools.live.js")), (m) => m.runToolsList(options))
).pipe(Command.withDescription("Print an inventory on stdout, one line per tool: server, tool(signature), description"))

export const toolsCommand = Command.make("tools").pipe(
  Command.withDescription("MCP tool inventories: import them from live servers, list them"),
  Command.withSubcommands([importCommand, listCommand])
)
