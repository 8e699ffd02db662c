"""The rows of a .json or .jsonl dataset, read by the rules skyrl's TypeScript reader follows (``recordStream`` and
``recordsFormatOf`` in src/skyrl/records.ts, ``lineChunks`` in src/services/Storage.ts, ``decodeUtf8`` in
src/skyrl/utf8.ts): the same rules, not shared code, so ``reward_check`` reads a file as ``skyrl validate`` does.

- The extension says only that a file is JSON text (``.json``, ``.jsonl``, any case); its first non-blank lines
  (at most 8) decide how it is read: JSON Lines (a ``.json`` file of them, as ``Dataset.to_json()`` writes, too)
  streamed a line at a time, or a JSON array or pretty-printed object parsed whole (a ``.jsonl`` file too).
- A UTF-8 BOM at the start is dropped; lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r``; blank lines are skipped.
- A line that is not UTF-8 is never read as U+FFFD: it is refused, naming its byte and offset.
- A record nested more than 512 levels of objects and arrays deep (``MAX_JSON_DEPTH``) is refused, as skyrl refuses
  it; a JSON document (not JSON Lines) deeper than Python's json reads (~900 levels) is refused whole, where skyrl
  refuses that record only.
- A file without rows gives none: the caller decides (``reward_check`` refuses it, as validate's
  ``contract/empty-file``).

Errors are ``ValueError`` naming the file and, for a line, the row (0-based, blank lines not counted) and the line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Optional

from .calls import depth_at_most

MAX_JSON_DEPTH = 512  # the levels of objects and arrays skyrl reads (src/skyrl/depth.ts)
FAULT = "\udc00"  # starts the text of a line that is not UTF-8 (a lone surrogate: no decoded text holds one)
FORMAT_LINES = 8  # the non-blank lines that decide the format
UTF16_TEXT = (
    "UTF-16 text (it starts with a UTF-16 byte order mark): re-encode it as UTF-8 (iconv -f UTF-16 -t UTF-8)"
)
# JavaScript's String.prototype.trim: str.strip would also cut U+001C-U+001F (gzip's first byte) and U+0085, and
# keep U+FEFF
_JS_SPACE = "\t\n\v\f\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029" + (
    "\u202f\u205f\u3000\ufeff"
)


class Unparsable(Exception):
    """A line that is not a row: ``index`` (the row it stands in for), ``line`` (1-based), ``reason``."""

    def __init__(self, index: int, line: int, reason: str):
        super().__init__(reason)
        self.index, self.line, self.reason = index, line, reason


def _trim(text: str) -> str:
    return text.strip(_JS_SPACE)


def _loads(text: str) -> Any:
    """JSON as JavaScript's JSON.parse reads it: ``NaN`` and ``Infinity`` are not JSON."""
    return json.loads(text, parse_constant=_not_json)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parses(text: str) -> bool:
    try:
        _loads(text)
        return True
    except (ValueError, RecursionError):
        return False


def _too_deep(what: str) -> str:
    """``tooDeepReason`` of src/skyrl/depth.ts: the reason a record nested deeper than skyrl reads is refused."""
    return (
        f"{what} nests objects and arrays more than {MAX_JSON_DEPTH} levels deep: too deep to read (skyrl's checks "
        "and MCPToolEnv walk values recursively)"
    )


def _message(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"{e.msg} at column {e.colno}"
    if isinstance(e, RecursionError):
        return "it nests objects and arrays too deep to read"
    return str(e)


# ---------------------------------------------------------------------------------------------
# Lines and text


def _line_text(raw: bytes, offset: int) -> str:
    """A line's bytes as text, or its fault line when they are not UTF-8 (``offset``: the line's in the file)."""
    if offset == 0 and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return f"{FAULT} {UTF16_TEXT}"
    if raw[:2] == b"\x1f\x8b":  # gzip: decoded as it is, the readers name it so
        return raw.decode("utf-8", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        at = e.start
    first = next((b for b in raw if b not in (0x20, 0x09)), None)
    lead = chr(first) if first is not None and 0x20 < first < 0x7F else " "  # what tells '[' from JSON Lines
    return f"{FAULT}{lead}byte 0x{raw[at]:02X} at byte offset {offset + at} of the file (re-encode it as UTF-8)"


def _lines(path: Path) -> Iterator[str]:
    """The lines of a file, read a line at a time, without their ends (``\\n``, ``\\r\\n``, a lone ``\\r``), a BOM
    at the start dropped, a line that is not UTF-8 given as its fault line."""
    offset = 0
    with path.open("rb") as f:
        for chunk in f:
            ended = chunk.endswith(b"\n")
            body = chunk[:-1] if ended else chunk
            if ended and body.endswith(b"\r"):
                body = body[:-1]
            parts = body.split(b"\r")
            if not ended and len(parts) > 1 and parts[-1] == b"":
                parts.pop()  # a lone "\r" at the end of the file ends its last line
            at = offset
            for raw in parts:
                text = _line_text(raw, at)
                yield text[1:] if at == 0 and text.startswith("\ufeff") else text
                at += len(raw) + 1
            offset += len(chunk)


def _text(path: Path) -> str:
    """A whole file as text (``decodeUtf8``: each line that is not UTF-8 is its fault line), without a BOM."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pieces, start = [], 0
        while start <= len(data):
            end = start
            while end < len(data) and data[end] not in (0x0A, 0x0D):
                end += 1
            pieces.append(_line_text(data[start:end], start))
            if end < len(data):
                pieces.append(chr(data[end]))
            start = end + 1
        text = "".join(pieces)
    return text[1:] if text.startswith("\ufeff") else text


def _is_fault(line: str) -> bool:
    return line.lstrip(_JS_SPACE).startswith(FAULT)


def _fault_of(text: str, line: int) -> Optional[str]:
    stripped = text.lstrip(_JS_SPACE)
    return f"line {line} is not valid UTF-8: {stripped[len(FAULT) + 1:]}" if stripped.startswith(FAULT) else None


def _lead(text: str) -> str:
    """The first non-blank character as the file has it (a fault line's too), "" when none."""
    trimmed = text.lstrip(_JS_SPACE)
    return _trim(trimmed[len(FAULT) : len(FAULT) + 1]) if trimmed.startswith(FAULT) else trimmed[:1]


def _first_fault(text: str) -> Optional[str]:
    if FAULT not in text:
        return None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return next((_fault_of(line, i + 1) for i, line in enumerate(lines) if _is_fault(line)), None)


def _whole_fault(text: str, e: Exception) -> str:
    """Why a text read whole is not JSON: its first UTF-8 fault, else the parser's message and where."""
    if text[:1] == "\x1f":
        return "not valid JSON: it is gzip-compressed; decompress it first (gunzip)"
    fault = _first_fault(text)
    if fault is not None:
        return fault
    if isinstance(e, json.JSONDecodeError):
        return f"not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
    return f"not valid JSON: {_message(e)}"


# ---------------------------------------------------------------------------------------------
# The format: recordsFormatOf


def _is_json_line(line: str) -> bool:
    return _is_fault(line) or _parses(line)


def _is_record_line(line: str) -> bool:
    return line[:1] in ("{", "[") and _parses(line)


def _bracketed_bad_first_line(heads: list[str]) -> bool:
    """JSON Lines after a first line that is not JSON: every later head is a JSON object or array."""
    return len(heads) > 1 and not _is_json_line(heads[0]) and all(_is_record_line(h) for h in heads[1:])


def _not_json_reason(heads: list[str]) -> str:
    after = len(heads) - 1
    later = (
        " (the file's only line)"
        if after == 0
        else f", nor is any of the {after} non-blank line{'' if after == 1 else 's'} after it a JSON object or array"
    )
    if heads[0][:1] == "\x1f":
        return "not JSON or JSON Lines: it is gzip-compressed; decompress it first (gunzip)"
    return (
        f"not JSON or JSON Lines: the first line is not a JSON value{later}, and a JSON document starts with '[' "
        "or '{'"
    )


def format_of(heads: list[str]) -> str:
    """"lines" or "whole", from a text's first non-blank lines (trimmed, at most FORMAT_LINES); ValueError (the
    reason) for a text that is neither."""
    head = heads[0]
    if head.lstrip(_JS_SPACE) == f"{FAULT} {UTF16_TEXT}":
        raise ValueError(f"not JSON or JSON Lines: it is {UTF16_TEXT}")
    if _lead(head) == "[":
        return "lines" if _bracketed_bad_first_line(heads) else "whole"
    if _is_json_line(head):
        return "lines"
    if head.startswith("{"):
        return "whole"
    if head[:1] != "\x1f" and any(_is_record_line(h) for h in heads[1:]):
        return "lines"
    raise ValueError(_not_json_reason(heads))


# ---------------------------------------------------------------------------------------------
# Records


def _json_lines(lines: Iterator[str]) -> Iterator[Any]:
    """The values of JSON Lines; a line that is not one raises Unparsable."""
    index = 0
    for number, raw in enumerate(lines, 1):
        line = _trim(raw)
        if line == "":
            continue
        try:
            value = _loads(line)
        except RecursionError:  # deeper than Python's json reads (~900 levels): deeper than skyrl reads too
            raise Unparsable(index, number, _too_deep(f"line {number}")) from None
        except ValueError as e:
            reason = _fault_of(line, number) or f"line {number} is not valid JSON: {_message(e)}"
            raise Unparsable(index, number, reason) from None
        if not depth_at_most(value, MAX_JSON_DEPTH):
            raise Unparsable(index, number, _too_deep(f"line {number}"))
        yield value
        index += 1


def _heads_of(text: str) -> list[str]:
    heads = []
    for line in text.split("\n"):
        if len(heads) == FORMAT_LINES:
            break
        if _trim(line):
            heads.append(_trim(line))
    return heads


def _whole(text: str) -> Optional[list[Any]]:
    """The values of a text parsed whole (``recordsOf``), or None when it is JSON Lines after all; ValueError (the
    reason) for one broken document."""
    lead = _lead(text)
    try:
        value = _loads(text)
    except (ValueError, RecursionError) as e:
        heads = _heads_of(text)
        if lead == "[":
            first = text.lstrip(_JS_SPACE).split("\n", 1)[0]
            if _parses(first) or _bracketed_bad_first_line(heads):
                return None
            raise ValueError(_whole_fault(text, e)) from None
        if lead == "{":
            if _is_json_line(heads[0]):
                return None
            if len(heads) > 1 and not any(_is_record_line(h) for h in heads[1:]):
                raise ValueError(_whole_fault(text, e)) from None
            fault = _first_fault(text)
            if fault is not None:
                raise ValueError(fault) from None
        return None
    if lead == "[":
        if not isinstance(value, list):
            raise ValueError("expected a JSON array")
        return value
    return [value]


def read_records(path: Path) -> Iterator[Any]:
    """The values of a .json or .jsonl file, streamed for JSON Lines; ValueError naming the file (and the row and
    line of a line that is not JSON, after the rows before it)."""
    heads = []
    first_lines = _lines(path)
    for line in first_lines:
        if _trim(line):
            heads.append(_trim(line))
            if len(heads) == FORMAT_LINES:
                break
    first_lines.close()
    if not heads:
        return
    try:
        form = format_of(heads)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    try:
        if form == "whole":
            text = _text(path)
            values = _whole(text)
            if values is not None:
                for index, value in enumerate(values):
                    if not depth_at_most(value, MAX_JSON_DEPTH):
                        raise Unparsable(index, 0, _too_deep(f"record {index}"))
                    yield value
                return
            lines: Iterator[str] = iter(text.split("\n"))
        else:
            lines = _lines(path)
        yield from _json_lines(lines)
    except Unparsable as e:
        raise ValueError(f"{path}: row {e.index}: {e.reason}") from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
