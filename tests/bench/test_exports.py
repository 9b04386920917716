"""bench/exports.py at a tiny size, on both stores: it runs end to end and prints its one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def run_bench(store: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "exports.py"), "--store", store, "--stations", "12",
                          "--days", "2", "--interval-min", "30"], env=env, capture_output=True, check=True,
                         timeout=300)
    return json.loads(out.stdout)


def check(r: dict) -> None:
    assert r["rows_in_store"] == 12 * 2 * 48 * 3
    half, whole = r["exports"]["half_period"], r["exports"]["whole_period"]
    assert whole["rows"] == r["rows_in_store"] and half["rows"] == r["rows_in_store"] // 2
    assert whole["bytes"] > half["bytes"] > 0 and whole["rows_per_s"] > 0
    assert len(whole["growth_at_quarters_mb"]) == 4 and whole["rss_start_mb"] > 0
    assert isinstance(r["flat_memory"], bool)


def test_exports_bench_duckdb(tmp_path: Path) -> None:
    r = run_bench(f"duckdb:///{tmp_path}/bench.duckdb")
    check(r)
    assert r["store"] == "duckdb"


@pytest.mark.postgres
def test_exports_bench_postgres(pg_url: str) -> None:
    r = run_bench(pg_url)
    check(r)
    assert r["store"] == "postgresql"
