"""Compare a codec's output with an example's expected output exactly as The Things Stack's check does.

The device repository's check parses the runner's JSON output and compares it with the YAML example using deep
equality (lodash `isEqual`): every key on both sides (an empty `warnings: []` the codec returns must be written in
the example, and an `errors` key the example states must come back), key order free, list order and length exact,
numbers by value with no tolerance (22.599999999999998 is not 22.6; 41 and 41.0 are one number), a boolean never
a number, a string never a number. An unquoted YAML timestamp is a `Date` object on the check's side and equals
no JSON value, so such an example never passes there either. The first difference is returned as a path and the
two values.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    return "an object" if isinstance(v, dict) else type(v).__name__


def difference(expected: Any, actual: Any, path: str = "") -> str | None:
    """None when equal, else where and how they differ."""
    where = path or "output"
    if isinstance(expected, datetime | date):
        return (f"{where}: the example has an unquoted YAML timestamp ({expected.isoformat()}), which The Things "
                "Stack's check reads as a Date and no codec output equals: quote it")
    if isinstance(expected, bool) or isinstance(actual, bool):
        if expected is actual:
            return None
    elif isinstance(expected, int | float) and isinstance(actual, int | float):
        if expected == actual:
            return None
    elif isinstance(expected, dict) and isinstance(actual, dict):
        for k in sorted(set(expected) | set(actual)):
            sub = f"{path}.{k}" if path else k
            if k not in actual:
                return f"{sub}: missing (expected {_show(expected[k])})"
            if k not in expected:
                return f"{sub}: not expected (got {_show(actual[k])})"
            d = difference(expected[k], actual[k], sub)
            if d:
                return d
        return None
    elif isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{where}: expected {len(expected)} items, got {len(actual)}: {_show(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            d = difference(e, a, f"{path}[{i}]")
            if d:
                return d
        return None
    elif type(expected) is type(actual) and expected == actual:
        return None
    if _kind(expected) != _kind(actual):
        return f"{where}: expected {_show(expected)} ({_kind(expected)}), got {_show(actual)} ({_kind(actual)})"
    return f"{where}: expected {_show(expected)}, got {_show(actual)}"


def js_truthy(v: Any) -> bool:
    """JavaScript truthiness of JSON data (an empty object or list is true there)."""
    if isinstance(v, dict | list):
        return True
    return bool(v) and v == v  # NaN is false


def as_measurements(output: Any) -> Any:
    """The check's view of a `normalizeUplink` result: one measurement object becomes a list of one."""
    if isinstance(output, dict) and js_truthy(output.get("data")) and not isinstance(output["data"], list):
        return {**output, "data": [output["data"]]}
    return output
