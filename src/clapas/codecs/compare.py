"""Compare a codec's output with the example's expected output the way a careful human would.

Numbers are equal when they agree within float rounding (22.6 and 22.599999999999998; 41 and 41.0), key order
never matters, list order does, a boolean is not a number, and absent `warnings`/`errors` mean none. The first
difference is returned as a path and the two values, so a failing example says where it fails.
"""

from __future__ import annotations

import math
from typing import Any

# Relative and absolute tolerance for numbers: float rounding, not measurement error.
REL_TOL = 1e-9
ABS_TOL = 1e-9
# Keys whose absence means an empty list in a codec result.
OPTIONAL_LISTS = ("warnings", "errors")


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def difference(expected: Any, actual: Any, path: str = "") -> str | None:
    """None when equal, else where and how they differ."""
    where = path or "output"
    if isinstance(expected, bool) or isinstance(actual, bool):
        if expected is actual:
            return None
        return f"{where}: expected {_show(expected)}, got {_show(actual)}"
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        if expected == actual or math.isclose(expected, actual, rel_tol=REL_TOL, abs_tol=ABS_TOL):
            return None
        return f"{where}: expected {_show(expected)}, got {_show(actual)}"
    if isinstance(expected, dict) and isinstance(actual, dict):
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
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{where}: expected {len(expected)} items, got {len(actual)}: {_show(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            d = difference(e, a, f"{path}[{i}]")
            if d:
                return d
        return None
    if expected == actual and type(expected) is type(actual):
        return None
    return f"{where}: expected {_show(expected)}, got {_show(actual)}"


def result_difference(expected: Any, actual: Any) -> str | None:
    """Compare two codec results (`{data, warnings, errors}` or `{bytes, fPort, …}`): absent lists are empty."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        expected, actual = dict(expected), dict(actual)
        for k in OPTIONAL_LISTS:
            if not expected.get(k):
                expected.pop(k, None)
            if not actual.get(k):
                actual.pop(k, None)
    return difference(expected, actual)


def normalized_difference(expected: Any, actual: Any) -> str | None:
    """The device repository writes normalized data as a list of measurements; a codec may return one object."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        expected, actual = dict(expected), dict(actual)
        for d in (expected, actual):
            if isinstance(d.get("data"), dict):
                d["data"] = [d["data"]]
    return result_difference(expected, actual)
