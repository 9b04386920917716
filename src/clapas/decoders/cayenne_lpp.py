"""Cayenne Low Power Payload (myDevices), the generic LoRaWAN format: [channel][type][value]… big-endian.

Types and resolutions follow the myDevices Cayenne LPP 1.0 specification; IPSO object ids minus 3200.
Channels are kept in the key only when a type appears on more than one channel (`air.temperature@3`), so that the
common one-sensor-per-type device maps directly onto the catalogue.
"""

from __future__ import annotations

from clapas.decoders.base import DecodeError, Reading

# type id: (size, signed, divisor, key)
_TYPES: dict[int, tuple[int, bool, float, str]] = {
    0: (1, False, 1, "digital_input"),
    1: (1, False, 1, "digital_output"),
    2: (2, True, 100, "analog_input"),
    3: (2, True, 100, "analog_output"),
    101: (2, False, 1, "light.illuminance"),
    102: (1, False, 1, "occupancy"),
    103: (2, True, 10, "air.temperature"),
    104: (1, False, 2, "air.humidity"),
    115: (2, False, 10, "air.pressure"),
}
_ACCELEROMETER = 113  # 3 × int16 / 1000 G
_GYROMETER = 134  # 3 × int16 / 100 °/s
_GPS = 136  # lat, lon int24 / 10000, alt int24 / 100


def _int(b: bytes, signed: bool) -> int:
    return int.from_bytes(b, "big", signed=signed)


def decode(payload: bytes, f_port: int) -> list[Reading]:
    out: list[Reading] = []
    i, n = 0, len(payload)
    if n == 0:
        raise DecodeError("empty Cayenne LPP payload")
    while i < n:
        if i + 2 > n:
            raise DecodeError(f"truncated Cayenne LPP record at byte {i}")
        channel, type_id = payload[i], payload[i + 1]
        i += 2
        spec = _TYPES.get(type_id)
        if spec is not None:
            size, signed, divisor, key = spec
            if i + size > n:
                raise DecodeError(f"truncated Cayenne LPP value (type {type_id}) on channel {channel}")
            raw = _int(payload[i : i + size], signed)
            value = raw / divisor if divisor != 1 else raw
            out.append((key, value, channel))  # type: ignore[arg-type]
            i += size
        elif type_id in (_ACCELEROMETER, _GYROMETER):
            if i + 6 > n:
                raise DecodeError(f"truncated Cayenne LPP vector on channel {channel}")
            div = 1000 if type_id == _ACCELEROMETER else 100
            name = "accelerometer" if type_id == _ACCELEROMETER else "gyrometer"
            for axis, k in zip("xyz", range(0, 6, 2), strict=True):
                out.append((f"{name}.{axis}", _int(payload[i + k : i + k + 2], True) / div, channel))  # type: ignore[arg-type]
            i += 6
        elif type_id == _GPS:
            if i + 9 > n:
                raise DecodeError(f"truncated Cayenne LPP GPS on channel {channel}")
            out.append(("latitude", _int(payload[i : i + 3], True) / 10000, channel))  # type: ignore[arg-type]
            out.append(("longitude", _int(payload[i + 3 : i + 6], True) / 10000, channel))  # type: ignore[arg-type]
            out.append(("altitude", _int(payload[i + 6 : i + 9], True) / 100, channel))  # type: ignore[arg-type]
            i += 9
        else:
            raise DecodeError(f"unknown Cayenne LPP type {type_id} on channel {channel}")
    return _name_channels(out)


def _name_channels(records: list[tuple[str, float, int]]) -> list[Reading]:
    """Keep the channel in the key only where one key comes from several channels."""
    channels: dict[str, set[int]] = {}
    for key, _, ch in records:
        channels.setdefault(key, set()).add(ch)
    return [(key if len(channels[key]) == 1 else f"{key}@{ch}", value) for key, value, ch in records]
