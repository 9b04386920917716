"""Detector state saved as deltas (issue 9, migration 16): the water meters' windows of flows are saved as what they
gained and lost since the committed row, and folded back at load. After any committed batch (what a kill -9 between
batches leaves) the state loaded from the store is exactly the detectors' state in memory, on both stores, through
deltas, whole rows every `SNAPSHOT_EVERY` deltas and compactions."""

from __future__ import annotations

from array import array

import pytest

from clapas.alerts.wiring import build_detectors
from clapas.config import Settings
from clapas.detectors import state
from clapas.detectors.base import DetectorRunner, MemorySink, Registry
from clapas.detectors.state import StateKeeper, _slide
from clapas.pipeline.ingest import Pipeline
from clapas.store import detector_state
from clapas.store.base import open_store
from tests.detectors.state_chain import CHUNK, scenario


@pytest.fixture(params=["duckdb", "postgres"])
def url(request, tmp_path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path}/city.duckdb"
    return request.getfixturevalue("pg_url")


def _apply(old: bytes, cut: int, tail: bytes) -> bytes:
    return old[cut * 8:] + tail


@pytest.mark.parametrize("old, new", [
    ([1, 10, 2, 20], [1, 10, 2, 20, 3, 30]),  # appended
    ([1, 10, 2, 20, 3, 30], [3, 30, 4, 40]),  # cut at the front and appended
    ([1, 10, 2, 20], []),  # cleared
    ([1, 10, 2, 20], [5, 50]),  # cleared, then appended
    ([1, 10, 2, 20, 3, 30], [2, 21, 3, 30]),  # changed inside: not a slide
    ([0.0, 1.0], [0.0, 1.0, 2.0, 3.0]),
    ([1.0, 0.0], [1.0, -0.0, 2.0, 3.0]),  # equal as numbers, not as bits
    ([], [1.0, 2.0]),
])
def test_a_window_follows_from_the_committed_one_exactly(old, new) -> None:
    o, n = array("d", old).tobytes(), array("d", new).tobytes()
    cut, tail = _slide(o, n)
    assert 0 <= cut <= len(o) // 8
    assert _apply(o, cut, tail) == n


def _runner(store) -> DetectorRunner:
    return DetectorRunner(build_detectors(Settings()), MemorySink(), Registry(store))


def test_the_state_loaded_after_any_batch_is_the_state_in_memory(url, monkeypatch) -> None:
    monkeypatch.setattr(state, "SNAPSHOT_EVERY", 3)  # whole rows, deltas and compactions within the scenario
    monkeypatch.setattr(detector_state, "COMPACT_EVERY", 7)
    city, msgs, _ = scenario()
    store = open_store(url)
    try:
        store.upsert_zones(city.zones)
        store.upsert_devices(city.registry_devices())
        live = _runner(store)
        live.load_state(store)
        pipeline = Pipeline(store, detectors=live)
        deltas = 0
        for k, i in enumerate(range(0, len(msgs) * 3 // 4, CHUNK)):
            pipeline.submit_many(list(msgs[i:i + CHUNK]))
            pipeline.drain()  # committed: what a kill -9 now would leave
            deltas = max(deltas, store.sql("SELECT count(*) AS n FROM detector_state WHERE delta")[0]["n"])
            if k % 5 != 4:
                continue
            restarted = _runner(store)
            assert restarted.load_state(store)
            assert (restarted.watermark, restarted.uplinks, restarted.seq) == (live.watermark, live.uplinks, live.seq)
            expect = StateKeeper(live.detectors).snapshot(live.watermark, live.uplinks)
            got = StateKeeper(restarted.detectors).snapshot(restarted.watermark, restarted.uplinks)
            assert sorted(got) == sorted(expect), f"after batch {live.seq}"
        pipeline.close()
        assert deltas > 0  # the water meters' rows were deltas…
        most = store.sql("SELECT max(n) AS n FROM (SELECT count(*) AS n FROM detector_state "
                         "GROUP BY detector, subject) t")[0]["n"]
        assert most <= 3 + 7 + 1  # …and compactions kept the log short
    finally:
        store.close()
