"""Each property of ../shared/docs/reward.md, with its own trajectory, played through the env."""

import copy
import json
import re
from dataclasses import replace

import pytest
from conftest import call, episode, extras_of, loose_row, make_row, plan_calls, play, v2_row

from skyrl_mcp_env import MCPToolEnv
from skyrl_mcp_env.plan import plan_from_extras
from skyrl_mcp_env.reward import CallRecord, Trajectory, score
from skyrl_mcp_env.reward_check import schedule
from skyrl_mcp_env.tools import ConfigError

FINAL = "Here is the answer."
PARTS = {
    "steps_matched",
    "steps_total",
    "matched_steps",
    "calls",
    "recall",
    "precision",
    "invalid_calls",
    "unmatched_calls",
    "repeated_calls",
    "order_violations",
    "missing_dependency_calls",
    "ungrounded_calls",
    "must_call_tool_called",
    "final_answer",
    "limit_exceeded",
    "completion",
    "strict",
    "strict_finish",
    "strict_min_precision",
    "reward",
    "ended_by",
    "turns",
    "max_turns",
    "cassette_misses",
    "off_plan_tools_called",
    "off_plan_tools_offered",
    "off_plan_factor",
}


@pytest.fixture
def movers(v2_rows):  # gainers(limit 5), losers(limit 5), then send_slack_message depending on both
    return v2_row(v2_rows, "movers-digest-v2")


@pytest.fixture
def palantir(v2_rows):  # search_ticker, then get_quote with the derived param "symbol"
    return v2_row(v2_rows, "palantir-lookup-v2")


# 1. the plan itself -------------------------------------------------------------------------


def test_1_plan_in_order_then_final_answer_scores_1(generated_rows, converted_rows, v2_rows):
    for row in generated_rows + converted_rows + v2_rows:
        # one call per turn, as the prompt asks, then the answer: every row leaves the turn for it
        gt = row["reward_spec"]["ground_truth"]
        assert gt["max_turns"] >= len(gt["tool_sequence"]) + 1, gt["task_id"]
        out = episode(row, plan_calls(row) + [FINAL])
        assert (out["done"], out["reward"], out["metadata"]["ended_by"]) == (True, 1.0, "final_answer"), gt["task_id"]


def test_1_a_row_with_too_few_turns_for_the_answer_gets_its_last_calls_together(v2_rows):
    row = copy.deepcopy(v2_row(v2_rows, "amd-vs-intc-v2"))  # 3 independent calls
    row["reward_spec"]["ground_truth"]["max_turns"] = 3
    one_per_turn = episode(row, plan_calls(row) + [FINAL])
    assert one_per_turn["metadata"]["ended_by"] == "max_turns" and one_per_turn["reward"] == 0.5
    turns = schedule([[c] for c in plan_calls(row)], 3)
    assert episode(row, ["".join(t) for t in turns] + [FINAL])["reward"] == 1.0


def test_1_convert_leaves_a_turn_for_the_answer_where_the_task_gave_max_turns_equal_to_its_steps(converted_rows):
    row = next(
        r for r in converted_rows if r["reward_spec"]["ground_truth"]["task_id"] == "tsla_daily_headline_update_001"
    )
    gt = row["reward_spec"]["ground_truth"]
    assert (gt["max_turns"], len(gt["tool_sequence"])) == (4, 3)
    assert json.loads(row["extra_info"]["task_metadata"])["max_turns_given"] == 3
    out = episode(row, plan_calls(row) + [FINAL])
    assert (out["metadata"]["ended_by"], out["reward"]) == ("final_answer", 1.0)


def test_1_reward_comes_with_the_last_step_only(movers):
    outs = play(MCPToolEnv({}, extras_of(movers)), plan_calls(movers) + [FINAL])
    assert [o["reward"] for o in outs] == [0.0, 0.0, 0.0, 1.0]
    assert [o["done"] for o in outs] == [False, False, False, True]


def test_an_env_whose_init_is_called_again_plays_a_new_episode(movers):
    # before: the second episode began ended (its first step 0.0 and done, at turn 2, with the first one's calls)
    env = MCPToolEnv({}, extras_of(movers))
    first = play(env, plan_calls(movers) + [FINAL])
    second = play(env, plan_calls(movers) + [FINAL])
    assert [(o["reward"], o["done"]) for o in second] == [(o["reward"], o["done"]) for o in first]
    assert second[-1]["metadata"] == first[-1]["metadata"]


# 2. no tool call ----------------------------------------------------------------------------


def test_2_no_tool_call_scores_0(movers):
    out = episode(movers, ["Gainers: NVDA, losers: INTC. Posted."])
    assert (out["done"], out["reward"]) == (True, 0.0)


def test_2_final_answer_without_must_call_tool_scores_0(movers):
    # the losers and the Slack post are right, but must_call_tool (fmp_get_market_gainers) is never called
    out = episode(movers, plan_calls(movers)[1:] + [FINAL])
    assert out["metadata"]["must_call_tool_called"] is False
    assert out["reward"] == 0.0


# 3. spraying calls, limits ------------------------------------------------------------------


def test_3_every_tool_of_the_prompt_scores_at_most_half(movers):
    first = {
        s["tool"]: json.loads(s["params"]) for s in reversed(movers["reward_spec"]["ground_truth"]["tool_sequence"])
    }
    tools = [t["call_name"] for t in movers["reward_spec"]["ground_truth"]["available_tools"]]
    out = episode(movers, [call(t, first.get(t, {})) for t in tools] + [FINAL], max_turns=100)
    assert out["reward"] <= 0.5
    assert out["metadata"]["limit_exceeded"] == "limit:max_tools"


def test_3_a_row_without_limits_gets_the_plans_own():
    # Rows from elsewhere may carry no limits. Without them, on a plan of 3 tools and 1 distractor, calling
    # all 4 tools scored 0.75 (property 3 asks for at most half of the plan's 1.0).
    steps = [{"server": "everything", "tool": t, "params": p} for t, p in (("echo", {"message": "hi"}),
             ("get-sum", {"a": 1, "b": 2}), ("get-tiny-image", {}))]
    offered = [{"server": "everything", "tool": s["tool"], "call_name": s["tool"]} for s in steps]
    row = make_row(steps, available_tools=offered + [{"server": "everything", "tool": "toggle-simulated-logging",
                                                      "call_name": "toggle-simulated-logging"}])
    del row["reward_spec"]["ground_truth"]["limits"]
    spray = [call(s["tool"], s["params"]) for s in steps] + [call("toggle-simulated-logging", {}), FINAL]
    out = episode(row, spray)
    assert out["metadata"]["limit_exceeded"] == "limit:max_tools" and out["reward"] == 0.375
    assert episode(row, plan_calls(row) + [FINAL])["reward"] == 1.0
    lenient = episode(row, spray, {"limits_from_plan": False})  # no limit: the off-plan factor halves it
    assert lenient["metadata"]["limit_exceeded"] is None and lenient["reward"] == 0.375
    assert episode(row, spray, {"limits_from_plan": False, "off_plan_penalty": 0})["reward"] == 0.75


def test_3_every_tool_in_one_turn_scores_at_most_half(movers):
    first = {s["tool"]: json.loads(s["params"]) for s in movers["reward_spec"]["ground_truth"]["tool_sequence"]}
    tools = [t["call_name"] for t in movers["reward_spec"]["ground_truth"]["available_tools"]]
    out = episode(movers, ["".join(call(t, first.get(t, {})) for t in tools)])
    assert out["done"] and out["reward"] <= 0.5


def test_3_same_tool_many_times_scores_at_most_half(movers):
    sprays = [call("fmp_get_market_gainers", {"limit": n}) for n in range(1, 9)]
    out = episode(movers, ["".join(sprays)] + plan_calls(movers)[1:] + [FINAL])
    assert 0 < out["reward"] <= 0.5


# limits of 5 tools and 3 servers (a task's are often the run's), looser than the 2 or 3 tools these plans use
LOOSE_ROWS = {
    "2 tools, 1 distractor": loose_row(["echo", "get-sum"], ["toggle-simulated-logging"]),
    "3 tools, 1 distractor": loose_row(["echo", "get-sum", "get-tiny-image"], ["toggle-simulated-logging"]),
    "3 tools, 2 distractors": loose_row(["echo", "get-sum", "get-tiny-image"], ["toggle-simulated-logging", "get-env"]),
}


def _every_offered_tool(row):
    """Each offered tool once, the plan's params for the plan's tools and {} for the others."""
    gt = row["reward_spec"]["ground_truth"]
    first = {s["tool"]: json.loads(s["params"]) for s in reversed(gt["tool_sequence"])}
    return [call(t["call_name"], first.get(t["call_name"], {})) for t in gt["available_tools"]]


@pytest.mark.parametrize("one_turn", [False, True], ids=["a call a turn", "one turn"])
@pytest.mark.parametrize("name", list(LOOSE_ROWS))
def test_3_every_tool_scores_at_most_half_under_limits_looser_than_the_plan(name, one_turn):
    # before: no limit was reached and only precision counted the distractors: 0.667, 0.75 and 0.6, in one
    # turn or a call a turn (the plans have no depends_on)
    row = LOOSE_ROWS[name]
    spray = _every_offered_tool(row)
    out = episode(row, (["".join(spray)] if one_turn else spray) + [FINAL], max_turns=10)
    plan = episode(row, plan_calls(row) + [FINAL], max_turns=10)
    meta = out["metadata"]
    assert plan["reward"] == 1.0
    assert meta["limit_exceeded"] is None and meta["steps_matched"] == meta["steps_total"]
    assert out["reward"] <= 0.5 * plan["reward"] and out["reward"] < plan["reward"]
    assert meta["off_plan_tools_called"] == meta["off_plan_tools_offered"] and meta["off_plan_factor"] == 0.5


def test_3_a_few_extra_lookups_out_of_many_offered_tools_cost_little(movers):
    # the plan, then one read-only lookup outside it (gainers, losers, market status, post), under limits
    # that allow it: precision 3/4, and 1 of the 22 tools the plan does not use costs 0.5/22 more
    row = copy.deepcopy(movers)
    row["reward_spec"]["ground_truth"]["limits"] = {"max_tools": 5, "max_servers": 3}
    gainers, losers, post = plan_calls(row)
    out = episode(row, [gainers, losers, call("polygon_get_market_status", {}), post, FINAL], max_turns=6)
    meta = out["metadata"]
    assert (meta["off_plan_tools_called"], meta["off_plan_tools_offered"]) == (1, 22)
    assert out["reward"] == pytest.approx(0.75 * (1 - 0.5 / 22))


def test_3_off_plan_penalty_0_restores_precision_alone():
    row = LOOSE_ROWS["2 tools, 1 distractor"]
    out = episode(row, _every_offered_tool(row) + [FINAL], {"off_plan_penalty": 0})
    assert out["reward"] == pytest.approx(2 / 3) and out["metadata"]["off_plan_factor"] == 1.0
    full = episode(row, _every_offered_tool(row) + [FINAL], {"off_plan_penalty": 1})
    assert full["reward"] == 0.0


@pytest.mark.parametrize("value", [-0.1, 1.5, True, "0.5", float("nan")])
def test_3_off_plan_penalty_is_a_number_from_0_to_1(movers, value):
    with pytest.raises(ConfigError, match=re.escape(f"off_plan_penalty: expected a number from 0 to 1, got {value!r}")):
        MCPToolEnv({"off_plan_penalty": value}, extras_of(movers))


def test_3_exceeding_max_servers_ends_the_episode(movers):
    # max_servers is 2 (fmp, slack): a third server ends the episode at once
    third = call("polygon_get_market_status", {})
    out = episode(movers, [plan_calls(movers)[0], call("tavily_search", {"query": "movers"}), third, FINAL])
    assert out["done"] and out["metadata"]["limit_exceeded"] == "limit:max_servers"
    assert out["metadata"]["turns"] == 3 and out["reward"] < 0.5


def test_3_exceeding_max_turns_ends_without_full_credit(movers):
    # all three plan calls, but the trainer allows 3 turns: no turn is left for the final answer
    out = episode(movers, plan_calls(movers) + [FINAL], max_turns=3)
    assert out["done"] and out["metadata"]["ended_by"] == "max_turns"
    assert out["metadata"]["steps_matched"] == 3 and out["reward"] == 0.5


ECHO_WITH_A_DISTRACTOR = make_row(  # one echo step; max_tools 1, so a second distinct tool ends the episode
    [{"server": "everything", "tool": "echo", "params": {"message": "hello"}}],
    available_tools=[
        {"server": "everything", "tool": "echo", "call_name": "echo"},
        {"server": "everything", "tool": "toggle-simulated-logging", "call_name": "toggle-simulated-logging"},
    ],
)


@pytest.mark.parametrize("same_turn", [False, True])
def test_3_a_call_refused_by_a_limit_matches_no_step(same_turn):
    # before: the echo that broke max_tools was never run, yet matched the plan's only step (1 of 1)
    toggle, echo = call("toggle-simulated-logging", {}), call("echo", {"message": "hello"})
    out = episode(ECHO_WITH_A_DISTRACTOR, [toggle + echo] if same_turn else [toggle, echo, FINAL])
    meta = out["metadata"]
    assert meta["ended_by"] == meta["limit_exceeded"] == "limit:max_tools"
    assert meta["tool_results"] == {"miss": 1}  # only the toggle reached the tool backend
    assert (meta["steps_matched"], meta["matched_steps"], meta["must_call_tool_called"]) == (0, [], False)
    assert out["reward"] == 0.0


def test_3_the_scorer_refuses_the_call_that_breaks_a_limit_and_every_later_one(movers):
    plan = plan_from_extras(extras_of(movers))  # max_servers 2: fmp and polygon, then slack breaks it
    gainers, losers, post = (CallRecord(0, s.call_name, s.params, s.server) for s in plan.steps)
    status = CallRecord(2, "polygon_get_market_status", {}, "polygon")
    calls = (replace(gainers, turn=1), status, replace(post, turn=3), replace(losers, turn=4))
    parts = score(plan, Trajectory(calls, None, None))
    assert parts["limit_exceeded"] == "limit:max_servers"
    assert parts["matched_steps"] == [1] and parts["invalid_calls"] == 2  # losers came after the breach


def test_3_max_turns_is_the_smaller_of_row_and_trainer(movers):
    assert MCPToolEnv({}, extras_of(movers, max_turns=2)).max_turns == 2
    assert MCPToolEnv({}, extras_of(movers, max_turns=50)).max_turns == 5  # the row's
    assert MCPToolEnv({}, {k: v for k, v in extras_of(movers).items() if k != "max_turns"}).max_turns == 5


# 4. literal params --------------------------------------------------------------------------


def test_4_wrong_literal_param_loses_that_step(v2_rows):
    row = v2_row(v2_rows, "amd-vs-intc-v2")  # quote AMD, quote INTC, news
    calls = plan_calls(row)
    calls[1] = call("fmp_get_quote", {"symbol": "NVDA"})
    out = episode(row, calls + [FINAL])
    assert out["metadata"]["matched_steps"] == [1, 3]
    assert out["reward"] < 1.0


def test_4_literal_params_compare_as_canonical_json(v2_rows):
    row = v2_row(v2_rows, "amd-vs-intc-v2")
    calls = plan_calls(row)
    calls[2] = (
        '<tool_call>{"name": "fmp_get_stock_news", "arguments": {"limit": 4.0, "tickers": "AMD,INTC"}}</tool_call>'
    )
    assert episode(row, calls + [FINAL])["reward"] == 1.0


def test_4_omitted_param_may_be_absent_or_its_schema_default(v2_rows):
    row = copy.deepcopy(v2_row(v2_rows, "slack-catchup-v2"))  # get_slack_channel_history: limit default 10
    step = row["reward_spec"]["ground_truth"]["tool_sequence"][1]
    step["params"] = json.dumps({"channel_id": "C04TRADING"})  # the plan omits limit
    first = plan_calls(row)[0]
    for limit, reward in ((None, 1.0), (10, 1.0), (15, 0.25)):
        args = {"channel_id": "C0OTHER"} if limit is None else {"channel_id": "C0OTHER", "limit": limit}
        assert episode(row, [first, call("get_slack_channel_history", args), FINAL])["reward"] == reward


def test_4_derived_param_any_valid_value_matches(palantir):
    out = episode(palantir, [plan_calls(palantir)[0], call("fmp_get_quote", {"symbol": "PLTR.US"}), FINAL])
    assert out["reward"] == 1.0


def test_4_derived_param_missing_or_invalid_loses_the_step(palantir):
    search = plan_calls(palantir)[0]
    assert episode(palantir, [search, call("fmp_get_quote", {}), FINAL])["metadata"]["matched_steps"] == [1]
    assert episode(palantir, [search, call("fmp_get_quote", {"symbol": 42}), FINAL])["metadata"]["matched_steps"] == [1]


def test_4_without_tool_schemas_derived_params_need_presence_only(palantir):
    row = copy.deepcopy(palantir)
    del row["reward_spec"]["ground_truth"]["tool_schemas"]
    assert episode(row, [plan_calls(row)[0], call("fmp_get_quote", {"symbol": 42}), FINAL])["reward"] == 1.0


# 5. depends_on order ------------------------------------------------------------------------


def test_5_breaking_depends_on_scores_below_a_valid_order(movers):
    gainers, losers, post = plan_calls(movers)
    valid = episode(movers, [losers, gainers, post, FINAL])  # no dependency between the first two
    broken = episode(movers, [gainers, post, losers, FINAL])  # the post before the losers it depends on
    assert valid["reward"] == 1.0
    assert broken["reward"] < valid["reward"]
    assert broken["metadata"]["order_violations"] == 1


def test_5_a_dependent_call_in_the_same_turn_as_its_dependency_does_not_match(movers):
    gainers, losers, post = plan_calls(movers)
    together = episode(movers, [gainers + losers + post, FINAL])  # the post cannot have seen the movers
    apart = episode(movers, [gainers + losers, post, FINAL])
    assert together["metadata"]["matched_steps"] == [1, 2] and together["metadata"]["order_violations"] == 1
    assert apart["reward"] == 1.0
    lenient = episode(movers, [gainers + losers + post, FINAL], {"dependencies_across_turns": False})
    assert lenient["reward"] == 1.0


def test_5_a_call_whose_dependency_came_later_is_an_order_violation_one_never_called_is_not(movers):
    # before: the post without ever calling the losers it depends on counted as an order violation
    gainers, losers, post = plan_calls(movers)
    later = [o["metadata"] for o in play(MCPToolEnv({}, extras_of(movers)), [gainers, post, losers, FINAL])]
    never = episode(movers, [gainers, post, FINAL])["metadata"]
    in_order = episode(movers, plan_calls(movers) + [FINAL])["metadata"]
    counts = lambda m: (m["unmatched_calls"], m["order_violations"], m["missing_dependency_calls"])
    assert counts(later[-1]) == (1, 1, 0)  # the losers were called, after the post
    assert counts(never) == (1, 0, 1)  # the losers were never called
    assert counts(in_order) == (0, 0, 0) and in_order["reward"] == 1.0
    # the counts describe the calls so far: right after the post, its dependency was not called yet
    assert counts(later[1]) == (1, 0, 1)
    assert (never["reward"], later[-1]["reward"]) == (pytest.approx(1 / 3 * 1 / 2), pytest.approx(2 / 3 * 2 / 3))


def test_5_a_dependency_called_only_with_wrong_params_is_a_missing_dependency(movers):
    gainers, losers, post = plan_calls(movers)
    wrong = call("fmp_get_market_losers", {"limit": 6})
    meta = episode(movers, [gainers, wrong, post, FINAL])["metadata"]
    assert (meta["unmatched_calls"], meta["order_violations"], meta["missing_dependency_calls"]) == (2, 0, 1)
    together = episode(movers, [gainers + losers + post, FINAL])["metadata"]  # same turn: an order violation
    assert (together["order_violations"], together["missing_dependency_calls"]) == (1, 0)


# 6. malformed calls -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        '<tool_call>{"name": "fmp_get_market_gainers", "arguments": {"limit": 5}</tool_call>',
        call("no_such_tool", {"limit": 5}),
        '<tool_call>{"name": "fmp_get_market_gainers", "arguments": "limit=5"}</tool_call>',
        '<tool_call>{"name": "fmp_get_market_gainers", "arguments": {"limit": 5}}',
    ],
)
def test_6_malformed_call_gets_an_error_observation_and_costs_credit(movers, bad):
    env = MCPToolEnv({}, extras_of(movers))
    env.init([])
    out = env.step(bad)
    assert out["done"] is False
    [obs] = out["observations"]
    assert obs["role"] == "user" and obs["content"].startswith("<tool_response>\nError: ")
    assert out["metadata"]["invalid_calls"] == 1
    for action in plan_calls(movers) + [FINAL]:
        out = env.step(action)
    assert 0 < out["reward"] < 1.0


def test_6_unknown_tool_lists_the_offered_tools(movers):
    out = play(MCPToolEnv({}, extras_of(movers)), [call("get_weather", {})])[-1]
    assert "unknown tool 'get_weather'" in out["observations"][0]["content"]
    assert "fmp_get_market_gainers" in out["observations"][0]["content"]


# 7. determinism -----------------------------------------------------------------------------


def test_7_same_trajectory_same_reward(movers, tmp_path):
    gainers, losers, post = plan_calls(movers)
    actions = [gainers, call("no_such_tool", {}), post, losers, FINAL]
    runs = [episode(movers, actions) for _ in range(3)]
    assert all(r == runs[0] for r in runs)
    # tool results do not enter the score: a cassette that answers every call changes nothing
    cassette = tmp_path / "cassettes.jsonl"
    cassette.write_text("")
    assert episode(movers, actions, {"cassettes": str(tmp_path)})["reward"] == runs[0]["reward"]


def test_7_the_scorer_is_a_function_of_the_calls(movers):
    plan = plan_from_extras(extras_of(movers))
    calls = tuple(CallRecord(turn, s.call_name, s.params, s.server) for turn, s in enumerate(plan.steps, start=1))
    trajectory = Trajectory(calls, "answer", "final_answer")
    assert score(plan, trajectory) == score(plan, trajectory)
    assert score(plan, trajectory)["reward"] == 1.0


# 8. parts in metadata -----------------------------------------------------------------------


def test_8_every_step_returns_the_parts(movers):
    outs = play(MCPToolEnv({}, extras_of(movers)), plan_calls(movers)[:2] + [call("x", {}), FINAL])
    for out in outs:
        assert PARTS <= set(out["metadata"])
    last = outs[-1]["metadata"]
    assert (last["steps_matched"], last["steps_total"], last["invalid_calls"], last["final_answer"]) == (2, 3, 1, True)
    assert MCPToolEnv({}, extras_of(movers)).get_metrics() == {"cassette_misses": 0.0}


# a call that fits several steps ---------------------------------------------------------------

# search; a quote whose symbol is derived from the search (the plan guessed PLTR); a quote of MSFT
TWO_QUOTES_STEPS = [
    {"server": "s", "tool": "search", "params": {"query": "Palantir"}},
    {"server": "s", "tool": "quote", "params": {"symbol": "PLTR"}, "depends_on": [1], "derived_params": ["symbol"]},
    {"server": "s", "tool": "quote", "params": {"symbol": "MSFT"}},
]
TWO_QUOTES = make_row(TWO_QUOTES_STEPS, max_turns=8)
SEARCH = call("search", {"query": "Palantir"})


@pytest.mark.parametrize("same_turn", [True, False])
@pytest.mark.parametrize("symbols", [["PLTR", "MSFT"], ["MSFT", "PLTR"]])
def test_a_call_fitting_a_literal_and_a_derived_step_takes_the_literal_one(symbols, same_turn):
    # before: quote MSFT first took the derived step (the first in plan order), PLTR then fit nothing: 0.444
    quotes = [call("quote", {"symbol": s}) for s in symbols]
    out = episode(TWO_QUOTES, [SEARCH] + (["".join(quotes)] if same_turn else quotes) + [FINAL])
    assert out["metadata"]["matched_steps"] == [1, 2, 3] and out["reward"] == 1.0


# two steps of one tool, each with one literal and one derived param: {a: 1, b: *} and {a: *, b: 2}
CROSSED = [
    {"server": "s", "tool": "t", "params": {"a": 1, "b": 0}, "derived_params": ["b"]},
    {"server": "s", "tool": "t", "params": {"a": 0, "b": 2}, "derived_params": ["a"]},
]


@pytest.mark.parametrize("same_turn", [True, False])
@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_a_later_call_moves_an_earlier_one_to_another_step_it_fits(order, same_turn):
    # {a: 1, b: 2} fits both steps (first in plan order: step 1); {a: 1, b: 5} fits step 1 only. Whatever
    # the order, the assignment that matches both steps is found (the earlier call moves to step 2).
    calls = [call("t", {"a": 1, "b": 2}), call("t", {"a": 1, "b": 5})]
    actions = [calls[i] for i in order]
    out = episode(make_row(CROSSED), (["".join(actions)] if same_turn else actions) + [FINAL])
    assert out["metadata"]["matched_steps"] == [1, 2] and out["reward"] == 1.0


def test_moving_a_call_never_breaks_a_depends_on():
    # step 3 (tool u) depends on step 1, matched by {a: 1, b: 2} in turn 1; {a: 1, b: 5} in turn 3 fits step
    # 1 only, and taking it over would leave step 3 matched before its dependency: it stays unmatched
    row = make_row(CROSSED + [{"server": "s", "tool": "u", "params": {}, "depends_on": [1]}])
    out = episode(row, [call("t", {"a": 1, "b": 2}), call("u", {}), call("t", {"a": 1, "b": 5}), FINAL])
    assert out["metadata"]["matched_steps"] == [1, 3] and out["metadata"]["unmatched_calls"] == 1


def test_a_dependent_call_may_move_an_earlier_call_to_the_dependency_it_fits():
    # the post depends on the derived quote; quote MSFT fits it and the literal MSFT step. Preferring the
    # literal step must not cost the post: the MSFT call moves to the derived step (3 steps, not 2)
    post = {"server": "s", "tool": "post", "params": {"text": "x"}, "depends_on": [2], "derived_params": ["text"]}
    row = make_row([*TWO_QUOTES_STEPS, post], max_turns=8)
    out = episode(row, [SEARCH, call("quote", {"symbol": "MSFT"}), call("post", {"text": "MSFT 410"}), FINAL])
    assert out["metadata"]["matched_steps"] == [1, 2, 4] and out["metadata"]["order_violations"] == 0


def test_the_assignment_is_deterministic():
    quotes = "".join(call("quote", {"symbol": s}) for s in ("MSFT", "PLTR", "MSFT", "NVDA"))
    runs = [episode(TWO_QUOTES, [SEARCH, quotes, FINAL])["metadata"] for _ in range(3)]
    assert all(r == runs[0] for r in runs)
    assert runs[0]["matched_steps"] == [1, 2, 3] and runs[0]["unmatched_calls"] == 2


# repeats, strict mode, judge ----------------------------------------------------------------


def test_repeating_a_call_earns_nothing_twice(movers):
    gainers, losers, post = plan_calls(movers)
    out = episode(movers, [gainers + gainers, losers, post, FINAL])
    assert out["metadata"]["repeated_calls"] == 1 and out["metadata"]["steps_matched"] == 3
    assert out["reward"] == 0.75


def test_strict_mode_is_zero_unless_the_whole_plan_matched(movers):
    gainers, losers, post = plan_calls(movers)
    assert episode(movers, [gainers, losers, FINAL], {"strict": True})["reward"] == 0.0
    assert episode(movers, [gainers, losers, FINAL])["reward"] > 0.0
    assert episode(movers, [gainers, losers, post, FINAL], {"strict": True})["reward"] == 1.0


@pytest.mark.parametrize(
    "ending,max_turns",
    [
        ("max_turns", 3),  # the whole plan, then calls again until max_turns: no answer
        ("limit:max_tools", 5),  # the whole plan, then a fourth tool (max_tools 3) in the answer's place
        ("empty", 5),  # the whole plan, then an empty answer
    ],
)
def test_strict_mode_is_zero_for_the_whole_plan_without_a_finished_episode(movers, ending, max_turns):
    # before: 0.5 x precision (0.5, 0.375, 0.5 here), positive, so SkyRL's pass_at_n counted an episode that
    # ended at max_turns, on a limit or without an answer as solved; the gameability report's every-tool policy
    # passed strict mode on nvda-quote-and-profile-0001 (0.333)
    gainers, losers, post = plan_calls(movers)
    last = {"max_turns": post, "limit:max_tools": post + call("list_slack_channels", {}), "empty": post}[ending]
    actions = [gainers, losers, last] + ([] if ending != "empty" else ["  "])
    out = episode(movers, actions, {"strict": True}, max_turns=max_turns)
    assert out["metadata"]["steps_matched"] == 3 and out["metadata"]["completion"] == 0.5
    assert out["reward"] == 0.0 and out["metadata"]["strict_finish"] is True
    lenient = episode(movers, actions, {"strict": True, "strict_finish": False}, max_turns=max_turns)
    assert lenient["reward"] == episode(movers, actions, max_turns=max_turns)["reward"] > 0.0


def test_strict_mode_is_zero_for_the_whole_plan_among_many_more_calls(movers):
    # before: a spray of calls holding the plan's kept recall x precision (3/7 here), positive, so SkyRL's pass_at_n
    # counted it as solved
    gainers, losers, post = plan_calls(movers)
    extra = [call("fmp_get_market_gainers", {"limit": n}) for n in (1, 2, 3, 4)]  # off the plan: limit 5
    spray = [gainers + losers + "".join(extra), post, FINAL]
    out = episode(movers, spray, {"strict": True})
    assert out["metadata"]["steps_matched"] == 3 and out["metadata"]["precision"] == pytest.approx(3 / 7)
    assert out["reward"] == 0.0 and out["metadata"]["strict_min_precision"] == 0.5
    lenient = episode(movers, spray, {"strict": True, "strict_min_precision": 0})
    assert lenient["reward"] == episode(movers, spray)["reward"]
    # at most as many calls off the plan as on it still passes (precision 0.5)
    three = [gainers + losers + "".join(extra[:3]), post, FINAL]
    assert episode(movers, three, {"strict": True})["reward"] == episode(movers, three)["reward"] > 0.0


def test_judge_is_off_by_default_and_scales_the_reward_when_given(movers):
    seen = {}

    def judge(final_answer, rubric, extras):
        seen.update(answer=final_answer, rubric=rubric["name"])
        return 0.5

    actions = plan_calls(movers) + [FINAL]
    assert MCPToolEnv({}, extras_of(movers)).judge is None
    out = episode(movers, actions, {"judge": judge})
    assert (out["reward"], out["metadata"]["judge"]) == (0.5, 0.5)
    assert seen == {"answer": FINAL, "rubric": "movers-digest-v2 rubric"}


def test_judge_by_import_path_and_a_failing_judge(movers):
    actions = plan_calls(movers) + [FINAL]
    out = episode(movers, actions, {"judge": "test_reward:_failing_judge"})
    assert out["reward"] == 0.0 and "RuntimeError: judge down" in out["metadata"]["judge_error"]
    out = episode(movers, actions, {"judge": "test_reward:_failing_judge", "judge_errors": "rule"})
    assert out["reward"] == 1.0 and "RuntimeError: judge down" in out["metadata"]["judge_error"]


@pytest.mark.parametrize("value", ["keep", "Rule", True, 0])
def test_judge_errors_takes_zero_or_rule_only(movers, value):
    with pytest.raises(ConfigError, match=re.escape(f'judge_errors: expected "zero" or "rule", got {value!r}')):
        MCPToolEnv({"judge_errors": value}, extras_of(movers))


def _failing_judge(final_answer, rubric, extras):
    raise RuntimeError("judge down")


def _renamed_judge(answer, rubric, extras):
    return 1.0


def test_a_judge_without_the_judge_keywords_is_a_config_error(movers):
    # before: TypeError on every episode, recorded as judge_error, the rule reward kept
    def extra_param(final_answer, rubric, extras, model):
        return 1.0

    for judge, name in (
        ("test_reward:_renamed_judge", "test_reward:_renamed_judge"),
        (_renamed_judge, "_renamed_judge"),
        (extra_param, "extra_param"),
        (lambda final_answer: 1.0, "<lambda>"),
    ):
        with pytest.raises(ConfigError, match=rf"judge .*{re.escape(name)}.*judge\(final_answer=, rubric=, extras=\)"):
            MCPToolEnv({"judge": judge}, extras_of(movers))


def test_a_judge_taking_kwargs_or_keyword_only_parameters_is_accepted(movers):
    def kwargs_judge(**kwargs):
        return 0.5 if set(kwargs) == {"final_answer", "rubric", "extras"} else 0.0

    def keyword_only(*, final_answer, rubric, extras, model="m"):
        return 0.5

    for judge in (kwargs_judge, keyword_only):
        assert episode(movers, plan_calls(movers) + [FINAL], {"judge": judge})["reward"] == 0.5


@pytest.mark.parametrize("verdict", [float("nan"), float("inf"), float("-inf"), "0.7", None, [1.0]])
def test_a_judge_verdict_that_is_not_a_finite_number_is_a_judge_error(movers, verdict):
    # before: NaN became a judge score of 0.0 (reward 0), "0.7" was read as 0.7
    config = {"judge": lambda final_answer, rubric, extras: verdict}
    out = episode(movers, plan_calls(movers) + [FINAL], config)
    assert out["reward"] == 0.0 and "judge" not in out["metadata"]
    assert "not a finite number" in out["metadata"]["judge_error"]
    assert episode(movers, plan_calls(movers) + [FINAL], {**config, "judge_errors": "rule"})["reward"] == 1.0




@pytest.mark.parametrize(
    "ending,max_turns",
    [
        pytest.param(["   "], 5, id="empty answer"),
        pytest.param(["<think>done</think>"], 5, id="reasoning only"),
        pytest.param([], 3, id="no answer: the plan fills max_turns"),
        pytest.param([call("fmp_get_quote", {"symbol": "NVDA"})], 5, id="a tool past max_tools"),
    ],
)
def test_an_episode_without_a_final_answer_gets_no_more_than_the_judge_would_give(movers, ending, max_turns):
    # before: the judge was called only when there was an answer, so an empty answer (0.5), the plan run
    # into max_turns (0.5) or ended on purpose with a call past max_tools (0.375) kept the rule reward
    # unjudged and beat the plan with an answer the judge rated 0.2
    judge = {"judge": lambda final_answer, rubric, extras: 0.2}
    answered = episode(movers, plan_calls(movers) + [FINAL], judge)
    skipped = episode(movers, plan_calls(movers) + ending, judge, max_turns=max_turns)
    assert answered["reward"] == pytest.approx(0.2)
    assert skipped["done"] and skipped["metadata"]["final_answer"] is False
    assert skipped["metadata"]["judge"] == 0.0 and skipped["reward"] == 0.0


def test_a_call_is_validated_once_however_many_turns_score_it_again(movers, monkeypatch):
    # before: the env scores the whole trajectory after every turn, validating every earlier call again, so a slow
    # check (uniqueItems over items that do not sort: ~2 s for one 17 KB call) added up turn after turn
    from skyrl_mcp_env import reward

    checked = []
    real = reward._check

    def counted(schema, arguments, cleared):
        checked.append((schema, arguments))
        return real(schema, arguments, cleared)

    monkeypatch.setattr(reward, "_check", counted)
    monkeypatch.setattr(reward, "_VERDICTS", {})
    gainers, losers, post = plan_calls(movers)
    out = episode(movers, [gainers, losers, post, FINAL])
    assert out["reward"] == 1.0
    keys = [(schema, json.dumps(a, sort_keys=True)) for schema, a in checked]
    assert len(keys) == len(set(keys)) == 3  # each of the three calls once, though scored after each of 4 turns


@pytest.mark.parametrize(
    ("schema", "first", "second"),
    [
        ({"type": "object", "properties": {"x": {"maximum": 2**53}}}, {"x": 2**53}, {"x": 2**53 + 1}),
        (
            {"$schema": "http://json-schema.org/draft-04/schema#", "properties": {"x": {"type": "integer"}}},
            {"x": 1},
            {"x": 1.0},
        ),
    ],
    ids=["beyond-2^53", "draft-04-integer-1.0"],
)
def test_a_kept_verdict_is_never_another_values(schema, first, second, monkeypatch):
    # the first cache keyed arguments by canonical JSON, which writes 2**53 and 2**53 + 1 (or 1 and 1.0) alike: the
    # first value seen decided for both, and one rollout's verdict leaked into another's
    from skyrl_mcp_env import reward

    monkeypatch.setattr(reward, "_VERDICTS", {})
    assert (reward._is_valid(schema, first), reward._is_valid(schema, second)) == (True, False)
    assert (reward._is_valid(schema, second), reward._is_valid(schema, first)) == (False, True)


def test_kept_verdicts_go_least_recently_used_first(monkeypatch):
    from skyrl_mcp_env import reward

    monkeypatch.setattr(reward, "_VERDICTS", {})
    monkeypatch.setattr(reward, "_MAX_VERDICTS", 2)
    schema = {"type": "object"}
    for n in (1, 2, 1, 3):  # 1 used again after 2: 3 pushes 2 out, not 1
        reward._is_valid(schema, {"n": n})
    assert sorted(json.loads(k[1])["n"] for k in reward._VERDICTS) == [1, 3]
