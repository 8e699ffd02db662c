import json

import pytest
from conftest import REPO

from skyrl_mcp_env.canonical import call_key, canonical_json, schema_hash

CASES = json.loads((REPO / "test" / "fixtures" / "canonical" / "vectors.json").read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["canonical"][:40] for c in CASES])
def test_shared_vectors(case):
    assert canonical_json(case["value"]) == case["canonical"]
    assert call_key("srv", "tool", case["value"]) == case["call_key"]
    assert schema_hash(case["value"]) == case["schema_hash"]


# Expected strings are what node's JSON.stringify prints for the same numbers.
@pytest.mark.parametrize(
    "value,text",
    [
        (1.0, "1"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (10**21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (1e-6, "0.000001"),
        (0.000123, "0.000123"),
        (5e-324, "5e-324"),
        (-1.5, "-1.5"),
        (2**53 + 1, "9007199254740992"),
        (12345678901234567890.0, "12345678901234567000"),
        (float("nan"), "null"),
    ],
)
def test_numbers_as_ecmascript_writes_them(value, text):
    assert canonical_json(value) == text


def test_lone_surrogate_is_escaped_like_json_stringify():
    assert canonical_json("a\ud800b") == '"a\\ud800b"'
