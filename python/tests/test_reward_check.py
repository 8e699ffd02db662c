"""The gameability report, and the acceptance figures on rows skyrl writes."""

import json
import re
import shlex
import subprocess
import sys

import pytest

from conftest import FIXTURES, REPO, extras_of, loose_row, make_row

from skyrl_mcp_env import reward_check
from skyrl_mcp_env.plan import plan_from_extras
from skyrl_mcp_env.reward_check import check_rows, is_valid_solution, policy_reversed, summary

CONFIG = {"tools": "cassette"}
# derived_invented is played only with ground_derived (test_grounding.py): these reports run without it
DEGENERATE = [p for p in reward_check.POLICIES if p not in ("plan", "derived_invented")]


def rows_of(*named_lists):
    return [(f"{name} row {i}", row) for name, rows in named_lists for i, row in enumerate(rows)]


def test_acceptance_on_rows_skyrl_generates_and_converts(generated_rows, converted_rows):
    """Issue 15's acceptance on the rows `skyrl generate --llm replay` (data/replay) and `skyrl convert` (the
    recorded answers) write: they carry available_tools (25 tools), provenance and max_turns >= steps + 1."""
    real = generated_rows + converted_rows
    report = check_rows(rows_of(("generated", generated_rows), ("converted", converted_rows)), CONFIG, None)
    s = summary(report)
    assert report.rows == len(real) == 12 + 3
    assert report.plan_failures == [] and report.unscorable == []
    assert s["policies"]["plan"]["mean_reward"] == 1.0  # 1.0 on every row (plan_failures is empty)
    assert report.leaks == []  # strictly below the plan wherever the policy is not itself a valid solution
    for name in DEGENERATE:
        p = s["policies"][name]
        assert p["below_plan"] == p["rows"] - p["valid_solutions"], name
        assert p["mean_reward"] <= 0.5 and p["mean_reward_not_valid"] <= 0.5, (name, p)
    plans = [plan_from_extras(extras_of(r)) for r in real]
    # Every policy applies wherever the row says enough: every row lists its prompt's tools, the reversed plan
    # applies exactly where depends_on orders the steps, a changed literal wherever a step has one.
    assert all(p.tools_listed and len(p.tools) == 25 for p in plans)
    with_deps = sum(any(st.depends_on for st in p.steps) for p in plans)
    with_literals = sum(any(st.literal_params for st in p.steps) for p in plans)
    assert with_deps >= 6
    expected_rows = {"every_tool": len(real), "reversed": with_deps, "literal_changed": with_literals}
    for name in DEGENERATE:
        assert s["policies"][name]["rows"] == expected_rows.get(name, len(real)), name
    assert s["policies"]["derived_invented"]["rows"] == 0
    # None of them is a valid solution here (the reversed plan never is where depends_on orders the steps).
    assert all(s["policies"][name]["valid_solutions"] == 0 for name in DEGENERATE)


def test_acceptance_on_the_hand_written_new_format_rows(v2_rows):
    report = check_rows(rows_of(("v2", v2_rows)), CONFIG, None)
    s = summary(report)
    assert report.plan_failures == [] and report.unscorable == [] and report.leaks == []
    for name in DEGENERATE:
        p = s["policies"][name]
        assert p["rows"] > 0 and p["below_plan"] == p["rows"] - p["valid_solutions"], name
        assert p["mean_reward_not_valid"] <= 0.5, (name, p)


def test_a_leak_is_listed_with_its_row(monkeypatch, v2_rows):
    monkeypatch.setattr(reward_check, "run_policy", lambda extras, turns, config: {"reward": 1.0})
    report = check_rows(rows_of(("v2", v2_rows[:1])), CONFIG, None)
    assert "v2 row 0 (amd-vs-intc-v2): no_tools 1.000 vs plan 1.000" in report.leaks
    assert not any("repeated" in leak for leak in report.leaks)  # repeating may tie the plan


def test_a_plan_below_1_says_why_a_step_whose_params_fail_its_schema():
    # before: "plan scores 0.000" alone; validate names the param, the report did not
    schema = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}
    row = make_row([{"server": "everything", "tool": "get-sum", "params": {"a": 1, "b": "2"}}],
                   tool_schemas=json.dumps({"get-sum": schema}))
    report = check_rows(rows_of(("bad", [row])), CONFIG, None)
    assert report.plan_failures == [
        "bad row 0 (t): plan scores 0.000 (0/1 steps matched; step 1 get-sum: its params fail the tool's input "
        "schema: b: '2' is not of type 'number')"
    ]


def test_every_tool_under_limits_looser_than_the_plan_scores_at_most_half():
    # before: 0.667 and 0.750 (precision alone: no limit stopped the spray), which the report did not list
    rows = [loose_row(["echo", "get-sum"], ["toggle-simulated-logging"]),
            loose_row(["echo", "get-sum", "get-tiny-image"], ["toggle-simulated-logging"])]
    report = check_rows(rows_of(("loose", rows)), CONFIG, None)
    assert report.plan_failures == [] and report.leaks == []
    assert max(report.stats["every_tool"].rewards) <= 0.5


def test_every_tool_above_half_the_plan_is_a_leak(monkeypatch, v2_rows):
    # reward.md property 3: every tool scores at most half the plan; before, only a tie or a win was listed
    def run(extras, turns, config):
        plan = plan_from_extras(extras)
        return {"reward": 1.0 if turns == reward_check.policy_plan(plan) else 0.6}

    monkeypatch.setattr(reward_check, "run_policy", run)
    report = check_rows(rows_of(("v2", v2_rows[:1])), CONFIG, None)
    assert report.leaks == ["v2 row 0 (amd-vs-intc-v2): every_tool 0.600 vs plan 1.000"]


def test_reversed_plan_is_valid_only_without_depends_on(v2_rows):
    for row in v2_rows:
        plan = plan_from_extras(extras_of(row))
        turns = policy_reversed(plan)
        if turns is not None:
            assert not is_valid_solution(plan, turns)
    independent = plan_from_extras(extras_of(v2_rows[0]))  # amd-vs-intc: no depends_on
    assert policy_reversed(independent) is None
    assert is_valid_solution(independent, [[c] for c in reversed([(s.call_name, s.params) for s in independent.steps])])


def test_cli_reads_jsonl_json_and_parquet(cli_dir, tmp_path):
    as_json = tmp_path / "rows.json"
    as_json.write_text(json.dumps([json.loads(line) for line in (FIXTURES / "rows_v2.jsonl").read_text().splitlines()]))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "skyrl_mcp_env.reward_check",
            str(cli_dir / "generated.parquet"),
            str(FIXTURES / "rows_v2.jsonl"),
            str(as_json),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO / "python",
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout)
    assert out["rows"] == 12 + 5 + 5 and out["leaks"] == []


def test_cli_text_report_and_bad_input(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "skyrl_mcp_env.reward_check", str(FIXTURES / "rows_v2.jsonl")],
        capture_output=True,
        text=True,
        cwd=REPO / "python",
        timeout=300,
    )
    assert done.returncode == 0
    assert (
        "gameability report: 5 rows" in done.stdout
        and "leaks (a degenerate policy ties or beats the plan, or every tool scores above half of it): none"
        in done.stdout
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"reward_spec": {}}\n{not json\n')
    done = subprocess.run(
        [sys.executable, "-m", "skyrl_mcp_env.reward_check", str(bad)],
        capture_output=True,
        text=True,
        cwd=REPO / "python",
        timeout=300,
    )
    assert done.returncode == 2 and "bad.jsonl: row 1: line 2 is not valid JSON" in done.stderr


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("rows.json", b"{not json", "rows.json: row 0: line 1 is not valid JSON"),
        ("rows.jsonl", b"\x1f\x8b\x08\x00binary", "rows.jsonl: not JSON or JSON Lines: it is gzip-compressed"),
        ("rows.jsonl.gz", b"\x1f\x8b\x08\x00binary", "rows.jsonl.gz: unknown dataset format"),
    ],
)
def test_read_rows_names_the_file_of_an_unreadable_dataset(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(message)):
        reward_check.read_rows(str(path))


def test_cli_a_cassettes_directory_it_cannot_read_is_a_clear_error(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "skyrl_mcp_env.reward_check",
            str(FIXTURES / "rows_v2.jsonl"),
            "--cassettes",
            str(tmp_path / "nowhere"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO / "python",
        timeout=300,
    )
    assert done.returncode == 2
    assert "reward_check: cassettes: cannot read" in done.stderr and "Traceback" not in done.stderr


def test_read_rows_keeps_line_separators_inside_a_jsonl_row(tmp_path):
    # JSON writers (skyrl's JSON.stringify, json.dumps(ensure_ascii=False)) leave U+2028, U+2029 and U+0085 raw in
    # strings; only "\n" ends a JSON Lines row. str.splitlines cut such a row in two: "row 0: not JSON", exit 2.
    rows = [make_row([{"server": "everything", "tool": "echo", "params": {"message": "x"}}]) for _ in range(2)]
    rows[0]["prompt"][1]["content"] = "Echo a\u2028b."
    rows[1]["prompt"][1]["content"] = "Echo c\u0085d\u2029e."
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert "\u2028" in path.read_text(encoding="utf-8")
    read = reward_check.read_rows(str(path))
    assert [where for where, _ in read] == ["rows.jsonl row 0", "rows.jsonl row 1"]
    assert [r["prompt"][1]["content"] for _, r in read] == ["Echo a\u2028b.", "Echo c\u0085d\u2029e."]


def test_with_cassettes_the_plan_calls_the_store_does_not_answer_are_listed(tmp_path, capsys):
    # before: --cassettes changed nothing without --ground-derived, so rows whose plan the store does not answer
    # (not verified, a tool error recorded, another run's store) reported "plan below 1.0: none" and exit 0, while
    # training on them shows the policy an error for the very call the reward asks for
    vectors = json.loads((REPO / "test" / "fixtures" / "canonical" / "vectors.json").read_text(encoding="utf-8"))
    values = ({"symbol": "AAPL", "limit": 5}, {"b": 1, "a": [3, {"d": None, "c": True}]})
    ok, failing = (next(c for c in vectors["cases"] if c["value"] == v) for v in values)

    def entry(case, is_error):
        result = {"content": [{"type": "text", "text": "x"}], "structuredContent": None, "isError": is_error}
        return {"key": case["call_key"], "server": "srv", "tool": "tool", "params": case["value"], "result": result,
                "duration_ms": 3}

    store = tmp_path / "cassettes"
    store.mkdir()
    lines = [json.dumps(entry(ok, False)) + "\n", json.dumps(entry(failing, True)) + "\n"]
    (store / "cassettes.jsonl").write_text("".join(lines))
    plans = (("answered", ok["value"]), ("tool-error", failing["value"]), ("missing", {"symbol": "MSFT"}))
    rows = [make_row([{"server": "srv", "tool": "tool", "params": p}], task_id=t) for t, p in plans]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert reward_check.main([str(path)]) == 0  # without --cassettes: not checked
    capsys.readouterr()
    assert reward_check.main([str(path), "--cassettes", str(store)]) == 1
    out = capsys.readouterr().out
    assert "plan below 1.0: none" in out
    assert (
        "plan calls the cassettes do not answer: 2\n"
        "  rows.jsonl row 1 (tool-error): 1 of 1 call(s): 1 recorded tool error\n"
        "  rows.jsonl row 2 (missing): 1 of 1 call(s): 1 cassette miss\n"
    ) in out + "\n"
    assert reward_check.main([str(path), "--cassettes", str(store), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["plan_calls_unanswered"] == [
        "rows.jsonl row 1 (tool-error): 1 of 1 call(s): 1 recorded tool error",
        "rows.jsonl row 2 (missing): 1 of 1 call(s): 1 cassette miss",
    ]


def test_cli_piped_into_a_reader_that_stops_early_exits_without_a_traceback():
    # `reward_check DATASET | head -1`: before, the print met a closed pipe and Python printed a BrokenPipeError
    # traceback after the line head showed
    rows = shlex.quote(str(FIXTURES / "rows_v2.jsonl"))
    command = f"{shlex.quote(sys.executable)} -m skyrl_mcp_env.reward_check {rows}"
    for _ in range(3):
        done = subprocess.run(
            f"{command} | head -1", shell=True, capture_output=True, text=True, cwd=REPO / "python", timeout=300
        )
        assert done.stdout.startswith("gameability report: 5 rows")
        assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
