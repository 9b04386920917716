"""The simulator's messages: deterministic, time-ordered, real ChirpStack events that the pipeline stores whole."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from clapas.connectors.chirpstack import event_from_topic, message, parse
from clapas.model import DEVICE_KINDS
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.incidents import default_incidents
from clapas.simulator.run import feed
from clapas.simulator.simulation import Simulation
from clapas.store.base import open_store

from .conftest import take

START = datetime(2026, 3, 2, tzinfo=UTC)


def _sim(city, seed=1, days=1.0, fmt="json", **kw):
    end = START + timedelta(days=days)
    return Simulation(city, START, end, seed, default_incidents(city, START, end, seed), fmt=fmt, **kw)


def test_same_seed_same_messages(small_city):
    a = take(_sim(small_city).messages(), 3000)
    b = take(_sim(small_city).messages(), 3000)
    assert a == b
    c = take(_sim(small_city, seed=2).messages(), 3000)
    assert [m[2] for m in a] != [m[2] for m in c]


def test_time_order_and_frame_counters(small_city):
    last = 0.0
    f_cnt: dict[str, int] = {}
    events = Counter()
    for ts, topic, raw in _sim(small_city, days=2).messages():
        assert ts >= last
        last = ts
        up = parse(message(raw, datetime.fromtimestamp(ts, UTC), topic=topic, source="simulator"))
        assert event_from_topic(topic) == (up.event, up.dev_eui)
        assert abs(up.time.timestamp() - ts) < 1e-3
        events[up.event] += 1
        if up.event == "up":
            assert up.f_cnt > f_cnt.get(up.dev_eui, -1)
            f_cnt[up.dev_eui] = up.f_cnt
            assert -140 < up.rssi < -30 and -25 < up.snr < 20 and 7 <= up.sf <= 12
    assert events["join"] == len(small_city.devices)
    assert events["status"] > 0 and events["up"] > 10 * events["status"]


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_every_message_stored_none_quarantined(small_city, tmp_path, fmt):
    store = open_store(f"duckdb:///{tmp_path / 'x.duckdb'}")
    pipeline = Pipeline(store)
    n = feed(pipeline, _sim(small_city, fmt=fmt).messages())
    pipeline.close()
    counts = store.counts()
    assert counts.get("quarantined", 0) == 0
    assert counts["stored"] == n
    assert counts["observations"] > 3 * n
    kinds = {r["kind"] for r in store.sql("SELECT DISTINCT kind FROM devices")}
    assert kinds == {d.kind for d in small_city.devices}
    store.close()


def test_json_and_protobuf_carry_the_same_values(small_city):
    def values(fmt):
        out = []
        for ts, topic, raw in _sim(small_city, fmt=fmt, days=0.3).messages():
            up = parse(message(raw, datetime.fromtimestamp(ts, UTC), topic=topic, source="simulator"))
            out.append((up.dev_eui, up.event, up.f_cnt, up.payload, up.obj,
                        [(k, round(v, 3)) for k, v in up.values or ()]))
        return out

    assert values("json") == values("protobuf")


def test_week_stored_whole(week):
    counts = week.store.counts()
    assert counts.get("quarantined", 0) == 0
    assert counts["stored"] == week.submitted
    assert counts["devices"] == len(week.city.devices)
    kinds = {d.kind for d in week.city.devices}
    assert kinds <= set(DEVICE_KINDS)
    assert kinds >= {"water_meter", "district_meter", "weather_station", "air_quality", "water_level",
                     "rain_gauge", "indoor_climate", "traffic_counter", "bike_counter"}
