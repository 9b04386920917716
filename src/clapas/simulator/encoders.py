"""Payload encoders: the simulator speaks the same device formats as real sensors, so its uplinks go through the
same decoders. `ENCODERS[decoder_name](readings)` takes catalogue-keyed readings (`{"air.temperature": 21.3, ...}`)
and returns `(f_port, payload)`, the frame the real device would send; `ENCODER_KEYS[name]` lists the keys it can
carry. Values outside what a format can carry raise ValueError.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from clapas.decoders import decentlab, dragino_lht65, elsys, mbus, milesight
from clapas.model import QUANTITY_BY_KEY

Encoder = Callable[[dict[str, float]], tuple[int, bytes]]


def _pack(st: struct.Struct, key: str, *raw: int) -> bytes:
    try:
        return st.pack(*raw)
    except struct.error:
        raise ValueError(f"{key}: {raw} is outside what the format can carry") from None


def cayenne_lpp(readings: dict[str, float]) -> tuple[int, bytes]:
    """Cayenne LPP, one channel per quantity (channel numbers from 1 in the order below)."""
    out = bytearray()
    for channel, (key, type_id, size, mult, signed) in enumerate(_LPP, start=1):
        if key in readings:
            v = round(readings[key] * mult)
            out += bytes([channel, type_id]) + int(v).to_bytes(size, "big", signed=signed)
    return 1, bytes(out)


# (key, LPP type, size, multiplier, signed)
_LPP = (
    ("air.temperature", 103, 2, 10, True),
    ("air.humidity", 104, 1, 2, False),
    ("air.pressure", 115, 2, 10, False),
    ("light.illuminance", 101, 2, 1, False),
    ("occupancy", 102, 1, 1, False),
)

# Elsys: key → (type, struct, divisor), in the decoder's type order
_ELSYS = {key: (t, st, div) for t, (st, key, div) in elsys.SIMPLE.items() if key in QUANTITY_BY_KEY}
_ELSYS_OCCUPANCY = 0x11


def elsys_frame(readings: dict[str, float]) -> tuple[int, bytes]:
    """Elsys generic payload on the sensors' default port 5."""
    out = bytearray()
    for key, (t, st, div) in _ELSYS.items():
        if key in readings:
            out.append(t)
            out += _pack(st, key, round(readings[key] * div))
    if "occupancy" in readings:
        out += bytes((_ELSYS_OCCUPANCY, elsys.OCCUPIED if readings["occupancy"] else 0))
    return 5, bytes(out)


def _lht65_battery_status(volts: float) -> int:
    """Dragino's battery status bits: 3 good (≥ 2.65 V), 2 ok, 1 low, 0 ultra low (≤ 2.50 V)."""
    return 3 if volts >= 2.65 else 2 if volts >= 2.55 else 1 if volts > 2.50 else 0


def dragino_lht65_frame(readings: dict[str, float]) -> tuple[int, bytes]:
    """LHT65 on fPort 2; with `probe_temperature` the external DS18B20 probe is present (type 1)."""
    volts = readings.get("battery.voltage", 3.0)
    bat = _lht65_battery_status(volts) << 14 | round(volts * 1000) & 0x3FFF
    probe = readings.get("probe_temperature")
    ext, ext_value = (dragino_lht65.EXT_TEMPERATURE, round(probe * 100)) if probe is not None else (
        dragino_lht65.EXT_NONE, dragino_lht65.NO_PROBE)
    payload = _pack(dragino_lht65.FRAME, "air.temperature", bat, round(readings.get("air.temperature", 0) * 100),
                    round(readings.get("air.humidity", 0) * 10) & 0x0FFF, ext, ext_value, 0x7FFF)
    return dragino_lht65.F_PORT, payload


# Milesight: key → ((channel, type), struct, divisor), in the decoder's channel order
_MILESIGHT = {key: (ct, st, div) for ct, (st, key, div) in milesight.SIMPLE.items() if key in QUANTITY_BY_KEY}
_MILESIGHT_LINE1_PERIOD = bytes((0x05, milesight.LINE_PERIOD))


def milesight_frame(readings: dict[str, float]) -> tuple[int, bytes]:
    """Milesight channel/type records on fPort 85, in channel order as the devices send them."""
    out = bytearray()
    for key, (ct, st, div) in _MILESIGHT.items():
        if key in readings:
            out += bytes(ct)
            out += _pack(st, key, round(readings[key] * div))
    if "counter.in" in readings or "counter.out" in readings:
        out += _MILESIGHT_LINE1_PERIOD
        out += _pack(struct.Struct("<HH"), "counter.in", round(readings.get("counter.in", 0)),
                     round(readings.get("counter.out", 0)))
    return milesight.F_PORT, bytes(out)


def _decentlab(sensors: list[tuple[tuple[str, ...], Callable[[dict[str, float]], list[float]]]]) -> Encoder:
    """A Decentlab version-2 frame: a sensor's words are sent when any of its keys is among the readings."""

    def encode(readings: dict[str, float]) -> tuple[int, bytes]:
        flags, words = 0, []
        for k, (keys, to_words) in enumerate(sensors):
            if any(key in readings for key in keys):
                flags |= 1 << k
                words += [round(w) for w in to_words(readings)]
        head = decentlab.HEADER.pack(decentlab.VERSION, int(readings.get("device_id", 0)), flags)
        return decentlab.F_PORT, head + _pack(struct.Struct(f">{len(words)}H"), "decentlab", *words)

    return encode


def _battery_words(r: dict[str, float]) -> list[float]:
    return [r.get("battery.voltage", 0) * 1000]


def _pm_words(r: dict[str, float]) -> list[float]:
    pm1, pm25, pm10 = r.get("air.pm1", 0), r.get("air.pm2_5", 0), r.get("air.pm10", 0)
    return [pm1 * 10, pm25 * 10, pm10 * 10, pm10 * 10, 0, 0, 0, 0, 0, 0]


def _sht_words(r: dict[str, float]) -> list[float]:
    return [(r.get("air.temperature", 20) + 46.85) * 65536 / 175.72, (r.get("air.humidity", 50) + 6) * 65536 / 125]


decentlab_pm_frame = _decentlab([
    (("battery.voltage",), _battery_words),
    (("air.pm1", "air.pm2_5", "air.pm10"), _pm_words),
    (("air.temperature", "air.humidity"), _sht_words),
    (("air.pressure",), lambda r: [r["air.pressure"] * 50]),
])
decentlab_mbx_frame = _decentlab([
    (("distance",), lambda r: [r["distance"] * 1000, r.get("valid_samples", 1)]),
    (("battery.voltage",), _battery_words),
])

_I32 = struct.Struct("<i")
_ALARM_KEYS = tuple(k for k in mbus.KAMSTRUP_INFOCODES if k.startswith("alarm."))


def _mbus_records(readings: dict[str, float], volume_dif: int) -> bytearray:
    """Volume (litres, VIF 0x13), reverse volume (VIFE 0x3C) and flow (L/h, VIF 0x3B) as 32-bit records."""
    out = bytearray()
    if "water.volume" in readings:
        out += bytes((volume_dif, 0x13)) + _pack(_I32, "water.volume", round(readings["water.volume"] * 1000))
    if "water.reverse_volume" in readings:
        out += bytes((0x04, 0x93, mbus.VIFE_REVERSE))
        out += _pack(_I32, "water.reverse_volume", round(readings["water.reverse_volume"] * 1000))
    if "water.flow" in readings:
        out += bytes((0x04, 0x3B)) + _pack(_I32, "water.flow", round(readings["water.flow"]))
    return out


def kamstrup_frame(readings: dict[str, float]) -> tuple[int, bytes]:
    """Kamstrup flowIQ style: no TPL header, volume on storage 1, info codes (VIF 0xFF 0x25) when alarms are given."""
    out = bytearray((mbus.CI_NO_HEADER,)) + _mbus_records(readings, 0x44)
    if any(k in readings for k in _ALARM_KEYS):
        code = sum(1 << bit for bit, k in enumerate(mbus.KAMSTRUP_INFOCODES) if readings.get(k))
        out += bytes((0x52, 0xFF, mbus.KAMSTRUP_INFOCODE)) + code.to_bytes(2, "little")
    return 1, bytes(out)


def oms_frame(readings: dict[str, float]) -> tuple[int, bytes]:
    """OMS short header (access number 0, status with the power-low bit, no encryption) then the records."""
    status = mbus.STATUS_POWER_LOW if readings.get("alarm.low_battery") else 0
    return 1, bytes((mbus.CI_SHORT, 0, status, 0, 0)) + _mbus_records(readings, 0x04)


ENCODERS: dict[str, Encoder] = {
    "cayenne_lpp": cayenne_lpp,
    "elsys": elsys_frame,
    "dragino_lht65": dragino_lht65_frame,
    "milesight": milesight_frame,
    "decentlab_pm": decentlab_pm_frame,
    "decentlab_mbx": decentlab_mbx_frame,
    "kamstrup": kamstrup_frame,
    "oms": oms_frame,
}
_WATER = ("water.volume", "water.reverse_volume", "water.flow")
ENCODER_KEYS: dict[str, frozenset[str]] = {
    "cayenne_lpp": frozenset(k for k, *_ in _LPP),
    "elsys": frozenset([*_ELSYS, "occupancy"]),
    "dragino_lht65": frozenset({"air.temperature", "air.humidity", "battery.voltage"}),
    "milesight": frozenset([*_MILESIGHT, "counter.in", "counter.out"]),
    "decentlab_pm": frozenset({"battery.voltage", "air.pm1", "air.pm2_5", "air.pm10", "air.temperature",
                               "air.humidity", "air.pressure"}),
    "decentlab_mbx": frozenset({"distance", "battery.voltage"}),
    "kamstrup": frozenset([*_WATER, *_ALARM_KEYS]),
    "oms": frozenset([*_WATER, "alarm.low_battery"]),
}
