"""uniqueItems (unique.py): jsonschema's own answer, in O(n log n) where jsonschema compares every pair."""

import copy
import itertools
import json
import random
import time

import jsonschema
import pytest
from jsonschema._utils import equal, uniq

from skyrl_mcp_env import reward
from skyrl_mcp_env.unique import _key, unique

NAN = float("nan")
# Values jsonschema's equality tells apart or not: 1, 1.0, True; 0, -0.0, False, None; 2**53 + 1 and 2.0**53;
# objects by keys and values whatever their order, arrays in order; the same NaN (equal to itself: `is`) and another.
ATOMS = [0, 1, 2, -1, 0.0, -0.0, 1.0, 1.5, 2**53, 2**53 + 1, float(2**53), True, False, None, "", "1", "a", "true"]
ATOMS += [NAN, float("nan"), [], {}, [1], [1.0], [True], [0], [False], [None], [1, 2], [2, 1], [[1]], [[True]]]
ATOMS += [{"a": 1}, {"a": 1.0}, {"a": True}, {"b": 1}, {"a": 1, "b": [2]}, {"b": [2.0], "a": 1.0}, {"a": None}]
ATOMS += [{"a": {"b": [1, {"c": False}]}}, {"a": {"b": [1.0, {"c": False}]}}, {"a": {"b": [1, {"c": 0}]}}]


def _value(rng: random.Random, depth: int = 0):
    """A small JSON value, often one of ATOMS (copied, so equal values are seldom the same object)."""
    roll = rng.random()
    if depth >= 3 or roll < 0.5:
        return copy.deepcopy(rng.choice(ATOMS))
    if roll < 0.75:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice("abc"): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _arrays(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        items = [_value(rng) for _ in range(rng.randint(0, 6))]
        if items and rng.random() < 0.3:  # a copy of one item, or the item itself, somewhere else
            item = rng.choice(items)
            items.insert(rng.randint(0, len(items)), copy.deepcopy(item) if rng.random() < 0.5 else item)
        yield items


def test_keys_are_equal_exactly_when_jsonschemas_equal_says_so():
    pairs = list(itertools.product(ATOMS, repeat=2))
    pairs += [(a, copy.deepcopy(a)) for a in ATOMS]
    # as a set finds it (`is`, then hash and ==): a NaN's key is the NaN itself, equal to itself there alone
    assert [(a, b) for a, b in pairs if (_key(a) in {_key(b)}) != equal(a, b)] == []


def test_unique_is_jsonschemas_uniq_on_many_small_arrays():
    arrays = list(_arrays(20000, seed=7))
    assert [items for items in arrays if unique(items) is not uniq(items)] == []
    # both of uniq's paths were taken, and both answers: sorted (numbers, strings, arrays of them) and every pair
    sortable = [items for items in arrays if all(type(i) in (int, float) for i in items)]
    assert len(sortable) > 100 and len(arrays) - len(sortable) > 10000
    assert 2000 < sum(uniq(items) for items in arrays) < 18000


@pytest.mark.parametrize(
    "items",
    [
        [1, 1.0],
        [1, True],
        [0, False, None, 0.0],
        [True, True],
        [True, 1, 1.0],
        [2**53 + 1, float(2**53)],
        [{"a": 1, "b": 2}, {"b": 2.0, "a": 1}],
        [{"a": 1}, {"a": True}],
        [{"a": [1, 2]}, {"a": [2, 1]}],
        [[1], [True], [1]],  # uniq sorts [True] between the two [1] and says unique: kept so
        [[1], [1.0], None],
        [[{"a": 1}], [{"a": 1.0}]],
        [NAN, NAN],
        [NAN, float("nan")],
        ["1", 1, None],
        [None, None],
        [{}, [], "", 0, False, None],
    ],
)
def test_unique_is_uniq_on_the_edge_cases(items):
    assert unique(items) is uniq(items)


@pytest.mark.parametrize("dollar_schema", [None, "http://json-schema.org/draft-04/schema#",
                                           "https://json-schema.org/draft/2020-12/schema"])
def test_the_scorers_validator_answers_as_jsonschemas_own(dollar_schema, monkeypatch):
    monkeypatch.setattr(reward, "_VERDICTS", {})
    schema = {"type": "object", "properties": {"x": {"type": "array", "uniqueItems": True}}}
    if dollar_schema:
        schema["$schema"] = dollar_schema
    stock = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)(schema)
    arrays = list(_arrays(2000, seed=11))
    assert [items for items in arrays if reward._is_valid(schema, {"x": items}) != stock.is_valid({"x": items})] == []


def _arguments_of_about(size: int) -> dict:
    items, written, i = [], 0, 0
    while written < size:
        items.append({"i": i})
        written += len(json.dumps(items[-1])) + 2
        i += 1
    return {"items": items}


ITEMS = {"type": "array", "uniqueItems": True}  # untyped items: objects do not sort, jsonschema compared every pair
SCHEMAS = {
    "draft-07": {"type": "object", "properties": {"items": ITEMS}},
    "2020-12": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                "properties": {"items": ITEMS}},
    # "$ref": "#" to a root that names its $schema: jsonschema validates the child with that draft's own class
    "$ref-to-root": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                     "properties": {"items": ITEMS, "child": {"$ref": "#"}}},
}


@pytest.mark.parametrize("name", SCHEMAS)
def test_unique_items_over_50_kb_of_objects_takes_well_under_a_second(name, monkeypatch):
    # before: jsonschema compared every pair of the ~3,900 objects: 18 s for this call (2.4 s at 17 KB)
    monkeypatch.setattr(reward, "_VERDICTS", {})
    schema = SCHEMAS[name]
    distinct = _arguments_of_about(50_000)
    repeated = copy.deepcopy(distinct)
    repeated["items"].append({"i": float(len(repeated["items"]) - 1)})  # the last item again, as 1.0 for 1
    if name == "$ref-to-root":
        distinct, repeated = {"child": distinct}, {"child": repeated}
    assert len(json.dumps(distinct)) > 49_000
    started = time.perf_counter()
    verdicts = reward._is_valid(schema, distinct), reward._is_valid(schema, repeated)
    elapsed = time.perf_counter() - started
    assert verdicts == (True, False)
    assert elapsed < 2.0, f"two 50 KB uniqueItems checks took {elapsed:.1f} s"
