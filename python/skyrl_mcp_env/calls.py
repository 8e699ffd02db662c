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
import re
from dataclasses import dataclass, field
from typing import Any, Union

OPEN, CLOSE = "<tool_call>", "</tool_call>"
SYNTAX = '<tool_call>{"name": "TOOL", "arguments": {...}}</tool_call>'  # as the system message shows it
_BLOCK = re.compile(re.escape(OPEN) + r"(.*?)" + re.escape(CLOSE), re.DOTALL)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


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


def strip_thinking(action: str) -> str:
    text = _THINK.sub("", action)
    # A chat template that ends the generation prompt with "<think>" (DeepSeek-R1 distills) leaves the
    # turn's reasoning without its opening tag: everything up to a lone </think> is reasoning.
    close = text.find("</think>")
    return text if close == -1 else text[close + len("</think>") :]


def parse_calls(action: str) -> list[Parsed]:
    """Every ``<tool_call>`` block of one assistant turn, in order. An empty list is a final answer."""
    text = strip_thinking(action)
    out: list[Parsed] = [_parse_block(m.group(1)) for m in _BLOCK.finditer(text)]
    tail = text[text.rfind(CLOSE) + len(CLOSE) :] if CLOSE in text else text
    if OPEN in tail:
        out.append(Malformed(tail[tail.find(OPEN) :], f"{OPEN} is never closed with {CLOSE}"))
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
        depth_ok = _depth_at_most(value, MAX_DEPTH)
    if not depth_ok:  # deeper values crashed step (RecursionError in the parser, canonical JSON or jsonschema)
        raise _Refused(f"arrays and objects nested deeper than {MAX_DEPTH} levels")
    return value


def _depth_at_most(value: Any, limit: int) -> bool:
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
    arguments = value.get("arguments", {})
    if not isinstance(arguments, dict):
        return Malformed(raw, f'"arguments" must be an object, got {type(arguments).__name__}')
    return Call(name.strip(), arguments)


def tool_response(text: str) -> dict[str, str]:
    """The user message that answers one call."""
    return {"role": "user", "content": f"<tool_response>\n{text}\n</tool_response>"}
