"""bench/health.py at a tiny size: it runs and prints the one JSON object of issue 13."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_health_bench_prints_one_json_object() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "health.py"), "--devices", "300", "--gateways", "10",
                          "--days", "1"], env=env, capture_output=True, check=True, timeout=300)
    r = json.loads(out.stdout)
    assert r["devices"] == 300 and r["uplinks"] == 300 * 24 and r["gateway_events"] >= 10 * 2880
    assert r["cpu_us_per_uplink"] > 0 and r["state_bytes_per_device"] > 0
    assert r["alerts"] == 0  # a healthy fleet: nothing to say
