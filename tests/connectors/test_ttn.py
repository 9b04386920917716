"""The Things Stack v3 uplink, from the reference sample."""

from __future__ import annotations

import json

import pytest

from clapas.connectors import ttn
from clapas.connectors.chirpstack import ParseError
from tests.helpers import T0


def _msg(raw: bytes):
    return ttn.message(raw, T0, topic="v3/app1@tenant1/devices/dev1/up")


def test_sample_uplink(samples):
    up = ttn.parse(_msg((samples / "ttn" / "uplink.json").read_bytes()))
    assert up.dev_eui == "0004a30b001c0530"
    assert up.payload == bytes.fromhex("8241de")
    assert up.f_cnt == 1
    assert up.rssi == -35 and up.snr == 5 and up.sf == 7
    assert up.obj == {"temperature": 1.0, "luminosity": 0.64}
    assert up.info.name == "dev1" and up.info.profile == "the-things-products/the-things-uno"
    assert up.info.tags == {"key1": "value1", "key2": "value2"}
    assert up.dedup_key == "as:up:01E0WZGT6Y7657CPFPE5WEYDSQ"


def test_missing_dev_eui(samples):
    doc = json.loads((samples / "ttn" / "uplink.json").read_text())
    del doc["end_device_ids"]["dev_eui"]
    with pytest.raises(ParseError, match=r"end_device_ids\.dev_eui: missing"):
        ttn.parse(_msg(json.dumps(doc).encode()))


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{1,2", "invalid The Things Stack uplink JSON"),
    (b"[1,2", "a JSON array where a The Things Stack uplink"),
    (b"", "empty message"),
])
def test_garbage(raw, reason):
    with pytest.raises(ParseError, match=reason):
        ttn.parse(_msg(raw))


@pytest.mark.parametrize(("where", "value", "reason"), [
    ("received_at", None, "received_at: null"),
    ("uplink_message.received_at", None, "uplink_message.received_at: null"),
    ("uplink_message.received_at", "2020-08-11T12:00:00", "timezone"),
    ("uplink_message.received_at", "1970-01-01T00:00:00Z", "before 2015"),
    ("end_device_ids.device_id", "d" * 100_000, "deviceName: 100000 characters"),
    ("uplink_message.attributes", {f"k{i}": "v" for i in range(1000)}, "tags: 1000 tags"),
    ("uplink_message.frm_payload", "A" * 400, "frm_payload: payload of 300 bytes exceeds the LoRaWAN maximum"),
])
def test_absurd_fields_are_refused(samples, where, value, reason):
    doc = json.loads((samples / "ttn" / "uplink.json").read_text())
    *parents, leaf = where.split(".")
    node = doc
    for p in parents:
        node = node[p]
    node[leaf] = value
    with pytest.raises(ParseError, match=reason):
        ttn.parse(_msg(json.dumps(doc).encode()))
