"""The detectors' saved state without pickle (`clapas.detectors.state_codec`): every detector's state survives a
save and a load exactly (same bytes saved again, same alerts afterwards), and saved bytes can build nothing but the
detector's own classes."""

from __future__ import annotations

import pickle

import msgspec
import pytest

from clapas.alerts.wiring import build_detectors
from clapas.config import Settings
from clapas.detectors.base import DetectorRunner, MemorySink, Registry
from clapas.detectors.state import StateKeeper
from clapas.detectors.state_codec import TreeCodec
from clapas.pipeline.ingest import Pipeline
from clapas.store.base import open_store
from tests.detectors.state_chain import scenario


def _runner(store) -> DetectorRunner:
    return DetectorRunner(build_detectors(Settings()), MemorySink(), Registry(store))


def test_every_detectors_state_is_saved_and_loaded_exactly(tmp_path) -> None:
    city, msgs, _ = scenario()
    store = open_store(f"duckdb:///{tmp_path}/s.duckdb")
    store.upsert_zones(city.zones)
    store.upsert_devices(city.registry_devices())
    first = _runner(store)
    pipeline = Pipeline(store, on_commit=first.on_commit)
    half = len(msgs) * 2 // 3  # mid-heatwave and mid-storm: every detector holds open episodes
    pipeline.submit_many(list(msgs[:half]))
    pipeline.drain()
    rows = StateKeeper(first.detectors).snapshot(first.watermark, first.uplinks)
    assert {r[0] for r in rows} >= {"water", "heat", "flood", "air", "museum", "runner"}
    second = _runner(store)
    assert StateKeeper(second.detectors).load(rows) is not None
    second.watermark, second.uplinks = first.watermark, first.uplinks
    again = StateKeeper(second.detectors).snapshot(second.watermark, second.uplinks)
    assert sorted(again) == sorted(rows)
    # both go on with the rest of the stream: the same transitions
    first.sink.transitions.clear()
    second.sink.open = dict(first.sink.open)  # the alert table's memory (the sink's, not the detectors')
    both = [first, second]
    pipeline.on_commit = lambda batch: [r.on_commit(batch) for r in both]
    pipeline.submit_many(list(msgs[half:]))
    pipeline.close()
    store.close()
    assert first.sink.transitions, "the rest of the stream opens or clears alerts"
    assert second.sink.transitions == first.sink.transitions


def test_saved_bytes_build_only_the_detectors_classes() -> None:
    codec = TreeCodec(["clapas.detectors.heat"])
    enc = msgspec.msgpack.Encoder()
    for name in ("os:system", "builtins:eval", "subprocess:Popen", "clapas.store.base:Store"):
        hostile = enc.encode([msgspec.msgpack.Ext(5, enc.encode([name, "echo pwned"]))])
        with pytest.raises(ValueError, match="not a class of the detector's modules"):
            codec.load_row(hostile)
    with pytest.raises(msgspec.DecodeError):  # a pickle is not state: refused, never run
        codec.load_row(pickle.dumps({"x": 1}))
    with pytest.raises(TypeError, match="cannot encode"):
        codec.dump_row([object()])
