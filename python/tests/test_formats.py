"""A derived param's format read as skyrl's plan validation reads it (ajv-formats' full formats, formats.py),
against the vectors test/formats.test.ts reads skyrl's own validatePlan against. Before, "date-time", "uri",
"hostname" and "time" were not checked at all (jsonschema needs optional libraries for them): any string scored
as a valid value; "email" took "a@b" and "ipv6" a zone id, which skyrl refuses."""

import json

import pytest
from conftest import REPO, call, episode, make_row

VECTORS = json.loads((REPO / "test" / "fixtures" / "formats" / "vectors.json").read_text(encoding="utf-8"))
FINAL = "Here is the answer."


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: f"{c['format']}: {c['why']}")
def test_a_derived_value_is_valid_for_its_format_as_the_shared_vectors_say(case):
    schema = {"type": "object", "properties": {"v": {"format": case["format"]}}, "required": ["v"]}
    row = make_row(
        [
            {"server": "s", "tool": "a", "params": {"q": 1}},
            {"server": "s", "tool": "t", "params": {"v": "x"}, "depends_on": [1], "derived_params": ["v"]},
        ],
        tool_schemas=json.dumps({"t": schema, "a": {"type": "object"}}),
    )
    reward = episode(row, [call("a", {"q": 1}), call("t", {"v": case["value"]}), FINAL])["reward"]
    assert (reward == 1.0) is case["valid"], reward


def test_the_vectors_hold_verdicts_of_both_kinds():
    verdicts = [c["valid"] for c in VECTORS["cases"]]
    assert verdicts.count(True) > 20 and verdicts.count(False) > 20
