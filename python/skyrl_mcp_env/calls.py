"""The tool-call grammar skyrl's system prompt teaches, and the answer format.

The prompt says, on one line: ``To call a tool, reply with exactly: <tool_call>{"name": "TOOL",
"arguments": {...}}</tool_call>``. A turn may hold several such blocks; each becomes one call. The env
answers each call with a user message ``<tool_response>\\n...\\n</tool_response>``. Text inside
``<think>...</think>`` is ignored (reasoning models mention the syntax while thinking), and so is text
before a lone ``</think>`` (the chat template opened the block in the prompt). A block is strict JSON:
NaN, Infinity, numbers beyond a double and nesting deeper than ``MAX_DEPTH`` make it malformed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Union

OPEN, CLOSE = "<tool_call>", "</tool_call>"
SYNTAX = '<tool_call>{"name": "TOOL", "arguments": {...}}</tool_call>'  # as the system message shows it
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class Call:
    """A well-formed call: a tool name and an arguments object."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Malformed:
    """A ``<tool_call>`` block that is not a call; ``error`` says why."""

    raw: str
    error: str


Parsed = Union[Call, Malformed]


def _blocks(text: str, open_tag: str, close_tag: str) -> tuple[list[tuple[int, int]], int]:
    """The ``open_tag ... close_tag`` spans of ``text`` as (start, end) of the whole block, each closed by
    the first close tag after its open tag and the next searched after it; and where the first open tag
    never closed starts (-1 if none). One pass with str.find: linear, also on thousands of unclosed tags
    (a lazy regex rescans the rest of the text from each of them)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while (start := text.find(open_tag, pos)) != -1:
        close = text.find(close_tag, start + len(open_tag))
        if close == -1:
            return spans, start
        pos = close + len(close_tag)
        spans.append((start, pos))
    return spans, -1


MAX_CLOSE_TRIED = 8  # close tags a block that is no call at its first one may run on to (bounds the parsing)


def _call_blocks(text: str) -> tuple[list[tuple[int, int]], int]:
    """``_blocks`` of ``<tool_call>``, except that a block whose body is no call at its first ``</tool_call>``
    runs on to a later one (of the next ``MAX_CLOSE_TRIED``) where it is one: the tag is text of the call's
    arguments there (``{"message": "</tool_call>"}``, as json.dumps writes it), and ending the block inside the
    string made the plan's own call malformed. A block that is a call nowhere ends at its first close tag."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while (start := text.find(OPEN, pos)) != -1:
        body = start + len(OPEN)
        close = text.find(CLOSE, body)
        if close == -1:
            return spans, start
        end = close
        if not isinstance(_parse_block(text[body:close]), Call):
            later = close
            for _ in range(MAX_CLOSE_TRIED):
                later = text.find(CLOSE, later + len(CLOSE))
                if later == -1:
                    break
                if isinstance(_parse_block(text[body:later]), Call):
                    end = later
                    break
        pos = end + len(CLOSE)
        spans.append((start, pos))
    return spans, -1


def strip_thinking(action: str) -> str:
    """The turn without its reasoning: ``<think>...</think>`` blocks, and the text before a lone ``</think>``
    (the chat template opened the block in the prompt). A ``<tool_call>`` block that is a well-formed call is
    read as a whole first, so a think tag inside its arguments (``{"message": "</think>"}``) is text of the call,
    not the end of the reasoning; a call inside the reasoning is still hidden with it."""
    masked = _mask_calls(action)
    return "".join(action[a:b] for a, b in _visible_ranges(masked))


def _mask_calls(text: str) -> str:
    """``text`` with the body of each closed ``<tool_call>`` block that parses as a call blanked out (same
    length, no tags left in it), so that reasoning is found around calls, never inside their arguments."""
    spans, _ = _call_blocks(text)
    parts, pos = [], 0
    for start, end in spans:
        body_start, body_end = start + len(OPEN), end - len(CLOSE)
        body = text[body_start:body_end]
        if (THINK_OPEN in body or THINK_CLOSE in body) and isinstance(_parse_block(body), Call):
            parts += [text[pos:body_start], " " * (body_end - body_start)]
            pos = body_end
    return "".join(parts) + text[pos:]


def _visible_ranges(text: str) -> list[tuple[int, int]]:
    """The (start, end) ranges of ``text`` left once reasoning is taken out: every closed ``<think>`` block (one
    never closed stays), then everything up to the first ``</think>`` left, a lone one (DeepSeek-R1 distills'
    templates end the generation prompt with ``<think>``, so the turn's reasoning has no opening tag)."""
    kept, pos = [], 0
    for start, end in _blocks(text, THINK_OPEN, THINK_CLOSE)[0]:
        kept.append((pos, start))
        pos = end
    kept.append((pos, len(text)))
    for i, (a, b) in enumerate(kept):
        close = text.find(THINK_CLOSE, a, b)
        if close != -1:
            return [(close + len(THINK_CLOSE), b)] + kept[i + 1 :]
    return kept


def parse_calls(action: str) -> list[Parsed]:
    """Every ``<tool_call>`` block of one assistant turn, in order. An empty list is a final answer. An
    unclosed ``<tool_call>`` makes one malformed entry, the text from it to the end."""
    text = strip_thinking(action)
    spans, unclosed = _call_blocks(text)
    out: list[Parsed] = [_parse_block(text[start + len(OPEN) : end - len(CLOSE)]) for start, end in spans]
    if unclosed != -1:
        out.append(Malformed(text[unclosed:], f"{OPEN} is never closed with {CLOSE}"))
    return out


class _Refused(ValueError):
    """A value Python's json module reads but the call grammar refuses (the message says why)."""


def _constant(text: str) -> Any:
    raise _Refused(f"{text} is not a JSON number")


def _finite(text: str, value: Any) -> Any:
    """A number canonical JSON can write: NaN, Infinity and numbers beyond a double (1e400) are not JSON
    values here (Python reads them; canonical JSON would write them as null, equal to a null literal)."""
    try:
        ok = math.isfinite(float(value))
    except OverflowError:
        ok = False
    if not ok:
        raise _Refused(f"{text[:40]} is out of the range of a JSON number")
    return value


def _int(text: str) -> int:
    if len(text) > 400:  # beyond any double, and Python refuses to read over 4300 digits
        raise _Refused(f"{text[:40]}... is out of the range of a JSON number")
    return _finite(text, int(text))


MAX_DEPTH = 64  # arrays and objects nested deeper make a call malformed (no tool takes such arguments)


def _loads(raw: str) -> Any:
    try:
        value = json.loads(raw, parse_constant=_constant, parse_int=_int, parse_float=lambda t: _finite(t, float(t)))
    except RecursionError:
        value = None
        depth_ok = False
    else:
        depth_ok = depth_at_most(value, MAX_DEPTH)
    if not depth_ok:  # deeper values crashed step (RecursionError in the parser, canonical JSON or jsonschema)
        raise _Refused(f"arrays and objects nested deeper than {MAX_DEPTH} levels")
    return value


def depth_at_most(value: Any, limit: int) -> bool:
    """Whether a value nests at most ``limit`` levels of lists and dicts (a scalar is 0 levels, ``{}`` and ``[]`` 1),
    without recursion: for call arguments here, and for dataset records in records.py (src/skyrl/depth.ts counts
    alike)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return False
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return True


def _parse_block(raw: str) -> Parsed:
    try:
        value = _loads(raw)
    except json.JSONDecodeError as e:
        return Malformed(raw, f"not valid JSON ({e.msg} at char {e.pos})")
    except _Refused as e:
        return Malformed(raw, f"not valid JSON ({e})")
    if not isinstance(value, dict):
        return Malformed(raw, f'expected an object {{"name": ..., "arguments": {{...}}}}, got {type(value).__name__}')
    name = value.get("name")
    if not isinstance(name, str) or name.strip() == "":
        return Malformed(raw, 'has no "name" (a non-empty string)')
    if "arguments" not in value and len(value) > 1:
        # {"name": ..., "parameters": {...}} (another format's key): a call with no arguments it was not meant to be
        others = ", ".join(json.dumps(k) for k in value if k != "name")
        shape = '{"name": ..., "arguments": {...}}'
        return Malformed(raw, f'has no "arguments" (its other keys: {others}): a call is {shape}')
    arguments = value.get("arguments", {})
    if not isinstance(arguments, dict):
        return Malformed(raw, f'"arguments" must be an object, got {type(arguments).__name__}')
    return Call(name.strip(), arguments)


def tool_response(text: str) -> dict[str, str]:
    """The user message that answers one call."""
    return {"role": "user", "content": f"<tool_response>\n{text}\n</tool_response>"}
