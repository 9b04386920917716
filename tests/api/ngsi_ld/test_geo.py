"""Geo-queries (§4.10) on expanded entities: relations, distances in metres, the bounding box hint."""

from __future__ import annotations

import pytest

from clapas.api.ngsi_ld.context import CORE
from clapas.api.ngsi_ld.entity import LOCATION
from clapas.api.ngsi_ld.errors import NgsiError
from clapas.api.ngsi_ld.geo import parse_geo


def at(geometry: dict) -> dict:
    return {"id": "urn:x:1", "type": "T", LOCATION: {"type": "GeoProperty", "value": geometry}}


COMEDIE = at({"type": "Point", "coordinates": [3.8797, 43.6086]})
SQUARE = "[[[3.87,43.60],[3.89,43.60],[3.89,43.62],[3.87,43.62],[3.87,43.60]]]"


def test_near_measures_metres() -> None:
    # Comédie → Gare Saint-Roch ≈ 540 m (great circle)
    q = parse_geo("near;maxDistance==600", "Point", "[3.8806,43.6045]", None, CORE)
    assert q is not None and q.matches(COMEDIE)
    assert not parse_geo("near;maxDistance==400", "Point", "[3.8806,43.6045]", None, CORE).matches(COMEDIE)
    assert parse_geo("near;minDistance==400", "Point", "[3.8806,43.6045]", None, CORE).matches(COMEDIE)
    box = q.bbox()
    assert box is not None and box[0] < 3.8797 < box[2] and box[1] < 43.6086 < box[3]


@pytest.mark.parametrize(("rel", "geometry", "coords", "entity", "hit"), [
    ("within", "Polygon", SQUARE, COMEDIE, True),
    ("intersects", "Polygon", SQUARE, COMEDIE, True),
    ("disjoint", "Polygon", SQUARE, COMEDIE, False),
    ("equals", "Point", "[3.8797,43.6086]", COMEDIE, True),
    ("contains", "Point", "[3.885,43.605]", at({"type": "Polygon", "coordinates": [[[3.87, 43.60], [3.89, 43.60],
                                                                                  [3.89, 43.62], [3.87, 43.60]]]}),
     True),
    ("overlaps", "Polygon", SQUARE, at({"type": "Polygon", "coordinates": [[[3.88, 43.61], [3.95, 43.61],
                                                                            [3.95, 43.70], [3.88, 43.61]]]}), True),
    ("intersects", "LineString", "[[3.80,43.6086],[3.95,43.6086]]", COMEDIE, True),
    ("within", "MultiPolygon", f"[{SQUARE}]", COMEDIE, True),
])
def test_relations(rel: str, geometry: str, coords: str, entity: dict, hit: bool) -> None:
    q = parse_geo(rel, geometry, coords, None, CORE)
    assert q is not None and q.matches(entity) is hit


def test_other_geoproperty_and_missing_one() -> None:
    ent = {"id": "x", "type": "T", CORE.expand("observationSpace"): {"type": "GeoProperty", "value": {
        "type": "Point", "coordinates": [3.8797, 43.6086]}}}
    assert parse_geo("within", "Polygon", SQUARE, "observationSpace", CORE).matches(ent)
    assert not parse_geo("within", "Polygon", SQUARE, None, CORE).matches(ent)


@pytest.mark.parametrize(("rel", "geometry", "coords"), [
    ("near", "Point", "[1,2]"), ("near;maxDistance==x", "Point", "[1,2]"), ("near;far==1", "Point", "[1,2]"),
    ("within;maxDistance==1", "Polygon", SQUARE), ("around", "Point", "[1,2]"), ("within", "Circle", "[1,2]"),
    ("within", "Polygon", "[1,2]"), ("within", "Point", "not json"), ("within", None, "[1,2]"),
    ("near;maxDistance==-1", "Point", "[1,2]"),
])
def test_bad_geo_queries(rel: str, geometry: str | None, coords: str) -> None:
    with pytest.raises(NgsiError) as e:
        parse_geo(rel, geometry, coords, None, CORE)
    assert e.value.kind == "BadRequestData"
    assert parse_geo(None, None, None, None, CORE) is None
