"""``$ref`` in a row's tool schemas: one that points into the schema at nothing, and ``$ref`` loops.

skyrl's plan validation (Ajv, src/skyrl/planValidation.ts) refuses an inventory whose tool schema holds a local
``$ref`` to nothing (``can't resolve reference #/definitions/Missing from id #``) or a ``$ref`` loop no value can end
(src/skyrl/refLoop.ts), and ``skyrl validate`` flags such a schema in a row's ``tool_schemas``. Before 2026-12-05
the scorer read such a schema as valid for any arguments once validation reached the ``$ref`` (jsonschema raised
``Unresolvable``, and ``_check`` answered True): a derived param of any value, and every other param of the call,
passed, so a policy could game the reward through that tool.
"""

import dataclasses
import json

import pytest
from conftest import REPO, call, episode, extras_of, schema_row

from skyrl_mcp_env import MCPToolEnv
from skyrl_mcp_env.plan import RowError, plan_from_extras
from skyrl_mcp_env.refs import schema_fault
from skyrl_mcp_env.reward import step_matches

FINAL = "Here is the answer."
VECTORS = json.loads((REPO / "test" / "fixtures" / "schema-refs" / "vectors.json").read_text(encoding="utf-8"))["cases"]


# More cases, shared with skyrl validate's reader: test/fixtures/schema-refs/vectors.json (the last test)
DANGLING = {
    "definitions": {"type": "object", "properties": {"a": {"$ref": "#/definitions/Missing"}, "n": {"type": "integer"}}},
    "$defs": {
        "type": "object",
        "$defs": {"y": {"type": "integer"}},
        "properties": {"a": {"$ref": "#/$defs/x"}, "n": {"type": "integer"}},
    },
    "anchor": {"type": "object", "properties": {"a": {"$ref": "#nope"}, "n": {"type": "integer"}}},
    "the root's own URI": {
        "$id": "https://example.com/tool.json",
        "type": "object",
        "properties": {"a": {"$ref": "https://example.com/tool.json#/definitions/Missing"}, "n": {"type": "integer"}},
    },
}


@pytest.mark.parametrize("name", list(DANGLING))
def test_a_ref_into_the_schema_at_nothing_is_a_row_error_naming_row_tool_and_ref(name):
    # before: the row loaded, and a call whose arguments reached the $ref was valid whatever they held
    row = schema_row(DANGLING[name])
    with pytest.raises(RowError, match=r"^row t: tool_schemas\.t: .*\$ref .* resolves to nothing"):
        plan_from_extras(extras_of(row))
    with pytest.raises(RowError, match=r"tool_schemas\.t"):
        MCPToolEnv({}, {**extras_of(row), "max_turns": 3})


def test_the_error_says_which_ref_and_where():
    with pytest.raises(RowError) as e:
        plan_from_extras(extras_of(schema_row(DANGLING["definitions"])))
    assert '"#/definitions/Missing"' in str(e.value) and "#/properties/a" in str(e.value)


def test_the_scorer_alone_fails_a_dangling_ref_closed_and_checks_the_rest():
    # A Plan made without plan_from_extras (the scorer's own API) still grants nothing through the $ref: the part
    # it points at fails, the rest is checked as before. Before: both True (n "x" too).
    plan = plan_from_extras(extras_of(schema_row({"type": "object"}, derived=("a", "n"))))
    plan = dataclasses.replace(plan, schemas={"t": DANGLING["definitions"]})
    assert step_matches(plan, plan.steps[0], {"a": 1, "n": "x"}) is False
    assert step_matches(plan, plan.steps[0], {"a": 1, "n": 1}) is False
    # without the $ref: the same arguments as before
    plan = dataclasses.replace(plan, schemas={"t": {"type": "object", "properties": {"n": {"type": "integer"}}}})
    assert step_matches(plan, plan.steps[0], {"a": 1, "n": 1}) is True
    assert step_matches(plan, plan.steps[0], {"a": 1, "n": "x"}) is False


LOOPS = {
    "$defs A -> B -> A": {
        "type": "object",
        "$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}},
        "properties": {"a": {"$ref": "#/$defs/A"}},
    },
    "the root in allOf": {"type": "object", "allOf": [{"$ref": "#"}], "properties": {"a": {"type": "integer"}}},
    "a ref to itself": {"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}},
}


@pytest.mark.parametrize("name", list(LOOPS))
def test_a_ref_loop_no_value_can_end_is_a_row_error(name):
    # skyrl refuses such a schema (refLoop.ts, same words); before, the row loaded and every call reaching the loop
    # was not valid (jsonschema's RecursionError), the plan's own call too
    with pytest.raises(RowError, match=r"^row t: tool_schemas\.t: a \$ref loop that enters no property or item \("):
        plan_from_extras(extras_of(schema_row(LOOPS[name])))


LEGAL = {
    # recursion through a property: a tree of nodes, legal JSON Schema (each level is a part of the value)
    "# through a property": (
        {"type": "object", "properties": {"a": {"type": "integer"}, "n": {"type": "integer"},
                                          "child": {"$ref": "#"}}},
        {"a": 1, "n": 1, "child": {"a": 2, "child": {"a": 3}}},
        {"a": 1, "n": 1, "child": {"a": "x"}},
    ),
    "into properties": (
        {"type": "object", "properties": {"n": {"type": "integer"}, "a": {"$ref": "#/properties/n"}}},
        {"a": 5, "n": 1},
        {"a": "x", "n": 1},
    ),
    "$defs present": (
        {"type": "object", "$defs": {"i": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/i"}}},
        {"a": 5, "n": 1},
        {"a": "x", "n": 1},
    ),
    "an anchor present": (
        {"type": "object", "$defs": {"i": {"$anchor": "int", "type": "integer"}}, "properties": {"a": {"$ref": "#int"}},
         "$schema": "https://json-schema.org/draft/2020-12/schema"},
        {"a": 5, "n": 1},
        {"a": "x", "n": 1},
    ),
    # a definition nobody refers to is never read (Ajv compiles none either): its $ref does not matter
    "an unused definition's dangling $ref": (
        {"type": "object", "properties": {"a": {"type": "integer"}},
         "definitions": {"unused": {"$ref": "#/definitions/Missing"}}},
        {"a": 5, "n": 1},
        {"a": "x", "n": 1},
    ),
}


@pytest.mark.parametrize("name", list(LEGAL))
def test_legal_refs_load_and_check_as_before(name):
    schema, good, bad = LEGAL[name]
    assert schema_fault(schema) is None
    row = schema_row(schema, params=good)
    assert episode(row, [call("t", good), FINAL])["reward"] == 1.0
    assert episode(row, [call("t", bad), FINAL])["reward"] == 0.0


def test_an_external_ref_with_a_pointer_holds_nothing_and_the_rest_is_still_checked():
    # An external $ref is never fetched (reward.md 7) and takes anything, as one without a pointer already did
    # (test_adversarial's test_the_scorer_never_fetches_a_schema_ref_from_the_network). Before, one with a pointer
    # into the document made the whole call valid once reached: y "two" scored 1.0.
    schema = {
        "type": "object",
        "$defs": {"n": {"type": "integer"}},
        "properties": {"x": {"$ref": "http://127.0.0.1:9/x.json#/definitions/A"}, "y": {"$ref": "#/$defs/n"}},
        "required": ["x", "y"],
    }
    assert schema_fault(schema) is None
    row = schema_row(schema, params={"x": 1, "y": 2}, derived=("x", "y"))
    assert episode(row, [call("t", {"x": 1, "y": 2}), FINAL])["reward"] == 1.0
    assert episode(row, [call("t", {"x": "one", "y": 2}), FINAL])["reward"] == 1.0  # the remote part: unchecked
    assert episode(row, [call("t", {"x": 1, "y": "two"}), FINAL])["reward"] == 0.0  # the local part: checked


def test_a_dangling_ref_in_a_schema_no_step_calls_is_refused_too():
    # Every tool schema of the row is one skyrl would have refused (its inventory would not load)
    row = schema_row({"type": "object"})
    row["reward_spec"]["ground_truth"]["tool_schemas"] = json.dumps(
        {"t": {"type": "object"}, "other": DANGLING["$defs"]}
    )
    with pytest.raises(RowError, match=r"tool_schemas\.other: .*\"#/\$defs/x\""):
        plan_from_extras(extras_of(row))


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_each_shared_case_reads_as_skyrl_validate_reads_it(case):
    # test/refLoop.test.ts reads the same cases with danglingRefOf / refLoopOf (and skyrl's inventory loading)
    fault = schema_fault(case["schema"])
    found = None if fault is None else "loop" if fault.startswith("a $ref loop") else "dangling"
    assert found == case["fault"], fault
    row = schema_row(case["schema"])
    if case["fault"] is None:
        plan_from_extras(extras_of(row))
    else:
        with pytest.raises(RowError, match=r"^row t: tool_schemas\.t: "):
            plan_from_extras(extras_of(row))
