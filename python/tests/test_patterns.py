"""Schema regexes on the policy's strings (``pattern``, ``patternProperties``, the "regex" format): a string
written to make ``re`` backtrack is scored in well under a second, a string the guard cannot decide earns no
schema-valid credit, the plan's own call keeps its full score, and ``pattern_guard: false`` is plain ``re``.

Before the guard, scoring one call of these shapes took from seconds to minutes (python/README.md)."""

import json
import random
import re
import time

import pytest
from conftest import call, episode, make_row

from skyrl_mcp_env.tools import ConfigError

FINAL = "Here is the answer."
FAST = 2.0  # seconds: a generous bound for one episode (each took 7 s to minutes before)


def row_with(property_schema, plan_value):
    """One step, t(v=plan_value), whose ``v`` is derived (any valid value the policy finds matches)."""
    schema = {"type": "object", "properties": {"v": property_schema}, "required": ["v"]}
    return make_row(
        [{"server": "s", "tool": "t", "params": {"v": plan_value}, "derived_params": ["v"]}],
        tool_schemas=json.dumps({"t": schema}),
    )


def timed(row, value, config=None):
    start = time.perf_counter()
    out = episode(row, [call("t", {"v": value}), FINAL], config=config)
    return out["reward"], time.perf_counter() - start


EMAIL = (
    r"^([a-zA-Z0-9])(([\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}"
    r"(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$"
)


@pytest.mark.parametrize(
    "pattern,plan_value,attack",
    [
        (r"^(a+)+$", "aaa", "a" * 30 + "!"),
        (r"^(\w+\s?)*$", "two words", "a" * 30 + "!"),
        (r"(a|aa)+$", "aa", "a" * 40 + "!"),
        (r"^(a|a?)+$", "a", "a" * 30 + "!"),
        (EMAIL, "jo@x.com", "a" * 30 + "!"),
        (r"\d+$", "42", "1" * 50_000 + "x"),  # no nesting: re.search tries every start, quadratic
    ],
    ids=["nested", "words", "alternation", "optional", "email", "quadratic"],
)
def test_a_backtracking_pattern_scores_the_policys_string_fast_and_as_not_matching(pattern, plan_value, attack):
    row = row_with({"type": "string", "pattern": pattern}, plan_value)
    reward, seconds = timed(row, attack)
    assert reward == 0.0 and seconds < FAST, seconds


def test_a_backtracking_pattern_properties_key_is_scored_fast():
    # find_additional_properties joins the patternProperties keys and searches every property name with them
    prop = {"type": "object", "patternProperties": {"^(a+)+$": {"type": "integer"}}, "additionalProperties": False}
    row = row_with(prop, {"aa": 1})
    reward, seconds = timed(row, {"a" * 30 + "!": 1})
    assert reward == 0.0 and seconds < FAST, seconds
    assert timed(row, {"aaaa": 2})[0] == 1.0  # a key that matches, with a value its subschema takes
    assert timed(row, {"aaaa": "2"})[0] == 0.0  # ... and with one it refuses


def test_a_regex_format_string_slow_to_compile_is_checked_fast():
    # re.compile builds case-insensitive class tables: 1 s for 200 of these classes; the parser alone is linear
    row = row_with({"type": "string", "format": "regex"}, "TODO")
    reward, seconds = timed(row, "(?i)" + "[\u0000-\uffff]" * 2000)
    assert reward == 1.0 and seconds < FAST, seconds


@pytest.mark.parametrize(
    "pattern,plan_value,good,bad",
    [
        (r"^[A-Z]{1,5}$", "PLTR", "MSFT", "msft"),
        (r"^[A-Z]{1,5}$", "PLTR", "ABCDE", "ABCDEF"),
        (r"^\d{4}-\d{2}-\d{2}$", "2026-01-02", "2025-12-31", "2025-12-31\n\n"),
        (r"^\d{4}-\d{2}-\d{2}$", "2026-01-02", "2025-12-31\n", "2025-12-3"),  # $ before a final newline, as in re
        (r"\bAMD\b", "AMD", "buy AMD now", "AMDX"),
        (r"(?i)^acme-[a-z]+$", "acme-x", "ACME-Widgets", "acme-"),
        (r"^(a+)+$", "aaa", "a" * 30, "a" * 30 + "!"),  # the catastrophic shape, checked exactly
        (r"^[^\s@]+@[^\s@]+\.[^\s@]+$", "jo@x.com", "ann.lee@mail.example.org", "ann lee@mail.org"),
    ],
    ids=["upper", "length", "date-newlines", "date-final-newline", "word-boundary", "ignorecase", "nested", "email"],
)
def test_a_pattern_is_checked_as_re_checks_it(pattern, plan_value, good, bad):
    row = row_with({"type": "string", "pattern": pattern}, plan_value)
    assert timed(row, good)[0] == 1.0
    assert timed(row, bad)[0] == 0.0
    assert timed(row, plan_value)[0] == 1.0


LOOKAHEAD = r"^(?=.*\d)(\w)\w*\1$"  # a digit somewhere, first and last characters the same: no automaton runs it


def test_a_string_the_guard_cannot_decide_earns_no_credit_but_the_plans_own_value_does():
    row = row_with({"type": "string", "pattern": LOOKAHEAD}, "a1a")
    assert re.search(LOOKAHEAD, "b2b")  # valid for re: before the guard it earned the step
    assert timed(row, "b2b")[0] == 0.0
    assert timed(row, "a1a")[0] == 1.0  # the plan's value: checked by re, as before


def test_a_string_past_the_step_budget_earns_no_credit_the_same_way_twice():
    # every position keeps up to 1,000 automaton states live: 5,000 characters pass the budget. The budget
    # counts states, not seconds, so the second (cached) scoring gives the same answer as the first.
    row = row_with({"type": "string", "pattern": r".{0,1000}x"}, "x")
    value = "a" * 5_000 + "x"
    assert re.search(r".{0,1000}x", value)
    first, seconds = timed(row, value)
    assert first == 0.0 and seconds < FAST, seconds
    assert timed(row, value)[0] == 0.0
    assert timed(row, "a" * 500 + "x")[0] == 1.0


def test_a_plan_string_sent_in_a_field_whose_pattern_backtracks_on_it_is_scored_fast():
    # the plan's own free text (a query, a note) is a cleared string: the policy can send it in another param,
    # one whose pattern the plan never ran on it. re took 14 s on this sentence against ^(\w+\s?)*$ (words, then
    # the "!" that fails), minutes on a few words more; the automaton decides it like any other string.
    sentence = "Find flights from Boston to Denver now!"
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": r"^(\w+\s?)*$"},
                                               "note": {"type": "string"}}, "required": ["name", "note"]}
    row = make_row(
        [{"server": "s", "tool": "t", "params": {"name": "ACME report", "note": sentence}, "derived_params": ["name"]}],
        tool_schemas=json.dumps({"t": schema}),
    )
    start = time.perf_counter()
    out = episode(row, [call("t", {"name": sentence, "note": sentence}), FINAL])
    seconds = time.perf_counter() - start
    assert out["reward"] == 0.0 and seconds < FAST, seconds
    assert episode(row, [call("t", {"name": "ACME report", "note": sentence}), FINAL])["reward"] == 1.0


def test_pattern_guard_false_checks_with_re_as_before():
    row = row_with({"type": "string", "pattern": LOOKAHEAD}, "a1a")
    assert timed(row, "b2b", config={"pattern_guard": False})[0] == 1.0
    assert timed(row, "b2c", config={"pattern_guard": False})[0] == 0.0
    long_row = row_with({"type": "string", "pattern": r".{0,1000}x"}, "x")
    assert timed(long_row, "a" * 5_000 + "x", config={"pattern_guard": False})[0] == 1.0


def test_pattern_guard_takes_a_boolean_only():
    with pytest.raises(ConfigError, match=r"pattern_guard: expected true or false, got 'false'"):
        episode(row_with({"type": "string"}, "x"), [FINAL], config={"pattern_guard": "false"})


def test_the_guard_reaches_jsonschemas_regex_searches():
    # jsonschema calls re.search from its keyword modules; a version that moved them would leave the guard off
    from skyrl_mcp_env import patterns

    assert "_keywords" in patterns.hook_jsonschema() or "_validators" in patterns.hook_jsonschema()


ATOMS = ["a", "b", "K", ".", r"\d", r"\w", r"\s", r"\W", "[ab]", "[^a]", "[a-c]", r"\b", r"\B", "^", "$", r"\A",
         r"\Z", "\n", "é", "ſ", "[k]", r"[\d_]", r"\.", " "]


def _random_pattern(rng, depth=0):
    r = rng.random()
    if depth > 3 or r < 0.4:
        return rng.choice(ATOMS)
    if r < 0.55:
        return "".join(_random_pattern(rng, depth + 1) for _ in range(rng.randint(1, 3)))
    if r < 0.65:
        return "(" + "|".join(_random_pattern(rng, depth + 1) for _ in range(rng.randint(2, 3))) + ")"
    if r < 0.75:
        return rng.choice(["(?:", "(?i:", "(?s:", "(?m:", "("]) + _random_pattern(rng, depth + 1) + ")"
    return "(?:" + _random_pattern(rng, depth + 1) + ")" + rng.choice(["*", "+", "?", "{2}", "{1,3}", "{0,2}", "+?"])


def test_the_automaton_answers_as_re_search_on_random_patterns():
    from skyrl_mcp_env import patterns

    rng = random.Random(7)
    checked = 0
    for _ in range(1500):
        pattern = rng.choice(["", "(?i)", "(?s)", "(?m)", "(?a)"]) + _random_pattern(rng)
        machine = patterns.automaton(pattern)
        assert machine is not None, pattern
        for _ in range(10):
            text = "".join(rng.choice("abKk\n _1é.ſ!") for _ in range(rng.randint(0, 8)))
            assert machine.search(text)[0] == (re.search(pattern, text) is not None), (pattern, text)
            checked += 1
    assert checked == 15_000


def test_the_cached_dfa_of_a_pattern_holds_a_bounded_number_of_nfa_states():
    # every position of a random a/b string reaches a new set of ~300 of the 600 counted states: the cache was
    # bounded in entries only, and one 1,500-character string left 710,000 NFA states (about 45 MB) in it
    from skyrl_mcp_env import patterns

    rng = random.Random(3)
    machine = patterns.automaton(r"[ab]*a[ab]{600}c")
    for _ in range(2):
        assert machine.search("".join(rng.choice("ab") for _ in range(1_500)))[0] is False
    assert sum(map(len, machine._sets)) <= patterns._CACHE_INTS + 3 * len(machine.kind)


def test_one_automaton_searched_from_many_threads_answers_as_re_search(monkeypatch):
    # SkyRL runs env.step in a thread pool, and every env of the process shares a pattern's automaton (its lazy
    # DFA, cached per pattern). Unlocked, a thread clearing the cache (or numbering a new state set) under
    # another's walk gave IndexError or TypeError (a valid derived value scored as not valid) and wrong answers
    # (wrong credit), 10 to 80 of 6,000 searches here; a small cache makes the clearing frequent, as long
    # training runs make it with the default size.
    import sys
    import threading

    from skyrl_mcp_env import patterns

    monkeypatch.setattr(patterns, "_CACHE_ENTRIES", 50)
    pattern = r"^(?:[a-c]+x|[b-d]*y)[0-9]{0,8}$"
    machine = patterns.automaton(pattern)
    rng = random.Random(1)
    texts = ["".join(rng.choice("abcdxy0123") for _ in range(rng.randint(1, 40))) for _ in range(6000)]
    expected = [re.search(pattern, t) is not None for t in texts]
    faults = []

    def work(k):
        for i in range(k, len(texts), 8):
            try:
                if machine.search(texts[i])[0] != expected[i]:
                    faults.append((texts[i], "wrong answer"))
            except Exception as e:  # noqa: BLE001 - each is a fault of the test's subject
                faults.append((texts[i], repr(e)))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # thread switches as often as the interpreter allows
    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert faults == []
