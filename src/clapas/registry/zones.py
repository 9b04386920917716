"""Zones (districts, DMAs, parks, museum rooms, catchments) from a GeoJSON FeatureCollection.

Each feature needs an id (`properties.id` or the feature's `id`); `name`, `kind` and `parent` are read from its
properties, the rest of the properties kept.
"""

from __future__ import annotations

from typing import Any

import msgspec

from clapas.model import Zone
from clapas.registry.devices_csv import RegistryError


def read_zones(text: str | bytes) -> list[Zone]:
    """The zones of a FeatureCollection; RegistryError listing every feature that is not one (by index)."""
    try:
        doc = msgspec.json.decode(text)
    except msgspec.DecodeError as e:
        raise RegistryError(f"not valid JSON: {e}") from None
    except RecursionError:
        raise RegistryError("not valid JSON: nested too deep to read") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise RegistryError("expected a GeoJSON FeatureCollection")
    features = doc.get("features") or []
    if not isinstance(features, list):
        raise RegistryError("`features` must be a list of GeoJSON Features")
    zones, errors = [], []
    for i, feature in enumerate(features):
        # each shape check below was found missing by tests/fuzz (a crash instead of a readable error)
        if not isinstance(feature, dict):
            errors.append(f"feature {i}: not a GeoJSON Feature (an object)")
            continue
        raw_props = feature.get("properties") or {}
        if not isinstance(raw_props, dict):
            errors.append(f"feature {i}: properties must be an object")
            continue
        props: dict[str, Any] = dict(raw_props)
        zid = props.pop("id", None) or feature.get("id")
        if not zid or not isinstance(zid, str | int) or isinstance(zid, bool):
            errors.append(f"feature {i}: no id (set properties.id to a string)")
            continue
        geometry = feature.get("geometry")
        if geometry is not None and not (isinstance(geometry, dict) and "type" in geometry):
            errors.append(f"feature {i} ({zid}): invalid geometry")
            continue
        zones.append(Zone(id=str(zid), name=_text(props.pop("name", "")), kind=_text(props.pop("kind", "")),
                          parent=_text(props.pop("parent", "")), geometry=geometry, properties=props))
    if errors:
        raise RegistryError("; ".join(errors[:20]) + (f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""))
    return zones


def _text(v: Any) -> str:
    return v if isinstance(v, str) else ("" if v is None or v is False else str(v))


def zones_to_geojson(zones: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": z["id"], "geometry": z.get("geometry"),
             "properties": {"id": z["id"], "name": z.get("name", ""), "kind": z.get("kind", ""),
                            "parent": z.get("parent", ""), **(z.get("properties") or {}),
                            **({"devices": z["devices"]} if "devices" in z else {})}}
            for z in zones
        ],
    }


def _in_ring(lon: float, lat: float, ring: list[list[float]]) -> bool:
    """Ray casting (even-odd rule) on one GeoJSON linear ring of [lon, lat] positions."""
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / ((yj - yi) or 1e-300) + xi:
            inside = not inside
        j = i
    return inside


def contains(geometry: dict[str, Any] | None, lat: float, lon: float) -> bool:
    """Whether a GeoJSON Polygon or MultiPolygon holds the point (holes excluded)."""
    if not geometry:
        return False
    kind, coords = geometry.get("type"), geometry.get("coordinates") or []
    polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    for rings in polygons:
        if rings and _in_ring(lon, lat, rings[0]) and not any(_in_ring(lon, lat, h) for h in rings[1:]):
            return True
    return False


def zone_at(zones: list[dict[str, Any]], lat: float, lon: float, kinds: tuple[str, ...] = ("district",)) -> str:
    """The id of the zone of one of `kinds` (in that order of preference; any kind last) holding a position, or ""
    (a device's zone found from its position, e.g. a bike-share station's)."""
    holding = [z for z in zones if contains(z.get("geometry"), lat, lon)]
    for kind in kinds:
        for z in holding:
            if z.get("kind") == kind:
                return str(z["id"])
    return str(holding[0]["id"]) if holding else ""
