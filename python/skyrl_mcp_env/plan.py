"""The ground truth of one skyrl row (``extras["reward_spec"]["ground_truth"]``), decoded.

Rows written before ``call_name``/``depends_on``/``derived_params``/``available_tools``/``tool_schemas``
existed still load: a missing list is empty, a missing call_name is the tool name, missing
available_tools means only the plan's tools are known, missing tool_schemas means derived params are
checked for presence only. ``params`` may be a JSON string (skyrl's layout) or an object;
``depends_on`` and ``derived_params`` JSON text (skyrl's layout: ``"[1,2]"``, Arrow-safe) or a list (rows
written before). ``available_tools`` that skyrl filled with the plan's tools because the prompt's offer
was unknown (``task_metadata.available_tools_source == "plan"``) count as not listed. Integers
(``max_turns``, ``limits``, ``step``: at least 1; ``depends_on`` items) are JSON integers (``3.0`` is 3;
``true``, ``"3"`` and ``3.5`` are not) and names are strings: a value of another type is a ``RowError``
naming the field and the value, never coerced.
"""

from __future__ import annotations

import functools
import json
import math
import numbers
from dataclasses import dataclass, field, replace
from typing import Any, Collection, Mapping, Optional

from . import metaschema
from .refs import schema_fault


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


# skyrl verify's ways of reading results for derived_values_found (its record's derived_reading), each reading what
# the one before did and more: "json-leaves" from 2026-12-04 afternoon (a text of JSON, a line of JSON beside prose),
# "json-leaves-2" (a line of JSON with words after it) from that evening, "json-leaves-3" (the words after a line's
# JSON read again for more JSON) and "json-leaves-4" (a text that is a Python repr) from that night.
READINGS = ("json-leaves", "json-leaves-2", "json-leaves-3", "json-leaves-4")
# The reading of a row without a record (the latest): what every reader defaults to.
LATEST_READING = len(READINGS)


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
    derived_values_found: bool = False  # skyrl verify found every derived value in its dependencies' results
    # the steps whose own derived values skyrl verify found there (its record's steps[].derived_values_found, written
    # since 2026-12-03); None for a record without them (older, or none): then only the row's field says
    derived_found_steps: Optional[frozenset[int]] = None
    # results read a JSON string or number at a time when grounding (reward.py Evidence); False for a record whose
    # derived_values_found skyrl verify wrote before 2026-12-04, which read each result's text whole
    grounding_by_leaves: bool = True
    # how results are read when grounding (reward.py text_pieces): the number of the record's ``derived_reading`` in
    # READINGS (1 for "json-leaves"), the latest for a row without one: each reading reads as skyrl verify read
    grounding_reading: int = LATEST_READING


def plan_from_extras(extras: Mapping[str, Any]) -> Plan:
    """Decode the plan of a row (``extras`` is the row minus ``prompt`` and ``env_class``)."""
    gt = _ground_truth(extras)
    where = f"row {gt.get('task_id') or '(no task_id)'}"
    raw_steps = gt.get("tool_sequence")
    if raw_steps is not None and not isinstance(raw_steps, (list, tuple)):
        raise RowError(f"{where}: reward_spec.ground_truth.tool_sequence: expected a list of steps, got {shown(raw_steps)}")
    if not raw_steps:
        raise RowError(f"{where}: reward_spec.ground_truth.tool_sequence is missing or empty (a row needs a plan)")
    steps = tuple(_step(s, i, where) for i, s in enumerate(raw_steps))
    tools = _call_names(steps, where)
    listed = None if _offer_unknown(extras) else _available_tools(gt.get("available_tools"), where)
    limits = _object_or_empty(gt.get("limits"), f"{where}: limits")
    must_call_tool = _object_or_empty(gt.get("success"), f"{where}: success").get("must_call_tool")
    if must_call_tool is not None and not isinstance(must_call_tool, str):
        raise RowError(f"{where}: success.must_call_tool: expected a tool name (a string), got {shown(must_call_tool)}")
    _check_plan(steps, must_call_tool, where)
    return Plan(
        task_id=str(gt.get("task_id") or ""),
        steps=steps,
        must_call_tool=must_call_tool,
        max_turns=positive_int(gt.get("max_turns"), f"{where}: max_turns"),
        max_tools=positive_int(limits.get("max_tools"), f"{where}: limits.max_tools"),
        max_servers=positive_int(limits.get("max_servers"), f"{where}: limits.max_servers"),
        tools={**(listed or {}), **tools},
        tools_listed=listed is not None,
        schemas=_schemas(gt.get("tool_schemas"), where, {**(listed or {}), **tools}),
        rubric=gt.get("rubric"),
        derived_values_found=_derived_values_found(extras),
        derived_found_steps=_derived_found_steps(extras, steps),
        grounding_by_leaves=_grounding_by_leaves(extras),
        grounding_reading=_grounding_reading(extras),
    )


def _call_names(steps: tuple[Step, ...], where: str) -> dict[str, tuple[str, str]]:
    """call name -> (server, tool) of the plan's steps; one name for two tools (steps of servers ``a`` and ``b``
    both naming ``search``, with no ``call_name``: rows of another tool) is refused: every call of it went to the
    last, so the plan's own call of the first found no recording (0.444 for the plan itself)."""
    tools: dict[str, tuple[str, str]] = {}
    first: dict[str, int] = {}
    for i, s in enumerate(steps):
        if s.call_name in tools and tools[s.call_name] != (s.server, s.tool):
            a, b = tools[s.call_name], (s.server, s.tool)
            raise RowError(
                f"{where}: tool_sequence[{i}].call_name: {shown(s.call_name)} is also the call name of "
                f"tool_sequence[{first[s.call_name]}], another tool ({a[0]}/{a[1]}, {b[0]}/{b[1]}): the policy "
                "could not tell them apart; give each tool a call name of its own"
            )
        tools.setdefault(s.call_name, (s.server, s.tool))
        first.setdefault(s.call_name, i)
    return tools


def with_plan_limits(plan: Plan) -> Plan:
    """The plan with the limits a row leaves out set to what the plan itself uses (its distinct call names and
    servers). reward.md's property 3 (calling every tool of the prompt scores at most half the plan) holds
    through ``limits``: without them, on a plan of 3 tools and 1 distractor, calling all 4 scored 0.75."""
    return replace(
        plan,
        max_tools=plan.max_tools if plan.max_tools is not None else len({s.call_name for s in plan.steps}),
        max_servers=plan.max_servers if plan.max_servers is not None else len({s.server for s in plan.steps}),
    )


def _check_plan(steps: tuple[Step, ...], must_call_tool: Optional[str], where: str) -> None:
    """A plan the plan itself can match (reward.md property 1), as skyrl's checks require it: step numbers
    distinct (calls are assigned to steps by number), each ``depends_on`` an earlier step of the plan (a missing
    step, the step itself or a later one left the step unmatchable or the plan in order short of 1.0), and
    ``success.must_call_tool`` the call name of a step (else every trajectory scores 0)."""
    index: dict[int, int] = {}
    for i, s in enumerate(steps):
        if s.step in index:
            raise RowError(
                f"{where}: tool_sequence[{i}].step: {s.step} is also the number of tool_sequence[{index[s.step]}] "
                "(each step needs its own number: depends_on and the score name steps by it)"
            )
        index[s.step] = i
    for i, s in enumerate(steps):
        for d in s.depends_on:
            at = f"{where}: tool_sequence[{i}].depends_on"
            if d not in index:
                raise RowError(f"{at}: no step {d} in the plan (steps: {', '.join(str(t.step) for t in steps)})")
            if index[d] >= i:
                what = "the step itself" if d == s.step else "a later step"
                raise RowError(
                    f"{at}: step {d} is {what}; a step depends on earlier steps only (else the plan called in "
                    "order cannot match it)"
                )
    if must_call_tool is not None and all(s.call_name != must_call_tool for s in steps):
        names = ", ".join(dict.fromkeys(s.call_name for s in steps))
        raise RowError(
            f"{where}: success.must_call_tool: {shown(must_call_tool)} is not the call name of a plan step "
            f"({names}), so every trajectory, the plan's too, would score 0"
        )


def _ground_truth(extras: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = extras.get("reward_spec") if isinstance(extras, Mapping) else None
    if spec is not None and not isinstance(spec, Mapping):
        raise RowError(f"row: reward_spec: expected an object, got {shown(spec)}")
    gt = spec.get("ground_truth") if isinstance(spec, Mapping) else None
    if gt is None:
        raise RowError("row: reward_spec.ground_truth is missing (is this a skyrl row?)")
    if not isinstance(gt, Mapping):
        raise RowError(f"row: reward_spec.ground_truth: expected an object, got {shown(gt)}")
    return gt


def _step(raw: Any, index: int, where: str) -> Step:
    at = f"{where}: tool_sequence[{index}]"
    if not isinstance(raw, Mapping):
        raise RowError(f"{at}: expected an object")
    for key in ("server", "tool"):
        if not isinstance(raw.get(key), str) or raw.get(key) == "":
            raise RowError(f"{at}.{key}: is missing")
        _hashable_name(raw[key], f"{at}.{key}")
    step = positive_int(raw.get("step"), f"{at}.step")
    return Step(
        step=index + 1 if step is None else step,
        server=raw["server"],
        tool=raw["tool"],
        call_name=_name(raw.get("call_name"), f"{at}.call_name") or raw["tool"],
        params=_params(raw.get("params"), at),
        depends_on=tuple(_list(raw.get("depends_on"), f"{at}.depends_on", "int")),
        derived_params=tuple(_list(raw.get("derived_params"), f"{at}.derived_params", "str")),
    )


def positive_int(value: Any, where: str) -> Optional[int]:
    """An integer >= 1 (None when missing), or a RowError naming ``where`` and the value.

    The row contract (skyrl's ``Schema.Int``, JSON Schema ``"type": "integer"``) takes JSON integers; ``3.0``
    is the same JSON number as ``3`` (JavaScript reads both as 3) and is read as 3. A bool (``true`` is not
    1), a fraction, NaN, an infinity, a numeric string (``"3"``) and anything else are errors: nothing is
    coerced. skyrl's checks require ``max_turns >= 1``, its tasks positive steps and limits; 0 or less is
    an error too, never "not given".
    """
    if value is None:
        return None
    n = _integer(value)
    if n is None or n < 1:
        raise RowError(f"{where}: expected an integer >= 1, got {shown(value)}")
    return n


def _integer(value: Any) -> Optional[int]:
    """``value`` as an int when it is a JSON integer (an int, or a float with no fraction), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


def shown(value: Any, limit: int = 200) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters (a row's field may be large)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _name(value: Any, where: str) -> Optional[str]:
    """A name given as a string; missing (None or "") is None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RowError(f"{where}: expected a string, got {shown(value)}")
    return value


def _object_or_empty(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RowError(f"{where}: expected an object, got {shown(value)}")
    return value


def _list(raw: Any, where: str, kind: str) -> list:
    """A list given as JSON text (skyrl's layout), as a list (older rows), or missing (empty); its items
    integers (``kind`` "int", read as ``positive_int`` reads a number, without the bound) or strings ("str"),
    never coerced (``true`` is not 1, ``1`` is not "1")."""
    given = raw
    if isinstance(raw, str):
        try:
            raw = json_loads(raw)
        except json.JSONDecodeError as e:
            raise RowError(f"{where}: is not JSON ({e.msg} at char {e.pos})") from None
    if raw is None:
        return []
    items = [_integer(x) if kind == "int" else x for x in raw] if isinstance(raw, (list, tuple)) else None
    if items is None or not all(isinstance(x, int if kind == "int" else str) for x in items):
        raise RowError(f"{where}: expected a list of {kind} (or its JSON text), got {shown(given)}")
    return items


def _task_metadata(extras: Mapping[str, Any]) -> Mapping[str, Any]:
    """``extra_info.task_metadata`` (an object, or its JSON text: skyrl's Arrow-safe layout); {} when absent or not
    an object (it is skyrl's free-form record, read for two hints only)."""
    info = extras.get("extra_info") if isinstance(extras, Mapping) else None
    metadata = info.get("task_metadata") if isinstance(info, Mapping) else None
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError:
            return {}
    return metadata if isinstance(metadata, Mapping) else {}


def _offer_unknown(extras: Mapping[str, Any]) -> bool:
    """The row's available_tools are the plan's, filled in because its prompt's offer was unknown."""
    return _task_metadata(extras).get("available_tools_source") == "plan"


def _derived_values_found(extras: Mapping[str, Any]) -> bool:
    """``skyrl verify`` recorded ``task_metadata.verification.derived_values_found: true``: every derived value of the
    plan is written in the results of its step's ``depends_on`` steps (copied, not computed), as ``ground_derived``
    reads them. ``ground_derived: "auto"`` grounds such rows only."""
    verification = _task_metadata(extras).get("verification")
    return isinstance(verification, Mapping) and verification.get("derived_values_found") is True


def _grounding_reading(extras: Mapping[str, Any]) -> int:
    """How to read results when grounding (``Plan.grounding_reading``): as skyrl verify read them for the row's
    record (``derived_reading``), so a plan value it found is not refused to the plan's own call; the latest
    reading for a row without one (or of a reading this package does not know)."""
    verification = _task_metadata(extras).get("verification")
    reading = verification.get("derived_reading") if isinstance(verification, Mapping) else None
    return READINGS.index(reading) + 1 if reading in READINGS else LATEST_READING


def _grounding_by_leaves(extras: Mapping[str, Any]) -> bool:
    """Ground with a JSON result read a string or number at a time, unless the row's verification record says what
    its results hold of the derived values (``derived_values_found``) without ``derived_reading: "json-leaves"``:
    skyrl verify read each result's text whole before 2026-12-04, so a plan value it found across a JSON result's
    strings (a whole result copied into a file) would be refused to the plan's own call. A reading this package does
    not know (a later skyrl's) reads by leaves too, as the latest does: it once turned the leaves off."""
    verification = _task_metadata(extras).get("verification")
    if not isinstance(verification, Mapping) or isinstance(verification.get("derived_reading"), str):
        return True
    entries = verification.get("steps")
    stepwise = isinstance(entries, list) and any(
        isinstance(e, Mapping) and isinstance(e.get("derived_values_found"), bool) for e in entries
    )
    return not (stepwise or isinstance(verification.get("derived_values_found"), bool))


def _derived_found_steps(extras: Mapping[str, Any], steps: tuple[Step, ...]) -> Optional[frozenset[int]]:
    """The numbers of the plan's steps with derived params whose entry in ``task_metadata.verification.steps`` says
    ``derived_values_found: true`` (an entry names its step by number and tool: one of another tool, from a plan
    edited since, counts for nothing); None when no entry carries the field (a record written before it existed,
    or no record): then ``_derived_values_found`` alone says, for the whole row."""
    verification = _task_metadata(extras).get("verification")
    entries = verification.get("steps") if isinstance(verification, Mapping) else None
    if not isinstance(entries, list):
        return None
    entries = [e for e in entries if isinstance(e, Mapping) and isinstance(e.get("derived_values_found"), bool)]
    if not entries:
        return None
    found = {(e.get("step"), e.get("tool")) for e in entries if e["derived_values_found"]}
    return frozenset(s.step for s in steps if s.derived_params and (s.step, s.tool) in found)


def _params(raw: Any, at: str) -> dict[str, Any]:
    params = {} if raw is None else json_object(raw, f"{at}.params")
    _json_values_only(params, f"{at}.params")
    infinite = _non_finite_at(params)
    if infinite is not None:
        # No call can send it (a policy's 1e400 is a malformed call): the plan could not match itself. skyrl's
        # plan validation refuses it too (nonFiniteAt in src/skyrl/planValidation.ts).
        path = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in infinite)
        raise RowError(f"{at}.params{path}: a number beyond a double's range (JSON text such as 1e400 reads as "
                       "Infinity), which no call can send")
    return params


def _json_values_only(value: Any, where: str) -> None:
    """``value`` holds JSON values only (what canonical JSON, the match and the cassette key can write): a row's
    object given as such (not as JSON text) may hold a ``datetime`` or a numpy number, which passed construction
    and made ``step`` raise (``TypeError: not a JSON value``) at the first call."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if item is None or isinstance(item, (str, bool, int, float)):
            continue
        if isinstance(item, (list, tuple)):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
        elif isinstance(item, dict) and all(isinstance(k, str) for k in item):
            stack.extend((v, f"{path}.{k}") for k, v in item.items())
        else:
            raise RowError(f"{where}{path}: not a JSON value ({type(item).__name__}): write it as JSON (a string for a "
                           "date, a plain number)")


def _non_finite_at(value: Any) -> Optional[list[Any]]:
    """The path of the first number in ``value`` that is NaN or infinite, or an integer beyond a double's range (JSON
    text 1 followed by 400 zeros: JavaScript reads it as Infinity, and canonical JSON cannot write it), or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            return []
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else []
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for key, v in items:
        below = _non_finite_at(v)
        if below is not None:
            return [key, *below]
    return None


def _json_int(text: str) -> int | float:
    """An integer of JSON text; one of more than 400 digits, beyond any double, as infinity (as JavaScript reads it):
    Python refuses to read one of more than 4300 digits (a bare ValueError), and the checks of what it reads name the
    infinite ones."""
    return float("-inf" if text.startswith("-") else "inf") if len(text) > 401 else int(text)


def json_loads(text: str) -> Any:
    """JSON text as ``json.loads`` reads it, but integers beyond a double's range read as infinity (``_json_int``)."""
    return json.loads(text, parse_int=_json_int)


def json_object(raw: Any, where: str, error: type[ValueError] = RowError) -> dict[str, Any]:
    """An object given as such or as JSON text (skyrl's Arrow-safe layout); ``error`` naming ``where`` otherwise."""
    if isinstance(raw, str):
        try:
            raw = json_loads(raw)
        except json.JSONDecodeError as e:
            raise error(f"{where}: is not JSON ({e.msg} at char {e.pos})") from None
    if not isinstance(raw, Mapping):
        raise error(f"{where}: expected a JSON object, got {type(raw).__name__}")
    return dict(raw)


def _available_tools(raw: Any, where: str) -> Optional[dict[str, tuple[str, str]]]:
    if raw is None or (isinstance(raw, (list, tuple)) and len(raw) == 0):
        return None
    if not isinstance(raw, (list, tuple)):
        raise RowError(f"{where}: available_tools: expected a list of tools, got {shown(raw)}")
    tools: dict[str, tuple[str, str]] = {}
    for i, t in enumerate(raw):
        at = f"{where}: available_tools[{i}]"
        if not isinstance(t, Mapping) or not t.get("server") or not t.get("tool"):
            raise RowError(f"{at}: needs server and tool")
        for key in ("server", "tool"):
            if not isinstance(t[key], str):
                raise RowError(f"{at}.{key}: expected a string, got {shown(t[key])}")
            _hashable_name(t[key], f"{at}.{key}")
        name = _name(t.get("call_name"), f"{at}.call_name") or t["tool"]
        if tools.get(name, (t["server"], t["tool"])) != (t["server"], t["tool"]):
            raise RowError(f"{at}: call name {shown(name)} is also another tool's ({'/'.join(tools[name])}): give each "
                           "tool a call name of its own")
        tools[name] = (t["server"], t["tool"])
    return tools


def _hashable_name(name: str, where: str) -> None:
    """A server or tool name is a field of the cassette key, hashed as UTF-8: a lone surrogate (JSON text
    ``"\\ud800"`` reads as one) has none, and made ``step`` raise UnicodeEncodeError at the first call."""
    bad = next((i for i, ch in enumerate(name) if 0xD800 <= ord(ch) <= 0xDFFF), None)
    if bad is not None:
        raise RowError(
            f"{where}: holds a lone surrogate (U+{ord(name[bad]):04X} at character {bad}): no Unicode text, so no "
            "UTF-8 for the cassette key"
        )


def _schemas(raw: Any, where: str, own: Collection[str]) -> dict[str, Any]:
    """call name -> input schema; each a JSON object (a schema of another type was dropped, unchecked: the
    derived params of its steps were then matched by presence only), valid against its draft's meta-schema
    (``metaschema.fault``: until 2026-12-05 the scorer checked nothing of one that was not, and any arguments passed),
    whose ``$ref``s a validator can follow (``refs.schema_fault``: none into the schema at nothing, no loop that enters
    no property or item), as skyrl's plan validation has it (until 2026-12-05 such a schema took any value once a
    call reached its ``$ref``)."""
    schemas = json_object(raw, f"{where}: tool_schemas") if raw else {}
    # A null for a name this row does not call: another row's tool (Arrow fills the keys an object column's other
    # rows have with nulls). For one of the row's own tools it is refused below: its derived params would go
    # unchecked.
    schemas = {name: schema for name, schema in schemas.items() if schema is not None or name in own}
    for name, schema in schemas.items():
        if not isinstance(schema, Mapping):
            raise RowError(f"{where}: tool_schemas.{name}: expected a JSON Schema object, got {shown(schema)}")
        _json_values_only(schema, f"{where}: tool_schemas.{name}")
        fault = _schema_fault(schema)
        if fault is not None:
            raise RowError(f"{where}: tool_schemas.{name}: {fault} (skyrl refuses such a tool schema, and skyrl "
                           "validate flags it): fix the schema")
    return dict(schemas)


def _schema_fault(schema: Mapping[str, Any]) -> Optional[str]:
    """``metaschema.fault``, then ``refs.schema_fault`` (which reads a valid schema only: ``"$id": 5`` made its walk
    raise AttributeError) of the schema, kept by its text (an env is made for every episode, and rows of one offer share
    their schemas): 6 us a schema of rows_v2.jsonl, where walking it took 50 us."""
    return _fault_of_text(json.dumps(schema, separators=(",", ":")))


@functools.lru_cache(maxsize=1024)
def _fault_of_text(text: str) -> Optional[str]:
    schema = json.loads(text)
    return metaschema.fault(schema) or schema_fault(schema)
