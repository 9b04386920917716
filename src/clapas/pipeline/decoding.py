"""From an uplink to quantity values: choose the device's decoder, run it, map its output to the catalogue.

The decoder is chosen, in order, from the device's tag `decoder` (set in ChirpStack), its profile in the config,
its registry entry (CSV import), and last the network server's own decoded object when there is one.
Per-device settings in tags: `pulse_quantity` + `pulse_factor` turn counted pulses into a quantity (a rain gauge's
0.2 mm per tip, a meter's 10 L per pulse); `level_datum` (m) turns a ranging sensor's distance into a water level.
"""

from __future__ import annotations

import math
from typing import Any

from clapas.config import ProfileSettings
from clapas.connectors.limits import MAX_PAYLOAD_BYTES
from clapas.decoders import CHIRPSTACK_OBJECT, DECODERS, DecodeError, javascript
from clapas.decoders.chirpstack_object import FieldMap, map_object
from clapas.model import QUANTITY_BY_KEY, DeviceInfo, Uplink
from clapas.registry.live import DeviceMeta

# LoRaWAN's largest application payload (242 bytes, see connectors.limits): the parsers refuse larger ones; this
# check stays for uplinks built by other means (replay of rows journaled before the parsers checked).
MAX_LORAWAN_PAYLOAD = MAX_PAYLOAD_BYTES
_UNREGISTERED = DeviceMeta(eui="")  # what the registry says of a device it does not know: nothing


class DeviceContext:
    """What the pipeline knows of a device to decode it; rebuilt when the network server's view of it changes."""

    __slots__ = ("decoder", "decoder_name", "fields", "info", "kind", "lat", "level_datum", "lon", "pulse",
                 "remap", "zone")

    def __init__(self, info: DeviceInfo | None, registry: DeviceMeta | None,
                 profiles: dict[str, ProfileSettings]) -> None:
        tags = info.tags if info else {}
        reg = registry or _UNREGISTERED
        profile = profiles.get(info.profile) if info and info.profile else None
        if profile is None and reg.profile:
            profile = profiles.get(reg.profile)
        self.info = info
        self.decoder_name = (tags.get("decoder") or (profile.decoder if profile else "")
                             or reg.decoder)
        self.decoder = DECODERS.get(self.decoder_name)
        self.fields: dict[str, FieldMap] = profile.fields if profile else {}
        self.remap: dict[str, FieldMap] = profile.remap if profile else {}
        if self.decoder is None:  # a vendor JavaScript codec (see clapas.decoders.javascript)
            ref = javascript.codec_reference(tags, profile.codec if profile else "", self.decoder_name,
                                             (info.profile if info else "") or reg.profile)
            if ref:
                self.decoder_name, self.decoder = javascript.decoder_for(ref, self.fields)
        self.kind = tags.get("kind") or (profile.kind if profile else "") or reg.kind
        self.zone = tags.get("zone") or reg.zone
        self.lat = _float(tags.get("lat")) if "lat" in tags else reg.lat
        self.lon = _float(tags.get("lon")) if "lon" in tags else reg.lon
        self.level_datum = _float(tags.get("level_datum"))
        pulse_q, pulse_f = tags.get("pulse_quantity"), _float(tags.get("pulse_factor"))
        self.pulse = FieldMap(pulse_q, pulse_f if pulse_f is not None else 1.0) if pulse_q else None


    def matches(self, info: DeviceInfo | None) -> bool:
        """Whether the network server still describes the device as this context was built from."""
        mine = self.info
        if info is mine:
            return True
        if info is None or mine is None:
            return info is mine
        return info.tags == mine.tags and info.profile == mine.profile and info.name == mine.name


def _float(v: Any) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def decode(up: Uplink, ctx: DeviceContext) -> tuple[list[int], list[float], dict[str, Any]]:
    """Quantity ids, their values (same order), and the attributes (fields outside the catalogue) of one uplink.

    Raises DecodeError with a readable reason; the caller quarantines the uplink.
    """
    if up.values is not None:  # status events carry their values
        readings: list[tuple[str, Any]] = list(up.values)
    elif ctx.decoder is not None:
        if not up.payload:
            raise DecodeError(f"empty payload (fPort {up.f_port}) for decoder {ctx.decoder_name}")
        if len(up.payload) > MAX_LORAWAN_PAYLOAD:
            raise DecodeError(f"payload of {len(up.payload)} bytes exceeds the LoRaWAN maximum "
                              f"({MAX_LORAWAN_PAYLOAD})")
        try:
            readings = ctx.decoder(up.payload, up.f_port or 0)
        except DecodeError as e:
            raise DecodeError(f"{ctx.decoder_name}: {e}") from None
        except Exception as e:  # a decoder bug must quarantine one uplink, never stop ingestion
            raise DecodeError(f"{ctx.decoder_name} failed: {type(e).__name__}: {e}") from None
    elif ctx.decoder_name and ctx.decoder_name != CHIRPSTACK_OBJECT:
        raise DecodeError(f"unknown decoder {ctx.decoder_name!r}")
    elif up.obj:
        readings = map_object(up.obj, ctx.fields)
    else:
        raise DecodeError("no decoder for this device: set its `decoder` tag, its profile's decoder in the "
                          "config, or a codec in the network server")
    return _to_values(readings, ctx)


_QUANTITY_ID: dict[str, int] = {q.key: q.id for q in QUANTITY_BY_KEY.values()}
_WATER_LEVEL = _QUANTITY_ID["water.level"]
_INF = math.inf


def _to_values(readings: list[tuple[str, Any]], ctx: DeviceContext) -> tuple[list[int], list[float], dict]:
    """Catalogue readings as (ids, values); the rest as attributes. On the hot path: a few operations a reading."""
    qids: list[int] = []
    vals: list[float] = []
    attributes: dict[str, Any] = {}
    remap = ctx.remap
    for key, value in readings:
        if remap and key in remap:
            fm = remap[key]
            key, value = fm.quantity, value * fm.scale + fm.offset
        qid = _QUANTITY_ID.get(key)
        if qid is None:
            attributes[key] = value
            continue
        kind = type(value)
        if kind is not float and kind is not int:
            if kind is bool:
                value = float(value)
            elif not isinstance(value, int | float):
                raise DecodeError(f"{key}: expected a number, got {kind.__name__} {value!r}")
        if not -_INF < value < _INF:  # NaN and infinities: kept for a human, never stored as a measurement
            attributes[key] = str(value)
            continue
        qids.append(qid)
        vals.append(float(value))
    if ctx.pulse is not None or ctx.level_datum is not None:
        _derive(ctx, qids, vals)
    return qids, vals, attributes


def _derive(ctx: DeviceContext, qids: list[int], vals: list[float]) -> None:
    """Quantities a device's installation turns its raw readings into (pulses → volume or rain, distance → level)."""
    counted, distance = _QUANTITY_ID["counter.count"], _QUANTITY_ID["distance"]
    for qid, value in list(zip(qids, vals, strict=True)):
        if qid == counted and ctx.pulse is not None and ctx.pulse.quantity in _QUANTITY_ID:
            qids.append(_QUANTITY_ID[ctx.pulse.quantity])
            vals.append(value * ctx.pulse.scale)
        elif qid == distance and ctx.level_datum is not None:
            qids.append(_WATER_LEVEL)
            vals.append(round(ctx.level_datum - value, 4))
