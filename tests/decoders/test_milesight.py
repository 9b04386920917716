"""Milesight channel/type payload against the vendor examples in TheThingsNetwork/lorawan-devices
(vendor/milesight-iot/am307-codec.yaml, am319-codec.yaml, em500-udl-codec.yaml, em300-di-codec.yaml,
vs133-codec.yaml), decoded by Milesight's own codecs in the same folder."""

from __future__ import annotations

import pytest

from clapas.decoders.base import DecodeError
from clapas.decoders.milesight import decode


def test_am307_climate() -> None:
    frame = bytes([0x01, 0x75, 0x5C, 0x03, 0x67, 0x34, 0x01, 0x04, 0x68, 0x65, 0x05, 0x6A, 0x49, 0x00])
    assert decode(frame, 85) == [("battery", 92), ("air.temperature", 30.8), ("air.humidity", 50.5),
                                 ("motion.count", 73)]


def test_am307_air_quality() -> None:
    frame = bytes([0x07, 0x7D, 0xE7, 0x04, 0x08, 0x7D, 0x07, 0x00, 0x09, 0x73, 0x3F, 0x27])
    assert decode(frame, 85) == [("air.co2", 1255), ("air.tvoc", 7), ("air.pressure", 1004.7)]


def test_am319_particulates() -> None:
    frame = bytes([0x03, 0x67, 0x34, 0x01, 0x04, 0x68, 0x65, 0x05, 0x00, 0x01, 0x06, 0xCB, 0x02, 0x07, 0x7D,
                   0xA8, 0x03, 0x08, 0x7D, 0x25, 0x00, 0x09, 0x73, 0x66, 0x27, 0x0A, 0x7D, 0x04, 0x00, 0x0B, 0x7D,
                   0x20, 0x00, 0x0C, 0x7D, 0x30, 0x00])
    assert decode(frame, 85) == [
        ("air.temperature", 30.8), ("air.humidity", 50.5), ("occupancy", 1), ("light_level", 2), ("air.co2", 936),
        ("air.tvoc", 37), ("air.pressure", 1008.6), ("hcho_mg_m3", 0.04), ("air.pm2_5", 32), ("air.pm10", 48)]


def test_am319_ozone_in_micrograms() -> None:
    assert decode(bytes([0x0D, 0x7D, 0x05, 0x00]), 85) == [("air.o3", pytest.approx(99.77))]  # 0.05 ppm


def test_em500_udl_distance_in_metres() -> None:
    assert decode(bytes([0x01, 0x75, 0x5C, 0x03, 0x82, 0x1E, 0x00]), 85) == [("battery", 92), ("distance", 0.03)]


def test_em300_di_pulse_counter() -> None:
    frame = bytes([0x01, 0x75, 0x5C, 0x05, 0xC8, 0x00, 0x01, 0x00, 0x00])
    assert decode(frame, 85) == [("battery", 92), ("counter.total", 256)]


def test_vs133_line_crossing() -> None:
    frame = bytes.fromhex("03d24800000004d2c800000006d20000000007d20000000005cc0000000008cc00000000")
    assert decode(frame, 85) == [
        ("line1.total_in", 72), ("line1.total_out", 200), ("line2.total_in", 0), ("line2.total_out", 0),
        ("counter.in", 0), ("counter.out", 0), ("counter.in@line2", 0), ("counter.out@line2", 0)]


@pytest.mark.parametrize(("payload", "f_port", "reason"), [
    (b"", 85, "empty"), (b"\x01", 85, "channel without type"), (b"\x03\x67\x01", 85, "truncated"),
    (b"\x42\x42\x00", 85, "unknown Milesight channel 0x42 type 0x42"), (b"\x01\x75\x5c", 1, "fPort 85, not 1"),
    (b"\x03\xd2\x00", 85, "truncated"), (b"\x05\xd2\x00\x00\x00\x00", 85, "unknown"),
])
def test_bad_frames(payload: bytes, f_port: int, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(payload, f_port)
