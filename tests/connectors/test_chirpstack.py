"""ChirpStack v4 integration events, read from the reference samples in JSON and in protobuf."""

from __future__ import annotations

import contextlib
import json
import re

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


# --- hostile input: every reason names what is wrong (issue 9) --------------------------------------------------
def _up_with(samples, **changes) -> bytes:
    ev = sample(samples, "up")
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = ev
        for p in parents:
            node = node[p]
        node[leaf] = value
    return json.dumps(ev).encode()


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "empty message (0 bytes)"),
    (b" \r\n\t", "empty message (4 bytes)"),
    (b"[]", "a JSON array where a ChirpStack up event"),
    (b'  [{"deviceInfo": {}}]', "a JSON array where"),
    (b'"up"', "a JSON string where"),
    (b"null", "JSON null where"),
    (b"12", "a JSON number where"),
    (b"true", "a JSON boolean where"),
])
def test_not_an_object_is_said_so_not_a_protobuf_error(raw, reason):
    m = chirpstack.message(raw, T0, topic="application/x/device/0101010101010101/event/up")
    assert m.fmt == "json"
    with pytest.raises(ParseError, match=re.escape(reason)):
        chirpstack.parse(m)


def test_json_with_a_byte_order_mark_is_json(samples):
    m = chirpstack.message(b"\xef\xbb\xbf" + json.dumps(sample(samples, "up")).encode(), T0, event="up")
    assert m.fmt == "json" and chirpstack.parse(m).dev_eui == "0101010101010101"


@pytest.mark.parametrize(("changes", "reason"), [
    ({"time": None}, "time: null"),
    ({"time": "2022-07-18T09:34:15"}, "timezone component - at `$.time`"),
    ({"time": "1980-01-06T00:00:00Z"}, "time: 1980-01-06T00:00:00+00:00 is before 2015-01-01"),
    ({"time": "2026-03-05T00:00:00Z"}, "days after the message was received"),
    ({"deviceInfo__deviceName": "x" * 100_000}, "deviceInfo.deviceName: 100000 characters, more than the 100"),
    ({"deviceInfo__deviceProfileName": "p" * 101}, "deviceInfo.deviceProfileName: 101 characters"),
    ({"deviceInfo__tags": {f"t{i}": "v" for i in range(10_000)}}, "deviceInfo.tags: 10000 tags"),
    ({"deviceInfo__tags": {"zone": "z" * 5000}}, "deviceInfo.tags['zone']: 5000 characters"),
    ({"deviceInfo__devEui": "x" * 100_000}, "deviceInfo.devEui: not a DevEUI"),
    ({"data": "A" * 400_000}, "data: payload of 300000 bytes exceeds the LoRaWAN maximum (242 bytes)"),
    ({"data": "***"}, "Invalid base64 encoded string - at `$.data`"),
    ({"deduplicationId": "d" * 1000}, "deduplicationId: 1000 characters"),
    ({"object": {"a": list(range(6000))}}, "object: more than 5000 values"),
])
def test_absurd_fields_are_refused_naming_the_field(samples, changes, reason):
    m = chirpstack.message(_up_with(samples, **changes), T0, event="up")
    with pytest.raises(ParseError, match=re.escape(reason)):
        chirpstack.parse(m)


@pytest.mark.parametrize("depth", [40, 900, 5000])
def test_deep_nesting_is_refused(samples, depth):
    raw = _up_with(samples)[:-1] + b', "object": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
    with pytest.raises(ParseError, match=r"object: nested more than 32 levels|nested too deep"):
        chirpstack.parse(chirpstack.message(raw, T0, event="up"))


@pytest.mark.parametrize("event", ["join", "log"])
def test_deep_nesting_in_device_events_is_refused(samples, event):
    ev = sample(samples, event)
    raw = json.dumps(ev).encode()[:-1] + b', "extra": ' + b"[" * 200 + b"]" * 200 + b"}"
    with pytest.raises(ParseError, match=f"{event} event: nested more than 32 levels"):
        chirpstack.parse(chirpstack.message(raw, T0, event=event))


@pytest.mark.parametrize(("raw", "reason"), [
    (bytes(range(256)) * 4, "invalid ChirpStack up protobuf"),
    (b"\x0a\x03abc", "no deviceInfo"),  # parses (a deduplication id) but is no event
    (b"\x12\x06\x08\xff\xff\xff\xff\x7f", "no deviceInfo"),
])
def test_protobuf_garbage_is_named(raw, reason):
    m = chirpstack.message(raw, T0, event="up")
    assert m.fmt == "protobuf"
    with pytest.raises(ParseError, match=reason):
        chirpstack.parse(m)


def test_protobuf_absurd_fields_are_refused(samples):
    ev = sample(samples, "up")
    ev["deviceInfo"]["deviceName"] = "n" * 100_000
    with pytest.raises(ParseError, match=r"deviceInfo\.deviceName: 100000 characters"):
        chirpstack.parse(chirpstack.message(to_protobuf(ev, "up"), T0, event="up"))
    ev = sample(samples, "up") | {"time": "9999-12-31T23:59:59Z"}
    with pytest.raises(ParseError, match="time: 9999-12-31"):
        chirpstack.parse(chirpstack.message(to_protobuf(ev, "up"), T0, event="up"))
