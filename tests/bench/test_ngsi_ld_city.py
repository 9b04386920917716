"""bench/ngsi_ld_city.py at a tiny size: it runs end to end and prints its one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
PAIRS = {"weather_page_200", "meters_page_200", "one_entity", "temporal_raw_month", "temporal_hourly_month"}


def test_the_ngsi_ld_city_bench_runs() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "ngsi_ld_city.py"), "--devices", "40", "--days",
                          "0.25", "--repeat", "2", "--subscriptions", "2", "--rounds", "2"], env=env,
                         capture_output=True, check=True, timeout=300)
    r = json.loads(out.stdout)
    assert r["devices"] == 40 and r["observations"] > 0
    assert set(r["queries"]) >= PAIRS
    for name in PAIRS:
        pair = r["queries"][name]
        for side in ("ngsi_ld", "rest"):
            assert 0 < pair[side]["p50_ms"] <= pair[side]["p95_ms"]
        assert pair["ratio"] > 0
    s = r["subscriptions"]
    # every weather change notifies each subscription once per round, and every notification is delivered
    assert s["queued"] == s["subscriptions"] * s["rounds"] and s["delivered"] == s["queued"]
    assert s["matched_per_s"] > 0 and s["delivered_per_s"] > 0
