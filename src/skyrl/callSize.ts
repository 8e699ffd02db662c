/**
 * How long a step's tools/call request is, against the most an MCP message may take over stdio: the one home of
 * that limit and of the size computation, for `verify`'s contract stage, the `--verify` hook of generate and
 * enrich (src/programs/verify.ts, verifyHook.ts), the stdio transport (src/services/StdioTransport.ts) and the
 * `contract/call-size` rule of the checks (src/skyrl/checks.ts: `validate`, and `convert`, `generate`, `enrich`).
 */

/**
 * The most bytes an MCP message may take over stdio: the SDK's STDIO_DEFAULT_MAX_BUFFER_SIZE (10 MiB), past which
 * the SDK's stdio transport refuses a line (a server built on it exits). Written here rather than imported: the
 * SDK's module loads its zod schemas, which `convert` and `validate` do not need; test/callSize.test.ts holds
 * the two equal.
 */
export const MCP_MESSAGE_LIMIT = 10 * 1024 * 1024

/** The first id of the stdio transport's direct lane (the SDK's Protocol numbers its requests from 0). */
export const DIRECT_IDS = 1_000_000_000

/** A tools/call request's line up to its arguments' JSON text, then what ends it (`callRequestLine`). */
const requestHead = (id: number, name: string): string =>
  `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":${JSON.stringify(name)},"arguments":`
const REQUEST_END = "}}\n"

/** A tools/call request as the direct lane writes it: one JSON-RPC line (`args` an object, as a call's are). */
export const callRequestLine = (id: number, name: string, args: object): string =>
  requestHead(id, name) + JSON.stringify(args) + REQUEST_END

/** `the N bytes (M MiB) an MCP message may take`. */
export const limitText = (max: number) =>
  `the ${max} bytes${max % 1_048_576 === 0 ? ` (${max / 1_048_576} MiB)` : ""} an MCP message may take`

/**
 * The UTF-8 bytes of `callRequestLine(DIRECT_IDS, name, args)`, given `argsText`, JSON.stringify of the args (so
 * a caller that has it does not make it again, nor the whole line).
 */
export const callRequestBytes = (name: string, argsText: string): number =>
  Buffer.byteLength(requestHead(DIRECT_IDS, name)) + Buffer.byteLength(argsText) + REQUEST_END.length

/**
 * Whether JSON text of `length` UTF-16 units that holds a step's tool name and params (the params' JSON text, a
 * row's, however its values were written) shows, without a look at the values, that the step's request is within
 * the limit. JSON.stringify of what such text parses to takes at most 6 UTF-8 bytes a unit of it: a number grows
 * at most 21/4 (`1e20` is written `100000000000000000000`), a character of a string at most 6 (a lone surrogate,
 * escaped `\ud800`; any other 3 at most), and whitespace and escapes only shrink. So a row's check costs nothing
 * unless its text is over ~1.7 million characters.
 */
export const withinLimitByLength = (length: number): boolean => 6 * length + 256 <= MCP_MESSAGE_LIMIT

/** Why a step's request is refused: verify's contract reject and the checks' finding say it alike. */
export const tooLongReason = (index: number, bytes: number): string =>
  `step ${index + 1}: its tools/call request is ${bytes} bytes long, over ${
    limitText(MCP_MESSAGE_LIMIT)
  } over stdio: too long to send (the server would refuse it and exit)`

/**
 * The first step whose tools/call request (as the stdio transport writes it, with an id of DIRECT_IDS's length)
 * is longer than an MCP message over stdio may be: the SDK's server refuses such a line and exits, so the call
 * would only kill the server. `textLength`: the length of JSON text that holds every step's name and params (the
 * row's, as read), which spares the work when it shows them short (`withinLimitByLength`).
 */
export const tooLongStep = (
  steps: ReadonlyArray<{ readonly tool: string; readonly params: unknown }>,
  textLength?: number
): { readonly index: number; readonly bytes: number; readonly field: string; readonly reason: string } | undefined => {
  if (textLength !== undefined && withinLimitByLength(textLength)) return undefined
  for (let i = 0; i < steps.length; i++) {
    const { tool, params } = steps[i]!
    const bytes = callRequestBytes(tool, JSON.stringify(params))
    if (bytes > MCP_MESSAGE_LIMIT) {
      return {
        index: i,
        bytes,
        field: `reward_spec.ground_truth.tool_sequence[${i}].params`,
        reason: tooLongReason(i, bytes)
      }
    }
  }
  return undefined
}
