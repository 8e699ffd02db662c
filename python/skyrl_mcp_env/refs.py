"""``$ref`` in a tool's input schema: what one resolves to offline, and the schemas no validator can use.

skyrl's plan validation (Ajv, src/skyrl/planValidation.ts) refuses an inventory whose tool schema holds a ``$ref``
it cannot resolve (``can't resolve reference #/definitions/Missing from id #``) or a ``$ref`` loop no value can end
(src/skyrl/refLoop.ts), and ``skyrl validate`` flags such a schema in a row's ``tool_schemas``. The env reads the
same rows: ``schema_fault`` finds what makes such a schema one that cannot be checked (plan.py refuses the row, as
skyrl does), and ``ref`` is the ``$ref`` keyword the scorer validates with, which never grants validity for a
``$ref`` into the schema that points at nothing.

A ``$ref`` outside the row's schema (a URL, another file) is never fetched: it holds nothing, the schema that takes
anything (reward.md property 7: no network in the scorer; jsonschema would fetch it with urllib and no timeout).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Optional

import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema.exceptions import ValidationError
from jsonschema_specifications import REGISTRY as _SPECIFICATIONS

# What every $ref outside the row's schema resolves to (the schema that takes anything): one object, so that a
# pointer into it that finds nothing can be told from one into the row's own schema.
_EXTERNAL: dict[str, Any] = {}


def _unchecked(uri: str) -> referencing.Resource:
    """A ``$ref`` outside the row's schema and the meta-schemas: the schema that takes anything, never fetched."""
    return referencing.jsonschema.DRAFT202012.create_resource(_EXTERNAL)


# The meta-schemas jsonschema ships (a $ref to one resolves offline), and nothing fetched.
OFFLINE = _SPECIFICATIONS.combine(referencing.Registry(retrieve=_unchecked))
# The documents a $ref may point into that are not the row's: the external placeholder and the meta-schemas.
_NOT_THE_ROWS = {id(_EXTERNAL)} | {id(_SPECIFICATIONS[uri].contents) for uri in _SPECIFICATIONS}


def is_external(error: referencing.exceptions.Unresolvable) -> bool:
    """The ``$ref`` that failed to resolve points into a document that is not the row's schema (a URL, another
    file, a meta-schema): it holds nothing. One into the row's own schema (``#/definitions/Missing``, ``#nope``, the
    root's own ``$id`` with such a fragment) is not external."""
    resource = getattr(error, "resource", None)
    return resource is not None and id(resource.contents) in _NOT_THE_ROWS


def ref(validator: Any, ref: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """jsonschema's ``$ref`` keyword (``_keywords.ref`` through ``_validate_reference``), but a ``$ref`` that does
    not resolve is no exception that ends the whole validation: one outside the row's schema holds nothing (the part
    takes anything, the rest is checked), one into the row's schema that points at nothing fails that part (no
    validator can say what the tool asks there, and skyrl refuses such a schema: the value is not valid)."""
    try:
        resolved = validator._resolver.lookup(ref)
    except referencing.exceptions.Unresolvable as e:
        if not is_external(e):
            yield ValidationError(f"$ref {ref!r} resolves to nothing in the schema")
        return
    yield from validator.descend(instance, resolved.contents, resolver=resolved.resolver)


# Keywords whose subschemas apply to the value itself (with a $ref's target), and those applying to a part of it.
_IN_PLACE_ONE = ("not", "if", "then", "else")
_IN_PLACE_MANY = ("allOf", "anyOf", "oneOf")
_PART_ONE = ("items", "additionalItems", "additionalProperties", "contains", "propertyNames", "unevaluatedItems",
             "unevaluatedProperties")
_PART_MANY = ("items", "prefixItems")
_PART_MAP = ("properties", "patternProperties", "dependencies", "dependentSchemas")


def _token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


class _Node:
    __slots__ = ("schema", "at", "resolver")

    def __init__(self, schema: Mapping[str, Any], at: str, resolver: Any) -> None:
        self.schema, self.at, self.resolver = schema, at, resolver


def schema_fault(schema: Mapping[str, Any]) -> Optional[str]:
    """Why no validator can use ``schema``, as far as its ``$ref``s go, or None:

    - a ``$ref`` into the schema's own document that points at nothing (``#/definitions/Missing``, ``#/$defs/x``
      where ``$defs`` lacks x, ``#nope`` without such an anchor), reached from the root through the keywords that
      apply subschemas (with ``$ref`` targets) as Ajv compiles them: a definition nobody refers to is not read;
    - a ``$ref`` loop that enters no property or item (``$defs`` A -> B -> A, ``"allOf": [{"$ref": "#"}]``):
      validating a value that reaches it never ends (refLoop.ts; jsonschema raised RecursionError).

    ``#`` through a property (a tree of nodes) and ``#/properties/...`` are legal and fine. ``$ref``s are resolved
    as jsonschema resolves them (``$id`` scopes, anchors, percent-encoding), offline: one outside the schema holds
    nothing. The walk is iterative: a deep schema raises no RecursionError here."""
    dialect = schema.get("$schema")
    spec = referencing.jsonschema.specification_with(
        dialect if isinstance(dialect, str) else "", default=referencing.jsonschema.DRAFT7
    )
    root = _Node(schema, "#", OFFLINE.resolver_with_root(spec.create_resource(schema)))

    def child(node: _Node, sub: Any, at: str) -> Optional[_Node]:
        if not isinstance(sub, Mapping):
            return None  # true, false, or not a schema (dependencies' lists of names)
        return _Node(sub, at, node.resolver.in_subresource(spec.create_resource(sub)))

    def in_place(node: _Node) -> Iterator[_Node]:
        """The subschemas that apply to the same value as ``node`` (its ``$ref``'s target first); a ``$ref`` into
        the schema at nothing raises ``_Dangling``."""
        s, at = node.schema, node.at
        target = s.get("$ref")
        if isinstance(target, str):
            try:
                resolved = node.resolver.lookup(target)
            except referencing.exceptions.Unresolvable as e:
                if not is_external(e):
                    raise _Dangling(f'$ref "{target}" (at {at}) resolves to nothing in the schema: no value '
                                      "there can be checked") from None
            else:
                if isinstance(resolved.contents, Mapping):
                    yield _Node(resolved.contents, target, resolved.resolver)
        yield from under(node, _IN_PLACE_ONE, _IN_PLACE_MANY)

    def under(node: _Node, ones: Iterable[str], manies: Iterable[str]) -> Iterator[_Node]:
        """The subschemas of ``node`` under the keywords of one subschema (``ones``) and of a list (``manies``)."""
        s, at = node.schema, node.at
        for key in ones:
            found = child(node, s.get(key), f"{at}/{key}")
            if found is not None:
                yield found
        for key in manies:
            subs = s.get(key)
            if isinstance(subs, list):
                for i, sub in enumerate(subs):
                    found = child(node, sub, f"{at}/{key}/{i}")
                    if found is not None:
                        yield found

    def parts(node: _Node) -> Iterator[_Node]:
        s, at = node.schema, node.at
        yield from under(node, _PART_ONE, _PART_MANY)
        for key in _PART_MAP:
            subs = s.get(key)
            if isinstance(subs, Mapping):
                for name, sub in subs.items():
                    found = child(node, sub, f"{at}/{key}/{_token(str(name))}")
                    if found is not None:
                        yield found

    # Depth-first over the in-place edges, as refLoop.ts walks them (white, on the path, done): a node met again on
    # the path is a loop. The parts of each node are values of their own, searched from a path of their own.
    done: set[int] = set()
    pending = [root]
    try:
        while pending:
            start = pending.pop()
            if id(start.schema) in done:
                continue
            on_path = {id(start.schema): 0}
            path = [start]
            stack = [in_place(start)]
            while stack:
                following = next(stack[-1], None)
                if following is None:
                    stack.pop()
                    finished = path.pop()
                    del on_path[id(finished.schema)]
                    done.add(id(finished.schema))
                    pending.extend(parts(finished))
                    continue
                key = id(following.schema)
                if key in on_path:
                    loop = " → ".join([n.at for n in path[on_path[key]:]] + [following.at])
                    return f"a $ref loop that enters no property or item ({loop}): no value's validation would end"
                if key in done:
                    continue
                on_path[key] = len(path)
                path.append(following)
                stack.append(in_place(following))
    except _Dangling as e:
        return str(e)
    return None


class _Dangling(Exception):
    pass
