/**
 * Reading back a JSON file a run directory keeps (manifest.json, batch.json, plan_inputs.json): its value, or where
 * and why it is none, as one `Issue`: the first field the schema refuses, in `parseIssues`' words (`counts.valid:
 * must be a number, got "x"`); for the whole file (path ""), that it cannot be read, is empty, or is not JSON (where
 * the parser stopped, as `wholeJsonFault` says it). Callers report it with `fileIssueText` (`FILE, FIELD: REASON`),
 * as bad input (exit 2), in one line: never Effect's decode tree.
 */
import { Effect, Either, Schema } from "effect"
import type { Issue } from "../skyrl/parseIssues.js"
import { parseIssues } from "../skyrl/parseIssues.js"
import { wholeJsonFault } from "../skyrl/utf8.js"
import { Storage } from "./Storage.js"

export const readJsonFileOrIssue = <A, I>(file: string, schema: Schema.Schema<A, I>) =>
  Effect.gen(function*() {
    const text = yield* (yield* Storage).readText(file).pipe(Effect.either)
    if (Either.isLeft(text)) return Either.left<Issue>({ path: "", message: text.left.reason })
    // Not JSON's "Unexpected end of JSON input": a file emptied (a disk that filled, an editor) says so.
    if (text.right.trim() === "") return Either.left<Issue>({ path: "", message: "is empty" })
    const json = Either.try({
      try: () => JSON.parse(text.right) as unknown,
      catch: (e) => wholeJsonFault(text.right, e)
    })
    if (Either.isLeft(json)) return Either.left<Issue>({ path: "", message: json.left })
    return Either.mapLeft(
      Schema.decodeUnknownEither(schema)(json.right),
      (e): Issue => parseIssues(e)[0] ?? { path: "", message: "does not decode" }
    )
  })
