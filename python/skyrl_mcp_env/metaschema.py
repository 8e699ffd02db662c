"""Whether a tool's input schema is a JSON Schema at all: valid against the meta-schema of the draft it is read as.

skyrl's inventory loading refuses a tool whose input schema is not valid against its meta-schema (Ajv,
src/skyrl/planValidation.ts ``toolSchemaFault``: ``{"type": "strng"}``, ``{"required": "a"}``, ``{"minimum": "x"}``),
and ``skyrl validate`` flags such a schema in a row's ``tool_schemas``. The env reads the same rows: ``fault`` says
why a schema is no JSON Schema (plan.py refuses the row), and the scorer builds no validator for one (reward.py
``_validator``: a call against it is not valid). Until 2026-12-05 the scorer checked nothing of such a schema, and
any arguments of the call passed (``{"a": 1, "n": "x"}`` against ``n: integer`` beside ``"type": 5``).

The draft is the one ``$schema`` names (jsonschema's ``validator_for``), draft-07 when it names none or one jsonschema
does not know, as Ajv's default class reads it (skyrl validate reads a schema naming draft-06, draft-04 or draft-03,
whose meta-schemas skyrl's Ajv lacks, as no fault; the env judges it). Read as Ajv reads the meta-schema, so that both
readers refuse the same schemas (test/fixtures/schema-meta/vectors.json):

- formats are not asserted (Ajv checks none in a meta-schema: a ``pattern`` that only JavaScript reads,
  ``(?<year>\\d{4})`` or ``\\p{Lu}+``, is a valid schema; jsonschema's own check read it as Python's ``re``, and the
  scorer then checked nothing of the schema: now a value reaching such a pattern is not valid, the rest is checked);
- draft-06 and draft-07's ``enum`` holds at least one value and no value twice (Ajv's copy of those meta-schemas;
  jsonschema's takes ``[]``);
- a ``$schema`` that is not a string is a fault (Ajv: "$schema must be a string"; jsonschema raised AttributeError).

Unknown keywords (``x-foo``, ``nullable``, ``example``), unknown formats and boolean subschemas are valid in both.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Mapping, Optional

import jsonschema
from jsonschema.exceptions import best_match

from .unique import with_fast_unique_items

_DRAFT7 = jsonschema.Draft7Validator
_NAMES = {
    jsonschema.Draft3Validator: "draft-03",
    jsonschema.Draft4Validator: "draft-04",
    jsonschema.Draft6Validator: "draft-06",
    jsonschema.Draft7Validator: "draft-07",
    jsonschema.Draft201909Validator: "2019-09",
    jsonschema.Draft202012Validator: "2020-12",
}
# Ajv's copies of the draft-06 and draft-07 meta-schemas (ajv/dist/refs/json-schema-draft-0{6,7}.json) differ from
# the published ones, which jsonschema ships, in this keyword only.
_AJV_ENUM = {"enum": {"type": "array", "items": True, "minItems": 1, "uniqueItems": True}}


def validator_class(schema: Mapping[str, Any]) -> Any:
    """The jsonschema class a schema is read with: its ``$schema``'s draft, else draft-07 (call ``fault`` first: a
    ``$schema`` that is not a string makes ``validator_for`` raise)."""
    return jsonschema.validators.validator_for(schema, default=_DRAFT7)


def draft_of(schema: Mapping[str, Any]) -> str:
    """The name of the draft ``schema`` is read as (``"draft-07"``, ``"2020-12"``...)."""
    cls = validator_class(schema)
    return _NAMES.get(cls, cls.__name__)


def fault(schema: Any) -> Optional[str]:
    """Why ``schema`` is not a valid JSON Schema of its draft (the first error, where it is), or None. ``true`` and
    ``false`` are schemas (plan.py asks a tool's for an object)."""
    if isinstance(schema, bool):
        return None
    if not isinstance(schema, Mapping):
        return f"not a JSON Schema: expected an object, got {_shown(schema)}"
    if "$schema" in schema and not isinstance(schema["$schema"], str):
        return f"not a valid JSON Schema: $schema must be a string, got {_shown(schema['$schema'])}"
    cls = validator_class(schema)
    error = best_match(_meta_validator(cls).iter_errors(schema))
    if error is None:
        return None
    at = "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in error.absolute_path)
    return f"not a valid JSON Schema ({draft_of(schema)} meta-schema): at {at}, {error.message}"


@functools.lru_cache(maxsize=None)
def _meta_validator(cls: Any) -> Any:
    """A validator of ``cls``'s meta-schema (as Ajv has it), asserting no format; ``uniqueItems`` in O(n log n)
    (unique.py: an ``enum`` of 200,000 values that do not sort took Ajv ~90 s before its own fix)."""
    meta = cls.META_SCHEMA
    if cls in (jsonschema.Draft6Validator, jsonschema.Draft7Validator):
        meta = copy.deepcopy(meta)
        meta["properties"].update(copy.deepcopy(_AJV_ENUM))
    meta_cls = jsonschema.validators.validator_for(cls.META_SCHEMA, default=cls)
    return with_fast_unique_items(meta_cls)(meta, format_checker=None)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
