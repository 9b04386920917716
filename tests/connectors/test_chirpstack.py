"""ChirpStack v4 integration events, read from the reference samples in JSON and in protobuf."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clapas.connectors import chirpstack
from clapas.connectors.chirpstack import ParseError
from tests.helpers import T0, as_message, sample, to_protobuf, up_event

EVENTS = ["up", "status", "join", "ack", "txack", "log", "location"]


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_up_sample_fields(samples, fmt):
    m = as_message(sample(samples, "up"), fmt=fmt)
    assert m.fmt == fmt
    up = chirpstack.parse(m)
    assert up.dev_eui == "0101010101010101"
    assert up.payload == b"\xaa"
    assert up.f_port == 1
    assert up.rssi == -36 and up.snr == 10.5 and up.sf == 11 and up.gateways == 1
    assert up.dedup_key == "3ac7e3c4-4401-4b8d-9386-a5c902f9202d"
    assert up.time.isoformat() == "2022-07-18T09:34:15.775023+00:00"
    assert up.info.name == "Test device" and up.info.profile == "Test device-profile"
    assert up.info.tags == {"key": "value"}


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_status_carries_battery_and_margin(samples, fmt):
    up = chirpstack.parse(as_message(sample(samples, "status"), "status", fmt))
    assert up.event == "status"
    assert dict(up.values) == {"radio.margin": 10.0, "battery": pytest.approx(88.3)}


def test_status_on_external_power_has_no_battery(samples):
    ev = sample(samples, "status") | {"externalPowerSource": True}
    up = chirpstack.parse(as_message(ev, "status"))
    assert dict(up.values) == {"radio.margin": 10.0}


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
@pytest.mark.parametrize("event", ["join", "ack", "txack", "log", "location"])
def test_other_events_are_device_events(samples, event, fmt):
    up = chirpstack.parse(as_message(sample(samples, event), event, fmt))
    assert up.event == event
    assert up.dev_eui == "0101010101010101"
    assert "deviceInfo" not in up.event_data
    if event == "location":
        assert up.event_data["location"]["latitude"] == pytest.approx(37.344214)
    if event == "log":
        assert up.event_data["code"] == "UPLINK_MIC"


def test_object_is_kept(samples):
    ev = up_event(samples, obj={"temperature": 21.5, "nested": {"a": 1}})
    for fmt in ("json", "protobuf"):
        up = chirpstack.parse(as_message(ev, fmt=fmt))
        assert up.obj == {"temperature": 21.5, "nested": {"a": 1}}


def test_format_detection():
    assert chirpstack.detect_format(b'  {"a":1}') == "json"
    assert chirpstack.detect_format(b"\n$3ac7") == "protobuf"


def test_topic_gives_event_and_eui():
    assert chirpstack.event_from_topic("application/abc/device/0101010101010101/event/up") == (
        "up", "0101010101010101")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid ChirpStack up JSON"),
        (b'{"deviceInfo": {"devEui": 12}}', "invalid ChirpStack up JSON"),
        (b'{"deviceInfo": {"devEui": "zz"}}', "not a DevEUI"),
        (b'{"fCnt": 1}', "invalid ChirpStack up JSON"),
        (b'{"deviceInfo": {"devEui": "0101010101010101"}, "data": "***"}', "invalid ChirpStack up JSON"),
        (b"\x0a\xff\xff\xff", "invalid ChirpStack up protobuf"),
    ],
)
def test_malformed_messages_raise_readable_errors(raw, reason):
    m = chirpstack.message(raw, T0, topic="application/x/device/0101010101010101/event/up")
    with pytest.raises(ParseError, match=reason):
        chirpstack.parse(m)


def test_unknown_event_type():
    m = chirpstack.message(b"{}", T0, topic="application/x/device/0101010101010101/event/bogus")
    with pytest.raises(ParseError, match="unknown ChirpStack event type 'bogus'"):
        chirpstack.parse(m)


@given(st.binary(max_size=300), st.sampled_from(EVENTS))
def test_no_input_crashes_the_parser(raw, event):
    m = chirpstack.message(raw, T0, topic=f"application/x/device/0101010101010101/event/{event}")
    with contextlib.suppress(ParseError):
        chirpstack.parse(m)


def test_protobuf_round_trip_matches_json(samples):
    ev = sample(samples, "up")
    a = chirpstack.parse(as_message(ev, fmt="json"))
    b = chirpstack.parse(chirpstack.message(to_protobuf(ev, "up"), T0, event="up"))
    assert (a.dev_eui, a.payload, a.time, a.rssi, a.snr, a.sf) == (b.dev_eui, b.payload, b.time, b.rssi, b.snr, b.sf)
    assert json.loads(json.dumps(ev))["fPort"] == b.f_port
