"""Mobility figures read back from both stores (issue 12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clapas.connectors.counts import counter_eui
from clapas.connectors.gbfs.messages import station_eui
from clapas.reports import mobility as rep
from clapas.store.base import open_store
from tests.reports.mobility_city import DAY0, YEAR, fill


@pytest.fixture(params=["duckdb", "postgres"])
def store(request, tmp_path):
    url = f"duckdb:///{tmp_path / 'm.duckdb'}" if request.param == "duckdb" else request.getfixturevalue("pg_url")
    s = open_store(url)
    s.migrate()
    fill(s)
    yield s
    s.close()


def test_station_kpis_and_states(store):
    out = {r["eui"]: r for r in rep.station_kpis(store, DAY0, DAY0 + timedelta(days=1), with_episodes=True)}
    s1 = out[station_eui("tam", "s1")]
    assert s1["polls"] == 1440 and s1["episodes"] == 1 and s1["violations"] == 1  # 70 min at noon > 60
    assert (s1["empty_episodes"], s1["full_episodes"]) == (1, 0)
    ep = s1["episode_list"][0]
    assert ep["duration_s"] == 4200 and ep["peak"] and not ep["exempt"]
    assert s1["empty_share"] == round(4200 / 86400, 6)
    assert s1["departures_lb"] == 0 and len(s1["rebalancing"]) == 2  # 8 → 0 and back: jumps ≥ 20/3
    s2 = out[station_eui("tam", "s2")]
    assert s2["episodes"] == 0 and s2["arrivals_lb"] == 24 and s2["departures_lb"] == 23
    assert next(iter(out)) == station_eui("tam", "s1")  # worst empty share first
    states = {r["eui"]: r["state"] for r in rep.station_states(store, DAY0 + timedelta(hours=12, minutes=30))}
    assert states[station_eui("tam", "s1")] == "empty"
    later = {r["eui"]: r["state"] for r in rep.station_states(store, DAY0 + timedelta(days=2))}
    assert set(later.values()) == {"unknown"}  # no poll for two days: unknown, never empty
    sy = rep.systems(store, DAY0 + timedelta(days=1))
    assert sy[0]["status"] == "ok" and sy[0]["polls"] == 1440


def test_counter_observatory(store):
    out = rep.observatory(store, counter_eui("site-lez"), YEAR)
    total = out["directions"]["total"]
    assert total["tmja_months"] == [f"{YEAR}-{m:02d}" for m in range(1, 13) if m != 4]
    assert total["tmja_days_used"] == 365 - 30
    assert total["peak_hours"] == {"morning": 8, "evening": 18}
    assert out["directions"]["in"]["peak_hours"]["morning"] == 8
    assert total["tmjo"] > total["weekend_mean"]
    series = rep.counter_series(store, counter_eui("site-lez"), datetime(YEAR, 4, 8, 22, tzinfo=UTC),
                                datetime(YEAR, 4, 10, 22, tzinfo=UTC))
    rows = series["directions"]["in"]
    assert sum(r["count"] is None and r["flag"] == 9 for r in rows) == 24  # the lost day: MISSING, never 0
    csv = rep.national_csv(series)
    assert csv.splitlines()[0] == "channel_id,counter_id,start_datetime,end_datetime,count,quality_flag"
