"""A row's tool schema that is not a valid JSON Schema (not valid against its draft's meta-schema).

skyrl's inventory loading refuses such an input schema (Ajv: "schema is invalid: data/properties/n/type must be
equal to one of the allowed values ..."), and ``skyrl validate`` flags it in a row's ``tool_schemas``. Before
2026-12-05 the scorer built no validator for it (``check_schema`` failed) and then checked nothing: any arguments of
the call passed (``{"a": 1, "n": "x"}`` against ``n: integer`` beside ``"type": 5``), so a derived param through
such a tool took any value.
"""

import dataclasses
import json

import pytest
from conftest import REPO, call, episode, extras_of, schema_row

from skyrl_mcp_env import MCPToolEnv, metaschema
from skyrl_mcp_env.plan import RowError, plan_from_extras
from skyrl_mcp_env.reward import step_matches
from skyrl_mcp_env.reward_check import _schema_problem

FINAL = "Here is the answer."
SHARED = json.loads((REPO / "test" / "fixtures" / "schema-meta" / "vectors.json").read_text(encoding="utf-8"))
VECTORS = SHARED["cases"]


INVALID = {
    "type strng": ({"type": "strng"}, "#/type"),
    "type 5": ({"type": "object", "properties": {"n": {"type": 5}}}, "#/properties/n/type"),
    "required a string": ({"required": "a"}, "#/required"),
    "minimum a string": ({"minimum": "x"}, "#/minimum"),
}


@pytest.mark.parametrize("name", list(INVALID))
def test_a_tool_schema_no_meta_schema_takes_is_a_row_error_naming_row_tool_and_where(name):
    # before: the row loaded, and every call of the tool was valid whatever its arguments held
    schema, at = INVALID[name]
    row = schema_row(schema)
    with pytest.raises(RowError) as e:
        plan_from_extras(extras_of(row))
    assert str(e.value).startswith(f"row t: tool_schemas.t: not a valid JSON Schema (draft-07 meta-schema): at {at}, ")
    assert "skyrl validate flags it" in str(e.value)
    with pytest.raises(RowError, match=r"tool_schemas\.t: not a valid JSON Schema"):
        MCPToolEnv({}, {**extras_of(row), "max_turns": 3})


def test_the_error_says_what_is_invalid():
    with pytest.raises(RowError, match=r"at #/properties/n/type, 5 is not valid under any of the given schemas"):
        plan_from_extras(extras_of(schema_row(INVALID["type 5"][0])))
    with pytest.raises(RowError, match=r"at #/required, 'a' is not of type 'array'"):
        plan_from_extras(extras_of(schema_row(INVALID["required a string"][0])))
    with pytest.raises(RowError, match=r"\$schema must be a string, got 5"):
        plan_from_extras(extras_of(schema_row({"type": "object", "$schema": 5})))


def test_an_invalid_schema_of_a_tool_no_step_calls_is_refused_too():
    row = schema_row({"type": "object"})
    row["reward_spec"]["ground_truth"]["tool_schemas"] = json.dumps({"t": {"type": "object"}, "other": {"type": 5}})
    with pytest.raises(RowError, match=r"tool_schemas\.other: not a valid JSON Schema"):
        plan_from_extras(extras_of(row))


def test_the_scorer_alone_grants_no_validity_for_a_schema_it_cannot_compile():
    # A Plan made without plan_from_extras (the scorer's own API): a schema that is no JSON Schema makes the call
    # not valid. Before: True for both (nothing was checked), and a non-string $schema raised AttributeError out of
    # step_matches (jsonschema's validator_for).
    plan = plan_from_extras(extras_of(schema_row({"type": "object"}, derived=("a", "n"))))
    bad = {"type": "object", "properties": {"n": {"type": "integer"}, "b": {"type": 5}}}
    for schema in (bad, {**bad["properties"]["n"], "required": "a"}, {"type": "object", "$schema": 5}):
        held = dataclasses.replace(plan, schemas={"t": schema})
        assert step_matches(held, held.steps[0], {"a": 1, "n": "x"}) is False
        assert step_matches(held, held.steps[0], {"a": 1, "n": 1}) is False
    # the same schema, valid: checked as before
    good = dataclasses.replace(plan, schemas={"t": {**bad, "properties": {"n": {"type": "integer"}}}})
    assert step_matches(good, good.steps[0], {"a": 1, "n": 1}) is True
    assert step_matches(good, good.steps[0], {"a": 1, "n": "x"}) is False


def test_reward_check_says_why_the_plans_own_call_fails():
    assert _schema_problem({"type": "object", "properties": {"n": {"type": 5}}}, {"n": 1}) == (
        "the schema itself is not a valid JSON Schema (draft-07 meta-schema): at #/properties/n/type, 5 is not valid "
        "under any of the given schemas"
    )
    assert _schema_problem({"type": "object", "properties": {"n": {"type": "integer"}}}, {"n": 1}) is None


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_each_shared_case_reads_as_skyrl_validate_reads_it(case):
    # test/toolSchemaFault.test.ts reads the same cases with toolSchemaFault (and skyrl's inventory loading)
    fault = metaschema.fault(case["schema"])
    assert (fault is not None) == case["invalid"], fault
    row = schema_row(case["schema"])
    if case["invalid"]:
        with pytest.raises(RowError, match=r"^row t: tool_schemas\.t: not a valid JSON Schema"):
            plan_from_extras(extras_of(row))
    else:  # the scorer reads it: the plan's own call scores
        assert episode(row, [call("t", {"a": 1, "n": 1}), FINAL])["reward"] == 1.0


@pytest.mark.parametrize(("uri", "draft"), SHARED["drafts"])
def test_the_draft_a_schema_names_is_read_as_skyrl_validate_reads_it(uri, draft):
    # planValidation.ts draftNamed reads the same list
    assert metaschema.draft_of({"$schema": uri, "type": "object"}) == draft


def test_the_real_inventories_tool_schemas_stay_valid():
    for path in (REPO / "data" / "inventory" / "finance-mcp.json", REPO / "test" / "fixtures" / "inventory" /
                 "everything.json"):
        tools = [t for s in json.loads(path.read_text(encoding="utf-8"))["servers"] for t in s["tools"]]
        schemas = {t["name"]: t["inputSchema"] for t in tools}
        assert len(schemas) > 10
        assert {name: metaschema.fault(s) for name, s in schemas.items() if metaschema.fault(s)} == {}
        row = schema_row({"type": "object"})
        row["reward_spec"]["ground_truth"]["tool_schemas"] = json.dumps({**schemas, "t": {"type": "object"}})
        assert set(plan_from_extras(extras_of(row)).schemas) == {*schemas, "t"}
