"""The assignment of calls to plan steps matches the most steps a valid assignment can: against a
brute-force reference (every assignment of tiny plans), and on cases where the incremental matcher alone
matched fewer.

An assignment is valid when each call holds at most one step, and only a step it fits (name and params,
``step_matches``); every ``depends_on`` of a matched step is matched by a call made before it (an earlier
turn, or an earlier call with ``dependencies_across_turns=False``); and identical calls (name, canonical
arguments) hold at most as many steps as the plan makes that very call (at least one).
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest
from conftest import call, episode, make_row

from skyrl_mcp_env.canonical import canonical_json
from skyrl_mcp_env.plan import Plan, Step
from skyrl_mcp_env.reward import (
    SEARCH_NODES,
    CallRecord,
    Evidence,
    _Matcher,
    _match_calls,
    _same_params,
    step_matches,
)

FINAL = "Here is the answer."

TOOLS = {"a": ("s", "a"), "b": ("s", "b")}


def plan_of(*steps: tuple) -> Plan:
    """Steps as (tool, params, depends_on, derived_params), numbered 1..n."""
    numbered = enumerate(steps, start=1)
    made = tuple(Step(k, "s", t, t, params, tuple(deps), tuple(derived)) for k, (t, params, deps, derived) in numbered)
    return Plan("t", made, None, None, None, None, TOOLS, False)


def before(calls, across: bool):
    return (lambda j, i: calls[j].turn < calls[i].turn) if across else (lambda j, i: j < i)


def ungrounded(plan: Plan, calls, step: Step, i: int, assignment: dict[int, int]) -> bool:
    """``ground_derived``: a derived value of call ``i`` for ``step`` that no ok result of an earlier turn of the
    calls holding the step's ``depends_on`` (of any call, for a step without one) holds, or that holds nothing
    to find (no string with a letter or digit, no number) where the plan's value does."""
    sources = [assignment[d] for d in step.depends_on if d in assignment] if step.depends_on else range(len(calls))
    texts = [calls[j].result for j in sources if calls[j].result and calls[j].turn < calls[i].turn]

    def something(v):
        return any(c.isalnum() or c == "_" for c in v) if isinstance(v, str) else (isinstance(v, (int, float)) and not isinstance(v, bool)) or (
            isinstance(v, (list, dict)) and any(map(something, v.values() if isinstance(v, dict) else v))
        )

    values = [((calls[i].arguments or {})[p], step.params.get(p)) for p in step.derived_params]
    return not all(Evidence(texts).holds(v) and (something(v) or not something(plan)) for v, plan in values)


def violations(plan: Plan, calls, across: bool, assignment: dict[int, int], ground: bool = False) -> list[str]:
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
        elif ground and ungrounded(plan, calls, s, i, assignment):
            found.append(f"step {n}: a derived value of call {i} is in no result of its dependencies")
    texts = Counter(canonical_json([calls[i].name, calls[i].arguments or {}]) for i in assignment.values())
    for i in set(assignment.values()):
        c = calls[i]
        planned = sum(1 for s in plan.steps if s.call_name == c.name and _same_params(plan, s, c.arguments or {}))
        if texts[canonical_json([c.name, c.arguments or {}])] > max(1, planned):
            found.append(f"call {i} repeated past the plan's count")
    return found


def most_steps(plan: Plan, calls, across: bool, ground: bool = False) -> int:
    """The largest valid assignment, by trying them all (each step: unmatched or any call that fits it)."""
    fits = [
        [i for i, c in enumerate(calls) if c.name == s.call_name and step_matches(plan, s, c.arguments)]
        for s in plan.steps
    ]
    best = 0

    def walk(k: int, assignment: dict[int, int]) -> None:
        nonlocal best
        if k == len(plan.steps):
            if len(assignment) > best and not violations(plan, calls, across, assignment, ground):
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
    earlier steps, now and then on a later or missing one) and 0-7 calls over 1-8 turns, each with an ok
    result naming a value of x or none (an error)."""
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
        result = f"x={rng.randint(0, 3)}" if rng.random() < 0.7 else None
        calls.append(CallRecord(turn, rng.choice("ab"), {"x": rng.randint(0, 3)}, "s", result=result))
    return plan_of(*steps), tuple(calls), rng.random() < 0.7


def matcher_of(plan: Plan, calls, across: bool, ground: bool = False) -> _Matcher:
    matcher = _Matcher(plan, calls, across, ground)
    for i in range(len(calls)):
        matcher.add(i)
    return matcher


RANDOM_CASES = 3000


@pytest.mark.parametrize("ground", [False, True])
def test_random_assignments_are_valid_and_match_as_many_steps_as_the_reference(ground):
    rng = random.Random(20261201)
    short = 0  # cases where the incremental assignment alone matches fewer steps (the search finds more)
    for _ in range(RANDOM_CASES):
        plan, calls, across = random_case(rng)
        matcher = matcher_of(plan, calls, across, ground)
        incremental, assignment = matcher.matched, matcher.maximum()
        assert matcher.exhaustive
        assert violations(plan, calls, across, incremental, ground) == [], (plan, calls, across, incremental)
        assert violations(plan, calls, across, assignment, ground) == [], (plan, calls, across, assignment)
        if len(assignment) == len(incremental):
            assert assignment == incremental  # the incremental assignment is kept where it is already the largest
        short += len(incremental) < len(assignment)
        parts = _match_calls(plan, calls, across, len(calls), ground)
        assert parts["matched_steps"] == sorted(assignment)
        assert parts["steps_matched"] == most_steps(plan, calls, across, ground), (plan, calls, across)
        assert parts["unmatched_calls"] == len(calls) - len(assignment)
    assert short >= 2  # the cases are not all easy: before the search, these matched fewer steps than possible


# two searches (any query) and a quote after the second one. The first search in turn 1 took step 1 (first
# in plan order); the second search and the quote, sent together in turn 2, then found step 2 held by a call
# of the same turn: 2 steps, whereas the first search as step 2 and the second as step 1 match all three.
SEARCHES_THEN_QUOTE = make_row(
    [
        {"server": "s", "tool": "search", "params": {"query": "Palantir"}, "derived_params": ["query"]},
        {"server": "s", "tool": "search", "params": {"query": "PLTR"}, "derived_params": ["query"]},
        {"server": "s", "tool": "quote", "params": {"symbol": "PLTR"}, "depends_on": [2], "derived_params": ["symbol"]},
    ]
)


@pytest.mark.parametrize("second_turn", [("search", "quote"), ("quote", "search")])
def test_calls_sent_together_match_every_step_in_either_order(second_turn):
    # before: 2 of 3 steps (reward 4/9) when the search came first in turn 2, 3 when the quote did
    calls = {"search": call("search", {"query": "Microsoft"}), "quote": call("quote", {"symbol": "PLTR"})}
    first = call("search", {"query": "Palantir"})
    out = episode(SEARCHES_THEN_QUOTE, [first, "".join(calls[c] for c in second_turn), FINAL])
    meta = out["metadata"]
    assert meta["matched_steps"] == [1, 2, 3] and meta["unmatched_calls"] == meta["order_violations"] == 0
    assert out["reward"] == 1.0


# a step of t with any x, then t(x=2) after it
ANY_THEN_TWO = make_row(
    [
        {"server": "s", "tool": "t", "params": {"x": 1}, "derived_params": ["x"]},
        {"server": "s", "tool": "t", "params": {"x": 2}, "depends_on": [1]},
    ],
    max_turns=5,
)


def test_a_call_repeated_later_matches_the_step_it_could_not_take_before():
    # t(x=2) in turn 1 can only take step 1; t(x=0) in turn 2 fits step 1 only; t(x=2) in turn 3 fits step 2.
    # Before: the first t(x=2) kept step 1, t(x=0) matched nothing and the second t(x=2) was refused as a
    # repeat (the plan makes t(x=2) once): 1 step, reward 1/6. Now t(x=0) is step 1 and the second t(x=2)
    # step 2; the first t(x=2) matches nothing, so t(x=2) still holds one step only.
    calls = [call("t", {"x": 2}), call("t", {"x": 0}), call("t", {"x": 2})]
    out = episode(ANY_THEN_TWO, calls + [FINAL])
    meta = out["metadata"]
    assert meta["matched_steps"] == [1, 2] and meta["unmatched_calls"] == 1 and meta["repeated_calls"] == 0
    assert out["reward"] == pytest.approx(2 / 3)
    repeated = episode(ANY_THEN_TWO, [call("t", {"x": 2}), call("t", {"x": 2}), FINAL])["metadata"]
    assert repeated["matched_steps"] == [1] and repeated["repeated_calls"] == 1  # still earns nothing twice


def test_a_pathological_trajectory_is_scored_within_the_node_budget():
    # 8 steps of a (any x), then b after all eight; 7 calls of a in turn 1, 200 more of a with b in turn 2.
    # b cannot match (eight steps of a need eight calls before turn 2), which the search can only learn by
    # trying the ways to give 8 of 207 calls to the 8 steps: it stops at its budget with the incremental
    # assignment (8 steps), in 0.06-0.2 s here.
    plan = plan_of(*[("a", {"x": 0}, [], ["x"])] * 8, ("b", {"x": 0}, list(range(1, 9)), ["x"]))
    calls = tuple(
        [CallRecord(1, "a", {"x": k}, "s") for k in range(7)]
        + [CallRecord(2, "a", {"x": 100 + k}, "s") for k in range(200)]
        + [CallRecord(2, "b", {"x": 0}, "s")]
    )
    matcher = matcher_of(plan, calls, True)
    started = time.perf_counter()
    assignment = matcher.maximum()
    took = time.perf_counter() - started
    assert not matcher.exhaustive and sorted(assignment) == list(range(1, 9))
    assert violations(plan, calls, True, assignment) == []
    assert took < 5.0, f"{took:.2f} s for {SEARCH_NODES} nodes"
    started = time.perf_counter()
    parts = _match_calls(plan, calls, True, len(calls))
    assert parts["steps_matched"] == 8 and time.perf_counter() - started < 10.0


def test_past_the_budget_the_best_assignment_found_is_kept():
    # with a budget of a few nodes the search cannot finish, yet keeps what it found and never goes below
    # the incremental assignment
    plan = plan_of(("a", {"x": 1}, [], ["x"]), ("a", {"x": 2}, [1], []))
    calls = (CallRecord(1, "a", {"x": 2}, "s"), CallRecord(2, "a", {"x": 0}, "s"), CallRecord(3, "a", {"x": 2}, "s"))
    assert len(matcher_of(plan, calls, True).matched) == 1
    found, complete = [], []
    for budget in range(1, 12):
        matcher = matcher_of(plan, calls, True)
        found.append(len(matcher.maximum(budget)))
        complete.append(matcher.exhaustive)
    assert found[0] == 1 and not complete[0] and complete[-1]
    assert found == sorted(found) and found[-1] == 2
