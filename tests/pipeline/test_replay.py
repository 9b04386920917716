"""`clapas replay`: quarantined uplinks decoded after a fix, observations replaced and never duplicated."""

from __future__ import annotations

from datetime import timedelta

import pytest

from clapas.config import PipelineSettings, Settings
from clapas.decoders import DECODERS
from clapas.pipeline import Pipeline
from clapas.pipeline.replay import replay
from clapas.store.base import open_store
from tests.helpers import T0, as_message, progress_lines, sample, up_event


@pytest.fixture
def store(tmp_path):
    s = open_store(f"duckdb:///{tmp_path / 'city.duckdb'}")
    yield s
    s.close()


def ingest(store, messages):
    p = Pipeline(store, PipelineSettings(batch_size=4))
    p.submit_many(messages)
    p.close()


def test_replay_after_decoder_fix(store, samples, monkeypatch):
    msgs = [as_message(up_event(samples, f_cnt=i, payload=bytes([i]), tags={"decoder": "meter_v2"},
                                time=T0 + timedelta(hours=i))) for i in range(6)]
    msgs.append(as_message(sample(samples, "join"), "join"))
    ingest(store, msgs)
    assert store.counts()["quarantined"] == 6

    monkeypatch.setitem(DECODERS, "meter_v2", lambda payload, port: [("water.volume", payload[0] * 1.0)])
    result = replay(store, Settings(), statuses=("quarantined",))
    assert result["replayed"] == 6
    counts = store.counts()
    assert (counts["stored"], counts["quarantined"], counts["observations"]) == (7, 0, 6)

    # a second fix changes the values: replaying everything replaces them, nothing is added twice
    monkeypatch.setitem(DECODERS, "meter_v2", lambda payload, port: [("water.volume", payload[0] * 10.0)])
    replay(store, Settings())
    counts = store.counts()
    assert (counts["stored"], counts["observations"]) == (7, 6)
    points = store.observations("0101010101010101", "water.volume", T0, T0 + timedelta(days=1))
    assert [p["value"] for p in points] == [0, 10, 20, 30, 40, 50]
    assert len(store.device_events("0101010101010101")) == 1  # the join was not replayed into a second event


def test_replay_of_a_broken_decoder_quarantines_again(store, samples, monkeypatch):
    monkeypatch.setitem(DECODERS, "flaky", lambda payload, port: [("air.temperature", 20.0)])
    ingest(store, [as_message(up_event(samples, tags={"decoder": "flaky"}))])
    monkeypatch.setitem(DECODERS, "flaky", lambda payload, port: [][1])
    replay(store, Settings())
    counts = store.counts()
    assert (counts["stored"], counts["quarantined"], counts["observations"]) == (0, 1, 0)
    assert "flaky failed: IndexError" in store.uplinks(status="quarantined")[0]["error"]


def test_replay_reports_its_progress(store, samples, monkeypatch, caplog, capsys):
    """Without a terminal, a log line per step (interval 0 here) with the count; forced onto a terminal, a bar."""
    import logging

    monkeypatch.setitem(DECODERS, "meter_v2", lambda payload, port: [("water.volume", payload[0] * 1.0)])
    ingest(store, [as_message(up_event(samples, f_cnt=i, payload=bytes([i]), tags={"decoder": "meter_v2"},
                                       time=T0 + timedelta(hours=i))) for i in range(6)])
    settings = Settings(pipeline=PipelineSettings(batch_size=2))
    with caplog.at_level(logging.INFO, logger="clapas.progress"):
        result = replay(store, settings, progress=True, terminal=False, every_s=0.0)
    lines = progress_lines(caplog)
    assert result["replayed"] == 6
    assert [line.split(",")[0] for line in lines[:-1]] == ["replay: 2 messages", "replay: 4 messages",
                                                           "replay: 6 messages"]
    assert "33 % done" in lines[0] and "messages/s" in lines[0] and "left" in lines[0]
    assert lines[-1].startswith("replay: 6 messages in ")
    replay(store, settings, progress=True, terminal=True)
    err = capsys.readouterr().err
    assert "replay" in err and "6 messages" in err and "100%" in err
    assert store.counts()["observations"] == 6
