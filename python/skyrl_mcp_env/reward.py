"""The scorer: a pure function of a row's plan and the calls a trajectory made (reward.md).

A call matches a plan step when its name is the step's call name, its literal params equal the plan's
after canonical JSON (a param one side omits may be absent or equal to the schema default), its
derived params are present (and the arguments valid against the tool's input schema when the row
carries it), and every step in ``depends_on`` matched in an earlier turn (a call cannot use a result
it has not seen: calls of one turn are sent together; ``dependencies_across_turns=False`` accepts an
earlier call of the same turn). A call matches at most one step.

    recall     = steps matched / plan steps
    precision  = steps matched / calls made (malformed, unknown, repeated and unmatched calls included)
    completion = 1 when the episode ended with a final answer within the limits, else 0.5
    reward     = recall * precision * completion, and 0 when ``success.must_call_tool`` was never called

Strict mode returns 0 unless every step matched (for SkyRL's pass_at_n, which counts any positive
final reward as a pass). No clock, no network, no tool results: the same calls give the same reward.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Optional

import jsonschema

from .canonical import canonical_json
from .plan import Plan, Step

_MISSING = object()
INCOMPLETE_FACTOR = 0.5


@dataclass(frozen=True)
class CallRecord:
    """One call as the env saw it. ``error`` is set for calls that name no offered tool or do not parse."""

    turn: int
    name: Optional[str] = None
    arguments: Optional[dict[str, Any]] = None
    server: Optional[str] = None
    error: Optional[str] = None


@dataclass(frozen=True)
class Trajectory:
    calls: tuple[CallRecord, ...]
    final_answer: Optional[str]  # text of the turn without a call; None if the episode ended otherwise
    ended_by: Optional[str]  # "final_answer" | "max_turns" | "limit:max_tools" | "limit:max_servers" | None


def limit_breach(plan: Plan, calls: tuple[CallRecord, ...] | list[CallRecord]) -> Optional[str]:
    """The limit these calls exceed (distinct tools, distinct servers), or None."""
    ok = [c for c in calls if c.error is None]
    if plan.max_tools is not None and len({c.name for c in ok}) > plan.max_tools:
        return "limit:max_tools"
    if plan.max_servers is not None and len({c.server for c in ok}) > plan.max_servers:
        return "limit:max_servers"
    return None


def score(
    plan: Plan, trajectory: Trajectory, strict: bool = False, dependencies_across_turns: bool = True
) -> dict[str, Any]:
    """The reward and its parts (all JSON-friendly), for the step metadata."""
    parts = _match_calls(plan, trajectory.calls, dependencies_across_turns)
    n_calls, n_matched = len(trajectory.calls), parts["steps_matched"]
    breach = limit_breach(plan, trajectory.calls) or (
        trajectory.ended_by if trajectory.ended_by == "max_turns" else None
    )
    final = bool(trajectory.final_answer and trajectory.final_answer.strip())
    recall = n_matched / len(plan.steps)
    precision = n_matched / n_calls if n_calls else 0.0
    completion = 1.0 if final and breach is None else INCOMPLETE_FACTOR
    must = plan.must_call_tool is None or any(
        c.error is None and c.name == plan.must_call_tool for c in trajectory.calls
    )
    reward = recall * precision * completion if must else 0.0
    if strict and n_matched < len(plan.steps):
        reward = 0.0
    return {
        **parts,
        "steps_total": len(plan.steps),
        "calls": n_calls,
        "recall": recall,
        "precision": precision,
        "must_call_tool_called": must,
        "final_answer": final,
        "limit_exceeded": breach,
        "completion": completion,
        "strict": strict,
        "reward": reward,
    }


def _match_calls(plan: Plan, calls: tuple[CallRecord, ...], across_turns: bool) -> dict[str, Any]:
    matched: dict[int, int] = {}  # step number -> index of the call that matched it
    seen: set[str] = set()
    counts = {"invalid_calls": 0, "unmatched_calls": 0, "repeated_calls": 0, "order_violations": 0}
    for i, call in enumerate(calls):
        if call.error is not None:
            counts["invalid_calls"] += 1
            continue
        text = canonical_json([call.name, call.arguments])
        ready = _matched_before(matched, calls, call.turn) if across_turns else set(matched)
        step = _first_match(plan, call, ready, matched)
        if step is not None:
            matched[step.step] = i
        else:
            counts["unmatched_calls"] += 1
            counts["repeated_calls"] += text in seen
            counts["order_violations"] += _first_match(plan, call, None, matched) is not None
        seen.add(text)
    return {**counts, "steps_matched": len(matched), "matched_steps": sorted(matched)}


def _matched_before(matched: dict[int, int], calls: tuple[CallRecord, ...], turn: int) -> set[int]:
    """Steps matched in an earlier turn: only their results can have informed a call of this turn."""
    return {step for step, i in matched.items() if calls[i].turn < turn}


def _first_match(plan: Plan, call: CallRecord, ready: Optional[set[int]], matched: dict[int, int]) -> Optional[Step]:
    """The first unmatched step this call matches; with ``ready``, only steps whose depends_on are all in it."""
    for step in plan.steps:
        if step.step in matched or step.call_name != call.name:
            continue
        if ready is not None and any(d not in ready for d in step.depends_on):
            continue
        if step_matches(plan, step, call.arguments or {}):
            return step
    return None


def step_matches(plan: Plan, step: Step, arguments: dict[str, Any]) -> bool:
    """Literal params equal (canonical JSON, schema defaults for omitted ones), derived params present and valid."""
    schema = plan.schemas.get(step.call_name)
    defaults = _defaults(schema)
    for key in (set(step.params) | set(arguments)) - set(step.derived_params):
        if _effective(step.params, key, defaults) != _effective(arguments, key, defaults):
            return False
    if any(p not in arguments for p in step.derived_params):
        return False
    return schema is None or _is_valid(schema, arguments)


def _defaults(schema: Optional[dict[str, Any]]) -> dict[str, Any]:
    props = (schema or {}).get("properties")
    if not isinstance(props, dict):
        return {}
    return {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}


def _effective(params: dict[str, Any], key: str, defaults: dict[str, Any]) -> Any:
    if key in params:
        return canonical_json(params[key])
    return canonical_json(defaults[key]) if key in defaults else _MISSING


def _is_valid(schema: dict[str, Any], arguments: dict[str, Any]) -> bool:
    validator = _validator(canonical_json(schema))
    return validator is None or validator.is_valid(arguments)


@functools.lru_cache(maxsize=512)
def _validator(schema_text: str) -> Any:
    """A JSON Schema validator (formats checked), or None for a schema jsonschema cannot use."""
    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError:
        return None
    return cls(schema, format_checker=cls.FORMAT_CHECKER)
