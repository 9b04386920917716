"""The framework: live batches, a replay with other batch sizes and a backfill from the store give the same
detections; the sink keeps one open alert per (rule, subject); a failing sink never breaks the stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clapas.config import PipelineSettings
from clapas.detectors import CLEAR, OPEN, Detection, DetectorRunner, MemorySink, Registry
from clapas.detectors.base import run_observations
from clapas.detectors.water import WaterDetector
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.city import build_city
from clapas.simulator.incidents import select
from clapas.simulator.run import feed
from clapas.simulator.simulation import Simulation
from clapas.store import open_store

START = datetime(2026, 6, 1, tzinfo=UTC)


def _live(tmp_path, name, batch_size, city, incidents, end):
    store = open_store(f"duckdb:///{tmp_path / name}")
    store.upsert_zones(city.zones)
    store.upsert_devices(city.registry_devices())
    sink = MemorySink()
    runner = DetectorRunner([WaterDetector()], sink, Registry(store))
    pipeline = Pipeline(store, PipelineSettings(batch_size=batch_size), on_commit=runner.on_commit)
    feed(pipeline, Simulation(city, START, end, 5, incidents).messages(), batch_size=batch_size)
    pipeline.close()
    runner.finish(end.timestamp() + 86400)
    return store, sink


def _key(sink):
    """The transitions, in observation-time order (zone rules emit when the watermark passes a period, so their
    place in the emission order depends on batch boundaries; what they say does not)."""
    return sorted((d.at, d.rule, d.subject, d.state, repr(d.evidence)) for d in sink.transitions)


def test_live_replay_and_backfill_agree(tmp_path):
    city = build_city(5, 120)
    end = START + timedelta(days=6)
    incidents = select("scoring", city, START, end, 5)
    store, live = _live(tmp_path, "a.duckdb", 5000, city, incidents, end)
    _, small = _live(tmp_path, "b.duckdb", 37, city, incidents, end)
    assert _key(live) == _key(small)
    assert {d.rule for d in live.transitions} >= {"water.burst", "water.backflow", "water.continuous_flow"}
    rows = store.sql("SELECT o.time, d.eui, o.quantity_id, o.value FROM observations o "
                     "JOIN devices d ON d.id = o.device_id ORDER BY o.time, d.eui, o.quantity_id")
    backfill = MemorySink()
    runner = DetectorRunner([WaterDetector()], backfill, Registry(store))
    run_observations(runner, ((r["time"].astimezone(UTC), r["eui"], r["quantity_id"], r["value"]) for r in rows),
                     chunk=5003)
    runner.finish(end.timestamp() + 86400)
    assert _key(backfill) == _key(live)
    store.close()


def test_sink_keeps_one_open_alert_per_rule_and_subject():
    sink = MemorySink()
    t = datetime(2026, 1, 1, tzinfo=UTC)
    a = Detection("water.burst", "x", OPEN, t)
    sink.handle([a, Detection("water.burst", "x", OPEN, t + timedelta(hours=1)), Detection("water.burst", "y", CLEAR,
                                                                                           t)])
    assert sink.open == {("water.burst", "x"): a} and sink.transitions == [a]
    sink.handle([Detection("water.burst", "x", CLEAR, t + timedelta(hours=2))])
    assert sink.open == {} and len(sink.transitions) == 2


def test_a_failing_sink_does_not_stop_detection():
    class Broken:
        def handle(self, detections):
            raise RuntimeError("webhook down")

    reg = Registry(devices=[{"eui": "00000000000000a1", "kind": "water_meter", "zone": "z"}])
    runner = DetectorRunner([WaterDetector()], Broken(), reg)
    t = datetime(2026, 1, 1, tzinfo=UTC)
    runner.feed([(t, "00000000000000a1", 1, 1.0), (t + timedelta(hours=1), "00000000000000a1", 1, 0.9)])
    assert runner.uplinks == 2
