"""``ground_derived``: a derived param matches only with a value the results the policy read hold.

Without it a derived param matches with any schema-valid value, so a policy that invents the ticker a search
would have given (or guesses it from the prompt one turn after the search) earns the step; the rows' system
message says "Use real values from earlier results". Results come from cassettes written here.
"""

import json
import re
import subprocess
import sys

import pytest
from conftest import REPO, call, episode, make_row, plan_calls, v2_row

from skyrl_mcp_env import reward_check
from skyrl_mcp_env.canonical import call_key
from skyrl_mcp_env.reward import Evidence, json_leaves, text_pieces
from skyrl_mcp_env.tools import ConfigError

FINAL = "Here is the answer."
SEARCH = call("fmp_search_ticker", {"query": "Palantir", "limit": 3})


def quote(symbol):
    return call("fmp_get_quote", {"symbol": symbol})


def record(tool, params, text, is_error=False):
    return {
        "key": call_key("fmp", tool, params),
        "server": "fmp",
        "tool": tool,
        "params": params,
        "result": {"content": [{"type": "text", "text": text}], "structuredContent": None, "isError": is_error},
        "duration_ms": 3,
        "server_version": "fmp@1.0.0",
        "recorded_at": "2026-12-02T06:00:00.000Z",
        "illustrative": False,
    }


@pytest.fixture
def palantir(v2_rows):  # search_ticker(Palantir, 3), then get_quote with the derived param "symbol"
    return v2_row(v2_rows, "palantir-lookup-v2")


@pytest.fixture
def cassettes(tmp_path):
    def write(search_text, *more):
        lines = [record("fmp_search_ticker", {"query": "Palantir", "limit": 3}, search_text), *more]
        (tmp_path / "cassettes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
        return {"cassettes": str(tmp_path), "ground_derived": True}

    return write


def test_a_derived_value_the_search_returned_matches(palantir, cassettes):
    config = cassettes('[{"symbol": "PLTR", "name": "Palantir Technologies Inc."}]')
    out = episode(palantir, [SEARCH, quote("PLTR"), FINAL], config)
    assert out["reward"] == 1.0 and out["metadata"]["ungrounded_calls"] == 0


def test_an_invented_derived_value_loses_the_step_only_when_grounding_is_on(palantir, cassettes):
    config = cassettes('[{"symbol": "PLTR", "name": "Palantir Technologies Inc."}]')
    invented = [SEARCH, quote("PALANTIR"), FINAL]
    out = episode(palantir, invented, config)
    assert out["metadata"]["matched_steps"] == [1] and out["metadata"]["ungrounded_calls"] == 1
    assert out["reward"] == 0.25
    lenient = episode(palantir, invented, {**config, "ground_derived": False})
    assert lenient["reward"] == 1.0 and lenient["metadata"]["ungrounded_calls"] == 0


@pytest.mark.parametrize("cut", ["P", "PLT", "Palan", "Technologies Inc"])
def test_a_value_cut_out_of_a_word_of_the_results_does_not_ground(palantir, cassettes, cut):
    # Before whole tokens were asked for, one letter of the results grounded the step (1.0 for "P").
    config = cassettes('[{"symbol": "PLTR", "name": "Palantir Technologies Inc."}]')
    out = episode(palantir, [SEARCH, quote(cut), FINAL], config)
    held = cut == "Technologies Inc"  # whole words of the name: a value the results give
    assert out["reward"] == (1.0 if held else 0.25) and out["metadata"]["ungrounded_calls"] == (0 if held else 1)


def test_a_search_that_returned_nothing_grounds_nothing(palantir, cassettes):
    # the plan's illustrative value, sent after a search whose result holds no ticker: a guess
    out = episode(palantir, [SEARCH, quote("PLTR"), FINAL], cassettes("[]"))
    assert out["metadata"]["matched_steps"] == [1] and out["metadata"]["ungrounded_calls"] == 1


def test_an_error_result_echoing_the_policys_own_value_does_not_ground_it(palantir, cassettes):
    error = record("fmp_get_quote", {"symbol": "PALANTIR"}, "Unknown symbol PALANTIR", is_error=True)
    config = cassettes("[]", error)
    out = episode(palantir, [SEARCH, quote("PALANTIR"), quote("PALANTIR"), FINAL], config)
    assert out["metadata"]["tool_results"] == {"ok": 1, "tool_error": 2}
    assert out["metadata"]["matched_steps"] == [1] and out["metadata"]["ungrounded_calls"] == 2


def test_a_value_echoed_by_a_call_outside_the_steps_dependencies_does_not_ground_it(palantir, cassettes):
    # a search that repeats its query (not the plan's search: another query) "launders" an invented value;
    # only the results of the calls that matched the step's depends_on count. Before (any earlier ok result
    # grounded): matched [1, 2], reward 0.667
    laundering = call("fmp_search_ticker", {"query": "PALANTIR", "limit": 3})
    echoed = record("fmp_search_ticker", {"query": "PALANTIR", "limit": 3}, "No ticker matches PALANTIR")
    config = cassettes('[{"symbol": "PLTR"}]', echoed)
    out = episode(palantir, [SEARCH, laundering, quote("PALANTIR"), FINAL], config)
    assert out["metadata"]["matched_steps"] == [1] and out["metadata"]["ungrounded_calls"] == 1
    assert out["reward"] == pytest.approx(1 / 6)
    assert episode(palantir, [SEARCH, laundering, quote("PLTR"), FINAL], config)["reward"] == pytest.approx(2 / 3)


def test_a_derived_step_without_depends_on_reads_every_earlier_result(cassettes):
    # rows from elsewhere may mark a param derived without depends_on (skyrl's plans never do)
    row = make_row(
        [
            {"server": "fmp", "tool": "fmp_search_ticker", "params": {"query": "Palantir", "limit": 3}},
            {"server": "fmp", "tool": "fmp_get_quote", "params": {"symbol": "PLTR"}, "derived_params": ["symbol"]},
        ]
    )
    config = cassettes('[{"symbol": "PLTR"}]')
    assert episode(row, [SEARCH, quote("PLTR"), FINAL], config)["reward"] == 1.0
    assert episode(row, [SEARCH, quote("PLTX"), FINAL], config)["metadata"]["ungrounded_calls"] == 1


def test_a_result_of_the_same_turn_was_not_read_yet(palantir, cassettes):
    config = {**cassettes('[{"symbol": "PLTR"}]'), "dependencies_across_turns": False}
    out = episode(palantir, [SEARCH + quote("PLTR"), FINAL], config)
    assert out["metadata"]["matched_steps"] == [1] and out["metadata"]["ungrounded_calls"] == 1
    ungrounded_off = episode(palantir, [SEARCH + quote("PLTR"), FINAL], {**config, "ground_derived": False})
    assert ungrounded_off["reward"] == 1.0


def test_a_value_cut_from_the_result_the_policy_saw_does_not_ground(palantir, cassettes):
    config = {**cassettes("x" * 40 + " PLTR"), "max_response_chars": 20}
    assert episode(palantir, [SEARCH, quote("PLTR"), FINAL], config)["metadata"]["ungrounded_calls"] == 1



SEARCH_RESULT = (
    '[{"symbol": "PLTR", "name": "Palantir Technologies Inc."}, {"symbol": "PLTR.MX", "name": "Palantir (MX)"}]'
)


@pytest.mark.parametrize(
    "pasted",
    [
        SEARCH_RESULT,
        SEARCH_RESULT[1:],
        SEARCH_RESULT[2:-2],
        SEARCH_RESULT[:-1],
        'PLTR", "name": "Palantir Technologies Inc.',
    ],
    ids=["whole", "first character dropped", "brackets dropped", "last character dropped", "across two strings"],
)
def test_a_json_result_pasted_whole_or_in_a_stretch_does_not_ground(palantir, cassettes, pasted):
    # before: 1.0. The search's whole JSON (or any stretch of it) sent as the symbol occurred in the result as a
    # whole token, so a policy that read nothing earned the quote step; a JSON result is now read a string or
    # number at a time
    config = cassettes(SEARCH_RESULT)
    out = episode(palantir, [SEARCH, quote(pasted), FINAL], config)
    assert out["reward"] == 0.25 and out["metadata"]["ungrounded_calls"] == 1
    for read in ("PLTR", "PLTR.MX", "Palantir Technologies Inc."):  # one string of the result, or a word of one
        assert episode(palantir, [SEARCH, quote(read), FINAL], config)["reward"] == 1.0, read


def test_a_json_result_cut_short_is_still_read_a_string_at_a_time(palantir, cassettes):
    config = {**cassettes(SEARCH_RESULT), "max_response_chars": 41}  # cut inside "Palantir Technologies Inc."
    seen = SEARCH_RESULT[:41]
    assert seen.endswith('"Palantir Tec')
    assert episode(palantir, [SEARCH, quote(seen), FINAL], config)["reward"] == 0.25
    assert episode(palantir, [SEARCH, quote("Palantir Tec"), FINAL], config)["reward"] == 1.0
    assert episode(palantir, [SEARCH, quote("Palantir Technologies"), FINAL], config)["reward"] == 0.25  # not seen


@pytest.mark.parametrize("value", ["more", "characters", "cut", "25"])
def test_the_envs_note_on_a_cut_result_grounds_nothing(palantir, cassettes, value):
    # before: 1.0. The policy sees a long result cut, with the env's note "[... 25 more characters cut]"; the note
    # was kept with the result as evidence, so its words and count grounded a derived value on any row whose
    # result runs past max_response_chars, though no tool wrote them
    config = {**cassettes("PLTR " + "x" * 40), "max_response_chars": 20}
    out = episode(palantir, [SEARCH, quote(value), FINAL], config)
    assert out["reward"] == 0.25 and out["metadata"]["ungrounded_calls"] == 1
    assert episode(palantir, [SEARCH, quote("PLTR"), FINAL], config)["reward"] == 1.0  # in what the policy saw

def test_numbers_and_nested_values_are_found_in_the_results(tmp_path):
    row = make_row(
        [
            {"server": "fmp", "tool": "quote", "params": {"symbol": "MSFT"}},
            {
                "server": "fmp",
                "tool": "order",
                "params": {"symbol": "MSFT", "limit_price": 1234.5, "tags": ["MSFT", 7]},
                "depends_on": [1],
                "derived_params": ["limit_price", "tags"],
            },
        ]
    )
    quoted = record("quote", {"symbol": "MSFT"}, "MSFT last 1,234.50 USD, rank 7 of 30")
    (tmp_path / "cassettes.jsonl").write_text(json.dumps(quoted) + "\n", encoding="utf-8")
    config = {"cassettes": str(tmp_path), "ground_derived": True}
    first = call("quote", {"symbol": "MSFT"})
    ok = call("order", {"symbol": "MSFT", "limit_price": 1234.5, "tags": ["MSFT", 7]})
    assert episode(row, [first, ok, FINAL], config)["reward"] == 1.0
    for wrong in ({"limit_price": 1234.0}, {"tags": ["MSFT", 8]}, {"tags": ["AAPL", 7]}):
        bad = call("order", {"symbol": "MSFT", "limit_price": 1234.5, "tags": ["MSFT", 7], **wrong})
        assert episode(row, [first, bad, FINAL], config)["metadata"]["ungrounded_calls"] == 1, wrong


SHARED = json.loads((REPO / "test" / "fixtures" / "grounding" / "vectors.json").read_text(encoding="utf-8"))
VECTORS = SHARED["cases"]


@pytest.mark.parametrize("case", VECTORS, ids=[c["why"] for c in VECTORS])
def test_evidence_reads_strings_and_numbers_as_the_shared_vectors_say(case):
    assert Evidence(case["texts"]).holds(case["value"]) is case["held"]


@pytest.mark.parametrize("case", SHARED["leaves"], ids=[c["text"] for c in SHARED["leaves"]])
def test_a_json_texts_strings_and_numbers_are_read_as_the_shared_vectors_say(case):
    leaves = json_leaves(case["text"])
    assert (None if leaves is None else [list(leaf) for leaf in leaves]) == case["leaves"]


@pytest.mark.parametrize("case", SHARED["pieces"], ids=[c["text"] for c in SHARED["pieces"]])
def test_a_text_of_prose_and_json_lines_is_read_as_the_shared_vectors_say(case):
    pieces = text_pieces(case["text"])
    assert (None if pieces is None else [list(piece) for piece in pieces]) == case["pieces"]


def test_the_setting_must_be_a_boolean_or_auto(palantir):
    with pytest.raises(ConfigError, match='ground_derived: expected true, false or "auto"'):
        episode(palantir, [FINAL], {"ground_derived": "true"})


def verified(row, found, reading="json-leaves-4"):
    """``row`` with the record ``skyrl verify`` writes into task_metadata, saying whether it found every derived
    value of the plan in the results of its dependencies (``reading`` None: a record written before 2026-12-04)."""
    row = json.loads(json.dumps(row))
    metadata = json.loads(row["extra_info"]["task_metadata"])
    metadata["verification"] = {"status": "verified", "derived_values_found": found}
    if reading is not None:
        metadata["verification"]["derived_reading"] = reading
    row["extra_info"]["task_metadata"] = json.dumps(metadata)
    return row


def test_by_default_a_row_whose_derived_values_verify_found_in_the_results_is_grounded(palantir, cassettes):
    # before: 1.0. Without grounding (the default) an invented ticker earned the quote step, on a row where skyrl
    # verify had found the plan's own ticker in the search result: a copied value, where grounding costs the right
    # call nothing
    config = {"cassettes": cassettes('[{"symbol": "PLTR", "name": "Palantir Technologies Inc."}]')["cassettes"]}
    row = verified(palantir, True)
    out = episode(row, [SEARCH, quote("PALANTIR"), FINAL], config)
    assert out["reward"] == 0.25 and out["metadata"]["ungrounded_calls"] == 1 and out["metadata"]["ground_derived"]
    assert episode(row, [SEARCH, quote("PLTR"), FINAL], config)["reward"] == 1.0
    assert episode(row, [SEARCH, quote("PALANTIR"), FINAL], {**config, "ground_derived": False})["reward"] == 1.0
    for other in (verified(palantir, False), palantir):  # a computed value, or a row never verified: not grounded
        out = episode(other, [SEARCH, quote("PALANTIR"), FINAL], config)
        assert out["reward"] == 1.0 and not out["metadata"]["ground_derived"]
        assert episode(other, [SEARCH, quote("PALANTIR"), FINAL], {**config, "ground_derived": True})["reward"] == 0.25


def test_a_record_of_a_reading_this_package_does_not_know_reads_results_by_leaves(palantir, cassettes):
    # before: 1.0 for the whole search result pasted. A later skyrl's reading name turned the leaves off (the
    # whole-text reading of records written before 2026-12-04), where the latest reading was meant
    row = json.loads(json.dumps(palantir))
    config = {"cassettes": cassettes(SEARCH_RESULT)["cassettes"]}
    later = verified(row, True, reading="json-leaves-9")
    assert episode(later, [SEARCH, quote(SEARCH_RESULT), FINAL], config)["reward"] == 0.25
    assert episode(later, [SEARCH, quote("PLTR"), FINAL], config)["reward"] == 1.0


def test_a_record_verify_wrote_before_json_results_were_read_by_strings_grounds_as_it_was_found(palantir, cassettes):
    # A plan value that spans a JSON result's strings (the whole search result, as a file's content would copy it):
    # skyrl verify before 2026-12-04 read each result whole and said found, so "auto" grounds the step; read a
    # string at a time, the plan's own call would lose it (0.25). Such a record is read as it was found.
    row = json.loads(json.dumps(palantir))
    steps = row["reward_spec"]["ground_truth"]["tool_sequence"]
    steps[1]["params"] = json.dumps({"symbol": SEARCH_RESULT})
    config = {"cassettes": cassettes(SEARCH_RESULT)["cassettes"]}
    old = verified(row, True, reading=None)
    out = episode(old, [SEARCH, quote(SEARCH_RESULT), FINAL], config)
    assert out["reward"] == 1.0 and out["metadata"]["ground_derived"]
    assert episode(old, [SEARCH, quote("PALANTIR"), FINAL], config)["reward"] == 0.25  # still grounded
    now = verified(row, True)  # as verify writes it since: the JSON read a string at a time
    assert episode(now, [SEARCH, quote(SEARCH_RESULT), FINAL], config)["reward"] == 0.25
    assert episode(verified(palantir, True, reading=None), [SEARCH, quote("PLTR"), FINAL], config)["reward"] == 1.0


# a row with a copied derived value on one step and a computed one on another --------------------------------

MIXED_SEARCH = '[{"symbol": "PLTR", "name": "Palantir Technologies Inc."}]'
MESSAGE = "Palantir trades as PLTR, the first of 1 match"  # composed from the search result: written in no result


def mixed_row(step_fields=True, row_found=False, tool_of_step_2="fmp_get_quote"):
    """search -> get_quote(symbol copied from the search) and send_message(text composed from it), with the record
    ``skyrl verify`` writes: step 2's ticker found in the search result, step 3's message not (``step_fields``
    False: a record written before the steps' field, the row's alone)."""
    row = make_row(
        [
            {"server": "fmp", "tool": "fmp_search_ticker", "params": {"query": "Palantir", "limit": 3}},
            {"server": "fmp", "tool": "fmp_get_quote", "params": {"symbol": "PLTR"}, "depends_on": [1],
             "derived_params": ["symbol"]},
            {"server": "fmp", "tool": "send_message", "params": {"text": MESSAGE}, "depends_on": [1],
             "derived_params": ["text"]},
        ]
    )
    entries = [
        {"step": 1, "server": "fmp", "tool": "fmp_search_ticker", "key": "k1", "illustrative": False},
        {"step": 2, "server": "fmp", "tool": tool_of_step_2, "key": "k2", "illustrative": True},
        {"step": 3, "server": "fmp", "tool": "send_message", "key": "k3", "illustrative": True},
    ]
    if step_fields:
        entries[1]["derived_values_found"], entries[2]["derived_values_found"] = True, False
    record = {"status": "verified", "verified_at": "2026-12-03T00:00:00.000Z", "servers": {"fmp": "fmp@1.0.0"},
              "steps": entries, "derived_values_found": row_found}
    row["extra_info"]["task_metadata"] = json.dumps({"verification": record})
    return row


def message(text):
    return call("send_message", {"text": text})


@pytest.fixture
def mixed_config(tmp_path):
    lines = [
        record("fmp_search_ticker", {"query": "Palantir", "limit": 3}, MIXED_SEARCH),
        record("fmp_get_quote", {"symbol": "PLTR"}, '{"symbol": "PLTR", "price": 25.1}'),
        record("send_message", {"text": MESSAGE}, "sent"),
    ]
    (tmp_path / "cassettes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return {"cassettes": str(tmp_path)}  # ground_derived: the default, "auto"


def test_auto_grounds_the_steps_whose_own_derived_values_verify_found(mixed_config):
    # before: the row's derived_values_found is false (step 3's message is composed), so "auto" grounded nothing
    # and an invented ticker (or "") earned step 2: 1.0. Now step 2 is grounded, step 3 is not
    row = mixed_row()
    plan = episode(row, [SEARCH, quote("PLTR"), message(MESSAGE), FINAL], mixed_config)
    assert plan["reward"] == 1.0 and plan["metadata"]["grounded_steps"] == [2] and plan["metadata"]["ground_derived"]
    for invented in ("PALANTIR", ""):
        out = episode(row, [SEARCH, quote(invented), message(MESSAGE), FINAL], mixed_config)
        assert out["metadata"]["matched_steps"] == [1, 3] and out["metadata"]["ungrounded_calls"] == 1, invented
        assert out["reward"] == pytest.approx(4 / 9), invented  # 2 of 3 steps, 2 of 3 calls
    # the composed message is not held to the results: the plan's and another one both match step 3
    other = episode(row, [SEARCH, quote("PLTR"), message("PLTR: 1 match"), FINAL], mixed_config)
    assert other["reward"] == 1.0 and other["metadata"]["ungrounded_calls"] == 0


def test_true_and_false_ground_every_step_or_none_whatever_the_steps_record_says(mixed_config):
    row = mixed_row()
    plan = [SEARCH, quote("PLTR"), message(MESSAGE), FINAL]
    grounded = episode(row, plan, {**mixed_config, "ground_derived": True})
    assert grounded["metadata"]["matched_steps"] == [1, 2] and grounded["metadata"]["grounded_steps"] == [2, 3]
    assert grounded["reward"] == pytest.approx(4 / 9)  # the plan's own message is in no result
    invented = [SEARCH, quote("PALANTIR"), message(MESSAGE), FINAL]
    lenient = episode(row, invented, {**mixed_config, "ground_derived": False})
    assert lenient["reward"] == 1.0 and lenient["metadata"]["grounded_steps"] == []
    assert not lenient["metadata"]["ground_derived"]


def test_a_record_without_the_steps_field_is_read_for_the_whole_row_as_before(mixed_config):
    invented = [SEARCH, quote("PALANTIR"), message(MESSAGE), FINAL]
    old_false = episode(mixed_row(step_fields=False, row_found=False), invented, mixed_config)
    assert old_false["reward"] == 1.0 and old_false["metadata"]["grounded_steps"] == []
    old_true = episode(mixed_row(step_fields=False, row_found=True), invented, mixed_config)
    assert old_true["metadata"]["grounded_steps"] == [2, 3] and old_true["metadata"]["matched_steps"] == [1]
    assert old_true["reward"] == pytest.approx(1 / 9)  # the message is held to the results too (in none of them)


def test_a_steps_entry_of_another_tool_grounds_nothing(mixed_config):
    # a record from before the plan was edited: its step 2 ran another tool, so what it found says nothing here
    row = mixed_row(tool_of_step_2="fmp_get_company_profile")
    out = episode(row, [SEARCH, quote("PALANTIR"), message(MESSAGE), FINAL], mixed_config)
    assert out["reward"] == 1.0 and out["metadata"]["grounded_steps"] == []


# the gameability report with --ground-derived ------------------------------------------------


def test_the_report_plays_invented_derived_values_only_when_grounding(palantir, cassettes):
    rows = [("rows.jsonl row 0", palantir)]
    grounded = reward_check.check_rows(rows, cassettes('[{"symbol": "PLTR"}]'), None)
    invented = grounded.stats["derived_invented"]
    assert grounded.plan_failures == [] and grounded.leaks == []
    assert (invented.rewards, invented.below) == ([0.25], 1)
    lenient = reward_check.check_rows(rows, {"cassettes": cassettes('[{"symbol": "PLTR"}]')["cassettes"]}, None)
    assert lenient.stats["derived_invented"].rewards == [] and lenient.leaks == []


def test_the_report_plays_invented_derived_values_where_the_envs_default_grounds(mixed_config, tmp_path):
    # before: derived_invented was played with --ground-derived only, so the report never showed what the default
    # env ("auto") gives a policy that invents the copied ticker on this row (1.0 then; now 0.444)
    rows = [("rows.jsonl row 0", mixed_row())]
    report = reward_check.check_rows(rows, mixed_config, None)
    assert report.grounded_rows == 1 and report.plan_failures == [] and report.leaks == []
    assert report.plan_calls_unanswered == []
    invented = report.stats["derived_invented"]
    assert invented.rewards == [pytest.approx(4 / 9)] and invented.below == 1
    old = reward_check.check_rows(rows, {**mixed_config, "ground_derived": False}, None)
    assert old.grounded_rows == 0 and old.stats["derived_invented"].rewards == []
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(mixed_row()) + "\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "skyrl_mcp_env.reward_check", str(path), "--cassettes", mixed_config["cassettes"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'ground_derived "auto": derived values grounded on 1 row(s)' in done.stdout
    assert re.search(r"^derived_invented +1 +0\.444 ", done.stdout, re.M), done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "skyrl_mcp_env.reward_check", str(path), "--cassettes", mixed_config["cassettes"],
         "--no-ground-derived"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "derived_invented" not in done.stdout, done.stdout
    assert "ground_derived false: derived values grounded on 0 row(s)" in done.stdout


def test_the_report_names_a_row_whose_derived_value_the_recorded_results_lack(palantir, cassettes):
    report = reward_check.check_rows([("rows.jsonl row 0", palantir)], cassettes("[]"), None)
    assert report.plan_failures == [
        "rows.jsonl row 0 (palantir-lookup-v2): plan scores 0.250 (1/2 steps matched; 1 call(s) with derived values "
        "the recorded results do not hold)"
    ]


def test_the_report_cli_needs_cassettes_to_ground(tmp_path, palantir):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(palantir) + "\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "skyrl_mcp_env.reward_check", str(rows), "--ground-derived"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "--ground-derived needs --cassettes" in done.stderr


# end to end: rows skyrl converts and verifies against server-everything, replayed from its cassettes ------


def test_skyrl_verify_and_the_env_agree_on_which_derived_values_the_results_hold(tmp_path):
    everything = REPO / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
    rubric = {"name": "r", "criteria": [{"name": "c", "description": "d", "scoring": "s"}]}

    def task(task_id, b, *more):  # get-sum(40, b), then echo the sum: the plan's illustration says 42
        steps = [
            {"server": "everything", "tool": "get-sum", "params": {"a": 40, "b": b}},
            *({"server": "everything", "tool": "echo", "params": {"message": m}} for m in ("42", *more)),
        ]
        steps[0].update(depends_on=[], derived_params=[])
        for s in steps[1:]:
            s.update(depends_on=[1], derived_params=["message"])
        then = ", then the sum plus two." if more else "."
        prompt = f"Add 40 and {b} with the sum tool, then echo the sum back to me{then}"
        return {"task_id": task_id, "user_prompt": prompt, "tool_sequence": steps, "evaluation_rubric": rubric}

    # "mixed": the sum echoed (copied), then the sum plus two (computed: 44, in no result)
    tasks = [("right", 2), ("wrong", 3), ("mixed", 2, "44")]
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(task(*t)) + "\n" for t in tasks))
    for args in (
        ["tools", "import", "--stdio", f"everything=node {everything} stdio", "--out", "inv.json"],
        ["convert", "tasks.jsonl", "--inventory", "inv.json", "--out", "rows.jsonl"],
        ["verify", "rows.jsonl", "--inventory", "inv.json", "--out", "verified.jsonl", "--cassettes", "cas"],
    ):
        skyrl = ["node", str(REPO / "bin" / "skyrl.js"), *args]
        done = subprocess.run(skyrl, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert "derived values: 2 verified row(s)" in done.stdout
    rows = [json.loads(line) for line in (tmp_path / "verified.jsonl").read_text().split("\n") if line]
    records = [json.loads(r["extra_info"]["task_metadata"])["verification"] for r in rows]
    assert [v["derived_values_found"] for v in records] == [True, False, False]
    assert [[s.get("derived_values_found") for s in v["steps"]] for v in records] == [
        [None, True],
        [None, False],
        [None, True, False],
    ]
    mixed, rows = rows[2], rows[:2]
    config = {"cassettes": str(tmp_path / "cas"), "ground_derived": True}
    rewards = [episode(r, [*plan_calls(r), FINAL], config)["reward"] for r in rows]
    assert rewards == [1.0, 0.25]  # the env finds "42" in "The sum of 40 and 2 is 42." only
    right_value = episode(rows[1], [plan_calls(rows[1])[0], call("echo", {"message": "43"}), FINAL], config)
    assert right_value["reward"] == 1.0 and right_value["metadata"]["cassette_misses"] == 1  # verify ran "42"
    auto = {"cassettes": str(tmp_path / "cas")}  # the default, ground_derived "auto": the right row only
    assert [episode(r, [*plan_calls(r), FINAL], auto)["reward"] for r in rows] == [1.0, 1.0]
    invented = [call("get-sum", {"a": 40, "b": 2}), call("echo", {"message": "41"}), FINAL]
    assert episode(rows[0], invented, auto)["reward"] == 0.25
    assert episode(rows[1], [plan_calls(rows[1])[0], call("echo", {"message": "41"}), FINAL], auto)["reward"] == 1.0
    # the mixed row under "auto": the copied echo is grounded (before: nothing was, the row's field being false,
    # and an invented echo scored 1.0), the computed one is not: the plan scores 1.0
    assert episode(mixed, [*plan_calls(mixed), FINAL], auto)["reward"] == 1.0
    out = episode(mixed, [invented[0], invented[1], call("echo", {"message": "44"}), FINAL], auto)
    assert out["metadata"]["grounded_steps"] == [2] and out["metadata"]["matched_steps"] == [1, 3]
    assert out["reward"] == pytest.approx(4 / 9)


@pytest.mark.parametrize(
    "plan_search,policy_search",
    [
        ({"query": "Palantir"}, {"query": "Palantir", "limit": 10}),  # the policy spells the default out
        ({"query": "Palantir", "limit": 10}, {"query": "Palantir"}),  # the policy leaves it out
    ],
)
def test_a_call_the_scorer_reads_as_the_plans_replays_the_plans_recording(palantir, tmp_path, plan_search, policy_search):
    # before: a cassette miss (the key is of the arguments as written), so the policy saw an error where the
    # scorer counted the right call, and the quote that depends on the search lost its grounding: 0.25, not 1.0
    row = json.loads(json.dumps(palantir))
    row["reward_spec"]["ground_truth"]["tool_sequence"][0]["params"] = json.dumps(plan_search)
    recorded = record("fmp_search_ticker", plan_search, '[{"symbol": "PLTR"}]')
    (tmp_path / "cassettes.jsonl").write_text(json.dumps(recorded) + "\n", encoding="utf-8")
    config = {"cassettes": str(tmp_path), "ground_derived": True}
    out = episode(row, [call("fmp_search_ticker", policy_search), quote("PLTR"), FINAL], config)
    assert out["reward"] == 1.0 and out["metadata"]["tool_results"] == {"ok": 1, "miss": 1}  # the quote: no recording
    other = episode(row, [call("fmp_search_ticker", {"query": "Palantir", "limit": 5}), quote("PLTR"), FINAL], config)
    assert other["metadata"]["tool_results"] == {"miss": 2}  # another call is still a miss


@pytest.mark.parametrize("value", ["", [], {}, None, True, [""], {"s": ""}])
def test_a_derived_value_with_nothing_to_find_is_not_grounded(palantir, cassettes, value):
    # before: 1.0. Evidence holds "" (and [], {}, null, booleans) in any text, so sending symbol "" for the quote
    # earned the step that grounding exists to hold to a value the search returned (schema: any string)
    row = json.loads(json.dumps(palantir))
    row["reward_spec"]["ground_truth"]["tool_schemas"] = "{}"  # presence only, so null, [] and true are valid too
    config = cassettes('[{"symbol": "PLTR", "name": "Palantir Technologies Inc."}]')
    out = episode(row, [SEARCH, quote(value), FINAL], config)
    assert out["reward"] == 0.25 and out["metadata"]["ungrounded_calls"] == 1
    assert episode(row, [SEARCH, quote("PLTR"), FINAL], config)["reward"] == 1.0
    assert episode(row, [SEARCH, quote(value), FINAL], {**config, "ground_derived": False})["reward"] == 1.0


def test_a_derived_value_with_nothing_to_find_is_grounded_where_the_plans_is_alike(tmp_path):
    # a flag the plan derives from a result (its illustration: true): booleans hold nothing to find on either side
    row = make_row(
        [
            {"server": "fmp", "tool": "quote", "params": {"symbol": "MSFT"}},
            {"server": "fmp", "tool": "alert", "params": {"on": True}, "depends_on": [1], "derived_params": ["on"]},
        ]
    )
    quoted = record("quote", {"symbol": "MSFT"}, "MSFT halted")
    (tmp_path / "cassettes.jsonl").write_text(json.dumps(quoted) + "\n", encoding="utf-8")
    config = {"cassettes": str(tmp_path), "ground_derived": True}
    out = episode(row, [call("quote", {"symbol": "MSFT"}), call("alert", {"on": False}), FINAL], config)
    assert out["reward"] == 1.0


@pytest.mark.parametrize("value", [" ", ",", '"', ": ", "{", "}]", ".", [" ", ","], {"s": "."}])
def test_a_derived_value_of_punctuation_or_spaces_is_not_grounded(palantir, cassettes, value):
    # before: 1.0. A string of no letter and no digit is a whole token wherever it occurs, and every result holds
    # spaces, quotes, commas and braces (JSON), so symbol "," earned the step as "" did before it was refused: a
    # value any result holds, which grounding exists to rule out
    row = json.loads(json.dumps(palantir))
    row["reward_spec"]["ground_truth"]["tool_schemas"] = "{}"  # presence only, so lists and objects are valid too
    config = cassettes('[{"symbol": "PLTR", "name": "Palantir Technologies Inc."}]')
    out = episode(row, [SEARCH, quote(value), FINAL], config)
    assert out["reward"] == 0.25 and out["metadata"]["ungrounded_calls"] == 1
    assert episode(row, [SEARCH, quote(["PLTR", ","]), FINAL], config)["reward"] == 1.0  # a value found, beside it
    assert episode(row, [SEARCH, quote(value), FINAL], {**config, "ground_derived": False})["reward"] == 1.0


def test_a_derived_value_of_punctuation_is_grounded_where_the_plans_is_alike(tmp_path):
    # a separator the plan derives from a result (its illustration: ";"): then a held one is the policy's to send
    row = make_row(
        [
            {"server": "fmp", "tool": "read", "params": {"path": "a.csv"}},
            {"server": "fmp", "tool": "split", "params": {"sep": ";"}, "depends_on": [1], "derived_params": ["sep"]},
        ]
    )
    (tmp_path / "cassettes.jsonl").write_text(json.dumps(record("read", {"path": "a.csv"}, "a,b\n1,2")) + "\n")
    config = {"cassettes": str(tmp_path), "ground_derived": True}
    out = episode(row, [call("read", {"path": "a.csv"}), call("split", {"sep": ","}), FINAL], config)
    assert out["reward"] == 1.0
    out = episode(row, [call("read", {"path": "a.csv"}), call("split", {"sep": "|"}), FINAL], config)
    assert out["reward"] == 0.25  # not in the result


@pytest.mark.parametrize(
    "text,value",
    [
        ('[{"symbol": "PLTR", "name": "Palantir Technologies Inc."}]', "symbol"),
        ('[{"symbol": "PLTR", "name": "Palantir Technologies Inc."}]', "name"),
        ('[{"symbol" : "PLTR"}]', "symbol"),
        ("[{'symbol': 'PLTR'}]", "symbol"),  # a Python server's repr of a dict
        # a word of a key (Alpha Vantage's layout): before, 1.0 even under strict, though the whole key was refused
        ('{"bestMatches": [{"1. symbol": "PLTR", "4. region": "United States"}]}', "symbol"),
        ('{"bestMatches": [{"1. symbol": "PLTR", "4. region": "United States"}]}', "region"),
        # a literal of JSON or of a repr, in nearly every result: before, 1.0 even under strict
        ('[{"symbol": "PLTR", "exchange": null, "isActivelyTrading": true}]', "null"),
        ('[{"symbol": "PLTR", "exchange": null, "isActivelyTrading": true}]', "true"),
        ('[{"symbol": "PLTR", "changes": -Infinity}]', "Infinity"),
        ("[{'symbol': 'PLTR', 'exchange': None, 'active': True}]", "None"),
        ("[{'symbol': 'PLTR', 'exchange': None, 'active': True}]", "True"),
    ],
)
def test_a_key_of_the_results_json_does_not_ground_a_value(palantir, cassettes, text, value):
    # before: 1.0. A field name of the result ("symbol", "name") is a whole token of it, and the same in every
    # result of the tool, whatever the task: a constant that earned the step without reading the value
    config = cassettes(text)
    out = episode(palantir, [SEARCH, quote(value), FINAL], config)
    assert out["reward"] == 0.25 and out["metadata"]["ungrounded_calls"] == 1
    assert episode(palantir, [SEARCH, quote("PLTR"), FINAL], config)["reward"] == 1.0


def test_a_word_that_is_also_a_value_of_the_results_grounds(palantir, cassettes):
    config = cassettes('[{"symbol": "PLTR", "name": "symbol"}]')
    assert episode(palantir, [SEARCH, quote("symbol"), FINAL], config)["reward"] == 1.0
    config = cassettes('[{"1. symbol": "PLTR", "note": "null pointer", "flag": true}]')  # in a string: data
    assert episode(palantir, [SEARCH, quote("null"), FINAL], config)["reward"] == 1.0


def test_a_key_grounds_where_the_plans_value_is_a_key_too(tmp_path):
    # a field to sort by, which the plan takes from the result's field names (its illustration: "price")
    row = make_row(
        [
            {"server": "fmp", "tool": "quote", "params": {"symbol": "MSFT"}},
            {"server": "fmp", "tool": "sort", "params": {"by": "price"}, "depends_on": [1], "derived_params": ["by"]},
        ]
    )
    quoted = record("quote", {"symbol": "MSFT"}, '{"price": 411.2, "volume": 9000}')
    (tmp_path / "cassettes.jsonl").write_text(json.dumps(quoted) + "\n", encoding="utf-8")
    config = {"cassettes": str(tmp_path), "ground_derived": True}
    first = call("quote", {"symbol": "MSFT"})
    assert episode(row, [first, call("sort", {"by": "volume"}), FINAL], config)["reward"] == 1.0
    assert episode(row, [first, call("sort", {"by": "MSFT"}), FINAL], config)["reward"] == 0.25  # in no result


def test_a_literal_or_a_word_of_a_key_grounds_where_the_plans_value_is_one_too(tmp_path):
    # the plan's own call is never refused for it: a flag a later tool takes as text ("true"), a field by its word
    row = make_row(
        [
            {"server": "fmp", "tool": "quote", "params": {"symbol": "MSFT"}},
            {"server": "fmp", "tool": "note", "params": {"open": "true", "field": "price"}, "depends_on": [1],
             "derived_params": ["open", "field"]},
        ]
    )
    quoted = record("quote", {"symbol": "MSFT"}, '{"1. price": 411.2, "2. volume": 9000, "open": true, "x": null}')
    (tmp_path / "cassettes.jsonl").write_text(json.dumps(quoted) + "\n", encoding="utf-8")
    config = {"cassettes": str(tmp_path), "ground_derived": True, "strict": True}
    first = call("quote", {"symbol": "MSFT"})
    assert episode(row, [first, call("note", {"open": "true", "field": "price"}), FINAL], config)["reward"] == 1.0
    assert episode(row, [first, call("note", {"open": "null", "field": "volume"}), FINAL], config)["reward"] == 1.0


def test_each_result_is_read_once_however_often_the_matcher_asks(monkeypatch):
    # The matcher builds an Evidence for each set of results a call could read, and asks of each value again and
    # again: reading each result's JSON anew every time (and JSON-escaping each value once a piece) took 5.0 s to
    # score 4 turns of 12 calls over 8,000-character results, 0.08 s before JSON results were read a string at a time
    from conftest import extras_of

    from skyrl_mcp_env import reward
    from skyrl_mcp_env.plan import plan_from_extras

    steps = [
        {"server": "fmp", "tool": "search", "params": {"query": "x"}},
        {"server": "fmp", "tool": "quote", "params": {"symbol": "PLTR"}, "derived_params": ["symbol"]},
        {"server": "fmp", "tool": "news", "params": {"symbol": "PLTR", "day": "2026"},
         "derived_params": ["symbol", "day"], "depends_on": [1, 2]},
    ]
    row = make_row(steps)
    row["reward_spec"]["ground_truth"]["max_turns"] = 6
    row["reward_spec"]["ground_truth"]["limits"] = {"max_tools": 3, "max_servers": 1}
    plan = plan_from_extras(extras_of(row))
    big = json.dumps([{"symbol": f"S{i}", "name": f"Company number {i}"} for i in range(200)])
    texts = [big, big.replace("Company", "Firm")]
    arguments = {"search": {"query": "x"}, "quote": {"symbol": "S1"}, "news": {"symbol": "S2", "day": "zz"}}
    calls = tuple(
        reward.CallRecord(t, name, arguments[name], "fmp", result=texts[k % 2])
        for t in range(4) for k, name in enumerate(["search", "quote", "news"] * 4)
    )
    reads, escapes, evidences = [], [], []

    class Counted(reward.Evidence):
        def __init__(self, *args):
            evidences.append(1)
            super().__init__(*args)

    monkeypatch.setattr(reward, "Evidence", Counted)
    monkeypatch.setattr(reward, "text_pieces", lambda text, *how, read=reward.text_pieces: reads.append(1) or read(text, *how))
    monkeypatch.setattr(reward, "_forms", lambda value, forms=reward._forms: escapes.append(value) or forms(value))
    reward._reading.cache_clear()
    reward.score(plan, reward.Trajectory(calls, "done", "final_answer"), ground_derived=True)

    # a value's escapes made once an Evidence for holds and once for only_as_key, not once a piece of the results
    assert len(reads) == len(texts)  # each distinct result text read once (264 times, read at each Evidence)
    # a value escaped at most once an Evidence for holds and once for only_as_key (1,474 times, asked again and again)
    assert len(escapes) <= 2 * len(evidences) * len(set(escapes))


def test_a_record_of_the_first_json_reading_grounds_a_line_of_json_with_words_as_it_was_found(palantir, cassettes):
    # skyrl verify on the afternoon of 2026-12-04 ("json-leaves") read a line of JSON with words after it as prose,
    # so a plan value across it was found; "json-leaves-2" reads its JSON apart. Each record is read as verify read.
    line = '[{"symbol": "PLTR", "name": "Palantir Technologies Inc."}] (1 result)'
    row = json.loads(json.dumps(palantir))
    row["reward_spec"]["ground_truth"]["tool_sequence"][1]["params"] = json.dumps({"symbol": line})
    config = {"cassettes": cassettes(line)["cassettes"]}
    assert episode(verified(row, True, reading="json-leaves"), [SEARCH, quote(line), FINAL], config)["reward"] == 1.0
    assert episode(verified(row, True), [SEARCH, quote(line), FINAL], config)["reward"] == 0.25
    for reading in ("json-leaves", "json-leaves-2"):
        row = verified(palantir, True, reading=reading)
        assert episode(row, [SEARCH, quote("PLTR"), FINAL], config)["reward"] == 1.0


def test_a_record_of_the_second_json_reading_grounds_the_json_after_words_as_it_was_found(palantir, cassettes):
    # skyrl verify on the evening of 2026-12-04 ("json-leaves-2") read the words after a line's first JSON as prose,
    # more JSON in them too, so a plan value across that JSON was found; "json-leaves-3" reads it apart.
    second = '{"symbol": "PLTR", "name": "Palantir Technologies Inc."}'
    line = f'[{{"query": "Palantir"}}] matched {second} (1 result)'
    row = json.loads(json.dumps(palantir))
    row["reward_spec"]["ground_truth"]["tool_sequence"][1]["params"] = json.dumps({"symbol": second})
    config = {"cassettes": cassettes(line)["cassettes"]}
    for reading in ("json-leaves", "json-leaves-2"):
        assert episode(verified(row, True, reading=reading), [SEARCH, quote(second), FINAL], config)["reward"] == 1.0
    assert episode(verified(row, True), [SEARCH, quote(second), FINAL], config)["reward"] == 0.25
    assert episode(verified(palantir, True), [SEARCH, quote("PLTR"), FINAL], config)["reward"] == 1.0


def test_a_python_repr_result_is_read_a_string_at_a_time_unless_the_record_read_it_whole(palantir, cassettes):
    # A Python server's str() of its dict. Before json-leaves-4 it was plain text: pasted whole as the symbol, it
    # grounded the quote step (1.0). A record of an earlier reading found its values reading it so: read as then.
    result = "[{'symbol': 'PLTR', 'name': 'Palantir Technologies Inc.', 'exchange': 'NYSE'}]"
    row = json.loads(json.dumps(palantir))
    row["reward_spec"]["ground_truth"]["tool_sequence"][1]["params"] = json.dumps({"symbol": result})
    config = {"cassettes": cassettes(result)["cassettes"]}
    assert episode(verified(row, True), [SEARCH, quote(result), FINAL], config)["reward"] == 0.25
    assert episode(verified(row, True, reading="json-leaves-3"), [SEARCH, quote(result), FINAL], config)["reward"] == 1.0
    assert episode(verified(palantir, True), [SEARCH, quote("PLTR"), FINAL], config)["reward"] == 1.0
    assert episode(verified(palantir, True), [SEARCH, quote("'PLTR', 'name'"), FINAL], config)["reward"] == 0.25
