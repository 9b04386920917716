"""Milesight IoT channel/type payload: a sequence of [channel][type][value] records, little-endian, on fPort 85.

Source: Milesight user guides (EM300-TH, AM307/AM319, EM500-UDL, EM300-DI, VS133 "Uplink Packets" tables) and the
vendor decoders in TheThingsNetwork/lorawan-devices (vendor/milesight-iot/*.js, examples in *-codec.yaml) and
Milesight-IoT/SensorDecoders.

Mapping: 01/75 battery (%) → battery; 03/67 temperature (0.1 °C) → air.temperature; 04/68 humidity (0.5 %RH) →
air.humidity; 05/00 PIR → occupancy; 05/6A PIR activity → motion.count; 06/65 illuminance → light.illuminance;
07/7D → air.co2 (ppm); 08/7D → air.tvoc; 09/73 → air.pressure (0.1 hPa); 0A/7D HCHO (0.01 mg/m³) → attribute;
0B/7D → air.pm2_5; 0C/7D → air.pm10; 0D/7D ozone (0.01 ppm) → air.o3 in µg/m³ (20 °C, 1013 hPa, as EU
Directive 2008/50/EC); 03/82 ultrasonic distance (mm) → distance (m); 05/C8 pulse counter → counter.total;
VS133 line crossing: line 1 period in/out (05/CC) → counter.in / counter.out, totals and lines 2–4 as attributes.
FF/xx device information (versions, serial number, power-on) → attributes.
"""

from __future__ import annotations

import struct

from clapas.decoders.base import DecodeError, Reading

F_PORT = 85
O3_UG_PER_PPM = 1995.4  # 48.00 g/mol / 24.055 L/mol (20 °C, 101.325 kPa) × 1000

_U8, _U16, _S16, _U32 = struct.Struct("<B"), struct.Struct("<H"), struct.Struct("<h"), struct.Struct("<I")

# (channel, type): (struct, key, divisor) for the records that carry one number
SIMPLE: dict[tuple[int, int], tuple[struct.Struct, str, float]] = {
    (0x01, 0x75): (_U8, "battery", 1),
    (0x03, 0x67): (_S16, "air.temperature", 10),
    (0x04, 0x68): (_U8, "air.humidity", 2),
    (0x05, 0x00): (_U8, "occupancy", 1),
    (0x05, 0x6A): (_U16, "motion.count", 1),
    (0x06, 0xCB): (_U8, "light_level", 1),
    (0x07, 0x7D): (_U16, "air.co2", 1),
    (0x08, 0x7D): (_U16, "air.tvoc", 1),
    (0x09, 0x73): (_U16, "air.pressure", 10),
    (0x0A, 0x7D): (_U16, "hcho_mg_m3", 100),
    (0x0B, 0x7D): (_U16, "air.pm2_5", 1),
    (0x0C, 0x7D): (_U16, "air.pm10", 1),
    (0x0D, 0x7D): (_U16, "air.o3", 100 / O3_UG_PER_PPM),
    (0x0E, 0x01): (_U8, "beep", 1),
    (0x03, 0x82): (_U16, "distance", 1000),
    (0x05, 0xC8): (_U32, "counter.total", 1),
    (0xFF, 0x01): (_U8, "protocol_version", 1),
    (0xFF, 0x0B): (_U8, "power_on", 1),
    (0xFF, 0x0F): (_U8, "lorawan_class", 1),
}
# device information kept as hex strings: (0xFF, type): size
INFO: dict[int, tuple[int, str]] = {0x09: (2, "hardware_version"), 0x0A: (2, "firmware_version"),
                                    0x16: (8, "serial_number"), 0xFF: (2, "tsl_version")}
ILLUMINANCE = (0x06, 0x65)  # 3 × uint16: illuminance, infrared + visible, infrared
LINE_TOTAL, LINE_PERIOD = 0xD2, 0xCC  # VS133: line n uses channels 3n (total in), 3n+1 (total out), 3n+2 (period)


def decode(payload: bytes, f_port: int) -> list[Reading]:
    if f_port != F_PORT:
        raise DecodeError(f"Milesight measurements come on fPort {F_PORT}, not {f_port}")
    if not payload:
        raise DecodeError("empty Milesight payload")
    out: list[Reading] = []
    i, n = 0, len(payload)
    while i < n:
        if i + 2 > n:
            raise DecodeError(f"truncated Milesight record at byte {i}: channel without type")
        ch, ty = payload[i], payload[i + 1]
        i += 2
        spec = SIMPLE.get((ch, ty))
        if spec is not None:
            st, key, div = spec
            _need(i + st.size, n, ch, ty)
            raw = st.unpack_from(payload, i)[0]
            out.append((key, raw / div if div != 1 else raw))
            i += st.size
        elif ch == 0xFF and ty in INFO:
            size, key = INFO[ty]
            _need(i + size, n, ch, ty)
            out.append((key, payload[i : i + size].hex()))
            i += size
        elif (ch, ty) == ILLUMINANCE:
            _need(i + 6, n, ch, ty)
            lux, ir_vis, ir = struct.unpack_from("<HHH", payload, i)
            out += (("light.illuminance", lux), ("infrared_and_visible", ir_vis), ("infrared", ir))
            i += 6
        elif ty in (LINE_TOTAL, LINE_PERIOD) and 3 <= ch <= 14:
            i = _line(payload, i, ch, ty, out)
        else:
            raise DecodeError(f"unknown Milesight channel 0x{ch:02X} type 0x{ty:02X} at byte {i - 2}")
    return out


def _line(payload: bytes, i: int, ch: int, ty: int, out: list[Reading]) -> int:
    """VS133 line-crossing counters: line 1's counts since the last report are the device's in/out flow."""
    line, slot = divmod(ch, 3)
    if ty == LINE_TOTAL and slot in (0, 1):
        _need(i + 4, len(payload), ch, ty)
        out.append((f"line{line}.total_{'in' if slot == 0 else 'out'}", _U32.unpack_from(payload, i)[0]))
        return i + 4
    if ty == LINE_PERIOD and slot == 2:
        _need(i + 4, len(payload), ch, ty)
        n_in, n_out = struct.unpack_from("<HH", payload, i)
        suffix = "" if line == 1 else f"@line{line}"
        out += ((f"counter.in{suffix}", n_in), (f"counter.out{suffix}", n_out))
        return i + 4
    raise DecodeError(f"unknown Milesight channel 0x{ch:02X} type 0x{ty:02X}")


def _need(end: int, n: int, ch: int, ty: int) -> None:
    if end > n:
        raise DecodeError(f"truncated Milesight value (channel 0x{ch:02X} type 0x{ty:02X})")
