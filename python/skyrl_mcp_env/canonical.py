"""Canonical JSON (RFC 8785, JCS) and the hashes built on it, as /work/spec/formats.md fixes them.

The same rules as the TypeScript side (src/skyrl/canonical.ts); both check the shared cases in
test/fixtures/canonical/vectors.json. Object keys are sorted by UTF-16 code units, there is no
whitespace, and strings and numbers are written exactly as ECMAScript ``JSON.stringify`` writes them
(1.0 -> 1, 1e21 -> 1e+21, 1e-7 -> 1e-7, -0 -> 0).
"""

from __future__ import annotations

import hashlib
import math
import re
from json.encoder import encode_basestring
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_SAFE_INTEGER = 2**53


def canonical_json(value: Any) -> str:
    """The canonical text of a JSON value (dict, list, str, int, float, bool, None)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    if isinstance(value, dict):
        # ASCII keys (the usual ones) sort alike by code point and by UTF-16 code unit: no encoding needed
        ascii_keys = all(isinstance(k, str) and k.isascii() for k in value)
        keys = sorted(value) if ascii_keys else sorted(value, key=_utf16_key)
        return "{" + ",".join(_string(k) + ":" + canonical_json(value[k]) for k in keys) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _utf16_key(key: Any) -> bytes:
    if not isinstance(key, str):
        raise TypeError(f"object key is not a string: {key!r}")
    return key.encode("utf-16-be", "surrogatepass")


def _string(s: str) -> str:
    # json.dumps(s, ensure_ascii=False) without its per-call setup (what it calls for a string): a few times cheaper
    text = encode_basestring(s)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _number(x: int | float) -> str:
    if isinstance(x, int) and abs(x) <= _MAX_SAFE_INTEGER:
        return str(x)
    try:
        x = float(x)
    except OverflowError:  # an integer beyond a double (JSON text of 310+ digits): JavaScript reads it as Infinity
        return "null"
    if math.isnan(x) or math.isinf(x):
        return "null"
    if x == 0:
        return "0"
    text = repr(x)
    if "e" not in text and not text.endswith(".0"):
        return text  # 1e-4 <= |x| < 1e16, not an integer: Python's shortest digits, written as ECMAScript writes them
    return ("-" if x < 0 else "") + _es_digits(abs(x))


def _es_digits(x: float) -> str:
    """ECMAScript Number::toString of a positive finite number, from Python's shortest repr."""
    mantissa, _, exp = repr(x).partition("e")
    whole, _, frac = mantissa.partition(".")
    frac = "" if frac == "0" else frac
    all_digits = whole + frac
    digits = all_digits.strip("0")
    k = len(digits)
    n = len(whole) + int(exp or 0) - (len(all_digits) - len(all_digits.lstrip("0")))
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{head}e{'+' if e >= 0 else '-'}{abs(e)}"


def sha256_hex(text: str) -> str:
    """sha256 hex of the UTF-8 text, as Node hashes a string: a lone surrogate (JSON text ``"\\ud800"`` reads as
    one; canonical JSON escapes those of params, not a server's or tool's name) as U+FFFD, where Python's encoder
    raises."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace").encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def call_key(server: str, tool: str, params: Any) -> str:
    """The cassette key of one tool call: sha256 of ``server \\n tool \\n canonical(params)``."""
    return sha256_hex(f"{server}\n{tool}\n{canonical_json(params)}")


def schema_hash(input_schema: Any) -> str:
    """The hash of a tool's input schema: sha256 of its canonical JSON."""
    return sha256_hex(canonical_json(input_schema))
