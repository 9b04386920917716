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
