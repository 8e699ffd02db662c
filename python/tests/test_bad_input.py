"""Bad rows are a clear error naming the row and the field; bad calls are an error observation."""

import collections.abc
import copy
import datetime
import json
import re

import pytest
from conftest import FIXTURES, call, extras_of, make_row, play

from skyrl_mcp_env import MCPToolEnv, reward_check
from skyrl_mcp_env.plan import RowError, plan_from_extras
from skyrl_mcp_env.reward_check import check_rows, policy_every_tool
from skyrl_mcp_env.tools import ConfigError

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


def test_an_unknown_tool_name_is_echoed_cut_short():
    # The observation repeated the whole name the policy wrote: a 1,000,000-character name, 1,000,617 characters.
    out = play(MCPToolEnv({}, extras_of(ROW, 5)), [call("x" * 1_000_000, {})])[-1]
    content = out["observations"][0]["content"]
    assert len(content) < 2_000
    assert "Error: unknown tool 'xxx" in content and "999802 more characters cut" in content
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


# Integers in a row ---------------------------------------------------------------------------------


def _set(path, value, extras_max_turns=5):
    """ROW's extras with the field at ``path`` (keys and indexes under ground_truth) set to ``value``."""
    row = copy.deepcopy(ROW)
    target = row["reward_spec"]["ground_truth"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return extras_of(row, extras_max_turns)


INTEGER_FIELDS = [
    (("max_turns",), "max_turns"),
    (("limits", "max_tools"), "limits.max_tools"),
    (("limits", "max_servers"), "limits.max_servers"),
    (("tool_sequence", 0, "step"), r"tool_sequence\[0\].step"),
]
INTEGER_IDS = ["max_turns", "limits.max_tools", "limits.max_servers", "tool_sequence[0].step"]


@pytest.mark.parametrize("path,field", INTEGER_FIELDS, ids=INTEGER_IDS)
@pytest.mark.parametrize("value", ["abc", "x", "3", True, 3.5, float("nan"), 0, -3, [1], {"n": 1}])
def test_an_integer_field_that_is_not_an_integer_of_at_least_1_is_a_row_error(path, field, value):
    # before: "abc"/"x" raised a bare ValueError from int() (a list or NaN a bare TypeError/ValueError), while
    # "3" became 3, True became 1 and 3.5 became 3; 0 and negatives were taken (a step 0 as "not given")
    with pytest.raises(RowError, match=rf"^row q1: {field}: expected an integer >= 1, got {re.escape(repr(value))}$"):
        MCPToolEnv({}, _set(path, value))


@pytest.mark.parametrize("path,field", INTEGER_FIELDS, ids=INTEGER_IDS)
def test_an_integer_field_may_be_an_integral_float_as_json_schema_integer_allows(path, field):
    """The row contract's Int is JSON Schema "integer": 3.0 is the JSON number 3 (JavaScript reads both alike)."""
    plan = plan_from_extras(_set(path, 3.0))
    value = {"max_turns": plan.max_turns, "limits.max_tools": plan.max_tools, "limits.max_servers": plan.max_servers}
    got = value.get(field, plan.steps[0].step)
    assert got == 3 and type(got) is int


@pytest.mark.parametrize("value", ["abc", True, 0, -1, 2.5])
def test_the_trainers_max_turns_in_extras_that_is_not_an_integer_of_at_least_1_is_a_row_error(value):
    # before: "abc" raised a bare ValueError from int(), True became 1 turn, 0 and -1 ended every episode at once
    extras = extras_of(ROW, 5)
    extras["max_turns"] = value
    with pytest.raises(
        RowError, match=rf"^row q1: extras max_turns \(the trainer's generator.max_turns\): .*{re.escape(repr(value))}"
    ):
        MCPToolEnv({}, extras)


@pytest.mark.parametrize(
    "path,value,message",
    [
        (
            ("tool_sequence", 0, "depends_on"),
            "[true]",
            r"tool_sequence\[0\].depends_on: expected a list of int .*got '\[true\]'",
        ),
        (("tool_sequence", 0, "depends_on"), [1.5], r"tool_sequence\[0\].depends_on: expected a list of int"),
        (
            ("tool_sequence", 0, "derived_params"),
            "[1]",
            r"tool_sequence\[0\].derived_params: expected a list of str .*got '\[1\]'",
        ),
        (("tool_sequence", 0, "call_name"), ["x"], r"tool_sequence\[0\].call_name: expected a string, got \['x'\]"),
        (("limits",), "x", r"row q1: limits: expected an object, got 'x'"),
        (("success",), [1], r"row q1: success: expected an object, got \[1\]"),
        (("success", "must_call_tool"), 5, r"row q1: success.must_call_tool: expected a tool name \(a string\), got 5"),
        (("available_tools",), 5, r"row q1: available_tools: expected a list of tools, got 5"),
        (("available_tools",), {"fmp_get_quote": {}}, r"row q1: available_tools: expected a list of tools"),
        (
            ("available_tools",),
            [{"server": "fmp", "tool": "fmp_get_quote", "call_name": ["x"]}],
            r"row q1: available_tools\[0\].call_name: expected a string, got \['x'\]",
        ),
    ],
    ids=[
        "depends_on-bool",
        "depends_on-fraction",
        "derived_params-number",
        "call_name-list",
        "limits-string",
        "success-list",
        "must_call_tool-number",
        "available_tools-number",
        "available_tools-object",
        "available_tools-call_name-list",
    ],
)
def test_other_wrongly_typed_row_fields_are_row_errors_never_coerced(path, value, message):
    # before: depends_on [true] became [1], derived_params [1] became ["1"], a 1.5 dependency became 1; a list
    # call_name was an unhashable TypeError, limits/success not an object an AttributeError, available_tools 5
    # a TypeError (and an object of tools was read as a list of its keys)
    with pytest.raises(RowError, match=message):
        MCPToolEnv({}, _set(path, value))


TWO = make_row(
    [
        {"server": "fmp", "tool": "fmp_search_ticker", "params": {"query": "Palantir"}},
        {"server": "fmp", "tool": "fmp_get_quote", "params": {"symbol": "PLTR"}, "depends_on": [1]},
    ],
    task_id="q2",
)


def _two(change):
    row = copy.deepcopy(TWO)
    change(row["reward_spec"]["ground_truth"])
    return extras_of(row, 5)


def _step_field(i, key, value):
    return lambda gt: gt["tool_sequence"][i].__setitem__(key, value)


@pytest.mark.parametrize(
    "change,message",
    [
        (_step_field(1, "depends_on", "[7]"), r"row q2: tool_sequence\[1\].depends_on: no step 7 in the plan \(steps: 1, 2\)"),
        (_step_field(1, "depends_on", "[2]"), r"tool_sequence\[1\].depends_on: step 2 is the step itself"),
        (_step_field(0, "depends_on", "[2]"), r"tool_sequence\[0\].depends_on: step 2 is a later step"),
        (_step_field(1, "step", 1), r"tool_sequence\[1\].step: 1 is also the number of tool_sequence\[0\]"),
        (
            lambda gt: gt.__setitem__("success", {"must_call_tool": "fmp_get_news"}),
            r"success.must_call_tool: 'fmp_get_news' is not the call name of a plan step "
            r"\(fmp_search_ticker, fmp_get_quote\)",
        ),
        (_step_field(1, "tool", "fmp_get_quote\ud800"), r"tool_sequence\[1\].tool: holds a lone surrogate \(U\+D800"),
        (_step_field(0, "server", "\udc00fmp"), r"tool_sequence\[0\].server: holds a lone surrogate \(U\+DC00"),
        (
            lambda gt: gt.__setitem__("available_tools", [{"server": "fmp", "tool": "x\ud800", "call_name": "x"}]),
            r"available_tools\[0\].tool: holds a lone surrogate",
        ),
        (
            lambda gt: gt.__setitem__("tool_schemas", json.dumps({"fmp_get_quote": json.dumps({"type": "object"})})),
            r"row q2: tool_schemas.fmp_get_quote: expected a JSON Schema object, got '\{\"type\": \"object\"\}'",
        ),
        (
            lambda gt: gt.__setitem__("tool_schemas", {"fmp_get_quote": None}),
            r"tool_schemas.fmp_get_quote: expected a JSON Schema object, got None",
        ),
        (
            lambda gt: gt["tool_sequence"][1].update(server="polygon", tool="fmp_search_ticker"),
            r"tool_sequence\[1\].call_name: 'fmp_search_ticker' is also the call name of tool_sequence\[0\], another "
            r"tool \(fmp/fmp_search_ticker, polygon/fmp_search_ticker\)",
        ),
        (
            lambda gt: gt.__setitem__("available_tools", [{"server": s, "tool": "x"} for s in ("fmp", "polygon")]),
            r"available_tools\[1\]: call name 'x' is also another tool's \(fmp/x\)",
        ),
        (
            _step_field(0, "params", {"query": "Palantir", "since": datetime.date(2025, 1, 2)}),
            r"row q2: tool_sequence\[0\].params.since: not a JSON value \(date\)",
        ),
        (
            lambda gt: gt.__setitem__(
                "tool_schemas",
                {"fmp_get_quote": {"type": "object", "properties": {"at": {"default": datetime.datetime(2025, 1, 2)}}}},
            ),
            r"tool_schemas.fmp_get_quote.properties.at.default: not a JSON value \(datetime\)",
        ),
    ],
    ids=[
        "depends_on-missing-step",
        "depends_on-itself",
        "depends_on-later-step",
        "duplicate-step-number",
        "must_call_tool-not-in-plan",
        "tool-lone-surrogate",
        "server-lone-surrogate",
        "available_tools-lone-surrogate",
        "tool_schemas-value-string",
        "tool_schemas-value-null",
        "call-name-of-two-tools",
        "available-call-name-of-two-tools",
        "params-date-object",
        "schema-datetime-default",
    ],
)
def test_a_row_whose_plan_cannot_score_is_a_row_error_naming_the_field(change, message):
    # before: each was built and played: the depends_on and step-number rows capped every trajectory, the plan's
    # too, at 0.25 (a step that cannot match), must_call_tool at 0, a lone surrogate in a server or tool name
    # raised UnicodeEncodeError out of step() at the first call (cassette key), and a schema given as a string
    # (or null) was dropped: a derived param was then matched by presence only ("zzz" for an integer); one call
    # name for two tools sent every call of it to the last (the plan itself scored 0.444); a date object in params
    # or a schema (a row built in Python, not read from JSON) raised TypeError out of step() at the first call
    with pytest.raises(RowError, match=message):
        MCPToolEnv({}, _two(change))


def test_a_null_schema_of_a_tool_the_row_does_not_call_is_no_schema():
    # Arrow gives an object column the keys of every row, the others' as null: was "tool_schemas.other: expected a
    # JSON Schema object, got None" for a row of a dataset loaded with datasets 4
    schema = {"type": "object", "properties": {"symbol": {"type": "string"}}}
    plan = plan_from_extras(_two(lambda gt: gt.__setitem__("tool_schemas", {"fmp_get_quote": schema, "other": None})))
    assert plan.schemas == {"fmp_get_quote": schema}


@pytest.mark.parametrize(
    "extras,message",
    [
        ({"reward_spec": "rule"}, r"^row: reward_spec: expected an object, got 'rule'$"),
        ({"reward_spec": {"ground_truth": "{}"}}, r"^row: reward_spec.ground_truth: expected an object, got '\{\}'$"),
        (
            with_gt(tool_sequence='[{"step": 1}]'),
            r"^row q1: reward_spec.ground_truth.tool_sequence: expected a list of steps, got '\[\{\"step\": 1\}\]'$",
        ),
        (with_gt(tool_sequence={"step": 1}), r"tool_sequence: expected a list of steps, got \{'step': 1\}"),
    ],
    ids=["reward_spec-string", "ground_truth-string", "tool_sequence-json-text", "tool_sequence-object"],
)
def test_a_field_of_the_wrong_type_is_named_as_such_not_as_missing(extras, message):
    # before: "reward_spec.ground_truth is missing (is this a skyrl row?)" and "tool_sequence is missing or
    # empty" for fields that were there, as a string or an object
    with pytest.raises(RowError, match=message):
        MCPToolEnv({}, extras)


def test_the_plan_of_a_consistent_row_still_scores_1():
    out = play(
        MCPToolEnv({}, extras_of(TWO, 5)),
        [call("fmp_search_ticker", {"query": "Palantir"}), call("fmp_get_quote", {"symbol": "PLTR"}), "done"],
    )
    assert out[-1]["reward"] == 1.0


def test_a_row_with_a_bad_integer_is_listed_as_unscorable_by_the_gameability_report():
    # before: the bare ValueError from int() ended the whole report
    bad = copy.deepcopy(ROW)
    bad["reward_spec"]["ground_truth"]["max_turns"] = "abc"
    report = check_rows([("bad row 0", bad), ("good row 1", ROW)], {"tools": "cassette"}, None)
    assert report.unscorable == ["bad row 0: row q1: max_turns: expected an integer >= 1, got 'abc'"]
    assert report.rows == 1


# Config values -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [5, 3.0, {"write_file": True}, ["write_file", 1], [None]])
def test_allow_side_effects_of_another_type_is_a_config_error_naming_it_and_the_accepted_forms(value):
    # before: 5 and 3.0 raised a bare TypeError ('int' object is not iterable); an object became the list of its
    # keys and [None] the tool name "None"
    forms = 'true, false, "all", a comma-separated string of tool names or a list of tool names'
    expected = rf"^MCPToolEnv config: allow_side_effects: expected {re.escape(forms)}, got {re.escape(repr(value))}$"
    with pytest.raises(ConfigError, match=expected):
        MCPToolEnv({"allow_side_effects": value}, extras_of(ROW, 5))


class _ListConfig(collections.abc.Sequence):
    """Like omegaconf's ListConfig: a sequence, not a list."""

    def __init__(self, items):
        self.items = list(items)

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self):
        return len(self.items)


@pytest.mark.parametrize(
    "value,expected",
    [
        (True, True),
        (False, False),
        ("all", True),
        ("write_file, fs.write_file", ["write_file", "fs.write_file"]),
        (["write_file", "fs.write_file"], ["write_file", "fs.write_file"]),
        (_ListConfig(["write_file"]), ["write_file"]),
        ([], []),
    ],
)
def test_allow_side_effects_accepts_its_documented_forms(value, expected):
    assert MCPToolEnv({"allow_side_effects": value}, extras_of(ROW, 5)).settings.allow_side_effects == expected


@pytest.mark.parametrize(
    "judge,message",
    [
        (5, r"judge: expected a callable or a 'module:function' string, got 5"),
        (".relative:judge", r"judge '.relative:judge' is not an importable 'module:function'"),
    ],
    ids=["number", "relative-import"],
)
def test_a_judge_that_is_neither_callable_nor_an_import_path_is_a_config_error(judge, message):
    # before: 5 became the module name "5"; ".relative:judge" raised a bare TypeError from import_module
    with pytest.raises(ConfigError, match=message):
        MCPToolEnv({"judge": judge}, extras_of(ROW, 5))


# The gameability report's --max-turns --------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-3", "x"])
def test_reward_check_max_turns_below_1_is_a_usage_error(value, capsys):
    # before: --max-turns 0 was ignored (each row's own max_turns) and -3 was played; both exited 0
    with pytest.raises(SystemExit) as exit:
        reward_check.main([str(FIXTURES / "rows_v2.jsonl"), f"--max-turns={value}"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --max-turns: expected an integer >= 1, got '{value}'" in err


@pytest.mark.parametrize("value", [0, -3, True])
def test_check_rows_never_takes_a_max_turns_below_1_for_not_given(value):
    # before: 0 (and False) meant "each row's own max_turns"
    with pytest.raises(ValueError, match=rf"max_turns: expected an integer >= 1 or None .*got {value!r}"):
        check_rows([("row 0", ROW)], {"tools": "cassette"}, value)


def test_check_rows_plays_the_max_turns_it_is_given(monkeypatch):
    seen = []
    monkeypatch.setattr(
        reward_check, "run_policy", lambda extras, turns, config: seen.append(extras["max_turns"]) or {"reward": 1.0}
    )
    check_rows([("row 0", ROW)], {"tools": "cassette"}, 1)
    own = ROW["reward_spec"]["ground_truth"]["max_turns"]
    assert set(seen) == {1} and own != 1


def test_a_large_wrong_value_is_cut_in_the_message():
    value = {"x" * 1000: 1}
    with pytest.raises(RowError) as error:
        MCPToolEnv({}, _set(("available_tools",), value))
    shown = repr(value)[:200] + f"... ({len(repr(value))} characters)"
    assert str(error.value) == f"row q1: available_tools: expected a list of tools, got {shown}"


# The inventory of live mode ----------------------------------------------------------------------------------

_LAUNCH = {"transport": "stdio", "command": "true"}


def _live_env_on(tmp_path, servers):
    inventory = tmp_path / "inv.json"
    inventory.write_text(json.dumps({"servers": servers}), encoding="utf-8")
    return inventory, lambda: MCPToolEnv({"tools": "live", "inventory": str(inventory)}, extras_of(ROW, 5))


@pytest.mark.parametrize(
    "name,message",
    [
        ("fm\np", r"servers\[1\]\.name: holds a line feed \(U\+000A at character 2\)"),
        ("fm\tp", r"servers\[1\]\.name: holds a tab \(U\+0009 at character 2\)"),
        ("fm\x00p", r"servers\[1\]\.name: holds a NUL \(U\+0000 at character 2\)"),
        ("fm\x7fp", r"servers\[1\]\.name: holds a control character \(U\+007F at character 2\)"),
        ("fm\u2028p", r"servers\[1\]\.name: holds a line separator \(U\+2028 at character 2\)"),
        ("\U0001f600\ud800", r"servers\[1\]\.name: holds a lone surrogate \(U\+D800 at character 2\)"),
        ("fm,p", r"servers\[1\]\.name: holds a comma \(at character 2\): --servers and --allow-side-effects"),
        ("", r"servers\[1\]\.name: must be a non-empty string"),
        ("  ", r"servers\[1\]\.name: must be a non-empty string"),
        (" fmp", r"servers\[1\]\.name: has leading or trailing whitespace"),
        (5, r"servers\[1\]\.name: must be a non-empty string, got 5"),
    ],
    ids=[
        "newline",
        "tab",
        "nul",
        "del",
        "line-separator",
        "lone-surrogate",
        "comma",
        "empty",
        "blank",
        "untrimmed",
        "number",
    ],
)
def test_an_inventory_server_name_skyrl_refuses_is_a_config_error_naming_the_file_and_path(tmp_path, name, message):
    # before: each loaded (as skyrl loaded them before it refused them); a server reached by such a name would
    # have cassette keys of other calls (a line feed) or none at all (a lone surrogate has no UTF-8)
    inventory, build = _live_env_on(tmp_path, [{"name": "ok", "launch": _LAUNCH}, {"name": name, "launch": _LAUNCH}])
    with pytest.raises(ConfigError, match=rf"^inventory: {re.escape(str(inventory))}: {message}"):
        build()


@pytest.mark.parametrize(
    "servers,message",
    [
        ([{"launch": _LAUNCH}], r"servers\[0\]\.name: must be a non-empty string, got None"),  # was KeyError 'name'
        (["fmp"], r"servers\[0\]: must be an object"),  # was skipped silently
        ([{"name": "a", "launch": "npx x"}], r"servers\[0\]\.launch: needs transport"),  # was AttributeError
        ([{"name": "a", "launch": _LAUNCH}, {"name": "a"}], r'servers\[1\]\.name: duplicate server name "a"'),
    ],
    ids=["no-name", "not-an-object", "launch-not-an-object", "duplicate"],
)
def test_a_malformed_inventory_server_is_a_config_error_never_a_crash(tmp_path, servers, message):
    inventory, build = _live_env_on(tmp_path, servers)
    with pytest.raises(ConfigError, match=rf"^inventory: {re.escape(str(inventory))}: {message}"):
        build()


def test_unusual_but_harmless_server_names_still_load(tmp_path):
    names = ["fm p", "org/fmp", "fmp.v2", "Börse", "\U0001f600"]
    _, build = _live_env_on(tmp_path, [{"name": n, "launch": _LAUNCH} for n in names])
    assert sorted(build().backend.launch) == sorted(names)


@pytest.mark.parametrize(
    "params, field",
    [
        ('{"a": 1e400, "b": 2}', ".params.a"),
        ('{"a": 1, "b": [0, {"c": -1e400}]}', ".params.b[1].c"),
        # integers beyond a double: Python read them exactly, then step() raised OverflowError at the first call (and
        # a row of more than 4300 digits raised a bare ValueError when read)
        ('{"a": 1' + "0" * 400 + ', "b": 2}', ".params.a"),
        ('{"a": 1, "b": [-1' + "0" * 5000 + "]}", ".params.b[0]"),
    ],
    ids=["float", "nested-float", "integer", "integer-5001-digits"],
)
def test_a_plan_param_beyond_a_doubles_range_is_refused_naming_it(params, field):
    # Before: loaded as inf, a step no call could match (a policy's 1e400 is a malformed call); skyrl's plan
    # validation refuses such a param too.
    row = make_row([{"server": "everything", "tool": "get-sum", "params": {"a": 1, "b": 2}}])
    row["reward_spec"]["ground_truth"]["tool_sequence"][0]["params"] = params
    with pytest.raises(RowError, match=re.escape(field) + r": a number beyond a double's range"):
        plan_from_extras(extras_of(row, None))


def test_a_plan_param_object_holding_an_integer_beyond_a_double_is_refused_and_one_within_it_loads():
    # params given as an object (older rows), not as JSON text
    row = make_row([{"server": "everything", "tool": "get-sum", "params": {"a": 1, "b": 2}}])
    row["reward_spec"]["ground_truth"]["tool_sequence"][0]["params"] = {"a": 10**400, "b": 2}
    with pytest.raises(RowError, match=r"\.params\.a: a number beyond a double's range"):
        plan_from_extras(extras_of(row, None))
    row["reward_spec"]["ground_truth"]["tool_sequence"][0]["params"] = {"a": 10**308, "b": 2}
    assert plan_from_extras(extras_of(row, None)).steps[0].params["a"] == 10**308
