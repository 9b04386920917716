"""Entity ordering (`orderBy`, ETSI GS CIM 009 v1.9.1 §4.23 and the OrderingParams of §5.2.43): the order of a
query's matches, applied before paging.

`orderBy` is a comma-separated list of attribute paths (the `q` language's: `attr`, `attr.subAttr`,
`attr.observedAt`, `attr[key]`), each with an optional direction `;asc` (the default), `;desc`, or for a
GeoProperty `;dist-asc` / `;dist-desc` (the distance in metres to the geo-query's `geometry`/`coordinates`, which
must then be given). The first path decides, the next ones break its ties, and the entity id breaks the last ties
(ascending, whatever the directions), so that the order is total: pages of one query never overlap nor skip.

An entity without a value at a path sorts after every entity with one, in both directions (as PostgreSQL's
`NULLS LAST`, which Stellio's implementation uses). Values of different kinds compare by kind: numbers, then
date-times, then strings, then booleans, then anything else (its JSON text); a multi-attribute or an array compares
its values in order, element by element. The values are those of the entities as the caller receives them: an
attribute the caller may not read is absent from its entities, so it orders them as absent — the order reveals
nothing the answer does not (a 400 instead would tell the caller that the attribute exists behind the charter).

Strings compare by code point unless the query names a `collation` (a BCP 47 language tag, as `lang` takes): they
then compare by the Unicode Collation Algorithm (pyuca, the default table DUCET), so that "été" sorts beside
"ete" rather than after "zoo", and case and accents only break ties. The root order serves French and English
alike (CLDR tailors neither); a tag the table has no tailoring for takes the root order too.

Public API: `Order`, `parse_order(text, ctx, geo, collation)`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shapely.geometry import shape

from clapas.api.ngsi_ld.context import Context
from clapas.api.ngsi_ld.errors import bad_request, invalid_request
from clapas.api.ngsi_ld.geo import GeoQuery, distance_m
from clapas.api.ngsi_ld.query import _DATETIME, _Parser, _path, _values, _when
from clapas.api.ngsi_ld.source import Entity

DIRECTIONS = ("asc", "desc", "dist-asc", "dist-desc")
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")  # BCP 47's shape (RFC 5646 §2.1)
_NUMBER, _TIME, _TEXT, _BOOL, _OTHER = range(5)


@dataclass(frozen=True)
class _Key:
    path: list[str]
    keys: list[str]
    descending: bool
    distance: bool


def _code_points(text: str) -> Any:
    return text


@functools.cache
def _collated() -> Callable[[str], Any]:
    """The UCA sort key (loading its table takes ≈ 0.1 s: only when a query first asks for a collation)."""
    from pyuca import Collator

    return Collator().sort_key


def _kind(v: Any, text_key: Callable[[str], Any] = _code_points) -> tuple[int, Any]:
    """A value as (kind rank, comparable value); strings through `text_key`."""
    if isinstance(v, bool):
        return _BOOL, v
    if isinstance(v, int | float):
        return _NUMBER, v
    if isinstance(v, dict) and "@value" in v:  # a typed literal ({"@type": "DateTime", "@value": ...})
        v = v["@value"]
    if isinstance(v, str):
        if _DATETIME.match(v):
            try:
                return _TIME, _when(v)
            except Exception:
                pass
        return _TEXT, (text_key(v), v)  # equal keys (a collation's) still break ties by code point
    return _OTHER, json.dumps(v, sort_keys=True, default=str)


def _compare(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


class Order:
    """A parsed `orderBy`: what it needs of the entities and how it sorts them."""

    def __init__(self, keys: Sequence[_Key], geo: GeoQuery | None,
                 text_key: Callable[[str], Any] = _code_points) -> None:
        self.keys = list(keys)
        self.geo = geo
        self.text_key = text_key

    @property
    def attrs(self) -> frozenset[str]:
        """The (expanded) attributes the order reads: the values a source must give for the listed entities."""
        return frozenset(k.path[0] for k in self.keys)

    def _values(self, e: Entity, k: _Key) -> list[tuple[int, Any]]:
        if not k.distance:
            return [_kind(v, self.text_key) for v in _values(e, k.path, k.keys)]
        assert self.geo is not None
        out = []
        for inst in _values(e, k.path, []):
            try:
                out.append((_NUMBER, distance_m(self.geo.geometry, shape(inst))))
            except Exception:
                continue
        return sorted(out)[:1]  # a multi-valued GeoProperty: its nearest instance

    def sort(self, entities: Sequence[Entity]) -> list[Entity]:
        """The entities in this order (ties by id); `entities` need only the attributes of `attrs`, and `id`."""
        keyed = [(e, [self._values(e, k) for k in self.keys]) for e in entities]

        def cmp(x: tuple[Entity, list[Any]], y: tuple[Entity, list[Any]]) -> int:
            for k, a, b in zip(self.keys, x[1], y[1], strict=True):
                # an entity without a value last, in both directions
                c = _compare(not a, not b) if not a or not b else _compare(a, b) * (-1 if k.descending else 1)
                if c:
                    return c
            return _compare(x[0]["id"], y[0]["id"])

        return [e for e, _ in sorted(keyed, key=functools.cmp_to_key(cmp))]


def parse_order(text: str, ctx: Context, geo: GeoQuery | None, collation: str | None = None) -> Order:
    """`orderBy`'s value as an `Order` (400 InvalidRequest when malformed, BadRequestData for a distance order
    without a geo-query or a `collation` that is not a language tag)."""
    text_key = _code_points
    if collation is not None:
        if not _LANGUAGE_TAG.match(collation):
            raise bad_request(f"collation: {collation!r} is not a language tag (BCP 47)")
        text_key = _collated()
    keys: list[_Key] = []
    for item in text.split(","):
        name, _, direction = item.strip().partition(";")
        direction = direction.strip() or "asc"
        if direction not in DIRECTIONS:
            raise invalid_request(f"orderBy: {direction!r} is not a direction ({', '.join(DIRECTIONS)})")
        p = _Parser(name.strip(), "orderBy")
        if p.done():
            raise invalid_request(f"orderBy: an attribute path was expected in {text!r}")
        path, subkeys = _path(p, ctx)
        if not p.done():
            raise p.fail("unexpected text")
        distance = direction.startswith("dist-")
        if distance and geo is None:
            raise bad_request("orderBy with dist-asc or dist-desc needs a geo-query (georel, geometry, coordinates)"
                              " to measure distances from")
        keys.append(_Key(path, subkeys, direction.endswith("desc"), distance))
    return Order(keys, geo, text_key)

