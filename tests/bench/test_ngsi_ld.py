"""bench/ngsi_ld.py at a tiny size: it runs end to end on the sandbox and prints its one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_ngsi_ld_bench_on_the_sandbox(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "ngsi_ld.py"), "--sensors", "30", "--days", "1",
                          "--requests", "3", "--store", f"duckdb:///{tmp_path / 's.duckdb'}"],
                         env=env, capture_output=True, check=True, timeout=300)
    r = json.loads(out.stdout)
    assert r["mode"] == "sandbox" and r["build"]["entities"] == 30 and r["build"]["instances"] == 30 * 24
    assert {"query_type_100", "query_geo_near_1km", "temporal_one_day", "temporal_query_100_one_day",
            "temporal_avg_1h_whole_range"} <= set(r["routes"])
    for timing in r["routes"].values():
        assert 0 < timing["p50_ms"] <= timing["p95_ms"] and timing["bytes"] > 0
