"""Device and zone tags changed at run time (issue 16): whose they are, what a tag may hold, and the change itself.

A device's tags belong to the department of the use its kind serves (a water meter's to the water department, a
river gauge's to environment, a museum room's sensor to culture); a device of no use's kind (`generic`, a district
meter…) needs `config:write`. A zone's tags, kept in its GeoJSON properties as `tags`, belong likewise to the
department of its kind (a DMA to water, a museum room to culture, a park or catchment to environment); districts,
shared by every department, need `config:write`.

A tag is checked by the rules of the registry's own file (`clapas devices import`: `key=value;key=value`, each part
stripped), so that the CSV export reads back the same: keys of letters, digits and `_ . : -`, values without `;`,
control characters or spaces at either end, the lengths of `[selfservice]`; and the tags the detectors read as
numbers (a gauge's heights, its datum…) must be numbers. The change is written to the registry in the store, kept
in the settings history (path `devices.<eui>.tags` or `zones.<id>.tags`, the tags before and after, who, when),
and the settings holder's reload tells the running registry (`SettingsHolder.registry_listeners`). A device whose
tags the city changed keeps them: the network server's tags no longer replace them (`schema.device_state_update`).
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec

from clapas.config import SelfServiceSettings
from clapas.model import Zone
from clapas.selfservice import paths
from clapas.selfservice.holder import SettingsHolder, encode
from clapas.selfservice.paths import PLATFORM
from clapas.store.base import Store

# device kind → department (the use it serves); kinds not listed are the platform's (config:write)
KIND_DEPARTMENTS = {"water_meter": "water", "weather_station": "environment", "air_quality": "environment",
                    "water_level": "environment", "rain_gauge": "environment", "indoor_climate": "culture",
                    "traffic_counter": "mobility", "bike_counter": "mobility", "bike_station": "mobility",
                    "bikeshare_system": "mobility"}
# zone kind → department; districts and the rest are shared (config:write)
ZONE_DEPARTMENTS = {"dma": "water", "park": "environment", "catchment": "environment", "museum_room": "culture"}
# tags read as numbers by the decoders, detectors and reports (clapas.indices.flood, pipeline.decoding, air, gbfs)
NUMERIC_TAGS = ("threshold_yellow", "threshold_orange", "threshold_red", "level_datum", "pulse_factor", "lat", "lon",
                "expected_interval_s", "capacity")
_KEY = re.compile(r"^[A-Za-z0-9_.:-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidTags(ValueError):
    """Tags the registry's file could not hold (the message says which and why)."""


def device_department(device: dict[str, Any]) -> str:
    return KIND_DEPARTMENTS.get(device.get("kind") or "", PLATFORM)


def zone_department(zone: dict[str, Any]) -> str:
    return ZONE_DEPARTMENTS.get(zone.get("kind") or "", PLATFORM)


def path_of(root: str, ident: str) -> str:
    return paths.join([root, ident, "tags"])


def check(tags: Any, limits: SelfServiceSettings) -> dict[str, str]:
    """The tags as the registry keeps them (a dict of text), or InvalidTags listing every problem."""
    if not isinstance(tags, dict):
        raise InvalidTags("tags must be an object of text values: {\"key\": \"value\", …}")
    problems: list[str] = []
    if len(tags) > limits.tags_max:
        problems.append(f"{len(tags)} tags, at most {limits.tags_max}")
    out: dict[str, str] = {}
    for k, v in tags.items():
        if not isinstance(k, str) or not _KEY.match(k) or len(k) > limits.tag_key_max_chars:
            problems.append(f"key {k!r}: 1 to {limits.tag_key_max_chars} letters, digits, _ . : or -")
            continue
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            problems.append(f"{k}: the value must be text")
            continue
        text = v if isinstance(v, str) else str(v)
        if len(text) > limits.tag_value_max_chars:
            problems.append(f"{k}: {len(text)} characters, at most {limits.tag_value_max_chars}")
        elif ";" in text or _CONTROL.search(text) or text != text.strip():
            problems.append(f"{k}: no ';', control character, nor space at either end (the registry file's "
                            "key=value;key=value)")
        elif k in NUMERIC_TAGS and text != "" and not _number(text):
            problems.append(f"{k}: read as a number, {text!r} is none")
        else:
            out[k] = text
    if problems:
        raise InvalidTags("; ".join(problems))
    return out


def _number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _record(holder: SettingsHolder, store: Store, path: str, before: dict[str, str], after: dict[str, str],
            **who: Any) -> dict[str, Any]:
    row = store.record_setting(path, encode(after), previous=encode(before), **who)
    holder.reload()  # the registry listeners: the running pipeline and detectors read the registry again
    return {**row, "value": after, "previous": before}


def change_device(holder: SettingsHolder, store: Store, device: dict[str, Any], tags: Any,
                  **who: Any) -> dict[str, Any]:
    """Replace a device's tags (checked), keep the change in the history, refresh the running registry."""
    new = check(tags, holder.current.selfservice)
    before = dict(device.get("tags") or {})
    store.set_device_tags(device["eui"], new)
    return _record(holder, store, path_of("devices", device["eui"]), before, new, **who)


def change_zone(holder: SettingsHolder, store: Store, zone: dict[str, Any], tags: Any, **who: Any) -> dict[str, Any]:
    """Replace a zone's tags (its GeoJSON properties' `tags`), as `change_device`."""
    new = check(tags, holder.current.selfservice)
    props = dict(zone.get("properties") or {})
    before = props.get("tags") if isinstance(props.get("tags"), dict) else {}
    props["tags"] = new
    store.upsert_zones([Zone(id=zone["id"], name=zone.get("name") or "", kind=zone.get("kind") or "",
                             parent=zone.get("parent") or "", geometry=zone.get("geometry"), properties=props)])
    return _record(holder, store, path_of("zones", zone["id"]), before, new, **who)


def zone_tags(zone: dict[str, Any]) -> dict[str, str]:
    t = (zone.get("properties") or {}).get("tags")
    return msgspec.convert(t, dict[str, str], strict=False) if isinstance(t, dict) else {}
