"""Cassette mode: replays the tool results skyrl verify records (one JSON line per call key)."""

import json
import logging
import subprocess
import sys

import pytest
from conftest import FIXTURES, REPO, call, episode, make_row, plan_calls, play

from skyrl_mcp_env import MCPToolEnv, reward_check, tools
from skyrl_mcp_env.canonical import call_key, schema_hash
from skyrl_mcp_env.tools import ConfigError

# The shared vector {"symbol": "AAPL", "limit": 5} for server "srv", tool "tool": its key is given there.
VECTORS = json.loads((REPO / "test" / "fixtures" / "canonical" / "vectors.json").read_text(encoding="utf-8"))["cases"]
CASE = next(c for c in VECTORS if c["value"] == {"symbol": "AAPL", "limit": 5})
ROW = make_row([{"server": "srv", "tool": "tool", "params": {"symbol": "AAPL", "limit": 5}}])


def _nested(levels):
    """A line whose result's structuredContent nests ``levels`` objects (the result itself one more)."""
    nested = '{"a": ' * levels + "1" + "}" * levels
    return line("k2", "x").replace('"structuredContent": null', f'"structuredContent": {nested}')


def line(key, text, is_error=False, **extra):
    return json.dumps(
        {
            "key": key,
            "server": "srv",
            "tool": "tool",
            "params": CASE["value"],
            "result": {"content": [{"type": "text", "text": text}], "structuredContent": None, "isError": is_error},
            "duration_ms": 3,
            "server_version": "srv@1.0.0",
            "recorded_at": "2026-11-30T05:00:00.000Z",
            "illustrative": False,
            **extra,
        }
    )


MSFT = {"symbol": "MSFT", "limit": 5}  # another call of srv/tool
MSFT_KEY = call_key("srv", "tool", MSFT)


def line_of(params, text, **extra):
    """A line of another call of srv/tool (``params``), under its own key."""
    return line(call_key("srv", "tool", params), text, params=params, **extra)


@pytest.fixture
def cassettes(tmp_path):
    (tmp_path / "cassettes.jsonl").write_text(line(CASE["call_key"], "AAPL 230.10 USD") + "\n", encoding="utf-8")
    return tmp_path


def first_observation(config, action):
    out = play(MCPToolEnv(config, {**ROW, "max_turns": 5}), [action])[-1]
    return out["observations"][0]["content"], out["metadata"]


def test_hit_answers_with_the_recorded_result(cassettes):
    # the arguments in another key order: the key is over canonical JSON
    text, meta = first_observation({"cassettes": str(cassettes)}, call("tool", {"limit": 5, "symbol": "AAPL"}))
    assert text == "<tool_response>\nAAPL 230.10 USD\n</tool_response>"
    assert meta["cassette_misses"] == 0 and meta["tool_results"] == {"ok": 1}


def test_cassette_file_path_works_as_well_as_its_directory(cassettes):
    text, _ = first_observation({"cassettes": str(cassettes / "cassettes.jsonl")}, call("tool", CASE["value"]))
    assert "AAPL 230.10 USD" in text


def test_miss_is_a_clear_error_observation_and_flagged(cassettes):
    text, meta = first_observation({"cassettes": str(cassettes)}, call("tool", {"symbol": "MSFT", "limit": 5}))
    assert text.startswith("<tool_response>\nError: no recorded result for srv/tool with these arguments")
    assert meta["cassette_misses"] == 1 and meta["tool_results"] == {"miss": 1}


def test_miss_does_not_change_the_reward(cassettes):
    actions = [call("tool", CASE["value"]), "done"]
    assert episode(ROW, actions, {"cassettes": str(cassettes)})["reward"] == episode(ROW, actions)["reward"] == 1.0


def test_no_cassettes_configured_every_call_is_a_miss():
    text, meta = first_observation({}, call("tool", CASE["value"]))
    assert "(no cassettes configured)" in text and meta["cassette_misses"] == 1


def test_first_line_per_key_wins_and_a_torn_last_line_is_ignored(tmp_path):
    torn = line(CASE["call_key"], "third")[:40]
    (tmp_path / "cassettes.jsonl").write_text(
        "\n".join([line(CASE["call_key"], "first"), line(CASE["call_key"], "second"), torn]), encoding="utf-8"
    )
    text, _ = first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))
    assert "first" in text


def test_recorded_tool_error_is_shown_as_an_error(tmp_path):
    (tmp_path / "cassettes.jsonl").write_text(line(CASE["call_key"], "unknown symbol", is_error=True) + "\n")
    text, meta = first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))
    assert "Error: unknown symbol" in text and meta["tool_results"] == {"tool_error": 1}


def test_a_bad_last_line_that_ends_with_a_newline_is_not_torn_but_an_error(tmp_path):
    # A writer's line and its newline go in one write: a crash leaves a last line without one. `skyrl cassettes
    # stats` calls this line invalid (exit 1), and skyrl verify appends after it, which made the store unreadable.
    (tmp_path / "cassettes.jsonl").write_text(line(CASE["call_key"], "first") + '\n{"key": "ab\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cassettes.jsonl:2: not JSON"):
        first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))


def test_a_later_answer_replaces_a_recorded_tool_error_of_the_same_call(tmp_path):
    # skyrl verify appends the answer of a call whose stored result was an error (the file it read was made
    # since): a verified row's step must replay that answer, not the old error. A later error changes nothing.
    lines = [
        line(CASE["call_key"], "ENOENT: no such file", is_error=True),
        line(CASE["call_key"], "AAPL 230.10 USD"),
        line(CASE["call_key"], "failed again", is_error=True),
    ]
    (tmp_path / "cassettes.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    text, meta = first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))
    assert "AAPL 230.10 USD" in text and meta["tool_results"] == {"ok": 1}


def test_a_corrupt_line_inside_the_file_is_a_clear_error(tmp_path):
    (tmp_path / "cassettes.jsonl").write_text("{oops\n" + line(CASE["call_key"], "x") + "\n")
    with pytest.raises(ConfigError, match=r"cassettes.jsonl:1: not JSON"):
        MCPToolEnv({"cassettes": str(tmp_path)}, {**ROW, "max_turns": 5})


def test_a_missing_cassette_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cassettes: cannot read .*nowhere"):
        MCPToolEnv({"cassettes": str(tmp_path / "nowhere")}, {**ROW, "max_turns": 5})


def test_a_missing_cassette_file_named_by_its_path_is_a_clear_error(tmp_path):
    # the directory exists, but the setting names the file itself: a typo there is not an empty store either
    with pytest.raises(ConfigError, match="cassettes: cannot read .*nowhere.jsonl"):
        MCPToolEnv({"cassettes": str(tmp_path / "nowhere.jsonl")}, {**ROW, "max_turns": 5})


EMPTY_STORE = "holds no cassettes"


def empty_store_warnings(caplog, path):
    return [
        r
        for r in caplog.records
        if r.name == "skyrl_mcp_env.tools" and r.levelno == logging.WARNING and EMPTY_STORE in r.getMessage()
        and str(path) in r.getMessage()
    ]


@pytest.mark.parametrize("lock", [False, True], ids=["nothing", "only-the-writer-lock"])
def test_a_directory_without_cassettes_jsonl_is_an_empty_store(tmp_path, caplog, lock):
    # `skyrl verify` makes the directory before its first call, and the file comes with the first line; while it
    # runs it holds cassettes.jsonl.lock there. `skyrl cassettes stats DIR` reports such a store: 0 entries, exit 0.
    if lock:
        (tmp_path / "cassettes.jsonl.lock").write_text('{"pid": 4242, "host": "h", "command": "verify"}\n')
    caplog.set_level(logging.WARNING, logger="skyrl_mcp_env.tools")
    text, meta = first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))
    assert text.startswith("<tool_response>\nError: no recorded result for srv/tool with these arguments")
    assert f"in {tmp_path};" in text
    assert meta["cassette_misses"] == 1 and meta["tool_results"] == {"miss": 1}
    assert len(empty_store_warnings(caplog, tmp_path)) == 1


def test_the_empty_store_warning_comes_once_per_store(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="skyrl_mcp_env.tools")
    for _ in range(3):  # SkyRL builds an env per episode
        MCPToolEnv({"cassettes": str(tmp_path)}, {**ROW, "max_turns": 5})
    MCPToolEnv({"cassettes": str(tmp_path) + "/"}, {**ROW, "max_turns": 5})
    assert len(empty_store_warnings(caplog, tmp_path)) == 1


def test_an_empty_cassettes_file_warns_too(tmp_path, caplog):
    (tmp_path / "cassettes.jsonl").write_text("")
    caplog.set_level(logging.WARNING, logger="skyrl_mcp_env.tools")
    _, meta = first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))
    assert meta["cassette_misses"] == 1
    assert len(empty_store_warnings(caplog, tmp_path)) == 1


def test_a_store_with_entries_does_not_warn(cassettes, caplog):
    caplog.set_level(logging.WARNING, logger="skyrl_mcp_env.tools")
    MCPToolEnv({"cassettes": str(cassettes)}, {**ROW, "max_turns": 5})
    assert empty_store_warnings(caplog, cassettes) == []


def test_the_store_is_read_again_once_the_file_appears(tmp_path):
    # a worker that started on the empty store of a verify still running sees its lines in later episodes
    (tmp_path / "cassettes.jsonl.lock").write_text("{}\n")
    _, meta = first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))
    assert meta["cassette_misses"] == 1
    (tmp_path / "cassettes.jsonl").write_text(line(CASE["call_key"], "AAPL 230.10 USD") + "\n")
    text, meta = first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))
    assert "AAPL 230.10 USD" in text and meta["cassette_misses"] == 0


def test_a_store_that_grows_is_cached_once_its_latest_version(tmp_path):
    # before: each version (mtime, size) stayed cached: 200 appends held 200 copies and 20,100 entries
    store = tmp_path / "cassettes.jsonl"
    store.write_text(line(CASE["call_key"], "AAPL 230.10 USD") + "\n")
    for i in range(5):
        tools.load_cassettes(str(tmp_path))
        with store.open("a") as f:
            f.write(line_of({"symbol": f"S{i}"}, f"answer {i}") + "\n")
    records = tools.load_cassettes(str(tmp_path))
    cached = [k for k in tools._CASSETTE_CACHE if k[0] == str(store.resolve())]
    assert len(cached) == 1 and len(records) == 6 and tools._CASSETTE_CACHE[cached[0]] is records


def test_the_writer_lock_next_to_a_store_is_ignored(cassettes):
    (cassettes / "cassettes.jsonl.lock").write_text('{"pid": 4242, "host": "h", "command": "verify"}\n')
    text, meta = first_observation({"cassettes": str(cassettes)}, call("tool", CASE["value"]))
    assert "AAPL 230.10 USD" in text and meta["cassette_misses"] == 0


def test_a_cassettes_jsonl_that_is_not_a_readable_file_is_a_clear_error(tmp_path):
    # something is there but cannot be read: not an empty store
    (tmp_path / "cassettes.jsonl").mkdir()
    with pytest.raises(ConfigError, match="cassettes: cannot read .*cassettes.jsonl"):
        MCPToolEnv({"cassettes": str(tmp_path)}, {**ROW, "max_turns": 5})


def test_a_dangling_cassettes_jsonl_link_is_a_clear_error(tmp_path):
    (tmp_path / "cassettes.jsonl").symlink_to(tmp_path / "gone.jsonl")
    with pytest.raises(ConfigError, match="cassettes: cannot read .*cassettes.jsonl"):
        MCPToolEnv({"cassettes": str(tmp_path)}, {**ROW, "max_turns": 5})


def test_reward_check_on_an_empty_store_scores_and_says_the_store_is_empty(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "skyrl_mcp_env.reward_check", str(FIXTURES / "rows_v2.jsonl"), "--cassettes"]
        + [str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO / "python",
        timeout=300,
    )
    assert "cannot read" not in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count(EMPTY_STORE) == 1 and str(tmp_path) in done.stderr
    assert done.stdout.strip()


def test_server_qualified_call_names_resolve_to_their_server(cassettes):
    # two servers expose "tool": the prompt shows "srv.tool" and "other.tool" (formats.md: call_name)
    row = make_row(
        [{"server": "srv", "tool": "tool", "call_name": "srv.tool", "params": CASE["value"]}],
        available_tools=[
            {"call_name": "other.tool", "server": "other", "tool": "tool"},
            {"call_name": "srv.tool", "server": "srv", "tool": "tool"},
        ],
        limits={"max_tools": 3, "max_servers": 3},
        max_turns=6,
    )
    env = MCPToolEnv({"cassettes": str(cassettes)}, {**row, "max_turns": 5})
    outs = play(env, [call("other.tool", CASE["value"]), call("srv.tool", CASE["value"]), call("tool", CASE["value"])])
    texts = [o["observations"][0]["content"] for o in outs]
    assert "no recorded result for other/tool" in texts[0]
    assert "AAPL 230.10 USD" in texts[1]
    assert "unknown tool 'tool'" in texts[2]
    assert outs[-1]["metadata"]["matched_steps"] == [1]


def test_a_cassettes_file_that_is_not_utf8_is_a_clear_error(tmp_path):
    (tmp_path / "cassettes.jsonl").write_bytes(b'{"key": "\xff"}\n')
    with pytest.raises(ConfigError, match="cassettes: cannot read .*cassettes.jsonl: not UTF-8"):
        MCPToolEnv({"cassettes": str(tmp_path)}, {**ROW, "max_turns": 5})


def test_a_store_that_starts_with_a_bom_is_read_as_skyrl_cassettes_stats_reads_it(tmp_path):
    # skyrl (cassettes stats, verify's reader) drops a BOM at a file's start; read as plain UTF-8, the first
    # line was "not JSON" and the env refused a store that `skyrl cassettes stats` counted with exit 0.
    entry = line(CASE["call_key"], "AAPL 230.10 USD")
    (tmp_path / "cassettes.jsonl").write_text("\ufeff" + entry + "\n", encoding="utf-8")
    text, _ = first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))
    assert "AAPL 230.10 USD" in text


# What a cassette line is: the same rule as skyrl's reader (`entryFault`, src/skyrl/cassettes.ts) --------------

_GOOD = line(CASE["call_key"], "AAPL 230.10 USD")


@pytest.mark.parametrize(
    "bad,message",
    [
        (line("k2", "x", duration_ms="12"), r'duration_ms: expected a number of milliseconds ≥ 0, got "12"'),
        (line("k2", "x", duration_ms=None), r"duration_ms: expected a number of milliseconds ≥ 0, got null"),
        (line("k2", "x", duration_ms=-5), r"duration_ms: expected a number of milliseconds ≥ 0, got -5"),
        (line("k2", "x", duration_ms=True), r"duration_ms: expected a number of milliseconds ≥ 0, got true"),
        (
            line("k2", "x").replace('"duration_ms": 3', '"duration_ms": 1e400'),
            r"duration_ms: expected a number of milliseconds ≥ 0, got Infinity",
        ),
        (line("k2", "x").replace(', "duration_ms": 3', ""), r"duration_ms: is missing"),
        (line("k2", "x", server=None), r"server: expected a string, got null"),
        (line("k2", "x", tool=7), r"tool: expected a string, got 7"),
        ("[1, 2]", r"expected a JSON object, got array"),
        # Python's json reads NaN and Infinity, JavaScript's JSON.parse does not: skyrl counts such a line as not JSON.
        (line("k2", "x").replace('"duration_ms": 3', '"duration_ms": NaN'), r"not JSON"),
        (line("k2", "x").replace('"duration_ms": 3', '"duration_ms": -Infinity'), r"not JSON"),
        # A result deeper than skyrl reads (its rule: 512 levels): before, 5,000 levels raised RecursionError here.
        (_nested(512), r"result: the result nests objects and arrays more than 512 levels deep"),
        (_nested(5000), r"result: the result nests objects and arrays more than 512 levels deep"),
    ],
    ids=[
        "string", "null", "negative", "boolean", "overflow", "missing", "server", "tool", "array", "nan", "infinity",
        "deep", "deeper-than-the-parser",
    ],
)
def test_a_line_skyrl_cassettes_stats_calls_bad_is_refused_naming_its_line_and_field(tmp_path, bad, message):
    # before: each was replayed (a duration_ms that is not a number, no server or tool, NaN), while skyrl
    # cassettes stats called the store bad (server, tool, NaN) or counted the duration as 0 ms (the others)
    (tmp_path / "cassettes.jsonl").write_text(_GOOD + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"cassettes.jsonl:2: {message}"):
        MCPToolEnv({"cassettes": str(tmp_path)}, {**ROW, "max_turns": 5})


def test_a_torn_last_line_that_is_json_but_not_an_entry_is_ignored_as_skyrl_ignores_it(tmp_path):
    # skyrl calls a last line without its newline torn when it is not an entry, whatever the reason
    (tmp_path / "cassettes.jsonl").write_text(_GOOD + "\n" + line("k2", "x", duration_ms="12"), encoding="utf-8")
    text, _ = first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))
    assert "AAPL 230.10 USD" in text


def test_a_duration_of_zero_or_a_fraction_is_an_entry(tmp_path):
    lines = [line(CASE["call_key"], "AAPL 230.10 USD", duration_ms=0), line_of(MSFT, "x", duration_ms=0.5)]
    (tmp_path / "cassettes.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    text, _ = first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))
    assert "AAPL 230.10 USD" in text


def test_a_recorded_lone_surrogate_reaches_the_policy_as_a_replacement_character(tmp_path):
    # before: the observation held the lone surrogate itself ("\ud800" in the cassette's JSON), a string with no
    # UTF-8: the trainer's tokenizer and any JSON log of the rollout fail on it, outside the env
    (tmp_path / "cassettes.jsonl").write_text(line(CASE["call_key"], "AAPL \ud800 230.10 \udc00") + "\n", encoding="utf-8")
    text, meta = first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))
    assert text == "<tool_response>\nAAPL \ufffd 230.10 \ufffd\n</tool_response>"
    text.encode("utf-8")
    assert meta["tool_results"] == {"ok": 1}


NO_STORE = "no cassettes configured"


def test_cassette_mode_without_a_store_warns_once_per_process(cassettes, caplog, monkeypatch):
    # before: an empty store warned, no store at all (the `cassettes` key forgotten, or SKYRL_MCP_ENV_CONFIG not
    # set in the Ray task) said nothing: every call of every episode was a miss, seen only in the observations
    monkeypatch.setattr(tools, "_WARNED_NO_STORE", False)
    caplog.set_level(logging.WARNING, logger="skyrl_mcp_env.tools")
    for _ in range(3):  # SkyRL builds an env per episode
        MCPToolEnv({}, {**ROW, "max_turns": 5})
    warned = [r.getMessage() for r in caplog.records if r.name == "skyrl_mcp_env.tools" and NO_STORE in r.getMessage()]
    assert len(warned) == 1 and "SKYRL_MCP_ENV_CONFIG" in warned[0]
    assert "every tool call is a cassette miss" in warned[0]
    monkeypatch.setattr(tools, "_WARNED_NO_STORE", False)
    caplog.clear()
    MCPToolEnv({"cassettes": str(cassettes)}, {**ROW, "max_turns": 5})
    assert not [r for r in caplog.records if NO_STORE in r.getMessage()]


def test_reward_check_without_cassettes_does_not_warn_about_the_store(caplog, monkeypatch, capsys):
    monkeypatch.setattr(tools, "_WARNED_NO_STORE", False)
    caplog.set_level(logging.WARNING, logger="skyrl_mcp_env.tools")
    assert reward_check.main([str(FIXTURES / "rows_v2.jsonl")]) == 0
    assert not [r for r in caplog.records if NO_STORE in r.getMessage()]


def _entry_with(result):
    return json.dumps(
        {"key": CASE["call_key"], "server": "srv", "tool": "tool", "params": CASE["value"], "result": result,
         "duration_ms": 3}
    )


@pytest.mark.parametrize(
    ("result", "fault"),
    [
        ({"content": 5}, "content is int, not a list"),
        ({"content": True}, "content is bool, not a list"),
        ({"content": {"type": "text", "text": "x"}}, "content is dict, not a list"),
        ({"content": [{"type": "text", "text": "x"}], "isError": "yes"}, "isError is str, not a boolean"),
    ],
    ids=["int", "bool", "object", "is-error-string"],
)
def test_a_recorded_result_that_is_no_tool_result_is_a_miss_naming_it_not_an_exception(tmp_path, result, fault):
    # skyrl's line rule asks only for a result object: step() raised TypeError when such a line was replayed
    (tmp_path / "cassettes.jsonl").write_text(_entry_with(result) + "\n", encoding="utf-8")
    text, meta = first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))
    assert f"is not an MCP tool result ({fault})" in text and CASE["call_key"] in text
    assert meta["cassette_misses"] == 1


def test_an_image_block_whose_data_is_not_a_string_is_shown_without_its_size(tmp_path):
    result = {"content": [{"type": "image", "mimeType": "image/png", "data": 7}, {"type": "text", "text": "ok"}]}
    (tmp_path / "cassettes.jsonl").write_text(_entry_with(result) + "\n", encoding="utf-8")
    text, meta = first_observation({"cassettes": str(tmp_path)}, call("tool", CASE["value"]))
    assert "[image image/png, 0 base64 chars]\nok" in text and meta["tool_results"] == {"ok": 1}


# A line's key is the key of its own server, tool and params (skyrl's rule since 2026-12-05) ---------------------

LINES = json.loads((REPO / "test" / "fixtures" / "cassettes" / "lines.json").read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", LINES, ids=[c["name"][:50] for c in LINES])
def test_each_shared_line_is_read_as_skyrl_reads_it(case, tmp_path):
    # test/fixtures/cassettes/lines.json, which skyrl's reader checks too (test/cassetteLines.test.ts)
    record = json.loads(case["line"], parse_constant=tools._not_json)
    assert tools._entry_fault(record) == case["fault"]
    assert tools._entry_fault(record, "trusted") == case["trusted_fault"]
    store = tmp_path / "cassettes.jsonl"
    store.write_text(_GOOD + "\n" + case["line"] + "\n", encoding="utf-8")
    if case["fault"] is None:
        assert record["key"] in tools.load_cassettes(str(store))
    else:
        with pytest.raises(ConfigError) as refused:
            tools.load_cassettes(str(store))
        assert str(refused.value) == f"{store}:2: {case['fault']}"


def _stored(tmp_path, *lines):
    (tmp_path / "cassettes.jsonl").write_text("".join(lin + "\n" for lin in lines), encoding="utf-8")
    return str(tmp_path)




def test_a_line_under_another_calls_key_is_refused_not_replayed_for_that_call(tmp_path):
    # before: the line (MSFT's params and result, AAPL's key) answered the AAPL call with MSFT's quote
    forged = line(CASE["call_key"], "MSFT 410.00 USD", params=MSFT)
    store = _stored(tmp_path, forged)
    with pytest.raises(ConfigError) as refused:
        MCPToolEnv({"cassettes": store}, {**ROW, "max_turns": 5})
    assert str(refused.value).endswith(
        f'cassettes.jsonl:1: key: "{CASE["call_key"]}" is not the key of its server, tool and params ("{MSFT_KEY}")'
    )
    # cassette_keys: trusted, the rule before: the key as written
    text, _ = first_observation({"cassettes": store, "cassette_keys": "trusted"}, call("tool", CASE["value"]))
    assert "MSFT 410.00 USD" in text


def test_a_line_whose_params_were_edited_after_recording_is_refused(tmp_path):
    edited = line(CASE["call_key"], "AAPL 230.10 USD", params={**CASE["value"], "limit": 50})
    with pytest.raises(ConfigError, match=r'cassettes.jsonl:2: key: "e2e4e2ed.*" is not the key of its server, tool'):
        MCPToolEnv({"cassettes": _stored(tmp_path, line_of(MSFT, "x"), edited)}, {**ROW, "max_turns": 5})


@pytest.mark.parametrize(
    ("params", "fault"),
    [
        (None, "params: is missing"),
        ("null", "params: expected an object, got null"),
        (
            json.dumps('{"limit":5,"symbol":"AAPL"}'),  # params as the JSON text a row holds
            r'params: expected an object, got "{\"limit\":5,\"symbol\":\"AAPL\"}"',
        ),
        ("[5]", "params: expected an object, got [5]"),
    ],
    ids=["missing", "null", "json-text", "array"],
)
def test_a_line_without_params_is_refused_and_trusted_keys_read_it_as_before(tmp_path, params, fault):
    good = json.loads(line(CASE["call_key"], "AAPL 230.10 USD"))
    del good["params"]
    text = json.dumps(good) if params is None else json.dumps(good)[:-1] + f', "params": {params}' + "}"
    with pytest.raises(ConfigError) as refused:
        MCPToolEnv({"cassettes": _stored(tmp_path, text)}, {**ROW, "max_turns": 5})
    assert str(refused.value).endswith(f"cassettes.jsonl:1: {fault}")
    out, meta = first_observation({"cassettes": str(tmp_path), "cassette_keys": "trusted"}, call("tool", CASE["value"]))
    assert "AAPL 230.10 USD" in out and meta["tool_results"] == {"ok": 1}


def test_cassette_keys_takes_checked_or_trusted(tmp_path):
    with pytest.raises(ConfigError, match="""cassette_keys: expected "checked" or "trusted", got 'yes'"""):
        MCPToolEnv({"cassettes": _stored(tmp_path, _GOOD), "cassette_keys": "yes"}, {**ROW, "max_turns": 5})
    text, _ = first_observation({"cassettes": str(tmp_path), "cassette_keys": "checked"}, call("tool", CASE["value"]))
    assert "AAPL 230.10 USD" in text


def test_reward_check_refuses_a_store_keyed_otherwise_unless_told_to_trust_its_keys(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(ROW) + "\n")
    store = _stored(tmp_path, line(CASE["call_key"], "AAPL 230.10 USD", params=MSFT))
    assert reward_check.main([str(rows), "--cassettes", store]) == 2
    assert "is not the key of its server, tool and params" in capsys.readouterr().err
    assert reward_check.main([str(rows), "--cassettes", store, "--trust-cassette-keys"]) == 0
    with pytest.raises(SystemExit):
        reward_check.main([str(rows), "--trust-cassette-keys"])
    assert "--trust-cassette-keys needs --cassettes" in capsys.readouterr().err


NO_DERIVED = {"derived_params": []}


def test_a_store_skyrl_verify_records_is_read_whole_and_a_line_edited_since_is_refused_by_both_readers(tmp_path):
    # Params as verify sends them, JavaScript's parse of the row (1.0 is 1, -0.0 is 0, a 20-digit integer a double,
    # keys in UTF-16 order, escapes read): the key verify wrote must be the one this reader computes from the line.
    everything = REPO / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
    odd = {"message": "h\u00e9llo \U0001f600 \u65e5\u672c \u2028 ~", "\u00e9": 1.0, "10": 2,
           "9": [1e21, 0.1, -0.0, 12345678901234567890], "\U0001f600": {"z": 1e-7, "\uff5e": True, "": None}}
    plans = [("odd", "echo", odd), ("one", "get-sum", {"a": 1.0, "b": 2.5}), ("big", "get-sum", {"b": 0.1, "a": 1e20})]
    rubric = {"name": "r", "criteria": [{"name": "c", "description": "d", "scoring": "s"}]}
    tasks = [
        {"task_id": task_id, "user_prompt": f"Task {task_id}: use {tool}.", "evaluation_rubric": rubric,
         "tool_sequence": [{"server": "everything", "tool": tool, "params": params, "depends_on": [], **NO_DERIVED}]}
        for task_id, tool, params in plans
    ]
    # ensure_ascii: the file holds \\u escapes (a surrogate pair for the emoji), which skyrl reads as the characters
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks), encoding="utf-8")

    def run(*args):
        skyrl = ["node", str(REPO / "bin" / "skyrl.js"), *args]
        return subprocess.run(skyrl, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    imported = run("tools", "import", "--stdio", f"everything=node {everything} stdio", "--out", "inv.json")
    assert imported.returncode == 0, imported.stderr
    inventory = json.loads((tmp_path / "inv.json").read_text(encoding="utf-8"))
    echo = next(t for t in inventory["servers"][0]["tools"] if t["name"] == "echo")
    # echo declares a message only, and skyrl refuses undeclared params: the inventory declares the odd keys too
    echo["inputSchema"]["properties"].update({k: {} for k in odd if k != "message"})
    echo["schema_hash"] = schema_hash(echo["inputSchema"])
    (tmp_path / "inv.json").write_text(json.dumps(inventory), encoding="utf-8")
    converted = run("convert", "tasks.jsonl", "--inventory", "inv.json", "--out", "rows.jsonl")
    assert converted.returncode == 0, converted.stderr
    verified = run("verify", "rows.jsonl", "--inventory", "inv.json", "--out", "verified.jsonl", "--cassettes", "cas")
    assert verified.returncode == 0, verified.stderr
    assert "cassettes: cas/cassettes.jsonl: 3 new, 3 in all" in verified.stdout
    assert run("cassettes", "stats", "cas").returncode == 0
    # each row's plan call replays its recording: the env computes the key verify wrote
    # split at line ends only: str.splitlines also splits at the U+2028 the echo's message holds
    rows = [json.loads(r) for r in (tmp_path / "verified.jsonl").read_text(encoding="utf-8").split("\n") if r]
    assert len(rows) == 3
    for row in rows:
        out = episode(row, [*plan_calls(row), "done"], {"cassettes": str(tmp_path / "cas")})
        assert out["metadata"]["tool_results"] == {"ok": 1}
    # the echo's line with its message edited since: both readers refuse it, with the same words
    store = tmp_path / "cas" / "cassettes.jsonl"
    lines = [text for text in store.read_text(encoding="utf-8").split("\n") if text]
    n = next(i for i, text in enumerate(lines) if '"tool":"echo"' in text)
    lines[n] = lines[n].replace("~", "!")
    store.write_text("".join(text + "\n" for text in lines), encoding="utf-8")
    stats = run("cassettes", "stats", "cas")
    assert stats.returncode == 1
    reason = next(r for r in stats.stdout.splitlines() if "is not the key of its server, tool and params" in r)
    assert reason.strip().startswith(f"line {n + 1}: key: ")
    with pytest.raises(ConfigError) as refused:
        tools.load_cassettes(str(tmp_path / "cas"))
    assert str(refused.value) == f"{store}:{n + 1}: {reason.strip().split(': ', 1)[1]}"
