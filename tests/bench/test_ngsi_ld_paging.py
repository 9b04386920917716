"""bench/ngsi_ld_paging.py at a tiny size: it runs end to end, prints its one JSON object, and a page builds its
page (the builders' call counts it reports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_ngsi_ld_paging_bench_runs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    args = [sys.executable, str(ROOT / "bench" / "ngsi_ld_paging.py"), "--devices", "60", "--days", "0.25",
            "--repeat", "2", "--store", f"duckdb:///{tmp_path / 'paging.duckdb'}", "--keep"]
    r = json.loads(subprocess.run(args, env=env, capture_output=True, check=True, timeout=300).stdout)
    assert r["devices"] == 60 and r["water_meters"] > 0 and r["observations"] > 0 and not r["reused_store"]
    q = r["questions"]
    for name, v in q.items():
        assert 0 < v["p50_ms"] <= v["p95_ms"], name
    first = q["meters_first_page_200"]
    assert first["built"] == first["answered"] > 0  # the page's meters, nothing else
    assert q["meters_count_only"]["built"] == 0 and int(q["meters_count_only"]["count"]) >= first["answered"]
    ordered = q["meters_ordered_page_200_offset_1000"]
    assert ordered["built"] == ordered["answered"] > 0  # ordered by a value: still only the page built
    assert q["anonymous_water_consumption_count"]["built"] == 0  # no meter built for who may not read them
    again = json.loads(subprocess.run(args, env=env, capture_output=True, check=True, timeout=300).stdout)
    assert again["reused_store"] and again["observations"] == r["observations"]
