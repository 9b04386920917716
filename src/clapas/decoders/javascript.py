"""Vendor JavaScript codecs as clapas decoders: run the codec, then map its output to the quantity catalogue.

Mapping, in order: the codec's normalized output (`normalizeUplink`, The Things Stack normalized-payload field
names, `NORMALIZED_NAMES`) where it has one; the device profile's field table (`[profiles."…".fields]`) for the
decoded data; the common vendor names (`COMMON_NAMES`) when there is no normalized output; every other field is
kept as a device attribute, never dropped. A codec that throws, returns `errors`, returns something that is not
`{data: {...}}`, or is stopped by a limit raises `DecodeError`: that one uplink is quarantined with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from clapas.codecs.engine import CodecError, CodecLoadError, JsCodec
from clapas.codecs.library import CODEC_PREFIX, LIBRARY, CodecLibrary
from clapas.decoders.base import DecodeError, Decoder, Reading
from clapas.decoders.chirpstack_object import FieldMap, _flatten, map_object
from clapas.model import QUANTITY_BY_KEY

# The Things Stack normalized-payload fields → the catalogue (units agree: °C, %, hPa, ppm, lx, m/s, °, m³).
NORMALIZED_NAMES: dict[str, str] = {
    "air.temperature": "air.temperature",
    "air.relativeHumidity": "air.humidity",
    "air.pressure": "air.pressure",
    "air.co2": "air.co2",
    "air.lightIntensity": "light.illuminance",
    "wind.speed": "wind.speed",
    "wind.direction": "wind.direction",
    "metering.water.total": "water.volume",
    "action.motion.detected": "occupancy",
    "action.motion.count": "motion.count",
    "water.leak": "water.leak_detected",
}


def _normalized_readings(norm: Any) -> list[Reading] | None:
    """Readings from a normalized result: one measurement object, or a list of them (the first value of each
    field wins: an uplink is stored at one time)."""
    if not isinstance(norm, dict) or norm.get("errors"):
        return None
    data = norm.get("data")
    items = data if isinstance(data, list) else [data]
    seen: dict[str, Any] = {}
    for item in items:
        if isinstance(item, dict):
            for path, value in _flatten(item):
                seen.setdefault(path, value)
    if not seen:
        return None
    out: list[Reading] = []
    for path, value in seen.items():
        key = NORMALIZED_NAMES.get(path) or (path if path in QUANTITY_BY_KEY else None)
        if key and isinstance(value, int | float) and not isinstance(value, bool):
            out.append((key, value))
        elif isinstance(value, bool) and key in ("occupancy", "water.leak_detected"):
            out.append((key, float(value)))
        elif isinstance(value, str | int | float | bool):
            out.append((f"normalized.{path}", value))
    return out


class JsDecoder:
    """A decoder (`(payload, f_port) -> readings`) backed by a compiled codec and a profile's field table."""

    def __init__(self, codec: JsCodec, fields: dict[str, FieldMap] | None = None) -> None:
        self.codec = codec
        self.fields = fields or {}

    def __call__(self, payload: bytes, f_port: int) -> list[Reading]:
        # recvTime: the decoder contract carries no uplink time, so codecs see the decoding time.
        raw, norm = self.codec.decode_uplink(payload, f_port, datetime.now(UTC))
        if not isinstance(raw, dict):
            raise CodecError(f"returned {type(raw).__name__}, expected an object "
                             "{data, warnings, errors}")
        errors = raw.get("errors")
        if errors:
            text = "; ".join(str(e) for e in errors) if isinstance(errors, list) else str(errors)
            raise CodecError(text)
        data = raw.get("data")
        if not isinstance(data, dict):
            got = "no data" if data is None else f"data of type {type(data).__name__}"
            raise CodecError(f"returned {got}, expected data to be an object")
        readings: list[Reading] = []
        normalized = _normalized_readings(norm)
        if data:
            readings = map_object(data, self.fields) if normalized is None else self._beside_normalized(data)
        readings.extend(normalized or ())
        warnings = raw.get("warnings")
        if warnings:
            readings.append(("codec.warnings", "; ".join(str(w) for w in warnings)
                             if isinstance(warnings, list) else str(warnings)))
        return readings


    def _beside_normalized(self, data: dict[str, Any]) -> list[Reading]:
        """Decoded fields when the normalized output gives the quantities: the profile's table may add to them,
        every other field is an attribute (one named like a catalogue key is kept as `decoded.<name>`, so that a
        battery in volts is never taken for the catalogue's battery in %)."""
        out: list[Reading] = []
        for path, value in _flatten(data):
            fm = self.fields.get(path)
            if fm is not None and isinstance(value, int | float) and not isinstance(value, bool):
                out.append((fm.quantity, value * fm.scale + fm.offset))
                continue
            key = f"decoded.{path}" if path in QUANTITY_BY_KEY else path
            if isinstance(value, str | int | float | bool):
                out.append((key, value))
            elif value is not None:
                out.append((key, msgspec.json.encode(value).decode()))
        return out


class _Broken:
    """Stands for a codec that cannot load: every uplink of its devices is quarantined with the load error."""

    def __init__(self, error: CodecLoadError) -> None:
        self.error = error

    def __call__(self, payload: bytes, f_port: int) -> list[Reading]:
        raise self.error


def codec_reference(tags: dict[str, str], profile_codec: str, decoder_name: str, profile_name: str,
                    library: CodecLibrary = LIBRARY) -> str | None:
    """Which codec a device uses, in order: its `codec` tag, a `codec:` decoder name (tag, profile or registry),
    its profile's `codec` setting, and last a ChirpStack profile export of its profile's name."""
    if tags.get("codec"):
        return tags["codec"]
    if decoder_name.startswith(CODEC_PREFIX):
        return decoder_name
    if profile_codec:
        return profile_codec
    if not decoder_name:
        return library.profile_codec(profile_name)
    return None


def decoder_for(ref: str, fields: dict[str, FieldMap] | None = None,
                library: CodecLibrary = LIBRARY) -> tuple[str, Decoder]:
    """(decoder name, decoder) for a codec reference; a codec that cannot load gives a decoder that says why."""
    name = CODEC_PREFIX + ref.removeprefix(CODEC_PREFIX)
    try:
        return name, JsDecoder(library.codec(ref), fields)
    except CodecLoadError as e:
        return name, _Broken(e)


__all__ = ["NORMALIZED_NAMES", "DecodeError", "JsDecoder", "codec_reference", "decoder_for"]
