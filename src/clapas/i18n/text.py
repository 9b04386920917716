"""`Text` (a catalog key and its parameters) and its rendering in one language.

Catalogs: `en.toml` and `fr.toml` beside this module, tables namespaced by use (`[water.burst] opened = "…"` is the
key `water.burst.opened`). A key missing from a language falls back to English, then to the key itself: a missing
translation shows, it never breaks an alert. Placeholders are Python's `{name}` or `{name:spec}`:
- a number with a Python spec (`.1f`, `+.2f`, `.0%`, `,.0f`) is written with the language's marks: French uses a
  decimal comma, a narrow no-break space between thousands and before `%`;
- `date` / `datetime` take an ISO 8601 string: French `01/07/2026`, `01/07/2026 14:00`; English keeps ISO
  (`2026-07-01`, `2026-07-01 14:00`), read the same whatever the English reader's country; UTC times say "UTC";
- `term.NS` translates a value through the catalog's `term.NS.<value>` (a category, a colour, a level), the value
  itself when there is no such entry;
- a parameter may itself be a `Text` (rendered in the same language) or a list of them, joined by `list.sep`
  (`{items}`) or by `list.and` (`{items:and}`).
Parameters are JSON values so that a `Text` is kept as JSON (`as_json`) and rendered again years later.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

from clapas.i18n.negotiate import LANGUAGES

FALLBACK = "en"
_NNBSP = "\u202f"  # narrow no-break space: French thousands separator and before % (CLDR fr)


@dataclass(frozen=True, slots=True)
class Text:
    """A message to render in any language: its catalog key and its parameters (JSON values, `Text`s)."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "params": {k: _encode(v) for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, v: Any) -> Text | None:
        """The `as_json` form back; None for anything else (an alert written before texts had keys)."""
        if not (isinstance(v, dict) and isinstance(v.get("key"), str) and isinstance(v.get("params", {}), dict)):
            return None
        return cls(v["key"], {k: _decode(p) for k, p in (v.get("params") or {}).items()})

    def __bool__(self) -> bool:
        return bool(self.key)


def T(key: str, **params: Any) -> Text:
    """`T("water.burst.opened", flow=2200.0)`."""
    return Text(key, params)


EMPTY = Text("")


def _encode(v: Any) -> Any:
    if isinstance(v, Text):
        return v.as_json()
    if isinstance(v, list | tuple):
        return [_encode(x) for x in v]
    return v


def _decode(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == {"key", "params"}:
        return Text.from_json(v) or v
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = str(v)
    return out


@cache
def catalog(lang: str) -> dict[str, str]:
    """The flat catalog of a language (read once)."""
    if lang not in LANGUAGES:
        raise KeyError(f"no catalog for {lang!r}")
    raw = (resources.files("clapas.i18n") / f"{lang}.toml").read_text(encoding="utf-8")
    return _flatten(tomllib.loads(raw))


def has_key(key: str, lang: str = FALLBACK) -> bool:
    return key in catalog(lang)


def _template(key: str, lang: str) -> str | None:
    return catalog(lang).get(key) if lang != FALLBACK and key in catalog(lang) else catalog(FALLBACK).get(key)


def term(ns: str, value: Any, lang: str) -> str:
    """A value's word in the language (`term("severity", "major", "fr")` → "majeure"), else the value."""
    t = _template(f"term.{ns}.{value}", lang)
    return str(value) if t is None else t


def _number(v: float | int, spec: str, lang: str) -> str:
    s = format(v, spec)
    if lang == "fr":
        s = s.translate({ord(","): _NNBSP, ord("."): ","})
        if s.endswith("%"):
            s = s[:-1].rstrip() + _NNBSP + "%"
    return s


def _time(v: Any, spec: str, lang: str) -> str:
    try:
        t: date = datetime.fromisoformat(v) if spec == "datetime" else date.fromisoformat(str(v)[:10])
    except (TypeError, ValueError):
        return str(v)
    if isinstance(t, datetime):
        utc = t.utcoffset() is not None and t.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        text = t.strftime("%d/%m/%Y %H:%M" if lang == "fr" else "%Y-%m-%d %H:%M")
        return text + (" UTC" if utc else "")
    return t.strftime("%d/%m/%Y") if lang == "fr" else t.isoformat()


class _Formatter(string.Formatter):
    def __init__(self, lang: str) -> None:
        self.lang = lang

    def format_field(self, value: Any, format_spec: str) -> str:
        lang = self.lang
        if isinstance(value, Text):
            return render(value, lang)
        if isinstance(value, list):  # `{items:and}` joins with "and", `{items}` with commas
            sep = _template("list.and" if format_spec == "and" else "list.sep", lang) or ", "
            return sep.join(self.format_field(v, "" if format_spec == "and" else format_spec) for v in value)
        if format_spec in ("date", "datetime"):
            return _time(value, format_spec, lang)
        if format_spec.startswith("term."):
            return term(format_spec[5:], value, lang)
        if isinstance(value, bool) or value is None:
            return str(value)
        if isinstance(value, int | float):
            return _number(value, format_spec, lang)
        return format(value, format_spec)


def render(text: Text, lang: str) -> str:
    """The text in `lang`; the key when no catalog has it; a parameter missing shows as `{name}`."""
    if not text.key:
        return ""
    template = _template(text.key, lang)
    if template is None:
        return text.key
    try:
        return _Formatter(lang).vformat(template, (), _Defaulting(text.params))
    except (ValueError, TypeError, IndexError):  # a catalog entry whose spec does not fit its value
        return template


class _Defaulting(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render_json(v: Any, lang: str, fallback: str = "") -> str:
    """A stored `Text.as_json` rendered in `lang`; `fallback` (the stored text) when it is none or unknown."""
    t = Text.from_json(v)
    if t is None or not has_key(t.key):
        return fallback
    return render(t, lang)
