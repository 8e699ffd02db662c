"""Bad rows are a clear error naming the row and the field; bad calls are an error observation."""

import copy
import json

import pytest
from conftest import call, extras_of, make_row, play

from skyrl_mcp_env import MCPToolEnv
from skyrl_mcp_env.plan import RowError

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
