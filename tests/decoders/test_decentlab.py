"""Decentlab DL-PM and DL-MBX against the vendor examples in TheThingsNetwork/lorawan-devices
(vendor/decentlab/dl-pm-codec.yaml and dl-mbx-codec.yaml, decoded by Decentlab's dl-pm.js and dl-mbx.js)."""

from __future__ import annotations

import pytest

from clapas.decoders.base import DecodeError
from clapas.decoders.decentlab import decode_mbx, decode_pm


def test_dl_pm_example_1() -> None:
    frame = bytes.fromhex("021b50000f0c25002500270027002701f50107012c012d012d012d67bd618dbd10")
    out = dict(decode_pm(frame, 1))
    assert out["device_id"] == 6992
    assert out["battery.voltage"] == 3.109
    assert (out["air.pm1"], out["air.pm2_5"], out["pm4"], out["air.pm10"]) == (3.7, 3.9, 3.9, 3.9)
    assert out["typical_particle_size_nm"] == 501
    assert (out["pm0_5_number"], out["pm1_number"], out["pm10_number"]) == (26.3, 30.0, 30.1)
    assert out["air.temperature"] == pytest.approx(24.35660461425781)
    assert out["air.humidity"] == pytest.approx(41.63221740722656)
    assert out["air.pressure"] == 968.0  # 96800 Pa


def test_dl_pm_examples_2_and_3() -> None:
    assert dict(decode_pm(bytes.fromhex("021b50000d0c2567bd618dbd10"), 1))["air.pressure"] == 968.0
    assert decode_pm(bytes.fromhex("021b5000010c25"), 1) == [("device_id", 6992), ("battery.voltage", 3.109)]


def test_dl_mbx_examples() -> None:
    assert decode_mbx(bytes.fromhex("02012f000304d200010bb1"), 1) == [
        ("device_id", 303), ("distance", 1.234), ("valid_samples", 1), ("battery.voltage", 2.993)]
    assert decode_mbx(bytes.fromhex("02012f00020bb1"), 1) == [("device_id", 303), ("battery.voltage", 2.993)]


@pytest.mark.parametrize(("payload", "f_port", "reason"), [
    (b"", 1, "shorter than its 5-byte header"), (bytes.fromhex("03012f00020bb1"), 1, "version 3"),
    (bytes.fromhex("02012f00030bb1"), 1, "truncated"), (bytes.fromhex("02012f00020bb100"), 1, "unexpected"),
    (bytes.fromhex("02012f00040bb1"), 1, "does not have"), (bytes.fromhex("02012f00020bb1"), 2, "fPort 1, not 2"),
])
def test_bad_frames(payload: bytes, f_port: int, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_mbx(payload, f_port)
