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
    with pytest.raises(ParseError, match="has no dev_eui"):
        ttn.parse(_msg(json.dumps(doc).encode()))


def test_garbage():
    with pytest.raises(ParseError, match="invalid The Things Stack uplink JSON"):
        ttn.parse(_msg(b"[1,2"))
