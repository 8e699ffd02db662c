"""JSON Schema formats as skyrl's plan validation reads them: ajv-formats 3.0.1's "full" formats (the ones
``addFormats(ajv)`` adds in src/skyrl/planValidation.ts), ported. skyrl validated the plan with them, so the scorer
reads a derived param's format the same way: no stricter (the plan's own value would fail) and no more lenient.
jsonschema's own checkers differ: without optional libraries (rfc3339-validator, rfc3987, fqdn, ...) it checks no
"date-time", "time", "uri", "hostname", "duration" or "json-pointer" at all, so any string passed, and where it
checks it reads otherwise ("email" needs only an "@", "ipv6" takes a zone id).

A string format checks strings only and a number format numbers only, as ajv applies them; any other value
passes. A format ajv-formats does not know is not checked (ajv with ``strict: false``).

The patterns are ajv-formats' regular expressions as written there (``_AJV_PATTERNS``; ``\\u{...}`` written
``\\u...``), read with Python's ``re`` as JavaScript reads them: anchored at the text's very end (``fullmatch``: a
``$`` would let a trailing newline through), ``\\d`` and case folding ASCII (``re.ASCII``; "url", whose flags
include ``u``, spells out ``\\d`` and JavaScript's white space instead), and ``byte``'s ``m`` flag (any one line
of base64 passes there) by splitting on JavaScript's line terminators.
"""

from __future__ import annotations

import re
from typing import Callable

# ajv-formats 3.0.1 (node_modules/ajv-formats/dist/formats.js): fullFormats' patterns, "uri" its URI and "byte" its
# BYTE, verbatim.
_AJV_PATTERNS: dict[str, str] = {
    "duration": r'''^P(?!$)((\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?|(\d+W)?)$''',
    "uri-reference": (
        r'''^(?:[a-z][a-z0-9+\-.]*:)?(?:\/?\/(?:(?:[a-z0-9\-._~!$&'()*+,;=:]|%[0-9a-f]{2})*@)?(?:\[(?:(?:(?:'''
        r'''(?:[0-9a-f]{1,4}:){6}|::(?:[0-9a-f]{1,4}:){5}|(?:[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){4}|(?:(?:[0'''
        r'''-9a-f]{1,4}:){0,1}[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){3}|(?:(?:[0-9a-f]{1,4}:){0,2}[0-9a-f]{1,4}'''
        r''')?::(?:[0-9a-f]{1,4}:){2}|(?:(?:[0-9a-f]{1,4}:){0,3}[0-9a-f]{1,4})?::[0-9a-f]{1,4}:|(?:(?:[0-9a-'''
        r'''f]{1,4}:){0,4}[0-9a-f]{1,4})?::)(?:[0-9a-f]{1,4}:[0-9a-f]{1,4}|(?:(?:25[0-5]|2[0-4]\d|[01]?\d\d?'''
        r''')\.){3}(?:25[0-5]|2[0-4]\d|[01]?\d\d?))|(?:(?:[0-9a-f]{1,4}:){0,5}[0-9a-f]{1,4})?::[0-9a-f]{1,4}'''
        r'''|(?:(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{1,4})?::)|[Vv][0-9a-f]+\.[a-z0-9\-._~!$&'()*+,;=:]+)\]|(?:(?'''
        r''':25[0-5]|2[0-4]\d|[01]?\d\d?)\.){3}(?:25[0-5]|2[0-4]\d|[01]?\d\d?)|(?:[a-z0-9\-._~!$&'"()*+,;=]|'''
        r'''%[0-9a-f]{2})*)(?::\d*)?(?:\/(?:[a-z0-9\-._~!$&'"()*+,;=:@]|%[0-9a-f]{2})*)*|\/(?:(?:[a-z0-9\-._'''
        r'''~!$&'"()*+,;=:@]|%[0-9a-f]{2})+(?:\/(?:[a-z0-9\-._~!$&'"()*+,;=:@]|%[0-9a-f]{2})*)*)?|(?:[a-z0-9'''
        r'''\-._~!$&'"()*+,;=:@]|%[0-9a-f]{2})+(?:\/(?:[a-z0-9\-._~!$&'"()*+,;=:@]|%[0-9a-f]{2})*)*)?(?:\?(?'''
        r''':[a-z0-9\-._~!$&'"()*+,;=:@/?]|%[0-9a-f]{2})*)?(?:#(?:[a-z0-9\-._~!$&'"()*+,;=:@/?]|%[0-9a-f]{2}'''
        r''')*)?$'''
    ),
    "uri-template": (
        r'''^(?:(?:[^\x00-\x20"'<>%\\^`{|}]|%[0-9a-f]{2})|\{[+#./;?&=,!@|]?(?:[a-z0-9_]|%[0-9a-f]{2})+(?::[1'''
        r'''-9][0-9]{0,3}|\*)?(?:,(?:[a-z0-9_]|%[0-9a-f]{2})+(?::[1-9][0-9]{0,3}|\*)?)*\})*$'''
    ),
    "url": (
        r'''^(?:https?|ftp):\/\/(?:\S+(?::\S*)?@)?(?:(?!(?:10|127)(?:\.\d{1,3}){3})(?!(?:169\.254|192\.168)('''
        r'''?:\.\d{1,3}){2})(?!172\.(?:1[6-9]|2\d|3[0-1])(?:\.\d{1,3}){2})(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])'''
        r'''(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))|(?:(?:[a-z0-9\u'''
        r'''00a1-\uffff]+-)*[a-z0-9\u00a1-\uffff]+)(?:\.(?:[a-z0-9\u00a1-\uffff]+-)*[a-z0-9\u00a1-\uffff]+)*'''
        r'''(?:\.(?:[a-z\u00a1-\uffff]{2,})))(?::\d{2,5})?(?:\/[^\s]*)?$'''
    ),
    "email": (
        r'''^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9'''
        r'''])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$'''
    ),
    "hostname": (
        r'''^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-0-9a-z]{0,61}[0-9a-z])?)*'''
        r'''\.?$'''
    ),
    "ipv4": r'''^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$''',
    "ipv6": (
        r'''^((([0-9a-f]{1,4}:){7}([0-9a-f]{1,4}|:))|(([0-9a-f]{1,4}:){6}(:[0-9a-f]{1,4}|((25[0-5]|2[0-4]\d|'''
        r'''1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3})|:))|(([0-9a-f]{1,4}:){5}(((:[0-9a-f]{1,'''
        r'''4}){1,2})|:((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3})|:))|(([0-'''
        r'''9a-f]{1,4}:){4}(((:[0-9a-f]{1,4}){1,3})|((:[0-9a-f]{1,4})?:((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.'''
        r'''(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}))|:))|(([0-9a-f]{1,4}:){3}(((:[0-9a-f]{1,4}){1,4})|((:[0-9'''
        r'''a-f]{1,4}){0,2}:((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}))|:))'''
        r'''|(([0-9a-f]{1,4}:){2}(((:[0-9a-f]{1,4}){1,5})|((:[0-9a-f]{1,4}){0,3}:((25[0-5]|2[0-4]\d|1\d\d|[1'''
        r'''-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}))|:))|(([0-9a-f]{1,4}:){1}(((:[0-9a-f]{1,4}){1,6'''
        r'''})|((:[0-9a-f]{1,4}){0,4}:((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)'''
        r'''){3}))|:))|(:(((:[0-9a-f]{1,4}){1,7})|((:[0-9a-f]{1,4}){0,5}:((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)('''
        r'''\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}))|:)))$'''
    ),
    "json-pointer": r'''^(?:\/(?:[^~/]|~0|~1)*)*$''',
    "json-pointer-uri-fragment": r'''^#(?:\/(?:[a-z0-9_\-.!$&'()*+,;:=@]|%[0-9a-f]{2}|~0|~1)*)*$''',
    "relative-json-pointer": r'''^(?:0|[1-9][0-9]*)(?:#|(?:\/(?:[^~/]|~0|~1)*)*)$''',
    "uri": (
        r'''^(?:[a-z][a-z0-9+\-.]*:)(?:\/?\/(?:(?:[a-z0-9\-._~!$&'()*+,;=:]|%[0-9a-f]{2})*@)?(?:\[(?:(?:(?:('''
        r'''?:[0-9a-f]{1,4}:){6}|::(?:[0-9a-f]{1,4}:){5}|(?:[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){4}|(?:(?:[0-'''
        r'''9a-f]{1,4}:){0,1}[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){3}|(?:(?:[0-9a-f]{1,4}:){0,2}[0-9a-f]{1,4})'''
        r'''?::(?:[0-9a-f]{1,4}:){2}|(?:(?:[0-9a-f]{1,4}:){0,3}[0-9a-f]{1,4})?::[0-9a-f]{1,4}:|(?:(?:[0-9a-f'''
        r''']{1,4}:){0,4}[0-9a-f]{1,4})?::)(?:[0-9a-f]{1,4}:[0-9a-f]{1,4}|(?:(?:25[0-5]|2[0-4]\d|[01]?\d\d?)'''
        r'''\.){3}(?:25[0-5]|2[0-4]\d|[01]?\d\d?))|(?:(?:[0-9a-f]{1,4}:){0,5}[0-9a-f]{1,4})?::[0-9a-f]{1,4}|'''
        r'''(?:(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{1,4})?::)|[Vv][0-9a-f]+\.[a-z0-9\-._~!$&'()*+,;=:]+)\]|(?:(?:'''
        r'''25[0-5]|2[0-4]\d|[01]?\d\d?)\.){3}(?:25[0-5]|2[0-4]\d|[01]?\d\d?)|(?:[a-z0-9\-._~!$&'()*+,;=]|%['''
        r'''0-9a-f]{2})*)(?::\d*)?(?:\/(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})*)*|\/(?:(?:[a-z0-9\-._~!$'''
        r'''&'()*+,;=:@]|%[0-9a-f]{2})+(?:\/(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})*)*)?|(?:[a-z0-9\-._~'''
        r'''!$&'()*+,;=:@]|%[0-9a-f]{2})+(?:\/(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})*)*)(?:\?(?:[a-z0-9'''
        r'''\-._~!$&'()*+,;=:@/?]|%[0-9a-f]{2})*)?(?:#(?:[a-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9a-f]{2})*)?$'''
    ),
    "byte": r'''^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$''',
}

# JavaScript's \s (WhiteSpace and LineTerminator).
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_JS_LINE_TERMINATOR = re.compile("[\n\r\u2028\u2029]")
_CASELESS = {"uri-reference", "uri-template", "url", "email", "hostname", "ipv6", "json-pointer-uri-fragment", "uri"}


def _compiled(name: str) -> re.Pattern[str]:
    """ajv-formats' pattern ``name`` for ``fullmatch``, read as JavaScript reads it."""
    source = _AJV_PATTERNS[name]
    body = source[1:-1].replace("(?!$)", "(?!\\Z)").replace("\\.?$)", "\\.?\\Z)")
    flags = re.IGNORECASE if name in _CASELESS else 0
    if name == "url":
        body = body.replace("[^\\s]", f"[^{_JS_SPACE}]").replace("\\S", f"[^{_JS_SPACE}]").replace("\\d", "[0-9]")
        return re.compile(body, flags)
    return re.compile(body, flags | re.ASCII)


_PATTERNS = {name: _compiled(name) for name in _AJV_PATTERNS}

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2}(?:\.[0-9]+)?)(z|([+-])([0-9]{2})(?::?([0-9]{2}))?)?", re.I)
_DATE_TIME_SEPARATOR = re.compile(f"[t{_JS_SPACE}]", re.I)


def _date(text: str) -> bool:
    """ajv-formats' ``date``: RFC 3339 full-date, the day within its month (29 February in leap years)."""
    m = _DATE.fullmatch(text)
    if m is None:
        return False
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 1 <= month <= 12 and 1 <= day <= (29 if month == 2 and leap else _DAYS[month])


def _time(strict_time_zone: bool) -> Callable[[str], bool]:
    """ajv-formats' ``getTime``: "time" needs a time zone, "iso-time" not; 23:59:60 only as a UTC leap second."""

    def time(text: str) -> bool:
        m = _TIME.fullmatch(text)
        if m is None:
            return False
        hr, mins, sec = int(m[1]), int(m[2]), float(m[3])
        sign = -1 if m[5] == "-" else 1
        tz_h, tz_m = int(m[6] or 0), int(m[7] or 0)
        if tz_h > 23 or tz_m > 59 or (strict_time_zone and not m[4]):
            return False
        if hr <= 23 and mins <= 59 and sec < 60:
            return True
        utc_min = mins - tz_m * sign
        utc_hr = hr - tz_h * sign - (1 if utc_min < 0 else 0)
        return utc_hr in (23, -1) and utc_min in (59, -1) and sec < 61

    return time


def _date_time(strict_time_zone: bool) -> Callable[[str], bool]:
    """ajv-formats' ``getDateTime``: a date and a time apart by one "T", "t" or white space."""
    time = _time(strict_time_zone)

    def date_time(text: str) -> bool:
        parts = _DATE_TIME_SEPARATOR.split(text)
        return len(parts) == 2 and _date(parts[0]) and time(parts[1])

    return date_time


def _matches(name: str) -> Callable[[str], bool]:
    pattern = _PATTERNS[name]
    return lambda text: pattern.fullmatch(text) is not None


def _uri(text: str) -> bool:
    """ajv-formats' ``uri``: a "/" or ":" in it, and its URI pattern."""
    return ("/" in text or ":" in text) and _PATTERNS["uri"].fullmatch(text) is not None


def _byte(text: str) -> bool:
    """ajv-formats' ``byte`` (base64), whose pattern has the ``m`` flag: any one line that is base64 passes."""
    return any(_PATTERNS["byte"].fullmatch(line) for line in _JS_LINE_TERMINATOR.split(text))


def _integer(value: int | float) -> bool:
    return isinstance(value, int) or value.is_integer()


# Each string format's check, as ajv-formats' fullFormats gives it ("regex" and "uuid" are reward.py's).
STRING_FORMATS: dict[str, Callable[[str], bool]] = {
    "date": _date,
    "time": _time(True),
    "date-time": _date_time(True),
    "iso-time": _time(False),
    "iso-date-time": _date_time(False),
    "uri": _uri,
    "byte": _byte,
    "password": lambda _: True,
    "binary": lambda _: True,
    **{name: _matches(name) for name in _AJV_PATTERNS if name not in ("uri", "byte")},
}

# The number formats: "int32" and "int64" an integer (int32 within its range), "float" and "double" any number.
NUMBER_FORMATS: dict[str, Callable[[int | float], bool]] = {
    "int32": lambda v: _integer(v) and -(2**31) <= v <= 2**31 - 1,
    "int64": _integer,
    "float": lambda _: True,
    "double": lambda _: True,
}


def string_format(check: Callable[[str], bool]) -> Callable[[object], bool]:
    """``check`` applied to strings only, as ajv applies a string format."""
    return lambda value: not isinstance(value, str) or check(value)


def number_format(check: Callable[[int | float], bool]) -> Callable[[object], bool]:
    """``check`` applied to numbers only (not booleans), as ajv applies a number format."""
    return lambda value: not isinstance(value, (int, float)) or isinstance(value, bool) or check(value)
