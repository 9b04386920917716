"""Decentlab sensor devices: version 2 frames of 16-bit words, on fPort 1.

Source: Decentlab data sheets ("Uplink payload" section) and the vendor decoders in
TheThingsNetwork/lorawan-devices (vendor/decentlab/dl-pm.js, dl-mbx.js; examples in dl-pm-codec.yaml and
dl-mbx-codec.yaml).

Layout (big-endian): protocol version (1 byte, 2) · device id (uint16) · flags (uint16, bit k set = sensor k's words
follow) · the words of each present sensor, in order. Each model lists its sensors:
- DL-PM (`decentlab_pm`): battery (mV) → battery.voltage; particulate matter (0.1 µg/m³) → air.pm1, air.pm2_5,
  air.pm10 (PM4, typical particle size and number concentrations as attributes); SHT temperature and humidity →
  air.temperature, air.humidity; barometric pressure (2 Pa) → air.pressure (hPa).
- DL-MBX (`decentlab_mbx`): ultrasonic distance (mm) → distance (m), valid samples; battery → battery.voltage.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from clapas.decoders.base import DecodeError, Reading

F_PORT = 1
VERSION = 2
HEADER = struct.Struct(">BHH")

Sensor = tuple[struct.Struct, Callable[[tuple[int, ...]], list[Reading]]]


def _words(n: int) -> struct.Struct:
    return struct.Struct(f">{n}H")


def _battery(w: tuple[int, ...]) -> list[Reading]:
    return [("battery.voltage", w[0] / 1000)]


def _pm(w: tuple[int, ...]) -> list[Reading]:
    return [("air.pm1", w[0] / 10), ("air.pm2_5", w[1] / 10), ("pm4", w[2] / 10), ("air.pm10", w[3] / 10),
            ("typical_particle_size_nm", w[4]), ("pm0_5_number", w[5] / 10), ("pm1_number", w[6] / 10),
            ("pm2_5_number", w[7] / 10), ("pm4_number", w[8] / 10), ("pm10_number", w[9] / 10)]


def _sht(w: tuple[int, ...]) -> list[Reading]:
    return [("air.temperature", 175.72 * w[0] / 65536 - 46.85), ("air.humidity", 125 * w[1] / 65536 - 6)]


def _pressure(w: tuple[int, ...]) -> list[Reading]:
    return [("air.pressure", w[0] * 2 / 100)]


def _distance(w: tuple[int, ...]) -> list[Reading]:
    return [("distance", w[0] / 1000), ("valid_samples", w[1])]


MODELS: dict[str, tuple[Sensor, ...]] = {
    "DL-PM": ((_words(1), _battery), (_words(10), _pm), (_words(2), _sht), (_words(1), _pressure)),
    "DL-MBX": ((_words(2), _distance), (_words(1), _battery)),
}


def _decoder(model: str) -> Callable[[bytes, int], list[Reading]]:
    sensors = MODELS[model]
    known = (1 << len(sensors)) - 1

    def decode(payload: bytes, f_port: int) -> list[Reading]:
        if f_port != F_PORT:
            raise DecodeError(f"Decentlab {model} measurements come on fPort {F_PORT}, not {f_port}")
        if len(payload) < HEADER.size:
            raise DecodeError(f"Decentlab frame of {len(payload)} bytes, shorter than its 5-byte header")
        version, device_id, flags = HEADER.unpack_from(payload)
        if version != VERSION:
            raise DecodeError(f"Decentlab protocol version {version}, only version {VERSION} is known")
        if flags & ~known:
            raise DecodeError(f"Decentlab flags 0x{flags:04X} name sensors a {model} does not have")
        out: list[Reading] = [("device_id", device_id)]
        i = HEADER.size
        for k, (words, convert) in enumerate(sensors):
            if flags >> k & 1:
                if i + words.size > len(payload):
                    raise DecodeError(f"truncated Decentlab {model} frame: sensor {k} needs {words.size} bytes")
                out += convert(words.unpack_from(payload, i))
                i += words.size
        if i != len(payload):
            raise DecodeError(f"Decentlab {model} frame has {len(payload) - i} unexpected bytes at the end")
        return out

    decode.__doc__ = f"Decode a Decentlab {model} uplink."
    return decode


decode_pm = _decoder("DL-PM")
decode_mbx = _decoder("DL-MBX")
