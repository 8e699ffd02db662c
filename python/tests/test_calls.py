import json
import time

import pytest
from conftest import SYNTAX, call, episode, make_row

from skyrl_mcp_env.calls import Call, Malformed, parse_calls, strip_thinking, tool_response


def syntax_line(row):
    system = row["prompt"][0]
    assert system["role"] == "system"
    lines = [line for line in system["content"].split("\n") if "<tool_call>" in line]
    assert lines == [SYNTAX], "the system message teaches the call syntax on exactly one line"
    return lines[0]


def test_parser_reads_the_syntax_skyrl_prompts_teach(generated_rows, converted_rows, v2_rows):
    for row in generated_rows + converted_rows + v2_rows:
        template = syntax_line(row).split("reply with exactly: ", 1)[1]
        for step in row["reward_spec"]["ground_truth"]["tool_sequence"]:
            name, params = step.get("call_name") or step["tool"], json.loads(step["params"])
            action = template.replace('"TOOL"', json.dumps(name)).replace("{...}", json.dumps(params))
            assert parse_calls("Let me look that up.\n" + action) == [Call(name, params)]


def test_the_template_itself_is_not_a_call():
    template = SYNTAX.split("reply with exactly: ", 1)[1]
    [parsed] = parse_calls(template)
    assert isinstance(parsed, Malformed) and "not valid JSON" in parsed.error


def test_no_block_is_a_final_answer():
    assert parse_calls("AAPL trades at 230.1 USD.") == []


def test_several_calls_in_one_turn_in_order():
    text = '<tool_call>{"name": "a", "arguments": {"x": 1}}</tool_call> then <tool_call>{"name": "b"}</tool_call>'
    assert parse_calls(text) == [Call("a", {"x": 1}), Call("b", {})]


def test_thinking_is_ignored():
    text = '<think>I could write <tool_call>{"name": "x", "arguments": {}}</tool_call></think>Done.'
    assert parse_calls(text) == []


def test_thinking_opened_by_the_chat_template_is_ignored():
    # Templates such as DeepSeek-R1 distills' end the generation prompt with "<think>\n": the turn holds
    # the reasoning and a lone </think>, and what the model thought about calling is not a call.
    text = 'I could write <tool_call>{"name": "x", "arguments": {}}</tool_call>\n</think>\n'
    assert parse_calls(text + '<tool_call>{"name": "a", "arguments": {}}</tool_call>') == [Call("a", {})]
    assert parse_calls(text + "AAPL trades at 230.1 USD.") == []
    assert strip_thinking(text + "AAPL trades at 230.1 USD.").strip() == "AAPL trades at 230.1 USD."


@pytest.mark.parametrize(
    "message",
    ["</think>", "a<think>b</think>c", "<think>", "x</think>y</think>"],
)
@pytest.mark.parametrize("reasoning", ["", "<think>I will echo it.</think>\n", "I will echo it.\n</think>\n"])
def test_a_think_tag_inside_a_calls_arguments_is_text_of_the_call(message, reasoning):
    # before: "</think>" in an argument was read as the end of the reasoning: the call before it was dropped and
    # the turn became a final answer ('"}}</tool_call>'); "a<think>b</think>c" reached the tool (and the scorer)
    # as "ac"
    block = "<tool_call>" + json.dumps({"name": "echo", "arguments": {"message": message}}) + "</tool_call>"
    assert parse_calls(reasoning + block) == [Call("echo", {"message": message})]
    hidden = "<think>I could write " + block + "</think>Done."  # a call in the reasoning is still hidden
    assert parse_calls(hidden) == [] and strip_thinking(hidden) == "Done."


def test_a_tag_mentioned_in_template_opened_reasoning_does_not_hide_the_call_after_it():
    text = 'I answer with <tool_call> tags.\n</think>\n<tool_call>{"name": "a", "arguments": {}}</tool_call>'
    assert parse_calls(text) == [Call("a", {})]


@pytest.mark.parametrize(
    "body,reason",
    [
        ('{"name": "a", "arguments": {"x": 1}', "not valid JSON"),
        ('["a", {}]', "expected an object"),
        ('{"arguments": {}}', 'has no "name"'),
        ('{"name": "", "arguments": {}}', 'has no "name"'),
        ('{"name": "a", "arguments": "{\\"x\\": 1}"}', '"arguments" must be an object'),
        ('{"name": "a", "arguments": [1]}', '"arguments" must be an object'),
        # another format's key: was a call with no arguments (a cassette miss, not the grammar hint)
        ('{"name": "a", "parameters": {"x": 1}}', 'has no "arguments" (its other keys: "parameters")'),
    ],
)
def test_malformed_blocks_say_why(body, reason):
    [parsed] = parse_calls(f"<tool_call>{body}</tool_call>")
    assert isinstance(parsed, Malformed) and reason in parsed.error


def test_a_call_with_no_arguments_is_a_call_and_extra_keys_beside_arguments_are_read_past():
    assert parse_calls('<tool_call>{"name": "a"}</tool_call>') == [Call("a", {})]
    extra = '<tool_call>{"name": "a", "arguments": {"x": 1}, "id": "c1"}</tool_call>'
    assert parse_calls(extra) == [Call("a", {"x": 1})]


def test_unclosed_block_is_malformed():
    parsed = parse_calls('<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{"name": "b"')
    assert parsed[0] == Call("a", {})
    assert isinstance(parsed[1], Malformed) and "never closed" in parsed[1].error


@pytest.mark.parametrize(
    "text,expected",
    [
        ('<tool_call>{"name": "x"} ' * 8000, "malformed"),  # 200 KB; before: 13 s (quadratic)
        ("<tool_call>" * 18000, "malformed"),
        ("<think>" * 28000 + '<tool_call>{"name": "a"}</tool_call>', "call"),  # before: 43 s
    ],
    ids=["unclosed-calls", "bare-open-tags", "unclosed-think"],
)
def test_200_kb_of_unclosed_tags_parse_in_linear_time(text, expected):
    assert len(text) >= 195_000
    started = time.perf_counter()
    parsed = parse_calls(text)
    assert time.perf_counter() - started < 2.0
    if expected == "call":  # a <think> never closed hides nothing
        assert parsed == [Call("a", {})]
    else:  # one malformed entry: the text from the first unclosed <tool_call> to the end
        assert parsed == [Malformed(text, "<tool_call> is never closed with </tool_call>")]


def test_an_unclosed_spray_is_one_invalid_call():
    row = make_row([{"server": "s", "tool": "x", "params": {}}])
    started = time.perf_counter()
    out = episode(row, [call("x", {}) + '<tool_call>{"name": "x"} ' * 8000, "done"])
    assert time.perf_counter() - started < 2.0
    assert (out["metadata"]["calls"], out["metadata"]["invalid_calls"], out["metadata"]["steps_matched"]) == (2, 1, 1)


def test_tool_response_format():
    assert tool_response("42") == {"role": "user", "content": "<tool_response>\n42\n</tool_response>"}


@pytest.mark.parametrize("message", ["</tool_call>", "<tool_call>x</tool_call>", "a</tool_call>b</tool_call>c"])
def test_a_call_tag_inside_a_calls_arguments_is_text_of_the_call(message):
    # before: the block ended at the first </tool_call>, inside the string: the plan's own call, written as
    # json.dumps writes it, was malformed, and a row whose echo message holds the tag scored 0 for every policy
    block = "<tool_call>" + json.dumps({"name": "echo", "arguments": {"message": message}}) + "</tool_call>"
    after = '<tool_call>{"name": "b", "arguments": {}}</tool_call>'
    assert parse_calls(block) == [Call("echo", {"message": message})]
    assert parse_calls("Sure. " + block + " then " + after) == [Call("echo", {"message": message}), Call("b", {})]
    hidden = "<think>I could write " + block + "</think>Done."
    assert parse_calls(hidden) == [] and strip_thinking(hidden) == "Done."
    row = make_row([{"server": "s", "tool": "echo", "params": {"message": message}}])
    assert episode(row, [block, "done"])["reward"] == 1.0


def test_malformed_blocks_followed_by_many_close_tags_parse_in_linear_time():
    unit = '<tool_call>{"name": "x", "arguments": {"m": "' + "</tool_call>" * 10
    text = unit * 1200  # 200 KB: each block is malformed however far it runs
    started = time.perf_counter()
    parsed = parse_calls(text)
    assert time.perf_counter() - started < 2.0
    assert len(parsed) == 1200 and all(isinstance(p, Malformed) for p in parsed)
