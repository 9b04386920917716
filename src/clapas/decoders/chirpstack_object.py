"""Map the object a network server already decoded (ChirpStack `object`, TTS `decoded_payload`) to quantities.

A profile's field table (`[profiles."name".fields]` in the config) names, for each field path, the quantity it is
and an optional scale; fields without an entry are matched against common names, and the rest kept as attributes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from clapas.decoders.base import DecodeError, Reading
from clapas.model import QUANTITY_BY_KEY


class FieldMap(msgspec.Struct, frozen=True):
    quantity: str
    scale: float = 1.0
    offset: float = 0.0


# Field names seen in vendors' codecs and in TTS normalized payloads, mapped to the catalogue.
COMMON_NAMES: dict[str, str] = {
    "temperature": "air.temperature",
    "temp": "air.temperature",
    "humidity": "air.humidity",
    "relativeHumidity": "air.humidity",
    "pressure": "air.pressure",
    "co2": "air.co2",
    "tvoc": "air.tvoc",
    "pm1": "air.pm1",
    "pm2_5": "air.pm2_5",
    "pm25": "air.pm2_5",
    "pm10": "air.pm10",
    "no2": "air.no2",
    "o3": "air.o3",
    "so2": "air.so2",
    "light": "light.illuminance",
    "luminosity": "light.illuminance",
    "illuminance": "light.illuminance",
    "lightIntensity": "light.illuminance",
    "battery": "battery",
    "batteryLevel": "battery",
    "volume": "water.volume",
    "flow": "water.flow",
    "level": "water.level",
    "rain": "rain.amount",
    "windSpeed": "wind.speed",
    "windDirection": "wind.direction",
}


def _flatten(obj: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in obj.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_flatten(v, path + "."))
        else:
            out.append((path, v))
    return out


def map_object(obj: Any, fields: dict[str, FieldMap]) -> list[Reading]:
    """Turn a decoded object into readings: mapped fields as quantities, everything else kept as attributes."""
    if not isinstance(obj, dict) or not obj:
        raise DecodeError("the network server sent no decoded object for this device")
    out: list[Reading] = []
    for path, value in _flatten(obj):
        fm = fields.get(path)
        if fm is None:
            key = COMMON_NAMES.get(path) or (path if path in QUANTITY_BY_KEY else None)
            fm = FieldMap(key) if key else None
        if fm is not None and isinstance(value, int | float) and not isinstance(value, bool):
            out.append((fm.quantity, value * fm.scale + fm.offset))
        elif isinstance(value, str | int | float | bool):
            out.append((path, value))
        elif value is not None:
            out.append((path, msgspec.json.encode(value).decode()))
    return out
