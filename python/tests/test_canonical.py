import json

import pytest
from conftest import REPO

from skyrl_mcp_env.canonical import call_key, canonical_json, schema_hash, sha256_hex

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


# What node's crypto.hash("sha256", text, "hex") gives: a lone surrogate hashed as U+FFFD, a pair as its character.
@pytest.mark.parametrize(
    "text,digest",
    [
        ("a\ud800b", "05087813392efc16fe8ff448920c6328e53af865df39419436659d9ffda90f7b"),
        ("\udc00", "83d544ccc223c057d2bf80d3f2a32982c32c3c0db8e2674820da5064783fb097"),
        ("x\ud83d\ude00y", "d506f8eb09b320da26e02670fb6ce1685d67541cb373a98c00adbffadef794f4"),
        ("\ud800\ud800\udc00", "8ba6d94d87e1b28ccb3d32b2f665db709c7ad2ba30ad6bc58a5e3c6aba1b9557"),
        ("\udc00\ud800", "52793f8dc1d85e409f8c88be99d8b31d58f676246340150f406289e04a11151e"),
    ],
)
def test_a_lone_surrogate_is_hashed_as_node_hashes_it(text, digest):
    # before: UnicodeEncodeError, so a cassette line whose server name held one (JSON text "\ud800") raised out of
    # the reader where skyrl's computed its key
    assert sha256_hex(text) == digest


def test_an_integer_beyond_a_double_is_null_as_javascript_reads_it():
    # JSON text of 400 digits: JavaScript's JSON.parse reads Infinity, which JSON.stringify writes null; here
    # float() raised OverflowError
    assert canonical_json({"n": 10**400, "m": -(10**400)}) == '{"m":null,"n":null}'
