"""The assignment of calls to plan steps against a brute-force reference (every assignment of tiny plans).

An assignment is valid when each call holds at most one step, and only a step it fits (name and params,
``step_matches``); every ``depends_on`` of a matched step is matched by a call made before it (an earlier
turn, or an earlier call with ``dependencies_across_turns=False``); and identical calls (name, canonical
arguments) hold at most as many steps as the plan makes that very call (at least one).
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from skyrl_mcp_env.canonical import canonical_json
from skyrl_mcp_env.plan import Plan, Step
from skyrl_mcp_env.reward import CallRecord, _Matcher, _match_calls, _same_params, step_matches

TOOLS = {"a": ("s", "a"), "b": ("s", "b")}


def plan_of(*steps: tuple) -> Plan:
    """Steps as (tool, params, depends_on, derived_params), numbered 1..n."""
    numbered = enumerate(steps, start=1)
    made = tuple(Step(k, "s", t, t, params, tuple(deps), tuple(derived)) for k, (t, params, deps, derived) in numbered)
    return Plan("t", made, None, None, None, None, TOOLS, False)


def before(calls, across: bool):
    return (lambda j, i: calls[j].turn < calls[i].turn) if across else (lambda j, i: j < i)


def violations(plan: Plan, calls, across: bool, assignment: dict[int, int]) -> list[str]:
    """What makes ``assignment`` (step number -> call index) invalid; empty when it is valid."""
    steps = {s.step: s for s in plan.steps}
    first = before(calls, across)
    found = []
    if len(set(assignment.values())) != len(assignment):
        found.append("a call holds two steps")
    for n, i in assignment.items():
        s, c = steps.get(n), calls[i]
        if s is None or c.error is not None or c.name != s.call_name or not step_matches(plan, s, c.arguments or {}):
            found.append(f"call {i} does not fit step {n}")
        elif not all(d in assignment and first(assignment[d], i) for d in s.depends_on):
            found.append(f"step {n}: a dependency is not matched before call {i}")
    texts = Counter(canonical_json([calls[i].name, calls[i].arguments or {}]) for i in assignment.values())
    for i in set(assignment.values()):
        c = calls[i]
        planned = sum(1 for s in plan.steps if s.call_name == c.name and _same_params(plan, s, c.arguments or {}))
        if texts[canonical_json([c.name, c.arguments or {}])] > max(1, planned):
            found.append(f"call {i} repeated past the plan's count")
    return found


def most_steps(plan: Plan, calls, across: bool) -> int:
    """The largest valid assignment, by trying them all (each step: unmatched or any call that fits it)."""
    fits = [
        [i for i, c in enumerate(calls) if c.name == s.call_name and step_matches(plan, s, c.arguments)]
        for s in plan.steps
    ]
    best = 0

    def walk(k: int, assignment: dict[int, int]) -> None:
        nonlocal best
        if k == len(plan.steps):
            if len(assignment) > best and not violations(plan, calls, across, assignment):
                best = len(assignment)
            return
        walk(k + 1, assignment)
        for i in fits[k]:
            if i not in assignment.values():
                walk(k + 1, {**assignment, plan.steps[k].step: i})

    walk(0, {})
    return best


def random_case(rng: random.Random) -> tuple[Plan, tuple[CallRecord, ...], bool]:
    """A plan of 1-5 steps over tools a and b (param x in 0..3, derived or literal, random depends_on on
    earlier steps, now and then on a later or missing one) and 0-7 calls over 1-8 turns."""
    steps = []
    n = rng.randint(1, 5)
    for k in range(1, n + 1):
        deps = [d for d in range(1, k) if rng.random() < 0.45]
        if rng.random() < 0.03:
            deps.append(rng.randint(k, n + 1))  # a later step, itself, or a step the plan lacks
        derived = ["x"] if rng.random() < 0.4 else []
        steps.append((rng.choice("ab"), {"x": rng.randint(0, 3)}, deps, derived))
    calls, turn = [], 1
    for _ in range(rng.randint(0, 7)):
        turn += rng.random() < 0.5
        calls.append(CallRecord(turn, rng.choice("ab"), {"x": rng.randint(0, 3)}, "s"))
    return plan_of(*steps), tuple(calls), rng.random() < 0.7


def assignment_of(plan: Plan, calls, across: bool) -> dict[int, int]:
    matcher = _Matcher(plan, calls, across)
    for i in range(len(calls)):
        matcher.add(i)
    return matcher.matched


RANDOM_CASES = 3000


def test_random_assignments_are_valid_and_never_above_the_reference():
    rng = random.Random(20261201)
    for _ in range(RANDOM_CASES):
        plan, calls, across = random_case(rng)
        assignment = assignment_of(plan, calls, across)
        assert violations(plan, calls, across, assignment) == [], (plan, calls, across, assignment)
        parts = _match_calls(plan, calls, across, len(calls))
        assert parts["matched_steps"] == sorted(assignment)
        assert parts["steps_matched"] <= most_steps(plan, calls, across)
