"""Cayenne LPP against the examples of the myDevices Cayenne LPP documentation
(docs.mydevices.com, "Cayenne Low Power Payload", examples section)."""

from __future__ import annotations

import pytest

from clapas.decoders.base import DecodeError
from clapas.decoders.cayenne_lpp import decode


def test_two_temperature_channels() -> None:
    assert decode(bytes.fromhex("03670110056700FF"), 1) == [("air.temperature@3", 27.2), ("air.temperature@5", 25.5)]


def test_temperature_and_accelerometer() -> None:
    assert decode(bytes.fromhex("0167FFD7067104D2FB2E0000"), 1) == [
        ("air.temperature", -4.1), ("accelerometer.x", 1.234), ("accelerometer.y", -1.234), ("accelerometer.z", 0.0)]


def test_gps() -> None:
    assert decode(bytes.fromhex("018806765FF2960A0003E8"), 1) == [
        ("latitude", 42.3519), ("longitude", -87.9094), ("altitude", 10.0)]


@pytest.mark.parametrize(("payload", "reason"), [
    (b"", "empty"), (b"\x01", "truncated"), (b"\x01\x67\x01", "truncated"), (b"\x01\x99\x00", "unknown"),
    (b"\x01\x88\x00", "truncated"),
])
def test_bad_frames(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(payload, 1)
