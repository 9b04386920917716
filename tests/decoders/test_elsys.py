"""Elsys generic payload against the vendor examples in TheThingsNetwork/lorawan-devices
(vendor/elsys/ers-co2-codec.yaml, and the ELT Ultrasonic example in vendor/elsys/elt-ultrasonic-codec.yaml),
decoded by Elsys' own vendor/elsys/elsys.js."""

from __future__ import annotations

import pytest

from clapas.decoders.base import DecodeError
from clapas.decoders.elsys import decode


def test_ers_co2_example() -> None:
    frame = bytes([0x01, 0x00, 0xE2, 0x02, 0x29, 0x04, 0x00, 0x27, 0x05, 0x06, 0x06, 0x03, 0x08])
    assert decode(frame, 1) == [("air.temperature", 22.6), ("air.humidity", 41), ("light.illuminance", 39),
                                ("motion.count", 6), ("air.co2", 776)]


def test_elt_ultrasonic_example_distance_in_metres() -> None:
    frame = bytes([0x01, 0x00, 0xE2, 0x02, 0x29, 0x03, 0x01, 0x27, 0x05, 0x14, 0x06, 0x01, 0x01, 0x11,
                   0x0E, 0x23, 0x11])
    out = dict(decode(frame, 1))
    assert out["distance"] == 8.977  # 8977 mm
    assert out["air.pressure"] == 100729.105  # the example's value as published (raw / 1000)
    assert (out["acc_x"], out["acc_y"], out["acc_z"]) == (1, 39, 5)


def test_pulses_battery_and_occupancy() -> None:
    frame = bytes([0x07, 0x0E, 0x10, 0x0A, 0x00, 0x05, 0x0B, 0x00, 0x01, 0x00, 0x00, 0x11, 0x02, 0x1C, 0x01, 0x2C])
    assert decode(frame, 5) == [("battery.voltage", 3.6), ("counter.count", 5), ("counter.total", 65536),
                                ("occupancy", 1), ("air.tvoc", 300)]


@pytest.mark.parametrize(("payload", "f_port", "reason"), [
    (b"", 5, "empty"), (b"\x01\x00", 5, "truncated"), (b"\x7e\x00", 5, "unknown Elsys data type 0x7E"),
    (b"\x01\x00\xe2", 0, "fPort"), (b"\x01\x00\xe2", 224, "fPort"),
])
def test_bad_frames(payload: bytes, f_port: int, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(payload, f_port)
