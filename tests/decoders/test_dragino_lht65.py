"""Dragino LHT65 against the vendor example in TheThingsNetwork/lorawan-devices (vendor/dragino/lht65-codec.yaml,
decoded by vendor/dragino/lht65.js; the same frame layout as the LHT65 user manual)."""

from __future__ import annotations

import pytest

from clapas.decoders.base import DecodeError
from clapas.decoders.dragino_lht65 import decode

EXAMPLE = bytes([0xCB, 0xF6, 0x0B, 0x0D, 0x03, 0x76, 0x01, 0x0A, 0xDD, 0x7F, 0xFF])


def test_vendor_example() -> None:
    assert decode(EXAMPLE, 2) == [("battery.voltage", 3.062), ("battery_status", 3), ("air.temperature", 28.29),
                                  ("air.humidity", 88.6), ("probe_temperature", 27.81)]


def test_vendor_example_on_unknown_port_is_refused() -> None:
    with pytest.raises(DecodeError, match="fPort 2, not 42"):
        decode(EXAMPLE, 42)


def test_missing_probe_and_negative_temperature() -> None:
    frame = bytes([0xCB, 0xF6, 0xFF, 0x38, 0x01, 0xF4, 0x81, 0x7F, 0xFF, 0x7F, 0xFF])
    assert decode(frame, 2) == [("battery.voltage", 3.062), ("battery_status", 3), ("air.temperature", -2.0),
                                ("air.humidity", 50.0), ("probe_connected", False)]


@pytest.mark.parametrize(("payload", "reason"), [
    (b"", "0 bytes"), (EXAMPLE[:10], "10 bytes"), (EXAMPLE[:6] + b"\x0c" + EXAMPLE[7:], "external sensor type 12"),
])
def test_bad_frames(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(payload, 2)
