/** shellWord: the words of a command line a message suggests, as they paste into a POSIX shell. */
import { describe, expect, it } from "vitest"
import { shellWord } from "../src/domain/words.js"

describe("shellWord", () => {
  it("leaves a word of letters, digits and /._-+:@%,= as it is", () => {
    expect(shellWord("/tmp/runs/raw_llm/20260101T000000Z-ab12")).toBe("/tmp/runs/raw_llm/20260101T000000Z-ab12")
    expect(shellWord("a+b:c@d%e,f=g.jsonl")).toBe("a+b:c@d%e,f=g.jsonl")
    expect(shellWord("../out/ds.jsonl")).toBe("../out/ds.jsonl")
  })

  it("single-quotes a word with a space or another shell character", () => {
    expect(shellWord("/tmp/my runs/raw_llm/X")).toBe("'/tmp/my runs/raw_llm/X'")
    expect(shellWord("/tmp/$HOME/x")).toBe("'/tmp/$HOME/x'")
    expect(shellWord("~/runs")).toBe("'~/runs'")
    expect(shellWord("a*b")).toBe("'a*b'")
    expect(shellWord("run;rm -rf x")).toBe("'run;rm -rf x'")
    expect(shellWord("a\"b")).toBe("'a\"b'")
    expect(shellWord("a\\b")).toBe("'a\\b'")
    expect(shellWord("line\nbreak")).toBe("'line\nbreak'")
    expect(shellWord("données")).toBe("'données'")
    // zsh expands `=cmd` at the start of a word to the command's path.
    expect(shellWord("=ls")).toBe("'=ls'")
  })

  it("writes a single quote as '\\'' and the empty word as ''", () => {
    expect(shellWord("it's")).toBe("'it'\\''s'")
    expect(shellWord("/tmp/it's my run")).toBe("'/tmp/it'\\''s my run'")
    expect(shellWord("''")).toBe("''\\'''\\'''")
    expect(shellWord("")).toBe("''")
  })
})
