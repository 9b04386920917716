"""The pipeline end to end on a real DuckDB store: journal, dedupe, decode, quarantine, accounting."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from clapas.config import PipelineSettings, ProfileSettings
from clapas.connectors import chirpstack
from clapas.decoders import DECODERS
from clapas.decoders.chirpstack_object import FieldMap
from clapas.model import Message
from clapas.pipeline import Pipeline
from clapas.store.base import open_store
from tests.helpers import T0, as_message, sample, up_event

LPP = bytes.fromhex("03670110056700FF")  # Cayenne LPP documentation: 27.2 °C on channel 3, 25.5 °C on channel 5
LPP_TH = bytes.fromhex("0167011002682A")  # 27.2 °C and 21 %RH
LPP_TAGS = {"decoder": "cayenne_lpp"}


@pytest.fixture
def store(tmp_path):
    s = open_store(f"duckdb:///{tmp_path / 'city.duckdb'}")
    yield s
    s.close()


def run(store, messages, **kw):
    p = Pipeline(store, PipelineSettings(batch_size=kw.pop("batch_size", 3)), **kw)
    p.submit_many(messages)
    p.close()
    return store.counts()


def test_decoded_uplink_becomes_observations(store, samples):
    ev = up_event(samples, payload=LPP_TH, tags={"decoder": "cayenne_lpp", "kind": "weather_station",
                                                 "zone": "ecusson", "lat": "43.61", "lon": "3.87"})
    counts = run(store, [as_message(ev)])
    assert counts["stored"] == 1 and counts["observations"] == 2
    latest = {r["quantity"]: r["value"] for r in store.latest("0101010101010101")}
    assert latest == {"air.temperature": pytest.approx(27.2), "air.humidity": pytest.approx(21.0)}
    dev = store.device("0101010101010101")
    assert (dev["kind"], dev["zone"], dev["lat"], dev["lon"]) == ("weather_station", "ecusson", 43.61, 3.87)
    assert dev["last_rssi"] == -36 and dev["name"] == "Test device"


def test_every_message_is_accounted_for(store, samples):
    good = [as_message(up_event(samples, f_cnt=i, payload=LPP_TH, tags={"decoder": "cayenne_lpp"},
                                time=T0 + timedelta(minutes=i))) for i in range(10)]
    repeated = [good[0], good[3]]
    topic = "application/x/device/0202020202020202/event/up"
    bad = [
        chirpstack.message(b"{bad json", T0, topic=topic),
        chirpstack.message(b'{"deviceInfo": {"devEui": "0202020202020202"}, "fPort": "one"}', T0, topic=topic),
        as_message(up_event(samples, eui="0303030303030303", tags={})),  # no decoder
        as_message(up_event(samples, eui="0404040404040404", payload=b"\x03\x67\x01",
                            tags={"decoder": "cayenne_lpp"})),  # truncated
        as_message(up_event(samples, eui="0505050505050505", payload=b"\x01" * 300,
                            tags={"decoder": "cayenne_lpp"})),  # larger than any LoRaWAN frame
        chirpstack.message(b"{" + b" " * 300_000 + b"}", T0, topic=topic),  # huge
        as_message(up_event(samples, eui="0606060606060606", tags={"decoder": "no_such_decoder"})),
        chirpstack.message(b"\x0a\x02\xff", T0, topic=topic),  # broken protobuf
    ]
    counts = run(store, [*good[:5], *bad, *repeated, *good[5:]])
    assert counts["stored"] == 10
    assert counts["duplicate"] == 2
    assert counts["quarantined"] == len(bad)
    assert counts["observations"] == 20
    errors = {u["dev_eui"]: u["error"] for u in store.uplinks(status="quarantined")}
    assert "no decoder for this device" in errors["0303030303030303"]
    assert "truncated" in errors["0404040404040404"]
    assert "exceeds the LoRaWAN maximum" in errors["0505050505050505"]
    assert "unknown decoder 'no_such_decoder'" in errors["0606060606060606"]
    quarantined = store.uplinks(status="quarantined", limit=100)
    assert all(u["error"] for u in quarantined)
    assert any("journaled truncated" in u["error"] and u["raw_size"] == 256 * 1024 for u in quarantined)
    # topic EUI is kept even when the body cannot be parsed
    assert sum(1 for u in quarantined if u["dev_eui"] == "0202020202020202") == 4


def test_a_crashing_decoder_quarantines_only_its_uplink(store, samples, monkeypatch):
    def boom(payload: bytes, f_port: int):
        raise ZeroDivisionError("bug in decoder")

    monkeypatch.setitem(DECODERS, "boom", boom)
    msgs = [as_message(up_event(samples, eui="0707070707070707", tags={"decoder": "boom"})),
            as_message(up_event(samples, payload=LPP, tags={"decoder": "cayenne_lpp"}))]
    counts = run(store, msgs)
    assert (counts["stored"], counts["quarantined"]) == (1, 1)
    assert store.uplinks(status="quarantined")[0]["error"] == "boom failed: ZeroDivisionError: bug in decoder"


def test_fcnt_dedupe_without_deduplication_id(store, samples):
    ev = up_event(samples, payload=LPP_TH, tags={"decoder": "cayenne_lpp"})
    ev["deduplicationId"] = ""
    again = dict(ev)
    other = dict(ev, fCnt=2, time=(T0 + timedelta(minutes=1)).isoformat())
    counts = run(store, [as_message(ev), as_message(again), as_message(other)])
    assert (counts["stored"], counts["duplicate"]) == (2, 1)


def test_dedupe_survives_a_restart(store, samples):
    ev = up_event(samples, payload=LPP_TH, tags={"decoder": "cayenne_lpp"})
    run(store, [as_message(ev)])
    counts = run(store, [as_message(ev)])  # a new pipeline, as after a restart, gets the same delivery again
    assert (counts["stored"], counts["duplicate"], counts["observations"]) == (1, 1, 2)


def test_profile_decoder_and_object_mapping(store, samples):
    profiles = {
        "LHT": ProfileSettings(decoder="cayenne_lpp", kind="indoor_climate"),
        "Gauge": ProfileSettings(decoder="chirpstack_object", kind="water_level",
                                 fields={"h_cm": FieldMap("water.level", scale=0.01)}),
    }
    a = up_event(samples, eui="0808080808080808", payload=LPP_TH, tags={}, profile="LHT")
    b = up_event(samples, eui="0909090909090909", tags={}, profile="Gauge", obj={"h_cm": 123, "status": "ok"})
    run(store, [as_message(a), as_message(b)], profiles=profiles)
    assert store.device("0808080808080808")["kind"] == "indoor_climate"
    assert {r["quantity"]: r["value"] for r in store.latest("0909090909090909")} == {"water.level": 1.23}
    assert store.device("0909090909090909")["attributes"] == {"status": "ok"}


def test_pulse_and_level_derivations(store, samples):
    # a rain gauge counting tips (Cayenne digital input on ch 1 remapped to counter.count), 0.2 mm per tip
    profiles = {"Rain": ProfileSettings(decoder="cayenne_lpp",
                                        remap={"digital_input": FieldMap("counter.count")})}
    ev = up_event(samples, payload=bytes.fromhex("01000b"), profile="Rain",
                  tags={"pulse_quantity": "rain.amount", "pulse_factor": "0.2"})
    run(store, [as_message(ev)], profiles=profiles)
    latest = {r["quantity"]: r["value"] for r in store.latest("0101010101010101")}
    assert latest == {"counter.count": 11, "rain.amount": pytest.approx(2.2)}


def test_status_and_events(store, samples):
    msgs = [as_message(sample(samples, e), e) for e in ("status", "join", "log", "location")]
    counts = run(store, msgs)
    assert counts["stored"] == 4
    assert {r["quantity"] for r in store.latest("0101010101010101")} == {"battery", "radio.margin"}
    assert [e["event"] for e in store.device_events("0101010101010101")] == ["location", "log", "join"]


def test_unknown_source_is_quarantined(store):
    m = Message(source="carrier-pigeon", event="up", fmt="json", raw=b"{}", received_at=T0)
    counts = run(store, [m])
    assert counts["quarantined"] == 1
    assert "no parser for message source" in store.uplinks()[0]["error"]


def test_journal_keeps_raw_bytes(store, samples):
    ev = up_event(samples, payload=LPP, tags={"decoder": "cayenne_lpp"})
    m = as_message(ev)
    run(store, [m])
    [row] = next(store.iter_journal())
    assert row.raw == m.raw and json.loads(row.raw)["deviceInfo"]["devEui"] == "0101010101010101"


def test_a_partial_batch_is_written_when_input_goes_quiet(store, samples):
    p = Pipeline(store, PipelineSettings(batch_size=1000, flush_interval_s=3600))
    p.submit(as_message(up_event(samples, payload=LPP_TH, tags={"decoder": "cayenne_lpp"})))
    p.flush_if_due()  # a message arrived since the last tick: keep batching
    assert p.pending == 1 and store.counts()["stored"] == 0
    p.flush_if_due()  # nothing new for a whole tick: write now rather than wait the hour
    assert p.drain(5) and store.counts()["stored"] == 1
    p.close()


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_a_commit_whose_answer_was_lost_is_not_written_twice(tmp_path, samples, request, backend):
    """The connection drops after the server took the COMMIT and before its answer (a database restart at the
    wrong moment): the writer sees a failure, but the batch is in the store; the retry must not store it again."""
    url = f"duckdb:///{tmp_path / 'c.duckdb'}" if backend == "duckdb" else request.getfixturevalue("pg_url")
    real = open_store(url)
    lost = []

    class AnswerLost:  # the real store; its first write commits, then says the connection dropped
        def __getattr__(self, name):
            return getattr(real, name)

        def write(self, batch):
            real.write(batch)
            if not lost:
                lost.append(len(batch))
                raise ConnectionError("server closed the connection unexpectedly")

    events = [as_message(up_event(samples, eui="0303030303030303", payload=LPP_TH, f_cnt=i, tags=LPP_TAGS,
                                  time=T0 + timedelta(minutes=i))) for i in range(5)]
    events.append(as_message({**sample(samples, "log"), "time": T0.isoformat()}, event="log"))  # no dedup id
    p = Pipeline(AnswerLost(), PipelineSettings(batch_size=100, retry_max_s=0.05))  # type: ignore[arg-type]
    p.submit_many(events)
    p.close()
    try:
        assert lost == [6] and p.write_errors == 1  # the failure happened…
        counts = real.counts()
        assert counts["stored"] == 6 and counts["observations"] == 10  # …and nothing was stored twice
    finally:
        real.close()
