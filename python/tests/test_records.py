"""reward_check's dataset reader (records.py) reads a file as `skyrl validate` does (src/skyrl/records.ts): the
format from the first lines, not the extension; a BOM dropped; a file without rows refused."""

import pytest

from skyrl_mcp_env import reward_check
from skyrl_mcp_env.reward_check import read_rows

A = '{"id": "a", "n": 1}'
B = '{"id": "b", "n": 2}'


def read(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return [(where, row) for where, row in read_rows(str(path))]


def refused(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(ValueError) as e:
        read_rows(str(path))
    return str(e.value)


@pytest.mark.parametrize(
    "name, content",
    [
        ("rows.json", f"{A}\n{B}\n"),  # JSON Lines in a .json file: Dataset.to_json()'s default
        ("rows.jsonl", f"\ufeff{A}\n{B}\n"),  # a BOM
        ("rows.json", f"\ufeff[{A}, {B}]"),
        ("rows.jsonl", f"[\n  {A},\n  {B}\n]\n"),  # a JSON array in a .jsonl file
        ("rows.jsonl", f"[{A}, {B}]"),
        ("rows.JSONL", f"{A}\n{B}\n"),  # an extension in capitals, as `skyrl convert --out` writes
        ("rows.Json", f"[{A}, {B}]"),
        ("rows.jsonl", f"\r\n{A}\r\n\r\n  \r\n{B}\r\n"),  # CRLF, blank lines
        ("rows.jsonl", f"{A}\r{B}\r"),  # a lone CR ends a line, as node:readline (skyrl) reads it
        ("rows.jsonl", f"{A}\n{B}"),  # no line end after the last row
    ],
)
def test_a_dataset_skyrl_validate_reads_is_read_the_same(tmp_path, name, content):
    assert read(tmp_path, name, content) == [
        (f"{name} row 0", {"id": "a", "n": 1}),
        (f"{name} row 1", {"id": "b", "n": 2}),
    ]


def test_a_pretty_printed_object_is_one_row_and_a_one_line_object_in_json_too(tmp_path):
    assert read(tmp_path, "one.json", '{\n  "id": "a",\n  "n": 1\n}\n') == [("one.json row 0", {"id": "a", "n": 1})]
    assert read(tmp_path, "one.jsonl", A + "\n") == [("one.jsonl row 0", {"id": "a", "n": 1})]


@pytest.mark.parametrize(
    "name, content, message",
    [
        # the row (0-based, blank lines not counted) and the line (1-based)
        ("rows.jsonl", f"{A}\n\n{{not json\n{B}\n", "rows.jsonl: row 1: line 3 is not valid JSON: "),
        ("rows.json", f"{A}\n{{not json\n", "rows.json: row 1: line 2 is not valid JSON: "),
        # a log line before JSON Lines is their first row, not JSON
        ("rows.json", f"[INFO] started\n{A}\n", "rows.json: row 0: line 1 is not valid JSON: "),
        ("rows.jsonl", f'{A}\n{{"n": NaN}}\n', "rows.jsonl: row 1: line 2 is not valid JSON: NaN is not JSON"),
        (
            "rows.jsonl",
            b'{"id": "a"}\n{"id": "\xe9"}\n',
            "rows.jsonl: row 1: line 2 is not valid UTF-8: byte 0xE9 at byte offset 20 of the file (re-encode it "
            "as UTF-8)",
        ),
        (
            "rows.json",
            '{\n  "id": "a",\n  n: 1\n}\n',
            "rows.json: not valid JSON: Expecting property name enclosed in double quotes at line 3, column 3",
        ),
        (
            "rows.jsonl",
            "id,n\na,1\n",
            "rows.jsonl: not JSON or JSON Lines: the first line is not a JSON value, nor is any of the 1 non-blank "
            "line after it a JSON object or array, and a JSON document starts with '[' or '{'",
        ),
        (
            "rows.jsonl",
            b"\xff\xfe{\x00}\x00\n\x00",
            "rows.jsonl: not JSON or JSON Lines: it is UTF-16 text (it starts with a UTF-16 byte order mark)",
        ),
        ("rows.jsonl", f"[{A}, 3]", "rows.jsonl: row 1: expected an object, got int"),
    ],
)
def test_a_dataset_that_is_not_rows_is_refused_naming_the_file_the_row_and_why(tmp_path, name, content, message):
    assert refused(tmp_path, name, content).startswith(str(tmp_path / name)[: -len(name)] + message)


@pytest.mark.parametrize(
    "name, content", [("rows.jsonl", ""), ("rows.jsonl", "\n  \r\n"), ("rows.json", "[]"), ("rows.jsonl", "\ufeff")]
)
def test_a_dataset_without_rows_is_an_error_as_validate_says_contract_empty_file(tmp_path, capsys, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert reward_check.main([str(path)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (
        f"reward_check: {path}: the file holds no rows (empty, blank or []): nothing to check; SkyRL's loader fails "
        "on it (skyrl validate: contract/empty-file)\n"
    )


def nest(levels):
    """JSON text of 1 inside ``levels`` arrays (a row's key holds it: the record is one level more)."""
    return "[" * levels + "1" + "]" * levels


@pytest.mark.parametrize("levels", [511, 600, 980, 5000])
def test_a_record_nested_deeper_than_skyrl_reads_is_refused_as_validate_refuses_it(tmp_path, levels):
    # src/skyrl/depth.ts: more than 512 levels of objects and arrays (the record's own object is one of them)
    row = f'{{"deep": {nest(levels)}}}'
    if levels + 1 <= 512:
        assert [r for _, r in read(tmp_path, "rows.jsonl", f"{A}\n{row}\n")][0] == {"id": "a", "n": 1}
        return
    reason = "nests objects and arrays more than 512 levels deep: too deep to read (skyrl's checks and MCPToolEnv"
    assert f"rows.jsonl: row 1: line 2 {reason}" in refused(tmp_path, "rows.jsonl", f"{A}\n{row}\n")
    if levels < 900:  # a JSON document deeper than Python's json reads is refused whole (validate reads the rest)
        assert f"rows.json: row 1: record 1 {reason}" in refused(tmp_path, "rows.json", f"[{A}, {row}]")
