"""Settings back to TOML (`clapas settings export`): the effective configuration, overridden values marked.

A small writer for the shapes `Settings` has (tables, arrays of tables, inline arrays, scalars); TOML has no
null, so a value that is unset (None) is left out, or written as a comment when an override unset it. What it
writes reads back (`clapas.config.load_settings`) as the same settings: tests/selfservice/test_cli.py.
"""

from __future__ import annotations

import json
import math
from typing import Any

from clapas.selfservice.paths import join


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{join([k])} = {_scalar(x)}" for k, x in v.items() if x is not None) + "}"
    raise TypeError(f"no TOML for {type(v).__name__}")


def _is_tables(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and bool(v) and all(isinstance(x, dict) for x in v)


def dumps(tree: dict[str, Any], marks: dict[str, str] | None = None) -> str:
    """`tree` (builtins) as TOML; `marks`: path → comment put after the value at that path."""
    marks = marks or {}
    out: list[str] = []
    _table(tree, [], marks, out, header=False)
    return "\n".join(out).strip() + "\n"


def _table(t: dict[str, Any], at: list[str], marks: dict[str, str], out: list[str], header: bool,
           array: bool = False) -> None:
    scalars = [(k, v) for k, v in t.items() if not isinstance(v, dict) and not _is_tables(v)]
    lines = []
    for k, v in scalars:
        mark = marks.get(join([*at, k]))
        if v is None:
            if mark:
                lines.append(f"# {join([k])} is unset  # {mark}")
            continue
        lines.append(f"{join([k])} = {_scalar(v)}" + (f"  # {mark}" if mark else ""))
    subs = [(k, v) for k, v in t.items() if isinstance(v, dict)]
    arrays = [(k, v) for k, v in t.items() if _is_tables(v)]
    if (header and (lines or not subs)) or array:
        out.append("")
        out.append(f"[[{join(at)}]]" if array else f"[{join(at)}]")
    out.extend(lines)
    for k, v in subs:
        _table(v, [*at, k], marks, out, header=True)
    for k, v in arrays:
        for item in v:
            _table(item, [*at, k], marks, out, header=True, array=True)
