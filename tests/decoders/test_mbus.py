"""M-Bus water meters against vendor examples in TheThingsNetwork/lorawan-devices: Kamstrup
(vendor/kamstrup/mbusparser.yaml, decoded by Kamstrup's mbusparser.js; the last one is the example of the
flowIQ integration guide) and Sensus iPERL (vendor/sensus/iperl-codec.yaml, "SND-ALARM")."""

from __future__ import annotations

import pytest

from clapas.decoders.base import DecodeError
from clapas.decoders.mbus import decode_kamstrup, decode_oms

MIDNIGHT_LOG = bytes.fromhex("78446D0020F32A4413EC00000052FF25100042FF1C0500623B0000523B0000615B80515B80")
PROFILE = bytes.fromhex("78446D00331837441303000000" "4D931322" "61010000000300" + "00" * 27)
GUIDE = bytes.fromhex("7A08000000446D002CFD284413C1AA7700" "4D931318620127012201220126012201220121012701220122012701"
                      "2F")
IPERL_ALARM = bytes.fromhex("7A060400008404133A1C7E0184046D2A2D13368D04931318"
                            "D23C34002E0034002E0039002E0034002E00340033003400")


def test_kamstrup_midnight_log_with_tamper_alarm() -> None:
    assert decode_kamstrup(MIDNIGHT_LOG, 1) == [
        ("meter_time@1", "2023-10-19T00:00"), ("water.volume", 0.236), ("ald_last_day", 5),
        ("water_flow_min", 0.0), ("water_flow_max", 0.0),  # flow temperatures are 0x80: invalid, left out
        ("alarm.dry", 0), ("alarm.backflow", 0), ("alarm.leak", 0), ("alarm.burst", 0), ("alarm.tamper", 1),
        ("alarm.low_battery", 0), ("low_ambient_temperature", 0), ("high_ambient_temperature", 0)]


def test_kamstrup_profile_frames_give_the_latest_volume() -> None:
    assert decode_kamstrup(PROFILE, 1) == [("meter_time@1", "2024-07-24T19:00"), ("water.volume", 0.003)]
    assert decode_kamstrup(GUIDE, 1) == [("meter_status", 0), ("meter_time@1", "2023-08-29T12:00"),
                                         ("water.volume", 7842.497), ("alarm.low_battery", 0)]


def test_sensus_iperl_low_battery() -> None:
    assert decode_oms(IPERL_ALARM, 20) == [("meter_status", 4), ("water.volume", 25041.978),
                                           ("meter_time@8", "2024-06-19T13:42"), ("alarm.low_battery", 1)]


@pytest.mark.parametrize(("payload", "f_port", "reason"), [
    (b"", 1, "empty"), (b"\x51\x00", 1, "CI field 0x51"), (b"\x7a\x00\x00", 1, "truncated M-Bus header"),
    (b"\x7a\x00\x00\x00\x05", 1, "encrypted"), (MIDNIGHT_LOG[:12], 1, "truncated"), (b"\x78\x84", 1, "DIF"),
    (b"\x78\x04", 1, "VIF missing"), (b"\x78\x04\x93", 1, "VIF extension"), (b"\x78\x0d\x13", 1, "length"),
    (b"\x78\x0d\x13\x05\x00", 1, "variable"), (b"\x78\x0d\x13\xff", 1, "LVAR"), (MIDNIGHT_LOG, 0, "fPort"),
])
def test_bad_frames(payload: bytes, f_port: int, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_kamstrup(payload, f_port)


def test_bcd_and_real_values() -> None:
    bcd = b"\x78\x0c\x13\x56\x34\x12\x00"  # 123456 L in BCD
    real = b"\x78\x05\x3b\x00\x00\x48\x42"  # 50.0 L/h as a float
    assert decode_oms(bcd, 1) == [("water.volume", 123.456)]
    assert decode_oms(real, 1) == [("water.flow", 50.0)]
