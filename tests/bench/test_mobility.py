"""bench/mobility.py at a tiny size: it runs end to end and prints one JSON object with its figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_bench_mobility_tiny():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "mobility.py"), "--counters", "2", "--store-counters",
                          "1", "--systems", "2", "--stations", "20", "--cycles", "1"], env=env, capture_output=True,
                         check=True, timeout=300)
    r = json.loads(out.stdout)
    assert r["observatory"]["counters"] == 2 and r["observatory"]["cpu_s"] > 0
    assert r["observatory"]["tmja_days_used_per_channel"] < 365  # a lost day: its month is out
    assert r["observatory_store"]["messages"] > 0 and r["observatory_store"]["report_s_per_counter"] > 0
    g = r["gbfs"]
    assert g["messages_stored"] == 2 * 21 and g["core_share"] > 0 and g["keeps_up"]
