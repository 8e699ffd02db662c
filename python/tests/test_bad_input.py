"""Bad rows are a clear error naming the row and the field; bad calls are an error observation."""

import copy
import json

import pytest
from conftest import call, extras_of, make_row, play

from skyrl_mcp_env import MCPToolEnv
from skyrl_mcp_env.plan import RowError, plan_from_extras
from skyrl_mcp_env.reward_check import policy_every_tool

ROW = make_row([{"server": "fmp", "tool": "fmp_get_quote", "params": {"symbol": "AAPL"}}], task_id="q1")


def with_gt(**changes):
    row = copy.deepcopy(ROW)
    row["reward_spec"]["ground_truth"].update(changes)
    return extras_of(row, 5)


@pytest.mark.parametrize(
    "extras,message",
    [
        (
            with_gt(tool_sequence=[]),
            r"row q1: reward_spec.ground_truth.tool_sequence is missing or empty \(a row needs a plan\)",
        ),
        (with_gt(tool_sequence=None), "tool_sequence is missing or empty"),
        (
            with_gt(tool_sequence=[{"step": 1, "server": "fmp", "tool": "fmp_get_quote", "params": "{symbol: AAPL}"}]),
            r"row q1: tool_sequence\[0\].params: is not JSON",
        ),
        (
            with_gt(tool_sequence=[{"step": 1, "server": "fmp", "tool": "fmp_get_quote", "params": "[1, 2]"}]),
            r"tool_sequence\[0\].params: expected a JSON object, got list",
        ),
        (
            with_gt(tool_sequence=[{"step": 1, "tool": "fmp_get_quote", "params": "{}"}]),
            r"tool_sequence\[0\].server: is missing",
        ),
        (with_gt(tool_schemas="{not json"), "tool_schemas: is not JSON"),
        ({"data_source": "x", "max_turns": 3}, "reward_spec.ground_truth is missing"),
    ],
)
def test_a_row_the_env_cannot_score_is_a_clear_error(extras, message):
    with pytest.raises(RowError, match=message):
        MCPToolEnv({}, extras)


def test_params_as_objects_are_read_too():
    row = copy.deepcopy(ROW)
    row["reward_spec"]["ground_truth"]["tool_sequence"][0]["params"] = {"symbol": "AAPL"}
    out = play(MCPToolEnv({}, extras_of(row, 5)), [call("fmp_get_quote", {"symbol": "AAPL"}), "done"])[-1]
    assert out["reward"] == 1.0


PALANTIR = make_row(
    [
        {"server": "fmp", "tool": "fmp_search_ticker", "params": {"query": "Palantir"}},
        {
            "server": "fmp",
            "tool": "fmp_get_quote",
            "params": {"symbol": "PLTR"},
            "depends_on": [1],
            "derived_params": ["symbol"],
        },
    ],
    task_id="p1",
)


def _with_provenance(form):
    row = copy.deepcopy(PALANTIR)
    for s in row["reward_spec"]["ground_truth"]["tool_sequence"]:
        for key in ("depends_on", "derived_params"):
            if form == "list":
                s[key] = json.loads(s[key])
            elif form == "missing":
                del s[key]
    return row


@pytest.mark.parametrize("form", ["json", "list", "missing"])
def test_provenance_as_json_text_as_lists_or_missing_is_read(form):
    """skyrl writes depends_on/derived_params as JSON text (Arrow-safe); rows written before have lists or none."""
    assert PALANTIR["reward_spec"]["ground_truth"]["tool_sequence"][1]["depends_on"] == "[1]"
    extras = extras_of(_with_provenance(form), 5)
    steps = plan_from_extras(extras).steps
    derived = () if form == "missing" else ("symbol",)
    assert [(s.depends_on, s.derived_params) for s in steps] == [((), ()), (() if form == "missing" else (1,), derived)]
    # The policy's real ticker (not the plan's illustrative one) matches where "symbol" is derived.
    quote = call("fmp_get_quote", {"symbol": "PLTR.X"})
    out = play(MCPToolEnv({}, extras), [call("fmp_search_ticker", {"query": "Palantir"}), quote, "done"])[-1]
    assert out["reward"] == (0.25 if form == "missing" else 1.0)  # missing: every param literal, 1 of 2 matched


@pytest.mark.parametrize(
    "value,message",
    [("[1", r"tool_sequence\[1\].depends_on: is not JSON"), ('{"a": 1}', r"depends_on: expected a list of int")],
)
def test_provenance_that_is_not_a_list_is_a_clear_error(value, message):
    row = copy.deepcopy(PALANTIR)
    row["reward_spec"]["ground_truth"]["tool_sequence"][1]["depends_on"] = value
    with pytest.raises(RowError, match=message):
        MCPToolEnv({}, extras_of(row, 5))


def test_available_tools_filled_from_the_plan_count_as_unknown():
    listed = [{"call_name": "fmp_get_quote", "server": "fmp", "tool": "fmp_get_quote"}]
    row = copy.deepcopy(ROW)
    row["reward_spec"]["ground_truth"]["available_tools"] = listed
    assert plan_from_extras(extras_of(row, 5)).tools_listed is True
    row["extra_info"]["task_metadata"] = json.dumps({"available_tools_source": "plan"})
    plan = plan_from_extras(extras_of(row, 5))
    assert plan.tools_listed is False and plan.tools == {"fmp_get_quote": ("fmp", "fmp_get_quote")}
    assert policy_every_tool(plan) is None  # the gameability report does not play "every tool" on an unknown offer


def test_unknown_tool_name_in_a_call_is_an_error_observation():
    out = play(MCPToolEnv({}, extras_of(ROW, 5)), [call("fmp_get_qoute", {"symbol": "AAPL"})])[-1]
    assert out["done"] is False
    assert out["observations"][0]["content"].startswith("<tool_response>\nError: unknown tool 'fmp_get_qoute'")
    assert out["metadata"]["invalid_calls"] == 1


@pytest.mark.parametrize(
    "action", ["", "<tool_call></tool_call>", "<tool_call>" + json.dumps("x" * 10000), "\x00\ud800"]
)
def test_odd_turns_never_raise(action):
    env = MCPToolEnv({}, extras_of(ROW, 5))
    env.init([])
    out = env.step(action)
    assert isinstance(out["reward"], float)
    after = env.step("another turn after the end") if out["done"] else out
    assert isinstance(after["done"], bool)
