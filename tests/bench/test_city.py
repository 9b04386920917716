"""bench/city.py at a tiny size, on both stores: it runs end to end and prints the one JSON object issue 14 asks for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
ROUTES = {"device_raw_30d", "device_hourly_30d", "latest_page_200", "alerts", "metrics", "healthz", "air_atmo",
          "air_eaqi", "heat_status", "heat_islands", "heat_cool_refuges", "flood_rivers", "museum_rooms",
          "museum_report", "zone_series"}


def run_bench(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "city.py"), "--devices", "60", "--days", "0.25",
                          "--repeat", "2", *args], env=env, capture_output=True, check=True, timeout=300)
    assert b"%" in out.stderr  # the progress bar
    return json.loads(out.stdout)


def check_shape(r: dict) -> None:
    assert set(r["routes"]) >= ROUTES
    for timing in [*r["routes"].values(), *r["store_calls"].values()]:
        assert 0 < timing["p50_ms"] <= timing["p95_ms"]
    assert r["devices"] == 60
    # the pipeline part and the bulk part both wrote, and everything written is counted
    assert r["build"]["pipeline"]["stored"] > 0 and r["build"]["bulk"]["uplinks"] > 0
    assert r["uplinks"] >= r["build"]["pipeline"]["stored"] + r["build"]["bulk"]["uplinks"]
    rss = r["rss_mb"]
    assert rss["started_mb"] > 0 and len(rss["after_each_day_mb"]) == 1 and rss["uplinks_fed"] > 0
    assert r["replay"]["replayed"] > 0 and r["replay_uplinks_per_s"] > 0
    # replay replaces, never duplicates: the bulk copies' raw JSON carries their shifted time
    assert r["replay"]["observations_after"] == r["replay"]["observations_before"]
    assert r["disk"]["bytes"] > 0 and r["disk"]["mb_per_million_uplinks"] > 0
    assert set(r["goals"]) == {"device_series_ms", "district_rollup_ms", "route_p95_ms", "rss_mb",
                               "replay_uplinks_per_s"}
    assert all(isinstance(g["met"], bool) for g in r["goals"].values())


def test_city_bench_duckdb(tmp_path: Path) -> None:
    r = run_bench("--keep", str(tmp_path), "--replay-share", "1")
    check_shape(r)
    assert r["store"] == "duckdb" and (tmp_path / "city.duckdb").exists()


@pytest.mark.postgres
def test_city_bench_postgres(pg_url: str) -> None:
    r = run_bench("--store", pg_url, "--replay-share", "1")
    check_shape(r)
    assert r["store"] == "postgresql"
