"""bench/partitioned.py small: 3 workers over RabbitMQ and PostgreSQL, 20,000 ChirpStack-shaped AMQP uplinks, one
worker killed -9, one frozen with SIGSTOP past its lease, the broker restarted — nothing lost, nothing doubled,
each device in order, the alerts of a single-process run; then throughput with 1 and 2 workers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def run_bench(pg_server_url: str, amqp_server: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    broker = [] if shutil.which("rabbitmq-server") else ["--amqp", amqp_server]
    base = pg_server_url.rsplit("/", 1)[0] + "/postgres"
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "partitioned.py"), "--pg", base, *broker, *args],
                         env=env, capture_output=True, timeout=900)
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    return json.loads(out.stdout)


@pytest.mark.skipif(not shutil.which("rabbitmq-server"), reason="the broker restart needs a private node")
def test_three_workers_with_faults(pg_server_url, amqp_server):
    r = run_bench(pg_server_url, amqp_server, "--uplinks", "20000", "--devices", "80", "--workers", "3",
                  "--faults")
    n = r["published"]
    assert n > 19000  # 20,000 asked, less the uplinks the simulated incidents silence
    assert r["stored"] == n and r["lost"] == 0 and r["doubled"] == 0 and r["order_violations"] == 0
    assert r["observations_equal"]
    # the alerts of one process, every one the same (rule, subject, state, opening time), zone and device rules
    a = r["alerts"]
    assert a["single_process"] >= 10 and a["partitioned"] == a["single_process"], a
    assert a["only_single"] == [] and a["only_partitioned"] == [], a
    # every alert event's notification delivered once (three outbox workers claiming the same table), and as
    # many notifications as one process writes
    n = r["fault_run"]["notifications"]
    assert r["notifications_once"] and n["rows"] > 0, n
    assert n["rows"] == r["single_process"]["notifications"], n
    run = r["fault_run"]
    assert [f["fault"].split()[0] for f in run["faults"]] == ["SIGKILL", "SIGSTOP", "broker"]
    exits = {(e["worker"], e["status"]) for e in run["worker_exits"]}
    killed = run["faults"][0]["fault"].split()[1]
    stopped = run["faults"][1]["stopped"]
    # the frozen worker found it had lost its partitions and left without committing (exit 75); both were
    # started again (as systemd would) and got their share back
    assert (killed, -9) in exits and (stopped, 75) in exits
    assert len(run["owners_at_end"]) == 3 and run["rebalanced_s"] is not None
    # the killed worker's partitions were taken over within a lease and its renewal period (+ a busy machine)
    lease = r["lease_s"]
    assert run["faults"][0]["partitions"] > 0 and run["faults"][0]["taken_over_s"] < 3 * lease


def test_throughput_per_worker_count(pg_server_url, amqp_server):
    r = run_bench(pg_server_url, amqp_server, "--uplinks", "3000", "--devices", "60", "--scaling", "1,2")
    for k in ("1", "2"):
        t = r["throughput"][k]
        assert t["uplinks_per_s"] > 0 and t["lost"] == 0 and t["doubled"] == 0 and t["order_violations"] == 0
        assert t["cpu_s_per_1000"]["worker"] > 0 and t["cpu_s_per_1000"]["postgresql"] > 0
    p = r["projection_1M_sensors"]
    assert p["uplinks_per_s"] == 1111 and p["total_cores"] > 0
