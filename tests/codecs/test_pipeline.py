"""End to end: ChirpStack uplinks of devices whose codec is vendor JavaScript, through a real Pipeline into DuckDB."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from clapas.codecs.engine import Limits
from clapas.codecs.library import LIBRARY
from clapas.config import PipelineSettings, ProfileSettings
from clapas.decoders.chirpstack_object import FieldMap
from clapas.pipeline import Pipeline
from clapas.store.base import open_store
from tests.helpers import T0, as_message, up_event

CODECS = Path(__file__).parents[1] / "fixtures" / "codecs"
TH = bytes.fromhex("00e7640e1001c2")  # 23.1 °C, 50 %RH, 3.6 V, 450 ppm


@pytest.fixture
def store(tmp_path):
    s = open_store(f"duckdb:///{tmp_path / 'city.duckdb'}")
    yield s
    s.close()


@pytest.fixture(autouse=True)
def library():
    LIBRARY.configure(str(CODECS / "repo"), str(CODECS / "chirpstack"),
                      Limits(time_limit_ms=50, memory_limit_mb=16, stack_limit_kb=128))
    yield LIBRARY
    LIBRARY.configure()


def run(store, messages, profiles=None):
    p = Pipeline(store, PipelineSettings(batch_size=2), profiles=profiles)
    p.submit_many(messages)
    p.close()
    return store.counts()


def test_profile_with_a_js_codec_stores_its_values(store, samples):
    profiles = {"TH-1": ProfileSettings(codec="acme/th-sensor", kind="indoor_climate")}
    ev = up_event(samples, eui="0a0a0a0a0a0a0a0a", payload=TH, tags={}, profile="TH-1")
    counts = run(store, [as_message(ev)], profiles)
    assert (counts["stored"], counts["quarantined"]) == (1, 0)
    latest = {r["quantity"]: r["value"] for r in store.latest("0a0a0a0a0a0a0a0a")}
    assert latest == {"air.temperature": pytest.approx(23.1), "air.humidity": 50.0, "air.co2": 450.0}
    dev = store.device("0a0a0a0a0a0a0a0a")
    assert dev["kind"] == "indoor_climate"


def test_chirpstack_profile_export_and_codec_tag(store, samples):
    profiles = {"Radar level gauge": ProfileSettings(fields={"water_cm": FieldMap("water.level", scale=0.01)})}
    a = up_event(samples, eui="0b0b0b0b0b0b0b0b", payload=bytes.fromhex("05dc04d2"), tags={},
                 profile="Radar level gauge")
    b = up_event(samples, eui="0c0c0c0c0c0c0c0c", payload=bytes([1, 44, 87]), tags={"codec": "oldco/pulse"})
    b["fPort"] = 3
    counts = run(store, [as_message(a), as_message(b)], profiles)
    assert (counts["stored"], counts["quarantined"]) == (2, 0)
    assert {r["quantity"]: r["value"] for r in store.latest("0b0b0b0b0b0b0b0b")} == {
        "water.level": pytest.approx(1.5), "air.temperature": pytest.approx(12.34)}
    assert {r["quantity"]: r["value"] for r in store.latest("0c0c0c0c0c0c0c0c")} == {"battery": 87.0}


def test_runaway_and_throwing_codecs_quarantine_only_their_uplink(store, samples):
    loop, bomb, throws = (str(CODECS / "single" / f"{n}.js") for n in ("loop", "bomb", "throws"))
    msgs = []
    for i, (eui, codec, port, payload) in enumerate([
            ("0d0d0d0d0d0d0d01", loop, 99, b"\x01"),  # while(true){}
            ("0d0d0d0d0d0d0d01", loop, 1, b"\x15"),  # the next uplink of the same device
            ("0d0d0d0d0d0d0d02", bomb, 99, b"\x01"),  # allocates without end
            ("0d0d0d0d0d0d0d02", bomb, 1, b"\x16"),
            ("0d0d0d0d0d0d0d03", throws, 1, b"\xff"),
            ("0d0d0d0d0d0d0d03", throws, 1, b"\x17"),
            ("0d0d0d0d0d0d0d04", str(CODECS / "single" / "syntax.js"), 1, b"\x01")]):
        ev = up_event(samples, eui=eui, payload=payload, tags={"codec": codec}, f_cnt=i,
                      time=T0 + timedelta(minutes=i))
        ev["fPort"] = port
        msgs.append(as_message(ev))
    counts = run(store, msgs)
    assert (counts["stored"], counts["quarantined"]) == (3, 4)
    errors = {u["dev_eui"]: u["error"] for u in store.uplinks(status="quarantined")}
    assert errors["0d0d0d0d0d0d0d01"] == f"codec:{loop}: time limit exceeded (50 ms)"
    assert errors["0d0d0d0d0d0d0d02"] == f"codec:{bomb}: memory limit exceeded (16 MB)"
    assert errors["0d0d0d0d0d0d0d03"].startswith(f"codec:{throws}: threw Error: bad header 0xff")
    assert "cannot load: threw SyntaxError" in errors["0d0d0d0d0d0d0d04"]
    for eui, value in (("0d0d0d0d0d0d0d01", 21.0), ("0d0d0d0d0d0d0d02", 22.0), ("0d0d0d0d0d0d0d03", 23.0)):
        assert {r["quantity"]: r["value"] for r in store.latest(eui)} == {"air.temperature": value}
