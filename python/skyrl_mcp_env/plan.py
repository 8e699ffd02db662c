"""The ground truth of one skyrl row (``extras["reward_spec"]["ground_truth"]``), decoded.

Rows written before ``call_name``/``depends_on``/``derived_params``/``available_tools``/``tool_schemas``
existed still load: a missing list is empty, a missing call_name is the tool name, missing
available_tools means only the plan's tools are known, missing tool_schemas means derived params are
checked for presence only. ``params`` may be a JSON string (skyrl's layout) or an object;
``depends_on`` and ``derived_params`` JSON text (skyrl's layout: ``"[1,2]"``, Arrow-safe) or a list (rows
written before). ``available_tools`` that skyrl filled with the plan's tools because the prompt's offer
was unknown (``task_metadata.available_tools_source == "plan"``) count as not listed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional


class RowError(ValueError):
    """A row the env cannot score; the message names the row and the field."""


@dataclass(frozen=True)
class Step:
    step: int
    server: str
    tool: str
    call_name: str
    params: dict[str, Any]
    depends_on: tuple[int, ...] = ()
    derived_params: tuple[str, ...] = ()

    @property
    def literal_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if k not in self.derived_params}


@dataclass(frozen=True)
class Plan:
    task_id: str
    steps: tuple[Step, ...]
    must_call_tool: Optional[str]
    max_turns: Optional[int]
    max_tools: Optional[int]
    max_servers: Optional[int]
    tools: dict[str, tuple[str, str]]  # call_name -> (server, tool): every tool the policy may call
    tools_listed: bool  # the row lists its prompt's tools (available_tools)
    schemas: dict[str, Any] = field(default_factory=dict)  # call_name -> inputSchema
    rubric: Any = None


def plan_from_extras(extras: Mapping[str, Any]) -> Plan:
    """Decode the plan of a row (``extras`` is the row minus ``prompt`` and ``env_class``)."""
    gt = _ground_truth(extras)
    where = f"row {gt.get('task_id') or '(no task_id)'}"
    raw_steps = gt.get("tool_sequence")
    if not isinstance(raw_steps, (list, tuple)) or len(raw_steps) == 0:
        raise RowError(f"{where}: reward_spec.ground_truth.tool_sequence is missing or empty (a row needs a plan)")
    steps = tuple(_step(s, i, where) for i, s in enumerate(raw_steps))
    tools = {s.call_name: (s.server, s.tool) for s in steps}
    listed = None if _offer_unknown(extras) else _available_tools(gt.get("available_tools"), where)
    limits = gt.get("limits") or {}
    return Plan(
        task_id=str(gt.get("task_id") or ""),
        steps=steps,
        must_call_tool=(gt.get("success") or {}).get("must_call_tool"),
        max_turns=_int_or_none(gt.get("max_turns")),
        max_tools=_int_or_none(limits.get("max_tools")),
        max_servers=_int_or_none(limits.get("max_servers")),
        tools={**(listed or {}), **tools},
        tools_listed=listed is not None,
        schemas=_schemas(gt.get("tool_schemas"), where),
        rubric=gt.get("rubric"),
    )


def _ground_truth(extras: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = extras.get("reward_spec") if isinstance(extras, Mapping) else None
    gt = spec.get("ground_truth") if isinstance(spec, Mapping) else None
    if not isinstance(gt, Mapping):
        raise RowError("row: reward_spec.ground_truth is missing (is this a skyrl row?)")
    return gt


def _step(raw: Any, index: int, where: str) -> Step:
    at = f"{where}: tool_sequence[{index}]"
    if not isinstance(raw, Mapping):
        raise RowError(f"{at}: expected an object")
    for key in ("server", "tool"):
        if not isinstance(raw.get(key), str) or raw.get(key) == "":
            raise RowError(f"{at}.{key}: is missing")
    return Step(
        step=int(raw.get("step") or index + 1),
        server=raw["server"],
        tool=raw["tool"],
        call_name=raw.get("call_name") or raw["tool"],
        params=_params(raw.get("params"), at),
        depends_on=tuple(_list(raw.get("depends_on"), f"{at}.depends_on", int)),
        derived_params=tuple(_list(raw.get("derived_params"), f"{at}.derived_params", str)),
    )


def _list(raw: Any, where: str, kind: type) -> list:
    """A list given as JSON text (skyrl's layout), as a list (older rows), or missing (empty)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise RowError(f"{where}: is not JSON ({e.msg} at char {e.pos})") from None
    if raw is None:
        return []
    try:
        if not isinstance(raw, (list, tuple)):
            raise TypeError
        return [kind(x) for x in raw]
    except (TypeError, ValueError):
        raise RowError(f"{where}: expected a list of {kind.__name__} (or its JSON text), got {raw!r}") from None


def _offer_unknown(extras: Mapping[str, Any]) -> bool:
    """The row's available_tools are the plan's, filled in because its prompt's offer was unknown."""
    info = extras.get("extra_info") if isinstance(extras, Mapping) else None
    metadata = info.get("task_metadata") if isinstance(info, Mapping) else None
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError:
            return False
    return isinstance(metadata, Mapping) and metadata.get("available_tools_source") == "plan"


def _params(raw: Any, at: str) -> dict[str, Any]:
    return {} if raw is None else json_object(raw, f"{at}.params")


def json_object(raw: Any, where: str, error: type[ValueError] = RowError) -> dict[str, Any]:
    """An object given as such or as JSON text (skyrl's Arrow-safe layout); ``error`` naming ``where`` otherwise."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise error(f"{where}: is not JSON ({e.msg} at char {e.pos})") from None
    if not isinstance(raw, Mapping):
        raise error(f"{where}: expected a JSON object, got {type(raw).__name__}")
    return dict(raw)


def _available_tools(raw: Any, where: str) -> Optional[dict[str, tuple[str, str]]]:
    if not raw:
        return None
    tools: dict[str, tuple[str, str]] = {}
    for i, t in enumerate(raw):
        if not isinstance(t, Mapping) or not t.get("server") or not t.get("tool"):
            raise RowError(f"{where}: available_tools[{i}]: needs server and tool")
        tools[t.get("call_name") or t["tool"]] = (t["server"], t["tool"])
    return tools


def _schemas(raw: Any, where: str) -> dict[str, Any]:
    schemas = json_object(raw, f"{where}: tool_schemas") if raw else {}
    return {k: v for k, v in schemas.items() if isinstance(v, Mapping)}


def _int_or_none(v: Any) -> Optional[int]:
    return None if v is None else int(v)
