/**
 * What @effect/cli gets wrong about a command line, mended before and around its parsing:
 * - an option the command does not have (`unknownOption`): @effect/cli's own message for one is right
 *   only when it comes last; placed before a required option it says "Expected to find option: '--out'",
 *   and before a path argument "Path '--bogus' must exist";
 * - a command it does not have (`unknownOption` too): `skyrl genrate -n 1` was "unknown option '-n'",
 *   `skyrl tools imprt --out x` "tools: unknown option '--out'", and `skyrl cassettes stat DIR` listed the
 *   top-level commands ("Invalid subcommand for skyrl");
 * - a subcommand's help shows its usage as `$ convert ...` (`fullUsage` makes it `$ skyrl convert ...`).
 *
 * The command's options come from @effect/cli's usage of each (sub)command; the walk from a command to its
 * subcommands reads the descriptor's shape (`Map`, `Subcommands`, `Standard`), which @effect/cli ~0.77 does
 * not export as a type: anything else found there gives no finding, and @effect/cli parses as before.
 */
import { CommandDescriptor } from "@effect/cli"
import type { Usage } from "@effect/cli/Usage"
import { isAbsolute, resolve } from "node:path"

/** @effect/cli's options on every command (`--help`, `--version`, `--wizard`, `--completions`, `--log-level`). */
const BUILT_IN = ["--help", "-h", "--version", "--wizard", "--completions", "--log-level"]

type Node =
  | { readonly _tag: "Standard" | "GetUserInput"; readonly name: string }
  | { readonly _tag: "Map"; readonly command: Node }
  | { readonly _tag: "Subcommands"; readonly parent: Node; readonly children: ReadonlyArray<Node> }

const unwrap = (node: Node): Node => (node._tag === "Map" ? unwrap(node.command) : node)

/** The command a node stands for (a command with subcommands: its own part). */
const own = (node: Node): Node => {
  const n = unwrap(node)
  return n._tag === "Subcommands" ? own(n.parent) : n
}

const nameOf = (node: Node): string | undefined => {
  const n = own(node)
  return n._tag === "Standard" || n._tag === "GetUserInput" ? n.name : undefined
}

type NamedUsage = Extract<Usage, { readonly _tag: "Named" }>

/** The named parts of a usage (options and positional arguments), in order, wherever they are nested. */
const namedIn = (usage: Usage): ReadonlyArray<NamedUsage> => {
  switch (usage._tag) {
    case "Named":
      return [usage]
    case "Optional":
    case "Repeated":
      return namedIn(usage.usage)
    case "Alternation":
    case "Concat":
      return [...namedIn(usage.left), ...namedIn(usage.right)]
    default:
      return []
  }
}

const optionNames = (usage: Usage): Set<string> =>
  new Set(namedIn(usage).flatMap((u) => u.names.filter((name) => name.startsWith("-"))))

const optionsOf = (
  node: Node
): ReadonlyArray<string> => [...optionNames(CommandDescriptor.getUsage(own(node) as never))]

/** Edit distance, for "did you mean". */
const distance = (a: string, b: string): number => {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) {
      next.push(Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)))
    }
    row = next
  }
  return row[b.length]!
}

/**
 * The options of skyrl and of its command groups (tools, cassettes, batch) that take a value: the word after
 * one is that value, not a command. The groups take no argument of their own, so any other word where
 * a command is expected is one.
 */
const TAKES_VALUE = new Set(["--log-format", "--log-level", "--completions"])

/** Looks like an option (`--x`, `-x`), not a value such as `-` or `-1`. */
const isOptionLike = (arg: string): boolean => /^--?[A-Za-z]/.test(arg)

/**
 * Walks `args` (the arguments after the program's name, up to `--`) down the command tree: `visit` sees
 * each argument with the command path so far, the options known there (those of the commands above
 * count too), when the argument stands where a command is expected the commands there, and its index in
 * `args`; returning a value stops the walk with it.
 */
const walk = <A>(
  command: { readonly descriptor: unknown },
  args: ReadonlyArray<string>,
  visit: (
    arg: string,
    path: ReadonlyArray<string>,
    known: ReadonlySet<string>,
    commands: ReadonlyArray<string> | undefined,
    at: number
  ) => A | undefined
): { readonly path: ReadonlyArray<string>; readonly node: Node; readonly found: A | undefined } => {
  let node = command.descriptor as Node
  const path = [nameOf(node) ?? "skyrl"]
  const known = new Set([...BUILT_IN, ...optionsOf(node)])
  let previous = ""
  for (const [at, arg] of args.entries()) {
    if (arg === "--") break
    const n = unwrap(node)
    const children = n._tag !== "Subcommands" || isOptionLike(arg) || TAKES_VALUE.has(previous) ? [] : n.children
    const commands = children.length === 0 ? undefined : children.flatMap((c) => nameOf(c) ?? [])
    const found = visit(arg, path, known, commands, at)
    if (found !== undefined) return { path, node, found }
    previous = arg
    const child = children.find((c) => nameOf(c) === arg)
    if (child === undefined) continue
    node = child
    path.push(arg)
    for (const option of optionsOf(child)) known.add(option)
  }
  return { path, node, found: undefined }
}

/** The command `args` name (its path from skyrl) and its usage: its options and arguments. */
const commandOf = (command: { readonly descriptor: unknown }, args: ReadonlyArray<string>) => {
  const { node, path } = walk(command, args, () => undefined)
  return { path, usage: CommandDescriptor.getUsage(own(node) as never) }
}

/** ` Did you mean 'x'?` for the names within 2 edits of `name`, or "". */
const didYouMean = (name: string, names: Iterable<string>): string => {
  const close = [...names].filter((k) => distance(k, name) <= 2).sort()
  return close.length > 0 ? ` Did you mean ${close.map((k) => `'${k}'`).join(" or ")}?` : ""
}

/**
 * ` A --stdio server's command line is one word: ...` when `args[at]` is the word right after a `--stdio` value
 * (`--stdio mem=npx -y pkg`: the shell passed the command's arguments as words of their own), or "".
 */
const unquotedStdio = (args: ReadonlyArray<string>, at: number): string =>
  at >= 2 && args[at - 2] === "--stdio"
    ? " A --stdio server's command line is one word: quote it, --stdio NAME=\"COMMAND ARGS\"."
    : ""

/** The long names of the options in `usage` that may be given several times (`--stdio`, `--http`, `--name`). */
const repeatedNames = (usage: Usage, inside: boolean, into: Set<string>): Set<string> => {
  switch (usage._tag) {
    case "Named":
      if (inside) { for (const name of usage.names) if (name.startsWith("--")) into.add(name) }
      break
    case "Optional":
      repeatedNames(usage.usage, inside, into)
      break
    case "Repeated":
      repeatedNames(usage.usage, true, into)
      break
    case "Alternation":
    case "Concat":
      repeatedNames(usage.left, inside, into)
      repeatedNames(usage.right, inside, into)
      break
  }
  return into
}

/**
 * `args` with `--opt=VALUE` split into `--opt VALUE` where @effect/cli misreads the `=` form: for an option the
 * command takes several times (it refused `--http=docs=URL` as "--http is given more than once"), and for any
 * option that takes a value when VALUE is empty (`--out=` was "Expected to find option: '--out'", `--servers=`
 * "not recognized"): split, the empty value gets the option's own usage error (`--out: "" must end in ...`).
 */
export const repeatedOptionsSplit = (
  command: { readonly descriptor: unknown },
  args: ReadonlyArray<string>
): ReadonlyArray<string> => {
  const { usage } = commandOf(command, args)
  const repeated = repeatedNames(usage, false, new Set())
  const valued = optionValues(usage)
  const end = endOf(args)
  return args.flatMap((arg, i) => {
    const eq = isOptionLike(arg) ? arg.indexOf("=") : -1
    if (i >= end || eq <= 0) return [arg]
    const name = arg.slice(0, eq)
    const split = repeated.has(name) || (eq === arg.length - 1 && valued.has(name))
    return split ? [name, arg.slice(eq + 1)] : [arg]
  })
}

/**
 * The message for the first option or command in `args` that the command they name does not have
 * (`convert: unknown option '--outt'. Did you mean '--out'? ...`, `tools: unknown command 'imprt'. Did you
 * mean 'import'? ...`), or undefined.
 */
export const unknownOption = (
  command: { readonly descriptor: unknown },
  args: ReadonlyArray<string>
): string | undefined =>
  walk(command, args, (arg, path, known, commands, at) => {
    const where = path.slice(1).join(" ")
    const prefix = where === "" ? "" : `${where}: `
    if (commands !== undefined) {
      if (commands.includes(arg)) return undefined
      return `${prefix}unknown command '${arg}'.${didYouMean(arg, commands)} Its commands: \`${
        path.join(" ")
      } --help\`.`
    }
    if (!isOptionLike(arg)) return undefined
    const name = arg.split("=", 1)[0]!
    if (known.has(name)) return undefined
    const hint = didYouMean(name, [...known].filter((k) => k.startsWith("--"))) || unquotedStdio(args, at)
    return `${prefix}unknown option '${name}'.${hint} Its options: \`${path.join(" ")} --help\`.`
  }).found

/**
 * The usage error for an option given twice that the command takes once (`convert: --out is given more than once`),
 * under either of its names (`-o` and `--out`), or undefined. @effect/cli read the second one before a positional
 * argument as that argument: `convert --out a --out b T` said "TASKS_FILE: Path '--out' must exist".
 */
export const givenTwice = (
  command: { readonly descriptor: unknown },
  args: ReadonlyArray<string>
): string | undefined => {
  const { path, usage } = commandOf(command, args)
  const repeated = repeatedNames(usage, false, new Set())
  const valued = optionValues(usage)
  const canonical = new Map(
    namedIn(usage).flatMap((u) => {
      const names = u.names.filter((n) => n.startsWith("-"))
      const long = names.find((n) => n.startsWith("--")) ?? names[0]
      return names.map((n) => [n, long!] as const)
    })
  )
  const seen = new Set<string>()
  const end = endOf(args)
  for (let i = 0; i < end; i++) {
    const arg = args[i]!
    if (!isOptionLike(arg)) continue
    const eq = arg.indexOf("=")
    const given = eq > 0 ? arg.slice(0, eq) : arg
    const name = canonical.get(given)
    if (name === undefined || repeated.has(name)) continue
    if (eq === -1 && valued.has(given)) i++
    if (seen.has(name)) {
      const where = path.slice(1).join(" ")
      return `${where === "" ? "" : `${where}: `}${name} is given more than once. Its options: \`${
        path.join(" ")
      } --help\`.`
    }
    seen.add(name)
  }
  return undefined
}

/**
 * The value kinds of the options in `usage` that take one, by each of their names (`-o` and `--out`: "file"), with
 * the long name (`-n`, which has none: its own).
 */
const optionValues = (usage: Usage): ReadonlyMap<string, { readonly long: string; readonly kind: string }> => {
  const into = new Map<string, { readonly long: string; readonly kind: string }>()
  for (const u of namedIn(usage)) {
    const long = u.names.find((n) => n.startsWith("--")) ?? u.names.find((n) => n.startsWith("-"))
    if (long === undefined || u.acceptedValues._tag !== "Some") continue
    for (const name of u.names) into.set(name, { long, kind: u.acceptedValues.value })
  }
  return into
}

/** The positional arguments in `usage` that are paths (no fixed choices), by name. */
const pathArguments = (usage: Usage): ReadonlyArray<string> =>
  namedIn(usage).flatMap((u) =>
    u.acceptedValues._tag === "None" ? u.names.flatMap((n) => (/^<.+>$/.test(n) ? [n.slice(1, -1)] : [])) : []
  )

const PATH_KINDS = new Set(["file", "directory", "path"])
/** Path options skyrl writes to (a `-` there would mean stdout). */
const OUTPUT_OPTIONS = new Set(["--out", "--rejects"])

/**
 * The usage error for a bare `-` (stdin or stdout, by the usual convention) given as a path, before `--`:
 * `verify: '-' (stdin) is not supported: give DATASET as a path (one named '-' is ./-)`, or undefined.
 * No command reads a dataset from stdin (verify --resume, validate's row references and Parquet need a file)
 * or writes one to stdout; @effect/cli's own messages were wrong: a `-` before a required option read as an
 * option, "Expected to find option: '--out'" although --out was given, and elsewhere "Path '-' must exist".
 */
export const dashPath = (
  command: { readonly descriptor: unknown },
  args: ReadonlyArray<string>
): string | undefined => {
  const { path, usage } = commandOf(command, args)
  const options = optionValues(usage)
  const positional = pathArguments(usage)
  const prefix = path.length > 1 ? `${path.slice(1).join(" ")}: ` : ""
  const end = endOf(args)
  for (let i = 0; i < end; i++) {
    const arg = args[i]!
    const eq = isOptionLike(arg) ? arg.indexOf("=") : -1
    const option = eq > 0 ? options.get(arg.slice(0, eq)) : undefined
    if (option !== undefined && arg.slice(eq + 1) === "-" && PATH_KINDS.has(option.kind)) {
      return dashOption(prefix, option)
    }
    if (arg !== "-") continue
    const before = i > 0 ? args[i - 1]! : ""
    const valueOf = isOptionLike(before) && !before.includes("=") ? options.get(before) : undefined
    if (valueOf !== undefined) {
      if (PATH_KINDS.has(valueOf.kind)) return dashOption(prefix, valueOf)
      continue
    }
    if (TAKES_VALUE.has(before) || positional.length === 0) continue
    return `${prefix}'-' (stdin) is not supported: give ${positional.join(" or ")} as a path (one named '-' is ./-).`
  }
  return undefined
}

const dashOption = (prefix: string, option: { readonly long: string; readonly kind: string }): string => {
  const stream = OUTPUT_OPTIONS.has(option.long) ? " (stdout)" : option.kind === "directory" ? "" : " (stdin)"
  const kind = option.kind === "directory" ? "directory" : "file"
  const named = OUTPUT_OPTIONS.has(option.long) ? "" : ` (one named '-' is ./-)`
  return `${prefix}${option.long}: '-'${stream} is not supported: give a ${kind} path${named}.`
}

/** The positional arguments in `usage` as its usage line gives them: `TASKS_FILE`, `[CONTRACT]`, `FILE...`. */
const argumentsIn = (usage: Usage): ReadonlyArray<string> => {
  switch (usage._tag) {
    case "Named":
      return usage.names.flatMap((name) => (/^<.+>$/.test(name) ? [name.slice(1, -1)] : []))
    case "Optional":
      return argumentsIn(usage.usage).map((name) => `[${name}]`)
    case "Repeated":
      return argumentsIn(usage.usage).map((name) => `${name}...`)
    case "Alternation":
    case "Concat":
      return [...argumentsIn(usage.left), ...argumentsIn(usage.right)]
    default:
      return []
  }
}

/** What a command takes: `no arguments`, `one argument, TASKS_FILE`, `at most one argument, CONTRACT`. */
const takes = (names: ReadonlyArray<string>): string =>
  names.length === 0
    ? "no arguments"
    : names.length > 1 || names[0]!.endsWith("...")
    ? `the arguments ${names.join(" ")}`
    : names[0]!.startsWith("[")
    ? `at most one argument, ${names[0]!.slice(1, -1)}`
    : `one argument, ${names[0]}`

/**
 * skyrl's usage error for @effect/cli's `Received unknown argument: 'X'` (`message`), which it gives for a
 * word left over once the command named in `args` has all it takes (`convert a.json b.json`, `tools list
 * extra`) or for an option given twice: `convert: unexpected argument 'b.json': it takes one argument,
 * TASKS_FILE. ...`. Any other message is returned as it is.
 */
export const leftoverArgument = (
  command: { readonly descriptor: unknown },
  args: ReadonlyArray<string>,
  message: string
): string => {
  const arg = /^\s*Received unknown argument: '([\s\S]*)'$/.exec(message)?.[1]
  if (arg === undefined) return message
  const { path, usage } = commandOf(command, args)
  const where = path.slice(1).join(" ")
  const prefix = where === "" ? "" : `${where}: `
  const help = `\`${path.join(" ")} --help\``
  const end = endOf(args)
  // After `--` a word is an argument, whatever it looks like (`convert T --out o -- --out`: a second TASKS_FILE).
  const name = arg.split("=", 1)[0]!
  const given = args.slice(0, end).filter((a) => a === name || a.startsWith(`${name}=`)).length
  const argument = !isOptionLike(arg) || given < 2
  if (!argument) return `${prefix}${name} is given more than once. Its options: ${help}.`
  const quote = unquotedStdio(args, args.slice(0, end).indexOf(arg))
  return `${prefix}unexpected argument '${arg}': it takes ${takes(argumentsIn(usage))}.${quote} Its usage: ${help}.`
}

/**
 * @effect/cli's message for a flag's value it refuses (`Expected path 'h/adir' to be a regular file`, `'1.5' is not
 * a integer`, said `is not an integer` here) names the value, not the flag: the flag in `args` that was given that value (`--out h/adir` or
 * `--out=h/adir`) is put in front, `--out: Expected path ...`; so is it of a path check that failed (`PATH: ENOTDIR:
 * ...`, describeCause's line for @effect/cli's defect: `--cassettes file/sub` named no flag). A value no flag was
 * given is a positional argument's: named as such when `command` is given and its subcommand takes one kind of
 * them (`TASKS_FILE: Expected path ...`, `DATASET: ...`). Any other message is returned as it is.
 */
export const namingFlag = (
  args: ReadonlyArray<string>,
  message: string,
  cwd = process.cwd(),
  command?: { readonly descriptor: unknown }
): string => {
  const value =
    /^(?:Expected path '([\s\S]*)' to be |Path '([\s\S]*)' must |'([\s\S]*)' is not a |([^\n]*?): E[A-Z]+: )/.exec(
      message
    )
  const given = value?.[1] ?? value?.[2] ?? value?.[3] ?? value?.[4]
  if (given === undefined) return message
  // A relative path that is not there: where it was looked for (the command may run in another directory).
  // @effect/cli says "is not a integer": English says "an".
  const said = message.replace(/^('[\s\S]*' is not) a (?=integer$)/, "$1 an ")
  const where = value?.[2] !== undefined && !isAbsolute(given) && /must exist$/.test(said)
    ? `${said} (looked for ${resolve(cwd, given)})`
    : said
  const end = endOf(args)
  const flags: Array<string> = []
  for (let i = 0; i < end; i++) {
    const arg = args[i]!
    if (!isOptionLike(arg)) continue
    const eq = arg.indexOf("=")
    if (eq === -1 ? i + 1 < end && args[i + 1] === given : arg.slice(eq + 1) === given) {
      flags.push(eq === -1 ? arg : arg.slice(0, eq))
    }
  }
  // The same value given to two flags (`--inventory inv.json --cassettes inv.json`): the one of the kind the message
  // expected (`to be a directory`), not the first (it named --inventory).
  const kind = /^Expected path '[\s\S]*' to be a (directory|regular file)/.exec(message)?.[1]
  const kinds = command === undefined || kind === undefined ? undefined : optionValues(commandOf(command, args).usage)
  const flag = flags.find((f) => kinds?.get(f)?.kind === (kind === "directory" ? "directory" : "file")) ?? flags[0]
  if (flag !== undefined) return `${flag}: ${where}`
  const positional = command === undefined || !args.slice(0, end).includes(given)
    ? undefined
    : positionalOf(command, args)
  return positional === undefined ? where : `${positional}: ${where}`
}

/** The name of the positional arguments the subcommand `args` name takes, when it takes one kind (`DATASET`). */
const positionalOf = (command: { readonly descriptor: unknown }, args: ReadonlyArray<string>): string | undefined => {
  const names = argumentsIn(commandOf(command, args).usage).map((n) => n.replace(/^\[|\]$|\.\.\.$/g, ""))
  return names.length === 1 ? names[0] : undefined
}

/**
 * `text` (what @effect/cli prints) with a subcommand's usage lines, `$ list ...`, given the full command,
 * `$ skyrl tools list ...`, for the command `args` name.
 */
export const fullUsage = (command: { readonly descriptor: unknown }, args: ReadonlyArray<string>) => {
  const { path } = walk(command, args, () => undefined)
  if (path.length < 2) return (text: string) => text
  const usage = new RegExp(`^\\$ ${path.at(-1)!.replace(/[^\w-]/g, "")}(?= |$)`, "gm")
  const full = `$ ${path.join(" ")}`
  return (text: string) => text.replace(usage, full)
}

/**
 * skyrl's options of the whole command line, with what a missing value should have been; moved to the
 * front in this order, so `--log-level` ends first: @effect/cli reads its own built-in options only there.
 */
const GLOBAL_OPTIONS = [
  ["--log-format", "pretty or json"],
  ["--log-level", "all, trace, debug, info, warning, error, fatal or none"]
] as const

/** Where the arguments end: at `--` (what follows it is no option), else their length. */
const endOf = (args: ReadonlyArray<string>): number => (args.includes("--") ? args.indexOf("--") : args.length)

/** `args` with `option VALUE` (or `option=VALUE`) moved to the front, when it stands later and has a value. */
const optionFirst = (args: ReadonlyArray<string>, option: string): ReadonlyArray<string> => {
  const end = endOf(args)
  const at = args.findIndex((a, i) => i < end && (a === option || a.startsWith(`${option}=`)))
  // Left where it is without a value (last, or before `--`): the usage error names it.
  if (at <= 0 || (args[at] === option && at + 1 >= end)) return args
  const width = args[at] === option ? 2 : 1
  return [...args.slice(at, at + width), ...args.slice(0, at), ...args.slice(at + width)]
}

/**
 * `args` with `--log-level LEVEL` and `--log-format FORMAT` (or `--opt=VALUE`) moved to the front:
 * @effect/cli reads `--log-level` (its own) and `--log-format` (the root command's) only before the
 * subcommand or right after its name; after a subcommand's other options it said "Received unknown
 * argument: '--log-level'" or named a required option as missing, and a command taking files (`validate
 * FILE...`) read `--log-format` as one ("Path '--log-format' must exist").
 */
export const globalOptionsFirst = (args: ReadonlyArray<string>): ReadonlyArray<string> =>
  GLOBAL_OPTIONS.reduce((moved, [option]) => optionFirst(moved, option), args)

/**
 * The usage error of a `--log-level` or `--log-format` without its value (last, or before `--`, or `--log-level=`),
 * or undefined.
 */
export const globalOptionWithoutValue = (args: ReadonlyArray<string>): string | undefined => {
  const end = endOf(args)
  const given = args.slice(0, end)
  const bare = GLOBAL_OPTIONS.find(([option]) => given.at(-1) === option || given.includes(`${option}=`))
  return bare === undefined ? undefined : `${bare[0]} needs a value: ${bare[1]}`
}

/**
 * @effect/config's message for an environment fallback's value it refuses, `(Invalid data at N_SAMPLES: "Expected
 * an integer value but received "abc"")`, in the words a flag's gets: `N_SAMPLES: 'abc' is not an integer`
 * (a number, one of the choices). Any other message is returned as it is.
 */
export const envValueMessage = (message: string): string => {
  const invalid = /^\(Invalid data at ([A-Z][A-Z0-9_]*): "([\s\S]*)"\)$/.exec(message)
  if (invalid === null) return message
  const [, name, reason] = invalid
  const typed = /^Expected (an integer|a number) value but received "([\s\S]*)"$/.exec(reason!)
  if (typed !== null) return `${name}: '${typed[2]}' is not ${typed[1]}`
  const choice = /^Expected one of \(([^)]*)\) but received "([\s\S]*)"$/.exec(reason!)
  if (choice !== null) return `${name}: '${choice[2]}' is not one of ${choice[1]}`
  // A variable's own check (`SKYRL_INVENTORY`'s file must exist): its reason, without Effect's wrapping.
  return `${name}: ${reason}`
}
