"""Water meters speaking the M-Bus application layer (EN 13757-3, OMS) over LoRaWAN: Kamstrup flowIQ and the
OMS-profile meters such as Sensus iPERL.

Sources: EN 13757-3:2018 (DIF/VIF coding, data types A, B, F, G) and the OMS specification vol. 2 (short header and
status byte); Kamstrup "flowIQ 2200/3100 LoRaWAN integration guide" and the Kamstrup decoder in
TheThingsNetwork/lorawan-devices (vendor/kamstrup/mbusparser.js, examples in mbusparser.yaml); Sensus iPERL OMS
examples in vendor/sensus/iperl-codec.yaml. fPorts: any application port (1–223); the frame describes itself.

Frame: CI field (0x78 no header, 0x7A short header, 0x72 long header) then data records [DIF][DIFE…][VIF][VIFE…]
[data]. Mapping: first instantaneous volume → water.volume (m³); volume with VIFE "reverse" → water.reverse_volume;
instantaneous volume flow → water.flow (L/h), min/max flows → attributes; flow temperature → water.temperature;
date-time → attribute meter_time. OMS status byte bit 2 (power low) → alarm.low_battery. Kamstrup info codes
(manufacturer VIFE 0x25) → alarm.dry, alarm.backflow, alarm.leak, alarm.burst, alarm.tamper, alarm.low_battery.
Profiles (variable-length records) and other records are skipped or kept as attributes, never guessed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from clapas.decoders.base import DecodeError, Reading

CI_NO_HEADER, CI_SHORT, CI_LONG = 0x78, 0x7A, 0x72
FILLER, MANUFACTURER_DATA, MORE_RECORDS_FOLLOW = 0x2F, 0x0F, 0x1F
VIFE_REVERSE = 0x3C
DATE_TIME = 0x6D  # type F, 4 bytes
STATUS_POWER_LOW = 0x04
FUNCTIONS = ("", "_max", "_min", "_error")
# Kamstrup info code bits for water meters → catalogue alarms (mbusparser.js InfocodeTableWater)
KAMSTRUP_INFOCODES = ("alarm.dry", "alarm.backflow", "alarm.leak", "alarm.burst", "alarm.tamper",
                      "alarm.low_battery", "low_ambient_temperature", "high_ambient_temperature")
KAMSTRUP_MANUFACTURER = {0x1B: "ald", 0x1C: "ald_last_day", 0x16: "config_number"}
KAMSTRUP_INFOCODE = 0x25

_SIZES = (0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, -1, 6, 0)  # by data field; -1 variable length (LVAR)
_INVALID = {1: -0x80, 2: -0x8000, 3: -0x800000, 4: -0x80000000, 6: -0x800000000000}
_REAL = struct.Struct("<f")


def _lvar_size(lvar: int) -> int:
    """Length of a variable-length record from its LVAR byte (EN 13757-3 table 5)."""
    if lvar < 0xC0:
        return lvar
    if lvar < 0xF0:
        return lvar & 0x0F
    if lvar <= 0xF4:
        return 4 * (lvar - 0xEC)
    if lvar in (0xF5, 0xF6):
        return 48 if lvar == 0xF5 else 64
    raise DecodeError(f"reserved M-Bus LVAR 0x{lvar:02X}")


def _bcd(data: bytes) -> int | None:
    value, mult = 0, 1
    for k, b in enumerate(data):
        lo, hi = b & 0x0F, b >> 4
        if k == len(data) - 1 and hi == 0x0F:
            return None if lo > 9 else -(value + lo * mult)
        if lo > 9 or hi > 9:
            return None
        value += (lo + 10 * hi) * mult
        mult *= 100
    return value


def _datetime(raw: int) -> str:
    """Type F (CP32) date and time, in the meter's own clock."""
    minute, hour, day, month = raw & 0x3F, raw >> 8 & 0x1F, raw >> 16 & 0x1F, raw >> 24 & 0x0F
    year = 1900 + 100 * (raw >> 13 & 0x03) + ((raw >> 21 & 0x07) | (raw >> 25 & 0x78))
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}"


def _header(payload: bytes) -> tuple[int, int | None]:
    """Offset of the first record and the OMS status byte, if the header has one."""
    ci = payload[0]
    if ci == CI_NO_HEADER:
        return 1, None
    size = 5 if ci == CI_SHORT else 13 if ci == CI_LONG else 0
    if not size:
        raise DecodeError(f"not an M-Bus application frame (CI field 0x{ci:02X}; expected 0x78, 0x7A or 0x72)")
    if len(payload) < size:
        raise DecodeError(f"truncated M-Bus header: {len(payload)} bytes, expected {size}")
    config = int.from_bytes(payload[size - 2 : size], "little")
    if config & 0x1F00:
        raise DecodeError("encrypted M-Bus frame (security mode set): decrypt it in the network server first")
    return size, payload[size - 3]


def _decoder(manufacturer: bool) -> Callable[[bytes, int], list[Reading]]:
    def decode(payload: bytes, f_port: int) -> list[Reading]:
        if not 1 <= f_port <= 223:
            raise DecodeError(f"meter data comes on an application fPort (1-223), not {f_port}")
        if not payload:
            raise DecodeError("empty M-Bus payload")
        i, status = _header(payload)
        out: list[Reading] = []
        alarms: dict[str, int] = {}
        if status is not None:
            alarms["alarm.low_battery"] = int(bool(status & STATUS_POWER_LOW))
            out.append(("meter_status", status))
        n = len(payload)
        while i < n:
            i = _record(payload, i, out, alarms, manufacturer)
        out += alarms.items()
        return out

    return decode


def _record(p: bytes, i: int, out: list[Reading], alarms: dict[str, int], manufacturer: bool) -> int:
    """Read one data record from byte i; return where the next one starts."""
    n, start = len(p), i
    dif = p[i]
    i += 1
    if dif == FILLER:
        return i
    if dif in (MANUFACTURER_DATA, MORE_RECORDS_FOLLOW):
        out.append(("manufacturer_data", p[i:].hex()))
        return n
    storage, ext = dif >> 6 & 1, dif & 0x80
    shift = 1
    while ext:
        if i >= n or shift > 41:
            raise DecodeError(f"truncated M-Bus record at byte {start}: DIF extension missing")
        storage |= (p[i] & 0x0F) << shift
        ext, shift, i = p[i] & 0x80, shift + 4, i + 1
    if i >= n:
        raise DecodeError(f"truncated M-Bus record at byte {start}: VIF missing")
    vif = p[i]
    vifes: list[int] = []
    ext = vif & 0x80
    i += 1
    while ext:
        if i >= n or len(vifes) > 10:
            raise DecodeError(f"truncated M-Bus record at byte {start}: VIF extension missing")
        vifes.append(p[i] & 0x7F)
        ext, i = p[i] & 0x80, i + 1
    size = _SIZES[dif & 0x0F]
    if size < 0:
        if i >= n:
            raise DecodeError(f"truncated M-Bus record at byte {start}: length byte missing")
        size, i = _lvar_size(p[i]), i + 1
        if i + size > n:
            raise DecodeError(f"truncated M-Bus variable record at byte {start}")
        return i + size  # profiles and strings: not measurements of the moment
    if i + size > n:
        raise DecodeError(f"truncated M-Bus record at byte {start}: {n - i} data bytes left, {size} needed")
    data = p[i : i + size]
    value = _value(dif & 0x0F, data)
    if value is None:
        return i + size
    if (vif & 0x7F) == DATE_TIME and size == 4:
        out.append((f"meter_time@{storage}", _datetime(int(value) & 0xFFFFFFFF)))
    else:
        _map(vif, vifes, (dif >> 4) & 3, storage, value, out, alarms, manufacturer)
    return i + size


def _value(field: int, data: bytes) -> int | float | None:
    if not data:
        return None
    if field == 5:
        return _REAL.unpack(data)[0]
    if field >= 9:
        return _bcd(data)
    value = int.from_bytes(data, "little", signed=True)
    return None if _INVALID.get(len(data)) == value else value


def _map(vif: int, vifes: list[int], function: int, storage: int, value: float, out: list[Reading],
         alarms: dict[str, int], manufacturer: bool) -> None:
    code = vif & 0x7F
    suffix = FUNCTIONS[function]
    if vif == 0xFF:
        tag = vifes[0] if vifes else -1
        if manufacturer and tag == KAMSTRUP_INFOCODE:
            bits = int(value) & 0xFF
            for bit, key in enumerate(KAMSTRUP_INFOCODES):
                alarms[key] = alarms.get(key, 0) | (bits >> bit & 1)
        elif manufacturer and tag in KAMSTRUP_MANUFACTURER:
            out.append((KAMSTRUP_MANUFACTURER[tag], value))
        else:
            out.append((f"manufacturer_0x{tag & 0xFF:02X}{suffix}", value))
        return
    if 0x10 <= code <= 0x17:
        m3 = round(value * 10.0 ** (code - 0x16), 9)
        if VIFE_REVERSE in vifes:
            out.append(("water.reverse_volume", m3))
        elif function == 0 and not vifes and not any(k == "water.volume" for k, _ in out):
            out.append(("water.volume", m3))
        else:
            out.append((f"volume{suffix}@{storage}", m3))
    elif 0x38 <= code <= 0x3F:
        litres_h = round(value * 10.0 ** (code - 0x3B), 9)
        out.append(("water.flow" if function == 0 and not vifes else f"water_flow{suffix}", litres_h))
    elif 0x58 <= code <= 0x5B:
        celsius = round(value * 10.0 ** (code - 0x5B), 9)
        out.append(("water.temperature" if function == 0 else f"water_temperature{suffix}", celsius))
    else:
        out.append((f"mbus_vif_0x{vif:02X}{suffix}@{storage}", value))


decode_kamstrup = _decoder(manufacturer=True)
decode_oms = _decoder(manufacturer=False)
