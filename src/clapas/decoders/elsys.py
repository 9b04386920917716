"""Elsys ERS/ELT/EMS generic payload: a sequence of [type][value] records, big-endian.

Source: Elsys "Generic payload" document and the vendor decoder published in TheThingsNetwork/lorawan-devices
(vendor/elsys/elsys.js, examples in vendor/elsys/*-codec.yaml). fPorts: Elsys sensors send data on a configurable
application port (default 5; the published examples use 1), so any fPort 1–223 is accepted.

Mapping: 0x01 temperature → air.temperature (0.1 °C); 0x02 humidity → air.humidity; 0x04 light →
light.illuminance; 0x05 motion (PIR) → motion.count; 0x06 CO2 → air.co2; 0x07 VDD (mV) → battery.voltage (V);
0x0A pulse (relative) → counter.count; 0x0B pulse absolute → counter.total; 0x0E external distance (mm) →
distance (m); 0x11 occupancy (2 = occupied) → occupancy; 0x14 pressure → air.pressure (hPa);
0x15 sound → sound.level (average; peak kept); 0x1C TVOC → air.tvoc (ppb). Every other documented type is kept as a
device attribute; an undocumented type makes the frame undecodable, because its length is unknown.
"""

from __future__ import annotations

import struct

from clapas.decoders.base import DecodeError, Reading

_U8, _S8 = struct.Struct(">B"), struct.Struct(">b")
_U16, _S16 = struct.Struct(">H"), struct.Struct(">h")
_U32, _S32 = struct.Struct(">I"), struct.Struct(">i")

# type: (struct, key, divisor) for the records that carry one number
SIMPLE: dict[int, tuple[struct.Struct, str, int]] = {
    0x01: (_S16, "air.temperature", 10),
    0x02: (_U8, "air.humidity", 1),
    0x04: (_U16, "light.illuminance", 1),
    0x05: (_U8, "motion.count", 1),
    0x06: (_U16, "air.co2", 1),
    0x07: (_U16, "battery.voltage", 1000),
    0x08: (_U16, "analog1_mv", 1),
    0x0A: (_U16, "counter.count", 1),
    0x0B: (_U32, "counter.total", 1),
    0x0C: (_S16, "external_temperature", 10),
    0x0D: (_U8, "digital", 1),
    0x0E: (_U16, "distance", 1000),
    0x0F: (_U8, "acc_motion", 1),
    0x12: (_U8, "waterleak", 1),
    0x14: (_U32, "air.pressure", 1000),
    0x16: (_U16, "pulse2", 1),
    0x17: (_U32, "pulse2_total", 1),
    0x18: (_U16, "analog2_mv", 1),
    0x19: (_S16, "external_temperature2", 10),
    0x1A: (_U8, "digital2", 1),
    0x1B: (_S32, "analog_uv", 1),
    0x1C: (_U16, "air.tvoc", 1),
    0x3D: (_U32, "debug", 1),
}
_ACC, _GPS, _IR_TEMP, _OCCUPANCY, _GRIDEYE, _SOUND = 0x03, 0x09, 0x10, 0x11, 0x13, 0x15
_SIZES = {_ACC: 3, _GPS: 6, _IR_TEMP: 4, _OCCUPANCY: 1, _GRIDEYE: 65, _SOUND: 2}
OCCUPIED = 2  # Elsys occupancy: 0 free, 1 pending (someone entering or leaving), 2 occupied


def decode(payload: bytes, f_port: int) -> list[Reading]:
    if not 1 <= f_port <= 223:
        raise DecodeError(f"Elsys data comes on an application fPort (1-223), not {f_port}")
    if not payload:
        raise DecodeError("empty Elsys payload")
    out: list[Reading] = []
    i, n = 0, len(payload)
    while i < n:
        t = payload[i]
        i += 1
        spec = SIMPLE.get(t)
        size = spec[0].size if spec is not None else _SIZES.get(t)
        if size is None:
            raise DecodeError(f"unknown Elsys data type 0x{t:02X} at byte {i - 1}: the rest cannot be read")
        if i + size > n:
            raise DecodeError(f"truncated Elsys record (type 0x{t:02X}): {n - i} bytes left, {size} needed")
        if spec is not None:
            st, key, div = spec
            raw = st.unpack_from(payload, i)[0]
            out.append((key, raw / div if div != 1 else raw))
        elif t == _OCCUPANCY:
            out.append(("occupancy", int(payload[i] == OCCUPIED)))
        elif t == _SOUND:
            out.append(("sound_peak", payload[i]))
            out.append(("sound.level", payload[i + 1]))
        elif t == _ACC:
            x, y, z = struct.unpack_from(">bbb", payload, i)
            out += (("acc_x", x), ("acc_y", y), ("acc_z", z))
        elif t == _IR_TEMP:
            internal, external = struct.unpack_from(">hh", payload, i)
            out += (("ir_internal_temperature", internal / 10), ("ir_external_temperature", external / 10))
        elif t == _GPS:
            out.append(("gps_raw", payload[i : i + 6].hex()))
        else:  # grid-eye: 1 reference byte + 64 pixels, kept only as its reference temperature
            out.append(("grideye_reference", payload[i]))
        i += size
    return out
