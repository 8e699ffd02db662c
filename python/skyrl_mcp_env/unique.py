"""``uniqueItems`` in O(n log n) time, with jsonschema's own answer.

jsonschema's ``_utils.uniq`` sorts the items and compares neighbours; items that do not sort (objects, ``null``,
strings beside numbers, ``true`` beside anything) make it compare every pair: 18 s for one 50 KB call. A policy
writes the arguments, so that was a way to stall training. ``with_fast_unique_items`` gives a validator class whose
``uniqueItems`` keeps uniq's sorting path as it is and replaces only the every-pair path with a set of keys."""

from __future__ import annotations

import functools
import itertools
from typing import Any

import attrs
import jsonschema
from jsonschema.exceptions import ValidationError

try:  # jsonschema's internals (4.x): without them the validator classes are left as jsonschema makes them
    from jsonschema._utils import equal, unbool, uniq
except ImportError:  # pragma: no cover - not on the versions pyproject.toml allows
    equal = unbool = uniq = None

_TRUE, _FALSE, _ARRAY, _OBJECT = object(), object(), object(), object()


class _NoKey(Exception):
    """A value ``_key`` does not represent (not one of the types ``json.loads`` makes)."""


def unique(items: list[Any]) -> bool:
    """``jsonschema._utils.uniq(items)``, always the same answer, without its every-pair comparison.

    uniq first sorts the items (booleans as objects that do not sort) and compares neighbours with ``equal``; that
    path is kept as it is, quirks included (``[[1], [true], [1]]`` sorts with the ``[1]`` apart, and passes). Where
    the sort fails, uniq compares every pair with ``equal``; here each item's ``_key`` goes into a set instead: two
    keys are equal exactly when ``equal`` says the items are, and equal keys hash alike, so the set finds a repeat
    exactly when some pair is equal. A value ``_key`` cannot represent (or nesting too deep for it) is left to uniq."""
    try:
        ordered = sorted(unbool(i) for i in items)
        for i, j in zip(ordered, itertools.islice(ordered, 1, None)):
            if equal(i, j):
                return False
        return True
    except (NotImplementedError, TypeError):
        pass
    seen: set[Any] = set()
    try:
        for item in items:
            key = _key(item)
            if key in seen:
                return False
            seen.add(key)
    except (_NoKey, RecursionError):
        return uniq(items)
    return True


def _key(value: Any) -> Any:
    """A hashable stand-in for a JSON value, equal to another's exactly when ``jsonschema._utils.equal`` says the
    values are equal: a string or a number stands for itself (Python's ``==``: 1 and 1.0 equal, 2**53 + 1 and
    2.0**53 not, a NaN equal only to itself as ``equal``'s ``is`` has it), ``true`` and ``false`` for objects of
    their own (not 1 and 0), an array for its items' keys in order, an object for its (key, value key) pairs."""
    kind = type(value)
    if kind is str or kind is int or kind is float or value is None:
        return value
    if kind is bool:
        return _TRUE if value else _FALSE
    if kind is list:
        return (_ARRAY, *map(_key, value))
    if kind is dict and all(type(k) is str for k in value):
        return (_OBJECT, frozenset((k, _key(v)) for k, v in value.items()))
    raise _NoKey(kind)


def unique_items(validator: Any, uI: Any, instance: Any, schema: Any) -> Any:
    """jsonschema's ``uniqueItems`` keyword (``_keywords.uniqueItems``, its message too), with ``unique``."""
    if uI and validator.is_type(instance, "array") and not unique(instance):
        yield ValidationError(f"{instance!r} has non-unique elements")


@functools.lru_cache(maxsize=None)
def with_fast_unique_items(cls: Any, keywords: tuple[tuple[str, Any], ...] = ()) -> Any:
    """``cls`` (a jsonschema validator class, any draft) with ``unique_items`` for ``uniqueItems``, and the other
    keyword functions ``keywords`` gives (name, function: reward.py's ``$ref``, refs.py). A subschema that
    names its own ``$schema`` (or a ``$ref`` to one: ``"$ref": "#"`` under a root that has it) makes jsonschema's
    ``evolve`` switch to that draft's own class, whose uniqueItems is jsonschema's (7 s for 3,000 objects): the
    class's ``evolve`` gives that draft's class with ``unique_items`` (and ``keywords``) instead."""
    if cls in _FAST:
        return cls
    own = dict(keywords)
    if uniq is not None:
        own["uniqueItems"] = unique_items
    if not own:
        return cls
    fast = jsonschema.validators.extend(cls, own)
    evolve = fast.evolve

    def evolve_keeping_unique_items(self: Any, **changes: Any) -> Any:
        evolved = evolve(self, **changes)
        if type(evolved) in _FAST:
            return evolved
        fields = attrs.fields(type(evolved))
        kept = with_fast_unique_items(type(evolved), keywords)
        return kept(**{f.alias: getattr(evolved, f.name) for f in fields if f.init})

    fast.evolve = evolve_keeping_unique_items
    _FAST.add(fast)
    return fast


_FAST: set[Any] = set()
