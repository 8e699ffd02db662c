"""The scorer: a pure function of a row's plan and the calls a trajectory made (reward.md).

A call matches a plan step when its name is the step's call name, its literal params equal the plan's
after canonical JSON (a param one side omits may be absent or equal to the schema default), its
derived params are present (and the arguments valid against the tool's input schema when the row
carries it), and every step in ``depends_on`` matched in an earlier turn (a call cannot use a result
it has not seen: calls of one turn are sent together; ``dependencies_across_turns=False`` accepts an
earlier call of the same turn). A call matches at most one step. Calls with the same name and canonical
arguments (a param equal to its schema default counts as left out) match at most as many steps as the plan
makes that very call (at least one): a repeat earns nothing twice, also where it fits a step whose params
are derived. Under these rules the calls match as
many steps as any assignment of them can (``_Matcher``): a call that fits several steps takes the one whose
literal params it matches most specifically (then the first in plan order), a later call that fits only
taken steps may move an earlier call to another step it fits (an augmenting path) when every
``depends_on`` stays satisfied, and an exact search then gives the calls a larger assignment where one
exists (within a node budget that only a pathological trajectory reaches: many calls that fit many
steps). Calls that fit each other's steps match as many steps in any order. The call that exceeds
``limits`` (``max_tools`` distinct tools, ``max_servers``) is refused, not run: it and any later call match
nothing and count as invalid calls.

    recall     = steps matched / plan steps
    precision  = steps matched / calls made (malformed, unknown, repeated and unmatched calls included)
    completion = 1 when the episode ended with a final answer within the limits, else 0.5
    off_plan   = 1 - off_plan_penalty * (off-plan tools called / off-plan tools offered): an off-plan tool
                 is one the row offers and no plan step calls; 1 when the row offers none
    reward     = recall * precision * completion * off_plan, and 0 when ``success.must_call_tool`` was never
                 called (a call refused by a limit was not called)

``off_plan`` keeps reward.md's property 3 (calling every tool of the prompt scores at most half the plan)
whatever the row's ``limits``: precision alone let a plan of 2 tools plus the 1 other tool offered score 0.667
under limits that allowed 3 tools. It counts distinct tools, so one extra lookup among many offered tools
costs little (1 of 22: 0.5/22), and calling them all costs ``off_plan_penalty`` (0.5) of the reward.

Strict mode returns 0 unless every step matched and the episode ended with a final answer within the limits
and ``max_turns`` (for SkyRL's pass_at_n, which counts any positive final reward as a pass; ``strict_finish=False``
drops the second condition). With ``ground_derived`` a derived param matches only with a value an ok result of an
earlier turn holds (``Evidence``), a result of the calls that matched the step's ``depends_on`` (of any
earlier call for a step that has none); those results are part of the trajectory (``CallRecord.result``). No clock,
no network: the same calls (and results) give the same reward.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import re
import sys
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterator, Optional, Union

import jsonschema

from . import formats, metaschema, patterns, refs
from .canonical import canonical_json
from .plan import LATEST_READING, Plan, Step
from .unique import with_fast_unique_items

_MISSING = object()
_DONE = object()
INCOMPLETE_FACTOR = 0.5
OFF_PLAN_PENALTY = 0.5  # the share of the reward that calling every off-plan tool the row offers costs
# strict mode also needs this precision (matched steps / calls): at most as many calls off the plan as on it
STRICT_MIN_PRECISION = 0.5
SEARCH_NODES = 20_000  # the node budget of the exact assignment search (_Matcher.maximum)

Grounding = Union[bool, Collection[int]]  # ground_derived as the scorer takes it: every step, none, or step numbers


@dataclass(frozen=True)
class CallRecord:
    """One call as the env saw it. ``error`` is set for calls that name no offered tool or do not parse."""

    turn: int
    name: Optional[str] = None
    arguments: Optional[dict[str, Any]] = None
    server: Optional[str] = None
    error: Optional[str] = None
    result: Optional[str] = None  # the text of an ok result, as the policy saw it (``ground_derived`` reads it)


@dataclass(frozen=True)
class Trajectory:
    calls: tuple[CallRecord, ...]
    final_answer: Optional[str]  # text of the turn without a call; None if the episode ended otherwise
    ended_by: Optional[str]  # "final_answer" | "max_turns" | "limit:max_tools" | "limit:max_servers" | None


def limit_breach(plan: Plan, calls: tuple[CallRecord, ...] | list[CallRecord]) -> Optional[str]:
    """The limit these calls exceed (distinct tools, distinct servers), or None."""
    return _breach(plan, calls)[1]


def _breach(plan: Plan, calls: tuple[CallRecord, ...] | list[CallRecord]) -> tuple[int, Optional[str]]:
    """The index of the first call that exceeds a limit and which limit, or (len(calls), None)."""
    tools: set[Optional[str]] = set()
    servers: set[Optional[str]] = set()
    for i, c in enumerate(calls):
        if c.error is not None:
            continue
        tools.add(c.name)
        servers.add(c.server)
        if plan.max_tools is not None and len(tools) > plan.max_tools:
            return i, "limit:max_tools"
        if plan.max_servers is not None and len(servers) > plan.max_servers:
            return i, "limit:max_servers"
    return len(calls), None


def score(
    plan: Plan,
    trajectory: Trajectory,
    strict: bool = False,
    dependencies_across_turns: bool = True,
    ground_derived: Grounding = False,
    strict_finish: bool = True,
    pattern_guard: bool = True,
    off_plan_penalty: float = OFF_PLAN_PENALTY,
    strict_min_precision: float = STRICT_MIN_PRECISION,
) -> dict[str, Any]:
    """The reward and its parts (all JSON-friendly), for the step metadata. ``ground_derived``: a derived
    param matches only with a value the results of its ``depends_on`` calls hold (``_Matcher._grounded``), on
    every step (True), on none (False), or on the steps whose numbers it holds; ``grounded_steps`` in the parts
    lists the steps with derived params where it applied.
    ``strict``: 0 unless every step matched and, with ``strict_finish``, the episode ended with a final answer
    within the limits and ``max_turns`` (completion 1), and its precision is at least ``strict_min_precision`` (a
    spray of calls that holds the plan's is no solution: 32 calls for 3 steps kept 0.094, which SkyRL's
    pass_at_n counted as a pass). ``pattern_guard``: schema regexes run on the policy's
    strings without backtracking (``_is_valid``). ``off_plan_penalty``: what calling every off-plan tool costs
    (``off_plan_tools``; 0: precision alone, as before)."""
    refused_from, limit = _breach(plan, trajectory.calls)
    off_called, off_offered = off_plan_tools(plan, trajectory.calls[:refused_from])
    off_plan = 1.0 - off_plan_penalty * off_called / off_offered if off_offered else 1.0
    parts = _match_calls(plan, trajectory.calls, dependencies_across_turns, refused_from, ground_derived, pattern_guard)
    n_calls, n_matched = len(trajectory.calls), parts["steps_matched"]
    breach = limit or (trajectory.ended_by if trajectory.ended_by == "max_turns" else None)
    final = bool(trajectory.final_answer and trajectory.final_answer.strip())
    recall = n_matched / len(plan.steps)
    precision = n_matched / n_calls if n_calls else 0.0
    completion = 1.0 if final and breach is None else INCOMPLETE_FACTOR
    must = plan.must_call_tool is None or any(
        c.error is None and c.name == plan.must_call_tool for c in trajectory.calls[:refused_from]
    )
    reward = recall * precision * completion * off_plan if must else 0.0
    if strict and (
        n_matched < len(plan.steps) or (strict_finish and completion < 1.0) or precision < strict_min_precision
    ):
        reward = 0.0
    return {
        **parts,
        "grounded_steps": sorted(grounded_steps(plan, ground_derived)),
        "steps_total": len(plan.steps),
        "calls": n_calls,
        "recall": recall,
        "precision": precision,
        "must_call_tool_called": must,
        "final_answer": final,
        "limit_exceeded": breach,
        "completion": completion,
        "off_plan_tools_called": off_called,
        "off_plan_tools_offered": off_offered,
        "off_plan_factor": off_plan,
        "strict": strict,
        "strict_finish": strict_finish,
        "strict_min_precision": strict_min_precision,
        "reward": reward,
    }


def grounded_steps(plan: Plan, ground_derived: Grounding) -> frozenset[int]:
    """The numbers of the steps with derived params whose derived values ``ground_derived`` holds to the results:
    all of them (True), none (False), or those among the numbers it holds."""
    if ground_derived is True or ground_derived is False:
        return frozenset(s.step for s in plan.steps if s.derived_params) if ground_derived else frozenset()
    chosen = frozenset(ground_derived)
    return frozenset(s.step for s in plan.steps if s.derived_params and s.step in chosen)


def off_plan_tools(plan: Plan, calls: tuple[CallRecord, ...] | list[CallRecord]) -> tuple[int, int]:
    """(distinct off-plan tools the calls ran, off-plan tools the row offers). An off-plan tool is one the row
    offers (``available_tools``) that no plan step calls; a call that is malformed, names no offered tool or
    was refused by a limit ran no tool. A row that does not list its prompt's tools offers none."""
    planned = {s.call_name for s in plan.steps}
    offered = {name for name in plan.tools if name not in planned}
    called = {c.name for c in calls if c.error is None and c.name in offered}
    return len(called), len(offered)


def _match_calls(
    plan: Plan,
    calls: tuple[CallRecord, ...],
    across_turns: bool,
    refused_from: int,
    ground_derived: Grounding = False,
    pattern_guard: bool = True,
) -> dict[str, Any]:
    """Assign calls to steps (the largest assignment, ``_Matcher.maximum``); calls from ``refused_from`` on
    were refused by a limit.

    Diagnostic counts (they do not enter the reward), of that assignment: a call is unmatched when it holds
    no step in it, and a repeat when an earlier call had its name and canonical arguments. Of the unmatched
    calls, one that fits (name and params) a step no call held when it was made did not match because that
    step's ``depends_on`` was not satisfied before it. It is an order violation when one such step has every
    dependency matched by the end of the calls (the dependency came later, in the same turn, or otherwise in
    the wrong order), and a missing-dependency call when each such step has a dependency that no call
    matched (never called, or never called right). With ``ground_derived``, an unmatched call that fits a
    step whose dependencies matched before it, but for a derived value their results do not hold, is an
    ungrounded call.
    """
    matcher = _Matcher(plan, calls, across_turns, ground_derived, pattern_guard)
    seen: set[str] = set()
    counts = {
        "invalid_calls": 0,
        "unmatched_calls": 0,
        "repeated_calls": 0,
        "order_violations": 0,
        "missing_dependency_calls": 0,
        "ungrounded_calls": 0,
    }
    made: list[tuple[int, bool, list[Step]]] = []  # per call added: index, repeat, free steps it was not ready for
    for i, call in enumerate(calls):
        if call.error is not None or i >= refused_from:
            counts["invalid_calls"] += 1
            continue
        text = matcher.identity(i)
        matched = matcher.matched  # a free step it fits and was not ready for: its dependency was missing
        free = [s for s in matcher.fits(i) if s.step not in matched and not matcher._deps_ready(s, i, matched)]
        made.append((i, text in seen, free))
        matcher.add(i)
        seen.add(text)
    matched = matcher.maximum()
    holding = set(matched.values())
    for i, repeat, free in made:
        if i in holding:
            continue
        counts["unmatched_calls"] += 1
        counts["repeated_calls"] += repeat
        counts["ungrounded_calls"] += matcher.ungrounded(i, matched)
        if free:
            in_order = any(all(d in matched for d in s.depends_on) for s in free)
            counts["order_violations" if in_order else "missing_dependency_calls"] += 1
    return {**counts, "steps_matched": len(matched), "matched_steps": sorted(matched)}


class _Matcher:
    """The assignment of calls to steps (step number -> call index), built one call at a time.

    A new call takes the free step it fits most specifically (most literal params compared); when every
    step it fits is taken, it looks for an augmenting path: it takes a step whose call can move to another
    step it fits (recursively), so a call that fits two steps does not keep the one a later call needed;
    when a step it fits waits for an unmatched dependency, an earlier call that fits the dependency may
    move there. A step that a matched step depends on is never taken over, every changed assignment is
    checked against ``depends_on`` before it is kept, and a call is placed only if one more step matches.
    Deterministic (plan order, then call order, breaks ties). This assignment is not always the largest:
    with ``depends_on`` or a repeated call a different earlier choice can, rarely, match more steps (59 of
    20,000 random small cases like those of tests/test_matcher.py). ``maximum`` finds the largest, and the
    scorer reads that one.
    """

    def __init__(
        self,
        plan: Plan,
        calls: tuple[CallRecord, ...],
        across_turns: bool,
        ground: Grounding = False,
        guard: bool = True,
    ):
        self.plan, self.calls, self.across_turns, self.guard = plan, calls, across_turns, guard
        self.grounded = grounded_steps(plan, ground)  # the steps whose derived values must be in the results
        self.ground = bool(self.grounded)
        self.matched: dict[int, int] = {}
        self.exhaustive = True  # False when ``maximum`` stopped at its node budget
        self._fits: dict[int, list[Step]] = {}
        self._callers: dict[int, list[int]] = {}  # step number -> the calls added so far that fit it
        self._added: list[int] = []  # the calls ``add`` was given, in call order
        self._identities: dict[int, str] = {}
        self._evidence: dict[tuple[int, ...], Evidence] = {}

    def fits(self, i: int) -> list[Step]:
        """The steps call ``i`` matches by name and params, whatever their order (cached)."""
        if i not in self._fits:
            name, args = self.calls[i].name, self.calls[i].arguments or {}
            steps = [s for s in self.plan.steps if s.call_name == name]
            self._fits[i] = [s for s in steps if step_matches(self.plan, s, args, self.guard)]
            for s in self._fits[i]:
                self._callers.setdefault(s.step, []).append(i)
        return self._fits[i]

    def ungrounded(self, i: int, matched: dict[int, int]) -> bool:
        """Call ``i`` fits a step whose dependencies ``matched`` holds before it, but for a derived value their
        results do not hold (``ground`` only)."""
        return self.ground and any(
            self._deps_ready(s, i, matched) and not self._grounded(i, s, matched) for s in self.fits(i)
        )

    def _grounded(self, i: int, step: Step, matched: dict[int, int]) -> bool:
        """On a step grounding applies to (``grounded``): each derived value of call ``i`` for ``step`` is in an ok
        result of an earlier turn of the calls ``matched`` gives the step's ``depends_on`` (of any earlier call for
        a step without one)."""
        if step.step not in self.grounded:
            return True
        turn = self.calls[i].turn  # results of earlier turns: a turn's calls are written before any result
        sources = [matched[d] for d in step.depends_on if d in matched] if step.depends_on else range(i)
        read = tuple(j for j in sources if self.calls[j].result and self.calls[j].turn < turn)
        if read not in self._evidence:
            texts = [self.calls[j].result or "" for j in read]
            self._evidence[read] = Evidence(texts, self.plan.grounding_by_leaves, self.plan.grounding_reading)
        args = self.calls[i].arguments or {}
        return all(_grounds(self._evidence[read], args[p], step.params.get(p)) for p in step.derived_params)

    def identity(self, i: int) -> str:
        """Call ``i`` as repeats are told apart: its name and canonical arguments, each param equal to its
        schema default left out (the match reads the two alike, so spelling a default out is no new call), and
        each string without the whitespace around it (``_trimmed``; cached: ``_repeats_allowed`` asks it for
        every matched call at each ``add``)."""
        if i not in self._identities:
            name, args = self.calls[i].name, self.calls[i].arguments or {}
            defaults = _defaults(self.plan.schemas.get(name))
            default = {k: _effective(defaults, k, {}) for k in args if k in defaults}
            kept = {k: v for k, v in args.items() if default.get(k) != canonical_json(v)}
            self._identities[i] = canonical_json([name, _trimmed(kept)])
        return self._identities[i]

    def add(self, i: int) -> bool:
        """Match call ``i`` to a step, moving earlier calls if that is what it takes; False if it cannot, or
        if that would match more copies of one call than the plan makes (``_repeats_allowed``)."""
        self._added.append(i)
        assignment = self._place(i, self.matched, set())
        if assignment is None or not self._repeats_allowed(assignment):
            return False
        self.matched = assignment
        return True

    def maximum(self, budget: int = SEARCH_NODES) -> dict[int, int]:
        """An assignment of the calls added so far that matches the most steps: ``matched`` when no valid
        assignment matches more, else the first one with the most steps that a branch and bound finds.

        Valid means what ``add`` keeps: each call at most one step, and only a step it fits; every step in a
        matched step's ``depends_on`` matched by a call made before it (``_before``); ``_repeats_allowed``.
        The search takes the steps in dependency order (then plan order); each step is left unmatched or
        given an unused call that fits it and comes after its dependencies' calls (``matched``'s call
        first, then call order). A branch stops when the steps matched so far plus the later steps that can
        still match (a step whose dependency was left unmatched cannot) is no more than the best found, which
        starts at ``matched``. Steps that cannot match at all (a dependency on a missing step or a cycle; no
        call that fits them after calls that fit their dependencies) are left out before it starts, and it
        does not start when every step that can match already has. After ``budget`` nodes it stops with the
        best assignment found, never fewer steps than ``matched`` (``exhaustive`` is then False): a turn of
        many calls that fit many steps cannot hold up the episode.
        """
        self.exhaustive = True
        numbers = list(dict.fromkeys(s.step for s in self.plan.steps))
        deps = {  # step number -> its depends_on (of every step with that number, as ``_valid`` reads them)
            n: tuple(dict.fromkeys(d for s in self.plan.steps if s.step == n for d in s.depends_on)) for n in numbers
        }
        order = _dependency_order(numbers, deps)
        fit: dict[int, list[int]] = {n: [] for n in numbers}  # step number -> the calls that fit it, in call order
        for i in self._added:
            for n in dict.fromkeys(s.step for s in self.fits(i)):
                fit[n].append(i)
        possible: dict[int, list[int]] = {}  # step number -> the calls that fit it after a call fitting each dependency
        for n in order:
            earliest = [min(map(self._time, possible[d]), default=None) for d in deps[n]]
            possible[n] = [i for i in fit[n] if all(t is not None and t < self._time(i) for t in earliest)]
        order = [n for n in order if possible[n]]
        best = dict(self.matched)
        if len(best) >= len(order):
            return best
        texts = {i: self.identity(i) for i in self._added}
        allowed = {i: max(1, self._planned(i)) for i in self._added}
        assignment: dict[int, int] = {}
        used: set[int] = set()
        copies: dict[str, int] = {}

        def can_still_match(k: int) -> int:
            """How many steps from ``order[k]`` on may still match: none of their dependencies left unmatched."""
            alive: set[int] = set()
            for n in order[k:]:
                if all(d in assignment or d in alive for d in deps[n]) and any(i not in used for i in possible[n]):
                    alive.add(n)
            return len(alive)

        def choices(k: int) -> Iterator[None]:
            """Step ``order[k]`` given each call it can take in turn (``matched``'s first), then left unmatched;
            each resumption undoes the last choice (a stack of these, not recursion: a long plan is no deep
            call stack)."""
            n = order[k]
            if all(d in assignment for d in deps[n]):
                first = [self.matched[n]] if self.matched.get(n) in possible[n] else []
                for i in first + [i for i in possible[n] if i not in first]:
                    if i in used or copies.get(texts[i], 0) >= allowed[i]:
                        continue
                    if not all(self._before(assignment[d], i) for d in deps[n]):
                        continue
                    if not all(self._grounded(i, s, assignment) for s in self.plan.steps if s.step == n):
                        continue
                    assignment[n] = i
                    used.add(i)
                    copies[texts[i]] = copies.get(texts[i], 0) + 1
                    yield
                    del assignment[n]
                    used.discard(i)
                    copies[texts[i]] -= 1
            yield

        stack: list[Iterator[None]] = []
        for nodes in itertools.count(1):  # each pass visits the node the choices on the stack lead to
            if len(assignment) > len(best):
                best = dict(assignment)
            if nodes > budget:
                self.exhaustive = False
                break
            k = len(stack)
            if k < len(order) and len(assignment) + can_still_match(k) > len(best):
                stack.append(choices(k))
            while stack and next(stack[-1], _DONE) is _DONE:
                stack.pop()
            if not stack:
                break
        return best

    def _repeats_allowed(self, assignment: dict[int, int]) -> bool:
        """Each distinct call (name and canonical arguments) holds at most as many steps as the plan has steps
        that are that call, derived params at the plan's values included, and at least one."""
        copies: dict[str, list[int]] = {}
        for j in assignment.values():
            copies.setdefault(self.identity(j), []).append(j)
        return all(len(js) <= max(1, self._planned(js[0])) for js in copies.values())

    def _planned(self, i: int) -> int:
        """How many steps are call ``i`` exactly as the plan writes them."""
        name, args = self.calls[i].name, self.calls[i].arguments or {}
        return sum(1 for s in self.plan.steps if s.call_name == name and _same_params(self.plan, s, args))

    def _place(self, i: int, matched: dict[int, int], visited: set[int]) -> Optional[dict[int, int]]:
        """``matched`` with call ``i`` placed and one step more, or None: the free step it fits most
        specifically; else a taken step whose call moves to another it fits (an augmenting path); else a
        free step whose missing dependencies earlier calls that fit them move to."""
        fits = [s for s in self.fits(i) if s.step not in visited]
        ready = [s for s in fits if self._ready(s, i, matched)]
        free = [s for s in ready if s.step not in matched]
        if free:
            return {**matched, max(free, key=lambda s: _specificity(s, self.calls[i])).step: i}
        for step in ready:
            visited.add(step.step)
            if not self._depended_on(step, matched):
                rest = {k: v for k, v in matched.items() if k != step.step}
                moved = self._place(matched[step.step], rest, visited)
                if moved is not None and self._valid({**moved, step.step: i}):
                    return {**moved, step.step: i}
        for step in (s for s in fits if s.step not in matched and s not in ready):
            visited.add(step.step)
            unlocked = {**self._unlock(step, i, matched), step.step: i}
            if len(unlocked) > len(matched) and self._valid(unlocked):
                return unlocked
        return None

    def _unlock(self, step: Step, i: int, matched: dict[int, int]) -> dict[int, int]:
        """``matched`` with each unmatched dependency of ``step`` taken by an earlier call that fits it: an
        unmatched call, else one that gives up its step (which no matched step depends on)."""
        result = dict(matched)
        for dep in (s for s in self.plan.steps if s.step in step.depends_on and s.step not in matched):
            held = {j: k for k, j in result.items()}
            callers = self._callers.get(dep.step, [])
            earlier = [j for j in callers if self._before(j, i) and self._ready(dep, j, result)]
            movable = [j for j in earlier if j not in held or not self._depended_on(self._step(held[j]), result)]
            j = next((j for j in movable if j not in held), movable[0] if movable else None)
            if j is not None:
                result.pop(held.get(j), None)
                result[dep.step] = j
        return result

    def _step(self, number: int) -> Step:
        return next(s for s in self.plan.steps if s.step == number)

    def _depended_on(self, step: Step, matched: dict[int, int]) -> bool:
        return any(step.step in s.depends_on for s in self.plan.steps if s.step in matched)

    def _before(self, j: int, i: int) -> bool:
        """Call ``j``'s result can have informed call ``i``."""
        return self._time(j) < self._time(i)

    def _time(self, i: int) -> int:
        """When call ``i`` was made, as ``_before`` compares calls: its turn, or its place among the calls."""
        return self.calls[i].turn if self.across_turns else i

    def _ready(self, step: Step, i: int, matched: dict[int, int]) -> bool:
        return self._deps_ready(step, i, matched) and self._grounded(i, step, matched)

    def _deps_ready(self, step: Step, i: int, matched: dict[int, int]) -> bool:
        return all(d in matched and self._before(matched[d], i) for d in step.depends_on)

    def _valid(self, assignment: dict[int, int]) -> bool:
        return all(self._ready(s, assignment[s.step], assignment) for s in self.plan.steps if s.step in assignment)


def _trimmed(value: Any) -> Any:
    """``value`` with each string (at any depth; keys as they are) stripped of the whitespace around it, for telling
    repeats apart: a derived value need only be held by a result, so ``search("Palantir ")`` after
    ``search("Palantir")`` took the derived second search that the verbatim repeat may not (a result that names
    Palantir holds ``"Palantir "`` as a whole token): 1.0 where the repeat scores 0.25."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return {k: _trimmed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trimmed(v) for v in value]
    return value


def _dependency_order(numbers: list[int], deps: dict[int, tuple[int, ...]]) -> list[int]:
    """The step numbers whose dependencies come first, each as early as it can in plan order; a step that
    depends on itself, on a step the plan lacks, or on a cycle is left out (no assignment can match it)."""
    order: list[int] = []
    placed: set[int] = set()
    waiting = list(numbers)
    while True:
        ready = next((n for n in waiting if all(d in placed for d in deps[n])), None)
        if ready is None:
            return order
        order.append(ready)
        placed.add(ready)
        waiting.remove(ready)


class Evidence:
    """The results a call could read: a derived value is grounded when each string in it (non-empty) occurs
    in one of their texts (as written, or JSON-escaped) and each number equals a number written there
    (``1,234.5``, ``-3`` and ``1e3`` read as numbers); booleans and nulls hold nothing to find. A string
    occurs as a whole token (``_occurs_as_token``). A text that is JSON (``json_leaves``) or a Python repr
    (``python_leaves``), or a line of JSON (``text_pieces``), is read a string or
    number of it at a time for a string with a letter or a digit: it must lie inside one of them, so a stretch
    of the JSON itself (the whole result pasted, or most of it) holds nothing. A string of neither (``","``)
    is looked for in the texts as they are (``_grounds`` decides what it may ground). ``leaves=False`` reads
    every text as it is, as skyrl verify did before 2026-12-04 (``Plan.grounding_by_leaves``); ``reading`` reads
    the texts as one of its later readings did (``Plan.grounding_reading``, ``text_pieces``)."""

    _NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+-]?\d+)?", re.ASCII)

    def __init__(self, texts: list[str], leaves: bool = True, reading: int = LATEST_READING):
        self.texts = texts
        self._plain = [_Reading(t, None) for t in texts]  # for a value with no letter or digit, and leaves=False
        self._read = [_reading(t, reading) for t in texts] if leaves else self._plain
        self._held: dict[str, bool] = {}  # the matcher asks of the same values again and again
        self._keys_only: dict[str, bool] = {}
        self._numbers: Optional[set[float]] = None

    def holds(self, value: Any) -> bool:
        if isinstance(value, dict):
            return all(self.holds(v) for v in value.values())
        if isinstance(value, list):
            return all(self.holds(v) for v in value)
        if isinstance(value, str):
            if not value:
                return True
            if value not in self._held:
                self._held[value] = any(True for _ in self._occurrences(value))
            return self._held[value]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _as_float(value) in self.numbers()
        return True

    def only_as_key(self, value: Any) -> bool:
        """A string in ``value`` occurs in the texts, as a whole token, only in the syntax of the results, the same
        in every result of a tool whatever the task: in the key of an object (quoted, then a colon: ``"symbol": ...``,
        or ``'symbol': ...`` as a Python repr writes it; or a word of one: ``"1. symbol": ...``), or as one of JSON's
        or a repr's literals (``null``, ``true``, ``None``: ``_LITERALS``)."""
        if isinstance(value, dict):
            return any(self.only_as_key(v) for v in value.values())
        if isinstance(value, list):
            return any(self.only_as_key(v) for v in value)
        if not isinstance(value, str) or not value:
            return False
        if value not in self._keys_only:
            found = False
            for reading, i, end in self._occurrences(value):
                if not reading.is_syntax(i, end):
                    found = False
                    break
                found = True
            self._keys_only[value] = found
        return self._keys_only[value]

    def _occurrences(self, value: str) -> Iterator[tuple["_Reading", int, int]]:
        """Where ``value`` occurs as a whole token (as written or JSON-escaped): in a JSON text's strings and numbers
        for a value with a letter or a digit, else in the texts as they are."""
        readings = self._read if _findable(value) else self._plain
        for f in _forms(value):
            for reading in readings:
                t = reading.joined
                i = t.find(f)
                while i >= 0:
                    end = i + len(f)
                    if _token_edge(t, i) and _token_edge(t, end) and reading.within_one(i, end):
                        yield reading, i, end
                    i = t.find(f, i + 1)

    def numbers(self) -> set[float]:
        """Every number the texts write, signed and unsigned (a date's ``-05`` holds 5 as well)."""
        if self._numbers is None:
            found = (m.group().replace(",", "") for r in self._read for m in self._NUMBER.finditer(r.joined))
            self._numbers = {v for n in found for v in (float(n), abs(float(n)))}
        return self._numbers


_SEPARATOR = "\x00"
# The literals of JSON (Python's json.dumps writes NaN and Infinity) and of a Python repr: syntax, in every result.
_LITERALS = frozenset(
    ("true", "false", "null", "NaN", "Infinity", "-Infinity", "True", "False", "None", "nan", "inf", "-inf")
)


class _Reading:
    """A text as grounding searches it: a plain text as it is (``leaves`` None), or its pieces (``text_pieces``: a
    JSON text's strings and numbers) joined by a separator that is a token edge, as their own ends are, so one ``find``
    searches them all; an occurrence across a separator (a value holding it) is no occurrence."""

    __slots__ = ("joined", "_starts", "_keys")

    def __init__(self, text: str, leaves: Optional[list[tuple[str, Optional[bool]]]]):
        self.joined = text if leaves is None else _SEPARATOR.join(t for t, _ in leaves)
        self._starts: Optional[list[int]] = None
        self._keys: list[Optional[bool]] = []
        if leaves is not None:
            self._starts, at = [], 0
            for t, key in leaves:
                self._starts.append(at)
                self._keys.append(key)
                at += len(t) + 1

    def _piece(self, i: int) -> int:
        return bisect.bisect_right(self._starts or [], i) - 1

    def _end(self, piece: int) -> int:
        starts = self._starts or []
        return starts[piece + 1] - 1 if piece + 1 < len(starts) else len(self.joined)

    def within_one(self, i: int, end: int) -> bool:
        """``joined[i:end]`` lies inside one piece (always, in a plain text)."""
        return self._starts is None or end <= self._end(self._piece(i))

    def is_syntax(self, i: int, end: int) -> bool:
        """``joined[i:end]`` is the results' syntax, not their data: inside a key of the JSON text, or of a literal of
        it (``null``, ``true``, ``None``; a string ``"true"`` is read alike), or quoted then a colon in plain text."""
        if self._starts is None:
            return _is_key(self.joined, i, end)
        piece = self._piece(i)
        if self._keys[piece] is None:  # a run of lines that are not JSON
            return _is_key(self.joined, i, end)
        return bool(self._keys[piece]) or self.joined[self._starts[piece] : self._end(piece)] in _LITERALS


def _as_float(value: Union[int, float]) -> Optional[float]:
    """A number as a double, as the texts' numbers are read (and as skyrl verify's JavaScript holds every number):
    an integer beyond 2**53 is compared as the double it rounds to; None beyond a double's range."""
    try:
        return float(value)
    except OverflowError:
        return None


@functools.lru_cache(maxsize=1024)
def _reading(text: str, reading: int = LATEST_READING) -> _Reading:
    """``text`` read for grounding, kept for the texts seen last: the matcher builds an Evidence for each set of
    results a call could read."""
    return _Reading(text, text_pieces(text, reading))


def _forms(value: str) -> set[str]:
    """A string as a text may write it: as it is, JSON-escaped, JSON-escaped with ``\\u`` for non-ASCII."""
    return {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}


_JSON_START = re.compile(r'\ufeff?[ \t\n\r]*[\[{"]')
# A string, a number (NaN and Infinity too: Python's json.dumps writes them) or a literal, each followed by what
# may follow it in JSON (so ``[2026-12-05]`` is no JSON), or a mark.
_JSON_TOKEN = re.compile(
    r'[ \t\n\r]*(?:(?:"([^"\\]*(?:\\.[^"\\]*)*)"'
    r"|(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null|NaN|-?Infinity))"
    r'(?=[ \t\n\r,:\]}]|\Z)|([\[\]{},:]))'
)
_CUT_STRING = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)\\?')
_CUT_ESCAPE = re.compile(r"\\u[0-9a-fA-F]{0,3}\Z")
_CUT_SCALAR = re.compile(
    r"-?[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?|t(?:r(?:u)?)?|f(?:a(?:l(?:s)?)?)?|n(?:u(?:l)?)?"
    r"|Na?|-?I(?:n(?:f(?:i(?:n(?:i(?:ty?)?)?)?)?)?)?"
)


def json_leaves(text: str, cut: bool = True) -> Optional[list[tuple[str, Optional[bool]]]]:
    """The strings (decoded) and numbers of a text made of JSON tokens (one or more JSON texts, perhaps cut short,
    as ``max_response_chars`` cuts them, unless ``cut`` is False), each with whether it is an object's key; None for
    any other text. Only the tokens are read, not the structure. A string that is itself JSON (a result encoded
    twice: ``{"result": "[{\\"symbol\\": ...}]"}``) gives its own strings and numbers instead. skyrl verify reads
    it alike (src/skyrl/grounding.ts ``jsonLeaves``)."""
    leaves = _json_tokens(text, cut)
    if leaves is None:
        return None
    expanded: list[tuple[str, Optional[bool]]] = []
    for leaf, key in leaves:
        inner = None if key or not _JSON_START.match(leaf) else json_leaves(leaf, cut=False)
        expanded.extend([(leaf, key)] if inner is None else inner)
    return expanded


def _json_tokens(text: str, cut: bool) -> Optional[list[tuple[str, Optional[bool]]]]:
    """``json_leaves`` without looking into its strings."""
    return _tokens(text, cut, _JSON)


def _cut_string(rest: str, dialect: _Dialect) -> Optional[str]:
    """The characters of a string cut short at the end of a text (perhaps inside an escape), or None."""
    cut = dialect.cut_string.fullmatch(rest)
    if cut is None:
        return None
    body = next((g for g in cut.groups() if g is not None), "")
    decoded = dialect.decoded(body)
    return decoded if decoded is not None else dialect.decoded(dialect.cut_escape.sub("", body))


@dataclass(frozen=True)
class _Dialect:
    """How ``_tokens`` reads a text of JSON, or of a Python repr: where it may start, a token (``parts`` gives its
    string's text between the quotes, its scalar, its mark), a string's characters from that text, a string (perhaps
    inside an escape) and a scalar cut short at the end."""

    start: re.Pattern[str]
    token: re.Pattern[str]
    parts: Callable[[re.Match[str]], tuple[Optional[str], Optional[str], Optional[str]]]
    decoded: Callable[[str], Optional[str]]
    cut_string: re.Pattern[str]  # a string cut short: its text after the quote in a group, perhaps a last backslash
    cut_escape: re.Pattern[str]  # an escape cut short at the end of that text
    cut_scalar: re.Pattern[str]


def _tokens(text: str, cut: bool, dialect: _Dialect) -> Optional[list[tuple[str, Optional[bool]]]]:
    """The strings (decoded) and scalars of a text made of ``dialect``'s tokens, perhaps cut short (unless ``cut`` is
    False), each with whether it is an object's key (a string followed by a colon); None for any other text."""
    if not dialect.start.match(text):
        return None
    leaves: list[tuple[str, Optional[bool]]] = []
    pos, after_string = (1 if text.startswith("\ufeff") else 0), False
    while (m := dialect.token.match(text, pos)) is not None:
        pos = m.end()
        string, scalar, mark = dialect.parts(m)
        if mark == ":" and after_string:
            leaves[-1] = (leaves[-1][0], True)
        if string is not None and (decoded := dialect.decoded(string)) is None:
            return None
        if string is not None or scalar is not None:
            leaves.append((decoded if string is not None else scalar, False))
        after_string = string is not None
    rest = text[pos:].lstrip(" \t\n\r")
    if not rest:
        return leaves
    cut_string = _cut_string(rest, dialect) if cut else None
    if cut_string is not None:
        return leaves + [(cut_string, False)]
    return leaves + [(rest, False)] if cut and dialect.cut_scalar.fullmatch(rest) else None


def text_pieces(text: str, reading: int = LATEST_READING) -> Optional[list[tuple[str, Optional[bool]]]]:
    """What grounding searches in a text, or None to search it as it is: a JSON text's strings and numbers
    (``json_leaves``); else, in a text of several lines of which some are JSON (a line of prose, then JSON; JSON,
    then an image's placeholder; a fenced code block; a line that goes on in JSON from its first bracket), those
    lines' strings and numbers, and each run of the other lines (and words before, between and after such JSON) as
    one piece (key None). A line may hold several JSON texts with words between them (``{...} and {...} done``).
    Lines, as JSON writes no line break inside a token. A text that is a Python repr (``python_leaves``) is read as
    a JSON text is. skyrl verify reads it alike (src/skyrl/grounding.ts ``textPieces``). ``reading`` is one of
    skyrl verify's readings (plan.py READINGS, counted from 1), each reading what the one before did and more:
    1 reads a line of JSON with words after it as prose; 2 reads its JSON, the words after it as prose; 3 reads
    those words for more JSON too; 4 reads a Python repr as JSON (1-3 read it as it is)."""
    whole = json_leaves(text)
    if whole is None and reading >= 4:
        whole = python_leaves(text)
    if whole is not None:
        return whole
    closed, repeat = reading >= 2, reading >= 3
    pieces: list[tuple[str, Optional[bool]]] = []
    plain: list[str] = []
    lines = text.split("\n")
    found = False
    for n, line in enumerate(lines):
        cut = n == len(lines) - 1  # only the last line may have been cut
        before, leaves, after = _line_read(line, cut, closed)
        if leaves is None:
            plain.append(line)
            continue
        found = True
        while leaves is not None:
            if before:
                plain.append(before)
            if plain:
                pieces.append(("\n".join(plain), None))
            plain = []
            pieces.extend(leaves)
            rest = after
            before, leaves, after = _line_read(rest, cut, closed) if rest and repeat else ("", None, "")
            if leaves is None:
                after = rest
        if after:
            plain.append(after)
    if not found:
        return None
    return pieces + [("\n".join(plain), None)] if plain else pieces


Leaves = list[tuple[str, Optional[bool]]]


def _line_read(line: str, cut: bool, closed: bool = True) -> tuple[str, Optional[Leaves], str]:
    """A line's prose and JSON: the line's strings and numbers when it is JSON; else the JSON in it and the words
    before and after it, where the line goes on in JSON from its first bracket (``Found 2 results: [{...}]``), or
    is JSON up to a closing bracket and words after it (``[{...}] // 2 rows``; ``_closed_json_end``), from its
    start, else from its first bracket (not with ``closed`` False: that reading's line is prose); else the line as
    prose (None)."""
    leaves = json_leaves(line, cut)
    if leaves is not None:
        return "", leaves, ""
    bracket = min((i for i in (line.find("["), line.find("{")) if i > 0), default=-1)
    from_bracket = json_leaves(line[bracket:], cut) if bracket > 0 else None
    if from_bracket is not None:
        return line[:bracket], from_bracket, ""
    for start in ([0, bracket] if bracket > 0 else [0]) if closed else []:
        end = _closed_json_end(line[start:])
        if end is not None:
            return line[:start], json_leaves(line[start : start + end], cut=False) or [], line[start + end :]
    return line, None, ""


def _closed_json_end(text: str) -> Optional[int]:
    """Where a text that begins in JSON tokens stops being JSON, if a closing bracket came before with a JSON string
    before it: the end of the last ``]`` or ``}`` read before the first character that is no JSON token (the
    structure is not read, as in ``_json_tokens``). Without a string it is prose: ``[10:00, 11:30] free``,
    ``[::1]:8080``, ``[1] Apple``."""
    if not _JSON_START.match(text):
        return None
    end, pos, seen_string = None, (1 if text.startswith("\ufeff") else 0), False
    while (m := _JSON_TOKEN.match(text, pos)) is not None:
        pos = m.end()
        string, _, mark = m.groups()
        if string is not None and _decoded(string) is None:
            break
        seen_string = seen_string or string is not None
        if seen_string and mark in ("]", "}"):
            end = pos
    return end


_PY_START = re.compile(r"\ufeff?[ \t\n\r]*[\[{(]")
# A string in single or double quotes (as repr writes them), a number, True, False, None, nan or inf (as repr writes
# floats), each followed by what may follow it in a repr, or a mark.
_PY_TOKEN = re.compile(
    r"""[ \t\n\r]*(?:(?:'((?:[^'\\\n]|\\[^\n])*)'|"((?:[^"\\\n]|\\[^\n])*)"|"""
    r"""(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|True|False|None|nan|-?inf))(?=[ \t\n\r,:\])}]|\Z)|([\[\](){},:]))"""
)
_PY_CUT_STRING = re.compile(r"""'((?:[^'\\\n]|\\[^\n])*)\\?|"((?:[^"\\\n]|\\[^\n])*)\\?""")
_PY_CUT_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]?|u[0-9a-fA-F]{0,3}|U[0-9a-fA-F]{0,7})\Z")
_PY_CUT_SCALAR = re.compile(
    r"-?[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?|T(?:ru?)?|F(?:a(?:ls?)?)?|N(?:on?)?|na?|-?in?"
)
_PY_ESCAPE = re.compile(r"""\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([\\'"nrt]))|\\""")
_PY_SIMPLE = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t"}


def python_leaves(text: str, cut: bool = True) -> Optional[list[tuple[str, Optional[bool]]]]:
    """``json_leaves`` for a text that is a Python repr of a container (``{'symbol': 'PLTR', 'ok': True}``, a list, a
    tuple; what ``str()`` of a tool's dict gives): its strings (in either quotes, with the escapes repr writes:
    ``\\\\``, ``\\'``, ``\\"``, ``\\n``, ``\\r``, ``\\t``, ``\\xhh``, ``\\uhhhh``, ``\\Uhhhhhhhh``) and numbers,
    each with whether it is a dict's key; None for any other text (another escape, a byte string, a call such as
    ``datetime(...)``). A string that is itself JSON or a repr gives its own strings and numbers. skyrl verify reads
    it alike (src/skyrl/grounding.ts ``pythonLeaves``)."""
    leaves = _tokens(text, cut, _PYTHON)
    if leaves is None:
        return None
    expanded: list[tuple[str, Optional[bool]]] = []
    for leaf, key in leaves:
        inner = None if key else json_leaves(leaf, cut=False) if _JSON_START.match(leaf) else None
        if inner is None and not key and _PY_START.match(leaf):
            inner = python_leaves(leaf, cut=False)
        expanded.extend([(leaf, key)] if inner is None else inner)
    return expanded


def _py_decoded(body: str) -> Optional[str]:
    """A repr's string's characters from its text between the quotes, or None for an escape repr does not write."""
    parts: list[str] = []
    pos = 0
    for m in _PY_ESCAPE.finditer(body):
        hexes, simple = m.group(1) or m.group(2) or m.group(3), m.group(4)
        if simple is None and (hexes is None or int(hexes, 16) > 0x10FFFF):
            return None
        parts.append(body[pos : m.start()])
        parts.append(_PY_SIMPLE[simple] if simple is not None else chr(int(hexes, 16)))
        pos = m.end()
    parts.append(body[pos:])
    return "".join(parts)


def _decoded(body: str) -> Optional[str]:
    """A JSON string's characters from its text between the quotes, or None when JSON would not read it."""
    try:
        return json.loads('"' + body + '"')
    except ValueError:
        return None


_JSON = _Dialect(_JSON_START, _JSON_TOKEN, lambda m: m.groups(), _decoded, _CUT_STRING, _CUT_ESCAPE, _CUT_SCALAR)
_PYTHON = _Dialect(
    _PY_START,
    _PY_TOKEN,
    lambda m: (m.group(1) if m.group(1) is not None else m.group(2), m.group(3), m.group(4)),
    _py_decoded,
    _PY_CUT_STRING,
    _PY_CUT_ESCAPE,
    _PY_CUT_SCALAR,
)


def _kind(c: str) -> str:
    """A character's kind for token edges: a letter (or ``_``, or a combining mark: a vowel sign of Devanagari or
    Thai, the accent of a decomposed ``é``, which are inside a word, not its edge), a digit, or anything else."""
    category = unicodedata.category(c)
    return "letter" if c == "_" or category[0] in "LM" else "digit" if category[0] == "N" else "other"


def _token_edge(t: str, i: int) -> bool:
    """No run of letters or of digits goes on across index ``i`` of ``t``: the edge of a token."""
    if i == 0 or i >= len(t):
        return True
    kind = _kind(t[i - 1])
    return kind == "other" or kind != _kind(t[i])


def _occurs_as_token(t: str, form: str) -> bool:
    """``form`` occurs in ``t`` as a whole token: not cut out of a run of letters or of digits (``P`` is not in
    ``PLTR``, nor ``42`` in ``420``; ``2026-12-05`` is in ``2026-12-05T10:00``). Without it a policy sending
    one letter grounded nearly any value. skyrl verify reads it alike (src/skyrl/grounding.ts)."""
    i = t.find(form)
    while i >= 0:
        if _token_edge(t, i) and _token_edge(t, i + len(form)):
            return True
        i = t.find(form, i + 1)
    return False


_COLON = re.compile(r"\s*:")


def _is_key(t: str, start: int, end: int) -> bool:
    """``t[start:end]`` is quoted and followed by a colon: the key of an object."""
    quote = t[start - 1] if start > 0 else ""
    return quote in ('"', "'") and t[end : end + 1] == quote and _COLON.match(t, end + 1) is not None


def _grounds(evidence: Evidence, value: Any, illustrative: Any) -> bool:
    """A derived value is grounded when the evidence holds it, and it holds something to find (a string with a
    letter or a digit, a number) unless the plan's illustrative value does not either: ``Evidence`` holds ``""``,
    ``[]``, ``{}``, null and booleans anywhere, so a policy sending ``symbol: ""`` earned the step it could not
    ground; and a string of no letter or digit (``" "``, ``","``, ``"{"``) is a whole token wherever it occurs,
    which in every result it does (JSON's spaces, quotes, commas and braces): ``symbol: ","`` earned it alike. A
    string held only in the results' syntax (``symbol: "symbol"``, a field name of every result of the tool, or a word
    of one; ``"null"``, a literal of nearly every JSON result: ``Evidence.only_as_key``) grounds only where the plan's
    value is so held too (a field to sort by)."""
    if not evidence.holds(value) or not (_findable(value) or not _findable(illustrative)):
        return False
    return not evidence.only_as_key(value) or evidence.only_as_key(illustrative)


def _findable(value: Any) -> bool:
    """The value holds a string with a letter or a digit, or a number (what ``Evidence`` can tell apart from the
    punctuation and spaces any result holds)."""
    if isinstance(value, dict):
        return any(_findable(v) for v in value.values())
    if isinstance(value, list):
        return any(_findable(v) for v in value)
    if isinstance(value, str):
        return any(_kind(c) != "other" for c in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _specificity(step: Step, call: CallRecord) -> int:
    """How many literal params the match compared (a step whose params are all derived compares none)."""
    return len((set(step.params) | set(call.arguments or {})) - set(step.derived_params))


def step_matches(plan: Plan, step: Step, arguments: dict[str, Any], pattern_guard: bool = True) -> bool:
    """Literal params equal (canonical JSON, schema defaults for omitted ones), derived params present and valid."""
    if not _same_params(plan, step, arguments, skip=step.derived_params):
        return False
    if any(p not in arguments for p in step.derived_params):
        return False
    schema = plan.schemas.get(step.call_name)
    cleared = _plan_strings(plan, step.call_name) if pattern_guard else None
    return schema is None or _is_valid(schema, arguments, cleared)


def _plan_strings(plan: Plan, name: str) -> frozenset[str]:
    """Every string (value or key, at any depth) in the params of the plan's steps calling ``name``: what
    skyrl's ajv validated, which the pattern guard never judges undecided (``patterns.Guard``)."""
    found: set[str] = set()
    stack: list[Any] = [s.params for s in plan.steps if s.call_name == name]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            found.update(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return frozenset(found)


def planned_params(plan: Plan, name: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """The params of each plan step that is this very call as the scorer reads it (its name, and every param,
    derived ones included, equal after canonical JSON, a param one side omits equal to its schema default), in
    plan order, each once: what ``skyrl verify`` ran and recorded for such a call."""
    found: dict[str, dict[str, Any]] = {}
    for s in plan.steps:
        if s.call_name == name and _same_params(plan, s, arguments):
            found.setdefault(canonical_json(s.params), s.params)
    return list(found.values())


def _same_params(plan: Plan, step: Step, arguments: dict[str, Any], skip: tuple[str, ...] = ()) -> bool:
    """The arguments equal the step's params but those in ``skip`` (canonical JSON; omitted ones: schema defaults)."""
    defaults = _defaults(plan.schemas.get(step.call_name))
    keys = (set(step.params) | set(arguments)) - set(skip)
    return all(_effective(step.params, key, defaults) == _effective(arguments, key, defaults) for key in keys)


def _defaults(schema: Optional[dict[str, Any]]) -> dict[str, Any]:
    props = (schema or {}).get("properties")
    if not isinstance(props, dict):
        return {}
    return {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}


def _effective(params: dict[str, Any], key: str, defaults: dict[str, Any]) -> Any:
    if key in params:
        return canonical_json(params[key])
    return canonical_json(defaults[key]) if key in defaults else _MISSING


def _is_valid(schema: dict[str, Any], arguments: dict[str, Any], cleared: Optional[frozenset[str]] = None) -> bool:
    """The arguments are valid against the schema. Validation runs library code on the policy's values (the
    "regex" format check parses the string with ``re``'s parser, which raises RecursionError on thousands
    of nested groups): a value the validator fails on is not valid, never an exception out of ``step``. A
    ``$ref`` outside the schema (a URL, another file: never fetched) holds nothing: the schema is checked without
    it. A ``$ref`` into the schema that points at nothing (``#/definitions/Missing``; plan.py refuses a row with one,
    a Plan made otherwise may hold one) fails its part: a value there is not valid, the rest is checked (refs.py;
    until 2026-12-05 reaching it made the whole call valid). A schema that is not valid against its draft's
    meta-schema (``{"type": "strng"}``; plan.py refuses a row with one) makes the call not valid (``_validator``;
    until 2026-12-05 it was not checked at all, and any arguments passed).

    The schema's regexes (``pattern``, ``patternProperties``) run on the policy's strings, and ``re`` backtracks:
    ``^(a+)+$`` took minutes on 30 ``a`` and a ``!``, ``\\d+$`` 7 s on 20,000 digits and an ``x``. With ``cleared``
    (the strings of the plan's own call, ``_plan_strings``) they run through ``patterns.Guard``: a linear-time
    automaton with a step budget, no clock (the same call scores the same everywhere). A string the guard cannot
    decide makes the arguments not valid (``patterns.Undecided``, caught below), never a pass; the plan's own
    strings are never undecided (``re`` where the automaton cannot run), so the dataset's call scores as before.
    ``cleared=None``: plain ``re``.

    Verdicts are kept (``_VERDICTS``): the env scores the whole trajectory again after every turn, so each earlier
    call was validated again each turn, and a check that is slow on some values added up turn after turn (2.0, 3.4,
    5.9 s: jsonschema's ``uniqueItems`` over items that do not sort compared every pair, 2 s for one 17 KB call;
    since 2026-12-04 ``unique.py`` answers as it does in O(n log n): 0.01 s)."""
    schema_text = sys.intern(canonical_json(schema))  # one copy of a schema's text for all its verdicts
    # The arguments as Python holds them (1 and 1.0, 2**53 and 2**53 + 1 apart: canonical JSON writes each pair
    # alike, and `maximum`, `const` or draft-04's `integer` tell them apart), keys sorted.
    arguments_text = json.dumps(arguments, sort_keys=True, separators=(",", ":"))
    if len(arguments_text) > _MAX_KEPT_ARGUMENTS:
        return _check(schema_text, arguments, cleared)
    key = (schema_text, arguments_text, cleared)
    with _VERDICTS_LOCK:  # envs may step in threads
        verdict = _VERDICTS.pop(key, None)
        if verdict is not None:
            _VERDICTS[key] = verdict  # the most recently used last
            return verdict
    verdict = _check(schema_text, arguments, cleared)
    with _VERDICTS_LOCK:
        _VERDICTS[key] = verdict
        while len(_VERDICTS) > _MAX_VERDICTS:
            del _VERDICTS[next(iter(_VERDICTS))]  # the least recently used
    return verdict


# At most 256 verdicts, least recently used out first, on arguments of at most 64 KB of JSON each (~16 MB); an
# episode makes at most max_calls_per_turn x max_turns calls.
_VERDICTS: dict[tuple[str, str, Optional[frozenset[str]]], bool] = {}
_VERDICTS_LOCK = threading.Lock()
_MAX_VERDICTS = 256
_MAX_KEPT_ARGUMENTS = 65536


def _check(schema_text: str, arguments: dict[str, Any], cleared: Optional[frozenset[str]]) -> bool:
    validator = _validator(schema_text)
    if validator is None:  # no JSON Schema (plan.py refuses a row with one; a Plan made otherwise may hold one):
        return False  # nothing of the call can be checked, so it is not valid (until 2026-12-05: any arguments were)
    try:
        with patterns.guarding(cleared):
            return validator.is_valid(arguments)
    except Exception:  # noqa: BLE001 - a value that cannot be checked is not valid
        # (a reference jsonschema could not resolve where refs.ref does not answer for it, a $dynamicRef to
        # nothing: until 2026-12-05 an unresolvable reference answered True, and any arguments passed)
        return False


# jsonschema's regex searches go through ``patterns.guarding`` (``_is_valid``).
patterns.hook_jsonschema()


@functools.lru_cache(maxsize=512)
def _validator(schema_text: str) -> Any:
    """A JSON Schema validator (formats checked; ``$ref`` never fetched), or None for a schema that is not valid
    against its draft's meta-schema (``metaschema.fault``, as skyrl's plan validation reads it: a ``pattern`` only
    JavaScript reads is valid there, and fails the part it is in when a value reaches it). A schema without
    ``$schema`` is read as draft-07, as skyrl's plan validation (ajv's default class) read it: under 2020-12,
    jsonschema's default, ``prefixItems`` and ``dependentRequired`` (which Python MCP servers' pydantic schemas use)
    made a plan ajv had accepted invalid."""
    schema = json.loads(schema_text)
    if metaschema.fault(schema) is not None:
        return None
    cls = metaschema.validator_class(schema)
    # uniqueItems in O(n log n) (unique.py): jsonschema's own compares every pair of items that do not sort; $ref
    # resolved offline (refs.py: one outside the schema holds nothing, one into it at nothing fails its part)
    fast = with_fast_unique_items(cls, (("$ref", refs.ref),))
    return fast(schema, format_checker=_FORMAT_CHECKER, registry=refs.OFFLINE)


# Formats as skyrl checks them (ajv with ajv-formats, src/skyrl/planValidation.ts), which validated the plan: a
# format read more strictly would make the plan's own call invalid, one read more leniently would take a value
# skyrl refuses (jsonschema without its optional libraries checked no "date-time", "uri" or "hostname": any string
# passed). formats.py ports ajv-formats' formats; "regex" is a JavaScript regular expression there
# (``new RegExp(s)``), read here with ``re``'s parser; "uuid" may start with ``urn:uuid:``.
_Z_ANCHOR = re.compile(r"[^\\]\\Z")
_PYTHON_ESCAPES = set("abBdDfnrsStvwWAZ")


def _is_js_regex(text: object) -> bool:
    """``text`` compiles as a JavaScript regular expression without flags, as ajv-formats' "regex" asks
    (``\\Z`` after another character refused, as there). Python's ``re`` stands in: JavaScript's own syntax
    (named groups ``(?<y>...)``, ``\\k<y>``, ``\\cJ``, ``\\u{...}``, and every other escape of a letter, which is
    that letter: ``\\p{Lu}``, ``\\z``) is rewritten to an equivalent for the check first. A few patterns Python
    reads and JavaScript does not (``(?i)x``, ``a**``) pass: never stricter than skyrl. Python's parser alone reads
    it (``patterns.check_syntax``: linear time, where compiling 200 case-insensitive classes took a second), so a
    lookbehind of variable width, which JavaScript accepts and ``re.compile`` refused, passes too."""
    if not isinstance(text, str):
        return True
    if _Z_ANCHOR.search(text):
        return False
    patterns.check_syntax(_python_form(text))
    return True


def _python_form(pattern: str) -> str:
    """A Python pattern that compiles when the JavaScript one does (for the check only: not the same matches).
    One pass over the text (no slicing of the rest: a long derived value is checked in linear time)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    named = "(?<" in pattern
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            d = pattern[i + 1]
            close = pattern.find(">", i + 3) if d == "k" and named and pattern.startswith("<", i + 2) else -1
            if close != -1:
                out.append(f"(?P={pattern[i + 3 : close]})")
                i = close + 1
            elif d == "c" and i + 2 < n and pattern[i + 2].isascii() and pattern[i + 2].isalpha():
                out.append("\\x01")
                i += 3
            elif d.isdigit():  # a back-reference, or an octal escape where the group does not exist
                out.append("\\x01")
                i += 2
            elif d in "xu" and _HEX[d].match(pattern, i + 2):
                out.append(pattern[i : _HEX[d].match(pattern, i + 2).end()])
                i = _HEX[d].match(pattern, i + 2).end()
            elif d.isascii() and d.isalpha() and d not in _PYTHON_ESCAPES:
                out.append(d)  # an identity escape: the letter itself (\p, \z, \u{, \x without hex digits...)
                i += 2
            else:
                out.append(pattern[i : i + 2])
                i += 2
        elif pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
            out.append("(?P<")
            i += 3
        else:
            out.append(c)
            i += 1
    return "".join(out)


_HEX = {"x": re.compile("[0-9a-fA-F]{2}"), "u": re.compile("[0-9a-fA-F]{4}")}
_UUID = re.compile(r"(?:urn:uuid:)?[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}", re.IGNORECASE)


def _is_uuid(text: object) -> bool:
    return not isinstance(text, str) or _UUID.fullmatch(text) is not None


def _format_checker() -> Any:
    """The formats skyrl's plan validation checks (ajv-formats' full formats: formats.py), with skyrl's readings
    of "regex" and "uuid"; no other (jsonschema's own "idn-email", "iri", ... are formats ajv-formats does not
    know, which ajv does not check). The same in every draft, as there."""
    checker = jsonschema.FormatChecker(formats=())
    for name, check in formats.STRING_FORMATS.items():
        checker.checks(name)(formats.string_format(check))
    for name, number_check in formats.NUMBER_FORMATS.items():
        checker.checks(name)(formats.number_format(number_check))
    checker.checkers["regex"] = (_is_js_regex, (re.error, RecursionError, OverflowError))
    checker.checkers["uuid"] = (_is_uuid, ())
    return checker


_FORMAT_CHECKER = _format_checker()
