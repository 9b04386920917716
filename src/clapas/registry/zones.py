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
    try:
        doc = msgspec.json.decode(text)
    except msgspec.DecodeError as e:
        raise RegistryError(f"not valid JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise RegistryError("expected a GeoJSON FeatureCollection")
    zones, errors = [], []
    for i, feature in enumerate(doc.get("features") or []):
        props: dict[str, Any] = dict(feature.get("properties") or {})
        zid = props.pop("id", None) or feature.get("id")
        if not zid:
            errors.append(f"feature {i}: no id (set properties.id)")
            continue
        geometry = feature.get("geometry")
        if geometry is not None and not (isinstance(geometry, dict) and "type" in geometry):
            errors.append(f"feature {i} ({zid}): invalid geometry")
            continue
        zones.append(Zone(id=str(zid), name=str(props.pop("name", "") or ""), kind=str(props.pop("kind", "") or ""),
                          parent=str(props.pop("parent", "") or ""), geometry=geometry, properties=props))
    if errors:
        raise RegistryError("; ".join(errors))
    return zones


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
