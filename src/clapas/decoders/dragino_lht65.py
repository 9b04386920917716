"""Dragino LHT65 temperature and humidity sensor, 11-byte uplink on fPort 2.

Source: Dragino "LHT65 LoRaWAN Temperature & Humidity Sensor User Manual" (uplink payload section) and the vendor
decoder in TheThingsNetwork/lorawan-devices (vendor/dragino/lht65.js, example in vendor/dragino/lht65-codec.yaml).

Layout (big-endian): BAT (2 bytes: status in the two top bits, battery mV below) · built-in SHT20 temperature
(int16, 0.01 °C) · humidity (12 bits, 0.1 %RH) · external sensor type (low nibble; bit 7 = probe not connected) ·
external value (4 bytes, meaning set by the type).
Mapping: battery mV → battery.voltage (V); SHT temperature → air.temperature; humidity → air.humidity; external
DS18B20 probe → attribute probe_temperature (0x7FFF = no reading); illumination probe → light.illuminance;
counting modes → counter.total; the rest are attributes.
"""

from __future__ import annotations

import struct

from clapas.decoders.base import DecodeError, Reading

F_PORT = 2
FRAME = struct.Struct(">HhHBhH")  # bat, temperature, humidity, ext type, ext value (2 + 2 more bytes)
NO_PROBE = 0x7FFF
EXT_NONE, EXT_TEMPERATURE, EXT_INTERRUPT, EXT_ILLUMINATION, EXT_ADC = 0, 1, 4, 5, 6
EXT_COUNT16, EXT_COUNT32, EXT_DATALOG, EXT_PROBE_ID = 7, 8, 9, 15


def decode(payload: bytes, f_port: int) -> list[Reading]:
    if f_port != F_PORT:
        raise DecodeError(f"LHT65 measurements come on fPort {F_PORT}, not {f_port}")
    if len(payload) != FRAME.size:
        raise DecodeError(f"LHT65 frame of {len(payload)} bytes, expected {FRAME.size}")
    bat, temp, hum, ext_byte, ext_hi, ext_lo = FRAME.unpack(payload)
    ext = ext_byte & 0x0F
    out: list[Reading] = []
    if ext == EXT_DATALOG:  # the probe temperature takes the battery's place
        out.append(("probe_temperature", struct.unpack_from(">h", payload)[0] / 100))
    else:
        out.append(("battery.voltage", (bat & 0x3FFF) / 1000))
        out.append(("battery_status", bat >> 14))
    if ext != EXT_PROBE_ID:
        out.append(("air.temperature", temp / 100))
        out.append(("air.humidity", (hum & 0x0FFF) / 10))
    if ext_byte & 0x80:
        out.append(("probe_connected", False))
    u16 = ext_hi & 0xFFFF
    if ext == EXT_TEMPERATURE:
        if ext_hi != NO_PROBE:
            out.append(("probe_temperature", ext_hi / 100))
    elif ext == EXT_ILLUMINATION:
        out.append(("light.illuminance", u16))
    elif ext == EXT_ADC:
        out.append(("adc_voltage", u16 / 1000))
    elif ext == EXT_COUNT16:
        out.append(("counter.total", u16))
    elif ext == EXT_COUNT32:
        out.append(("counter.total", (u16 << 16) | ext_lo))
    elif ext == EXT_INTERRUPT:
        out.append(("interrupt_level", payload[7]))
        out.append(("interrupt_triggered", bool(payload[8])))
    elif ext == EXT_DATALOG:
        out.append(("device_time", (u16 << 16) | ext_lo))
    elif ext not in (EXT_NONE, EXT_PROBE_ID):
        raise DecodeError(f"unknown LHT65 external sensor type {ext}")
    return out
