"""Vendor JavaScript codecs: each convention, each failure mode, the sandbox, and the mapping to quantities.

The codecs are clapas's own (tests/fixtures/codecs), written in each vendor convention.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clapas.codecs.engine import CodecError, CodecLoadError, JsCodec, Limits
from clapas.codecs.repository import load_spec
from clapas.decoders.base import DecodeError
from clapas.decoders.chirpstack_object import FieldMap
from clapas.decoders.javascript import JsDecoder

CODECS = Path(__file__).parents[1] / "fixtures" / "codecs"
REPO = CODECS / "repo" / "vendor"
TH = bytes.fromhex("00e7640e1001c2")  # 23.1 °C, 50 %RH, 3.6 V, 450 ppm
FAST = Limits(time_limit_ms=50, memory_limit_mb=16, stack_limit_kb=128)


def codec(path: Path, limits: Limits = FAST) -> JsCodec:
    spec = load_spec(path)
    return JsCodec(spec.source, spec.name, limits)


# conventions -------------------------------------------------------------------------------------------------
def test_tts_decode_uplink_with_normalized_output():
    c = codec(REPO / "acme" / "th-sensor-codec.yaml")
    assert c.convention == "decodeUplink" and c.normalizes
    raw, norm = c.decode_uplink(TH, 1, datetime(2026, 3, 1, tzinfo=UTC))
    assert raw == {"data": {"temperature": 23.1, "humidity": 50, "battery": 3.6, "co2": 450}, "warnings": []}
    assert norm == {"data": {"air": {"temperature": 23.1, "relativeHumidity": 50, "co2": 450}}}


def test_tts_recv_time_is_a_date():
    c = codec(REPO / "acme" / "th-sensor.js")
    raw, _ = c.decode_uplink(b"\x01\x00", 2, datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    assert raw["data"] == {"valve": "on", "manual": "no", "seen": "2026-03-01T12:00:00.000Z"}


def test_tts_downlinks():
    c = codec(REPO / "acme" / "th-sensor.js")
    assert c.encode_downlink({"valve": "on"}) == {"bytes": [1], "fPort": 2}
    assert c.decode_downlink(b"\x00", 2) == {"data": {"valve": "off"}}
    assert c.encode_downlink({"valve": "ajar"})["errors"] == ["unknown valve state ajar"]


def test_chirpstack_v4_decode_uplink():
    c = codec(REPO / "riverco" / "level.js")
    raw, norm = c.decode_uplink(bytes.fromhex("05dc04d2"), 10)
    assert raw == {"data": {"level": 1.5, "temperature": 12.34, "status": {"ok": True, "source": "radar"}}}
    assert norm is None


def test_legacy_ttn_decoder():
    c = codec(REPO / "oldco" / "pulse.js")
    assert c.convention == "Decoder"
    assert c.decode_uplink(bytes([1, 44, 87]), 3)[0] == {"data": {"pulses": 300, "batteryLevel": 87}}


def test_legacy_chirpstack_v3_decode_with_variables():
    c = codec(REPO / "oldco" / "gauge.js")
    assert c.convention == "Decode"
    assert c.decode_uplink(bytes([0, 123]), 1, variables={"offset_cm": "7"})[0] == {
        "data": {"level_cm": 130, "flags": 0}}


def test_chirpstack_profile_export():
    c = codec(CODECS / "chirpstack" / "radar-level-gauge.json")
    assert c.name == "Radar level gauge"
    assert c.decode_uplink(bytes.fromhex("05dc04d2"), 10)[0]["data"]["water_cm"] == 150


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 255))
def test_no_payload_crashes_the_process(payload, f_port):
    with contextlib.suppress(DecodeError):
        JsDecoder(_th())(payload, f_port)


_TH: list[JsCodec] = []


def _th() -> JsCodec:
    if not _TH:
        _TH.append(codec(REPO / "acme" / "th-sensor.js"))
    return _TH[0]


def test_nul_and_high_bytes_cross_intact():
    c = JsCodec("function Decoder(b, p) { return {bytes: b}; }", "echo")
    payload = bytes(range(256))
    assert c.decode_uplink(payload, 1)[0]["data"]["bytes"] == list(payload)


# failure modes ---------------------------------------------------------------------------------------------
def test_a_throwing_codec_fails_that_call_only():
    c = codec(CODECS / "single" / "throws.js")
    with pytest.raises(CodecError, match=r"threw Error: bad header 0xff"):
        c.decode_uplink(b"\xff", 1)
    assert c.decode_uplink(b"\x10", 1)[0] == {"data": {"temperature": 16}}


def test_an_endless_loop_is_stopped_by_the_time_limit():
    c = codec(CODECS / "single" / "loop.js")
    with pytest.raises(CodecError, match=r"time limit exceeded \(50 ms\)"):
        c.decode_uplink(b"\x01", 99)
    assert c.decode_uplink(b"\x07", 1)[0] == {"data": {"temperature": 7}}


def test_unbounded_allocation_is_stopped_by_the_memory_limit():
    c = codec(CODECS / "single" / "bomb.js")
    with pytest.raises(CodecError, match=r"memory limit exceeded \(16 MB\)"):
        c.decode_uplink(b"\x01", 99)
    assert c.decode_uplink(b"\x07", 1)[0] == {"data": {"temperature": 7}}


def test_runaway_recursion_is_stopped_by_the_stack_limit():
    c = codec(CODECS / "single" / "recursion.js")
    with pytest.raises(CodecError, match=r"stack limit exceeded \(128 KB\)"):
        c.decode_uplink(b"\x01", 1)


def test_wrong_return_shapes_are_decode_errors():
    d = JsDecoder(codec(CODECS / "single" / "shape.js"))
    with pytest.raises(DecodeError, match=r"returned int, expected an object"):
        d(b"\x01", 1)
    with pytest.raises(DecodeError, match=r"returned data of type list"):
        d(b"\x01", 2)
    with pytest.raises(DecodeError, match=r"returned NoneType"):
        d(b"\x01", 3)
    assert d(b"\x01", 4) == []


def test_codec_errors_are_decode_errors():
    with pytest.raises(DecodeError, match=r"^expected 7 bytes, got 2$"):
        JsDecoder(_th())(b"\x00\xe7", 1)


def test_a_syntax_error_is_found_at_load():
    with pytest.raises(CodecLoadError, match=r"cannot load: threw SyntaxError"):
        codec(CODECS / "single" / "syntax.js")


def test_a_codec_without_entry_point_is_refused():
    c = codec(CODECS / "single" / "nothing.js")
    with pytest.raises(CodecLoadError, match=r"none of decodeUplink, Decoder, Decode"):
        c.decode_uplink(b"\x01", 1)


def test_the_sandbox_has_no_file_network_or_process_access():
    c = codec(CODECS / "single" / "sandbox.js")
    data = c.decode_uplink(b"\x01", 1)[0]["data"]
    assert data == {"std": "undefined", "os": "undefined", "require": "undefined", "process": "undefined",
                    "fetch": "undefined", "XMLHttpRequest": "undefined", "imported": "pending"}


def test_each_thread_gets_its_own_runtime():
    c = _th()
    results: list[object] = []

    def work() -> None:
        results.append(c.decode_uplink(TH, 1)[0]["data"]["co2"])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [450] * 4


# mapping -----------------------------------------------------------------------------------------------------
def test_normalized_output_gives_the_quantities_and_the_rest_stays_attributes():
    readings = dict(JsDecoder(_th())(TH, 1))
    assert readings["air.temperature"] == pytest.approx(23.1)
    assert readings["air.humidity"] == 50 and readings["air.co2"] == 450
    # decoded fields not in the normalized output are kept, not dropped (and not guessed as quantities)
    assert readings["temperature"] == pytest.approx(23.1)
    # a decoded field named like a catalogue key is not taken for it: the codec's battery is in volts
    assert readings["decoded.battery"] == 3.6 and "battery" not in readings


def test_profile_table_maps_decoded_fields_without_normalized_output():
    d = JsDecoder(codec(REPO / "riverco" / "level.js"), {"level": FieldMap("water.level")})
    readings = dict(d(bytes.fromhex("05dc04d2"), 10))
    assert readings["water.level"] == 1.5
    assert readings["air.temperature"] == 12.34  # a common vendor name
    assert readings["status.source"] == "radar" and readings["status.ok"] is True


def test_warnings_are_kept_as_an_attribute():
    readings = dict(JsDecoder(_th())(bytes.fromhex("ff9c500bb81770"), 1))
    assert readings["codec.warnings"] == "co2 out of range"
