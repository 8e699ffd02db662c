"""Gameability report: scripted policies through MCPToolEnv over skyrl datasets.

    python -m skyrl_mcp_env.reward_check DATASET... [--cassettes DIR [--trust-cassette-keys]] [--strict]
        [--ground-derived | --no-ground-derived] [--max-turns N] [--json]

Policies: the plan itself; no tools; every tool the prompt offers (the plan's arguments for the plan's
tools, ``{}`` for the others); the plan reversed; the plan with one literal param changed; on rows where
``ground_derived`` grounds a step (with ``--cassettes``, the env's default "auto": the steps ``skyrl verify`` found
the derived values of in the results; ``--ground-derived``: every row), the plan with every derived value changed;
the plan's calls each repeated; malformed calls. A policy is not applicable where it cannot be built (every tool on
a row without ``available_tools``, reversed on a row whose steps ``depends_on`` nothing, a changed literal on a plan
without literal params, changed derived values on a plan without derived params or where nothing is grounded). A
degenerate policy whose calls are a valid solution (the plan's calls, each in a later turn than the steps it
``depends_on``) may tie the plan; any other tie or win is a leak, and so is a repeated-calls run that
beats the plan, and an every-tool run above half the plan (reward.md property 3; on rows where the plan
scores 1.0: the others are listed as plan failures). With ``--cassettes``, rows whose plan calls the store does
not answer (a miss, a recorded tool error) are listed too: training on them shows the policy an error for the
very call the reward asks for. Exit 0: plan 1.0 everywhere, no leak and (with ``--cassettes``) every plan call
answered; 1: otherwise; 2: unreadable input, or a file without rows (as ``skyrl validate``'s ``contract/empty-file``).
Datasets are read as ``skyrl validate`` reads them (records.py): a .json or .jsonl file (any case) by its first lines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

import jsonschema

from .canonical import canonical_json
from .env import MCPToolEnv, grounding_of
from .plan import Plan, RowError, plan_from_extras
from .records import read_records
from .reward import _validator, grounded_steps
from . import metaschema, tools
from .tools import ConfigError

CallSpec = tuple[str, Any]  # (name, arguments)
Turn = Union[list[CallSpec], list[str]]  # calls, or raw <tool_call> block bodies
FINAL = "Final answer: here is what the tools returned."


# ---------------------------------------------------------------------------------------------
# Policies: plan -> the calls of each turn (a final answer follows), or None when not applicable


def _plan_calls(plan: Plan) -> list[CallSpec]:
    return [(s.call_name, s.params) for s in plan.steps]


def policy_plan(plan: Plan) -> Optional[list[Turn]]:
    return [[c] for c in _plan_calls(plan)]


def policy_no_tools(plan: Plan) -> Optional[list[Turn]]:
    return []


def policy_every_tool(plan: Plan) -> Optional[list[Turn]]:
    if not plan.tools_listed:
        return None
    first: dict[str, Any] = {}
    for name, args in _plan_calls(plan):
        first.setdefault(name, args)
    return [[(name, first.get(name, {}))] for name in plan.tools]


def policy_reversed(plan: Plan) -> Optional[list[Turn]]:
    if not any(s.depends_on for s in plan.steps):
        return None
    return [[c] for c in reversed(_plan_calls(plan))]


def policy_literal_changed(plan: Plan) -> Optional[list[Turn]]:
    for i, step in enumerate(plan.steps):
        if step.literal_params:
            key = sorted(step.literal_params)[0]
            calls = _plan_calls(plan)
            calls[i] = (step.call_name, {**step.params, key: _changed(step.params[key])})
            return [[c] for c in calls]
    return None


def policy_derived_invented(plan: Plan) -> Optional[list[Turn]]:
    """The plan with every derived value changed (a value no result gave): played only on rows where
    ``ground_derived`` grounds a step (elsewhere a derived param takes any valid value, so this policy ties the plan
    by design)."""
    if not any(s.derived_params for s in plan.steps):
        return None
    return [[(s.call_name, {**s.params, **{k: _changed(s.params[k]) for k in s.derived_params}})] for s in plan.steps]


def policy_repeated(plan: Plan) -> Optional[list[Turn]]:
    return [[c, c] for c in _plan_calls(plan)]


def policy_malformed(plan: Plan) -> Optional[list[Turn]]:
    bodies = []
    for i, step in enumerate(plan.steps):
        valid = json.dumps({"name": step.call_name, "arguments": step.params})
        kinds = [
            valid[:-2],
            json.dumps({"name": "no_such_tool", "arguments": step.params}),
            json.dumps({"name": step.call_name, "arguments": json.dumps(step.params)}),
        ]
        bodies.append([kinds[i % 3]])
    return bodies


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "_X" if value else "X"
    if isinstance(value, list):
        return value + (value[:1] or ["X"])
    if isinstance(value, dict):
        return {**value, "_changed": True}
    return "X"


POLICIES: dict[str, Callable[[Plan], Optional[list[Turn]]]] = {
    "plan": policy_plan,
    "no_tools": policy_no_tools,
    "every_tool": policy_every_tool,
    "reversed": policy_reversed,
    "literal_changed": policy_literal_changed,
    "derived_invented": policy_derived_invented,
    "repeated": policy_repeated,
    "malformed": policy_malformed,
}
OPT_IN = {"derived_invented"}  # played where ground_derived grounds a step; left out of the text report when not played

# ---------------------------------------------------------------------------------------------
# Running a policy


def schedule(turns: list[Turn], max_turns: int) -> list[Turn]:
    """One turn per entry, packing the last ones together so the final answer still fits."""
    room = max(max_turns - 1, 1)
    if len(turns) <= room:
        return turns
    return turns[: room - 1] + [[c for t in turns[room - 1 :] for c in t]]


def action_text(turn: Turn) -> str:
    blocks = [c if isinstance(c, str) else json.dumps({"name": c[0], "arguments": c[1]}) for c in turn]
    return "\n".join(f"<tool_call>{b}</tool_call>" for b in blocks)


def run_policy(extras: dict[str, Any], turns: list[Turn], env_config: dict[str, Any]) -> dict[str, Any]:
    """Play the turns, then a final answer, through a fresh env; returns the last step's metadata."""
    env = MCPToolEnv(env_config, extras)
    env.init([])
    out = None
    for turn in schedule(turns, env.max_turns):
        out = env.step(action_text(turn))
        if out["done"]:
            break
    if out is None or not out["done"]:
        out = env.step(FINAL)
    env.close()
    return out["metadata"]


def is_valid_solution(plan: Plan, turns: list[Turn]) -> bool:
    """The turns make exactly the plan's calls, each after the turns of the steps it depends on."""
    todo = {s.step: canonical_json([s.call_name, s.params]) for s in plan.steps}
    deps = {s.step: set(s.depends_on) for s in plan.steps}
    done: set[int] = set()
    for turn in turns:
        before = set(done)
        for c in turn:
            key = None if isinstance(c, str) else canonical_json([c[0], c[1]])
            step = next((n for n, k in todo.items() if k == key and n not in done), None)
            if step is None or not deps[step] <= before:
                return False
            done.add(step)
    return len(done) == len(todo)


# ---------------------------------------------------------------------------------------------
# The report


@dataclass
class PolicyStats:
    rewards: list[float] = field(default_factory=list)
    invalid_rewards: list[float] = field(default_factory=list)  # rows where the policy is not a valid solution
    below: int = 0
    valid: int = 0


@dataclass
class Report:
    rows: int = 0
    stats: dict[str, PolicyStats] = field(default_factory=lambda: {p: PolicyStats() for p in POLICIES})
    leaks: list[str] = field(default_factory=list)
    plan_failures: list[str] = field(default_factory=list)
    unscorable: list[str] = field(default_factory=list)
    plan_calls_unanswered: Optional[list[str]] = None  # with cassettes: rows whose plan calls the store fails
    ground_derived: Any = "auto"  # the env's setting the rows were scored with
    grounded_rows: int = 0  # rows where it grounds the derived values of a step


def check_rows(rows: list[tuple[str, dict[str, Any]]], env_config: dict[str, Any], max_turns: Optional[int]) -> Report:
    """``max_turns``: the trainer's (an integer >= 1), or None for each row's own (ValueError otherwise)."""
    if max_turns is not None and (isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1):
        raise ValueError(f"max_turns: expected an integer >= 1 or None (each row's own), got {max_turns!r}")
    report = Report(
        plan_calls_unanswered=[] if env_config.get("cassettes") is not None else None,
        ground_derived=env_config.get("ground_derived", "auto"),
    )
    for where, row in rows:
        extras = {k: v for k, v in row.items() if k not in ("prompt", "env_class")}
        try:
            plan = plan_from_extras(extras)
        except RowError as e:
            report.unscorable.append(f"{where}: {e}")
            continue
        own = plan.max_turns if plan.max_turns is not None else len(plan.steps) + 2
        extras["max_turns"] = max_turns if max_turns is not None else own
        report.rows += 1
        _check_row(report, f"{where} ({plan.task_id})", plan, extras, env_config)
    return report


def _check_row(report: Report, where: str, plan: Plan, extras: dict[str, Any], env_config: dict[str, Any]) -> None:
    plan_reward = None
    grounded = bool(grounded_steps(plan, grounding_of(plan, env_config.get("ground_derived", "auto"))))
    report.grounded_rows += grounded
    for name, policy in POLICIES.items():
        turns = policy(plan) if name not in OPT_IN or grounded else None
        if turns is None:
            continue
        parts = run_policy(extras, turns, env_config)
        reward = parts["reward"]
        stats = report.stats[name]
        stats.rewards.append(reward)
        if name == "plan":
            plan_reward = reward
            if reward < 1.0:
                report.plan_failures.append(f"{where}: plan scores {reward:.3f} ({why_plan_fails(plan, parts)})")
            unanswered = _unanswered(parts.get("tool_results") or {})
            if unanswered and report.plan_calls_unanswered is not None:
                report.plan_calls_unanswered.append(f"{where}: {unanswered}")
            continue
        valid = is_valid_solution(plan, turns)
        stats.valid += valid
        stats.below += reward < plan_reward
        if not valid:
            stats.invalid_rewards.append(reward)
        leak = reward > plan_reward if name == "repeated" else (not valid and reward >= plan_reward)
        leak = leak or (name == "every_tool" and not valid and reward > plan_reward / 2)  # reward.md property 3
        if leak and plan_reward == 1.0:  # a row whose plan fails is listed under plan_failures, not compared
            report.leaks.append(f"{where}: {name} {reward:.3f} vs plan {plan_reward:.3f}")


UNANSWERED = {
    "miss": ("cassette miss", "cassette misses"),
    "tool_error": ("recorded tool error", "recorded tool errors"),
}


def _unanswered(results: dict[str, int]) -> Optional[str]:
    """What the store answered the plan's own calls with, when not all of them ok (``tool_results`` counts)."""
    bad = {k: n for k, n in results.items() if k != "ok" and n}
    if not bad:
        return None
    said = ", ".join(f"{n} {UNANSWERED.get(k, (k, k))[n > 1]}" for k, n in bad.items())
    return f"{sum(bad.values())} of {sum(results.values())} call(s): {said}"


def why_plan_fails(plan: Plan, parts: dict[str, Any]) -> str:
    """Why the plan's own calls score below 1.0, from the score's parts: steps matched, each step whose params
    fail its tool's input schema (the first error), a limit or ``max_turns`` reached, ``must_call_tool`` never
    called, derived values the recorded results do not hold (``ground_derived``), order violations."""
    why = [f"{parts['steps_matched']}/{len(plan.steps)} steps matched"]
    for s in plan.steps:
        problem = _schema_problem(plan.schemas.get(s.call_name), s.params)
        if problem is not None:
            why.append(f"step {s.step} {s.call_name}: its params fail the tool's input schema: {problem}")
    if parts.get("limit_exceeded"):
        why.append(f"ended by {parts['limit_exceeded']}")
    if parts.get("must_call_tool_called") is False:
        why.append(f"success.must_call_tool {plan.must_call_tool} never called")
    if parts.get("ungrounded_calls"):
        why.append(f"{parts['ungrounded_calls']} call(s) with derived values the recorded results do not hold")
    if parts.get("order_violations"):
        why.append(f"{parts['order_violations']} call(s) out of depends_on order")
    return "; ".join(why)


def _schema_problem(schema: Any, params: dict[str, Any]) -> Optional[str]:
    """The first error of ``params`` against ``schema`` (jsonschema's best match), or None when valid (or no schema)."""
    if not isinstance(schema, dict):
        return None
    validator = _validator(canonical_json(schema))
    if validator is None:  # the scorer's _is_valid: not valid (until 2026-12-05 such a schema was not checked)
        return f"the schema itself is {metaschema.fault(schema) or 'not a JSON Schema'}"
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(params))
    except Exception:  # noqa: BLE001 - a value the validator cannot check: the scorer's _is_valid says not valid
        return "it cannot be checked"
    if error is None:
        return None
    at = "/".join(str(p) for p in error.absolute_path)
    return f"{at}: {error.message}" if at else error.message


def _mean(xs: list[float]) -> Optional[float]:
    return sum(xs) / len(xs) if xs else None


def summary(report: Report) -> dict[str, Any]:
    return {
        "rows": report.rows,
        "ground_derived": report.ground_derived,
        "grounded_rows": report.grounded_rows,
        "policies": {
            name: {
                "rows": len(s.rewards),
                "mean_reward": _mean(s.rewards),
                "mean_reward_not_valid": _mean(s.invalid_rewards),
                "below_plan": s.below,
                "valid_solutions": s.valid,
            }
            for name, s in report.stats.items()
        },
        "leaks": report.leaks,
        "plan_failures": report.plan_failures,
        "unscorable": report.unscorable,
        **({} if report.plan_calls_unanswered is None else {"plan_calls_unanswered": report.plan_calls_unanswered}),
    }


UNANSWERED_TITLE = "plan calls the cassettes do not answer"


def format_report(report: Report, sources: list[str]) -> str:
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [
        f"gameability report: {report.rows} rows from {', '.join(sources)}",
        f"ground_derived {json.dumps(report.ground_derived)}: derived values grounded on {report.grounded_rows} "
        f"row(s)",
        "",
        f"{'policy':<16}{'rows':>5}{'mean':>8}{'mean (not valid)':>18}{'below plan':>16}{'valid':>7}",
    ]
    for name, s in report.stats.items():
        n = len(s.rewards)
        if name in OPT_IN and not n:
            continue
        below = "-" if name == "plan" or not n else f"{s.below}/{n} ({100 * s.below / n:.0f}%)"
        valid = "-" if name == "plan" else s.valid
        means = f"{fmt(_mean(s.rewards)):>8}{fmt(_mean(s.invalid_rewards)):>18}"
        lines.append(f"{name:<16}{n:>5}{means}{below:>16}{valid:>7}")
    for title, items in (
        ("plan below 1.0", report.plan_failures),
        ("leaks (a degenerate policy ties or beats the plan, or every tool scores above half of it)", report.leaks),
        ("rows that cannot be scored", report.unscorable),
        *([] if report.plan_calls_unanswered is None else [(UNANSWERED_TITLE, report.plan_calls_unanswered)]),
    ):
        lines += ["", f"{title}: {len(items) or 'none'}"] + [f"  {x}" for x in items]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Reading datasets


def read_rows(path: str) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) for every row of a .jsonl, .json or .parquet file (the extension in any case), read as ``skyrl
    validate`` reads it (records.py): a .json or .jsonl file is JSON Lines (streamed) or a JSON array or object by
    its first lines, whatever its extension says; a BOM at the start is dropped. A file without rows (empty, blank,
    ``[]``) is an error, as validate's ``contract/empty-file``: SkyRL's loader fails on it."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        values: Iterable[Any] = _read_parquet(p)
    elif suffix in (".jsonl", ".json"):
        values = read_records(p)
    else:
        raise ValueError(f"{p}: unknown dataset format: use a .jsonl, .json or .parquet file (decompress it first)")
    rows = []
    for i, row in enumerate(values):
        if not isinstance(row, dict):
            raise ValueError(f"{path}: row {i}: expected an object, got {type(row).__name__}")
        rows.append((f"{p.name} row {i}", row))
    if not rows:
        raise ValueError(
            f"{p}: the file holds no rows (empty, blank or []): nothing to check; SkyRL's loader fails on it "
            "(skyrl validate: contract/empty-file)"
        )
    return rows


def _read_parquet(p: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(f"{p}: reading .parquet needs pyarrow (pip install pyarrow)") from None
    return pq.read_table(p).to_pylist()


def _turns(text: str) -> int:
    """--max-turns: an integer >= 1 (argparse names the option and exits 2 otherwise)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return n


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skyrl_mcp_env.reward_check", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "datasets", nargs="+", help=".jsonl, .json or .parquet files of skyrl rows (JSON Lines or a JSON array: either)"
    )
    parser.add_argument(
        "--cassettes",
        help="cassette directory: the results the env replays and grounds derived values in (default: none)",
    )
    parser.add_argument(
        "--trust-cassette-keys",
        action="store_true",
        help="take each cassette line's key as written, params not read (the env's cassette_keys: trusted; the rule "
        "before 2026-12-05): for a store another program wrote without params",
    )
    parser.add_argument("--strict", action="store_true", help="score in strict mode (0 unless the whole plan matched)")
    parser.add_argument(
        "--max-turns", type=_turns, metavar="N", help="the trainer's max_turns, N >= 1 (default: each row's own)"
    )
    grounding = parser.add_mutually_exclusive_group()
    grounding.add_argument(
        "--ground-derived",
        action="store_const",
        const=True,
        dest="ground_derived",
        help="score with ground_derived true: derived values must occur in earlier results on every row (needs "
        '--cassettes; the default with --cassettes is the env\'s, "auto": the steps skyrl verify found them on)',
    )
    grounding.add_argument(
        "--no-ground-derived",
        action="store_const",
        const=False,
        dest="ground_derived",
        help="score with ground_derived false: no derived value grounded (the default without --cassettes; the "
        "report before 2026-12-03)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if args.trust_cassette_keys and args.cassettes is None:
        parser.error("--trust-cassette-keys needs --cassettes: it says how the store's lines are read")
    if args.ground_derived is True and args.cassettes is None:
        parser.error("--ground-derived needs --cassettes: without recorded results no derived value is grounded")
    # the env's default, "auto", needs the results too: without a store every call misses, and grounding would
    # fail the plan's own calls wherever it applies
    ground = args.ground_derived if args.ground_derived is not None else "auto" if args.cassettes is not None else False
    try:
        rows = [r for path in args.datasets for r in read_rows(path)]
    except (OSError, ValueError) as e:
        print(f"reward_check: {e}", file=sys.stderr)
        return 2
    if args.cassettes is None:
        tools._WARNED_NO_STORE = True  # scoring without a store is what was asked: no warning that every call misses
    env_config = {
        "tools": "cassette",
        "cassettes": args.cassettes,
        "cassette_keys": "trusted" if args.trust_cassette_keys else None,  # None: the env's (or the variable's)
        "strict": args.strict,
        "ground_derived": ground,
    }
    try:
        report = check_rows(rows, env_config, args.max_turns)
    except ConfigError as e:  # --cassettes it cannot read: before any row is scored
        print(f"reward_check: {e}", file=sys.stderr)
        return 2
    try:
        print(json.dumps(summary(report), indent=2) if args.json else format_report(report, args.datasets))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader stopped early (`| head`): no traceback, and none at exit's flush either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    failed = report.leaks or report.plan_failures or report.unscorable or report.plan_calls_unanswered
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
